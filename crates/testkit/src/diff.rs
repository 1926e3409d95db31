//! The differential runner: one command stream, two servers, replies
//! compared frame by frame after normalising replies whose order Redis
//! leaves unspecified (KEYS, SCAN batches…).

use crate::RawConn;
use larder_protocol::Frame;

/// How to compare one command's replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Byte-for-byte equal frames.
    Exact,
    /// Equal after sorting the elements of the (outermost) array.
    Unordered,
    /// Same frame type only (values that legitimately differ: TIME, IDs).
    Shape,
    /// Same frame type and, for aggregates, the same number of elements
    /// (random picks: SPOP, SRANDMEMBER, HRANDFIELD with a count).
    Len,
    /// Both errors with the same code (the first word), for errors whose
    /// wording changed between Redis versions (NOPERM in 7.0 and 7.2).
    ErrorCode,
}

/// Sorts arrays recursively where order carries no meaning.
pub fn normalize(frame: &Frame) -> Frame {
    match frame {
        Frame::Array(items) | Frame::Set(items) => {
            let mut items: Vec<Frame> = items.iter().map(normalize).collect();
            items.sort_by_key(|f| format!("{f:?}"));
            Frame::Array(items)
        }
        Frame::Map(pairs) => {
            let mut pairs: Vec<(Frame, Frame)> = pairs.iter().map(|(k, v)| (normalize(k), normalize(v))).collect();
            pairs.sort_by_key(|p| format!("{p:?}"));
            Frame::Map(pairs)
        }
        other => other.clone(),
    }
}

fn shape(frame: &Frame) -> &'static str {
    match frame {
        Frame::Simple(_) => "simple",
        Frame::Error(_) => "error",
        Frame::Integer(_) => "integer",
        Frame::Bulk(_) => "bulk",
        Frame::Null => "null",
        Frame::NullArray => "null-array",
        Frame::Array(_) => "array",
        Frame::Map(_) => "map",
        Frame::Set(_) => "set",
        Frame::Double(_) => "double",
        Frame::Boolean(_) => "boolean",
        Frame::BigNumber(_) => "bignumber",
        Frame::Verbatim { .. } => "verbatim",
        Frame::Push(_) => "push",
        Frame::Attribute { .. } => "attribute",
    }
}

fn len(frame: &Frame) -> usize {
    match frame {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => v.len(),
        Frame::Map(v) => v.len(),
        _ => 0,
    }
}

/// Sends `cmd` to both connections and returns a description of the
/// difference, if any.
pub fn compare(ours: &mut RawConn, theirs: &mut RawConn, cmd: &[Vec<u8>], how: Compare) -> Option<String> {
    let a = ours.call(cmd).map_err(|e| e.to_string());
    let b = theirs.call(cmd).map_err(|e| e.to_string());
    let same = match (&a, &b) {
        (Ok(a), Ok(b)) => match how {
            Compare::Exact => a == b,
            Compare::Unordered => normalize(a) == normalize(b),
            Compare::Shape => shape(a) == shape(b),
            Compare::Len => shape(a) == shape(b) && len(a) == len(b),
            Compare::ErrorCode => match (a, b) {
                (Frame::Error(x), Frame::Error(y)) => x.split(|&c| c == b' ').next() == y.split(|&c| c == b' ').next(),
                _ => false,
            },
        },
        (Err(_), Err(_)) => true,
        _ => false,
    };
    if same {
        return None;
    }
    let shown: Vec<String> = cmd.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    Some(format!("{:?}\n  larder: {a:?}\n  redis:  {b:?}", shown))
}

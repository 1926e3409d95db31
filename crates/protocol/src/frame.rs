//! The one value type for everything RESP2 and RESP3 can carry.

use bytes::Bytes;

/// Which protocol a connection speaks; chosen by HELLO, RESP2 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

/// A RESP3 frame. RESP2 is the subset `Simple`, `Error`, `Integer`, `Bulk`,
/// `Null`, `NullArray` and `Array`; the encoder maps the rest down.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(Bytes),
    Error(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    Array(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Double(f64),
    Boolean(bool),
    BigNumber(Bytes),
    Verbatim {
        format: [u8; 3],
        text: Bytes,
    },
    Push(Vec<Frame>),
    /// RESP3 attributes (`|`), metadata that precedes the reply proper;
    /// RESP2 clients get only the reply.
    Attribute {
        attrs: Vec<(Frame, Frame)>,
        reply: Box<Frame>,
    },
}

impl Frame {
    /// `+OK`, the most common reply.
    pub const fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    pub fn simple(s: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(s.as_bytes()))
    }

    pub fn bulk(b: impl AsRef<[u8]>) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(b.as_ref()))
    }

    pub fn bulk_static(s: &'static str) -> Frame {
        Frame::Bulk(Bytes::from_static(s.as_bytes()))
    }

    /// An error frame; `text` includes its code, as in `ERR syntax error`.
    pub fn error(text: impl Into<String>) -> Frame {
        Frame::Error(Bytes::from(text.into()))
    }
}

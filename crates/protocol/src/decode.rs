//! The general RESP3 decoder, for replies (the test kit and the cache
//! client side) and for round-trip property tests. The server parses
//! requests with the cheaper `request` module instead.

use crate::error::ProtocolError;
use crate::frame::Frame;
use crate::request::parse_i64;
use bytes::Bytes;

/// Deepest aggregate nesting accepted, so hostile input cannot overflow
/// the stack.
pub const MAX_DEPTH: usize = 128;

/// Decodes one frame from the front of `input`. `Ok(None)` means more bytes
/// are needed; `Ok(Some((frame, n)))` consumed `n` bytes.
pub fn decode(input: &[u8]) -> Result<Option<(Frame, usize)>, ProtocolError> {
    decode_at(input, 0, 0)
}

fn read_line(input: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rel = input.get(pos..)?.windows(2).position(|w| w == b"\r\n")?;
    Some((&input[pos..pos + rel], pos + rel + 2))
}

fn int(s: &[u8]) -> Result<i64, ProtocolError> {
    parse_i64(s).ok_or(ProtocolError::Invalid)
}

fn decode_at(input: &[u8], pos: usize, depth: usize) -> Result<Option<(Frame, usize)>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError::TooDeep);
    }
    let Some(&tag) = input.get(pos) else {
        return Ok(None);
    };
    let Some((body, next)) = read_line(input, pos + 1) else {
        return Ok(None);
    };
    let copy = |b: &[u8]| Bytes::copy_from_slice(b);
    let frame = match tag {
        b'+' => Frame::Simple(copy(body)),
        b'-' => Frame::Error(copy(body)),
        b':' => Frame::Integer(int(body)?),
        b'_' if body.is_empty() => Frame::Null,
        b'#' => match body {
            b"t" => Frame::Boolean(true),
            b"f" => Frame::Boolean(false),
            _ => return Err(ProtocolError::Invalid),
        },
        b',' => {
            let s = std::str::from_utf8(body).map_err(|_| ProtocolError::Invalid)?;
            Frame::Double(s.parse().map_err(|_| ProtocolError::Invalid)?)
        }
        b'(' => Frame::BigNumber(copy(body)),
        b'$' | b'=' | b'!' => {
            let len = int(body)?;
            if len < 0 {
                return if tag == b'$' && len == -1 {
                    Ok(Some((Frame::Null, next)))
                } else {
                    Err(ProtocolError::InvalidBulkLength)
                };
            }
            let end = next + len as usize;
            if input.len() < end + 2 {
                return Ok(None);
            }
            if &input[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::Invalid);
            }
            let data = &input[next..end];
            let frame = match tag {
                b'$' => Frame::Bulk(copy(data)),
                b'!' => Frame::Error(copy(data)),
                _ => {
                    if data.len() < 4 || data[3] != b':' {
                        return Err(ProtocolError::Invalid);
                    }
                    Frame::Verbatim { format: [data[0], data[1], data[2]], text: copy(&data[4..]) }
                }
            };
            return Ok(Some((frame, end + 2)));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = int(body)?;
            if n < 0 {
                return if tag == b'*' && n == -1 {
                    Ok(Some((Frame::NullArray, next)))
                } else {
                    Err(ProtocolError::InvalidMultibulkLength)
                };
            }
            let count = if matches!(tag, b'%' | b'|') { n as usize * 2 } else { n as usize };
            let mut items = Vec::with_capacity(count.min(1024));
            let mut at = next;
            for _ in 0..count {
                match decode_at(input, at, depth + 1)? {
                    Some((f, n)) => {
                        items.push(f);
                        at = n;
                    }
                    None => return Ok(None),
                }
            }
            let frame = match tag {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                _ => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    if tag == b'|' {
                        // The reply the attributes describe follows them.
                        return Ok(decode_at(input, at, depth + 1)?
                            .map(|(reply, end)| (Frame::Attribute { attrs: pairs, reply: Box::new(reply) }, end)));
                    }
                    Frame::Map(pairs)
                }
            };
            return Ok(Some((frame, at)));
        }
        other => return Err(ProtocolError::InvalidType(other)),
    };
    Ok(Some((frame, next)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, Proto};
    use bytes::BytesMut;
    use proptest::prelude::*;

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..32).prop_map(Bytes::from);
        let line = "[a-zA-Z0-9 ]{0,16}".prop_map(Bytes::from);
        let leaf = prop_oneof![
            line.clone().prop_map(Frame::Simple),
            line.clone().prop_map(Frame::Error),
            any::<i64>().prop_map(Frame::Integer),
            bytes.clone().prop_map(Frame::Bulk),
            Just(Frame::Null),
            any::<bool>().prop_map(Frame::Boolean),
            (-1e15f64..1e15).prop_map(Frame::Double),
            "[0-9]{1,30}".prop_map(|s| Frame::BigNumber(Bytes::from(s))),
            bytes.prop_map(|text| Frame::Verbatim { format: *b"txt", text }),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Set),
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Push),
                proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn resp3_round_trip(frame in arb_frame()) {
            let mut out = BytesMut::new();
            encode(&frame, Proto::Resp3, &mut out);
            let (back, n) = decode(&out).unwrap().unwrap();
            prop_assert_eq!(n, out.len());
            prop_assert_eq!(back, frame);
        }

        #[test]
        fn any_split_needs_more_bytes(frame in arb_frame(), cut in any::<prop::sample::Index>()) {
            let mut out = BytesMut::new();
            encode(&frame, Proto::Resp3, &mut out);
            let cut = cut.index(out.len());
            prop_assert_eq!(decode(&out[..cut]).unwrap(), None);
        }

        #[test]
        fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&input);
            let mut req = crate::Request::default();
            let _ = crate::parse_request(&input, &crate::RequestLimits::default(), &mut req);
        }

        #[test]
        fn request_split_anywhere(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..6), cut in any::<prop::sample::Index>()) {
            let frame = Frame::Array(args.iter().map(|a| Frame::Bulk(Bytes::from(a.clone()))).collect());
            let mut out = BytesMut::new();
            encode(&frame, Proto::Resp2, &mut out);
            let mut req = crate::Request::default();
            let limits = crate::RequestLimits::default();
            let cut = cut.index(out.len());
            prop_assert_eq!(crate::parse_request(&out[..cut], &limits, &mut req).unwrap(), None);
            let n = crate::parse_request(&out, &limits, &mut req).unwrap().unwrap();
            prop_assert_eq!(n, out.len());
            let parsed: Vec<Vec<u8>> = req.args(&out).map(|a| a.to_vec()).collect();
            prop_assert_eq!(parsed, args);
        }
    }

    #[test]
    fn depth_is_limited() {
        let input = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert_eq!(decode(input.as_bytes()).unwrap_err(), ProtocolError::TooDeep);
    }
}

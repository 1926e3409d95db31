//! Frame → bytes. RESP3 types are downgraded here for RESP2 clients, so
//! command handlers build one reply and never look at the protocol version.

use crate::frame::{Frame, Proto};
use bytes::{BufMut, BytesMut};

/// Appends the encoding of `frame` for a client speaking `proto`.
pub fn encode(frame: &Frame, proto: Proto, out: &mut BytesMut) {
    let resp3 = proto == Proto::Resp3;
    match frame {
        Frame::Simple(s) => line(out, b'+', s),
        Frame::Error(e) => line(out, b'-', e),
        Frame::Integer(i) => int_line(out, b':', *i),
        Frame::Bulk(b) => bulk(out, b),
        Frame::Null if resp3 => out.put_slice(b"_\r\n"),
        Frame::Null => out.put_slice(b"$-1\r\n"),
        Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
        Frame::NullArray => out.put_slice(b"*-1\r\n"),
        Frame::Array(items) => aggregate(out, b'*', items, proto),
        Frame::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
        Frame::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
        Frame::Map(pairs) => {
            if resp3 {
                int_line(out, b'%', pairs.len() as i64);
            } else {
                int_line(out, b'*', pairs.len() as i64 * 2);
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Frame::Double(d) => {
            let text = format_double(*d);
            if resp3 {
                line(out, b',', text.as_bytes());
            } else {
                bulk(out, text.as_bytes());
            }
        }
        Frame::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Frame::Boolean(b) => int_line(out, b':', *b as i64),
        Frame::BigNumber(n) if resp3 => line(out, b'(', n),
        Frame::BigNumber(n) => bulk(out, n),
        Frame::Verbatim { format, text } if resp3 => {
            int_line(out, b'=', text.len() as i64 + 4);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Frame::Verbatim { text, .. } => bulk(out, text),
        Frame::Attribute { attrs, reply } => {
            if resp3 {
                int_line(out, b'|', attrs.len() as i64);
                for (k, v) in attrs {
                    encode(k, proto, out);
                    encode(v, proto, out);
                }
            }
            encode(reply, proto, out);
        }
    }
}

fn line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(tag);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    line(out, tag, buf.format(n).as_bytes());
}

fn bulk(out: &mut BytesMut, body: &[u8]) {
    int_line(out, b'$', body.len() as i64);
    out.reserve(body.len() + 2);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, tag: u8, items: &[Frame], proto: Proto) {
    int_line(out, tag, items.len() as i64);
    for item in items {
        encode(item, proto, out);
    }
}

/// Formats a double the way Redis 7.2 replies with one: the shortest text
/// that reads back to the same value, `inf`/`-inf`/`nan`, and an exponent
/// only for very large or very small magnitudes.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = d.abs();
    if a == 0.0 || (1e-4..1e17).contains(&a) {
        let s = format!("{d}");
        if s == "-0" {
            return "-0".into();
        }
        s
    } else {
        // Rust writes "1e300"; C's %g writes "1e+300".
        let s = format!("{d:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn enc(f: &Frame, p: Proto) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(f, p, &mut out);
        out.to_vec()
    }

    #[test]
    fn resp2_downgrades() {
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&map, Proto::Resp2), b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&map, Proto::Resp3), b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Frame::Null, Proto::Resp2), b"$-1\r\n");
        assert_eq!(enc(&Frame::NullArray, Proto::Resp2), b"*-1\r\n");
        assert_eq!(enc(&Frame::Null, Proto::Resp3), b"_\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Proto::Resp2), b"$3\r\n1.5\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Proto::Resp3), b",1.5\r\n");
        assert_eq!(enc(&Frame::Boolean(true), Proto::Resp2), b":1\r\n");
        let v = Frame::Verbatim { format: *b"txt", text: Bytes::from_static(b"hi") };
        assert_eq!(enc(&v, Proto::Resp3), b"=6\r\ntxt:hi\r\n");
        assert_eq!(enc(&v, Proto::Resp2), b"$2\r\nhi\r\n");
    }

    #[test]
    fn doubles_like_redis() {
        assert_eq!(format_double(10.6), "10.6");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(1e300), "1e+300");
        assert_eq!(format_double(1.5e-7), "1.5e-7");
    }
}

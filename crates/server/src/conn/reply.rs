//! A connection's replies on their way out: the reply buffer, and large
//! values sent from where they are stored rather than copied into it.
//!
//! Why: a GET of a 64 KB value copied the value into the reply buffer,
//! and the kernel then copied the buffer into the socket. The first copy
//! reads the value from memory the cache has long dropped, and perf put
//! it at 44% of the server's time (the kernel's, from a buffer still in
//! cache, at 13%). A reply that is one bulk string of [`SPLICE_FROM`]
//! bytes or more now puts only its header and closing CRLF in the buffer
//! and keeps a handle on the value's bytes (`Bytes`, shared with the
//! keyspace for values past 512 bytes), and the write hands the buffer's
//! pieces and the values to one vectored write. Redis copies such a
//! reply into its reply list instead.
//!
//! The buffer is the `BytesMut` the rest of the server writes replies
//! into (through `Deref`); only the reply a command returns is spliced,
//! a bulk string or the bulk strings of an array (MGET's): pushes, MULTI
//! and scripts' replies are copied as before.

use bytes::{Bytes, BytesMut};
use larder_protocol::{encode, Frame, Proto};
use std::io::IoSlice;

fn is_large(f: &Frame) -> bool {
    matches!(f, Frame::Bulk(b) if b.len() >= SPLICE_FROM)
}

/// A bulk reply at least this long is sent from its own bytes. Measured
/// (`scripts/ab-bench`, 10,000 keys, GET after SET): at 4 KB values,
/// splicing against copying was 1.07x at pipeline 1 and 1.22x at
/// pipeline 16; at 8 KB 1.11x at pipeline 1. Values past 512 bytes are
/// shared, so the handle costs a count, not a copy.
pub const SPLICE_FROM: usize = 4 * 1024;

#[derive(Default)]
pub struct Reply {
    buf: BytesMut,
    /// Values to send before `buf[at..]`, by `at`, in order.
    spliced: Vec<(usize, Bytes)>,
    spliced_len: usize,
}

impl std::ops::Deref for Reply {
    type Target = BytesMut;
    fn deref(&self) -> &BytesMut {
        &self.buf
    }
}

impl std::ops::DerefMut for Reply {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }
}

impl Reply {
    pub fn with_capacity(n: usize) -> Reply {
        Reply { buf: BytesMut::with_capacity(n), ..Default::default() }
    }

    /// Appends a command's reply: a large bulk string by reference, and
    /// so each large one in an array of them (MGET); anything else
    /// encoded into the buffer.
    pub fn push(&mut self, frame: &Frame, proto: Proto) {
        match frame {
            Frame::Array(items) if items.iter().any(is_large) => {
                self.line(b'*', items.len());
                for item in items {
                    self.push_one(item, proto);
                }
            }
            other => self.push_one(other, proto),
        }
    }

    fn push_one(&mut self, frame: &Frame, proto: Proto) {
        match frame {
            Frame::Bulk(body) if body.len() >= SPLICE_FROM => {
                self.line(b'$', body.len());
                self.spliced.push((self.buf.len(), body.clone()));
                self.spliced_len += body.len();
                self.buf.extend_from_slice(b"\r\n");
            }
            other => encode(other, proto, &mut self.buf),
        }
    }

    /// `<tag><n>\r\n`, an aggregate's or a bulk string's header.
    fn line(&mut self, tag: u8, n: usize) {
        self.buf.extend_from_slice(&[tag]);
        self.buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Bytes to send: the buffer's and the spliced values'.
    pub fn total_len(&self) -> usize {
        self.buf.len() + self.spliced_len
    }

    /// Empties it, keeping the buffer's allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spliced.clear();
        self.spliced_len = 0;
    }

    /// Replaces the buffer (a trim: only ever of an empty reply).
    pub fn set_buffer(&mut self, buf: BytesMut) {
        debug_assert!(self.spliced.is_empty() && self.buf.is_empty());
        self.buf = buf;
    }

    /// The pieces to send, in order (none empty).
    fn pieces(&self) -> Vec<&[u8]> {
        let mut out = Vec::with_capacity(self.spliced.len() * 2 + 1);
        let mut from = 0;
        for (at, value) in &self.spliced {
            out.push(&self.buf[from..*at]);
            out.push(&value[..]);
            from = *at;
        }
        out.push(&self.buf[from..]);
        out.retain(|p| !p.is_empty());
        out
    }

    /// Writes all of it to `stream`: the buffer alone as one write, with
    /// spliced values as vectored writes until every piece is out.
    pub async fn write_to<W: tokio::io::AsyncWrite + Unpin + ?Sized>(&self, stream: &mut W) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        if self.spliced.is_empty() {
            return stream.write_all(&self.buf).await;
        }
        let pieces = self.pieces();
        let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        let mut left: &mut [IoSlice<'_>] = &mut slices;
        while !left.is_empty() {
            let n = stream.write_vectored(left).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut left, n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `most` bytes a call, from one slice
    /// (as a stream without vectored writes does) or across several.
    struct Trickle {
        got: Vec<u8>,
        most: usize,
        vectored: bool,
    }

    impl tokio::io::AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.most);
            self.got.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            if !self.vectored {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
                return self.poll_write(cx, first);
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.most - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                if n == self.most {
                    break;
                }
            }
            std::task::Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Replies with large values in between small ones reach the stream
    /// byte for byte as encoding them all would, however the writes cut
    /// them; only the large values are held by reference.
    #[test]
    fn spliced_values_arrive_in_order_whatever_the_writes_take() {
        let big = |c: u8, n: usize| Frame::Bulk(Bytes::from(vec![c; n]));
        let frames = [
            Frame::simple("OK"),
            big(b'a', SPLICE_FROM),
            big(b'b', SPLICE_FROM + 1),
            Frame::Integer(7),
            big(b'c', SPLICE_FROM - 1),
            big(b'd', 100_000),
            Frame::Array(vec![
                big(b'e', SPLICE_FROM),
                Frame::Null,
                Frame::Array(vec![big(b'f', SPLICE_FROM)]),
                big(b'g', 5),
            ]),
            Frame::Array(vec![big(b'h', 5)]),
        ];
        let mut reply = Reply::with_capacity(64);
        let mut expected = BytesMut::new();
        for f in &frames {
            reply.push(f, Proto::Resp3);
            encode(f, Proto::Resp3, &mut expected);
        }
        // The values of SPLICE_FROM bytes and more, alone or in an array
        // (not in one nested deeper).
        assert_eq!(reply.spliced.len(), 4);
        assert_eq!(reply.total_len(), expected.len());
        // (What it copies: the value one byte short, the nested one.)
        assert!(reply.len() < 2 * SPLICE_FROM + 200, "the buffer holds {} bytes", reply.len());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for (most, vectored) in [(usize::MAX, true), (7, true), (1000, true), (4096, false), (1, false)] {
            let mut w = Trickle { got: Vec::new(), most, vectored };
            rt.block_on(reply.write_to(&mut w)).unwrap();
            assert!(w.got == expected, "{most} bytes a write, vectored {vectored}");
        }
        reply.clear();
        assert_eq!((reply.total_len(), reply.spliced.len()), (0, 0));
    }
}

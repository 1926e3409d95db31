//! A small collection's elements packed into one buffer: each element is a
//! varint length and its bytes, back to back, after a four-byte count. The
//! role Redis's listpack plays.
//!
//! Why: a small hash held as a vector of `(Bytes, Bytes)` paid 64 bytes of
//! handles a pair, a heap allocation per field and per value, and the
//! vector's doubling slack: 1,330 bytes for a hash of ten short fields
//! where Redis's listpack takes 235 (both counting the key). Packed, the
//! same hash is its bytes plus one length byte each, in one allocation
//! sized to jemalloc's class (`table::fit_for`). Lookups walk the buffer,
//! as Redis's do a listpack; the collection converts to its table
//! encoding at Redis's thresholds, so the walk stays short.
//!
//! An empty collection has no buffer at all (the count is then 0).
//!
//! The buffer is a [`Buf`]: one pointer, its length in the allocation
//! (buf.rs). That is what lets a small hash, sorted set, list or set live
//! in the key's 24-byte value without a box of its own (value.rs): a
//! `Box` of the collection cost a 32-byte allocation a key.
//!
//! With `BACK` (a list's), each element also ends with its length written
//! backwards, as a listpack's back-length: the last element is then found
//! from the buffer's end at once, which RPOP on a long list needs. Other
//! collections only walk forwards and do without the byte.

use super::buf::Buf;
use std::ops::Range;

/// Bytes of the count at the buffer's start.
const COUNT: usize = 4;

pub(crate) use super::buf::HEADER;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed<const BACK: bool = false> {
    buf: Buf,
}

/// One element: its bytes and where it lies, its length bytes (and
/// back-length) included.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub bytes: &'a [u8],
    pub span: (usize, usize),
}

#[derive(Clone)]
pub struct Iter<'a, const BACK: bool> {
    buf: &'a [u8],
    at: usize,
}

impl<'a, const BACK: bool> Iterator for Iter<'a, BACK> {
    type Item = Item<'a>;

    #[inline]
    fn next(&mut self) -> Option<Item<'a>> {
        if self.at >= self.buf.len() {
            return None;
        }
        let start = self.at;
        let (len, n) = read_varint(&self.buf[start..]);
        let from = start + n;
        self.at = from + len + if BACK { n } else { 0 };
        Some(Item { bytes: &self.buf[from..from + len], span: (start, self.at) })
    }
}

/// The varint that starts `b`: (value, bytes).
#[inline]
pub(crate) fn read_varint(b: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    for (i, &byte) in b.iter().enumerate() {
        v |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    unreachable!("a packed buffer holds whole varints")
}

/// Writes `v` as a varint at the start of `out`; returns its length.
pub(crate) fn put_varint(out: &mut [u8], mut v: usize) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = v as u8 | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Bytes `v` takes as a varint.
pub(crate) fn varint_len(v: usize) -> usize {
    (usize::BITS - (v | 1).leading_zeros()).div_ceil(7) as usize
}

/// `v` as a back-length at the start of `out`: seven bits a byte, the low
/// ones last, each byte but the first flagged, so a reader going
/// backwards knows where it stops. Returns its length.
pub(crate) fn put_backlen(out: &mut [u8], v: usize) -> usize {
    let n = varint_len(v);
    for (j, byte) in out[..n].iter_mut().enumerate() {
        let group = ((v >> (7 * (n - 1 - j))) & 0x7f) as u8;
        *byte = group | if j > 0 { 0x80 } else { 0 };
    }
    n
}

/// The back-length that ends `b`: (value, bytes).
pub(crate) fn read_backlen(b: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    for (i, &byte) in b.iter().rev().enumerate() {
        v |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    unreachable!("a packed buffer holds whole back-lengths")
}

impl<const BACK: bool> Packed<BACK> {
    /// Bytes an element of `len` bytes takes packed.
    pub fn packed_size_of(len: usize) -> usize {
        varint_len(len) * if BACK { 2 } else { 1 } + len
    }

    fn packed_size(item: &[u8]) -> usize {
        Self::packed_size_of(item.len())
    }

    /// Writes `item` packed into `out`, exactly `packed_size(item)` bytes.
    fn encode(out: &mut [u8], item: &[u8]) {
        let at = put_varint(out, item.len());
        out[at..at + item.len()].copy_from_slice(item);
        if BACK {
            put_backlen(&mut out[at + item.len()..], item.len());
        }
    }

    /// Writes `items` packed, one after another, into `out`.
    fn encode_all<I: AsRef<[u8]>>(out: &mut [u8], items: &[I]) {
        let mut at = 0;
        for item in items.iter().map(AsRef::as_ref) {
            let n = Self::packed_size(item);
            Self::encode(&mut out[at..at + n], item);
            at += n;
        }
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        match self.buf.get(..COUNT) {
            Some(c) => u32::from_le_bytes(c.try_into().expect("four bytes")) as usize,
            None => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last element, found from the end (a buffer with back-lengths
    /// only).
    pub fn last(&self) -> Option<Item<'_>> {
        assert!(BACK, "only a buffer with back-lengths is read backwards");
        let end = self.buf.len();
        if end <= COUNT {
            return None;
        }
        let (len, n) = read_backlen(&self.buf[COUNT..]);
        let (from, to) = (end - n - len, end - n);
        Some(Item { bytes: &self.buf[from..to], span: (from - n, end) })
    }

    /// Bytes in use, count included.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated (what the collection costs beyond its handle): a
    /// whole size class, as the buffer always is.
    pub fn allocated(&self) -> usize {
        self.buf.allocated()
    }

    pub fn iter(&self) -> Iter<'_, BACK> {
        Iter { buf: &self.buf, at: COUNT.min(self.buf.len()) }
    }

    /// The elements two at a time, for collections that store pairs (a
    /// hash's field and value, a sorted set's member and score).
    pub fn pairs(&self) -> impl Iterator<Item = (Item<'_>, Item<'_>)> + '_ {
        let mut it = self.iter();
        std::iter::from_fn(move || Some((it.next()?, it.next().expect("a paired buffer holds whole pairs"))))
    }

    fn set_len(&mut self, n: usize) {
        let n = u32::try_from(n).expect("a packed collection holds under 2^32 elements");
        self.buf[..COUNT].copy_from_slice(&n.to_le_bytes());
    }

    /// Makes room for the count before a first element goes in.
    fn start(&mut self) {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(&[0; COUNT]);
        }
    }

    /// Appends elements.
    pub fn push<I: AsRef<[u8]>>(&mut self, items: &[I]) {
        self.insert_at(self.end(), items)
    }

    /// Inserts elements before the one starting at `at` (an [`Item`]'s
    /// span start; [`Self::end`] appends).
    pub fn insert_at<I: AsRef<[u8]>>(&mut self, at: usize, items: &[I]) {
        self.start();
        let at = at.min(self.end());
        let n = items.iter().map(|i| Self::packed_size(i.as_ref())).sum();
        Self::encode_all(self.buf.splice_gap(at..at, n), items);
        self.set_len(self.len() + items.len());
    }

    /// Where an element appended now would start.
    pub fn end(&self) -> usize {
        self.buf.len().max(COUNT)
    }

    /// Replaces the element at `span` (from an [`Item`]) with `item`.
    pub fn replace(&mut self, span: (usize, usize), item: &[u8]) {
        Self::encode(self.buf.splice_gap(span.0..span.1, Self::packed_size(item)), item);
    }

    /// Removes the `items` elements that lie in `range` (spans from
    /// [`Item`]s, first start to last end). The buffer gives back memory
    /// as soon as it fits a smaller size class, as a listpack does.
    pub fn remove(&mut self, range: Range<usize>, items: usize) {
        self.buf.splice(range, &[]);
        match self.len() - items {
            0 => self.buf = Buf::new(),
            n => self.set_len(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items<const BACK: bool>(p: &Packed<BACK>) -> Vec<Vec<u8>> {
        p.iter().map(|i| i.bytes.to_vec()).collect()
    }

    #[test]
    fn elements_read_back_through_pushes_replacements_and_removals() {
        edits::<false>();
        edits::<true>();
    }

    fn edits<const BACK: bool>() {
        let mut p = Packed::<BACK>::default();
        assert_eq!((p.len(), p.allocated(), items(&p).len()), (0, 0, 0));
        let long = vec![b'x'; 300]; // a two-byte length
        p.push::<&[u8]>(&[b"a", b"", &long]);
        p.push(&[b"bc"]);
        assert_eq!(p.len(), 4);
        assert_eq!(items(&p), [b"a".to_vec(), vec![], long.clone(), b"bc".to_vec()]);
        let second = p.iter().nth(1).unwrap().span;
        p.insert_at::<&[u8]>(second.0, &[b"x", b"yz"]);
        p.insert_at(p.end(), &[b"end"]);
        assert_eq!(
            items(&p),
            [b"a".to_vec(), b"x".to_vec(), b"yz".to_vec(), vec![], long.clone(), b"bc".to_vec(), b"end".to_vec()]
        );
        let (x, end) = (p.iter().nth(1).unwrap().span, p.iter().last().unwrap().span);
        p.remove(end.0..end.1, 1);
        let yz = p.iter().nth(2).unwrap().span;
        p.remove(x.0..yz.1, 2);
        assert_eq!(p.len(), 4);
        let third = p.iter().nth(2).unwrap().span;
        p.replace(third, b"short");
        assert_eq!(items(&p), [b"a".to_vec(), vec![], b"short".to_vec(), b"bc".to_vec()]);
        let first = p.iter().next().unwrap().span;
        p.replace(first, &long);
        assert_eq!(items(&p)[0], long);
        let (a, b) = (p.iter().nth(1).unwrap().span, p.iter().nth(2).unwrap().span);
        p.remove(a.0..b.1, 2);
        assert_eq!(items(&p), [long.clone(), b"bc".to_vec()]);
        assert_eq!(p.len(), 2);
        let all = (p.iter().next().unwrap().span.0, p.iter().last().unwrap().span.1);
        p.remove(all.0..all.1, 2);
        assert_eq!((p.len(), p.allocated()), (0, 0));
    }

    /// Inserts anywhere grow the buffer to the size class of what it
    /// holds and no further (`ThinVec::splice`, used before, doubled it).
    #[test]
    fn inserts_in_the_middle_keep_the_buffer_in_its_class() {
        let mut p = Packed::<false>::default();
        p.push::<&[u8]>(&[b"first", b"last"]);
        for i in 0..300 {
            let at = p.iter().nth(1).unwrap().span.0;
            p.insert_at(at, &[format!("member:{i}").as_bytes()]);
            assert_eq!(p.allocated(), crate::table::fit_for::<u8>(p.bytes() + HEADER), "after {i}");
        }
        assert_eq!(p.iter().last().unwrap().bytes, b"last");
        assert_eq!(p.len(), 302);
    }

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 30, usize::MAX >> 1] {
            let mut out = [0; 10];
            let n = put_varint(&mut out, v);
            assert_eq!(n, varint_len(v), "{v}");
            assert_eq!(read_varint(&out[..n]), (v, n));
        }
    }

    #[test]
    fn back_lengths_round_trip() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 30] {
            let mut out = vec![0xff, 0x80, 0, 0, 0, 0, 0]; // bytes before it do not matter
            let n = put_backlen(&mut out[2..], v);
            out.truncate(2 + n);
            assert_eq!(read_backlen(&out), (v, varint_len(v)), "{v}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_elements_read_back(v in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..40)) {
            let mut p = Packed::<false>::default();
            let mut b = Packed::<true>::default();
            for item in &v {
                p.push(&[item]);
                b.push(&[item]);
                let last = b.last().unwrap();
                proptest::prop_assert_eq!(last.bytes, &item[..]);
                proptest::prop_assert_eq!(last.span, b.iter().last().unwrap().span);
            }
            proptest::prop_assert_eq!(p.len(), v.len());
            proptest::prop_assert_eq!(items(&p), v.clone());
            proptest::prop_assert_eq!(items(&b), v.clone());
            // Popping from the end with `last` empties it in order.
            let mut back = v.clone();
            while let Some(last) = b.last() {
                proptest::prop_assert_eq!(Some(last.bytes.to_vec()), back.pop());
                let span = last.span;
                b.remove(span.0..span.1, 1);
            }
            proptest::prop_assert!(back.is_empty());
        }
    }
}

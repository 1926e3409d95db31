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

use std::ops::Range;

/// Bytes of the count at the buffer's start.
const COUNT: usize = 4;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    buf: Vec<u8>,
}

/// One element: its bytes and where it lies, length prefix included.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub bytes: &'a [u8],
    pub span: (usize, usize),
}

pub struct Iter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Item<'a>;

    #[inline]
    fn next(&mut self) -> Option<Item<'a>> {
        if self.at >= self.buf.len() {
            return None;
        }
        let start = self.at;
        let (len, n) = read_varint(&self.buf[start..]);
        let from = start + n;
        self.at = from + len;
        Some(Item { bytes: &self.buf[from..self.at], span: (start, self.at) })
    }
}

#[inline]
fn read_varint(b: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    for (i, &byte) in b.iter().enumerate() {
        v |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    unreachable!("a packed buffer holds whole varints")
}

fn write_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: usize) -> usize {
    (usize::BITS - (v | 1).leading_zeros()).div_ceil(7) as usize
}

/// Bytes an element takes packed.
fn packed_size(item: &[u8]) -> usize {
    varint_len(item.len()) + item.len()
}

impl Packed {
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

    /// Bytes in use, count included.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated (what the collection costs beyond its handle).
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: &self.buf, at: COUNT.min(self.buf.len()) }
    }

    fn set_len(&mut self, n: usize) {
        let n = u32::try_from(n).expect("a packed collection holds under 2^32 elements");
        self.buf[..COUNT].copy_from_slice(&n.to_le_bytes());
    }

    /// Room for `more` bytes, growing to the whole allocator size class so
    /// the next appends land in bytes already paid for.
    fn reserve(&mut self, more: usize) {
        let want = self.buf.len().max(COUNT) + more;
        if want > self.buf.capacity() {
            let cap = crate::table::fit_for::<u8>(want);
            self.buf.reserve_exact(cap - self.buf.len());
        }
        if self.buf.is_empty() {
            self.buf.extend_from_slice(&[0; COUNT]);
        }
    }

    /// Appends elements.
    pub fn push(&mut self, items: &[&[u8]]) {
        self.reserve(items.iter().map(|i| packed_size(i)).sum());
        for item in items {
            write_varint(&mut self.buf, item.len());
            self.buf.extend_from_slice(item);
        }
        self.set_len(self.len() + items.len());
    }

    /// Inserts elements before the one starting at `at` (an [`Item`]'s
    /// span start; [`Self::end`] appends).
    pub fn insert_at(&mut self, at: usize, items: &[&[u8]]) {
        if at >= self.end() {
            return self.push(items);
        }
        let mut packed = Vec::with_capacity(items.iter().map(|i| packed_size(i)).sum());
        for item in items {
            write_varint(&mut packed, item.len());
            packed.extend_from_slice(item);
        }
        self.reserve(packed.len());
        self.buf.splice(at..at, packed);
        self.set_len(self.len() + items.len());
    }

    /// Where an element appended now would start.
    pub fn end(&self) -> usize {
        self.buf.len().max(COUNT)
    }

    /// Replaces the element at `span` (from an [`Item`]) with `item`.
    pub fn replace(&mut self, span: (usize, usize), item: &[u8]) {
        let mut packed = Vec::with_capacity(packed_size(item));
        write_varint(&mut packed, item.len());
        packed.extend_from_slice(item);
        if packed.len() > span.1 - span.0 {
            self.reserve(packed.len() - (span.1 - span.0));
        }
        self.buf.splice(span.0..span.1, packed);
    }

    /// Removes the `items` elements that lie in `range` (spans from
    /// [`Item`]s, first start to last end).
    pub fn remove(&mut self, range: Range<usize>, items: usize) {
        self.buf.drain(range);
        let n = self.len() - items;
        if n == 0 {
            self.buf = Vec::new();
            return;
        }
        self.set_len(n);
        // Give back what a smaller size class would save, as a listpack
        // reallocates on delete.
        let fit = crate::table::fit_for::<u8>(self.buf.len());
        if fit < self.buf.capacity() {
            self.buf.shrink_to(fit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(p: &Packed) -> Vec<Vec<u8>> {
        p.iter().map(|i| i.bytes.to_vec()).collect()
    }

    #[test]
    fn elements_read_back_through_pushes_replacements_and_removals() {
        let mut p = Packed::default();
        assert_eq!((p.len(), p.allocated(), items(&p).len()), (0, 0, 0));
        let long = vec![b'x'; 300]; // a two-byte length
        p.push(&[b"a", b"", &long]);
        p.push(&[b"bc"]);
        assert_eq!(p.len(), 4);
        assert_eq!(items(&p), [b"a".to_vec(), vec![], long.clone(), b"bc".to_vec()]);
        let second = p.iter().nth(1).unwrap().span;
        p.insert_at(second.0, &[b"x", b"yz"]);
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

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 30, usize::MAX >> 1] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(read_varint(&out), (v, out.len()));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_elements_read_back(v in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..200), 0..40)) {
            let mut p = Packed::default();
            for item in &v {
                p.push(&[item]);
            }
            proptest::prop_assert_eq!(p.len(), v.len());
            proptest::prop_assert_eq!(items(&p), v);
        }
    }
}

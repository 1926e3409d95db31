//! Lists. Redis 7.2 keeps a small list in one listpack and a large one in
//! a quicklist; a small list here is its elements packed in one buffer
//! (packed.rs), a large one a `VecDeque` of `Bytes`. We track the byte
//! size Redis's listpack would have, so the encoding switches (and OBJECT
//! ENCODING answers) exactly where Redis's does.
//!
//! The packed form walks its buffer to reach an element, as a listpack
//! does; it stays under list-max-listpack-size (8 KB by default), so the
//! walk is short. Its tail is reached by a walk too (a listpack has
//! back-lengths for that; at this size a walk costs less than a byte per
//! element would).
//!
//! Known approximation: Redis turns a quicklist back into a listpack only
//! when it has one node. We do not model nodes and convert back whenever
//! the size is under half the limit.

use super::listpack::{entry_size, LP_OVERHEAD};
use super::packed::Packed;
use super::Limits;
use bytes::Bytes;
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq)]
enum Items {
    Packed(Packed),
    Deque(VecDeque<Bytes>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct List {
    items: Items,
    /// Bytes of the equivalent listpack, header included.
    lp_bytes: usize,
}

impl Default for List {
    fn default() -> Self {
        List { items: Items::Packed(Packed::default()), lp_bytes: LP_OVERHEAD }
    }
}

/// Redis's `SIZE_SAFETY_LIMIT` and the byte limits of negative fills.
const SIZE_SAFETY_LIMIT: usize = 8192;
const FILL_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];

/// (bytes, count) per listpack for a list-max-listpack-size value.
fn node_limits(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (usize::MAX, (fill as usize).max(1))
    } else {
        let i = ((-fill - 1) as usize).min(FILL_BYTES.len() - 1);
        (FILL_BYTES[i], usize::MAX)
    }
}

fn exceeds(fill: i64, bytes: usize, count: usize) -> bool {
    let (sz, n) = node_limits(fill);
    if sz != usize::MAX {
        bytes > sz
    } else {
        bytes > SIZE_SAFETY_LIMIT || count > n
    }
}

/// What [`List::iter`] returns: both ends and the length known.
pub trait ListIter<'a>: DoubleEndedIterator<Item = &'a [u8]> + ExactSizeIterator {}
impl<'a, T: DoubleEndedIterator<Item = &'a [u8]> + ExactSizeIterator> ListIter<'a> for T {}

impl List {
    pub fn len(&self) -> usize {
        match &self.items {
            Items::Packed(p) => p.len(),
            Items::Deque(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self.items {
            Items::Packed(_) => "listpack",
            Items::Deque(_) => "quicklist",
        }
    }

    /// Heap bytes of the small encoding's buffer (None for a quicklist).
    pub fn packed_bytes(&self) -> Option<usize> {
        match &self.items {
            Items::Packed(p) => Some(p.allocated()),
            Items::Deque(_) => None,
        }
    }

    /// Before adding elements totalling `add_bytes` raw bytes (Redis counts
    /// argument lengths here, not their encoded size): go to a quicklist
    /// if the listpack would pass the limit.
    pub fn grow_check(&mut self, add_bytes: usize, add_count: usize, lim: &Limits) {
        if let Items::Packed(p) = &self.items {
            if exceeds(lim.list_max_listpack_size, self.lp_bytes + add_bytes, p.len() + add_count) {
                self.items = Items::Deque(p.iter().map(|i| Bytes::copy_from_slice(i.bytes)).collect());
            }
        }
    }

    /// After removing elements: back to a listpack if it is now under half
    /// the limit.
    pub fn shrink_check(&mut self, lim: &Limits) {
        if let Items::Deque(d) = &self.items {
            let (sz, n) = node_limits(lim.list_max_listpack_size);
            let sz = if sz == usize::MAX { SIZE_SAFETY_LIMIT } else { sz };
            if self.lp_bytes <= sz / 2 && d.len() <= n / 2 {
                let mut p = Packed::default();
                for v in d {
                    p.push(&[v]);
                }
                self.items = Items::Packed(p);
            }
        }
    }

    pub fn push_front(&mut self, v: Bytes) {
        self.insert(0, v);
    }

    pub fn push_back(&mut self, v: Bytes) {
        self.lp_bytes += entry_size(&v);
        match &mut self.items {
            Items::Packed(p) => p.push(&[&v]),
            Items::Deque(d) => d.push_back(v),
        }
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        self.remove(0)
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        self.remove(self.len().checked_sub(1)?)
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        match &self.items {
            Items::Packed(p) => p.iter().nth(i).map(|item| item.bytes),
            Items::Deque(d) => d.get(i).map(|v| &v[..]),
        }
    }

    pub fn set(&mut self, i: usize, v: Bytes) {
        let old = entry_size(self.get(i).expect("index below len"));
        self.lp_bytes = self.lp_bytes + entry_size(&v) - old;
        match &mut self.items {
            Items::Packed(p) => {
                let span = p.iter().nth(i).expect("index below len").span;
                p.replace(span, &v);
            }
            Items::Deque(d) => d[i] = v,
        }
    }

    /// Inserts `v` before position `i` (`len`: at the end).
    pub fn insert(&mut self, i: usize, v: Bytes) {
        self.lp_bytes += entry_size(&v);
        match &mut self.items {
            Items::Packed(p) => {
                let at = p.iter().nth(i).map_or(p.end(), |item| item.span.0);
                p.insert_at(at, &[&v]);
            }
            Items::Deque(d) => d.insert(i, v),
        }
    }

    pub fn remove(&mut self, i: usize) -> Option<Bytes> {
        let v = match &mut self.items {
            Items::Packed(p) => {
                let item = p.iter().nth(i)?;
                let (v, span) = (Bytes::copy_from_slice(item.bytes), item.span);
                p.remove(span.0..span.1, 1);
                v
            }
            Items::Deque(d) => d.remove(i)?,
        };
        self.lp_bytes -= entry_size(&v);
        Some(v)
    }

    /// Keeps only `start..=end`.
    pub fn trim(&mut self, start: usize, end: usize) {
        let removed: usize = self.iter().take(start).chain(self.iter().skip(end + 1)).map(entry_size).sum();
        match &mut self.items {
            Items::Packed(p) => {
                let n = p.len();
                if end + 1 < n {
                    let from = p.iter().nth(end + 1).expect("below len").span.0;
                    p.remove(from..p.end(), n - end - 1);
                }
                if start > 0 {
                    let to = p.iter().nth(start - 1).expect("below len").span.1;
                    p.remove(p.iter().next().expect("non-empty").span.0..to, start);
                }
            }
            Items::Deque(d) => {
                d.truncate(end + 1);
                d.drain(..start);
            }
        }
        self.lp_bytes -= removed;
    }

    pub fn clear(&mut self) {
        self.items = Items::Packed(Packed::default());
        self.lp_bytes = LP_OVERHEAD;
    }

    /// The elements, head first. A packed list reads its buffer once into
    /// a vector of slices, which is what gives the walk both ends.
    pub fn iter(&self) -> Box<dyn ListIter<'_> + '_> {
        match &self.items {
            Items::Packed(p) => Box::new(p.iter().map(|item| item.bytes).collect::<Vec<_>>().into_iter()),
            Items::Deque(d) => Box::new(d.iter().map(|v| &v[..])),
        }
    }

    /// The elements from position `i` on (LRANGE): a deque seeks there at
    /// once, a packed list walks.
    pub fn iter_from(&self, i: usize) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        match &self.items {
            Items::Packed(p) => Box::new(p.iter().skip(i).map(|item| item.bytes)),
            Items::Deque(d) => Box::new(d.range(i.min(d.len())..).map(|v| &v[..])),
        }
    }

    /// Removes elements for which `f` holds, up to `limit` of them (0: all),
    /// scanning from the head, or from the tail if `from_tail`.
    pub fn remove_matching(&mut self, limit: usize, from_tail: bool, mut f: impl FnMut(&[u8]) -> bool) -> usize {
        let mut idx: Vec<usize> = Vec::new();
        let n = self.len();
        {
            let all: Vec<&[u8]> = self.iter().collect();
            let order: Box<dyn Iterator<Item = usize>> =
                if from_tail { Box::new((0..n).rev()) } else { Box::new(0..n) };
            for i in order {
                if limit != 0 && idx.len() == limit {
                    break;
                }
                if f(all[i]) {
                    idx.push(i);
                }
            }
        }
        // Highest position first, so the positions still to go stay put.
        idx.sort_unstable_by(|a, b| b.cmp(a));
        for &i in &idx {
            self.remove(i);
        }
        idx.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_encoding_at_the_byte_limit() {
        let lim = Limits::default();
        let mut l = List::default();
        let big = Bytes::from(vec![b'x'; 1000]);
        for _ in 0..8 {
            l.grow_check(big.len(), 1, &lim);
            l.push_back(big.clone());
        }
        assert_eq!(l.encoding(), "listpack");
        l.grow_check(big.len(), 1, &lim);
        l.push_back(big.clone());
        assert_eq!(l.encoding(), "quicklist");
        for _ in 0..5 {
            l.pop_front();
        }
        l.shrink_check(&lim);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(l.remove_matching(0, false, |v| v.len() == 1000), 4);
        assert_eq!((l.len(), l.lp_bytes), (0, LP_OVERHEAD));
        // A packed list answers as the deque did.
        for v in [&b"b"[..], b"c", b"d"] {
            l.push_back(Bytes::copy_from_slice(v));
        }
        l.push_front(Bytes::from_static(b"a"));
        l.insert(2, Bytes::from_static(b"x"));
        l.set(0, Bytes::from_static(b"A"));
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"A"[..], b"b", b"x", b"c", b"d"]);
        assert_eq!(l.iter().rev().len(), 5);
        assert_eq!((l.get(2), l.get(5)), (Some(&b"x"[..]), None));
        assert_eq!(l.iter_from(3).collect::<Vec<_>>(), [&b"c"[..], b"d"]);
        l.trim(1, 3);
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"b"[..], b"x", b"c"]);
        assert_eq!((l.pop_back().as_deref(), l.pop_front().as_deref()), (Some(&b"c"[..]), Some(&b"b"[..])));
        assert_eq!(l.remove(0).as_deref(), Some(&b"x"[..]));
        assert_eq!((l.len(), l.lp_bytes, l.encoding()), (0, LP_OVERHEAD, "listpack"));
    }
}

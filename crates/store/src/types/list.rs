//! Lists: a ring buffer of elements. Redis 7.2 keeps a small list in one
//! listpack and a large one in a quicklist; we keep one `VecDeque` and
//! track the byte size Redis's listpack would have, so the encoding
//! switches (and OBJECT ENCODING answers) exactly where Redis's does.
//!
//! Known approximation: Redis turns a quicklist back into a listpack only
//! when it has one node. We do not model nodes and convert back whenever
//! the size is under half the limit.

use super::listpack::{entry_size, LP_OVERHEAD};
use super::Limits;
use bytes::Bytes;
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq)]
pub struct List {
    items: VecDeque<Bytes>,
    /// Bytes of the equivalent listpack, header included.
    lp_bytes: usize,
    quicklist: bool,
}

impl Default for List {
    fn default() -> Self {
        List { items: VecDeque::new(), lp_bytes: LP_OVERHEAD, quicklist: false }
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

impl List {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn encoding(&self) -> &'static str {
        if self.quicklist {
            "quicklist"
        } else {
            "listpack"
        }
    }

    /// Before adding elements totalling `add_bytes` raw bytes (Redis counts
    /// argument lengths here, not their encoded size): go to a quicklist
    /// if the listpack would pass the limit.
    pub fn grow_check(&mut self, add_bytes: usize, add_count: usize, lim: &Limits) {
        if !self.quicklist && exceeds(lim.list_max_listpack_size, self.lp_bytes + add_bytes, self.len() + add_count) {
            self.quicklist = true;
        }
    }

    /// After removing elements: back to a listpack if it is now under half
    /// the limit.
    pub fn shrink_check(&mut self, lim: &Limits) {
        if self.quicklist {
            let (sz, n) = node_limits(lim.list_max_listpack_size);
            let sz = if sz == usize::MAX { SIZE_SAFETY_LIMIT } else { sz };
            if self.lp_bytes <= sz / 2 && self.len() <= n / 2 {
                self.quicklist = false;
            }
        }
    }

    pub fn push_front(&mut self, v: Bytes) {
        self.lp_bytes += entry_size(&v);
        self.items.push_front(v);
    }

    pub fn push_back(&mut self, v: Bytes) {
        self.lp_bytes += entry_size(&v);
        self.items.push_back(v);
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        let v = self.items.pop_front()?;
        self.lp_bytes -= entry_size(&v);
        Some(v)
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        let v = self.items.pop_back()?;
        self.lp_bytes -= entry_size(&v);
        Some(v)
    }

    pub fn get(&self, i: usize) -> Option<&Bytes> {
        self.items.get(i)
    }

    pub fn set(&mut self, i: usize, v: Bytes) {
        self.lp_bytes = self.lp_bytes + entry_size(&v) - entry_size(&self.items[i]);
        self.items[i] = v;
    }

    pub fn insert(&mut self, i: usize, v: Bytes) {
        self.lp_bytes += entry_size(&v);
        self.items.insert(i, v);
    }

    pub fn remove(&mut self, i: usize) -> Option<Bytes> {
        let v = self.items.remove(i)?;
        self.lp_bytes -= entry_size(&v);
        Some(v)
    }

    /// Keeps only `start..=end`.
    pub fn trim(&mut self, start: usize, end: usize) {
        let removed: usize =
            self.items.iter().take(start).chain(self.items.iter().skip(end + 1)).map(|v| entry_size(v)).sum();
        self.items.truncate(end + 1);
        self.items.drain(..start);
        self.lp_bytes -= removed;
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.lp_bytes = LP_OVERHEAD;
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator + '_ {
        self.items.iter()
    }

    /// Removes elements for which `f` holds, up to `limit` of them (0: all),
    /// scanning from the head, or from the tail if `from_tail`.
    pub fn remove_matching(&mut self, limit: usize, from_tail: bool, mut f: impl FnMut(&Bytes) -> bool) -> usize {
        let mut idx: Vec<usize> = Vec::new();
        let n = self.items.len();
        let order: Box<dyn Iterator<Item = usize>> = if from_tail { Box::new((0..n).rev()) } else { Box::new(0..n) };
        for i in order {
            if limit != 0 && idx.len() == limit {
                break;
            }
            if f(&self.items[i]) {
                idx.push(i);
            }
        }
        idx.sort_unstable();
        let mut k = 0;
        let mut i = 0;
        let lp = &mut self.lp_bytes;
        self.items.retain(|v| {
            let drop = k < idx.len() && idx[k] == i;
            if drop {
                k += 1;
                *lp -= entry_size(v);
            }
            i += 1;
            !drop
        });
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
    }
}

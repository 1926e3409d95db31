//! An ordered sequence with O(log n) rank: sorted chunks plus a Fenwick
//! tree over the chunk lengths.
//!
//! Sorted sets need "the element at rank r" and "the rank of x" in O(log n)
//! (ZRANK, ZRANGE with offsets, ZREMRANGEBYRANK). Redis uses a skiplist
//! with span counters. Chunks of a few hundred elements do the same job
//! with far fewer pointers and allocations: a search is a binary search
//! over the chunks' last elements and then inside one chunk, an insert is
//! a short memmove, and ranks come from prefix sums of chunk lengths. The
//! prefix-sum tree is rebuilt only when a chunk splits or disappears,
//! about once per few hundred writes, so it is always current and reads
//! need no interior mutability.

const CHUNK_MAX: usize = 512;

#[derive(Debug, Clone)]
pub struct Ordered<T> {
    chunks: Vec<Vec<T>>,
    /// Fenwick tree over `chunks[i].len()`, 1-based.
    tree: Vec<usize>,
    len: usize,
}

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered { chunks: Vec::new(), tree: vec![0], len: 0 }
    }
}

impl<T: Ord> Ordered<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Builds from elements already sorted ascending and distinct.
    pub fn from_sorted(items: Vec<T>) -> Self {
        let mut o = Ordered::new();
        o.len = items.len();
        let mut it = items.into_iter().peekable();
        while it.peek().is_some() {
            o.chunks.push(it.by_ref().take(CHUNK_MAX / 2).collect());
        }
        o.rebuild();
        o
    }

    /// Index of the first element for which `pred` is false (elements for
    /// which it holds must come first), as `std`'s `partition_point`.
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let ci = self.chunks.partition_point(|c| pred(c.last().expect("chunks are never empty")));
        if ci == self.chunks.len() {
            return self.len;
        }
        self.prefix(ci) + self.chunks[ci].partition_point(pred)
    }

    /// The rank of `x`, if present.
    pub fn rank(&self, x: &T) -> Option<usize> {
        let r = self.partition_point(|e| e < x);
        (self.get(r)? == x).then_some(r)
    }

    /// Inserts `x`; returns false (and does nothing) if it is present.
    pub fn insert(&mut self, x: T) -> bool {
        if self.chunks.is_empty() {
            self.chunks.push(vec![x]);
            self.len = 1;
            self.rebuild();
            return true;
        }
        let ci = self.chunks.partition_point(|c| c.last().expect("non-empty") < &x).min(self.chunks.len() - 1);
        let last = ci + 1 == self.chunks.len();
        let chunk = &mut self.chunks[ci];
        let pos = match chunk.binary_search(&x) {
            Ok(_) => return false,
            Err(p) => p,
        };
        self.len += 1;
        if chunk.len() < CHUNK_MAX {
            chunk.insert(pos, x);
            self.adjust(ci, true);
            return true;
        }
        // A full chunk splits before it takes `x`, so its vector never
        // doubles past CHUNK_MAX. In the middle it splits in half. At
        // either end of the sequence (scores that only grow, timestamps
        // say, or only shrink) it stays full and `x` starts a chunk of
        // its own: halves would leave every chunk behind half empty,
        // which cost a large sorted set 30 bytes a member.
        let cut = match pos {
            CHUNK_MAX if last => CHUNK_MAX,
            0 if ci == 0 => 0,
            _ => CHUNK_MAX / 2,
        };
        let mut tail = chunk.split_off(cut);
        if pos < cut || cut == 0 {
            chunk.insert(pos, x);
        } else {
            tail.insert(pos - cut, x);
        }
        self.chunks.insert(ci + 1, tail);
        self.rebuild();
        true
    }

    /// Removes `x`; returns false if it was absent.
    pub fn remove(&mut self, x: &T) -> bool {
        let ci = self.chunks.partition_point(|c| c.last().expect("non-empty") < x);
        if ci == self.chunks.len() {
            return false;
        }
        match self.chunks[ci].binary_search(x) {
            Ok(pos) => {
                self.remove_at(ci, pos);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes and returns the element at `rank`.
    pub fn remove_rank(&mut self, rank: usize) -> Option<T> {
        let (ci, pos) = self.locate(rank)?;
        Some(self.remove_at(ci, pos))
    }

    fn remove_at(&mut self, ci: usize, pos: usize) -> T {
        let x = self.chunks[ci].remove(pos);
        self.len -= 1;
        if self.chunks[ci].is_empty() {
            self.chunks.remove(ci);
            self.rebuild();
        } else {
            self.adjust(ci, false);
        }
        x
    }

    /// The element at `rank`.
    pub fn get(&self, rank: usize) -> Option<&T> {
        let (ci, pos) = self.locate(rank)?;
        Some(&self.chunks[ci][pos])
    }

    /// Elements from `rank` on, ascending.
    pub fn iter_from(&self, rank: usize) -> impl Iterator<Item = &T> + '_ {
        let (ci, pos) = self.locate(rank).unwrap_or((self.chunks.len(), 0));
        self.chunks[ci..].iter().enumerate().flat_map(move |(i, c)| c[if i == 0 { pos } else { 0 }..].iter())
    }

    /// Elements from `rank` down to rank 0, descending.
    pub fn iter_rev_from(&self, rank: usize) -> impl Iterator<Item = &T> + '_ {
        let (end, pos) = match self.locate(rank) {
            Some((ci, pos)) => (ci + 1, pos + 1),
            None => (0, 0),
        };
        self.chunks[..end]
            .iter()
            .rev()
            .enumerate()
            .flat_map(move |(i, c)| c[..if i == 0 { pos } else { c.len() }].iter().rev())
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.chunks.iter().flatten()
    }

    /// (chunk, position) of `rank`.
    fn locate(&self, rank: usize) -> Option<(usize, usize)> {
        if rank >= self.len {
            return None;
        }
        // Fenwick descent: the longest run of chunks holding <= rank elements.
        let n = self.chunks.len();
        let (mut idx, mut rem) = (0usize, rank);
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = idx + step;
            if next <= n && self.tree[next] <= rem {
                idx = next;
                rem -= self.tree[next];
            }
            step >>= 1;
        }
        Some((idx, rem))
    }

    /// Elements in the chunks before `ci`.
    fn prefix(&self, ci: usize) -> usize {
        let (mut i, mut sum) = (ci, 0);
        while i > 0 {
            sum += self.tree[i];
            i &= i - 1;
        }
        sum
    }

    fn adjust(&mut self, ci: usize, grow: bool) {
        let mut i = ci + 1;
        while i < self.tree.len() {
            if grow {
                self.tree[i] += 1;
            } else {
                self.tree[i] -= 1;
            }
            i += i & i.wrapping_neg();
        }
    }

    fn rebuild(&mut self) {
        self.tree.clear();
        self.tree.resize(self.chunks.len() + 1, 0);
        for (i, c) in self.chunks.iter().enumerate() {
            let j = i + 1;
            self.tree[j] += c.len();
            let parent = j + (j & j.wrapping_neg());
            if parent < self.tree.len() {
                let v = self.tree[j];
                self.tree[parent] += v;
            }
        }
    }
}

impl<T: Ord> PartialEq for Ordered<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Elements arriving in order (ascending, then descending below the
    /// first) fill whole chunks, and the sequence stays right through
    /// middle inserts after.
    #[test]
    fn in_order_inserts_fill_whole_chunks() {
        let mut o = Ordered::new();
        let slots = |o: &Ordered<u32>| o.chunks.iter().map(|c| c.capacity()).sum::<usize>();
        for x in 20_000..30_000u32 {
            assert!(o.insert(x));
        }
        for x in (10_000..20_000u32).rev() {
            assert!(o.insert(x));
        }
        assert!(slots(&o) <= o.len() + 2 * CHUNK_MAX, "{} slots for {}", slots(&o), o.len());
        assert!(o.chunks.iter().all(|c| c.capacity() <= CHUNK_MAX));
        for x in (0..10_000u32).map(|i| 10_000 + (i * 7919) % 20_000) {
            assert!(!o.insert(x));
        }
        for x in (0..10_000u32).map(|i| 30_000 + (i * 7919) % 10_000).chain(0..100) {
            assert!(o.insert(x));
        }
        let v: Vec<u32> = (0..100).chain(10_000..40_000).collect();
        assert_eq!(o.iter().copied().collect::<Vec<_>>(), v);
        assert!(o.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK_MAX));
        for (r, x) in v.iter().enumerate().step_by(101) {
            assert_eq!((o.get(r), o.rank(x)), (Some(x), Some(r)));
        }
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(ops in proptest::collection::vec((any::<bool>(), 0u16..3000), 0..4000)) {
            let mut o = Ordered::new();
            let mut model = BTreeSet::new();
            for (ins, x) in ops {
                if ins {
                    prop_assert_eq!(o.insert(x), model.insert(x));
                } else {
                    prop_assert_eq!(o.remove(&x), model.remove(&x));
                }
            }
            let v: Vec<u16> = model.iter().copied().collect();
            prop_assert_eq!(o.len(), v.len());
            prop_assert_eq!(o.iter().copied().collect::<Vec<_>>(), v.clone());
            for (r, x) in v.iter().enumerate().step_by(37) {
                prop_assert_eq!(o.get(r), Some(x));
                prop_assert_eq!(o.rank(x), Some(r));
                prop_assert_eq!(o.partition_point(|e| e < x), r);
                prop_assert_eq!(o.iter_from(r).copied().collect::<Vec<_>>(), v[r..].to_vec());
                let mut rev: Vec<u16> = v[..=r].to_vec();
                rev.reverse();
                prop_assert_eq!(o.iter_rev_from(r).copied().collect::<Vec<_>>(), rev);
            }
            if let Some(&x) = v.get(v.len() / 2) {
                prop_assert_eq!(o.remove_rank(v.len() / 2), Some(x));
            }
        }
    }

    #[test]
    fn from_sorted_then_edit() {
        let mut o = Ordered::from_sorted((0..2000).map(|i| i * 2).collect());
        assert!(o.insert(1001));
        assert_eq!(o.rank(&1001), Some(501));
        assert_eq!(o.get(1999), Some(&3996));
        assert_eq!(o.iter_rev_from(5000).count(), 0);
    }
}

//! Sorted sets. Members are ordered by (score, member bytes) in an
//! [`Ordered`] sequence, which gives O(log n) ranks in either encoding.
//! The `skiplist` encoding adds a member→score map for O(1) ZSCORE; the
//! `listpack` encoding is the sequence alone (one chunk), searched
//! linearly by member as Redis's listpack is, so a small sorted set costs
//! one allocation. The encoding name is what Redis would report.

use super::ordered::Ordered;
use super::Limits;
use bytes::Bytes;
use indexmap::IndexMap;
use std::cmp::Ordering;

type Dict = IndexMap<Bytes, f64, foldhash::fast::RandomState>;

/// One member and its score. Scores are never NaN; -0 and 0 compare equal
/// and fall back to the member, as in Redis's skiplist.
#[derive(Debug, Clone)]
pub struct ZEntry {
    pub score: f64,
    pub member: Bytes,
}

impl PartialEq for ZEntry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ZEntry {}
impl PartialOrd for ZEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ZEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.partial_cmp(&other.score).unwrap_or(Ordering::Equal).then_with(|| self.member.cmp(&other.member))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZSet {
    order: Ordered<ZEntry>,
    dict: Option<Dict>,
}

impl ZSet {
    /// An empty sorted set in the encoding Redis's `zsetTypeCreate` picks
    /// for about `size_hint` members of at most `max_len` bytes.
    pub fn with_hint(size_hint: usize, max_len: usize, lim: &Limits) -> ZSet {
        let mut z = ZSet::default();
        if size_hint > lim.zset_max_listpack_entries || max_len > lim.zset_max_listpack_value {
            z.dict = Some(Dict::default());
        }
        z
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn encoding(&self) -> &'static str {
        if self.dict.is_some() {
            "skiplist"
        } else {
            "listpack"
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.dict {
            Some(d) => d.get(member).copied(),
            None => self.order.iter().find(|e| e.member == member).map(|e| e.score),
        }
    }

    /// Sets `member`'s score; returns the previous score, if any.
    pub fn insert(&mut self, member: &[u8], score: f64, lim: &Limits) -> Option<f64> {
        let old = self.score(member);
        if let Some(old) = old {
            if old == score && old.is_sign_negative() == score.is_sign_negative() {
                return Some(old);
            }
            let member = Bytes::copy_from_slice(member);
            self.order.remove(&ZEntry { score: old, member: member.clone() });
            if let Some(d) = &mut self.dict {
                d.insert(member.clone(), score);
            }
            self.order.insert(ZEntry { score, member });
            return Some(old);
        }
        if self.dict.is_none()
            && (self.len() + 1 > lim.zset_max_listpack_entries || member.len() > lim.zset_max_listpack_value)
        {
            self.dict = Some(self.order.iter().map(|e| (e.member.clone(), e.score)).collect());
        }
        let member = Bytes::copy_from_slice(member);
        if let Some(d) = &mut self.dict {
            d.insert(member.clone(), score);
        }
        self.order.insert(ZEntry { score, member });
        None
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = match &mut self.dict {
            Some(d) => d.swap_remove(member)?,
            None => self.score(member)?,
        };
        self.order.remove(&ZEntry { score, member: Bytes::copy_from_slice(member) });
        Some(score)
    }

    /// Removes and returns the entry at `rank`.
    pub fn remove_rank(&mut self, rank: usize) -> Option<ZEntry> {
        let e = self.order.remove_rank(rank)?;
        if let Some(d) = &mut self.dict {
            d.swap_remove(&e.member);
        }
        Some(e)
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        self.order.rank(&ZEntry { score, member: Bytes::copy_from_slice(member) })
    }

    pub fn get(&self, rank: usize) -> Option<&ZEntry> {
        self.order.get(rank)
    }

    /// Rank of the first entry for which `pred` is false.
    pub fn partition_point(&self, pred: impl FnMut(&ZEntry) -> bool) -> usize {
        self.order.partition_point(pred)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &ZEntry> + '_ {
        self.order.iter()
    }

    pub fn iter_from(&self, rank: usize) -> impl Iterator<Item = &ZEntry> + '_ {
        self.order.iter_from(rank)
    }

    pub fn iter_rev_from(&self, rank: usize) -> impl Iterator<Item = &ZEntry> + '_ {
        self.order.iter_rev_from(rank)
    }

    /// A member picked by index (0..len), for ZRANDMEMBER.
    pub fn get_index(&self, i: usize) -> Option<(&Bytes, f64)> {
        match &self.dict {
            Some(d) => d.get_index(i).map(|(m, s)| (m, *s)),
            None => self.order.get(i).map(|e| (&e.member, e.score)),
        }
    }

    /// Back to a listpack if a computed result is small enough, as Redis's
    /// `zsetConvertToListpackIfNeeded` does for *STORE destinations.
    pub fn shrink_if_small(&mut self, lim: &Limits) {
        if self.dict.is_some()
            && self.len() <= lim.zset_max_listpack_entries
            && self.iter().all(|e| e.member.len() <= lim.zset_max_listpack_value)
        {
            self.dict = None;
        }
    }

    /// One ZSCAN step: a listpack answers whole with cursor 0.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Bytes, f64)) -> u64 {
        match &self.dict {
            Some(d) => super::hash::scan_indexed(d.len(), cursor, count, |i| {
                let (m, s) = d.get_index(i).expect("index below len");
                visit(m, *s)
            }),
            None => {
                self.order.iter().for_each(|e| visit(&e.member, e.score));
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_converts() {
        let lim = Limits { zset_max_listpack_entries: 3, ..Default::default() };
        let mut z = ZSet::with_hint(1, 1, &lim);
        assert_eq!(z.insert(b"b", 2.0, &lim), None);
        assert_eq!(z.insert(b"a", 2.0, &lim), None);
        assert_eq!(z.insert(b"c", 1.0, &lim), None);
        assert_eq!(z.encoding(), "listpack");
        let order: Vec<_> = z.iter().map(|e| e.member.clone()).collect();
        assert_eq!(order, vec![Bytes::from("c"), "a".into(), "b".into()]);
        assert_eq!(z.rank(b"b"), Some(2));
        z.insert(b"d", 0.5, &lim);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.insert(b"d", 5.0, &lim), Some(0.5));
        assert_eq!(z.rank(b"d"), Some(3));
        assert_eq!(z.remove(b"a"), Some(2.0));
        assert_eq!((z.len(), z.score(b"a")), (3, None));
        z.shrink_if_small(&lim);
        assert_eq!(z.encoding(), "listpack");
    }
}

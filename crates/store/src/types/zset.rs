//! Sorted sets. A small one (`listpack`) is its members and scores
//! packed in one buffer (packed.rs) in (score, member) order, walked as
//! Redis walks its listpack. A large one (`skiplist`) keeps members in an
//! [`Ordered`] sequence, which gives O(log n) ranks, beside a
//! member→score map for O(1) ZSCORE (the keyspace's dense table,
//! table.rs). Readers see entries as [`ZRef`]s,
//! borrowed from either. The encoding name is what Redis would report.

use super::ordered::Ordered;
use super::packed::{Item, Packed};
use super::Limits;
use crate::table::{hash_key, Elem, Keyed, Table};
use std::cmp::Ordering;

/// A large sorted set's member→score map: entries found by member.
/// Members are [`Elem`]s here and in the order, each its own copy (a
/// member of up to 15 bytes inside its handle): a shared `Bytes` took a
/// 32-byte handle in each and a shared header besides.
type Dict = Table<ZEntry>;

impl Keyed for ZEntry {
    fn key(&self) -> &[u8] {
        &self.member
    }
}

/// One member and its score, owned (what ZPOP and the computed sets
/// hand back). Scores are never NaN; -0 and 0 compare equal and fall back
/// to the member, as in Redis's skiplist.
#[derive(Debug, Clone)]
pub struct ZEntry {
    pub score: f64,
    pub member: Elem,
}

impl ZEntry {
    pub fn as_ref(&self) -> ZRef<'_> {
        ZRef { score: self.score, member: &self.member }
    }
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
        self.as_ref().cmp_to(other.as_ref())
    }
}

/// A member and its score as stored, in either encoding.
#[derive(Debug, Clone, Copy)]
pub struct ZRef<'a> {
    pub score: f64,
    pub member: &'a [u8],
}

impl ZRef<'_> {
    /// The sorted set's order: score, then member bytes.
    pub fn cmp_to(&self, other: ZRef<'_>) -> Ordering {
        self.score.partial_cmp(&other.score).unwrap_or(Ordering::Equal).then_with(|| self.member.cmp(other.member))
    }

    pub fn to_owned(&self) -> ZEntry {
        ZEntry { score: self.score, member: Elem::new(self.member) }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Skiplist {
    order: Ordered<ZEntry>,
    dict: Dict,
}

#[derive(Debug, Clone, PartialEq)]
enum Data {
    /// Member, then its score (`score_bytes`), per entry.
    Packed(Packed),
    Skiplist(Box<Skiplist>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZSet {
    data: Data,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet { data: Data::Packed(Packed::default()) }
    }
}

/// A packed entry: its member's item and its score's.
fn read<'a>(m: Item<'a>, s: Item<'a>) -> ZRef<'a> {
    ZRef { score: score_of(s.bytes), member: m.bytes }
}

/// Largest integer magnitude a packed score holds as an integer: seven
/// bytes of two's complement.
const INT_SCORE_MAX: f64 = (1u64 << 55) as f64;

/// A score as packed: a whole number (scores are counts, ranks and
/// timestamps more often than not) in the fewest little-endian two's
/// complement bytes, up to seven (none for 0); anything else, -0
/// included, as the eight bytes of its `f64`. The length tells which.
fn score_bytes(score: f64, out: &mut [u8; 8]) -> &[u8] {
    *out = score.to_le_bytes();
    if score.fract() != 0.0 || score.abs() >= INT_SCORE_MAX || (score == 0.0 && score.is_sign_negative()) {
        return out;
    }
    let i = score as i64;
    *out = i.to_le_bytes();
    // Bytes until the rest is sign extension.
    let bits = 64 - if i < 0 { (!i).leading_zeros() } else { i.leading_zeros() } + (i != 0) as u32;
    &out[..bits.div_ceil(8) as usize]
}

fn score_of(b: &[u8]) -> f64 {
    if let Ok(raw) = <[u8; 8]>::try_from(b) {
        return f64::from_le_bytes(raw);
    }
    let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 };
    let mut raw = [fill; 8];
    raw[..b.len()].copy_from_slice(b);
    i64::from_le_bytes(raw) as f64
}

/// The packed entries in order, with where each lies.
fn packed(p: &Packed) -> impl Iterator<Item = (ZRef<'_>, (usize, usize))> + '_ {
    p.pairs().map(|(m, s)| (read(m, s), (m.span.0, s.span.1)))
}

impl ZSet {
    /// An empty sorted set in the encoding Redis's `zsetTypeCreate` picks
    /// for about `size_hint` members of at most `max_len` bytes.
    pub fn with_hint(size_hint: usize, max_len: usize, lim: &Limits) -> ZSet {
        let mut z = ZSet::default();
        if size_hint > lim.zset_max_listpack_entries || max_len > lim.zset_max_listpack_value {
            z.convert();
        }
        z
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::Packed(p) => p.len() / 2,
            Data::Skiplist(s) => s.order.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self.data {
            Data::Packed(_) => "listpack",
            Data::Skiplist(_) => "skiplist",
        }
    }

    /// Heap bytes of the small encoding's buffer (None for a skiplist).
    pub fn packed_bytes(&self) -> Option<usize> {
        match &self.data {
            Data::Packed(p) => Some(p.allocated()),
            Data::Skiplist(_) => None,
        }
    }

    /// The large encoding's member→score map (None for a listpack).
    pub fn dict(&self) -> Option<&Table<ZEntry>> {
        match &self.data {
            Data::Packed(_) => None,
            Data::Skiplist(s) => Some(&s.dict),
        }
    }

    /// Bytes of the large encoding's boxed order and map, before their
    /// entries (0 for a listpack).
    pub fn skiplist_bytes(&self) -> usize {
        match &self.data {
            Data::Packed(_) => 0,
            Data::Skiplist(_) => std::mem::size_of::<Skiplist>(),
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.data {
            Data::Packed(p) => packed(p).find(|(e, _)| e.member == member).map(|(e, _)| e.score),
            Data::Skiplist(s) => s.dict.get(member).map(|e| e.score),
        }
    }

    fn convert(&mut self) {
        if let Data::Packed(p) = &self.data {
            let entries: Vec<ZEntry> = packed(p).map(|(e, _)| e.to_owned()).collect();
            let mut dict = Dict::with_capacity(entries.len());
            for e in &entries {
                dict.push(hash_key(&e.member), e.clone());
            }
            self.data = Data::Skiplist(Box::new(Skiplist { order: Ordered::from_sorted(entries), dict }));
        }
    }

    /// Sets `member`'s score; returns the previous score, if any.
    pub fn insert(&mut self, member: &[u8], score: f64, lim: &Limits) -> Option<f64> {
        let old = self.score(member);
        if let Some(old) = old {
            if old == score && old.is_sign_negative() == score.is_sign_negative() {
                return Some(old);
            }
            match &mut self.data {
                Data::Packed(_) => {
                    self.remove(member);
                }
                Data::Skiplist(s) => {
                    // The map entry keeps its place: a ZSCAN under way
                    // still meets it.
                    let e = s.dict.get_mut(member).expect("scored above");
                    s.order.remove(e);
                    e.score = score;
                    s.order.insert(e.clone());
                    return Some(old);
                }
            }
        } else if matches!(self.data, Data::Packed(_))
            && (self.len() + 1 > lim.zset_max_listpack_entries || member.len() > lim.zset_max_listpack_value)
        {
            self.convert();
        }
        match &mut self.data {
            Data::Packed(p) => {
                let new = ZRef { score, member };
                let at =
                    packed(p).find(|(e, _)| e.cmp_to(new) == Ordering::Greater).map_or(p.end(), |(_, span)| span.0);
                p.insert_at(at, &[member, score_bytes(score, &mut [0; 8])]);
            }
            Data::Skiplist(s) => {
                let e = ZEntry { score, member: Elem::new(member) };
                s.dict.push(hash_key(member), e.clone());
                s.order.insert(e);
            }
        }
        old
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.data {
            Data::Packed(p) => {
                let (e, span) = packed(p).find(|(e, _)| e.member == member)?;
                let score = e.score;
                p.remove(span.0..span.1, 2);
                Some(score)
            }
            Data::Skiplist(s) => {
                let e = s.dict.remove(member)?;
                s.order.remove(&e);
                Some(e.score)
            }
        }
    }

    /// Removes and returns the entry at `rank`.
    pub fn remove_rank(&mut self, rank: usize) -> Option<ZEntry> {
        match &mut self.data {
            Data::Packed(p) => {
                let (e, span) = packed(p).nth(rank)?;
                let e = e.to_owned();
                p.remove(span.0..span.1, 2);
                Some(e)
            }
            Data::Skiplist(s) => {
                let e = s.order.remove_rank(rank)?;
                s.dict.remove(&e.member);
                Some(e)
            }
        }
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.data {
            Data::Packed(p) => packed(p).position(|(e, _)| e.member == member),
            Data::Skiplist(s) => {
                let e = s.dict.get(member)?;
                s.order.rank(e)
            }
        }
    }

    pub fn get(&self, rank: usize) -> Option<ZRef<'_>> {
        match &self.data {
            Data::Packed(p) => packed(p).nth(rank).map(|(e, _)| e),
            Data::Skiplist(s) => s.order.get(rank).map(ZEntry::as_ref),
        }
    }

    /// Rank of the first entry for which `pred` is false.
    pub fn partition_point(&self, mut pred: impl FnMut(ZRef<'_>) -> bool) -> usize {
        match &self.data {
            Data::Packed(p) => packed(p).take_while(|(e, _)| pred(*e)).count(),
            Data::Skiplist(s) => s.order.partition_point(|e| pred(e.as_ref())),
        }
    }

    pub fn iter(&self) -> Box<dyn DoubleEndedIterator<Item = ZRef<'_>> + '_> {
        match &self.data {
            // A listpack is walked forwards only; a reverse walk of a small
            // set reads it once into a vector.
            Data::Packed(p) => Box::new(packed(p).map(|(e, _)| e).collect::<Vec<_>>().into_iter()),
            Data::Skiplist(s) => Box::new(s.order.iter().map(ZEntry::as_ref)),
        }
    }

    pub fn iter_from(&self, rank: usize) -> Box<dyn Iterator<Item = ZRef<'_>> + '_> {
        match &self.data {
            Data::Packed(p) => Box::new(packed(p).skip(rank).map(|(e, _)| e)),
            Data::Skiplist(s) => Box::new(s.order.iter_from(rank).map(ZEntry::as_ref)),
        }
    }

    pub fn iter_rev_from(&self, rank: usize) -> Box<dyn Iterator<Item = ZRef<'_>> + '_> {
        match &self.data {
            Data::Packed(p) => {
                // Past the end is nothing, as in the skiplist.
                let upto: Vec<ZRef<'_>> =
                    if rank < self.len() { packed(p).take(rank + 1).map(|(e, _)| e).collect() } else { vec![] };
                Box::new(upto.into_iter().rev())
            }
            Data::Skiplist(s) => Box::new(s.order.iter_rev_from(rank).map(ZEntry::as_ref)),
        }
    }

    /// A member picked by index (0..len), for ZRANDMEMBER.
    pub fn get_index(&self, i: usize) -> Option<(&[u8], f64)> {
        match &self.data {
            Data::Packed(_) => self.get(i).map(|e| (e.member, e.score)),
            Data::Skiplist(s) => s.dict.get_index(i).map(|e| (&e.member[..], e.score)),
        }
    }

    /// Visits the entries at the positions `at` yields (each below len),
    /// in its order, as picked by index ([`Self::get_index`]); the small
    /// encoding is walked once, whatever their count.
    pub fn pick<'z>(&'z self, at: impl Iterator<Item = usize>, mut visit: impl FnMut(ZRef<'z>)) {
        match &self.data {
            Data::Packed(p) => {
                let all: Vec<ZRef<'z>> = packed(p).map(|(e, _)| e).collect();
                at.for_each(|i| visit(all[i]));
            }
            Data::Skiplist(s) => at.for_each(|i| visit(s.dict.get_index(i).expect("index below len").as_ref())),
        }
    }

    /// Back to a listpack if a computed result is small enough, as Redis's
    /// `zsetConvertToListpackIfNeeded` does for *STORE destinations.
    pub fn shrink_if_small(&mut self, lim: &Limits) {
        if let Data::Skiplist(s) = &self.data {
            if s.order.len() <= lim.zset_max_listpack_entries
                && s.order.iter().all(|e| e.member.len() <= lim.zset_max_listpack_value)
            {
                let mut p = Packed::default();
                for e in s.order.iter() {
                    p.push(&[&e.member, score_bytes(e.score, &mut [0; 8])]);
                }
                self.data = Data::Packed(p);
            }
        }
    }

    /// One ZSCAN step: a listpack answers whole with cursor 0.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8], f64)) -> u64 {
        match &self.data {
            Data::Skiplist(s) => super::hash::scan_indexed(s.dict.len(), cursor, count, |i| {
                let e = s.dict.get_index(i).expect("index below len");
                visit(&e.member, e.score)
            }),
            Data::Packed(p) => {
                packed(p).for_each(|(e, _)| visit(e.member, e.score));
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_pack_whole_numbers_short_and_read_back_exactly() {
        let cases: [(f64, usize); 14] = [
            (0.0, 0),
            (1.0, 1),
            (-1.0, 1),
            (127.0, 1),
            (128.0, 2),
            (-128.0, 1),
            (-129.0, 2),
            (12_345.0, 2),
            (1_733_400_000_000.0, 6),
            ((1u64 << 53) as f64, 7),
            (-INT_SCORE_MAX, 8),
            (INT_SCORE_MAX, 8),
            (-0.0, 8),
            (0.5, 8),
        ];
        for (score, len) in cases {
            let mut buf = [0; 8];
            let b = score_bytes(score, &mut buf);
            assert_eq!(b.len(), len, "{score}");
            let back = score_of(b);
            assert_eq!((back, back.is_sign_negative()), (score, score.is_sign_negative()), "{score}");
        }
        for score in [f64::INFINITY, f64::NEG_INFINITY, 1e300, -2.5e-300] {
            assert_eq!(score_of(score_bytes(score, &mut [0; 8])), score);
        }
    }

    #[test]
    fn orders_and_converts() {
        let lim = Limits { zset_max_listpack_entries: 3, ..Default::default() };
        let mut z = ZSet::with_hint(1, 1, &lim);
        assert_eq!(z.insert(b"b", 2.0, &lim), None);
        assert_eq!(z.insert(b"a", 2.0, &lim), None);
        assert_eq!(z.insert(b"c", 1.0, &lim), None);
        assert_eq!(z.encoding(), "listpack");
        let order: Vec<_> = z.iter().map(|e| e.member.to_vec()).collect();
        assert_eq!(order, [b"c".to_vec(), b"a".to_vec(), b"b".to_vec()]);
        let rev: Vec<_> = z.iter_rev_from(1).map(|e| e.member.to_vec()).collect();
        assert_eq!(rev, [b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(z.iter_rev_from(3).count(), 0);
        assert_eq!(z.partition_point(|e| e.score < 2.0), 1);
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

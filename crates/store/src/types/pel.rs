//! Ordered maps and sets of stream IDs for consumer groups' pending
//! entries lists (PEL): a group's, from ID to its delivery record, and
//! each consumer's, of the IDs it holds.
//!
//! Why not `BTreeMap`/`BTreeSet` (what these replaced): deliveries arrive
//! in ID order, and a B-tree filled in order leaves its leaves a little
//! over half full, so a pending entry cost 168 bytes (the group's slot and
//! the consumer's, each about twice its size) to Redis's 84. Here entries
//! sit in sorted chunks of up to [`CHUNK`], found through a B-tree of
//! their first IDs; an ID past the last chunk's end starts a new chunk
//! when that one is full, so chunks filled in order are full, and a chunk
//! full elsewhere splits in two. Lookups are a B-tree step and a binary
//! search in one chunk; acknowledging in any order moves at most a
//! chunk's entries.
//!
//! Sorted sets' `Ordered` (ordered.rs) fills chunks the same way but is
//! built for ranks: a Fenwick tree over 512-entry chunks, no lookup or
//! replacement by key. A PEL is looked up by ID on every XACK and XCLAIM
//! and never by rank, and a 512-entry chunk of 64-byte entries would make
//! an out-of-order XACK move up to 32 KB; hence a keyed map of its own.
//!
//! The invariant the lookups rest on: every entry of the chunk keyed `k`
//! lies in `[k, next chunk's key)`. A chunk's key stays when its first
//! entry goes (still below what is left), and becomes the new first when
//! an ID below every key arrives.

use super::stream::StreamId;
use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

/// Entries a chunk holds at most: a 4 KB `Vec` of the group's 64-byte
/// entries, grown by doubling to exactly this.
pub const CHUNK: usize = 64;

/// An ordered map from stream IDs.
#[derive(Debug, Clone, PartialEq)]
pub struct IdMap<V> {
    chunks: BTreeMap<StreamId, Vec<(StreamId, V)>>,
    len: usize,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap { chunks: BTreeMap::new(), len: 0 }
    }
}

impl<V> IdMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Bytes on the heap: each chunk's allocation and its slot in the
    /// B-tree of chunks (its key and vector, in leaves about half full).
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(StreamId, V)>();
        self.chunks.values().map(|c| crate::memsize::size_class(c.capacity() * entry) + 80).sum()
    }

    /// The key of the chunk `id` belongs in, if there is any chunk.
    fn chunk_for(&self, id: StreamId) -> Option<StreamId> {
        self.chunks.range(..=id).next_back().or_else(|| self.chunks.first_key_value()).map(|(k, _)| *k)
    }

    pub fn get(&self, id: &StreamId) -> Option<&V> {
        let (_, chunk) = self.chunks.range(..=*id).next_back()?;
        chunk.binary_search_by_key(id, |e| e.0).ok().map(|i| &chunk[i].1)
    }

    pub fn get_mut(&mut self, id: &StreamId) -> Option<&mut V> {
        let (_, chunk) = self.chunks.range_mut(..=*id).next_back()?;
        chunk.binary_search_by_key(id, |e| e.0).ok().map(|i| &mut chunk[i].1)
    }

    pub fn contains_key(&self, id: &StreamId) -> bool {
        self.get(id).is_some()
    }

    /// Inserts or replaces; the value replaced, as `BTreeMap::insert`.
    pub fn insert(&mut self, id: StreamId, value: V) -> Option<V> {
        let Some(key) = self.chunk_for(id) else {
            self.chunks.insert(id, vec![(id, value)]);
            self.len = 1;
            return None;
        };
        let chunk = self.chunks.get_mut(&key).expect("found a moment ago");
        let at = match chunk.binary_search_by_key(&id, |e| e.0) {
            Ok(i) => return Some(std::mem::replace(&mut chunk[i].1, value)),
            Err(at) => at,
        };
        self.len += 1;
        if chunk.len() < CHUNK {
            chunk.insert(at, (id, value));
            if id < key {
                // Below every key: the first chunk takes it and its key.
                let chunk = self.chunks.remove(&key).expect("there");
                self.chunks.insert(id, chunk);
            }
            return None;
        }
        if at == CHUNK {
            // Past a full chunk's end (and, as it was routed here, before
            // the next chunk's key): a chunk of its own, so chunks filled
            // in order stay full.
            self.chunks.insert(id, vec![(id, value)]);
            return None;
        }
        let mut right = chunk.split_off(CHUNK / 2);
        let right_key = right[0].0;
        if id < right_key {
            chunk.insert(at, (id, value));
            if id < key {
                let chunk = self.chunks.remove(&key).expect("there");
                self.chunks.insert(id, chunk);
            }
        } else {
            right.insert(at - CHUNK / 2, (id, value));
        }
        self.chunks.insert(right_key, right);
        None
    }

    pub fn remove(&mut self, id: &StreamId) -> Option<V> {
        let (&key, chunk) = self.chunks.range_mut(..=*id).next_back()?;
        let i = chunk.binary_search_by_key(id, |e| e.0).ok()?;
        let (_, value) = chunk.remove(i);
        self.len -= 1;
        if chunk.is_empty() {
            self.chunks.remove(&key);
        } else if chunk.len() * 4 <= chunk.capacity() {
            // Acknowledged down to a quarter: give back half.
            chunk.shrink_to(chunk.len() * 2);
        }
        Some(value)
    }

    /// Entries in ID order (either way).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&StreamId, &V)> + '_ {
        self.chunks.values().flat_map(|c| c.iter().map(|(id, v)| (id, v)))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &StreamId> + '_ {
        self.iter().map(|(id, _)| id)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Entries whose IDs lie in `range`, in order.
    pub fn range<R: RangeBounds<StreamId>>(&self, range: R) -> impl Iterator<Item = (&StreamId, &V)> + '_ {
        let from = match range.start_bound() {
            Bound::Included(s) | Bound::Excluded(s) => self.chunks.range(..=*s).next_back().map(|(k, _)| *k),
            Bound::Unbounded => None,
        };
        let chunks = match from {
            Some(k) => self.chunks.range(k..),
            None => self.chunks.range(..),
        };
        let (start, end) = (range.start_bound().cloned(), range.end_bound().cloned());
        let after_start = move |id: &StreamId| match start {
            Bound::Included(s) => *id >= s,
            Bound::Excluded(s) => *id > s,
            Bound::Unbounded => true,
        };
        let before_end = move |id: &StreamId| match end {
            Bound::Included(e) => *id <= e,
            Bound::Excluded(e) => *id < e,
            Bound::Unbounded => true,
        };
        chunks
            .flat_map(|(_, c)| c.iter().map(|(id, v)| (id, v)))
            .skip_while(move |(id, _)| !after_start(id))
            .take_while(move |(id, _)| before_end(id))
    }
}

impl<V> std::ops::Index<&StreamId> for IdMap<V> {
    type Output = V;
    fn index(&self, id: &StreamId) -> &V {
        self.get(id).expect("an ID the map holds")
    }
}

impl<'a, V> IntoIterator for &'a IdMap<V> {
    type Item = (&'a StreamId, &'a V);
    type IntoIter = Box<dyn Iterator<Item = (&'a StreamId, &'a V)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// An ordered set of stream IDs: an [`IdMap`] of nothing, 16 bytes an ID.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdSet(IdMap<()>);

impl IdSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear()
    }

    pub fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }

    pub fn contains(&self, id: &StreamId) -> bool {
        self.0.contains_key(id)
    }

    /// True if it was not there.
    pub fn insert(&mut self, id: StreamId) -> bool {
        self.0.insert(id, ()).is_none()
    }

    /// True if it was there.
    pub fn remove(&mut self, id: &StreamId) -> bool {
        self.0.remove(id).is_some()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &StreamId> + '_ {
        self.0.keys()
    }

    pub fn range<R: RangeBounds<StreamId>>(&self, range: R) -> impl Iterator<Item = &StreamId> + '_ {
        self.0.range(range).map(|(id, _)| id)
    }
}

impl<'a> IntoIterator for &'a IdSet {
    type Item = &'a StreamId;
    type IntoIter = Box<dyn Iterator<Item = &'a StreamId> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl FromIterator<StreamId> for IdSet {
    fn from_iter<I: IntoIterator<Item = StreamId>>(ids: I) -> Self {
        let mut set = IdSet::new();
        for id in ids {
            set.insert(id);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn id(n: u64) -> StreamId {
        StreamId::new(n / 4, n % 4)
    }

    /// Chunks' entries sorted, within their key's span, none empty.
    fn well_formed<V>(m: &IdMap<V>) -> bool {
        let keys: Vec<StreamId> = m.chunks.keys().copied().collect();
        m.chunks.iter().enumerate().all(|(i, (k, c))| {
            !c.is_empty()
                && c.len() <= CHUNK
                && c.windows(2).all(|w| w[0].0 < w[1].0)
                && c[0].0 >= *k
                && keys.get(i + 1).is_none_or(|next| c[c.len() - 1].0 < *next)
        }) && m.chunks.values().map(Vec::len).sum::<usize>() == m.len
    }

    #[test]
    fn entries_delivered_in_order_fill_their_chunks() {
        let mut m = IdMap::new();
        for n in 0..10 * CHUNK as u64 {
            m.insert(id(n), n);
        }
        assert_eq!(m.chunks.len(), 10);
        assert!(m.chunks.values().all(|c| c.len() == CHUNK && c.capacity() == CHUNK));
        assert!(well_formed(&m));
    }

    proptest::proptest! {
        /// Any run of inserts, removals and reads agrees with a BTreeMap.
        #[test]
        fn an_id_map_reads_as_a_btreemap(ops in proptest::collection::vec((0..4u8, 0..600u64, 0..600u64), 1..600)) {
            use proptest::prop_assert_eq;
            let (mut m, mut model) = (IdMap::new(), BTreeMap::new());
            for (op, a, b) in ops {
                match op {
                    0 | 1 => prop_assert_eq!(m.insert(id(a), b), model.insert(id(a), b)),
                    2 => prop_assert_eq!(m.remove(&id(a)), model.remove(&id(a))),
                    _ => {
                        let (lo, hi) = (id(a.min(b)), id(a.max(b)));
                        let got: Vec<_> = m.range(lo..=hi).map(|(k, v)| (*k, *v)).collect();
                        let want: Vec<_> = model.range(lo..=hi).map(|(k, v)| (*k, *v)).collect();
                        prop_assert_eq!(got, want);
                        let got: Vec<_> = m.range((Bound::Excluded(lo), Bound::Unbounded)).map(|(k, _)| *k).collect();
                        let want: Vec<_> = model.range((Bound::Excluded(lo), Bound::Unbounded)).map(|(k, _)| *k).collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(m.get(&id(a)), model.get(&id(a)));
                prop_assert_eq!(m.len(), model.len());
                proptest::prop_assert!(well_formed(&m));
            }
            let got: Vec<_> = m.iter().rev().map(|(k, v)| (*k, *v)).collect();
            let want: Vec<_> = model.iter().rev().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(got, want);
        }
    }
}

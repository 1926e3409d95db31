//! Streams: entries ordered by ID, and consumer groups with their pending
//! entries lists (PEL).
//!
//! Redis keeps entries in a radix tree of listpack "nodes" of up to
//! stream-node-max-entries (100). We keep a `BTreeMap` (ordered, O(log n)
//! ranges) and remember the node each entry was appended to instead,
//! which is all approximate (`~`) trimming needs to remove whole nodes the
//! way Redis does; the RDB writer emits those same nodes. The byte limit
//! of a node (stream-node-max-bytes) is not modelled, so with large
//! entries Redis's nodes are smaller and `~` trims a little earlier there.
//!
//! The group bookkeeping (entries-read, lag, tombstones) follows Redis 7's
//! t_stream.c so XINFO reports the same numbers.

use super::packed::Packed;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// stream-node-max-entries's default.
pub const NODE_ENTRIES: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        *self == StreamId::MIN
    }

    /// The next ID, or None past the maximum.
    pub fn incr(&self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The previous ID, or None below the minimum.
    pub fn decr(&self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_sub(1).map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry: its fields and values packed in one buffer (packed.rs), a
/// varint length before each. As a vector of `Bytes` (what this replaced)
/// an entry of three short pairs took a 24-byte vector, 192 bytes of
/// handles and an allocation per field: 355 bytes an entry in all, to
/// Redis's 31; packed, one allocation of about their bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// field, value, field, value…
    fields: Packed,
    /// The node it was appended to (numbered from 0 in append order).
    pub node: u64,
}

impl Entry {
    fn new<F: AsRef<[u8]>>(fields: &[F], node: u64) -> Entry {
        let mut packed = Packed::default();
        packed.push(fields);
        Entry { fields: packed, node }
    }

    /// Field, value, field, value…
    pub fn fields(&self) -> impl Iterator<Item = &[u8]> + Clone + '_ {
        self.fields.iter().map(|i| i.bytes)
    }

    /// How many fields and values (the buffer's count).
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// Bytes the packed fields hold on the heap.
    pub fn allocated(&self) -> usize {
        self.fields.allocated()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub consumer: Bytes,
    /// ms timestamp of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Consumer {
    /// Last time the consumer was seen (any interaction), ms.
    pub seen_time: u64,
    /// Last successful read or claim, ms (0: never).
    pub active_time: u64,
    pub pel: BTreeSet<StreamId>,
}

/// "Unknown" for a group's entries-read counter.
pub const INVALID_ENTRIES_READ: i64 = -1;

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// The consumer `name`, created if missing; true if it was created.
    pub fn consumer(&mut self, name: &[u8], now: u64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self.consumers.entry(Bytes::copy_from_slice(name)).or_insert_with(|| Consumer {
            seen_time: now,
            active_time: 0,
            pel: BTreeSet::new(),
        });
        (c, created)
    }

    /// Removes `id` from the PEL and from its consumer's list.
    pub fn ack(&mut self, id: &StreamId) -> bool {
        match self.pel.remove(id) {
            Some(p) => {
                if let Some(c) = self.consumers.get_mut(&p.consumer) {
                    c.pel.remove(id);
                }
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    pub entries: BTreeMap<StreamId, Entry>,
    pub last_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub first_id: StreamId,
    pub groups: BTreeMap<Bytes, Group>,
    /// Entries appended to the newest node (deleted ones included, as a
    /// listpack keeps them until the node goes).
    tail_len: u64,
    tail_node: u64,
}

/// How XADD and XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ID `*` would give now.
    pub fn next_auto_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.incr()
        }
    }

    /// Appends an entry; the caller has checked that `id` > last_id. A
    /// new node starts once the newest holds `node_max` entries (0: no
    /// limit), as stream-node-max-entries rules.
    pub fn add<F: AsRef<[u8]>>(&mut self, id: StreamId, fields: &[F], node_max: u64) {
        let full = node_max > 0 && self.tail_len >= node_max;
        self.append(id, fields, full);
    }

    /// Appends an entry, in a new node if `new_node` (a loader keeps the
    /// nodes of the file it reads).
    pub fn append<F: AsRef<[u8]>>(&mut self, id: StreamId, fields: &[F], new_node: bool) {
        // An emptied stream has no node left to append to.
        if new_node || self.entries.is_empty() {
            if self.tail_len > 0 || !self.entries.is_empty() {
                self.tail_node += 1;
            }
            self.tail_len = 0;
        }
        let node = self.tail_node;
        self.tail_len += 1;
        self.entries_added += 1;
        self.entries.insert(id, Entry::new(fields, node));
        if self.entries.len() == 1 {
            self.first_id = id;
        }
        self.last_id = id;
    }

    fn refresh_first(&mut self) {
        self.first_id = self.entries.keys().next().copied().unwrap_or(StreamId::MIN);
    }

    /// XDEL of one ID; true if it existed.
    pub fn delete(&mut self, id: &StreamId) -> bool {
        if self.entries.remove(id).is_none() {
            return false;
        }
        if *id > self.max_deleted_id {
            self.max_deleted_id = *id;
        }
        if *id == self.first_id {
            self.refresh_first();
        }
        true
    }

    /// Trims; `approx` removes whole nodes only, at most `limit` entries
    /// (0: no limit). Returns the number of entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        while let Some((&first, e)) = self.entries.iter().next() {
            let over = match how {
                Trim::MaxLen(n) => self.entries.len() as u64 > n,
                Trim::MinId(min) => first < min,
            };
            if !over {
                break;
            }
            if !approx {
                if limit != 0 && removed >= limit {
                    break;
                }
                self.entries.remove(&first);
                removed += 1;
                continue;
            }
            // A whole node: every live entry sharing the head's node.
            let node = e.node;
            let ids: Vec<StreamId> =
                self.entries.iter().take_while(|(_, e)| e.node == node).map(|(id, _)| *id).collect();
            let fits = match how {
                Trim::MaxLen(n) => self.entries.len() as u64 - ids.len() as u64 >= n,
                Trim::MinId(min) => ids.last().is_some_and(|last| *last < min),
            };
            // Redis also stops before a node that would pass the limit.
            if !fits || (limit != 0 && removed + ids.len() as u64 > limit) {
                break;
            }
            for id in &ids {
                self.entries.remove(id);
            }
            removed += ids.len() as u64;
        }
        if removed > 0 {
            self.refresh_first();
        }
        removed
    }

    /// Entries in [start, end], ascending (or descending if `rev`).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (&StreamId, &Entry)> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        let r = self.entries.range(start..=end);
        if rev {
            Box::new(r.rev())
        } else {
            Box::new(r)
        }
    }

    pub fn get(&self, id: &StreamId) -> Option<&Entry> {
        self.entries.get(id)
    }

    pub fn first(&self) -> Option<(&StreamId, &Entry)> {
        self.entries.iter().next()
    }

    pub fn last(&self) -> Option<(&StreamId, &Entry)> {
        self.entries.iter().next_back()
    }

    /// Whether the latest tombstone lies in [start, end].
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.entries.is_empty() || self.max_deleted_id.is_zero() || self.first_id > self.max_deleted_id {
            return false;
        }
        let (s, e) = (start.unwrap_or(StreamId::MIN), end.unwrap_or(StreamId::MAX));
        s <= self.max_deleted_id && self.max_deleted_id <= e
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the logical
    /// read counter of `id`, or INVALID_ENTRIES_READ.
    pub fn estimate_distance(&self, id: &StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.entries.is_empty() && *id <= self.last_id {
            return self.entries_added as i64;
        }
        if *id == self.last_id {
            return self.entries_added as i64;
        }
        if *id > self.last_id {
            return INVALID_ENTRIES_READ;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if *id < self.first_id {
                return (self.entries_added - self.entries.len() as u64) as i64;
            }
            if *id == self.first_id {
                return (self.entries_added - self.entries.len() as u64 + 1) as i64;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag (XINFO GROUPS), None when it cannot be known.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(Some(g.last_id), None) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let read = self.estimate_distance(&g.last_id);
        (read != INVALID_ENTRIES_READ).then(|| self.entries_added as i64 - read)
    }

    /// Moves a group's last-delivered ID forward past `id`, keeping its
    /// entries-read counter as Redis does.
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let valid_and_clean = {
            let g = &self.groups[group];
            g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(Some(id), None)
        };
        let estimate =
            if valid_and_clean || self.entries_added == 0 { None } else { Some(self.estimate_distance(&id)) };
        let g = self.groups.get_mut(group).expect("group exists");
        if id <= g.last_id {
            return;
        }
        if valid_and_clean {
            g.entries_read += 1;
        } else if let Some(e) = estimate {
            g.entries_read = e;
        }
        g.last_id = id;
    }

    /// Radix-tree figures for XINFO STREAM, as if each node were one key.
    pub fn node_count(&self) -> usize {
        let mut nodes: Vec<u64> = self.entries.values().map(|e| e.node).collect();
        nodes.dedup();
        nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_n(s: &mut Stream, n: u64) {
        for i in 0..n {
            let id = StreamId::new(1, s.entries_added + i);
            s.add(id, &[b"f", b"v"], NODE_ENTRIES);
        }
    }

    #[test]
    fn approximate_trim_removes_whole_nodes() {
        let mut s = Stream::default();
        for i in 1..=250 {
            s.add::<&[u8]>(StreamId::new(1, i), &[], NODE_ENTRIES);
        }
        assert_eq!(s.trim(Trim::MaxLen(180), true, 0), 0);
        assert_eq!(s.trim(Trim::MaxLen(150), true, 0), 100);
        assert_eq!(s.len(), 150);
        assert_eq!(s.first_id, StreamId::new(1, 101));
        assert_eq!(s.trim(Trim::MaxLen(10), false, 0), 140);
        assert_eq!(s.first_id, StreamId::new(1, 241));
    }

    #[test]
    fn lag_follows_redis() {
        let mut s = Stream::default();
        add_n(&mut s, 5);
        s.groups.insert(Bytes::from_static(b"g"), Group::new(StreamId::MIN, INVALID_ENTRIES_READ));
        let g = &s.groups[&b"g"[..]];
        assert_eq!(s.lag(g), Some(5));
        let first = s.first_id;
        s.advance_group(b"g", first);
        assert_eq!(s.groups[&b"g"[..]].entries_read, 1);
        assert_eq!(s.lag(&s.groups[&b"g"[..]]), Some(4));
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
    }
}

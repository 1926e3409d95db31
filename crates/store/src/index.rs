//! A table's hash index: for each slot of the table's dense vector, its
//! position, found by the key's hash. Open addressing in one allocation:
//! a tag byte per bucket, then the positions (`u16`, or `u32` once a table
//! passes 65,536 slots).
//!
//! Why not hashbrown's `HashTable` (what this replaced): its bucket count
//! is a power of two and it fills seven in eight, so its load swings
//! between 0.44 and 0.875 as a table grows, and its 16 trailing control
//! bytes push a full-sized index just past a size class. A keyspace of a
//! million keys sits at the low end of that swing: about 980 keys a
//! shard, 2,048 buckets, 6,160 bytes in a 7 KB class, 7.3 bytes a key.
//! Here the bucket count is any number that fills the allocation's size
//! class, and the index grows by a quarter when seven buckets in eight are
//! taken, so its load stays between about 0.6 (just rebuilt, the class's
//! spare room included) and 0.875: 3.4 to 5 bytes a key at any table
//! size, 3.7 at a million keys.
//!
//! The probe is hashbrown's design, on sixteen buckets at a time read as
//! one `u128` (bit tricks, no SIMD intrinsics, no unsafe): a full bucket's
//! tag is the hash's top seven bits with the high bit set, so one pass
//! over a group finds both the candidate tags and the empty buckets. A
//! search walks groups from the key's home bucket and stops after the
//! first group with an empty bucket; an insert takes the first free
//! bucket of the first group that has one. A removal leaves a tombstone
//! only when some search may have passed the bucket (it lies in a run of
//! sixteen or more taken buckets, hashbrown's rule), else an empty
//! bucket, so at these loads most removals leave none. The home bucket
//! comes from the hash's low 32 bits by multiplication (any bucket count
//! works); the tag from the top seven. The keyspace picks a key's shard
//! from bits 32 and up of the same hash (keyspace.rs), below the tag's,
//! so the keys of one shard still differ in both.

/// A bucket no key has used since the last rebuild: a search stops at
/// its group.
const EMPTY: u8 = 0;
/// A bucket whose key left while searches may pass over it.
const DELETED: u8 = 1;
/// Buckets read at once.
const GROUP: usize = 16;
const LO: u128 = u128::from_le_bytes([0x01; GROUP]);
const LOW7: u128 = u128::from_le_bytes([0x7f; GROUP]);
const HIGH: u128 = u128::from_le_bytes([0x80; GROUP]);

/// The high bit of each byte of `x` that is zero (exact: no carry
/// crosses bytes, so a byte after a zero is never reported).
#[inline]
fn zero_bytes(x: u128) -> u128 {
    !(((x & LOW7) + LOW7) | x) & HIGH
}

/// A full bucket's tag: never [`EMPTY`] or [`DELETED`].
#[inline]
fn tag_of(hash: u64) -> u8 {
    0x80 | (hash >> 57) as u8
}

#[derive(Clone, Default)]
pub(crate) struct Index {
    /// `buckets` tags and the first `GROUP - 1` again (so a group read
    /// near the end need not wrap), then `buckets` positions of
    /// [`Self::width`] bytes, little-endian.
    buf: Box<[u8]>,
    buckets: usize,
    wide: bool,
    /// Full buckets.
    live: usize,
    /// Full and deleted buckets: what a search may have to pass.
    used: usize,
}

impl Index {
    /// An index for `want` positions, `u32` ones if `wide`, with as many
    /// buckets as fill its allocation.
    pub(crate) fn with_capacity(want: usize, wide: bool) -> Index {
        let buckets = Index::buckets_for(want, wide);
        let per = 1 + if wide { 4 } else { 2 };
        let bytes = if buckets == 0 { 0 } else { buckets * per + GROUP - 1 };
        Index { buf: vec![0; bytes].into_boxed_slice(), buckets, wide, live: 0, used: 0 }
    }

    /// Buckets of an index for `want` positions: at least eight for
    /// every seven, and as many more as the allocation's class holds.
    fn buckets_for(want: usize, wide: bool) -> usize {
        if want == 0 {
            return 0;
        }
        let per = 1 + if wide { 4 } else { 2 };
        let least = GROUP.max(want + want / 7 + 1);
        (crate::table::fit_for::<u8>(least * per + GROUP - 1) - (GROUP - 1)) / per
    }

    /// Whether an index for `want` positions would be much smaller than
    /// this one (a quarter or more).
    pub(crate) fn oversized_for(&self, want: usize) -> bool {
        Index::buckets_for(want, self.wide) < self.buckets * 3 / 4
    }

    /// An index of `entries` (hash, position), sized for `want`.
    pub(crate) fn build(want: usize, wide: bool, entries: impl Iterator<Item = (u64, usize)>) -> Index {
        let mut index = Index::with_capacity(want, wide);
        for (hash, pos) in entries {
            index.insert(hash, pos);
        }
        index
    }

    /// Positions it holds before an insert needs a rebuild.
    pub(crate) fn capacity(&self) -> usize {
        self.buckets - self.buckets / 8
    }

    /// Whether the next insert needs a rebuild first (the buckets a
    /// search may pass would reach seven in eight).
    pub(crate) fn is_full(&self) -> bool {
        self.used >= self.capacity()
    }

    pub(crate) fn is_wide(&self) -> bool {
        self.wide
    }

    /// Bytes allocated.
    pub(crate) fn allocated(&self) -> usize {
        self.buf.len()
    }

    fn width(&self) -> usize {
        if self.wide {
            4
        } else {
            2
        }
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((hash as u32 as u64 * self.buckets as u64) >> 32) as usize
    }

    #[inline]
    fn group(&self, at: usize) -> u128 {
        u128::from_le_bytes(self.buf[at..at + GROUP].try_into().expect("a group"))
    }

    #[inline]
    fn pos(&self, bucket: usize) -> usize {
        let at = self.buckets + GROUP - 1 + bucket * self.width();
        if self.wide {
            u32::from_le_bytes(self.buf[at..at + 4].try_into().expect("four bytes")) as usize
        } else {
            u16::from_le_bytes(self.buf[at..at + 2].try_into().expect("two bytes")) as usize
        }
    }

    fn set_pos(&mut self, bucket: usize, pos: usize) {
        let at = self.buckets + GROUP - 1 + bucket * self.width();
        if self.wide {
            let pos = u32::try_from(pos).expect("a table holds under 2^32 slots");
            self.buf[at..at + 4].copy_from_slice(&pos.to_le_bytes());
        } else {
            let pos = u16::try_from(pos).expect("a narrow index holds positions under 65,536");
            self.buf[at..at + 2].copy_from_slice(&pos.to_le_bytes());
        }
    }

    fn set_tag(&mut self, bucket: usize, tag: u8) {
        self.buf[bucket] = tag;
        if bucket < GROUP - 1 {
            self.buf[self.buckets + bucket] = tag;
        }
    }

    /// The bucket of the group byte whose high bit is `bit`, in the group
    /// that starts at `at`.
    #[inline]
    fn wrap(&self, at: usize, bit: u32) -> usize {
        let b = at + (bit / 8) as usize;
        if b >= self.buckets {
            b - self.buckets
        } else {
            b
        }
    }

    /// The bucket of a position whose key hashes to `hash` and which `is`
    /// accepts.
    #[inline]
    fn find_bucket(&self, hash: u64, mut is: impl FnMut(usize) -> bool) -> Option<usize> {
        if self.buckets == 0 {
            return None;
        }
        let tag = LO * tag_of(hash) as u128;
        let mut at = self.home(hash);
        let mut passed = 0;
        loop {
            let g = self.group(at);
            let mut hits = zero_bytes(g ^ tag);
            while hits != 0 {
                let b = self.wrap(at, hits.trailing_zeros());
                if is(self.pos(b)) {
                    return Some(b);
                }
                hits &= hits - 1;
            }
            passed += GROUP;
            if zero_bytes(g) != 0 || passed >= self.buckets {
                return None;
            }
            at += GROUP;
            if at >= self.buckets {
                at -= self.buckets;
            }
        }
    }

    /// The position whose key hashes to `hash` and which `is` accepts.
    #[inline]
    pub(crate) fn find(&self, hash: u64, is: impl FnMut(usize) -> bool) -> Option<usize> {
        self.find_bucket(hash, is).map(|b| self.pos(b))
    }

    /// Adds `pos`, whose key hashes to `hash` and is not in the index.
    /// The caller rebuilds first when [`Self::is_full`].
    pub(crate) fn insert(&mut self, hash: u64, pos: usize) {
        assert!(self.used < self.capacity(), "the table rebuilds its index before it fills");
        let mut at = self.home(hash);
        loop {
            // Empty and deleted buckets are the ones without the high bit.
            let free = !self.group(at) & HIGH;
            if free != 0 {
                let b = self.wrap(at, free.trailing_zeros());
                if self.buf[b] == EMPTY {
                    self.used += 1;
                }
                self.live += 1;
                self.set_tag(b, tag_of(hash));
                self.set_pos(b, pos);
                return;
            }
            at += GROUP;
            if at >= self.buckets {
                at -= self.buckets;
            }
        }
    }

    /// Removes `pos`, whose key hashes to `hash`.
    pub(crate) fn remove(&mut self, hash: u64, pos: usize) {
        let b = self.find_bucket(hash, |p| p == pos).expect("every slot is indexed");
        // Taken buckets just before and from `b`: if the run through `b`
        // is shorter than a group, no search ever passed a group holding
        // it without stopping, and it can be empty again.
        let before = self.group((b + self.buckets - GROUP) % self.buckets);
        let after = self.group(b);
        let run = (zero_bytes(before).leading_zeros() + zero_bytes(after).trailing_zeros()) / 8;
        let tag = if (run as usize) < GROUP {
            self.used -= 1;
            EMPTY
        } else {
            DELETED
        };
        self.set_tag(b, tag);
        self.live -= 1;
    }

    /// The slot at `from`, whose key hashes to `hash`, moved to `to`.
    pub(crate) fn repoint(&mut self, hash: u64, from: usize, to: usize) {
        let b = self.find_bucket(hash, |p| p == from).expect("every slot is indexed");
        self.set_pos(b, to);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: usize) -> u64 {
        crate::table::hash_key(format!("k{i}").as_bytes())
    }

    #[test]
    fn zero_bytes_is_exact() {
        // A zero byte then a one: the classic trick reports both.
        let x = u128::from_le_bytes([0, 1, 0x80, 0xff, 0, 0, 2, 1, 0x7f, 0, 1, 1, 1, 1, 1, 1]);
        let want = u128::from_le_bytes([0x80, 0, 0, 0, 0x80, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0]);
        assert_eq!(zero_bytes(x), want);
    }

    /// Positions stay findable through inserts, removals, repoints and
    /// tombstones, in narrow and wide indexes; a removed one is gone.
    #[test]
    fn finds_what_it_holds_through_churn() {
        for wide in [false, true] {
            let n = 3000;
            let mut index = Index::with_capacity(n, wide);
            for i in 0..n {
                index.insert(h(i), i);
            }
            assert_eq!(index.len(), n);
            // Remove every other one, then move the rest down by
            // repointing, as a table's swap-remove does.
            for i in (0..n).step_by(2) {
                index.remove(h(i), i);
            }
            for i in (1..n).step_by(2) {
                index.repoint(h(i), i, i + 10_000);
            }
            for i in 0..n {
                let found = index.find(h(i), |p| p == i + 10_000);
                assert_eq!(found.is_some(), i % 2 == 1, "{i} wide={wide}");
                assert_eq!(index.find(h(i), |p| p == i), None);
            }
            // Fill again up to capacity over the tombstones.
            let mut i = n;
            while !index.is_full() {
                index.insert(h(i), i);
                i += 1;
            }
            assert!(index.len() > n / 2);
            for j in n..i {
                assert_eq!(index.find(h(j), |p| p == j), Some(j));
            }
        }
    }

    /// Sized to fill its allocation's class, at most seven in eight full.
    #[test]
    fn sizes_fill_the_class_and_keep_room() {
        for want in [1, 15, 16, 100, 976, 1220, 5000] {
            let index = Index::with_capacity(want, false);
            assert!(index.capacity() >= want, "{want}");
            let class = crate::table::fit_for::<u8>(index.allocated());
            assert!(class - index.allocated() < 3, "{want}: {} in {class}", index.allocated());
            assert!(index.allocated() < (want + want / 7 + 1).max(GROUP) * 3 * 5 / 4 + GROUP + 64, "{want}");
        }
        assert_eq!(Index::with_capacity(0, false).allocated(), 0);
        assert_eq!(Index::default().find(1, |_| true), None);
    }
}

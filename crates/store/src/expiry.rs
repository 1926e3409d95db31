//! A shard's expiry index: which slots hold keys with a TTL, roughly in
//! deadline order.
//!
//! It was a `BTreeSet<(u64, u32)>` of (deadline, position): 16 bytes an
//! entry, and since keys mostly arrive in deadline order (a cache sets
//! the same TTL on everything), the tree's leaves split in the middle and
//! stayed about half full, so an entry cost 32-35 bytes: a sixth of what
//! a key with a 100-byte value costs in all. Here an entry is one `u64`:
//! the deadline's 64 ms tick in the high bits and the slot's position in
//! the low ones, half the size for the same tree.
//!
//! The price is order inside a tick: entries of one tick sort by
//! position, not deadline. The active cycle therefore reads the first
//! few slots of the tick that is due now and takes only those whose own
//! deadline has passed (see `Tx::expire_due`). Every earlier tick is
//! wholly due, so a key outlives its deadline by at most the rest of its
//! tick (64 ms) beyond what the old index allowed (the next cycle); Redis
//! takes up to a second and more (BENCHMARKS.md). The deadline a shard
//! publishes for the cycle is its first tick's start, never later than
//! the true earliest.
//!
//! Ticks run to 2^36 (the year 2109; later deadlines share the last one)
//! and positions to 2^28. A shard holding more than 268 million keys
//! (only possible with a handful of shards) keeps the entries of the
//! positions above that in a second, wide tree, so nothing is lost.

use std::collections::BTreeSet;

/// A tick is 2^6 = 64 ms of deadline.
const TICK_SHIFT: u32 = 6;
const POS_BITS: u32 = 28;
const MAX_TICK: u64 = (1 << (64 - POS_BITS)) - 1;
const POS_MASK: u64 = (1 << POS_BITS) - 1;

/// The tick a deadline falls in.
pub(crate) fn tick(at: u64) -> u64 {
    (at >> TICK_SHIFT).min(MAX_TICK)
}

/// The first millisecond of `tick`.
fn tick_start(tick: u64) -> u64 {
    tick << TICK_SHIFT
}

#[derive(Default, Debug, PartialEq, Eq)]
pub(crate) struct ExpiryIndex {
    /// `tick << POS_BITS | position`, for positions below 2^28.
    packed: BTreeSet<u64>,
    /// (tick, position) for the rest.
    wide: BTreeSet<(u64, u32)>,
}

impl ExpiryIndex {
    pub fn insert(&mut self, at: u64, pos: u32) {
        match pack(at, pos) {
            Some(p) => self.packed.insert(p),
            None => self.wide.insert((tick(at), pos)),
        };
    }

    /// Removes the entry of the slot at `pos`, whose deadline is `at`.
    pub fn remove(&mut self, at: u64, pos: u32) {
        match pack(at, pos) {
            Some(p) => self.packed.remove(&p),
            None => self.wide.remove(&(tick(at), pos)),
        };
    }

    pub fn len(&self) -> usize {
        self.packed.len() + self.wide.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty() && self.wide.is_empty()
    }

    /// The position of a key in the earliest tick.
    pub fn first(&self) -> Option<u32> {
        self.head().map(|(_, pos)| pos)
    }

    /// A bound on the earliest deadline: no key here is due before it.
    /// Every command's shard release asks, so this is two tree lookups,
    /// not an iterator.
    pub fn earliest(&self) -> Option<u64> {
        self.head().map(|(t, _)| tick_start(t))
    }

    fn head(&self) -> Option<(u64, u32)> {
        let packed = self.packed.first().map(|&p| unpack(p));
        match (packed, self.wide.first()) {
            (Some(a), Some(&b)) => Some(a.min(b)),
            (a, b) => a.or(b.copied()),
        }
    }

    /// (tick, position) of every entry, ticks in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let packed = self.packed.iter().map(|&p| unpack(p));
        // The wide tree is empty but in shards of over 2^28 keys.
        let mut wide = self.wide.iter().copied().peekable();
        let mut packed = packed.peekable();
        std::iter::from_fn(move || match (packed.peek(), wide.peek()) {
            (Some(a), Some(b)) if b < a => wide.next(),
            (Some(_), _) => packed.next(),
            (None, _) => wide.next(),
        })
    }

    /// Positions of the entries whose tick has begun by `now`, in order:
    /// the keys that may be due.
    pub fn maybe_due(&self, now: u64) -> impl Iterator<Item = u32> + '_ {
        let last = tick(now);
        self.iter().take_while(move |&(t, _)| t <= last).map(|(_, pos)| pos)
    }
}

fn unpack(p: u64) -> (u64, u32) {
    (p >> POS_BITS, (p & POS_MASK) as u32)
}

fn pack(at: u64, pos: u32) -> Option<u64> {
    let pos = u64::from(pos);
    (pos <= POS_MASK).then(|| tick(at) << POS_BITS | pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_by_tick_then_position() {
        let mut x = ExpiryIndex::default();
        x.insert(1_000, 7);
        x.insert(1_010, 3); // same tick as 1,000: sorts by position
        x.insert(64, 9);
        x.insert(u64::MAX, 1); // far future: the last tick
        assert_eq!(x.iter().map(|(_, p)| p).collect::<Vec<_>>(), [9, 3, 7, 1]);
        assert_eq!(x.first(), Some(9));
        assert_eq!(x.earliest(), Some(64));
        // Ticks up to now's: position 3 (1,010) may be due at 1,000 even
        // though its deadline has not come; the caller checks.
        assert_eq!(x.maybe_due(1_000).collect::<Vec<_>>(), [9, 3, 7]);
        assert_eq!(x.maybe_due(63).count(), 0);
        x.remove(1_010, 3);
        x.remove(u64::MAX, 1);
        assert_eq!(x.iter().map(|(_, p)| p).collect::<Vec<_>>(), [9, 7]);
        assert_eq!(x.len(), 2);
    }

    #[test]
    fn an_entry_is_eight_bytes_and_positions_past_2_to_the_28_still_fit() {
        assert_eq!(std::mem::size_of::<u64>(), 8);
        let mut x = ExpiryIndex::default();
        let big = 1u32 << 28;
        x.insert(5_000, big + 4);
        x.insert(5_000, 2);
        x.insert(100, big);
        assert_eq!(x.packed.len(), 1);
        assert_eq!(x.wide.len(), 2);
        assert_eq!(x.iter().collect::<Vec<_>>(), [(tick(100), big), (tick(5_000), 2), (tick(5_000), big + 4)]);
        assert_eq!(x.first(), Some(big));
        assert_eq!(x.earliest(), Some(64));
        x.remove(100, big);
        assert_eq!(x.first(), Some(2));
        x.remove(5_000, 2);
        x.remove(5_000, big + 4);
        assert!(x.is_empty());
    }

    #[test]
    fn the_earliest_bound_is_never_after_a_deadline() {
        let mut x = ExpiryIndex::default();
        for at in [0, 1, 63, 64, 65, 1_733_300_000_123, u64::MAX - 1] {
            x.insert(at, 0);
            assert!(x.earliest().unwrap() <= at, "{at}");
            x.remove(at, 0);
            assert!(x.is_empty());
        }
    }
}

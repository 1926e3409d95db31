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
//!
//! Up to [`SMALL`] entries, the packed entries are not a tree but one
//! sorted `VecDeque<u64>`, sized to its allocator class as the slot
//! vectors are (`table::fit_for`): 8 bytes and a little an entry, where
//! the tree's half-full leaves and inner nodes took about 21. A shard of
//! a million-key keyspace holds about a thousand keys. The costs are a
//! binary search and a move of the entries on the nearer side of the
//! change: nothing for a cache's usual insert (the same TTL on every
//! key, so the new deadline is the last), nothing for the active cycle
//! (the first entries go), and at most 2,048 entries (16 KB) for a key
//! deleted or re-timed in the middle. Past [`SMALL`] the entries move into
//! a tree, for good, as the slot index widens (table.rs): that shard
//! already holds megabytes, and the tree's overhead is small beside them.

use std::collections::{BTreeSet, VecDeque};

/// Entries a shard keeps sorted in a vector before they move to a tree.
const SMALL: usize = 4096;

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

#[derive(Default, Debug)]
pub(crate) struct ExpiryIndex {
    /// `tick << POS_BITS | position`, for positions below 2^28.
    packed: Packed,
    /// (tick, position) for the rest.
    wide: BTreeSet<(u64, u32)>,
}

/// Two indexes are equal when they hold the same entries, however stored.
impl PartialEq for ExpiryIndex {
    fn eq(&self, other: &ExpiryIndex) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for ExpiryIndex {}

/// The packed entries: sorted in a vector while few, then in a tree.
#[derive(Debug)]
enum Packed {
    Small(VecDeque<u64>),
    Tree(BTreeSet<u64>),
}

impl Default for Packed {
    fn default() -> Packed {
        Packed::Small(VecDeque::new())
    }
}

impl Packed {
    fn insert(&mut self, p: u64) {
        match self {
            Packed::Small(v) => {
                let Err(i) = v.binary_search(&p) else { return };
                if v.len() == SMALL {
                    let mut tree: BTreeSet<u64> = v.drain(..).collect();
                    tree.insert(p);
                    *self = Packed::Tree(tree);
                    return;
                }
                if v.len() == v.capacity() {
                    // An eighth more, to the whole allocator class (see
                    // `table::fit_for`): copies stay amortised O(1).
                    let len = v.len();
                    v.reserve_exact(crate::table::fit_for::<u64>(len + (len / 8).max(1)) - len);
                }
                v.insert(i, p);
            }
            Packed::Tree(t) => {
                t.insert(p);
            }
        }
    }

    fn remove(&mut self, p: u64) {
        match self {
            Packed::Small(v) => {
                let Ok(i) = v.binary_search(&p) else { return };
                v.remove(i);
                let len = v.len();
                if len == 0 {
                    *v = VecDeque::new();
                } else if v.capacity() > 8 && len * 2 < v.capacity() {
                    v.shrink_to(crate::table::fit_for::<u64>(len + len / 8 + 1));
                }
            }
            Packed::Tree(t) => {
                t.remove(&p);
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Packed::Small(v) => v.len(),
            Packed::Tree(t) => t.len(),
        }
    }

    fn first(&self) -> Option<u64> {
        match self {
            Packed::Small(v) => v.front().copied(),
            Packed::Tree(t) => t.first().copied(),
        }
    }

    fn iter(&self) -> PackedIter<'_> {
        match self {
            Packed::Small(v) => PackedIter::Small(v.iter()),
            Packed::Tree(t) => PackedIter::Tree(t.iter()),
        }
    }
}

enum PackedIter<'a> {
    Small(std::collections::vec_deque::Iter<'a, u64>),
    Tree(std::collections::btree_set::Iter<'a, u64>),
}

impl Iterator for PackedIter<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match self {
            PackedIter::Small(i) => i.next().copied(),
            PackedIter::Tree(i) => i.next().copied(),
        }
    }
}

impl ExpiryIndex {
    pub fn insert(&mut self, at: u64, pos: u32) {
        match pack(at, pos) {
            Some(p) => self.packed.insert(p),
            None => {
                self.wide.insert((tick(at), pos));
            }
        }
    }

    /// Removes the entry of the slot at `pos`, whose deadline is `at`.
    pub fn remove(&mut self, at: u64, pos: u32) {
        match pack(at, pos) {
            Some(p) => self.packed.remove(p),
            None => {
                self.wide.remove(&(tick(at), pos));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.packed.len() + self.wide.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packed.len() == 0 && self.wide.is_empty()
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
        let packed = self.packed.first().map(unpack);
        match (packed, self.wide.first()) {
            (Some(a), Some(&b)) => Some(a.min(b)),
            (a, b) => a.or(b.copied()),
        }
    }

    /// (tick, position) of every entry, ticks in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let packed = self.packed.iter().map(unpack);
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
        assert!(matches!(x.packed, Packed::Small(_)));
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

    /// Past SMALL entries the vector turns into a tree; entries keep
    /// their order, removals work on both sides of the switch, and an
    /// index equals one built the other way.
    #[test]
    fn the_vector_turns_into_a_tree_past_small() {
        let mut x = ExpiryIndex::default();
        let mut want = BTreeSet::new();
        // Deadlines out of order, several to a tick.
        let at = |i: u32| u64::from(i.wrapping_mul(2_654_435_761) % 100_000);
        for i in 0..SMALL as u32 {
            x.insert(at(i), i);
            want.insert((tick(at(i)), i));
        }
        assert!(matches!(x.packed, Packed::Small(_)));
        for i in (0..SMALL as u32).step_by(3) {
            x.remove(at(i), i);
            want.remove(&(tick(at(i)), i));
        }
        let mut small = ExpiryIndex::default();
        for &(t, p) in &want {
            small.insert(t << TICK_SHIFT, p);
        }
        for i in SMALL as u32..2 * SMALL as u32 {
            x.insert(at(i), i);
            want.insert((tick(at(i)), i));
        }
        assert!(matches!(x.packed, Packed::Tree(_)));
        assert_eq!(x.iter().collect::<Vec<_>>(), want.iter().copied().collect::<Vec<_>>());
        for i in SMALL as u32..2 * SMALL as u32 {
            x.remove(at(i), i);
        }
        assert_eq!(x, small, "a tree equals a vector of the same entries");
        assert_eq!(x.first(), small.first());
        // Emptied, a vector lets go of its allocation.
        for &(t, p) in &want {
            small.remove(t << TICK_SHIFT, p);
        }
        assert!(small.is_empty());
        assert!(matches!(&small.packed, Packed::Small(v) if v.capacity() == 0));
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

//! allkeys-sieve's newcomers: each thread's newest keys, judged before a
//! SIEVE hand moves, and how often to judge them, learned from regret.
//!
//! Why judge newcomers: SIEVE over one vector with `swap_remove` (what a
//! shard does) moves the newest key into the slot an eviction frees, where
//! the hand looks next. So a key nobody reads before the next eviction
//! goes first, and the keys that earned their place stay: on a loop over
//! more keys than fit, the cache keeps most of the loop instead of cycling
//! through it. Spread over a thousand shards of a few keys each, a shard's
//! newest key is no longer the cache's newest, and that was lost: on the
//! LIRS cs trace, at a cache of 70% of its keys, `scripts/policy-model`
//! gets 0.56 from one vector and 0.38 from 1,024 shards, and the server
//! got 0.39, below Redis's allkeys-lru. Remembering each thread's newest
//! keys gives it back at any shard count (0.55 in the model).
//!
//! Why not always: where new keys are the ones read next (the model's
//! `feed`, whose newest items are the hot ones), a newcomer is rarely
//! read before the next eviction, and judging every one of them first
//! throws each new key out at once while old ones stay: the model's hit
//! ratio there fell from 0.60 to 0.29. So each eviction judges newcomers
//! first only with a probability, the *share*, learned from regret: the
//! keys evicted lately are remembered with how they went, and a key that
//! comes back finds its ghost. Each return moves the share away from the
//! way that evicted it, by a step divided by how often that way is taken,
//! so the share settles where a newcomer's judgement and the hand are
//! regretted at the same rate per eviction (or at an end, if one is
//! always worse). In the model that keeps the feed at 0.57 and cs at 70%
//! at 0.52; counting returns without the division (ARC's rule, which
//! balances counts, not rates) gets 0.55 and 0.50. The server's figures
//! are in BENCHMARKS.md.
//!
//! The regret is sampled: only keys whose hash picks them (one in eight)
//! are remembered, in one ring of 512 hashes, the last 4,096 evictions of
//! either kind, so the check costs a bit test for most new keys and the
//! memory is 4 KB, with no allocation. The share never falls below a
//! 64th, so the newcomers' side is still tried and can win back.

use parking_lot::Mutex;
use rand::Rng;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

/// New keys a thread remembers. Evictions come in bursts (used memory is
/// published a few kilobytes at a time, so a thread's run of inserts is
/// paid for in one go), and a burst should find every key that came since
/// the last: about twenty at 100-byte values. A model with bursts of 20
/// matched one-vector SIEVE from 32 up.
pub(crate) const REMEMBERED: usize = 64;

/// The share is out of this many evictions.
pub const SHARE_ONE: u32 = 1 << 16;

/// Its floor: a 64th.
const SHARE_MIN: u32 = SHARE_ONE / 64;

/// Half the step a return moves the share by when the share is a half
/// (0.5% each way); elsewhere the step is divided by how often the way
/// that evicted the key is taken. In a model, steps of 0.2% learned too
/// slowly for cs, and steps of 1% lost on the feed.
const HALF_STEP: u64 = SHARE_ONE as u64 / 400;

/// Ghosts remembered: with one key in eight sampled, the last 4,096
/// evictions.
const GHOSTS: usize = 512;

/// The hash bits that pick a key for the ghosts: bits the shard (32 and
/// up, ten of them by default) and the index (the lowest, and the top
/// seven) use least. A ghost keeps how its key went in the lowest of them.
const SAMPLED: u64 = 7 << 50;
const JUDGED_BIT: u64 = 1 << 50;

/// Never a sampled hash, with or without the bit, so it marks an empty
/// place.
const EMPTY: u64 = u64::MAX;

thread_local! {
    /// This thread's newest keys, (db, hash), newest last, and whose.
    static RING: RefCell<(usize, VecDeque<(usize, u64)>)> = const { RefCell::new((0, VecDeque::new())) };
}

pub struct Newcomers {
    on: AtomicBool,
    /// Of each [`SHARE_ONE`] evictions, how many judge newcomers first.
    /// Learned under the ghosts' lock.
    share: AtomicU32,
    ghosts: Mutex<Ghosts>,
}

impl Default for Newcomers {
    fn default() -> Self {
        Newcomers {
            on: AtomicBool::new(false),
            share: AtomicU32::new(SHARE_ONE / 2),
            ghosts: Mutex::new(Ghosts::default()),
        }
    }
}

/// Hashes of sampled keys lately evicted, each with how it went, the
/// oldest overwritten.
struct Ghosts {
    hashes: [u64; GHOSTS],
    next: usize,
}

impl Default for Ghosts {
    fn default() -> Self {
        Ghosts { hashes: [EMPTY; GHOSTS], next: 0 }
    }
}

impl Ghosts {
    fn add(&mut self, hash: u64, how: Left) {
        self.hashes[self.next] = match how {
            Left::Judged => hash | JUDGED_BIT,
            Left::Swept => hash,
        };
        self.next = (self.next + 1) % GHOSTS;
    }

    /// How `hash` left, if its ghost is here; the ghost is gone after.
    fn take(&mut self, hash: u64) -> Option<Left> {
        let i = self.hashes.iter().position(|&h| h & !JUDGED_BIT == hash)?;
        let how = if self.hashes[i] & JUDGED_BIT != 0 { Left::Judged } else { Left::Swept };
        self.hashes[i] = EMPTY;
        Some(how)
    }
}

/// How a key left, for the ghosts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Left {
    /// Judged as a newcomer.
    Judged,
    /// Taken by a hand.
    Swept,
}

fn sampled(hash: u64) -> bool {
    hash & SAMPLED == 0
}

impl Newcomers {
    /// On while the policy is allkeys-sieve: otherwise nothing is
    /// remembered and nothing costs more than this flag's load.
    pub fn set_enabled(&self, on: bool) {
        self.on.store(on, Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// The share of evictions that judge newcomers first, out of
    /// [`SHARE_ONE`].
    pub fn share(&self) -> u32 {
        self.share.load(Relaxed)
    }

    pub fn set_share(&self, share: u32) {
        self.share.store(share.min(SHARE_ONE), Relaxed);
    }

    /// A key this thread just added to `db`: weighs any regret it brings,
    /// and remembers it.
    pub(crate) fn arrived(&self, db: usize, hash: u64) {
        if !self.enabled() {
            return;
        }
        if sampled(hash) {
            let mut ghosts = self.ghosts.lock();
            if let Some(how) = ghosts.take(hash) {
                let share = self.share() as u64;
                let one = SHARE_ONE as u64;
                let moved = match how {
                    // Step / share: the rarer a way is taken, the more
                    // each of its regrets weighs.
                    Left::Judged => share.saturating_sub(HALF_STEP * one / share.max(SHARE_MIN as u64)),
                    Left::Swept => share + HALF_STEP * one / (one - share).max(SHARE_MIN as u64),
                };
                self.share.store(moved.clamp(SHARE_MIN as u64, one) as u32, Relaxed);
            }
        }
        self.with_ring(|ring| {
            if ring.len() == REMEMBERED {
                ring.pop_front();
            }
            ring.push_back((db, hash));
        });
    }

    /// Whether this eviction judges newcomers first (a draw against the
    /// share).
    pub(crate) fn judge_first(&self) -> bool {
        let share = self.share();
        share == SHARE_ONE || (share > 0 && rand::rng().random_range(0..SHARE_ONE) < share)
    }

    /// This thread's newest key not judged yet.
    pub(crate) fn pop(&self) -> Option<(usize, u64)> {
        self.with_ring(VecDeque::pop_back)
    }

    /// Notes how a key left, if it is one the ghosts sample.
    pub(crate) fn left(&self, hash: u64, how: Left) {
        if self.enabled() && sampled(hash) {
            self.ghosts.lock().add(hash, how);
        }
    }

    fn with_ring<R>(&self, f: impl FnOnce(&mut VecDeque<(usize, u64)>) -> R) -> R {
        // Tests run several servers in one process: a ring remembered
        // for another keyspace is dropped.
        let id = self as *const Newcomers as usize;
        RING.with(|cell| {
            let mut ring = cell.borrow_mut();
            if ring.0 != id {
                ring.0 = id;
                ring.1.clear();
            }
            f(&mut ring.1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes the ghost rings sample, and ones they do not.
    fn hashes(picked: bool) -> impl Iterator<Item = u64> {
        (1u64..).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).filter(move |&h| sampled(h) == picked)
    }

    #[test]
    fn regret_moves_the_share_by_how_rare_its_way_is() {
        let n = Newcomers::default();
        n.set_enabled(true);
        let half = SHARE_ONE / 2;
        assert_eq!(n.share(), half);
        let mut picked = hashes(true);
        let (a, b) = (picked.next().unwrap(), picked.next().unwrap());
        // Judged out, then back: judging newcomers cost a hit.
        n.left(a, Left::Judged);
        n.arrived(0, a);
        let step = 2 * HALF_STEP as u32;
        assert_eq!(n.share(), half - step);
        // Once only: the ghost is gone.
        n.arrived(0, a);
        assert_eq!(n.share(), half - step);
        // Swept out, then back: the hand cost a hit. The hand is taken a
        // little more often now, so its regret weighs a little less.
        n.left(b, Left::Swept);
        n.arrived(0, b);
        assert!(n.share() > half - step && n.share() < half, "{}", n.share());
        // Keys the hash does not pick leave no ghost.
        let before = n.share();
        let c = hashes(false).next().unwrap();
        n.left(c, Left::Judged);
        n.arrived(0, c);
        assert_eq!(n.share(), before);
        // The share stays within its floor and one.
        for h in picked.by_ref().take(2000) {
            n.left(h, Left::Swept);
            n.arrived(0, h);
        }
        assert_eq!(n.share(), SHARE_ONE);
        assert!(n.judge_first());
        for h in picked.by_ref().take(2000) {
            n.left(h, Left::Judged);
            n.arrived(0, h);
        }
        assert_eq!(n.share(), SHARE_MIN);
        // Near the floor, one regret of the hand moves the share about
        // half a step: it is the way nearly every eviction takes.
        let h = picked.next().unwrap();
        n.left(h, Left::Swept);
        n.arrived(0, h);
        assert!(n.share() > SHARE_MIN && n.share() < SHARE_MIN + step, "{}", n.share());
    }

    #[test]
    fn the_ring_keeps_the_newest_and_gives_them_newest_first() {
        let n = Newcomers::default();
        assert!(!n.enabled());
        n.arrived(0, 1);
        assert_eq!(n.pop(), None, "remembered while off");
        n.set_enabled(true);
        for h in 0..(REMEMBERED as u64 + 10) {
            n.arrived(1, h);
        }
        let popped: Vec<u64> = std::iter::from_fn(|| n.pop())
            .map(|(db, h)| {
                assert_eq!(db, 1);
                h
            })
            .collect();
        assert_eq!(popped, (10..REMEMBERED as u64 + 10).rev().collect::<Vec<_>>());
        // A ring belongs to one keyspace's newcomers.
        n.arrived(0, 5);
        let other = Newcomers::default();
        other.set_enabled(true);
        assert_eq!(other.pop(), None);
        assert_eq!(n.pop(), None, "the other keyspace's look dropped this ring");
    }

    #[test]
    fn old_ghosts_fall_out() {
        let n = Newcomers::default();
        n.set_enabled(true);
        let mut picked = hashes(true);
        let first = picked.next().unwrap();
        n.left(first, Left::Judged);
        for h in picked.take(GHOSTS) {
            n.left(h, Left::Swept);
        }
        n.arrived(0, first);
        assert_eq!(n.share(), SHARE_ONE / 2, "a ghost {} evictions old still counted", GHOSTS + 1);
    }
}

//! Eviction: which key goes when memory is over `maxmemory`.
//!
//! Redis's approximated policies, with its semantics: the LRU, LFU and
//! TTL policies sample `maxmemory-samples` keys per database into a pool
//! of the 16 best candidates kept across evictions (Redis's eviction
//! pool, here one per thread), then evict the best one still present; the random policies pick
//! a random key, visiting databases round robin. The `volatile-*`
//! policies consider only keys with a TTL.
//!
//! Sampling is cheap here because a shard's keys sit in one dense vector
//! (table.rs): a random key is a random index. Keys with a TTL are found
//! by sampling the map and keeping those with a deadline; when none turns
//! up, the key with the nearest deadline (the head of the shard's expiry
//! index) stands in.
//!
//! An evicted key leaves through the effect stream like any other write:
//! a `DEL` (AOF, replicas, WATCH, client tracking) and the `evicted`
//! keyspace event.
//!
//! allkeys-sieve is SIEVE (Zhang et al., NSDI '24) with one hand per
//! shard, plus, for a learned share of evictions, each thread's newest
//! keys judged before any hand moves: a key nobody read since it came
//! goes first (newcomers.rs says why, and what it did to the LIRS cs
//! trace).
//!
//! LFU counters follow Redis: a logarithmic counter that grows with
//! probability `1 / ((counter - 5) * lfu-log-factor + 1)` per access and
//! decays by one per `lfu-decay-time` minutes without access.

use crate::effect::class;
use crate::keyspace::{Access, Entry, Key, Keyspace};
use crate::newcomers::{Left, Newcomers};
use crate::table::hash_key;
use rand::Rng;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    /// SIEVE (Zhang et al., NSDI '24) over every key: not in Redis.
    AllKeysSieve,
}

impl Policy {
    pub fn parse(name: &str) -> Option<Policy> {
        Some(match name.to_ascii_lowercase().as_str() {
            "noeviction" => Policy::NoEviction,
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            "allkeys-sieve" => Policy::AllKeysSieve,
            _ => return None,
        })
    }

    fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }
}

/// Redis's `EVPOOL_SIZE`.
const POOL: usize = 16;

/// An eviction candidate: higher scores go first.
#[derive(Debug, Clone)]
struct Candidate {
    score: u64,
    db: usize,
    /// The key's hash: duplicates are found without comparing bytes.
    hash: u64,
    key: Key,
}

/// Eviction state and the LFU settings.
pub struct Evictor {
    /// Where the random policies start their round robin over databases.
    next_db: AtomicUsize,
    evicted: AtomicU64,
    /// `lfu-log-factor`.
    pub lfu_log_factor: AtomicU32,
    /// `lfu-decay-time`, minutes (0: never decay).
    pub lfu_decay_time: AtomicU32,
    /// An LFU policy is in force: keys' access clocks take the LFU form
    /// (entry.rs).
    pub lfu: AtomicBool,
    /// allkeys-sieve's newest keys and how often to judge them first.
    pub newcomers: Newcomers,
}

impl Default for Evictor {
    fn default() -> Self {
        Evictor {
            next_db: AtomicUsize::new(0),
            evicted: AtomicU64::new(0),
            lfu_log_factor: AtomicU32::new(10),
            lfu_decay_time: AtomicU32::new(1),
            lfu: AtomicBool::new(false),
            newcomers: Newcomers::default(),
        }
    }
}

impl Evictor {
    /// Keys evicted so far (INFO `evicted_keys`).
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Relaxed)
    }

    /// How accesses are recorded now.
    pub fn access(&self, now_ms: u64) -> Access {
        Access {
            now_ms,
            lfu: self.lfu.load(Relaxed),
            log_factor: self.lfu_log_factor.load(Relaxed),
            decay_minutes: self.lfu_decay_time.load(Relaxed),
        }
    }

    pub fn reset_stats(&self) {
        self.evicted.store(0, Relaxed);
    }
}

impl Keyspace {
    /// Keys evicted so far.
    pub fn evicted_keys(&self) -> u64 {
        self.evictor.evicted()
    }

    /// Evicts one key chosen by `policy`. False when there is nothing it
    /// may evict (an empty keyspace, no key with a TTL for `volatile-*`,
    /// or `noeviction`).
    pub fn evict_one(&self, policy: Policy, samples: usize, now: u64) -> bool {
        match policy {
            Policy::NoEviction => false,
            Policy::AllKeysRandom | Policy::VolatileRandom => self.evict_random(policy.volatile(), now),
            Policy::AllKeysSieve => self.evict_sieve(now),
            _ => self.evict_from_pool(policy, samples.max(1), now),
        }
    }

    /// Whether `db` may hold a candidate, from the shard counts published as
    /// locks are released (cheap: no shard is locked).
    fn may_hold(&self, db: usize, volatile: bool) -> bool {
        let (keys, with_ttl) = self.approx_counts(db);
        if volatile {
            with_ttl > 0
        } else {
            keys > 0
        }
    }

    /// Removes `key` from `db` if it is still there (and, for a volatile
    /// policy, still has a TTL), telling the effect stream.
    fn evict_key(&self, db: usize, key: &[u8], volatile: bool, now: u64) -> bool {
        let mut tx = self.lock(db, key, now);
        let Some(entry) = tx.remove_if(key, |e| !volatile || e.expire_at().is_some()) else {
            return false;
        };
        self.dispose(entry.into_value(), crate::keyspace::Disposal::Eviction);
        tx.emit(&[b"DEL", key]);
        tx.notify(class::EVICTED, "evicted", key);
        self.evictor.evicted.fetch_add(1, Relaxed);
        true
    }

    fn evict_sieve(&self, now: u64) -> bool {
        // Newcomers first (as often as the share says), newest first: one
        // not read since it came goes. At the first one that was read,
        // the hand takes over.
        let newcomers = &self.evictor.newcomers;
        if newcomers.judge_first() {
            while let Some((db, hash)) = newcomers.pop() {
                match self.judge_newcomer(db, hash, now) {
                    Judged::Gone => continue,
                    Judged::Kept => break,
                    Judged::Evicted(key) => {
                        newcomers.left(hash, Left::Judged);
                        self.evicted_by_sieve(db, &key);
                        return true;
                    }
                }
            }
        }
        let per_db = self.shard_count();
        let total = per_db * self.databases();
        // Each eviction starts at a random shard, whose own hand then
        // moves on. Sweeping the shards in a fixed order (as this did)
        // is a cyclic scan of the cache, and a loop over a little more
        // keys than the cache holds defeats a cyclic scan as it defeats
        // LRU: the replay's loop fell to 0.36 with 64 shards, where a
        // random start gets 0.63-0.66 (Redis's allkeys-lru: 0.52). A
        // random shard gives each key a random time to its next look, as
        // Redis's sampling does, so some of a loop's keys live to be read
        // again. With a shard's keys few (a tiny cache over the default
        // 1024 shards) the Zipf workloads lose up to 0.04 against the
        // fixed order, and still beat Redis's LRU (BENCHMARKS.md). It also
        // spreads evictions over the shards: draining one shard at a time
        // made its slot vector shrink and grow back.
        // The random shard is in a random database among those that hold
        // keys: a start anywhere in all sixteen would, with only db 0 in
        // use, skip forward to db 0's first shard fifteen times in
        // sixteen, and drain the first shards over and over.
        // One pass picks it (reservoir sampling): each eviction read every
        // database's count twice before.
        let mut rng = rand::rng();
        let (mut db, mut held) = (0, 0);
        for d in (0..self.databases()).filter(|&d| self.may_hold(d, false)) {
            held += 1;
            if rng.random_range(0..held) == 0 {
                db = d;
            }
        }
        let mut at = db * per_db + rng.random_range(0..per_db);
        // Two sweeps at most (the first may only clear visited bits), plus
        // a step per database skipped.
        for _ in 0..2 * total + self.databases() + 1 {
            let (db, shard) = (at / per_db, at % per_db);
            if !self.may_hold(db, false) {
                // On to the next database's first shard.
                at = (at - shard + per_db) % total;
                continue;
            }
            if let Some((key, hash)) = self.evict_sieve_in(db, shard, now) {
                newcomers.left(hash, Left::Swept);
                self.evicted_by_sieve(db, &key);
                return true;
            }
            // This shard's hand reached its end: the next shard.
            at = (at + 1) % total;
        }
        false
    }

    /// Tells the effect stream about a key SIEVE removed (its shard lock
    /// already released).
    fn evicted_by_sieve(&self, db: usize, key: &[u8]) {
        self.effects.emit_from(db, &[b"DEL", key], crate::effect::Origin::Eviction);
        self.effects.event(db, class::EVICTED, "evicted", key);
        self.evictor.evicted.fetch_add(1, Relaxed);
    }

    fn evict_random(&self, volatile: bool, now: u64) -> bool {
        let dbs = self.databases();
        let start = self.evictor.next_db.fetch_add(1, Relaxed);
        for step in 0..dbs {
            let db = (start + step) % dbs;
            if !self.may_hold(db, volatile) {
                continue;
            }
            if let Some(key) = self.random_candidate(db, volatile) {
                if self.evict_key(db, &key, volatile, now) {
                    return true;
                }
            }
        }
        false
    }

    /// A random key of `db` (with a TTL if `volatile`): from a random
    /// shard, or the next one that has any, so a key is found whenever
    /// one exists.
    fn random_candidate(&self, db: usize, volatile: bool) -> Option<Key> {
        let mut rng = rand::rng();
        let shards = self.shard_count();
        let start = rng.random_range(0..shards);
        for step in 0..shards {
            let found = self.with_shard(db, (start + step) % shards, |s| {
                if s.len() == 0 {
                    return None;
                }
                for _ in 0..8 {
                    let (k, e) = s.entry_at(rng.random_range(0..s.len()));
                    if !volatile || e.expire_at().is_some() {
                        return Some(k.clone());
                    }
                }
                if volatile {
                    s.nearest_deadline().map(|(k, _)| k.clone())
                } else {
                    None
                }
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Samples every database into the pool, then evicts the best
    /// candidate still present.
    fn evict_from_pool(&self, policy: Policy, samples: usize, now: u64) -> bool {
        let volatile = policy.volatile();
        let log_decay = self.evictor.lfu_decay_time.load(Relaxed);
        let score = |e: &Entry| -> u64 {
            match policy {
                // Least frequent first; among equals, the longest idle
                // (in minutes: what the LFU form of the clock keeps).
                Policy::AllKeysLfu | Policy::VolatileLfu => {
                    (255 - e.lfu(now, log_decay) as u64) << 32 | e.lfu_elapsed(now)
                }
                Policy::VolatileTtl => u64::MAX - e.expire_at().unwrap_or(u64::MAX),
                _ => e.idle_secs(now),
            }
        };
        loop {
            // Each sampled key goes straight into the pool, as in Redis's
            // evictionPoolPopulate: the pool is full again after its first
            // newcomer (an eviction takes one), so the rest must beat its
            // worst, and most are turned away before their names are
            // copied. Sampling into a list first and inserting after paid
            // to copy and insert all of them (a quarter of an evicting
            // SET's instructions).
            let best = with_pool(self, |pool| {
                for db in (0..self.databases()).filter(|db| self.may_hold(*db, volatile)) {
                    self.sample(db, samples, volatile, |k, e| offer(pool, score(e), db, k));
                }
                pool.pop()
            });
            let Some(mut best) = best else { return false };
            loop {
                if self.evict_key(best.db, &best.key, volatile, now) {
                    return true;
                }
                // Gone or changed since it was sampled: the next best.
                match with_pool(self, Vec::pop) {
                    Some(c) => best = c,
                    None => break,
                }
            }
        }
    }

    /// Calls `visit` for up to `samples` random keys of `db` (with a TTL if
    /// `volatile`): a few from each shard, walking on from a random one,
    /// so that keys are found whenever any exist, however sparse.
    fn sample(&self, db: usize, samples: usize, volatile: bool, mut visit: impl FnMut(&Key, &Entry)) {
        let mut rng = rand::rng();
        let shards = self.shard_count();
        let start = rng.random_range(0..shards);
        // All of a usual sample (maxmemory-samples is 5 by default) from
        // one shard: one lock per eviction, as Redis's dictGetSomeKeys
        // reads one stretch of one table.
        let per_shard = samples.div_ceil(shards).max(samples.min(16));
        let mut taken = 0;
        for step in 0..shards {
            if taken >= samples {
                break;
            }
            let shard = (start + step) % shards;
            let got = self.with_shard(db, shard, |s| {
                let mut got = 0;
                if s.len() == 0 {
                    return got;
                }
                // A few keys from this shard, then another shard.
                for _ in 0..(samples - taken).min(per_shard) {
                    let (k, e) = s.entry_at(rng.random_range(0..s.len()));
                    if volatile && e.expire_at().is_none() {
                        continue;
                    }
                    visit(k, e);
                    got += 1;
                }
                if volatile && got == 0 {
                    if let Some((k, e)) = s.nearest_deadline() {
                        visit(k, e);
                        got += 1;
                    }
                }
                got
            });
            taken += got;
        }
    }
}

thread_local! {
    /// Each thread's eviction pool, and the keyspace it belongs to. One
    /// shared pool behind a mutex made two busy threads queue on it for
    /// every eviction; per thread, each samples for itself (Redis's single
    /// pool has one thread).
    static POOLS: std::cell::RefCell<(usize, Vec<Candidate>)> = const { std::cell::RefCell::new((0, Vec::new())) };
}

/// What allkeys-sieve found when it judged a newcomer.
pub(crate) enum Judged {
    /// Deleted, or moved on, since it came.
    Gone,
    /// Read since it came: it stays.
    Kept,
    /// Not read: removed (this key).
    Evicted(crate::table::Key),
}

/// Runs `f` on this thread's pool for `ks` (emptied first if it held
/// another keyspace's candidates: tests run several servers in one
/// process).
fn with_pool<R>(ks: &Keyspace, f: impl FnOnce(&mut Vec<Candidate>) -> R) -> R {
    let id = ks as *const Keyspace as usize;
    POOLS.with(|cell| {
        let mut pools = cell.borrow_mut();
        if pools.0 != id {
            *pools = (id, Vec::with_capacity(POOL));
        }
        f(&mut pools.1)
    })
}

/// Offers a sampled key to the pool, which stays at most [`POOL`] long,
/// sorted by score (best last), without duplicates. A full pool takes
/// only a key that beats its worst, which it then drops.
fn offer(pool: &mut Vec<Candidate>, score: u64, db: usize, key: &Key) {
    if pool.len() == POOL && score <= pool[0].score {
        return;
    }
    let hash = hash_key(key);
    if let Some(i) = pool.iter().position(|p| p.hash == hash && p.db == db && p.key == *key) {
        pool.remove(i);
    }
    let c = Candidate { score, db, hash, key: key.clone() };
    let at = pool.partition_point(|p| p.score <= score);
    if pool.len() < POOL {
        pool.insert(at, c);
    } else {
        // One move, not two: the worst (at 0, and at > 0 since the key
        // beat it) rotates up to just below the newcomer's place, where
        // the newcomer overwrites it.
        pool[..at].rotate_left(1);
        pool[at - 1] = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Ttl;
    use crate::value::{StrValue, Value};

    fn put(ks: &Keyspace, key: &str, ttl: Ttl, now: u64) {
        ks.lock(0, key.as_bytes(), now).set(key.as_bytes(), Value::Str(StrValue::from_slice(b"v")), ttl);
    }

    #[test]
    fn the_pool_keeps_the_best_sorted_and_each_key_once() {
        let key = |i: u64| Key::new(format!("k{i}").as_bytes());
        let mut pool = Vec::new();
        // Scores 0..40 in a scrambled order: the 16 best stay.
        for i in 0..40u64 {
            let s = (i * 17) % 40;
            offer(&mut pool, s, 0, &key(s));
        }
        let scores: Vec<u64> = pool.iter().map(|c| c.score).collect();
        assert_eq!(scores, (24..40).collect::<Vec<_>>());
        assert!(pool.iter().all(|c| c.key == key(c.score) && c.hash == hash_key(&c.key)));
        // Not better than the worst of a full pool: turned away.
        offer(&mut pool, 24, 0, &key(100));
        assert!(pool.iter().all(|c| c.key != key(100)));
        // A key already there moves to its new score; it is not doubled.
        offer(&mut pool, 50, 0, &key(30));
        assert_eq!(pool.len(), 16);
        assert_eq!(pool.iter().filter(|c| c.key == key(30)).count(), 1);
        assert_eq!(pool.last().map(|c| (c.score, c.key.clone())), Some((50, key(30))));
        // The same name in another database is another candidate.
        offer(&mut pool, 60, 1, &key(30));
        assert_eq!(pool.iter().filter(|c| c.key == key(30)).count(), 2);
        assert_eq!(pool[0].score, 25, "the worst was dropped");
        assert!(pool.windows(2).all(|w| w[0].score <= w[1].score));
    }

    #[test]
    fn policies_parse_by_redis_names() {
        assert_eq!(Policy::parse("ALLKEYS-LRU"), Some(Policy::AllKeysLru));
        assert_eq!(Policy::parse("volatile-ttl"), Some(Policy::VolatileTtl));
        assert_eq!(Policy::parse("lru"), None);
    }

    #[test]
    fn volatile_policies_never_take_keys_without_ttl() {
        for policy in [Policy::VolatileLru, Policy::VolatileLfu, Policy::VolatileRandom, Policy::VolatileTtl] {
            let ks = Keyspace::new(2, 4);
            for i in 0..50 {
                put(&ks, &format!("keep{i}"), Ttl::Clear, 0);
            }
            for i in 0..5 {
                put(&ks, &format!("ttl{i}"), Ttl::At(1_000_000 + i), 0);
            }
            let mut n = 0;
            while ks.evict_one(policy, 5, 1000) {
                n += 1;
            }
            assert_eq!(n, 5, "{policy:?}");
            assert_eq!(ks.dbsize(0), 50, "{policy:?}");
            assert_eq!(ks.evicted_keys(), 5);
        }
    }

    #[test]
    fn allkeys_policies_empty_every_database() {
        for policy in [Policy::AllKeysLru, Policy::AllKeysLfu, Policy::AllKeysRandom] {
            let ks = Keyspace::new(3, 4);
            for db in 0..3 {
                for i in 0..20 {
                    let k = format!("k{i}");
                    ks.lock(db, k.as_bytes(), 0).set(k.as_bytes(), Value::Str(StrValue::from_slice(b"v")), Ttl::Clear);
                }
            }
            let mut n = 0;
            while ks.evict_one(policy, 5, 0) {
                n += 1;
            }
            assert_eq!(n, 60, "{policy:?}");
            assert!(!ks.evict_one(Policy::NoEviction, 5, 0));
        }
    }

    #[test]
    fn volatile_ttl_takes_the_nearest_deadline_first() {
        let ks = Keyspace::new(1, 1);
        for i in 0..10u64 {
            put(&ks, &format!("k{i}"), Ttl::At(10_000 + i * 1000), 0);
        }
        // Sampling is with replacement: 200 samples of ten keys miss one
        // with probability 0.9^200.
        assert!(ks.evict_one(Policy::VolatileTtl, 200, 0));
        assert!(ks.lock(0, b"k0", 0).peek(b"k0").is_none());
        assert_eq!(ks.dbsize(0), 9);
    }

    #[test]
    fn sieve_evicts_unvisited_keys_and_spares_visited_ones() {
        let ks = Keyspace::new(1, 1);
        for i in 0..10u64 {
            put(&ks, &format!("k{i}"), Ttl::Clear, 0);
        }
        for i in [0, 2, 4] {
            let k = format!("k{i}");
            ks.lock(0, k.as_bytes(), 0).get(k.as_bytes());
        }
        // The hand's first pass takes unread keys only.
        for _ in 0..3 {
            assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        }
        for i in [0, 2, 4] {
            let k = format!("k{i}");
            assert!(ks.lock(0, k.as_bytes(), 0).peek(k.as_bytes()).is_some(), "read key k{i} was evicted");
        }
        // Then it clears their bits, and everything can go.
        for _ in 0..7 {
            assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        }
        assert!(!ks.evict_one(Policy::AllKeysSieve, 5, 0));
    }

    /// With newcomers on (the server turns them on for allkeys-sieve) and
    /// judged first, the newest key nobody has read goes first, wherever
    /// the hand is; one that was read stays, and the hand takes an old key
    /// instead.
    #[test]
    fn sieve_judges_the_newest_keys_first() {
        let ks = Keyspace::new(2, 64);
        let read = |k: &str| ks.lock(0, k.as_bytes(), 0).get(k.as_bytes()).is_some();
        let present = |db: usize, k: &str| ks.lock(db, k.as_bytes(), 0).peek(k.as_bytes()).is_some();
        // Old keys, put while newcomers were off; the even ones read since.
        let old: Vec<String> = (0..200).map(|i| format!("old{i}")).collect();
        for (i, k) in old.iter().enumerate() {
            put(&ks, k, Ttl::Clear, 0);
            if i % 2 == 0 {
                assert!(read(k));
            }
        }
        assert_eq!(ks.evictor.newcomers.pop(), None, "remembered with newcomers off");
        let olds_left = |parity: usize| old.iter().skip(parity).step_by(2).filter(|k| present(0, k)).count();
        ks.evictor.newcomers.set_enabled(true);
        // Every eviction judges newcomers first (the share is learned;
        // newcomers.rs tests that).
        ks.evictor.newcomers.set_share(crate::newcomers::SHARE_ONE);
        // Three unread newcomers (one in db 1) go newest first, before any
        // of the hundred unread old keys.
        put(&ks, "new0", Ttl::Clear, 0);
        ks.lock(1, b"new1", 0).set(b"new1", Value::Str(StrValue::from_slice(b"v")), Ttl::Clear);
        put(&ks, "new2", Ttl::Clear, 0);
        assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        assert!(!present(0, "new2") && present(1, "new1") && present(0, "new0"));
        assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        assert!(!present(1, "new1") && present(0, "new0"));
        assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        assert!(!present(0, "new0"));
        assert_eq!((olds_left(0), olds_left(1)), (100, 100));
        // A newcomer that was read stays, and the hand takes an unread
        // old key.
        put(&ks, "liked", Ttl::Clear, 0);
        assert!(read("liked"));
        assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        assert!(present(0, "liked"));
        assert_eq!((olds_left(0), olds_left(1)), (100, 99));
        // One deleted since it came is passed over for the next newest.
        put(&ks, "late", Ttl::Clear, 0);
        put(&ks, "brief", Ttl::Clear, 0);
        ks.lock(0, b"brief", 0).remove(b"brief");
        assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        assert!(!present(0, "late") && present(0, "liked"));
        assert_eq!((olds_left(0), olds_left(1)), (100, 99));
        assert_eq!(ks.evictor.newcomers.pop(), None);
    }

    #[test]
    fn sieve_spreads_evictions_over_the_shards_of_the_database_in_use() {
        // 16 databases, only db 0 used: each eviction starts at a random
        // shard of db 0. (A start anywhere in all sixteen fell through the
        // empty ones to db 0's first shard and drained the shards in order:
        // 200 evictions would then empty ten shards and touch no other.)
        let ks = Keyspace::new(16, 64);
        let keys: Vec<String> = (0..64 * 20).map(|i| format!("k{i}")).collect();
        for k in &keys {
            put(&ks, k, Ttl::Clear, 0);
        }
        for _ in 0..200 {
            assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        }
        let mut lost = [0u32; 64];
        for k in &keys {
            if ks.lock(0, k.as_bytes(), 0).peek(k.as_bytes()).is_none() {
                lost[ks.shard_of(k.as_bytes())] += 1;
            }
        }
        assert_eq!(lost.iter().sum::<u32>(), 200);
        let touched = lost.iter().filter(|&&n| n > 0).count();
        assert!(touched > 40, "evictions touched only {touched} of 64 shards: {lost:?}");
    }

    #[test]
    fn sieve_looks_next_at_the_newest_key_moved_into_the_hole() {
        let ks = Keyspace::new(1, 1);
        for i in 0..5u64 {
            put(&ks, &format!("k{i}"), Ttl::Clear, 0);
        }
        for k in ["k0", "k1"] {
            ks.lock(0, k.as_bytes(), 0).get(k.as_bytes());
        }
        // k0 and k1 lose their bits, k2 goes and k4 (the newest) takes its
        // place under the hand: unread, it goes next, before k3.
        assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        assert!(ks.lock(0, b"k2", 0).peek(b"k2").is_none());
        assert!(ks.evict_one(Policy::AllKeysSieve, 5, 0));
        assert!(ks.lock(0, b"k4", 0).peek(b"k4").is_none());
        assert!(ks.lock(0, b"k3", 0).peek(b"k3").is_some());
    }

    #[test]
    fn lru_prefers_the_longest_idle() {
        let ks = Keyspace::new(1, 1);
        for i in 0..10u64 {
            put(&ks, &format!("k{i}"), Ttl::Clear, 0);
        }
        // Every key but k3 is read at t=100s.
        for i in (0..10).filter(|i| *i != 3) {
            let k = format!("k{i}");
            ks.lock(0, k.as_bytes(), 100_000).get(k.as_bytes());
        }
        assert!(ks.evict_one(Policy::AllKeysLru, 200, 100_000));
        assert!(ks.lock(0, b"k3", 100_000).peek(b"k3").is_none());
    }

    #[test]
    fn lfu_counters_grow_logarithmically_and_decay() {
        let ks = Keyspace::new(1, 1);
        ks.evictor.lfu.store(true, Relaxed);
        put(&ks, "k", Ttl::Clear, 0);
        assert_eq!(ks.lock(0, b"k", 0).peek(b"k").unwrap().lfu(0, 1), crate::keyspace::LFU_INIT_VAL);
        for _ in 0..10_000 {
            ks.lock(0, b"k", 0).get(b"k");
        }
        let f = ks.lock(0, b"k", 0).peek(b"k").unwrap().lfu(0, 1);
        // Climbing from c costs about (c - 5) * 10 + 1 hits, so 10k hits
        // reach about 5 + sqrt(2000) ≈ 50.
        assert!((30..=80).contains(&f), "counter after 10k hits: {f}");
        let later = ks.lock(0, b"k", 0).peek(b"k").unwrap().lfu(5 * 60_000, 1);
        assert_eq!(later, f - 5, "one step per idle minute");
    }

    #[test]
    fn accesses_keep_the_clock_of_the_policy_in_force() {
        let ks = Keyspace::new(1, 1);
        put(&ks, "k", Ttl::Clear, 0);
        ks.lock(0, b"k", 7_000).get(b"k");
        assert_eq!(ks.lock(0, b"k", 7_000).peek(b"k").unwrap().idle_secs(10_000), 3);
        // Under an LFU policy the same bits hold the minute and counter.
        ks.evictor.lfu.store(true, Relaxed);
        put(&ks, "n", Ttl::Clear, 60_000);
        let e = ks.lock(0, b"n", 60_000).peek(b"n").unwrap().raw_clock();
        assert_eq!(e, 1 << 8 | crate::keyspace::LFU_INIT_VAL as u32);
    }
}

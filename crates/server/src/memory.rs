//! Memory: the figure maxmemory is enforced on.
//!
//! jemalloc's statistics are the truth (INFO memory reports them), but
//! reading them fresh costs an `epoch` refresh of tens of microseconds,
//! far too slow for a check before every command. Counting every
//! allocation ourselves, as Redis's zmalloc does, is not free either: a
//! wrapper around the allocator cost 5-8% more instructions per request
//! (two thread-local accesses per malloc/free pair, each a call through
//! `__tls_get_addr` in a position-independent binary).
//!
//! jemalloc already counts, per thread, the bytes each thread allocated
//! and freed (`thread.allocatedp`/`deallocatedp`: pointers into its own
//! thread state, exact and cheap to read). So [`Memory::used`] is the
//! allocator's figure once, at start-up, plus every thread's net change
//! since: each thread publishes its change in a slot of its own (a plain
//! store to a cache line nobody else writes) whenever it has moved 4 KB
//! since it last did: checked after each batch of commands and whenever
//! the figure is read, while the threads that free what others allocated
//! (the snapshot and AOF threads) publish all of it as they work. A reader sums the slots and
//! adds its own unpublished change, so an eviction sees its own frees at
//! once; the figure is off by at most 4 KB per other thread.
//!
//! Why not re-read jemalloc's `stats.allocated` now and then, as the first
//! version did (ten times a second, corrected by the bytes sitting in
//! thread caches): under churn that reading was off by hundreds of KB in
//! both directions. With 500 KB for data and 100-byte values a Larder
//! with thread caches held 4,200 keys and one without them 2,600, what
//! the keys really cost; a cache with a small limit evicted by noise.
//!
//! [`Memory::enforce`] is Redis's `performEvictions`: under the limit it
//! does nothing; over it, it evicts by `maxmemory-policy` until under
//! again, for at most [`EVICTION_TIME_LIMIT`] per command (the cron
//! carries on from there, as Redis's eviction timer does). It fails, and
//! denyoom commands get the OOM error, only when nothing more may be
//! evicted.
//!
//! Eviction ahead: a command that finds memory within [`headroom`] of the
//! limit wakes a task that evicts down to that low mark while the worker
//! has nothing else to do (`yield_now` puts a task behind every ready
//! one and the I/O poll). A burst of writes then lands in the headroom
//! instead of each write evicting its way in, so eviction is not paid on
//! the request path. Why not a thread of its own: tried, on two cores it
//! took its CPU from the worker and the client, and the SET p99 under
//! eviction rose 2.7x against 1.2x inline (BENCHMARKS.md). The inline
//! check stays: a burst larger than the headroom, or a busy server,
//! evicts as before, and the limit holds as it did.

use larder_store::{Keyspace, Policy};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tikv_jemalloc_ctl::thread::{allocatedp, deallocatedp, ThreadLocal};

/// How long one command may spend evicting at the default
/// maxmemory-eviction-tenacity (10), as in Redis.
pub const EVICTION_TIME_LIMIT: Duration = Duration::from_micros(500);

/// Redis's evictionTimeLimitUs for `maxmemory-eviction-tenacity`: 50 µs a
/// step up to 10, then 15% more a step, and no limit at 100.
pub fn eviction_time_limit(tenacity: u64) -> Duration {
    match tenacity {
        0..=10 => Duration::from_micros(50 * tenacity),
        11..=99 => Duration::from_micros((500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64),
        _ => Duration::MAX,
    }
}

/// Keys one command may evict. Redis's exact counter never lets memory
/// run far over; ours is corrected at each refresh, and one command
/// should not pay for a whole correction of a few hundred KB: the rest is
/// spread over the next commands (each write adds about one key, so 32
/// keeps up) and the cron. Measured, it did not move the SET p99 under
/// eviction (BENCHMARKS.md); it bounds the worst single command.
const PER_COMMAND: u32 = 32;

/// Keys the task evicting ahead takes per turn before it yields again: a
/// request arriving meanwhile waits for at most this many evictions.
const AHEAD_BATCH: u32 = 16;

/// How far under `maxmemory` eviction ahead keeps memory: a 256th of the
/// limit (0.4%: about 450 keys of 100 bytes in 20 MB, four bursts of a
/// millisecond at 100k SET/s), at most 4 MB.
pub fn headroom(limit: u64) -> u64 {
    (limit / 256).min(4 << 20)
}

/// Threads with a slot of their own; later ones share [`OVERFLOW`].
const SLOTS: usize = 256;

/// One thread's published change, alone on its cache line.
#[repr(align(64))]
struct Slot(AtomicI64);

static SLOT: [Slot; SLOTS] = [const { Slot(AtomicI64::new(0)) }; SLOTS];
/// Slots handed out so far (may pass SLOTS; the rest use OVERFLOW).
static SLOTS_TAKEN: AtomicUsize = AtomicUsize::new(0);
static OVERFLOW: AtomicI64 = AtomicI64::new(0);

/// One thread's jemalloc counters, where they stood when the thread was
/// first seen, and what it has published since.
#[derive(Clone, Copy)]
struct Mine {
    allocated: ThreadLocal<u64>,
    deallocated: ThreadLocal<u64>,
    first: i64,
    published: i64,
    slot: usize,
}

thread_local! {
    static MINE: Cell<Option<Mine>> = const { Cell::new(None) };
}

/// A thread publishes its change once it has moved this far from what it
/// last published: between times only it sees the change, and its slot's
/// cache line stays shared with the readers for a few commands.
const PUBLISH_BYTES: i64 = 4 * 1024;

/// Publishes this thread's change if it moved [`PUBLISH_BYTES`] (or at all,
/// with `always`); returns the part left unpublished.
fn fold_with(always: bool) -> i64 {
    MINE.try_with(|cell| {
        let mut mine = match cell.get() {
            Some(m) => m,
            None => {
                let (Ok(allocated), Ok(deallocated)) = (allocatedp::read(), deallocatedp::read()) else { return 0 };
                let first = allocated.get() as i64 - deallocated.get() as i64;
                Mine { allocated, deallocated, first, published: 0, slot: SLOTS_TAKEN.fetch_add(1, Relaxed) }
            }
        };
        let change = mine.allocated.get() as i64 - mine.deallocated.get() as i64 - mine.first;
        let pending = change - mine.published;
        if pending.abs() < PUBLISH_BYTES && !(always && pending != 0) {
            cell.set(Some(mine));
            return pending;
        }
        match SLOT.get(mine.slot) {
            Some(s) => s.0.store(change, Relaxed),
            None => {
                OVERFLOW.fetch_add(pending, Relaxed);
            }
        }
        mine.published = change;
        cell.set(Some(mine));
        0
    })
    .unwrap_or(0)
}

/// This thread's unpublished change, publishing it once it is large.
fn fold() -> i64 {
    fold_with(false)
}

/// Publishes this thread's change if it moved [`PUBLISH_BYTES`] (after a
/// batch of commands).
pub fn settle() {
    fold();
}

/// Publishes all of this thread's change: threads that free what others
/// allocated (snapshot and AOF work) call it as they go and before they
/// end.
pub fn publish() {
    fold_with(true);
}

/// Every thread's published change.
fn published() -> i64 {
    let taken = SLOTS_TAKEN.load(Relaxed).min(SLOTS);
    SLOT[..taken].iter().map(|s| s.0.load(Relaxed)).sum::<i64>() + OVERFLOW.load(Relaxed)
}

/// Bytes freed by the application but still held in threads' caches:
/// jemalloc's `stats.allocated` counts them until a cache flushes, so a
/// server that just freed memory would look as full as before.
fn tcache_bytes() -> u64 {
    #[allow(unsafe_code)]
    // SAFETY: this statistic is a size_t, read as usize.
    let bytes = unsafe { tikv_jemalloc_ctl::raw::read::<usize>(b"stats.arenas.4096.tcache_bytes\0") };
    bytes.unwrap_or(0) as u64
}

/// (allocated, active, resident) bytes according to jemalloc, fresh;
/// allocated excludes what sits freed in thread caches.
pub fn jemalloc_stats() -> (u64, u64, u64) {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let a = (stats::allocated::read().unwrap_or(0) as u64).saturating_sub(tcache_bytes());
    let act = stats::active::read().unwrap_or(0) as u64;
    let r = stats::resident::read().unwrap_or(0) as u64;
    (a, act, r)
}

/// (mapped, retained, metadata) bytes according to jemalloc.
pub fn jemalloc_extra() -> (u64, u64, u64) {
    use tikv_jemalloc_ctl::stats;
    let m = stats::mapped::read().unwrap_or(0) as u64;
    let r = stats::retained::read().unwrap_or(0) as u64;
    let meta = stats::metadata::read().unwrap_or(0) as u64;
    (m, r, meta)
}

/// Asks jemalloc to return every arena's dirty pages to the system
/// (MEMORY PURGE): `arena.<MALLCTL_ARENAS_ALL>.purge`.
pub fn purge() {
    // The purge control takes no value: jemalloc wants null pointers and
    // zero lengths, which the safe wrapper cannot pass.
    #[allow(unsafe_code)]
    // SAFETY: a NUL-terminated control name, and null old/new pointers
    // with zero lengths, as this control requires.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}

/// The server's view of its memory use, and the limit it enforces.
pub struct Memory {
    /// jemalloc's `allocated` at start-up, less what threads had
    /// published then: `used` adds what they have published since.
    anchor: AtomicI64,
    /// `maxmemory` (0: no limit), and the policy and sample count, copied
    /// from the config so the check before each command takes no lock.
    limit: AtomicU64,
    policy: parking_lot::RwLock<Policy>,
    samples: AtomicUsize,
    /// How long one command may evict, in µs (maxmemory-eviction-tenacity).
    time_limit_us: AtomicU64,
    /// Memory in use when the server was built (MEMORY STATS, INFO).
    startup: AtomicU64,
    /// Memory maxmemory does not count: the Lua heap, as in Redis (its
    /// garbage between collections would otherwise evict data).
    not_counted: AtomicU64,
    /// Wakes the task evicting ahead; `ahead_pending` is set from the
    /// wake until that task is done, so commands meanwhile do not notify.
    ahead: tokio::sync::Notify,
    ahead_pending: AtomicBool,
    /// Keys evicted ahead, off the request path (INFO
    /// `evicted_keys_ahead`, a part of `evicted_keys`).
    ahead_evicted: AtomicU64,
    /// When eviction last ended with memory still over the limit, and it
    /// has not been under since (Redis's `stat_last_eviction_exceeded_time`):
    /// µs since [`origin_us`]'s origin, plus one; 0 while under.
    exceeded_since: AtomicU64,
    /// µs over the limit in the spells that ended.
    exceeded_total_us: AtomicU64,
}

/// µs on a monotonic clock since its first reading.
fn origin_us() -> u64 {
    static ORIGIN: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    ORIGIN.elapsed().as_micros() as u64
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            ahead: tokio::sync::Notify::new(),
            ahead_pending: AtomicBool::new(false),
            ahead_evicted: AtomicU64::new(0),
            exceeded_since: AtomicU64::new(0),
            exceeded_total_us: AtomicU64::new(0),
            startup: AtomicU64::new(0),
            not_counted: AtomicU64::new(0),
            anchor: AtomicI64::new(0),
            limit: AtomicU64::new(0),
            policy: parking_lot::RwLock::new(Policy::NoEviction),
            samples: AtomicUsize::new(5),
            time_limit_us: AtomicU64::new(EVICTION_TIME_LIMIT.as_micros() as u64),
        }
    }
}

/// What [`Memory::enforce`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// Under the limit (or no limit).
    Ok,
    /// Still over it, but evicting: the cron carries on.
    Evicting,
    /// Over it with nothing more to evict: denyoom commands are refused.
    OutOfMemory,
}

/// How evicting toward a mark ended (a command's eviction, the cron's,
/// or a turn of eviction ahead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evicted {
    /// At or under the mark (or no limit).
    Under,
    /// Still over it after as many keys, or as long, as it may take.
    Bounded,
    /// Still over it with nothing the policy may evict.
    Nothing,
}

impl Memory {
    /// jemalloc's own figures, fresh (INFO's allocator fields, MEMORY
    /// MALLOC-STATS); `used` does not depend on them.
    pub fn allocator(&self) -> (u64, u64, u64) {
        jemalloc_stats()
    }

    /// Bytes in use now, as far as this thread can tell: the start-up
    /// figure moved by what every thread published since, and by this
    /// thread's own unpublished change.
    pub fn used(&self) -> u64 {
        let mine = fold();
        (self.anchor.load(Relaxed) + published() + mine).max(0) as u64
    }

    pub fn set_not_counted(&self, bytes: u64) {
        self.not_counted.store(bytes, Relaxed);
    }

    /// Bytes maxmemory does not count (INFO `mem_not_counted_for_evict`).
    pub fn not_counted(&self) -> u64 {
        self.not_counted.load(Relaxed)
    }

    /// What maxmemory is enforced on.
    fn counted_for_eviction(&self) -> u64 {
        self.used().saturating_sub(self.not_counted())
    }

    /// Takes jemalloc's figure as the baseline, and records it as the
    /// start-up memory.
    pub fn mark_startup(&self) {
        publish();
        self.anchor.store(jemalloc_stats().0 as i64 - published(), Relaxed);
        self.startup.store(self.used(), Relaxed);
    }

    pub fn startup(&self) -> u64 {
        self.startup.load(Relaxed)
    }

    pub fn set_limits(&self, maxmemory: u64, policy: Policy, samples: usize, tenacity: u64) {
        self.limit.store(maxmemory, Relaxed);
        if maxmemory == 0 {
            // No limit, nothing over it: eviction is not asked again, so
            // the spell ends here (Redis's clock runs on).
            self.time_over_limit(false);
        }
        *self.policy.write() = policy;
        self.samples.store(samples.max(1), Relaxed);
        let limit = eviction_time_limit(tenacity).as_micros().min(u64::MAX as u128) as u64;
        self.time_limit_us.store(limit, Relaxed);
    }

    /// The maxmemory-policy in force (as the config set it).
    pub fn policy(&self) -> Policy {
        *self.policy.read()
    }

    /// Whether a limit is set at all (the fast path before each command).
    pub fn limited(&self) -> bool {
        self.limit.load(Relaxed) != 0
    }

    /// Evicts until under `maxmemory`, or until the time limit, or until
    /// nothing more may go.
    /// The clock is read only if it comes to evicting: this runs before
    /// every command while a limit is set.
    pub fn enforce(&self, keyspace: &Keyspace, now_ms: impl FnOnce() -> u64) -> Pressure {
        self.evict(keyspace, now_ms, PER_COMMAND)
    }

    /// The cron's share: eviction a command left unfinished.
    pub fn enforce_in_background(&self, keyspace: &Keyspace, now_ms: u64) -> Pressure {
        self.evict(keyspace, || now_ms, u32::MAX)
    }

    fn evict(&self, keyspace: &Keyspace, now_ms: impl FnOnce() -> u64, most: u32) -> Pressure {
        let limit = self.limit.load(Relaxed);
        let pressure = if limit == 0 {
            Pressure::Ok
        } else {
            let counted = self.counted_for_eviction();
            if counted > limit - headroom(limit) {
                self.nudge_ahead();
            }
            if counted <= limit {
                Pressure::Ok
            } else {
                match self.evict_to(keyspace, now_ms(), limit, most, true).0 {
                    Evicted::Under => Pressure::Ok,
                    Evicted::Bounded => Pressure::Evicting,
                    Evicted::Nothing => Pressure::OutOfMemory,
                }
            }
        };
        self.time_over_limit(pressure != Pressure::Ok);
        pressure
    }

    /// Starts the clock of a spell over the limit when eviction could not
    /// end it, and stops it once memory is under the limit, as Redis's
    /// `performEvictions` does (and when the limit is removed). The
    /// common case, under the limit with no spell running, is one load.
    fn time_over_limit(&self, over: bool) {
        if over {
            if self.exceeded_since.load(Relaxed) == 0 {
                let _ = self.exceeded_since.compare_exchange(0, origin_us() + 1, Relaxed, Relaxed);
            }
        } else if self.exceeded_since.load(Relaxed) != 0 {
            let since = self.exceeded_since.swap(0, Relaxed);
            if since != 0 {
                self.exceeded_total_us.fetch_add((origin_us() + 1).saturating_sub(since), Relaxed);
            }
        }
    }

    /// Milliseconds over the limit: in the spell under way (0 if none),
    /// and in all of them, that one included (INFO
    /// `current_eviction_exceeded_time`, `total_eviction_exceeded_time`).
    pub fn over_limit_ms(&self) -> (u64, u64) {
        let since = self.exceeded_since.load(Relaxed);
        let current = if since == 0 { 0 } else { (origin_us() + 1).saturating_sub(since) };
        (current / 1000, (self.exceeded_total_us.load(Relaxed) + current) / 1000)
    }

    /// Evicts by `maxmemory-policy` until memory is at most `mark`, at
    /// most `most` keys and, if `timed`, the time maxmemory-eviction-tenacity
    /// allows; how it ended and how many keys went.
    fn evict_to(&self, keyspace: &Keyspace, now_ms: u64, mark: u64, most: u32, timed: bool) -> (Evicted, u32) {
        let (policy, samples) = (self.policy(), self.samples.load(Relaxed));
        let started = timed.then(Instant::now);
        let limit = Duration::from_micros(self.time_limit_us.load(Relaxed));
        let mut evicted = 0u32;
        while self.counted_for_eviction() > mark {
            if !keyspace.evict_one(policy, samples, now_ms) {
                return (Evicted::Nothing, evicted);
            }
            evicted += 1;
            let late = || started.is_some_and(|at| at.elapsed() > limit);
            if evicted >= most || (evicted.is_multiple_of(16) && late()) {
                return (Evicted::Bounded, evicted);
            }
        }
        (Evicted::Under, evicted)
    }

    /// Wakes the task evicting ahead, unless it is awake already.
    fn nudge_ahead(&self) {
        if !self.ahead_pending.load(Relaxed) && !self.ahead_pending.swap(true, Relaxed) {
            self.ahead.notify_one();
        }
    }

    /// Waits until a command found memory near the limit.
    pub async fn ahead_wanted(&self) {
        self.ahead.notified().await;
    }

    /// The task evicting ahead is done for now: the next command near the
    /// limit wakes it again.
    pub fn ahead_done(&self) {
        self.ahead_pending.store(false, Relaxed);
    }

    /// One turn of eviction ahead: up to [`AHEAD_BATCH`] keys, toward the
    /// limit less its [`headroom`].
    pub fn evict_ahead(&self, keyspace: &Keyspace, now_ms: u64) -> Evicted {
        let limit = self.limit.load(Relaxed);
        if limit == 0 {
            return Evicted::Under;
        }
        let (ended, evicted) = self.evict_to(keyspace, now_ms, limit - headroom(limit), AHEAD_BATCH, false);
        self.ahead_evicted.fetch_add(evicted as u64, Relaxed);
        ended
    }

    /// Keys evicted ahead since start-up or CONFIG RESETSTAT.
    pub fn evicted_ahead(&self) -> u64 {
        self.ahead_evicted.load(Relaxed)
    }

    /// CONFIG RESETSTAT: a spell under way starts again at the next
    /// eviction that cannot end it, as in Redis.
    pub fn reset_stats(&self) {
        self.ahead_evicted.store(0, Relaxed);
        self.exceeded_since.store(0, Relaxed);
        self.exceeded_total_us.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn eviction_time_limit_follows_tenacity_as_redis() {
        use super::eviction_time_limit as limit;
        assert_eq!(limit(0), Duration::ZERO);
        assert_eq!(limit(10), EVICTION_TIME_LIMIT);
        // Redis: 500 * 1.15^(t-10) µs; about two minutes at 99.
        assert_eq!(limit(11), Duration::from_micros(575));
        let at99 = limit(99).as_secs();
        assert!((100..=130).contains(&at99), "{at99}");
        assert_eq!(limit(100), Duration::MAX);
    }

    use super::*;

    #[test]
    fn used_follows_allocations_and_frees_at_once() {
        let m = Memory::default();
        m.mark_startup();
        let before = m.used();
        // The figure is the process's: other tests' threads (the lazyfree
        // one among them) allocate and free meanwhile, so a megabyte of
        // slack either way.
        let big = vec![1u8; 8 << 20];
        let during = m.used();
        assert!(during >= before + (7 << 20), "{before} → {during}");
        drop(big);
        let after = m.used();
        assert!(after + (6 << 20) < during, "{during} → {after}");
    }
}

//! Memory: the global allocator, and the figure maxmemory is enforced on.
//!
//! jemalloc's statistics are the truth (INFO memory reports them), but
//! reading them fresh costs an `epoch` refresh of tens of microseconds,
//! far too slow for a check before every command. So the allocator is
//! jemalloc wrapped in a counter of requested bytes, the way Redis's
//! zmalloc keeps `used_memory`: [`Memory::used`] is jemalloc's `allocated`
//! at the last refresh (the cron refreshes it `hz` times a second) plus
//! what the counter says changed since. An eviction sees its own frees at
//! once, so it stops as soon as enough is gone.
//!
//! [`Memory::enforce`] is Redis's `performEvictions`, run before each
//! command while `maxmemory` is set: under the limit it does nothing;
//! over it, it evicts by `maxmemory-policy` until under again, for at most
//! [`EVICTION_TIME_LIMIT`] per command (the cron carries on from there,
//! as Redis's eviction timer does). It fails, and denyoom commands get
//! the OOM error, only when nothing more may be evicted.
//!
//! The counter must not become a contended cache line on every malloc:
//! each thread adds into a thread-local cell and folds it into the shared
//! atomic once it has moved by [`FOLD`] bytes. A reading thread adds its
//! own cell, so only other threads' unfolded changes (at most `FOLD` each)
//! are missing from a reading.

use larder_store::{Keyspace, Policy};
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How long one command may spend evicting (Redis: 500 µs at the default
/// maxmemory-eviction-tenacity).
pub const EVICTION_TIME_LIMIT: Duration = Duration::from_micros(500);

/// Bytes a thread may allocate or free before it updates the shared count.
const FOLD: i64 = 16 * 1024;

static COUNTED: AtomicI64 = AtomicI64::new(0);

thread_local! {
    // Const-initialised and without a destructor: usable from inside the
    // allocator at any point of a thread's life, and never allocates.
    static PENDING: Cell<i64> = const { Cell::new(0) };
}

fn note(delta: i64) {
    let _ = PENDING.try_with(|p| {
        let v = p.get() + delta;
        if v.abs() >= FOLD {
            COUNTED.fetch_add(v, Relaxed);
            p.set(0);
        } else {
            p.set(v);
        }
    });
}

/// Bytes requested from the allocator and not yet freed, as far as this
/// thread can tell.
fn counted() -> i64 {
    COUNTED.load(Relaxed) + PENDING.try_with(Cell::get).unwrap_or(0)
}

/// jemalloc, counting what passes through it.
pub struct Counting;

// The one unsafe item of the server: a GlobalAlloc must be an unsafe impl.
// Every method forwards to jemalloc unchanged and only records the size.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = tikv_jemallocator::Jemalloc.alloc(layout);
        if !p.is_null() {
            note(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = tikv_jemallocator::Jemalloc.alloc_zeroed(layout);
        if !p.is_null() {
            note(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        tikv_jemallocator::Jemalloc.dealloc(ptr, layout);
        note(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = tikv_jemallocator::Jemalloc.realloc(ptr, layout, new_size);
        if !p.is_null() {
            note(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// (allocated, active, resident) bytes according to jemalloc, fresh.
pub fn jemalloc_stats() -> (u64, u64, u64) {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let a = stats::allocated::read().unwrap_or(0) as u64;
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
    /// jemalloc `allocated` at the last refresh.
    anchor: AtomicU64,
    /// The counter at that moment.
    counted_at_anchor: AtomicI64,
    /// `maxmemory` (0: no limit), and the policy and sample count, copied
    /// from the config so the check before each command takes no lock.
    limit: AtomicU64,
    policy: parking_lot::RwLock<Policy>,
    samples: AtomicUsize,
    /// Memory in use when the server was built (MEMORY STATS, INFO).
    startup: AtomicU64,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            startup: AtomicU64::new(0),
            anchor: AtomicU64::new(0),
            counted_at_anchor: AtomicI64::new(0),
            limit: AtomicU64::new(0),
            policy: parking_lot::RwLock::new(Policy::NoEviction),
            samples: AtomicUsize::new(5),
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

impl Memory {
    /// Re-reads jemalloc (the cron does, `hz` times a second, and INFO).
    pub fn refresh(&self) -> (u64, u64, u64) {
        let before = counted();
        let stats = jemalloc_stats();
        self.anchor.store(stats.0, Relaxed);
        self.counted_at_anchor.store(before, Relaxed);
        stats
    }

    /// Bytes in use now: the last jemalloc reading moved by what the
    /// counter saw since.
    pub fn used(&self) -> u64 {
        let moved = counted() - self.counted_at_anchor.load(Relaxed);
        (self.anchor.load(Relaxed) as i64 + moved).max(0) as u64
    }

    /// Records the current figure as the start-up baseline.
    pub fn mark_startup(&self) {
        self.startup.store(self.refresh().0, Relaxed);
    }

    pub fn startup(&self) -> u64 {
        self.startup.load(Relaxed)
    }

    pub fn set_limits(&self, maxmemory: u64, policy: Policy, samples: usize) {
        self.limit.store(maxmemory, Relaxed);
        *self.policy.write() = policy;
        self.samples.store(samples.max(1), Relaxed);
    }

    /// Whether a limit is set at all (the fast path before each command).
    pub fn limited(&self) -> bool {
        self.limit.load(Relaxed) != 0
    }

    /// Evicts until under `maxmemory`, or until the time limit, or until
    /// nothing more may go.
    pub fn enforce(&self, keyspace: &Keyspace, now_ms: u64) -> Pressure {
        let limit = self.limit.load(Relaxed);
        if limit == 0 || self.used() <= limit {
            return Pressure::Ok;
        }
        let (policy, samples) = (*self.policy.read(), self.samples.load(Relaxed));
        let started = Instant::now();
        let mut evicted = 0u32;
        while self.used() > limit {
            if !keyspace.evict_one(policy, samples, now_ms) {
                return Pressure::OutOfMemory;
            }
            evicted += 1;
            if evicted.is_multiple_of(16) && started.elapsed() > EVICTION_TIME_LIMIT {
                return Pressure::Evicting;
            }
        }
        Pressure::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_follows_allocations_and_frees_at_once() {
        let m = Memory::default();
        m.refresh();
        let before = m.used();
        let big = vec![1u8; 8 << 20];
        let during = m.used();
        assert!(during >= before + (8 << 20) - FOLD as u64 * 4, "{before} → {during}");
        drop(big);
        let after = m.used();
        assert!(after + (7 << 20) < during, "{during} → {after}");
    }
}

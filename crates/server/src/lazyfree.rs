//! Lazy freeing: UNLINK, FLUSHALL/FLUSHDB ASYNC (and DEL and plain
//! FLUSHALL under `lazyfree-lazy-user-del` / `-user-flush`) hand what they
//! removed to one background thread, which drops it.
//!
//! Dropping a value of a million elements takes milliseconds, all of it on
//! the worker that runs the command; a client deleting a big key should
//! not stall every other client on that worker. As in Redis, only values
//! worth it go (more than 64 allocations, see `Value::free_effort`):
//! sending a string to another thread costs more than freeing it. INFO's
//! `lazyfree_pending_objects` and `lazyfreed_objects` count them as
//! Redis's do.

use larder_store::value::Value;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;

/// Redis's LAZYFREE_THRESHOLD.
pub const THRESHOLD: usize = 64;

/// Something to drop and how many objects it counts as.
type Job = (Box<dyn Send>, u64);

/// Cheap to clone: the keyspace's disposer is one (for
/// `lazyfree-lazy-eviction`, `-expire` and `-server-del`).
#[derive(Clone)]
pub struct LazyFree {
    jobs: mpsc::Sender<Job>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    pending: AtomicU64,
    freed: AtomicU64,
}

impl LazyFree {
    pub fn new() -> LazyFree {
        let (jobs, rx) = mpsc::channel::<Job>();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        std::thread::Builder::new()
            .name("larder-lazyfree".into())
            .spawn(move || {
                // A thread's first call sets where its counting starts:
                // made before any free, so the first job's frees count.
                crate::memory::publish();
                for (job, n) in rx {
                    drop(job);
                    // used_memory sums what each thread publishes; this
                    // one only frees, so it publishes after every job.
                    crate::memory::publish();
                    c.pending.fetch_sub(n, Relaxed);
                    c.freed.fetch_add(n, Relaxed);
                }
            })
            .expect("spawn the lazyfree thread");
        LazyFree { jobs, counts }
    }

    /// Drops `value` here if it is small, else on the background thread.
    pub fn free(&self, value: Value) {
        if value.free_effort() > THRESHOLD {
            self.send(Box::new(value), 1);
        }
    }

    /// Emptied databases: dropped on the background thread if `lazy` (and
    /// not empty), else here.
    pub fn free_flushed(&self, flushed: larder_store::Flushed, lazy: bool) {
        match flushed.keys() as u64 {
            keys if lazy && keys > 0 => self.free_all(flushed, keys),
            _ => drop(flushed),
        }
    }

    /// Drops `what` (an emptied database: `objects` keys) on the
    /// background thread.
    pub fn free_all(&self, what: impl Send + 'static, objects: u64) {
        self.send(Box::new(what), objects);
    }

    fn send(&self, job: Box<dyn Send>, n: u64) {
        self.counts.pending.fetch_add(n, Relaxed);
        if let Err(mpsc::SendError((job, n))) = self.jobs.send((job, n)) {
            // The thread is gone (only at exit): drop it here.
            drop(job);
            self.counts.pending.fetch_sub(n, Relaxed);
        }
    }

    /// INFO's `lazyfree_pending_objects` and `lazyfreed_objects`.
    pub fn stats(&self) -> (u64, u64) {
        (self.counts.pending.load(Relaxed), self.counts.freed.load(Relaxed))
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&self) {
        self.counts.freed.store(0, Relaxed);
    }
}

/// Values the keyspace removes on its own (eviction, expiry, an
/// overwrite), for the kinds its `lazyfree-lazy-*` options send here.
impl larder_store::Disposer for LazyFree {
    fn dispose(&self, value: Value, _why: larder_store::Disposal) {
        self.free(value);
    }
}

impl Default for LazyFree {
    fn default() -> LazyFree {
        LazyFree::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use larder_store::types::set::Set;

    #[test]
    fn only_large_values_go_to_the_thread() {
        let lf = LazyFree::new();
        lf.free(Value::Str(larder_store::value::StrValue::from_slice(b"x")));
        let lim = Default::default();
        let mut set = Set::for_first(b"m0", 1000, &lim);
        for i in 0..1000 {
            set.insert(format!("m{i}").as_bytes(), &lim);
        }
        lf.free(Value::Set(set));
        for _ in 0..200 {
            if lf.stats() == (0, 1) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(lf.stats(), (0, 1), "one value was large enough to go");
        lf.reset_stats();
        assert_eq!(lf.stats(), (0, 0));
    }
}

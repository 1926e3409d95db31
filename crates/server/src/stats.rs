//! Server-wide counters, named like their INFO fields.
//!
//! The ones every command or batch bumps are [`Counter`]s: a copy per
//! thread stripe, each on its own cache line, summed when INFO reads
//! them. With one shared atomic, every command on one worker took the
//! line from the other worker's cache first: under `perf`, the
//! instructions after commandstats' two increments and the world lock's
//! release were the hottest in a pipelined GET's dispatch.

use hashbrown::HashMap;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Copies of each hot counter; threads take stripes in turn.
pub const STRIPES: usize = 8;

/// This thread's stripe, fixed at its first use. Threads past
/// [`STRIPES`] share one (counts stay exact: adds are atomic).
pub fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
    }
    MINE.with(|s| *s)
}

#[repr(align(64))]
#[derive(Default)]
struct Lane(AtomicU64);

/// A counter many threads add to (see the module doc).
#[derive(Default)]
pub struct Counter([Lane; STRIPES]);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0[stripe()].0.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.iter().map(|l| l.0.load(Relaxed)).sum()
    }

    pub fn reset(&self) {
        self.0.iter().for_each(|l| l.0.store(0, Relaxed));
    }
}

#[derive(Default)]
pub struct Stats {
    pub total_connections_received: AtomicU64,
    pub total_commands_processed: Counter,
    pub rejected_connections: AtomicU64,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub total_net_input_bytes: Counter,
    pub total_net_output_bytes: Counter,
    pub total_error_replies: AtomicU64,
    /// Reply buffers the cron trimmed, and batches whose replies grew
    /// their buffer (INFO `reply_buffer_shrinks`, `reply_buffer_expands`).
    pub reply_buffer_shrinks: AtomicU64,
    pub reply_buffer_expands: AtomicU64,
    /// Highest jemalloc `allocated` seen by INFO memory.
    pub used_memory_peak: AtomicU64,
    /// errorstats: replies per error code ("ERR", "WRONGTYPE"…).
    pub errors: Mutex<HashMap<String, u64>>,
}

impl Stats {
    pub fn record_lookup(&self, hit: bool) {
        if hit {
            self.keyspace_hits.add(1);
        } else {
            self.keyspace_misses.add(1);
        }
    }

    pub fn record_error(&self, code: &str) {
        self.total_error_replies.fetch_add(1, Relaxed);
        *self.errors.lock().entry(code.to_string()).or_default() += 1;
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [
            &self.total_connections_received,
            &self.rejected_connections,
            &self.total_error_replies,
            &self.reply_buffer_shrinks,
            &self.reply_buffer_expands,
        ] {
            c.store(0, Relaxed);
        }
        for c in [
            &self.total_commands_processed,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.total_net_input_bytes,
            &self.total_net_output_bytes,
        ] {
            c.reset();
        }
        self.errors.lock().clear();
    }
}

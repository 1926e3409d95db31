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
    /// Replication's traffic, kept out of the two above as Redis keeps
    /// it: the stream sent to replicas, and on a replica the stream read
    /// from its primary.
    pub total_net_repl_input_bytes: Counter,
    pub total_net_repl_output_bytes: Counter,
    /// Reads that brought bytes, and writes of replies, on client
    /// connections (INFO `total_reads_processed`, `total_writes_processed`).
    pub total_reads_processed: Counter,
    pub total_writes_processed: Counter,
    pub total_error_replies: AtomicU64,
    /// Error replies to the primary's stream, to a replica, or to the AOF
    /// being loaded (INFO `unexpected_error_replies`): each means a copy
    /// of the data may now differ from its source.
    pub unexpected_error_replies: AtomicU64,
    /// The active expiry cycle's time, in microseconds (INFO shows
    /// milliseconds; the cycles it cut short are the keyspace's count).
    pub expire_cycle_us: AtomicU64,
    /// The instantaneous rates (see [`Rates`]).
    pub rates: Mutex<Rates>,
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
            &self.unexpected_error_replies,
            &self.reply_buffer_shrinks,
            &self.reply_buffer_expands,
            &self.expire_cycle_us,
        ] {
            c.store(0, Relaxed);
        }
        for c in [
            &self.total_commands_processed,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.total_net_input_bytes,
            &self.total_net_output_bytes,
            &self.total_net_repl_input_bytes,
            &self.total_net_repl_output_bytes,
            &self.total_reads_processed,
            &self.total_writes_processed,
        ] {
            c.reset();
        }
        self.errors.lock().clear();
    }
}

/// Samples kept of each rate (Redis's `STATS_METRIC_SAMPLES`).
const SAMPLES: usize = 16;
/// The shortest time between two samples (Redis samples every 100 ms).
const SAMPLE_EVERY_MS: u64 = 100;

/// Redis's instantaneous metrics: commands a second and bytes a second in
/// and out, each a rate over the time since the last sample, averaged
/// over the last [`SAMPLES`] samples (about the last 1.6 s). The cron
/// samples; INFO reads the averages.
#[derive(Default)]
pub struct Rates {
    at_ms: u64,
    last: [u64; RATES],
    samples: [[f64; SAMPLES]; RATES],
    next: usize,
    taken: usize,
}

/// Which rate: the order of [`Rates::sample`]'s totals.
pub enum Rate {
    Commands = 0,
    NetInput = 1,
    NetOutput = 2,
    ReplInput = 3,
    ReplOutput = 4,
}

const RATES: usize = 5;

impl Rates {
    /// Records the totals as of `now_ms` (in [`Rate`]'s order), if the
    /// last sample is at least 100 ms old. The first call only starts the
    /// clock.
    pub fn sample(&mut self, now_ms: u64, totals: [u64; RATES]) {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        if self.at_ms != 0 && elapsed < SAMPLE_EVERY_MS {
            return;
        }
        if self.at_ms != 0 {
            for (i, &total) in totals.iter().enumerate() {
                // A CONFIG RESETSTAT in between makes a total go back.
                let delta = total.saturating_sub(self.last[i]);
                self.samples[i][self.next] = delta as f64 * 1000.0 / elapsed as f64;
            }
            self.next = (self.next + 1) % SAMPLES;
            self.taken = (self.taken + 1).min(SAMPLES);
        }
        self.at_ms = now_ms;
        self.last = totals;
    }

    /// The average of the samples taken, per second.
    pub fn per_sec(&self, which: Rate) -> f64 {
        if self.taken == 0 {
            return 0.0;
        }
        self.samples[which as usize][..self.taken].iter().sum::<f64>() / self.taken as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_average_the_last_sixteen_samples() {
        let mut r = Rates::default();
        r.sample(1_000, [0; RATES]);
        assert_eq!(r.per_sec(Rate::Commands), 0.0, "one reading is no rate");
        r.sample(1_050, [10; RATES]);
        assert_eq!(r.per_sec(Rate::Commands), 0.0, "samples are 100 ms apart at least");
        // 200 commands in 200 ms: 1,000 a second.
        r.sample(1_200, [200, 2048, 0, 0, 400]);
        assert_eq!(r.per_sec(Rate::Commands), 1000.0);
        assert_eq!(r.per_sec(Rate::NetInput), 10240.0);
        assert_eq!(r.per_sec(Rate::ReplOutput), 2000.0);
        // Then 16 samples of nothing push it out of the average.
        for i in 1..=15 {
            r.sample(1_200 + 100 * i, [200, 2048, 0, 0, 400]);
            assert!(r.per_sec(Rate::Commands) > 0.0);
        }
        r.sample(1_200 + 1_600, [200, 2048, 0, 0, 400]);
        assert_eq!(r.per_sec(Rate::Commands), 0.0);
        // A reset counter counts as no traffic, not as a huge negative rate.
        r.sample(3_000, [0; RATES]);
        assert_eq!(r.per_sec(Rate::Commands), 0.0);
    }
}

//! What a cache counts, twice over: plain atomics in [`Stats`] (read by
//! tests and by callers that want numbers without a metrics stack), and
//! the same events through the `metrics` crate, labelled with the cache's
//! name (its namespace), for whatever recorder the application installs
//! (Prometheus in larder-demo).
//!
//! The metric handles are registered once, when the cache is built, so an
//! L1 hit costs an atomic increment rather than a registry lookup. The
//! consequence: install the recorder before building caches (a handle
//! taken with no recorder installed counts nothing).

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters for hit ratios and for tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub l1_hits: AtomicU64,
    pub l2_hits: AtomicU64,
    /// Lookups that found no fresh value (loaded, shared a load, or were
    /// answered stale).
    pub misses: AtomicU64,
    /// Loader calls.
    pub loads: AtomicU64,
    /// Loader calls that failed.
    pub load_errors: AtomicU64,
    /// Misses answered by another caller's load (single flight in this
    /// process, or a lease held by another process).
    pub collapsed: AtomicU64,
    /// Loaded values not stored because the key was invalidated meanwhile.
    pub stale_sets_prevented: AtomicU64,
    /// Times the whole L1 was flushed (sequence gap, reconnect, namespace bump).
    pub l1_flushes: AtomicU64,
    /// Entries L1 dropped to stay within its capacity.
    pub l1_evictions: AtomicU64,
    /// Stale values served because the loader failed (fail-safe).
    pub fail_safe_served: AtomicU64,
    /// Stale values served while a background refresh ran (read-through).
    pub stale_served: AtomicU64,
    /// Background refreshes (refresh-ahead, stale-while-revalidate).
    pub refreshes: AtomicU64,
}

impl Stats {
    /// Hits over lookups so far (0 before the first lookup).
    pub fn hit_ratio(&self) -> f64 {
        let hits = self.l1_hits.load(Ordering::Relaxed) + self.l2_hits.load(Ordering::Relaxed);
        let total = hits + self.misses.load(Ordering::Relaxed);
        if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        }
    }
}

/// Where a lookup's answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The in-process tier.
    L1,
    /// The server tier.
    L2,
    /// This caller ran the loader.
    Loaded,
    /// Another caller's load answered (single flight, or another
    /// process's lease).
    Collapsed,
    /// A stale value: the loader failed and the fail-safe answered, or a
    /// read-through cache is revalidating it in the background.
    Stale,
}

impl Source {
    /// Whether the cache held a fresh value.
    pub fn is_hit(self) -> bool {
        matches!(self, Source::L1 | Source::L2)
    }
}

/// The `metrics` handles, one per event, labelled `cache = <name>`.
struct Meters {
    l1_hits: Counter,
    l2_hits: Counter,
    misses: Counter,
    loads: Counter,
    load_errors: Counter,
    load_seconds: Histogram,
    collapsed: Counter,
    stale_fail_safe: Counter,
    stale_revalidating: Counter,
    l1_evictions: Counter,
    l1_flushes: Counter,
    stale_sets_prevented: Counter,
    hit_ratio: Gauge,
}

impl Meters {
    fn new(name: &str) -> Meters {
        let n = name.to_string();
        Meters {
            l1_hits: counter!("larder_cache_hits_total", "cache" => n.clone(), "tier" => "l1"),
            l2_hits: counter!("larder_cache_hits_total", "cache" => n.clone(), "tier" => "l2"),
            misses: counter!("larder_cache_misses_total", "cache" => n.clone()),
            loads: counter!("larder_cache_loads_total", "cache" => n.clone()),
            load_errors: counter!("larder_cache_load_errors_total", "cache" => n.clone()),
            load_seconds: histogram!("larder_cache_load_duration_seconds", "cache" => n.clone()),
            collapsed: counter!("larder_cache_collapsed_loads_total", "cache" => n.clone()),
            stale_fail_safe: counter!("larder_cache_stale_served_total", "cache" => n.clone(), "reason" => "fail_safe"),
            stale_revalidating: counter!("larder_cache_stale_served_total", "cache" => n.clone(), "reason" => "revalidating"),
            l1_evictions: counter!("larder_cache_l1_evictions_total", "cache" => n.clone()),
            l1_flushes: counter!("larder_cache_l1_flushes_total", "cache" => n.clone()),
            stale_sets_prevented: counter!("larder_cache_stale_sets_prevented_total", "cache" => n.clone()),
            hit_ratio: gauge!("larder_cache_hit_ratio", "cache" => n),
        }
    }
}

/// Something a cache counts.
#[derive(Clone, Copy)]
pub(crate) enum Event {
    /// A lookup answered, from this source.
    Lookup(Source),
    Load(Duration),
    LoadError,
    L1Eviction,
    L1Flush,
    StaleSetPrevented,
    Refresh,
}

/// [`Stats`] and the metric handles, bumped together.
pub(crate) struct Tally {
    pub stats: Stats,
    meters: Meters,
}

impl Tally {
    pub fn new(name: &str) -> Tally {
        Tally { stats: Stats::default(), meters: Meters::new(name) }
    }

    pub fn note(&self, event: Event) {
        let (s, m) = (&self.stats, &self.meters);
        let bump = |a: &AtomicU64, c: &Counter| {
            a.fetch_add(1, Ordering::Relaxed);
            c.increment(1);
        };
        match event {
            Event::Lookup(source) => {
                match source {
                    Source::L1 => bump(&s.l1_hits, &m.l1_hits),
                    Source::L2 => bump(&s.l2_hits, &m.l2_hits),
                    Source::Loaded => bump(&s.misses, &m.misses),
                    Source::Collapsed => {
                        bump(&s.misses, &m.misses);
                        bump(&s.collapsed, &m.collapsed);
                    }
                    Source::Stale => bump(&s.misses, &m.misses),
                }
                m.hit_ratio.set(s.hit_ratio());
            }
            Event::Load(took) => {
                bump(&s.loads, &m.loads);
                m.load_seconds.record(took.as_secs_f64());
            }
            Event::LoadError => bump(&s.load_errors, &m.load_errors),
            Event::L1Eviction => bump(&s.l1_evictions, &m.l1_evictions),
            Event::L1Flush => bump(&s.l1_flushes, &m.l1_flushes),
            Event::StaleSetPrevented => bump(&s.stale_sets_prevented, &m.stale_sets_prevented),
            Event::Refresh => {
                s.refreshes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A stale value served: `fail_safe` (the loader failed) or while
    /// revalidating (read-through).
    pub fn stale(&self, fail_safe: bool) {
        let (s, m) = (&self.stats, &self.meters);
        if fail_safe {
            s.fail_safe_served.fetch_add(1, Ordering::Relaxed);
            m.stale_fail_safe.increment(1);
        } else {
            s.stale_served.fetch_add(1, Ordering::Relaxed);
            m.stale_revalidating.increment(1);
        }
    }
}

//! The latency monitor (LATENCY LATEST, HISTORY, RESET): per event, the
//! latency spikes of at least `latency-monitor-threshold` milliseconds,
//! one sample a second (the worst of that second), the last 160 seconds
//! that had one, and the worst ever seen.
//!
//! Redis's events "command" and "fast-command" are fed by the dispatcher
//! for every command it runs (by the command's `fast` flag), and
//! "expire-cycle" by the active expiry cycle. The threshold is 0 (off) by
//! default, as in Redis, and read with one relaxed load per command; only
//! a spike takes the lock.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Redis's LATENCY_TS_LEN: samples kept per event.
const SAMPLES: usize = 160;

#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub unix_secs: u64,
    pub ms: u64,
}

struct Series {
    /// Oldest first.
    samples: VecDeque<Sample>,
    max: u64,
}

pub struct Latency {
    threshold_ms: AtomicU64,
    events: Mutex<Vec<(&'static str, Series)>>,
    /// `latency-tracking`: per-command histograms (LATENCY HISTOGRAM).
    tracking: AtomicBool,
}

impl Default for Latency {
    fn default() -> Self {
        Latency { threshold_ms: AtomicU64::new(0), events: Mutex::default(), tracking: AtomicBool::new(true) }
    }
}

impl Latency {
    pub fn set_threshold(&self, ms: u64) {
        self.threshold_ms.store(ms, Relaxed);
    }

    pub fn set_tracking(&self, on: bool) {
        self.tracking.store(on, Relaxed);
    }

    #[inline]
    pub fn tracking(&self) -> bool {
        self.tracking.load(Relaxed)
    }

    /// Records `ms` for `event` if the monitor is on and it reaches the
    /// threshold (Redis's latencyAddSampleIfNeeded).
    #[inline]
    pub fn sample_if_needed(&self, event: &'static str, ms: u64) {
        let t = self.threshold_ms.load(Relaxed);
        if t != 0 && ms >= t {
            self.add(event, ms, now_secs());
        }
    }

    fn add(&self, event: &'static str, ms: u64, now: u64) {
        let mut events = self.events.lock();
        let series = match events.iter().position(|(e, _)| *e == event) {
            Some(i) => &mut events[i].1,
            None => {
                events.push((event, Series { samples: VecDeque::with_capacity(SAMPLES), max: 0 }));
                &mut events.last_mut().expect("just pushed").1
            }
        };
        series.max = series.max.max(ms);
        match series.samples.back_mut() {
            // The worst of this second.
            Some(last) if last.unix_secs == now => last.ms = last.ms.max(ms),
            _ => {
                if series.samples.len() == SAMPLES {
                    series.samples.pop_front();
                }
                series.samples.push_back(Sample { unix_secs: now, ms });
            }
        }
    }

    /// LATENCY LATEST: (event, time of the latest spike, its ms, worst ms).
    pub fn latest(&self) -> Vec<(&'static str, u64, u64, u64)> {
        self.events
            .lock()
            .iter()
            .filter_map(|(e, s)| s.samples.back().map(|last| (*e, last.unix_secs, last.ms, s.max)))
            .collect()
    }

    /// LATENCY HISTORY: an event's samples, oldest first.
    pub fn history(&self, event: &[u8]) -> Vec<Sample> {
        let events = self.events.lock();
        match events.iter().find(|(e, _)| e.as_bytes() == event) {
            Some((_, s)) => s.samples.iter().copied().collect(),
            None => Vec::new(),
        }
    }

    /// LATENCY RESET: the named events (all when none are named); how
    /// many there were.
    pub fn reset(&self, names: &[&[u8]]) -> usize {
        let mut events = self.events.lock();
        let before = events.len();
        if names.is_empty() {
            events.clear();
        } else {
            events.retain(|(e, _)| !names.contains(&e.as_bytes()));
        }
        before - events.len()
    }
}

/// One event's figures for LATENCY DOCTOR, over the samples kept.
pub struct EventStats {
    pub event: &'static str,
    pub samples: usize,
    pub avg_ms: u64,
    /// Mean absolute deviation from `avg_ms`.
    pub mad_ms: u64,
    /// Seconds from the oldest sample kept to now, over the samples: how
    /// often a spike came.
    pub period_secs: f64,
    pub worst_ms: u64,
}

impl Latency {
    pub fn threshold(&self) -> u64 {
        self.threshold_ms.load(Relaxed)
    }

    pub fn stats(&self) -> Vec<EventStats> {
        let now = now_secs();
        self.events
            .lock()
            .iter()
            .filter(|(_, s)| !s.samples.is_empty())
            .map(|(event, s)| {
                let n = s.samples.len() as u64;
                let avg = s.samples.iter().map(|x| x.ms).sum::<u64>() / n;
                let mad = s.samples.iter().map(|x| x.ms.abs_diff(avg)).sum::<u64>() / n;
                let oldest = s.samples.front().map_or(now, |x| x.unix_secs);
                let span = now.saturating_sub(oldest).max(1);
                EventStats {
                    event,
                    samples: s.samples.len(),
                    avg_ms: avg,
                    mad_ms: mad,
                    period_secs: span as f64 / n as f64,
                    worst_ms: s.max,
                }
            })
            .collect()
    }
}

/// Wall-clock seconds, as Redis's time(NULL): not the keyspace's clock,
/// which tests may stop.
fn now_secs() -> u64 {
    larder_store::Clock::now_ms(&larder_store::SystemClock) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_a_second_the_last_160_kept() {
        let l = Latency::default();
        l.add("command", 5, 100);
        l.add("command", 9, 100);
        l.add("command", 7, 100);
        l.add("command", 3, 101);
        let h = l.history(b"command");
        assert_eq!(h.iter().map(|s| (s.unix_secs, s.ms)).collect::<Vec<_>>(), vec![(100, 9), (101, 3)]);
        assert_eq!(l.latest(), vec![("command", 101, 3, 9)]);
        for t in 0..200 {
            l.add("command", t, 1000 + t);
        }
        let h = l.history(b"command");
        assert_eq!(h.len(), SAMPLES);
        assert_eq!((h[0].unix_secs, h[SAMPLES - 1].unix_secs), (1040, 1199));
        assert_eq!(l.latest(), vec![("command", 1199, 199, 199)]);
        l.add("command", 1, 1199);
        assert_eq!(l.latest(), vec![("command", 1199, 199, 199)], "the worst of the second stays");
        assert_eq!(l.reset(&[b"nosuch"]), 0);
        assert_eq!(l.reset(&[]), 1);
        assert!(l.history(b"command").is_empty());
    }
}

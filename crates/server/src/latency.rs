//! The latency monitor (LATENCY LATEST, HISTORY, RESET, GRAPH): per event, the
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

impl Latency {
    /// LATENCY GRAPH: `event`'s samples as Redis draws them (a header, a
    /// rule, then an ASCII sparkline labelled with how long ago each
    /// sample is); None if the event has none.
    pub fn graph(&self, event: &[u8]) -> Option<String> {
        let now = now_secs();
        let events = self.events.lock();
        let (name, series) = events.iter().find(|(e, _)| e.as_bytes() == event)?;
        let samples: Vec<(u64, String)> =
            series.samples.iter().map(|x| (x.ms, ago_label(now.saturating_sub(x.unix_secs)))).collect();
        let (low, high) = samples.iter().fold((u64::MAX, 0), |(lo, hi), (ms, _)| (lo.min(*ms), hi.max(*ms)));
        let mut out = format!("{name} - high {high} ms, low {} ms (all time high {} ms)\n", low.min(high), series.max);
        out.push_str(&"-".repeat(GRAPH_COLUMNS));
        out.push('\n');
        sparkline(&mut out, &samples, GRAPH_COLUMNS, 4);
        Some(out)
    }
}

/// Redis's LATENCY_GRAPH_COLS.
const GRAPH_COLUMNS: usize = 80;

/// How long ago, as LATENCY GRAPH labels a sample: seconds, minutes,
/// hours or days, whole.
fn ago_label(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Draws `samples` (value, label) as Redis's sparkline.c does with its
/// fill style: each column is a sample, scaled between the lowest and the
/// highest over `rows` rows of three levels each (`_`, `o`, `#`, and `|`
/// below the top of a bar); then, after a blank row, each label written
/// downward under its column. Wider sequences are drawn in blocks of
/// `columns`, a blank line between.
fn sparkline(out: &mut String, samples: &[(u64, String)], columns: usize, rows: usize) {
    const LEVELS: &[u8] = b"_o#";
    let Some(low) = samples.iter().map(|s| s.0).min() else { return };
    let high = samples.iter().map(|s| s.0).max().unwrap_or(low);
    let range = if high == low { 1.0 } else { (high - low) as f64 };
    let steps = (LEVELS.len() * rows) as i64;
    let labelled = samples.iter().any(|s| !s.1.is_empty());
    for (block, chunk) in samples.chunks(columns).enumerate() {
        if block > 0 {
            out.push('\n');
        }
        for row in 0.. {
            let mut line = vec![b' '; chunk.len()];
            let mut drawn = false;
            for (j, (value, label)) in chunk.iter().enumerate() {
                // Truncated twice, as the C expression does.
                let step = (((value - low) as f64 * steps as f64).trunc() / range) as i64;
                let step = step.clamp(0, steps - 1);
                if row < rows {
                    drawn = true;
                    let level = step - ((rows - row - 1) * LEVELS.len()) as i64;
                    if (0..LEVELS.len() as i64).contains(&level) {
                        line[j] = LEVELS[level as usize];
                    } else if level >= LEVELS.len() as i64 {
                        line[j] = b'|';
                    }
                } else if row == rows {
                    // The blank row between the bars and the labels.
                    drawn = labelled;
                    break;
                } else if let Some(&c) = label.as_bytes().get(row - rows - 1) {
                    drawn = true;
                    line[j] = c;
                }
            }
            if !drawn {
                break;
            }
            out.push_str(&String::from_utf8_lossy(&line));
            out.push('\n');
        }
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

    /// The graph redis-server 7.0.15 drew for these six samples.
    #[test]
    fn sparkline_draws_as_redis_does() {
        let samples: Vec<(u64, String)> = [(41, "8s"), (15, "6s"), (60, "5s"), (25, "4s"), (100, "2s"), (12, "1s")]
            .iter()
            .map(|(v, l)| (*v, l.to_string()))
            .collect();
        let mut out = String::new();
        sparkline(&mut out, &samples, GRAPH_COLUMNS, 4);
        assert_eq!(out, "    # \n  _ | \n_ | | \n|_|o|_\n      \n865421\nssssss\n");
        assert_eq!(
            (ago_label(59), ago_label(60), ago_label(7200), ago_label(86400 * 3)),
            ("59s".into(), "1m".into(), "2h".into(), "3d".into())
        );
    }

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

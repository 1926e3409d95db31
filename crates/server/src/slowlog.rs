//! SLOWLOG: the commands that ran longer than `slowlog-log-slower-than`
//! microseconds, newest first, at most `slowlog-max-len` of them.
//!
//! Entries are Redis's: an id, the Unix time, the duration, the arguments
//! (at most 32, each cut at 128 bytes, with Redis's "... (N more …)"
//! notes; passwords shown as `(redacted)`, as MONITOR shows them), the
//! client's address and name. The dispatcher offers every command it runs,
//! as Redis 7.0's call() does with CMD_CALL_SLOWLOG: a client's, each of
//! EXEC's (not EXEC), a script's own calls (from `?:0`, Redis's Lua
//! client) and the script; a command that blocked once it is served; none
//! replayed from the AOF. The threshold is an atomic read on
//! that path, so a command that is not slow costs one relaxed load; only
//! a slow one takes the lock.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Redis's SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING.
const MAX_ARGC: usize = 32;
const MAX_STRING: usize = 128;

pub struct Entry {
    pub id: u64,
    pub unix_secs: u64,
    pub micros: u64,
    pub args: Vec<Bytes>,
    pub peer: String,
    pub name: Bytes,
}

pub struct SlowLog {
    entries: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
    /// `slowlog-log-slower-than`; negative: off.
    threshold: AtomicI64,
    max_len: AtomicUsize,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            entries: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
            threshold: AtomicI64::new(10_000),
            max_len: AtomicUsize::new(128),
        }
    }
}

impl SlowLog {
    pub fn configure(&self, threshold: i64, max_len: u64) {
        self.threshold.store(threshold, Relaxed);
        let max_len = max_len.min(usize::MAX as u64) as usize;
        self.max_len.store(max_len, Relaxed);
        let mut entries = self.entries.lock();
        entries.truncate(max_len);
    }

    /// Whether a command that ran `micros` belongs in the log.
    #[inline]
    pub fn is_slow(&self, micros: u64) -> bool {
        let t = self.threshold.load(Relaxed);
        t >= 0 && micros >= t as u64 && self.max_len.load(Relaxed) > 0
    }

    /// Logs a command (call [`SlowLog::is_slow`] first).
    pub fn push(&self, args: &[&[u8]], micros: u64, peer: String, name: Bytes) {
        let entry = Entry {
            id: self.next_id.fetch_add(1, Relaxed),
            unix_secs: larder_store::Clock::now_ms(&larder_store::SystemClock) / 1000,
            micros,
            args: entry_args(args),
            peer,
            name,
        };
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(self.max_len.load(Relaxed));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// The newest `count` entries, through `f` (the lock is held meanwhile).
    pub fn newest<R>(&self, count: usize, f: impl FnOnce(&mut dyn Iterator<Item = &Entry>) -> R) -> R {
        let entries = self.entries.lock();
        f(&mut entries.iter().take(count))
    }
}

/// The arguments as Redis keeps them in an entry.
fn entry_args(args: &[&[u8]]) -> Vec<Bytes> {
    let hidden = crate::monitor::redacted(args);
    let kept = args.len().min(MAX_ARGC);
    (0..kept)
        .map(|i| {
            if kept != args.len() && i == kept - 1 {
                Bytes::from(format!("... ({} more arguments)", args.len() - kept + 1))
            } else if hidden.contains(&i) {
                Bytes::from_static(b"(redacted)")
            } else if args[i].len() > MAX_STRING {
                let mut b = args[i][..MAX_STRING].to_vec();
                b.extend_from_slice(format!("... ({} more bytes)", args[i].len() - MAX_STRING).as_bytes());
                Bytes::from(b)
            } else {
                Bytes::copy_from_slice(args[i])
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_32_arguments_of_128_bytes_and_hide_passwords() {
        let long = vec![b'x'; 130];
        let mut args: Vec<&[u8]> = vec![b"sadd", b"k", &long];
        let members: Vec<Vec<u8>> = (0..40).map(|i| format!("m{i}").into_bytes()).collect();
        args.extend(members.iter().map(|m| m.as_slice()));
        let kept = entry_args(&args);
        assert_eq!(kept.len(), 32);
        assert_eq!(&kept[2][..128], &long[..128]);
        assert_eq!(&kept[2][128..], b"... (2 more bytes)");
        assert_eq!(kept[31], Bytes::from("... (12 more arguments)"));
        let auth = entry_args(&[b"auth", b"user", b"secret"]);
        assert_eq!(auth, vec![Bytes::from("auth"), Bytes::from("(redacted)"), Bytes::from("(redacted)")]);
    }

    #[test]
    fn the_log_keeps_the_newest_max_len() {
        let log = SlowLog::default();
        log.configure(0, 2);
        for name in ["a", "b", "c"] {
            assert!(log.is_slow(0));
            log.push(&[name.as_bytes()], 1, "1.2.3.4:5".into(), Bytes::new());
        }
        let ids: Vec<u64> = log.newest(10, |it| it.map(|e| e.id).collect());
        assert_eq!(ids, vec![2, 1]);
        log.configure(-1, 2);
        assert!(!log.is_slow(1_000_000));
    }
}

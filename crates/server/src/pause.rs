//! CLIENT PAUSE: clients' commands held, and the dataset kept still, for a
//! while (typically the window of a failover).
//!
//! While a pause lasts, the commands it covers (all of them, or under
//! WRITE those that may change the dataset or reach the replication
//! stream) are not run: dispatch marks the client postponed and its
//! connection waits here, keeping the bytes that arrive meanwhile, until
//! the pause ends; then the command runs as if it had just arrived.
//! Replicas, the primary's link, EXEC's and scripts' own commands and a
//! replayed log are never held (see dispatch). Keys neither expire nor get
//! evicted during a pause, as in Redis: the keyspace is told until when
//! (`Keyspace::hold_expiry_until`), so a key past its deadline reads as
//! missing but stays stored.
//!
//! The state is read on every command, so "is any pause on" is one relaxed
//! load; everything else is behind a mutex that only CLIENT PAUSE, UNPAUSE
//! and held commands take.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Commands that may write or replicate wait; reads run.
    Write,
    /// Every command waits.
    All,
}

pub struct Pause {
    /// The pause in force: its mode and its end in ms (server clock).
    state: Mutex<Option<(Mode, u64)>>,
    /// Whether `state` may hold a pause (cleared lazily once it is over).
    on: AtomicBool,
    /// Bumped whenever a pause ends early or changes, waking the held.
    changed: watch::Sender<u64>,
    /// Clients whose command is held (INFO's blocked_clients).
    held: AtomicUsize,
}

impl Default for Pause {
    fn default() -> Self {
        Pause { state: Mutex::new(None), on: AtomicBool::new(false), changed: watch::Sender::new(0), held: 0.into() }
    }
}

impl Pause {
    /// CLIENT PAUSE: holds `mode`'s commands until `until_ms`. A pause
    /// already on keeps the stronger mode and the later end, as Redis
    /// merges two pauses of one purpose.
    pub fn start(&self, mode: Mode, until_ms: u64, now: u64, keyspace: &larder_store::Keyspace) {
        let mut st = self.state.lock();
        let merged = match *st {
            Some((m, end)) if end > now => (m.max(mode), end.max(until_ms)),
            _ => (mode, until_ms),
        };
        *st = Some(merged);
        self.on.store(true, Relaxed);
        keyspace.hold_expiry_until(merged.1);
        self.changed.send_modify(|g| *g += 1);
    }

    /// CLIENT UNPAUSE: ends the pause now; the held commands run.
    pub fn end(&self, keyspace: &larder_store::Keyspace) {
        *self.state.lock() = None;
        self.on.store(false, Relaxed);
        keyspace.hold_expiry_until(0);
        self.changed.send_modify(|g| *g += 1);
    }

    /// The pause in force at `now` (its mode and end), if any.
    pub fn current(&self, now: u64) -> Option<(Mode, u64)> {
        if !self.on.load(Relaxed) {
            return None;
        }
        let mut st = self.state.lock();
        match *st {
            Some((m, end)) if end > now => Some((m, end)),
            _ => {
                *st = None;
                self.on.store(false, Relaxed);
                None
            }
        }
    }

    /// Whether a pause is on at `now`.
    pub fn holds(&self, now: u64) -> bool {
        self.any() && self.current(now).is_some()
    }

    /// Whether any pause may be on: the hot path's check.
    #[inline]
    pub fn any(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Tells a held client when to look again: subscribe, then check
    /// [`Self::current`], then wait for a change or the end.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn held(&self) -> usize {
        self.held.load(Relaxed)
    }

    /// Counts a client as held while the returned guard lives.
    pub fn hold(&self) -> HeldGuard<'_> {
        self.held.fetch_add(1, Relaxed);
        HeldGuard(self)
    }
}

pub struct HeldGuard<'a>(&'a Pause);

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Relaxed);
    }
}

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
//! A pause has a purpose, as in Redis: CLIENT PAUSE's, and FAILOVER's
//! (writes held until the failover ends or is aborted). Each starts and
//! ends on its own; what is held is what either holds.
//!
//! The state is read on every command, so "is any pause on" is one relaxed
//! load; everything else is behind a mutex that only CLIENT PAUSE, UNPAUSE,
//! FAILOVER and held commands take.

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

/// Why clients are paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// CLIENT PAUSE.
    Client = 0,
    /// FAILOVER, until it ends.
    Failover = 1,
    /// A shutdown waiting for its replicas (`shutdown-timeout`).
    Shutdown = 2,
}

pub struct Pause {
    /// Each purpose's pause: its mode and its end in ms (server clock).
    state: Mutex<[Option<(Mode, u64)>; 3]>,
    /// Whether `state` may hold a pause (cleared lazily once it is over).
    on: AtomicBool,
    /// Bumped whenever a pause ends early or changes, waking the held.
    changed: watch::Sender<u64>,
    /// Clients whose command is held (INFO's blocked_clients).
    held: AtomicUsize,
}

impl Default for Pause {
    fn default() -> Self {
        Pause {
            state: Mutex::new([None; 3]),
            on: AtomicBool::new(false),
            changed: watch::Sender::new(0),
            held: 0.into(),
        }
    }
}

impl Pause {
    /// CLIENT PAUSE (or FAILOVER): holds `mode`'s commands until
    /// `until_ms`. A pause of the same purpose already on keeps the
    /// stronger mode and the later end, as Redis merges them.
    pub fn start(&self, purpose: Purpose, mode: Mode, until_ms: u64, now: u64, keyspace: &larder_store::Keyspace) {
        let mut st = self.state.lock();
        let slot = &mut st[purpose as usize];
        *slot = Some(match *slot {
            Some((m, end)) if end > now => (m.max(mode), end.max(until_ms)),
            _ => (mode, until_ms),
        });
        self.settle(&mut st, now, keyspace);
    }

    /// CLIENT UNPAUSE (or a failover's end): ends that purpose's pause
    /// now; the held commands run unless another still holds them.
    pub fn end(&self, purpose: Purpose, now: u64, keyspace: &larder_store::Keyspace) {
        let mut st = self.state.lock();
        st[purpose as usize] = None;
        self.settle(&mut st, now, keyspace);
    }

    /// After a change: what is on, until when keys are held, and a wake-up
    /// for the held clients to look again.
    fn settle(&self, st: &mut [Option<(Mode, u64)>; 3], now: u64, keyspace: &larder_store::Keyspace) {
        let merged = merge(st, now);
        self.on.store(merged.is_some(), Relaxed);
        keyspace.hold_expiry_until(merged.map_or(0, |(_, end)| end));
        self.changed.send_modify(|g| *g += 1);
    }

    /// The pause in force at `now` (the stronger mode, the later end), if
    /// any.
    pub fn current(&self, now: u64) -> Option<(Mode, u64)> {
        if !self.on.load(Relaxed) {
            return None;
        }
        let mut st = self.state.lock();
        let merged = merge(&mut st, now);
        if merged.is_none() {
            self.on.store(false, Relaxed);
        }
        merged
    }

    /// Whether a pause is on at `now`, read only if one may be.
    pub fn holds(&self, now: impl FnOnce() -> u64) -> bool {
        self.any() && self.current(now()).is_some()
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

/// The purposes' pauses still on at `now` (those over are cleared),
/// merged.
fn merge(st: &mut [Option<(Mode, u64)>; 3], now: u64) -> Option<(Mode, u64)> {
    let mut merged: Option<(Mode, u64)> = None;
    for slot in st.iter_mut() {
        match *slot {
            Some((m, end)) if end > now => {
                merged = Some(merged.map_or((m, end), |(mm, me)| (mm.max(m), me.max(end))));
            }
            _ => *slot = None,
        }
    }
    merged
}

pub struct HeldGuard<'a>(&'a Pause);

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Relaxed);
    }
}

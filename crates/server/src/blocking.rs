//! Blocking commands (BLPOP, BLMOVE, BZPOPMIN, …): who waits on which key.
//!
//! A blocked client never leaves its own connection task. Its command
//! finds every key empty, registers a [`Waiter`] on those keys while it
//! still holds their shard locks, and the connection then waits. A write
//! that may make a key ready calls [`Blocking::key_ready`], which wakes the
//! first waiter queued on that key; that client re-runs its command on its
//! own thread, taking the locks it needs (BLMOVE's destination too). This
//! avoids running one client's command on another's thread.
//!
//! FIFO: only the head of a key's queue is woken. A client that fails its
//! retry keeps its place; one that leaves (served, timed out, killed,
//! disconnected) wakes the next waiter on each of its keys, so a readiness
//! signal is never lost, at the cost of an occasional spurious retry.
//! Registration happens under the shard locks and writers signal under
//! them, so no push can slip between "found empty" and "registered".

use bytes::Bytes;
use hashbrown::HashMap;
use larder_protocol::Frame;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// Per (db, key), the clients waiting on it, longest-waiting first.
type Queues = HashMap<(usize, Bytes), VecDeque<Arc<Waiter>>>;

pub struct Waiter {
    pub client_id: u64,
    notify: Notify,
    /// CLIENT UNBLOCK's request: 0 none, else an `Unblock` as u8.
    unblock: std::sync::atomic::AtomicU8,
}

/// Clients waiting on something other than a key (WAIT's replica
/// acknowledgements, WAITAOF's fsyncs): every one is woken at each event
/// and looks again. Weak, so a client that left is dropped at the next.
#[derive(Default)]
pub struct WakeList(Mutex<Vec<std::sync::Weak<Waiter>>>);

impl WakeList {
    pub fn add(&self, waiter: &Arc<Waiter>) {
        self.0.lock().push(Arc::downgrade(waiter));
    }

    pub fn wake_all(&self) {
        self.0.lock().retain(|w| match w.upgrade() {
            Some(w) => {
                w.wake();
                true
            }
            None => false,
        });
    }
}

/// How CLIENT UNBLOCK ends a wait.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unblock {
    /// As if the timeout passed.
    Timeout = 1,
    /// With an -UNBLOCKED error.
    Error = 2,
}

impl Waiter {
    pub async fn woken(&self) {
        self.notify.notified().await
    }

    /// Runs the waiting command again (WAIT, when a replica acknowledges
    /// or its deadline passes).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// What CLIENT UNBLOCK asked for, if it did (taken once).
    pub fn take_unblock(&self) -> Option<Unblock> {
        match self.unblock.swap(0, Ordering::Relaxed) {
            1 => Some(Unblock::Timeout),
            2 => Some(Unblock::Error),
            _ => None,
        }
    }
}

/// A client's blocked state, kept across retries so its deadline and its
/// place in each queue stay those of its first attempt.
pub struct BlockState {
    pub waiter: Arc<Waiter>,
    pub db: usize,
    pub keys: Vec<Bytes>,
    pub deadline: Option<Instant>,
    /// Sent if the deadline passes (a null array for BLPOP, null for BLMOVE).
    pub timeout_reply: Frame,
    /// What a retry must reuse from the first run (XREAD's `$` IDs).
    pub memo: Vec<Bytes>,
    /// At the deadline, run the command once more instead of sending
    /// `timeout_reply` (WAIT replies with the count at that moment).
    pub rerun_at_deadline: bool,
}

#[derive(Default)]
pub struct Blocking {
    /// Registered waiters, so writers skip the map while nobody blocks.
    waiting: AtomicUsize,
    /// Of those, the ones with a deadline.
    timed: AtomicUsize,
    queues: Mutex<Queues>,
}

impl Blocking {
    /// (blocked clients, keys with waiters, clients with a deadline) for
    /// INFO clients.
    pub fn stats(&self) -> (usize, usize, usize) {
        let q = self.queues.lock();
        let timed = self.timed.load(Ordering::Relaxed);
        (self.waiting.load(Ordering::Relaxed), q.len(), timed)
    }

    /// Queues `client_id` on `keys` in database `db`.
    pub fn register(&self, client_id: u64, db: usize, keys: &[Bytes], timed: bool) -> Arc<Waiter> {
        let w = Arc::new(Waiter { client_id, notify: Notify::new(), unblock: Default::default() });
        let mut q = self.queues.lock();
        for k in keys {
            let queue = q.entry((db, k.clone())).or_default();
            if !queue.iter().any(|x| Arc::ptr_eq(x, &w)) {
                queue.push_back(w.clone());
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.timed.fetch_add(timed as usize, Ordering::Relaxed);
        w
    }

    /// CLIENT UNBLOCK: ends `client_id`'s wait; false if it is not blocked.
    pub fn unblock(&self, client_id: u64, how: Unblock) -> bool {
        let q = self.queues.lock();
        let Some(w) = q.values().flatten().find(|w| w.client_id == client_id) else { return false };
        w.unblock.store(how as u8, Ordering::Relaxed);
        w.notify.notify_one();
        true
    }

    /// The ids of the clients blocked now (CLIENT LIST's `b` flag).
    pub fn blocked_clients(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.queues.lock().values().flatten().map(|w| w.client_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Removes a waiter from its queues and passes the turn on each key.
    pub fn unregister(&self, st: &BlockState) {
        {
            let mut q = self.queues.lock();
            for k in &st.keys {
                let slot = (st.db, k.clone());
                if let Some(queue) = q.get_mut(&slot) {
                    queue.retain(|x| !Arc::ptr_eq(x, &st.waiter));
                    if queue.is_empty() {
                        q.remove(&slot);
                    }
                }
            }
        }
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.timed.fetch_sub(st.deadline.is_some() as usize, Ordering::Relaxed);
        for k in &st.keys {
            self.key_ready(st.db, k);
        }
    }

    /// The highest database anyone waits in.
    fn max_db(&self) -> usize {
        self.queues.lock().keys().map(|(db, _)| *db).max().unwrap_or(0)
    }

    /// SWAPDB and FLUSHALL change whole databases: wake the first waiter
    /// on every key of `db` to look again.
    pub fn db_changed(&self, db: usize) {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        for ((d, _), queue) in self.queues.lock().iter() {
            if *d == db {
                if let Some(w) = queue.front() {
                    w.notify.notify_one();
                }
            }
        }
    }

    /// A write may have made `key` non-empty: wake the first client
    /// waiting on it. Cheap when nobody is blocked.
    pub fn key_ready(&self, db: usize, key: &[u8]) {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        let q = self.queues.lock();
        if let Some(w) = q.get(&(db, Bytes::copy_from_slice(key))).and_then(|queue| queue.front()) {
            w.notify.notify_one();
        }
    }
}

/// Wakes the first waiter on every key a write touches, whatever the
/// command: a delete or a change of type must reach a blocked XREADGROUP
/// (which then fails, as in Redis), and for the other waiters a needless
/// retry finds nothing and keeps their place. Commands that fill a key
/// also call `key_ready` directly, which this makes redundant but cheap.
pub struct BlockingSink {
    pub blocking: Arc<Blocking>,
    pub commands: Arc<crate::cmd::table::CommandTable>,
}

impl larder_store::EffectSink for BlockingSink {
    fn apply(&self, e: &larder_store::Effect<'_>) {
        if self.blocking.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        match e.args.first().map(|a| a.to_ascii_lowercase()).as_deref() {
            Some(b"flushall") => (0..=self.blocking.max_db()).for_each(|db| self.blocking.db_changed(db)),
            Some(b"flushdb") => self.blocking.db_changed(e.db),
            _ => crate::multi::written_keys(&self.commands, e, |db, key| self.blocking.key_ready(db, key)),
        }
    }
}

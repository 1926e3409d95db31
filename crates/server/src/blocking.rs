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
}

impl Waiter {
    pub async fn woken(&self) {
        self.notify.notified().await
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
        let w = Arc::new(Waiter { client_id, notify: Notify::new() });
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

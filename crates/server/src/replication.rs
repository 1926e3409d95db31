//! The primary's side of replication: SYNC and PSYNC send a replica the
//! dataset as an RDB image, then every write as the effect stream states
//! it, as RESP commands (the same encoding the AOF appends; see
//! propagate.rs).
//!
//! Why it is built this way:
//! - A replica is one more effect-stream consumer, so it receives exactly
//!   what the AOF records: deterministic commands (PEXPIREAT, SREM for
//!   SPOP, DEL for a lazy expiry), transactions and scripts whole inside
//!   MULTI … EXEC, SELECT wherever the database changes.
//! - The full sync runs with the world lock held exclusively (SYNC is
//!   EXCLUSIVE in the table): the replica is registered and the image
//!   taken with no command running, so the stream starts exactly where
//!   the image ends. Background deletions (expiry, eviction) that land
//!   meanwhile reach the stream too and are idempotent. Holding the lock
//!   stalls clients for as long as encoding the dataset takes, like
//!   SAVE; a fork-less cut as BGSAVE uses would lift that, and is left for
//!   when replica-side replication arrives.
//! - Bytes for a replica go to its connection's outbox, the queue pub/sub
//!   messages use, so a replica that stops reading is cut off by the
//!   `client-output-buffer-limit` replica class instead of growing memory
//!   without bound.
//! - There is no backlog yet: every PSYNC is answered with FULLRESYNC.

use crate::propagate::{append_selecting, stage, Staged};
use crate::pubsub::{BufferLimit, Outbox};
use larder_store::{Effect, EffectSink};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

thread_local! {
    static STAGED: RefCell<Option<Staged>> = const { RefCell::new(None) };
}

/// What a replica last acknowledged (REPLCONF ACK), and when.
#[derive(Default)]
pub struct Ack {
    pub offset: AtomicU64,
    pub at_ms: AtomicU64,
}

struct Replica {
    id: u64,
    outbox: Arc<Outbox>,
    /// The database this replica's stream last selected.
    db: Option<usize>,
    limit: BufferLimit,
    /// REPLCONF listening-port, for INFO.
    port: u16,
    ip: String,
    acked: Arc<Ack>,
    /// The stream while the image is being made: sent right after it.
    held: Option<Vec<u8>>,
}

impl Replica {
    /// Stream bytes for this replica: held while its image is being made,
    /// else queued on its connection.
    fn send(&mut self, bytes: &[u8]) {
        match &mut self.held {
            Some(held) => held.extend_from_slice(bytes),
            None => {
                self.outbox.push(bytes, self.limit);
            }
        }
    }
}

#[derive(Default)]
struct Feeds {
    replicas: Vec<Replica>,
    /// The database the stream as a whole last selected, for the offset.
    db: Option<usize>,
}

pub struct Replication {
    feeds: Mutex<Feeds>,
    count: AtomicUsize,
    /// Bytes of replication stream produced (`master_repl_offset`).
    offset: AtomicU64,
    /// 40 hex digits naming this primary's history.
    pub replid: String,
    last_ping_ms: AtomicU64,
    /// A replica has attached at some point.
    ever: std::sync::atomic::AtomicBool,
    /// min-replicas-to-write and min-replicas-max-lag, copied from the
    /// config so the write path takes no config lock.
    min_to_write: AtomicU64,
    max_lag: AtomicU64,
    /// The primary this server replicates (REPLICAOF), if any.
    pub upstream: crate::replica::ReplicaRole,
    /// replica-read-only and replica-serve-stale-data, copied from the
    /// config for the command path.
    read_only: std::sync::atomic::AtomicBool,
    serve_stale: std::sync::atomic::AtomicBool,
    /// A cheap "is a replica" for the command path.
    is_replica: std::sync::atomic::AtomicBool,
}

impl Default for Replication {
    fn default() -> Replication {
        Replication {
            feeds: Mutex::default(),
            count: AtomicUsize::new(0),
            offset: AtomicU64::new(0),
            replid: crate::server::random_hex_id(),
            last_ping_ms: AtomicU64::new(0),
            ever: Default::default(),
            min_to_write: AtomicU64::new(0),
            max_lag: AtomicU64::new(10),
            upstream: Default::default(),
            read_only: std::sync::atomic::AtomicBool::new(true),
            serve_stale: std::sync::atomic::AtomicBool::new(true),
            is_replica: Default::default(),
        }
    }
}

/// What INFO replication lists per replica.
pub struct ReplicaInfo {
    pub ip: String,
    pub port: u16,
    pub offset: u64,
    /// Seconds since its last ACK.
    pub lag: u64,
}

impl EffectSink for Replication {
    fn apply(&self, effect: &Effect<'_>) {
        if self.count.load(Relaxed) == 0 {
            // A transaction staged when the last replica left must not
            // swallow later writes (only possible once one has attached).
            if self.ever.load(Relaxed) {
                STAGED.with(|s| {
                    if let Ok(mut s) = s.try_borrow_mut() {
                        s.take();
                    }
                });
            }
            return;
        }
        if let Some(cmds) = stage(&STAGED, effect) {
            self.feed(&cmds);
        }
    }
}

impl Replication {
    fn feed(&self, cmds: &[(usize, Vec<u8>)]) {
        let mut feeds = self.feeds.lock();
        let Feeds { replicas, db } = &mut *feeds;
        let stream_db = *db;
        let mut whole = Vec::new();
        append_selecting(&mut whole, db, cmds);
        self.offset.fetch_add(whole.len() as u64, Relaxed);
        let mut own = Vec::new();
        for r in replicas.iter_mut() {
            // A replica in step with the stream (the usual case) is sent
            // the stream's bytes; a new one needs its own SELECT first.
            if r.db == stream_db {
                r.db = *db;
                r.send(&whole);
            } else {
                own.clear();
                append_selecting(&mut own, &mut r.db, cmds);
                r.send(&own);
            }
        }
        self.prune(&mut feeds);
    }

    /// Forgets replicas whose connection has gone.
    fn prune(&self, feeds: &mut Feeds) {
        feeds.replicas.retain(|r| !r.outbox.is_closed());
        self.count.store(feeds.replicas.len(), Relaxed);
    }

    /// Registers a replica whose stream starts now, held back until
    /// `release` sends the image; returns its ack cell and the offset the
    /// stream starts at. The caller holds the world lock exclusively, so
    /// only background deletions can land before the image is taken.
    pub fn attach(
        &self,
        id: u64,
        outbox: Arc<Outbox>,
        limit: BufferLimit,
        ip: String,
        port: u16,
        now_ms: u64,
    ) -> (Arc<Ack>, u64) {
        // Counted as acknowledged when it attaches, as Redis stamps a
        // replica's ack time when it goes online.
        let acked = Arc::new(Ack { offset: AtomicU64::new(0), at_ms: AtomicU64::new(now_ms) });
        let mut feeds = self.feeds.lock();
        feeds.replicas.retain(|r| r.id != id);
        self.prune(&mut feeds);
        let r = Replica { id, outbox, db: None, limit, port, ip, acked: acked.clone(), held: Some(Vec::new()) };
        feeds.replicas.push(r);
        self.prune(&mut feeds);
        self.ever.store(true, Relaxed);
        (acked, self.offset())
    }

    /// Sends `head` (the image) and then what the stream held meanwhile.
    pub fn release(&self, id: u64, head: &[u8]) {
        let mut feeds = self.feeds.lock();
        if let Some(r) = feeds.replicas.iter_mut().find(|r| r.id == id) {
            r.outbox.push(head, BufferLimit::default());
            if let Some(held) = r.held.take() {
                r.outbox.push(&held, r.limit);
            }
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset.load(Relaxed)
    }

    pub fn replicas(&self, now_ms: u64) -> Vec<ReplicaInfo> {
        let feeds = self.feeds.lock();
        feeds
            .replicas
            .iter()
            .filter(|r| !r.outbox.is_closed())
            .map(|r| ReplicaInfo {
                ip: r.ip.clone(),
                port: r.port,
                offset: r.acked.offset.load(Relaxed),
                lag: now_ms.saturating_sub(r.acked.at_ms.load(Relaxed)) / 1000,
            })
            .collect()
    }

    pub fn set_min_replicas(&self, to_write: u64, max_lag: u64) {
        self.min_to_write.store(to_write, Relaxed);
        self.max_lag.store(max_lag, Relaxed);
    }

    /// Redis's checkGoodReplicasStatus, negated: this is a primary,
    /// min-replicas-to-write is set and fewer replicas than that are good,
    /// so writes are refused.
    /// `now_ms` is only read when the setting is on: the clock is not free
    /// on every VM, and this runs for every command.
    pub fn refuses_writes(&self, now_ms: impl FnOnce() -> u64) -> bool {
        let (need, lag) = (self.min_to_write.load(Relaxed), self.max_lag.load(Relaxed));
        need > 0 && lag > 0 && !self.is_replica() && (self.good_replicas(now_ms(), lag) as u64) < need
    }

    pub fn has_replicas(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    pub fn set_replica_options(&self, read_only: bool, serve_stale: bool) {
        self.read_only.store(read_only, Relaxed);
        self.serve_stale.store(serve_stale, Relaxed);
    }

    pub fn is_replica(&self) -> bool {
        self.is_replica.load(Relaxed)
    }

    /// A replica refusing clients' writes (READONLY).
    pub fn read_only_replica(&self) -> bool {
        self.is_replica() && self.read_only.load(Relaxed)
    }

    /// A replica whose link is down and that may not serve stale data
    /// (MASTERDOWN for commands without the stale flag).
    pub fn stale_refused(&self) -> bool {
        self.is_replica()
            && !self.serve_stale.load(Relaxed)
            && self.upstream.link().is_none_or(|l| l.state.load(Relaxed) != crate::replica::CONNECTED)
    }

    /// REPLICAOF host port: replicate it; this server's own replicas are
    /// dropped (their ids returned, to disconnect), as Redis makes them
    /// resync with it.
    pub fn follow(&self, shared: &Arc<crate::Shared>, host: String, port: u16) -> Vec<u64> {
        self.is_replica.store(true, Relaxed);
        self.upstream.start(shared, host, port);
        let mut feeds = self.feeds.lock();
        let ids = feeds.replicas.drain(..).map(|r| r.id).collect();
        self.prune(&mut feeds);
        ids
    }

    /// REPLICAOF NO ONE: false if this was not a replica.
    pub fn unfollow(&self) -> bool {
        self.is_replica.store(false, Relaxed);
        self.upstream.stop()
    }

    /// Replicas whose last ACK is at most `max_lag` seconds old (Redis's
    /// good replicas, for min-replicas-to-write).
    pub fn good_replicas(&self, now_ms: u64, max_lag: u64) -> usize {
        if self.count.load(Relaxed) == 0 {
            return 0;
        }
        self.replicas(now_ms).iter().filter(|r| r.lag <= max_lag).count()
    }

    /// From the cron: a PING into the stream every
    /// `repl-ping-replica-period` seconds while replicas are attached, so
    /// they can tell a quiet primary from a dead link.
    pub fn cron_tick(&self, now_ms: u64, period_secs: u64) {
        if self.count.load(Relaxed) == 0 {
            return;
        }
        let last = self.last_ping_ms.load(Relaxed);
        if now_ms.saturating_sub(last) < period_secs.saturating_mul(1000) {
            return;
        }
        self.last_ping_ms.store(now_ms, Relaxed);
        let mut ping = Vec::new();
        larder_persist::aof::encode_command(&mut ping, &[b"PING"]);
        let mut feeds = self.feeds.lock();
        self.offset.fetch_add(ping.len() as u64, Relaxed);
        for r in feeds.replicas.iter_mut() {
            r.send(&ping);
        }
        self.prune(&mut feeds);
    }

    /// The first ping of a new replica waits a whole period.
    pub fn reset_ping(&self, now_ms: u64) {
        self.last_ping_ms.store(now_ms, Relaxed);
    }
}

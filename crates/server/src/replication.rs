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
//! - The full sync's image is a cut, as BGSAVE takes (see snapshot.rs):
//!   the replica is registered while the cut begins with every shard
//!   locked, so its stream starts exactly where the image's instant is,
//!   and the image is made on a thread while clients go on. Background
//!   deletions (expiry, eviction) that land meanwhile reach the stream
//!   and are idempotent. While another cut runs (a BGSAVE, an AOF
//!   rewrite), the image is made by SCAN under the world lock PSYNC
//!   holds (it is EXCLUSIVE), which stalls clients as SAVE does.
//! - Bytes for a replica go to its connection's outbox, the queue pub/sub
//!   messages use, so a replica that stops reading is cut off by the
//!   `client-output-buffer-limit` replica class instead of growing memory
//!   without bound.
//! - The backlog holds the last `repl-backlog-size` bytes of the stream,
//!   from the first replica's attach until `repl-backlog-ttl` seconds
//!   without any. A replica whose link broke asks PSYNC for the offset it
//!   reached; if the backlog still holds it, the replica gets +CONTINUE
//!   and the bytes since, not a new image. The stream is the same bytes
//!   for every replica in step (the usual case), so the backlog is one
//!   more copy of them, appended under the lock that feeds the replicas:
//!   no write can fall between what the backlog sent and what the
//!   replica receives next. History is named by the replication id: a
//!   backlog freed, or a primary turned replica, takes a new one, so no
//!   replica continues across a gap.
//! - A replica passes its primary's stream on verbatim (Redis's
//!   proxying), to its own replicas and into its backlog, under its
//!   primary's id and offsets, instead of streaming its own effects: so a
//!   promoted replica's history is its old primary's, continued (PSYNC2).
//!   Promotion names a new id and keeps the old one as `replid2` up to
//!   the offset it reached, so the other replicas, pointed at it, ask for
//!   the rest with the old id and continue (+CONTINUE with the new one);
//!   a primary turned replica asks its new primary the same way, with its
//!   own history. A replica's replicas that need a full sync get it from
//!   its link, between two of its primary's commands (see `defer`), so the
//!   image and the stream they then receive meet exactly.

use crate::propagate::{append_selecting, stage, Staged};
use crate::pubsub::{BufferLimit, Outbox};
use larder_store::{Effect, EffectSink};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

thread_local! {
    static STAGED: RefCell<Option<Staged>> = const { RefCell::new(None) };
    /// While the link applies one of its primary's commands on this
    /// thread: the stream offset just past it (0: none). See
    /// [`Replication::applying`].
    static APPLYING_UP_TO: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Where a snapshot's data stands in a replication history: saved in the
/// RDB as Redis's `repl-id`, `repl-offset` and `repl-stream-db`, so a
/// restarted replica continues its primary's stream (PSYNC) instead of
/// syncing in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPosition {
    pub replid: String,
    pub offset: u64,
    /// The database the stream's next command without a SELECT is for.
    pub stream_db: usize,
}

/// What a replica last acknowledged (REPLCONF ACK), and when.
#[derive(Default)]
pub struct Ack {
    pub offset: AtomicU64,
    /// How far of the stream the replica's AOF is synced (FACK; 0 while
    /// it has no AOF).
    pub aof_offset: AtomicU64,
    pub at_ms: AtomicU64,
}

struct Replica {
    id: u64,
    outbox: Arc<Outbox>,
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
    /// The stream's last bytes, up to the offset (None: no backlog).
    backlog: Option<std::collections::VecDeque<u8>>,
    /// On a replica, the database its primary's stream had selected at
    /// the offset (the link's client's, after the bytes last passed on).
    proxied_db: usize,
}

/// A connection becoming a replica: which one, where its stream goes, and
/// what INFO lists for it.
#[derive(Clone)]
pub struct Joining {
    pub id: u64,
    pub outbox: Arc<Outbox>,
    pub limit: BufferLimit,
    pub ip: String,
    /// REPLCONF listening-port.
    pub port: u16,
    /// Where its REPLCONF ACKs go: made when it asks, so a full sync
    /// served later (by a replica's link) reaches the same cell.
    pub ack: Arc<Ack>,
}

/// Redis's floor for `repl-backlog-size` (its CONFIG_REPL_BACKLOG_MIN_SIZE).
const BACKLOG_MIN: u64 = 16 * 1024;

/// Replication counters for INFO stats.
#[derive(Default)]
pub struct SyncStats {
    pub full: AtomicU64,
    pub partial_ok: AtomicU64,
    pub partial_err: AtomicU64,
}

impl SyncStats {
    /// CONFIG RESETSTAT (Redis's resetServerStats clears these three).
    pub fn reset(&self) {
        [&self.full, &self.partial_ok, &self.partial_err].iter().for_each(|c| c.store(0, Relaxed));
    }
}

pub struct Replication {
    feeds: Mutex<Feeds>,
    count: AtomicUsize,
    /// Bytes of replication stream produced (`master_repl_offset`).
    offset: AtomicU64,
    /// 40 hex digits naming this primary's history.
    replid: parking_lot::RwLock<String>,
    /// A backlog exists: writes feed it even with no replica attached.
    backlogged: std::sync::atomic::AtomicBool,
    /// repl-backlog-size and repl-backlog-ttl, copied from the config.
    backlog_size: AtomicU64,
    backlog_ttl: AtomicU64,
    /// When the cron first saw no replica attached (0: one is).
    alone_since_ms: AtomicU64,
    pub stats: SyncStats,
    /// WAIT's and WAITAOF's clients, woken when a replica acknowledges.
    waiting: crate::blocking::WakeList,
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
    ignore_maxmemory: std::sync::atomic::AtomicBool,
    /// A cheap "is a replica" for the command path.
    is_replica: std::sync::atomic::AtomicBool,
    /// The history this one continues, after a promotion or a primary's
    /// new id (`master_replid2`): PSYNC with it continues up to
    /// `second_offset` (`second_repl_offset`, -1: none).
    replid2: parking_lot::RwLock<String>,
    second_offset: std::sync::atomic::AtomicI64,
    /// Following a primary: the stream is its bytes, passed on verbatim
    /// by the link ([`Replication::proxy`]), not this server's effects.
    proxying: std::sync::atomic::AtomicBool,
    /// Replicas of this replica waiting for a full sync, which its link
    /// serves between two commands of its primary's stream.
    deferred: Mutex<Vec<(Joining, bool)>>,
    deferred_wanted: tokio::sync::Notify,
    /// A command of the primary's stream that has written (under its
    /// shards' locks) but is not passed on yet: the offset just past it
    /// and the database it wrote in; (0, 0) between commands. A cut sees
    /// it, so a snapshot names the offset its data holds (see
    /// [`Replication::saved_position`]).
    written: Mutex<(u64, usize)>,
    /// No history to continue: the link asks `PSYNC ? -1`, as Redis's
    /// replica does with no cached master (a server started with
    /// `replicaof` and no saved position).
    no_history: std::sync::atomic::AtomicBool,
}

/// master_replid2 when there is none.
const NO_REPLID: &str = "0000000000000000000000000000000000000000";

impl Default for Replication {
    fn default() -> Replication {
        Replication {
            feeds: Mutex::default(),
            count: AtomicUsize::new(0),
            offset: AtomicU64::new(0),
            replid: parking_lot::RwLock::new(crate::server::random_hex_id()),
            backlogged: Default::default(),
            backlog_size: AtomicU64::new(1 << 20),
            backlog_ttl: AtomicU64::new(3600),
            alone_since_ms: AtomicU64::new(0),
            stats: SyncStats::default(),
            waiting: Default::default(),
            last_ping_ms: AtomicU64::new(0),
            ever: Default::default(),
            min_to_write: AtomicU64::new(0),
            max_lag: AtomicU64::new(10),
            upstream: Default::default(),
            read_only: std::sync::atomic::AtomicBool::new(true),
            serve_stale: std::sync::atomic::AtomicBool::new(true),
            ignore_maxmemory: std::sync::atomic::AtomicBool::new(true),
            is_replica: Default::default(),
            replid2: parking_lot::RwLock::new(NO_REPLID.to_string()),
            second_offset: std::sync::atomic::AtomicI64::new(-1),
            proxying: Default::default(),
            deferred: Mutex::default(),
            deferred_wanted: tokio::sync::Notify::new(),
            written: Mutex::new((0, 0)),
            no_history: Default::default(),
        }
    }
}

/// What INFO replication lists per replica.
pub struct ReplicaInfo {
    pub ip: String,
    pub port: u16,
    /// Past its full sync's image (Redis's SLAVE_STATE_ONLINE).
    pub online: bool,
    pub offset: u64,
    /// Seconds since its last ACK.
    pub lag: u64,
}

impl EffectSink for Replication {
    fn apply(&self, effect: &Effect<'_>) {
        // A replica's stream is its primary's, passed on by the link. A
        // transaction staged when it turned replica is dropped, not left
        // to swallow its writes after a promotion.
        if self.proxying.load(Relaxed) {
            // Under the writing command's shard locks: a cut either sees
            // this mark and the write, or neither.
            let up_to = APPLYING_UP_TO.get();
            if up_to != 0 && effect.origin == larder_store::Origin::Command {
                *self.written.lock() = (up_to, effect.db);
            }
            STAGED.with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    s.take();
                }
            });
            return;
        }
        if self.count.load(Relaxed) == 0 && !self.backlogged.load(Relaxed) {
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
    /// DEBUG REPLICATE: `args` onto the replicas' stream as a command,
    /// without running it here (nor writing it to the AOF), so tests can
    /// make a replica diverge. Nothing when no replica could read it.
    pub fn feed_unrun(&self, db: usize, args: &[&[u8]]) {
        if self.proxying.load(Relaxed) || (self.count.load(Relaxed) == 0 && !self.backlogged.load(Relaxed)) {
            return;
        }
        let mut cmd = Vec::new();
        larder_protocol::encode_command(&mut cmd, args);
        self.feed(&[(db, cmd)]);
    }

    fn feed(&self, cmds: &[(usize, Vec<u8>)]) {
        let mut feeds = self.feeds.lock();
        let mut whole = Vec::new();
        append_selecting(&mut whole, &mut feeds.db, cmds);
        self.stream(&mut feeds, &whole);
    }

    /// Bytes onto the stream: counted in the offset, kept in the backlog,
    /// sent to every replica. Every replica gets the same bytes, the ones
    /// the offset counts: a replica's offset must match the primary's for
    /// WAIT and PSYNC.
    fn stream(&self, feeds: &mut Feeds, bytes: &[u8]) {
        self.offset.fetch_add(bytes.len() as u64, Relaxed);
        if let Some(backlog) = &mut feeds.backlog {
            self.keep(backlog, bytes);
        }
        for r in feeds.replicas.iter_mut() {
            r.send(bytes);
        }
        self.prune(feeds);
    }

    /// Appends stream bytes to the backlog, dropping its oldest beyond
    /// the configured size.
    fn keep(&self, backlog: &mut std::collections::VecDeque<u8>, bytes: &[u8]) {
        let size = self.backlog_size.load(Relaxed) as usize;
        let tail = &bytes[bytes.len().saturating_sub(size)..];
        // Room first, then the bytes: the deque never holds more than
        // `size`, so it never doubles past it.
        let excess = (backlog.len() + tail.len()).saturating_sub(size);
        backlog.drain(..excess.min(backlog.len()));
        backlog.extend(tail);
    }

    pub fn replid(&self) -> String {
        self.replid.read().clone()
    }

    /// (master_replid2, second_repl_offset) for INFO.
    pub fn replid2(&self) -> (String, i64) {
        (self.replid2.read().clone(), self.second_offset.load(Relaxed))
    }

    /// Redis's shiftReplicationId: a new id for this history from here on;
    /// PSYNC with the old one still continues up to the offset reached.
    fn shift_replid(&self, new_id: String) {
        let mut id = self.replid.write();
        *self.replid2.write() = std::mem::replace(&mut *id, new_id);
        self.second_offset.store(self.offset() as i64 + 1, Relaxed);
    }

    /// Stream bytes from this replica's primary, applied: passed on to its
    /// replicas and into the backlog, counted in the offset; the stream
    /// has `db` selected after them.
    pub fn proxy(&self, bytes: &[u8], db: usize) {
        if bytes.is_empty() {
            return;
        }
        let mut feeds = self.feeds.lock();
        self.stream(&mut feeds, bytes);
        feeds.proxied_db = db;
        *self.written.lock() = (0, 0);
    }

    /// The database a replica's stream from its primary is in, where its
    /// link's next command applies until the stream selects another.
    pub fn stream_db(&self) -> usize {
        self.feeds.lock().proxied_db
    }

    /// Runs `apply` (the link executing one of its primary's commands,
    /// which ends the stream at offset `up_to`) so that its writes mark
    /// the position they reach: the link passes a command on only after
    /// it ran, outside its locks, and a snapshot cut between the two must
    /// still name the offset its data holds.
    pub fn applying<R>(&self, up_to: u64, apply: impl FnOnce() -> R) -> R {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                APPLYING_UP_TO.set(0);
            }
        }
        APPLYING_UP_TO.set(up_to);
        let _reset = Reset;
        apply()
    }

    /// What a snapshot taken now holds of the replication history, for
    /// its `repl-*` aux fields; None where Redis saves none (a primary
    /// without a backlog: no replica ever attached). The caller holds the
    /// world lock, or every shard's lock (a cut beginning): then no
    /// command of the primary's stream is halfway through its writes, and
    /// one that wrote but is not passed on yet counts as applied.
    pub fn saved_position(&self) -> Option<SavedPosition> {
        let feeds = self.feeds.lock();
        if !self.backlogged.load(Relaxed) || self.no_history.load(Relaxed) {
            return None;
        }
        let replid = self.replid();
        let (offset, stream_db) = if self.proxying.load(Relaxed) {
            match *self.written.lock() {
                (up_to, db) if up_to > self.offset() => (up_to, db),
                _ => (self.offset(), feeds.proxied_db),
            }
        } else {
            // A stream with no database selected begins with a SELECT.
            (self.offset(), feeds.db.unwrap_or(0))
        };
        Some(SavedPosition { replid, offset, stream_db })
    }

    /// At start-up, before the link first connects: the loaded snapshot's
    /// position becomes this replica's, so its PSYNC continues from there
    /// (Redis's replicationCacheMasterUsingMyself after loading).
    pub fn restore(&self, saved: SavedPosition) {
        let mut feeds = self.feeds.lock();
        feeds.backlog = Some(Default::default());
        self.backlogged.store(true, Relaxed);
        self.offset.store(saved.offset, Relaxed);
        *self.replid.write() = saved.replid;
        feeds.proxied_db = saved.stream_db;
        feeds.db = Some(saved.stream_db);
    }

    /// At start-up of a primary, before loading a snapshot that saved its
    /// position (a restart: SHUTDOWN saves one): that history becomes
    /// `master_replid2`, continued up to the saved offset + 1, and the
    /// offset goes on from there with an empty backlog. So the replicas
    /// that followed it continue with PSYNC instead of a full sync, as
    /// with Redis's loadDataFromDisk for a master. The id stays the new
    /// random one, and the stream selects its database anew.
    pub fn restore_as_primary(&self, saved: SavedPosition) {
        let mut feeds = self.feeds.lock();
        feeds.backlog = Some(Default::default());
        feeds.db = None;
        self.backlogged.store(true, Relaxed);
        self.offset.store(saved.offset, Relaxed);
        *self.replid2.write() = saved.replid;
        self.second_offset.store(saved.offset as i64 + 1, Relaxed);
    }

    /// `replicaof` in the config, at start-up: with no position restored
    /// (nothing was loaded, or the file saved none) there is no history
    /// to continue, and the link asks `PSYNC ? -1` as Redis's does.
    pub fn start_from_config(&self) {
        if !self.backlogged.load(Relaxed) {
            self.no_history.store(true, Relaxed);
        }
    }

    /// No history to continue: the link asks `PSYNC ? -1`.
    pub fn has_no_history(&self) -> bool {
        self.no_history.load(Relaxed)
    }

    /// The id and offset this server's data stands at, for the PSYNC its
    /// link asks a primary with: a replica's, its primary's history; a
    /// primary turned replica, its own (Redis's cached master made from
    /// itself). None: no history to continue (`PSYNC ? -1`).
    pub fn position(&self) -> Option<(String, u64)> {
        let _feeds = self.feeds.lock();
        (!self.no_history.load(Relaxed)).then(|| (self.replid(), self.offset()))
    }

    /// A primary answered +CONTINUE naming `new_id`: if it is another id
    /// for the same history (it was promoted), this server takes it and
    /// keeps the old as replid2; its own replicas are dropped (ids
    /// returned) so they learn the new id, as Redis does.
    pub fn continued(&self, new_id: &str) -> Vec<u64> {
        let mut feeds = self.feeds.lock();
        if new_id.is_empty() || *self.replid.read() == new_id {
            return Vec::new();
        }
        self.shift_replid(new_id.to_string());
        self.drop_attached(&mut feeds)
    }

    /// A primary's image replaces the data without passing through the
    /// stream: attached replicas are dropped (ids returned, to disconnect),
    /// since what they hold no longer leads to this data, and the backlog
    /// with them; the history is renamed at once, so a load that fails
    /// halfway is never continued from. [`Self::synced`] names the
    /// primary's after it succeeds.
    pub fn loading_image(&self) -> Vec<u64> {
        let mut feeds = self.feeds.lock();
        let ids = self.drop_attached(&mut feeds);
        self.forget_history(&mut feeds);
        ids
    }

    /// Detaches every replica; their connections' ids, to disconnect.
    fn drop_attached(&self, feeds: &mut Feeds) -> Vec<u64> {
        let ids = feeds.replicas.drain(..).map(|r| r.id).collect();
        self.prune(feeds);
        ids
    }

    /// [`Self::drop_attached`], and those waiting for a full sync from the
    /// link too (a change of role or of primary ends the wait).
    fn drop_all_replicas(&self, feeds: &mut Feeds) -> Vec<u64> {
        let mut ids = self.drop_attached(feeds);
        ids.extend(self.take_deferred().into_iter().map(|(who, _)| who.id));
        ids
    }

    /// The primary's image is loaded: this server's history is now its
    /// primary's `replid` at `offset`, with an empty backlog from there.
    pub fn synced(&self, replid: &str, offset: u64, stream_db: usize) {
        let mut feeds = self.feeds.lock();
        self.no_history.store(false, Relaxed);
        feeds.proxied_db = stream_db;
        *self.written.lock() = (0, 0);
        feeds.backlog = Some(Default::default());
        self.backlogged.store(true, Relaxed);
        self.offset.store(offset, Relaxed);
        *self.replid.write() = replid.to_string();
        *self.replid2.write() = NO_REPLID.to_string();
        self.second_offset.store(-1, Relaxed);
    }

    /// A replica of this replica wants a full sync: its link serves it
    /// (`take_deferred`) between two of its primary's commands.
    pub fn defer(&self, who: Joining, psync: bool) {
        self.deferred.lock().push((who, psync));
        self.deferred_wanted.notify_one();
    }

    pub fn take_deferred(&self) -> Vec<(Joining, bool)> {
        std::mem::take(&mut *self.deferred.lock())
    }

    /// Resolves when a full sync was deferred (for the link's wait).
    pub async fn deferred_wanted(&self) {
        self.deferred_wanted.notified().await
    }

    /// repl-backlog-size and repl-backlog-ttl; a smaller size trims the
    /// backlog at once.
    pub fn set_backlog(&self, size: u64, ttl: u64) {
        self.backlog_size.store(size.max(BACKLOG_MIN), Relaxed);
        self.backlog_ttl.store(ttl, Relaxed);
        if let Some(b) = self.feeds.lock().backlog.as_mut() {
            let size = size.max(BACKLOG_MIN) as usize;
            b.drain(..b.len().saturating_sub(size));
            b.shrink_to(size);
        }
    }

    /// (size, first byte's offset, bytes held) of the backlog, if any, for
    /// INFO replication.
    pub fn backlog(&self) -> Option<(u64, u64, u64)> {
        let feeds = self.feeds.lock();
        let held = feeds.backlog.as_ref()?.len() as u64;
        Some((self.backlog_size.load(Relaxed), self.offset() + 1 - held, held))
    }

    /// Drops the backlog and names a new history: what replicas of the old
    /// one hold can no longer be continued.
    fn forget_history(&self, feeds: &mut Feeds) {
        feeds.backlog = None;
        self.backlogged.store(false, Relaxed);
        *self.replid.write() = crate::server::random_hex_id();
        *self.replid2.write() = NO_REPLID.to_string();
        self.second_offset.store(-1, Relaxed);
    }

    /// PSYNC `replid` `from`: if this primary's backlog holds the stream
    /// from offset `from` on (Redis numbers a stream's first byte 1), the
    /// replica is attached in step with the stream, and +CONTINUE and the
    /// bytes it missed are queued for it; else None (a full sync).
    pub fn resume(&self, replid: &[u8], from: u64, who: Joining, now_ms: u64) -> Option<Arc<Ack>> {
        let mut feeds = self.feeds.lock();
        let ours = self.replid.read().clone();
        let next = self.offset() + 1;
        let backlog = feeds.backlog.as_mut()?;
        let first = next - backlog.len() as u64;
        // The old id of a history renamed at a promotion continues only up
        // to where it was renamed: past it, the two histories differ.
        let same = replid == ours.as_bytes()
            || (replid == self.replid2.read().as_bytes()
                && from as i64 <= self.second_offset.load(Relaxed)
                && self.second_offset.load(Relaxed) > 0);
        if !same || from < first || from > next {
            return None;
        }
        who.outbox.push(format!("+CONTINUE {ours}\r\n").as_bytes(), BufferLimit::default());
        who.outbox.push(&backlog.make_contiguous()[(from - first) as usize..], who.limit);
        Some(self.register(&mut feeds, who, from - 1, now_ms, None))
    }

    /// Adds a replica (replacing any under the same connection) whose
    /// acknowledgement starts at `acked` as of `now_ms`.
    fn register(&self, feeds: &mut Feeds, who: Joining, acked: u64, now_ms: u64, held: Option<Vec<u8>>) -> Arc<Ack> {
        // Counted as acknowledged when it attaches, as Redis stamps a
        // replica's ack time when it goes online.
        let ack = who.ack.clone();
        ack.offset.store(acked, Relaxed);
        ack.at_ms.store(now_ms, Relaxed);
        feeds.replicas.retain(|r| r.id != who.id);
        let Joining { id, outbox, limit, ip, port, .. } = who;
        feeds.replicas.push(Replica { id, outbox, limit, port, ip, acked: ack.clone(), held });
        self.prune(feeds);
        self.ever.store(true, Relaxed);
        ack
    }

    /// Ids of the attached replicas' connections (CLIENT KILL TYPE replica).
    pub fn replica_ids(&self) -> Vec<u64> {
        self.feeds.lock().replicas.iter().map(|r| r.id).collect()
    }

    /// Forgets replicas whose connection has gone.
    fn prune(&self, feeds: &mut Feeds) {
        feeds.replicas.retain(|r| !r.outbox.is_closed());
        self.count.store(feeds.replicas.len(), Relaxed);
    }

    /// Registers a replica whose stream starts now, held back until
    /// `release` sends the image; returns its ack cell and the offset the
    /// stream starts at. The caller holds the world lock exclusively, and
    /// either every shard's lock (a cut beginning) or the image is taken
    /// before the lock is let go, so the image ends where the stream
    /// starts.
    pub fn attach(&self, who: Joining, now_ms: u64) -> (Arc<Ack>, u64) {
        let mut feeds = self.feeds.lock();
        if feeds.backlog.is_none() {
            // Redis creates the backlog with the first replica, too.
            feeds.backlog = Some(Default::default());
            self.backlogged.store(true, Relaxed);
        }
        // The new replica's stream must begin with a SELECT: the stream as
        // a whole forgets its database, so the next write selects it for
        // everyone (counted in the offset, as Redis resets slaveseldb).
        feeds.db = None;
        let acked = self.register(&mut feeds, who, 0, now_ms, Some(Vec::new()));
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

    /// The offset, if writes feed a stream now (a backlog exists).
    pub fn stream_offset(&self) -> Option<u64> {
        self.backlogged.load(Relaxed).then(|| self.offset())
    }

    /// Replicas that acknowledged at least `offset`.
    pub fn acked_at_least(&self, offset: u64) -> usize {
        let feeds = self.feeds.lock();
        feeds.replicas.iter().filter(|r| !r.outbox.is_closed() && r.acked.offset.load(Relaxed) >= offset).count()
    }

    /// Asks every replica for its offset now (REPLCONF GETACK * into the
    /// stream, as Redis does for WAIT) rather than at its next second.
    pub fn request_acks(&self) {
        if self.count.load(Relaxed) == 0 {
            return;
        }
        self.feed_raw(&[b"REPLCONF", b"GETACK", b"*"]);
    }

    /// How many replicas report their AOF synced to `offset` of the
    /// stream or past it (REPLCONF ACK's FACK): WAITAOF's count.
    pub fn aof_acked_at_least(&self, offset: u64) -> usize {
        let feeds = self.feeds.lock();
        feeds.replicas.iter().filter(|r| !r.outbox.is_closed() && r.acked.aof_offset.load(Relaxed) >= offset).count()
    }

    /// WAIT's or WAITAOF's client `waiter` is woken at each acknowledgement.
    pub fn wait_for_acks(&self, waiter: &Arc<crate::blocking::Waiter>) {
        self.waiting.add(waiter);
    }

    /// A replica acknowledged: every WAIT and WAITAOF looks again.
    pub fn acked(&self) {
        self.waiting.wake_all();
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
                online: r.held.is_none(),
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

    pub fn set_replica_options(&self, read_only: bool, serve_stale: bool, ignore_maxmemory: bool) {
        self.read_only.store(read_only, Relaxed);
        self.serve_stale.store(serve_stale, Relaxed);
        self.ignore_maxmemory.store(ignore_maxmemory, Relaxed);
    }

    pub fn is_replica(&self) -> bool {
        self.is_replica.load(Relaxed)
    }

    /// A replica that neither evicts nor refuses writes for maxmemory
    /// (`replica-ignore-maxmemory`): its keys leave as the primary's
    /// stream deletes them, as in Redis.
    pub fn ignores_maxmemory(&self) -> bool {
        self.is_replica() && self.ignore_maxmemory.load(Relaxed)
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

    /// REPLICAOF host port: replicate it, asking to continue this
    /// server's history (its own, if it was a primary); this server's own
    /// replicas are dropped (their ids returned, to disconnect), as Redis
    /// makes them resync with it.
    pub fn follow(&self, shared: &Arc<crate::Shared>, host: String, port: u16) -> Vec<u64> {
        self.is_replica.store(true, Relaxed);
        shared.keyspace.set_expiry_by_primary(true);
        let ids = {
            let mut feeds = self.feeds.lock();
            // The stream goes on in the database it is in: a replica's, as
            // its primary's stream last left it (a sibling it is pointed
            // at passes that stream on without selecting again); a
            // primary's, its own stream's.
            if !self.proxying.swap(true, Relaxed) {
                feeds.proxied_db = feeds.db.unwrap_or(0);
            }
            *self.written.lock() = (0, 0);
            if feeds.backlog.is_none() {
                // What arrives from now on is kept, to be continued from.
                feeds.backlog = Some(Default::default());
                self.backlogged.store(true, Relaxed);
            }
            self.drop_all_replicas(&mut feeds)
        };
        self.upstream.start(shared, host, port);
        ids
    }

    /// REPLICAOF NO ONE: None if this was not a replica. The history
    /// goes on under a new id (the old one kept as replid2), so replicas
    /// of the old primary pointed here continue; this server's own
    /// replicas are dropped (their ids returned) to learn the new id.
    pub fn unfollow(&self, keyspace: &larder_store::Keyspace) -> Option<Vec<u64>> {
        self.is_replica.store(false, Relaxed);
        // A primary expires its own keys, those it kept for its old
        // primary's DEL among them.
        keyspace.set_expiry_by_primary(false);
        if !self.upstream.stop() {
            return None;
        }
        let mut feeds = self.feeds.lock();
        self.proxying.store(false, Relaxed);
        self.no_history.store(false, Relaxed);
        self.shift_replid(crate::server::random_hex_id());
        // Its own stream begins: the first write selects its database.
        feeds.db = None;
        Some(self.drop_all_replicas(&mut feeds))
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
    /// A backlog with no replica for `repl-backlog-ttl` seconds is freed.
    pub fn cron_tick(&self, now_ms: u64, period_secs: u64) {
        // A replica passes on its primary's pings and keeps its backlog:
        // it may be promoted and continue from it.
        if self.proxying.load(Relaxed) {
            return;
        }
        if self.count.load(Relaxed) == 0 {
            if !self.backlogged.load(Relaxed) {
                return;
            }
            let since = self.alone_since_ms.load(Relaxed);
            let ttl = self.backlog_ttl.load(Relaxed);
            if since == 0 {
                self.alone_since_ms.store(now_ms.max(1), Relaxed);
            } else if ttl > 0 && now_ms.saturating_sub(since) >= ttl.saturating_mul(1000) {
                let mut feeds = self.feeds.lock();
                if feeds.replicas.is_empty() {
                    self.forget_history(&mut feeds);
                }
            }
            return;
        }
        self.alone_since_ms.store(0, Relaxed);
        let last = self.last_ping_ms.load(Relaxed);
        // The first period starts at the first tick with a replica (one
        // that continued a restarted primary's history with PSYNC, with
        // no full sync to start it): Redis pings on its cron's loop count,
        // a period after it starts, so a restarted primary's offset stays
        // where its file left it until then.
        if last == 0 {
            self.last_ping_ms.store(now_ms, Relaxed);
            return;
        }
        if now_ms.saturating_sub(last) < period_secs.saturating_mul(1000) {
            return;
        }
        self.last_ping_ms.store(now_ms, Relaxed);
        self.feed_raw(&[b"PING"]);
    }

    /// Replicas past their image whose last REPLCONF ACK is more than
    /// `timeout_secs` old (`repl-timeout`): their connections' ids, to
    /// close, as Redis disconnects a timed-out replica.
    pub fn timed_out(&self, now_ms: u64, timeout_secs: u64) -> Vec<u64> {
        if self.count.load(Relaxed) == 0 {
            return Vec::new();
        }
        let feeds = self.feeds.lock();
        let limit = timeout_secs.saturating_mul(1000);
        feeds
            .replicas
            .iter()
            .filter(|r| r.held.is_none() && now_ms.saturating_sub(r.acked.at_ms.load(Relaxed)) > limit)
            .map(|r| r.id)
            .collect()
    }

    /// One command of the server's own into the stream (not a write:
    /// no SELECT needed), to every replica and the backlog.
    fn feed_raw(&self, args: &[&[u8]]) {
        if self.proxying.load(Relaxed) {
            return;
        }
        let mut bytes = Vec::new();
        larder_protocol::encode_command(&mut bytes, args);
        self.stream(&mut self.feeds.lock(), &bytes);
    }

    /// The first ping of a new replica waits a whole period.
    pub fn reset_ping(&self, now_ms: u64) {
        self.last_ping_ms.store(now_ms, Relaxed);
    }
}

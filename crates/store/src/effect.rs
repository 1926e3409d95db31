//! The effect stream: the one place where a write becomes visible outside
//! the keyspace.
//!
//! Every write emits the deterministic command that reproduces it (EXPIRE
//! becomes PEXPIREAT, INCRBYFLOAT becomes SET, a lazily expired key becomes
//! DEL) while the shard locks are still held. The AOF, replication,
//! keyspace notifications and client tracking subscribe here and nowhere
//! else. The stream can exist before its consumers do.
//!
//! An emit touches no line another core writes: the subscriber list is an
//! `ArcSwap` (loading it takes no shared lock word), and the write count
//! (Redis's `dirty`, for `rdb_changes_since_last_save`) is kept per shard
//! by the keyspace, under the shard's lock, and summed when asked. A
//! global counter and a read-write lock here were two cache-line
//! transfers per write between busy threads.
//!
//! Beside the writes, the stream carries keyspace *events*: Redis's
//! notification names (`set`, `rename_from`, `expired`, `keymiss`, …).
//! They cannot be derived from the writes, because the replayable form
//! hides the cause (INCRBYFLOAT is written as SET, a lazy expiry as DEL),
//! so the code that knows the cause names the event at the point of the
//! write, in the order Redis fires them. Events are not replicated and
//! have no sequence number; an event class nobody listens to costs one
//! relaxed load (`event_mask`).

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// One write, in the form a replica or the AOF would replay it.
#[derive(Debug, Clone, Copy)]
pub struct Effect<'a> {
    pub db: usize,
    pub args: &'a [&'a [u8]],
    /// Who made the write: a client's command, or the server itself.
    pub origin: Origin,
}

/// A write's cause. Replaying does not need it; client tracking does, as
/// a key a client's command expired lazily or evicted was not modified by
/// that client (NOLOOP must not hide it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Command,
    Expiry,
    Eviction,
}

/// Keyspace event classes: Redis's `NOTIFY_*` bits, so the
/// `notify-keyspace-events` flags map onto them one to one.
pub mod class {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 13;
    pub const NEW: u32 = 1 << 14;
    /// What the `A` flag stands for (`g$lshzxetd`).
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// One keyspace event: `name` happened to `key` in `db`.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub db: usize,
    pub class: u32,
    pub name: &'a str,
    pub key: &'a [u8],
}

pub trait EffectSink: Send + Sync {
    fn apply(&self, effect: &Effect<'_>);
    /// A keyspace event whose class is in the stream's event mask.
    fn event(&self, _event: &Event<'_>) {}
}

#[derive(Default)]
pub struct EffectStream {
    /// Writes emitted without a shard to count them in (MULTI/EXEC
    /// markers, FLUSHALL, PUBLISH, expiry and eviction).
    unsharded: AtomicU64,
    event_mask: AtomicU32,
    sinks: ArcSwap<Vec<Arc<dyn EffectSink>>>,
}

impl EffectStream {
    pub fn subscribe(&self, sink: Arc<dyn EffectSink>) {
        self.sinks.rcu(|old| {
            let mut v = Vec::clone(old);
            v.push(sink.clone());
            v
        });
    }

    /// Records one write. Callers hold the locks of the shards it touched.
    pub fn emit(&self, db: usize, args: &[&[u8]]) {
        self.emit_from(db, args, Origin::Command);
    }

    /// `emit` for a write the server made on its own (expiry, eviction).
    pub fn emit_from(&self, db: usize, args: &[&[u8]], origin: Origin) {
        self.unsharded.fetch_add(1, Ordering::Relaxed);
        self.deliver(db, args, origin);
    }

    /// `emit` counting the write in `counter`, the first locked shard's
    /// own (see [`crate::Keyspace::write_count`]). The caller holds that
    /// shard's lock, so nobody else writes the counter: a plain load and
    /// store, no read-modify-write.
    pub(crate) fn emit_counted(&self, db: usize, args: &[&[u8]], counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.deliver(db, args, Origin::Command);
    }

    fn deliver(&self, db: usize, args: &[&[u8]], origin: Origin) {
        let sinks = self.sinks.load();
        if !sinks.is_empty() {
            let effect = Effect { db, args, origin };
            for sink in sinks.iter() {
                sink.apply(&effect);
            }
        }
    }

    /// Records a keyspace event. Callers hold the locks of `key`'s shard
    /// and call this right after the write it describes.
    pub fn event(&self, db: usize, class: u32, name: &str, key: &[u8]) {
        if self.event_mask.load(Ordering::Relaxed) & class == 0 {
            return;
        }
        let event = Event { db, class, name, key };
        for sink in self.sinks.load().iter() {
            sink.event(&event);
        }
    }

    /// The event classes sinks want; others are dropped at the source.
    pub fn set_event_mask(&self, mask: u32) {
        self.event_mask.store(mask, Ordering::Relaxed);
    }

    /// Writes emitted without a shard counter; the keyspace adds its
    /// shards' counts to this.
    pub(crate) fn unsharded(&self) -> u64 {
        self.unsharded.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for EffectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectStream").field("unsharded", &self.unsharded()).finish()
    }
}

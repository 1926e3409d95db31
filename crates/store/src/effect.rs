//! The effect stream: the one place where a write becomes visible outside
//! the keyspace.
//!
//! Every write emits the deterministic command that reproduces it (EXPIRE
//! becomes PEXPIREAT, INCRBYFLOAT becomes SET, a lazily expired key becomes
//! DEL) while the shard locks are still held. The AOF, replication,
//! keyspace notifications and client tracking subscribe here and nowhere
//! else. Emitting with no subscriber costs one atomic increment, so the
//! stream can exist before its consumers do.
//!
//! Beside the writes, the stream carries keyspace *events*: Redis's
//! notification names (`set`, `rename_from`, `expired`, `keymiss`, …).
//! They cannot be derived from the writes, because the replayable form
//! hides the cause (INCRBYFLOAT is written as SET, a lazy expiry as DEL),
//! so the code that knows the cause names the event at the point of the
//! write, in the order Redis fires them. Events are not replicated and
//! have no sequence number; an event class nobody listens to costs one
//! relaxed load (`event_mask`).

use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// One write, in the form a replica or the AOF would replay it.
#[derive(Debug, Clone, Copy)]
pub struct Effect<'a> {
    /// Sequence number, from 1; the replication offset will build on it.
    pub seq: u64,
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
    seq: AtomicU64,
    has_sinks: AtomicBool,
    event_mask: AtomicU32,
    sinks: RwLock<Vec<Arc<dyn EffectSink>>>,
}

impl EffectStream {
    pub fn subscribe(&self, sink: Arc<dyn EffectSink>) {
        let mut sinks = self.sinks.write();
        sinks.push(sink);
        self.has_sinks.store(true, Ordering::Release);
    }

    /// Records one write. Callers hold the locks of the shards it touched.
    pub fn emit(&self, db: usize, args: &[&[u8]]) {
        self.emit_from(db, args, Origin::Command);
    }

    /// `emit` for a write the server made on its own (expiry, eviction).
    pub fn emit_from(&self, db: usize, args: &[&[u8]], origin: Origin) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if self.has_sinks.load(Ordering::Acquire) {
            let effect = Effect { seq, db, args, origin };
            for sink in self.sinks.read().iter() {
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
        for sink in self.sinks.read().iter() {
            sink.event(&event);
        }
    }

    /// The event classes sinks want; others are dropped at the source.
    pub fn set_event_mask(&self, mask: u32) {
        self.event_mask.store(mask, Ordering::Relaxed);
    }

    /// How many effects have been emitted so far.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for EffectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectStream").field("seq", &self.seq()).finish()
    }
}

//! The effect stream: the one place where a write becomes visible outside
//! the keyspace.
//!
//! Every write emits the deterministic command that reproduces it (EXPIRE
//! becomes PEXPIREAT, INCRBYFLOAT becomes SET, a lazily expired key becomes
//! DEL) while the shard locks are still held. The AOF, replication,
//! keyspace notifications and client tracking subscribe here and nowhere
//! else. The stream can exist before its consumers do.
//!
//! An emit touches no line another core writes and takes no barrier: the
//! subscribers sit in a fixed array that only ever grows (see [`Sinks`]),
//! and the write count
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

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

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

/// Most sinks a stream takes. The server subscribes six; tests a few more.
pub const MAX_SINKS: usize = 16;

/// The subscribers: slots filled in order and never emptied, and how many
/// are filled.
///
/// Why not an `ArcSwap<Vec<_>>`, as before: its load takes a debt slot
/// with a sequentially consistent swap, a full barrier on every write
/// (and a second on every eviction): 5% of the server's cycles in a SET
/// benchmark, profiled. Sinks are subscribed at start-up and never
/// removed, so a reader needs only the count (an acquire load) and each
/// filled slot's `OnceLock` (another).
struct Sinks {
    slots: [OnceLock<Arc<dyn EffectSink>>; MAX_SINKS],
    filled: AtomicUsize,
    /// Serializes subscribers, so slots fill in order.
    adding: parking_lot::Mutex<()>,
}

impl Default for Sinks {
    fn default() -> Self {
        Sinks { slots: [const { OnceLock::new() }; MAX_SINKS], filled: AtomicUsize::new(0), adding: Default::default() }
    }
}

impl Sinks {
    fn add(&self, sink: Arc<dyn EffectSink>) {
        let _one_at_a_time = self.adding.lock();
        let n = self.filled.load(Ordering::Relaxed);
        assert!(n < MAX_SINKS, "an effect stream takes at most {MAX_SINKS} sinks");
        let _ = self.slots[n].set(sink);
        self.filled.store(n + 1, Ordering::Release);
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<dyn EffectSink>> {
        self.slots[..self.filled.load(Ordering::Acquire)].iter().filter_map(OnceLock::get)
    }
}

#[derive(Default)]
pub struct EffectStream {
    /// Writes emitted without a shard to count them in (MULTI/EXEC
    /// markers, FLUSHALL, PUBLISH, expiry and eviction).
    unsharded: AtomicU64,
    event_mask: AtomicU32,
    sinks: Sinks,
}

impl EffectStream {
    /// Adds a consumer of every later write and event. Consumers stay for
    /// the stream's life; at most [`MAX_SINKS`] of them.
    pub fn subscribe(&self, sink: Arc<dyn EffectSink>) {
        self.sinks.add(sink);
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
        let effect = Effect { db, args, origin };
        for sink in self.sinks.iter() {
            sink.apply(&effect);
        }
    }

    /// Records a keyspace event. Callers hold the locks of `key`'s shard
    /// and call this right after the write it describes.
    pub fn event(&self, db: usize, class: u32, name: &str, key: &[u8]) {
        if self.event_mask.load(Ordering::Relaxed) & class == 0 {
            return;
        }
        let event = Event { db, class, name, key };
        for sink in self.sinks.iter() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it is given, tagged with its name.
    struct Tap(&'static str, Arc<parking_lot::Mutex<Vec<String>>>);

    impl EffectSink for Tap {
        fn apply(&self, e: &Effect<'_>) {
            self.1.lock().push(format!("{} {}", self.0, String::from_utf8_lossy(e.args[0])));
        }
        fn event(&self, e: &Event<'_>) {
            self.1.lock().push(format!("{} event {}", self.0, e.name));
        }
    }

    #[test]
    fn every_sink_sees_each_write_and_event_in_subscription_order() {
        let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let stream = EffectStream::default();
        stream.emit(0, &[b"before"]);
        stream.subscribe(Arc::new(Tap("a", log.clone())));
        stream.emit(0, &[b"one"]);
        stream.subscribe(Arc::new(Tap("b", log.clone())));
        stream.emit_from(0, &[b"two"], Origin::Eviction);
        stream.event(0, class::EVICTED, "evicted", b"k");
        stream.set_event_mask(class::EVICTED);
        stream.event(0, class::EVICTED, "evicted", b"k");
        stream.event(0, class::EXPIRED, "expired", b"k");
        assert_eq!(*log.lock(), ["a one", "a two", "b two", "a event evicted", "b event evicted"]);
        assert_eq!(stream.unsharded(), 3);
    }

    #[test]
    #[should_panic(expected = "at most 16 sinks")]
    fn a_stream_refuses_sinks_past_its_capacity() {
        let stream = EffectStream::default();
        let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
        for _ in 0..=MAX_SINKS {
            stream.subscribe(Arc::new(Tap("x", log.clone())));
        }
    }
}

//! Keyspace notifications: the effect stream's events, published as Redis
//! does to `__keyspace@<db>__:<key>` (message: the event) and
//! `__keyevent@<db>__:<event>` (message: the key).
//!
//! The notifier is one more effect-stream sink. It reads the flags from an
//! atomic that CONFIG SET updates, and it sets the stream's event mask to
//! exactly the classes enabled, so with notifications off (the default)
//! no event is even built. Publishing happens on the writer's thread while
//! the written key's shard is locked, so events reach subscribers in the
//! order the writes happened, and before the writer's reply.

use crate::pubsub::PubSub;
use larder_store::{class, EffectSink, EffectStream, Event};
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub struct Notifier {
    flags: AtomicU32,
    pubsub: Arc<PubSub>,
}

impl Notifier {
    pub fn new(pubsub: Arc<PubSub>) -> Notifier {
        Notifier { flags: AtomicU32::new(0), pubsub }
    }

    /// Applies `notify-keyspace-events`. Without K or E nothing would be
    /// published, so the stream is told to drop every event.
    pub fn set_flags(&self, flags: u32, effects: &EffectStream) {
        self.flags.store(flags, Ordering::Relaxed);
        let wanted = if flags & (class::KEYSPACE | class::KEYEVENT) != 0 { flags } else { 0 };
        effects.set_event_mask(wanted & !(class::KEYSPACE | class::KEYEVENT));
    }
}

impl EffectSink for Notifier {
    fn apply(&self, _effect: &larder_store::Effect<'_>) {}

    fn event(&self, e: &Event<'_>) {
        let flags = self.flags.load(Ordering::Relaxed);
        if flags & e.class == 0 {
            return;
        }
        let mut channel = Vec::with_capacity(32 + e.key.len().max(e.name.len()));
        if flags & class::KEYSPACE != 0 {
            let _ = write!(channel, "__keyspace@{}__:", e.db);
            channel.extend_from_slice(e.key);
            self.pubsub.publish(&channel, e.name.as_bytes(), false);
        }
        if flags & class::KEYEVENT != 0 {
            channel.clear();
            let _ = write!(channel, "__keyevent@{}__:{}", e.db, e.name);
            self.pubsub.publish(&channel, e.key, false);
        }
    }
}

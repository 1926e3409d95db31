//! The effect stream: the one place where a write becomes visible outside
//! the keyspace.
//!
//! Every write emits the deterministic command that reproduces it (EXPIRE
//! becomes PEXPIREAT, INCRBYFLOAT becomes SET, a lazily expired key becomes
//! DEL) while the shard locks are still held. The AOF, replication,
//! keyspace notifications and client tracking subscribe here and nowhere
//! else. Emitting with no subscriber costs one atomic increment, so the
//! stream can exist before its consumers do.

use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// One write, in the form a replica or the AOF would replay it.
#[derive(Debug, Clone, Copy)]
pub struct Effect<'a> {
    /// Sequence number, from 1; the replication offset will build on it.
    pub seq: u64,
    pub db: usize,
    pub args: &'a [&'a [u8]],
}

pub trait EffectSink: Send + Sync {
    fn apply(&self, effect: &Effect<'_>);
}

#[derive(Default)]
pub struct EffectStream {
    seq: AtomicU64,
    has_sinks: AtomicBool,
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
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if self.has_sinks.load(Ordering::Acquire) {
            let effect = Effect { seq, db, args };
            for sink in self.sinks.read().iter() {
                sink.apply(&effect);
            }
        }
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

//! larder-store: the keyspace and everything a value needs to live in it.
//!
//! Each database is split into shards behind their own locks (see
//! DESIGN.md): a single-key command locks one shard on the connection's own
//! thread, and multi-key work locks shards in ascending order so it can
//! never deadlock. Writes report what they changed to the [`EffectStream`]
//! while their locks are held, which keeps its order consistent with
//! execution. Time comes from a [`Clock`], so expiry tests never sleep.

pub mod ascii7;
pub mod clock;
pub mod effect;
pub mod entry;
pub mod evict;
mod expiry;
pub mod glob;
mod index;
pub mod keyspace;
pub mod memsize;
pub mod newcomers;
pub mod print95;
pub mod split;
pub mod table;
pub mod types;
pub mod value;

pub use clock::{Clock, ManualClock, SystemClock};
pub use effect::{class, Effect, EffectSink, EffectStream, Event, Origin};
pub use evict::Policy;
pub use glob::glob_match;
pub use keyspace::{Access, CutSink, Disposal, Disposer, Entry, Expiry, Flushed, Key, Keyspace, ReadObserver, Ttl, Tx};
pub use types::{
    hash::Hash,
    list::List,
    set::Set,
    stream::{Stream, StreamId},
    zset::{ZEntry, ZRef, ZSet},
    Limits,
};
pub use value::{StrValue, Value};

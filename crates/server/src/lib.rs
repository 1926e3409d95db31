//! larder-server: a Redis-compatible in-memory data store, as a library.
//!
//! [`serve`] takes a listener that is already bound, so tests run the
//! server in-process on port 0, and the binary is a thin wrapper.
//!
//! Thread model: tokio's multi-threaded runtime runs one task per
//! connection. A task parses a batch of pipelined commands and runs each on
//! its own thread against the sharded keyspace (larder-store), locking only
//! the shards a command needs; there is no hop to an owner thread. Replies
//! of a batch leave in one write. Background tasks run the active expiry
//! cycle and the idle-client timeout, as Redis's serverCron does.

/// Stack for the threads that run commands. Scripts run on them and
/// convert values recursively (a script's reply, cjson, cmsgpack), each
/// bounded in depth (1000 levels at most); 16 MiB holds the deepest of
/// those even in a debug build, where tokio's default of 2 MiB does not.
pub const WORKER_STACK_BYTES: usize = 16 << 20;

pub mod acl;
pub mod aof;
pub mod blocking;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod crash;
pub mod digest;
pub mod dispatch;
pub mod error;
pub mod failover;
pub mod info;
pub mod latency;
pub mod lazyfree;
pub mod ldb;
pub mod listen;
pub mod logging;
pub mod lua_ffi;
pub mod lua_strip;
pub mod memory;
pub mod monitor;
pub mod multi;
pub mod notify;
pub mod pause;
pub mod process;
pub mod propagate;
pub mod pubsub;
pub mod replica;
pub mod replication;
pub mod scripting;
pub mod scripting_libs;
pub mod server;
pub mod slowlog;
pub mod snapshot;
pub mod stats;
pub mod tls;
pub mod tracking;

pub use config::Config;

/// jemalloc is the allocator wherever the server runs, binary or embedded:
/// INFO memory and maxmemory read its statistics (see memory.rs).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
pub use server::{serve, Server, Shared};

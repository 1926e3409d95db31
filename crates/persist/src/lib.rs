//! larder-persist: Redis's RDB serialization of Larder values.
//!
//! It owns the DUMP/RESTORE payload (one value in RDB encoding, followed
//! by the RDB version and a CRC64), so keys move between Redis and Larder,
//! and RDB files (`file`), so whole datasets do, and the AOF's manifest
//! and command encoding (`aof`).

pub mod aof;
pub mod file;
pub mod listpack;
pub mod lzf;
pub mod rdb;
pub mod stream;

pub use rdb::{dump_functions, dump_payload, restore_functions, restore_payload, RdbError, RDB_VERSION};

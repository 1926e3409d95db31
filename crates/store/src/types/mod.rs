//! Collection values: one module per Redis type. Each keeps Redis's compact
//! encoding for small collections and switches at Redis's thresholds (the
//! `*-max-listpack-*` config names, carried in [`Limits`]) so that OBJECT
//! ENCODING, and the memory a small collection costs, match Redis.
//!
//! The types know nothing about commands or replies; the server's command
//! modules do the parsing and shaping, these do the data structure work.

pub mod hash;
pub mod list;
pub mod listpack;
pub mod ordered;
pub mod set;
pub mod zset;

/// The encoding thresholds, with Redis's config names and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub set_max_listpack_entries: usize,
    pub set_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// Positive: entries per listpack; negative: -1..-5 select 4..64 KiB.
    pub list_max_listpack_size: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
        }
    }
}

/// A position from a Redis-style signed index (-1 is the last element),
/// clamped the way range commands clamp: None when the range is empty.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end.min(len - 1) };
    if start > end || start >= len || end < 0 {
        None
    } else {
        Some((start as usize, end as usize))
    }
}

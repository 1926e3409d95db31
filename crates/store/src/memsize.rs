//! How many bytes a key costs: MEMORY USAGE and MEMORY STATS.
//!
//! An estimate, as Redis's is: each buffer is rounded up to jemalloc's
//! size class, the fixed parts are the Rust layouts, and for collections
//! with more elements than `samples` the average of the first `samples`
//! stands for all of them (Redis's `MEMORY USAGE … SAMPLES`, default 5;
//! 0 means every element).

use crate::keyspace::Entry;
use crate::table::{Elem, INLINE_KEY};
use crate::types::hash::Hash;
use crate::value::{StrValue, Value};
use bytes::Bytes;

/// jemalloc's size class for an allocation of `n` bytes: 8 and 16, then
/// steps of 16 to 128, then four classes per doubling.
pub fn size_class(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => (n + 15) & !15,
        _ => {
            // 2^group < n <= 2^(group+1); the step is a power of two, so
            // rounding up is a mask (packed buffers ask on every resize).
            let group = (usize::BITS - (n - 1).leading_zeros() - 1) as usize;
            let step = 1usize << (group - 2);
            (n + step - 1) & !(step - 1)
        }
    }
}

/// A `Bytes` held in a container: its handle plus its buffer.
fn bytes_cost(b: &Bytes) -> usize {
    std::mem::size_of::<Bytes>() + size_class(b.len())
}

/// The average of the first `samples` costs (all when 0), times `len`.
fn extrapolate(len: usize, samples: usize, costs: impl Iterator<Item = usize>) -> usize {
    let take = if samples == 0 { len } else { samples.min(len) };
    if take == 0 {
        return 0;
    }
    let sum: usize = costs.take(take).sum();
    sum * len / take
}

impl StrValue {
    fn heap_cost(&self) -> usize {
        match self {
            StrValue::Int(_) | StrValue::Inline(..) => 0,
            StrValue::Split(split) => size_class(split.tail_len()),
            StrValue::Raw(b) => size_class(b.len()),
            // The allocation carries the strong and weak counts.
            StrValue::Shared(b) => size_class(b.len() + 16),
            // The buffer it arrived in (its request's few other bytes
            // too, about a hundred), the count `Bytes` keeps beside it,
            // and the box.
            StrValue::Adopted(b) => size_class(b.len() + 128) + 24 + 32,
        }
    }
}

fn hash_cost(h: &Hash, samples: usize) -> usize {
    // A packed buffer's allocation is already a whole size class.
    if let Some(bytes) = h.packed_bytes() {
        return bytes;
    }
    // The boxed table, its two allocations, and per pair the allocation
    // of its length byte, field and value, unless they fit in the handle.
    boxed_table_cost(h.table().expect("not packed"))
        + extrapolate(h.len(), samples, h.iter().map(|(f, v)| elem_heap(1 + f.len() + v.len())))
}

/// The heap bytes of an [`Elem`] of `len` bytes: none while they fit in
/// its handle.
fn elem_heap(len: usize) -> usize {
    if len > Elem::MAX_INLINE {
        size_class(len)
    } else {
        0
    }
}

/// A dense table's (table.rs) slot vector and index.
fn table_cost<S: crate::table::Keyed>(t: &crate::table::Table<S>) -> usize {
    t.allocations().into_iter().map(size_class).sum()
}

/// [`table_cost`] with the box the table sits in.
fn boxed_table_cost<S: crate::table::Keyed>(t: &crate::table::Table<S>) -> usize {
    size_class(std::mem::size_of_val(t)) + table_cost(t)
}

impl Value {
    /// Estimated bytes this value holds on the heap, beyond its inline
    /// part in the entry.
    pub fn mem_usage(&self, samples: usize) -> usize {
        match self {
            Value::Str(s) => s.heap_cost(),
            Value::List(l) => l.packed_bytes(),
            Value::Hash(h) => h.ttl_bytes() + hash_cost(h, samples),
            Value::Set(s) => match s {
                crate::types::set::Set::Intset(v) => v.allocated(),
                crate::types::set::Set::Listpack(p) => p.allocated(),
                crate::types::set::Set::Table(t) => {
                    boxed_table_cost(t) + extrapolate(t.len(), samples, t.slots().map(|m| elem_heap(m.len())))
                }
            },
            Value::ZSet(z) => match z.packed_bytes() {
                Some(bytes) => bytes,
                None => {
                    // The map's table (its entries are score and
                    // handle), then per entry its place in the order
                    // (the same) and the member's bytes, one copy in
                    // each.
                    let per = |e: crate::types::zset::ZRef<'_>| 24 + 2 * elem_heap(e.member.len());
                    let dict = z.dict().map_or(0, table_cost);
                    size_class(z.skiplist_bytes()) + dict + extrapolate(z.len(), samples, z.iter().map(per))
                }
            },
            Value::Stream(st) => {
                // Per node, its share of the B-tree (the master ID and the
                // node's 40 bytes, in leaves that appends leave a little
                // over half full), then its buffer.
                let entries = extrapolate(st.node_count(), samples, st.node_allocations().map(|b| 100 + b));
                // The PELs count their own chunks (pel.rs).
                let consumers = |g: &crate::types::stream::Group| -> usize {
                    g.consumers.iter().map(|(name, c)| bytes_cost(name) + 96 + c.pel.heap_bytes()).sum()
                };
                let groups: usize =
                    st.groups.iter().map(|(name, g)| bytes_cost(name) + 96 + g.pel.heap_bytes() + consumers(g)).sum();
                size_class(std::mem::size_of_val(&**st)) + entries + groups
            }
        }
    }
}

/// The keyspace's bookkeeping per key: (map slot, expiry index entry).
/// A slot is the entry (its key inside), plus its index bucket (a `u16`
/// and a tag byte, in all but shards of over 65,536 keys); an expiry entry
/// is one `u64`, the deadline's tick and the slot's position (see
/// expiry.rs).
pub fn bookkeeping() -> (usize, usize) {
    (std::mem::size_of::<Entry>() + 3, std::mem::size_of::<u64>())
}

/// A key's buffer outside its slot (none for short keys).
fn key_heap(key: &[u8]) -> usize {
    if key.len() <= INLINE_KEY {
        0
    } else {
        size_class(key.len())
    }
}

/// What a key costs in its shard: the map slot (key and entry inline),
/// a long key's buffer, the expiry index entry if it has a TTL, and the
/// value's heap.
pub fn key_usage(key: &[u8], e: &Entry, samples: usize) -> usize {
    let (slot, expiry) = bookkeeping();
    let ttl = if e.expire_at().is_some() { expiry } else { 0 };
    slot + key_heap(key) + ttl + e.stored().mem_usage(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_follow_jemalloc() {
        let want = [
            (1, 8),
            (8, 8),
            (9, 16),
            (17, 32),
            (100, 112),
            (128, 128),
            (129, 160),
            (200, 224),
            (1000, 1024),
            (1025, 1280),
        ];
        for (n, class) in want {
            assert_eq!(size_class(n), class, "size_class({n})");
        }
    }

    #[test]
    fn sampling_extrapolates_from_the_first_elements() {
        assert_eq!(extrapolate(100, 5, std::iter::repeat(10)), 1000);
        assert_eq!(extrapolate(3, 0, [1, 2, 3].into_iter()), 6);
        assert_eq!(extrapolate(0, 5, std::iter::empty()), 0);
    }
}

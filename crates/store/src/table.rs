//! A shard's map: keys and their entries in one dense vector, found through
//! a hash index of 16-bit positions (32-bit in shards past 65,536 keys;
//! index.rs).
//! Large hashes, sets and sorted sets use the same table for their fields
//! and members ([`Keyed`] says what a slot is found by).
//!
//! Why not `IndexMap<Bytes, Entry>` (what this replaced): per key it kept
//! the hash (8 bytes), a 32-byte `Bytes` handle whose buffer is a second
//! allocation, and, once the key was cloned anywhere, a third (the shared
//! header `Bytes` promotes to); its entry vector also reserves up to the
//! index's capacity, so at a typical load half its slots stood empty. Here
//! a slot is the [`Key`] (short keys inline, no allocation) and the entry;
//! the index holds a tag byte and a `u16` per bucket (a `u32` past 65,536
//! slots) and never the hash, which is recomputed from the key when the
//! index is rebuilt;
//! the vector grows by an eighth, so it is never more than a ninth empty
//! while it fills (the keyspace trims it back when keys leave; see
//! `Shard::shrink_if_sparse`).
//!
//! The order properties SCAN, RANDOMKEY and SIEVE rely on are IndexMap's:
//! a new key goes at the end, and a removal moves only the last slot into
//! the hole (see keyspace.rs).
//!
//! One hash per key per command: the keyspace hashes a key once, takes the
//! shard from its high bits and hands the same hash to the table, whose
//! buckets use the low bits and the top seven. The seed is random per
//! process, so nobody can choose keys that collide.

use crate::index::Index;
use crate::keyspace::Entry;
use std::borrow::Borrow;
use std::hash::BuildHasher;
use std::sync::LazyLock;

/// Longest key stored inline in its slot.
pub const INLINE_KEY: usize = 22;

/// A stored key: up to [`INLINE_KEY`] bytes live in the slot itself, longer
/// ones in one exact-size allocation. 24 bytes either way.
#[derive(Clone)]
pub enum Key {
    Inline(u8, [u8; INLINE_KEY]),
    Heap(Box<[u8]>),
}

impl Key {
    pub fn new(key: &[u8]) -> Key {
        if key.len() <= INLINE_KEY {
            let mut buf = [0; INLINE_KEY];
            buf[..key.len()].copy_from_slice(key);
            Key::Inline(key.len() as u8, buf)
        } else {
            Key::Heap(key.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline(n, buf) => &buf[..*n as usize],
            Key::Heap(b) => b,
        }
    }

    /// How many bytes [`Self::spare`] has for a key of these bytes, before
    /// the key is made (a value built for its place: `Tx::set_str`).
    pub(crate) fn spare_for(key: &[u8]) -> usize {
        INLINE_KEY.saturating_sub(key.len())
    }

    /// The inline bytes the key does not use (a value may borrow them:
    /// entry.rs); none for a key on the heap.
    pub(crate) fn spare(&self) -> &[u8] {
        match self {
            Key::Inline(n, buf) => &buf[*n as usize..],
            Key::Heap(_) => &[],
        }
    }

    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        match self {
            Key::Inline(n, buf) => &mut buf[*n as usize..],
            Key::Heap(_) => &mut [],
        }
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self.as_bytes()))
    }
}

static SEED: LazyLock<foldhash::fast::FixedState> =
    LazyLock::new(|| foldhash::fast::FixedState::with_seed(rand::random()));

/// Positions a `u16` holds: a table of more slots has a `u32` index.
const NARROW: usize = 1 << 16;

/// The one hash of a key: shard selection and the shard's index both use it.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    SEED.hash_one(key)
}

/// What a table's slot is found by: its key's bytes, hashed with
/// [`hash_key`].
pub trait Keyed {
    fn key(&self) -> &[u8];
}

/// A keyspace shard's slot is an entry, its key inside it.
impl Keyed for Entry {
    fn key(&self) -> &[u8] {
        Entry::key(self)
    }
}

/// An element of a large collection: a set's or sorted set's member, a
/// hash's field with its value. Up to 15 bytes sit in the 16-byte handle
/// itself; longer ones in one allocation of exactly their size, as a
/// `Box<[u8]>` (what this replaced, the same 16 bytes) kept every one. A
/// member of 15 bytes or fewer (ids, short tags, `member:00000001`) thus
/// costs no allocation: the 16-byte class jemalloc served it from, and the
/// trip there on a lookup.
pub type Elem = compact_bytes::CompactBytesSlice;

/// A set member is its own key.
impl Keyed for Elem {
    fn key(&self) -> &[u8] {
        self
    }
}

/// Slots in a dense vector and an index of their positions.
///
/// The keyspace's shards hold [`Entry`]s; large hashes, sets and sorted
/// sets hold their fields and members. Against `IndexSet` (what those
/// used): no stored hash (8 bytes an element), an index of `u16` or
/// `u32` positions rather than `usize`, and a vector grown by an eighth
/// to a whole size class rather than reserved up to the index's capacity
/// (which left, at a million elements, 1.8 million entries allocated).
pub struct Table<S = Entry> {
    index: Index,
    slots: Vec<S>,
}

impl<S> Default for Table<S> {
    fn default() -> Table<S> {
        Table { index: Index::default(), slots: Vec::new() }
    }
}

/// The copy's positions are the original's, so the index is copied as
/// it stands rather than built again by hashing every key.
impl<S: Clone> Clone for Table<S> {
    fn clone(&self) -> Table<S> {
        Table { index: self.index.clone(), slots: self.slots.clone() }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Table<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.slots).finish()
    }
}

/// Equal when each holds the other's slots, in any order (as `IndexSet`'s
/// equality was).
impl<S: Keyed + PartialEq> PartialEq for Table<S> {
    fn eq(&self, other: &Table<S>) -> bool {
        self.len() == other.len() && self.slots.iter().all(|s| other.get(s.key()) == Some(s))
    }
}

impl Table<Entry> {
    pub fn slot(&self, i: usize) -> &Entry {
        &self.slots[i]
    }

    pub fn slot_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.slots[i]
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.slots.iter().map(|e| (e.key_ref(), e))
    }
}

impl<S: Keyed> Table<S> {
    /// Room for `n` slots without growing.
    pub fn with_capacity(n: usize) -> Table<S> {
        Table { index: Index::with_capacity(n, n > NARROW), slots: Vec::with_capacity(fit_for::<S>(n)) }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// The sizes of the table's two allocations: the slot vector and the
    /// index, for MEMORY USAGE.
    pub fn allocations(&self) -> [usize; 2] {
        [self.slots.capacity() * std::mem::size_of::<S>(), self.index.allocated()]
    }

    /// The slot at `i` (0..len).
    pub fn get_index(&self, i: usize) -> Option<&S> {
        self.slots.get(i)
    }

    pub fn slots(&self) -> std::slice::Iter<'_, S> {
        self.slots.iter()
    }

    /// The slot found by `key`.
    pub fn get(&self, key: &[u8]) -> Option<&S> {
        self.find(hash_key(key), key).map(|i| &self.slots[i])
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut S> {
        self.find(hash_key(key), key).map(|i| &mut self.slots[i])
    }

    /// Puts `slot` in place of the one with its key, which keeps its
    /// position (a scan under way still meets it), or at the end. Returns
    /// the slot replaced.
    pub fn replace(&mut self, slot: S) -> Option<S> {
        let h = hash_key(slot.key());
        match self.find(h, slot.key()) {
            Some(i) => Some(std::mem::replace(&mut self.slots[i], slot)),
            None => {
                self.push(h, slot);
                None
            }
        }
    }

    /// Removes the slot found by `key`; the last slot takes its place.
    pub fn remove(&mut self, key: &[u8]) -> Option<S> {
        let h = hash_key(key);
        let i = self.find(h, key)?;
        Some(self.remove_at(i, h))
    }

    /// Removes the slot at `i` (0..len); the last slot takes its place.
    pub fn swap_remove_index(&mut self, i: usize) -> Option<S> {
        let h = hash_key(self.slots.get(i)?.key());
        Some(self.remove_at(i, h))
    }

    /// [`Self::swap_remove`], then gives memory back once three quarters
    /// of the slots stand empty (the keyspace trims its shards itself).
    fn remove_at(&mut self, i: usize, h: u64) -> S {
        let slot = self.swap_remove(i, h);
        let len = self.slots.len();
        if len < self.slots.capacity() / 4 {
            self.shrink_to(len + len / 8 + 1);
        }
        slot
    }

    /// The position of `key`, whose hash is `hash`.
    #[inline]
    pub fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        self.find_where(hash, |s| s.key() == key)
    }

    /// The position of a key whose hash is `hash`, its bytes unknown
    /// (allkeys-sieve remembers its newest keys by hash alone). Two keys of
    /// one shard with the same 64-bit hash are possible in principle; the
    /// caller gets one of them, which for eviction is a key as good as
    /// the other.
    pub fn find_hash(&self, hash: u64) -> Option<usize> {
        self.find_where(hash, |s| hash_key(s.key()) == hash)
    }

    #[inline]
    fn find_where(&self, hash: u64, is: impl Fn(&S) -> bool) -> Option<usize> {
        self.index.find(hash, |i| is(&self.slots[i]))
    }

    /// Appends a slot whose key is known to be absent and hashes to
    /// `hash`; returns its position.
    pub fn push(&mut self, hash: u64, slot: S) -> usize {
        let i = self.slots.len();
        if i == self.slots.capacity() {
            // An eighth more, rounded up to a whole allocation: a shard's
            // slack stays small (under a memory limit, spare slots are
            // keys the cache cannot hold), and the copies still amortise
            // to O(1) per insert. Small tables grow a slot at a time (a
            // thousand shards of a small cache each holding a few spare
            // 56-byte slots would add up); their copies are tiny.
            self.slots.reserve_exact(fit_for::<S>(i + (i / 8).max(1)) - i);
        }
        self.slots.push(slot);
        if self.index.is_full() || (i >= NARROW && !self.index.is_wide()) {
            // A quarter more keys than it holds now (load 0.7 after the
            // rebuild, the next one at 0.875): small steps, since an index
            // costs a key's hash per position to rebuild and a shard's
            // thousand take microseconds. Past 65,536 slots, where a
            // rebuild takes milliseconds, twice as many.
            let len = self.slots.len();
            let want = if len > NARROW { len * 2 } else { len + len / 4 };
            self.rebuild(want);
        } else {
            self.index.insert(hash, i);
        }
        i
    }

    /// A new index for `want` slots, holding every slot's position.
    fn rebuild(&mut self, want: usize) {
        let wide = want.max(self.slots.len()) > NARROW;
        let slots = &self.slots;
        self.index = Index::build(want, wide, slots.iter().enumerate().map(|(i, s)| (hash_key(s.key()), i)));
    }

    /// Removes the slot at `i`, whose key hashes to `h`; the last slot
    /// moves into its place.
    pub fn swap_remove(&mut self, i: usize, h: u64) -> S {
        let last = self.slots.len() - 1;
        self.index.remove(h, i);
        if i != last {
            self.index.repoint(hash_key(self.slots[last].key()), last, i);
        }
        self.slots.swap_remove(i)
    }

    /// Shrinks the slot vector to the smallest allocation that holds
    /// `max(len, cap)` slots, if that is smaller than the one it has. The
    /// index keeps its buckets: rebuilding it means hashing every key
    /// again, and [`Self::shrink_to`] sees to it when the table is half
    /// empty.
    pub fn trim_slots(&mut self, cap: usize) {
        let want = fit_for::<S>(cap.max(self.slots.len()));
        if want < self.slots.capacity() {
            self.slots.shrink_to(want);
        }
    }

    /// Frees capacity beyond `min(len, cap)` slots, in the vector and in
    /// the index.
    pub fn shrink_to(&mut self, cap: usize) {
        let want = cap.max(self.slots.len());
        self.slots.shrink_to(fit_for::<S>(want));
        if self.index.oversized_for(want) {
            self.rebuild(want);
        }
    }
}

/// The `T`s that fill the allocation jemalloc makes for `n` of them.
///
/// jemalloc serves a request from a size class, four to each doubling:
/// 64 KB, 80 KB, 96 KB, 112 KB, 128 KB… A vector of 1,040 slots asks
/// for 65 KB and is handed 80 KB, and nothing ever uses the rest: at a
/// million keys (about 980 a shard) that rounding cost 17 bytes a key,
/// more than the slots left spare on purpose. Asking for what the class
/// holds turns that waste into room to grow. `nallocx` is jemalloc's own
/// answer to "what would you allocate", so this follows its classes
/// rather than copying them; under another global allocator (the store's
/// unit tests) it is only a rounding rule.
#[allow(unsafe_code)]
pub(crate) fn fit_for<T>(n: usize) -> usize {
    let size = std::mem::size_of::<T>();
    if n == 0 || size == 0 {
        return n;
    }
    let Some(bytes) = n.checked_mul(size) else { return n };
    // SAFETY: nallocx only computes a size; it touches no allocation.
    let class = unsafe { tikv_jemalloc_sys::nallocx(bytes, 0) };
    if class < bytes {
        n // 0: the size is beyond what jemalloc serves; let Vec report it.
    } else {
        class / size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{StrValue, Value};

    fn entry(v: &str) -> Entry {
        Entry::new(Value::Str(StrValue::from_slice(v.as_bytes())), crate::entry::Access::lru(0))
    }

    fn keyed(k: &[u8]) -> Entry {
        let mut e = entry("v");
        e.set_key(k);
        e
    }

    #[test]
    fn a_slot_is_56_bytes() {
        // Key 24, value 24, metadata word 8 (entry.rs): every byte here
        // is a byte per key.
        assert_eq!(std::mem::size_of::<Entry>(), 56);
    }

    #[test]
    fn keys_inline_up_to_22_bytes() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        assert!(matches!(Key::new(&[b'k'; INLINE_KEY]), Key::Inline(22, _)));
        assert!(matches!(Key::new(&[b'k'; INLINE_KEY + 1]), Key::Heap(_)));
        assert_eq!(Key::new(b"").as_bytes(), b"");
        assert_eq!(&*Key::new(&[b'x'; 40]), &[b'x'; 40][..]);
        assert!(Key::new(b"a") < Key::new(&[b'a'; 30]));
        for n in [0, 1, 14, 21, 22, 23, 40] {
            let k = vec![b'k'; n];
            assert_eq!(Key::spare_for(&k), Key::new(&k).spare().len(), "{n}");
        }
    }

    /// Past 65,536 slots the index turns from `u16` to `u32` positions;
    /// every key stays findable across the switch and after removals.
    #[test]
    fn the_index_widens_past_65536_slots() {
        let mut t: Table = Table::default();
        let key = |i: usize| format!("k{i}").into_bytes();
        let n = 70_000;
        for i in 0..n {
            if i == 65_536 {
                assert!(!t.index.is_wide());
            }
            let k = key(i);
            t.push(hash_key(&k), keyed(&k));
        }
        assert!(t.index.is_wide());
        // Remove from the front: the last slots move into low positions.
        for i in 0..1000 {
            let k = key(i);
            let at = t.find(hash_key(&k), &k).unwrap();
            t.swap_remove(at, hash_key(&k));
        }
        for i in 0..n {
            let k = key(i);
            let found = t.find(hash_key(&k), &k);
            assert_eq!(found.is_some(), i >= 1000, "k{i}");
            if let Some(at) = found {
                assert_eq!(t.slot(at).key(), &k[..]);
            }
        }
    }

    /// The table as a collection's (a large set's members): replace
    /// keeps a member's place, removals move the last one in, equality
    /// ignores order, and a table three quarters empty gives memory back.
    #[test]
    fn a_table_of_members_finds_replaces_removes_and_shrinks() {
        let member = |i: usize| Elem::new(format!("member:{i}").as_bytes());
        let mut t: Table<Elem> = Table::with_capacity(4);
        for i in 0..1000 {
            assert!(t.replace(member(i)).is_none());
        }
        assert_eq!(t.replace(member(5)).as_deref(), Some(&member(5)[..]));
        assert_eq!(t.get_index(5).map(|m| &m[..]), Some(&member(5)[..]), "a replaced member keeps its place");
        let full = t.allocations();
        assert!(full[0] >= 1000 * 16 && full[1] >= 1024 * 3, "{full:?}");
        assert!(full[0] < 1000 * 16 * 9 / 8 + 256, "the vector grows by an eighth: {full:?}");

        let mut reversed: Table<Elem> = Table::default();
        (0..1000).rev().for_each(|i| {
            reversed.replace(member(i));
        });
        assert!(t == reversed);
        reversed.remove(b"member:0");
        assert!(t != reversed);

        assert_eq!(t.remove(b"member:0").as_deref(), Some(&member(0)[..]));
        assert_eq!(t.get_index(0).map(|m| &m[..]), Some(&member(999)[..]), "the last moved in");
        assert!(t.remove(b"member:0").is_none());
        assert!(t.swap_remove_index(t.len()).is_none());
        while t.len() > 100 {
            t.swap_remove_index(t.len() / 2);
        }
        let small = t.allocations();
        assert!(small[0] < full[0] / 2 && small[1] < full[1] / 2, "{full:?} → {small:?}");
        for m in t.slots() {
            assert_eq!(t.get(m).map(|x| &x[..]), Some(&m[..]));
        }
        let c = t.clone();
        assert!(c == t && c.len() == 100);
    }

    #[test]
    fn swap_remove_keeps_every_key_findable() {
        let mut t: Table = Table::default();
        let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("key:{i}{}", "x".repeat(i % 40)).into_bytes()).collect();
        for k in &keys {
            assert_eq!(t.find(hash_key(k), k), None);
            t.push(hash_key(k), keyed(k));
        }
        // Remove every third key by position, then check the rest.
        for k in keys.iter().step_by(3) {
            let i = t.find(hash_key(k), k).unwrap();
            assert_eq!(t.swap_remove(i, hash_key(k)).key(), &k[..]);
        }
        t.shrink_to(0);
        for (n, k) in keys.iter().enumerate() {
            let found = t.find(hash_key(k), k);
            assert_eq!(found.is_some(), n % 3 != 0, "{}", String::from_utf8_lossy(k));
            if let Some(i) = found {
                assert_eq!(t.slot(i).key(), &k[..]);
            }
        }
        assert_eq!(t.len(), keys.len() - keys.len().div_ceil(3));
        assert!(t.capacity() < t.len() * 2);
    }
}

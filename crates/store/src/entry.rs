//! One key with its value and metadata: its deadline, its access clock
//! and the SIEVE bit, packed in one `u64` beside the value.
//!
//! Every key pays for its entry in its shard's slot (table.rs), so each
//! byte here is a byte per key. The entry was the value, a `u64`
//! deadline, a `u32` LRU clock, a `u8` LFU counter and the SIEVE bit: 40
//! bytes with padding, a 64-byte slot with the key. Now the metadata is
//! one word and the slot 56 bytes:
//!
//! | bits | what |
//! |---|---|
//! | 0..24 | the access clock, Redis's 24 bits: LRU seconds, or under an LFU policy the minute of the last access (16 bits) and the counter (8) |
//! | 24 | visited since the SIEVE hand last passed |
//! | 25..64 | the deadline (39 bits, below) |
//!
//! Sharing the access clock between LRU and LFU is what Redis does
//! (`robj.lru`): only one is kept, by the policy in force, and OBJECT
//! IDLETIME and OBJECT FREQ each refuse to answer under the other's
//! policy (keys.rs). A policy change re-reads old clocks in the new form
//! until accesses rewrite them, as in Redis, whose error text says so.
//!
//! A deadline is exact to the millisecond. A field of 0 means no TTL.
//! Other fields below 2^38 hold the deadline's distance from [`epoch`]
//! (a year before the process started): deadlines up to seven and a
//! half years ahead, which covers the TTLs caches set. The rest (a
//! deadline decades away, long past, or from a test's made-up clock)
//! are "far": the field's low bits name a slot in one process-wide table
//! holding the exact value, and a bit says which side of the span it
//! lies on, so whether it has passed needs no look at the table. The
//! entry frees its slot when dropped, so the table holds only the far
//! deadlines of entries that exist.
//!
//! A key's spare bytes. The entry holds its key too (the slot is the
//! entry: 24 bytes of key, 24 of value, the word). A key of up to 22 bytes
//! sits inline, and a shorter one leaves bytes unused: 8 for the common
//! `key:0000000001`. A split string (value.rs, split.rs) lends the first
//! bytes of its heap tail to them when that drops the tail into a smaller
//! jemalloc class: a 100-character text value packs to 84 bytes, 13 in
//! the value and 71 on the heap (the 80-byte class); with 7 lent to the
//! key, 64 (the 64-byte class), 16 bytes a key less. The value then
//! cannot be read without the key, which is why `value` is private and
//! read through [`Entry::str_bytes`] or [`Entry::value`], changed through
//! [`Entry::value_mut`], and taken out through [`Entry::into_value`]: each
//! passes the lent bytes along or takes them back first. A new key
//! ([`Entry::set_key`]) takes them back before it overwrites the old one.

use crate::split::lend_count;
use crate::table::Key;
use crate::value::{StrValue, Value};
use bytes::Bytes;
use parking_lot::Mutex;
use std::borrow::Cow;
use std::sync::LazyLock;

const CLOCK_BITS: u32 = 24;
const CLOCK_MASK: u64 = (1 << CLOCK_BITS) - 1;
const VISITED: u64 = 1 << CLOCK_BITS;
const DEADLINE_SHIFT: u32 = CLOCK_BITS + 1;
/// Fields with this bit set are far: the low bits are a slot.
const FAR: u64 = 1 << 38;
/// A far deadline after the near span (else before the epoch): with a
/// real clock, enough to tell whether it has passed without the table.
const LATER: u64 = 1 << 37;
const SLOT_MASK: u64 = LATER - 1;
/// Milliseconds past the epoch a near field can hold.
const NEAR_SPAN: u64 = FAR - 1;

/// Redis's `LFU_INIT_VAL`: new keys start warm enough to survive a while.
pub const LFU_INIT_VAL: u8 = 5;

/// The first millisecond a near deadline field can hold: a year before
/// the process started, so a replica's keys whose deadlines its primary
/// has not reached yet are near too.
pub fn epoch() -> u64 {
    static EPOCH: LazyLock<u64> =
        LazyLock::new(|| crate::clock::Clock::now_ms(&crate::clock::SystemClock).saturating_sub(365 * 86_400_000));
    *EPOCH
}

/// Far deadlines, by slot.
#[derive(Default)]
struct FarTable {
    at: Vec<u64>,
    free: Vec<u64>,
}

impl FarTable {
    fn alloc(&mut self, at: u64) -> u64 {
        match self.free.pop() {
            Some(slot) => {
                self.at[slot as usize] = at;
                slot
            }
            None => {
                self.at.push(at);
                self.at.len() as u64 - 1
            }
        }
    }

    fn free(&mut self, slot: u64) {
        self.free.push(slot);
        // Once every slot is free the table lets go of its memory, so a
        // burst of far deadlines does not keep it for good.
        if self.free.len() == self.at.len() {
            self.at = Vec::new();
            self.free = Vec::new();
        }
    }

    #[cfg(test)]
    fn live(&self) -> usize {
        self.at.len() - self.free.len()
    }
}

static FAR_TABLE: Mutex<FarTable> = Mutex::new(FarTable { at: Vec::new(), free: Vec::new() });

fn far_alloc(at: u64) -> u64 {
    FAR_TABLE.lock().alloc(at)
}

fn far_get(slot: u64) -> u64 {
    FAR_TABLE.lock().at[slot as usize]
}

fn far_free(slot: u64) {
    FAR_TABLE.lock().free(slot)
}

/// How accesses are recorded: the policy's form of the clock and the LFU
/// settings, read once per command (`Evictor::access`).
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub now_ms: u64,
    /// An LFU policy is in force: the clock holds the LFU form.
    pub lfu: bool,
    /// `lfu-log-factor`.
    pub log_factor: u32,
    /// `lfu-decay-time`, minutes (0: never decay).
    pub decay_minutes: u32,
}

impl Access {
    /// LRU form, Redis's defaults for LFU: for entries made outside any
    /// keyspace's policy (tests, and callers that set the clock after).
    pub fn lru(now_ms: u64) -> Access {
        Access { now_ms, lfu: false, log_factor: 10, decay_minutes: 1 }
    }
}

/// The LRU clock: seconds, in 24 bits (Redis's `LRU_CLOCK`).
fn lru_clock(now_ms: u64) -> u64 {
    (now_ms / 1000) & CLOCK_MASK
}

/// Minutes in 16 bits (Redis's `LFUGetTimeInMinutes`).
fn lfu_minutes(now_ms: u64) -> u64 {
    (now_ms / 60_000) & 0xffff
}

/// The LFU form of the clock: this minute, then `counter`.
fn lfu_clock(now_ms: u64, counter: u8) -> u64 {
    lfu_minutes(now_ms) << 8 | counter as u64
}

/// One key, its value and metadata: a shard's slot.
#[derive(Debug)]
pub struct Entry {
    /// Set by the keyspace when it stores the entry ([`Entry::set_key`]);
    /// empty until then.
    key: Key,
    /// Private: a split string may have lent bytes to the key's unused
    /// ones (see "A key's spare bytes" in the module docs), and is read
    /// only with them, through the entry's own methods.
    value: Value,
    /// See the module docs. Private so that the deadline changes only
    /// through [`crate::Tx`], which keeps the expiry index in step.
    word: u64,
}

impl Entry {
    pub fn new(value: Value, access: Access) -> Entry {
        let clock = if access.lfu { lfu_clock(access.now_ms, LFU_INIT_VAL) } else { lru_clock(access.now_ms) };
        Entry { key: Key::new(b""), value, word: clock }
    }

    pub fn key(&self) -> &[u8] {
        self.key.as_bytes()
    }

    pub fn key_ref(&self) -> &Key {
        &self.key
    }

    /// Stores the entry under `key`: the value takes back what it lent to
    /// the old key's spare bytes and may lend to the new one's. Nothing to
    /// do if it has that key already (built for it: [`Entry::with_key`]).
    pub(crate) fn set_key(&mut self, key: &[u8]) {
        if self.key() == key {
            return;
        }
        self.take_back();
        self.key = Key::new(key);
        self.settle();
    }

    /// The bytes the value lent to the key (none unless it is a split
    /// string that did).
    fn lent(&self) -> &[u8] {
        match &self.value {
            Value::Str(StrValue::Split(s)) => &self.key.spare()[..s.ext()],
            _ => &[],
        }
    }

    fn take_back(&mut self) {
        if let Value::Str(StrValue::Split(s)) = &mut self.value {
            let n = s.ext();
            if n > 0 {
                s.take_back(&self.key.spare()[..n]);
            }
        }
    }

    /// Lends a split string's first tail bytes to the key's spare ones if
    /// that puts the tail in a smaller size class: as many as leave the
    /// tail filling that class.
    fn settle(&mut self) {
        let Value::Str(StrValue::Split(s)) = &mut self.value else { return };
        if s.ext() != 0 {
            return;
        }
        let n = lend_count(s.tail_len(), self.key.spare().len());
        if n > 0 {
            s.lend(n, self.key.spare_mut());
        }
    }

    /// An entry under `key` whose value `make` builds, given the key's
    /// spare bytes to lend to (a string built for its place: one
    /// allocation, where [`Entry::set_key`] would move a built one's tail).
    pub fn with_key(key: &[u8], access: Access, make: impl FnOnce(&mut [u8]) -> Value) -> Entry {
        let mut e = Entry::new(Value::Str(StrValue::Int(0)), access);
        e.key = Key::new(key);
        e.value = make(e.key.spare_mut());
        e.settle();
        e
    }

    /// The value, whole: a copy if it lent bytes to the key (for the rare
    /// readers of any value: DUMP, a snapshot, DEBUG; string commands read
    /// with [`Self::str_bytes`]).
    pub fn value(&self) -> Cow<'_, Value> {
        match &self.value {
            Value::Str(StrValue::Split(s)) if s.ext() > 0 => {
                Cow::Owned(Value::Str(StrValue::Split(s.whole(self.lent()))))
            }
            v => Cow::Borrowed(v),
        }
    }

    /// The value to change in place; it takes back any bytes it lent.
    pub fn value_mut(&mut self) -> &mut Value {
        self.take_back();
        &mut self.value
    }

    /// Puts `value` in place of the value, which it returns to be dropped
    /// (it may have lent bytes to the key, which the new value reuses).
    pub(crate) fn swap_value(&mut self, make: impl FnOnce(&mut [u8]) -> Value) -> Value {
        let old = std::mem::replace(&mut self.value, Value::Str(StrValue::Int(0)));
        self.value = make(self.key.spare_mut());
        self.settle();
        old
    }

    /// A string's bytes (None for another type).
    pub fn str_bytes(&self) -> Option<Bytes> {
        Some(self.value.as_str()?.to_bytes_with(self.lent()))
    }

    /// A string's length (None for another type).
    pub fn str_len(&self) -> Option<usize> {
        self.value.as_str().map(StrValue::len)
    }

    pub fn type_name(&self) -> &'static str {
        self.value.type_name()
    }

    pub fn encoding(&self) -> &'static str {
        self.value.encoding()
    }

    /// The value as stored, for what reads no string bytes (its size,
    /// its type's fields).
    pub(crate) fn stored(&self) -> &Value {
        &self.value
    }

    /// The key and the value, whole.
    pub fn into_parts(mut self) -> (Key, Value) {
        self.take_back();
        self.into_parts_to_drop()
    }

    /// The key and the value as stored, for a removal that only drops the
    /// value (an eviction, an expiry): taking back lent bytes would cost
    /// an allocation for nothing. The value drops whole but does not read
    /// back without them.
    pub(crate) fn into_parts_to_drop(mut self) -> (Key, Value) {
        let key = std::mem::replace(&mut self.key, Key::new(b""));
        (key, std::mem::replace(&mut self.value, Value::Str(StrValue::Int(0))))
    }

    fn field(&self) -> u64 {
        self.word >> DEADLINE_SHIFT
    }

    pub fn expire_at(&self) -> Option<u64> {
        match self.field() {
            0 => None,
            f if f & FAR != 0 => Some(far_get(f & SLOT_MASK)),
            f => Some(epoch() + f - 1),
        }
    }

    pub fn has_deadline(&self) -> bool {
        self.field() != 0
    }

    pub fn is_expired(&self, now: u64) -> bool {
        match self.field() {
            0 => false,
            // A deadline before the epoch has passed once the clock is
            // past the epoch, and one after the span has not while the
            // clock is inside it: the table is read only for made-up
            // clocks (tests) or a process older than seven years.
            f if f & FAR != 0 => {
                let e0 = epoch();
                match f & LATER != 0 {
                    false if now >= e0 => true,
                    true if now >= e0 && now - e0 < NEAR_SPAN => false,
                    _ => far_get(f & SLOT_MASK) <= now,
                }
            }
            f => epoch() + f - 1 <= now,
        }
    }

    /// Sets the deadline (0: none). The keyspace calls this and moves the
    /// expiry index entry itself.
    pub(crate) fn set_deadline(&mut self, at: u64) {
        self.release_far();
        let field = match at.checked_sub(epoch()) {
            _ if at == 0 => 0,
            Some(d) if d < NEAR_SPAN => d + 1,
            Some(_) => FAR | LATER | far_alloc(at),
            None => FAR | far_alloc(at),
        };
        self.word = (self.word & (CLOCK_MASK | VISITED)) | field << DEADLINE_SHIFT;
    }

    fn release_far(&mut self) {
        let f = self.field();
        if f & FAR != 0 {
            far_free(f & SLOT_MASK);
            self.word &= CLOCK_MASK | VISITED;
        }
    }

    /// The value, whole, leaving the entry to drop.
    pub fn into_value(self) -> Value {
        self.into_parts().1
    }

    /// The 24-bit access clock as stored (DEBUG OBJECT's `lru`; COPY
    /// carries it over).
    pub fn raw_clock(&self) -> u32 {
        (self.word & CLOCK_MASK) as u32
    }

    pub fn set_raw_clock(&mut self, clock: u32) {
        self.word = (self.word & !CLOCK_MASK) | (clock as u64 & CLOCK_MASK);
    }

    /// Seconds since the last access, read as an LRU clock (Redis's
    /// `estimateObjectIdleTime`: the clock wraps every 194 days).
    pub fn idle_secs(&self, now_ms: u64) -> u64 {
        lru_clock(now_ms).wrapping_sub(self.word & CLOCK_MASK) & CLOCK_MASK
    }

    /// Backdates the LRU clock by `idle` seconds (RESTORE IDLETIME, an
    /// RDB's idle-time opcode).
    fn set_idle(&mut self, now_ms: u64, idle: u64) {
        self.set_raw_clock((lru_clock(now_ms).wrapping_sub(idle) & CLOCK_MASK) as u32);
    }

    /// Sets the LFU counter, the last access now (RESTORE FREQ, an RDB's
    /// frequency opcode).
    fn set_freq(&mut self, now_ms: u64, freq: u8) {
        self.set_raw_clock(lfu_clock(now_ms, freq) as u32);
    }

    /// What RESTORE's IDLETIME and FREQ and an RDB's idle-time and
    /// frequency opcodes set (Redis's `objectSetLRUOrLFU`): the clock the
    /// policy keeps takes its own, and the other is ignored.
    pub fn restore_access(&mut self, access: Access, idle: Option<u64>, freq: Option<u8>) {
        match (access.lfu, freq, idle) {
            (true, Some(f), _) => self.set_freq(access.now_ms, f),
            (false, _, Some(idle)) => self.set_idle(access.now_ms, idle),
            _ => {}
        }
    }

    /// Minutes since the last access, read as an LFU clock (Redis's
    /// `LFUTimeElapsed`: the minute wraps every 45 days).
    pub(crate) fn lfu_elapsed(&self, now_ms: u64) -> u64 {
        lfu_minutes(now_ms).wrapping_sub(self.word >> 8 & 0xffff) & 0xffff
    }

    /// The LFU counter after decay: one step per `decay_minutes` since the
    /// last access (Redis's `LFUDecrAndReturn`). OBJECT FREQ reports it.
    pub fn lfu(&self, now_ms: u64, decay_minutes: u32) -> u8 {
        let counter = (self.word & 0xff) as u8;
        if decay_minutes == 0 {
            return counter;
        }
        let periods = self.lfu_elapsed(now_ms) / decay_minutes as u64;
        counter.saturating_sub(periods.min(255) as u8)
    }

    pub(crate) fn visited(&self) -> bool {
        self.word & VISITED != 0
    }

    pub(crate) fn clear_visited(&mut self) {
        self.word &= !VISITED;
    }

    /// Records an access: the SIEVE bit and the clock in the policy's form
    /// (the LFU counter decayed then maybe incremented, Redis's
    /// `updateLFU`). The word is stored only when it changes (the LRU
    /// clock ticks in seconds, the LFU minute once a minute), so a read
    /// leaves the entry's cache line clean and the other worker thread
    /// keeps its copy: unconditional stores made every GET of a line last
    /// read on the other core a cross-core transfer.
    pub(crate) fn touch(&mut self, access: Access) {
        let clock = if access.lfu {
            let mut counter = self.lfu(access.now_ms, access.decay_minutes);
            if counter < 255 {
                let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
                let p = 1.0 / (base * access.log_factor as f64 + 1.0);
                if rand::random::<f64>() < p {
                    counter += 1;
                }
            }
            lfu_clock(access.now_ms, counter)
        } else {
            lru_clock(access.now_ms)
        };
        let word = (self.word & !CLOCK_MASK) | VISITED | clock;
        if word != self.word {
            self.word = word;
        }
    }

    /// What an overwrite by a client in CLIENT NO-TOUCH mode leaves: Redis
    /// makes a new object, so an LRU clock starts again, while under an
    /// LFU policy the old counter carries over (its `dbSetValue`). The
    /// SIEVE bit stays as it was: this is no read.
    pub(crate) fn renew(&mut self, access: Access) {
        if !access.lfu {
            self.set_raw_clock(lru_clock(access.now_ms) as u32);
        }
    }
}

impl Clone for Entry {
    /// A far deadline gets a slot of its own: each entry frees its own.
    fn clone(&self) -> Entry {
        // The key's spare bytes come along: a lent split's copy reads them.
        let mut copy =
            Entry { key: self.key.clone(), value: self.value.clone(), word: self.word & (CLOCK_MASK | VISITED) };
        if let Some(at) = self.expire_at() {
            copy.set_deadline(at);
        }
        copy
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.release_far();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry::new(Value::Str(StrValue::from_slice(b"v")), Access::lru(epoch() + 5_000_000))
    }

    #[test]
    fn the_entry_is_its_key_its_value_and_one_word() {
        assert_eq!(std::mem::size_of::<Entry>(), std::mem::size_of::<Key>() + std::mem::size_of::<Value>() + 8);
    }

    fn split_of(e: &Entry) -> (usize, usize) {
        match &e.value {
            Value::Str(StrValue::Split(s)) => (s.ext(), s.tail_len()),
            other => panic!("not split: {other:?}"),
        }
    }

    /// A 100-character text value lends 7 bytes to a 14-byte key, and its
    /// tail drops from the 80-byte class to the 64; it reads whole through
    /// every door, takes the bytes back for a longer key, and lends again
    /// for a short one.
    #[test]
    fn a_split_string_lends_its_bytes_to_a_short_key() {
        let text: Vec<u8> = (0..100).map(|i| b' ' + (i * 37 % 95) as u8).collect();
        let mut e = Entry::new(Value::Str(StrValue::from_slice(&text)), Access::lru(0));
        assert_eq!(split_of(&e), (0, 71), "packed to 84, 13 in the value");
        e.set_key(b"key:0000000001");
        assert_eq!(split_of(&e), (7, 64));
        assert_eq!(e.key(), b"key:0000000001");
        assert_eq!(e.str_bytes().as_deref(), Some(&text[..]));
        assert_eq!(e.str_len(), Some(100));
        assert_eq!(e.encoding(), "raw");
        assert_eq!(e.value().as_str().map(|s| s.to_bytes()).as_deref(), Some(&text[..]));
        let copy = e.clone();
        assert_eq!((copy.key(), copy.str_bytes().as_deref()), (&b"key:0000000001"[..], Some(&text[..])));
        // A 22-byte key has no spare bytes: everything comes back.
        e.set_key(&[b'k'; 22]);
        assert_eq!(split_of(&e), (0, 71));
        assert_eq!(e.str_bytes().as_deref(), Some(&text[..]));
        e.set_key(b"k");
        assert_eq!(split_of(&e), (7, 64), "no more than fills the smaller class");
        // A new value reuses the spare bytes; the old one only drops.
        let other: Vec<u8> = text.iter().rev().copied().collect();
        drop(e.swap_value(|_| Value::Str(StrValue::from_slice(&other))));
        assert_eq!(e.str_bytes().as_deref(), Some(&other[..]));
        e.value_mut();
        assert_eq!(split_of(&e), (0, 71), "changed in place, it holds its bytes");
        e.set_key(b"key:0000000001");
        assert_eq!(e.into_value().as_str().map(|s| s.to_bytes()).as_deref(), Some(&other[..]));
        // A 20-byte key's two spare bytes reach no smaller class: nothing
        // lent. A 40-character value's 21-byte tail reaches the 16 class
        // with five.
        let mut long = Entry::new(Value::Str(StrValue::from_slice(&text)), Access::lru(0));
        long.set_key(b"key:0000000000000001");
        assert_eq!(split_of(&long), (0, 71));
        let mut short = Entry::new(Value::Str(StrValue::from_slice(&text[..40])), Access::lru(0));
        short.set_key(b"key:0000000001");
        assert_eq!(split_of(&short), (5, 16));
        assert_eq!(short.str_bytes().as_deref(), Some(&text[..40]));
    }

    #[test]
    fn deadlines_are_exact_near_and_far() {
        let e0 = epoch();
        let cases = [
            1,
            2,
            e0 - 1,
            e0,
            e0 + 1,
            e0 + 86_400_000,
            e0 + NEAR_SPAN - 1,
            e0 + NEAR_SPAN,
            e0 + NEAR_SPAN + 1,
            9_223_372_036_854_770_000,
            u64::MAX,
        ];
        let mut e = entry();
        e.set_raw_clock(0xabcdef);
        for at in cases {
            e.set_deadline(at);
            assert_eq!(e.expire_at(), Some(at), "deadline {at}");
            assert!(e.is_expired(at) && !e.is_expired(at - 1), "deadline {at}");
            assert_eq!(e.raw_clock(), 0xabcdef, "the clock survives deadline {at}");
            assert!(!e.visited());
        }
        // With the clock inside the near span, far deadlines are judged
        // by which side they lie on.
        let now = e0 + 1_000;
        for (at, passed) in [(1, true), (e0 - 1, true), (e0 + NEAR_SPAN, false), (u64::MAX, false)] {
            e.set_deadline(at);
            assert_eq!(e.is_expired(now), passed, "deadline {at}");
        }
        e.set_deadline(0);
        assert_eq!(e.expire_at(), None);
        assert!(!e.is_expired(u64::MAX));
    }

    #[test]
    fn only_far_deadlines_take_a_slot_and_each_entry_its_own() {
        let is_far = |e: &Entry| e.field() & FAR != 0;
        let mut near = entry();
        near.set_deadline(epoch() + 1000);
        assert!(!is_far(&near));
        let mut far = entry();
        far.set_deadline(u64::MAX - 1);
        assert!(is_far(&far));
        let copy = far.clone();
        assert_ne!(copy.field(), far.field(), "a clone has a slot of its own");
        drop(far);
        assert_eq!(copy.expire_at(), Some(u64::MAX - 1), "the clone outlives the original's slot");
        let mut moved = copy;
        moved.set_deadline(epoch() + 5);
        assert!(!is_far(&moved));
        assert_eq!(moved.expire_at(), Some(epoch() + 5));
        assert!(matches!(moved.into_value(), Value::Str(_)));
    }

    #[test]
    fn the_far_table_reuses_slots_and_empties() {
        let mut t = FarTable::default();
        let a = t.alloc(10);
        let b = t.alloc(20);
        t.free(a);
        assert_eq!(t.live(), 1);
        let c = t.alloc(30);
        assert_eq!(c, a, "a freed slot is reused");
        assert_eq!((t.at[b as usize], t.at[c as usize]), (20, 30));
        t.free(b);
        t.free(c);
        assert_eq!(t.live(), 0);
        assert_eq!(t.at.capacity(), 0, "an empty table holds no memory");
    }

    #[test]
    fn many_far_deadlines_read_back_exactly() {
        // Other tests may hold far deadlines meanwhile, so the count is a
        // floor.
        let entries: Vec<Entry> = (0..100)
            .map(|i| {
                let mut e = entry();
                e.set_deadline(i + 1);
                e
            })
            .collect();
        assert!(FAR_TABLE.lock().live() >= 100);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.expire_at(), Some(i as u64 + 1));
        }
    }

    #[test]
    fn lru_clock_wraps_as_redis_does() {
        let mut e = entry();
        let now = 1_000_000_000_000;
        e.set_idle(now, 90);
        assert_eq!(e.idle_secs(now), 90);
        assert_eq!(e.idle_secs(now + 10_000), 100);
        // Past 2^24 seconds the clock wraps, and idle time stays right.
        let later = now + (1 << 24) * 1000 - 5_000;
        e.touch(Access::lru(later));
        assert_eq!(e.idle_secs(later + 20_000), 20);
        assert!(e.visited());
    }

    #[test]
    fn lfu_counters_decay_by_minutes_and_wrap() {
        let now = 60_000 * 16_666_666;
        let mut e = Entry::new(Value::Str(StrValue::Int(1)), Access { lfu: true, ..Access::lru(now) });
        assert_eq!(e.lfu(now, 1), LFU_INIT_VAL);
        e.set_freq(now, 100);
        assert_eq!(e.lfu(now + 59_000, 1), 100);
        assert_eq!(e.lfu(now + 3 * 60_000, 1), 97);
        assert_eq!(e.lfu(now + 3 * 60_000, 2), 99);
        assert_eq!(e.lfu(now + 1000 * 60_000, 0), 100, "decay time 0 never decays");
        assert_eq!(e.lfu(now + 500 * 60_000, 1), 0);
        // The minute clock wraps at 2^16, as Redis's.
        assert_eq!(e.lfu(now + (1 << 16) * 60_000 + 2 * 60_000, 1), 98);
    }

    #[test]
    fn a_read_that_changes_nothing_stores_nothing() {
        let now = 1_000_000_000_000;
        let mut e = entry();
        e.touch(Access::lru(now));
        let before = e.word;
        e.touch(Access::lru(now + 999 - now % 1000));
        assert_eq!(e.word, before);
        e.clear_visited();
        assert!(!e.visited());
        assert_eq!(e.idle_secs(now), 0);
    }
}

//! Hashes: fields and values packed in one buffer while small (`listpack`,
//! see packed.rs), an insertion-ordered hash map once a threshold is
//! crossed (`hashtable`).
//! Like Redis, a hash never converts back.
//!
//! The map is a dense [`Table`] of [`Pair`]s (field and value in one
//! allocation), the keyspace's own map, for the reasons the keyspace uses
//! it: HSCAN walks it from the top index down with a stable cursor,
//! HRANDFIELD picks by index in O(1), and an element costs its handle and
//! a few bytes of index.
//!
//! Per-field TTLs (Redis 7.4's HEXPIRE family) live in a side map that
//! exists only once a field has had a TTL: the encoding then moves into a
//! box beside it, so plain hashes pay nothing for TTLs. A small hash that
//! has had one reports `listpackex`, as 7.4 does.

use super::packed::{Item, Packed};
use super::Limits;
use crate::table::{hash_key, Elem, Keyed, Table};
use bytes::Bytes;

/// A large hash's fields, each with its value (a [`Pair`]).
type Map = Table<Pair>;

/// A field and its value as one run of bytes: the field's length (a
/// varint), the field, the value, in an [`Elem`]: up to 15 bytes in the
/// 16-byte handle, longer ones in one allocation of exactly their size.
/// Two `Bytes` took 64 bytes of handles and two allocations. A 24-byte
/// handle holding 23 would take in more pairs (a 14-byte field and a
/// counter) but cost every longer pair 8 bytes, and measured so, a hash of
/// 30-byte fields and 100-byte values came out 4% over Redis's; this one
/// costs no pair more than a box did. The table finds it by its field.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair(Elem);

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut len = [0; 10];
        let n = super::packed::put_varint(&mut len, field.len());
        let size = n + field.len() + value.len();
        let fill = |b: &mut [u8]| {
            let (head, rest) = b.split_at_mut(n);
            head.copy_from_slice(&len[..n]);
            let (f, v) = rest.split_at_mut(field.len());
            f.copy_from_slice(field);
            v.copy_from_slice(value);
        };
        // Written where it will stay: on the stack for the handle to copy
        // in, or in the exact-size box the handle takes over.
        if size <= Elem::MAX_INLINE {
            let mut b = [0; Elem::MAX_INLINE];
            fill(&mut b[..size]);
            Pair(Elem::new(&b[..size]))
        } else {
            let mut b = vec![0; size].into_boxed_slice();
            fill(&mut b);
            Pair(b.into())
        }
    }

    /// Where the field starts and ends.
    fn bounds(&self) -> (usize, usize) {
        let (len, n) = super::packed::read_varint(&self.0);
        (n, n + len)
    }

    pub fn field(&self) -> &[u8] {
        let (from, to) = self.bounds();
        &self.0[from..to]
    }

    pub fn value(&self) -> &[u8] {
        &self.0[self.bounds().1..]
    }
}

impl Keyed for Pair {
    fn key(&self) -> &[u8] {
        self.field()
    }
}

/// A small hash is its fields and values alternating in one [`Packed`]
/// buffer, a large one a boxed table; one with per-field TTLs has either
/// behind a box with its TTL map. Each variant is one pointer, so a hash
/// is 16 bytes and lives in the key's value without a box of its own (a
/// box was a 32-byte allocation a key).
#[derive(Debug, Clone, PartialEq)]
enum HashData {
    Listpack(Packed),
    Table(Box<Map>),
    /// Never holds another `Ex`.
    Ex(Box<WithTtls>),
}

#[derive(Debug, Clone, PartialEq)]
struct WithTtls {
    data: HashData,
    ttl: Ttls,
}

use HashData as H;

/// The encoding under any TTL map.
enum Enc<'a> {
    Packed(&'a Packed),
    Table(&'a Map),
}

enum EncMut<'a> {
    Packed(&'a mut Packed),
    Table(&'a mut Map),
}

/// Field deadlines, absolute ms.
type Ttls = std::collections::HashMap<Bytes, u64, foldhash::fast::RandomState>;

#[derive(Debug, Clone, PartialEq)]
pub struct Hash {
    data: HashData,
}

const _: () = assert!(std::mem::size_of::<Hash>() == 16);

impl Default for Hash {
    fn default() -> Self {
        Hash { data: H::Listpack(Packed::default()) }
    }
}

/// A field of a packed hash and its value, where they lie.
fn find<'p>(p: &'p Packed, field: &[u8]) -> Option<(Item<'p>, Item<'p>)> {
    p.pairs().find(|(f, _)| f.bytes == field)
}

impl Hash {
    /// The encoding's data, under any TTL map.
    fn data(&self) -> &HashData {
        match &self.data {
            H::Ex(w) => &w.data,
            d => d,
        }
    }

    fn enc(&self) -> Enc<'_> {
        match self.data() {
            H::Listpack(p) => Enc::Packed(p),
            H::Table(m) => Enc::Table(m),
            H::Ex(_) => unreachable!("a TTL map holds no other"),
        }
    }

    /// As [`Self::data`], to change.
    fn data_mut(&mut self) -> &mut HashData {
        match &mut self.data {
            H::Ex(w) => &mut w.data,
            d => d,
        }
    }

    fn enc_mut(&mut self) -> EncMut<'_> {
        match self.data_mut() {
            H::Listpack(p) => EncMut::Packed(p),
            H::Table(m) => EncMut::Table(m),
            H::Ex(_) => unreachable!("a TTL map holds no other"),
        }
    }

    fn ttl(&self) -> Option<&Ttls> {
        match &self.data {
            H::Ex(w) => Some(&w.ttl),
            _ => None,
        }
    }

    fn ttl_mut(&mut self) -> Option<&mut Ttls> {
        match &mut self.data {
            H::Ex(w) => Some(&mut w.ttl),
            _ => None,
        }
    }

    /// The TTL map, made (and kept from then on) if there was none.
    fn ttl_made(&mut self) -> &mut Ttls {
        if !matches!(self.data, H::Ex(_)) {
            let data = std::mem::replace(&mut self.data, H::Listpack(Packed::default()));
            self.data = H::Ex(Box::new(WithTtls { data, ttl: Ttls::default() }));
        }
        self.ttl_mut().expect("made above")
    }

    /// Bytes of the TTL map and the box it shares with the encoding (0
    /// for a hash that never had a field TTL): the box, the map's buckets
    /// (a `Bytes` handle, a deadline and a control byte each) and the
    /// field names the map holds.
    pub fn ttl_bytes(&self) -> usize {
        let Some(t) = self.ttl() else { return 0 };
        let bucket = std::mem::size_of::<(Bytes, u64)>() + 1;
        crate::memsize::size_class(std::mem::size_of::<WithTtls>())
            + t.capacity() * bucket
            + t.keys().map(|f| crate::memsize::size_class(f.len())).sum::<usize>()
    }

    /// Whether the hash is in its small encoding (`listpack`).
    pub fn is_listpack(&self) -> bool {
        matches!(self.enc(), Enc::Packed(_))
    }

    pub fn len(&self) -> usize {
        match self.enc() {
            Enc::Packed(p) => p.len() / 2,
            Enc::Table(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match (self.enc(), self.ttl()) {
            (Enc::Packed(_), None) => "listpack",
            (Enc::Packed(_), Some(_)) => "listpackex",
            (Enc::Table(_), _) => "hashtable",
        }
    }

    /// Heap bytes of the small encoding's buffer (None for a table).
    pub fn packed_bytes(&self) -> Option<usize> {
        match self.enc() {
            Enc::Packed(p) => Some(p.allocated()),
            Enc::Table(_) => None,
        }
    }

    /// The large encoding's table (None while packed).
    pub fn table(&self) -> Option<&Table<Pair>> {
        match self.enc() {
            Enc::Packed(_) => None,
            Enc::Table(m) => Some(m),
        }
    }

    /// Whether any field has ever had a TTL (DUMP cannot carry them yet).
    pub fn has_field_ttls(&self) -> bool {
        self.ttl().is_some_and(|t| !t.is_empty())
    }

    /// A field's deadline (absolute ms), if it has one.
    pub fn field_ttl(&self, field: &[u8]) -> Option<u64> {
        self.ttl()?.get(field).copied()
    }

    /// The earliest field deadline, if any field has one.
    pub fn min_field_ttl(&self) -> Option<u64> {
        self.ttl()?.values().min().copied()
    }

    /// Gives an existing field a deadline.
    pub fn set_field_ttl(&mut self, field: &[u8], at: u64) {
        if self.contains(field) {
            self.ttl_made().insert(Bytes::copy_from_slice(field), at);
        }
    }

    /// Removes a field's deadline; true if it had one.
    pub fn persist_field(&mut self, field: &[u8]) -> bool {
        self.ttl_mut().is_some_and(|t| t.remove(field).is_some())
    }

    /// Deletes every field whose deadline is at or before `now` and
    /// returns their names (for the HDEL effects).
    pub fn purge_expired(&mut self, now: u64) -> Vec<Bytes> {
        let Some(t) = self.ttl() else { return vec![] };
        let due: Vec<Bytes> = t.iter().filter(|(_, at)| **at <= now).map(|(f, _)| f.clone()).collect();
        for f in &due {
            self.remove(f);
        }
        due
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self.enc() {
            Enc::Packed(p) => find(p, field).map(|(_, v)| v.bytes),
            Enc::Table(m) => m.get(field).map(Pair::value),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets a field, dropping any TTL it had (HSET); true if it was new.
    pub fn insert(&mut self, field: &[u8], value: &[u8], lim: &Limits) -> bool {
        if let Some(t) = self.ttl_mut() {
            t.remove(field);
        }
        self.insert_keep_ttl(field, value, lim)
    }

    /// Sets a field, keeping its TTL (HINCRBY); true if it was new.
    /// Converts first if the field or value is too long for a listpack,
    /// and after if there are too many.
    pub fn insert_keep_ttl(&mut self, field: &[u8], value: &[u8], lim: &Limits) -> bool {
        if let Enc::Packed(_) = self.enc() {
            if field.len() > lim.hash_max_listpack_value || value.len() > lim.hash_max_listpack_value {
                self.convert();
            }
        }
        let new = match self.enc_mut() {
            EncMut::Packed(p) => match find(p, field).map(|(_, v)| v.span) {
                Some(span) => {
                    p.replace(span, value);
                    false
                }
                None => {
                    p.push(&[field, value]);
                    true
                }
            },
            // `replace` keeps an existing field's place in the order.
            EncMut::Table(m) => m.replace(Pair::new(field, value)).is_none(),
        };
        if matches!(self.enc(), Enc::Packed(p) if p.len() / 2 > lim.hash_max_listpack_entries) {
            self.convert();
        }
        new
    }

    /// Deletes a field; true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if let Some(t) = self.ttl_mut() {
            t.remove(field);
        }
        match self.enc_mut() {
            EncMut::Packed(p) => match find(p, field).map(|(f, v)| f.span.0..v.span.1) {
                Some(range) => {
                    p.remove(range, 2);
                    true
                }
                None => false,
            },
            EncMut::Table(m) => m.remove(field).is_some(),
        }
    }

    /// The pair at `i` (0..len), for a random pick. A walk in the small
    /// encoding: [`Self::pick`] serves many picks with one.
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self.enc() {
            Enc::Packed(p) => p.pairs().nth(i).map(|(f, v)| (f.bytes, v.bytes)),
            Enc::Table(m) => m.get_index(i).map(|p| (p.field(), p.value())),
        }
    }

    /// Visits the pairs at the positions `at` yields (each below len), in
    /// its order; the small encoding is walked once, whatever their count.
    pub fn pick(&self, at: impl Iterator<Item = usize>, mut visit: impl FnMut(&[u8], &[u8])) {
        match self.enc() {
            Enc::Packed(p) => {
                let all: Vec<(&[u8], &[u8])> = p.pairs().map(|(f, v)| (f.bytes, v.bytes)).collect();
                at.for_each(|i| visit(all[i].0, all[i].1));
            }
            Enc::Table(m) => at.for_each(|i| {
                let p = m.get_index(i).expect("index below len");
                visit(p.field(), p.value())
            }),
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self.enc() {
            Enc::Packed(p) => Box::new(p.pairs().map(|(f, v)| (f.bytes, v.bytes))),
            Enc::Table(m) => Box::new(m.slots().map(|p| (p.field(), p.value()))),
        }
    }

    /// One HSCAN step. A listpack answers whole with cursor 0, as Redis's
    /// does; a table walks down from its top index (see the module doc).
    /// Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8], &[u8])) -> u64 {
        match self.enc() {
            Enc::Packed(p) => {
                p.pairs().for_each(|(f, v)| visit(f.bytes, v.bytes));
                0
            }
            Enc::Table(m) => scan_indexed(m.len(), cursor, count, |i| {
                let p = m.get_index(i).expect("index below len");
                visit(p.field(), p.value())
            }),
        }
    }

    fn convert(&mut self) {
        if let Enc::Packed(p) = self.enc() {
            let mut m = Map::with_capacity(p.len() / 2);
            for (f, v) in p.pairs() {
                m.push(hash_key(f.bytes), Pair::new(f.bytes, v.bytes));
            }
            *self.data_mut() = H::Table(Box::new(m));
        }
    }
}

/// The cursor walk shared by HSCAN, SSCAN and ZSCAN over indexed maps.
/// Cursor 0 starts at the top; cursor c > 0 resumes at index c - 1.
pub fn scan_indexed(len: usize, cursor: u64, count: usize, mut visit: impl FnMut(usize)) -> u64 {
    let mut next = if cursor == 0 { len } else { (cursor as usize).min(len) };
    let mut n = 0;
    while next > 0 && n < count.max(1) {
        next -= 1;
        visit(next);
        n += 1;
    }
    next as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_keep_field_and_value_in_and_out_of_the_handle() {
        let long = vec![b'f'; 300];
        for (field, value) in [
            (&b""[..], &b""[..]),
            (b"f", b""),
            (b"field", b"0123456789"), // 16 bytes with the length: spilled
            (b"field", b"012345678"),  // 15: in the handle
            (&long[..], b"v"),         // a two-byte length
            (b"k", &long[..]),
        ] {
            let p = Pair::new(field, value);
            assert_eq!((p.field(), p.value()), (field, value));
            assert_eq!(p.0.spilled(), 1 + field.len() + value.len() + usize::from(field.len() > 127) > 15);
        }
    }

    #[test]
    fn converts_at_the_thresholds() {
        let lim = Limits { hash_max_listpack_entries: 2, hash_max_listpack_value: 4, ..Default::default() };
        let mut h = Hash::default();
        assert!(h.insert(b"a", b"1", &lim));
        assert!(!h.insert(b"a", b"2", &lim));
        assert!(h.insert(b"b", b"1", &lim));
        assert_eq!(h.encoding(), "listpack");
        h.insert(b"c", b"1", &lim);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!((h.get(b"a"), h.get(b"b"), h.get(b"c")), (Some(&b"2"[..]), Some(&b"1"[..]), Some(&b"1"[..])));
        let mut h = Hash::default();
        h.insert(b"a", b"12345", &lim);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"12345"[..]));
    }

    #[test]
    fn a_table_keeps_each_field_with_its_value() {
        let lim = Limits { hash_max_listpack_entries: 0, ..Default::default() };
        let mut h = Hash::default();
        let long = vec![b'f'; 300]; // a two-byte length
        for (f, v) in [(&b""[..], &b"empty field"[..]), (b"empty value", b""), (&long, b"v1"), (b"x", b"1")] {
            assert!(h.insert(f, v, &lim));
        }
        assert_eq!(h.encoding(), "hashtable");
        assert!(!h.insert(&long, b"v2", &lim));
        assert_eq!(
            (h.get(b""), h.get(b"empty value"), h.get(&long)),
            (Some(&b"empty field"[..]), Some(&b""[..]), Some(&b"v2"[..]))
        );
        // A new value keeps the field's place in the order.
        assert_eq!(h.get_index(2), Some((&long[..], &b"v2"[..])));
        assert!(h.remove(b"") && !h.remove(b""));
        assert_eq!((h.len(), h.get(b"")), (3, None));
    }

    #[test]
    fn scan_visits_everything_once_without_writes() {
        let lim = Limits { hash_max_listpack_entries: 0, ..Default::default() };
        let mut h = Hash::default();
        for i in 0..100 {
            h.insert(i.to_string().as_bytes(), b"v", &lim);
        }
        let (mut seen, mut cur) = (Vec::new(), 0);
        loop {
            cur = h.scan(cur, 7, |f, _| seen.push(f.to_vec()));
            if cur == 0 {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 100);
    }
}

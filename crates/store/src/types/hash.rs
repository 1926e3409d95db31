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
//! exists only once a field has had a TTL, so plain hashes pay one null
//! pointer. A small hash that has one reports `listpackex`, as 7.4 does.

use super::packed::{Item, Packed};
use super::Limits;
use crate::table::{hash_key, Keyed, Table};
use bytes::Bytes;

/// A large hash's fields, each with its value in one allocation.
type Map = Table<Pair>;

/// A field and its value in one allocation: the field's length (a varint),
/// the field, the value. A table entry is this 16-byte handle where two
/// `Bytes` took 64, and one allocation where they took two. The table
/// finds it by its field.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair(Box<[u8]>);

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut b = Vec::with_capacity(field.len() + value.len() + 5);
        super::packed::write_varint(&mut b, field.len());
        b.extend_from_slice(field);
        b.extend_from_slice(value);
        Pair(b.into_boxed_slice())
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
/// buffer; the table is boxed, so a small hash's handle stays small.
#[derive(Debug, Clone, PartialEq)]
pub enum HashData {
    Listpack(Packed),
    Table(Box<Map>),
}

use HashData as H;

/// Field deadlines, absolute ms.
type Ttls = std::collections::HashMap<Bytes, u64, foldhash::fast::RandomState>;

#[derive(Debug, Clone, PartialEq)]
pub struct Hash {
    data: HashData,
    ttl: Option<Box<Ttls>>,
}

impl Default for Hash {
    fn default() -> Self {
        Hash { data: H::Listpack(Packed::default()), ttl: None }
    }
}

/// A field of a packed hash and its value, where they lie.
fn find<'p>(p: &'p Packed, field: &[u8]) -> Option<(Item<'p>, Item<'p>)> {
    p.pairs().find(|(f, _)| f.bytes == field)
}

impl Hash {
    /// Whether the hash is in its small encoding (`listpack`).
    pub fn is_listpack(&self) -> bool {
        matches!(self.data, H::Listpack(_))
    }

    pub fn len(&self) -> usize {
        match &self.data {
            H::Listpack(p) => p.len() / 2,
            H::Table(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match (&self.data, &self.ttl) {
            (H::Listpack(_), None) => "listpack",
            (H::Listpack(_), Some(_)) => "listpackex",
            (H::Table(_), _) => "hashtable",
        }
    }

    /// Heap bytes of the small encoding's buffer (None for a table).
    pub fn packed_bytes(&self) -> Option<usize> {
        match &self.data {
            H::Listpack(p) => Some(p.allocated()),
            H::Table(_) => None,
        }
    }

    /// The large encoding's table (None while packed).
    pub fn table(&self) -> Option<&Table<Pair>> {
        match &self.data {
            H::Listpack(_) => None,
            H::Table(m) => Some(m),
        }
    }

    /// Whether any field has ever had a TTL (DUMP cannot carry them yet).
    pub fn has_field_ttls(&self) -> bool {
        self.ttl.as_ref().is_some_and(|t| !t.is_empty())
    }

    /// A field's deadline (absolute ms), if it has one.
    pub fn field_ttl(&self, field: &[u8]) -> Option<u64> {
        self.ttl.as_ref()?.get(field).copied()
    }

    /// The earliest field deadline, if any field has one.
    pub fn min_field_ttl(&self) -> Option<u64> {
        self.ttl.as_ref()?.values().min().copied()
    }

    /// Gives an existing field a deadline.
    pub fn set_field_ttl(&mut self, field: &[u8], at: u64) {
        if self.contains(field) {
            self.ttl.get_or_insert_with(Default::default).insert(Bytes::copy_from_slice(field), at);
        }
    }

    /// Removes a field's deadline; true if it had one.
    pub fn persist_field(&mut self, field: &[u8]) -> bool {
        self.ttl.as_mut().is_some_and(|t| t.remove(field).is_some())
    }

    /// Deletes every field whose deadline is at or before `now` and
    /// returns their names (for the HDEL effects).
    pub fn purge_expired(&mut self, now: u64) -> Vec<Bytes> {
        let Some(t) = &self.ttl else { return vec![] };
        let due: Vec<Bytes> = t.iter().filter(|(_, at)| **at <= now).map(|(f, _)| f.clone()).collect();
        for f in &due {
            self.remove(f);
        }
        due
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.data {
            H::Listpack(p) => find(p, field).map(|(_, v)| v.bytes),
            H::Table(m) => m.get(field).map(Pair::value),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets a field, dropping any TTL it had (HSET); true if it was new.
    pub fn insert(&mut self, field: &[u8], value: &[u8], lim: &Limits) -> bool {
        if let Some(t) = &mut self.ttl {
            t.remove(field);
        }
        self.insert_keep_ttl(field, value, lim)
    }

    /// Sets a field, keeping its TTL (HINCRBY); true if it was new.
    /// Converts first if the field or value is too long for a listpack,
    /// and after if there are too many.
    pub fn insert_keep_ttl(&mut self, field: &[u8], value: &[u8], lim: &Limits) -> bool {
        if let H::Listpack(_) = self.data {
            if field.len() > lim.hash_max_listpack_value || value.len() > lim.hash_max_listpack_value {
                self.convert();
            }
        }
        let new = match &mut self.data {
            H::Listpack(p) => match find(p, field).map(|(_, v)| v.span) {
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
            H::Table(m) => m.replace(Pair::new(field, value)).is_none(),
        };
        if matches!(&self.data, H::Listpack(p) if p.len() / 2 > lim.hash_max_listpack_entries) {
            self.convert();
        }
        new
    }

    /// Deletes a field; true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if let Some(t) = &mut self.ttl {
            t.remove(field);
        }
        match &mut self.data {
            H::Listpack(p) => match find(p, field).map(|(f, v)| f.span.0..v.span.1) {
                Some(range) => {
                    p.remove(range, 2);
                    true
                }
                None => false,
            },
            H::Table(m) => m.remove(field).is_some(),
        }
    }

    /// The pair at `i` (0..len), for a random pick. A walk in the small
    /// encoding: [`Self::pick`] serves many picks with one.
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match &self.data {
            H::Listpack(p) => p.pairs().nth(i).map(|(f, v)| (f.bytes, v.bytes)),
            H::Table(m) => m.get_index(i).map(|p| (p.field(), p.value())),
        }
    }

    /// Visits the pairs at the positions `at` yields (each below len), in
    /// its order; the small encoding is walked once, whatever their count.
    pub fn pick(&self, at: impl Iterator<Item = usize>, mut visit: impl FnMut(&[u8], &[u8])) {
        match &self.data {
            H::Listpack(p) => {
                let all: Vec<(&[u8], &[u8])> = p.pairs().map(|(f, v)| (f.bytes, v.bytes)).collect();
                at.for_each(|i| visit(all[i].0, all[i].1));
            }
            H::Table(m) => at.for_each(|i| {
                let p = m.get_index(i).expect("index below len");
                visit(p.field(), p.value())
            }),
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match &self.data {
            H::Listpack(p) => Box::new(p.pairs().map(|(f, v)| (f.bytes, v.bytes))),
            H::Table(m) => Box::new(m.slots().map(|p| (p.field(), p.value()))),
        }
    }

    /// One HSCAN step. A listpack answers whole with cursor 0, as Redis's
    /// does; a table walks down from its top index (see the module doc).
    /// Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8], &[u8])) -> u64 {
        match &self.data {
            H::Listpack(p) => {
                p.pairs().for_each(|(f, v)| visit(f.bytes, v.bytes));
                0
            }
            H::Table(m) => scan_indexed(m.len(), cursor, count, |i| {
                let p = m.get_index(i).expect("index below len");
                visit(p.field(), p.value())
            }),
        }
    }

    fn convert(&mut self) {
        if let H::Listpack(p) = &self.data {
            let mut m = Map::with_capacity(p.len() / 2);
            for (f, v) in p.pairs() {
                m.push(hash_key(f.bytes), Pair::new(f.bytes, v.bytes));
            }
            self.data = H::Table(Box::new(m));
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

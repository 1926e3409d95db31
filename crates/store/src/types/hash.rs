//! Hashes: a flat vector of (field, value) pairs while small (`listpack`),
//! an insertion-ordered hash map once a threshold is crossed (`hashtable`).
//! Like Redis, a hash never converts back.
//!
//! The map is an `IndexMap` for the reasons the keyspace uses one: HSCAN
//! walks it from the top index down with a stable cursor, and HRANDFIELD
//! picks by index in O(1).

use super::Limits;
use bytes::Bytes;
use indexmap::IndexMap;

type Map = IndexMap<Bytes, Bytes, foldhash::fast::RandomState>;

#[derive(Debug, Clone, PartialEq)]
pub enum Hash {
    Listpack(Vec<(Bytes, Bytes)>),
    Table(Map),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Listpack(Vec::new())
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Listpack(v) => v.len(),
            Hash::Table(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Listpack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        match self {
            Hash::Listpack(v) => v.iter().find(|(f, _)| f == field).map(|(_, v)| v),
            Hash::Table(m) => m.get(field),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets a field; true if it was new. Converts first if the field or
    /// value is too long for a listpack, and after if there are too many.
    pub fn insert(&mut self, field: Bytes, value: Bytes, lim: &Limits) -> bool {
        if let Hash::Listpack(_) = self {
            if field.len() > lim.hash_max_listpack_value || value.len() > lim.hash_max_listpack_value {
                self.convert();
            }
        }
        let new = match self {
            Hash::Listpack(v) => match v.iter_mut().find(|(f, _)| *f == field) {
                Some(slot) => {
                    slot.1 = value;
                    false
                }
                None => {
                    v.push((field, value));
                    true
                }
            },
            Hash::Table(m) => m.insert(field, value).is_none(),
        };
        if matches!(self, Hash::Listpack(v) if v.len() > lim.hash_max_listpack_entries) {
            self.convert();
        }
        new
    }

    pub fn remove(&mut self, field: &[u8]) -> Option<Bytes> {
        match self {
            Hash::Listpack(v) => {
                let i = v.iter().position(|(f, _)| f == field)?;
                Some(v.remove(i).1)
            }
            Hash::Table(m) => m.swap_remove(field),
        }
    }

    /// The pair at `i` (0..len), for random picks.
    pub fn get_index(&self, i: usize) -> Option<(&Bytes, &Bytes)> {
        match self {
            Hash::Listpack(v) => v.get(i).map(|(f, v)| (f, v)),
            Hash::Table(m) => m.get_index(i),
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = (&Bytes, &Bytes)> + '_> {
        match self {
            Hash::Listpack(v) => Box::new(v.iter().map(|(f, v)| (f, v))),
            Hash::Table(m) => Box::new(m.iter()),
        }
    }

    /// One HSCAN step. A listpack answers whole with cursor 0, as Redis's
    /// does; a table walks down from its top index (see the module doc).
    /// Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Bytes, &Bytes)) -> u64 {
        match self {
            Hash::Listpack(v) => {
                v.iter().for_each(|(f, v)| visit(f, v));
                0
            }
            Hash::Table(m) => scan_indexed(m.len(), cursor, count, |i| {
                let (f, v) = m.get_index(i).expect("index below len");
                visit(f, v)
            }),
        }
    }

    fn convert(&mut self) {
        if let Hash::Listpack(v) = self {
            let mut m = Map::with_capacity_and_hasher(v.len(), Default::default());
            m.extend(v.drain(..));
            *self = Hash::Table(m);
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

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn converts_at_the_thresholds() {
        let lim = Limits { hash_max_listpack_entries: 2, hash_max_listpack_value: 4, ..Default::default() };
        let mut h = Hash::default();
        assert!(h.insert(b("a"), b("1"), &lim));
        assert!(!h.insert(b("a"), b("2"), &lim));
        assert!(h.insert(b("b"), b("1"), &lim));
        assert_eq!(h.encoding(), "listpack");
        h.insert(b("c"), b("1"), &lim);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = Hash::default();
        h.insert(b("a"), b("12345"), &lim);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b("12345")));
    }

    #[test]
    fn scan_visits_everything_once_without_writes() {
        let lim = Limits { hash_max_listpack_entries: 0, ..Default::default() };
        let mut h = Hash::default();
        for i in 0..100 {
            h.insert(b(&i.to_string()), b("v"), &lim);
        }
        let (mut seen, mut cur) = (Vec::new(), 0);
        loop {
            cur = h.scan(cur, 7, |f, _| seen.push(f.clone()));
            if cur == 0 {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 100);
    }
}

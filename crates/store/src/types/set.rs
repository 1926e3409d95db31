//! Sets in Redis's three encodings: a sorted vector of integers
//! (`intset`), a flat vector (`listpack`) and an insertion-ordered hash set
//! (`hashtable`, the keyspace's dense table: table.rs). Conversions follow
//! Redis 7.2's `setTypeAdd` rules, and like Redis a set never converts
//! back.

use super::buf::Buf;
use super::packed::Packed;
use super::Limits;
use crate::table::hash_key;
use crate::table::Elem;
use crate::value::parse_canonical_i64;
use bytes::Bytes;

/// A large set's members, each a 16-byte [`Elem`] (short ones inline)
/// where a `Bytes` took 32 and an allocation.
type Table = crate::table::Table<Elem>;

#[derive(Debug, Clone, PartialEq)]
pub enum Set {
    Intset(Ints),
    /// Members packed in one buffer (packed.rs).
    Listpack(Packed),
    /// Boxed, so a small set's handle stays small.
    Table(Box<Table>),
}

/// An intset's integers in ascending order, each in as many little-endian
/// bytes as the widest needs (2, 4 or 8: Redis's three intset encodings,
/// and like Redis's, never narrowed again), in one [`Buf`], whose tag
/// holds the width. One pointer, so a set stays 16 bytes and lives in
/// the key's value (value.rs).
#[derive(Debug, Clone, Default)]
pub struct Ints(Buf);

/// Bytes `x` needs.
fn width_of(x: i64) -> usize {
    if i16::try_from(x).is_ok() {
        2
    } else if i32::try_from(x).is_ok() {
        4
    } else {
        8
    }
}

fn read_int(b: &[u8]) -> i64 {
    match b.len() {
        2 => i16::from_le_bytes([b[0], b[1]]) as i64,
        4 => i32::from_le_bytes(b.try_into().expect("four bytes")) as i64,
        _ => i64::from_le_bytes(b.try_into().expect("eight bytes")),
    }
}

impl Ints {
    /// Bytes an integer takes (0 while empty: no width yet).
    fn width(&self) -> usize {
        self.0.tag() as usize
    }

    pub fn len(&self) -> usize {
        self.0.len().checked_div(self.width()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<i64> {
        let w = self.width();
        self.0.get(i * w..i * w + w).filter(|_| w > 0).map(read_int)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = i64> + '_ {
        self.0.chunks_exact(self.width().max(1)).map(read_int)
    }

    /// As `slice::binary_search`: where `x` is, or where it would go.
    pub fn binary_search(&self, x: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).expect("below len").cmp(&x) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Inserts `x` at position `at`, widening every integer first if `x`
    /// needs more bytes (Redis's `intsetUpgradeAndAdd`).
    fn insert(&mut self, at: usize, x: i64) {
        let w = width_of(x).max(self.width());
        if w != self.width() {
            let mut wider = Buf::new();
            for v in self.iter() {
                wider.extend_from_slice(&v.to_le_bytes()[..w]);
            }
            self.0 = wider;
        }
        self.0.splice(at * w..at * w, &x.to_le_bytes()[..w]);
        self.0.set_tag(w as u8);
    }

    fn remove(&mut self, at: usize) -> i64 {
        let (x, w) = (self.get(at).expect("below len"), self.width());
        self.0.splice(at * w..at * w + w, &[]);
        x
    }

    /// Bytes allocated.
    pub fn allocated(&self) -> usize {
        self.0.allocated()
    }
}

/// The same integers, whatever their widths.
impl PartialEq for Ints {
    fn eq(&self, other: &Ints) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Ints {}

fn int_of(m: &[u8]) -> Option<i64> {
    if m.len() > 20 {
        return None;
    }
    parse_canonical_i64(m)
}

fn int_bytes(i: i64) -> Bytes {
    Bytes::copy_from_slice(itoa::Buffer::new().format(i).as_bytes())
}

impl Set {
    /// An empty set in the encoding Redis's `setTypeCreate` picks for a
    /// first member `first` and about `size_hint` members.
    pub fn for_first(first: &[u8], size_hint: usize, lim: &Limits) -> Set {
        if int_of(first).is_some() && size_hint <= lim.set_max_intset_entries {
            Set::Intset(Default::default())
        } else if size_hint <= lim.set_max_listpack_entries {
            Set::Listpack(Packed::default())
        } else {
            Set::Table(Box::new(Table::with_capacity(size_hint)))
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Intset(v) => v.len(),
            Set::Listpack(v) => v.len(),
            Set::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Intset(_) => "intset",
            Set::Listpack(_) => "listpack",
            Set::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Intset(v) => int_of(m).is_some_and(|i| v.binary_search(i).is_ok()),
            Set::Listpack(p) => p.iter().any(|x| x.bytes == m),
            Set::Table(t) => t.get(m).is_some(),
        }
    }

    /// Adds a member; true if it was new.
    pub fn insert(&mut self, m: &[u8], lim: &Limits) -> bool {
        match self {
            Set::Intset(v) => {
                if let Some(i) = int_of(m) {
                    return match v.binary_search(i) {
                        Ok(_) => false,
                        Err(p) => {
                            v.insert(p, i);
                            if v.len() > lim.set_max_intset_entries.min(1 << 30) {
                                self.convert_to_table(0);
                            }
                            true
                        }
                    };
                }
                // Redis checks the widest integer already present too.
                let widest =
                    v.get(0).into_iter().chain(v.iter().next_back()).map(|i| int_bytes(i).len()).max().unwrap_or(0);
                if v.len() < lim.set_max_listpack_entries
                    && m.len() <= lim.set_max_listpack_value
                    && widest <= lim.set_max_listpack_value
                {
                    let mut members = Packed::default();
                    for i in v.iter() {
                        members.push(&[itoa::Buffer::new().format(i).as_bytes()]);
                    }
                    *self = Set::Listpack(members);
                } else {
                    self.convert_to_table(1);
                }
                self.insert(m, lim)
            }
            Set::Listpack(p) => {
                if p.iter().any(|x| x.bytes == m) {
                    return false;
                }
                if p.len() < lim.set_max_listpack_entries && m.len() <= lim.set_max_listpack_value {
                    p.push(&[m]);
                    return true;
                }
                self.convert_to_table(1);
                self.insert(m, lim)
            }
            Set::Table(t) => {
                let h = hash_key(m);
                if t.find(h, m).is_some() {
                    return false;
                }
                t.push(h, Elem::new(m));
                true
            }
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Intset(v) => match int_of(m).map(|i| v.binary_search(i)) {
                Some(Ok(p)) => {
                    v.remove(p);
                    true
                }
                _ => false,
            },
            Set::Listpack(p) => match p.iter().find(|x| x.bytes == m) {
                Some(x) => {
                    p.remove(x.span.0..x.span.1, 1);
                    true
                }
                None => false,
            },
            Set::Table(t) => t.remove(m).is_some(),
        }
    }

    /// The member at `i` (0..len), for random picks and scans.
    pub fn get_index(&self, i: usize) -> Option<Bytes> {
        match self {
            Set::Intset(v) => v.get(i).map(int_bytes),
            Set::Listpack(p) => p.iter().nth(i).map(|x| Bytes::copy_from_slice(x.bytes)),
            Set::Table(t) => t.get_index(i).map(|m| Bytes::copy_from_slice(m)),
        }
    }

    /// Removes and returns the member at `i`.
    pub fn remove_index(&mut self, i: usize) -> Option<Bytes> {
        match self {
            Set::Intset(v) => (i < v.len()).then(|| int_bytes(v.remove(i))),
            Set::Listpack(p) => {
                let x = p.iter().nth(i)?;
                let (m, span) = (Bytes::copy_from_slice(x.bytes), x.span);
                p.remove(span.0..span.1, 1);
                Some(m)
            }
            // A spilled member's allocation becomes the `Bytes` as it is.
            // One held inline is copied: `into_boxed_slice` would hand over
            // the whole 15-byte inline buffer, padding and all.
            Set::Table(t) => t.swap_remove_index(i).map(|m| {
                if m.spilled() {
                    Bytes::from(m.into_boxed_slice())
                } else {
                    Bytes::copy_from_slice(&m)
                }
            }),
        }
    }

    /// The members at the positions `at` yields (each below len), as
    /// [`Self::get_index`] would give them; a packed set is walked once,
    /// whatever their count.
    pub fn pick(&self, at: impl Iterator<Item = usize>) -> Vec<Bytes> {
        match self {
            Set::Listpack(p) => {
                let all: Vec<&[u8]> = p.iter().map(|x| x.bytes).collect();
                at.map(|i| Bytes::copy_from_slice(all[i])).collect()
            }
            _ => at.map(|i| self.get_index(i).expect("index below len")).collect(),
        }
    }

    /// Every member, in the encoding's order.
    pub fn members(&self) -> Vec<Bytes> {
        match self {
            Set::Intset(v) => v.iter().map(int_bytes).collect(),
            Set::Listpack(p) => p.iter().map(|x| Bytes::copy_from_slice(x.bytes)).collect(),
            Set::Table(t) => t.slots().map(|m| Bytes::copy_from_slice(m)).collect(),
        }
    }

    /// One SSCAN step: small encodings answer whole with cursor 0.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(Bytes)) -> u64 {
        match self {
            Set::Table(t) => super::hash::scan_indexed(t.len(), cursor, count, |i| {
                visit(Bytes::copy_from_slice(t.get_index(i).expect("index below len")))
            }),
            _ => {
                self.members().into_iter().for_each(visit);
                0
            }
        }
    }

    fn convert_to_table(&mut self, extra: usize) {
        let mut t = Table::with_capacity(self.len() + extra);
        let mut add = |m: &[u8]| {
            t.push(hash_key(m), Elem::new(m));
        };
        match self {
            Set::Intset(v) => v.iter().for_each(|i| add(itoa::Buffer::new().format(i).as_bytes())),
            Set::Listpack(p) => p.iter().for_each(|x| add(x.bytes)),
            Set::Table(_) => return,
        }
        *self = Set::Table(Box::new(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Integers take the width the widest needs, widened in place as
    /// members arrive, and read back in order whatever their widths.
    #[test]
    fn an_intset_widens_as_redis_does() {
        let lim = Limits::default();
        let mut s = Set::for_first(b"1", 1, &lim);
        let mut model = std::collections::BTreeSet::new();
        let ints = [5i64, -3, 300, -32_768, 32_767, 70_000, -2_147_483_648, 1 << 40, i64::MIN, i64::MAX, 0];
        let widths = [2, 2, 2, 2, 2, 4, 4, 8, 8, 8, 8];
        for (x, w) in ints.into_iter().zip(widths) {
            assert!(s.insert(x.to_string().as_bytes(), &lim));
            model.insert(x);
            let Set::Intset(v) = &s else { panic!("still an intset") };
            assert_eq!(v.width(), w, "after {x}");
            assert_eq!(v.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            assert_eq!(v.allocated(), crate::memsize::size_class(8 + w * model.len()));
        }
        for x in [i64::MAX, 5, -32_768] {
            assert!(s.remove(x.to_string().as_bytes()));
            model.remove(&x);
            assert!(!s.contains(x.to_string().as_bytes()));
        }
        let Set::Intset(v) = &s else { panic!("still an intset") };
        assert_eq!((v.width(), v.len()), (8, model.len()), "never narrowed");
        assert!(model.iter().all(|x| s.contains(x.to_string().as_bytes())));
        let (mut narrow, mut wide) = (Set::for_first(b"1", 1, &lim), Set::for_first(b"1", 1, &lim));
        for m in [&b"1"[..], b"2"] {
            narrow.insert(m, &lim);
            wide.insert(m, &lim);
        }
        wide.insert(b"1099511627776", &lim);
        wide.remove(b"1099511627776");
        assert_eq!(narrow, wide, "equal whatever the widths");
    }

    #[test]
    fn encodings_follow_redis_72() {
        let lim = Limits { set_max_intset_entries: 4, set_max_listpack_entries: 3, ..Default::default() };
        let mut s = Set::for_first(b"1", 1, &lim);
        for m in ["3", "1", "2"] {
            s.insert(m.as_bytes(), &lim);
        }
        assert_eq!((s.encoding(), s.members()), ("intset", vec![Bytes::from("1"), "2".into(), "3".into()]));
        // Three integers already: a word does not fit a 3-entry listpack.
        s.insert(b"x", &lim);
        assert_eq!(s.encoding(), "hashtable");
        let mut s = Set::for_first(b"1", 1, &lim);
        s.insert(b"1", &lim);
        s.insert(b"a", &lim);
        assert_eq!((s.encoding(), s.len()), ("listpack", 2));
        assert!(s.contains(b"1") && s.contains(b"a") && !s.contains(b"01"));
        let mut s = Set::for_first(b"1", 1, &lim);
        for i in 0..5 {
            s.insert(i.to_string().as_bytes(), &lim);
        }
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn members_removed_from_a_table_come_out_as_they_went_in() {
        let lim = Limits { set_max_listpack_entries: 2, ..Default::default() };
        // In the handle, at its 15 bytes, and spilled.
        let members = ["m", "fifteen-bytes-x", "sixteen-bytes-xx", "a longer member, well past the handle"];
        let mut s = Set::for_first(members[0].as_bytes(), 1, &lim);
        for m in members {
            s.insert(m.as_bytes(), &lim);
        }
        assert_eq!(s.encoding(), "hashtable");
        let mut out: Vec<Bytes> = std::iter::from_fn(|| s.remove_index(0)).collect();
        out.sort();
        let mut want: Vec<Bytes> = members.iter().map(|m| Bytes::from(*m)).collect();
        want.sort();
        assert_eq!(out, want);
    }
}

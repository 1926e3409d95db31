//! Collection values: one module per Redis type. Each keeps Redis's compact
//! encoding for small collections and switches at Redis's thresholds (the
//! `*-max-listpack-*` config names, carried in [`Limits`]) so that OBJECT
//! ENCODING, and the memory a small collection costs, match Redis.
//!
//! The types know nothing about commands or replies; the server's command
//! modules do the parsing and shaping, these do the data structure work.

pub mod buf;
pub mod hash;
pub mod hll;
pub mod list;
pub mod listpack;
pub mod ordered;
pub mod packed;
pub mod pel;
pub mod set;
pub mod stream;
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
    /// hll-sparse-max-bytes: a sparse HyperLogLog past this goes dense.
    pub hll_sparse_max_bytes: usize,
    /// stream-node-max-entries: entries per node (what `~` trims whole).
    pub stream_node_max_entries: u64,
    /// stream-node-max-bytes: a node's bytes before a new one starts (0:
    /// Redis's 1 GiB cap).
    pub stream_node_max_bytes: u64,
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
            hll_sparse_max_bytes: hll::SPARSE_MAX_BYTES,
            stream_node_max_entries: stream::NODE_ENTRIES,
            stream_node_max_bytes: stream::NODE_BYTES,
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

/// Model-based tests: each type against a std collection under random
/// operations with small thresholds, so every encoding switch is crossed.
#[cfg(test)]
mod model_tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet, VecDeque};

    fn small() -> Limits {
        Limits {
            hash_max_listpack_entries: 4,
            hash_max_listpack_value: 3,
            set_max_intset_entries: 5,
            set_max_listpack_entries: 4,
            set_max_listpack_value: 3,
            zset_max_listpack_entries: 4,
            zset_max_listpack_value: 3,
            list_max_listpack_size: 3,
            ..Limits::default()
        }
    }

    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![(-20i64..20).prop_map(|i| i.to_string().into_bytes()), "[a-e]{0,5}".prop_map(String::into_bytes)]
    }

    proptest! {
        #[test]
        fn hash_matches_model(ops in proptest::collection::vec((any::<bool>(), member(), member()), 0..60)) {
            let lim = small();
            let mut h = hash::Hash::default();
            let mut model = BTreeMap::new();
            for (ins, f, v) in ops {
                if ins {
                    let new = h.insert(&f, &v, &lim);
                    prop_assert_eq!(new, model.insert(f, v).is_none());
                } else {
                    prop_assert_eq!(h.get(&f).map(<[u8]>::to_vec), model.get(&f).cloned());
                    prop_assert_eq!(h.remove(&f), model.remove(&f).is_some());
                }
                if h.encoding() == "listpack" {
                    prop_assert!(h.len() <= lim.hash_max_listpack_entries);
                }
            }
            let got: BTreeMap<Vec<u8>, Vec<u8>> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(got, model);
        }

        #[test]
        fn set_matches_model(ops in proptest::collection::vec((any::<bool>(), member()), 0..60)) {
            let lim = small();
            let mut s: Option<set::Set> = None;
            let mut model = BTreeSet::new();
            for (ins, m) in ops {
                let set = s.get_or_insert_with(|| set::Set::for_first(&m, 1, &lim));
                if ins {
                    prop_assert_eq!(set.insert(&m, &lim), model.insert(m.clone()));
                } else {
                    prop_assert_eq!(set.remove(&m), model.remove(&m));
                }
                match set.encoding() {
                    "intset" => prop_assert!(set.len() <= lim.set_max_intset_entries),
                    "listpack" => prop_assert!(set.len() <= lim.set_max_listpack_entries),
                    _ => {}
                }
                for x in &model {
                    prop_assert!(set.contains(x));
                }
            }
            let got: BTreeSet<Vec<u8>> = s.map(|s| s.members().iter().map(|b| b.to_vec()).collect()).unwrap_or_default();
            prop_assert_eq!(got, model);
        }

        #[test]
        fn list_matches_model(ops in proptest::collection::vec((0u8..8, member()), 0..60)) {
            let lim = small();
            let mut l = list::List::default();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for (op, v) in ops {
                match op {
                    0 => { l.grow_check(v.len(), 1, &lim); l.push_front(Bytes::from(v.clone())); model.push_front(v); }
                    1 => { l.grow_check(v.len(), 1, &lim); l.push_back(Bytes::from(v.clone())); model.push_back(v); }
                    2 => prop_assert_eq!(l.pop_front().map(|b| b.to_vec()), model.pop_front()),
                    3 => prop_assert_eq!(l.pop_back().map(|b| b.to_vec()), model.pop_back()),
                    4 => {
                        let i = v.len() % (model.len() + 1);
                        l.grow_check(v.len(), 1, &lim);
                        l.insert(i, Bytes::from(v.clone()));
                        model.insert(i, v);
                    }
                    5 if !model.is_empty() => {
                        let i = v.len() % model.len();
                        prop_assert_eq!(l.get(i), Some(&model[i][..]));
                        l.set(i, Bytes::from(v.clone()));
                        model[i] = v;
                    }
                    6 if !model.is_empty() => {
                        let (a, b) = (v.len() % model.len(), (v.len() * 7) % model.len());
                        let (a, b) = (a.min(b), a.max(b));
                        l.trim(a, b);
                        model.truncate(b + 1);
                        model.drain(..a);
                        let start = v.len() % (model.len() + 1);
                        prop_assert!(l.iter_from(start).eq(model.range(start..).map(|m| &m[..])));
                    }
                    _ => {
                        let n = l.remove_matching(0, false, |x| x == v.as_slice());
                        let before = model.len();
                        model.retain(|x| *x != v);
                        prop_assert_eq!(n, before - model.len());
                    }
                }
                l.shrink_check(&lim);
                if l.encoding() == "listpack" {
                    prop_assert!(l.len() <= lim.list_max_listpack_size as usize);
                }
            }
            prop_assert_eq!(l.iter().map(|b| b.to_vec()).collect::<VecDeque<_>>(), model);
        }

        #[test]
        fn zset_matches_model(ops in proptest::collection::vec((any::<bool>(), member(), -5i32..5), 0..60)) {
            let lim = small();
            let mut z = zset::ZSet::with_hint(1, 1, &lim);
            let mut model: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            for (ins, m, sc) in ops {
                let sc = sc as f64 / 2.0;
                if ins {
                    prop_assert_eq!(z.insert(&m, sc, &lim), model.insert(m, sc));
                } else {
                    prop_assert_eq!(z.remove(&m), model.remove(&m));
                }
                if z.encoding() == "listpack" {
                    prop_assert!(z.len() <= lim.zset_max_listpack_entries);
                }
            }
            let mut want: Vec<(f64, Vec<u8>)> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
            want.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
            let got: Vec<(f64, Vec<u8>)> = z.iter().map(|e| (e.score, e.member.to_vec())).collect();
            prop_assert_eq!(&got, &want);
            for (r, (sc, m)) in want.iter().enumerate() {
                prop_assert_eq!(z.rank(m), Some(r));
                let e = z.get(r).unwrap();
                prop_assert_eq!((e.score, e.member), (*sc, &m[..]));
                let from: Vec<Vec<u8>> = z.iter_from(r).map(|e| e.member.to_vec()).collect();
                prop_assert_eq!(&from[..], &want[r..].iter().map(|w| w.1.clone()).collect::<Vec<_>>()[..]);
                let back: Vec<Vec<u8>> = z.iter_rev_from(r).map(|e| e.member.to_vec()).collect();
                prop_assert_eq!(back, want[..=r].iter().rev().map(|w| w.1.clone()).collect::<Vec<_>>());
                prop_assert_eq!(z.partition_point(|e| e.score < *sc), want.iter().position(|w| w.0 >= *sc).unwrap());
            }
            // Back to a listpack when small again, same contents.
            let big = Limits { zset_max_listpack_entries: 1000, zset_max_listpack_value: 1000, ..lim };
            z.shrink_if_small(&big);
            prop_assert_eq!(z.encoding(), "listpack");
            let got: Vec<(f64, Vec<u8>)> = z.iter().map(|e| (e.score, e.member.to_vec())).collect();
            prop_assert_eq!(&got, &want);
            if let Some(first) = want.first() {
                let e = z.remove_rank(0).unwrap();
                prop_assert_eq!((e.score, e.member.to_vec()), first.clone());
                prop_assert_eq!(z.len(), want.len() - 1);
            }
        }
    }
}

//! Streams in RDB: Redis's `RDB_TYPE_STREAM_LISTPACKS*` layout, entries and
//! consumer groups both.
//!
//! Redis keeps a stream as a radix tree of listpack nodes, each keyed by
//! its *master ID* (big-endian ms and seq) and opening with a master entry
//! (count, deleted, the field names of its first entry); every entry then
//! stores its ID as a difference from the master's, and its values alone
//! when its field names match the master's. Larder's streams keep nodes
//! too (types/stream.rs, in a layout of their own): writing emits each
//! node's live entries as one listpack, and reading keeps the file's
//! nodes, skipping entries flagged deleted. Type 19 (Redis 7.0) is what
//! version-10 files carry; type 21 (7.2) adds each consumer's active time
//! and is what DUMP writes; type 15 (5.0 to 6.2) still loads.

use crate::listpack;
use crate::rdb::{put_bytes, put_len, RdbError, Reader};
use bytes::{BufMut, Bytes, BytesMut};
use larder_store::types::stream::{Consumer, Group, Pending, Stream, StreamId};

pub(crate) const RDB_TYPE_STREAM_LISTPACKS: u8 = 15;
pub(crate) const RDB_TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub(crate) const RDB_TYPE_STREAM_LISTPACKS_3: u8 = 21;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

fn id_key(id: &StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

fn id_from_key(k: &[u8]) -> Result<StreamId, RdbError> {
    if k.len() != 16 {
        return Err(RdbError::BadFormat);
    }
    let half = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("8 bytes"));
    Ok(StreamId::new(half(&k[..8]), half(&k[8..])))
}

/// Writes the body of a stream (after its type byte and key) as type
/// `ty`: 19 or 21.
pub(crate) fn put_stream(out: &mut BytesMut, s: &Stream, ty: u8) {
    // Every node holds a live entry (the stream drops emptied ones); the
    // count written must match the nodes written all the same.
    let nodes: Vec<_> = s.nodes().filter_map(|node| Some((node.clone().next()?, node))).collect();
    put_len(out, nodes.len() as u64);
    let mut num = itoa::Buffer::new();
    for ((master, master_entry), node) in nodes {
        let names: Vec<_> = master_entry.fields().step_by(2).collect();
        // Numbers as text: the listpack encoder stores them as integers.
        let mut items: Vec<Vec<u8>> = Vec::new();
        let mut int = |items: &mut Vec<Vec<u8>>, v: i64| items.push(num.format(v).as_bytes().to_vec());
        int(&mut items, node.clone().count() as i64);
        int(&mut items, 0);
        int(&mut items, names.len() as i64);
        items.extend(names.iter().map(|n| n.to_vec()));
        int(&mut items, 0);
        for (id, entry) in node {
            let fields = entry.fields();
            let same =
                entry.field_count() == 2 * names.len() && fields.clone().step_by(2).zip(&names).all(|(a, b)| a == *b);
            int(&mut items, if same { FLAG_SAMEFIELDS } else { 0 });
            int(&mut items, id.ms.wrapping_sub(master.ms) as i64);
            int(&mut items, id.seq.wrapping_sub(master.seq) as i64);
            let pairs = entry.field_count() / 2;
            if same {
                items.extend(fields.skip(1).step_by(2).map(|v| v.to_vec()));
                int(&mut items, pairs as i64 + 3);
            } else {
                int(&mut items, pairs as i64);
                items.extend(fields.map(|f| f.to_vec()));
                int(&mut items, 2 * pairs as i64 + 4);
            }
        }
        put_bytes(out, &id_key(&master));
        put_bytes(out, &listpack::encode(items.iter().map(|i| i.as_slice())));
    }
    put_len(out, s.len() as u64);
    for id in [&s.last_id, &s.first_id, &s.max_deleted_id] {
        put_len(out, id.ms);
        put_len(out, id.seq);
    }
    put_len(out, s.entries_added);
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_bytes(out, name);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        // -1 (unknown) travels as the same 64 bits, as Redis writes it.
        put_len(out, g.entries_read as u64);
        put_len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            out.put_slice(&id_key(id));
            out.put_u64_le(p.delivery_time);
            put_len(out, p.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_bytes(out, cname);
            out.put_u64_le(c.seen_time);
            if ty == RDB_TYPE_STREAM_LISTPACKS_3 {
                out.put_u64_le(c.active_time);
            }
            put_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.put_slice(&id_key(id));
            }
        }
    }
}

fn int(b: &Bytes) -> Result<i64, RdbError> {
    larder_store::value::parse_canonical_i64(b).ok_or(RdbError::BadFormat)
}

/// Unpacks one listpack node into `s`, in order. The node's own counts
/// must agree with its entries, as Redis's deep check
/// (`streamValidateListpackIntegrity`) requires: the master entry's live
/// and deleted counts, and each entry's element count (its `lp-count`).
/// The entries alone would do for Larder, which counts for itself, but a
/// node whose counts disagree was not written by Redis or Larder.
fn read_node(s: &mut Stream, master: StreamId, lp: &[Bytes]) -> Result<(), RdbError> {
    let mut it = lp.iter();
    let mut next = || it.next().ok_or(RdbError::BadFormat);
    let count = int(next()?)?;
    let deleted = int(next()?)?;
    let nfields = usize::try_from(int(next()?)?).map_err(|_| RdbError::BadFormat)?;
    if nfields > lp.len() {
        return Err(RdbError::BadFormat);
    }
    let names: Vec<Bytes> = (0..nfields).map(|_| next().cloned()).collect::<Result<_, _>>()?;
    if int(next()?)? != 0 {
        return Err(RdbError::BadFormat);
    }
    let mut rest = it.peekable();
    // The file's nodes stay nodes, so `~` trims them as Redis would.
    let mut first = true;
    let (mut live, mut dead) = (0, 0);
    while rest.peek().is_some() {
        let mut take = || rest.next().ok_or(RdbError::BadFormat);
        let flags = int(take()?)?;
        let id =
            StreamId::new(master.ms.wrapping_add(int(take()?)? as u64), master.seq.wrapping_add(int(take()?)? as u64));
        let mut fields = Vec::new();
        let elements = if flags & FLAG_SAMEFIELDS != 0 {
            for name in &names {
                fields.push(name.clone());
                fields.push(take()?.clone());
            }
            names.len() + 3
        } else {
            let n = usize::try_from(int(take()?)?).map_err(|_| RdbError::BadFormat)?;
            if n > lp.len() {
                return Err(RdbError::BadFormat);
            }
            for _ in 0..2 * n {
                fields.push(take()?.clone());
            }
            2 * n + 4
        };
        if int(take()?)? != elements as i64 {
            return Err(RdbError::BadFormat);
        }
        if flags & FLAG_DELETED != 0 {
            dead += 1;
            continue;
        }
        live += 1;
        if !s.is_empty() && s.last_id >= id {
            return Err(RdbError::BadFormat);
        }
        s.append(id, &fields, first);
        first = false;
    }
    if (live, dead) != (count, deleted) {
        return Err(RdbError::BadFormat);
    }
    Ok(())
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId, RdbError> {
    Ok(StreamId::new(r.len()?.1, r.len()?.1))
}

/// Reads a stream of type `ty` (15, 19 or 21).
pub(crate) fn read_stream(r: &mut Reader<'_>, ty: u8) -> Result<Stream, RdbError> {
    let mut s = Stream::default();
    let (_, nodes) = r.len()?;
    for _ in 0..nodes {
        let master = id_from_key(&r.bytes()?)?;
        let raw = r.bytes()?;
        let lp = listpack::decode(&raw).ok_or(RdbError::BadFormat)?;
        if lp.is_empty() {
            return Err(RdbError::BadFormat);
        }
        read_node(&mut s, master, &lp)?;
    }
    let (_, length) = r.len()?;
    if length != s.len() as u64 {
        return Err(RdbError::BadFormat);
    }
    // Appending kept the newest entry's ID and the first's.
    let newest = s.last_id;
    s.last_id = read_id(r)?;
    if ty >= RDB_TYPE_STREAM_LISTPACKS_2 {
        s.first_id = read_id(r)?;
        s.max_deleted_id = read_id(r)?;
        s.entries_added = r.len()?.1;
    } else {
        s.entries_added = length;
    }
    if !s.is_empty() && newest > s.last_id {
        return Err(RdbError::BadFormat);
    }
    let (_, groups) = r.len()?;
    for _ in 0..groups {
        let name = r.bytes()?;
        let last_id = read_id(r)?;
        let entries_read =
            if ty >= RDB_TYPE_STREAM_LISTPACKS_2 { r.len()?.1 as i64 } else { s.estimate_distance(&last_id) };
        let mut g = Group::new(last_id, entries_read);
        let (_, pending) = r.len()?;
        for _ in 0..pending {
            let id = id_from_key(r.take(16)?)?;
            let delivery_time = r.u64_le()?;
            let delivery_count = r.len()?.1;
            let nack = Pending { consumer: Bytes::new(), delivery_time, delivery_count };
            if g.pel.insert(id, nack).is_some() {
                return Err(RdbError::BadFormat);
            }
        }
        let (_, consumers) = r.len()?;
        for _ in 0..consumers {
            let cname = r.bytes()?;
            let seen_time = r.u64_le()?;
            let active_time = if ty >= RDB_TYPE_STREAM_LISTPACKS_3 { r.u64_le()? } else { seen_time };
            let mut c = Consumer { seen_time, active_time, ..Default::default() };
            let (_, owned) = r.len()?;
            for _ in 0..owned {
                let id = id_from_key(r.take(16)?)?;
                let nack = g.pel.get_mut(&id).ok_or(RdbError::BadFormat)?;
                if !nack.consumer.is_empty() {
                    return Err(RdbError::BadFormat);
                }
                nack.consumer = cname.clone();
                c.pel.insert(id);
            }
            if g.consumers.insert(cname, c).is_some() {
                return Err(RdbError::BadFormat);
            }
        }
        // Every pending entry belongs to a consumer, as Redis checks.
        if g.pel.values().any(|p| p.consumer.is_empty()) {
            return Err(RdbError::BadFormat);
        }
        if s.groups.insert(name, g).is_some() {
            return Err(RdbError::BadFormat);
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{dump_payload, restore_payload};
    use larder_store::{Limits, Value};

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// A node's counts must agree with its entries (Redis's corrupt-dump
    /// case "stream bad lp_count"): live and deleted in the master entry,
    /// the element count after each entry.
    #[test]
    fn a_node_whose_counts_disagree_is_refused() {
        // Master: 1 live, 1 deleted, field "f". Then a deleted entry with
        // the master's fields (4 elements) and a live one with its own
        // (2*1 + 4 elements).
        let node = |count: &str, deleted: &str, same_lp: &str, own_lp: &str| {
            let items = [
                count, deleted, "1", "f", "0", //
                "3", "0", "0", "v", same_lp, //
                "0", "0", "1", "1", "g", "w", own_lp,
            ];
            let lp: Vec<Bytes> = items.iter().map(|i| b(i)).collect();
            let mut s = Stream::default();
            read_node(&mut s, StreamId::new(5, 0), &lp).map(|()| s)
        };
        let s = node("1", "1", "4", "6").expect("consistent counts load");
        assert_eq!((s.len(), s.last_id), (1, StreamId::new(5, 1)));
        for (count, deleted, same_lp, own_lp) in
            [("2", "1", "4", "6"), ("1", "0", "4", "6"), ("1", "1", "5", "6"), ("1", "1", "4", "4")]
        {
            assert!(node(count, deleted, same_lp, own_lp).is_err(), "{count} {deleted} {same_lp} {own_lp}");
        }
    }

    /// Entries across several nodes (with field names that match the
    /// master's and ones that do not, seq diffs below the master's),
    /// deletions, and a group with pending entries owned by consumers.
    fn sample() -> Stream {
        let mut s = Stream::default();
        for i in 0..250u64 {
            let id = StreamId::new(1000 + i / 3, 5 + (i % 3) * 10);
            let fields = if i % 5 == 0 {
                vec![b("other"), b(&i.to_string())]
            } else {
                vec![b("f"), b("v"), b("n"), b(&i.to_string())]
            };
            s.add(id, &fields, &Limits::default());
        }
        let ids: Vec<StreamId> = s.range(StreamId::MIN, StreamId::MAX, false).map(|(id, _)| id).collect();
        s.delete(&ids[3]);
        let mut g = Group::new(ids[11], 11);
        for (i, id) in ids.iter().filter(|id| **id != ids[3]).take(6).enumerate() {
            let name = if i % 2 == 0 { b("alice") } else { b("bob") };
            g.pel.insert(
                *id,
                Pending {
                    consumer: name.clone(),
                    delivery_time: 1_700_000_000_000 + i as u64,
                    delivery_count: i as u64 + 1,
                },
            );
            let (c, _) = g.consumer(&name, 42);
            c.pel.insert(*id);
            c.active_time = 43;
        }
        g.consumer(b"idle", 44);
        s.groups.insert(b("g1"), g);
        s.groups.insert(b("empty"), Group::new(StreamId::MIN, -1));
        s
    }

    fn same(a: &Stream, b: &Stream) {
        let fields = |s: &Stream| {
            s.range(StreamId::MIN, StreamId::MAX, false)
                .map(|(id, e)| (id, e.fields().map(|f| f.to_vec()).collect::<Vec<_>>()))
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(a), fields(b));
        assert_eq!(
            (a.last_id, a.first_id, a.max_deleted_id, a.entries_added),
            (b.last_id, b.first_id, b.max_deleted_id, b.entries_added)
        );
        assert_eq!(a.groups, b.groups);
    }

    #[test]
    fn streams_round_trip_in_both_stream_types() {
        let s = sample();
        let back =
            restore_payload(&dump_payload(&Value::Stream(Box::new(s.clone()))).unwrap(), &Limits::default()).unwrap();
        let Value::Stream(back) = back else { panic!("not a stream") };
        same(&s, &back);
        // Type 19 has no active time: it comes back as the seen time.
        let mut body = BytesMut::new();
        put_stream(&mut body, &s, RDB_TYPE_STREAM_LISTPACKS_2);
        let back = read_stream(&mut Reader::new(&body), RDB_TYPE_STREAM_LISTPACKS_2).unwrap();
        let alice = &back.groups[&b("g1")].consumers[&b("alice")];
        assert_eq!(alice.active_time, alice.seen_time);
        assert_eq!(back.len(), s.len());
    }

    #[test]
    fn a_pending_entry_without_a_consumer_is_corruption() {
        let mut s = sample();
        s.groups.get_mut(&b("g1")).unwrap().consumers.get_mut(&b("bob")).unwrap().pel.clear();
        let mut body = BytesMut::new();
        put_stream(&mut body, &s, RDB_TYPE_STREAM_LISTPACKS_3);
        assert_eq!(read_stream(&mut Reader::new(&body), RDB_TYPE_STREAM_LISTPACKS_3).unwrap_err(), RdbError::BadFormat);
    }
}

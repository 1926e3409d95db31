//! Streams: entries ordered by ID, packed into nodes, and consumer groups
//! with their pending entries lists (PEL).
//!
//! Entries live as Redis keeps them: in nodes of up to
//! stream-node-max-entries (100) entries and stream-node-max-bytes, each
//! found in an ordered map by its *master ID* (the first ID appended to
//! it) and holding its entries in one buffer. An entry's ID is stored as
//! its distance from the master's, and an entry whose field names are
//! the master's (the first entry's) stores its values alone, so a stream
//! of like entries costs about their values' bytes. XDEL flags an entry
//! deleted in place and a node goes once all its entries have; `~`
//! trimming removes whole nodes; the RDB writer emits these nodes.
//!
//! Why not one map entry per stream entry (what this replaced): a B-tree
//! slot and a buffer an entry cost about 115 bytes for three short
//! pairs, 3.7x Redis's 31. Reading an entry now means finding its node
//! (O(log n)) and walking at most a node's entries, as in Redis.
//!
//! The group bookkeeping (entries-read, lag, tombstones) follows Redis 7's
//! t_stream.c so XINFO reports the same numbers.

use super::buf::Buf;
use super::listpack::{int_size, string_size, LP_OVERHEAD};
use super::packed::{put_backlen, put_varint, read_backlen, read_varint, varint_len};
use super::pel::{IdMap, IdSet};
use super::Limits;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt;

/// stream-node-max-entries's default.
pub const NODE_ENTRIES: u64 = 100;

/// stream-node-max-bytes's default.
pub const NODE_BYTES: u64 = 4096;

/// Redis's `STREAM_LISTPACK_MAX_SIZE`: the byte bound when the setting is 0
/// or larger.
const NODE_BYTES_CAP: u64 = 1 << 30;

/// An entry's flag bits (its first byte), Redis's `STREAM_ITEM_FLAG_*`.
const DELETED: u8 = 1;
const SAME_FIELDS: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        *self == StreamId::MIN
    }

    /// The next ID, or None past the maximum.
    pub fn incr(&self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The previous ID, or None below the minimum.
    pub fn decr(&self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_sub(1).map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }

    /// `ms-seq`, as replies give it (one per entry of an XRANGE: written
    /// with itoa, not through the formatter).
    pub fn to_bytes(&self) -> Bytes {
        let (mut ms, mut seq) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (ms, seq) = (ms.format(self.ms).as_bytes(), seq.format(self.seq).as_bytes());
        let mut out = Vec::with_capacity(ms.len() + 1 + seq.len());
        out.extend_from_slice(ms);
        out.push(b'-');
        out.extend_from_slice(seq);
        Bytes::from(out)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A field or value as a node gives it back: its bytes in the node, or
/// an integer the node keeps as one, written out again as it came (only
/// canonical decimals are kept so, so they read back byte for byte).
/// Dereferences to the bytes either way.
#[derive(Clone, Copy)]
pub enum Field<'a> {
    Bytes(&'a [u8]),
    Int([u8; 20], u8),
}

impl std::ops::Deref for Field<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Field::Bytes(b) => b,
            Field::Int(buf, len) => &buf[..*len as usize],
        }
    }
}

impl AsRef<[u8]> for Field<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Field<'_> {
    fn eq(&self, other: &Field<'_>) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self))
    }
}

/// An item's header, a varint: an integer's zigzag form shifted up with
/// the low bit set, or a string's length shifted up. Integers are what an
/// event log's values mostly are (timestamps, counts, IDs): ten digits of
/// a timestamp take five bytes, as Redis's listpack keeps them.
/// Returns the header and how many of the item's bytes follow it; `int`
/// is what [`as_int`] says of them.
fn item_header(b: &[u8], int: Option<i64>) -> (usize, usize) {
    match int.map(|v| ((v << 1) ^ (v >> 63)) as u64) {
        // The zigzag form must leave the top bit for the shift.
        Some(z) if z >> 63 == 0 => ((z << 1 | 1) as usize, 0),
        _ => (b.len() << 1, b.len()),
    }
}

/// The integer a field reads as, by Redis's rule (the listpack's too).
fn as_int(b: &[u8]) -> Option<i64> {
    (b.len() <= 20).then(|| crate::value::parse_canonical_i64(b)).flatten()
}

/// An item as a node stores it.
enum Item<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

/// The item at the start of `b`, and `b` moved past it.
#[inline(always)]
fn next_item<'a>(b: &mut &'a [u8]) -> Item<'a> {
    let (h, n) = read_varint(b);
    if h & 1 == 1 {
        *b = &b[n..];
        let z = (h >> 1) as u64;
        return Item::Int((z >> 1) as i64 ^ -((z & 1) as i64));
    }
    let len = h >> 1;
    let item = &b[n..n + len];
    *b = &b[n + len..];
    Item::Bytes(item)
}

/// The item at the start of `b` as a [`Field`], and `b` moved past it.
fn take_item<'a>(b: &mut &'a [u8]) -> Field<'a> {
    match next_item(b) {
        Item::Bytes(bytes) => Field::Bytes(bytes),
        Item::Int(v) => {
            let (mut buf, mut fmt) = ([0u8; 20], itoa::Buffer::new());
            let text = fmt.format(v).as_bytes();
            buf[..text.len()].copy_from_slice(text);
            Field::Int(buf, text.len() as u8)
        }
    }
}

/// What `items` take here and as elements of Redis's listpack (what
/// stream-node-max-bytes weighs), each read for an integer once.
fn items_sizes<F: AsRef<[u8]>>(items: impl Iterator<Item = F>) -> (usize, usize) {
    items.fold((0, 0), |(here, lp), item| {
        let (b, int) = (item.as_ref(), as_int(item.as_ref()));
        let (h, len) = item_header(b, int);
        (here + varint_len(h) + len, lp + int.map_or_else(|| string_size(b.len()), int_size))
    })
}

/// Writes `items` into the front of `out`, each after its header; returns
/// the bytes written.
fn put_items<F: AsRef<[u8]>>(out: &mut [u8], items: impl Iterator<Item = F>) -> usize {
    let mut at = 0;
    for item in items {
        let item = item.as_ref();
        let (h, len) = item_header(item, as_int(item));
        at += put_varint(&mut out[at..], h);
        out[at..at + len].copy_from_slice(&item[..len]);
        at += len;
    }
    at
}

/// One entry's fields and values, read in place from its node.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    /// The node's master field names (items), read for an entry that
    /// shares them.
    names: &'a [u8],
    /// The values alone if `same`, else field, value, field, value…
    body: &'a [u8],
    same: bool,
    pairs: usize,
}

impl<'a> Entry<'a> {
    /// Field, value, field, value…
    pub fn fields(&self) -> Fields<'a> {
        Fields { names: self.names, body: self.body, same: self.same, value_next: false, left: 2 * self.pairs }
    }

    /// How many fields and values.
    pub fn field_count(&self) -> usize {
        2 * self.pairs
    }

    /// Hands each field and value to `f` in turn, integers written out in
    /// a buffer on the stack: what replies use. (Through [`Self::fields`],
    /// whose items carry their own buffer, XRANGE of a hundred entries ran
    /// a fifth slower.)
    pub fn each_field(&self, mut f: impl FnMut(&[u8])) {
        let (mut names, mut body) = (self.names, self.body);
        let mut fmt = itoa::Buffer::new();
        for i in 0..2 * self.pairs {
            match next_item(if self.same && i % 2 == 0 { &mut names } else { &mut body }) {
                Item::Bytes(bytes) => f(bytes),
                Item::Int(v) => f(fmt.format(v).as_bytes()),
            }
        }
    }
}

impl fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.fields()).finish()
    }
}

/// The iterator of [`Entry::fields`].
#[derive(Clone)]
pub struct Fields<'a> {
    names: &'a [u8],
    body: &'a [u8],
    same: bool,
    value_next: bool,
    left: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let from_names = self.same && !self.value_next;
        self.value_next = !self.value_next;
        Some(take_item(if from_names { &mut self.names } else { &mut self.body }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// An entry as its node stores it.
struct Raw<'a> {
    /// Where its flags byte is.
    at: usize,
    flags: u8,
    id: StreamId,
    entry: Entry<'a>,
}

/// A node: a buffer holding the master field names (a count, then each
/// name as an item: its header, see [`item_header`], and a string's
/// bytes), then the entries, each a flags byte, its ms less the master's
/// (varint), its seq (varint), the body's length (varint, so a reader can
/// step over it), the body (the values as items if it shares the master's
/// names, else the pair count, a varint, and field, value… as items) and
/// the length of all that as a back-length (packed.rs), so a reader can
/// step back over it: XREVRANGE walks a node from its end, as Redis's
/// listpacks let it.
#[derive(Debug, Clone)]
struct Node {
    buf: Buf,
    /// Where the entries start, past the names.
    start: u32,
    /// Entries appended, deleted ones included (Redis's count and deleted
    /// added up: what stream-node-max-entries bounds).
    count: u32,
    /// Entries not deleted. A node with none is removed.
    live: u32,
    /// The last ID appended (deleted or not), which MINID trimming reads as
    /// Redis does.
    last: StreamId,
    /// The bytes Redis's listpack for this node would hold, less its count
    /// and deleted fields (which change in place): stream-node-max-bytes
    /// weighs that, so nodes split where Redis's do and `~` trims and
    /// XINFO's node count agree with Redis's.
    lp: u32,
}

impl Node {
    fn new<F: AsRef<[u8]>>(master: StreamId, fields: &[F]) -> Node {
        let names = fields.iter().step_by(2);
        let (here, names_lp) = items_sizes(names.clone());
        let size = varint_len(fields.len() / 2) + here;
        let mut buf = Buf::new();
        let out = buf.splice_gap(0..0, size);
        let n = put_varint(out, fields.len() / 2);
        put_items(&mut out[n..], names);
        // The master entry: count and deleted (counted apart), the field
        // names with their number, and a terminating 0.
        let lp = LP_OVERHEAD + int_size(fields.len() as i64 / 2) + names_lp + int_size(0);
        let mut node = Node { buf, start: size as u32, count: 0, live: 0, last: master, lp: lp as u32 };
        node.push(master, master, fields);
        node
    }

    /// The master field names (as items) and how many.
    fn names(&self) -> (&[u8], usize) {
        let (count, n) = read_varint(&self.buf);
        (&self.buf[n..self.start as usize], count)
    }

    /// Redis's test for a new node: the listpack's bytes and the entry's
    /// raw lengths reach stream-node-max-bytes.
    fn would_exceed<F: AsRef<[u8]>>(&self, fields: &[F], max_bytes: u64) -> bool {
        let raw: usize = fields.iter().map(|f| f.as_ref().len()).sum();
        let max = if max_bytes == 0 || max_bytes > NODE_BYTES_CAP { NODE_BYTES_CAP } else { max_bytes };
        let lp = self.lp as usize + int_size(self.live as i64) + int_size((self.count - self.live) as i64);
        (lp + raw) as u64 >= max
    }

    fn push<F: AsRef<[u8]>>(&mut self, master: StreamId, id: StreamId, fields: &[F]) {
        let (names, count) = self.names();
        let same = fields.len() == 2 * count && {
            let mut names = names;
            fields.iter().step_by(2).all(|f| *take_item(&mut names) == *f.as_ref())
        };
        // The values alone, or every field and value after their count.
        let stored = fields.iter().skip(same as usize).step_by(if same { 2 } else { 1 });
        let (here, stored_lp) = items_sizes(stored.clone());
        let pairs = fields.len() / 2;
        let (flags, body_len) = if same { (SAME_FIELDS, here) } else { (0, varint_len(pairs) + here) };
        let ms = (id.ms - master.ms) as usize;
        // Redis's elements: flags, the ID's two differences, the pair count
        // unless shared, the fields and values, and their number.
        let (count_lp, lp_count) = if same { (0, pairs + 3) } else { (int_size(pairs as i64), 2 * pairs + 4) };
        let id_diffs = [flags as i64, ms as i64, id.seq.wrapping_sub(master.seq) as i64];
        let lp = id_diffs.map(int_size).iter().sum::<usize>() + count_lp + stored_lp + int_size(lp_count as i64);
        let len = 1 + varint_len(ms) + varint_len(id.seq as usize) + varint_len(body_len) + body_len;
        let end = self.buf.len();
        let out = self.buf.splice_gap(end..end, len + varint_len(len));
        put_backlen(&mut out[len..], len);
        out[0] = flags;
        let mut at = 1;
        for v in [ms, id.seq as usize, body_len] {
            at += put_varint(&mut out[at..], v);
        }
        if !same {
            at += put_varint(&mut out[at..], pairs);
        }
        put_items(&mut out[at..], stored);
        self.count += 1;
        self.live += 1;
        self.last = id;
        self.lp += lp as u32;
    }

    /// Every entry, deleted ones included, in ID order (either way).
    fn walk(&self, master: StreamId) -> Walk<'_> {
        let (names, count) = self.names();
        Walk { buf: &self.buf, names, count, master, front: self.start as usize, back: self.buf.len() }
    }

    /// The entries not deleted, in ID order.
    fn entries(&self, master: StreamId) -> impl DoubleEndedIterator<Item = (StreamId, Entry<'_>)> + Clone + '_ {
        self.walk(master).filter(|r| r.flags & DELETED == 0).map(|r| (r.id, r.entry))
    }

    /// The entry `id` if the node holds it undeleted.
    fn find(&self, master: StreamId, id: StreamId) -> Option<Raw<'_>> {
        self.walk(master).take_while(|r| r.id <= id).find(|r| r.id == id && r.flags & DELETED == 0)
    }
}

/// A walk over a node's entries (see [`Node`] for the layout): `front`
/// is where the next entry starts, `back` where the last one not yet
/// read ends.
#[derive(Clone)]
struct Walk<'a> {
    buf: &'a [u8],
    names: &'a [u8],
    count: usize,
    master: StreamId,
    front: usize,
    back: usize,
}

impl<'a> Walk<'a> {
    /// The entry at `at`, and where the next begins.
    fn read(&self, at: usize) -> (Raw<'a>, usize) {
        let buf = self.buf;
        let flags = buf[at];
        let mut p = at + 1;
        let mut varint = || {
            let (v, n) = read_varint(&buf[p..]);
            p += n;
            v
        };
        let (ms, seq, len) = (varint(), varint(), varint());
        let mut body = &buf[p..p + len];
        let end = p + len;
        let same = flags & SAME_FIELDS != 0;
        let pairs = if same {
            self.count
        } else {
            let (pairs, n) = read_varint(body);
            body = &body[n..];
            pairs
        };
        let id = StreamId::new(self.master.ms + ms as u64, seq as u64);
        let raw = Raw { at, flags, id, entry: Entry { names: self.names, body, same, pairs } };
        (raw, end + varint_len(end - at))
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = Raw<'a>;

    fn next(&mut self) -> Option<Raw<'a>> {
        if self.front == self.back {
            return None;
        }
        let (raw, next) = self.read(self.front);
        self.front = next;
        Some(raw)
    }
}

impl DoubleEndedIterator for Walk<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        let (len, n) = read_backlen(&self.buf[..self.back]);
        self.back -= n + len;
        Some(self.read(self.back).0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub consumer: Bytes,
    /// ms timestamp of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Consumer {
    /// Last time the consumer was seen (any interaction), ms.
    pub seen_time: u64,
    /// Last successful read or claim, ms (0: never).
    pub active_time: u64,
    pub pel: IdSet,
}

/// "Unknown" for a group's entries-read counter.
pub const INVALID_ENTRIES_READ: i64 = -1;

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: IdMap<Pending>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group { last_id, entries_read, pel: IdMap::new(), consumers: BTreeMap::new() }
    }

    /// The consumer `name`, created if missing; true if it was created.
    pub fn consumer(&mut self, name: &[u8], now: u64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        if created {
            let c = Consumer { seen_time: now, active_time: 0, pel: IdSet::new() };
            self.consumers.insert(Bytes::copy_from_slice(name), c);
        }
        (self.consumers.get_mut(name).expect("there or made"), created)
    }

    /// The consumer `name`'s own handle on its name, for a pending entry
    /// to hold: every entry shares the one allocation (a copy each cost a
    /// pending entry an allocation of the name's size).
    pub fn consumer_name(&self, name: &[u8]) -> Option<Bytes> {
        self.consumers.get_key_value(name).map(|(k, _)| k.clone())
    }

    /// Removes `id` from the PEL and from its consumer's list.
    pub fn ack(&mut self, id: &StreamId) -> bool {
        match self.pel.remove(id) {
            Some(p) => {
                if let Some(c) = self.consumers.get_mut(&p.consumer) {
                    c.pel.remove(id);
                }
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// By master ID; none is empty of live entries.
    nodes: BTreeMap<StreamId, Node>,
    /// Live entries.
    len: usize,
    pub last_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub first_id: StreamId,
    pub groups: BTreeMap<Bytes, Group>,
}

/// Equal when the entries, counters and groups are: how entries fall into
/// nodes (which a load from another server's file may change) is not part
/// of a stream's value.
impl PartialEq for Stream {
    fn eq(&self, other: &Stream) -> bool {
        fn entries(s: &Stream) -> impl Iterator<Item = (StreamId, Fields<'_>)> + '_ {
            s.range(StreamId::MIN, StreamId::MAX, false).map(|(id, e)| (id, e.fields()))
        }
        self.len == other.len
            && (self.last_id, self.max_deleted_id, self.entries_added, self.first_id)
                == (other.last_id, other.max_deleted_id, other.entries_added, other.first_id)
            && self.groups == other.groups
            && entries(self).zip(entries(other)).all(|((a, fa), (b, fb))| a == b && fa.eq(fb))
    }
}

/// How XADD and XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

impl Stream {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ID `*` would give now.
    pub fn next_auto_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.incr()
        }
    }

    /// Appends an entry; the caller has checked that `id` > last_id. A
    /// new node starts where Redis's would: once the newest holds
    /// stream-node-max-entries entries (0: no bound), or when the entry's
    /// bytes would take it to stream-node-max-bytes.
    pub fn add<F: AsRef<[u8]>>(&mut self, id: StreamId, fields: &[F], limits: &Limits) {
        let full = self.nodes.last_key_value().is_none_or(|(_, n)| {
            let max = limits.stream_node_max_entries;
            (max > 0 && n.count as u64 >= max) || n.would_exceed(fields, limits.stream_node_max_bytes)
        });
        self.append(id, fields, full);
    }

    /// Appends an entry, in a new node if `new_node` (a loader keeps the
    /// nodes of the file it reads) or if there is none.
    pub fn append<F: AsRef<[u8]>>(&mut self, id: StreamId, fields: &[F], new_node: bool) {
        match self.nodes.last_entry() {
            Some(mut tail) if !new_node => {
                let master = *tail.key();
                tail.get_mut().push(master, id, fields);
            }
            _ => {
                self.nodes.insert(id, Node::new(id, fields));
            }
        }
        self.len += 1;
        self.entries_added += 1;
        if self.len == 1 {
            self.first_id = id;
        }
        self.last_id = id;
    }

    fn refresh_first(&mut self) {
        self.first_id = self.first().map_or(StreamId::MIN, |(id, _)| id);
    }

    /// The node that would hold `id`: the last whose master is not after it.
    fn node_of(&self, id: StreamId) -> Option<(StreamId, &Node)> {
        self.nodes.range(..=id).next_back().map(|(m, n)| (*m, n))
    }

    /// Flags `at` in the node `master` deleted, and removes the node if it
    /// has no live entry left.
    fn delete_at(&mut self, master: StreamId, at: usize) {
        let node = self.nodes.get_mut(&master).expect("a node found a moment ago");
        node.buf[at] |= DELETED;
        node.live -= 1;
        self.len -= 1;
        if node.live == 0 {
            self.nodes.remove(&master);
        }
    }

    /// XDEL of one ID; true if it existed.
    pub fn delete(&mut self, id: &StreamId) -> bool {
        let Some((master, at)) = self.node_of(*id).and_then(|(m, n)| Some((m, n.find(m, *id)?.at))) else {
            return false;
        };
        self.delete_at(master, at);
        if *id > self.max_deleted_id {
            self.max_deleted_id = *id;
        }
        if *id == self.first_id {
            self.refresh_first();
        }
        true
    }

    /// Trims as Redis's `streamTrim` does: from the oldest node, whole
    /// nodes while they can go; then, unless `approx`, entries of the
    /// next one. At most `limit` entries (0: no limit) go, in whole nodes.
    /// Returns the number of entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        while let Some((&master, node)) = self.nodes.first_key_value() {
            if matches!(how, Trim::MaxLen(n) if self.len as u64 <= n) {
                break;
            }
            let live = node.live as u64;
            if limit != 0 && removed + live > limit {
                break;
            }
            let whole = match how {
                Trim::MaxLen(n) => self.len as u64 - live >= n,
                Trim::MinId(min) => node.last < min,
            };
            if whole {
                self.nodes.pop_first();
                self.len -= live as usize;
                removed += live;
                continue;
            }
            if approx {
                break;
            }
            // Entries of this node, oldest first, until the stream is
            // short enough or they reach the minimum; then Redis stops.
            let mut len = self.len as u64;
            let doomed: Vec<usize> = node
                .walk(master)
                .filter(|r| r.flags & DELETED == 0)
                .take_while(|r| match how {
                    Trim::MaxLen(n) => {
                        len -= 1;
                        len >= n
                    }
                    Trim::MinId(min) => r.id < min,
                })
                .map(|r| r.at)
                .collect();
            removed += doomed.len() as u64;
            for at in doomed {
                self.delete_at(master, at);
            }
            break;
        }
        if removed > 0 {
            self.refresh_first();
        }
        removed
    }

    /// Entries in [start, end], ascending (or descending if `rev`).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (StreamId, Entry<'_>)> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        // The node holding `start` may begin before it.
        let from = self.node_of(start).map_or(start, |(m, _)| m);
        let nodes = self.nodes.range(from..=end);
        if rev {
            let entries = nodes.rev().flat_map(|(m, n)| n.entries(*m).rev());
            Box::new(entries.skip_while(move |(id, _)| *id > end).take_while(move |(id, _)| *id >= start))
        } else {
            let entries = nodes.flat_map(|(m, n)| n.entries(*m));
            Box::new(entries.skip_while(move |(id, _)| *id < start).take_while(move |(id, _)| *id <= end))
        }
    }

    pub fn get(&self, id: &StreamId) -> Option<Entry<'_>> {
        self.node_of(*id).and_then(|(m, n)| n.find(m, *id)).map(|r| r.entry)
    }

    pub fn first(&self) -> Option<(StreamId, Entry<'_>)> {
        self.nodes.first_key_value().and_then(|(m, n)| n.entries(*m).next())
    }

    pub fn last(&self) -> Option<(StreamId, Entry<'_>)> {
        self.nodes.last_key_value().and_then(|(m, n)| n.entries(*m).next_back())
    }

    /// The nodes, oldest first, each as its live entries: what the RDB
    /// writer emits one listpack apiece.
    pub fn nodes(&self) -> impl Iterator<Item = impl Iterator<Item = (StreamId, Entry<'_>)> + Clone + '_> + '_ {
        self.nodes.iter().map(|(m, n)| n.entries(*m))
    }

    /// Each node's bytes on the heap (MEMORY USAGE).
    pub fn node_allocations(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes.values().map(|n| n.buf.allocated())
    }

    /// Whether the latest tombstone lies in [start, end].
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.is_empty() || self.max_deleted_id.is_zero() || self.first_id > self.max_deleted_id {
            return false;
        }
        let (s, e) = (start.unwrap_or(StreamId::MIN), end.unwrap_or(StreamId::MAX));
        s <= self.max_deleted_id && self.max_deleted_id <= e
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the logical
    /// read counter of `id`, or INVALID_ENTRIES_READ.
    pub fn estimate_distance(&self, id: &StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.is_empty() && *id <= self.last_id {
            return self.entries_added as i64;
        }
        if *id == self.last_id {
            return self.entries_added as i64;
        }
        if *id > self.last_id {
            return INVALID_ENTRIES_READ;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if *id < self.first_id {
                return (self.entries_added - self.len as u64) as i64;
            }
            if *id == self.first_id {
                return (self.entries_added - self.len as u64 + 1) as i64;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag (XINFO GROUPS), None when it cannot be known.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(Some(g.last_id), None) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let read = self.estimate_distance(&g.last_id);
        (read != INVALID_ENTRIES_READ).then(|| self.entries_added as i64 - read)
    }

    /// Moves a group's last-delivered ID forward past `id`, keeping its
    /// entries-read counter as Redis does.
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let valid_and_clean = {
            let g = &self.groups[group];
            g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(Some(id), None)
        };
        let estimate =
            if valid_and_clean || self.entries_added == 0 { None } else { Some(self.estimate_distance(&id)) };
        let g = self.groups.get_mut(group).expect("group exists");
        if id <= g.last_id {
            return;
        }
        if valid_and_clean {
            g.entries_read += 1;
        } else if let Some(e) = estimate {
            g.entries_read = e;
        }
        g.last_id = id;
    }

    /// Radix-tree figures for XINFO STREAM, as if each node were one key.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_n(s: &mut Stream, n: u64) {
        for i in 0..n {
            let id = StreamId::new(1, s.entries_added + i);
            s.add(id, &[b"f", b"v"], &Limits::default());
        }
    }

    #[test]
    fn approximate_trim_removes_whole_nodes() {
        let mut s = Stream::default();
        for i in 1..=250 {
            s.add::<&[u8]>(StreamId::new(1, i), &[], &Limits::default());
        }
        assert_eq!(s.trim(Trim::MaxLen(180), true, 0), 0);
        assert_eq!(s.trim(Trim::MaxLen(150), true, 0), 100);
        assert_eq!(s.len(), 150);
        assert_eq!(s.first_id, StreamId::new(1, 101));
        assert_eq!(s.trim(Trim::MaxLen(10), false, 0), 140);
        assert_eq!(s.first_id, StreamId::new(1, 241));
    }

    #[test]
    fn lag_follows_redis() {
        let mut s = Stream::default();
        add_n(&mut s, 5);
        s.groups.insert(Bytes::from_static(b"g"), Group::new(StreamId::MIN, INVALID_ENTRIES_READ));
        let g = &s.groups[&b"g"[..]];
        assert_eq!(s.lag(g), Some(5));
        let first = s.first_id;
        s.advance_group(b"g", first);
        assert_eq!(s.groups[&b"g"[..]].entries_read, 1);
        assert_eq!(s.lag(&s.groups[&b"g"[..]]), Some(4));
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        for id in [StreamId::MIN, StreamId::MAX, StreamId::new(1_700_000_000_123, 7)] {
            assert_eq!(id.to_bytes(), id.to_string().as_bytes());
        }
    }

    /// One step of the model test.
    #[derive(Debug, Clone)]
    enum Op {
        /// Appends after the last ID (ms and seq steps), fields of a shape
        /// (0: the usual names, 1: other names, 2: none) with values of
        /// these lengths.
        Add { ms: u64, seq: u64, shape: u8, values: Vec<usize> },
        /// Deletes the model's entry at this index (mod its length), or an
        /// ID that was never added.
        Delete(usize, bool),
        /// MAXLEN of this many, or MINID of the entry at this index.
        Trim { maxlen: bool, n: usize, approx: bool, limit: u64 },
        /// Reads entries between two model indexes, either way.
        Range(usize, usize, bool),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0..3u64, 0..3u64, 0..3u8, proptest::collection::vec(0..200usize, 1..4))
                .prop_map(|(ms, seq, shape, values)| Op::Add { ms, seq, shape, values }),
            2 => (any::<usize>(), any::<bool>()).prop_map(|(i, real)| Op::Delete(i, real)),
            1 => (any::<bool>(), 0..60usize, any::<bool>(), prop_oneof![Just(0u64), 1..30u64])
                .prop_map(|(maxlen, n, approx, limit)| Op::Trim { maxlen, n, approx, limit: if approx { limit } else { 0 } }),
            2 => (any::<usize>(), any::<usize>(), any::<bool>()).prop_map(|(a, b, rev)| Op::Range(a, b, rev)),
        ]
    }

    fn fields_of(shape: u8, values: &[usize], at: u64) -> Vec<Vec<u8>> {
        let names: [&[u8]; 3] = match shape {
            0 => [b"user", b"event", b"ts"],
            1 => [b"other", b"", b"x"],
            _ => return vec![],
        };
        // Text, integers the nodes keep as such (at the edges of what they
        // keep so too), and numbers that are not canonical (kept as text).
        let value = |i: usize, len: usize| -> Vec<u8> {
            let n = at as i64 * 7919 + len as i64 - 40_000;
            let edges = [i64::MIN, i64::MAX, 1 << 62, -(1 << 62), (1 << 62) - 1, -(1 << 62) - 1];
            match (at as usize + i) % 5 {
                0 => n.to_string().into_bytes(),
                1 => edges[len % 6].to_string().into_bytes(),
                2 => ["007", "-0", "+5", "", "1e3", "-"][len % 6].as_bytes().to_vec(),
                _ => (0..len).map(|j| b'a' + ((at as usize + i + j) % 26) as u8).collect(),
            }
        };
        values.iter().enumerate().flat_map(|(i, &len)| [names[i].to_vec(), value(i, len)]).collect()
    }

    type Model = BTreeMap<StreamId, Vec<Vec<u8>>>;

    fn read_all(s: &Stream, start: StreamId, end: StreamId, rev: bool) -> Vec<(StreamId, Vec<Vec<u8>>)> {
        s.range(start, end, rev).map(|(id, e)| (id, e.fields().map(|f| f.to_vec()).collect())).collect()
    }

    fn check(s: &Stream, model: &Model) -> Result<(), proptest::test_runner::TestCaseError> {
        use proptest::prop_assert_eq;
        let want: Vec<_> = model.iter().map(|(id, f)| (*id, f.clone())).collect();
        prop_assert_eq!(read_all(s, StreamId::MIN, StreamId::MAX, false), want);
        prop_assert_eq!(s.len(), model.len());
        prop_assert_eq!(s.first_id, model.keys().next().copied().unwrap_or(StreamId::MIN));
        prop_assert_eq!(s.first().map(|(id, _)| id), model.keys().next().copied());
        prop_assert_eq!(s.last().map(|(id, _)| id), model.keys().next_back().copied());
        for (id, f) in model {
            let got: Option<Vec<Vec<u8>>> = s.get(id).map(|e| e.fields().map(|f| f.to_vec()).collect());
            prop_assert_eq!(got.as_ref(), Some(f));
            let mut each = Vec::new();
            s.get(id).unwrap().each_field(|b| each.push(b.to_vec()));
            prop_assert_eq!(&each, f);
        }
        // No node is left without a live entry, and the live counts add up.
        proptest::prop_assert!(s.nodes.values().all(|n| n.live > 0));
        prop_assert_eq!(s.nodes.values().map(|n| n.live as usize).sum::<usize>(), s.len());
        Ok(())
    }

    proptest::proptest! {
        /// Any run of appends, deletions, trims and reads agrees with an
        /// ordered map of the entries, across nodes bounded by small
        /// stream-node-max-entries and -bytes.
        #[test]
        fn a_stream_reads_as_a_map_of_its_entries(
            node_entries in 0..6u64,
            node_bytes in proptest::prop_oneof![proptest::strategy::Just(0u64), 40..600u64],
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            use proptest::prop_assert_eq;
            let limits = Limits { stream_node_max_entries: node_entries, stream_node_max_bytes: node_bytes, ..Limits::default() };
            let (mut s, mut model) = (Stream::default(), Model::new());
            for op in ops {
                match op {
                    Op::Add { ms, seq, shape, values } => {
                        let last = s.last_id;
                        let id = if ms == 0 { StreamId::new(last.ms, last.seq + 1 + seq) } else { StreamId::new(last.ms + ms, seq) };
                        let fields = fields_of(shape, &values, s.entries_added);
                        s.add(id, &fields, &limits);
                        model.insert(id, fields);
                    }
                    Op::Delete(i, real) => {
                        let id = match model.keys().nth(i % model.len().max(1)) {
                            Some(id) if real => *id,
                            _ => StreamId::new(s.last_id.ms + 1 + (i % 5) as u64, 0),
                        };
                        prop_assert_eq!(s.delete(&id), model.remove(&id).is_some());
                        // A second delete of the same ID finds nothing.
                        proptest::prop_assert!(!s.delete(&id));
                    }
                    Op::Trim { maxlen, n, approx, limit } => {
                        let (how, exact) = if maxlen {
                            (Trim::MaxLen(n as u64), model.len().saturating_sub(n))
                        } else {
                            let min = model.keys().nth(n % model.len().max(1)).copied().unwrap_or(StreamId::new(1, 0));
                            (Trim::MinId(min), model.range(..min).count())
                        };
                        let removed = s.trim(how, approx, limit) as usize;
                        if approx {
                            proptest::prop_assert!(removed <= exact);
                        } else {
                            prop_assert_eq!(removed, exact);
                        }
                        if limit > 0 {
                            proptest::prop_assert!(removed as u64 <= limit);
                        }
                        // What went are the oldest entries.
                        for _ in 0..removed {
                            model.pop_first();
                        }
                    }
                    Op::Range(a, b, rev) => {
                        let ids: Vec<StreamId> = model.keys().copied().collect();
                        let pick = |i: usize| ids.get(i % (ids.len() + 1)).copied().unwrap_or(StreamId::MAX);
                        let (start, end) = (pick(a), pick(b));
                        let mut want: Vec<_> = if start <= end {
                            model.range(start..=end).map(|(id, f)| (*id, f.clone())).collect()
                        } else {
                            vec![]
                        };
                        if rev {
                            want.reverse();
                        }
                        prop_assert_eq!(read_all(&s, start, end, rev), want);
                    }
                }
                check(&s, &model)?;
            }
        }
    }

    #[test]
    fn like_entries_cost_about_their_values() {
        let mut s = Stream::default();
        for i in 0..1000u64 {
            let ts = (1_700_000_000 + i).to_string();
            s.add(
                StreamId::new(1_700_000_000_000 + i, 0),
                &[&b"user"[..], b"u1", b"event", b"click", b"ts", ts.as_bytes()],
                &Limits::default(),
            );
        }
        // Each: flags, two ID varints, the body's length, values of 2 and
        // 5 bytes with a length byte each, the timestamp as a five-byte
        // integer, the back-length.
        let per_entry = 1 + 1 + 1 + 1 + (3 + 6 + 5) + 1;
        assert_eq!(s.node_count(), 10);
        let bytes: usize = s.nodes.values().map(|n| n.buf.len()).sum();
        // And a node's names: their count, then 5 + 6 + 3 bytes.
        assert_eq!(bytes, 1000 * per_entry + 10 * (1 + 14), "{bytes}");
        let e = s.get(&StreamId::new(1_700_000_000_500, 0)).unwrap();
        assert!(matches!(e.fields().nth(5), Some(Field::Int(..))));
        assert_eq!(e.fields().nth(5).as_deref(), Some(&b"1700000500"[..]));
    }

    #[test]
    fn a_node_takes_entries_up_to_its_byte_bound() {
        let limits = Limits { stream_node_max_entries: 0, stream_node_max_bytes: 1000, ..Limits::default() };
        let mut s = Stream::default();
        for i in 1..=100 {
            s.add(StreamId::new(i, 0), &[&b"f"[..], &[b'v'; 100]], &limits);
        }
        // Redis's listpack takes 18 bytes for the master entry and 111 an
        // entry: its bytes plus the next entry's raw 101 reach 1000 at
        // eight entries, so 100 entries make 13 nodes there (checked
        // against redis-server 7.0.15) and here.
        assert_eq!(s.node_count(), 13);
        assert!(s.nodes.values().take(12).all(|n| n.count == 8 && n.lp == 14 + 8 * 111));
    }
}

//! Lists, in Redis 7.2's two encodings: a small list is one listpack, a
//! large one a quicklist, a sequence of listpack nodes. Here a listpack is
//! a packed buffer (packed.rs, with back-lengths) and a quicklist a deque
//! of them. We track the byte size Redis's listpack would have, so the
//! encoding switches (and OBJECT ENCODING answers) exactly where Redis's
//! does.
//!
//! Why nodes rather than a deque of `Bytes`: a deque paid a 32-byte handle
//! and an allocation per element, about 48 bytes for a 12-byte one where
//! Redis's quicklist pays 14; in nodes an element costs its bytes and two
//! length bytes. A node fills at most [`NODE_BYTES`], so the walk to an
//! element inside one (a packed buffer is read front to back) stays
//! short; its last element is found from its end (RPOP). Reaching a node
//! walks the node counts from the nearer end, as Redis's quicklist does.
//!
//! Known approximation: Redis turns a quicklist back into a listpack only
//! when it has one node. We convert back whenever the size is under half
//! the limit.

use super::listpack::{entry_size, LP_OVERHEAD};
use super::packed::Packed;

/// A listpack, or a quicklist node: with back-lengths, so its last
/// element is found from its end.
type Node = Packed<true>;
use super::Limits;
use bytes::Bytes;
use std::collections::VecDeque;

/// Bytes a quicklist node fills at most (an element larger than this gets
/// a node of its own): Redis's default node size, and a size class of
/// jemalloc's, so a full node wastes nothing to rounding. Smaller nodes
/// made the walk to the middle of a long list (LINDEX) cross more nodes:
/// 2 KB ones ran it at 0.17x of Redis's rate, these at 0.8x (before the
/// walk read the counts kept beside the nodes; see [`QNode`]).
const NODE_BYTES: usize = 8192;

/// Bytes of elements (and count) a node holds: its allocation is these
/// and the buffer's header.
const NODE_DATA: usize = NODE_BYTES - super::packed::HEADER;

/// A list is 16 bytes, so it lives in the key's value without a box of
/// its own: a small list is its node and the listpack size beside it (in
/// the bytes the variant's tag leaves), a quicklist one box.
#[derive(Debug, Clone, PartialEq)]
enum Items {
    /// `listpack`, and the bytes of the equivalent Redis listpack (header
    /// included): a listpack this large has turned into a quicklist long
    /// before `u32` runs out.
    One(Node, u32),
    Nodes(Box<Quick>),
}

/// `quicklist`: no node is empty; `len` is their elements in all. A
/// deque, so a node comes and goes at either end in O(1) (LPUSH and RPOP
/// on a queue).
#[derive(Debug, Clone, PartialEq)]
struct Quick {
    nodes: VecDeque<QNode>,
    len: usize,
    /// As [`Items::One`]'s.
    lp_bytes: usize,
}

/// A quicklist node and its element count, kept beside the pointer, so
/// the walk to an element (LINDEX, LSET, LINSERT, LRANGE's start) reads
/// the deque and nothing else. Read from each node's buffer, every count
/// was a load from another 8 KB allocation, and buffers that all start
/// at the same offset within a page compete for the same few cache sets:
/// LINDEX in the middle of 500,000 elements of 100 bytes ran at 0.95x of
/// Redis's rate (7.3x now), whose quicklist nodes are small structs of
/// their own (BENCHMARKS.md, scripts/collections-bench).
/// The count changes only through [`QNode::edit`] (or a `sync` after).
#[derive(Debug, Clone, PartialEq)]
struct QNode {
    node: Node,
    len: u32,
}

impl QNode {
    fn new(node: Node) -> QNode {
        let len = count(&node);
        QNode { node, len }
    }

    /// The node to change; its count follows when the guard goes.
    fn edit(&mut self) -> NodeMut<'_> {
        NodeMut(self)
    }

    fn sync(&mut self) {
        self.len = count(&self.node);
    }
}

/// A node's count as [`QNode`] keeps it: a node holds at most 8 KB, or
/// one element.
fn count(node: &Node) -> u32 {
    u32::try_from(node.len()).expect("a node holds far fewer than 2^32 elements")
}

/// A node being changed (see [`QNode::edit`]).
struct NodeMut<'a>(&'a mut QNode);

impl std::ops::Deref for NodeMut<'_> {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.0.node
    }
}

impl std::ops::DerefMut for NodeMut<'_> {
    fn deref_mut(&mut self) -> &mut Node {
        &mut self.0.node
    }
}

impl Drop for NodeMut<'_> {
    fn drop(&mut self) {
        self.0.sync();
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct List {
    items: Items,
}

const _: () = assert!(std::mem::size_of::<List>() == 16);

impl Default for List {
    fn default() -> Self {
        List { items: Items::One(Node::default(), LP_OVERHEAD as u32) }
    }
}

/// Redis's `SIZE_SAFETY_LIMIT` and the byte limits of negative fills.
const SIZE_SAFETY_LIMIT: usize = 8192;
const FILL_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];

/// (bytes, count) per listpack for a list-max-listpack-size value.
fn node_limits(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (usize::MAX, (fill as usize).max(1))
    } else {
        let i = ((-fill - 1) as usize).min(FILL_BYTES.len() - 1);
        (FILL_BYTES[i], usize::MAX)
    }
}

fn exceeds(fill: i64, bytes: usize, count: usize) -> bool {
    let (sz, n) = node_limits(fill);
    if sz != usize::MAX {
        bytes > sz
    } else {
        bytes > SIZE_SAFETY_LIMIT || count > n
    }
}

/// Whether a quicklist node takes one more element of `size` bytes.
fn room(node: &Node, size: usize) -> bool {
    node.end() + Node::packed_size_of(size) <= NODE_DATA
}

/// A listpack list's size as its variant keeps it.
fn short(lp_bytes: usize) -> u32 {
    u32::try_from(lp_bytes).expect("a listpack list turns into a quicklist long before 4 GB")
}

fn node_of(v: &[u8]) -> Node {
    let mut p = Node::default();
    p.push(&[v]);
    p
}

/// Quicklist nodes holding `items`, in order.
fn chunk<'a>(items: impl Iterator<Item = &'a [u8]>) -> VecDeque<QNode> {
    let mut nodes: VecDeque<QNode> = VecDeque::new();
    for v in items {
        match nodes.back_mut() {
            Some(last) if room(&last.node, v.len()) => last.edit().push(&[v]),
            _ => nodes.push_back(QNode::new(node_of(v))),
        }
    }
    nodes
}

/// A list's nodes in order: a listpack's one buffer, or a quicklist's.
enum NodeIter<'a> {
    One(std::slice::Iter<'a, Node>),
    Many(std::collections::vec_deque::Iter<'a, QNode>),
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = &'a Node;
    fn next(&mut self) -> Option<&'a Node> {
        match self {
            NodeIter::One(i) => i.next(),
            NodeIter::Many(i) => i.next().map(|q| &q.node),
        }
    }
    fn nth(&mut self, n: usize) -> Option<&'a Node> {
        match self {
            NodeIter::One(i) => i.nth(n),
            NodeIter::Many(i) => i.nth(n).map(|q| &q.node),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            NodeIter::One(i) => i.size_hint(),
            NodeIter::Many(i) => i.size_hint(),
        }
    }
}

impl DoubleEndedIterator for NodeIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            NodeIter::One(i) => i.next_back(),
            NodeIter::Many(i) => i.next_back().map(|q| &q.node),
        }
    }
}

impl ExactSizeIterator for NodeIter<'_> {}

/// A node's elements, read once: what lets a walk run from either end.
fn node_items(p: &Node) -> Vec<&[u8]> {
    p.iter().map(|x| x.bytes).collect()
}

/// What [`List::iter`] returns: both ends and the length known.
pub trait ListIter<'a>: DoubleEndedIterator<Item = &'a [u8]> + ExactSizeIterator {}
impl<'a, T: DoubleEndedIterator<Item = &'a [u8]> + ExactSizeIterator> ListIter<'a> for T {}

/// A double-ended walk that knows how many elements are left.
struct Counted<I> {
    inner: I,
    left: usize,
}

impl<'a, I: Iterator<Item = &'a [u8]>> Iterator for Counted<I> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let v = self.inner.next()?;
        self.left -= 1;
        Some(v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a, I: DoubleEndedIterator<Item = &'a [u8]>> DoubleEndedIterator for Counted<I> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        let v = self.inner.next_back()?;
        self.left -= 1;
        Some(v)
    }
}

impl<'a, I: DoubleEndedIterator<Item = &'a [u8]>> ExactSizeIterator for Counted<I> {}

impl List {
    pub fn len(&self) -> usize {
        match &self.items {
            Items::One(p, _) => p.len(),
            Items::Nodes(q) => q.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self.items {
            Items::One(..) => "listpack",
            Items::Nodes(_) => "quicklist",
        }
    }

    /// Heap bytes: the element buffers, and a quicklist's box and node
    /// vector.
    pub fn packed_bytes(&self) -> usize {
        self.nodes().map(|p| p.allocated()).sum::<usize>()
            + match &self.items {
                Items::One(..) => 0,
                Items::Nodes(q) => {
                    crate::memsize::size_class(std::mem::size_of::<Quick>())
                        + q.nodes.capacity() * std::mem::size_of::<QNode>()
                }
            }
    }

    fn nodes(&self) -> NodeIter<'_> {
        match &self.items {
            Items::One(p, _) => NodeIter::One(std::slice::from_ref(p).iter()),
            Items::Nodes(q) => NodeIter::Many(q.nodes.iter()),
        }
    }

    fn node(&self, n: usize) -> &Node {
        match &self.items {
            Items::One(p, _) => p,
            Items::Nodes(q) => &q.nodes[n].node,
        }
    }

    /// (node, position in it) of element `i`, walking node counts from
    /// the nearer end.
    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.len() {
            return None;
        }
        let Items::Nodes(q) = &self.items else {
            return Some((0, i));
        };
        let counts = q.nodes.iter().map(|p| p.len as usize);
        if i < q.len / 2 {
            let mut i = i;
            for (n, len) in counts.enumerate() {
                if i < len {
                    return Some((n, i));
                }
                i -= len;
            }
        } else {
            let mut back = q.len - 1 - i;
            for (n, len) in counts.enumerate().rev() {
                if back < len {
                    return Some((n, len - 1 - back));
                }
                back -= len;
            }
        }
        unreachable!("the node counts add up to len")
    }

    /// Before adding elements totalling `add_bytes` raw bytes (Redis counts
    /// argument lengths here, not their encoded size): go to a quicklist
    /// if the listpack would pass the limit.
    pub fn grow_check(&mut self, add_bytes: usize, add_count: usize, lim: &Limits) {
        if let Items::One(p, lp_bytes) = &self.items {
            let lp_bytes = *lp_bytes as usize;
            if exceeds(lim.list_max_listpack_size, lp_bytes + add_bytes, p.len() + add_count) {
                let len = p.len();
                let nodes = chunk(p.iter().map(|x| x.bytes));
                self.items = Items::Nodes(Box::new(Quick { nodes, len, lp_bytes }));
            }
        }
    }

    /// After removing elements: back to a listpack if it is now under half
    /// the limit.
    pub fn shrink_check(&mut self, lim: &Limits) {
        if let Items::Nodes(q) = &self.items {
            let (sz, n) = node_limits(lim.list_max_listpack_size);
            let sz = if sz == usize::MAX { SIZE_SAFETY_LIMIT } else { sz };
            if q.lp_bytes <= sz / 2 && q.len <= n / 2 {
                let mut p = Node::default();
                for v in q.nodes.iter().flat_map(|n| n.node.iter()) {
                    p.push(&[v.bytes]);
                }
                self.items = Items::One(p, short(q.lp_bytes));
            }
        }
    }

    pub fn push_front(&mut self, v: Bytes) {
        self.insert(0, v);
    }

    pub fn push_back(&mut self, v: Bytes) {
        let n = self.len();
        self.insert(n, v);
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        self.remove(0)
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        self.remove(self.len().checked_sub(1)?)
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (n, at) = self.locate(i)?;
        let node = self.node(n);
        if at + 1 == node.len() {
            return node.last().map(|x| x.bytes);
        }
        node.iter().nth(at).map(|x| x.bytes)
    }

    pub fn set(&mut self, i: usize, v: Bytes) {
        let (n, at) = self.locate(i).expect("index below len");
        let quick = matches!(self.items, Items::Nodes(_));
        let node = match &mut self.items {
            Items::One(p, _) => p,
            // A replacement keeps the node's count.
            Items::Nodes(q) => &mut q.nodes[n].node,
        };
        let old = node.iter().nth(at).expect("index below len");
        let grown = node.bytes() - (old.span.1 - old.span.0) + Node::packed_size_of(v.len());
        if quick && grown > NODE_DATA && node.len() > 1 {
            // Too big for its node now: out, and back in where it fits.
            self.remove(i);
            return self.insert(i, v);
        }
        let (span, was) = (old.span, entry_size(old.bytes));
        node.replace(span, &v);
        self.set_lp_bytes(self.lp_bytes() + entry_size(&v) - was);
    }

    /// Bytes of the equivalent Redis listpack, header included.
    fn lp_bytes(&self) -> usize {
        match &self.items {
            Items::One(_, lp_bytes) => *lp_bytes as usize,
            Items::Nodes(q) => q.lp_bytes,
        }
    }

    fn set_lp_bytes(&mut self, n: usize) {
        match &mut self.items {
            Items::One(_, lp_bytes) => *lp_bytes = short(n),
            Items::Nodes(q) => q.lp_bytes = n,
        }
    }

    /// Inserts `v` before position `i` (`len`: at the end).
    pub fn insert(&mut self, i: usize, v: Bytes) {
        self.set_lp_bytes(self.lp_bytes() + entry_size(&v));
        let at = self.locate(i);
        let (nodes, len) = match &mut self.items {
            Items::One(p, _) => {
                let start = at.map_or(p.end(), |(_, k)| p.iter().nth(k).expect("below len").span.0);
                p.insert_at(start, &[&v]);
                return;
            }
            Items::Nodes(q) => (&mut q.nodes, &mut q.len),
        };
        *len += 1;
        let Some((n, k)) = at else {
            // At the end.
            match nodes.back_mut() {
                Some(last) if room(&last.node, v.len()) => last.edit().push(&[&v]),
                _ => nodes.push_back(QNode::new(node_of(&v))),
            }
            return;
        };
        if k == 0 {
            // Before node n's first element: the end of the node before
            // it, the start of node n, or a node of its own between.
            if n > 0 && room(&nodes[n - 1].node, v.len()) {
                nodes[n - 1].edit().push(&[&v]);
            } else if room(&nodes[n].node, v.len()) {
                let start = nodes[n].node.iter().next().expect("nodes are never empty").span.0;
                nodes[n].edit().insert_at(start, &[&v]);
            } else {
                nodes.insert(n, QNode::new(node_of(&v)));
            }
            return;
        }
        if room(&nodes[n].node, v.len()) {
            let start = nodes[n].node.iter().nth(k).expect("below len").span.0;
            nodes[n].edit().insert_at(start, &[&v]);
            return;
        }
        // A full node splits at the insertion point; the element goes on
        // the end of the first half, or into a node of its own.
        let tail = chunk(nodes[n].node.iter().skip(k).map(|x| x.bytes));
        let own = {
            let mut node = nodes[n].edit();
            let from = node.iter().nth(k).expect("below len").span.0;
            let moved = node.len() - k;
            let end = node.end();
            node.remove(from..end, moved);
            if room(&node, v.len()) {
                node.push(&[&v]);
                None
            } else {
                Some(QNode::new(node_of(&v)))
            }
        };
        for (j, node) in own.into_iter().chain(tail).enumerate() {
            nodes.insert(n + 1 + j, node);
        }
    }

    pub fn remove(&mut self, i: usize) -> Option<Bytes> {
        let (n, k) = self.locate(i)?;
        let node = match &mut self.items {
            Items::One(p, _) => p,
            Items::Nodes(q) => &mut q.nodes[n].node,
        };
        // The last element (RPOP) is found from the end.
        let item = if k + 1 == node.len() { node.last() } else { node.iter().nth(k) }.expect("below len");
        let (v, span) = (Bytes::copy_from_slice(item.bytes), item.span);
        node.remove(span.0..span.1, 1);
        if let Items::Nodes(q) = &mut self.items {
            q.len -= 1;
            q.nodes[n].sync();
            if q.nodes[n].len == 0 {
                q.nodes.remove(n);
            }
        }
        self.set_lp_bytes(self.lp_bytes() - entry_size(&v));
        Some(v)
    }

    /// Keeps only `start..=end` (both below len).
    pub fn trim(&mut self, start: usize, end: usize) {
        // The tail, then the head: whole nodes go at once.
        if end + 1 < self.len() {
            let (at, k) = self.locate(end + 1).expect("below len");
            self.drop_range(at, k, true);
        }
        if start > 0 {
            let (at, k) = self.locate(start).expect("below len");
            self.drop_range(at, k, false);
        }
    }

    /// Removes the elements from (node `at`, position `k`) to the end
    /// (`to_end`) or from the start up to just before it.
    fn drop_range(&mut self, at: usize, k: usize, to_end: bool) {
        // (listpack bytes, elements) of what goes.
        let cut = |p: &mut Node, k: usize, to_end: bool| -> (usize, usize) {
            let items: Vec<_> = p.iter().collect();
            let gone = if to_end { &items[k..] } else { &items[..k] };
            let (bytes, count) = (gone.iter().map(|x| entry_size(x.bytes)).sum(), gone.len());
            if let (Some(first), Some(last)) = (gone.first(), gone.last()) {
                let range = first.span.0..last.span.1;
                p.remove(range, count);
            }
            (bytes, count)
        };
        let whole = |p: &QNode| (p.node.iter().map(|x| entry_size(x.bytes)).sum::<usize>(), p.node.len());
        let add = |a: (usize, usize), b: (usize, usize)| (a.0 + b.0, a.1 + b.1);
        let (bytes, _) = match &mut self.items {
            Items::One(p, _) => cut(p, k, to_end),
            Items::Nodes(q) => {
                let Quick { nodes, len, .. } = &mut **q;
                let first = cut(&mut nodes[at].edit(), k, to_end);
                let rest = if to_end { nodes.range(at + 1..) } else { nodes.range(..at) };
                let gone = rest.map(whole).fold(first, add);
                if to_end {
                    nodes.truncate(at + 1);
                } else {
                    nodes.drain(..at);
                }
                nodes.retain(|p| p.len > 0);
                *len -= gone.1;
                gone
            }
        };
        self.set_lp_bytes(self.lp_bytes() - bytes);
    }

    pub fn clear(&mut self) {
        *self = List::default();
    }

    /// The elements, head first; each node is read once, when the walk
    /// enters it from either end.
    pub fn iter(&self) -> impl ListIter<'_> + '_ {
        Counted { inner: self.nodes().flat_map(node_items), left: self.len() }
    }

    /// The elements from position `i` on (LRANGE): the walk starts at the
    /// node that holds `i`.
    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (n, k) = self.locate(i).unwrap_or((self.nodes().len(), 0));
        self.nodes().skip(n).flat_map(|p| p.iter().map(|x| x.bytes)).skip(k)
    }

    /// Removes elements for which `f` holds, up to `limit` of them (0: all),
    /// scanning from the head, or from the tail if `from_tail`.
    pub fn remove_matching(&mut self, limit: usize, from_tail: bool, mut f: impl FnMut(&[u8]) -> bool) -> usize {
        let n = self.len();
        let mut gone = vec![false; n];
        let mut count = 0;
        {
            let order: Box<dyn Iterator<Item = (usize, &[u8])>> =
                if from_tail { Box::new(self.iter().enumerate().rev()) } else { Box::new(self.iter().enumerate()) };
            for (i, v) in order {
                if limit != 0 && count == limit {
                    break;
                }
                if f(v) {
                    gone[i] = true;
                    count += 1;
                }
            }
        }
        if count == 0 {
            return 0;
        }
        // Each node is rebuilt once, without its removed elements.
        let mut i = 0;
        let mut removed_bytes = 0;
        let mut rebuild = |p: &Node| -> Node {
            let mut kept = Node::default();
            for x in p.iter() {
                if gone[i] {
                    removed_bytes += entry_size(x.bytes);
                } else {
                    kept.push(&[x.bytes]);
                }
                i += 1;
            }
            kept
        };
        match &mut self.items {
            Items::One(p, _) => *p = rebuild(p),
            Items::Nodes(q) => {
                let rebuilt: VecDeque<QNode> =
                    q.nodes.iter().map(|p| QNode::new(rebuild(&p.node))).filter(|p| p.len > 0).collect();
                q.nodes = rebuilt;
                q.len -= count;
            }
        }
        self.set_lp_bytes(self.lp_bytes() - removed_bytes);
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::VecDeque;

    /// Long runs of every operation against a deque, so quicklist nodes
    /// fill, split at inserts, empty and go, and elements past
    /// NODE_BYTES get nodes of their own; every invariant and the listpack
    /// byte count are checked as it goes.
    #[test]
    fn a_quicklist_matches_a_deque_through_long_runs() {
        for seed in 0..6u64 {
            let mut r = rand::rngs::StdRng::seed_from_u64(seed);
            let lim = Limits::default();
            let mut l = List::default();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for step in 0..4000 {
                let len = if r.random_bool(0.02) { r.random_range(5000..12000) } else { r.random_range(0..40) };
                let v: Vec<u8> = (0..len).map(|_| r.random_range(b'a'..=b'z')).collect();
                match r.random_range(0..100) {
                    0..30 => {
                        l.grow_check(v.len(), 1, &lim);
                        l.push_back(Bytes::from(v.clone()));
                        model.push_back(v);
                    }
                    30..45 => {
                        l.grow_check(v.len(), 1, &lim);
                        l.push_front(Bytes::from(v.clone()));
                        model.push_front(v);
                    }
                    45..65 => {
                        let i = r.random_range(0..=model.len());
                        l.grow_check(v.len(), 1, &lim);
                        l.insert(i, Bytes::from(v.clone()));
                        model.insert(i, v);
                    }
                    65..72 if !model.is_empty() => {
                        let i = r.random_range(0..model.len());
                        assert_eq!(l.get(i), Some(&model[i][..]));
                        l.set(i, Bytes::from(v.clone()));
                        model[i] = v;
                    }
                    72..80 => assert_eq!(l.pop_back().map(|b| b.to_vec()), model.pop_back()),
                    80..88 => assert_eq!(l.pop_front().map(|b| b.to_vec()), model.pop_front()),
                    88..94 if !model.is_empty() => {
                        let i = r.random_range(0..model.len());
                        assert_eq!(l.remove(i).map(|b| b.to_vec()), model.remove(i));
                    }
                    94..97 if model.len() > 2 => {
                        let (a, b) = (r.random_range(0..model.len() / 2), r.random_range(model.len() / 2..model.len()));
                        l.trim(a, b);
                        model.truncate(b + 1);
                        model.drain(..a);
                    }
                    97..100 if !model.is_empty() => {
                        let pick = &model[r.random_range(0..model.len())];
                        let target = pick[..1.min(pick.len())].to_vec();
                        let (limit, tail) = (r.random_range(0..4), r.random_bool(0.5));
                        let hit = |x: &[u8]| x.starts_with(&target) && x.len().is_multiple_of(3);
                        let n = l.remove_matching(limit, tail, hit);
                        let mut idx: Vec<usize> = (0..model.len()).filter(|&i| hit(&model[i])).collect();
                        if tail {
                            idx.reverse();
                        }
                        if limit > 0 {
                            idx.truncate(limit);
                        }
                        idx.sort_unstable();
                        for &i in idx.iter().rev() {
                            model.remove(i);
                        }
                        assert_eq!(n, idx.len());
                    }
                    _ => {}
                }
                l.shrink_check(&lim);
                assert_eq!(l.len(), model.len(), "seed {seed} step {step}");
                let want_lp = LP_OVERHEAD + model.iter().map(|v| entry_size(v)).sum::<usize>();
                assert_eq!(l.lp_bytes(), want_lp, "seed {seed} step {step}");
                if let Items::Nodes(q) = &l.items {
                    assert!(
                        q.nodes
                            .iter()
                            .all(|p| !p.node.is_empty() && (p.node.bytes() <= NODE_DATA || p.node.len() == 1)),
                        "seed {seed} step {step}"
                    );
                    // The counts the walk reads are the nodes' own.
                    assert!(q.nodes.iter().all(|p| p.len as usize == p.node.len()), "seed {seed} step {step}");
                }
                if step % 97 == 0 {
                    assert!(l.iter().eq(model.iter().map(|v| &v[..])));
                    assert!(l.iter().rev().eq(model.iter().rev().map(|v| &v[..])));
                    assert_eq!(l.iter().len(), model.len());
                    let from = r.random_range(0..=model.len());
                    assert!(l.iter_from(from).eq(model.range(from..).map(|v| &v[..])));
                }
            }
            assert!(l.iter().eq(model.iter().map(|v| &v[..])));
        }
    }

    /// A queue's shape: a long list whose nodes are full, with elements
    /// leaving one end as they arrive at the other.
    #[test]
    fn a_long_list_is_nodes_of_packed_elements() {
        let lim = Limits::default();
        let mut l = List::default();
        for i in 0..10_000 {
            let v = Bytes::from(format!("job:{i:08}"));
            l.grow_check(v.len(), 1, &lim);
            l.push_front(v);
        }
        let Items::Nodes(q) = &l.items else { panic!("a quicklist") };
        let (nodes, len) = (&q.nodes, &q.len);
        // Full nodes but for the one the listpack turned into and the
        // newest.
        assert_eq!(*len, 10_000);
        // 16 bytes an element packed (and the node's 4-byte count).
        let per_node = (NODE_DATA - 4) / 16;
        assert!(nodes.len() <= 10_000usize.div_ceil(per_node) + 1, "{} nodes", nodes.len());
        assert!(nodes.iter().all(|p| p.node.allocated() <= NODE_BYTES));
        for i in 0..10_000 {
            assert_eq!(l.pop_back().as_deref(), Some(format!("job:{i:08}").as_bytes()));
        }
        assert!(l.is_empty());
    }

    #[test]
    fn switches_encoding_at_the_byte_limit() {
        let lim = Limits::default();
        let mut l = List::default();
        let big = Bytes::from(vec![b'x'; 1000]);
        for _ in 0..8 {
            l.grow_check(big.len(), 1, &lim);
            l.push_back(big.clone());
        }
        assert_eq!(l.encoding(), "listpack");
        l.grow_check(big.len(), 1, &lim);
        l.push_back(big.clone());
        assert_eq!(l.encoding(), "quicklist");
        for _ in 0..5 {
            l.pop_front();
        }
        l.shrink_check(&lim);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(l.remove_matching(0, false, |v| v.len() == 1000), 4);
        assert_eq!((l.len(), l.lp_bytes()), (0, LP_OVERHEAD));
        // A packed list answers as the deque did.
        for v in [&b"b"[..], b"c", b"d"] {
            l.push_back(Bytes::copy_from_slice(v));
        }
        l.push_front(Bytes::from_static(b"a"));
        l.insert(2, Bytes::from_static(b"x"));
        l.set(0, Bytes::from_static(b"A"));
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"A"[..], b"b", b"x", b"c", b"d"]);
        assert_eq!(l.iter().rev().len(), 5);
        assert_eq!((l.get(2), l.get(5)), (Some(&b"x"[..]), None));
        assert_eq!(l.iter_from(3).collect::<Vec<_>>(), [&b"c"[..], b"d"]);
        l.trim(1, 3);
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"b"[..], b"x", b"c"]);
        assert_eq!((l.pop_back().as_deref(), l.pop_front().as_deref()), (Some(&b"c"[..]), Some(&b"b"[..])));
        assert_eq!(l.remove(0).as_deref(), Some(&b"x"[..]));
        assert_eq!((l.len(), l.lp_bytes(), l.encoding()), (0, LP_OVERHEAD, "listpack"));
    }
}

//! Values. Strings keep Redis's three encodings so OBJECT ENCODING answers
//! as Redis does and integers cost no allocation. Collection types arrive
//! as boxed variants, each implemented in its own module under `types`.

use crate::ascii7;
use crate::print95;
use crate::split::{lend_count, Packing, Split, EXT_MAX, HEAD};
use crate::types::{hash::Hash, list::List, set::Set, stream::Stream, zset::ZSet};
use bytes::Bytes;

/// Longest string Redis stores as `embstr`.
pub const EMBSTR_MAX: usize = 44;

/// Strings longer than this are shared (`Arc`), shorter ones owned.
pub const SHARE_ABOVE: usize = 512;

/// Strings up to this long sit in the value's own 24 bytes (after the tag
/// and a length byte), so they need no allocation and a read of the key's
/// slot already has them: no further cache miss for a GET.
pub const INLINE_MAX: usize = 22;

/// Most packed bytes [`StrValue::join`] unpacks from its small buffer:
/// the head and the most a split lends, rounded up to a whole group.
const FIRST_MAX: usize = {
    let (seven, print) = ((HEAD + EXT_MAX).div_ceil(7) * 7, (HEAD + EXT_MAX).div_ceil(5) * 5);
    if seven > print {
        seven
    } else {
        print
    }
};

/// The bytes sit behind a handle in the value's own 24 bytes (the value
/// lives in every key's slot). Up to [`INLINE_MAX`] bytes they are those
/// 24 bytes themselves. A string set whole of up to [`SHARE_ABOVE`] bytes
/// is split: its first [`HEAD`] bytes in the value, the rest in one
/// allocation of exactly their size, whose length the value knows, so the
/// handle is one pointer. An ASCII string is stored seven bits a character
/// (see ascii7.rs), and the split is of the packed bytes. So a 100-byte
/// text value needs 75 bytes of heap (jemalloc's 80-byte class), where
/// the whole string in its own allocation took the 112-byte class.
/// Above [`SHARE_ABOVE`], an `Arc`, whose 16-byte count is little beside
/// the value and which lets a snapshot hold a large value without copying
/// it (a write then replaces the slot's handle, and the old bytes live on
/// only in the snapshot). Smaller values are cheaper to copy than to count.
#[derive(Debug, Clone)]
pub enum StrValue {
    /// A canonical decimal integer that fits i64 (`int`).
    Int(i64),
    /// A string of up to [`INLINE_MAX`] bytes, held in place (`embstr`).
    Inline(u8, [u8; INLINE_MAX]),
    /// A string set whole, longer than [`INLINE_MAX`] and at most
    /// [`SHARE_ABOVE`] bytes (see split.rs). `embstr` or `raw` by its
    /// length, as in Redis.
    Split(Split),
    /// A string changed in place by APPEND, SETRANGE, SETBIT… (`raw`).
    Raw(Box<[u8]>),
    /// A `raw` string longer than [`SHARE_ABOVE`].
    Shared(std::sync::Arc<[u8]>),
    /// A large string kept in the buffer it arrived in (see
    /// [`StrValue::adopt`]), as Redis keeps a large argument's buffer as
    /// the value: no copy. Boxed, so the value stays 24 bytes.
    Adopted(Box<Bytes>),
}

/// Strings at least this long may be adopted (Redis's
/// `PROTO_MBULK_BIG_ARG`, from which it reads an argument into a buffer of
/// its own).
pub const ADOPT_FROM: usize = 32 * 1024;

// The inline variant must not grow a string value (or any value: a
// collection's box shares the tag byte) past its 24 bytes.
const _: () = assert!(std::mem::size_of::<StrValue>() == 24 && std::mem::size_of::<Value>() == 24);

/// Equal when of the same variant with the same bytes (as the derived
/// equality of the variants would be; a split string's are canonical). A
/// shared and an adopted string are one kind: which one a large string
/// is depends only on how it arrived.
impl PartialEq for StrValue {
    fn eq(&self, other: &StrValue) -> bool {
        use StrValue::{Adopted, Shared};
        let same_kind = match (self, other) {
            (Shared(_) | Adopted(_), Shared(_) | Adopted(_)) => true,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        };
        same_kind && self.bytes() == other.bytes()
    }
}

impl StrValue {
    /// Picks the encoding Redis's `tryObjectEncoding` would.
    pub fn from_slice(b: &[u8]) -> StrValue {
        StrValue::from_slice_lending(b, &mut [])
    }

    /// [`Self::from_slice`] for a value about to be stored under a key with
    /// `spare` unused bytes: a split string lends them what drops its tail
    /// to a smaller size class (see entry.rs). Only an entry may hold the
    /// result, with those bytes.
    pub(crate) fn from_slice_lending(b: &[u8], spare: &mut [u8]) -> StrValue {
        if b.len() <= 20 {
            if let Some(i) = parse_canonical_i64(b) {
                return StrValue::Int(i);
            }
        }
        StrValue::text_lending(b, spare)
    }

    /// A string kept as a string even where it reads as an integer (Redis
    /// stores INCRBYFLOAT's result so): `embstr` or `raw` by length.
    pub fn text(b: &[u8]) -> StrValue {
        StrValue::text_lending(b, &mut [])
    }

    fn text_lending(b: &[u8], spare: &mut [u8]) -> StrValue {
        if b.len() <= INLINE_MAX {
            StrValue::inline(b)
        } else if b.len() <= SHARE_ABOVE {
            StrValue::split(b, spare)
        } else {
            StrValue::Shared(b.into())
        }
    }

    /// [`Self::from_slice`] for an owned buffer (every encoding copies
    /// what it keeps: the inline and split forms into their own layout, the
    /// shared one behind its counts).
    pub fn from_vec(b: Vec<u8>) -> StrValue {
        StrValue::from_slice(&b)
    }

    /// A string set whole past the inline limit: packed if ASCII (shorter
    /// strings cost nothing already; longer ones are shared, since a large
    /// value is read more than it is stored), then split, lending to
    /// `spare` what drops the tail a size class. Printable text packs
    /// tightest (print95.rs); other ASCII seven bits a character.
    fn split(b: &[u8], spare: &mut [u8]) -> StrValue {
        let packing = if print95::is_printable(b) { Packing::Print95 } else { Packing::Ascii7 };
        // A byte past ASCII stops the packing half way (binary data mostly
        // in its first group), and the string is kept as it is.
        if let Some(v) = StrValue::split_packed(b, packing, spare) {
            return v;
        }
        let lent = lend_count(b.len() - HEAD, spare.len());
        spare[..lent].copy_from_slice(&b[HEAD..HEAD + lent]);
        let head = b[..HEAD].try_into().expect("longer than the head");
        StrValue::Split(Split::new_lent(b.len(), Packing::Raw, head, b[HEAD + lent..].into(), lent))
    }

    /// [`Self::split`] packed, straight into its three places: the first
    /// groups (the head, the bytes lent and the tail's first few) into a
    /// small buffer, the rest from a group's boundary into the tail. None
    /// if a byte will not pack (past ASCII, for seven bits).
    fn split_packed(b: &[u8], packing: Packing, spare: &mut [u8]) -> Option<StrValue> {
        let stored = packing.stored_len(b.len());
        let lent = lend_count(stored - HEAD, spare.len());
        let front = HEAD + lent;
        let (first, first_chars) = packing.first_groups(b.len(), front);
        let pack = |src: &[u8], out: &mut [u8]| match packing {
            Packing::Print95 => {
                print95::pack_into(src, out);
                true
            }
            _ => ascii7::pack_into(src, out),
        };
        // The first groups before the tail is allocated: binary data
        // fails there, most often, and allocates nothing.
        let mut buf = [0u8; FIRST_MAX];
        if !pack(&b[..first_chars], &mut buf[..first]) {
            return None;
        }
        let mut tail = vec![0u8; stored - front].into_boxed_slice();
        if !pack(&b[first_chars..], &mut tail[first - front..]) {
            return None;
        }
        spare[..lent].copy_from_slice(&buf[HEAD..front]);
        tail[..first - front].copy_from_slice(&buf[front..first]);
        let head = buf[..HEAD].try_into().expect("longer than the head");
        Some(StrValue::Split(Split::new_lent(b.len(), packing, head, tail, lent)))
    }

    /// A split string's bytes appended to `out`: unpacked if packed. `ext`
    /// are the bytes it lent out (see split.rs), none if it holds them all.
    ///
    /// Packed bytes are unpacked a group at a time (seven bytes for eight
    /// characters, or five for six), and the head and lent bytes rarely
    /// end on a group's boundary: the groups they start are joined with
    /// the tail's first bytes in a small buffer, the rest unpacked from
    /// the tail where it lies.
    fn join(split: &Split, ext: &[u8], out: &mut Vec<u8>) {
        let [ext, tail] = split.with_ext(ext);
        if split.packing() == Packing::Raw {
            out.reserve(split.len());
            out.extend_from_slice(split.head());
            out.extend_from_slice(ext);
            out.extend_from_slice(tail);
            return;
        }
        let unpack = |packed: &[u8], n: usize, out: &mut Vec<u8>| match split.packing() {
            Packing::Ascii7 => ascii7::unpack_into(packed, n, out),
            _ => print95::unpack_into(packed, n, out),
        };
        let front = HEAD + ext.len();
        let (first, first_chars) = split.packing().first_groups(split.len(), front);
        let mut buf = [0u8; FIRST_MAX];
        buf[..HEAD].copy_from_slice(split.head());
        buf[HEAD..front].copy_from_slice(ext);
        buf[front..first].copy_from_slice(&tail[..first - front]);
        out.reserve(split.len());
        unpack(&buf[..first], first_chars, out);
        if first_chars < split.len() {
            unpack(&tail[first - front..], split.len() - first_chars, out);
        }
    }

    fn inline(b: &[u8]) -> StrValue {
        let mut buf = [0; INLINE_MAX];
        buf[..b.len()].copy_from_slice(b);
        StrValue::Inline(b.len() as u8, buf)
    }

    pub fn from_bytes(b: Bytes) -> StrValue {
        StrValue::from_slice(&b)
    }

    /// A string of at least [`ADOPT_FROM`] bytes kept in `b`'s own buffer,
    /// without a copy. The caller hands a buffer made for this string (a
    /// large argument read into one of its own size): the value keeps all
    /// of it alive. Shorter strings are stored as [`Self::from_slice`]
    /// stores them.
    pub fn adopt(b: Bytes) -> StrValue {
        if b.len() < ADOPT_FROM {
            return StrValue::from_slice(&b);
        }
        StrValue::Adopted(Box::new(b))
    }

    /// A `raw` string of exactly these bytes (APPEND, SETRANGE, SETBIT…).
    pub fn raw(b: impl Into<Vec<u8>>) -> StrValue {
        let b = b.into();
        if b.len() <= SHARE_ABOVE {
            StrValue::Raw(b.into_boxed_slice())
        } else {
            StrValue::Shared(b.into())
        }
    }

    /// The stored bytes, owned (a copy; shared for large values).
    pub fn to_bytes(&self) -> Bytes {
        self.to_bytes_with(&[])
    }

    /// [`Self::to_bytes`] of a value whose split lent out `ext` (an entry's
    /// value: entry.rs).
    pub(crate) fn to_bytes_with(&self, ext: &[u8]) -> Bytes {
        match self {
            StrValue::Shared(b) => Bytes::from_owner(b.clone()),
            StrValue::Adopted(b) => (**b).clone(),
            other => Bytes::from(other.bytes_with(ext).into_owned()),
        }
    }

    /// The bytes, borrowed where stored whole (integers are formatted,
    /// split strings joined).
    pub fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        self.bytes_with(&[])
    }

    fn bytes_with(&self, ext: &[u8]) -> std::borrow::Cow<'_, [u8]> {
        match self {
            StrValue::Int(i) => std::borrow::Cow::Owned(itoa::Buffer::new().format(*i).as_bytes().to_vec()),
            StrValue::Inline(n, buf) => std::borrow::Cow::Borrowed(&buf[..*n as usize]),
            StrValue::Split(split) => {
                let mut out = Vec::new();
                StrValue::join(split, ext, &mut out);
                std::borrow::Cow::Owned(out)
            }
            StrValue::Raw(b) => std::borrow::Cow::Borrowed(b),
            StrValue::Shared(b) => std::borrow::Cow::Borrowed(b),
            StrValue::Adopted(b) => std::borrow::Cow::Borrowed(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(i) => itoa::Buffer::new().format(*i).len(),
            StrValue::Inline(n, _) => *n as usize,
            StrValue::Split(split) => split.len(),
            StrValue::Raw(b) => b.len(),
            StrValue::Shared(b) => b.len(),
            StrValue::Adopted(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Inline(..) => "embstr",
            StrValue::Split(split) if split.len() <= EMBSTR_MAX => "embstr",
            StrValue::Split(..) | StrValue::Raw(_) | StrValue::Shared(_) | StrValue::Adopted(_) => "raw",
        }
    }
}

/// Redis's `string2ll` with its canonical-form rules: only the form an
/// i64 prints as (no '+', no leading zeros, no "-0"). Every SET, HSET and
/// XADD asks this of its values, so it reads the digits itself (parsing
/// through `str` and printing back to compare cost XADD 9%).
pub fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [b'0'] if !neg => return Some(0),
        [b'1'..=b'9', ..] if digits.len() <= 19 => {}
        _ => return None,
    }
    // Nineteen digits fit a u64 whatever they are.
    let mut v = 0u64;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    if neg {
        // -2^63 is the one magnitude past i64::MAX.
        (v <= i64::MIN.unsigned_abs()).then(|| (v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// A stored value, 24 bytes. A hash, list, set or sorted set is held in
/// place: each is 16 bytes, its small encoding a packed buffer's handle
/// (packed.rs) and its large one a box, so a small collection costs its
/// buffer alone where a box of the collection added a 32-byte allocation
/// a key. A stream is boxed.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(StrValue),
    List(List),
    Hash(Hash),
    Set(Set),
    ZSet(ZSet),
    Stream(Box<Stream>),
}

macro_rules! accessors {
    ($variant:ident, $t:ty, $get:ident, $get_mut:ident) => {
        pub fn $get(&self) -> Option<&$t> {
            match self {
                Value::$variant(v) => Some(v),
                _ => None,
            }
        }

        pub fn $get_mut(&mut self) -> Option<&mut $t> {
            match self {
                Value::$variant(v) => Some(v),
                _ => None,
            }
        }
    };
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// About how many allocations dropping the value frees: Redis's
    /// lazyfreeGetFreeEffort, counted for Larder's layout, where every
    /// element of a collection is an allocation of its own whatever the
    /// encoding OBJECT ENCODING reports (but an intset's integers).
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.len(),
            Value::Hash(h) => h.len(),
            Value::Set(s) if s.encoding() == "intset" => 1,
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            Value::Stream(s) => s.len() + s.groups.values().map(|g| 1 + g.pel.len()).sum::<usize>(),
        }
    }

    accessors!(Str, StrValue, as_str, as_str_mut);
    accessors!(List, List, as_list, as_list_mut);
    accessors!(Hash, Hash, as_hash, as_hash_mut);
    accessors!(Set, Set, as_set, as_set_mut);
    accessors!(ZSet, ZSet, as_zset, as_zset_mut);
    accessors!(Stream, Stream, as_stream, as_stream_mut);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `parse_canonical_i64` was: parse through `str`, print back,
    /// compare. The digit loop must agree with it on any input.
    fn canonical_by_printing(s: &[u8]) -> Option<i64> {
        let v: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
        (itoa::Buffer::new().format(v).as_bytes() == s).then_some(v)
    }

    #[test]
    fn canonical_integers_at_the_edges() {
        for s in [
            "0",
            "-0",
            "00",
            "01",
            "-01",
            "+1",
            "1",
            "-1",
            "",
            "-",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "99999999999999999999",
            "1 ",
            " 1",
            "1a",
        ] {
            assert_eq!(parse_canonical_i64(s.as_bytes()), canonical_by_printing(s.as_bytes()), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn canonical_integers_as_printing_them_back_says(v in proptest::num::i64::ANY, junk in proptest::collection::vec(proptest::sample::select(b"-+0123456789a ".to_vec()), 0..22)) {
            let text = v.to_string();
            proptest::prop_assert_eq!(parse_canonical_i64(text.as_bytes()), Some(v));
            proptest::prop_assert_eq!(parse_canonical_i64(&junk), canonical_by_printing(&junk));
        }
    }

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(StrValue::from_slice(b"123").encoding(), "int");
        assert_eq!(StrValue::from_slice(b"-5").encoding(), "int");
        assert_eq!(StrValue::from_slice(b"0123").encoding(), "embstr");
        assert_eq!(StrValue::from_slice(b"+1").encoding(), "embstr");
        assert_eq!(StrValue::from_slice(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(StrValue::from_slice(&[b'a'; 45]).encoding(), "raw");
        assert_eq!(StrValue::from_slice(b"99999999999999999999").encoding(), "embstr");
        assert_eq!(StrValue::Int(-42).to_bytes().as_ref(), b"-42");
    }

    #[test]
    fn long_strings_are_shared_and_read_back_whole() {
        let big = vec![b'x'; SHARE_ABOVE + 1];
        let v = StrValue::from_slice(&big);
        assert!(matches!(v, StrValue::Shared(_)));
        assert_eq!(v.encoding(), "raw");
        assert_eq!(v.to_bytes().as_ref(), &big[..]);
        assert_eq!(v.len(), big.len());
        assert!(matches!(StrValue::from_slice(&big[..SHARE_ABOVE]), StrValue::Split(..)));
        assert!(matches!(StrValue::raw(big.clone()), StrValue::Shared(_)));
        assert_eq!(StrValue::from_vec(big.clone()), v);
    }

    /// A large string adopts the buffer it is handed (no copy: the same
    /// bytes in memory) and equals the same string stored by copy; a
    /// shorter one is stored as usual.
    #[test]
    fn large_strings_adopt_their_buffer() {
        let big = Bytes::from(vec![b'y'; ADOPT_FROM]);
        let v = StrValue::adopt(big.clone());
        assert!(matches!(v, StrValue::Adopted(_)));
        assert_eq!(v.bytes().as_ptr(), big.as_ptr());
        assert_eq!(v.to_bytes().as_ptr(), big.as_ptr());
        assert_eq!((v.len(), v.encoding()), (ADOPT_FROM, "raw"));
        assert_eq!(v, StrValue::from_slice(&big));
        let small = Bytes::from(vec![b'z'; ADOPT_FROM - 1]);
        assert!(matches!(StrValue::adopt(small.clone()), StrValue::Shared(_)));
        assert!(matches!(StrValue::adopt(Bytes::from_static(b"12")), StrValue::Int(12)));
    }

    #[test]
    fn short_strings_sit_inline_up_to_the_limit() {
        for n in [0, 1, INLINE_MAX - 1, INLINE_MAX, INLINE_MAX + 1, EMBSTR_MAX] {
            let text: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            for v in [StrValue::from_slice(&text), StrValue::from_vec(text.clone())] {
                assert_eq!(matches!(v, StrValue::Inline(..)), n <= INLINE_MAX, "length {n}");
                assert_eq!(v.encoding(), "embstr");
                assert_eq!(v.bytes().as_ref(), &text[..]);
                assert_eq!(v.to_bytes().as_ref(), &text[..]);
                assert_eq!(v.len(), n);
            }
        }
        // The same bytes compare equal however they were built.
        assert_eq!(StrValue::text(b"abc"), StrValue::from_vec(b"abc".to_vec()));
    }

    proptest::proptest! {
        #[test]
        fn any_string_reads_back_as_set(ascii in proptest::bool::ANY, raw in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let b: Vec<u8> = if ascii { raw.iter().map(|c| c & 0x7f).collect() } else { raw };
            for v in [StrValue::from_slice(&b), StrValue::text(&b), StrValue::from_vec(b.clone())] {
                proptest::prop_assert_eq!(&v.bytes()[..], &b[..]);
                proptest::prop_assert_eq!(&v.to_bytes()[..], &b[..]);
                proptest::prop_assert_eq!(v.len(), b.len());
                let copy = v.clone();
                proptest::prop_assert_eq!(&copy.bytes()[..], &b[..]);
            }
        }

        /// Built lending to any number of spare bytes, in any of the three
        /// packings, a string reads back whole with the bytes it lent.
        #[test]
        fn a_string_that_lent_bytes_reads_back_with_them(
            kind in 0..3u8,
            raw in proptest::collection::vec(proptest::num::u8::ANY, 23..=SHARE_ABOVE),
            room in 0..=22usize,
        ) {
            let b: Vec<u8> = match kind {
                0 => raw.iter().map(|c| b' ' + c % 95).collect(),
                1 => raw.iter().map(|c| c & 0x7f).collect(),
                _ => raw,
            };
            let mut spare = [0u8; 22];
            let v = StrValue::from_slice_lending(&b, &mut spare[..room]);
            let lent = match &v {
                StrValue::Split(s) => s.ext(),
                _ => 0,
            };
            proptest::prop_assert!(lent <= room.min(EXT_MAX));
            proptest::prop_assert_eq!(&v.to_bytes_with(&spare[..lent])[..], &b[..]);
            proptest::prop_assert_eq!(v.len(), b.len());
        }
    }

    #[test]
    fn strings_set_whole_are_split_between_the_inline_and_shared_limits() {
        for n in [INLINE_MAX + 1, EMBSTR_MAX, EMBSTR_MAX + 1, 100, SHARE_ABOVE] {
            let text: Vec<u8> = (0..n).map(|i| b' ' + (i % 95) as u8).collect();
            // One byte past ASCII anywhere keeps the bytes unpacked.
            let mut binary = text.clone();
            binary[n / 2] = 0x80;
            // A line break keeps it ASCII but not all printable.
            let mut lines = text.clone();
            lines[n / 3] = b'\n';
            for (bytes, packing) in [(&text, Packing::Print95), (&lines, Packing::Ascii7), (&binary, Packing::Raw)] {
                let stored = packing.stored_len(n);
                for v in [StrValue::from_slice(bytes), StrValue::text(bytes), StrValue::from_vec(bytes.clone())] {
                    let StrValue::Split(split) = &v else { panic!("length {n} not split: {v:?}") };
                    assert_eq!(
                        (split.len(), split.packing(), split.tail_len()),
                        (n, packing, stored - HEAD),
                        "length {n}"
                    );
                    // OBJECT ENCODING answers as for the string in one piece.
                    assert_eq!(v.encoding(), if n <= EMBSTR_MAX { "embstr" } else { "raw" }, "length {n}");
                    assert_eq!(v.bytes().as_ref(), &bytes[..]);
                    assert_eq!(v.to_bytes().as_ref(), &bytes[..]);
                    assert_eq!(v.len(), n);
                    let copy = v.clone();
                    assert_eq!(copy, v);
                    assert_eq!(copy.bytes().as_ref(), &bytes[..]);
                }
            }
            assert_ne!(StrValue::text(&text), StrValue::text(&binary));
        }
        // Changed in place (APPEND, SETRANGE) is raw, unpacked, as before.
        assert!(matches!(StrValue::raw(vec![b'a'; 100]), StrValue::Raw(_)));
    }
}

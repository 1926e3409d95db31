//! A string value split between the key's slot and the heap: its first
//! [`HEAD`] stored bytes in the value itself, the rest behind one pointer.
//!
//! Why: every key's value is 24 bytes in its slot. A string in a
//! `Box<[u8]>` spends 16 of them on a pointer and a length, and its heap
//! part holds all of it. Here the length takes two bytes, the pointer
//! eight, and the thirteen bytes that frees hold the string's start, so
//! the heap part is that much smaller, and often a jemalloc size class
//! smaller: a 100-byte text value packed to 84 bytes (print95.rs) needs
//! 71 bytes of heap, the 80-byte class, where it needed the 96.
//!
//! Why unsafe, and why `repr(packed)`: the pointer is thin, so the type
//! frees and reads it with the length it keeps beside it. The fields are
//! private and the struct is packed to 23 bytes, so `StrValue` holds it
//! in one variant (one tag byte: 24 in all), and nothing outside this
//! module can pair a length with another split's tail. Freeing with the
//! length is the allocator's sized free, which needs no lookup of the
//! allocation (an unsized `free` cost SET about 10% at 100-byte values).

#![allow(unsafe_code)]

/// Stored bytes held in the value itself.
pub const HEAD: usize = 13;

use crate::memsize::size_class;

/// How many of a `tail`-byte tail's first bytes to lend to `room` spare
/// ones: as many as put the rest in the smallest size class within reach
/// and fill it, none if no smaller class is within reach.
pub fn lend_count(tail: usize, room: usize) -> usize {
    let room = room.min(EXT_MAX).min(tail.saturating_sub(1));
    if room == 0 {
        return 0;
    }
    let smallest = size_class(tail - room);
    if smallest < size_class(tail) {
        tail - smallest
    } else {
        0
    }
}

/// The two-byte header: the length in the low ten bits, then the
/// packing (two), then the bytes lent out to the key's slot (four).
const LEN_BITS: u32 = 10;
const LEN_MASK: u16 = (1 << LEN_BITS) - 1;
const PACKING_SHIFT: u32 = LEN_BITS;
const EXT_SHIFT: u32 = LEN_BITS + 2;

/// Most stored bytes a split can lend out (see [`Split::lend`]).
pub const EXT_MAX: usize = 15;

/// How a split string's characters are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// As they are.
    Raw = 0,
    /// Seven bits a character (ascii7.rs).
    Ascii7 = 1,
    /// Three printable characters in 20 bits (print95.rs).
    Print95 = 2,
}

impl Packing {
    /// Stored bytes and the characters they hold in one group, the unit
    /// packing works in (raw: one and one).
    fn group(self) -> (usize, usize) {
        match self {
            Packing::Raw => (1, 1),
            Packing::Ascii7 => (7, 8),
            Packing::Print95 => (5, 6),
        }
    }

    /// For a string of `len` characters whose first `front` stored bytes
    /// lie apart from the rest (a head and lent bytes): the stored bytes
    /// of the whole groups those start, and the characters in them. The
    /// rest then packs from a group's boundary.
    pub fn first_groups(self, len: usize, front: usize) -> (usize, usize) {
        let (group, chars) = self.group();
        let stored = self.stored_len(len);
        let first = (front.div_ceil(group) * group).min(stored);
        (first, if first == stored { len } else { first / group * chars })
    }

    /// Bytes `len` characters take stored this way.
    pub fn stored_len(self, len: usize) -> usize {
        match self {
            Packing::Raw => len,
            Packing::Ascii7 => crate::ascii7::packed_len(len),
            Packing::Print95 => crate::print95::packed_len(len),
        }
    }
}

/// Longer than [`HEAD`] stored bytes, and at most 1,023 characters.
///
/// A split may lend the stored bytes after its head to whoever holds it
/// (an entry, in its key's unused bytes: entry.rs), so that its tail
/// shrinks to a smaller size class. Those bytes are then not here: a lent
/// split only says how many, and whoever holds them passes them back to
/// read it ([`Split::with_ext`]). It can still be dropped on its own.
#[repr(C, packed)]
pub struct Split {
    /// See [`LEN_BITS`], little-endian.
    len: [u8; 2],
    head: [u8; HEAD],
    /// `tail_len()` bytes, from a `Box<[u8]>`.
    tail: std::ptr::NonNull<u8>,
}

// A split owns its bytes, as a `Box<[u8]>` does, and never changes them.
unsafe impl Send for Split {}
unsafe impl Sync for Split {}

const _: () = assert!(std::mem::size_of::<Split>() == 23);

impl Split {
    /// A string of `len` characters whose stored bytes are `head` then
    /// `tail`. Panics unless `tail` is as long as `len` and `packing` say
    /// (at least a byte): the tail's length is computed from them from now
    /// on.
    pub fn new(len: usize, packing: Packing, head: [u8; HEAD], tail: Box<[u8]>) -> Split {
        Split::new_lent(len, packing, head, tail, 0)
    }

    /// [`Self::new`] for a split that lent `ext` bytes, between its head
    /// and `tail`, out already.
    pub fn new_lent(len: usize, packing: Packing, head: [u8; HEAD], tail: Box<[u8]>, ext: usize) -> Split {
        let stored = packing.stored_len(len);
        assert!(len <= LEN_MASK as usize && ext <= EXT_MAX && !tail.is_empty() && tail.len() + ext + HEAD == stored);
        let tail = std::ptr::NonNull::new(Box::into_raw(tail).cast::<u8>()).expect("a box is never null");
        let len = (len as u16 | (packing as u16) << PACKING_SHIFT | (ext as u16) << EXT_SHIFT).to_le_bytes();
        Split { len, head, tail }
    }

    /// Stored bytes lent out (0 when it holds them all).
    pub fn ext(&self) -> usize {
        (self.bits() >> EXT_SHIFT) as usize
    }

    /// Puts `tail` in place of the tail, `ext` bytes now lent out.
    fn set_tail(&mut self, tail: Box<[u8]>, ext: usize) {
        assert!(ext <= EXT_MAX && tail.len() + ext == self.stored_len() - HEAD);
        self.free_tail();
        self.tail = std::ptr::NonNull::new(Box::into_raw(tail).cast::<u8>()).expect("a box is never null");
        self.len = ((self.bits() & !(0xf << EXT_SHIFT)) | (ext as u16) << EXT_SHIFT).to_le_bytes();
    }

    /// Lends the first `n` bytes of the tail (none lent yet, `n` at most
    /// [`EXT_MAX`] and less than the tail) into `out`; the tail shrinks by
    /// as many.
    pub fn lend(&mut self, n: usize, out: &mut [u8]) {
        assert!(self.ext() == 0 && n <= EXT_MAX && n < self.tail_len());
        let tail = self.tail();
        out[..n].copy_from_slice(&tail[..n]);
        let rest: Box<[u8]> = tail[n..].into();
        self.set_tail(rest, n);
    }

    /// Takes back the bytes lent out, `ext` (as many as [`Self::ext`]).
    pub fn take_back(&mut self, ext: &[u8]) {
        *self = self.whole(ext);
    }

    /// A copy that holds all its bytes, given `ext`, those this one lent.
    pub fn whole(&self, ext: &[u8]) -> Split {
        let tail: Box<[u8]> = self.with_ext(ext).concat().into();
        Split::new(self.len(), self.packing(), self.head, tail)
    }

    /// The stored bytes after the head: `ext` (the bytes lent out) then the
    /// tail.
    pub fn with_ext<'a>(&'a self, ext: &'a [u8]) -> [&'a [u8]; 2] {
        assert_eq!(ext.len(), self.ext(), "a lent split is read with its bytes");
        [ext, self.tail()]
    }

    fn bits(&self) -> u16 {
        u16::from_le_bytes(self.len)
    }

    /// The string's length.
    pub fn len(&self) -> usize {
        (self.bits() & LEN_MASK) as usize
    }

    /// Never: a split string is longer than its head.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How the characters are stored.
    pub fn packing(&self) -> Packing {
        match (self.bits() >> PACKING_SHIFT) & 3 {
            0 => Packing::Raw,
            1 => Packing::Ascii7,
            _ => Packing::Print95,
        }
    }

    /// Bytes stored, head and tail.
    pub fn stored_len(&self) -> usize {
        self.packing().stored_len(self.len())
    }

    /// Bytes on the heap.
    pub fn tail_len(&self) -> usize {
        self.stored_len() - HEAD - self.ext()
    }

    pub fn head(&self) -> &[u8; HEAD] {
        &self.head
    }

    pub fn tail(&self) -> &[u8] {
        let p = self.tail;
        // SAFETY: `new` or `set_tail` made the tail from a box of
        // `tail_len()` bytes (the length and the pointer are set together,
        // only there, and are private), and nothing writes or frees it
        // before `free_tail`.
        unsafe { std::slice::from_raw_parts(p.as_ptr(), self.tail_len()) }
    }

    /// Frees the tail; the caller puts another in its place or is `drop`.
    fn free_tail(&mut self) {
        let (p, n) = (self.tail, self.tail_len());
        // SAFETY: the box `new` or `set_tail` made, with its length, freed
        // once: both callers replace or forget the pointer right after.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p.as_ptr(), n)) });
    }
}

impl Drop for Split {
    fn drop(&mut self) {
        self.free_tail();
    }
}

/// A lent split's copy lends as many bytes: it is only read with the same
/// bytes, as the copy of a whole entry (key and value) is.
impl Clone for Split {
    fn clone(&self) -> Split {
        let tail: Box<[u8]> = self.tail().into();
        let tail = std::ptr::NonNull::new(Box::into_raw(tail).cast::<u8>()).expect("a box is never null");
        Split { len: self.len, head: self.head, tail }
    }
}

impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Split").field("len", &self.len()).field("packing", &self.packing()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_holds_its_head_tail_and_length() {
        for n in [HEAD + 1, 75, 499, 1000] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 31 % 256) as u8).collect();
            // Packed, the same bytes stand for more characters.
            for (chars, packing) in [(n, Packing::Raw), (n * 8 / 7, Packing::Ascii7), (n * 6 / 5, Packing::Print95)] {
                if packing.stored_len(chars) != n || chars > LEN_MASK as usize {
                    continue;
                }
                let s = Split::new(chars, packing, bytes[..HEAD].try_into().unwrap(), bytes[HEAD..].into());
                assert_eq!((s.len(), s.packing(), s.stored_len(), s.tail_len()), (chars, packing, n, n - HEAD));
                assert_eq!([&s.head()[..], s.tail()].concat(), bytes);
                let c = s.clone();
                assert_eq!((c.len(), c.packing()), (chars, packing));
                assert_eq!([&c.head()[..], c.tail()].concat(), bytes);
            }
        }
    }

    /// Lent bytes leave the tail and come back whole; a copy lends as many.
    #[test]
    fn a_split_lends_bytes_and_takes_them_back() {
        let bytes: Vec<u8> = (0..100u8).collect();
        let mut s = Split::new(100, Packing::Raw, bytes[..HEAD].try_into().unwrap(), bytes[HEAD..].into());
        let mut ext = [0u8; EXT_MAX];
        s.lend(8, &mut ext);
        assert_eq!((s.ext(), s.tail_len(), s.len(), s.stored_len()), (8, 100 - HEAD - 8, 100, 100));
        assert_eq!([&s.head()[..], s.with_ext(&ext[..8]).concat().as_slice()].concat(), bytes);
        let c = s.clone();
        assert_eq!([&c.head()[..], c.with_ext(&ext[..8]).concat().as_slice()].concat(), bytes);
        drop(c);
        s.take_back(&ext[..8]);
        assert_eq!((s.ext(), s.tail_len()), (0, 100 - HEAD));
        assert_eq!([&s.head()[..], s.tail()].concat(), bytes);
    }

    #[test]
    #[should_panic]
    fn stored_bytes_of_another_length_are_refused() {
        let _ = Split::new(100, Packing::Ascii7, [b'a'; HEAD], vec![b'a'; 100 - HEAD].into());
    }
}

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

/// The length's bits in the two-byte header; the packing takes the rest.
const LEN_BITS: u32 = 14;
const LEN_MASK: u16 = (1 << LEN_BITS) - 1;

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
    /// Bytes `len` characters take stored this way.
    pub fn stored_len(self, len: usize) -> usize {
        match self {
            Packing::Raw => len,
            Packing::Ascii7 => crate::ascii7::packed_len(len),
            Packing::Print95 => crate::print95::packed_len(len),
        }
    }
}

/// Longer than [`HEAD`] stored bytes, and at most 16,383 characters.
#[repr(C, packed)]
pub struct Split {
    /// The string's length (low 14 bits) and its [`Packing`] (the top
    /// two), little-endian.
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
        let stored = packing.stored_len(len);
        assert!(len <= LEN_MASK as usize && stored > HEAD && tail.len() == stored - HEAD);
        let tail = std::ptr::NonNull::new(Box::into_raw(tail).cast::<u8>()).expect("a box is never null");
        let len = (len as u16 | (packing as u16) << LEN_BITS).to_le_bytes();
        Split { len, head, tail }
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
        match self.bits() >> LEN_BITS {
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
        self.stored_len() - HEAD
    }

    pub fn head(&self) -> &[u8; HEAD] {
        &self.head
    }

    pub fn tail(&self) -> &[u8] {
        let p = self.tail;
        // SAFETY: `new` made the tail from a box of `tail_len()` bytes
        // (the length and the pointer are set together, only there, and
        // are private), and nothing writes or frees it before `drop`.
        unsafe { std::slice::from_raw_parts(p.as_ptr(), self.tail_len()) }
    }
}

impl Drop for Split {
    fn drop(&mut self) {
        let (p, n) = (self.tail, self.tail_len());
        // SAFETY: the box `new` made, with its length, dropped once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p.as_ptr(), n)) });
    }
}

impl Clone for Split {
    fn clone(&self) -> Split {
        Split::new(self.len(), self.packing(), self.head, self.tail().into())
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
        for n in [HEAD + 1, 75, 499, 13_000] {
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

    #[test]
    #[should_panic]
    fn stored_bytes_of_another_length_are_refused() {
        let _ = Split::new(100, Packing::Ascii7, [b'a'; HEAD], vec![b'a'; 100 - HEAD].into());
    }
}

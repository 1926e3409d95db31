//! A packed collection's bytes behind one pointer: the allocation holds
//! the length, then the bytes, and is always exactly the allocator's size
//! class for the two, so the capacity needs no field of its own.
//!
//! Why: a small hash, list, set or sorted set lives in the key's 24-byte
//! value (value.rs), so its encoding must be one pointer, and each byte
//! of header is a byte a key. A `Vec<u8>` is three words.
//! `thin_vec::ThinVec<u8>` (what this replaced) is one, but keeps a
//! 16-byte length and capacity in the allocation, appends a byte at a
//! time, and its `splice` reserved room for the whole buffer again. Here
//! the header is the length alone; growing and shrinking reallocate
//! whenever the size class changes (as Redis's listpack reallocates on
//! every insert and delete: within a class jemalloc resizes in place),
//! so the class rounding the allocator does anyway is the room to grow.
//!
//! Why unsafe: the allocation is made, resized and freed by hand, with a
//! layout computed from the length by one rule ([`size_for`]). Every
//! change of length goes through [`Buf::set_len`], which reallocates when
//! the rule's answer changes, so a free always uses the layout the
//! allocation has. The pointer is private, and nothing else writes the
//! header.
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Bytes of the header: the length, and in its top byte a tag the owner
/// keeps there (an intset's integer width).
pub const HEADER: usize = std::mem::size_of::<usize>();

const TAG_SHIFT: u32 = usize::BITS - 8;
const LEN_MASK: usize = (1 << TAG_SHIFT) - 1;

/// The allocation for `len` bytes: the whole size class of the header and
/// the bytes.
fn size_for(len: usize) -> usize {
    crate::memsize::size_class(HEADER + len)
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, std::mem::align_of::<usize>()).expect("a buffer under isize::MAX bytes")
}

/// Bytes, one pointer wide; no allocation while empty.
pub struct Buf {
    ptr: Option<NonNull<u8>>,
}

// A buffer owns its bytes, as a `Box<[u8]>` does.
unsafe impl Send for Buf {}
unsafe impl Sync for Buf {}

const _: () = assert!(std::mem::size_of::<Buf>() == 8);

impl Buf {
    pub const fn new() -> Buf {
        Buf { ptr: None }
    }

    /// The header word: the tag and the length (0 while empty).
    fn word(&self) -> usize {
        match self.ptr {
            None => 0,
            // SAFETY: an allocation starts with its header, written by
            // `set_len` (aligned: the layout's alignment is usize's).
            Some(p) => unsafe { p.cast::<usize>().as_ptr().read() },
        }
    }

    pub fn len(&self) -> usize {
        self.word() & LEN_MASK
    }

    /// The owner's tag: 0 until set, and again once the buffer is empty.
    pub fn tag(&self) -> u8 {
        (self.word() >> TAG_SHIFT) as u8
    }

    /// Sets the tag of a buffer that holds bytes (an empty one has no
    /// header to keep it in).
    pub fn set_tag(&mut self, tag: u8) {
        let p = self.ptr.expect("a tag is kept by a buffer that holds bytes");
        // SAFETY: as in `word`.
        unsafe { p.cast::<usize>().as_ptr().write(self.len() | (tag as usize) << TAG_SHIFT) };
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated, header included (0 while empty).
    pub fn allocated(&self) -> usize {
        self.ptr.map_or(0, |_| size_for(self.len()))
    }

    pub fn as_slice(&self) -> &[u8] {
        match self.ptr {
            None => &[],
            // SAFETY: `len` bytes after the header, all initialized
            // (`set_len` zeroes what it adds).
            Some(p) => unsafe { std::slice::from_raw_parts(p.as_ptr().add(HEADER), self.len()) },
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len();
        match self.ptr {
            None => &mut [],
            // SAFETY: as in `as_slice`; `&mut self` makes it the only
            // reference.
            Some(p) => unsafe { std::slice::from_raw_parts_mut(p.as_ptr().add(HEADER), len) },
        }
    }

    /// Makes the length `len`: bytes past the old length are zeros, bytes
    /// past the new one are gone. The allocation is the size class of the
    /// new length (none for 0).
    fn set_len(&mut self, len: usize) {
        let (old, tag) = (self.len(), self.word() & !LEN_MASK);
        if len == old {
            return;
        }
        assert!(len <= LEN_MASK, "a buffer under 2^56 bytes");
        let (old_size, size) = (self.allocated(), size_for(len));
        let p = match (self.ptr, len) {
            (None, _) => {
                // SAFETY: a layout of at least HEADER bytes (not zero).
                let p = unsafe { alloc::alloc(layout(size)) };
                NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout(size)))
            }
            (Some(p), 0) => {
                // SAFETY: the allocation and the layout it was made with
                // (its size follows from the length it holds).
                unsafe { alloc::dealloc(p.as_ptr(), layout(old_size)) };
                self.ptr = None;
                return;
            }
            (Some(p), _) if size == old_size => p,
            (Some(p), _) => {
                // SAFETY: as for dealloc; the new size is not zero.
                let q = unsafe { alloc::realloc(p.as_ptr(), layout(old_size), size) };
                NonNull::new(q).unwrap_or_else(|| alloc::handle_alloc_error(layout(size)))
            }
        };
        // SAFETY: the allocation holds HEADER + len bytes (size_for), and
        // the bytes from `old` to `len` are the ones being added.
        unsafe {
            if len > old {
                p.as_ptr().add(HEADER + old).write_bytes(0, len - old);
            }
            p.cast::<usize>().as_ptr().write(len | tag);
        }
        self.ptr = Some(p);
    }

    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let end = self.len();
        self.splice(end..end, bytes);
    }

    pub fn push(&mut self, b: u8) {
        self.extend_from_slice(&[b]);
    }

    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.set_len(len);
        }
    }

    /// Replaces the bytes in `range` with `with`, moving the rest up or
    /// down (one move, whatever the lengths).
    pub fn splice(&mut self, range: std::ops::Range<usize>, with: &[u8]) {
        self.splice_gap(range, with.len()).copy_from_slice(with);
    }

    /// Makes `range` `n` bytes long, moving the rest up or down, and hands
    /// those bytes over to be written (what they hold until then is
    /// unspecified): an element is encoded in place, with no copy made
    /// first.
    pub fn splice_gap(&mut self, range: std::ops::Range<usize>, n: usize) -> &mut [u8] {
        let (end, old) = (self.len(), range.end - range.start);
        assert!(range.start <= range.end && range.end <= end, "a range inside the buffer");
        if n > old {
            self.set_len(end + n - old);
        }
        self.as_mut_slice().copy_within(range.end..end, range.start + n);
        if n < old {
            self.set_len(end - (old - n));
        }
        &mut self.as_mut_slice()[range.start..range.start + n]
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        self.set_len(0);
    }
}

impl Default for Buf {
    fn default() -> Buf {
        Buf::new()
    }
}

impl Clone for Buf {
    fn clone(&self) -> Buf {
        let mut copy = Buf::new();
        copy.extend_from_slice(self.as_slice());
        if !copy.is_empty() {
            copy.set_tag(self.tag());
        }
        copy
    }
}

impl PartialEq for Buf {
    fn eq(&self, other: &Buf) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Buf {}

impl std::fmt::Debug for Buf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self.as_slice()))
    }
}

impl std::ops::Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any run of appends, splices and truncations leaves the bytes a
        /// `Vec` would hold, in an allocation of the length's size class.
        #[test]
        fn edits_match_a_vec(ops in proptest::collection::vec(
            (0u8..4, proptest::collection::vec(proptest::num::u8::ANY, 0..600), proptest::num::usize::ANY, proptest::num::usize::ANY),
            0..60,
        )) {
            let (mut b, mut v) = (Buf::new(), Vec::<u8>::new());
            for (op, bytes, x, y) in ops {
                match op {
                    0 => {
                        b.extend_from_slice(&bytes);
                        v.extend_from_slice(&bytes);
                    }
                    1 => {
                        let n = if v.is_empty() { 0 } else { x % (v.len() + 1) };
                        b.truncate(n);
                        v.truncate(n);
                    }
                    _ => {
                        let (mut s, mut e) = (x % (v.len() + 1), y % (v.len() + 1));
                        if s > e {
                            std::mem::swap(&mut s, &mut e);
                        }
                        b.splice(s..e, &bytes);
                        v.splice(s..e, bytes.iter().copied());
                    }
                }
                proptest::prop_assert_eq!(b.as_slice(), &v[..]);
                proptest::prop_assert_eq!(b.allocated(), if v.is_empty() { 0 } else { size_for(v.len()) });
                let c = b.clone();
                proptest::prop_assert_eq!(c.as_slice(), &v[..]);
                proptest::prop_assert!(c == b);
            }
        }
    }

    #[test]
    fn the_tag_stays_through_resizes() {
        let mut b = Buf::new();
        assert_eq!(b.tag(), 0);
        b.extend_from_slice(&[1; 10]);
        b.set_tag(8);
        b.extend_from_slice(&[2; 500]);
        b.splice(0..5, &[]);
        assert_eq!((b.tag(), b.len()), (8, 505));
        assert_eq!(b.clone().tag(), 8);
        b.truncate(0);
        assert_eq!(b.tag(), 0);
    }

    #[test]
    fn an_empty_buffer_holds_no_allocation() {
        let mut b = Buf::new();
        assert_eq!((b.len(), b.allocated(), b.as_slice()), (0, 0, &[][..]));
        b.push(7);
        assert_eq!((b.len(), b.allocated(), b.as_slice()), (1, 16, &[7][..]));
        b.truncate(0);
        assert_eq!((b.len(), b.allocated()), (0, 0));
        assert!(b.ptr.is_none());
    }
}

//! The byte size Redis's listpack would give a list of elements. Lists
//! switch between `listpack` and `quicklist` on this size (list-max-
//! listpack-size is in bytes when negative), so we track it exactly rather
//! than guess: small integers cost one byte, strings their length plus a
//! header, and every entry a back-length.

use crate::value::parse_canonical_i64;

/// Header (total bytes + count) and the end marker.
pub const LP_OVERHEAD: usize = 6 + 1;

/// Bytes one element takes in a listpack, encoding plus back-length.
pub fn entry_size(s: &[u8]) -> usize {
    match (s.len() <= 20).then(|| parse_canonical_i64(s)).flatten() {
        Some(v) => int_size(v),
        None => string_size(s.len()),
    }
}

/// Bytes a string element of `len` bytes takes (one that does not read as
/// an integer).
pub fn string_size(len: usize) -> usize {
    let enc = match len {
        0..64 => 1 + len,
        64..4096 => 2 + len,
        _ => 5 + len,
    };
    enc + backlen_size(enc)
}

/// Bytes an integer element takes (a string that reads as one is stored
/// as one).
pub fn int_size(v: i64) -> usize {
    let enc = match v {
        0..=127 => 1,
        -4096..4096 => 2,
        _ if i16::try_from(v).is_ok() => 3,
        -0x80_0000..0x80_0000 => 4,
        _ if i32::try_from(v).is_ok() => 5,
        _ => 9,
    };
    enc + backlen_size(enc)
}

/// Bytes of the back-length that follows an entry of `l` bytes.
pub fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_listpack_encodings() {
        assert_eq!(entry_size(b"7"), 2);
        assert_eq!(entry_size(b"-1"), 3);
        assert_eq!(entry_size(b"30000"), 4);
        assert_eq!(entry_size(b"9223372036854775807"), 10);
        assert_eq!(entry_size(b"abc"), 5);
        assert_eq!(entry_size(&[b'x'; 100]), 103);
        assert_eq!(entry_size(b"007"), 5);
        assert_eq!(int_size(-4097), 4);
        assert_eq!(int_size(1 << 23), 6);
    }
}

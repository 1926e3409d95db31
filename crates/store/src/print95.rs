//! Packing for printable ASCII: three characters in 20 bits.
//!
//! Why: the printable characters, space to `~`, are 95, and 95³ = 857,375
//! fits in 20 bits, so text made only of them (JSON without line breaks,
//! base64 and hex tokens, URLs, serialized sessions) packs into five
//! sixths of its length, where seven-bit packing (ascii7.rs) takes seven
//! eighths: a 100-character value in 84 bytes, not 88. At 133 of the
//! 490 lengths a split string can have (23 to 512 characters) its heap
//! part then takes a smaller jemalloc class (at 89 to 92 characters, 64
//! bytes instead of 80), 11 bytes less on average over all of them. Text
//! with a tab or a line break keeps seven-bit packing.
//!
//! Six characters are two triples, 40 bits: five whole bytes, so a
//! string packs and unpacks five bytes at a time with no bit carried
//! between steps. A triple is `c0·95² + c1·95 + c2` (each character less
//! 32), which the compiler turns into multiplications both ways, with no
//! division instruction. The last one to five characters are whole triples
//! of 20 bits and a lone character's 7 or a pair's 14, in a bit stream
//! continued little-endian.

/// Bytes that `n` printable characters pack into.
pub const fn packed_len(n: usize) -> usize {
    (n / 3 * 20 + [0, 7, 14][n % 3]).div_ceil(8)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether every byte of `src` is printable ASCII (space to `~`): eight at
/// a time. A byte below space sets its high bit when space is taken from
/// it, one above `~` when one is added, one past ASCII has it already; a
/// borrow or carry into the next byte comes only from a byte so flagged.
pub fn is_printable(src: &[u8]) -> bool {
    let bad = |x: u64| (x.wrapping_sub(LO * 0x20) | x.wrapping_add(LO) | x) & HIGH != 0;
    let mut chunks = src.chunks_exact(8);
    let mut any = false;
    for c in &mut chunks {
        any |= bad(u64::from_le_bytes(c.try_into().expect("eight bytes")));
    }
    // The last few, padded with spaces (printable).
    let mut last = [b' '; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    !(any || bad(u64::from_le_bytes(last)))
}

#[inline]
fn triple(c: &[u8]) -> u64 {
    let [a, b, c]: [u8; 3] = c.try_into().expect("three characters");
    ((a - b' ') as u64 * 95 + (b - b' ') as u64) * 95 + (c - b' ') as u64
}

#[inline]
fn untriple(v: u64, out: &mut [u8]) {
    let v = v as u32;
    let (c0, r) = (v / 9025, v % 9025);
    out[0] = (c0 as u8).wrapping_add(b' ');
    out[1] = ((r / 95) as u8).wrapping_add(b' ');
    out[2] = ((r % 95) as u8).wrapping_add(b' ');
}

/// Packs `src`, which must be [`is_printable`], into `out`, which must be
/// [`packed_len`]`(src.len())` bytes.
pub fn pack_into(src: &[u8], out: &mut [u8]) {
    assert_eq!(out.len(), packed_len(src.len()));
    debug_assert!(is_printable(src));
    let mut six = src.chunks_exact(6);
    let mut at = 0;
    for c in &mut six {
        let x = (triple(&c[..3]) | triple(&c[3..]) << 20).to_le_bytes();
        // All eight bytes where they fit (the next group overwrites the
        // last three): one store instead of a copy of five.
        match out.get_mut(at..at + 8) {
            Some(dst) => dst.copy_from_slice(&x),
            None => out[at..at + 5].copy_from_slice(&x[..5]),
        }
        at += 5;
    }
    let rest = six.remainder();
    let (mut x, mut bits) = (0u64, 0);
    let mut thirds = rest.chunks_exact(3);
    for c in &mut thirds {
        x |= triple(c) << bits;
        bits += 20;
    }
    match thirds.remainder() {
        [a] => x |= ((a - b' ') as u64) << bits,
        [a, b] => x |= (((a - b' ') as u64) * 95 + (b - b' ') as u64) << bits,
        _ => {}
    }
    let n = out.len() - at;
    out[at..].copy_from_slice(&x.to_le_bytes()[..n]);
}

/// The `n` characters `packed` holds, appended to `out`.
pub fn unpack_into(packed: &[u8], n: usize, out: &mut Vec<u8>) {
    debug_assert_eq!(packed.len(), packed_len(n));
    let start = out.len();
    out.resize(start + n, 0);
    let dst = &mut out[start..];
    let mut groups = dst.chunks_exact_mut(6);
    let mut at = 0;
    for group in &mut groups {
        // Eight bytes where there are eight (the rest are the next
        // group's, shifted off), else the last five.
        let x = match packed.get(at..at + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("eight bytes")),
            None => {
                let mut b = [0u8; 8];
                b[..5].copy_from_slice(&packed[at..at + 5]);
                u64::from_le_bytes(b)
            }
        };
        untriple(x & 0xf_ffff, &mut group[..3]);
        untriple((x >> 20) & 0xf_ffff, &mut group[3..]);
        at += 5;
    }
    let rest = groups.into_remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..packed.len() - at].copy_from_slice(&packed[at..]);
        let mut x = u64::from_le_bytes(b);
        let mut thirds = rest.chunks_exact_mut(3);
        for third in &mut thirds {
            untriple(x & 0xf_ffff, third);
            x >>= 20;
        }
        match thirds.into_remainder() {
            [a] => *a = ((x & 0x7f) as u8).wrapping_add(b' '),
            [a, b] => {
                let v = (x & 0x3fff) as u32;
                *a = ((v / 95) as u8).wrapping_add(b' ');
                *b = ((v % 95) as u8).wrapping_add(b' ');
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(src: &[u8]) -> Vec<u8> {
        let mut packed = vec![0u8; packed_len(src.len())];
        pack_into(src, &mut packed);
        let mut out = b"before".to_vec();
        unpack_into(&packed, src.len(), &mut out);
        assert_eq!(&out[..6], b"before", "appends");
        out.split_off(6)
    }

    #[test]
    fn lengths_pack_to_five_sixths() {
        assert_eq!([0, 1, 2, 3, 4, 5, 6].map(packed_len), [0, 1, 2, 3, 4, 5, 5]);
        assert_eq!(packed_len(100), 84);
        assert_eq!(packed_len(512), 427);
    }

    #[test]
    fn every_printable_character_in_every_place_round_trips() {
        let all: Vec<u8> = (b' '..=b'~').collect();
        for n in 0..=all.len() {
            for rot in [0, 1, 2, 50] {
                let s: Vec<u8> = all.iter().cycle().skip(rot).take(n).copied().collect();
                assert_eq!(round_trip(&s), s, "{n} {rot}");
            }
        }
        assert!(is_printable(&all));
        for other in [b'\n', b'\t', 0, 0x7f, 0x80, 0xff, b' ' - 1] {
            assert!(!is_printable(&[b'a', other]), "{other}");
        }
    }

    proptest! {
        #[test]
        fn any_printable_string_round_trips(s in proptest::collection::vec(b' '..=b'~', 0..600)) {
            prop_assert_eq!(round_trip(&s), s);
        }
    }
}

//! Seven-bit packing for ASCII strings: eight characters in seven bytes.
//!
//! Why: most of what caches hold is text (JSON, HTML fragments, tokens,
//! serialized sessions), and text is ASCII far more often than not. An
//! ASCII byte never uses its top bit, so dropping it stores the same
//! string in seven eighths of the bytes: a 100-byte value takes 88, which
//! jemalloc serves from its 96-byte class instead of the 112-byte one.
//! Dragonfly stores strings the same way.
//!
//! Both directions work on eight characters at a time in a `u64`, folding
//! (or unfolding) neighbouring 7-bit groups in three shift-and-mask steps:
//! about 20 ns to pack or unpack a 100-byte value in cache. Character `i` lands at bits `7i..7i+7` of the
//! little-endian bit stream, so a short last group is simply a zero-padded
//! group cut to the bytes its bits need.

/// Bytes that `n` ASCII characters pack into.
pub fn packed_len(n: usize) -> usize {
    (n * 7).div_ceil(8)
}

fn fold(x: u64) -> u64 {
    let x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

fn unfold(x: u64) -> u64 {
    let x = (x & 0x0000_0000_0fff_ffff) | ((x & 0x00ff_ffff_f000_0000) << 4);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x0fff_c000_0fff_c000) << 2);
    (x & 0x007f_007f_007f_007f) | ((x & 0x3f80_3f80_3f80_3f80) << 1)
}

/// Packs `src` into `out`, which must be [`packed_len`]`(src.len())`
/// bytes. False, with `out` half written, at the first group with a byte
/// past ASCII: checking as it packs spares a pass over the string.
pub fn pack_into(src: &[u8], out: &mut [u8]) -> bool {
    assert_eq!(out.len(), packed_len(src.len()));
    let mut chunks = src.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        if x & HIGH_BITS != 0 {
            return false;
        }
        let x = fold(x).to_le_bytes();
        // All eight bytes where they fit (the eighth is zero, and the next
        // group overwrites it): one store instead of three.
        match out.get_mut(at..at + 8) {
            Some(dst) => dst.copy_from_slice(&x),
            None => out[at..at + 7].copy_from_slice(&x[..7]),
        }
        at += 7;
    }
    let rest = chunks.remainder().len();
    if rest > 0 {
        let x = last_group(src, rest);
        if x & HIGH_BITS != 0 {
            return false;
        }
        out[at..].copy_from_slice(&fold(x).to_le_bytes()[..packed_len(rest)]);
    }
    true
}

/// The top bit of each byte of a group: set only past ASCII.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The last `rest` (< 8) bytes of `b` as a zero-padded group. Where `b`
/// has eight bytes, one load of its last eight, shifted: copying the tail
/// into a buffer and loading that stalls on store forwarding, which cost
/// more than all of a 100-byte value's full groups.
fn last_group(b: &[u8], rest: usize) -> u64 {
    if b.len() >= 8 {
        let tail: [u8; 8] = b[b.len() - 8..].try_into().expect("eight bytes");
        u64::from_le_bytes(tail) >> ((8 - rest) * 8)
    } else {
        let mut group = [0u8; 8];
        group[..rest].copy_from_slice(&b[b.len() - rest..]);
        u64::from_le_bytes(group)
    }
}

/// The `n` characters `packed` holds, appended to `out`.
pub fn unpack_into(packed: &[u8], n: usize, out: &mut Vec<u8>) {
    debug_assert_eq!(packed.len(), packed_len(n));
    out.reserve(n);
    let mut at = 0;
    for _ in 0..n / 8 {
        // Eight bytes where there are eight (the eighth is the next
        // group's, masked off), else the last seven.
        let x = match packed.get(at..at + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("eight bytes")) & 0x00ff_ffff_ffff_ffff,
            None => last_group(&packed[..at + 7], 7),
        };
        out.extend_from_slice(&unfold(x).to_le_bytes());
        at += 7;
    }
    let left = n % 8;
    if left > 0 {
        let x = last_group(packed, packed.len() - at);
        out.extend_from_slice(&unfold(x).to_le_bytes()[..left]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(src: &[u8]) -> Option<Box<[u8]>> {
        let mut out = vec![0u8; packed_len(src.len())].into_boxed_slice();
        pack_into(src, &mut out).then_some(out)
    }

    fn unpack(packed: &[u8], n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        unpack_into(packed, n, &mut out);
        out
    }

    #[test]
    fn lengths_are_seven_eighths_rounded_up() {
        assert_eq!(packed_len(0), 0);
        assert_eq!(packed_len(1), 1);
        assert_eq!(packed_len(7), 7);
        assert_eq!(packed_len(8), 7);
        assert_eq!(packed_len(9), 8);
        assert_eq!(packed_len(100), 88);
    }

    #[test]
    fn every_character_keeps_its_place() {
        // Each character alone among zeros, at every position of a group
        // and across a group boundary: a wrong mask or shift moves it.
        for n in 1..=17 {
            for at in 0..n {
                for c in [1u8, 0x2a, 0x55, 0x7f] {
                    let mut s = vec![0u8; n];
                    s[at] = c;
                    let p = pack(&s).unwrap();
                    assert_eq!(p.len(), packed_len(n));
                    assert_eq!(unpack(&p, n), s, "length {n}, position {at}, byte {c:#x}");
                }
            }
        }
    }

    #[test]
    fn the_bit_stream_is_little_endian() {
        // 'a' (0x61) then 'b' (0x62): 0x61 | 0x62 << 7 = 0x3161.
        assert_eq!(&*pack(b"ab").unwrap(), &[0x61, 0x31]);
    }

    #[test]
    fn a_byte_past_ascii_anywhere_is_refused() {
        for n in 1..=20 {
            for at in 0..n {
                let mut s = vec![b'a'; n];
                s[at] = 0x80;
                assert!(pack(&s).is_none(), "length {n}, position {at}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn ascii_round_trips(s in proptest::collection::vec(0u8..0x80, 0..300)) {
            let p = pack(&s).unwrap();
            proptest::prop_assert_eq!(p.len(), packed_len(s.len()));
            proptest::prop_assert_eq!(unpack(&p, s.len()), s);
        }
    }
}

//! LZF, the only compression RDB uses. Redis compresses strings longer
//! than 20 bytes (`rdbcompression yes`, the default), so payloads from
//! Redis need the decompressor, and Larder's files compress the same way.
//!
//! The compressor is greedy: a table of the last position of each 3-byte
//! prefix finds a match within LZF's 8 KB window, extended up to LZF's 264
//! bytes. It is not liblzf's exact output, which no reader needs: any
//! valid LZF stream decompresses the same.

use std::sync::atomic::{AtomicBool, Ordering};

/// `rdbcompression`: whether files and DUMP payloads compress strings.
static ENABLED: AtomicBool = AtomicBool::new(true);

pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);
const HASH_BITS: u32 = 13;

/// Compresses `input` into at most `max_out` bytes; None if it does not
/// fit (Redis then stores the string as it is).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let n = input.len();
    let mut out = Vec::with_capacity(max_out.min(n + n / 32 + 2));
    // Last position + 1 of each 3-byte prefix's hash (0: none).
    let mut table = vec![0u32; 1 << HASH_BITS];
    let hash = |p: usize| {
        let v = (input[p] as u32) << 16 | (input[p + 1] as u32) << 8 | input[p + 2] as u32;
        (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
    };
    let mut lit = 0;
    let mut i = 0;
    while i + 2 < n {
        let h = hash(i);
        let cand = table[h] as usize;
        table[h] = (i + 1) as u32;
        if cand > 0 {
            let r = cand - 1;
            let dist = i - r;
            if dist <= MAX_OFF && input[r..r + 3] == input[i..i + 3] {
                let max = (n - i).min(MAX_REF);
                let mut len = 3;
                while len < max && input[r + len] == input[i + len] {
                    len += 1;
                }
                literals(&mut out, &input[lit..i]);
                let (l, off) = (len - 2, dist - 1);
                if l < 7 {
                    out.push(((l << 5) | (off >> 8)) as u8);
                } else {
                    out.push(((7 << 5) | (off >> 8)) as u8);
                    out.push((l - 7) as u8);
                }
                out.push(off as u8);
                if out.len() > max_out {
                    return None;
                }
                i += len;
                lit = i;
                continue;
            }
        }
        i += 1;
    }
    literals(&mut out, &input[lit..]);
    (out.len() <= max_out).then_some(out)
}

/// Literal runs of at most 32 bytes, each after a length byte.
fn literals(out: &mut Vec<u8>, mut run: &[u8]) {
    while !run.is_empty() {
        let k = run.len().min(32);
        out.push((k - 1) as u8);
        out.extend_from_slice(&run[..k]);
        run = &run[k..];
    }
}

/// Decompresses `input` into exactly `out_len` bytes; None if malformed.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(out_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            // A literal run of ctrl + 1 bytes.
            let run = ctrl + 1;
            out.extend_from_slice(input.get(i..i + run)?);
            i += run;
        } else {
            // A back reference: length in the top 3 bits (7 means "more").
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..len + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > out_len {
            return None;
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn compress_round_trips(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000)) {
            if let Some(c) = super::compress(&data, data.len() + 64) {
                prop_assert_eq!(super::decompress(&c, data.len()).unwrap(), data);
            }
        }
    }

    #[test]
    fn repetitive_strings_shrink_and_round_trip() {
        let long = "abcdefgh".repeat(2000);
        let c = super::compress(long.as_bytes(), long.len() - 4).unwrap();
        assert!(c.len() < long.len() / 20, "{}", c.len());
        assert_eq!(super::decompress(&c, long.len()).unwrap(), long.as_bytes());
        let noise: Vec<u8> = (0..100u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert_eq!(super::compress(&noise, noise.len() - 4), None, "incompressible input does not fit");
    }

    #[test]
    fn literal_and_backref() {
        // "abcabcabc": literal "abc", then a back reference of 6 bytes at distance 3.
        let input = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(super::decompress(&input, 9).unwrap(), b"abcabcabc");
        assert_eq!(super::decompress(&input, 8), None);
        assert_eq!(super::decompress(&[(1 << 5), 0], 3), None);
    }
}

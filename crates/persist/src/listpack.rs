//! Redis's listpack and intset byte formats, which RDB uses for small
//! collections (hash, set, sorted set and list nodes). Writing them as
//! Redis does makes a DUMP of a small collection byte-identical to Redis's;
//! reading them is how Redis-made payloads and snapshots load.

use bytes::{BufMut, Bytes, BytesMut};
use larder_store::types::listpack::backlen_size;
use larder_store::value::parse_canonical_i64;

/// Encodes `items` as one listpack.
pub fn encode<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(64);
    out.put_slice(&[0; 6]);
    let mut count = 0usize;
    for item in items {
        let start = out.len();
        put_entry(&mut out, item);
        let len = out.len() - start;
        put_backlen(&mut out, len);
        count += 1;
    }
    out.put_u8(0xFF);
    let total = out.len() as u32;
    out[0..4].copy_from_slice(&total.to_le_bytes());
    out[4..6].copy_from_slice(&(count.min(65535) as u16).to_le_bytes());
    out.to_vec()
}

fn put_entry(out: &mut BytesMut, s: &[u8]) {
    if let Some(v) = (s.len() <= 20).then(|| parse_canonical_i64(s)).flatten() {
        match v {
            0..=127 => out.put_u8(v as u8),
            -4096..=4095 => {
                let u = (v as u64) & 0x1FFF;
                out.put_u8(0xC0 | (u >> 8) as u8);
                out.put_u8(u as u8);
            }
            _ if i16::try_from(v).is_ok() => {
                out.put_u8(0xF1);
                out.put_i16_le(v as i16);
            }
            _ if (-(1 << 23)..(1 << 23)).contains(&v) => {
                out.put_u8(0xF2);
                out.put_slice(&(v as i32).to_le_bytes()[..3]);
            }
            _ if i32::try_from(v).is_ok() => {
                out.put_u8(0xF3);
                out.put_i32_le(v as i32);
            }
            _ => {
                out.put_u8(0xF4);
                out.put_i64_le(v);
            }
        }
        return;
    }
    let n = s.len();
    if n < 64 {
        out.put_u8(0x80 | n as u8);
    } else if n < 4096 {
        out.put_u8(0xE0 | (n >> 8) as u8);
        out.put_u8(n as u8);
    } else {
        out.put_u8(0xF0);
        out.put_u32_le(n as u32);
    }
    out.put_slice(s);
}

fn put_backlen(out: &mut BytesMut, l: usize) {
    let bytes = backlen_size(l);
    // Most significant 7-bit group first; every byte but the first has the
    // high bit set, so the entry can be found walking backwards.
    for i in (0..bytes).rev() {
        let group = ((l >> (7 * i)) & 127) as u8;
        out.put_u8(if i == bytes - 1 { group } else { group | 128 });
    }
}

/// Decodes a listpack; None if it is malformed.
pub fn decode(lp: &[u8]) -> Option<Vec<Bytes>> {
    if lp.len() < 7 {
        return None;
    }
    let total = u32::from_le_bytes(lp.get(0..4)?.try_into().ok()?) as usize;
    if total != lp.len() || *lp.last()? != 0xFF {
        return None;
    }
    let mut pos = 6;
    let mut out = Vec::new();
    while lp[pos] != 0xFF {
        let b = lp[pos];
        let int = |n: usize| -> Option<i64> {
            let raw = lp.get(pos + 1..pos + 1 + n)?;
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(raw);
            let v = i64::from_le_bytes(buf);
            Some((v << (64 - 8 * n)) >> (64 - 8 * n))
        };
        let (item, len): (Bytes, usize) = if b & 0x80 == 0 {
            (fmt_int(b as i64), 1)
        } else if b & 0xC0 == 0x80 {
            let n = (b & 0x3F) as usize;
            (Bytes::copy_from_slice(lp.get(pos + 1..pos + 1 + n)?), 1 + n)
        } else if b & 0xE0 == 0xC0 {
            let u = (((b & 0x1F) as i64) << 8) | *lp.get(pos + 1)? as i64;
            (fmt_int((u << 51) >> 51), 2)
        } else if b & 0xF0 == 0xE0 {
            let n = (((b & 0x0F) as usize) << 8) | *lp.get(pos + 1)? as usize;
            (Bytes::copy_from_slice(lp.get(pos + 2..pos + 2 + n)?), 2 + n)
        } else {
            match b {
                0xF0 => {
                    let n = u32::from_le_bytes(lp.get(pos + 1..pos + 5)?.try_into().ok()?) as usize;
                    (Bytes::copy_from_slice(lp.get(pos + 5..pos + 5 + n)?), 5 + n)
                }
                0xF1 => (fmt_int(int(2)?), 3),
                0xF2 => (fmt_int(int(3)?), 4),
                0xF3 => (fmt_int(int(4)?), 5),
                0xF4 => (fmt_int(int(8)?), 9),
                _ => return None,
            }
        };
        pos += len + backlen_size(len);
        if pos >= lp.len() {
            return None;
        }
        out.push(item);
    }
    (pos == lp.len() - 1).then_some(out)
}

fn fmt_int(v: i64) -> Bytes {
    Bytes::copy_from_slice(itoa::Buffer::new().format(v).as_bytes())
}

/// Decodes a ziplist, the compact format of Redis 6.2 and earlier (RDB
/// types 10 and 12 to 14), which Redis 7 still loads; None if malformed.
pub fn decode_ziplist(zl: &[u8]) -> Option<Vec<Bytes>> {
    let total = u32::from_le_bytes(zl.get(0..4)?.try_into().ok()?) as usize;
    if total != zl.len() || *zl.last()? != 0xFF {
        return None;
    }
    // Checked as Redis's ziplistValidateIntegrity does: each entry names
    // the previous one's length, the header the last entry's offset and
    // (below 65,535) the count. A payload whose redundant fields disagree
    // with its entries is refused, as Redis refuses it.
    let tail = u32::from_le_bytes(zl.get(4..8)?.try_into().ok()?) as usize;
    let count = u16::from_le_bytes(zl.get(8..10)?.try_into().ok()?);
    let (mut pos, mut prev_len, mut last) = (10, 0usize, 10);
    let mut out = Vec::new();
    while *zl.get(pos)? != 0xFF {
        let start = pos;
        // The previous entry's length: one byte, or 0xFE and four.
        let named = match zl[pos] {
            n @ 0..0xFE => n as usize,
            _ => u32::from_le_bytes(zl.get(pos + 1..pos + 5)?.try_into().ok()?) as usize,
        };
        if named != prev_len {
            return None;
        }
        pos += if zl[pos] < 0xFE { 1 } else { 5 };
        let enc = *zl.get(pos)?;
        let int = |n: usize| -> Option<i64> {
            let raw = zl.get(pos + 1..pos + 1 + n)?;
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(raw);
            let v = i64::from_le_bytes(buf);
            Some((v << (64 - 8 * n)) >> (64 - 8 * n))
        };
        let (item, len): (Bytes, usize) = match enc >> 6 {
            0 => {
                let n = (enc & 0x3F) as usize;
                (Bytes::copy_from_slice(zl.get(pos + 1..pos + 1 + n)?), 1 + n)
            }
            1 => {
                let n = (((enc & 0x3F) as usize) << 8) | *zl.get(pos + 1)? as usize;
                (Bytes::copy_from_slice(zl.get(pos + 2..pos + 2 + n)?), 2 + n)
            }
            2 => {
                let n = u32::from_be_bytes(zl.get(pos + 1..pos + 5)?.try_into().ok()?) as usize;
                (Bytes::copy_from_slice(zl.get(pos + 5..pos + 5 + n)?), 5 + n)
            }
            _ => match enc {
                0xC0 => (fmt_int(int(2)?), 3),
                0xD0 => (fmt_int(int(4)?), 5),
                0xE0 => (fmt_int(int(8)?), 9),
                0xF0 => (fmt_int(int(3)?), 4),
                0xFE => (fmt_int(int(1)?), 2),
                0xF1..=0xFD => (fmt_int((enc & 0x0F) as i64 - 1), 1),
                _ => return None,
            },
        };
        pos += len;
        (prev_len, last) = (pos - start, start);
        out.push(item);
    }
    let counted = count == u16::MAX || usize::from(count) == out.len();
    (pos == zl.len() - 1 && tail == last && counted).then_some(out)
}

/// Encodes sorted integers as an intset, at the narrowest width that fits.
pub fn encode_intset(values: &[i64]) -> Vec<u8> {
    let width: usize = if values.iter().all(|v| i16::try_from(*v).is_ok()) {
        2
    } else if values.iter().all(|v| i32::try_from(*v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// Decodes an intset; None if malformed or not strictly ascending.
pub fn decode_intset(b: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    let n = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || b.len() != 8 + width * n {
        return None;
    }
    let vals: Vec<i64> = b[8..]
        .chunks_exact(width)
        .map(|c| {
            let mut buf = [0u8; 8];
            buf[..width].copy_from_slice(c);
            let shift = 64 - 8 * width;
            (i64::from_le_bytes(buf) << shift) >> shift
        })
        .collect();
    vals.windows(2).all(|w| w[0] < w[1]).then_some(vals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A ziplist of "a" and "bc", its header and prevlens as Redis writes
    /// them.
    fn ziplist_a_bc() -> Vec<u8> {
        let mut zl = Vec::new();
        zl.extend_from_slice(&18u32.to_le_bytes()); // zlbytes
        zl.extend_from_slice(&13u32.to_le_bytes()); // zltail: the last entry
        zl.extend_from_slice(&2u16.to_le_bytes()); // zllen
        zl.extend_from_slice(&[0, 0x01, b'a']); // prevlen 0
        zl.extend_from_slice(&[3, 0x02, b'b', b'c']); // prevlen 3
        zl.push(0xFF);
        zl
    }

    /// A ziplist whose redundant fields disagree with its entries is
    /// refused, as Redis's integrity check refuses it (the suite's
    /// corrupt-dump payloads: a wrong prevlen, count or tail).
    #[test]
    fn ziplists_are_checked_whole() {
        let good = ziplist_a_bc();
        let items = decode_ziplist(&good).unwrap();
        assert_eq!(items, [Bytes::from_static(b"a"), Bytes::from_static(b"bc")]);
        for (at, value) in [(13, 2u8), (10, 1), (8, 3), (4, 10)] {
            let mut bad = good.clone();
            bad[at] = value;
            assert_eq!(decode_ziplist(&bad), None, "byte {at} = {value}");
        }
        // A count of 65,535 means "count them", as in Redis.
        let mut many = good.clone();
        many[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(decode_ziplist(&many).unwrap().len(), 2);
    }

    proptest! {
        #[test]
        fn listpack_round_trip(items in proptest::collection::vec(
            prop_oneof![any::<i64>().prop_map(|i| i.to_string().into_bytes()),
                        proptest::collection::vec(any::<u8>(), 0..300),
                        (-5000i64..5000).prop_map(|i| i.to_string().into_bytes())], 0..50)) {
            let lp = encode(items.iter().map(|v| v.as_slice()));
            let back = decode(&lp).unwrap();
            prop_assert_eq!(back.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), items);
        }

        #[test]
        fn intset_round_trip(mut v in proptest::collection::vec(any::<i64>(), 0..40)) {
            v.sort();
            v.dedup();
            prop_assert_eq!(decode_intset(&encode_intset(&v)), Some(v));
        }

        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&b);
            let _ = decode_intset(&b);
        }
    }

    #[test]
    fn matches_redis_bytes() {
        // The listpack inside redis-server 7.0's DUMP of `RPUSH l a 1 -5000 hello`.
        let redis = b"\x17\x00\x00\x00\x04\x00\x81a\x02\x01\x01\xf1x\xec\x03\x85hello\x06\xff";
        assert_eq!(encode([&b"a"[..], b"1", b"-5000", b"hello"]), redis.to_vec());
    }
}

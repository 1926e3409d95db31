//! HyperLogLog in Redis's exact byte format, so a PFADD'ed key can be
//! read with GET, moved with DUMP/RESTORE or SET, and counted by either
//! server: a 16-byte header ("HYLL", encoding, cached cardinality), then
//! 16384 six-bit registers, either dense (12288 bytes) or sparse (ZERO,
//! XZERO and VAL run-length opcodes). The sparse update, its opcode
//! merging and the promotion to dense follow hyperloglog.c step by step:
//! the bytes must come out identical, not just the estimates.

/// Register count, and bits of the hash that address a register.
pub const REGISTERS: usize = 1 << P;
const P: u32 = 14;
const Q: u32 = 64 - P;
const REGISTER_MAX: u8 = 63;
pub const HDR: usize = 16;
pub const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
/// hll-sparse-max-bytes's default: a sparse HLL larger than this becomes dense.
pub const SPARSE_MAX_BYTES: usize = 3000;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

#[derive(Debug, PartialEq, Eq)]
pub enum HllError {
    /// Not an HLL string: Redis's WRONGTYPE.
    NotHll,
    /// An HLL whose registers do not add up: Redis's INVALIDOBJ.
    Corrupt,
}

/// A new, empty sparse HLL: one XZERO covering every register.
pub fn new_sparse() -> Vec<u8> {
    let mut v = b"HYLL".to_vec();
    v.extend_from_slice(&[SPARSE, 0, 0, 0]);
    v.extend_from_slice(&[0; 8]);
    xzero(&mut v, XZERO_MAX_LEN);
    v
}

/// Redis's `isHLLObjectOrReply` checks.
pub fn validate(b: &[u8]) -> Result<(), HllError> {
    if b.len() < HDR || &b[..4] != b"HYLL" || b[4] > SPARSE || (b[4] == DENSE && b.len() != DENSE_SIZE) {
        return Err(HllError::NotHll);
    }
    Ok(())
}

/// MurmurHash64A with Redis's seed.
pub fn murmur64a(key: &[u8]) -> u64 {
    const M: u64 = 0xc6a4a7935bd1e995;
    const R: u32 = 47;
    let mut h: u64 = 0xadc83b19u64 ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate() {
            h ^= (*b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// (register, run length of the "000…1" pattern) for an element.
fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let h = (hash >> P) | (1u64 << Q);
    (index, (h.trailing_zeros() + 1) as u8)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let (byte, fb) = (i * 6 / 8, (i * 6) & 7);
    let b0 = regs[byte] as u16;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u16) as u8
}

fn dense_set(regs: &mut [u8], i: usize, v: u8) {
    let (byte, fb) = (i * 6 / 8, (i * 6) & 7);
    let v = v as u16;
    regs[byte] &= !((REGISTER_MAX as u16) << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if let Some(b1) = regs.get_mut(byte + 1) {
        *b1 &= !((REGISTER_MAX as u16) >> (8 - fb)) as u8;
        *b1 |= (v >> (8 - fb)) as u8;
    }
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
fn xzero_len(b0: u8, b1: u8) -> usize {
    ((((b0 & 0x3f) as usize) << 8) | b1 as usize) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    (b & 0x3) as usize + 1
}
fn val_op(value: u8, len: usize) -> u8 {
    (((value - 1) << 2) | (len as u8 - 1)) | 0x80
}
fn xzero(out: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    out.push(((l >> 8) as u8) | 0x40);
    out.push((l & 0xff) as u8);
}

fn invalidate(h: &mut [u8]) {
    h[15] |= 0x80;
}

/// Registers of a sparse HLL body, or Corrupt.
fn sparse_registers(body: &[u8]) -> Result<Vec<u8>, HllError> {
    let mut regs = vec![0u8; REGISTERS];
    let (mut p, mut idx) = (0, 0usize);
    while p < body.len() {
        let b = body[p];
        if is_zero(b) {
            idx += zero_len(b);
            p += 1;
        } else if is_xzero(b) {
            idx += xzero_len(b, *body.get(p + 1).ok_or(HllError::Corrupt)?);
            p += 2;
        } else {
            let (v, n) = (val_value(b), val_len(b));
            if idx + n > REGISTERS {
                return Err(HllError::Corrupt);
            }
            regs[idx..idx + n].fill(v);
            idx += n;
            p += 1;
        }
    }
    if idx != REGISTERS {
        return Err(HllError::Corrupt);
    }
    Ok(regs)
}

/// All register values of a valid HLL.
pub fn registers(h: &[u8]) -> Result<Vec<u8>, HllError> {
    if h[4] == DENSE {
        Ok((0..REGISTERS).map(|i| dense_get(&h[HDR..], i)).collect())
    } else {
        sparse_registers(&h[HDR..])
    }
}

/// PFDEBUG DECODE: a sparse HLL's opcodes as Redis prints them
/// (`z:len`, `Z:len`, `v:value,len`), space-separated.
pub fn decode_sparse(h: &[u8]) -> Result<String, HllError> {
    let body = &h[HDR..];
    let (mut p, mut out) = (0, Vec::new());
    while p < body.len() {
        let b = body[p];
        if is_zero(b) {
            out.push(format!("z:{}", zero_len(b)));
            p += 1;
        } else if is_xzero(b) {
            out.push(format!("Z:{}", xzero_len(b, *body.get(p + 1).ok_or(HllError::Corrupt)?)));
            p += 2;
        } else {
            out.push(format!("v:{},{}", val_value(b), val_len(b)));
            p += 1;
        }
    }
    Ok(out.join(" "))
}

/// A dense HLL's register `i` (PFSELFTEST checks the 6-bit packing).
pub fn dense_register(h: &[u8], i: usize) -> u8 {
    dense_get(&h[HDR..], i)
}

/// Sets a dense HLL's register `i` to `v` (at most 63).
pub fn set_dense_register(h: &mut [u8], i: usize, v: u8) {
    dense_set(&mut h[HDR..], i, v)
}

/// Converts a sparse HLL to dense in place (no-op if already dense).
pub fn to_dense(h: &mut Vec<u8>) -> Result<(), HllError> {
    if h[4] == DENSE {
        return Ok(());
    }
    let regs = sparse_registers(&h[HDR..])?;
    let mut dense = h[..HDR].to_vec();
    dense[4] = DENSE;
    dense.resize(DENSE_SIZE, 0);
    for (i, v) in regs.iter().enumerate() {
        if *v != 0 {
            dense_set(&mut dense[HDR..], i, *v);
        }
    }
    *h = dense;
    Ok(())
}

/// Redis's `hllSparseSet`: 1 if the register grew, 0 if not.
fn sparse_set(h: &mut Vec<u8>, index: usize, count: u8, sparse_max: usize) -> Result<bool, HllError> {
    if count > VAL_MAX_VALUE {
        return promote(h, index, count);
    }
    // Step 1: find the opcode covering `index`.
    let (mut p, mut first, mut prev, mut span) = (HDR, 0usize, None, 0usize);
    while p < h.len() {
        let b = h[p];
        let (sp, oplen) = if is_zero(b) {
            (zero_len(b), 1)
        } else if is_val(b) {
            (val_len(b), 1)
        } else {
            (xzero_len(b, *h.get(p + 1).ok_or(HllError::Corrupt)?), 2)
        };
        span = sp;
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= h.len() {
        return Err(HllError::Corrupt);
    }
    let b = h[p];
    let (zero, xz, val) = (is_zero(b), is_xzero(b), is_val(b));
    let runlen = if zero {
        zero_len(b)
    } else if xz {
        xzero_len(b, h[p + 1])
    } else {
        val_len(b)
    };
    // Step 2: the trivial cases.
    let mut done = false;
    if val {
        let old = val_value(b);
        if old >= count {
            return Ok(false);
        }
        if runlen == 1 {
            h[p] = val_op(count, 1);
            done = true;
        }
    }
    if !done && zero && runlen == 1 {
        h[p] = val_op(count, 1);
        done = true;
    }
    if !done {
        // The general case: split the run into up to three opcodes.
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        let zeros = |seq: &mut Vec<u8>, len: usize| {
            if len > ZERO_MAX_LEN {
                xzero(seq, len);
            } else {
                seq.push((len - 1) as u8);
            }
        };
        if zero || xz {
            if index != first {
                zeros(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                zeros(&mut seq, last - index);
            }
        } else {
            let cur = val_value(b);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
        let oldlen = if xz { 2 } else { 1 };
        if seq.len() > oldlen && h.len() + seq.len() - oldlen > sparse_max {
            return promote(h, index, count);
        }
        h.splice(p..p + oldlen, seq);
    }
    // Step 4: merge adjacent VAL opcodes with the same value.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < h.len() && scan > 0 {
        scan -= 1;
        let b = h[p];
        if is_xzero(b) {
            p += 2;
            continue;
        }
        if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < h.len() && is_val(h[p + 1]) {
            let (v1, v2) = (val_value(b), val_value(h[p + 1]));
            let len = val_len(b) + val_len(h[p + 1]);
            if v1 == v2 && len <= VAL_MAX_LEN {
                h[p + 1] = val_op(v1, len);
                h.remove(p);
                continue;
            }
        }
        p += 1;
    }
    invalidate(h);
    Ok(true)
}

fn promote(h: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    to_dense(h)?;
    let regs = &mut h[HDR..];
    if count > dense_get(regs, index) {
        dense_set(regs, index, count);
    }
    Ok(true)
}

/// Sets register `index` to at least `count`; true if it changed.
fn set_register(h: &mut Vec<u8>, index: usize, count: u8, sparse_max: usize) -> Result<bool, HllError> {
    if h[4] == DENSE {
        let regs = &mut h[HDR..];
        if count > dense_get(regs, index) {
            dense_set(regs, index, count);
            return Ok(true);
        }
        return Ok(false);
    }
    sparse_set(h, index, count, sparse_max)
}

/// PFADD of one element; true if a register changed.
pub fn add(h: &mut Vec<u8>, ele: &[u8], sparse_max: usize) -> Result<bool, HllError> {
    let (index, count) = pat_len(ele);
    set_register(h, index, count, sparse_max)
}

/// Marks the cached cardinality stale.
pub fn invalidate_cache(h: &mut [u8]) {
    invalidate(h)
}

/// The cached cardinality, if valid.
pub fn cached(h: &[u8]) -> Option<u64> {
    (h[15] & 0x80 == 0).then(|| u64::from_le_bytes(h[8..16].try_into().expect("8 bytes")))
}

pub fn set_cache(h: &mut [u8], card: u64) {
    h[8..16].copy_from_slice(&card.to_le_bytes());
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// Ertl's estimator over register values, as Redis's `hllCount`.
pub fn count(regs: &[u8]) -> u64 {
    let m = REGISTERS as f64;
    let mut histo = [0u32; 64];
    for r in regs {
        histo[*r as usize] += 1;
    }
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// PFMERGE's write: raises `h`'s registers to `max`, going dense first if
/// any source was dense.
pub fn merge_into(h: &mut Vec<u8>, max: &[u8], use_dense: bool, sparse_max: usize) -> Result<(), HllError> {
    if use_dense {
        to_dense(h)?;
    }
    for (i, v) in max.iter().enumerate() {
        if *v != 0 {
            set_register(h, i, *v, sparse_max)?;
        }
    }
    invalidate(h);
    Ok(())
}

pub fn is_dense(h: &[u8]) -> bool {
    h[4] == DENSE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_match_redis() {
        // PFADD h1 a b c on redis-server 7.0.
        let mut h = new_sparse();
        for e in [&b"a"[..], b"b", b"c"] {
            assert!(add(&mut h, e, SPARSE_MAX_BYTES).unwrap());
        }
        let redis = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80`\xf3\x80P\xb1\x84K\xfb\x80BZ";
        assert_eq!(h, redis.to_vec());
        assert_eq!(count(&registers(&h).unwrap()), 3);
        assert_eq!(new_sparse(), b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff".to_vec());
    }

    #[test]
    fn promotes_to_dense_and_estimates_within_bounds() {
        let mut h = new_sparse();
        for i in 0..2000 {
            add(&mut h, format!("e{i}").as_bytes(), SPARSE_MAX_BYTES).unwrap();
        }
        assert!(is_dense(&h));
        assert_eq!(h.len(), DENSE_SIZE);
        assert_eq!(count(&registers(&h).unwrap()), 2000);
        for i in 2000..100_000 {
            add(&mut h, format!("e{i}").as_bytes(), SPARSE_MAX_BYTES).unwrap();
        }
        let est = count(&registers(&h).unwrap()) as f64;
        assert!((est - 100_000.0).abs() / 100_000.0 < 0.02, "{est}");
    }
}

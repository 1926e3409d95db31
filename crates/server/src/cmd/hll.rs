//! PFADD, PFCOUNT and PFMERGE over HyperLogLog strings in Redis's byte
//! format (`larder_store::types::hll`). PFCOUNT on one key stores the
//! cardinality in the header cache as Redis does; that cache is derived
//! data, so PFCOUNT emits no effect (a replica recomputes it on demand).

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, Args, CmdResult, Ctx};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::types::hll::{self, HllError};
use larder_store::{StrValue, Ttl, Tx, Value};

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("pfadd", -2, WRITE | DENYOOM | FAST, KeySpec::single(1), pfadd).doc(
        "hyperloglog",
        "2.8.9",
        "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.",
    ),
    CommandSpec::new("pfcount", -2, READONLY | MAY_REPLICATE, KeySpec::range(1, -1, 1), pfcount).doc(
        "hyperloglog",
        "2.8.9",
        "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).",
    ),
    CommandSpec::new("pfmerge", -2, WRITE | DENYOOM, KeySpec::range(1, -1, 1), pfmerge).doc(
        "hyperloglog",
        "2.8.9",
        "Merges one or more HyperLogLog values into a single key.",
    ),
    CommandSpec::new("pfdebug", 3, WRITE | DENYOOM | ADMIN, KeySpec::single(2), pfdebug).doc(
        "hyperloglog",
        "2.8.9",
        "Internal commands for debugging HyperLogLog values.",
    ),
    CommandSpec::new("pfselftest", 1, ADMIN, KeySpec::NONE, pfselftest).doc(
        "hyperloglog",
        "2.8.9",
        "An internal command for testing HyperLogLog values.",
    ),
];

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key
fn pfdebug(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (sub, key) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    let mut h = read(&mut tx, key)?.ok_or_else(|| CmdError::Err("The specified key does not exist".into()))?.to_vec();
    let typed = String::from_utf8_lossy(sub);
    let sub = typed.to_ascii_lowercase();
    match sub.as_str() {
        "getreg" | "todense" => {
            // Both leave the value dense, as in Redis (and that is a write).
            let converted = !hll::is_dense(&h);
            if converted {
                hll::to_dense(&mut h).map_err(err)?;
                store(&mut tx, key, h.clone());
                let s = Bytes::from(h.clone());
                tx.emit(&[b"SET", key, &s, b"KEEPTTL"]);
            }
            if sub == "todense" {
                return Ok(Frame::Integer(converted as i64));
            }
            Ok(Frame::Array(hll::registers(&h).map_err(err)?.into_iter().map(|r| Frame::Integer(r as i64)).collect()))
        }
        "decode" if hll::is_dense(&h) => Err(CmdError::Err("HLL encoding is not sparse".into())),
        "decode" => Ok(Frame::Bulk(Bytes::from(hll::decode_sparse(&h).map_err(err)?))),
        "encoding" => Ok(Frame::simple(if hll::is_dense(&h) { "dense" } else { "sparse" })),
        _ => Err(CmdError::Err(format!("Unknown PFDEBUG subcommand '{typed}'"))),
    }
}

/// PFSELFTEST: Redis's self test, on this implementation. First the
/// 6-bit register packing of the dense form, then estimates of the same
/// elements added to a sparse and a dense HLL: they must agree and stay
/// within 5 standard errors (1.04/sqrt(16384) each) of the truth.
fn pfselftest(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    use rand::Rng;
    let fail = |what: String| Err(CmdError::Err(format!("TESTFAILED {what}")));
    let mut rng = rand::rng();
    let mut dense = hll::new_sparse();
    hll::to_dense(&mut dense).map_err(err)?;
    for _ in 0..1000 {
        let want: Vec<u8> = (0..hll::REGISTERS).map(|_| rng.random_range(0..64)).collect();
        for (i, v) in want.iter().enumerate() {
            hll::set_dense_register(&mut dense, i, *v);
        }
        if let Some(i) = (0..hll::REGISTERS).find(|&i| hll::dense_register(&dense, i) != want[i]) {
            return fail(format!("Register {i} should be {} but is {}", want[i], hll::dense_register(&dense, i)));
        }
    }
    let (mut sparse, mut dense) = (hll::new_sparse(), hll::new_sparse());
    hll::to_dense(&mut dense).map_err(err)?;
    let relerr = 1.04 / (hll::REGISTERS as f64).sqrt();
    let mut checkpoint = 1u64;
    let seed: u64 = rng.random();
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        hll::add(&mut sparse, &ele, hll::SPARSE_MAX_BYTES).map_err(err)?;
        hll::add(&mut dense, &ele, hll::SPARSE_MAX_BYTES).map_err(err)?;
        if j != checkpoint {
            continue;
        }
        let a = hll::count(&hll::registers(&sparse).map_err(err)?);
        let b = hll::count(&hll::registers(&dense).map_err(err)?);
        if a != b {
            return fail(format!("Sparse and dense estimates differ at {j}: {a} vs {b}"));
        }
        // Small cardinalities are estimated far better than the bound.
        let max_err = if j < 10 { 1.0 } else { (relerr * 5.0 * j as f64).ceil() };
        if (b as f64 - j as f64).abs() > max_err {
            return fail(format!("Too big error. card:{j} abserr:{}", (b as f64 - j as f64).abs()));
        }
        checkpoint *= 10;
    }
    Ok(Frame::ok())
}

fn err(e: HllError) -> CmdError {
    match e {
        HllError::NotHll => CmdError::Raw("WRONGTYPE Key is not a valid HyperLogLog string value.".into()),
        HllError::Corrupt => CmdError::Raw("INVALIDOBJ Corrupted HLL object detected".into()),
    }
}

/// The HLL bytes at `key` (None if missing), checked.
fn read(tx: &mut Tx<'_>, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
    let Some(e) = tx.get(key) else { return Ok(None) };
    let b = e.str_bytes().ok_or(CmdError::WrongType)?;
    hll::validate(&b).map_err(err)?;
    Ok(Some(b))
}

fn store(tx: &mut Tx<'_>, key: &[u8], h: Vec<u8>) {
    tx.set(key, Value::Str(StrValue::raw(h)), Ttl::Keep);
}

/// PFADD key [element ...]
fn pfadd(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let sparse_max = ctx.client.limits.hll_sparse_max_bytes;
    let mut tx = ctx.lock(key);
    let (mut h, mut updated) = match read(&mut tx, key)? {
        Some(b) => (b.to_vec(), false),
        None => (hll::new_sparse(), true),
    };
    for e in args.rest() {
        updated |= hll::add(&mut h, e, sparse_max).map_err(err)?;
    }
    if updated {
        hll::invalidate_cache(&mut h);
        store(&mut tx, key, h);
        tx.emit(&args.all());
        tx.notify(class::STRING, "pfadd", key);
    }
    Ok(Frame::Integer(updated as i64))
}

/// PFCOUNT key [key ...]
fn pfcount(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let keys = args.rest();
    if keys.len() == 1 {
        let key = keys[0];
        let mut tx = ctx.lock(key);
        let Some(b) = read(&mut tx, key)? else { return Ok(Frame::Integer(0)) };
        if let Some(c) = hll::cached(&b) {
            return Ok(Frame::Integer(c as i64));
        }
        let c = hll::count(&hll::registers(&b).map_err(err)?);
        let mut h = b.to_vec();
        hll::set_cache(&mut h, c);
        store(&mut tx, key, h);
        return Ok(Frame::Integer(c as i64));
    }
    let mut tx = ctx.lock_keys(keys.iter().copied());
    let mut max = vec![0u8; hll::REGISTERS];
    for k in &keys {
        if let Some(b) = read(&mut tx, k)? {
            for (m, r) in max.iter_mut().zip(hll::registers(&b).map_err(err)?) {
                *m = (*m).max(r);
            }
        }
    }
    Ok(Frame::Integer(hll::count(&max) as i64))
}

/// PFMERGE destkey [sourcekey ...]
fn pfmerge(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let keys = args.rest();
    let dst = keys[0];
    let mut tx = ctx.lock_keys(keys.iter().copied());
    let mut max = vec![0u8; hll::REGISTERS];
    let mut use_dense = false;
    for k in &keys {
        if let Some(b) = read(&mut tx, k)? {
            use_dense |= hll::is_dense(&b);
            for (m, r) in max.iter_mut().zip(hll::registers(&b).map_err(err)?) {
                *m = (*m).max(r);
            }
        }
    }
    let mut h = read(&mut tx, dst)?.map_or_else(hll::new_sparse, |b| b.to_vec());
    hll::merge_into(&mut h, &max, use_dense, ctx.client.limits.hll_sparse_max_bytes).map_err(err)?;
    store(&mut tx, dst, h.clone());
    // The merged bytes replay exactly, whatever the sources were.
    tx.emit(&[b"SET", dst, &h, b"KEEPTTL"]);
    tx.notify(class::STRING, "pfadd", dst);
    Ok(Frame::ok())
}

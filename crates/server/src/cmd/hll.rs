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
    CommandSpec::new("pfcount", -2, READONLY, KeySpec::range(1, -1, 1), pfcount).doc(
        "hyperloglog",
        "2.8.9",
        "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).",
    ),
    CommandSpec::new("pfmerge", -2, WRITE | DENYOOM, KeySpec::range(1, -1, 1), pfmerge).doc(
        "hyperloglog",
        "2.8.9",
        "Merges one or more HyperLogLog values into a single key.",
    ),
];

fn err(e: HllError) -> CmdError {
    match e {
        HllError::NotHll => CmdError::Raw("WRONGTYPE Key is not a valid HyperLogLog string value.".into()),
        HllError::Corrupt => CmdError::Raw("INVALIDOBJ Corrupted HLL object detected".into()),
    }
}

/// The HLL bytes at `key` (None if missing), checked.
fn read(tx: &mut Tx<'_>, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
    let Some(e) = tx.get(key) else { return Ok(None) };
    let b = e.value.as_str().ok_or(CmdError::WrongType)?.to_bytes();
    hll::validate(&b).map_err(err)?;
    Ok(Some(b))
}

fn store(tx: &mut Tx<'_>, key: &[u8], h: Vec<u8>) {
    tx.set(key, Value::Str(StrValue::Raw(Bytes::from(h))), Ttl::Keep);
}

/// PFADD key [element ...]
fn pfadd(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let (mut h, mut updated) = match read(&mut tx, key)? {
        Some(b) => (b.to_vec(), false),
        None => (hll::new_sparse(), true),
    };
    for e in args.rest() {
        updated |= hll::add(&mut h, e).map_err(err)?;
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
    hll::merge_into(&mut h, &max, use_dense).map_err(err)?;
    store(&mut tx, dst, h.clone());
    // The merged bytes replay exactly, whatever the sources were.
    tx.emit(&[b"SET", dst, &h, b"KEEPTTL"]);
    tx.notify(class::STRING, "pfadd", dst);
    Ok(Frame::ok())
}

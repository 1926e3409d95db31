//! Hash commands. The data structure (listpack or hashtable, switching at
//! hash-max-listpack-*) lives in `larder_store::Hash`; this module parses,
//! replies in RESP2/RESP3 shapes, and emits each write as its effect
//! (HINCRBYFLOAT becomes HSET with the result, as Redis propagates it).

use super::string::float_add;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{drop_if_empty, get_as, get_or_create, parse_f64, parse_i64, Args, CmdResult, Ctx, ScanOpts};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::{Hash, Value};
use rand::Rng;

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, WRITE | DENYOOM | FAST, KeySpec::single(1), hset).doc("hash", "2.0.0", "Creates or modifies the value of a field in a hash."),
    CommandSpec::new("hsetnx", 4, WRITE | DENYOOM | FAST, KeySpec::single(1), hsetnx).doc("hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist."),
    CommandSpec::new("hget", 3, READONLY | FAST, KeySpec::single(1), hget).doc("hash", "2.0.0", "Returns the value of a field in a hash."),
    CommandSpec::new("hmset", -4, WRITE | DENYOOM | FAST, KeySpec::single(1), hset).doc("hash", "2.0.0", "Sets the values of multiple fields."),
    CommandSpec::new("hmget", -3, READONLY | FAST, KeySpec::single(1), hmget).doc("hash", "2.0.0", "Returns the values of all fields in a hash."),
    CommandSpec::new("hdel", -3, WRITE | FAST, KeySpec::single(1), hdel).doc("hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain."),
    CommandSpec::new("hlen", 2, READONLY | FAST, KeySpec::single(1), hlen).doc("hash", "2.0.0", "Returns the number of fields in a hash."),
    CommandSpec::new("hstrlen", 3, READONLY | FAST, KeySpec::single(1), hstrlen).doc("hash", "3.2.0", "Returns the length of the value of a field."),
    CommandSpec::new("hincrby", 4, WRITE | DENYOOM | FAST, KeySpec::single(1), hincrby).doc("hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist."),
    CommandSpec::new("hincrbyfloat", 4, WRITE | DENYOOM | FAST, KeySpec::single(1), hincrbyfloat).doc("hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist."),
    CommandSpec::new("hkeys", 2, READONLY, KeySpec::single(1), hkeys).doc("hash", "2.0.0", "Returns all fields in a hash."),
    CommandSpec::new("hvals", 2, READONLY, KeySpec::single(1), hvals).doc("hash", "2.0.0", "Returns all values in a hash."),
    CommandSpec::new("hgetall", 2, READONLY, KeySpec::single(1), hgetall).doc("hash", "2.0.0", "Returns all fields and values in a hash."),
    CommandSpec::new("hexists", 3, READONLY | FAST, KeySpec::single(1), hexists).doc("hash", "2.0.0", "Determines whether a field exists in a hash."),
    CommandSpec::new("hrandfield", -2, READONLY, KeySpec::single(1), hrandfield).doc("hash", "6.2.0", "Returns one or more random fields from a hash."),
    CommandSpec::new("hscan", -3, READONLY, KeySpec::single(1), hscan).doc("hash", "2.8.0", "Iterates over fields and values of a hash."),
];

fn new_hash() -> Value {
    Value::Hash(Box::default())
}

/// The hash at `key` for reading; None if missing.
fn read<'t>(tx: &'t mut larder_store::Tx<'_>, key: &[u8]) -> Result<Option<&'t Hash>, CmdError> {
    Ok(get_as(tx, key, Value::as_hash_mut)?.map(|h| &*h))
}

/// HSET / HMSET key field value [field value ...]
fn hset(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(0)).to_lowercase();
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(name));
    }
    let key = args.next_arg()?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let h = get_or_create(&mut tx, key, Value::as_hash_mut, new_hash)?;
    let mut added = 0;
    while let (Some(f), Some(v)) = (args.next(), args.next()) {
        added += h.insert(Bytes::copy_from_slice(f), Bytes::copy_from_slice(v), &lim) as i64;
    }
    tx.emit(&args.all());
    Ok(if name == "hmset" { Frame::ok() } else { Frame::Integer(added) })
}

/// HSETNX key field value
fn hsetnx(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field, value) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    if read(&mut tx, key)?.is_some_and(|h| h.contains(field)) {
        return Ok(Frame::Integer(0));
    }
    let h = get_or_create(&mut tx, key, Value::as_hash_mut, new_hash)?;
    h.insert(Bytes::copy_from_slice(field), Bytes::copy_from_slice(value), &lim);
    tx.emit(&[b"HSET", key, field, value]);
    Ok(Frame::Integer(1))
}

/// HGET key field
fn hget(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    let v = read(&mut tx, key)?.and_then(|h| h.get(field).cloned());
    Ok(v.map_or(Frame::Null, Frame::Bulk))
}

/// HMGET key field [field ...]
fn hmget(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let h = read(&mut tx, key)?;
    let out = args.rest().into_iter().map(|f| h.and_then(|h| h.get(f).cloned()).map_or(Frame::Null, Frame::Bulk));
    Ok(Frame::Array(out.collect()))
}

/// HDEL key field [field ...]
fn hdel(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let Some(h) = get_as(&mut tx, key, Value::as_hash_mut)? else { return Ok(Frame::Integer(0)) };
    let removed = args.rest().into_iter().filter(|f| h.remove(f).is_some()).count();
    let empty = h.is_empty();
    if removed > 0 {
        tx.emit(&args.all());
    }
    drop_if_empty(&mut tx, key, empty);
    Ok(Frame::Integer(removed as i64))
}

/// HLEN key
fn hlen(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    Ok(Frame::Integer(read(&mut tx, key)?.map_or(0, Hash::len) as i64))
}

/// HSTRLEN key field
fn hstrlen(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    let n = read(&mut tx, key)?.and_then(|h| h.get(field)).map_or(0, Bytes::len);
    Ok(Frame::Integer(n as i64))
}

/// HINCRBY key field increment
fn hincrby(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field) = (args.next_arg()?, args.next_arg()?);
    let delta = parse_i64(args.next_arg()?)?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let h = get_or_create(&mut tx, key, Value::as_hash_mut, new_hash)?;
    let current = match h.get(field) {
        None => 0,
        Some(v) => larder_store::value::parse_canonical_i64(v)
            .ok_or_else(|| CmdError::Err("hash value is not an integer".into()))?,
    };
    let next = current.checked_add(delta).ok_or(CmdError::Overflow)?;
    let text = Bytes::copy_from_slice(itoa::Buffer::new().format(next).as_bytes());
    h.insert(Bytes::copy_from_slice(field), text.clone(), &lim);
    tx.emit(&[b"HSET", key, field, &text]);
    Ok(Frame::Integer(next))
}

/// HINCRBYFLOAT key field increment
fn hincrbyfloat(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field, delta_text) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let delta = parse_f64(delta_text)?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let h = get_or_create(&mut tx, key, Value::as_hash_mut, new_hash)?;
    let current_text = h.get(field).cloned().unwrap_or(Bytes::from_static(b"0"));
    let current = parse_f64(&current_text).map_err(|_| CmdError::Err("hash value is not a float".into()))?;
    let text = Bytes::from(float_add(&current_text, current, delta_text, delta)?);
    h.insert(Bytes::copy_from_slice(field), text.clone(), &lim);
    tx.emit(&[b"HSET", key, field, &text]);
    Ok(Frame::Bulk(text))
}

/// HKEYS, HVALS and HGETALL share one walk.
fn dump(ctx: &mut Ctx<'_>, mut args: Args<'_>, fields: bool, values: bool) -> CmdResult {
    let key = args.next_arg()?;
    let resp3 = ctx.resp3();
    let mut tx = ctx.lock(key);
    let Some(h) = read(&mut tx, key)? else {
        return Ok(if fields && values && resp3 { Frame::Map(vec![]) } else { Frame::Array(vec![]) });
    };
    Ok(match (fields, values) {
        (true, true) => Frame::Map(h.iter().map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone()))).collect()),
        (true, false) => Frame::Array(h.iter().map(|(f, _)| Frame::Bulk(f.clone())).collect()),
        _ => Frame::Array(h.iter().map(|(_, v)| Frame::Bulk(v.clone())).collect()),
    })
}

fn hkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    dump(ctx, args, true, false)
}

fn hvals(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    dump(ctx, args, false, true)
}

fn hgetall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    dump(ctx, args, true, true)
}

/// HEXISTS key field
fn hexists(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    Ok(Frame::Integer(read(&mut tx, key)?.is_some_and(|h| h.contains(field)) as i64))
}

/// Parses the count of HRANDFIELD / SRANDMEMBER / ZRANDMEMBER: a signed
/// count whose negative form allows repeats.
pub(super) fn rand_count(arg: &[u8]) -> Result<(usize, bool), CmdError> {
    let l = parse_i64(arg)?;
    if l == i64::MIN {
        return Err(CmdError::Err(format!("value is out of range, value must between {} and {}", -i64::MAX, i64::MAX)));
    }
    Ok((l.unsigned_abs() as usize, l >= 0))
}

/// Indexes for a random pick of `count` from `len`: distinct (in the
/// collection's order when all are taken) or, if `!unique`, with repeats.
pub(super) fn rand_indexes(len: usize, count: usize, unique: bool) -> Vec<usize> {
    let mut rng = rand::rng();
    if !unique {
        return (0..count).map(|_| rng.random_range(0..len)).collect();
    }
    if count >= len {
        return (0..len).collect();
    }
    rand::seq::index::sample(&mut rng, len, count).into_vec()
}

/// HRANDFIELD key [count [WITHVALUES]]
fn hrandfield(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let count = args.next().map(rand_count).transpose()?;
    let withvalues = match args.next() {
        None => false,
        Some(a) if super::eq_ic(a, "withvalues") && args.peek().is_none() => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    let resp3 = ctx.resp3();
    let mut tx = ctx.lock(key);
    let h = read(&mut tx, key)?;
    let Some((count, unique)) = count else {
        let Some(h) = h else { return Ok(Frame::Null) };
        let i = rand::rng().random_range(0..h.len());
        return Ok(Frame::Bulk(h.get_index(i).expect("index below len").0.clone()));
    };
    let Some(h) = h else { return Ok(Frame::Array(vec![])) };
    let mut out = Vec::new();
    for i in rand_indexes(h.len(), count, unique) {
        let (f, v) = h.get_index(i).expect("index below len");
        match (withvalues, resp3) {
            (false, _) => out.push(Frame::Bulk(f.clone())),
            (true, false) => out.extend([Frame::Bulk(f.clone()), Frame::Bulk(v.clone())]),
            (true, true) => out.push(Frame::Array(vec![Frame::Bulk(f.clone()), Frame::Bulk(v.clone())])),
        }
    }
    Ok(Frame::Array(out))
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
fn hscan(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let opts = ScanOpts::parse(&mut args, false)?;
    let mut tx = ctx.lock(key);
    let Some(h) = read(&mut tx, key)? else { return Ok(ScanOpts::reply(0, vec![])) };
    let mut found = Vec::new();
    let next = h.scan(opts.cursor, opts.count, |f, v| {
        if opts.matches(f) {
            found.extend([Frame::Bulk(f.clone()), Frame::Bulk(v.clone())]);
        }
    });
    Ok(ScanOpts::reply(next, found))
}

//! Hash commands. The data structure (listpack or hashtable, switching at
//! hash-max-listpack-*) lives in `larder_store::Hash`; this module parses,
//! replies in RESP2/RESP3 shapes, and emits each write as its effect
//! (HINCRBYFLOAT becomes HSET with the result, as Redis propagates it).
//!
//! Per-field TTLs follow Redis 7.4 (HEXPIRE, HTTL, HPERSIST, …). A field
//! past its deadline is removed, with an HDEL effect, the next time any
//! hash command touches the key, or by the active expiry cycle, which
//! keeps an index of hashes by their next field deadline.

use super::string::float_add;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, drop_if_empty, get_as, get_or_create, parse_f64, parse_i64, Args, CmdResult, Ctx, ScanOpts};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::{Hash, Tx, Value};
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
    CommandSpec::new("hexpire", -6, WRITE | DENYOOM | FAST, KeySpec::single(1), hexpire).doc("hash", "7.4.0", "Set expiry for hash field using relative time to expire (seconds)"),
    CommandSpec::new("hpexpire", -6, WRITE | DENYOOM | FAST, KeySpec::single(1), hpexpire).doc("hash", "7.4.0", "Set expiry for hash field using relative time to expire (milliseconds)"),
    CommandSpec::new("hexpireat", -6, WRITE | DENYOOM | FAST, KeySpec::single(1), hexpireat).doc("hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (seconds)"),
    CommandSpec::new("hpexpireat", -6, WRITE | DENYOOM | FAST, KeySpec::single(1), hpexpireat).doc("hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (milliseconds)"),
    CommandSpec::new("httl", -5, READONLY | FAST, KeySpec::single(1), httl).doc("hash", "7.4.0", "Returns the TTL in seconds of a hash field."),
    CommandSpec::new("hpttl", -5, READONLY | FAST, KeySpec::single(1), hpttl).doc("hash", "7.4.0", "Returns the TTL in milliseconds of a hash field."),
    CommandSpec::new("hexpiretime", -5, READONLY | FAST, KeySpec::single(1), hexpiretime).doc("hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in seconds."),
    CommandSpec::new("hpexpiretime", -5, READONLY | FAST, KeySpec::single(1), hpexpiretime).doc("hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in msec."),
    CommandSpec::new("hpersist", -5, WRITE | FAST, KeySpec::single(1), hpersist).doc("hash", "7.4.0", "Removes the expiration time for each specified field"),
];

fn new_hash() -> Value {
    Value::Hash(Hash::default())
}

/// The hash at `key`, after removing fields whose TTL has passed (each
/// emitted as HDEL, and the key deleted if none remain); None if missing.
/// Where expiry is held (a replica, whose fields the primary's HDELs
/// remove, a replayed log, a pause) nothing is removed.
fn live<'t>(tx: &'t mut Tx<'_>, key: &[u8]) -> Result<Option<&'t mut Hash>, CmdError> {
    if !tx.reclaims_expired() {
        return get_as(tx, key, Value::as_hash_mut);
    }
    let now = tx.now();
    let (expired, empty) = match get_as(tx, key, Value::as_hash_mut)? {
        None => return Ok(None),
        Some(h) => (h.purge_expired(now), h.is_empty()),
    };
    for f in &expired {
        tx.emit(&[b"HDEL", key, f]);
    }
    if !expired.is_empty() {
        tx.notify(class::HASH, "hexpired", key);
    }
    if empty {
        tx.remove(key);
        tx.notify(class::GENERIC, "del", key);
        return Ok(None);
    }
    get_as(tx, key, Value::as_hash_mut)
}

/// The hash at `key` for reading; None if missing. A replica's readers
/// get it without the fields past their TTL, which stay stored until the
/// primary's HDEL (as a key past its deadline does): a copy, made only
/// while such a field waits.
fn read<'t>(tx: &'t mut Tx<'_>, key: &[u8]) -> Result<Option<std::borrow::Cow<'t, Hash>>, CmdError> {
    let (hide, now) = (tx.hides_expired(), tx.now());
    Ok(live(tx, key)?.and_then(|h| {
        if !(hide && h.min_field_ttl().is_some_and(|at| at <= now)) {
            return Some(std::borrow::Cow::Borrowed(&*h));
        }
        let mut view = h.clone();
        view.purge_expired(now);
        (!view.is_empty()).then_some(std::borrow::Cow::Owned(view))
    }))
}

/// As `live`, creating an empty hash if the key is missing.
fn live_or_create<'t>(tx: &'t mut Tx<'_>, key: &[u8]) -> Result<&'t mut Hash, CmdError> {
    live(tx, key)?;
    get_or_create(tx, key, Value::as_hash_mut, new_hash)
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
    let h = live_or_create(&mut tx, key)?;
    let mut added = 0;
    while let (Some(f), Some(v)) = (args.next(), args.next()) {
        added += h.insert(f, v, &lim) as i64;
    }
    tx.emit(&args.all());
    tx.notify(class::HASH, "hset", key);
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
    let h = live_or_create(&mut tx, key)?;
    h.insert(field, value, &lim);
    tx.emit(&[b"HSET", key, field, value]);
    tx.notify(class::HASH, "hset", key);
    Ok(Frame::Integer(1))
}

/// HGET key field
fn hget(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    let v = read(&mut tx, key)?.and_then(|h| h.get(field).map(Bytes::copy_from_slice));
    Ok(v.map_or(Frame::Null, Frame::Bulk))
}

/// HMGET key field [field ...]
fn hmget(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let h = read(&mut tx, key)?;
    let out = args.rest().into_iter().map(|f| h.as_ref().and_then(|h| h.get(f)).map_or(Frame::Null, Frame::bulk));
    Ok(Frame::Array(out.collect()))
}

/// HDEL key field [field ...]
fn hdel(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let Some(h) = live(&mut tx, key)? else { return Ok(Frame::Integer(0)) };
    let removed = args.rest().into_iter().filter(|f| h.remove(f)).count();
    let empty = h.is_empty();
    if removed > 0 {
        tx.emit(&args.all());
        tx.notify(class::HASH, "hdel", key);
    }
    drop_if_empty(&mut tx, key, empty);
    Ok(Frame::Integer(removed as i64))
}

/// HLEN key
fn hlen(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    Ok(Frame::Integer(read(&mut tx, key)?.map_or(0, |h| h.len()) as i64))
}

/// HSTRLEN key field
fn hstrlen(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    let n = read(&mut tx, key)?.and_then(|h| h.get(field).map(<[u8]>::len)).unwrap_or(0);
    Ok(Frame::Integer(n as i64))
}

/// HINCRBY key field increment
fn hincrby(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field) = (args.next_arg()?, args.next_arg()?);
    let delta = parse_i64(args.next_arg()?)?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let h = live_or_create(&mut tx, key)?;
    let current = match h.get(field) {
        None => 0,
        Some(v) => larder_store::value::parse_canonical_i64(v)
            .ok_or_else(|| CmdError::Err("hash value is not an integer".into()))?,
    };
    let next = current.checked_add(delta).ok_or(CmdError::Overflow)?;
    let text = Bytes::copy_from_slice(itoa::Buffer::new().format(next).as_bytes());
    h.insert_keep_ttl(field, &text, &lim);
    tx.emit(&[b"HSET", key, field, &text]);
    tx.notify(class::HASH, "hincrby", key);
    Ok(Frame::Integer(next))
}

/// HINCRBYFLOAT key field increment
fn hincrbyfloat(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, field, delta_text) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let delta = parse_f64(delta_text)?;
    if !delta.is_finite() {
        return Err(CmdError::Err("value is NaN or Infinity".into()));
    }
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let h = live_or_create(&mut tx, key)?;
    let current_text = Bytes::copy_from_slice(h.get(field).unwrap_or(b"0"));
    let current = parse_f64(&current_text).map_err(|_| CmdError::Err("hash value is not a float".into()))?;
    let text = Bytes::from(float_add(&current_text, current, delta_text, delta)?);
    h.insert_keep_ttl(field, &text, &lim);
    tx.emit(&[b"HSET", key, field, &text]);
    tx.notify(class::HASH, "hincrbyfloat", key);
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
        (true, true) => Frame::Map(h.iter().map(|(f, v)| (Frame::bulk(f), Frame::bulk(v))).collect()),
        (true, false) => Frame::Array(h.iter().map(|(f, _)| Frame::bulk(f)).collect()),
        _ => Frame::Array(h.iter().map(|(_, v)| Frame::bulk(v)).collect()),
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
    // Redis streams a repeated pick of any size into the output buffer;
    // Larder builds the reply first, so a count no reply could hold is
    // refused rather than attempted (it would only exhaust memory).
    if l < -MAX_REPEATED_PICK {
        return Err(CmdError::Err("value is out of range".into()));
    }
    Ok((l.unsigned_abs() as usize, l >= 0))
}

/// The largest repeated (negative-count) random pick a reply is built for.
const MAX_REPEATED_PICK: i64 = 1 << 28;

/// Redis's bound on a count whose reply pairs each pick with its value or
/// score (the reply length must not overflow).
pub(super) fn check_paired_count(count: Option<(usize, bool)>) -> Result<(), CmdError> {
    match count {
        Some((n, _)) if n as u64 > i64::MAX as u64 / 2 => Err(CmdError::Err("value is out of range".into())),
        _ => Ok(()),
    }
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
    if withvalues {
        check_paired_count(count)?;
    }
    let resp3 = ctx.resp3();
    let mut tx = ctx.lock(key);
    let h = read(&mut tx, key)?;
    let Some((count, unique)) = count else {
        let Some(h) = h else { return Ok(Frame::Null) };
        let i = rand::rng().random_range(0..h.len());
        return Ok(Frame::bulk(h.get_index(i).expect("index below len").0));
    };
    let Some(h) = h else { return Ok(Frame::Array(vec![])) };
    let mut out = Vec::new();
    h.pick(rand_indexes(h.len(), count, unique).into_iter(), |f, v| match (withvalues, resp3) {
        (false, _) => out.push(Frame::bulk(f)),
        (true, false) => out.extend([Frame::bulk(f), Frame::bulk(v)]),
        (true, true) => out.push(Frame::Array(vec![Frame::bulk(f), Frame::bulk(v)])),
    });
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
            found.extend([Frame::bulk(f), Frame::bulk(v)]);
        }
    });
    Ok(ScanOpts::reply(next, found))
}

/// `FIELDS numfields field [field ...]`, the tail of the field-TTL commands.
fn parse_fields<'a>(args: &mut Args<'a>) -> Result<Vec<&'a [u8]>, CmdError> {
    if !args.next().is_some_and(|a| super::eq_ic(a, "fields")) {
        return Err(CmdError::Err("Mandatory argument FIELDS is missing or not at the right position".into()));
    }
    let n = args
        .next()
        .and_then(|a| parse_i64(a).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| CmdError::Err("Number of fields must be a positive integer".into()))?;
    if n as usize != args.remaining() {
        return Err(CmdError::Err("The `numfields` parameter must match the number of arguments".into()));
    }
    Ok(args.rest())
}

/// Largest field deadline Redis 7.4 accepts, in ms (2^46 - 1).
const MAX_FIELD_DEADLINE: i64 = (1 << 46) - 1;

/// HEXPIRE / HPEXPIRE / HEXPIREAT / HPEXPIREAT key time [NX|XX|GT|LT] FIELDS numfields field ...
fn field_expire(ctx: &mut Ctx<'_>, mut args: Args<'_>, unit_ms: i64, absolute: bool) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(0)).to_lowercase();
    let key = args.next_arg()?;
    let now = ctx.now;
    let mut tx = ctx.lock(key);
    read(&mut tx, key)?;
    let t = parse_i64(args.next_arg()?)?;
    if t < 0 {
        return Err(CmdError::Err("invalid expire time, must be >= 0".into()));
    }
    let bad_time = || CmdError::InvalidExpire(name.clone());
    let ms = t.checked_mul(unit_ms).filter(|ms| *ms <= MAX_FIELD_DEADLINE).ok_or_else(bad_time)?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now as i64).filter(|a| *a <= MAX_FIELD_DEADLINE).ok_or_else(bad_time)?
    };
    let cond = match args.peek() {
        Some(a) if super::eq_ic(a, "nx") || super::eq_ic(a, "xx") || super::eq_ic(a, "gt") || super::eq_ic(a, "lt") => {
            args.next();
            Some(a.to_ascii_lowercase())
        }
        _ => None,
    };
    let fields = parse_fields(&mut args)?;
    // A deadline already past deletes the field, except where expiry is
    // held (Redis's checkAlreadyExpired: a replica keeps what its primary
    // sends, and a replayed log what it wrote).
    let reclaims = tx.reclaims_expired();
    let Some(h) = live(&mut tx, key)? else {
        return Ok(Frame::Array(fields.iter().map(|_| Frame::Integer(-2)).collect()));
    };
    let (mut out, mut set, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
    for f in &fields {
        if !h.contains(f) {
            out.push(Frame::Integer(-2));
            continue;
        }
        let cur = h.field_ttl(f);
        let ok = match cond.as_deref() {
            Some(b"nx") => cur.is_none(),
            Some(b"xx") => cur.is_some(),
            Some(b"gt") => cur.is_some_and(|c| at as u64 > c),
            Some(b"lt") => cur.is_none_or(|c| (at as u64) < c),
            _ => true,
        };
        if !ok {
            out.push(Frame::Integer(0));
        } else if at as u64 <= now && reclaims {
            h.remove(f);
            deleted.push(*f);
            out.push(Frame::Integer(2));
        } else {
            h.set_field_ttl(f, at as u64);
            set.push(*f);
            out.push(Frame::Integer(1));
        }
    }
    let empty = h.is_empty();
    for f in &deleted {
        tx.emit(&[b"HDEL", key, f]);
    }
    if !deleted.is_empty() {
        tx.notify(class::HASH, "hdel", key);
    }
    if !set.is_empty() {
        tx.notify(class::HASH, "hexpire", key);
        let (at, n) = (at.to_string(), set.len().to_string());
        let mut effect: Vec<&[u8]> = vec![b"HPEXPIREAT", key, at.as_bytes(), b"FIELDS", n.as_bytes()];
        effect.extend(&set);
        tx.emit(&effect);
    }
    if !set.is_empty() {
        // So the active cycle reclaims the field even if nobody reads it.
        tx.note_field_deadline(key, at as u64);
    }
    drop_if_empty(&mut tx, key, empty);
    Ok(Frame::Array(out))
}

fn hexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    field_expire(ctx, args, 1000, false)
}

fn hpexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    field_expire(ctx, args, 1, false)
}

fn hexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    field_expire(ctx, args, 1000, true)
}

fn hpexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    field_expire(ctx, args, 1, true)
}

/// HTTL / HPTTL / HEXPIRETIME / HPEXPIRETIME key FIELDS numfields field ...
fn field_ttl(ctx: &mut Ctx<'_>, mut args: Args<'_>, unit_ms: u64, absolute: bool) -> CmdResult {
    let key = args.next_arg()?;
    let now = ctx.now;
    let mut tx = ctx.lock(key);
    read(&mut tx, key)?;
    let fields = parse_fields(&mut args)?;
    let h = read(&mut tx, key)?;
    let out = fields.iter().map(|f| match h.as_deref() {
        Some(h) if h.contains(f) => match h.field_ttl(f) {
            None => Frame::Integer(-1),
            Some(at) if absolute => Frame::Integer((at / unit_ms) as i64),
            // Round to the nearest unit, as Redis's TTL does.
            Some(at) => Frame::Integer(((at.saturating_sub(now) + unit_ms / 2) / unit_ms) as i64),
        },
        _ => Frame::Integer(-2),
    });
    Ok(Frame::Array(out.collect()))
}

fn httl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    field_ttl(ctx, args, 1000, false)
}

fn hpttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    field_ttl(ctx, args, 1, false)
}

fn hexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    field_ttl(ctx, args, 1000, true)
}

fn hpexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    field_ttl(ctx, args, 1, true)
}

/// HPERSIST key FIELDS numfields field ...
fn hpersist(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    read(&mut tx, key)?;
    let fields = parse_fields(&mut args)?;
    let Some(h) = live(&mut tx, key)? else {
        return Ok(Frame::Array(fields.iter().map(|_| Frame::Integer(-2)).collect()));
    };
    let mut changed = false;
    let out: Vec<Frame> = fields
        .iter()
        .map(|f| {
            if !h.contains(f) {
                Frame::Integer(-2)
            } else if h.persist_field(f) {
                changed = true;
                Frame::Integer(1)
            } else {
                Frame::Integer(-1)
            }
        })
        .collect();
    if changed {
        tx.emit(&args.all());
        tx.notify(class::HASH, "hpersist", key);
    }
    Ok(Frame::Array(out))
}

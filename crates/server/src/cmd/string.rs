//! String commands. Values keep Redis's encodings (int, embstr, raw), so
//! INCR needs no parsing and OBJECT ENCODING answers as Redis does.
//! Every write emits its deterministic effect (relative TTLs become PXAT,
//! INCRBYFLOAT becomes SET … KEEPTTL).

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, deadline_ms, eq_ic, expire_key_at, parse_f64, parse_i64, persist_key, Args, CmdResult, Ctx};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::{StrValue, Ttl, Tx, Value};

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, KeySpec::single(1), get).doc(
        "string",
        "1.0.0",
        "Returns the string value of a key.",
    ),
    CommandSpec::new("set", -3, WRITE | DENYOOM, KeySpec::single(1), set).doc(
        "string",
        "1.0.0",
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
    ),
    CommandSpec::new("setnx", 3, WRITE | DENYOOM | FAST, KeySpec::single(1), setnx).doc(
        "string",
        "1.0.0",
        "Set the string value of a key only when the key doesn't exist.",
    ),
    CommandSpec::new("setex", 4, WRITE | DENYOOM, KeySpec::single(1), setex).doc(
        "string",
        "2.0.0",
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
    ),
    CommandSpec::new("psetex", 4, WRITE | DENYOOM, KeySpec::single(1), psetex).doc(
        "string",
        "2.6.0",
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
    ),
    CommandSpec::new("getex", -2, WRITE | FAST, KeySpec::single(1), getex).doc(
        "string",
        "6.2.0",
        "Returns the string value of a key after setting its expiration time.",
    ),
    CommandSpec::new("getdel", 2, WRITE | FAST, KeySpec::single(1), getdel).doc(
        "string",
        "6.2.0",
        "Returns the string value of a key after deleting the key.",
    ),
    CommandSpec::new("getset", 3, WRITE | DENYOOM | FAST, KeySpec::single(1), getset).doc(
        "string",
        "1.0.0",
        "Returns the previous string value of a key after setting it to a new value.",
    ),
    CommandSpec::new("mget", -2, READONLY | FAST, KeySpec::range(1, -1, 1), mget).doc(
        "string",
        "1.0.0",
        "Atomically returns the string values of one or more keys.",
    ),
    CommandSpec::new("mset", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 2), mset).doc(
        "string",
        "1.0.1",
        "Atomically creates or modifies the string values of one or more keys.",
    ),
    CommandSpec::new("msetnx", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 2), msetnx).doc(
        "string",
        "1.0.1",
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
    ),
    CommandSpec::new("incr", 2, WRITE | DENYOOM | FAST, KeySpec::single(1), incr).doc(
        "string",
        "1.0.0",
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    CommandSpec::new("decr", 2, WRITE | DENYOOM | FAST, KeySpec::single(1), decr).doc(
        "string",
        "1.0.0",
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    CommandSpec::new("incrby", 3, WRITE | DENYOOM | FAST, KeySpec::single(1), incrby).doc(
        "string",
        "1.0.0",
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    CommandSpec::new("decrby", 3, WRITE | DENYOOM | FAST, KeySpec::single(1), decrby).doc(
        "string",
        "1.0.0",
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
    ),
    CommandSpec::new("incrbyfloat", 3, WRITE | DENYOOM | FAST, KeySpec::single(1), incrbyfloat).doc(
        "string",
        "2.6.0",
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    CommandSpec::new("append", 3, WRITE | DENYOOM | FAST, KeySpec::single(1), append).doc(
        "string",
        "2.0.0",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
    ),
    CommandSpec::new("strlen", 2, READONLY | FAST, KeySpec::single(1), strlen).doc(
        "string",
        "2.2.0",
        "Returns the length of a string value.",
    ),
    CommandSpec::new("getrange", 4, READONLY, KeySpec::single(1), getrange).doc(
        "string",
        "2.4.0",
        "Returns a substring of the string stored at a key.",
    ),
    CommandSpec::new("substr", 4, READONLY, KeySpec::single(1), getrange).doc(
        "string",
        "1.0.0",
        "Returns a substring from a string value.",
    ),
    CommandSpec::new("setrange", 4, WRITE | DENYOOM, KeySpec::single(1), setrange).doc(
        "string",
        "2.2.0",
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
    ),
    CommandSpec::new("lcs", -3, READONLY, KeySpec::range(1, 2, 1), lcs).doc(
        "string",
        "7.0.0",
        "Finds the longest common substring.",
    ),
];

/// The bytes of the string stored at `key`, or None; WRONGTYPE for other
/// types. One refcount bump for stored bytes; integers are formatted.
fn read_str(tx: &mut Tx<'_>, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
    match tx.get(key) {
        None => Ok(None),
        Some(e) => e.str_bytes().map(Some).ok_or(CmdError::WrongType),
    }
}

fn max_bulk(ctx: &Ctx<'_>) -> usize {
    ctx.shared.config.read().proto_max_bulk_len as usize
}

/// GET key
fn get(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let v = read_str(&mut ctx.lock(key), key)?;
    ctx.record_lookup(v.is_some());
    Ok(v.map(Frame::Bulk).unwrap_or(Frame::Null))
}

#[derive(Debug, Default, PartialEq)]
struct SetOpts {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    /// Absolute deadline in ms, already validated.
    expire_at: Option<u64>,
}

/// Turns a relative or absolute expire argument into an absolute deadline,
/// with Redis's overflow and sign checks.
fn deadline(raw: &[u8], unit_ms: i64, absolute: bool, now: u64, cmd: &str) -> Result<u64, CmdError> {
    let n = parse_i64(raw)?;
    match deadline_ms(n, unit_ms, absolute, now) {
        Some(at) if n > 0 => Ok(at as u64),
        _ => Err(CmdError::InvalidExpire(cmd.to_string())),
    }
}

/// The expiry options of SET and GETEX: name, ms per unit, absolute.
const EXPIRE_OPTIONS: [(&str, i64, bool); 4] =
    [("ex", 1000, false), ("px", 1, false), ("exat", 1000, true), ("pxat", 1, true)];

fn expire_option(a: &[u8]) -> Option<(i64, bool)> {
    EXPIRE_OPTIONS.iter().find(|(name, _, _)| eq_ic(a, name)).map(|&(_, unit, absolute)| (unit, absolute))
}

impl SetOpts {
    fn parse(args: &mut Args<'_>, now: u64, allow_get: bool) -> Result<SetOpts, CmdError> {
        let mut o = SetOpts::default();
        while let Some(a) = args.next() {
            if let Some((unit, abs)) = expire_option(a) {
                if o.expire_at.is_some() || o.keepttl {
                    return Err(CmdError::Syntax);
                }
                let raw = args.next_arg()?;
                o.expire_at = Some(deadline(raw, unit, abs, now, "set")?);
            } else if eq_ic(a, "nx") && !o.xx {
                o.nx = true;
            } else if eq_ic(a, "xx") && !o.nx {
                o.xx = true;
            } else if eq_ic(a, "get") && allow_get {
                o.get = true;
            } else if eq_ic(a, "keepttl") && o.expire_at.is_none() {
                o.keepttl = true;
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(o)
    }
}

/// The shared body of SET, SETNX, SETEX, PSETEX and GETSET. Returns the old
/// value when asked, and whether the write happened.
fn set_generic(ctx: &Ctx<'_>, key: &[u8], value: &[u8], o: &SetOpts) -> Result<(Option<Bytes>, bool), CmdError> {
    let mut tx = ctx.lock(key);
    // The GET forms read as GET does, keymiss included.
    tx.set_miss_events(o.get);
    let old = if o.get { read_str(&mut tx, key)? } else { None };
    tx.set_miss_events(false);
    let exists = if o.get { old.is_some() } else { tx.contains(key) };
    if (o.nx && exists) || (o.xx && !exists) {
        return Ok((old, false));
    }
    let ttl = match (o.expire_at, o.keepttl) {
        (Some(at), _) => Ttl::At(at),
        (None, true) => Ttl::Keep,
        (None, false) => Ttl::Clear,
    };
    ctx.set_str(&mut tx, key, value, ttl);
    match ttl {
        Ttl::At(at) => tx.emit(&[b"SET", key, value, b"PXAT", itoa::Buffer::new().format(at).as_bytes()]),
        Ttl::Keep => tx.emit(&[b"SET", key, value, b"KEEPTTL"]),
        Ttl::Clear => tx.emit(&[b"SET", key, value]),
    }
    tx.notify(class::STRING, "set", key);
    if let Ttl::At(_) = ttl {
        tx.notify(class::GENERIC, "expire", key);
    }
    Ok((old, true))
}

/// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds |
///   EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]
fn set(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let value = args.next_arg()?;
    let o = SetOpts::parse(&mut args, ctx.now, true)?;
    let (old, done) = set_generic(ctx, key, value, &o)?;
    Ok(if o.get {
        old.map(Frame::Bulk).unwrap_or(Frame::Null)
    } else if done {
        Frame::ok()
    } else {
        Frame::Null
    })
}

/// SETNX key value
fn setnx(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, value) = (args.next_arg()?, args.next_arg()?);
    let (_, done) = set_generic(ctx, key, value, &SetOpts { nx: true, ..Default::default() })?;
    Ok(Frame::Integer(done as i64))
}

fn setex_generic(ctx: &mut Ctx<'_>, mut args: Args<'_>, unit: i64, name: &str) -> CmdResult {
    let key = args.next_arg()?;
    let at = deadline(args.next_arg()?, unit, false, ctx.now, name)?;
    let value = args.next_arg()?;
    set_generic(ctx, key, value, &SetOpts { expire_at: Some(at), ..Default::default() })?;
    Ok(Frame::ok())
}

/// SETEX key seconds value
fn setex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    setex_generic(ctx, args, 1000, "setex")
}

/// PSETEX key milliseconds value
fn psetex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    setex_generic(ctx, args, 1, "psetex")
}

/// GETSET key value
fn getset(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, value) = (args.next_arg()?, args.next_arg()?);
    let (old, _) = set_generic(ctx, key, value, &SetOpts { get: true, ..Default::default() })?;
    Ok(old.map(Frame::Bulk).unwrap_or(Frame::Null))
}

/// GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
///   PXAT unix-time-milliseconds | PERSIST]
fn getex(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut change: Option<Option<u64>> = None;
    while let Some(a) = args.next() {
        if change.is_some() {
            return Err(CmdError::Syntax);
        }
        if let Some((unit, abs)) = expire_option(a) {
            change = Some(Some(deadline(args.next_arg()?, unit, abs, ctx.now, "getex")?));
        } else if eq_ic(a, "persist") {
            change = Some(None);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut tx = ctx.lock(key);
    tx.set_miss_events(true);
    let Some(v) = read_str(&mut tx, key)? else {
        ctx.record_lookup(false);
        return Ok(Frame::Null);
    };
    ctx.record_lookup(true);
    match change {
        Some(Some(at)) => expire_key_at(&mut tx, key, at as i64),
        Some(None) => {
            persist_key(&mut tx, key);
        }
        None => {}
    }
    Ok(Frame::Bulk(v))
}

/// GETDEL key
fn getdel(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    tx.set_miss_events(true);
    let v = read_str(&mut tx, key)?;
    ctx.record_lookup(v.is_some());
    if v.is_some() {
        tx.remove(key);
        tx.emit(&[b"DEL", key]);
        tx.notify(class::GENERIC, "del", key);
    }
    Ok(v.map(Frame::Bulk).unwrap_or(Frame::Null))
}

/// MGET key [key ...]
fn mget(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let keys = args.rest();
    let mut tx = ctx.lock_keys(keys.iter().copied());
    let out = keys
        .iter()
        .map(|k| {
            let v = tx.get(k).and_then(|e| e.str_bytes());
            ctx.record_lookup(v.is_some());
            v.map(Frame::Bulk).unwrap_or(Frame::Null)
        })
        .collect();
    Ok(Frame::Array(out))
}

fn mset_generic(ctx: &mut Ctx<'_>, mut args: Args<'_>, nx: bool) -> Result<bool, CmdError> {
    let pairs = args.rest();
    if !pairs.len().is_multiple_of(2) {
        let name = if nx { "msetnx" } else { "mset" };
        return Err(CmdError::WrongArity(name.into()));
    }
    let mut tx = ctx.lock_keys(pairs.iter().step_by(2).copied());
    if nx && pairs.iter().step_by(2).any(|k| tx.contains(k)) {
        return Ok(false);
    }
    for kv in pairs.chunks(2) {
        tx.set_str(kv[0], kv[1], Ttl::Clear);
        tx.notify(class::STRING, "set", kv[0]);
    }
    let mut effect: Vec<&[u8]> = Vec::with_capacity(pairs.len() + 1);
    effect.push(b"MSET");
    effect.extend(pairs.iter().copied());
    tx.emit(&effect);
    Ok(true)
}

/// MSET key value [key value ...]
fn mset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    mset_generic(ctx, args, false)?;
    Ok(Frame::ok())
}

/// MSETNX key value [key value ...]
fn msetnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    Ok(Frame::Integer(mset_generic(ctx, args, true)? as i64))
}

/// INCR, DECR, INCRBY and DECRBY; `command` is propagated as given (it
/// is deterministic), as Redis does.
fn incr_generic(ctx: &Ctx<'_>, key: &[u8], delta: i64, command: &[&[u8]]) -> CmdResult {
    let mut tx = ctx.lock(key);
    // One lookup: integers are updated in place, keeping the TTL.
    let next = match tx.get(key) {
        None => {
            tx.set(key, Value::Str(StrValue::Int(delta)), Ttl::Keep);
            delta
        }
        Some(e) => {
            let sv = e.value_mut().as_str_mut().ok_or(CmdError::WrongType)?;
            let current = match &*sv {
                StrValue::Int(i) => *i,
                other => larder_store::value::parse_canonical_i64(&other.to_bytes()).ok_or(CmdError::NotInteger)?,
            };
            let next = current.checked_add(delta).ok_or(CmdError::Overflow)?;
            *sv = StrValue::Int(next);
            next
        }
    };
    tx.emit(command);
    tx.notify(class::STRING, "incrby", key);
    Ok(Frame::Integer(next))
}

/// INCR key
fn incr(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    incr_generic(ctx, args.next_arg()?, 1, &args.all())
}

/// DECR key
fn decr(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    incr_generic(ctx, args.next_arg()?, -1, &args.all())
}

/// INCRBY key increment
fn incrby(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let delta = args.next_i64()?;
    incr_generic(ctx, key, delta, &args.all())
}

/// DECRBY key decrement
fn decrby(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let delta = args.next_i64()?;
    if delta == i64::MIN {
        return Err(CmdError::Err("decrement would overflow".into()));
    }
    incr_generic(ctx, key, -delta, &args.all())
}

/// INCRBYFLOAT key increment
fn incrbyfloat(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let delta = parse_f64(args.next_arg()?)?;
    let mut tx = ctx.lock(key);
    let current_text = read_str(&mut tx, key)?.unwrap_or(Bytes::from_static(b"0"));
    let text = float_add(&current_text, parse_f64(&current_text)?, args.get(2), delta)?;
    // Redis stores the result as a string object, never as an integer.
    tx.set(key, Value::Str(StrValue::text(text.as_bytes())), Ttl::Keep);
    tx.emit(&[b"SET", key, text.as_bytes(), b"KEEPTTL"]);
    tx.notify(class::STRING, "incrbyfloat", key);
    Ok(Frame::Bulk(Bytes::from(text)))
}

/// `current + delta` as INCRBYFLOAT and HINCRBYFLOAT store it: the exact
/// decimal sum where both are short decimals, else the nearest double.
pub(super) fn float_add(current_text: &[u8], current: f64, delta_text: &[u8], delta: f64) -> Result<String, CmdError> {
    let next = current + delta;
    if next.is_nan() || next.is_infinite() {
        return Err(CmdError::NanOrInfinity);
    }
    Ok(add_decimal(current_text, delta_text).unwrap_or_else(|| format!("{next}")))
}

/// Digits after the point in Redis's `%.17Lf` rendering.
const FRAC_DIGITS: u32 = 17;

/// A decimal ("-12.5", "3", "2.5e-1") as an integer count of 1e-17 units,
/// or None if it needs more than 17 decimals or does not fit.
fn parse_decimal(s: &[u8]) -> Option<i128> {
    let (mantissa, exp) = match s.iter().position(|&c| c == b'e' || c == b'E') {
        Some(p) => (&s[..p], std::str::from_utf8(&s[p + 1..]).ok()?.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, body) = match mantissa.first()? {
        b'-' => (true, &mantissa[1..]),
        b'+' => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac_part) = match body.iter().position(|&c| c == b'.') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &b""[..]),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || int_part.len() + frac_part.len() > 36
        || !int_part.iter().chain(frac_part).all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut v: i128 = 0;
    for &d in int_part.iter().chain(frac_part) {
        v = v * 10 + (d - b'0') as i128;
    }
    // v * 10^(exp - frac_len) in units of 1e-17.
    let shift = FRAC_DIGITS as i32 + exp - frac_part.len() as i32;
    if !(0..=38).contains(&shift) {
        return None;
    }
    let v = v.checked_mul(10i128.checked_pow(shift as u32)?)?;
    Some(if neg { -v } else { v })
}

/// INCRBYFLOAT's sum, exact for plain decimals and printed as Redis's
/// `%.17Lf` with trailing zeros removed. Redis adds in `long double`,
/// whose rounding can show in the 17th decimal for large magnitudes
/// (1000.1 + 0.1 gives 1000.19999999999999996 there, 1000.2 here).
/// Exponents and very long inputs return None: the caller uses f64.
fn add_decimal(a: &[u8], b: &[u8]) -> Option<String> {
    let sum = parse_decimal(a)?.checked_add(parse_decimal(b)?)?;
    let unit = 10i128.pow(FRAC_DIGITS);
    let (int, frac) = (sum.abs() / unit, sum.abs() % unit);
    let mut text = if sum < 0 { format!("-{int}") } else { int.to_string() };
    if frac != 0 {
        let digits = format!("{frac:017}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    Some(text)
}

/// APPEND key value
fn append(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, value) = (args.next_arg()?, args.next_arg()?);
    let max = max_bulk(ctx);
    let mut tx = ctx.lock(key);
    let current = read_str(&mut tx, key)?;
    let len = match current {
        None => {
            tx.set_str(key, value, Ttl::Clear);
            value.len()
        }
        Some(old) => {
            if old.len() + value.len() > max {
                return Err(CmdError::StringTooLong);
            }
            let mut buf = Vec::with_capacity(old.len() + value.len());
            buf.extend_from_slice(&old);
            buf.extend_from_slice(value);
            let len = buf.len();
            tx.set(key, Value::Str(StrValue::raw(buf)), Ttl::Keep);
            len
        }
    };
    tx.emit(&[b"APPEND", key, value]);
    tx.notify(class::STRING, "append", key);
    Ok(Frame::Integer(len as i64))
}

/// STRLEN key
fn strlen(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let len = match ctx.lock(key).get(key) {
        None => 0,
        Some(e) => e.str_len().ok_or(CmdError::WrongType)?,
    };
    Ok(Frame::Integer(len as i64))
}

/// GETRANGE key start end
fn getrange(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let (mut start, mut end) = (args.next_i64()?, args.next_i64()?);
    let Some(b) = read_str(&mut ctx.lock(key), key)? else {
        return Ok(Frame::bulk(""));
    };
    let len = b.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(Frame::bulk(""));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if len == 0 || start > end {
        return Ok(Frame::bulk(""));
    }
    Ok(Frame::Bulk(b.slice(start as usize..=end as usize)))
}

/// SETRANGE key offset value
fn setrange(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let offset = args.next_i64()?;
    let value = args.next_arg()?;
    if offset < 0 {
        return Err(CmdError::OffsetOutOfRange);
    }
    let offset = offset as usize;
    let max = max_bulk(ctx);
    let mut tx = ctx.lock(key);
    let current = read_str(&mut tx, key)?;
    if value.is_empty() {
        return Ok(Frame::Integer(current.map_or(0, |b| b.len() as i64)));
    }
    if offset + value.len() > max {
        return Err(CmdError::StringTooLong);
    }
    let old = current.unwrap_or_default();
    let mut buf = old.to_vec();
    if buf.len() < offset + value.len() {
        buf.resize(offset + value.len(), 0);
    }
    buf[offset..offset + value.len()].copy_from_slice(value);
    let len = buf.len();
    tx.set(key, Value::Str(StrValue::raw(buf)), Ttl::Keep);
    tx.emit(&[b"SETRANGE", key, itoa::Buffer::new().format(offset).as_bytes(), value]);
    tx.notify(class::STRING, "setrange", key);
    Ok(Frame::Integer(len as i64))
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]
fn lcs(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (k1, k2) = (args.next_arg()?, args.next_arg()?);
    let (mut len_only, mut idx, mut withlen, mut minlen) = (false, false, false, 0i64);
    while let Some(a) = args.next() {
        if eq_ic(a, "len") {
            len_only = true;
        } else if eq_ic(a, "idx") {
            idx = true;
        } else if eq_ic(a, "withmatchlen") {
            withlen = true;
        } else if eq_ic(a, "minmatchlen") {
            minlen = args.next_i64()?.max(0);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut tx = ctx.lock_keys([k1, k2]);
    // LCS has its own type error, and treats a missing key as "".
    let mut read = |k: &[u8]| match tx.get(k) {
        None => Ok(Bytes::new()),
        Some(e) => e.str_bytes().ok_or_else(|| CmdError::Err("The specified keys must contain string values".into())),
    };
    let (a, b) = (read(k1)?, read(k2)?);
    drop(tx);
    if len_only && idx {
        return Err(CmdError::Err("If you want both the length and indexes, please just use IDX.".into()));
    }
    let cells = (a.len() + 1).saturating_mul(b.len() + 1);
    if cells.saturating_mul(4) > max_bulk(ctx) {
        return Err(CmdError::Err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len".into()));
    }
    // dp[i][j] = LCS length of a[..i] and b[..j].
    let w = b.len() + 1;
    let mut dp = vec![0u32; cells];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[a.len() * w + b.len()] as usize;
    if len_only {
        return Ok(Frame::Integer(total as i64));
    }
    // Walk back from the end, collecting the common string and, for IDX,
    // the matching ranges (reported from the end, as Redis does).
    let mut out = vec![0u8; total];
    let mut k = total;
    let (mut i, mut j) = (a.len(), b.len());
    let mut matches = Vec::new();
    let mut cur: Option<(usize, usize, usize, usize)> = None; // a range and b range
    let flush = |cur: &mut Option<(usize, usize, usize, usize)>, matches: &mut Vec<Frame>| {
        if let Some((a1, a2, b1, b2)) = cur.take() {
            let mlen = a2 - a1 + 1;
            if mlen as i64 >= minlen {
                let range = |s: usize, e: usize| Frame::Array(vec![Frame::Integer(s as i64), Frame::Integer(e as i64)]);
                let mut m = vec![range(a1, a2), range(b1, b2)];
                if withlen {
                    m.push(Frame::Integer(mlen as i64));
                }
                matches.push(Frame::Array(m));
            }
        }
    };
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            k -= 1;
            out[k] = a[i - 1];
            let (ai, bj) = (i - 1, j - 1);
            match &mut cur {
                Some((a1, _, b1, _)) if *a1 == ai + 1 && *b1 == bj + 1 => {
                    *a1 = ai;
                    *b1 = bj;
                }
                _ => {
                    flush(&mut cur, &mut matches);
                    cur = Some((ai, ai, bj, bj));
                }
            }
            i -= 1;
            j -= 1;
        } else if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    flush(&mut cur, &mut matches);
    if idx {
        return Ok(Frame::Map(vec![
            (Frame::bulk_static("matches"), Frame::Array(matches)),
            (Frame::bulk_static("len"), Frame::Integer(total as i64)),
        ]));
    }
    Ok(Frame::Bulk(Bytes::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_sums_match_redis() {
        let add = |a: &str, b: &str| add_decimal(a.as_bytes(), b.as_bytes());
        assert_eq!(add("10.1", "0.2").as_deref(), Some("10.3"));
        assert_eq!(add("1.1", "2.2").as_deref(), Some("3.3"));
        assert_eq!(add("10.5", "-10.5").as_deref(), Some("0"));
        assert_eq!(add("10", "5").as_deref(), Some("15"));
        assert_eq!(add("-0.5", "0.25").as_deref(), Some("-0.25"));
        assert_eq!(add("1e3", "1").as_deref(), Some("1001"));
        assert_eq!(add("-3.65", "2.5e-1").as_deref(), Some("-3.4"));
        assert_eq!(add("1", "1e-18"), None);
        assert_eq!(add(".5", "1").as_deref(), Some("1.5"));
    }

    #[test]
    fn deadline_rules() {
        assert_eq!(deadline(b"10", 1000, false, 5, "set").unwrap(), 10_005);
        assert_eq!(deadline(b"10", 1, true, 5, "set").unwrap(), 10);
        assert_eq!(
            deadline(b"0", 1000, false, 5, "set").unwrap_err().to_string(),
            "ERR invalid expire time in 'set' command"
        );
        assert!(matches!(deadline(b"9223372036854775807", 1000, false, 5, "set"), Err(CmdError::InvalidExpire(_))));
        assert_eq!(deadline(b"x", 1000, false, 5, "set").unwrap_err(), CmdError::NotInteger);
    }
}

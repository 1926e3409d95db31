//! Bitmap commands over string values: SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP, BITFIELD and BITFIELD_RO. Bit 0 is the most significant bit of
//! the first byte, as in Redis. Writes change the string in place when no
//! reply still holds it (`Bytes::try_into_mut`), so a large bitmap is not
//! copied per SETBIT. Argument checks follow Redis 7.2's order.

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, eq_ic, parse_i64, Args, CmdResult, Ctx};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::{StrValue, Ttl, Tx, Value};

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, WRITE | DENYOOM, KeySpec::single(1), setbit).doc(
        "bitmap",
        "2.2.0",
        "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
    ),
    CommandSpec::new("getbit", 3, READONLY | FAST, KeySpec::single(1), getbit).doc(
        "bitmap",
        "2.2.0",
        "Returns a bit value by offset.",
    ),
    CommandSpec::new("bitcount", -2, READONLY, KeySpec::single(1), bitcount).doc(
        "bitmap",
        "2.6.0",
        "Counts the number of set bits (population counting) in a string.",
    ),
    CommandSpec::new("bitpos", -3, READONLY, KeySpec::single(1), bitpos).doc(
        "bitmap",
        "2.8.7",
        "Finds the first set (1) or clear (0) bit in a string.",
    ),
    CommandSpec::new("bitop", -4, WRITE | DENYOOM, KeySpec::range(2, -1, 1), bitop).doc(
        "bitmap",
        "2.6.0",
        "Performs bitwise operations on multiple strings, and stores the result.",
    ),
    CommandSpec::new("bitfield", -2, WRITE | DENYOOM, KeySpec::single(1), bitfield).doc(
        "bitmap",
        "3.2.0",
        "Performs arbitrary bitfield integer operations on strings.",
    ),
    CommandSpec::new("bitfield_ro", -2, READONLY | FAST, KeySpec::single(1), bitfield_ro).doc(
        "bitmap",
        "6.0.0",
        "Performs arbitrary read-only bitfield integer operations on strings.",
    ),
];

fn offset_err() -> CmdError {
    CmdError::Err("bit offset is not an integer or out of range".into())
}

/// Redis's `getBitOffsetFromArgument`: a bit offset whose byte fits
/// proto-max-bulk-len; with `hash`, `#n` means n units of `bits`.
fn bit_offset(ctx: &Ctx<'_>, a: &[u8], hash: bool, bits: u64) -> Result<u64, CmdError> {
    let (mul, digits) = match a.first() {
        Some(b'#') if hash => (bits, &a[1..]),
        _ => (1, a),
    };
    let n = parse_i64(digits).map_err(|_| offset_err())?;
    let n = u64::try_from(n).map_err(|_| offset_err())?.checked_mul(mul).ok_or_else(offset_err)?;
    if n >> 3 >= ctx.shared.config.read().proto_max_bulk_len {
        return Err(offset_err());
    }
    Ok(n)
}

/// The bytes of the string at `key` (None if missing); WRONGTYPE otherwise.
fn read_bytes(tx: &mut Tx<'_>, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
    match tx.get(key) {
        None => Ok(None),
        Some(e) => e.str_bytes().map(Some).ok_or(CmdError::WrongType),
    }
}

/// Takes the string at `key` out for editing, at least `min_len` bytes
/// long (zero-padded). Put it back with [`store`].
/// Whether writing `key` at `min_len` bytes creates or grows it (then the
/// write counts even if no bit changes, as Redis's `dirty` flag says).
fn creates_or_grows(tx: &mut Tx<'_>, key: &[u8], min_len: usize) -> bool {
    tx.peek(key).and_then(|e| e.str_len()).is_none_or(|n| n < min_len)
}

fn take_for_write(tx: &mut Tx<'_>, key: &[u8], min_len: usize) -> Result<Vec<u8>, CmdError> {
    let mut buf = match tx.get(key) {
        None => Vec::new(),
        Some(e) => {
            let s = e.value_mut().as_str_mut().ok_or(CmdError::WrongType)?;
            match std::mem::replace(s, StrValue::raw(Vec::new())) {
                StrValue::Raw(b) => b.into_vec(),
                StrValue::Inline(n, buf) => buf[..n as usize].to_vec(),
                other => other.bytes().into_owned(),
            }
        }
    };
    if buf.len() < min_len {
        buf.resize(min_len, 0);
    }
    Ok(buf)
}

fn store(tx: &mut Tx<'_>, key: &[u8], buf: Vec<u8>) {
    tx.set(key, Value::Str(StrValue::raw(buf)), Ttl::Keep);
}

fn get_bit(p: &[u8], bit: u64) -> u8 {
    p.get((bit >> 3) as usize).map_or(0, |b| (b >> (7 - (bit & 7))) & 1)
}

fn set_bit(p: &mut [u8], bit: u64, on: bool) {
    let (i, mask) = ((bit >> 3) as usize, 1u8 << (7 - (bit & 7)));
    if on {
        p[i] |= mask;
    } else {
        p[i] &= !mask;
    }
}

/// SETBIT key offset value
fn setbit(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let offset = bit_offset(ctx, args.next_arg()?, false, 0)?;
    let on = match args.next_arg()? {
        b"0" => false,
        b"1" => true,
        _ => return Err(CmdError::Err("bit is not an integer or out of range".into())),
    };
    let mut tx = ctx.lock(key);
    let need = (offset >> 3) as usize + 1;
    let grows = creates_or_grows(&mut tx, key, need);
    let mut buf = take_for_write(&mut tx, key, need)?;
    let old = get_bit(&buf, offset);
    set_bit(&mut buf, offset, on);
    store(&mut tx, key, buf);
    // Rewriting a bit with its own value is not a write (no propagation,
    // no event, WATCH untouched).
    if grows || (old == 1) != on {
        tx.emit(&args.all());
        tx.notify(class::STRING, "setbit", key);
    }
    Ok(Frame::Integer(old as i64))
}

/// GETBIT key offset
fn getbit(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let offset = bit_offset(ctx, args.next_arg()?, false, 0)?;
    let mut tx = ctx.lock(key);
    let p = read_bytes(&mut tx, key)?.unwrap_or_default();
    Ok(Frame::Integer(get_bit(&p, offset) as i64))
}

/// A `start end [BYTE|BIT]` range over a string of `len` bytes, as an
/// inclusive bit interval; None when empty. Negative ends count from the
/// end and are clamped, as Redis does.
fn bit_range(start: i64, end: i64, is_bit: bool, len: usize) -> Option<(u64, u64)> {
    let total = if is_bit { len as i64 * 8 } else { len as i64 };
    let mut s = if start < 0 { total.saturating_add(start) } else { start };
    let mut e = if end < 0 { total.saturating_add(end) } else { end };
    s = s.max(0);
    e = e.max(0);
    if e >= total {
        e = total - 1;
    }
    if s > e || total == 0 {
        return None;
    }
    Some(if is_bit { (s as u64, e as u64) } else { (s as u64 * 8, e as u64 * 8 + 7) })
}

fn parse_unit(a: &[u8]) -> Result<bool, CmdError> {
    match () {
        _ if eq_ic(a, "bit") => Ok(true),
        _ if eq_ic(a, "byte") => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// Set bits in the inclusive bit interval [s, e].
fn count_bits(p: &[u8], s: u64, e: u64) -> u64 {
    let (sb, eb) = ((s >> 3) as usize, (e >> 3) as usize);
    let mut n: u64 = p[sb..=eb].iter().map(|b| b.count_ones() as u64).sum();
    // Take off the bits of the edge bytes that lie outside the interval.
    let head = p[sb] & !(0xFFu8 >> (s & 7));
    let tail = p[eb] & (0xFFu16 >> ((e & 7) + 1)) as u8;
    n -= head.count_ones() as u64 + tail.count_ones() as u64;
    n
}

/// BITCOUNT key [start end [BYTE|BIT]]
fn bitcount(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let range = match args.remaining() {
        0 => None,
        2 | 3 => {
            let (s, e) = (args.next_i64()?, args.next_i64()?);
            let unit = args.next().map(parse_unit).transpose()?.unwrap_or(false);
            Some((s, e, unit))
        }
        _ => return Err(CmdError::Syntax),
    };
    let mut tx = ctx.lock(key);
    let Some(p) = read_bytes(&mut tx, key)? else { return Ok(Frame::Integer(0)) };
    let (s, e, is_bit) = range.unwrap_or((0, -1, false));
    // Both from the end and crossed: empty, before clamping could make
    // them overlap (Redis checks this first, too).
    if s < 0 && e < 0 && s > e {
        return Ok(Frame::Integer(0));
    }
    Ok(Frame::Integer(bit_range(s, e, is_bit, p.len()).map_or(0, |(s, e)| count_bits(&p, s, e)) as i64))
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
fn bitpos(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let bit = match parse_i64(args.next_arg()?)? {
        0 => 0u8,
        1 => 1u8,
        _ => return Err(CmdError::Err("The bit argument must be 1 or 0.".into())),
    };
    if args.remaining() > 3 {
        return Err(CmdError::Syntax);
    }
    let mut tx = ctx.lock(key);
    let Some(p) = read_bytes(&mut tx, key)? else { return Ok(Frame::Integer(if bit == 1 { -1 } else { 0 })) };
    let start = args.next().map(parse_i64).transpose()?.unwrap_or(0);
    let end = args.next().map(parse_i64).transpose()?;
    let is_bit = args.next().map(parse_unit).transpose()?.unwrap_or(false);
    let end_given = end.is_some();
    let Some((s, e)) = bit_range(start, end.unwrap_or(-1), is_bit, p.len()) else {
        return Ok(Frame::Integer(-1));
    };
    let skip = if bit == 1 { 0x00 } else { 0xFF };
    let mut i = s;
    while i <= e {
        if i & 7 == 0 && i + 7 <= e && p[(i >> 3) as usize] == skip {
            i += 8;
            continue;
        }
        if get_bit(&p, i) == bit {
            return Ok(Frame::Integer(i as i64));
        }
        i += 1;
    }
    // No clear bit: past the end of the string counts as zeros unless the
    // caller gave an explicit end.
    Ok(Frame::Integer(if bit == 0 && !end_given { e as i64 + 1 } else { -1 }))
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...]
fn bitop(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let op = args.next_arg()?;
    let dst = args.next_arg()?;
    let keys = args.rest();
    let op = match () {
        _ if eq_ic(op, "and") => 0,
        _ if eq_ic(op, "or") => 1,
        _ if eq_ic(op, "xor") => 2,
        _ if eq_ic(op, "not") => 3,
        _ => return Err(CmdError::Syntax),
    };
    if op == 3 && keys.len() != 1 {
        return Err(CmdError::Err("BITOP NOT must be called with a single source key.".into()));
    }
    let mut tx = ctx.lock_keys(keys.iter().copied().chain([dst]));
    let mut srcs = Vec::with_capacity(keys.len());
    for k in &keys {
        srcs.push(read_bytes(&mut tx, k)?.unwrap_or_default());
    }
    let len = srcs.iter().map(Bytes::len).max().unwrap_or(0);
    if len == 0 {
        return super::store_nothing(&mut tx, dst);
    }
    let byte = |s: &Bytes, i: usize| s.get(i).copied().unwrap_or(0);
    let out: Vec<u8> = (0..len)
        .map(|i| match op {
            0 => srcs.iter().fold(0xFF, |acc, s| acc & byte(s, i)),
            1 => srcs.iter().fold(0, |acc, s| acc | byte(s, i)),
            2 => srcs.iter().fold(0, |acc, s| acc ^ byte(s, i)),
            _ => !byte(&srcs[0], i),
        })
        .collect();
    tx.set(dst, Value::Str(StrValue::raw(out)), Ttl::Clear);
    tx.emit(&args.all());
    tx.notify(class::STRING, "set", dst);
    Ok(Frame::Integer(len as i64))
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    Incr(i64),
}

struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

fn parse_type(a: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || {
        CmdError::Err(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.".into(),
        )
    };
    let signed = match a.first() {
        Some(b'i' | b'I') => true,
        Some(b'u' | b'U') => false,
        _ => return Err(err()),
    };
    let bits = std::str::from_utf8(&a[1..]).ok().and_then(|s| s.parse::<u32>().ok()).ok_or_else(err)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(err());
    }
    Ok((signed, bits))
}

fn parse_fields(ctx: &Ctx<'_>, args: &mut Args<'_>, read_only: bool) -> Result<Vec<Field>, CmdError> {
    let mut out = Vec::new();
    let mut overflow = Overflow::Wrap;
    while let Some(sub) = args.next() {
        let write = eq_ic(sub, "set") || eq_ic(sub, "incrby");
        if eq_ic(sub, "overflow") {
            let a = args.next_arg()?;
            overflow = match () {
                _ if eq_ic(a, "wrap") => Overflow::Wrap,
                _ if eq_ic(a, "sat") => Overflow::Sat,
                _ if eq_ic(a, "fail") => Overflow::Fail,
                _ => return Err(CmdError::Err("Invalid OVERFLOW type specified".into())),
            };
            continue;
        }
        if read_only && !eq_ic(sub, "get") {
            return Err(CmdError::Err("BITFIELD_RO only supports the GET subcommand".into()));
        }
        if !write && !eq_ic(sub, "get") {
            return Err(CmdError::Syntax);
        }
        let needed = if write { 3 } else { 2 };
        if args.remaining() < needed {
            return Err(CmdError::Syntax);
        }
        let (signed, bits) = parse_type(args.next_arg()?)?;
        let offset = bit_offset(ctx, args.next_arg()?, true, bits as u64)?;
        let op = if eq_ic(sub, "get") {
            FieldOp::Get
        } else {
            let v = parse_i64(args.next_arg()?)?;
            if eq_ic(sub, "set") {
                FieldOp::Set(v)
            } else {
                FieldOp::Incr(v)
            }
        };
        out.push(Field { op, signed, bits, offset, overflow });
    }
    Ok(out)
}

fn get_field(p: &[u8], offset: u64, bits: u32, signed: bool) -> i64 {
    let mut v: u64 = 0;
    for i in 0..bits as u64 {
        v = (v << 1) | get_bit(p, offset + i) as u64;
    }
    if signed && bits < 64 && v & (1 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

fn set_field(p: &mut [u8], offset: u64, bits: u32, v: u64) {
    for i in 0..bits as u64 {
        set_bit(p, offset + i, (v >> (bits as u64 - 1 - i)) & 1 == 1);
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: Some(adjusted) on overflow.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<u64>> {
    let max: u64 = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > maxincr) {
        return Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        });
    }
    if incr < 0 && incr < minincr {
        return Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(0),
            Overflow::Fail => None,
        });
    }
    None
}

/// Redis's `checkSignedBitfieldOverflow`: Some(adjusted) on overflow.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<i64>> {
    let max: i64 = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    let over = value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr);
    let under = value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr);
    if over || under {
        return Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(if over { max } else { min }),
            Overflow::Fail => None,
        });
    }
    None
}

/// The new raw value a SET or INCRBY writes (None: FAIL overflow).
fn next_value(f: &Field, old: i64) -> Option<i64> {
    let (value, incr) = match f.op {
        FieldOp::Set(v) => (v, 0),
        FieldOp::Incr(d) => (old, d),
        FieldOp::Get => return Some(old),
    };
    if f.signed {
        match signed_overflow(value, incr, f.bits, f.overflow) {
            Some(adj) => adj,
            None => Some(value.wrapping_add(incr)),
        }
    } else {
        match unsigned_overflow(value as u64, incr, f.bits, f.overflow) {
            Some(adj) => adj.map(|v| v as i64),
            None => Some((value as u64).wrapping_add(incr as u64) as i64),
        }
    }
}

fn run_fields(ctx: &mut Ctx<'_>, mut args: Args<'_>, read_only: bool) -> CmdResult {
    let key = args.next_arg()?;
    let fields = parse_fields(ctx, &mut args, read_only)?;
    let mut tx = ctx.lock(key);
    let writes = fields.iter().filter(|f| !matches!(f.op, FieldOp::Get));
    let Some(need) = writes.map(|f| ((f.offset + f.bits as u64 - 1) >> 3) as usize + 1).max() else {
        let p = read_bytes(&mut tx, key)?.unwrap_or_default();
        let out = fields.iter().map(|f| Frame::Integer(get_field(&p, f.offset, f.bits, f.signed)));
        return Ok(Frame::Array(out.collect()));
    };
    let grows = creates_or_grows(&mut tx, key, need);
    let mut buf = take_for_write(&mut tx, key, need)?;
    let mut out = Vec::with_capacity(fields.len());
    let mut changes = 0;
    for f in &fields {
        let old = get_field(&buf, f.offset, f.bits, f.signed);
        match (f.op, next_value(f, old)) {
            (FieldOp::Get, _) => out.push(Frame::Integer(old)),
            (_, None) => out.push(Frame::Null),
            (op, Some(new)) => {
                set_field(&mut buf, f.offset, f.bits, new as u64);
                if grows || get_field(&buf, f.offset, f.bits, f.signed) != old {
                    changes += 1;
                }
                // Read back: SET replies with the old value, INCRBY with the
                // stored (truncated to width) new one.
                let stored = get_field(&buf, f.offset, f.bits, f.signed);
                out.push(Frame::Integer(if matches!(op, FieldOp::Set(_)) { old } else { stored }));
            }
        }
    }
    store(&mut tx, key, buf);
    if changes > 0 {
        tx.emit(&args.all());
        tx.notify(class::STRING, "setbit", key);
    }
    Ok(Frame::Array(out))
}

/// BITFIELD key [GET type offset | SET type offset value | INCRBY type
/// offset increment | OVERFLOW WRAP|SAT|FAIL] ...
fn bitfield(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run_fields(ctx, args, false)
}

/// BITFIELD_RO key [GET type offset] ...
fn bitfield_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run_fields(ctx, args, true)
}

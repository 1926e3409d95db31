//! The Lua libraries Redis bundles for scripts, written in Rust: `bit`
//! (LuaBitOp's API: 32-bit integer operations on Lua numbers), `cjson`
//! (lua-cjson's encode/decode, with its number format and error texts),
//! `cmsgpack` (lua-cmsgpack's pack/unpack, choosing the same encodings)
//! and `struct` (binary pack/unpack by format string); and Redis's own
//! `math.random`/`math.randomseed`.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

fn rt(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

/// LuaBitOp's normalisation: round to the nearest integer (ties to even),
/// keep the low 32 bits, read them as signed. `i` and `name` word the
/// error as luaL_argerror does.
fn tobit(v: &Value, i: usize, name: &str) -> mlua::Result<i32> {
    let bad = |got: &str| rt(format!("bad argument #{} to '{name}' (number expected, got {got})", i + 1));
    let x = match v {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        Value::String(s) => s.to_str()?.trim().parse::<f64>().map_err(|_| bad("string"))?,
        Value::Nil => return Err(bad("no value")),
        _ => return Err(bad(v.type_name())),
    };
    Ok(x.round_ties_even().rem_euclid(4_294_967_296.0) as u32 as i32)
}

fn arg(args: &MultiValue, i: usize, name: &str) -> mlua::Result<i32> {
    tobit(args.get(i).unwrap_or(&Value::Nil), i, name)
}

/// The generator behind Redis's math.random (redisLrand48: lrand48's
/// 48-bit linear congruence), one per process as Redis's is, so a script
/// that seeds it draws the numbers it draws on Redis.
static LRAND48: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x1234_ABCD_330E);

fn lrand48() -> i32 {
    const MASK: u64 = (1 << 48) - 1;
    let step = |x: u64| x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & MASK;
    let before = LRAND48.fetch_update(Relaxed, Relaxed, |x| Some(step(x))).expect("always updated");
    (step(before) >> 17) as i32
}

/// luaL_checkint: a number, or a string that reads as one.
fn checkint(args: &MultiValue, i: usize, name: &str) -> mlua::Result<i32> {
    let bad = |got: &str| rt(format!("bad argument #{} to '{name}' (number expected, got {got})", i + 1));
    match args.get(i) {
        Some(Value::Integer(n)) => Ok(*n as i32),
        Some(Value::Number(n)) => Ok(n.round_ties_even() as i32),
        Some(Value::String(s)) => {
            let n = s.to_str().ok().and_then(|t| t.trim().parse::<f64>().ok()).ok_or_else(|| bad("string"))?;
            Ok(n.round_ties_even() as i32)
        }
        Some(v) => Err(bad(v.type_name())),
        None => Err(bad("no value")),
    }
}

/// Replaces `math.random` and `math.randomseed` with Redis's.
pub fn redis_random(lua: &Lua, math: &Table) -> mlua::Result<()> {
    let random = lua.create_function(|_, a: MultiValue| {
        let r = (lrand48() % i32::MAX) as f64 / i32::MAX as f64;
        let empty = |i: usize| rt(format!("bad argument #{i} to 'random' (interval is empty)"));
        Ok(match a.len() {
            0 => r,
            1 => {
                let u = checkint(&a, 0, "random")?;
                if u < 1 {
                    return Err(empty(1));
                }
                (r * u as f64).floor() + 1.0
            }
            2 => {
                let (l, u) = (checkint(&a, 0, "random")?, checkint(&a, 1, "random")?);
                if l > u {
                    return Err(empty(2));
                }
                (r * (u as f64 - l as f64 + 1.0)).floor() + l as f64
            }
            _ => return Err(rt("wrong number of arguments")),
        })
    })?;
    math.raw_set("random", random)?;
    let seed = lua.create_function(|_, a: MultiValue| {
        let seed = checkint(&a, 0, "randomseed")?;
        LRAND48.store((u64::from(seed as u32) << 16) | 0x330E, Relaxed);
        Ok(())
    })?;
    math.raw_set("randomseed", seed)
}

pub fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("tobit", lua.create_function(|_, a: MultiValue| Ok(arg(&a, 0, "tobit")? as f64))?)?;
    t.raw_set("bnot", lua.create_function(|_, a: MultiValue| Ok(!arg(&a, 0, "bnot")? as f64))?)?;
    type Fold = fn(i32, i32) -> i32;
    let folds: [(&str, Fold); 3] = [("band", |a, b| a & b), ("bor", |a, b| a | b), ("bxor", |a, b| a ^ b)];
    for (name, op) in folds {
        t.raw_set(
            name,
            lua.create_function(move |_, a: MultiValue| {
                let mut acc = arg(&a, 0, name)?;
                for i in 1..a.len() {
                    acc = op(acc, arg(&a, i, name)?);
                }
                Ok(acc as f64)
            })?,
        )?;
    }
    type Shift = fn(i32, u32) -> i32;
    let shifts: [(&str, Shift); 5] = [
        ("lshift", |x, n| ((x as u32) << n) as i32),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ];
    for (name, op) in shifts {
        t.raw_set(
            name,
            lua.create_function(move |_, a: MultiValue| {
                Ok(op(arg(&a, 0, name)?, (arg(&a, 1, name)? & 31) as u32) as f64)
            })?,
        )?;
    }
    t.raw_set("bswap", lua.create_function(|_, a: MultiValue| Ok(arg(&a, 0, "bswap")?.swap_bytes() as f64))?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, a: MultiValue| {
            let x = arg(&a, 0, "tohex")? as u32;
            let n = if a.len() > 1 { arg(&a, 1, "tohex")? } else { 8 };
            let upper = n < 0;
            let digits = n.unsigned_abs().clamp(1, 8) as usize;
            let masked = if digits == 8 { x } else { x & ((1u32 << (digits * 4)) - 1) };
            let s = format!("{masked:0digits$x}");
            Ok(if upper { s.to_uppercase() } else { s })
        })?,
    )?;
    Ok(t)
}

/// lua-cjson's `null`: a light userdata holding NULL.
fn json_null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// lua-cjson's settings that scripts may change (they last for the
/// life of the Lua state, as in Redis).
struct JsonSettings {
    encode_max_depth: AtomicUsize,
    decode_max_depth: AtomicUsize,
    /// 0: refuse NaN and Inf; 1: write them as `nan`/`inf`; 2: as `null`.
    encode_invalid_numbers: AtomicUsize,
}

/// One encode call's view of the settings.
#[derive(Clone, Copy)]
struct EncodeCfg {
    max_depth: usize,
    invalid_numbers: usize,
}

fn encode_value(out: &mut Vec<u8>, v: &Value, depth: usize, cfg: EncodeCfg) -> mlua::Result<()> {
    // Past 1000 levels the stack, not the setting, is the limit (lua-cjson
    // meets Lua's stack limit there): a table holding itself must fail,
    // not overflow the server's stack.
    if depth >= cfg.max_depth.min(1000) && matches!(v, Value::Table(_)) {
        return Err(rt(format!("Cannot serialise, excessive nesting ({})", depth + 1)));
    }
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(u) if u.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() {
                match cfg.invalid_numbers {
                    0 => return Err(rt("Cannot serialise number: must not be NaN or Inf")),
                    1 => out.extend_from_slice(crate::scripting::lua_number(*n).as_bytes()),
                    _ => out.extend_from_slice(b"null"),
                }
                return Ok(());
            }
            out.extend_from_slice(crate::scripting::lua_number(*n).as_bytes());
        }
        Value::String(s) => encode_string(out, &s.as_bytes()),
        Value::Table(t) => encode_table(out, t, depth, cfg)?,
        other => return Err(rt(format!("Cannot serialise {}: type not supported", other.type_name()))),
    }
    Ok(())
}

fn encode_table(out: &mut Vec<u8>, t: &Table, depth: usize, cfg: EncodeCfg) -> mlua::Result<()> {
    // An array when every key is a positive integer (lua-cjson's rule),
    // refusing arrays that are mostly holes. Counted first and walked
    // after, never holding every pair (a Lua reference per string key).
    let (mut len, mut max, mut array) = (0usize, 0usize, true);
    t.for_each::<Value, Value>(|k, _| {
        len += 1;
        let n = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => {
                array = false;
                return Ok(());
            }
        };
        if n >= 1.0 && n == n.trunc() {
            max = max.max(n as usize);
        } else {
            array = false;
        }
        Ok(())
    })?;
    if array && len > 0 {
        if max > len * 2 && max > 10 {
            return Err(rt("Cannot serialise table: excessively sparse array"));
        }
        out.push(b'[');
        for i in 1..=max {
            if i > 1 {
                out.push(b',');
            }
            encode_value(out, &t.raw_get::<Value>(i)?, depth + 1, cfg)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    let mut first = true;
    t.for_each::<Value, Value>(|k, v| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        match k {
            Value::String(s) => encode_string(out, &s.as_bytes()),
            Value::Integer(n) => encode_string(out, n.to_string().as_bytes()),
            Value::Number(n) => encode_string(out, crate::scripting::lua_number(n).as_bytes()),
            _ => return Err(rt("Cannot serialise table: table key must be a number or string")),
        }
        out.push(b':');
        encode_value(out, &v, depth + 1, cfg)
    })?;
    out.push(b'}');
    Ok(())
}

/// How deep `v` nests arrays and objects (a scalar: 0).
fn json_depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn decode_value(lua: &Lua, v: serde_json::Value) -> mlua::Result<Value> {
    Ok(match v {
        serde_json::Value::Null => json_null(),
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(&s)?),
        serde_json::Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, x) in items.into_iter().enumerate() {
                t.raw_set(i + 1, decode_value(lua, x)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, x) in map {
                t.raw_set(lua.create_string(&k)?, decode_value(lua, x)?)?;
            }
            Value::Table(t)
        }
    })
}

pub fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let settings = Arc::new(JsonSettings {
        encode_max_depth: AtomicUsize::new(1000),
        decode_max_depth: AtomicUsize::new(1000),
        encode_invalid_numbers: AtomicUsize::new(0),
    });
    let cfg = settings.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, a: MultiValue| {
            if a.len() != 1 {
                return Err(rt("bad argument #1 to 'encode' (expected 1 argument)"));
            }
            let enc = EncodeCfg {
                max_depth: cfg.encode_max_depth.load(Relaxed),
                invalid_numbers: cfg.encode_invalid_numbers.load(Relaxed),
            };
            let mut out = Vec::new();
            encode_value(&mut out, &a[0], 0, enc)?;
            lua.create_string(&out)
        })?,
    )?;
    let cfg = settings.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, a: MultiValue| {
            let Some(Value::String(s)) = a.front() else {
                return Err(rt("bad argument #1 to 'decode' (string expected)"));
            };
            let parsed: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| rt(format!("Expected value but found invalid token at character {}", e.column())))?;
            let max = cfg.decode_max_depth.load(Relaxed);
            if json_depth(&parsed) > max {
                return Err(rt(format!("Found too many nested data structures ({}) at character 1", max + 1)));
            }
            decode_value(lua, parsed)
        })?,
    )?;
    t.raw_set("null", json_null())?;
    // The tuning knobs scripts written for Redis call. A depth is 1..=2^31;
    // with no argument each only reports its setting.
    let depth_knob = |lua: &Lua, which: fn(&JsonSettings) -> &AtomicUsize| {
        let cfg = settings.clone();
        lua.create_function(move |_, a: MultiValue| {
            let cell = which(&cfg);
            if let Some(v) = a.front() {
                let n = match v {
                    Value::Integer(n) => *n as f64,
                    Value::Number(n) => *n,
                    _ => return Err(rt("bad argument #1 (number expected)")),
                };
                if !(1.0..=2147483647.0).contains(&n) {
                    return Err(rt("bad argument #1 (expected integer between 1 and 2147483647)"));
                }
                cell.store(n as usize, Relaxed);
            }
            Ok(cell.load(Relaxed) as i64)
        })
    };
    t.raw_set("encode_max_depth", depth_knob(lua, |s| &s.encode_max_depth)?)?;
    t.raw_set("decode_max_depth", depth_knob(lua, |s| &s.decode_max_depth)?)?;
    let cfg = settings.clone();
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |_, a: MultiValue| {
            let mode = match a.front() {
                None => None,
                Some(Value::Boolean(b)) => Some(*b as usize),
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"null" => Some(2),
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"on" => Some(1),
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"off" => Some(0),
                Some(_) => return Err(rt("bad argument #1 to 'encode_invalid_numbers' (invalid option)")),
            };
            if let Some(m) = mode {
                cfg.encode_invalid_numbers.store(m, Relaxed);
            }
            Ok(cfg.encode_invalid_numbers.load(Relaxed) == 1)
        })?,
    )?;
    // This encoder keeps no buffer between calls, serde_json never yields
    // NaN or Inf, and numbers print as Lua prints them (%.14g): these
    // accept their arguments and change nothing.
    for knob in ["encode_keep_buffer", "decode_invalid_numbers", "encode_number_precision"] {
        t.raw_set(knob, lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    }
    Ok(t)
}

/// lua-cmsgpack's integer encoding: the smallest form that holds `n`.
fn mp_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        match n {
            0..=127 => out.push(n as u8),
            128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn mp_len(out: &mut Vec<u8>, len: usize, fix: (u8, usize), ops: [u8; 3]) {
    let [op8, op16, op32] = ops;
    if len < fix.1 {
        out.push(fix.0 | len as u8);
    } else if op8 != 0 && len <= 0xff {
        out.extend_from_slice(&[op8, len as u8]);
    } else if len <= 0xffff {
        out.push(op16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(op32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn mp_encode(out: &mut Vec<u8>, v: &Value, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => mp_int(out, *n),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.2e18 {
                mp_int(out, *n as i64);
            } else if (*n as f32) as f64 == *n {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            mp_len(out, b.len(), (0xa0, 32), [0xd9, 0xda, 0xdb]);
            out.extend_from_slice(&b);
        }
        // Past 16 levels lua-cmsgpack writes nil instead of recursing.
        Value::Table(_) if depth >= 16 => out.push(0xc0),
        Value::Table(t) => {
            // Counted, then walked: holding every pair at once would pin a
            // Lua reference per string key (a 100k-key map overflows).
            let (mut len, mut integer_keys) = (0usize, true);
            t.for_each::<Value, Value>(|k, _| {
                len += 1;
                integer_keys &= matches!(k, Value::Integer(_)) || matches!(k, Value::Number(x) if x.fract() == 0.0);
                Ok(())
            })?;
            let n = t.raw_len();
            if n == len && integer_keys {
                mp_len(out, n, (0x90, 16), [0, 0xdc, 0xdd]);
                for i in 1..=n {
                    mp_encode(out, &t.raw_get::<Value>(i)?, depth + 1)?;
                }
            } else {
                mp_len(out, len, (0x80, 16), [0, 0xde, 0xdf]);
                t.for_each::<Value, Value>(|k, v| {
                    mp_encode(out, &k, depth + 1)?;
                    mp_encode(out, &v, depth + 1)
                })?;
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

struct MpReader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Arrays and maps open around the current value: bounded, since a
    /// script's input could otherwise nest deep enough to overflow the
    /// server's stack.
    depth: usize,
}

/// The deepest msgpack nesting `unpack` decodes.
const MP_MAX_DEPTH: usize = 512;

impl MpReader<'_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let s = self.buf.get(self.pos..self.pos + n).ok_or_else(|| rt("Missing bytes in input."))?;
        self.pos += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
    }

    fn value(&mut self, lua: &Lua) -> mlua::Result<Value> {
        let tag = self.take(1)?[0];
        let num = |n: f64| Ok(Value::Number(n));
        match tag {
            0x00..=0x7f => num(tag as f64),
            0x80..=0x8f => self.map(lua, (tag & 0x0f) as usize),
            0x90..=0x9f => self.array(lua, (tag & 0x0f) as usize),
            0xa0..=0xbf => self.string(lua, (tag & 0x1f) as usize),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                self.string(lua, n)
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                self.string(lua, n)
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                self.string(lua, n)
            }
            0xca => num(f32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")) as f64),
            0xcb => num(f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            0xcc => num(self.uint(1)? as f64),
            0xcd => num(self.uint(2)? as f64),
            0xce => num(self.uint(4)? as f64),
            0xcf => num(self.uint(8)? as f64),
            0xd0 => num(self.uint(1)? as u8 as i8 as f64),
            0xd1 => num(self.uint(2)? as u16 as i16 as f64),
            0xd2 => num(self.uint(4)? as u32 as i32 as f64),
            0xd3 => num(self.uint(8)? as i64 as f64),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n)
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n)
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n)
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n)
            }
            0xe0..=0xff => num(tag as i8 as f64),
            _ => Err(rt("Bad data format in input.")),
        }
    }

    fn string(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        Ok(Value::String(lua.create_string(self.take(n)?)?))
    }

    fn nest(&mut self) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > MP_MAX_DEPTH {
            return Err(rt("Bad data format in input: nested too deeply."));
        }
        Ok(())
    }

    fn array(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        self.nest()?;
        let t = lua.create_table_with_capacity(n.min(1024), 0)?;
        for i in 1..=n {
            t.raw_set(i, self.value(lua)?)?;
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        self.nest()?;
        let t = lua.create_table_with_capacity(0, n.min(1024))?;
        for _ in 0..n {
            let k = self.value(lua)?;
            let v = self.value(lua)?;
            if k != Value::Nil {
                t.raw_set(k, v)?;
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }
}

pub fn cmsgpack(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, a: MultiValue| {
            if a.is_empty() {
                return Err(rt("bad argument #0 to 'pack' (MessagePack pack needs input.)"));
            }
            let mut out = Vec::new();
            for v in a.iter() {
                mp_encode(&mut out, v, 0)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, a: MultiValue| {
            let Some(Value::String(s)) = a.front() else {
                return Err(rt("bad argument #1 to 'unpack' (string expected, got no value)"));
            };
            let bytes = s.as_bytes().to_vec();
            let mut r = MpReader { buf: &bytes, pos: 0, depth: 0 };
            let mut out = MultiValue::new();
            while r.pos < bytes.len() {
                out.push_back(r.value(lua)?);
            }
            Ok(out)
        })?,
    )?;
    // unpack_limit(data, limit[, offset]) and unpack_one(data[, offset]):
    // up to `limit` objects (0: all) from byte `offset`, preceded by the
    // offset of the next object, or -1 once the data is used up.
    let unpack_limit = |lua: &Lua, s: mlua::String, limit: i64, offset: i64| -> mlua::Result<MultiValue> {
        let bytes = s.as_bytes().to_vec();
        if offset < 0 || offset as usize > bytes.len() {
            return Err(rt("Start offset greater than input length"));
        }
        let mut r = MpReader { buf: &bytes, pos: offset as usize, depth: 0 };
        let mut objs = MultiValue::new();
        while r.pos < bytes.len() && (limit <= 0 || (objs.len() as i64) < limit) {
            objs.push_back(r.value(lua)?);
        }
        let next = if r.pos < bytes.len() { r.pos as i64 } else { -1 };
        objs.push_front(Value::Integer(next));
        Ok(objs)
    };
    t.raw_set(
        "unpack_limit",
        lua.create_function(move |lua, (s, limit, offset): (mlua::String, i64, Option<i64>)| {
            unpack_limit(lua, s, limit, offset.unwrap_or(0))
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(move |lua, (s, offset): (mlua::String, Option<i64>)| {
            unpack_limit(lua, s, 1, offset.unwrap_or(0))
        })?,
    )?;
    Ok(t)
}

/// Roberto Ierusalimschy's `struct` library: pack, unpack and size over
/// a format string (`<`/`>`/`=` endianness, `!n` alignment, `bBhHlLTiIn`
/// integers, `f`/`d` floats, `s` zero-terminated and `cn` fixed strings,
/// `x` padding).
mod structlib {
    use super::rt;
    use mlua::{Lua, MultiValue, Value};

    pub(super) struct Fmt<'a> {
        chars: std::iter::Peekable<std::str::Chars<'a>>,
        pub little: bool,
        pub align: usize,
    }

    pub(super) enum Item {
        Int { size: usize, signed: bool },
        Float,
        Double,
        Pad,
        Zstr,
        Chars(usize),
    }

    impl<'a> Fmt<'a> {
        pub fn new(s: &'a str) -> Fmt<'a> {
            Fmt { chars: s.chars().peekable(), little: cfg!(target_endian = "little"), align: 1 }
        }

        fn number(&mut self, default: usize) -> usize {
            let mut n = None;
            while let Some(c) = self.chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0) * 10 + c as usize);
                self.chars.next();
            }
            n.unwrap_or(default)
        }

        /// The next item, with its size; None at the end.
        pub fn next_item(&mut self) -> mlua::Result<Option<(Item, usize)>> {
            loop {
                let Some(c) = self.chars.next() else { return Ok(None) };
                let item = match c {
                    ' ' => continue,
                    '<' => {
                        self.little = true;
                        continue;
                    }
                    '>' => {
                        self.little = false;
                        continue;
                    }
                    '=' => {
                        self.little = cfg!(target_endian = "little");
                        continue;
                    }
                    '!' => {
                        self.align = self.number(8);
                        continue;
                    }
                    'b' | 'B' => (Item::Int { size: 1, signed: c == 'b' }, 1),
                    'h' | 'H' => (Item::Int { size: 2, signed: c == 'h' }, 2),
                    'l' | 'L' | 'T' => (Item::Int { size: 8, signed: c == 'l' }, 8),
                    'i' | 'I' => {
                        let n = self.number(4);
                        if !(1..=8).contains(&n) {
                            return Err(rt(format!("integral size {n} is larger than limit of 8")));
                        }
                        (Item::Int { size: n, signed: c == 'i' }, n)
                    }
                    'f' => (Item::Float, 4),
                    'd' => (Item::Double, 8),
                    'x' => (Item::Pad, 1),
                    's' => (Item::Zstr, 0),
                    'c' => {
                        let n = self.number(1);
                        (Item::Chars(n), n)
                    }
                    other => return Err(rt(format!("bad argument #1 to 'pack' (invalid format option '{other}')"))),
                };
                return Ok(Some(item));
            }
        }

        /// Padding before an item of `size` at `pos`.
        pub fn pad(&self, size: usize, pos: usize) -> usize {
            let a = size.min(self.align);
            if a <= 1 || !a.is_power_of_two() {
                return 0;
            }
            (a - pos % a) % a
        }
    }

    fn num(v: Option<&Value>) -> mlua::Result<f64> {
        match v {
            Some(Value::Integer(n)) => Ok(*n as f64),
            Some(Value::Number(n)) => Ok(*n),
            Some(Value::String(s)) => s.to_str()?.trim().parse().map_err(|_| rt("number expected")),
            _ => Err(rt("bad argument to 'pack' (number expected)")),
        }
    }

    pub(super) fn pack(lua: &Lua, a: MultiValue) -> mlua::Result<mlua::String> {
        let Some(Value::String(f)) = a.front() else { return Err(rt("bad argument #1 to 'pack' (string expected)")) };
        let f = f.to_str()?.to_string();
        let mut fmt = Fmt::new(&f);
        let mut out = Vec::new();
        let mut arg = 1;
        while let Some((item, size)) = fmt.next_item()? {
            out.resize(out.len() + fmt.pad(size, out.len()), 0);
            match item {
                Item::Int { size, .. } => {
                    let v = num(a.get(arg))? as i64;
                    arg += 1;
                    let bytes = v.to_le_bytes();
                    let mut field: Vec<u8> = bytes[..size].to_vec();
                    if !fmt.little {
                        field.reverse();
                    }
                    out.extend_from_slice(&field);
                }
                Item::Float | Item::Double => {
                    let v = num(a.get(arg))?;
                    arg += 1;
                    let mut field = if matches!(item, Item::Float) {
                        (v as f32).to_le_bytes().to_vec()
                    } else {
                        v.to_le_bytes().to_vec()
                    };
                    if !fmt.little {
                        field.reverse();
                    }
                    out.extend_from_slice(&field);
                }
                Item::Pad => out.push(0),
                Item::Zstr | Item::Chars(_) => {
                    let Some(Value::String(s)) = a.get(arg) else {
                        return Err(rt("bad argument to 'pack' (string expected)"));
                    };
                    arg += 1;
                    let b = s.as_bytes();
                    match item {
                        Item::Zstr => {
                            out.extend_from_slice(&b);
                            out.push(0);
                        }
                        Item::Chars(0) => out.extend_from_slice(&b),
                        Item::Chars(n) => {
                            if b.len() < n {
                                return Err(rt("bad argument to 'pack' (string too short)"));
                            }
                            out.extend_from_slice(&b[..n]);
                        }
                        _ => unreachable!(),
                    }
                }
            }
        }
        lua.create_string(&out)
    }

    pub(super) fn unpack(lua: &Lua, a: MultiValue) -> mlua::Result<MultiValue> {
        let (Some(Value::String(f)), Some(Value::String(data))) = (a.front(), a.get(1)) else {
            return Err(rt("bad argument to 'unpack' (string expected)"));
        };
        let f = f.to_str()?.to_string();
        let data = data.as_bytes().to_vec();
        let mut pos = match a.get(2) {
            Some(v @ (Value::Integer(_) | Value::Number(_))) => (num(Some(v))? as usize).saturating_sub(1),
            _ => 0,
        };
        let mut fmt = Fmt::new(&f);
        let mut out = MultiValue::new();
        let short = || rt("bad argument #2 to 'unpack' (data string too short)");
        while let Some((item, size)) = fmt.next_item()? {
            pos += fmt.pad(size, pos);
            match item {
                Item::Int { size, signed } => {
                    let mut field = data.get(pos..pos + size).ok_or_else(short)?.to_vec();
                    if !fmt.little {
                        field.reverse();
                    }
                    let mut v: u64 = 0;
                    for (i, b) in field.iter().enumerate() {
                        v |= (*b as u64) << (8 * i);
                    }
                    let n = if signed && size < 8 && v & (1 << (size * 8 - 1)) != 0 {
                        (v | (u64::MAX << (size * 8))) as i64 as f64
                    } else if signed {
                        v as i64 as f64
                    } else {
                        v as f64
                    };
                    out.push_back(Value::Number(n));
                    pos += size;
                }
                Item::Float | Item::Double => {
                    let mut field = data.get(pos..pos + size).ok_or_else(short)?.to_vec();
                    if !fmt.little {
                        field.reverse();
                    }
                    let v = if size == 4 {
                        f32::from_le_bytes(field.try_into().expect("4 bytes")) as f64
                    } else {
                        f64::from_le_bytes(field.try_into().expect("8 bytes"))
                    };
                    out.push_back(Value::Number(v));
                    pos += size;
                }
                Item::Pad => pos += 1,
                Item::Zstr => {
                    let rest = data.get(pos..).ok_or_else(short)?;
                    let end = rest.iter().position(|&b| b == 0).ok_or_else(|| rt("unfinished string in data"))?;
                    out.push_back(Value::String(lua.create_string(&rest[..end])?));
                    pos += end + 1;
                }
                Item::Chars(n) => {
                    let s = data.get(pos..pos + n).ok_or_else(short)?;
                    out.push_back(Value::String(lua.create_string(s)?));
                    pos += n;
                }
            }
        }
        out.push_back(Value::Number((pos + 1) as f64));
        Ok(out)
    }

    pub(super) fn size(_: &Lua, f: mlua::String) -> mlua::Result<f64> {
        let f = f.to_str()?.to_string();
        let mut fmt = Fmt::new(&f);
        let mut pos = 0;
        while let Some((item, size)) = fmt.next_item()? {
            if matches!(item, Item::Zstr) {
                return Err(rt("options 's' has no fixed size"));
            }
            pos += fmt.pad(size, pos) + size;
        }
        Ok(pos as f64)
    }
}

pub fn structlib(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(structlib::pack)?)?;
    t.raw_set("unpack", lua.create_function(structlib::unpack)?)?;
    t.raw_set("size", lua.create_function(structlib::size)?)?;
    Ok(t)
}

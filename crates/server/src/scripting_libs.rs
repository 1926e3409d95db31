//! The Lua libraries Redis bundles for scripts, written in Rust: `bit`
//! (LuaBitOp's API: 32-bit integer operations on Lua numbers) and `cjson`
//! (lua-cjson's encode/decode, with its number format and error texts).

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

fn rt(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

/// LuaBitOp's normalisation: round to the nearest integer (ties to even),
/// keep the low 32 bits, read them as signed.
fn tobit(v: &Value) -> mlua::Result<i32> {
    let x = match v {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        Value::String(s) => s.to_str()?.trim().parse::<f64>().map_err(|_| rt("bad argument (number expected)"))?,
        _ => return Err(rt(format!("bad argument (number expected, got {})", v.type_name()))),
    };
    Ok(x.round_ties_even().rem_euclid(4_294_967_296.0) as u32 as i32)
}

fn arg(args: &MultiValue, i: usize) -> mlua::Result<i32> {
    tobit(args.get(i).unwrap_or(&Value::Nil))
}

pub fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("tobit", lua.create_function(|_, a: MultiValue| Ok(arg(&a, 0)? as f64))?)?;
    t.raw_set("bnot", lua.create_function(|_, a: MultiValue| Ok(!arg(&a, 0)? as f64))?)?;
    type Fold = fn(i32, i32) -> i32;
    let folds: [(&str, Fold); 3] = [("band", |a, b| a & b), ("bor", |a, b| a | b), ("bxor", |a, b| a ^ b)];
    for (name, op) in folds {
        t.raw_set(
            name,
            lua.create_function(move |_, a: MultiValue| {
                let mut acc = arg(&a, 0)?;
                for i in 1..a.len() {
                    acc = op(acc, arg(&a, i)?);
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
            lua.create_function(move |_, a: MultiValue| Ok(op(arg(&a, 0)?, (arg(&a, 1)? & 31) as u32) as f64))?,
        )?;
    }
    t.raw_set("bswap", lua.create_function(|_, a: MultiValue| Ok(arg(&a, 0)?.swap_bytes() as f64))?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, a: MultiValue| {
            let x = arg(&a, 0)? as u32;
            let n = if a.len() > 1 { arg(&a, 1)? } else { 8 };
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

fn encode_value(out: &mut Vec<u8>, v: &Value, depth: usize) -> mlua::Result<()> {
    if depth > 1000 {
        return Err(rt("Cannot serialise, excessive nesting (1001)"));
    }
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(u) if u.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() {
                return Err(rt("Cannot serialise number: must not be NaN or Inf"));
            }
            out.extend_from_slice(crate::scripting::lua_number(*n).as_bytes());
        }
        Value::String(s) => encode_string(out, &s.as_bytes()),
        Value::Table(t) => encode_table(out, t, depth)?,
        other => return Err(rt(format!("Cannot serialise {}: type not supported", other.type_name()))),
    }
    Ok(())
}

fn encode_table(out: &mut Vec<u8>, t: &Table, depth: usize) -> mlua::Result<()> {
    let pairs: Vec<(Value, Value)> = t.pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
    // An array when every key is a positive integer (lua-cjson's rule),
    // refusing arrays that are mostly holes.
    let mut max = 0usize;
    let array = !pairs.is_empty()
        && pairs.iter().all(|(k, _)| {
            let n = match k {
                Value::Integer(n) => *n as f64,
                Value::Number(n) => *n,
                _ => return false,
            };
            let ok = n >= 1.0 && n == n.trunc();
            if ok {
                max = max.max(n as usize);
            }
            ok
        });
    if array {
        if max > pairs.len() * 2 && max > 10 {
            return Err(rt("Cannot serialise table: excessively sparse array"));
        }
        out.push(b'[');
        for i in 1..=max {
            if i > 1 {
                out.push(b',');
            }
            encode_value(out, &t.raw_get::<Value>(i)?, depth + 1)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match k {
            Value::String(s) => encode_string(out, &s.as_bytes()),
            Value::Integer(n) => encode_string(out, n.to_string().as_bytes()),
            Value::Number(n) => encode_string(out, crate::scripting::lua_number(*n).as_bytes()),
            _ => return Err(rt("Cannot serialise table: table key must be a number or string")),
        }
        out.push(b':');
        encode_value(out, v, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
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
    t.raw_set(
        "encode",
        lua.create_function(|lua, a: MultiValue| {
            if a.len() != 1 {
                return Err(rt("bad argument #1 to 'encode' (expected 1 argument)"));
            }
            let mut out = Vec::new();
            encode_value(&mut out, &a[0], 0)?;
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, a: MultiValue| {
            let Some(Value::String(s)) = a.front() else {
                return Err(rt("bad argument #1 to 'decode' (string expected)"));
            };
            let parsed: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| rt(format!("Expected value but found invalid token at character {}", e.column())))?;
            decode_value(lua, parsed)
        })?,
    )?;
    t.raw_set("null", json_null())?;
    Ok(t)
}

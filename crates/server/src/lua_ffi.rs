//! `redis.call` and `redis.pcall` as Lua C functions: the arguments are
//! read straight off the Lua stack into the RESP request the command runs
//! from, and the reply is pushed straight back as Redis converts it.
//!
//! Why not mlua callbacks, as before: for each call mlua moved every
//! argument into a reference (a slot on its auxiliary thread, taken and
//! freed again), gathered them in a `MultiValue`, built the reply as mlua
//! values and moved those back; perf put that at about a sixth of a small
//! EVALSHA's time. The command itself runs in `crate::scripting`
//! (`redis_call`), the same for both.
//!
//! Errors: `redis.call` raises the error reply as Redis does, a table
//! `{err = …}` (the handler and the `pcall` wrapper read it), with
//! nothing of Rust's left on the frame when `lua_error` jumps out.
#![allow(unsafe_code)]

use crate::scripting::{call_for_script, format_g};
use larder_protocol::{Frame, Request};
use mlua::ffi;
use std::ffi::c_int;
use std::sync::atomic::AtomicPtr;

/// `redis.call`: the reply, or the error reply raised.
///
/// # Safety
/// Called by Lua, as a C closure made by `make_call` (its upvalue is the
/// run slot).
pub unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: per the caller.
    if unsafe { run(state, true) } {
        // SAFETY: the error table is on top; `run` has returned, so
        // nothing of Rust's is left on this frame.
        unsafe { ffi::lua_error(state) };
    }
    1
}

/// `redis.pcall`: the reply, an error reply as `{err = …}`.
///
/// # Safety
/// As [`redis_call`].
pub unsafe extern "C-unwind" fn redis_pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: per the caller.
    if unsafe { run(state, false) } {
        // SAFETY: as in redis_call.
        unsafe { ffi::lua_error(state) };
    }
    1
}

/// Runs the call and leaves one value on top of the stack: the reply, or
/// the error table. True if that is to be raised.
unsafe fn run(state: *mut ffi::lua_State, raise: bool) -> bool {
    // SAFETY: the closure's upvalue is the light userdata `make_call` gave
    // it, a pointer into the `Arc` the Lua state's owner keeps.
    let slot = unsafe { &*(ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *const AtomicPtr<()>) };
    // SAFETY: the stack holds the call's arguments; once copied into the
    // request they go, so the reply has the whole stack (a call may take
    // up to the 8,000 slots a C function gets).
    let input = unsafe { request(state) };
    // SAFETY: as above.
    unsafe { ffi::lua_settop(state, 0) };
    // A command that panics must not unwind through Lua's C frames (mlua's
    // callbacks caught that too): the script ends with an error instead,
    // as far as it got, and the panic is in the log as any other.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call_for_script(slot, input)));
    let (reply, failed, resp3, always_raise) = match outcome {
        Ok(Some((reply, failed, resp3))) => (reply, failed, resp3, false),
        Ok(None) => {
            let msg = "ERR redis.call/pcall can only be called inside a script invocation";
            (Frame::Error(msg.into()), true, false, true)
        }
        Err(_) => {
            let msg = "ERR internal error running a command from the script (see the server log)";
            (Frame::Error(msg.into()), true, false, true)
        }
    };
    // SAFETY: room for the reply is checked in push.
    unsafe { push(state, &reply, resp3) };
    failed && (raise || always_raise)
}

/// The call's arguments as a RESP request (the bytes, and where each
/// argument is in them), or why they cannot be one.
unsafe fn request(state: *mut ffi::lua_State) -> Result<(Vec<u8>, Request), &'static str> {
    let n = unsafe { ffi::lua_gettop(state) };
    if n == 0 {
        return Err("Please specify at least one argument for this redis lib call");
    }
    let mut out = Vec::with_capacity(64);
    let mut req = Request::begin(n as usize, &mut out);
    for i in 1..=n {
        // SAFETY: reads of the arguments' slots, 1 to n; a string's bytes
        // stay on the stack (and valid) while they are copied.
        unsafe {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let p = ffi::lua_tolstring(state, i, &mut len);
                    req.push_arg(&mut out, std::slice::from_raw_parts(p.cast(), len));
                }
                // Redis formats numbers for commands with 17 digits (%.17g),
                // not Lua's 14.
                ffi::LUA_TNUMBER => req.push_arg(&mut out, format_g(ffi::lua_tonumber(state, i), 17).as_bytes()),
                _ => return Err("Lua redis lib command arguments must be strings or integers"),
            }
        }
    }
    Ok((out, req))
}

/// How many stack slots pushing `f` takes at most.
fn depth(f: &Frame) -> usize {
    let inner = |items: &mut dyn Iterator<Item = &Frame>| items.map(depth).max().unwrap_or(0);
    match f {
        Frame::Array(items) | Frame::Push(items) | Frame::Set(items) => 3 + inner(&mut items.iter()),
        Frame::Map(pairs) => 3 + inner(&mut pairs.iter().flat_map(|(k, v)| [k, v])),
        Frame::Attribute { reply, .. } => depth(reply),
        _ => 4,
    }
}

/// Pushes a reply as Redis hands it to Lua (RESP2 rules unless the script
/// asked for RESP3 with redis.setresp(3)); an error reply as `{err = …}`.
unsafe fn push(state: *mut ffi::lua_State, f: &Frame, resp3: bool) {
    // SAFETY: lua_checkstack grows the stack without raising; a reply
    // deeper than it can grow is answered with an error table instead.
    unsafe {
        if ffi::lua_checkstack(state, depth(f) as c_int) == 0 {
            ffi::lua_checkstack(state, 4);
            push_frame(state, &Frame::Error("ERR reply too deeply nested for Lua".into()), false);
            return;
        }
        push_frame(state, f, resp3);
    }
}

unsafe fn push_bytes(state: *mut ffi::lua_State, b: &[u8]) {
    // SAFETY: the caller made room; Lua copies the bytes.
    unsafe { ffi::lua_pushlstring(state, b.as_ptr().cast(), b.len()) };
}

/// `{tag = <what push_value pushes>}`.
unsafe fn tagged(state: *mut ffi::lua_State, tag: &std::ffi::CStr, push_value: impl FnOnce()) {
    // SAFETY: the caller made room for the table, its key and the value.
    unsafe {
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_pushstring(state, tag.as_ptr());
        push_value();
        ffi::lua_rawset(state, -3);
    }
}

/// The array `{items…}`.
unsafe fn seq<'a>(state: *mut ffi::lua_State, n: usize, items: impl Iterator<Item = &'a Frame>, resp3: bool) {
    // SAFETY: the caller made room for the table and a value at a time.
    unsafe {
        ffi::lua_createtable(state, n.min(c_int::MAX as usize) as c_int, 0);
        for (i, x) in items.enumerate() {
            push_frame(state, x, resp3);
            ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
        }
    }
}

unsafe fn push_frame(state: *mut ffi::lua_State, f: &Frame, resp3: bool) {
    // SAFETY (whole body): `push` checked room for the deepest path.
    unsafe {
        match f {
            Frame::Simple(s) => tagged(state, c"ok", || push_bytes(state, s)),
            Frame::Error(e) => tagged(state, c"err", || push_bytes(state, e)),
            Frame::Integer(n) => ffi::lua_pushnumber(state, *n as f64),
            Frame::Bulk(b) => push_bytes(state, b),
            Frame::Null | Frame::NullArray if resp3 => ffi::lua_pushnil(state),
            Frame::Null | Frame::NullArray => ffi::lua_pushboolean(state, 0),
            Frame::Array(items) | Frame::Push(items) => seq(state, items.len(), items.iter(), resp3),
            // Sets and maps grow from empty tables, as Redis's do: a
            // table sized up front lays its keys out in another order,
            // and a script returning it would reply in that order.
            Frame::Set(items) if resp3 => tagged(state, c"set", || {
                ffi::lua_createtable(state, 0, 0);
                for x in items {
                    push_frame(state, x, resp3);
                    ffi::lua_pushboolean(state, 1);
                    ffi::lua_rawset(state, -3);
                }
            }),
            Frame::Set(items) => seq(state, items.len(), items.iter(), resp3),
            Frame::Map(pairs) if resp3 => tagged(state, c"map", || {
                ffi::lua_createtable(state, 0, 0);
                for (k, v) in pairs {
                    push_frame(state, k, resp3);
                    push_frame(state, v, resp3);
                    ffi::lua_rawset(state, -3);
                }
            }),
            Frame::Map(pairs) => seq(state, pairs.len() * 2, pairs.iter().flat_map(|(k, v)| [k, v]), resp3),
            Frame::Double(d) if resp3 => tagged(state, c"double", || ffi::lua_pushnumber(state, *d)),
            Frame::Double(d) => push_bytes(state, larder_protocol::format_double(*d).as_bytes()),
            Frame::Boolean(b) if resp3 => ffi::lua_pushboolean(state, *b as c_int),
            Frame::Boolean(b) => ffi::lua_pushnumber(state, *b as i64 as f64),
            Frame::BigNumber(n) if resp3 => tagged(state, c"big_number", || push_bytes(state, n)),
            Frame::BigNumber(n) => push_bytes(state, n),
            Frame::Verbatim { format, text } if resp3 => tagged(state, c"verbatim_string", || {
                ffi::lua_createtable(state, 0, 2);
                ffi::lua_pushstring(state, c"format".as_ptr());
                push_bytes(state, format);
                ffi::lua_rawset(state, -3);
                ffi::lua_pushstring(state, c"string".as_ptr());
                push_bytes(state, text);
                ffi::lua_rawset(state, -3);
            }),
            Frame::Verbatim { text, .. } => push_bytes(state, text),
            // Redis's Lua conversion skips attributes.
            Frame::Attribute { reply, .. } => push_frame(state, reply, resp3),
        }
    }
}

/// `redis.call` or `redis.pcall` (`f`) as a C closure over the run slot.
pub fn make_call(
    lua: &mlua::Lua,
    slot: &std::sync::Arc<AtomicPtr<()>>,
    f: ffi::lua_CFunction,
) -> mlua::Result<mlua::Function> {
    let ptr = std::sync::Arc::as_ptr(slot) as *mut std::ffi::c_void;
    // SAFETY: exec_raw runs this on a stack with room for three values;
    // the closure is left on it as the result. The pointer stays valid as
    // long as the state: its owner keeps the Arc and drops the state first.
    unsafe {
        lua.exec_raw::<mlua::Function>((), |state| {
            ffi::lua_pushlightuserdata(state, ptr);
            ffi::lua_pushcclosure(state, f, 1);
        })
    }
}

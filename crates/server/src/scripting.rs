//! Lua scripting: one Lua 5.1 VM (mlua, vendored) with Redis's script
//! environment, and the machinery EVAL and FCALL share.
//!
//! A script runs under the world write lock (EVAL is EXCLUSIVE in the
//! command table), so it is atomic like EXEC and may touch keys it did not
//! declare. `redis.call` runs each command through the normal dispatcher
//! on the caller's own client (with `in_exec` set, so nothing blocks or
//! queues); its writes reach the effect stream between a MULTI and an
//! EXEC, which is how a script's effects propagate as the writes it made.
//!
//! The environment follows Redis 7: `redis.*`, `KEYS`/`ARGV`, the `bit`
//! and `cjson` libraries, no `os`/`io`/`loadfile`/`dofile`, and read-only
//! globals (reading a missing one or creating one is an error). Redis
//! makes what scripts share read-only inside its patched Lua; here the
//! prelude hands scripts read-only views of it and guards the raw writers
//! (rawset, table.insert, setfenv), so no script can change what a later
//! one, of another user, runs. Errors are shaped as Redis shapes them: a
//! handler given to `xpcall` turns any error into `{err=…}` and finds where
//! it happened, and the reply becomes
//! `<err> script: <sha>, on @user_script:<line>.`
//!
//! SCRIPT DEBUG's sessions live in `crate::ldb`; `redis.call` and
//! `redis.pcall` are C functions in `crate::lua_ffi`.
//!
//! A script runs on its connection's tokio worker; the instruction-count
//! hook hands the worker to another thread once the script has run a few
//! milliseconds (`leave_worker`), so other clients are served while it
//! runs on. One that runs past `busy-reply-threshold` makes them get BUSY;
//! SCRIPT KILL sets a flag that the same hook checks.

use crate::cmd::table::{flags, Command};
use crate::cmd::Ctx;
use crate::error::CmdError;
use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use larder_protocol::{encode, Frame, Proto, Request};
use mlua::{ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Lua instructions between two checks of the kill flag.
const HOOK_EVERY: u32 = 10_000;
/// How long a script runs on its connection's worker before the hook hands
/// the worker on (see [`leave_worker`]): far below any busy-reply-threshold
/// in use, far above what most scripts take.
const LEAVE_WORKER_AFTER_MS: u64 = 2;
/// How long a library's load-time code may run (Redis's 500 ms).
const LOAD_TIMEOUT_MS: u64 = 500;

/// Sets up the parts of the Redis API that are plain Lua, and the
/// read-only views of what scripts share. `redis.call` and `redis.pcall`
/// are C functions (`crate::lua_ffi`), the rest of the API Rust functions,
/// registered once (see [`Running`]); `hidden` holds what the engine needs
/// from Lua.
const PRELUDE: &str = r#"
local hidden, G = ...
-- The prelude's functions reach globals only through these locals: a
-- script may change the environment of a function it can name (setfenv),
-- and that must not change what these do for the next script.
local error, type, rawget, rawset, tostring, ipairs = error, type, rawget, rawset, tostring, ipairs
local pairs, getfenv, setfenv, select = pairs, getfenv, setfenv, select
local real_setmetatable, real_setfenv = setmetatable, setfenv

-- As Redis's luaPushErrorBuff: "-CODE msg" keeps its code, anything
-- else gets ERR, and the message loses surrounding CR/LF.
redis.error_reply = function(msg)
  if type(msg) ~= 'string' then error('wrong number or type of arguments', 2) end
  if msg:sub(1, 1) ~= '-' then msg = '-' .. msg end
  local space = msg:find(' ', 1, true)
  local code, text = 'ERR', msg:sub(2)
  if space then code, text = msg:sub(2, space - 1), msg:sub(space + 1) end
  text = text:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return {err = code .. ' ' .. text}
end
redis.status_reply = function(msg)
  if type(msg) ~= 'string' then error('wrong number or type of arguments', 2) end
  return {ok = msg}
end
redis.replicate_commands = function() return true end
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3

-- pcall hands errors back as Redis 7's does: an error reply ({err=...},
-- or one raised from Rust by redis.call or a library) as its message.
-- A killed script must not go on by catching the kill: past the kill,
-- pcall and xpcall raise the error again outside their protection.
local real_pcall, real_xpcall = pcall, xpcall
local function as_redis(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if hidden.killed() then error(e, 0) end
  if type(e) == 'userdata' then return false, hidden.error_text(e) end
  if type(e) == 'table' and type(rawget(e, 'err')) == 'string' then return false, rawget(e, 'err') end
  return false, ...
end
pcall = function(...) return as_redis(real_pcall(...)) end
xpcall = function(f, handler)
  return as_redis(real_xpcall(f, function(e)
    if hidden.killed() then return e end
    return handler(e)
  end))
end

-- Compiled (binary) chunks are refused: hand-made bytecode can crash the
-- VM. loadstring returns nil and the reason, as Redis's patched Lua does.
-- A chunk it makes runs in a script's kind of environment: Lua would give
-- it the globals table itself, where it could assign any global.
local real_loadstring, real_load, concat = loadstring, load, table.concat
local function binary(s) return type(s) == 'string' and s:byte(1) == 27 end
local function chunk_loader(s, name)
  if binary(s) then return nil, 'attempt to load a binary chunk' end
  local f, e = real_loadstring(s, name)
  if f then real_setfenv(f, real_setmetatable({}, hidden.env_meta)) end
  return f, e
end
loadstring = chunk_loader
load = function(reader, name)
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == '' then break end
    parts[#parts + 1] = piece
  end
  return chunk_loader(concat(parts), name)
end

-- Globals are read-only, and reading a missing one is an error. A
-- script's environment reads through to the globals table itself, so a
-- global a script names (redis, KEYS) costs two table lookups, not a
-- call of a Lua function; the error for a missing one is the globals'
-- own __index (set below, once the prelude no longer reads globals).
-- `missing` is called from an __index function: level 3 is the code that
-- read the name.
local missing = function(k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 3)
end
hidden.env_meta = {
  __index = G,
  __newindex = function() error('Attempt to modify a readonly table', 2) end,
}

-- Library tables are read-only too (Redis 7 patches Lua for that; here
-- each is replaced by an empty proxy that reads through to it). What
-- getmetatable returns for them, and for the globals, is itself
-- read-only, and setmetatable on any of them fails the same way.
local readonly_meta = real_setmetatable({}, { __newindex = hidden.env_meta.__newindex })
hidden.env_meta.__metatable = readonly_meta
-- Every table scripts share across runs is read-only to them: a script
-- that could change one (redis.call, a string method, a global) would
-- change what the next script, of any user, runs. Scripts see each of
-- these tables through an empty proxy (`protected`), which raw writes
-- (rawset, table.insert/remove/sort) refuse as Redis's read-only tables
-- do. Raw reads (rawget, next, pairs) of a proxy see it empty: wrapping
-- them in Lua would put the wrapper's position into their argument errors
-- (`pairs(nil)`) and lose the script's frame to tail calls.
local protected = { [readonly_meta] = true }
local function proxy_of(real, index)
  local proxy = real_setmetatable({}, {
    __index = index or real, __newindex = hidden.env_meta.__newindex, __metatable = readonly_meta,
  })
  protected[proxy] = true
  return proxy
end
for _, name in ipairs({'redis', 'cjson', 'cmsgpack', 'bit', 'struct', 'string', 'math', 'table', 'coroutine'}) do
  local real = rawget(G, name)
  hidden['real_' .. name] = real
  rawset(G, name, proxy_of(real))
end
-- No newproxy: a userdata it makes can carry a __gc finalizer, which the
-- collector would run in whichever later script it happens to run, with
-- that script's user and keys (Debian's redis-server has none either).
rawset(G, 'newproxy', nil)
-- The globals: `_G`, getfenv and the globals of a coroutine show the proxy.
local G_view = proxy_of(G)
rawset(G, '_G', G_view)
local function shown(t) if t == G then return G_view end return t end
-- Strings' metatable: getmetatable('') gives a read-only view whose
-- __index is the string library's proxy.
local string_meta = getmetatable('')
rawset(string_meta, '__metatable', proxy_of(string_meta, function(_, k)
  if k == '__index' then return rawget(G, 'string') end
  return rawget(string_meta, k)
end))
local function readonly() error('Attempt to modify a readonly table', 0) end
setmetatable = function(t, m)
  if t == G or protected[t] then readonly() end
  return real_setmetatable(t, m)
end
-- A Lua wrapper names its own position in a C function's argument
-- errors: it checks the table itself, at its caller's level.
local function table_arg(name, level, ...)
  local t = ...
  if type(t) ~= 'table' then
    local got = select('#', ...) == 0 and 'no value' or type(t)
    error("bad argument #1 to '" .. name .. "' (table expected, got " .. got .. ")", level + 1)
  end
  return t
end
rawset(G, 'rawset', function(...)
  if protected[table_arg('rawset', 2, ...)] then readonly() end
  return (rawset(...))
end)
rawset(G, 'getfenv', function(f)
  if f == nil then f = 1 end
  if type(f) == 'number' and f > 0 then f = f + 1 end
  return shown(getfenv(f))
end)
-- A script may set the environment of its own functions (and levels of
-- its own stack), not the thread's globals or a shared function's (one
-- whose environment is the globals: the prelude's, the libraries'), which
-- read no globals, but where one script could leave data for the next.
rawset(G, 'setfenv', function(f, t)
  if type(f) == 'number' and f > 0 then f = f + 1 end
  if f == 0 or getfenv(f) == G then readonly() end
  return (setfenv(f, t))
end)
-- table.insert writes raw: it checks its table first (as the C function
-- would, with the script's position). remove and sort only move what a
-- table's array part holds, and a read-only one holds nothing: they need
-- the same first check only so their errors keep the script's position.
do
  local real_table = hidden.real_table
  local insert, remove, sort = real_table.insert, real_table.remove, real_table.sort
  real_table.insert = function(...)
    if protected[table_arg('insert', 2, ...)] then readonly() end
    local n = select('#', ...)
    if n ~= 2 and n ~= 3 then error("wrong number of arguments to 'insert'", 2) end
    insert(...)
  end
  real_table.remove = function(...)
    table_arg('remove', 2, ...)
    return (remove(...))
  end
  real_table.sort = function(...)
    table_arg('sort', 2, ...)
    sort(...)
  end
end
real_setmetatable(G, { __index = function(_, k) missing(k) end, __newindex = hidden.env_meta.__newindex, __metatable = readonly_meta })
hidden.run = function(f, handler) return real_xpcall(f, handler) end
-- A script runs in an environment of its own, fresh each run (what it
-- manages to store there does not outlive the run), made here in Lua:
-- each object made from Rust costs a registry reference. Globals cannot
-- be assigned, so a run leaves its environment empty unless it rawset
-- something there; an empty one serves the next run, which then leaves
-- the collector one table fewer (a fifth of a small script's garbage).
local real_next, spare_env = next, nil
local function keep_if_empty(env, ...)
  if real_next(env) == nil then spare_env = env end
  return ...
end
hidden.run_script = function(f, handler)
  local env = spare_env or real_setmetatable({}, hidden.env_meta)
  spare_env = nil
  real_setfenv(f, env)
  return keep_if_empty(env, real_xpcall(f, handler))
end

-- Function libraries: `redis` is the load-time API while a library loads
-- and the full API while its functions run; KEYS and ARGV do not exist.
-- This is the environment a library loads in (the load-time code, and
-- any function it calls then): only `redis`, the load-time API, exists,
-- as in Redis (no math, string or other library before a function
-- runs). Once loaded, the library's environment reads through the
-- globals as a script's does (load_library), where FCALL has taken
-- KEYS and ARGV out.
hidden.loading = false
hidden.lib_env_meta = {
  __index = function(_, k)
    if k == 'redis' then return hidden.load_view end
    missing(k)
  end,
  __newindex = hidden.env_meta.__newindex,
  __metatable = readonly_meta,
}
hidden.load_api = {
  register_function = function(...)
    if not hidden.loading then
      error('redis.register_function can only be called on FUNCTION LOAD command', 2)
    end
    return hidden.register(...)
  end,
  log = redis.log, LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}
hidden.load_view = setmetatable({}, {
  __index = function(_, k)
    local v = rawget(hidden.load_api, k)
    if v == nil then missing(k) end
    return v
  end,
  __newindex = hidden.env_meta.__newindex,
  __metatable = readonly_meta,
})
-- xpcall passes no arguments, so the function and its arguments wait in
-- locals a single trampoline reads, and are let go as the call returns:
-- a closure made per call was garbage each FCALL left (functions do not
-- nest: FCALL is refused inside a script).
local call_f, call_keys, call_args
local function trampoline() return call_f(call_keys, call_args) end
local function released(...)
  call_f, call_keys, call_args = nil, nil, nil
  return ...
end
hidden.fcall = function(f, handler, keys, args)
  call_f, call_keys, call_args = f, keys, args
  return released(real_xpcall(trampoline, handler))
end
"#;

/// The prelude compiled and stripped of its debug information, once per
/// process, in a VM of its own: compiling it in the scripting VM would
/// leave that VM's string table grown by the names stripping drops.
static STRIPPED_PRELUDE: std::sync::LazyLock<Option<Vec<u8>>> = std::sync::LazyLock::new(|| {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).ok()?;
    let f = lua.load(PRELUDE).set_name("=prelude").into_function().ok()?;
    crate::lua_strip::strip(&f.dump(false))
});

/// What one script run may do, and what it did.
struct RunState {
    /// Protocol for redis.call replies inside the script (redis.setresp).
    resp3: bool,
    /// EVAL_RO / a no-writes function: writes are refused.
    read_only: bool,
    /// Declared allow-oom (or no-writes): denyoom commands run even out of
    /// memory.
    allow_oom: bool,
    /// Error replies the script's commands gave, already counted in
    /// errorstats: the script's own error reply does not count again if it
    /// only passes one on.
    counted: Vec<String>,
    /// A write ran: the effects are wrapped in MULTI/EXEC, and SCRIPT KILL
    /// can no longer stop the script.
    wrote: bool,
}

pub struct Scripting {
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call NOSCRIPT commands
    /// (the Redis test suite uses it to call DEBUG from scripts).
    pub allow_noscript: AtomicBool,
    /// The Lua heap right after the last full collection (0: none yet).
    lua_floor: AtomicU64,
    lua: Mutex<LuaState>,
    /// The last [`Scripting::footprint`] taken with the VM free.
    footprint: Mutex<Footprint>,
    /// Start of the running script in ms since `epoch`, or 0.
    running_since: AtomicU64,
    epoch: Instant,
    kill: Arc<AtomicBool>,
    /// The running script has written (SCRIPT KILL answers UNKILLABLE).
    wrote: AtomicBool,
    busy_threshold: AtomicU64,
    /// The running function and the command that called it (FUNCTION
    /// STATS); None while an EVAL script runs.
    running_fn: Mutex<Option<RunningFn>>,
    /// (libraries, functions), kept outside the VM lock so FUNCTION STATS
    /// answers while a function runs.
    counts: Mutex<(usize, usize)>,
}

struct LuaState {
    lua: Lua,
    hidden: Table,
    /// `hidden.run_script`, `hidden.fcall` and `hidden.handler`, fetched
    /// once: every handle made from Rust costs a lock and a registry
    /// reference.
    run_script: Function,
    run_function: Function,
    handler: Function,
    /// sha1 → (body, compiled function)
    scripts: HashMap<String, (Bytes, Function, Declared)>,
    /// Function libraries by name, in name order (FUNCTION LIST, DUMP).
    libraries: std::collections::BTreeMap<String, Library>,
    /// While a library's load-time code runs: ms since `epoch`, plus one.
    load_since: Arc<AtomicU64>,
    /// While a script runs and still holds its tokio worker: the ms since
    /// `epoch` after which the hook hands the worker on (0: nothing to do).
    leave_at: Arc<AtomicU64>,
    /// While a script runs: (its start, the moment it counts as slow by
    /// busy-reply-threshold), in ms since `epoch`, when the hook logs
    /// Redis's "Slow script detected" once ((0, 0): nothing to log); and
    /// the kill command and name that line gives, in a buffer reused from
    /// run to run.
    slow_at: Arc<(AtomicU64, AtomicU64)>,
    slow_what: Arc<Mutex<String>>,
    epoch: Instant,
    /// The run in progress, for the callbacks registered once (see
    /// [`Running`]); null between runs.
    running: Arc<AtomicPtr<()>>,
    /// The instruction hook (kill flag, worker hand-off, load timeout), to
    /// put back after a debugging session replaced it.
    hook: Arc<Hook>,
}

type Hook = dyn Fn(&Lua, &mlua::Debug) -> mlua::Result<VmState> + Send + Sync;

/// Where the registry keeps `hidden.env_meta` (a script environment's
/// metatable), for the debugger's `eval`.
pub(crate) const ENV_META_KEY: &std::ffi::CStr = c"larder_env_meta";

/// What redis.call, redis.pcall, redis.setresp and redis.acl_check_cmd
/// need from the run in progress. They are registered once, in
/// [`LuaState::new`], and find the run through a pointer [`Scripting::run`]
/// sets for its duration (redis.call and redis.pcall, C functions, hold
/// that pointer's slot as their upvalue). Why not closures over the run, in an mlua scope,
/// as before: creating four scoped callbacks and destroying them again
/// was about a tenth of an EVALSHA's time (perf, pipeline 16).
struct Running<'r, 'c> {
    ctx: std::cell::RefCell<&'r mut Ctx<'c>>,
    state: std::cell::RefCell<RunState>,
    wrote: &'r AtomicBool,
}

/// Calls `f` with the run in progress, or fails when none is (a function
/// kept from an earlier run and called while a library loads).
fn with_running<T>(slot: &AtomicPtr<()>, f: impl FnOnce(&Running<'_, '_>) -> mlua::Result<T>) -> mlua::Result<T> {
    running(slot, f).unwrap_or_else(|| api_err("redis.call/pcall can only be called inside a script invocation"))
}

/// `f` with the run in progress; None when none is.
fn running<T>(slot: &AtomicPtr<()>, f: impl FnOnce(&Running<'_, '_>) -> T) -> Option<T> {
    let p = slot.load(Ordering::Acquire) as *const Running<'static, 'static>;
    if p.is_null() {
        return None;
    }
    // SAFETY: `Scripting::run` stores a pointer to a `Running` on its own
    // stack frame and clears it (a drop guard, so also on unwinding)
    // before that frame ends; the Lua state runs only under its mutex,
    // on the thread that holds it, so a callback runs only inside that
    // frame. `f` is generic over the lifetimes and cannot keep the
    // reference past the call.
    #[allow(unsafe_code)]
    let running = unsafe { &*p };
    Some(f(running))
}

/// What `redis.call`/`redis.pcall` (`crate::lua_ffi`) run: the command
/// `input` asks for, on the run in progress (None: there is none). The
/// reply, whether it is an error, and whether the script asked for RESP3.
pub(crate) fn call_for_script(
    slot: &AtomicPtr<()>,
    input: Result<(Vec<u8>, Request), &'static str>,
) -> Option<(Frame, bool, bool)> {
    running(slot, |run| {
        let mut ctx = run.ctx.borrow_mut();
        let mut st = run.state.borrow_mut();
        let (reply, failed) = redis_call(&mut ctx, &mut st, run.wrote, input);
        (reply, failed, st.resp3)
    })
}

/// Clears [`LuaState::running`] when a run ends, however it ends.
struct RunningGuard<'a>(&'a AtomicPtr<()>);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(std::ptr::null_mut(), Ordering::Release);
    }
}

/// A library loaded with FUNCTION LOAD.
/// The Lua VM's heap; the cached EVAL scripts (counted, and their bodies
/// and shas in bytes) and the function libraries' code and names in
/// bytes ([`Scripting::function_counts`] counts them).
#[derive(Default, Clone, Copy)]
pub struct Footprint {
    pub vm: u64,
    pub scripts: usize,
    pub eval_bytes: usize,
    pub function_bytes: usize,
}

pub struct Library {
    pub code: Bytes,
    pub functions: Vec<FunctionDef>,
}

/// The FCALL running, as FUNCTION STATS and the kill commands (other
/// clients, while it is busy) read it: its name and arguments where the
/// FCALL's caller holds them, not copies. A copy of each argument was
/// made on every call and almost never read (perf: about 4% of a small
/// FCALL). [`Scripting::fcall`] sets it and, through [`RunningFnGuard`],
/// clears it under the lock before it returns or unwinds, and its caller
/// holds the arguments all that time, so a reader holding the lock finds
/// them alive.
struct RunningFn {
    name: *const [u8],
    /// The arguments' slices, their lifetime erased.
    command: *const [*const [u8]],
}

// SAFETY: the pointers are only followed under `running_fn`'s lock,
// while the FCALL that owns what they point at is still running (above).
#[allow(unsafe_code)]
unsafe impl Send for RunningFn {}

/// Clears `running_fn` when an FCALL ends, however it ends.
struct RunningFnGuard<'a>(&'a Mutex<Option<RunningFn>>);

impl Drop for RunningFnGuard<'_> {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}

/// One function a library registered.
pub struct FunctionDef {
    pub name: String,
    pub description: Option<String>,
    pub flags: Vec<String>,
    callback: Function,
}

/// Heap growth past the last full collection that triggers the next one:
/// as much as the live heap, and at least this much. A full collection
/// walks the whole live heap, so its cost per run is the live size over
/// the garbage let pile up between two collections; growth in proportion
/// to the live size keeps that cost the same whatever libraries are
/// loaded. Growth of the whole live heap is Lua's own default (a pause of
/// 200%), which Redis keeps; half of it made the collector a tenth of a
/// small FCALL's time (perf). Redis keeps a fresh VM's heap under the
/// 100 KB its suite checks after 10,000 EVALs ("EVAL does not leak in the
/// Lua stack"); Larder's live heap after SCRIPT FLUSH is about 56 KB (the
/// prelude, stripped, with the read-only views of the shared tables), so
/// 40 KB keeps it under that too.
const GC_SLACK_MIN_BYTES: u64 = 40 * 1024;

/// Flags redis.register_function accepts.
const FUNCTION_FLAGS: &[&str] = &["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"];

/// What a script declared: an EVAL script's `#!lua flags=…` line, or a
/// function's flags. A script without a shebang runs in compatibility
/// mode, judged command by command as before Redis 7.
#[derive(Clone, Copy, Debug, Default)]
struct Declared {
    compat: bool,
    no_writes: bool,
    allow_oom: bool,
}

impl Declared {
    fn from_flags<S: AsRef<str>>(flags: &[S]) -> Declared {
        let has = |f: &str| flags.iter().any(|x| x.as_ref() == f);
        Declared { compat: false, no_writes: has("no-writes"), allow_oom: has("allow-oom") }
    }

    /// Redis's scriptPrepareForRun: what refuses a declared script before
    /// it starts.
    fn admit(&self, ctx: &Ctx<'_>, ro_command: bool) -> Result<(), CmdError> {
        if self.compat {
            return Ok(());
        }
        if ro_command && !self.no_writes {
            return Err(CmdError::Err("Can not execute a script with write flag using *_ro command.".into()));
        }
        if ctx.client.oom && !self.no_writes && !self.allow_oom {
            return Err(CmdError::Oom);
        }
        if !self.no_writes && ctx.shared.replication.refuses_writes(|| ctx.now) {
            return Err(CmdError::NoReplicas);
        }
        if !self.no_writes && !ctx.client.from_master && ctx.shared.replication.read_only_replica() {
            return Err(CmdError::ReadOnlyReplica);
        }
        Ok(())
    }

    /// The run's rules: read-only under *_RO or no-writes, and a no-writes
    /// script may run out of memory since it cannot add to it.
    fn run_state(&self, ro_command: bool) -> RunState {
        RunState {
            resp3: false,
            read_only: ro_command || self.no_writes,
            allow_oom: !self.compat && (self.allow_oom || self.no_writes),
            wrote: false,
            counted: Vec::new(),
        }
    }
}

/// An EVAL script's shebang (`#!lua flags=no-writes,allow-oom`), and how
/// many bytes the line takes; compatibility mode without one.
fn eval_shebang(body: &[u8]) -> Result<(Declared, usize), CmdError> {
    if !body.starts_with(b"#!") {
        return Ok((Declared { compat: true, ..Declared::default() }, 0));
    }
    let end = body.iter().position(|&b| b == b'\n').ok_or_else(|| CmdError::Err("Invalid script shebang".into()))?;
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_whitespace();
    let engine = parts.next().unwrap_or_default();
    if engine != "#!lua" {
        return Err(CmdError::Err(format!("Unexpected engine in script shebang: {engine}")));
    }
    let mut flags = Vec::new();
    for p in parts {
        let Some(list) = p.strip_prefix("flags=") else {
            return Err(CmdError::Err(format!("Unknown lua shebang option: {p}")));
        };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            if !FUNCTION_FLAGS.contains(&f) {
                return Err(CmdError::Err(format!("Unexpected flag in script shebang: {f}")));
            }
            flags.push(f);
        }
    }
    Ok((Declared::from_flags(&flags), end))
}

/// What FUNCTION RESTORE does with libraries that already exist.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Append,
    Replace,
    Flush,
}

/// A script run's KEYS and ARGV.
type KeysArgv<'a, 'b> = (&'a [&'b [u8]], &'a [&'b [u8]]);

/// Pushes a table of `items` (a Lua array of strings) onto the stack.
///
/// # Safety
/// `state` must have room for two more values (the table, and one string
/// at a time, which `lua_rawseti` pops), in a protected call (a memory
/// error raises). The slices are copied.
#[allow(unsafe_code)]
unsafe fn push_strings(state: *mut mlua::ffi::lua_State, items: &[&[u8]]) {
    use mlua::ffi;
    ffi::lua_createtable(state, items.len().min(i32::MAX as usize) as i32, 0);
    for (i, item) in items.iter().enumerate() {
        ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
        ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
    }
}

/// Sets the globals KEYS and ARGV (None: removes them, before a function
/// runs). Built with Lua's own API: made through mlua, each string and
/// table would be a registry reference, each taken and dropped under a
/// lock, which perf put at an eighth of an EVALSHA's time.
///
/// # Safety
/// As [`push_strings`], with room for three values (a name, a table, a
/// string); leaves the stack as it was.
#[allow(unsafe_code)]
unsafe fn set_keys_and_argv_raw(state: *mut mlua::ffi::lua_State, run: Option<KeysArgv<'_, '_>>) {
    use mlua::ffi;
    let (keys, argv) = run.unwrap_or_default();
    for (name, items) in [(c"KEYS", keys), (c"ARGV", argv)] {
        ffi::lua_pushstring(state, name.as_ptr());
        if run.is_none() {
            ffi::lua_pushnil(state);
        } else {
            push_strings(state, items);
        }
        ffi::lua_rawset(state, ffi::LUA_GLOBALSINDEX);
    }
}

/// How a run's keys and arguments reach its code.
#[derive(Clone, Copy)]
enum Pass {
    /// As the globals KEYS and ARGV (EVAL).
    Globals,
    /// As the function's two arguments (FCALL), with KEYS and ARGV
    /// removed from the globals: the last EVAL's stay there (EVAL sets
    /// them there, as Redis does), and a function, another user's perhaps,
    /// must not find them through _G.
    Arguments,
}

/// A run that succeeded with one string, number, nil or boolean (most
/// do), read straight off the stack: through mlua the results were a
/// `MultiValue` of handles, a string's a registry reference made and
/// dropped, about a twelfth of a small EVALSHA's time (perf). A boolean's
/// reply waits for the protocol the script ended in (redis.setresp).
enum Quick {
    Reply(Frame),
    Boolean(bool),
}

/// What a run gave: its quick reply, or the runner's results as they are
/// (a table, or a failure and the handler's table).
type Ran = (Option<Quick>, MultiValue);

/// Reads a run's results, `(true, value)` with a value [`Quick`] covers,
/// and takes them off the stack; anything else is left for mlua.
///
/// # Safety
/// The stack holds the runner's results above `base` and nothing else.
#[allow(unsafe_code)]
unsafe fn take_quick(state: *mut mlua::ffi::lua_State, base: i32) -> Option<Quick> {
    use mlua::ffi;
    let (first, second) = (base + 1, base + 2);
    let n = ffi::lua_gettop(state) - base;
    if !(1..=2).contains(&n)
        || ffi::lua_type(state, first) != ffi::LUA_TBOOLEAN
        || ffi::lua_toboolean(state, first) == 0
    {
        return None;
    }
    // As `to_frame` converts each (see value_frame).
    let quick = match ffi::lua_type(state, second) {
        ffi::LUA_TNONE | ffi::LUA_TNIL => Quick::Reply(Frame::Null),
        ffi::LUA_TBOOLEAN => Quick::Boolean(ffi::lua_toboolean(state, second) != 0),
        ffi::LUA_TNUMBER => Quick::Reply(Frame::Integer(ffi::lua_tonumber(state, second) as i64)),
        ffi::LUA_TSTRING => {
            let mut len = 0;
            let p = ffi::lua_tolstring(state, second, &mut len);
            Quick::Reply(Frame::Bulk(Bytes::copy_from_slice(std::slice::from_raw_parts(p.cast(), len))))
        }
        _ => return None,
    };
    ffi::lua_settop(state, base);
    Some(quick)
}

/// Runs `runner(f, handler)` with KEYS and ARGV set first (EVAL), or
/// `runner(f, handler, keys, args)` with them removed (FCALL), the tables
/// built on the Lua stack: through mlua, each table and each string in
/// them was a handle with a registry reference, made and dropped per call
/// (a quarter of a small FCALL's time, profiled).
///
/// Called with `lua_pcall` on the VM's own stack, not through mlua's
/// `exec_raw`: in Lua 5.1 every C function pushed is a closure allocated
/// for the collector, and `exec_raw` pushes two per call (its protected
/// trampoline and a traceback handler), 80 of the 224 bytes of garbage a
/// small FCALL left; the collector was about a tenth of its time. The
/// runner catches the script's errors itself (xpcall with the handler), so
/// the only failures `lua_pcall` sees are the runner's own. Building the
/// tables before the protected call raises no Lua error: with no memory
/// limit set, mlua's allocator aborts the process where an allocation
/// fails, as any Rust allocation would, and a collection step run by an
/// allocation there finalizes only mlua's own userdata (scripts cannot
/// make userdata: `newproxy` is gone).
fn call_runner(
    lua: &Lua,
    runner: &Function,
    f: &Function,
    handler: &Function,
    (keys, argv): KeysArgv<'_, '_>,
    pass: Pass,
) -> mlua::Result<Ran> {
    use mlua::ffi;
    lua.exec_raw_lua(|raw| {
        let state = raw.state();
        #[allow(unsafe_code)]
        // SAFETY: the stack gets room for what is pushed before the call
        // (three functions; then three values at most for setting or
        // removing the globals, which leaves the stack as it found it, or
        // two tables and a string at a time); lua_pcall leaves the results
        // above `base`, which take_quick reads or pop_value takes, and the
        // stack is back at `base` on every way out.
        unsafe {
            let base = ffi::lua_gettop(state);
            if ffi::lua_checkstack(state, 8) == 0 {
                return Err(mlua::Error::StackError);
            }
            raw.push(runner)?;
            raw.push(f)?;
            raw.push(handler)?;
            let nargs = match pass {
                Pass::Globals => {
                    set_keys_and_argv_raw(state, Some((keys, argv)));
                    2
                }
                Pass::Arguments => {
                    set_keys_and_argv_raw(state, None);
                    push_strings(state, keys);
                    push_strings(state, argv);
                    4
                }
            };
            if ffi::lua_pcall(state, nargs, ffi::LUA_MULTRET, 0) != 0 {
                let e = match raw.pop_value() {
                    Value::Error(e) => *e,
                    other => mlua::Error::runtime(value_text(&other)),
                };
                ffi::lua_settop(state, base);
                return Err(e);
            }
            if let Some(quick) = take_quick(state, base) {
                return Ok((Some(quick), MultiValue::new()));
            }
            let mut rest = MultiValue::new();
            while ffi::lua_gettop(state) > base {
                rest.push_front(raw.pop_value());
            }
            Ok((None, rest))
        }
    })
}

fn lua_err(e: mlua::Error) -> CmdError {
    CmdError::Err(e.to_string())
}

impl Scripting {
    pub fn new() -> Scripting {
        let kill = Arc::new(AtomicBool::new(false));
        let state = LuaState::new(kill.clone()).expect("the Lua environment builds");
        Scripting {
            lua: Mutex::new(state),
            running_since: AtomicU64::new(0),
            epoch: Instant::now(),
            kill,
            wrote: AtomicBool::new(false),
            busy_threshold: AtomicU64::new(5000),
            allow_noscript: AtomicBool::new(false),
            lua_floor: AtomicU64::new(0),
            footprint: Mutex::default(),
            running_fn: Mutex::new(None),
            counts: Mutex::new((0, 0)),
        }
    }

    /// (libraries, functions) loaded.
    pub fn function_counts(&self) -> (usize, usize) {
        *self.counts.lock()
    }

    fn recount(&self, st: &LuaState) {
        *self.counts.lock() = (st.libraries.len(), st.libraries.values().map(|l| l.functions.len()).sum());
    }

    /// The BUSY error: it names the kill command for what is running.
    pub fn busy_error(&self) -> CmdError {
        let which = if self.running_fn.lock().is_some() { "FUNCTION KILL" } else { "SCRIPT KILL" };
        CmdError::Raw(format!("BUSY Redis is busy running a script. You can only call {which} or SHUTDOWN NOSAVE."))
    }

    pub fn set_busy_threshold(&self, ms: u64) {
        self.busy_threshold.store(ms, Ordering::Relaxed);
    }

    /// A script has run past busy-reply-threshold: other clients get BUSY.
    pub fn busy(&self) -> bool {
        self.running_ms().is_some_and(|ms| ms > self.busy_threshold.load(Ordering::Relaxed))
    }

    /// Whether a script (or function) runs now. No clock read: dispatch
    /// asks for each command a script runs, three times.
    pub fn is_running(&self) -> bool {
        self.running_since.load(Ordering::Relaxed) != 0
    }

    /// Milliseconds the current script has run, if one runs.
    pub fn running_ms(&self) -> Option<u64> {
        match self.running_since.load(Ordering::Relaxed) {
            0 => None,
            t => Some((self.epoch.elapsed().as_millis() as u64 + 1).saturating_sub(t)),
        }
    }

    /// SCRIPT KILL (`function` false) or FUNCTION KILL (true).
    pub fn kill(&self, function: bool) -> Result<(), CmdError> {
        if !self.is_running() {
            return Err(CmdError::Raw("NOTBUSY No scripts in execution right now.".into()));
        }
        if self.running_fn.lock().is_some() != function {
            // The other kind runs: the BUSY error names the right command.
            return Err(self.busy_error());
        }
        if self.wrote.load(Ordering::Relaxed) {
            return Err(CmdError::Raw("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.".into()));
        }
        self.kill.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// SCRIPT LOAD: compiles and caches; returns the sha1.
    pub fn load(&self, body: &[u8]) -> Result<String, CmdError> {
        let mut st = self.lua.lock();
        st.compile(body)
    }

    /// What the cached scripts and the function libraries hold outside
    /// the Lua heap, for INFO memory. Never waits: while a script runs,
    /// the figures of the last look that found the VM free.
    pub fn footprint(&self) -> Footprint {
        let Some(st) = self.lua.try_lock() else { return *self.footprint.lock() };
        let eval_bytes = st.scripts.iter().map(|(sha, (body, ..))| sha.len() + body.len()).sum();
        let function_bytes = st
            .libraries
            .iter()
            .map(|(name, l)| name.len() + l.code.len() + l.functions.iter().map(|f| f.name.len()).sum::<usize>())
            .sum();
        let f = Footprint { vm: st.lua.used_memory() as u64, scripts: st.scripts.len(), eval_bytes, function_bytes };
        *self.footprint.lock() = f;
        f
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        self.lua.lock().scripts.contains_key(&*script_key(sha))
    }

    /// SCRIPT FLUSH: a new VM, as Redis starts one (whatever scripts left
    /// behind in globals' hidden corners, or cjson settings, goes with the
    /// old one). Function libraries live in the same VM here, so they are
    /// loaded again from their code.
    pub fn flush(&self) {
        let mut st = self.lua.lock();
        let libraries: Vec<Bytes> = st.libraries.values().map(|l| l.code.clone()).collect();
        match LuaState::new(self.kill.clone()) {
            Ok(mut fresh) => {
                for code in libraries {
                    if let Err(e) = fresh.load_library(&code, true) {
                        tracing::warn!("a function library did not load again after SCRIPT FLUSH: {e}");
                    }
                }
                *st = fresh;
                self.lua_floor.store(0, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!("SCRIPT FLUSH kept the old Lua VM: {e}");
                st.scripts.clear();
                let _ = st.lua.gc_collect();
            }
        }
        self.recount(&st);
    }

    /// Whether EVAL's body, EVALSHA's script or FCALL's function (`arg`)
    /// declares no-writes. Unknown ones (a bad shebang, an uncached sha, a
    /// missing function) count as writing: their run gives the error. The
    /// VM is only tried, never waited for: a script holding it counts as
    /// writing.
    pub fn declares_no_writes(&self, command: &str, arg: &[u8]) -> bool {
        let declared = match command {
            "eval" => eval_shebang(arg).ok().map(|(d, _)| d),
            "evalsha" => self.lua.try_lock().and_then(|st| st.scripts.get(&*script_key(arg)).map(|(_, _, d)| *d)),
            "fcall" => self
                .lua
                .try_lock()
                .and_then(|st| st.function(&String::from_utf8_lossy(arg)).map(|f| Declared::from_flags(&f.flags))),
            _ => None,
        };
        declared.is_some_and(|d| !d.compat && d.no_writes)
    }

    /// EVAL/EVALSHA: runs the script `body` (or the cached `sha`).
    pub fn eval(
        &self,
        ctx: &mut Ctx<'_>,
        script: Result<&[u8], &[u8]>,
        keys: &[&[u8]],
        argv: &[&[u8]],
        read_only: bool,
    ) -> Result<Frame, CmdError> {
        let debug = ctx.client.lua_debug;
        if let (Some(_), Err(sha)) = (debug, script) {
            return Err(if sha.len() == 40 {
                CmdError::Err("Please use EVAL instead of EVALSHA for debugging".into())
            } else {
                CmdError::Raw("NOSCRIPT No matching script. Please use EVAL.".into())
            });
        }
        let mut st = self.lua.lock();
        let sha = match script {
            Ok(body) => std::borrow::Cow::Owned(st.compile(body)?),
            Err(sha) => script_key(sha),
        };
        // Borrowed from the cache, not cloned: each clone of a `Function`
        // is a registry reference taken and let go.
        let st = &*st;
        let Some((_, func, declared)) = st.scripts.get(&*sha) else {
            return Err(CmdError::Raw("NOSCRIPT No matching script. Please use EVAL.".into()));
        };
        let declared = *declared;
        declared.admit(ctx, read_only)?;
        let start =
            |st: &LuaState| call_runner(&st.lua, &st.run_script, func, &st.handler, (keys, argv), Pass::Globals);
        let (Some(mode), Ok(body)) = (debug, script) else {
            return self.run(st, ctx, Origin::Script(&sha), declared.run_state(read_only), start);
        };
        // A debugging session (SCRIPT DEBUG): the debugger's hook in place
        // of the usual one for this run; the connection closes after the
        // reply, as Redis's does.
        let timeout = self.busy_threshold.load(Ordering::Relaxed);
        // Ended by a guard: a session left behind (a panic on the way)
        // would take over this thread's later scripts.
        let session = crate::ldb::begin(ctx.client.info.fd, mode, body, timeout, self.kill.clone());
        #[allow(unsafe_code)]
        // SAFETY: exec_raw hands over the state scripts run on.
        let hooked = unsafe { st.lua.exec_raw::<()>((), |state| crate::ldb::install_hook(state)) };
        let out = hooked
            .map_err(lua_err)
            .and_then(|()| self.run(st, ctx, Origin::Script(&sha), declared.run_state(read_only), start));
        drop(session);
        st.install_hook().map_err(lua_err)?;
        ctx.client.lua_debug = None;
        ctx.client.close_after_reply = true;
        out
    }

    /// FCALL/FCALL_RO.
    pub fn fcall(
        &self,
        ctx: &mut Ctx<'_>,
        name: &[u8],
        keys: &[&[u8]],
        argv: &[&[u8]],
        ro_command: bool,
        command: &[&[u8]],
    ) -> Result<Frame, CmdError> {
        let st = self.lua.lock();
        let raw_name = name;
        let name = String::from_utf8_lossy(name);
        let Some(f) = st.function(&name) else {
            return Err(CmdError::Err("Function not found".into()));
        };
        let declared = Declared::from_flags(&f.flags);
        declared.admit(ctx, ro_command)?;
        let callback = &f.callback;
        let start = |st: &LuaState| {
            call_runner(&st.lua, &st.run_function, callback, &st.handler, (keys, argv), Pass::Arguments)
        };
        *self.running_fn.lock() = Some(RunningFn {
            name: raw_name as *const [u8],
            command: command as *const [&[u8]] as *const [*const [u8]],
        });
        let _clear = RunningFnGuard(&self.running_fn);
        self.run(&st, ctx, Origin::Function(&name), declared.run_state(ro_command), start)
    }

    fn run(
        &self,
        st: &LuaState,
        ctx: &mut Ctx<'_>,
        origin: Origin<'_>,
        run_state: RunState,
        start: impl FnOnce(&LuaState) -> mlua::Result<Ran>,
    ) -> Result<Frame, CmdError> {
        let (label, source) = match origin {
            Origin::Script(sha) => (sha, "user_script"),
            Origin::Function(name) => (name, "user_function"),
        };
        let (saved_db, saved_proto, saved_in_exec) = (ctx.client.db, ctx.client.proto, ctx.client.in_exec);
        ctx.client.in_exec = true;
        self.kill.store(false, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        // One clock read for both marks: a small script's run is a few
        // microseconds, and each read is a noticeable part of it.
        let now = Instant::now();
        self.running_since.store(now.duration_since(self.epoch).as_millis() as u64 + 1, Ordering::Relaxed);
        let started = now.duration_since(st.epoch).as_millis() as u64;
        st.leave_at.store(started + LEAVE_WORKER_AFTER_MS, Ordering::Relaxed);
        {
            let mut what = st.slow_what.lock();
            what.clear();
            what.push_str(if source == "user_script" {
                "SCRIPT KILL command. Script name is: f_"
            } else {
                "FUNCTION KILL command. Script name is: "
            });
            what.push_str(label);
        }
        st.slow_at.0.store(started, Ordering::Relaxed);
        st.slow_at.1.store(started + self.busy_threshold.load(Ordering::Relaxed).max(1), Ordering::Relaxed);
        let running = Running {
            ctx: std::cell::RefCell::new(ctx),
            state: std::cell::RefCell::new(run_state),
            wrote: &self.wrote,
        };
        let outcome = {
            st.running.store(&running as *const Running<'_, '_> as *mut (), Ordering::Release);
            let _clear = RunningGuard(&st.running);
            start(st)
        };
        self.running_since.store(0, Ordering::Relaxed);
        st.leave_at.store(0, Ordering::Relaxed);
        st.slow_at.1.store(0, Ordering::Relaxed);
        let Running { ctx, state: run_state, .. } = running;
        let ctx = ctx.into_inner();
        // A full collection once the heap has doubled since the last one
        // left it (GC_SLACK_MIN_BYTES at least): the trigger Lua's own
        // collector uses, checked here so that the floor is known (INFO)
        // and a small VM still collects (Redis steps its collector every
        // 50 calls instead).
        let mut used = st.lua.used_memory() as u64;
        let floor = self.lua_floor.load(Ordering::Relaxed);
        if floor == 0 || used > floor + GC_SLACK_MIN_BYTES.max(floor) {
            let _ = st.lua.gc_collect();
            used = st.lua.used_memory() as u64;
            self.lua_floor.store(used, Ordering::Relaxed);
        }
        // The Lua heap is not data: like Redis, maxmemory does not count it.
        // The figure read above serves (each call into mlua takes the
        // state's lock).
        ctx.shared.memory.set_not_counted(used);
        let (wrote, script_resp3) = (run_state.borrow().wrote, run_state.borrow().resp3);
        let counted = std::mem::take(&mut run_state.borrow_mut().counted);
        let passes_on = |text: &[u8]| counted.iter().any(|c| c.as_bytes() == text);
        ctx.client.in_exec = saved_in_exec;
        ctx.client.db = saved_db;
        ctx.client.proto = saved_proto;
        if wrote {
            ctx.shared.keyspace.effects.emit(saved_db, &[b"EXEC"]);
        }
        let (quick, values) = outcome.map_err(lua_err)?;
        match quick {
            Some(Quick::Reply(reply)) => return Ok(reply),
            Some(Quick::Boolean(b)) => return Ok(to_frame(&Value::Boolean(b), script_resp3)),
            None => {}
        }
        let mut values = values.into_iter();
        let ok = matches!(values.next(), Some(Value::Boolean(true)));
        let value = values.next().unwrap_or(Value::Nil);
        if ok {
            // Booleans follow the script's protocol (redis.setresp), as in Redis.
            let reply = to_frame(&value, script_resp3);
            if let Frame::Error(e) = &reply {
                ctx.client.error_counted = passes_on(e);
            }
            return Ok(reply);
        }
        // The handler's {err=…, line=…, source=…}.
        let (msg, line, at) = match &value {
            Value::Table(t) => (
                t.raw_get::<Option<String>>("err").ok().flatten().unwrap_or_default(),
                t.raw_get::<Option<i64>>("line").ok().flatten(),
                t.raw_get::<Option<String>>("source").ok().flatten(),
            ),
            other => (format!("ERR {other:?}"), None, None),
        };
        let line = line.map_or("?".to_string(), |l| l.to_string());
        let at = at.unwrap_or_else(|| format!("@{source}"));
        ctx.client.error_counted = passes_on(msg.as_bytes());
        Err(CmdError::Raw(format!("{msg} script: {label}, on {at}:{line}.")))
    }

    /// FUNCTION LOAD [REPLACE]: returns the library name.
    pub fn function_load(&self, code: &[u8], replace: bool) -> Result<String, CmdError> {
        let mut st = self.lua.lock();
        let out = st.load_library(code, replace);
        self.recount(&st);
        out
    }

    /// FUNCTION DELETE.
    pub fn function_delete(&self, name: &[u8]) -> Result<(), CmdError> {
        let name = String::from_utf8_lossy(name);
        let mut st = self.lua.lock();
        let found = st.libraries.remove(name.as_ref()).is_some();
        self.recount(&st);
        if !found {
            return Err(CmdError::Err("Library not found".into()));
        }
        Ok(())
    }

    pub fn function_flush(&self) {
        let mut st = self.lua.lock();
        st.libraries.clear();
        self.recount(&st);
    }

    /// Visits the libraries in name order (FUNCTION LIST, STATS).
    pub fn with_libraries<R>(&self, f: impl FnOnce(&std::collections::BTreeMap<String, Library>) -> R) -> R {
        f(&self.lua.lock().libraries)
    }

    /// The running function's name, command and run time (FUNCTION STATS).
    pub fn running_function(&self) -> Option<(String, Vec<Bytes>, u64)> {
        let (name, cmd) = {
            let running = self.running_fn.lock();
            let r = running.as_ref()?;
            #[allow(unsafe_code)]
            // SAFETY: see RunningFn: under the lock, what it points at is
            // alive.
            let (name, command) = unsafe { (&*r.name, &*(r.command as *const [&[u8]])) };
            (String::from_utf8_lossy(name).into_owned(), command.iter().map(|a| Bytes::copy_from_slice(a)).collect())
        };
        Some((name, cmd, self.running_ms()?))
    }

    /// FUNCTION DUMP.
    pub fn function_dump(&self) -> Bytes {
        let st = self.lua.lock();
        larder_persist::dump_functions(st.libraries.values().map(|l| l.code.as_ref()))
    }

    /// FUNCTION RESTORE: all libraries load, or none does.
    pub fn function_restore(&self, payload: &[u8], policy: RestorePolicy) -> Result<(), CmdError> {
        let codes = larder_persist::restore_functions(payload)
            .map_err(|_| CmdError::Err("DUMP payload version or checksum are wrong".into()))?;
        let mut st = self.lua.lock();
        let saved = std::mem::take(&mut st.libraries);
        if policy != RestorePolicy::Flush {
            st.libraries = saved.iter().map(|(k, l)| (k.clone(), l.clone_shallow())).collect();
        }
        for code in &codes {
            let exists = parse_shebang(code).is_ok_and(|name| st.libraries.contains_key(&name));
            let result = if exists && policy == RestorePolicy::Append {
                // RESTORE words the collision differently from LOAD.
                Err(CmdError::Err(format!("Library {} already exists", parse_shebang(code).unwrap_or_default())))
            } else {
                st.load_library(code, true)
            };
            if let Err(e) = result {
                st.libraries = saved;
                return Err(e);
            }
        }
        self.recount(&st);
        Ok(())
    }
}

/// What a run executes, for its error texts.
enum Origin<'a> {
    Script(&'a str),
    Function(&'a str),
}

impl Library {
    fn clone_shallow(&self) -> Library {
        Library {
            code: self.code.clone(),
            functions: self
                .functions
                .iter()
                .map(|f| FunctionDef {
                    name: f.name.clone(),
                    description: f.description.clone(),
                    flags: f.flags.clone(),
                    callback: f.callback.clone(),
                })
                .collect(),
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `#!lua name=<lib>`: the engine and library name.
fn parse_shebang(code: &[u8]) -> Result<String, CmdError> {
    // Redis's functionExtractLibMetaData, then the name and engine checks
    // of functionsCreateWithLibraryCtx, in that order.
    let err = |m: &str| CmdError::Err(m.into());
    if !code.starts_with(b"#!") {
        return Err(err("Missing library metadata"));
    }
    let end = code.iter().position(|&b| b == b'\n').ok_or_else(|| err("Invalid library metadata"))?;
    let parts = larder_protocol::split_args(&code[..end]).ok().filter(|p| !p.is_empty());
    let Some(parts) = parts else { return Err(err("Invalid library metadata")) };
    let engine = String::from_utf8_lossy(parts[0].get(2..).unwrap_or_default()).into_owned();
    let mut name = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(err("Invalid metadata value, name argument was given multiple times"));
            }
            name = Some(String::from_utf8_lossy(&p[5..]).into_owned());
            continue;
        }
        return Err(CmdError::Err(format!("Invalid metadata value given: {}", String::from_utf8_lossy(p))));
    }
    let name = name.ok_or_else(|| err("Library name was not given"))?;
    if !valid_name(&name) {
        return Err(err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(CmdError::Err(format!("Engine '{engine}' not found")));
    }
    Ok(name)
}

/// redis.register_function's arguments: `(name, callback)` or a table.
fn parse_registration(args: MultiValue) -> mlua::Result<FunctionDef> {
    let fail = |m: &str| api_err(m);
    let positional = args.len() == 2;
    let (name, callback, flags, description) = match args.len() {
        2 => (args[0].clone(), args[1].clone(), None, None),
        1 => {
            let Value::Table(t) = &args[0] else {
                return fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            };
            let (mut name, mut cb, mut flags, mut desc) = (Value::Nil, Value::Nil, None, None);
            for pair in t.pairs::<String, Value>() {
                let (k, v) = pair?;
                match k.as_str() {
                    "function_name" => name = v,
                    "callback" => cb = v,
                    "flags" => flags = Some(v),
                    "description" => desc = Some(v),
                    _ => return fail("unknown argument given to redis.register_function"),
                }
            }
            (name, cb, flags, desc)
        }
        _ => return fail("wrong number of arguments to redis.register_function"),
    };
    let Value::String(name) = name else {
        return fail(match (positional, &name) {
            (true, _) => "first argument to redis.register_function must be a string",
            (false, Value::Nil) => "redis.register_function must get a function name argument",
            (false, _) => "function_name argument given to redis.register_function must be a string",
        });
    };
    let name = name.to_string_lossy();
    if !valid_name(&name) {
        // Redis 7 says "Library" here too.
        return fail("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long");
    }
    let Value::Function(callback) = callback else {
        return fail(match (positional, &callback) {
            (true, _) => "second argument to redis.register_function must be a function",
            (false, Value::Nil) => "redis.register_function must get a callback argument",
            (false, _) => "callback argument given to redis.register_function must be a function",
        });
    };
    let description = match description {
        None | Some(Value::Nil) => None,
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        Some(_) => return fail("description argument given to redis.register_function must be a string"),
    };
    let mut out = Vec::new();
    if let Some(flags) = flags {
        let Value::Table(t) = flags else {
            return fail("flags argument to redis.register_function must be a table representing function flags");
        };
        for f in t.sequence_values::<Value>() {
            match f? {
                Value::String(s) if FUNCTION_FLAGS.contains(&s.to_string_lossy().as_str()) => {
                    out.push(s.to_string_lossy())
                }
                _ => return fail("unknown flag given"),
            }
        }
    }
    Ok(FunctionDef { name, description, flags: out, callback })
}

/// Runs `f`, which may take long (loading a replication image), after
/// handing this tokio worker's queued tasks to another thread: otherwise
/// connections whose tasks sit in this worker's queue would wait for it.
pub(crate) fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Called by the instruction hook once a script has run
/// [`LEAVE_WORKER_AFTER_MS`]: hands this thread's tokio worker (its queue
/// of connection tasks, and the I/O it drives) to a new thread, and
/// carries on with the script here without it. Connections queued behind
/// the script can then wait for the world lock on that thread and get
/// BUSY, and SCRIPT KILL can reach the script, even with one worker.
///
/// Why not hand the worker on before every script, as `off_worker` does:
/// that wakes a thread and moves the queue for every EVAL, and most
/// scripts end within microseconds. EVALSHA of a GET-or-SET script ran at
/// 48k/s against Redis's 270k/s at pipeline 16 that way.
///
/// `block_in_place` hands the worker to a new thread and tries to take it
/// back when its closure returns. So the closure waits until the new
/// thread has run a task spawned here (the task sits in the worker's own
/// queue, which goes with it), after which there is nothing to take back,
/// and the rest of the script runs on a thread without a worker, as a
/// whole script did under `off_worker`. With more than one worker another
/// may run the task first, and the script may then keep its worker; the
/// others can still steal the tasks queued on it. After 200 ms without
/// the task running (a runtime shutting down) it gives up the same way.
pub(crate) fn leave_worker() {
    let Ok(h) = tokio::runtime::Handle::try_current() else { return };
    if h.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return;
    }
    let moved = Arc::new(AtomicBool::new(false));
    let flag = moved.clone();
    h.spawn(async move { flag.store(true, Ordering::Release) });
    tokio::task::block_in_place(|| {
        let start = Instant::now();
        while !moved.load(Ordering::Acquire) && start.elapsed() < std::time::Duration::from_millis(200) {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    });
}

impl Default for Scripting {
    fn default() -> Self {
        Scripting::new()
    }
}

/// The EVAL cache's key for a sha1 as a client sent it (any case).
fn script_key(sha: &[u8]) -> std::borrow::Cow<'_, str> {
    // Clients send the lowercase hex SCRIPT LOAD gave them: that is the
    // key as it is, with nothing to allocate.
    match std::str::from_utf8(sha) {
        Ok(s) if !s.bytes().any(|b| b.is_ascii_uppercase()) => std::borrow::Cow::Borrowed(s),
        Ok(s) => std::borrow::Cow::Owned(s.to_ascii_lowercase()),
        Err(_) => std::borrow::Cow::Owned(String::from_utf8_lossy(sha).to_ascii_lowercase()),
    }
}

impl LuaState {
    /// A registered function by name; names are case-insensitive, as in
    /// Redis.
    fn function(&self, name: &str) -> Option<&FunctionDef> {
        self.libraries.values().flat_map(|l| &l.functions).find(|f| f.name.eq_ignore_ascii_case(name))
    }

    fn new(kill: Arc<AtomicBool>) -> mlua::Result<LuaState> {
        let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::default())?;
        let g = lua.globals();
        for name in ["loadfile", "dofile", "print"] {
            g.raw_set(name, Value::Nil)?;
        }
        let redis = lua.create_table()?;
        redis.raw_set("REDIS_VERSION", crate::cmd::connection::REDIS_VERSION)?;
        redis.raw_set("REDIS_VERSION_NUM", redis_version_num())?;
        redis.raw_set(
            "sha1hex",
            lua.create_function(|_, args: MultiValue| {
                if args.len() != 1 {
                    return api_err("wrong number of arguments");
                }
                let s = match &args[0] {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Number(n) => lua_number(*n).into_bytes(),
                    Value::Integer(n) => n.to_string().into_bytes(),
                    _ => Vec::new(),
                };
                Ok(sha1_smol::Sha1::from(s).digest().to_string())
            })?,
        )?;
        redis.raw_set(
            "log",
            lua.create_function(|_, args: MultiValue| {
                if args.len() < 2 {
                    return api_err("redis.log() requires two arguments or more.");
                }
                let level = match &args[0] {
                    Value::Integer(n) => *n,
                    Value::Number(n) => *n as i64,
                    _ => return api_err("First argument must be a number (log level)."),
                };
                if !(0..=3).contains(&level) {
                    return api_err("Invalid debug level.");
                }
                let msg: Vec<String> = args.iter().skip(1).map(value_text).collect();
                tracing::info!(target: "lua", level, "{}", msg.join(" "));
                Ok(())
            })?,
        )?;
        redis.raw_set(
            "set_repl",
            lua.create_function(|_, v: Value| {
                let n = match v {
                    Value::Integer(n) => n,
                    Value::Number(n) => n as i64,
                    _ => -1,
                };
                if !(0..=3).contains(&n) {
                    return api_err("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
                }
                Ok(())
            })?,
        )?;
        let running: Arc<AtomicPtr<()>> = Arc::default();
        register_run_api(&lua, &redis, &running)?;
        #[allow(unsafe_code)]
        // SAFETY: C functions that touch only their own call's stack.
        unsafe {
            redis.raw_set("breakpoint", lua.create_c_function(crate::ldb::lua_breakpoint)?)?;
            redis.raw_set("debug", lua.create_c_function(crate::ldb::lua_debug)?)?;
        }
        g.raw_set("redis", redis)?;
        crate::scripting_libs::redis_random(&lua, &g.raw_get("math")?)?;
        g.raw_set("bit", crate::scripting_libs::bit(&lua)?)?;
        g.raw_set("cjson", crate::scripting_libs::cjson(&lua)?)?;
        g.raw_set("cmsgpack", crate::scripting_libs::cmsgpack(&lua)?)?;
        g.raw_set("struct", crate::scripting_libs::structlib(&lua)?)?;
        let hidden = lua.create_table()?;
        hidden.raw_set(
            "error_text",
            lua.create_function(|_, e: Value| {
                Ok(match &e {
                    Value::Error(e) => root_message(e).unwrap_or_else(|m| m),
                    other => value_text(other),
                })
            })?,
        )?;
        let killed = kill.clone();
        hidden.raw_set("killed", lua.create_function(move |_, ()| Ok(killed.load(Ordering::Relaxed)))?)?;
        // Loaded without its debug information (lua_strip.rs): its
        // functions live as long as the VM, and every full collection
        // walks them.
        let prelude = match &*STRIPPED_PRELUDE {
            Some(chunk) => lua.load(&chunk[..]).set_mode(ChunkMode::Binary),
            None => lua.load(PRELUDE).set_mode(ChunkMode::Text),
        };
        let prelude = prelude.set_name("=prelude").into_function()?;
        prelude.call::<()>((hidden.clone(), g.clone()))?;
        hidden.raw_set("handler", lua.create_function(error_handler)?)?;
        let env_meta: Table = hidden.raw_get("env_meta")?;
        lua.set_named_registry_value(ENV_META_KEY.to_str().expect("ASCII"), env_meta)?;
        let epoch = Instant::now();
        let load_since = Arc::new(AtomicU64::new(0));
        let loading = load_since.clone();
        let leave_at = Arc::new(AtomicU64::new(0));
        let leaving = leave_at.clone();
        let slow_at = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let slow_what = Arc::new(Mutex::new(String::new()));
        let (slow, what) = (slow_at.clone(), slow_what.clone());
        let hook: Arc<Hook> = Arc::new(move |_: &Lua, _: &mlua::Debug| {
            if kill.load(Ordering::Relaxed) {
                return Err(mlua::Error::external(ReplyError("ERR Script killed by user with SCRIPT KILL...".into())));
            }
            let at = leaving.load(Ordering::Relaxed);
            if at != 0 && epoch.elapsed().as_millis() as u64 >= at {
                leaving.store(0, Ordering::Relaxed);
                leave_worker();
            }
            let due = slow.1.load(Ordering::Relaxed);
            let now = epoch.elapsed().as_millis() as u64;
            if due != 0 && now >= due {
                slow.1.store(0, Ordering::Relaxed);
                tracing::warn!(
                    "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {}.",
                    now.saturating_sub(slow.0.load(Ordering::Relaxed)),
                    what.lock()
                );
            }
            // A library's load-time code may not run for long: nothing
            // can kill it (Redis's FUNCTION LOAD timeout).
            let since = loading.load(Ordering::Relaxed);
            if since != 0 && (epoch.elapsed().as_millis() as u64 + 1).saturating_sub(since) > LOAD_TIMEOUT_MS {
                return Err(mlua::Error::external(ReplyError("ERR FUNCTION LOAD timeout".into())));
            }
            Ok(VmState::Continue)
        });
        let (run_script, handler) = (hidden.raw_get("run_script")?, hidden.raw_get("handler")?);
        let run_function = hidden.raw_get("fcall")?;
        LuaState {
            lua,
            hidden,
            run_script,
            run_function,
            handler,
            scripts: HashMap::new(),
            libraries: Default::default(),
            load_since,
            leave_at,
            slow_at,
            slow_what,
            epoch,
            running,
            hook,
        }
        .with_hook()
    }

    fn with_hook(self) -> mlua::Result<LuaState> {
        self.install_hook()?;
        Ok(self)
    }

    /// (Re)installs the instruction hook.
    fn install_hook(&self) -> mlua::Result<()> {
        let hook = self.hook.clone();
        self.lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |l, d| hook(l, d))
    }

    /// Loads a library: compiles it, runs it with the load-time API, and
    /// installs the functions it registered.
    fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, CmdError> {
        let name = parse_shebang(code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(CmdError::Err(format!("Library '{name}' already exists")));
        }
        // The shebang line stays as an empty line, so line numbers match.
        let body_start = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
        let chunk = self
            .lua
            .load(&code[body_start..])
            .set_name("@user_function")
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => {
                    CmdError::Err(format!("Error compiling function: {message}"))
                }
                other => CmdError::Err(format!("Error compiling function: {other}")),
            })?;
        let registered = std::cell::RefCell::new(Vec::<FunctionDef>::new());
        let outcome = self.lua.scope(|scope| {
            let env = self.lua.create_table()?;
            env.set_metatable(Some(self.hidden.raw_get("lib_env_meta")?))?;
            chunk.set_environment(env.clone())?;
            let register = scope.create_function(|_, args: MultiValue| {
                let def = parse_registration(args)?;
                let mut reg = registered.borrow_mut();
                if reg.iter().any(|f| f.name.eq_ignore_ascii_case(&def.name)) {
                    return api_err("Function already exists in the library");
                }
                reg.push(def);
                Ok(())
            })?;
            self.hidden.raw_set("register", register)?;
            self.hidden.raw_set("loading", true)?;
            let runner: Function = self.hidden.raw_get("run")?;
            self.load_since.store(self.epoch.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
            let out = runner.call::<MultiValue>((chunk.clone(), &self.handler));
            self.load_since.store(0, Ordering::Relaxed);
            self.hidden.raw_set("loading", false)?;
            self.hidden.raw_set("register", Value::Nil)?;
            // Loaded: from now on the library's functions run, and only
            // then; they read globals as scripts do, through the globals
            // table (`redis` there is the full API, and FCALL has taken
            // KEYS and ARGV out of it), not through the load-time
            // environment's Lua function.
            env.set_metatable(Some(self.hidden.raw_get("env_meta")?))?;
            out
        });
        let mut values = outcome.map_err(lua_err)?.into_iter();
        if !matches!(values.next(), Some(Value::Boolean(true))) {
            let msg = match values.next() {
                Some(Value::Table(t)) => t.raw_get::<String>("err").unwrap_or_default(),
                _ => String::new(),
            };
            return Err(CmdError::Err(format!("Error registering functions: {msg}")));
        }
        let functions = registered.into_inner();
        if functions.is_empty() {
            return Err(CmdError::Err("No functions registered".into()));
        }
        for f in &functions {
            let clash = self
                .libraries
                .iter()
                .any(|(lib, l)| *lib != name && l.functions.iter().any(|g| g.name.eq_ignore_ascii_case(&f.name)));
            if clash {
                return Err(CmdError::Err(format!("Function {} already exists", f.name)));
            }
        }
        self.libraries.insert(name.clone(), Library { code: Bytes::copy_from_slice(code), functions });
        Ok(name)
    }

    /// Compiles `body` into the cache (once per distinct body) and returns
    /// its sha1.
    fn compile(&mut self, body: &[u8]) -> Result<String, CmdError> {
        let sha = sha1_smol::Sha1::from(body).digest().to_string();
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        // The shebang line stays as an empty line, so line numbers match.
        let (declared, shebang) = eval_shebang(body)?;
        let func = self
            .lua
            .load(&body[shebang..])
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } => {
                CmdError::Err(format!("Error compiling script (new function): {message}"))
            }
            other => CmdError::Err(format!("Error compiling script (new function): {other}")),
        })?;
        self.scripts.insert(sha.clone(), (Bytes::copy_from_slice(body), func, declared));
        Ok(sha)
    }
}

/// redis.call, redis.pcall, redis.setresp and redis.acl_check_cmd, each
/// working on the run in progress (see [`Running`]).
fn register_run_api(lua: &Lua, redis: &Table, running: &Arc<AtomicPtr<()>>) -> mlua::Result<()> {
    // redis.call raises the error reply as {err=…} (the handler finds the
    // script's line, the frame still being on the stack); redis.pcall
    // returns it.
    redis.raw_set("call", crate::lua_ffi::make_call(lua, running, crate::lua_ffi::redis_call)?)?;
    redis.raw_set("pcall", crate::lua_ffi::make_call(lua, running, crate::lua_ffi::redis_pcall)?)?;
    let slot = running.clone();
    let setresp = lua.create_function(move |_, v: Value| {
        with_running(&slot, |run| {
            run.state.borrow_mut().resp3 = match v {
                Value::Integer(2) => false,
                Value::Integer(3) => true,
                Value::Number(2.0) => false,
                Value::Number(3.0) => true,
                _ => return api_err("RESP version must be 2 or 3."),
            };
            Ok(())
        })
    })?;
    redis.raw_set("setresp", setresp)?;
    // redis.acl_check_cmd(cmd, ...): whether the script's user may run
    // it, keys and channels included.
    let slot = running.clone();
    let acl_check = lua.create_function(move |_, args: MultiValue| {
        with_running(&slot, |run| {
            let ctx = run.ctx.borrow();
            let argv = match lua_argv(&args) {
                Ok(a) if !a.is_empty() => a,
                Ok(_) => return api_err("Please specify at least one argument for this redis lib call"),
                Err(e) => return api_err(e),
            };
            let Some(cmd) = ctx.shared.commands.resolve(&argv) else {
                return api_err("Invalid command passed to redis.acl_check_cmd()");
            };
            let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            Ok(ctx.client.user.check(cmd, &argv).is_ok())
        })
    })?;
    redis.raw_set("acl_check_cmd", acl_check)
}

fn redis_version_num() -> i64 {
    let mut n = 0;
    for part in crate::cmd::connection::REDIS_VERSION.split('.') {
        n = n * 256 + part.parse::<i64>().unwrap_or(0);
    }
    n
}

/// The xpcall handler: any error becomes `{err=…, line=…}`, the line being
/// where the script was when it failed.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    // Where it happened, as Redis's handler finds it: the innermost Lua
    // frame, skipping C functions and (here) the prelude's Lua, which
    // stands in for Redis's C. Its source names it in the reply (the
    // script, or a loadstring chunk), its short form prefixes a library
    // error as luaL_where does.
    let mut at: Option<(String, String, i64)> = None;
    for level in 0..64 {
        let Some(found) = lua.inspect_stack(level, |d| {
            let src = d.source();
            let source = src.source.as_deref()?;
            if src.what == "C" || src.what == "tail" || source == "=prelude" {
                return None;
            }
            let short = src.short_src.as_deref().unwrap_or(source).to_string();
            Some((source.to_string(), short, d.current_line().map_or(-1, |l| l as i64)))
        }) else {
            break;
        };
        if found.is_some() {
            at = found;
            break;
        }
    }
    let msg = match &err {
        Value::Table(t) => match t.raw_get::<Option<mlua::String>>("err")? {
            Some(s) => s.to_string_lossy(),
            None => "ERR unknown error".to_string(),
        },
        Value::String(s) => format!("ERR {}", s.to_string_lossy()),
        Value::Error(e) => match root_message(e) {
            Ok(reply) => reply,
            // A library function's error carries the script position, as
            // luaL_error adds it in Redis.
            Err(m) => {
                let prefix = at.as_ref().map_or(String::new(), |(_, short, l)| format!("{short}:{l}: "));
                format!("ERR {prefix}{m}")
            }
        },
        other => format!("ERR {}", value_text(other)),
    };
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    if let Some((source, _, l)) = at {
        t.raw_set("line", l)?;
        t.raw_set("source", source)?;
    }
    Ok(t)
}

/// An error of the `redis` API: raised as an error reply (`ERR <msg>`),
/// without the script position library errors get.
fn api_err<T>(msg: &str) -> mlua::Result<T> {
    Err(mlua::Error::external(ReplyError(format!("ERR {msg}"))))
}

/// An error reply that `redis.call` raises.
#[derive(Debug)]
struct ReplyError(String);

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplyError {}

/// An error raised from Rust: Ok(the reply) for redis.call errors and
/// SCRIPT KILL, Err(message) for a library function's error.
fn root_message(e: &mlua::Error) -> Result<String, String> {
    match e {
        mlua::Error::RuntimeError(m) => Err(m.clone()),
        mlua::Error::CallbackError { cause, .. } => root_message(cause),
        mlua::Error::ExternalError(inner) => match inner.downcast_ref::<ReplyError>() {
            Some(r) => Ok(r.0.clone()),
            None => Err(inner.to_string()),
        },
        other => Err(other.to_string()),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Number(n) => lua_number(*n),
        Value::Integer(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Nil => "nil".into(),
        other => other.type_name().to_string(),
    }
}

/// A Lua number as Lua prints it (`%.14g`).
pub fn lua_number(n: f64) -> String {
    format_g(n, 14)
}

/// C's `%.<precision>g`.
pub(crate) fn format_g(n: f64, precision: i32) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if n == 0.0 && n.is_sign_negative() {
        return "-0".into();
    }
    if n == n.trunc() && n.abs() < 10f64.powi(precision) {
        return format!("{}", n as i64);
    }
    // The exponent after rounding to `precision` digits, as %g decides.
    let sci = format!("{:.*e}", (precision - 1) as usize, n);
    let exp: i32 = sci.split_once('e').expect("exponent form").1.parse().expect("exponent");
    if !(-4..precision).contains(&exp) {
        let s = sci;
        let (mant, e) = s.split_once('e').expect("exponent form");
        let mant = mant.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().expect("exponent");
        return format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (precision - 1 - exp).max(0) as usize;
    let s = format!("{:.*}", decimals, n);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `redis.call`/`redis.pcall`: runs one command for the script. Returns
/// the reply converted to Lua, and whether it is an error.
fn redis_call(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    wrote_flag: &AtomicBool,
    input: Result<(Vec<u8>, Request), &'static str>,
) -> (Frame, bool) {
    let (input, req) = match input {
        Ok(input) => input,
        Err(e) => return (Frame::Error(format!("ERR {e}").into()), true),
    };
    let argv: Vec<&[u8]> = req.args(&input).collect();
    // Under the debugger, while stepping: the command, and what it gave.
    let stepping = crate::ldb::stepping();
    if stepping {
        crate::ldb::log_command(&argv);
    }
    // A command refused here counts as an error reply (and as a rejected
    // call of that command) where it happens, as Redis's scriptCall does.
    let mut reject = |cmd: Option<&Command>, msg: &str| {
        if stepping {
            crate::ldb::log_error(
                msg.strip_prefix("ERR ").map_or_else(|| format!("-{msg}"), str::to_string).as_bytes(),
            );
        }
        crate::dispatch::record_error(ctx.shared, msg.as_bytes());
        if let Some(c) = cmd {
            c.stats.reject();
        }
        st.counted.push(msg.to_string());
        (Frame::Error(msg.to_string().into()), true)
    };
    let Some(cmd) = ctx.shared.commands.resolve(&argv) else {
        return reject(None, "ERR Unknown Redis command called from script");
    };
    let spec = cmd.spec;
    let argc = argv.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return reject(Some(cmd), "ERR Wrong number of args calling Redis command from script");
    }
    if spec.has(flags::NOSCRIPT) && !ctx.shared.scripting.allow_noscript.load(Ordering::Relaxed) {
        return reject(Some(cmd), "ERR This Redis command is not allowed from script");
    }
    if let Err(d) = ctx.client.user.check(cmd, &argv) {
        crate::dispatch::log_denial(ctx.shared, ctx.client, &d, "lua");
        let msg = d.message(&ctx.client.user.name, &cmd.full_name);
        return reject(Some(cmd), &format!("ERR ACL failure in script: {msg}"));
    }
    // Out of memory, a script may not start writing unless it declared
    // allow-oom; once it has written it goes on (Redis's rule, so a
    // half-done script does not leave replicas a partial write).
    if spec.has(flags::DENYOOM) && ctx.client.oom && !st.allow_oom && !st.wrote {
        return reject(Some(cmd), &CmdError::Oom.to_string());
    }
    let writes = spec.has(flags::WRITE);
    // May-replicate commands (PUBLISH, PFCOUNT) count as writes here, as
    // in Redis: a read-only script must not reach the stream either.
    if (writes || spec.has(flags::MAY_REPLICATE)) && st.read_only {
        return reject(Some(cmd), "ERR Write commands are not allowed from read-only scripts.");
    }
    if writes && crate::ldb::refuses_writes() {
        return reject(Some(cmd), crate::ldb::WRITE_REFUSED);
    }
    if writes && ctx.shared.replication.refuses_writes(|| ctx.now) {
        return reject(Some(cmd), &CmdError::NoReplicas.to_string());
    }
    if writes && !ctx.client.from_master && ctx.shared.replication.read_only_replica() {
        return reject(Some(cmd), &CmdError::ReadOnlyReplica.to_string());
    }
    if writes && !st.wrote {
        st.wrote = true;
        wrote_flag.store(true, Ordering::Relaxed);
        ctx.shared.keyspace.effects.emit(ctx.client.db, &[b"MULTI"]);
    }
    let caller_proto = ctx.client.proto;
    ctx.client.proto = if st.resp3 { Proto::Resp3 } else { Proto::Resp2 };
    let reply = crate::dispatch::execute(ctx.shared, ctx.client, &req, &input);
    ctx.client.proto = caller_proto;
    if stepping {
        if let Frame::Error(e) = &reply {
            crate::ldb::log_error(&[b"-".as_slice(), e].concat());
        }
        let mut resp = BytesMut::new();
        encode(&reply, if st.resp3 { Proto::Resp3 } else { Proto::Resp2 }, &mut resp);
        crate::ldb::log_reply(&resp);
    }
    let failed = match &reply {
        Frame::Error(e) => {
            // Counted by execute: passed on by the script, it is not again.
            st.counted.push(String::from_utf8_lossy(e).into_owned());
            true
        }
        _ => false,
    };
    (reply, failed)
}

/// A script's arguments to a command, as Redis converts them (the rule
/// `crate::lua_ffi` applies to redis.call's, here for redis.acl_check_cmd).
fn lua_argv(args: &MultiValue) -> Result<Vec<Vec<u8>>, &'static str> {
    args.iter()
        .map(|a| match a {
            Value::String(s) => Ok(s.as_bytes().to_vec()),
            // Redis formats numbers for commands with 17 digits (%.17g),
            // not Lua's 14; mlua hands whole ones over as integers.
            Value::Number(n) => Ok(format_g(*n, 17).into_bytes()),
            Value::Integer(n) => Ok(format_g(*n as f64, 17).into_bytes()),
            _ => Err("Lua redis lib command arguments must be strings or integers"),
        })
        .collect()
}

/// A script's return value as the reply to its caller.
pub fn to_frame(v: &Value, resp3: bool) -> Frame {
    value_frame(v, resp3, 0)
}

/// How deep a returned table may nest. A table that contains itself
/// would otherwise recurse until the stack overflows; Redis stops where
/// its Lua stack runs out, with this error in place of the rest.
const MAX_REPLY_DEPTH: usize = 1000;

fn value_frame(v: &Value, resp3: bool, depth: usize) -> Frame {
    if depth > MAX_REPLY_DEPTH {
        return Frame::Error(Bytes::from_static(b"ERR reached lua stack limit"));
    }
    match v {
        Value::Nil => Frame::Null,
        Value::Boolean(true) if resp3 => Frame::Boolean(true),
        Value::Boolean(false) if resp3 => Frame::Boolean(false),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Boolean(false) => Frame::Null,
        Value::Integer(n) => Frame::Integer(*n),
        Value::Number(n) => Frame::Integer(*n as i64),
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) => table_to_frame(t, resp3, depth + 1),
        _ => Frame::Null,
    }
}

fn table_to_frame(t: &Table, resp3: bool, depth: usize) -> Frame {
    // These replies are one protocol line: Redis maps CR and LF to spaces.
    let text = |key: &str| -> Option<Bytes> {
        match t.raw_get::<Value>(key).ok()? {
            Value::String(s) => {
                Some(s.as_bytes().iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect())
            }
            _ => None,
        }
    };
    if let Some(e) = text("err") {
        return Frame::Error(e);
    }
    if let Some(s) = text("ok") {
        return Frame::Simple(s);
    }
    if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
        return Frame::Double(d);
    }
    if let Some(n) = text("big_number") {
        return Frame::BigNumber(n);
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let pairs = m
            .pairs::<Value, Value>()
            .flatten()
            .map(|(k, v)| (value_frame(&k, resp3, depth), value_frame(&v, resp3, depth)));
        return Frame::Map(pairs.collect());
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        return Frame::Set(s.pairs::<Value, Value>().flatten().map(|(k, _)| value_frame(&k, resp3, depth)).collect());
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        let fmt = v.raw_get::<mlua::String>("format").map(|s| s.as_bytes().to_vec()).unwrap_or_default();
        let s = v.raw_get::<mlua::String>("string").map(|s| s.as_bytes().to_vec()).unwrap_or_default();
        let mut format = *b"txt";
        if fmt.len() == 3 {
            format.copy_from_slice(&fmt);
        }
        return Frame::Verbatim { format, text: Bytes::from(s) };
    }
    // An array, up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(value_frame(&v, resp3, depth)),
        }
    }
    Frame::Array(items)
}

#[cfg(test)]
mod tests {
    /// The prelude strips with this build's Lua: a dump in a form
    /// lua_strip.rs does not know would load unstripped, silently.
    #[test]
    fn the_prelude_loads_stripped() {
        let stripped = super::STRIPPED_PRELUDE.as_ref().expect("the prelude strips");
        assert!(stripped.len() < super::PRELUDE.len());
    }
}

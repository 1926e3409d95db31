//! Commands: the context a handler runs in, the argument cursor, and one
//! module per command family. Handlers only implement semantics; arity,
//! authentication and other gates live in the dispatcher, driven by each
//! command's row in the table.

pub mod acl;
pub mod bitmap;
pub mod connection;
pub mod geo;
pub mod getkeys;
pub mod hash;
pub mod hll;
pub mod keys;
pub mod keyspecs;
pub mod latency;
pub mod list;
pub mod lolwut;
pub mod memory;
pub mod migrate;
pub mod module;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod set;
pub mod slowlog;
pub mod sort;
pub mod stream;
pub mod string;
pub mod table;
pub mod transaction;
pub mod zset;

use crate::conn::client::Client;
use crate::error::CmdError;
use crate::Shared;
use larder_protocol::{Frame, Proto, Request};
pub use larder_store::class;
use larder_store::{Ttl, Tx, Value};

pub type CmdResult = Result<Frame, CmdError>;
pub type Handler = fn(&mut Ctx<'_>, Args<'_>) -> CmdResult;

/// What a handler may touch: the server, its own client, and the instant
/// the command started (the clock is read once per command).
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub client: &'a mut Client,
    pub now: u64,
    /// The command is read-only: its lookups of missing keys fire
    /// `keymiss`, as Redis's lookupKeyRead does.
    pub read_only: bool,
    /// The client tracks keys it reads (CLIENT TRACKING) and this command
    /// counts as a read: lookups are recorded in the invalidation table.
    pub track_reads: bool,
}

impl<'a> Ctx<'a> {
    pub fn db(&self) -> usize {
        self.client.db
    }

    /// Stores the argument `arg` as the string at `key`: kept in the
    /// buffer its request arrived in when the connection read that
    /// request into a buffer of its own (a large argument: no copy, as
    /// Redis keeps a large argument as the value), else copied into its
    /// place (`Tx::set_str`).
    pub fn set_str(&self, tx: &mut Tx<'_>, key: &[u8], arg: &[u8], ttl: Ttl) {
        use larder_store::value::{StrValue, ADOPT_FROM};
        if arg.len() >= ADOPT_FROM {
            if let Some(owned) = &self.client.owned_input {
                let (start, end) = (owned.as_ptr() as usize, owned.as_ptr() as usize + owned.len());
                let at = arg.as_ptr() as usize;
                if at >= start && at + arg.len() <= end {
                    return tx.set(key, Value::Str(StrValue::adopt(owned.slice_ref(arg))), ttl);
                }
            }
        }
        tx.set_str(key, arg, ttl)
    }

    /// Locks the shard holding `key` in the client's database.
    pub fn lock(&self, key: &[u8]) -> Tx<'a> {
        let mut tx = self.shared.keyspace.lock(self.client.db, key, self.now);
        self.prepare(&mut tx);
        tx
    }

    fn prepare(&self, tx: &mut Tx<'a>) {
        tx.set_miss_events(self.read_only);
        // Nothing expires while a log replays (Redis expires nothing while
        // loading): a key a later command extended must still be there for
        // it. On a replica, keys past their deadline wait for the
        // primary's DEL (see larder_store::Expiry): its stream sees them
        // as live, and a client's write on a writable replica deletes
        // them, as Redis's lookupKey does for LOOKUP_WRITE.
        if self.client.from_master || self.client.replaying {
            tx.set_expiry(larder_store::Expiry::Ignore);
        } else if self.shared.keyspace.expiry_by_primary()
            && !self.read_only
            && !self.shared.replication.read_only_replica()
        {
            tx.set_expiry(larder_store::Expiry::Reclaim);
        }
        if self.track_reads {
            tx.set_observer(&*self.shared.tracking, self.client.id());
        }
        if self.client.info.no_touch.load(std::sync::atomic::Ordering::Relaxed) {
            tx.set_touch(false);
        }
    }

    /// Locks the shards of several keys, in the order that avoids deadlock.
    pub fn lock_keys<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> Tx<'a> {
        let mut tx = self.shared.keyspace.lock_keys(self.client.db, keys, self.now);
        self.prepare(&mut tx);
        tx
    }

    pub fn resp3(&self) -> bool {
        self.client.proto == Proto::Resp3
    }

    /// Blocks the client on `keys` until one may be ready or `timeout`
    /// passes. Call with the keys' shard locks held (see `blocking`). On a
    /// retry the client keeps its first registration and deadline.
    /// Whether this run is a blocked command woken to try again.
    pub fn woken(&self) -> bool {
        self.client.blocked.is_some()
    }

    pub fn block(&mut self, keys: &[&[u8]], timeout: Option<std::time::Duration>, timeout_reply: Frame) -> CmdResult {
        // Inside EXEC nothing blocks: the command times out at once.
        if self.client.in_exec {
            return Ok(timeout_reply);
        }
        if self.client.blocked.is_none() {
            let keys: Vec<bytes::Bytes> = keys.iter().map(|k| bytes::Bytes::copy_from_slice(k)).collect();
            let waiter = self.shared.blocking.register(self.client.id(), self.client.db, &keys, timeout.is_some());
            self.client.blocked = Some(crate::blocking::BlockState {
                waiter,
                db: self.client.db,
                keys,
                deadline: timeout.map(|d| std::time::Instant::now() + d),
                timeout_reply,
                memo: Vec::new(),
                rerun_at_deadline: false,
            });
        }
        self.client.wants_block = true;
        Ok(Frame::Null)
    }

    /// A write may have made `key` ready for a blocked client.
    pub fn key_ready(&self, key: &[u8]) {
        self.shared.blocking.key_ready(self.client.db, key);
    }

    /// Counts a keyspace hit or miss for INFO stats.
    pub fn record_lookup(&self, hit: bool) {
        self.shared.stats.record_lookup(hit);
    }
}

/// A cursor over a command's arguments. Index 0 is the command name.
pub struct Args<'a> {
    req: &'a Request,
    input: &'a [u8],
    pos: usize,
}

impl<'a> Args<'a> {
    pub fn new(req: &'a Request, input: &'a [u8], pos: usize) -> Args<'a> {
        Args { req, input, pos }
    }

    /// The whole command's arguments' bytes, its name included (the
    /// running client's `argv-mem`).
    pub fn request_len(&self) -> u64 {
        self.req.args_len() as u64
    }

    /// All arguments, including the command name.
    pub fn len(&self) -> usize {
        self.req.len()
    }

    pub fn is_empty(&self) -> bool {
        self.req.is_empty()
    }

    pub fn remaining(&self) -> usize {
        self.req.len() - self.pos
    }

    pub fn get(&self, i: usize) -> &'a [u8] {
        self.req.arg(self.input, i)
    }

    pub fn peek(&self) -> Option<&'a [u8]> {
        (self.pos < self.req.len()).then(|| self.get(self.pos))
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<&'a [u8]> {
        let a = self.peek()?;
        self.pos += 1;
        Some(a)
    }

    /// The next argument, or a syntax error if there is none.
    pub fn next_arg(&mut self) -> Result<&'a [u8], CmdError> {
        self.next().ok_or(CmdError::Syntax)
    }

    pub fn next_i64(&mut self) -> Result<i64, CmdError> {
        parse_i64(self.next_arg()?)
    }

    /// Everything not consumed yet.
    pub fn rest(&mut self) -> Vec<&'a [u8]> {
        let v = (self.pos..self.req.len()).map(|i| self.get(i)).collect();
        self.pos = self.req.len();
        v
    }

    /// Every argument, including the command name (to emit a write as is).
    pub fn all(&self) -> Vec<&'a [u8]> {
        (0..self.req.len()).map(|i| self.get(i)).collect()
    }

    /// Rejects leftover arguments with a syntax error.
    pub fn finish(&self) -> Result<(), CmdError> {
        if self.pos < self.req.len() {
            Err(CmdError::Syntax)
        } else {
            Ok(())
        }
    }
}

/// ASCII case-insensitive comparison against a lowercase or any-case word.
pub fn eq_ic(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

/// A key read by a woken blocked command: one now holding another type is
/// as if absent, so the client goes on waiting, as Redis serves a blocked
/// client only from a key of the type it waits for.
pub fn absent_if_woken<T>(woken: bool, read: Result<Option<T>, CmdError>) -> Result<Option<T>, CmdError> {
    match read {
        Err(CmdError::WrongType) if woken => Ok(None),
        other => other,
    }
}

/// Redis's `getLongLongFromObject`: strict decimal i64.
/// An I/O error in strerror's words, as Redis reports them, without Rust's
/// "(os error N)".
pub fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    text.split(" (os error").next().unwrap_or_default().to_string()
}

pub fn parse_i64(a: &[u8]) -> Result<i64, CmdError> {
    larder_store::value::parse_canonical_i64(a).ok_or(CmdError::NotInteger)
}

/// Redis's `getLongDoubleFromObject`: no spaces, no NaN.
pub fn parse_f64(a: &[u8]) -> Result<f64, CmdError> {
    let s = std::str::from_utf8(a).map_err(|_| CmdError::NotFloat)?;
    if s.is_empty()
        || s.starts_with(|c: char| c.is_ascii_whitespace())
        || s.ends_with(|c: char| c.is_ascii_whitespace())
    {
        return Err(CmdError::NotFloat);
    }
    match s.parse::<f64>() {
        Ok(v) if !v.is_nan() => Ok(v),
        _ => Err(CmdError::NotFloat),
    }
}

/// `n` units of `unit_ms` as an absolute deadline in ms (counted from `now`
/// unless `absolute`); None where Redis reports an invalid expire time
/// because the arithmetic overflows.
pub fn deadline_ms(n: i64, unit_ms: i64, absolute: bool, now: u64) -> Option<i64> {
    let ms = n.checked_mul(unit_ms)?;
    if absolute {
        Some(ms)
    } else {
        ms.checked_add(now as i64)
    }
}

/// Redis's addReplySubcommandSyntaxError: `sub` as the client typed it.
pub fn subcommand_syntax(sub: &str, cmd: &str) -> CmdError {
    CmdError::Err(format!("unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP."))
}

/// Gives a live key the deadline `at`, or deletes it if `at` has passed
/// (only where expired keys are reclaimed: not on a replica or in a
/// replayed log, which keep what they are sent), emitting the matching
/// effect (EXPIRE family, GETEX).
pub fn expire_key_at(tx: &mut Tx<'_>, key: &[u8], at: i64) {
    if at <= tx.now() as i64 && tx.reclaims_expired() {
        tx.remove(key);
        tx.emit(&[b"DEL", key]);
        tx.notify(class::GENERIC, "del", key);
    } else {
        tx.set_expire(key, at as u64);
        tx.emit(&[b"PEXPIREAT", key, itoa::Buffer::new().format(at).as_bytes()]);
        tx.notify(class::GENERIC, "expire", key);
    }
}

/// Removes a live key's deadline; false if it had none (PERSIST, GETEX).
pub fn persist_key(tx: &mut Tx<'_>, key: &[u8]) -> bool {
    if tx.peek(key).and_then(|e| e.expire_at()).is_none() {
        return false;
    }
    tx.set_expire(key, 0);
    tx.emit(&[b"PERSIST", key]);
    tx.notify(class::GENERIC, "persist", key);
    true
}

/// The value at `key` viewed as one type (`Value::as_hash_mut`, …): None if
/// the key is missing, WRONGTYPE if it holds another type.
pub fn get_as<'t, T: ?Sized>(
    tx: &'t mut Tx<'_>,
    key: &[u8],
    view: fn(&mut Value) -> Option<&mut T>,
) -> Result<Option<&'t mut T>, CmdError> {
    match tx.get(key) {
        None => Ok(None),
        Some(e) => view(e.value_mut()).map(Some).ok_or(CmdError::WrongType),
    }
}

/// As [`get_as`], creating the key with `make()` first if it is missing.
pub fn get_or_create<'t, T: ?Sized>(
    tx: &'t mut Tx<'_>,
    key: &[u8],
    view: fn(&mut Value) -> Option<&mut T>,
    make: impl FnOnce() -> Value,
) -> Result<&'t mut T, CmdError> {
    if !tx.contains(key) {
        tx.set(key, make(), Ttl::Clear);
    }
    let e = tx.get(key).expect("present or just created");
    view(e.value_mut()).ok_or(CmdError::WrongType)
}

/// Deletes `key` if the collection a write just emptied was its value:
/// Redis never keeps an empty collection. Call it after firing the
/// write's own event: Redis fires `del` last.
pub fn drop_if_empty(tx: &mut Tx<'_>, key: &[u8], empty: bool) {
    if empty {
        tx.remove(key);
        tx.notify(class::GENERIC, "del", key);
    }
}

/// The options of SCAN, HSCAN, SSCAN and ZSCAN.
pub struct ScanOpts<'a> {
    pub cursor: u64,
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
    pub typ: Option<String>,
}

impl<'a> ScanOpts<'a> {
    /// Parses `cursor [MATCH p] [COUNT n]`, plus `[TYPE t]` if `with_type`.
    pub fn parse(args: &mut Args<'a>, with_type: bool) -> Result<ScanOpts<'a>, CmdError> {
        let cursor = std::str::from_utf8(args.next_arg()?)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(CmdError::InvalidCursor)?;
        let mut o = ScanOpts { cursor, pattern: None, count: 10, typ: None };
        while let Some(a) = args.next() {
            if eq_ic(a, "match") {
                o.pattern = Some(args.next_arg()?).filter(|p| *p != b"*");
            } else if eq_ic(a, "count") {
                let n = args.next_i64()?;
                if n < 1 {
                    return Err(CmdError::Syntax);
                }
                o.count = n as usize;
            } else if with_type && eq_ic(a, "type") {
                o.typ = Some(String::from_utf8_lossy(args.next_arg()?).to_lowercase());
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(o)
    }

    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern.is_none_or(|p| larder_store::glob_match(p, item, false))
    }

    /// The reply: the next cursor and the items found.
    pub fn reply(next: u64, found: Vec<Frame>) -> Frame {
        Frame::Array(vec![Frame::bulk(itoa::Buffer::new().format(next)), Frame::Array(found)])
    }
}

/// A blocking command's timeout in seconds (0: forever), as Redis parses it.
pub fn parse_timeout(a: &[u8]) -> Result<Option<std::time::Duration>, CmdError> {
    let secs = parse_f64(a).map_err(|_| CmdError::TimeoutNotFloat)?;
    if secs < 0.0 {
        return Err(CmdError::NegativeTimeout);
    }
    if secs * 1000.0 > i64::MAX as f64 {
        return Err(CmdError::TimeoutNotFloat);
    }
    Ok((secs > 0.0).then(|| std::time::Duration::from_secs_f64(secs)))
}

/// What LMPOP, ZMPOP and their blocking forms were asked: the keys, the
/// side word (LEFT/RIGHT or MIN/MAX, checked by the caller) and COUNT.
pub type MpopArgs<'a> = (Vec<&'a [u8]>, &'a [u8], usize);

/// Parses `numkeys key [key ...] <side> [COUNT count]` with Redis's
/// errors. Unlike SINTERCARD, too few arguments is a syntax error here.
pub fn mpop_args<'a>(args: &mut Args<'a>) -> Result<MpopArgs<'a>, CmdError> {
    let n = parse_i64(args.next_arg()?)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| CmdError::Err("numkeys should be greater than 0".into()))? as usize;
    if n >= args.remaining() {
        return Err(CmdError::Syntax);
    }
    let keys: Vec<&[u8]> = (0..n).map(|_| args.next().expect("counted above")).collect();
    let side = args.next_arg()?;
    let mut count = 1;
    if let Some(a) = args.next() {
        if !eq_ic(a, "count") {
            return Err(CmdError::Syntax);
        }
        let n = parse_i64(args.next_arg()?).ok().filter(|n| *n > 0);
        count = n.ok_or_else(|| CmdError::Err("count should be greater than 0".into()))? as usize;
        args.finish()?;
    }
    Ok((keys, side, count))
}

/// Redis's `getPositiveLongFromObjectOrReply`: the optional count of
/// LPOP, RPOP, SPOP, ZPOPMIN and ZPOPMAX.
pub fn parse_positive(a: &[u8]) -> Result<usize, CmdError> {
    let err = || CmdError::Err("value is out of range, must be positive".into());
    let n = parse_i64(a).map_err(|_| err())?;
    usize::try_from(n).map_err(|_| err())
}

/// The reply of a *STORE command whose result is empty: the destination is
/// deleted (with its DEL effect), as Redis never stores an empty value.
pub fn store_nothing(tx: &mut Tx<'_>, dst: &[u8]) -> CmdResult {
    if tx.remove(dst).is_some() {
        tx.emit(&[b"DEL", dst]);
        tx.notify(class::GENERIC, "del", dst);
    }
    Ok(Frame::Integer(0))
}

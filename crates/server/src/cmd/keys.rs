//! Generic key commands: existence, deletion, renaming, copying, TTLs,
//! iteration (KEYS, SCAN, RANDOMKEY), OBJECT, DUMP/RESTORE, and database
//! selection and movement (SELECT, SWAPDB, MOVE).

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, deadline_ms, eq_ic, expire_key_at, parse_i64, persist_key, Args, CmdResult, Ctx, ScanOpts};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::{glob_match, Entry, Tx};

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, KeySpec::range(1, -1, 1), del).doc(
        "generic",
        "1.0.0",
        "Deletes one or more keys.",
    ),
    CommandSpec::new("unlink", -2, WRITE | FAST, KeySpec::range(1, -1, 1), unlink).doc(
        "generic",
        "4.0.0",
        "Asynchronously deletes one or more keys.",
    ),
    CommandSpec::new("exists", -2, READONLY | FAST, KeySpec::range(1, -1, 1), exists).doc(
        "generic",
        "1.0.0",
        "Determines whether one or more keys exist.",
    ),
    CommandSpec::new("touch", -2, READONLY | FAST, KeySpec::range(1, -1, 1), touch).doc(
        "generic",
        "3.2.1",
        "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
    ),
    CommandSpec::new("type", 2, READONLY | FAST, KeySpec::single(1), type_).doc(
        "generic",
        "1.0.0",
        "Determines the type of value stored at a key.",
    ),
    CommandSpec::new("rename", 3, WRITE, KeySpec::range(1, 2, 1), rename).doc(
        "generic",
        "1.0.0",
        "Renames a key and overwrites the destination.",
    ),
    CommandSpec::new("renamenx", 3, WRITE | FAST, KeySpec::range(1, 2, 1), renamenx).doc(
        "generic",
        "1.0.0",
        "Renames a key only when the target key name doesn't exist.",
    ),
    CommandSpec::new("copy", -3, WRITE | DENYOOM, KeySpec::range(1, 2, 1), copy).doc(
        "generic",
        "6.2.0",
        "Copies the value of a key to a new key.",
    ),
    CommandSpec::new("move", 3, WRITE | FAST, KeySpec::single(1), move_).doc(
        "generic",
        "1.0.0",
        "Moves a key to another database.",
    ),
    CommandSpec::new("randomkey", 1, READONLY, KeySpec::NONE, randomkey).doc(
        "generic",
        "1.0.0",
        "Returns a random key name from the database.",
    ),
    CommandSpec::new("keys", 2, READONLY, KeySpec::NONE, keys).doc(
        "generic",
        "1.0.0",
        "Returns all key names that match a pattern.",
    ),
    CommandSpec::new("scan", -2, READONLY, KeySpec::NONE, scan).doc(
        "generic",
        "2.8.0",
        "Iterates over the key names in the database.",
    ),
    CommandSpec::new("expire", -3, WRITE | FAST, KeySpec::single(1), expire).doc(
        "generic",
        "1.0.0",
        "Sets the expiration time of a key in seconds.",
    ),
    CommandSpec::new("pexpire", -3, WRITE | FAST, KeySpec::single(1), pexpire).doc(
        "generic",
        "2.6.0",
        "Sets the expiration time of a key in milliseconds.",
    ),
    CommandSpec::new("expireat", -3, WRITE | FAST, KeySpec::single(1), expireat).doc(
        "generic",
        "1.2.0",
        "Sets the expiration time of a key to a Unix timestamp.",
    ),
    CommandSpec::new("pexpireat", -3, WRITE | FAST, KeySpec::single(1), pexpireat).doc(
        "generic",
        "2.6.0",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
    ),
    CommandSpec::new("ttl", 2, READONLY | FAST, KeySpec::single(1), ttl).doc(
        "generic",
        "1.0.0",
        "Returns the expiration time in seconds of a key.",
    ),
    CommandSpec::new("pttl", 2, READONLY | FAST, KeySpec::single(1), pttl).doc(
        "generic",
        "2.6.0",
        "Returns the expiration time in milliseconds of a key.",
    ),
    CommandSpec::new("expiretime", 2, READONLY | FAST, KeySpec::single(1), expiretime).doc(
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix timestamp.",
    ),
    CommandSpec::new("pexpiretime", 2, READONLY | FAST, KeySpec::single(1), pexpiretime).doc(
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
    ),
    CommandSpec::new("persist", 2, WRITE | FAST, KeySpec::single(1), persist).doc(
        "generic",
        "2.2.0",
        "Removes the expiration time of a key.",
    ),
    CommandSpec::new("dump", 2, READONLY, KeySpec::single(1), dump).doc(
        "generic",
        "2.6.0",
        "Returns a serialized representation of the value stored at a key.",
    ),
    CommandSpec::new("restore", -4, WRITE | DENYOOM, KeySpec::single(1), restore).doc(
        "generic",
        "2.6.0",
        "Creates a key from the serialized representation of a value.",
    ),
    // What a cluster's MIGRATE sends; on a standalone server, RESTORE.
    CommandSpec::new("restore-asking", -4, WRITE | DENYOOM | ASKING, KeySpec::single(1), restore).doc(
        "server",
        "3.0.0",
        "An internal command for migrating keys in a cluster.",
    ),
    CommandSpec::container("object", OBJECT_SUBCOMMANDS).doc(
        "generic",
        "2.2.3",
        "A container for object introspection commands.",
    ),
    CommandSpec::new("select", 2, LOADING | STALE | FAST, KeySpec::NONE, select).doc(
        "connection",
        "1.0.0",
        "Changes the selected database.",
    ),
    // EXCLUSIVE, these three: each changes many shards one lock at a time
    // and tells the effect stream after, so a snapshot's cut (which begins
    // under the world lock) must not fall inside one. A cut there would
    // hold half a FLUSHALL, or a SWAPDB without the offset that counts it,
    // which a restarted replica would apply twice.
    CommandSpec::new("swapdb", 3, WRITE | FAST | EXCLUSIVE, KeySpec::NONE, swapdb).doc(
        "server",
        "4.0.0",
        "Swaps two Redis databases.",
    ),
    CommandSpec::new("dbsize", 1, READONLY | FAST, KeySpec::NONE, dbsize).doc(
        "server",
        "1.0.0",
        "Returns the number of keys in the database.",
    ),
    CommandSpec::new("flushdb", -1, WRITE | EXCLUSIVE, KeySpec::NONE, flushdb).doc(
        "server",
        "1.0.0",
        "Remove all keys from the current database.",
    ),
    CommandSpec::new("flushall", -1, WRITE | EXCLUSIVE, KeySpec::NONE, flushall).doc(
        "server",
        "1.0.0",
        "Removes all keys from all databases.",
    ),
];

static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("encoding", 3, READONLY, KeySpec::single(2), object_encoding).doc(
        "generic",
        "2.2.3",
        "Returns the internal encoding of a Redis object.",
    ),
    CommandSpec::new("refcount", 3, READONLY, KeySpec::single(2), object_refcount).doc(
        "generic",
        "2.2.3",
        "Returns the reference count of a value of a key.",
    ),
    CommandSpec::new("idletime", 3, READONLY, KeySpec::single(2), object_idletime).doc(
        "generic",
        "2.2.3",
        "Returns the time since the last access to a Redis object.",
    ),
    CommandSpec::new("freq", 3, READONLY, KeySpec::single(2), object_freq).doc(
        "generic",
        "4.0.0",
        "Returns the logarithmic access frequency counter of a Redis object.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, object_help).doc(
        "generic",
        "6.2.0",
        "Returns helpful text about the different subcommands.",
    ),
];

fn int(n: impl Into<i64>) -> Frame {
    Frame::Integer(n.into())
}

/// DEL key [key ...]
fn del(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let lazy = ctx.shared.config.read().lazyfree_lazy_user_del;
    remove_keys(ctx, args, lazy)
}

/// UNLINK key [key ...]
fn unlink(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remove_keys(ctx, args, true)
}

/// DEL and UNLINK: the removed values are freed after the keyspace locks
/// are released, and, when `lazy`, the large ones on the lazyfree thread.
fn remove_keys(ctx: &mut Ctx<'_>, mut args: Args<'_>, lazy: bool) -> CmdResult {
    let keys = args.rest();
    let mut tx = ctx.lock_keys(keys.iter().copied());
    let mut removed = Vec::new();
    for k in &keys {
        if let Some(e) = tx.remove(k) {
            tx.emit(&[b"DEL", k]);
            tx.notify(class::GENERIC, "del", k);
            removed.push(e.into_value());
        }
    }
    drop(tx);
    let n = removed.len() as i64;
    if lazy {
        removed.into_iter().for_each(|v| ctx.shared.lazyfree.free(v));
    }
    Ok(int(n))
}

/// EXISTS key [key ...]
fn exists(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let keys = args.rest();
    let mut tx = ctx.lock_keys(keys.iter().copied());
    Ok(int(keys.iter().filter(|k| tx.contains(k)).count() as i64))
}

/// TOUCH key [key ...]
fn touch(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let keys = args.rest();
    let mut tx = ctx.lock_keys(keys.iter().copied());
    // TOUCH touches even for a client in CLIENT NO-TOUCH mode, as in Redis.
    tx.set_touch(true);
    Ok(int(keys.iter().filter(|k| tx.get(k).is_some()).count() as i64))
}

/// TYPE key
fn type_(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let t = ctx.lock(key).peek(key).map_or("none", |e| e.type_name());
    Ok(Frame::simple(t))
}

fn rename_generic(ctx: &mut Ctx<'_>, mut args: Args<'_>, nx: bool) -> Result<bool, CmdError> {
    let (src, dst) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock_keys([src, dst]);
    if !tx.contains(src) {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        return Ok(!nx);
    }
    if nx && tx.contains(dst) {
        return Ok(false);
    }
    let entry = tx.remove(src).expect("checked above");
    tx.remove(dst);
    tx.put_entry(Bytes::copy_from_slice(dst), entry);
    tx.emit(&[b"RENAME", src, dst]);
    tx.notify(class::GENERIC, "rename_from", src);
    tx.notify(class::GENERIC, "rename_to", dst);
    ctx.key_ready(dst);
    Ok(true)
}

/// RENAME key newkey
fn rename(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rename_generic(ctx, args, false)?;
    Ok(Frame::ok())
}

/// RENAMENX key newkey
fn renamenx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    Ok(int(rename_generic(ctx, args, true)? as i64))
}

fn parse_db(ctx: &Ctx<'_>, raw: &[u8]) -> Result<usize, CmdError> {
    let db = parse_i64(raw).map_err(|_| CmdError::NotInteger)?;
    if db < 0 || db as usize >= ctx.shared.keyspace.databases() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    Ok(db as usize)
}

/// A copy of `key`'s entry and its deadline, for COPY.
fn read_copy(tx: &mut Tx<'_>, key: &[u8], now: u64) -> Option<(Entry, Option<u64>)> {
    let e = tx.peek(key)?;
    let mut copy = Entry::new(e.value().into_owned(), larder_store::Access::lru(now));
    copy.set_raw_clock(e.raw_clock());
    Some((copy, e.expire_at()))
}

/// Stores a copied entry under `key` unless it exists and `replace` is off.
fn place_copy(tx: &mut Tx<'_>, key: &[u8], (entry, deadline): (Entry, Option<u64>), replace: bool) -> bool {
    if tx.contains(key) {
        if !replace {
            return false;
        }
        tx.remove(key);
    }
    tx.put_entry(Bytes::copy_from_slice(key), entry);
    if let Some(at) = deadline {
        tx.set_expire(key, at);
    }
    true
}

/// COPY source destination [DB destination-db] [REPLACE]
fn copy(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (src, dst) = (args.next_arg()?, args.next_arg()?);
    let (mut dst_db, mut replace) = (ctx.db(), false);
    while let Some(a) = args.next() {
        if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "db") {
            dst_db = parse_db(ctx, args.next_arg()?)?;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if src == dst && dst_db == ctx.db() {
        return Err(CmdError::SameObject);
    }
    let now = ctx.now;
    let ks = &ctx.shared.keyspace;
    let done = if dst_db == ctx.db() {
        let mut tx = ctx.lock_keys([src, dst]);
        let Some(copied) = read_copy(&mut tx, src, now) else { return Ok(int(0)) };
        place_copy(&mut tx, dst, copied, replace)
    } else {
        let (mut s, mut d) = ks.lock_across(ctx.db(), src, dst_db, dst, now);
        let Some(copied) = read_copy(&mut s, src, now) else { return Ok(int(0)) };
        place_copy(&mut d, dst, copied, replace)
    };
    if done {
        let db_arg = itoa::Buffer::new().format(dst_db).to_string();
        ks.effects.emit(ctx.db(), &[b"COPY", src, dst, b"DB", db_arg.as_bytes(), b"REPLACE"]);
        ks.effects.event(dst_db, class::GENERIC, "copy_to", dst);
        ctx.shared.blocking.key_ready(dst_db, dst);
    }
    Ok(int(done as i64))
}

/// MOVE key db
fn move_(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let dst = parse_db(ctx, args.next_arg()?)?;
    if dst == ctx.db() {
        return Err(CmdError::SameObject);
    }
    let (mut s, mut d) = ctx.shared.keyspace.lock_across(ctx.db(), key, dst, key, ctx.now);
    if !s.contains(key) || d.contains(key) {
        return Ok(int(0));
    }
    let entry = s.remove(key).expect("checked above");
    d.put_entry(Bytes::copy_from_slice(key), entry);
    s.emit(&[b"MOVE", key, itoa::Buffer::new().format(dst).as_bytes()]);
    s.notify(class::GENERIC, "move_from", key);
    d.notify(class::GENERIC, "move_to", key);
    ctx.shared.blocking.key_ready(dst, key);
    Ok(int(1))
}

/// RANDOMKEY
fn randomkey(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(ctx.shared.keyspace.random_key(ctx.db(), ctx.now).map(Frame::Bulk).unwrap_or(Frame::Null))
}

/// KEYS pattern
fn keys(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let pattern = args.next_arg()?;
    let mut out = Vec::new();
    let mut cursor = 0;
    let all = pattern == b"*";
    loop {
        cursor = ctx.shared.keyspace.scan(ctx.db(), cursor, 1024, ctx.now, |k, _| {
            if all || glob_match(pattern, k, false) {
                out.push(Frame::Bulk(Bytes::copy_from_slice(k)));
            }
        });
        if cursor == 0 {
            break;
        }
    }
    Ok(Frame::Array(out))
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
fn scan(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let opts = ScanOpts::parse(&mut args, true)?;
    let mut found = Vec::new();
    let next = ctx.shared.keyspace.scan(ctx.db(), opts.cursor, opts.count, ctx.now, |k, e| {
        if opts.matches(k) && opts.typ.as_deref().is_none_or(|t| t == e.type_name()) {
            found.push(Frame::Bulk(Bytes::copy_from_slice(k)));
        }
    });
    Ok(ScanOpts::reply(next, found))
}

#[derive(Debug, Default, PartialEq)]
struct ExpireOpts {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl ExpireOpts {
    fn parse(args: &mut Args<'_>) -> Result<ExpireOpts, CmdError> {
        let mut o = ExpireOpts::default();
        while let Some(a) = args.next() {
            match () {
                _ if eq_ic(a, "nx") => o.nx = true,
                _ if eq_ic(a, "xx") => o.xx = true,
                _ if eq_ic(a, "gt") => o.gt = true,
                _ if eq_ic(a, "lt") => o.lt = true,
                _ => return Err(CmdError::Err(format!("Unsupported option {}", String::from_utf8_lossy(a)))),
            }
        }
        if o.nx && (o.xx || o.gt || o.lt) {
            return Err(CmdError::Err("NX and XX, GT or LT options at the same time are not compatible".into()));
        }
        if o.gt && o.lt {
            return Err(CmdError::Err("GT and LT options at the same time are not compatible".into()));
        }
        Ok(o)
    }
}

fn expire_generic(ctx: &mut Ctx<'_>, mut args: Args<'_>, unit: i64, absolute: bool, name: &str) -> CmdResult {
    let key = args.next_arg()?;
    let n = args.next_i64()?;
    let o = ExpireOpts::parse(&mut args)?;
    let at = deadline_ms(n, unit, absolute, ctx.now).ok_or_else(|| CmdError::InvalidExpire(name.to_string()))?;
    let mut tx = ctx.lock(key);
    let Some(e) = tx.peek(key) else { return Ok(int(0)) };
    let current = e.expire_at();
    let allowed = match current {
        None => !o.xx && !o.gt,
        Some(cur) => !o.nx && (!o.gt || at > cur as i64) && (!o.lt || at < cur as i64),
    };
    if !allowed {
        return Ok(int(0));
    }
    expire_key_at(&mut tx, key, at);
    Ok(int(1))
}

/// EXPIRE key seconds [NX | XX | GT | LT]
fn expire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, 1000, false, "expire")
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
fn pexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
fn expireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
fn pexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// -2 for a missing key, -1 for no TTL, else `f(deadline)`.
fn ttl_generic(ctx: &mut Ctx<'_>, mut args: Args<'_>, f: impl Fn(u64, u64) -> i64) -> CmdResult {
    let key = args.next_arg()?;
    let now = ctx.now;
    Ok(int(match ctx.lock(key).peek(key) {
        None => -2,
        Some(e) => e.expire_at().map_or(-1, |at| f(at, now)),
    }))
}

/// TTL key
fn ttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, |at, now| ((at.saturating_sub(now) + 500) / 1000) as i64)
}

/// PTTL key
fn pttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, |at, now| at.saturating_sub(now) as i64)
}

/// EXPIRETIME key
fn expiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, |at, _| (at / 1000) as i64)
}

/// PEXPIRETIME key
fn pexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, |at, _| at as i64)
}

/// PERSIST key
fn persist(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    Ok(int(persist_key(&mut ctx.lock(key), key) as i64))
}

/// DUMP key
fn dump(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    Ok(match ctx.lock(key).peek(key) {
        None => Frame::Null,
        Some(e) => Frame::Bulk(larder_persist::dump_payload(&e.value()).map_err(|e| CmdError::Err(e.to_string()))?),
    })
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
fn restore(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let ttl = args.next_i64()?;
    let payload = args.next_arg()?;
    let (mut replace, mut absttl, mut idle, mut freq) = (false, false, None, None);
    while let Some(a) = args.next() {
        if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "absttl") {
            absttl = true;
        } else if eq_ic(a, "idletime") && freq.is_none() {
            let v = args.next_i64()?;
            if v < 0 {
                return Err(CmdError::Err("Invalid IDLETIME value, must be >= 0".into()));
            }
            idle = Some(v);
        } else if eq_ic(a, "freq") && idle.is_none() {
            let v = args.next_i64()?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::Err("Invalid FREQ value, must be >= 0 and <= 255".into()));
            }
            freq = Some(v as u8);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if ttl < 0 {
        return Err(CmdError::Err("Invalid TTL value, must be >= 0".into()));
    }
    let mut tx = ctx.lock(key);
    if !replace && tx.contains(key) {
        return Err(CmdError::BusyKey);
    }
    let value = larder_persist::restore_payload(payload, &ctx.client.limits).map_err(|e| {
        // Logged as Redis logs a payload its integrity check refuses.
        if e != larder_persist::RdbError::VersionOrChecksum {
            tracing::warn!("RESTORE payload integrity check failed: {e}");
        }
        CmdError::Err(e.to_string())
    })?;
    let deadline = match ttl {
        0 => None,
        t if absttl => Some(t as u64),
        t => Some(ctx.now + t as u64),
    };
    let replaced = tx.remove(key).is_some();
    if deadline.is_some_and(|at| at <= ctx.now) && tx.reclaims_expired() {
        // Already expired: Redis answers OK and stores nothing (except on
        // a replica or in a replayed log, which keep what they are sent).
        if replaced {
            tx.emit(&[b"DEL", key]);
            tx.notify(class::GENERIC, "del", key);
        }
        return Ok(Frame::ok());
    }
    let access = ctx.shared.keyspace.evictor.access(ctx.now);
    let mut entry = Entry::new(value, access);
    entry.restore_access(access, idle.map(|i| i as u64), freq);
    tx.put_entry(Bytes::copy_from_slice(key), entry);
    let ttl_arg = deadline.unwrap_or(0).to_string();
    if let Some(at) = deadline {
        tx.set_expire(key, at);
    }
    // As Redis propagates it: the arguments as given, a relative TTL made
    // absolute with ABSTTL added.
    let mut effect: Vec<&[u8]> = args.all();
    if deadline.is_some() && !absttl {
        effect[2] = ttl_arg.as_bytes();
        effect.push(b"ABSTTL");
    }
    tx.emit(&effect);
    tx.notify(class::GENERIC, "restore", key);
    ctx.key_ready(key);
    Ok(Frame::ok())
}

/// An LFU policy is in force: the flag that also decides which form the
/// keys' access clocks take, so OBJECT FREQ and IDLETIME answer exactly
/// when the clock they read is kept.
fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    ctx.shared.keyspace.evictor.lfu.load(std::sync::atomic::Ordering::Relaxed)
}

fn with_entry(ctx: &mut Ctx<'_>, mut args: Args<'_>, f: impl FnOnce(&Entry) -> CmdResult) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    // OBJECT looks up with LOOKUP_NONOTIFY in Redis: no keymiss.
    tx.set_miss_events(false);
    match tx.peek(key) {
        None => Ok(Frame::Null),
        Some(e) => f(e),
    }
}

/// OBJECT ENCODING key
fn object_encoding(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_entry(ctx, args, |e| Ok(Frame::bulk_static(e.encoding())))
}

/// OBJECT REFCOUNT key
fn object_refcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // Redis shares the integers 0..10000 and reports them as immortal.
    with_entry(ctx, args, |e| {
        let shared =
            matches!(&*e.value(), larder_store::Value::Str(larder_store::StrValue::Int(i)) if (0..10000).contains(i));
        Ok(int(if shared { i32::MAX as i64 } else { 1 }))
    })
}

/// OBJECT IDLETIME key
fn object_idletime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if lfu_policy(ctx) {
        return Err(CmdError::Err("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into()));
    }
    let now = ctx.now;
    with_entry(ctx, args, |e| Ok(int(e.idle_secs(now) as i64)))
}

/// OBJECT FREQ key
fn object_freq(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if !lfu_policy(ctx) {
        return Err(CmdError::Err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into()));
    }
    let (now, decay) = (ctx.now, ctx.shared.keyspace.evictor.lfu_decay_time.load(std::sync::atomic::Ordering::Relaxed));
    with_entry(ctx, args, |e| Ok(int(e.lfu(now, decay) as i64)))
}

/// Builds a HELP reply: a title line, then the body lines.
pub fn help_reply(cmd: &str, lines: &[&str]) -> Frame {
    let mut out =
        vec![Frame::Simple(Bytes::from(format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")))];
    out.extend(lines.iter().map(|l| Frame::Simple(Bytes::copy_from_slice(l.as_bytes()))));
    out.push(Frame::simple("HELP"));
    out.push(Frame::simple("    Prints this help."));
    Frame::Array(out)
}

/// OBJECT HELP
fn object_help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    ))
}

/// SELECT index
fn select(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let db = parse_db(ctx, args.next_arg()?)?;
    ctx.client.set_db(db);
    Ok(Frame::ok())
}

/// SWAPDB index1 index2
fn swapdb(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let parse = |raw: &[u8], which: &str| -> Result<usize, CmdError> {
        let n = parse_i64(raw).map_err(|_| CmdError::Err(format!("invalid {which} DB index")))?;
        if n < 0 || n as usize >= ctx.shared.keyspace.databases() {
            return Err(CmdError::DbIndexOutOfRange);
        }
        Ok(n as usize)
    };
    let (a_raw, b_raw) = (args.next_arg()?, args.next_arg()?);
    let a = parse(a_raw, "first")?;
    let b = parse(b_raw, "second")?;
    let (ks, now) = (&ctx.shared.keyspace, ctx.now);
    let exists = |db: usize, k: &[u8]| ks.lock(db, k, now).contains(k);
    ctx.shared.watches.touch_if(|db, k| (db == a || db == b) && (exists(a, k) || exists(b, k)));
    ctx.shared.keyspace.swap_db(a, b);
    // A list or sorted set may now stand where a client was waiting.
    ctx.shared.blocking.db_changed(a);
    ctx.shared.blocking.db_changed(b);
    ctx.shared.keyspace.effects.emit(ctx.db(), &[b"SWAPDB", a_raw, b_raw]);
    Ok(Frame::ok())
}

/// DBSIZE
fn dbsize(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(int(ctx.shared.keyspace.dbsize(ctx.db()) as i64))
}

/// ASYNC, SYNC, or neither (then `lazyfree-lazy-user-flush` decides):
/// whether to free on the lazyfree thread.
fn flush_mode(ctx: &Ctx<'_>, args: &mut Args<'_>) -> Result<bool, CmdError> {
    let lazy = match args.next() {
        None => ctx.shared.config.read().lazyfree_lazy_user_flush,
        Some(a) if eq_ic(a, "async") => true,
        Some(a) if eq_ic(a, "sync") => false,
        Some(_) => return Err(CmdError::Syntax),
    };
    args.finish()?;
    Ok(lazy)
}

/// FLUSHDB [ASYNC | SYNC]
fn flushdb(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let lazy = flush_mode(ctx, &mut args)?;
    let (ks, now, me) = (&ctx.shared.keyspace, ctx.now, ctx.db());
    ctx.shared.watches.touch_if(|db, k| db == me && ks.lock(db, k, now).contains(k));
    let flushed = ctx.shared.keyspace.take_db(ctx.db());
    ctx.shared.keyspace.effects.emit(ctx.db(), &[b"FLUSHDB"]);
    ctx.shared.lazyfree.free_flushed(flushed, lazy);
    Ok(Frame::ok())
}

/// FLUSHALL [ASYNC | SYNC]
fn flushall(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let lazy = flush_mode(ctx, &mut args)?;
    let (ks, now) = (&ctx.shared.keyspace, ctx.now);
    ctx.shared.watches.touch_if(|db, k| ks.lock(db, k, now).contains(k));
    // As Redis's flushAllDataAndResetRDB: a BGSAVE running would write
    // the flushed data, so it stops; with save points, the empty dataset
    // is saved at once, so a restart does not bring the data back.
    crate::snapshot::abort_bgsave(ctx.shared);
    let flushed = ks.take_all();
    ks.effects.emit(ctx.db(), &[b"FLUSHALL"]);
    ctx.shared.lazyfree.free_flushed(flushed, lazy);
    if !ctx.shared.config.read().save.trim().is_empty() {
        if let Err(e) = crate::snapshot::save(ctx.shared) {
            tracing::warn!("Saving the empty dataset after FLUSHALL: {e}");
        }
    }
    Ok(Frame::ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use larder_protocol::{parse_request, Request, RequestLimits};

    fn opts(line: &str) -> Result<ExpireOpts, CmdError> {
        let input = format!("{line}\r\n");
        let mut req = Request::default();
        parse_request(input.as_bytes(), &RequestLimits::default(), &mut req).unwrap().unwrap();
        let mut args = Args::new(&req, input.as_bytes(), 0);
        ExpireOpts::parse(&mut args)
    }

    #[test]
    fn expire_opts_conflicts() {
        assert_eq!(opts("nx").unwrap(), ExpireOpts { nx: true, ..Default::default() });
        assert!(opts("nx xx").unwrap_err().to_string().contains("NX and XX, GT or LT"));
        assert!(opts("gt lt").unwrap_err().to_string().contains("GT and LT"));
        assert_eq!(opts("foo").unwrap_err().to_string(), "ERR Unsupported option foo");
    }
}

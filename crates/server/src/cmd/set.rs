//! Set commands. Encodings (intset, listpack, hashtable) live in
//! `larder_store::Set`. The algebra commands type-check every key first,
//! as Redis does, and build their results in a fresh set that starts as an
//! intset, so reply order follows the same encoding rules as Redis's
//! (sorted for small integer results, insertion order for small others).
//! SPOP's effect is the SREM of what it popped.

use super::hash::{rand_count, rand_indexes};
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, drop_if_empty, eq_ic, get_as, get_or_create, Args, CmdResult, Ctx, ScanOpts};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::{Limits, Set, Ttl, Tx, Value};
use rand::Rng;

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, WRITE | DENYOOM | FAST, KeySpec::single(1), sadd).doc("set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist."),
    CommandSpec::new("srem", -3, WRITE | FAST, KeySpec::single(1), srem).doc("set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed."),
    CommandSpec::new("smembers", 2, READONLY, KeySpec::single(1), smembers).doc("set", "1.0.0", "Returns all members of a set."),
    CommandSpec::new("sismember", 3, READONLY | FAST, KeySpec::single(1), sismember).doc("set", "1.0.0", "Determines whether a member belongs to a set."),
    CommandSpec::new("smismember", -3, READONLY | FAST, KeySpec::single(1), smismember).doc("set", "6.2.0", "Determines whether multiple members belong to a set."),
    CommandSpec::new("scard", 2, READONLY | FAST, KeySpec::single(1), scard).doc("set", "1.0.0", "Returns the number of members in a set."),
    CommandSpec::new("spop", -2, WRITE | FAST, KeySpec::single(1), spop).doc("set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped."),
    CommandSpec::new("srandmember", -2, READONLY, KeySpec::single(1), srandmember).doc("set", "1.0.0", "Get one or multiple random members from a set."),
    CommandSpec::new("smove", 4, WRITE | FAST, KeySpec::range(1, 2, 1), smove).doc("set", "1.0.0", "Moves a member from one set to another."),
    CommandSpec::new("sinter", -2, READONLY, KeySpec::range(1, -1, 1), sinter).doc("set", "1.0.0", "Returns the intersect of multiple sets."),
    CommandSpec::new("sintercard", -3, READONLY | MOVABLEKEYS, KeySpec::NONE, sintercard).doc("set", "7.0.0", "Returns the number of members of the intersect of multiple sets."),
    CommandSpec::new("sinterstore", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 1), sinterstore).doc("set", "1.0.0", "Stores the intersect of multiple sets in a key."),
    CommandSpec::new("sunion", -2, READONLY, KeySpec::range(1, -1, 1), sunion).doc("set", "1.0.0", "Returns the union of multiple sets."),
    CommandSpec::new("sunionstore", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 1), sunionstore).doc("set", "1.0.0", "Stores the union of multiple sets in a key."),
    CommandSpec::new("sdiff", -2, READONLY, KeySpec::range(1, -1, 1), sdiff).doc("set", "1.0.0", "Returns the difference of multiple sets."),
    CommandSpec::new("sdiffstore", -3, WRITE | DENYOOM, KeySpec::range(1, -1, 1), sdiffstore).doc("set", "1.0.0", "Stores the difference of multiple sets in a key."),
    CommandSpec::new("sscan", -3, READONLY, KeySpec::single(1), sscan).doc("set", "2.8.0", "Iterates over members of a set."),
];

/// The set at `key` for reading; None if missing.
fn read<'t>(tx: &'t mut Tx<'_>, key: &[u8]) -> Result<Option<&'t Set>, CmdError> {
    Ok(get_as(tx, key, Value::as_set_mut)?.map(|s| &*s))
}

/// A RESP3 set (an array in RESP2).
fn set_reply(members: impl IntoIterator<Item = Bytes>) -> Frame {
    Frame::Set(members.into_iter().map(Frame::Bulk).collect())
}

/// SADD key member [member ...]
fn sadd(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let members = args.rest();
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let first = members[0];
    let s = get_or_create(&mut tx, key, Value::as_set_mut, || Value::Set(Set::for_first(first, members.len(), &lim)))?;
    let added = members.iter().filter(|m| s.insert(m, &lim)).count();
    if added > 0 {
        tx.emit(&args.all());
        tx.notify(class::SET, "sadd", key);
    }
    Ok(Frame::Integer(added as i64))
}

/// SREM key member [member ...]
fn srem(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let Some(s) = get_as(&mut tx, key, Value::as_set_mut)? else { return Ok(Frame::Integer(0)) };
    let removed = args.rest().into_iter().filter(|m| s.remove(m)).count();
    let empty = s.is_empty();
    if removed > 0 {
        tx.emit(&args.all());
        tx.notify(class::SET, "srem", key);
    }
    drop_if_empty(&mut tx, key, empty);
    Ok(Frame::Integer(removed as i64))
}

/// SMEMBERS key
fn smembers(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    Ok(set_reply(read(&mut tx, key)?.map(Set::members).unwrap_or_default()))
}

/// SISMEMBER key member
fn sismember(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, m) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    Ok(Frame::Integer(read(&mut tx, key)?.is_some_and(|s| s.contains(m)) as i64))
}

/// SMISMEMBER key member [member ...]
fn smismember(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?;
    let out = args.rest().into_iter().map(|m| Frame::Integer(s.is_some_and(|s| s.contains(m)) as i64));
    Ok(Frame::Array(out.collect()))
}

/// SCARD key
fn scard(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    Ok(Frame::Integer(read(&mut tx, key)?.map_or(0, Set::len) as i64))
}

/// SPOP key [count]
fn spop(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let count = args.next().map(super::parse_positive).transpose()?;
    args.finish()?;
    let mut tx = ctx.lock(key);
    let Some(s) = get_as(&mut tx, key, Value::as_set_mut)? else {
        return Ok(if count.is_some() { Frame::Set(vec![]) } else { Frame::Null });
    };
    let Some(count) = count else {
        let i = rand::rng().random_range(0..s.len());
        let m = s.remove_index(i).expect("index below len");
        let empty = s.is_empty();
        tx.emit(&[b"SREM", key, &m]);
        tx.notify(class::SET, "spop", key);
        drop_if_empty(&mut tx, key, empty);
        return Ok(Frame::Bulk(m));
    };
    if count == 0 {
        return Ok(Frame::Set(vec![]));
    }
    let popped: Vec<Bytes> = if count >= s.len() {
        let all = s.members();
        tx.remove(key);
        tx.emit(&[b"DEL", key]);
        tx.notify(class::SET, "spop", key);
        tx.notify(class::GENERIC, "del", key);
        all
    } else {
        let mut picked = rand_indexes(s.len(), count, true);
        // Remove from the highest index down so earlier indexes stay valid.
        picked.sort_unstable_by(|a, b| b.cmp(a));
        let popped: Vec<Bytes> = picked.into_iter().map(|i| s.remove_index(i).expect("index below len")).collect();
        let mut effect: Vec<&[u8]> = vec![b"SREM", key];
        effect.extend(popped.iter().map(|m| m.as_ref()));
        tx.emit(&effect);
        tx.notify(class::SET, "spop", key);
        popped
    };
    Ok(set_reply(popped))
}

/// SRANDMEMBER key [count]
fn srandmember(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let count = args.next().map(rand_count).transpose()?;
    args.finish()?;
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?;
    let Some((count, unique)) = count else {
        let Some(s) = s else { return Ok(Frame::Null) };
        return Ok(Frame::Bulk(s.get_index(rand::rng().random_range(0..s.len())).expect("index below len")));
    };
    let Some(s) = s else { return Ok(Frame::Array(vec![])) };
    let picked = rand_indexes(s.len(), count, unique);
    Ok(Frame::Array(s.pick(picked.into_iter()).into_iter().map(Frame::Bulk).collect()))
}

/// SMOVE source destination member
fn smove(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (src, dst, m) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let lim = ctx.client.limits;
    let mut tx = ctx.lock_keys([src, dst]);
    let in_src = match read(&mut tx, src)? {
        None => return Ok(Frame::Integer(0)),
        Some(s) => s.contains(m),
    };
    read(&mut tx, dst)?;
    if src == dst || !in_src {
        return Ok(Frame::Integer(in_src as i64));
    }
    let s = get_as(&mut tx, src, Value::as_set_mut)?.expect("checked above");
    s.remove(m);
    let empty = s.is_empty();
    tx.notify(class::SET, "srem", src);
    drop_if_empty(&mut tx, src, empty);
    let d = get_or_create(&mut tx, dst, Value::as_set_mut, || Value::Set(Set::for_first(m, 1, &lim)))?;
    d.insert(m, &lim);
    tx.emit(&args.all());
    tx.notify(class::SET, "sadd", dst);
    Ok(Frame::Integer(1))
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The members of the result of `op` over `keys`, in the order Redis
/// would reply with them. Type-checks every key before anything else.
fn compute(tx: &mut Tx<'_>, keys: &[&[u8]], op: Op, lim: &Limits, limit: usize) -> Result<Vec<Bytes>, CmdError> {
    let mut sizes = Vec::with_capacity(keys.len());
    for k in keys {
        sizes.push(read(tx, k)?.map(Set::len));
    }
    match op {
        Op::Inter => {
            if sizes.iter().any(Option::is_none) {
                return Ok(vec![]);
            }
            // Walk the smallest set, probing the others.
            let (first, _) = sizes.iter().enumerate().min_by_key(|(_, n)| n.unwrap_or(0)).expect("at least one key");
            let mut out = read(tx, keys[first])?.expect("checked").members();
            for (i, k) in keys.iter().enumerate() {
                if i != first {
                    let s = read(tx, k)?.expect("checked");
                    out.retain(|m| s.contains(m));
                }
            }
            if limit > 0 {
                out.truncate(limit);
            }
            Ok(out)
        }
        Op::Union | Op::Diff => {
            let mut acc = Set::Intset(Default::default());
            let Some(first) = read(tx, keys[0])? else {
                if op == Op::Diff {
                    return Ok(vec![]);
                }
                return union_rest(tx, keys, acc, lim);
            };
            for m in first.members() {
                acc.insert(&m, lim);
            }
            if op == Op::Union {
                return union_rest(tx, keys, acc, lim);
            }
            for k in &keys[1..] {
                if let Some(s) = read(tx, k)? {
                    for m in s.members() {
                        acc.remove(&m);
                    }
                }
            }
            Ok(acc.members())
        }
    }
}

fn union_rest(tx: &mut Tx<'_>, keys: &[&[u8]], mut acc: Set, lim: &Limits) -> Result<Vec<Bytes>, CmdError> {
    for k in &keys[1..] {
        if let Some(s) = read(tx, k)? {
            for m in s.members() {
                acc.insert(&m, lim);
            }
        }
    }
    Ok(acc.members())
}

/// SINTER / SUNION / SDIFF key [key ...]
fn algebra(ctx: &mut Ctx<'_>, mut args: Args<'_>, op: Op) -> CmdResult {
    let keys = args.rest();
    let lim = ctx.client.limits;
    let mut tx = ctx.lock_keys(keys.iter().copied());
    Ok(set_reply(compute(&mut tx, &keys, op, &lim, 0)?))
}

/// SINTERSTORE / SUNIONSTORE / SDIFFSTORE destination key [key ...]
fn algebra_store(ctx: &mut Ctx<'_>, mut args: Args<'_>, op: Op) -> CmdResult {
    let dst = args.next_arg()?;
    let keys = args.rest();
    let lim = ctx.client.limits;
    let mut tx = ctx.lock_keys(keys.iter().copied().chain([dst]));
    let members = compute(&mut tx, &keys, op, &lim, 0)?;
    let n = members.len();
    if members.is_empty() {
        return super::store_nothing(&mut tx, dst);
    }
    let mut s = Set::Intset(Default::default());
    for m in &members {
        s.insert(m, &lim);
    }
    tx.set(dst, Value::Set(s), Ttl::Clear);
    tx.emit(&args.all());
    let event = match op {
        Op::Inter => "sinterstore",
        Op::Union => "sunionstore",
        Op::Diff => "sdiffstore",
    };
    tx.notify(class::SET, event, dst);
    Ok(Frame::Integer(n as i64))
}

fn sinter(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra(ctx, args, Op::Inter)
}

fn sunion(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra(ctx, args, Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra(ctx, args, Op::Diff)
}

fn sinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra_store(ctx, args, Op::Inter)
}

fn sunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra_store(ctx, args, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra_store(ctx, args, Op::Diff)
}

/// Parses `numkeys key [key ...]` for SINTERCARD, ZINTERCARD, LMPOP and
/// friends, with Redis's errors.
pub(super) fn numkeys<'a>(args: &mut Args<'a>) -> Result<Vec<&'a [u8]>, CmdError> {
    let n = super::parse_i64(args.next_arg()?)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| CmdError::Err("numkeys should be greater than 0".into()))?;
    if n as usize > args.remaining() {
        return Err(CmdError::Err("Number of keys can't be greater than number of args".into()));
    }
    Ok((0..n).map(|_| args.next().expect("counted above")).collect())
}

/// Parses the trailing `[LIMIT limit]` of SINTERCARD / ZINTERCARD.
pub(super) fn card_limit(args: &mut Args<'_>) -> Result<usize, CmdError> {
    let mut limit = 0;
    while let Some(a) = args.next() {
        if !eq_ic(a, "limit") {
            return Err(CmdError::Syntax);
        }
        let n = super::parse_i64(args.next_arg()?).map_err(|_| CmdError::Err("LIMIT can't be negative".into()))?;
        if n < 0 {
            return Err(CmdError::Err("LIMIT can't be negative".into()));
        }
        limit = n as usize;
    }
    Ok(limit)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
fn sintercard(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let keys = numkeys(&mut args)?;
    let limit = card_limit(&mut args)?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock_keys(keys.iter().copied());
    Ok(Frame::Integer(compute(&mut tx, &keys, Op::Inter, &lim, limit)?.len() as i64))
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
fn sscan(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let opts = ScanOpts::parse(&mut args, false)?;
    let mut tx = ctx.lock(key);
    let Some(s) = read(&mut tx, key)? else { return Ok(ScanOpts::reply(0, vec![])) };
    let mut found = Vec::new();
    let next = s.scan(opts.cursor, opts.count, |m| {
        if opts.matches(&m) {
            found.push(Frame::Bulk(m));
        }
    });
    Ok(ScanOpts::reply(next, found))
}

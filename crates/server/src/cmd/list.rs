//! List commands, blocking ones included. The list itself (a ring buffer
//! that reports Redis's listpack/quicklist encoding) is `larder_store::List`.
//!
//! Pops and moves share one code path with their blocking forms: a
//! blocking command that finds data behaves exactly like the plain one,
//! and one that finds none registers the client (see `crate::blocking`).
//! Effects follow Redis's propagation: BLPOP becomes LPOP, LMPOP becomes
//! LPOP/RPOP with a count, BLMOVE becomes LMOVE. Every push wakes a client
//! blocked on the key.

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, drop_if_empty, eq_ic, get_as, get_or_create, parse_positive, parse_timeout, Args, CmdResult, Ctx};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::{List, Tx, Value};

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", -3, WRITE | DENYOOM | FAST, KeySpec::single(1), lpush).doc("list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist."),
    CommandSpec::new("rpush", -3, WRITE | DENYOOM | FAST, KeySpec::single(1), rpush).doc("list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist."),
    CommandSpec::new("lpushx", -3, WRITE | DENYOOM | FAST, KeySpec::single(1), lpushx).doc("list", "2.2.0", "Prepends one or more elements to a list only when the list exists."),
    CommandSpec::new("rpushx", -3, WRITE | DENYOOM | FAST, KeySpec::single(1), rpushx).doc("list", "2.2.0", "Appends an element to a list only when the list exists."),
    CommandSpec::new("lpop", -2, WRITE | FAST, KeySpec::single(1), lpop).doc("list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped."),
    CommandSpec::new("rpop", -2, WRITE | FAST, KeySpec::single(1), rpop).doc("list", "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped."),
    CommandSpec::new("llen", 2, READONLY | FAST, KeySpec::single(1), llen).doc("list", "1.0.0", "Returns the length of a list."),
    CommandSpec::new("lindex", 3, READONLY, KeySpec::single(1), lindex).doc("list", "1.0.0", "Returns an element from a list by its index."),
    CommandSpec::new("lset", 4, WRITE | DENYOOM, KeySpec::single(1), lset).doc("list", "1.0.0", "Sets the value of an element in a list by its index."),
    CommandSpec::new("lrange", 4, READONLY, KeySpec::single(1), lrange).doc("list", "1.0.0", "Returns a range of elements from a list."),
    CommandSpec::new("ltrim", 4, WRITE, KeySpec::single(1), ltrim).doc("list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed."),
    CommandSpec::new("lrem", 4, WRITE, KeySpec::single(1), lrem).doc("list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed."),
    CommandSpec::new("linsert", 5, WRITE | DENYOOM, KeySpec::single(1), linsert).doc("list", "2.2.0", "Inserts an element before or after another element in a list."),
    CommandSpec::new("lpos", -3, READONLY, KeySpec::single(1), lpos).doc("list", "6.0.6", "Returns the index of matching elements in a list."),
    CommandSpec::new("lmove", 5, WRITE | DENYOOM, KeySpec::range(1, 2, 1), lmove).doc("list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved."),
    CommandSpec::new("rpoplpush", 3, WRITE | DENYOOM, KeySpec::range(1, 2, 1), rpoplpush).doc("list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped."),
    CommandSpec::new("lmpop", -4, WRITE | MOVABLEKEYS, KeySpec::NONE, lmpop).doc("list", "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped."),
    CommandSpec::new("blpop", -3, WRITE | NOSCRIPT | BLOCKING, KeySpec::range(1, -2, 1), blpop).doc("list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."),
    CommandSpec::new("brpop", -3, WRITE | NOSCRIPT | BLOCKING, KeySpec::range(1, -2, 1), brpop).doc("list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."),
    CommandSpec::new("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, KeySpec::range(1, 2, 1), blmove).doc("list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved."),
    CommandSpec::new("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, KeySpec::range(1, 2, 1), brpoplpush).doc("list", "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped."),
    CommandSpec::new("blmpop", -5, WRITE | BLOCKING | MOVABLEKEYS, KeySpec::NONE, blmpop).doc("list", "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped."),
];

fn new_list() -> Value {
    Value::List(List::default())
}

fn read<'t>(tx: &'t mut Tx<'_>, key: &[u8]) -> Result<Option<&'t List>, CmdError> {
    Ok(get_as(tx, key, Value::as_list_mut)?.map(|l| &*l))
}

/// LPUSH/RPUSH and their X forms.
fn push(ctx: &mut Ctx<'_>, mut args: Args<'_>, left: bool, only_existing: bool) -> CmdResult {
    let key = args.next_arg()?;
    let items = args.rest();
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let l = if only_existing {
        match get_as(&mut tx, key, Value::as_list_mut)? {
            Some(l) => l,
            None => return Ok(Frame::Integer(0)),
        }
    } else {
        get_or_create(&mut tx, key, Value::as_list_mut, new_list)?
    };
    l.grow_check(items.iter().map(|i| i.len()).sum(), items.len(), &lim);
    for item in &items {
        let item = Bytes::copy_from_slice(item);
        if left {
            l.push_front(item)
        } else {
            l.push_back(item)
        }
    }
    let len = l.len();
    tx.emit(&args.all());
    tx.notify(class::LIST, if left { "lpush" } else { "rpush" }, key);
    ctx.key_ready(key);
    Ok(Frame::Integer(len as i64))
}

fn lpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push(ctx, args, true, false)
}

fn rpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push(ctx, args, false, false)
}

fn lpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push(ctx, args, true, true)
}

fn rpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push(ctx, args, false, true)
}

/// Pops up to `n` elements from a live list. The caller finishes with
/// [`popped`] once any other events of its command have fired.
fn pop_n(
    tx: &mut Tx<'_>,
    key: &[u8],
    left: bool,
    n: usize,
    lim: &larder_store::Limits,
) -> Result<(Vec<Bytes>, bool), CmdError> {
    let Some(l) = get_as(tx, key, Value::as_list_mut)? else { return Ok((vec![], false)) };
    let mut out = Vec::with_capacity(n.min(l.len()));
    while out.len() < n {
        match if left { l.pop_front() } else { l.pop_back() } {
            Some(v) => out.push(v),
            None => break,
        }
    }
    l.shrink_check(lim);
    Ok((out, l.is_empty()))
}

/// Fires a pop's event and deletes the list if the pop emptied it.
fn popped(tx: &mut Tx<'_>, key: &[u8], left: bool, empty: bool) {
    tx.notify(class::LIST, if left { "lpop" } else { "rpop" }, key);
    drop_if_empty(tx, key, empty);
}

fn side_name(left: bool) -> &'static [u8] {
    if left {
        b"LPOP"
    } else {
        b"RPOP"
    }
}

/// LPOP/RPOP key [count]
fn pop(ctx: &mut Ctx<'_>, mut args: Args<'_>, left: bool) -> CmdResult {
    let key = args.next_arg()?;
    if args.remaining() > 1 {
        return Err(CmdError::WrongArity(String::from_utf8_lossy(args.get(0)).to_lowercase()));
    }
    let count = match args.next() {
        None => None,
        Some(a) => Some(parse_positive(a)?),
    };
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    if read(&mut tx, key)?.is_none() {
        return Ok(if count.is_some() { Frame::NullArray } else { Frame::Null });
    }
    let Some(n) = count else {
        let (v, empty) = pop_n(&mut tx, key, left, 1, &lim)?;
        popped(&mut tx, key, left, empty);
        tx.emit(&[side_name(left), key]);
        return Ok(Frame::Bulk(v.into_iter().next().expect("a live list is never empty")));
    };
    if n == 0 {
        return Ok(Frame::Array(vec![]));
    }
    let (v, empty) = pop_n(&mut tx, key, left, n, &lim)?;
    popped(&mut tx, key, left, empty);
    tx.emit(&args.all());
    Ok(Frame::Array(v.into_iter().map(Frame::Bulk).collect()))
}

fn lpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop(ctx, args, true)
}

fn rpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop(ctx, args, false)
}

/// LLEN key
fn llen(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    Ok(Frame::Integer(read(&mut tx, key)?.map_or(0, List::len) as i64))
}

/// A signed Redis index into a list of `len`, if in range.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

/// LINDEX key index
fn lindex(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let i = args.next_i64()?;
    let mut tx = ctx.lock(key);
    let v = read(&mut tx, key)?.and_then(|l| index(i, l.len()).and_then(|i| l.get(i).map(Bytes::copy_from_slice)));
    Ok(v.map_or(Frame::Null, Frame::Bulk))
}

/// LSET key index element
fn lset(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let i = args.next_i64()?;
    let v = args.next_arg()?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let l = get_as(&mut tx, key, Value::as_list_mut)?.ok_or(CmdError::NoSuchKey)?;
    let i = index(i, l.len()).ok_or_else(|| CmdError::Err("index out of range".into()))?;
    l.grow_check(v.len(), 0, &lim);
    l.set(i, Bytes::copy_from_slice(v));
    l.shrink_check(&lim);
    tx.emit(&args.all());
    tx.notify(class::LIST, "lset", key);
    Ok(Frame::ok())
}

/// LRANGE key start stop
fn lrange(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let (start, stop) = (args.next_i64()?, args.next_i64()?);
    let mut tx = ctx.lock(key);
    let Some(l) = read(&mut tx, key)? else { return Ok(Frame::Array(vec![])) };
    let Some((a, b)) = larder_store::types::clamp_range(start, stop, l.len()) else {
        return Ok(Frame::Array(vec![]));
    };
    Ok(Frame::Array(l.iter_from(a).take(b - a + 1).map(Frame::bulk).collect()))
}

/// LTRIM key start stop
fn ltrim(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let (start, stop) = (args.next_i64()?, args.next_i64()?);
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let Some(l) = get_as(&mut tx, key, Value::as_list_mut)? else { return Ok(Frame::ok()) };
    match larder_store::types::clamp_range(start, stop, l.len()) {
        Some((a, b)) => l.trim(a, b),
        None => l.clear(),
    }
    l.shrink_check(&lim);
    let empty = l.is_empty();
    tx.notify(class::LIST, "ltrim", key);
    drop_if_empty(&mut tx, key, empty);
    tx.emit(&args.all());
    Ok(Frame::ok())
}

/// LREM key count element
fn lrem(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let count = args.next_i64()?;
    let v = args.next_arg()?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let Some(l) = get_as(&mut tx, key, Value::as_list_mut)? else { return Ok(Frame::Integer(0)) };
    let n = l.remove_matching(count.unsigned_abs() as usize, count < 0, |x| x == v);
    l.shrink_check(&lim);
    let empty = l.is_empty();
    if n > 0 {
        tx.notify(class::LIST, "lrem", key);
        drop_if_empty(&mut tx, key, empty);
        tx.emit(&args.all());
    }
    Ok(Frame::Integer(n as i64))
}

/// LINSERT key BEFORE|AFTER pivot element
fn linsert(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let place = args.next_arg()?;
    let after = match () {
        _ if eq_ic(place, "after") => true,
        _ if eq_ic(place, "before") => false,
        _ => return Err(CmdError::Syntax),
    };
    let (pivot, v) = (args.next_arg()?, args.next_arg()?);
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let Some(l) = get_as(&mut tx, key, Value::as_list_mut)? else { return Ok(Frame::Integer(0)) };
    let Some(at) = l.iter().position(|x| x == pivot) else { return Ok(Frame::Integer(-1)) };
    l.grow_check(v.len(), 1, &lim);
    l.insert(at + after as usize, Bytes::copy_from_slice(v));
    let len = l.len();
    tx.emit(&args.all());
    tx.notify(class::LIST, "linsert", key);
    Ok(Frame::Integer(len as i64))
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
fn lpos(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, v) = (args.next_arg()?, args.next_arg()?);
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    while let Some(opt) = args.next() {
        let n = args.next_i64()?;
        if eq_ic(opt, "rank") {
            if n == 0 {
                return Err(CmdError::Err("RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list".into()));
            }
            if n == i64::MIN {
                return Err(CmdError::Err("value is out of range".into()));
            }
            rank = n;
        } else if eq_ic(opt, "count") {
            if n < 0 {
                return Err(CmdError::Err("COUNT can't be negative".into()));
            }
            count = Some(n as usize);
        } else if eq_ic(opt, "maxlen") {
            if n < 0 {
                return Err(CmdError::Err("MAXLEN can't be negative".into()));
            }
            maxlen = n as usize;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut tx = ctx.lock(key);
    let Some(l) = read(&mut tx, key)? else {
        return Ok(if count.is_some() { Frame::Array(vec![]) } else { Frame::Null });
    };
    let len = l.len();
    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
    // One walk of the list, from the end the rank names.
    let items: Box<dyn Iterator<Item = (usize, &[u8])>> = if rank > 0 {
        Box::new(l.iter().enumerate().take(scan))
    } else {
        Box::new(l.iter().enumerate().rev().take(scan))
    };
    let want = match count {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => 1,
    };
    let skip = rank.unsigned_abs() as usize - 1;
    let found: Vec<usize> = items.filter(|(_, x)| *x == v).map(|(i, _)| i).skip(skip).take(want).collect();
    Ok(match count {
        Some(_) => Frame::Array(found.into_iter().map(|i| Frame::Integer(i as i64)).collect()),
        None => found.first().map_or(Frame::Null, |&i| Frame::Integer(i as i64)),
    })
}

fn parse_side(a: &[u8]) -> Result<bool, CmdError> {
    match () {
        _ if eq_ic(a, "left") => Ok(true),
        _ if eq_ic(a, "right") => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// The shared body of LMOVE, RPOPLPUSH and their blocking forms. With
/// `block` set, an empty source blocks the client (registered while the
/// source's lock is held, so no push slips in between). (B)RPOPLPUSH is
/// RPOPLPUSH in the replication stream and the AOF, (B)LMOVE is LMOVE, as
/// Redis propagates them (a replica's command stats say which ran).
fn move_one(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    (from_left, to_left): (bool, bool),
    block: Option<Option<std::time::Duration>>,
    rpoplpush: bool,
) -> CmdResult {
    let (lim, woken) = (ctx.client.limits, ctx.woken());
    let mut tx = ctx.lock_keys([src, dst]);
    if super::absent_if_woken(woken, read(&mut tx, src))?.is_none() {
        return match block {
            None => Ok(Frame::Null),
            Some(timeout) => ctx.block(&[src], timeout, Frame::NullArray),
        };
    }
    read(&mut tx, dst)?;
    let (mut v, empty) = pop_n(&mut tx, src, from_left, 1, &lim)?;
    let v = v.pop().expect("a live list is never empty");
    // Redis's order: the push (and its `new`), then the pop, then `del`.
    // With src == dst the list is never empty here.
    let d = get_or_create(&mut tx, dst, Value::as_list_mut, new_list)?;
    d.grow_check(v.len(), 1, &lim);
    if to_left {
        d.push_front(v.clone());
    } else {
        d.push_back(v.clone());
    }
    tx.notify(class::LIST, if to_left { "lpush" } else { "rpush" }, dst);
    popped(&mut tx, src, from_left, empty && src != dst);
    let side = |left: bool| -> &'static [u8] {
        if left {
            b"LEFT"
        } else {
            b"RIGHT"
        }
    };
    match rpoplpush {
        true => tx.emit(&[b"RPOPLPUSH", src, dst]),
        false => tx.emit(&[b"LMOVE", src, dst, side(from_left), side(to_left)]),
    }
    ctx.key_ready(dst);
    Ok(Frame::Bulk(v))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
fn lmove(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (src, dst) = (args.next_arg()?, args.next_arg()?);
    let (from, to) = (parse_side(args.next_arg()?)?, parse_side(args.next_arg()?)?);
    move_one(ctx, src, dst, (from, to), None, false)
}

/// RPOPLPUSH source destination
fn rpoplpush(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (src, dst) = (args.next_arg()?, args.next_arg()?);
    move_one(ctx, src, dst, (false, true), None, true)
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
fn blmove(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (src, dst) = (args.next_arg()?, args.next_arg()?);
    let (from, to) = (parse_side(args.next_arg()?)?, parse_side(args.next_arg()?)?);
    let timeout = parse_timeout(args.next_arg()?)?;
    move_one(ctx, src, dst, (from, to), Some(timeout), false)
}

/// BRPOPLPUSH source destination timeout
fn brpoplpush(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (src, dst) = (args.next_arg()?, args.next_arg()?);
    let timeout = parse_timeout(args.next_arg()?)?;
    move_one(ctx, src, dst, (false, true), Some(timeout), true)
}

/// The pop of BLPOP, BRPOP, LMPOP and BLMPOP over several keys: the first
/// non-empty list, in argument order. Keys are type-checked as they are
/// reached, as in Redis: a list before a wrong-type key is still popped.
fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    left: bool,
    count: usize,
    timeout: Option<Option<std::time::Duration>>,
    shape: PopShape,
) -> CmdResult {
    let (lim, woken) = (ctx.client.limits, ctx.woken());
    let mut tx = ctx.lock_keys(keys.iter().copied());
    for key in keys {
        if super::absent_if_woken(woken, read(&mut tx, key))?.is_some() {
            let (v, empty) = pop_n(&mut tx, key, left, count, &lim)?;
            popped(&mut tx, key, left, empty);
            let n = itoa::Buffer::new().format(v.len()).as_bytes().to_vec();
            match shape {
                PopShape::KeyAndElement => tx.emit(&[side_name(left), key]),
                PopShape::KeyAndArray => tx.emit(&[side_name(left), key, &n]),
            }
            let key = Frame::Bulk(Bytes::copy_from_slice(key));
            return Ok(match shape {
                PopShape::KeyAndElement => {
                    Frame::Array(vec![key, Frame::Bulk(v.into_iter().next().expect("non-empty"))])
                }
                PopShape::KeyAndArray => {
                    Frame::Array(vec![key, Frame::Array(v.into_iter().map(Frame::Bulk).collect())])
                }
            });
        }
    }
    match timeout {
        None => Ok(Frame::NullArray),
        Some(t) => ctx.block(keys, t, Frame::NullArray),
    }
}

#[derive(Clone, Copy)]
enum PopShape {
    /// BLPOP/BRPOP: [key, element].
    KeyAndElement,
    /// LMPOP/BLMPOP: [key, [elements…]].
    KeyAndArray,
}

/// BLPOP/BRPOP key [key ...] timeout
fn bpop(ctx: &mut Ctx<'_>, mut args: Args<'_>, left: bool) -> CmdResult {
    let mut keys = args.rest();
    let timeout = parse_timeout(keys.pop().expect("arity"))?;
    pop_first(ctx, &keys, left, 1, Some(timeout), PopShape::KeyAndElement)
}

fn blpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop(ctx, args, true)
}

fn brpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop(ctx, args, false)
}

/// `numkeys key [key ...] LEFT|RIGHT [COUNT count]` of LMPOP and BLMPOP.
fn mpop_args<'a>(args: &mut Args<'a>) -> Result<(Vec<&'a [u8]>, bool, usize), CmdError> {
    let (keys, side, count) = super::mpop_args(args)?;
    Ok((keys, parse_side(side)?, count))
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
fn lmpop(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (keys, left, count) = mpop_args(&mut args)?;
    pop_first(ctx, &keys, left, count, None, PopShape::KeyAndArray)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
fn blmpop(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let timeout = parse_timeout(args.next_arg()?)?;
    let (keys, left, count) = mpop_args(&mut args)?;
    pop_first(ctx, &keys, left, count, Some(timeout), PopShape::KeyAndArray)
}

//! Sorted-set commands. The structure (listpack or skiplist encoding, with
//! O(log n) ranks in both) is `larder_store::ZSet`; this module parses
//! ranges (by rank, score or lex), shapes replies (RESP3 pairs with double
//! scores, RESP2 flat lists with string scores) and emits effects. Every
//! pop (ZPOPMIN, ZMPOP and the blocking forms) is propagated as Redis
//! does, as ZPOPMIN/ZPOPMAX key count with the count popped: the order of
//! a sorted set is fully determined, so a replica pops the same members.
//! Adds wake clients blocked in BZPOPMIN/BZMPOP.

use super::hash::{check_paired_count, rand_count, rand_indexes};
use super::set::card_limit;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, drop_if_empty, eq_ic, get_as, parse_f64, parse_i64, parse_timeout, Args, CmdResult, Ctx, ScanOpts};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::{format_double, Frame};
use larder_store::{Limits, Ttl, Tx, Value, ZEntry, ZRef, ZSet};
use std::time::Duration;

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("zadd", -4, WRITE | DENYOOM | FAST, KeySpec::single(1), zadd).doc("sorted-set", "1.2.0", "Add one or more members to a sorted set, or update its score if it already exists."),
    CommandSpec::new("zincrby", 4, WRITE | DENYOOM | FAST, KeySpec::single(1), zincrby).doc("sorted-set", "1.2.0", "Increment the score of a member in a sorted set."),
    CommandSpec::new("zrem", -3, WRITE | FAST, KeySpec::single(1), zrem).doc("sorted-set", "1.2.0", "Remove one or more members from a sorted set."),
    CommandSpec::new("zcard", 2, READONLY | FAST, KeySpec::single(1), zcard).doc("sorted-set", "1.2.0", "Get the number of members in a sorted set."),
    CommandSpec::new("zscore", 3, READONLY | FAST, KeySpec::single(1), zscore).doc("sorted-set", "1.2.0", "Get the score associated with the given member in a sorted set."),
    CommandSpec::new("zmscore", -3, READONLY | FAST, KeySpec::single(1), zmscore).doc("sorted-set", "6.2.0", "Get the score associated with the given members in a sorted set."),
    CommandSpec::new("zrank", -3, READONLY | FAST, KeySpec::single(1), zrank).doc("sorted-set", "2.0.0", "Determine the index of a member in a sorted set."),
    CommandSpec::new("zrevrank", -3, READONLY | FAST, KeySpec::single(1), zrevrank).doc("sorted-set", "2.0.0", "Determine the index of a member in a sorted set, with scores ordered from high to low."),
    CommandSpec::new("zcount", 4, READONLY | FAST, KeySpec::single(1), zcount).doc("sorted-set", "2.0.0", "Count the members in a sorted set with scores within the given values."),
    CommandSpec::new("zlexcount", 4, READONLY | FAST, KeySpec::single(1), zlexcount).doc("sorted-set", "2.8.9", "Count the number of members in a sorted set between a given lexicographical range."),
    CommandSpec::new("zrange", -4, READONLY, KeySpec::single(1), zrange).doc("sorted-set", "1.2.0", "Return a range of members in a sorted set."),
    CommandSpec::new("zrangestore", -5, WRITE | DENYOOM, KeySpec::range(1, 2, 1), zrangestore).doc("sorted-set", "6.2.0", "Store a range of members from sorted set into another key."),
    CommandSpec::new("zrangebyscore", -4, READONLY, KeySpec::single(1), zrangebyscore).doc("sorted-set", "1.0.5", "Return a range of members in a sorted set, by score."),
    CommandSpec::new("zrevrangebyscore", -4, READONLY, KeySpec::single(1), zrevrangebyscore).doc("sorted-set", "2.2.0", "Return a range of members in a sorted set, by score, with scores ordered from high to low."),
    CommandSpec::new("zrangebylex", -4, READONLY, KeySpec::single(1), zrangebylex).doc("sorted-set", "2.8.9", "Return a range of members in a sorted set, by lexicographical range."),
    CommandSpec::new("zrevrangebylex", -4, READONLY, KeySpec::single(1), zrevrangebylex).doc("sorted-set", "2.8.9", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings."),
    CommandSpec::new("zrevrange", -4, READONLY, KeySpec::single(1), zrevrange).doc("sorted-set", "1.2.0", "Return a range of members in a sorted set, by index, with scores ordered from high to low."),
    CommandSpec::new("zremrangebyrank", 4, WRITE, KeySpec::single(1), zremrangebyrank).doc("sorted-set", "2.0.0", "Remove all members in a sorted set within the given indexes."),
    CommandSpec::new("zremrangebyscore", 4, WRITE, KeySpec::single(1), zremrangebyscore).doc("sorted-set", "1.2.0", "Remove all members in a sorted set within the given scores."),
    CommandSpec::new("zremrangebylex", 4, WRITE, KeySpec::single(1), zremrangebylex).doc("sorted-set", "2.8.9", "Remove all members in a sorted set between the given lexicographical range."),
    CommandSpec::new("zunion", -3, READONLY | MOVABLEKEYS, KeySpec::NONE, zunion).doc("sorted-set", "6.2.0", "Add multiple sorted sets."),
    CommandSpec::new("zunionstore", -4, WRITE | DENYOOM | MOVABLEKEYS, KeySpec::single(1), zunionstore).doc("sorted-set", "2.0.0", "Add multiple sorted sets and store the resulting sorted set in a new key."),
    CommandSpec::new("zinter", -3, READONLY | MOVABLEKEYS, KeySpec::NONE, zinter).doc("sorted-set", "6.2.0", "Intersect multiple sorted sets."),
    CommandSpec::new("zinterstore", -4, WRITE | DENYOOM | MOVABLEKEYS, KeySpec::single(1), zinterstore).doc("sorted-set", "2.0.0", "Intersect multiple sorted sets and store the resulting sorted set in a new key."),
    CommandSpec::new("zintercard", -3, READONLY | MOVABLEKEYS, KeySpec::NONE, zintercard).doc("sorted-set", "7.0.0", "Intersect multiple sorted sets and return the cardinality of the result."),
    CommandSpec::new("zdiff", -3, READONLY | MOVABLEKEYS, KeySpec::NONE, zdiff).doc("sorted-set", "6.2.0", "Subtract multiple sorted sets."),
    CommandSpec::new("zdiffstore", -4, WRITE | DENYOOM | MOVABLEKEYS, KeySpec::single(1), zdiffstore).doc("sorted-set", "6.2.0", "Subtract multiple sorted sets and store the resulting sorted set in a new key."),
    CommandSpec::new("zpopmin", -2, WRITE | FAST, KeySpec::single(1), zpopmin).doc("sorted-set", "5.0.0", "Remove and return members with the lowest scores in a sorted set."),
    CommandSpec::new("zpopmax", -2, WRITE | FAST, KeySpec::single(1), zpopmax).doc("sorted-set", "5.0.0", "Remove and return members with the highest scores in a sorted set."),
    CommandSpec::new("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, KeySpec::range(1, -2, 1), bzpopmin).doc("sorted-set", "5.0.0", "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available."),
    CommandSpec::new("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, KeySpec::range(1, -2, 1), bzpopmax).doc("sorted-set", "5.0.0", "Remove and return the member with the highest score from one or more sorted sets, or block until one is available."),
    CommandSpec::new("zmpop", -4, WRITE | MOVABLEKEYS, KeySpec::NONE, zmpop).doc("sorted-set", "7.0.0", "Remove and return members with scores in a sorted set."),
    CommandSpec::new("bzmpop", -5, WRITE | BLOCKING | MOVABLEKEYS, KeySpec::NONE, bzmpop).doc("sorted-set", "7.0.0", "Remove and return members with scores in a sorted set or block until one is available."),
    CommandSpec::new("zrandmember", -2, READONLY, KeySpec::single(1), zrandmember).doc("sorted-set", "6.2.0", "Get one or multiple random elements from a sorted set."),
    CommandSpec::new("zscan", -3, READONLY, KeySpec::single(1), zscan).doc("sorted-set", "2.8.0", "Incrementally iterate sorted sets elements and associated scores."),
];

fn read<'t>(tx: &'t mut Tx<'_>, key: &[u8]) -> Result<Option<&'t ZSet>, CmdError> {
    Ok(get_as(tx, key, Value::as_zset_mut)?.map(|z| &*z))
}

fn not_float() -> CmdError {
    CmdError::Err("min or max is not a float".into())
}

fn score_text(s: f64) -> Bytes {
    Bytes::from(format_double(s))
}

/// One end of a score range: `1.5`, `(1.5`, `-inf`, `+inf`.
#[derive(Clone, Copy)]
struct ScoreBound {
    v: f64,
    open: bool,
}

fn parse_score_bound(a: &[u8]) -> Result<ScoreBound, CmdError> {
    let (open, rest) = match a.first() {
        Some(b'(') => (true, &a[1..]),
        _ => (false, a),
    };
    let v = parse_f64(rest).map_err(|_| not_float())?;
    Ok(ScoreBound { v, open })
}

/// One end of a lex range: `[a`, `(a`, `-`, `+`.
#[derive(Clone)]
enum LexBound {
    Min,
    Max,
    Incl(Bytes),
    Excl(Bytes),
}

fn parse_lex_bound(a: &[u8]) -> Result<LexBound, CmdError> {
    match a {
        b"-" => Ok(LexBound::Min),
        b"+" => Ok(LexBound::Max),
        [b'[', rest @ ..] => Ok(LexBound::Incl(Bytes::copy_from_slice(rest))),
        [b'(', rest @ ..] => Ok(LexBound::Excl(Bytes::copy_from_slice(rest))),
        _ => Err(CmdError::Err("min or max not valid string range item".into())),
    }
}

/// A range selector, resolved to ranks [start, end) against one zset.
enum Range {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

impl Range {
    /// The ascending rank interval [start, end) the range covers.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        match self {
            Range::Rank(a, b) => match larder_store::types::clamp_range(*a, *b, z.len()) {
                Some((s, e)) => (s, e + 1),
                None => (0, 0),
            },
            Range::Score(min, max) => {
                let s = z.partition_point(|e| if min.open { e.score <= min.v } else { e.score < min.v });
                let e = z.partition_point(|e| if max.open { e.score < max.v } else { e.score <= max.v });
                (s, e.max(s))
            }
            Range::Lex(min, max) => {
                let s = match min {
                    LexBound::Min => 0,
                    LexBound::Max => z.len(),
                    LexBound::Incl(m) => z.partition_point(|e| e.member < *m),
                    LexBound::Excl(m) => z.partition_point(|e| e.member <= *m),
                };
                let e = match max {
                    LexBound::Min => 0,
                    LexBound::Max => z.len(),
                    LexBound::Incl(m) => z.partition_point(|e| e.member <= *m),
                    LexBound::Excl(m) => z.partition_point(|e| e.member < *m),
                };
                (s, e.max(s))
            }
        }
    }

    /// The entries selected, in reply order, after LIMIT.
    fn select<'z>(&self, z: &'z ZSet, rev: bool, limit: Option<(i64, i64)>) -> Vec<ZRef<'z>> {
        if let (Range::Rank(a, b), true) = (self, rev) {
            // REV ranks count from the highest score.
            return match larder_store::types::clamp_range(*a, *b, z.len()) {
                Some((s, e)) => z.iter_rev_from(z.len() - 1 - s).take(e - s + 1).collect(),
                None => vec![],
            };
        }
        let (s, e) = self.ranks(z);
        let n = e - s;
        let (offset, count) = match limit {
            Some((o, _)) if o < 0 => return vec![],
            Some((o, c)) => (o as usize, if c < 0 { usize::MAX } else { c as usize }),
            None => (0, usize::MAX),
        };
        if offset >= n {
            return vec![];
        }
        let take = count.min(n - offset);
        if rev {
            z.iter_rev_from(e - 1 - offset).take(take).collect()
        } else {
            z.iter_from(s + offset).take(take).collect()
        }
    }
}

/// Members (and scores) as a reply: RESP3 pairs with doubles, RESP2 flat.
fn entries_reply<'z>(entries: impl IntoIterator<Item = ZRef<'z>>, withscores: bool, resp3: bool) -> Frame {
    let mut out = Vec::new();
    for e in entries {
        let m = Frame::bulk(e.member);
        match (withscores, resp3) {
            (false, _) => out.push(m),
            (true, false) => out.extend([m, Frame::Bulk(score_text(e.score))]),
            (true, true) => out.push(Frame::Array(vec![m, Frame::Double(e.score)])),
        }
    }
    Frame::Array(out)
}

#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
fn zadd(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut f = AddFlags::default();
    while let Some(a) = args.peek() {
        match () {
            _ if eq_ic(a, "nx") => f.nx = true,
            _ if eq_ic(a, "xx") => f.xx = true,
            _ if eq_ic(a, "gt") => f.gt = true,
            _ if eq_ic(a, "lt") => f.lt = true,
            _ if eq_ic(a, "ch") => f.ch = true,
            _ if eq_ic(a, "incr") => f.incr = true,
            _ => break,
        }
        args.next();
    }
    let rest = args.rest();
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::IncompatibleOptions("XX", "NX"));
    }
    if ((f.gt || f.lt) && f.nx) || (f.gt && f.lt) {
        return Err(CmdError::Err("GT, LT, and/or NX options at the same time are not compatible".into()));
    }
    if f.incr && rest.len() > 2 {
        return Err(CmdError::Err("INCR option supports a single increment-element pair".into()));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        pairs.push((parse_f64(p[0])?, p[1]));
    }
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let exists = read(&mut tx, key)?.is_some();
    if !exists {
        if f.xx {
            return Ok(if f.incr { Frame::Null } else { Frame::Integer(0) });
        }
        let max_len = pairs.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        tx.set(key, Value::ZSet(ZSet::with_hint(pairs.len(), max_len, &lim)), Ttl::Clear);
    }
    let z = get_as(&mut tx, key, Value::as_zset_mut)?.expect("present or just created");
    let (mut added, mut changed) = (0, 0);
    let mut incr_result = None;
    for (score, m) in pairs {
        let old = z.score(m);
        let new = match (old, f.incr) {
            (Some(o), true) => o + score,
            _ => score,
        };
        if new.is_nan() {
            return Err(CmdError::Err("resulting score is not a number (NaN)".into()));
        }
        let skip = match old {
            Some(o) => f.nx || (f.gt && new <= o) || (f.lt && new >= o),
            None => f.xx,
        };
        if skip {
            continue;
        }
        incr_result = Some(new);
        match old {
            None => {
                z.insert(m, new, &lim);
                added += 1;
            }
            Some(o) if o != new => {
                z.insert(m, new, &lim);
                changed += 1;
            }
            Some(_) => {}
        }
    }
    let empty = z.is_empty();
    if added + changed > 0 {
        tx.notify(class::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    drop_if_empty(&mut tx, key, empty);
    if added + changed > 0 {
        tx.emit(&args.all());
        ctx.key_ready(key);
    }
    if f.incr {
        return Ok(incr_result.map_or(Frame::Null, Frame::Double));
    }
    Ok(Frame::Integer(if f.ch { added + changed } else { added }))
}

/// ZINCRBY key increment member
fn zincrby(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let delta = parse_f64(args.next_arg()?)?;
    let m = args.next_arg()?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    if read(&mut tx, key)?.is_none() {
        tx.set(key, Value::ZSet(ZSet::with_hint(1, m.len(), &lim)), Ttl::Clear);
    }
    let z = get_as(&mut tx, key, Value::as_zset_mut)?.expect("present or just created");
    let new = z.score(m).unwrap_or(0.0) + delta;
    if new.is_nan() {
        let empty = z.is_empty();
        drop_if_empty(&mut tx, key, empty);
        return Err(CmdError::Err("resulting score is not a number (NaN)".into()));
    }
    z.insert(m, new, &lim);
    tx.emit(&args.all());
    tx.notify(class::ZSET, "zincr", key);
    ctx.key_ready(key);
    Ok(Frame::Double(new))
}

/// ZREM key member [member ...]
fn zrem(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let Some(z) = get_as(&mut tx, key, Value::as_zset_mut)? else { return Ok(Frame::Integer(0)) };
    let n = args.rest().into_iter().filter(|m| z.remove(m).is_some()).count();
    let empty = z.is_empty();
    if n > 0 {
        tx.notify(class::ZSET, "zrem", key);
    }
    drop_if_empty(&mut tx, key, empty);
    if n > 0 {
        tx.emit(&args.all());
    }
    Ok(Frame::Integer(n as i64))
}

/// ZCARD key
fn zcard(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    Ok(Frame::Integer(read(&mut tx, key)?.map_or(0, ZSet::len) as i64))
}

/// ZSCORE key member
fn zscore(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, m) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    Ok(read(&mut tx, key)?.and_then(|z| z.score(m)).map_or(Frame::Null, Frame::Double))
}

/// ZMSCORE key member [member ...]
fn zmscore(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let z = read(&mut tx, key)?;
    let out = args.rest().into_iter().map(|m| z.and_then(|z| z.score(m)).map_or(Frame::Null, Frame::Double));
    Ok(Frame::Array(out.collect()))
}

/// ZRANK / ZREVRANK key member [WITHSCORE]
fn rank(ctx: &mut Ctx<'_>, mut args: Args<'_>, rev: bool) -> CmdResult {
    let (key, m) = (args.next_arg()?, args.next_arg()?);
    let withscore = match args.next() {
        None => false,
        Some(a) if eq_ic(a, "withscore") => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    args.finish()?;
    let mut tx = ctx.lock(key);
    let z = read(&mut tx, key)?;
    let Some((r, s)) = z.and_then(|z| Some((z.rank(m)?, z.score(m)?, z.len()))).map(|(r, s, n)| {
        let r = if rev { n - 1 - r } else { r };
        (r, s)
    }) else {
        return Ok(if withscore { Frame::NullArray } else { Frame::Null });
    };
    Ok(if withscore {
        Frame::Array(vec![Frame::Integer(r as i64), Frame::Double(s)])
    } else {
        Frame::Integer(r as i64)
    })
}

fn zrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rank(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rank(ctx, args, true)
}

/// ZCOUNT key min max
fn zcount(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let range = Range::Score(parse_score_bound(args.next_arg()?)?, parse_score_bound(args.next_arg()?)?);
    let mut tx = ctx.lock(key);
    let n = read(&mut tx, key)?.map_or(0, |z| {
        let (s, e) = range.ranks(z);
        e - s
    });
    Ok(Frame::Integer(n as i64))
}

/// ZLEXCOUNT key min max
fn zlexcount(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let range = Range::Lex(parse_lex_bound(args.next_arg()?)?, parse_lex_bound(args.next_arg()?)?);
    let mut tx = ctx.lock(key);
    let n = read(&mut tx, key)?.map_or(0, |z| {
        let (s, e) = range.ranks(z);
        e - s
    });
    Ok(Frame::Integer(n as i64))
}

#[derive(Clone, Copy, PartialEq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed ZRANGE-family request.
struct RangeReq {
    range: Range,
    rev: bool,
    limit: Option<(i64, i64)>,
    withscores: bool,
}

/// Parses `min max` (already in ascending or, for REV, descending order
/// as the caller wrote them) into a range.
fn parse_range(by: By, a: &[u8], b: &[u8], rev: bool) -> Result<Range, CmdError> {
    let (lo, hi) = if rev && by != By::Rank { (b, a) } else { (a, b) };
    Ok(match by {
        By::Rank => Range::Rank(parse_i64(lo)?, parse_i64(hi)?),
        By::Score => Range::Score(parse_score_bound(lo)?, parse_score_bound(hi)?),
        By::Lex => Range::Lex(parse_lex_bound(lo)?, parse_lex_bound(hi)?),
    })
}

/// ZRANGE's options after `start stop`, shared with ZRANGESTORE
/// (`store`: WITHSCORES is a syntax error) and the legacy forms, where
/// `fixed` is the implied (by, rev).
fn parse_range_req(args: &mut Args<'_>, store: bool, fixed: Option<(By, bool)>) -> Result<RangeReq, CmdError> {
    let (a, b) = (args.next_arg()?, args.next_arg()?);
    let (mut by, mut rev) = fixed.unwrap_or((By::Rank, false));
    let (mut by_set, mut rev_set) = (fixed.is_some(), fixed.is_some());
    let (mut limit, mut withscores) = (None, false);
    while let Some(opt) = args.next() {
        if eq_ic(opt, "withscores") && !store {
            withscores = true;
        } else if eq_ic(opt, "limit") && args.remaining() >= 2 {
            limit = Some((args.next_i64()?, args.next_i64()?));
        } else if !rev_set && eq_ic(opt, "rev") {
            (rev, rev_set) = (true, true);
        } else if !by_set && eq_ic(opt, "byscore") {
            (by, by_set) = (By::Score, true);
        } else if !by_set && eq_ic(opt, "bylex") {
            (by, by_set) = (By::Lex, true);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if limit.is_some() && by == By::Rank {
        return Err(CmdError::Err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX".into(),
        ));
    }
    if withscores && by == By::Lex {
        return Err(CmdError::Err("syntax error, WITHSCORES not supported in combination with BYLEX".into()));
    }
    let range = parse_range(by, a, b, rev)?;
    Ok(RangeReq { range, rev, limit, withscores })
}

fn range_cmd(ctx: &mut Ctx<'_>, mut args: Args<'_>, fixed: Option<(By, bool)>) -> CmdResult {
    let key = args.next_arg()?;
    let req = parse_range_req(&mut args, false, fixed)?;
    let resp3 = ctx.resp3();
    let mut tx = ctx.lock(key);
    let Some(z) = read(&mut tx, key)? else { return Ok(Frame::Array(vec![])) };
    Ok(entries_reply(req.range.select(z, req.rev, req.limit), req.withscores, resp3))
}

fn zrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, None)
}

fn zrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, Some((By::Score, false)))
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, Some((By::Score, true)))
}

fn zrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, Some((By::Lex, false)))
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, Some((By::Lex, true)))
}

fn zrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, Some((By::Rank, true)))
}

/// Builds a sorted set from computed entries, in the encoding Redis's
/// *STORE commands end with.
fn build(entries: impl IntoIterator<Item = (Bytes, f64)>, lim: &Limits) -> ZSet {
    let mut z = ZSet::with_hint(usize::MAX, 0, lim);
    for (m, s) in entries {
        z.insert(&m, s, lim);
    }
    z.shrink_if_small(lim);
    z
}

/// Stores `z` at `dst` (deleting `dst` if `z` is empty) and replies with
/// its size.
fn store(ctx: &Ctx<'_>, tx: &mut Tx<'_>, dst: &[u8], z: ZSet, args: &Args<'_>) -> CmdResult {
    let n = z.len();
    if n == 0 {
        return super::store_nothing(tx, dst);
    }
    tx.set(dst, Value::ZSet(z), Ttl::Clear);
    tx.emit(&args.all());
    // The event is the command's name: zunionstore, zrangestore, …
    tx.notify(class::ZSET, &String::from_utf8_lossy(args.get(0)).to_ascii_lowercase(), dst);
    ctx.key_ready(dst);
    Ok(Frame::Integer(n as i64))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
fn zrangestore(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (dst, src) = (args.next_arg()?, args.next_arg()?);
    let req = parse_range_req(&mut args, true, None)?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock_keys([src, dst]);
    let picked: Vec<(Bytes, f64)> = match read(&mut tx, src)? {
        Some(z) => req
            .range
            .select(z, req.rev, req.limit)
            .into_iter()
            .map(|e| (Bytes::copy_from_slice(e.member), e.score))
            .collect(),
        None => vec![],
    };
    store(ctx, &mut tx, dst, build(picked, &lim), &args)
}

/// ZREMRANGEBYRANK / BYSCORE / BYLEX key min max
fn remrange(ctx: &mut Ctx<'_>, mut args: Args<'_>, by: By) -> CmdResult {
    let key = args.next_arg()?;
    let range = parse_range(by, args.next_arg()?, args.next_arg()?, false)?;
    let mut tx = ctx.lock(key);
    let Some(z) = get_as(&mut tx, key, Value::as_zset_mut)? else { return Ok(Frame::Integer(0)) };
    let (s, e) = range.ranks(z);
    for _ in s..e {
        z.remove_rank(s);
    }
    let empty = z.is_empty();
    if e > s {
        let event = match by {
            By::Rank => "zremrangebyrank",
            By::Score => "zremrangebyscore",
            By::Lex => "zremrangebylex",
        };
        tx.notify(class::ZSET, event, key);
    }
    drop_if_empty(&mut tx, key, empty);
    if e > s {
        tx.emit(&args.all());
    }
    Ok(Frame::Integer((e - s) as i64))
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remrange(ctx, args, By::Rank)
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remrange(ctx, args, By::Score)
}

fn zremrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remrange(ctx, args, By::Lex)
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

/// A source of ZUNION and friends: sorted sets, or plain sets (score 1).
fn source_entries(tx: &mut Tx<'_>, key: &[u8]) -> Result<Option<Vec<(Bytes, f64)>>, CmdError> {
    match tx.get(key) {
        None => Ok(None),
        Some(e) => match &*e.value() {
            Value::ZSet(z) => Ok(Some(z.iter().map(|e| (Bytes::copy_from_slice(e.member), e.score)).collect())),
            Value::Set(s) => Ok(Some(s.members().into_iter().map(|m| (m, 1.0)).collect())),
            _ => Err(CmdError::WrongType),
        },
    }
}

fn aggregate(agg: Agg, a: f64, b: f64) -> f64 {
    match agg {
        Agg::Sum => {
            let s = a + b;
            // inf + -inf: Redis keeps 0 rather than store NaN.
            if s.is_nan() {
                0.0
            } else {
                s
            }
        }
        Agg::Min => a.min(b),
        Agg::Max => a.max(b),
    }
}

/// Computes the union, intersection or difference over `keys`.
fn combine(tx: &mut Tx<'_>, keys: &[&[u8]], weights: &[f64], agg: Agg, op: Op) -> Result<Vec<(Bytes, f64)>, CmdError> {
    let mut sources = Vec::with_capacity(keys.len());
    for k in keys {
        sources.push(source_entries(tx, k)?);
    }
    let weighted = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut acc: indexmap::IndexMap<Bytes, f64> = indexmap::IndexMap::new();
    match op {
        Op::Union => {
            for (src, w) in sources.iter().zip(weights) {
                for (m, s) in src.iter().flatten() {
                    let v = weighted(*s, *w);
                    acc.entry(m.clone()).and_modify(|x| *x = aggregate(agg, *x, v)).or_insert(v);
                }
            }
        }
        Op::Inter => {
            if sources.iter().any(Option::is_none) {
                return Ok(vec![]);
            }
            let first = sources[0].as_ref().expect("checked");
            acc = first.iter().map(|(m, s)| (m.clone(), weighted(*s, weights[0]))).collect();
            for (src, w) in sources.iter().zip(weights).skip(1) {
                let other: hashbrown::HashMap<&Bytes, f64> =
                    src.as_ref().expect("checked").iter().map(|(m, s)| (m, *s)).collect();
                acc.retain(|m, _| other.contains_key(m));
                for (m, x) in acc.iter_mut() {
                    *x = aggregate(agg, *x, weighted(other[m], *w));
                }
            }
        }
        Op::Diff => {
            let Some(first) = &sources[0] else { return Ok(vec![]) };
            acc = first.iter().cloned().collect();
            for src in sources.iter().skip(1).flatten() {
                for (m, _) in src {
                    acc.swap_remove(m);
                }
            }
        }
    }
    let mut out: Vec<(Bytes, f64)> = acc.into_iter().collect();
    out.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// `numkeys key [key ...]` of ZUNION, ZINTER, ZDIFF (and STORE forms) and
/// ZINTERCARD, with their errors.
fn combine_keys<'a>(args: &mut Args<'a>, name: &str) -> Result<Vec<&'a [u8]>, CmdError> {
    let n = parse_i64(args.next_arg()?)?;
    if n < 1 {
        return Err(CmdError::Err(format!("at least 1 input key is needed for '{name}' command")));
    }
    if n as usize > args.remaining() {
        return Err(CmdError::Syntax);
    }
    Ok((0..n).map(|_| args.next().expect("counted above")).collect())
}

/// What ZUNION and friends were asked: keys, weights, aggregate, WITHSCORES.
type CombineArgs<'a> = (Vec<&'a [u8]>, Vec<f64>, Agg, bool);

/// Parses `numkeys key [key ...] [WEIGHTS …] [AGGREGATE …] [WITHSCORES]`.
fn parse_combine<'a>(args: &mut Args<'a>, op: Op, store: bool, name: &str) -> Result<CombineArgs<'a>, CmdError> {
    let keys = combine_keys(args, name)?;
    let (mut weights, mut agg, mut withscores) = (vec![1.0; keys.len()], Agg::Sum, false);
    while let Some(opt) = args.next() {
        if op != Op::Diff && eq_ic(opt, "weights") && args.remaining() >= keys.len() {
            for w in weights.iter_mut() {
                *w = parse_f64(args.next_arg()?).map_err(|_| CmdError::Err("weight value is not a float".into()))?;
            }
        } else if op != Op::Diff && eq_ic(opt, "aggregate") && args.remaining() >= 1 {
            let a = args.next_arg()?;
            agg = match () {
                _ if eq_ic(a, "sum") => Agg::Sum,
                _ if eq_ic(a, "min") => Agg::Min,
                _ if eq_ic(a, "max") => Agg::Max,
                _ => return Err(CmdError::Syntax),
            };
        } else if !store && eq_ic(opt, "withscores") {
            withscores = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((keys, weights, agg, withscores))
}

fn combine_cmd(ctx: &mut Ctx<'_>, mut args: Args<'_>, op: Op) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(0)).to_lowercase();
    let (keys, weights, agg, withscores) = parse_combine(&mut args, op, false, &name)?;
    let resp3 = ctx.resp3();
    let mut tx = ctx.lock_keys(keys.iter().copied());
    let out = combine(&mut tx, &keys, &weights, agg, op)?;
    Ok(entries_reply(out.iter().map(|(member, score)| ZRef { score: *score, member }), withscores, resp3))
}

fn combine_store(ctx: &mut Ctx<'_>, mut args: Args<'_>, op: Op) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(0)).to_lowercase();
    let dst = args.next_arg()?;
    let (keys, weights, agg, _) = parse_combine(&mut args, op, true, &name)?;
    let lim = ctx.client.limits;
    let mut tx = ctx.lock_keys(keys.iter().copied().chain([dst]));
    let out = combine(&mut tx, &keys, &weights, agg, op)?;
    store(ctx, &mut tx, dst, build(out, &lim), &args)
}

fn zunion(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    combine_cmd(ctx, args, Op::Union)
}

fn zinter(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    combine_cmd(ctx, args, Op::Inter)
}

fn zdiff(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    combine_cmd(ctx, args, Op::Diff)
}

fn zunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    combine_store(ctx, args, Op::Union)
}

fn zinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    combine_store(ctx, args, Op::Inter)
}

fn zdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    combine_store(ctx, args, Op::Diff)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
fn zintercard(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let keys = combine_keys(&mut args, "zintercard")?;
    let limit = card_limit(&mut args)?;
    let mut tx = ctx.lock_keys(keys.iter().copied());
    let weights = vec![1.0; keys.len()];
    let n = combine(&mut tx, &keys, &weights, Agg::Sum, Op::Inter)?.len();
    Ok(Frame::Integer(if limit > 0 { n.min(limit) } else { n } as i64))
}

/// Pops up to `n` entries from the low (`min`) or high end of a live zset,
/// deleting the key if emptied and emitting the ZREM.
fn pop_n(tx: &mut Tx<'_>, key: &[u8], min: bool, n: usize) -> Result<Vec<ZEntry>, CmdError> {
    let Some(z) = get_as(tx, key, Value::as_zset_mut)? else { return Ok(vec![]) };
    let mut out = Vec::new();
    while out.len() < n && !z.is_empty() {
        let r = if min { 0 } else { z.len() - 1 };
        out.push(z.remove_rank(r).expect("non-empty"));
    }
    let empty = z.is_empty();
    if !out.is_empty() {
        tx.notify(class::ZSET, if min { "zpopmin" } else { "zpopmax" }, key);
    }
    drop_if_empty(tx, key, empty);
    if !out.is_empty() {
        let popped = out.len().to_string();
        let name: &[u8] = if min { b"ZPOPMIN" } else { b"ZPOPMAX" };
        tx.emit(&[name, key, popped.as_bytes()]);
    }
    Ok(out)
}

/// ZPOPMIN / ZPOPMAX key [count]
fn zpop(ctx: &mut Ctx<'_>, mut args: Args<'_>, min: bool) -> CmdResult {
    let key = args.next_arg()?;
    let count = args.next().map(super::parse_positive).transpose()?;
    args.finish()?;
    let resp3 = ctx.resp3();
    let mut tx = ctx.lock(key);
    let popped = pop_n(&mut tx, key, min, count.unwrap_or(1))?;
    // A count makes RESP3 reply with pairs; without one it is flat, still
    // with a double score.
    if resp3 && count.is_none() {
        let flat = popped.iter().flat_map(|e| [Frame::bulk(&e.member), Frame::Double(e.score)]);
        return Ok(Frame::Array(flat.collect()));
    }
    Ok(entries_reply(popped.iter().map(ZEntry::as_ref), true, resp3))
}

fn zpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zpop(ctx, args, true)
}

fn zpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zpop(ctx, args, false)
}

/// The pop of BZPOPMIN/MAX, ZMPOP and BZMPOP: the first non-empty sorted
/// set in argument order, type-checking each key as it is reached.
fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    min: bool,
    count: usize,
    block: Option<Option<Duration>>,
    mpop: bool,
) -> CmdResult {
    let (resp3, woken) = (ctx.resp3(), ctx.woken());
    let mut tx = ctx.lock_keys(keys.iter().copied());
    for key in keys {
        if super::absent_if_woken(woken, read(&mut tx, key))?.is_some() {
            let popped = pop_n(&mut tx, key, min, count)?;
            let k = Frame::Bulk(Bytes::copy_from_slice(key));
            return Ok(if mpop {
                Frame::Array(vec![k, entries_reply(popped.iter().map(ZEntry::as_ref), true, true)])
            } else {
                let e = &popped[0];
                let score = if resp3 { Frame::Double(e.score) } else { Frame::Bulk(score_text(e.score)) };
                Frame::Array(vec![k, Frame::bulk(&e.member), score])
            });
        }
    }
    match block {
        None => Ok(Frame::NullArray),
        Some(t) => ctx.block(keys, t, Frame::NullArray),
    }
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout
fn bzpop(ctx: &mut Ctx<'_>, mut args: Args<'_>, min: bool) -> CmdResult {
    let mut keys = args.rest();
    let timeout = parse_timeout(keys.pop().expect("arity"))?;
    pop_first(ctx, &keys, min, 1, Some(timeout), false)
}

fn bzpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bzpop(ctx, args, true)
}

fn bzpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bzpop(ctx, args, false)
}

/// `numkeys key [key ...] MIN|MAX [COUNT count]` of ZMPOP and BZMPOP.
fn mpop_args<'a>(args: &mut Args<'a>) -> Result<(Vec<&'a [u8]>, bool, usize), CmdError> {
    let (keys, side, count) = super::mpop_args(args)?;
    let min = match () {
        _ if eq_ic(side, "min") => true,
        _ if eq_ic(side, "max") => false,
        _ => return Err(CmdError::Syntax),
    };
    Ok((keys, min, count))
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
fn zmpop(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (keys, min, count) = mpop_args(&mut args)?;
    pop_first(ctx, &keys, min, count, None, true)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
fn bzmpop(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let timeout = parse_timeout(args.next_arg()?)?;
    let (keys, min, count) = mpop_args(&mut args)?;
    pop_first(ctx, &keys, min, count, Some(timeout), true)
}

/// ZRANDMEMBER key [count [WITHSCORES]]
fn zrandmember(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let count = args.next().map(rand_count).transpose()?;
    let withscores = match args.next() {
        None => false,
        Some(a) if eq_ic(a, "withscores") && args.peek().is_none() => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    if withscores {
        check_paired_count(count)?;
    }
    let resp3 = ctx.resp3();
    let mut tx = ctx.lock(key);
    let z = read(&mut tx, key)?;
    let Some((count, unique)) = count else {
        let Some(z) = z else { return Ok(Frame::Null) };
        let i = rand::Rng::random_range(&mut rand::rng(), 0..z.len());
        return Ok(Frame::bulk(z.get_index(i).expect("index below len").0));
    };
    let Some(z) = z else { return Ok(Frame::Array(vec![])) };
    if unique && count >= z.len() {
        // The whole set, highest score first, as Redis's listpack walk gives.
        return Ok(entries_reply(z.iter().rev(), withscores, resp3));
    }
    let mut entries = Vec::new();
    z.pick(rand_indexes(z.len(), count, unique).into_iter(), |e| entries.push(e));
    Ok(entries_reply(entries, withscores, resp3))
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
fn zscan(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let opts = ScanOpts::parse(&mut args, false)?;
    let mut tx = ctx.lock(key);
    let Some(z) = read(&mut tx, key)? else { return Ok(ScanOpts::reply(0, vec![])) };
    let mut found = Vec::new();
    let next = z.scan(opts.cursor, opts.count, |m, s| {
        if opts.matches(m) {
            found.extend([Frame::bulk(m), Frame::Bulk(score_text(s))]);
        }
    });
    Ok(ScanOpts::reply(next, found))
}

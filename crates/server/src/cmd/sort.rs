//! SORT and SORT_RO over lists, sets and sorted sets, with BY, GET, LIMIT,
//! ASC/DESC, ALPHA and STORE.
//!
//! BY and GET patterns name other keys, unknown until the elements are
//! read, so a SORT that uses them locks every shard of the database (as a
//! Lua script does); a plain SORT locks only its key and destination.
//! Equal scores fall back to comparing the elements, as Redis does, so the
//! order is deterministic. STORE's effect is the DEL and RPUSH of the
//! result, which replays the same list whatever the source was.

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, eq_ic, parse_i64, Args, CmdResult, Ctx};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::{List, Ttl, Tx, Value};
use std::cmp::Ordering;

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, WRITE | DENYOOM | MOVABLEKEYS, KeySpec::single(1), sort).doc(
        "generic",
        "1.0.0",
        "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.",
    ),
    CommandSpec::new("sort_ro", -2, READONLY | MOVABLEKEYS, KeySpec::single(1), sort_ro).doc(
        "generic",
        "7.0.0",
        "Returns the sorted elements of a list, a set, or a sorted set.",
    ),
];

struct SortReq<'a> {
    by: Option<&'a [u8]>,
    limit: Option<(i64, i64)>,
    gets: Vec<&'a [u8]>,
    desc: bool,
    alpha: bool,
    store: Option<&'a [u8]>,
}

/// `full_access`: the user may read every key, which BY (with a real
/// pattern) and GET need, since the keys they read are not in the command.
fn parse<'a>(args: &mut Args<'a>, read_only: bool, full_access: bool) -> Result<SortReq<'a>, CmdError> {
    let denied = |opt: &str| CmdError::Err(format!("{opt} option of SORT denied due to insufficient ACL permissions."));
    let mut r = SortReq { by: None, limit: None, gets: vec![], desc: false, alpha: false, store: None };
    while let Some(opt) = args.next() {
        if eq_ic(opt, "asc") {
            r.desc = false;
        } else if eq_ic(opt, "desc") {
            r.desc = true;
        } else if eq_ic(opt, "alpha") {
            r.alpha = true;
        } else if eq_ic(opt, "limit") && args.remaining() >= 2 {
            r.limit = Some((parse_i64(args.next_arg()?)?, parse_i64(args.next_arg()?)?));
        } else if eq_ic(opt, "store") && args.remaining() >= 1 && !read_only {
            r.store = Some(args.next_arg()?);
        } else if eq_ic(opt, "by") && args.remaining() >= 1 {
            let by = args.next_arg()?;
            if by.contains(&b'*') && !full_access {
                return Err(denied("BY"));
            }
            r.by = Some(by);
        } else if eq_ic(opt, "get") && args.remaining() >= 1 {
            if !full_access {
                return Err(denied("GET"));
            }
            r.gets.push(args.next_arg()?);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(r)
}

/// Looks up a BY/GET pattern for `elem`: `#` is the element itself, the
/// first `*` is replaced by it, and `->field` reads a hash field.
fn lookup(tx: &mut Tx<'_>, pattern: &[u8], elem: &Bytes) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(elem.clone());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let (key_pat, field) = match pattern.windows(2).rposition(|w| w == b"->") {
        Some(p) if p > star && p + 2 < pattern.len() => (&pattern[..p], Some(&pattern[p + 2..])),
        _ => (pattern, None),
    };
    let mut key = Vec::with_capacity(key_pat.len() + elem.len());
    key.extend_from_slice(&key_pat[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&key_pat[star + 1..]);
    let e = tx.get(&key)?;
    match field {
        None => e.str_bytes(),
        Some(f) => e.value().as_hash()?.get(f).map(Bytes::copy_from_slice),
    }
}

fn run(ctx: &mut Ctx<'_>, mut args: Args<'_>, read_only: bool) -> CmdResult {
    let full_access = {
        let c = &*ctx.client;
        c.acl_exempt() || {
            let argv: Vec<&[u8]> = (0..args.len()).map(|i| args.get(i)).collect();
            let name: &[u8] = if read_only { b"sort_ro" } else { b"sort" };
            ctx.shared.commands.lookup(name).is_some_and(|cmd| c.user.reads_every_key(cmd, &argv))
        }
    };
    let key = args.next_arg()?;
    let r = parse(&mut args, read_only, full_access)?;
    // A BY pattern without '*' means "do not sort" (a constant weight).
    let dont_sort = r.by.is_some_and(|p| !p.contains(&b'*'));
    let patterns = r.by.is_some_and(|_| !dont_sort) || !r.gets.is_empty();
    let lim = ctx.client.limits;
    let mut tx = if patterns {
        ctx.shared.keyspace.lock_all(ctx.db(), ctx.now)
    } else {
        ctx.lock_keys([key].into_iter().chain(r.store))
    };
    let (elems, is_zset): (Vec<Bytes>, bool) = match tx.get(key) {
        None => (vec![], false),
        Some(e) => match &*e.value() {
            Value::List(l) => (l.iter().map(Bytes::copy_from_slice).collect(), false),
            Value::Set(s) => {
                let mut m = s.members();
                // Sets have no order of their own: sort them for a stable
                // reply even when asked not to sort.
                if dont_sort {
                    m.sort();
                }
                (m, false)
            }
            Value::ZSet(z) => (z.iter().map(|e| Bytes::copy_from_slice(e.member)).collect(), true),
            _ => return Err(CmdError::WrongType),
        },
    };
    let mut items: Vec<(Bytes, Option<f64>, Option<Bytes>)> = Vec::with_capacity(elems.len());
    for el in elems {
        if dont_sort {
            items.push((el, None, None));
            continue;
        }
        let weight = match r.by {
            Some(p) => lookup(&mut tx, p, &el),
            None => Some(el.clone()),
        };
        if r.alpha {
            items.push((el, None, weight));
        } else {
            let score = match weight {
                None => 0.0,
                Some(w) => {
                    let t = std::str::from_utf8(&w).ok().map(str::trim_end);
                    match t.and_then(|t| t.parse::<f64>().ok()).filter(|v| !v.is_nan()) {
                        Some(v) if !w.is_empty() && !w[0].is_ascii_whitespace() => v,
                        _ => return Err(CmdError::Err("One or more scores can't be converted into double".into())),
                    }
                }
            };
            items.push((el, Some(score), None));
        }
    }
    if !dont_sort {
        items.sort_by(|a, b| {
            let ord = match (a.1, b.1) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal).then_with(|| a.0.cmp(&b.0)),
                _ => match (&a.2, &b.2) {
                    (Some(x), Some(y)) => x.cmp(y),
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                },
            };
            if r.desc {
                ord.reverse()
            } else {
                ord
            }
        });
    } else if is_zset && r.desc {
        items.reverse();
    }
    let n = items.len() as i64;
    let (start, count) = match r.limit {
        Some((o, c)) => {
            let o = o.max(0);
            (o.min(n), if c < 0 { n } else { c })
        }
        None => (0, n),
    };
    let picked = items.into_iter().skip(start as usize).take(count.max(0) as usize);
    let mut out: Vec<Option<Bytes>> = Vec::new();
    for (el, _, _) in picked {
        if r.gets.is_empty() {
            out.push(Some(el));
        } else {
            for g in &r.gets {
                out.push(lookup(&mut tx, g, &el));
            }
        }
    }
    let Some(dst) = r.store else {
        return Ok(Frame::Array(out.into_iter().map(|v| v.map_or(Frame::Null, Frame::Bulk)).collect()));
    };
    let len = out.len();
    if out.is_empty() {
        return super::store_nothing(&mut tx, dst);
    }
    let mut list = List::default();
    let values: Vec<Bytes> = out.into_iter().map(Option::unwrap_or_default).collect();
    list.grow_check(values.iter().map(Bytes::len).sum(), values.len(), &lim);
    for v in &values {
        list.push_back(v.clone());
    }
    tx.set(dst, Value::List(list), Ttl::Clear);
    tx.emit(&[b"DEL", dst]);
    let mut effect: Vec<&[u8]> = vec![b"RPUSH", dst];
    effect.extend(values.iter().map(|v| v.as_ref()));
    tx.emit(&effect);
    tx.notify(class::LIST, "sortstore", dst);
    ctx.key_ready(dst);
    Ok(Frame::Integer(len as i64))
}

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]
fn sort(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, false)
}

/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
fn sort_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, true)
}

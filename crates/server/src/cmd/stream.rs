//! Stream commands: entries (XADD, XRANGE, XDEL, XTRIM, XREAD), consumer
//! groups (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM) and
//! introspection (XINFO, XSETID). The data structure is
//! `larder_store::Stream`.
//!
//! Effects are deterministic, as Redis propagates them: XADD carries the ID
//! it generated and any trimming becomes `XTRIM … MINID = <first kept>`;
//! XREADGROUP and XAUTOCLAIM become the XCLAIMs (with absolute TIME and
//! RETRYCOUNT) and the XGROUP SETID of what they did. XREAD and XREADGROUP
//! block through `crate::blocking`; a blocked XREAD remembers what `$`
//! meant when it first ran, so a retry reads from the same place.

use super::keys::help_reply;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, eq_ic, get_as, parse_i64, Args, CmdResult, Ctx};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::types::stream::{Entry, Group, Trim, INVALID_ENTRIES_READ};
use larder_store::{Stream, StreamId, Ttl, Tx, Value};
use std::time::Duration;

static XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("create", -5, WRITE | DENYOOM, KeySpec::single(2), xgroup_create).doc(
        "stream",
        "5.0.0",
        "Creates a consumer group.",
    ),
    CommandSpec::new("setid", -5, WRITE, KeySpec::single(2), xgroup_setid).doc(
        "stream",
        "5.0.0",
        "Sets the last-delivered ID of a consumer group.",
    ),
    CommandSpec::new("destroy", 4, WRITE, KeySpec::single(2), xgroup_destroy).doc(
        "stream",
        "5.0.0",
        "Destroys a consumer group.",
    ),
    CommandSpec::new("createconsumer", 5, WRITE | DENYOOM, KeySpec::single(2), xgroup_createconsumer).doc(
        "stream",
        "6.2.0",
        "Creates a consumer in a consumer group.",
    ),
    CommandSpec::new("delconsumer", 5, WRITE, KeySpec::single(2), xgroup_delconsumer).doc(
        "stream",
        "5.0.0",
        "Deletes a consumer from a consumer group.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, xgroup_help).doc(
        "stream",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

static XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("stream", -3, READONLY, KeySpec::single(2), xinfo_stream).doc(
        "stream",
        "5.0.0",
        "Returns information about a stream.",
    ),
    CommandSpec::new("groups", 3, READONLY, KeySpec::single(2), xinfo_groups).doc(
        "stream",
        "5.0.0",
        "Returns a list of the consumer groups of a stream.",
    ),
    CommandSpec::new("consumers", 4, READONLY, KeySpec::single(2), xinfo_consumers).doc(
        "stream",
        "5.0.0",
        "Returns a list of the consumers in a consumer group.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, xinfo_help).doc(
        "stream",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, WRITE | DENYOOM | FAST, KeySpec::single(1), xadd).doc("stream", "5.0.0", "Appends a new message to a stream. Creates the key if it doesn't exist."),
    CommandSpec::new("xrange", -4, READONLY, KeySpec::single(1), xrange).doc("stream", "5.0.0", "Returns the messages from a stream within a range of IDs."),
    CommandSpec::new("xrevrange", -4, READONLY, KeySpec::single(1), xrevrange).doc("stream", "5.0.0", "Returns the messages from a stream within a range of IDs in reverse order."),
    CommandSpec::new("xlen", 2, READONLY | FAST, KeySpec::single(1), xlen).doc("stream", "5.0.0", "Return the number of messages in a stream."),
    CommandSpec::new("xdel", -3, WRITE | FAST, KeySpec::single(1), xdel).doc("stream", "5.0.0", "Returns the number of messages after removing them from a stream."),
    CommandSpec::new("xtrim", -4, WRITE, KeySpec::single(1), xtrim).doc("stream", "5.0.0", "Deletes messages from the beginning of a stream."),
    CommandSpec::new("xread", -4, READONLY | BLOCKING | MOVABLEKEYS, KeySpec::NONE, xread).doc("stream", "5.0.0", "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise."),
    CommandSpec::new("xreadgroup", -7, WRITE | BLOCKING | MOVABLEKEYS, KeySpec::NONE, xreadgroup).doc("stream", "5.0.0", "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise."),
    CommandSpec::new("xack", -4, WRITE | FAST, KeySpec::single(1), xack).doc("stream", "5.0.0", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream."),
    CommandSpec::new("xpending", -3, READONLY, KeySpec::single(1), xpending).doc("stream", "5.0.0", "Returns the information and entries from a stream consumer group's pending entries list."),
    CommandSpec::new("xclaim", -6, WRITE | FAST, KeySpec::single(1), xclaim).doc("stream", "5.0.0", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member."),
    CommandSpec::new("xautoclaim", -6, WRITE | FAST, KeySpec::single(1), xautoclaim).doc("stream", "6.2.0", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member."),
    CommandSpec::new("xsetid", -3, WRITE | DENYOOM | FAST, KeySpec::single(1), xsetid).doc("stream", "5.0.0", "An internal command for replicating stream values."),
    CommandSpec::container("xgroup", XGROUP_SUBCOMMANDS).doc("stream", "5.0.0", "A container for consumer groups commands."),
    CommandSpec::container("xinfo", XINFO_SUBCOMMANDS).doc("stream", "5.0.0", "A container for stream introspection commands."),
];

fn invalid_id() -> CmdError {
    CmdError::Err("Invalid stream ID specified as stream command argument".into())
}

fn no_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Raw(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

fn no_group_for_key(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Raw(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ))
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `ms[-seq]`, the seq defaulting to `missing_seq`.
fn parse_id(a: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    let (ms, seq) = match a.iter().position(|&c| c == b'-') {
        Some(p) => (parse_u64(&a[..p]), parse_u64(&a[p + 1..])),
        None => (parse_u64(a), Some(missing_seq)),
    };
    match (ms, seq) {
        (Some(ms), Some(seq)) => Ok(StreamId::new(ms, seq)),
        _ => Err(invalid_id()),
    }
}

/// A range bound: `-`, `+`, `[(]ms[-seq]`. Always Some (callers still
/// treat None as an empty range).
fn parse_bound(a: &[u8], is_start: bool) -> Result<Option<StreamId>, CmdError> {
    match a {
        b"-" => return Ok(Some(StreamId::MIN)),
        b"+" => return Ok(Some(StreamId::MAX)),
        _ => {}
    }
    let (exclusive, body) = match a.first() {
        Some(b'(') => (true, &a[1..]),
        _ => (false, a),
    };
    if exclusive && (body == b"-" || body == b"+") {
        return Err(invalid_id());
    }
    let id = parse_id(body, if is_start { 0 } else { u64::MAX })?;
    // An exclusive bound past either end of the ID space is an error.
    match (exclusive, is_start) {
        (false, _) => Ok(Some(id)),
        (true, true) => id.incr().map(Some).ok_or_else(|| CmdError::Err("invalid start ID for the interval".into())),
        (true, false) => id.decr().map(Some).ok_or_else(|| CmdError::Err("invalid end ID for the interval".into())),
    }
}

fn read<'t>(tx: &'t mut Tx<'_>, key: &[u8]) -> Result<Option<&'t mut Stream>, CmdError> {
    get_as(tx, key, Value::as_stream_mut)
}

fn id_frame(id: &StreamId) -> Frame {
    Frame::Bulk(id.to_bytes())
}

fn entry_frame(id: &StreamId, entry: Entry<'_>) -> Frame {
    let mut fields = Vec::with_capacity(entry.field_count());
    entry.each_field(|f| fields.push(Frame::Bulk(Bytes::copy_from_slice(f))));
    Frame::Array(vec![id_frame(id), Frame::Array(fields)])
}

/// A map in RESP3, a flat array in RESP2: XINFO's replies.
fn kv(pairs: Vec<(&'static str, Frame)>) -> Frame {
    Frame::Map(pairs.into_iter().map(|(k, v)| (Frame::bulk_static(k), v)).collect())
}

/// `MAXLEN|MINID [=|~] threshold [LIMIT count]` of XADD and XTRIM.
struct TrimSpec {
    how: Trim,
    approx: bool,
    limit: u64,
}

/// Parses a trim clause starting at `kw` (MAXLEN or MINID).
fn parse_trim(kw: &[u8], args: &mut Args<'_>, node_max: u64) -> Result<TrimSpec, CmdError> {
    let mut approx = false;
    if let Some(op) = args.peek() {
        if op == b"~" || op == b"=" {
            approx = op == b"~";
            args.next();
        }
    }
    let t = args.next_arg()?;
    let how = if eq_ic(kw, "maxlen") {
        let n = parse_i64(t)?;
        if n < 0 {
            return Err(CmdError::Err("The MAXLEN argument must be >= 0.".into()));
        }
        Trim::MaxLen(n as u64)
    } else {
        Trim::MinId(parse_id(t, 0)?)
    };
    let mut limit = if approx { 100 * node_max } else { 0 };
    if args.peek().is_some_and(|a| eq_ic(a, "limit")) {
        args.next();
        let n = parse_i64(args.next_arg()?)?;
        if n < 0 {
            return Err(CmdError::Err("The LIMIT argument must be >= 0.".into()));
        }
        if !approx {
            return Err(CmdError::Err("syntax error, LIMIT cannot be used without the special ~ option".into()));
        }
        limit = n as u64;
    }
    Ok(TrimSpec { how, approx, limit })
}

/// Trims and emits the deterministic form of what was removed.
fn apply_trim(tx: &mut Tx<'_>, key: &[u8], spec: &TrimSpec) -> u64 {
    let s = read(tx, key).ok().flatten().expect("caller checked the stream");
    let n = s.trim(spec.how, spec.approx, spec.limit);
    if n > 0 {
        let first = if s.is_empty() { s.last_id.incr().unwrap_or(StreamId::MAX) } else { s.first_id };
        tx.emit(&[b"XTRIM", key, b"MINID", b"=", first.to_string().as_bytes()]);
        tx.notify(class::STREAM, "xtrim", key);
    }
    n
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]
fn xadd(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let (mut nomk, mut trim) = (false, None);
    let id_arg = loop {
        let a = args.next_arg()?;
        if eq_ic(a, "nomkstream") {
            nomk = true;
        } else if eq_ic(a, "maxlen") || eq_ic(a, "minid") {
            if trim.is_some() {
                return Err(CmdError::Err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible".into(),
                ));
            }
            trim = Some(parse_trim(a, &mut args, ctx.client.limits.stream_node_max_entries)?);
        } else {
            break a;
        }
    };
    let raw = args.rest();
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("xadd".into()));
    }
    // None: `*`; Some((id, seq_given)).
    let explicit = if id_arg == b"*" {
        None
    } else if let Some(ms) = id_arg.strip_suffix(b"-*") {
        Some((StreamId::new(parse_u64(ms).ok_or_else(invalid_id)?, 0), false))
    } else {
        Some((parse_id(id_arg, 0)?, true))
    };
    if let Some((id, true)) = explicit {
        if id.is_zero() {
            return Err(CmdError::Err("The ID specified in XADD must be greater than 0-0".into()));
        }
    }
    let now = ctx.now;
    let mut tx = ctx.lock(key);
    if read(&mut tx, key)?.is_none() {
        if nomk {
            return Ok(Frame::Null);
        }
        tx.set(key, Value::Stream(Box::default()), Ttl::Clear);
    }
    let s = read(&mut tx, key)?.expect("present or just created");
    let too_small =
        || CmdError::Err("The ID specified in XADD is equal or smaller than the target stream top item".into());
    let id = match explicit {
        None => s.next_auto_id(now).ok_or_else(|| {
            CmdError::Err("The stream has exhausted the last possible ID, unable to add more items".into())
        })?,
        Some((id, true)) => {
            if id <= s.last_id {
                return Err(too_small());
            }
            id
        }
        Some((base, false)) => {
            if base.ms < s.last_id.ms {
                return Err(too_small());
            }
            if base.ms == s.last_id.ms {
                s.last_id.incr().filter(|n| n.ms == base.ms).ok_or_else(too_small)?
            } else {
                base
            }
        }
    };
    s.add(id, &raw, &ctx.client.limits);
    let id_text = id.to_string();
    let mut effect: Vec<&[u8]> = vec![b"XADD", key, id_text.as_bytes()];
    effect.extend(&raw);
    tx.emit(&effect);
    tx.notify(class::STREAM, "xadd", key);
    if let Some(spec) = &trim {
        apply_trim(&mut tx, key, spec);
    }
    ctx.key_ready(key);
    Ok(Frame::Bulk(Bytes::from(id_text)))
}

fn range_cmd(ctx: &mut Ctx<'_>, mut args: Args<'_>, rev: bool) -> CmdResult {
    let key = args.next_arg()?;
    let (a, b) = (args.next_arg()?, args.next_arg()?);
    let (start, end) = if rev {
        (parse_bound(b, true)?, parse_bound(a, false)?)
    } else {
        (parse_bound(a, true)?, parse_bound(b, false)?)
    };
    let mut count = None;
    while let Some(opt) = args.next() {
        if eq_ic(opt, "count") {
            count = Some(parse_i64(args.next_arg()?)?.max(0) as usize);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut tx = ctx.lock(key);
    let Some(s) = read(&mut tx, key)? else { return Ok(Frame::Array(vec![])) };
    let (Some(start), Some(end)) = (start, end) else { return Ok(Frame::Array(vec![])) };
    if count == Some(0) {
        return Ok(Frame::NullArray);
    }
    let out = s.range(start, end, rev).take(count.unwrap_or(usize::MAX)).map(|(id, e)| entry_frame(&id, e));
    Ok(Frame::Array(out.collect()))
}

/// XRANGE key start end [COUNT count]
fn xrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, false)
}

/// XREVRANGE key end start [COUNT count]
fn xrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, true)
}

/// XLEN key
fn xlen(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    Ok(Frame::Integer(read(&mut tx, key)?.map_or(0, |s| s.len()) as i64))
}

/// XDEL key id [id ...]
fn xdel(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let ids = args.rest().into_iter().map(|a| parse_id(a, 0)).collect::<Result<Vec<_>, _>>()?;
    let mut tx = ctx.lock(key);
    let Some(s) = read(&mut tx, key)? else { return Ok(Frame::Integer(0)) };
    let n = ids.iter().filter(|id| s.delete(id)).count();
    if n > 0 {
        tx.emit(&args.all());
        tx.notify(class::STREAM, "xdel", key);
    }
    Ok(Frame::Integer(n as i64))
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
fn xtrim(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let kw = args.next_arg()?;
    if !eq_ic(kw, "maxlen") && !eq_ic(kw, "minid") {
        return Err(CmdError::Syntax);
    }
    let spec = parse_trim(kw, &mut args, ctx.client.limits.stream_node_max_entries)?;
    args.finish()?;
    let mut tx = ctx.lock(key);
    if read(&mut tx, key)?.is_none() {
        return Ok(Frame::Integer(0));
    }
    Ok(Frame::Integer(apply_trim(&mut tx, key, &spec) as i64))
}

/// The options of XREAD and XREADGROUP, up to the keys and IDs.
struct ReadReq<'a> {
    group: Option<(&'a [u8], &'a [u8])>,
    count: usize,
    block: Option<Option<Duration>>,
    noack: bool,
    keys: Vec<&'a [u8]>,
    ids: Vec<&'a [u8]>,
}

fn parse_read<'a>(args: &mut Args<'a>, xreadgroup: bool) -> Result<ReadReq<'a>, CmdError> {
    let mut r = ReadReq { group: None, count: 0, block: None, noack: false, keys: vec![], ids: vec![] };
    let name = if xreadgroup { "XREADGROUP" } else { "XREAD" };
    loop {
        let Some(opt) = args.next() else { return Err(CmdError::Syntax) };
        if eq_ic(opt, "count") && args.remaining() >= 1 {
            r.count = parse_i64(args.next_arg()?)?.max(0) as usize;
        } else if eq_ic(opt, "block") && args.remaining() >= 1 {
            let ms = parse_i64(args.next_arg()?).map_err(|_| CmdError::TimeoutNotFloat)?;
            if ms < 0 {
                return Err(CmdError::NegativeTimeout);
            }
            r.block = Some((ms > 0).then(|| Duration::from_millis(ms as u64)));
        } else if eq_ic(opt, "group") && args.remaining() >= 2 {
            if !xreadgroup {
                return Err(CmdError::Err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.".into(),
                ));
            }
            r.group = Some((args.next_arg()?, args.next_arg()?));
        } else if xreadgroup && eq_ic(opt, "noack") {
            r.noack = true;
        } else if eq_ic(opt, "streams") {
            let rest = args.rest();
            if rest.is_empty() || !rest.len().is_multiple_of(2) {
                return Err(CmdError::Err(format!(
                    "Unbalanced {name} list of streams: for each stream key an ID or '$' must be specified."
                )));
            }
            let half = rest.len() / 2;
            r.keys = rest[..half].to_vec();
            r.ids = rest[half..].to_vec();
            break;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if xreadgroup && r.group.is_none() {
        return Err(CmdError::Err("Missing GROUP option for XREADGROUP".into()));
    }
    Ok(r)
}

/// A script may not block (EXEC's queue may: it just does not wait).
fn refuse_block_in_script(ctx: &Ctx<'_>, r: &ReadReq<'_>, name: &[u8]) -> Result<(), CmdError> {
    if r.block.is_some() && ctx.client.in_exec && ctx.shared.scripting.is_running() {
        return Err(CmdError::Err(format!(
            "{} command is not allowed with BLOCK option from scripts",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
fn xread(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let r = parse_read(&mut args, false)?;
    refuse_block_in_script(ctx, &r, args.get(0))?;
    for id in &r.ids {
        if *id == b">" {
            return Err(CmdError::Err(
                "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
                    .into(),
            ));
        }
    }
    let (resp3, woken) = (ctx.resp3(), ctx.woken());
    // A retry of a blocked XREAD reads from where `$` pointed the first time.
    let memo = ctx.client.blocked.as_ref().map(|b| b.memo.clone()).filter(|m| m.len() == r.keys.len());
    let mut tx = ctx.lock_keys(r.keys.iter().copied());
    let mut from = Vec::with_capacity(r.keys.len());
    for (i, (key, id)) in r.keys.iter().zip(&r.ids).enumerate() {
        let s = super::absent_if_woken(woken, read(&mut tx, key))?;
        let after = match (&memo, *id) {
            (Some(m), _) => parse_id(&m[i], 0)?,
            (None, b"$") => s.map_or(StreamId::MIN, |s| s.last_id),
            (None, id) => parse_id(id, 0)?,
        };
        from.push(after);
    }
    let mut out = Vec::new();
    for (key, after) in r.keys.iter().zip(&from) {
        let Some(s) = super::absent_if_woken(woken, read(&mut tx, key))? else { continue };
        let Some(start) = after.incr() else { continue };
        let entries: Vec<Frame> = s
            .range(start, StreamId::MAX, false)
            .take(if r.count == 0 { usize::MAX } else { r.count })
            .map(|(id, e)| entry_frame(&id, e))
            .collect();
        if !entries.is_empty() {
            out.push((Frame::Bulk(Bytes::copy_from_slice(key)), Frame::Array(entries)));
        }
    }
    if !out.is_empty() {
        return Ok(streams_reply(out, resp3));
    }
    match r.block {
        None => Ok(Frame::NullArray),
        Some(t) => {
            let memo: Vec<Bytes> = from.iter().map(StreamId::to_bytes).collect();
            ctx.block(&r.keys, t, Frame::NullArray)?;
            if let Some(b) = ctx.client.blocked.as_mut() {
                if b.memo.is_empty() {
                    b.memo = memo;
                }
            }
            Ok(Frame::Null)
        }
    }
}

/// XREAD/XREADGROUP's reply: a map of key → entries (pairs in RESP2).
fn streams_reply(items: Vec<(Frame, Frame)>, resp3: bool) -> Frame {
    if resp3 {
        Frame::Map(items)
    } else {
        Frame::Array(items.into_iter().map(|(k, v)| Frame::Array(vec![k, v])).collect())
    }
}

/// Who a group operation acts for: the stream key, group and consumer.
#[derive(Clone, Copy)]
struct Who<'a> {
    key: &'a [u8],
    group: &'a [u8],
    consumer: &'a [u8],
}

/// The XCLAIM that replays one delivery or claim on a replica or the AOF.
fn emit_claim(tx: &Tx<'_>, who: Who<'_>, id: &StreamId, time: u64, count: u64, last: &StreamId) {
    let (id, time, count, last) = (id.to_string(), time.to_string(), count.to_string(), last.to_string());
    tx.emit(&[
        b"XCLAIM",
        who.key,
        who.group,
        who.consumer,
        b"0",
        id.as_bytes(),
        b"TIME",
        time.as_bytes(),
        b"RETRYCOUNT",
        count.as_bytes(),
        b"FORCE",
        b"JUSTID",
        b"LASTID",
        last.as_bytes(),
    ]);
}

fn emit_setid(tx: &Tx<'_>, key: &[u8], group: &[u8], last: StreamId, entries_read: i64) {
    let (last, read) = (last.to_string(), entries_read.to_string());
    tx.emit(&[b"XGROUP", b"SETID", key, group, last.as_bytes(), b"ENTRIESREAD", read.as_bytes()]);
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]
fn xreadgroup(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let r = parse_read(&mut args, true)?;
    refuse_block_in_script(ctx, &r, args.get(0))?;
    let (group, consumer) = r.group.expect("checked by parse_read");
    for id in &r.ids {
        if *id == b"$" {
            return Err(CmdError::Err("The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into()));
        }
    }
    let ids: Vec<Option<StreamId>> =
        r.ids.iter().map(|a| if *a == b">" { Ok(None) } else { parse_id(a, 0).map(Some) }).collect::<Result<_, _>>()?;
    let (resp3, now, woken) = (ctx.resp3(), ctx.now, ctx.woken());
    let mut tx = ctx.lock_keys(r.keys.iter().copied());
    for key in &r.keys {
        // A blocked reader learns that what it waited on went away.
        match read(&mut tx, key) {
            Err(CmdError::WrongType) | Ok(None) if woken => {
                return Err(CmdError::Raw("UNBLOCKED the stream key no longer exists".into()))
            }
            Ok(Some(s)) if woken && !s.groups.contains_key(group) => {
                return Err(CmdError::Raw(
                    "NOGROUP the consumer group this client was blocked on no longer exists".into(),
                ))
            }
            Ok(Some(s)) if s.groups.contains_key(group) => {}
            Err(e) => return Err(e),
            _ => {
                return Err(CmdError::Raw(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(group)
                )))
            }
        }
    }
    let limit = if r.count == 0 { usize::MAX } else { r.count };
    let mut out = Vec::new();
    let mut any_new = false;
    for (key, id) in r.keys.iter().zip(&ids) {
        let s = read(&mut tx, key)?.expect("checked above");
        // As Redis, the consumer is created (and seen) only when this key
        // has something to serve: history, or entries after last-delivered.
        let serves = id.is_some() || s.groups[group].last_id < s.last_id && !s.is_empty();
        if serves {
            let created = s.groups.get_mut(group).expect("checked").consumer(consumer, now).1;
            s.groups.get_mut(group).expect("checked").consumers.get_mut(consumer).expect("just made").seen_time = now;
            if created {
                // Without NOACK the XCLAIMs propagated for the entries
                // create the consumer on replicas; with it, nothing would.
                if r.noack {
                    tx.emit(&[b"XGROUP", b"CREATECONSUMER", key, group, consumer]);
                }
                tx.notify(class::STREAM, "xgroup-createconsumer", key);
            }
        }
        let s = read(&mut tx, key)?.expect("checked above");
        let entries = match id {
            // History: this consumer's pending entries after `id`.
            Some(after) => {
                let g = &s.groups[group];
                let c = &g.consumers[consumer];
                let frames: Vec<Frame> = c
                    .pel
                    .range(after.incr().unwrap_or(StreamId::MAX)..)
                    .take(limit)
                    .map(|pid| match s.get(pid) {
                        Some(e) => entry_frame(pid, e),
                        None => Frame::Array(vec![id_frame(pid), Frame::NullArray]),
                    })
                    .collect();
                Some(Frame::Array(frames))
            }
            None => {
                let start = s.groups[group].last_id.incr();
                // Each entry's reply, made before the group changes.
                let picked: Vec<(StreamId, Frame)> = match start {
                    Some(st) => {
                        s.range(st, StreamId::MAX, false).take(limit).map(|(i, e)| (i, entry_frame(&i, e))).collect()
                    }
                    None => vec![],
                };
                if picked.is_empty() {
                    None
                } else {
                    any_new = true;
                    let name = s.groups[group].consumer_name(consumer).expect("made above");
                    for (pid, _) in &picked {
                        s.advance_group(group, *pid);
                        let g = s.groups.get_mut(group).expect("checked");
                        if !r.noack {
                            if let Some(prev) = g.pel.get(pid).map(|p| p.consumer.clone()) {
                                if let Some(pc) = g.consumers.get_mut(&prev) {
                                    pc.pel.remove(pid);
                                }
                            }
                            g.pel.insert(
                                *pid,
                                larder_store::types::stream::Pending {
                                    consumer: name.clone(),
                                    delivery_time: now,
                                    delivery_count: 1,
                                },
                            );
                            g.consumers.get_mut(consumer).expect("made above").pel.insert(*pid);
                        }
                    }
                    let g = s.groups.get_mut(group).expect("checked");
                    g.consumers.get_mut(consumer).expect("made above").active_time = now;
                    let (last, read) = (g.last_id, g.entries_read);
                    if !r.noack {
                        for (pid, _) in &picked {
                            emit_claim(&tx, Who { key, group, consumer }, pid, now, 1, &last);
                        }
                    }
                    // The XCLAIMs carry LASTID; only NOACK needs SETID (as
                    // Redis's streamReplyWithRange propagates).
                    if r.noack {
                        emit_setid(&tx, key, group, last, read);
                    }
                    Some(Frame::Array(picked.into_iter().map(|(_, f)| f).collect()))
                }
            }
        };
        if let Some(e) = entries {
            out.push((Frame::Bulk(Bytes::copy_from_slice(key)), e));
        }
    }
    let history = ids.iter().any(Option::is_some);
    if any_new || history {
        return Ok(streams_reply(out, resp3));
    }
    match r.block {
        None => Ok(Frame::NullArray),
        Some(t) => ctx.block(&r.keys, t, Frame::NullArray),
    }
}

/// XACK key group id [id ...]
fn xack(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group) = (args.next_arg()?, args.next_arg()?);
    let raw = args.rest();
    let mut tx = ctx.lock(key);
    let exists = read(&mut tx, key)?.is_some_and(|s| s.groups.contains_key(group));
    let ids = raw.iter().map(|a| parse_id(a, 0)).collect::<Result<Vec<_>, _>>()?;
    if !exists {
        return Ok(Frame::Integer(0));
    }
    let s = read(&mut tx, key)?.expect("checked");
    let g = s.groups.get_mut(group).expect("checked");
    let n = ids.iter().filter(|id| g.ack(id)).count();
    if n > 0 {
        tx.emit(&args.all());
    }
    Ok(Frame::Integer(n as i64))
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
fn xpending(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group) = (args.next_arg()?, args.next_arg()?);
    let extended = args.remaining() > 0;
    let (mut min_idle, mut range, mut consumer) = (None, None, None);
    if extended {
        if args.remaining() < 3 {
            return Err(CmdError::Syntax);
        }
        if args.peek().is_some_and(|a| eq_ic(a, "idle")) {
            args.next();
            min_idle = Some(parse_i64(args.next_arg()?)?);
            if args.remaining() < 3 {
                return Err(CmdError::Syntax);
            }
        }
        let start = parse_bound(args.next_arg()?, true)?;
        let end = parse_bound(args.next_arg()?, false)?;
        let count = parse_i64(args.next_arg()?)?.max(0) as usize;
        consumer = args.next();
        args.finish()?;
        range = Some((start, end, count));
    }
    let now = ctx.now;
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?;
    let Some(g) = s.as_ref().and_then(|s| s.groups.get(group)) else { return Err(no_group(key, group)) };
    let Some((start, end, count)) = range else {
        if g.pel.is_empty() {
            return Ok(Frame::Array(vec![Frame::Integer(0), Frame::Null, Frame::Null, Frame::NullArray]));
        }
        let (first, last) = (g.pel.keys().next().expect("non-empty"), g.pel.keys().next_back().expect("non-empty"));
        let per: Vec<Frame> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| Frame::Array(vec![Frame::Bulk(n.clone()), Frame::bulk(c.pel.len().to_string())]))
            .collect();
        return Ok(Frame::Array(vec![
            Frame::Integer(g.pel.len() as i64),
            id_frame(first),
            id_frame(last),
            Frame::Array(per),
        ]));
    };
    let (Some(start), Some(end)) = (start, end) else { return Ok(Frame::Array(vec![])) };
    if start > end || count == 0 {
        return Ok(Frame::Array(vec![]));
    }
    let rows = g
        .pel
        .range(start..=end)
        .filter(|(_, p)| consumer.is_none_or(|c| p.consumer == c))
        .filter(|(_, p)| min_idle.is_none_or(|m| now.saturating_sub(p.delivery_time) as i64 >= m))
        .take(count)
        .map(|(id, p)| {
            Frame::Array(vec![
                id_frame(id),
                Frame::Bulk(p.consumer.clone()),
                Frame::Integer(now.saturating_sub(p.delivery_time) as i64),
                Frame::Integer(p.delivery_count as i64),
            ])
        });
    Ok(Frame::Array(rows.collect()))
}

/// How XCLAIM / XAUTOCLAIM claim.
#[derive(Clone, Copy)]
struct ClaimOpts {
    min_idle: u64,
    now: u64,
    delivery_time: u64,
    retry: Option<u64>,
    force: bool,
    justid: bool,
}

/// Claims `id` for `consumer` if it has been idle at least `min_idle`:
/// the shared step of XCLAIM and XAUTOCLAIM. Returns Some(true) if claimed,
/// Some(false) if the entry was deleted (and dropped from the PEL), None if
/// not claimable.
fn claim_one(s: &mut Stream, group: &[u8], consumer: &[u8], id: &StreamId, o: &ClaimOpts) -> Option<bool> {
    let ClaimOpts { min_idle, now, delivery_time, retry, force, justid } = *o;
    let exists = s.get(id).is_some();
    let g = s.groups.get_mut(group).expect("caller checked");
    if !g.pel.contains_key(id) {
        if !force || !exists {
            return None;
        }
        g.pel.insert(
            *id,
            larder_store::types::stream::Pending { consumer: Bytes::new(), delivery_time: now, delivery_count: 0 },
        );
    }
    if !exists {
        g.ack(id);
        return Some(false);
    }
    let name = g.consumer_name(consumer).expect("see_claimer made the claimer");
    let p = g.pel.get_mut(id).expect("present");
    if min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle {
        return None;
    }
    let prev = std::mem::replace(&mut p.consumer, name);
    p.delivery_time = delivery_time;
    if let Some(r) = retry {
        p.delivery_count = r;
    } else if !justid {
        p.delivery_count += 1;
    }
    if let Some(pc) = g.consumers.get_mut(&prev) {
        pc.pel.remove(id);
    }
    let (c, _) = g.consumer(consumer, now);
    c.pel.insert(*id);
    c.active_time = now;
    Some(true)
}

/// XCLAIM's and XAUTOCLAIM's consumer: seen now, and created (and
/// announced, as XGROUP CREATECONSUMER would be) if it is new.
fn see_claimer(tx: &mut Tx<'_>, key: &[u8], group: &[u8], consumer: &[u8], now: u64) -> Result<(), CmdError> {
    let s = read(tx, key)?.expect("the caller checked the group");
    let (c, created) = s.groups.get_mut(group).expect("the caller checked the group").consumer(consumer, now);
    c.seen_time = now;
    if created {
        tx.emit(&[b"XGROUP", b"CREATECONSUMER", key, group, consumer]);
        tx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
fn xclaim(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group, consumer) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let now = ctx.now;
    let mut tx = ctx.lock(key);
    let has_group = read(&mut tx, key)?.is_some_and(|s| s.groups.contains_key(group));
    let min_idle = parse_i64(args.next_arg()?)
        .map_err(|_| CmdError::Err("Invalid min-idle-time argument for XCLAIM".into()))?
        .max(0) as u64;
    let mut ids = Vec::new();
    while let Some(a) = args.peek() {
        // IDs run until the first argument that is not one; the rest
        // are options (so a bad first ID is reported as an option).
        match parse_id(a, 0) {
            Ok(id) => {
                ids.push(id);
                args.next();
            }
            Err(_) => break,
        }
    }
    let (mut delivery_time, mut retry, mut force, mut justid, mut lastid) = (now, None, false, false, None);
    while let Some(opt) = args.next() {
        if eq_ic(opt, "force") {
            force = true;
        } else if eq_ic(opt, "justid") {
            justid = true;
        } else if eq_ic(opt, "idle") {
            delivery_time = now.saturating_sub(parse_i64(args.next_arg()?)?.max(0) as u64);
        } else if eq_ic(opt, "time") {
            delivery_time = parse_i64(args.next_arg()?)?.max(0) as u64;
        } else if eq_ic(opt, "retrycount") {
            retry = Some(parse_i64(args.next_arg()?)?.max(0) as u64);
        } else if eq_ic(opt, "lastid") {
            lastid = Some(parse_id(args.next_arg()?, 0)?);
        } else {
            return Err(CmdError::Err(format!("Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(opt))));
        }
    }
    if !has_group {
        return Err(no_group(key, group));
    }
    let s = read(&mut tx, key)?.expect("checked");
    if let Some(l) = lastid {
        let g = s.groups.get_mut(group).expect("checked");
        if l > g.last_id {
            g.last_id = l;
        }
    }
    see_claimer(&mut tx, key, group, consumer, now)?;
    let s = read(&mut tx, key)?.expect("checked");
    let mut out = Vec::new();
    let mut claimed = Vec::new();
    let opts = ClaimOpts { min_idle, now, delivery_time, retry, force, justid };
    for id in &ids {
        if claim_one(s, group, consumer, id, &opts) == Some(true) {
            claimed.push(*id);
            out.push(if justid { id_frame(id) } else { entry_frame(id, s.get(id).expect("exists")) });
        }
    }
    let g = &s.groups[group];
    let last = g.last_id;
    let counts: Vec<u64> = claimed.iter().map(|id| g.pel[id].delivery_count).collect();
    for (id, n) in claimed.iter().zip(counts) {
        emit_claim(&tx, Who { key, group, consumer }, id, delivery_time, n, &last);
    }
    Ok(Frame::Array(out))
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
fn xautoclaim(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group, consumer) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let now = ctx.now;
    let mut tx = ctx.lock(key);
    let has_group = read(&mut tx, key)?.is_some_and(|s| s.groups.contains_key(group));
    let min_idle = parse_i64(args.next_arg()?)
        .map_err(|_| CmdError::Err("Invalid min-idle-time argument for XAUTOCLAIM".into()))?
        .max(0) as u64;
    let start = parse_bound(args.next_arg()?, true)?;
    let (mut count, mut justid) = (100usize, false);
    while let Some(opt) = args.next() {
        if eq_ic(opt, "count") {
            let n = parse_i64(args.next_arg()?)?;
            if !(1..=i64::MAX / 10).contains(&n) {
                return Err(CmdError::Err("COUNT must be > 0".into()));
            }
            count = n as usize;
        } else if eq_ic(opt, "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if !has_group {
        return Err(no_group(key, group));
    }
    see_claimer(&mut tx, key, group, consumer, now)?;
    let s = read(&mut tx, key)?.expect("checked");
    let candidates: Vec<StreamId> = match start {
        Some(st) => s.groups[group].pel.range(st..).map(|(id, _)| *id).take(count * 10).collect(),
        None => vec![],
    };
    let (mut claimed, mut deleted, mut next) = (Vec::new(), Vec::new(), StreamId::MIN);
    let mut scanned = 0;
    for id in &candidates {
        // COUNT bounds the reply: deleted entries reported count too.
        if claimed.len() + deleted.len() >= count {
            next = *id;
            break;
        }
        scanned += 1;
        let opts = ClaimOpts { min_idle, now, delivery_time: now, retry: None, force: false, justid };
        match claim_one(s, group, consumer, id, &opts) {
            Some(true) => claimed.push(*id),
            Some(false) => deleted.push(*id),
            None => {}
        }
    }
    if next.is_zero() && scanned == candidates.len() && candidates.len() == count * 10 {
        // Stopped by the scan budget, not by the end of the PEL.
        next = s.groups[group]
            .pel
            .range(candidates[candidates.len() - 1].incr().unwrap_or(StreamId::MAX)..)
            .next()
            .map_or(StreamId::MIN, |(i, _)| *i);
    }
    let g = &s.groups[group];
    let last = g.last_id;
    let counts: Vec<u64> = claimed.iter().map(|id| g.pel[id].delivery_count).collect();
    for (id, n) in claimed.iter().zip(counts) {
        emit_claim(&tx, Who { key, group, consumer }, id, now, n, &last);
    }
    for id in &deleted {
        let id = id.to_string();
        tx.emit(&[b"XACK", key, group, id.as_bytes()]);
    }
    let s = read(&mut tx, key)?.expect("checked");
    let entries: Vec<Frame> = claimed
        .iter()
        .map(|id| if justid { id_frame(id) } else { entry_frame(id, s.get(id).expect("claimed entries exist")) })
        .collect();
    Ok(Frame::Array(vec![id_frame(&next), Frame::Array(entries), Frame::Array(deleted.iter().map(id_frame).collect())]))
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
fn xsetid(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let id = parse_id(args.next_arg()?, 0)?;
    let (mut added, mut maxdel) = (None, None);
    while let Some(opt) = args.next() {
        if eq_ic(opt, "entriesadded") {
            let n = parse_i64(args.next_arg()?)?;
            if n < 0 {
                return Err(CmdError::Err("entries_added must be positive".into()));
            }
            added = Some(n as u64);
        } else if eq_ic(opt, "maxdeletedid") {
            let m = parse_id(args.next_arg()?, 0)?;
            if id < m {
                return Err(CmdError::Err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id".into(),
                ));
            }
            maxdel = Some(m);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?.ok_or(CmdError::NoSuchKey)?;
    if let Some(n) = added {
        if (s.len() as u64) > n {
            return Err(CmdError::Err(
                "The entries_added specified in XSETID is smaller than the target stream length".into(),
            ));
        }
    }
    if !s.is_empty() && id < s.last_id {
        return Err(CmdError::Err("The ID specified in XSETID is smaller than the target stream top item".into()));
    }
    s.last_id = id;
    if let Some(n) = added {
        s.entries_added = n;
    }
    if let Some(m) = maxdel {
        s.max_deleted_id = m;
    }
    tx.emit(&args.all());
    tx.notify(class::STREAM, "xsetid", key);
    Ok(Frame::ok())
}

fn key_required() -> CmdError {
    CmdError::Err("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.".into())
}

/// `id|$` of XGROUP CREATE/SETID.
fn group_start(s: Option<&Stream>, a: &[u8]) -> Result<StreamId, CmdError> {
    if a == b"$" {
        Ok(s.map_or(StreamId::MIN, |s| s.last_id))
    } else {
        parse_id(a, 0)
    }
}

fn parse_entries_read(args: &mut Args<'_>, allow_mkstream: bool) -> Result<(bool, Option<i64>), CmdError> {
    let (mut mk, mut read) = (false, None);
    while let Some(opt) = args.next() {
        if allow_mkstream && eq_ic(opt, "mkstream") {
            mk = true;
        } else if eq_ic(opt, "entriesread") {
            let n = parse_i64(args.next_arg()?)?;
            if n < 0 && n != INVALID_ENTRIES_READ {
                return Err(CmdError::Err("value for ENTRIESREAD must be positive or -1".into()));
            }
            read = Some(n);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((mk, read))
}

/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]
fn xgroup_create(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group, id_arg) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let (mkstream, entries_read) = parse_entries_read(&mut args, true)?;
    let mut tx = ctx.lock(key);
    if read(&mut tx, key)?.is_none() {
        if !mkstream {
            return Err(key_required());
        }
        // A bad ID must not leave an empty stream behind.
        group_start(None, id_arg)?;
        tx.set(key, Value::Stream(Box::default()), Ttl::Clear);
    }
    let s = read(&mut tx, key)?.expect("present or just created");
    let id = group_start(Some(s), id_arg)?;
    if s.groups.contains_key(group) {
        return Err(CmdError::Raw("BUSYGROUP Consumer Group name already exists".into()));
    }
    s.groups.insert(Bytes::copy_from_slice(group), Group::new(id, entries_read.unwrap_or(INVALID_ENTRIES_READ)));
    tx.emit(&args.all());
    tx.notify(class::STREAM, "xgroup-create", key);
    Ok(Frame::ok())
}

/// XGROUP SETID key group id|$ [ENTRIESREAD entries-read]
fn xgroup_setid(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group, id_arg) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let (_, entries_read) = parse_entries_read(&mut args, false)?;
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?.ok_or_else(key_required)?;
    // Unlike CREATE, SETID takes `-` and `+` (Redis parses it leniently).
    let id = match id_arg {
        b"-" => StreamId::MIN,
        b"+" => StreamId::MAX,
        _ => group_start(Some(s), id_arg)?,
    };
    let g = s.groups.get_mut(group).ok_or_else(|| no_group_for_key(key, group))?;
    g.last_id = id;
    g.entries_read = entries_read.unwrap_or(INVALID_ENTRIES_READ);
    tx.emit(&args.all());
    tx.notify(class::STREAM, "xgroup-setid", key);
    Ok(Frame::ok())
}

/// XGROUP DESTROY key group
fn xgroup_destroy(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group) = (args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?.ok_or_else(key_required)?;
    let removed = s.groups.remove(group).is_some();
    if removed {
        tx.emit(&args.all());
        tx.notify(class::STREAM, "xgroup-destroy", key);
        // Clients blocked in XREADGROUP on it must wake to see it is gone.
        ctx.key_ready(key);
    }
    Ok(Frame::Integer(removed as i64))
}

/// XGROUP CREATECONSUMER key group consumer
fn xgroup_createconsumer(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group, consumer) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let now = ctx.now;
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?.ok_or_else(key_required)?;
    let g = s.groups.get_mut(group).ok_or_else(|| no_group_for_key(key, group))?;
    let created = g.consumer(consumer, now).1;
    if created {
        tx.emit(&args.all());
        tx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
    Ok(Frame::Integer(created as i64))
}

/// XGROUP DELCONSUMER key group consumer
fn xgroup_delconsumer(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group, consumer) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?.ok_or_else(key_required)?;
    let g = s.groups.get_mut(group).ok_or_else(|| no_group_for_key(key, group))?;
    let Some(c) = g.consumers.remove(consumer) else { return Ok(Frame::Integer(0)) };
    for id in &c.pel {
        g.pel.remove(id);
    }
    tx.emit(&args.all());
    tx.notify(class::STREAM, "xgroup-delconsumer", key);
    Ok(Frame::Integer(c.pel.len() as i64))
}

fn xgroup_help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    ))
}

fn entries_read_frame(n: i64) -> Frame {
    if n == INVALID_ENTRIES_READ {
        Frame::Null
    } else {
        Frame::Integer(n)
    }
}

/// XINFO STREAM key [FULL [COUNT count]]
fn xinfo_stream(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut full = None;
    if let Some(opt) = args.next() {
        if !eq_ic(opt, "full") {
            return Err(CmdError::Syntax);
        }
        let mut count = 10usize;
        if let Some(c) = args.next() {
            if !eq_ic(c, "count") {
                return Err(CmdError::Syntax);
            }
            let n = parse_i64(args.next_arg()?)?;
            count = if n <= 0 { usize::MAX } else { n as usize };
        }
        args.finish()?;
        full = Some(count);
    }
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?.ok_or(CmdError::NoSuchKey)?;
    let nodes = s.node_count();
    let mut f = vec![
        ("length", Frame::Integer(s.len() as i64)),
        ("radix-tree-keys", Frame::Integer(nodes as i64)),
        ("radix-tree-nodes", Frame::Integer(nodes as i64 + 1)),
        ("last-generated-id", id_frame(&s.last_id)),
        ("max-deleted-entry-id", id_frame(&s.max_deleted_id)),
        ("entries-added", Frame::Integer(s.entries_added as i64)),
        ("recorded-first-entry-id", id_frame(&s.first_id)),
    ];
    let Some(count) = full else {
        f.push(("groups", Frame::Integer(s.groups.len() as i64)));
        let edge = |e: Option<(StreamId, Entry<'_>)>| e.map_or(Frame::Null, |(id, e)| entry_frame(&id, e));
        f.push(("first-entry", edge(s.first())));
        f.push(("last-entry", edge(s.last())));
        return Ok(kv(f));
    };
    let entries = s.range(StreamId::MIN, StreamId::MAX, false).take(count).map(|(id, e)| entry_frame(&id, e));
    f.push(("entries", Frame::Array(entries.collect())));
    let groups = s.groups.iter().map(|(name, g)| {
        let pending = g.pel.iter().take(count).map(|(id, p)| {
            Frame::Array(vec![
                id_frame(id),
                Frame::Bulk(p.consumer.clone()),
                Frame::Integer(p.delivery_time as i64),
                Frame::Integer(p.delivery_count as i64),
            ])
        });
        let consumers = g.consumers.iter().map(|(cname, c)| {
            let cp = c.pel.iter().take(count).map(|id| {
                let p = &g.pel[id];
                Frame::Array(vec![
                    id_frame(id),
                    Frame::Integer(p.delivery_time as i64),
                    Frame::Integer(p.delivery_count as i64),
                ])
            });
            kv(vec![
                ("name", Frame::Bulk(cname.clone())),
                ("seen-time", Frame::Integer(c.seen_time as i64)),
                ("active-time", Frame::Integer(if c.active_time == 0 { -1 } else { c.active_time as i64 })),
                ("pel-count", Frame::Integer(c.pel.len() as i64)),
                ("pending", Frame::Array(cp.collect())),
            ])
        });
        kv(vec![
            ("name", Frame::Bulk(name.clone())),
            ("last-delivered-id", id_frame(&g.last_id)),
            ("entries-read", entries_read_frame(g.entries_read)),
            ("lag", s.lag(g).map_or(Frame::Null, Frame::Integer)),
            ("pel-count", Frame::Integer(g.pel.len() as i64)),
            ("pending", Frame::Array(pending.collect())),
            ("consumers", Frame::Array(consumers.collect())),
        ])
    });
    f.push(("groups", Frame::Array(groups.collect())));
    Ok(kv(f))
}

/// XINFO GROUPS key
fn xinfo_groups(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?.ok_or(CmdError::NoSuchKey)?;
    let out = s.groups.iter().map(|(name, g)| {
        kv(vec![
            ("name", Frame::Bulk(name.clone())),
            ("consumers", Frame::Integer(g.consumers.len() as i64)),
            ("pending", Frame::Integer(g.pel.len() as i64)),
            ("last-delivered-id", id_frame(&g.last_id)),
            ("entries-read", entries_read_frame(g.entries_read)),
            ("lag", s.lag(g).map_or(Frame::Null, Frame::Integer)),
        ])
    });
    Ok(Frame::Array(out.collect()))
}

/// XINFO CONSUMERS key group
fn xinfo_consumers(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, group) = (args.next_arg()?, args.next_arg()?);
    let now = ctx.now;
    let mut tx = ctx.lock(key);
    let s = read(&mut tx, key)?.ok_or(CmdError::NoSuchKey)?;
    let g = s.groups.get(group).ok_or_else(|| no_group_for_key(key, group))?;
    let out = g.consumers.iter().map(|(name, c)| {
        kv(vec![
            ("name", Frame::Bulk(name.clone())),
            ("pending", Frame::Integer(c.pel.len() as i64)),
            ("idle", Frame::Integer(now.saturating_sub(c.seen_time) as i64)),
            (
                "inactive",
                Frame::Integer(if c.active_time == 0 { -1 } else { now.saturating_sub(c.active_time) as i64 }),
            ),
        ])
    });
    Ok(Frame::Array(out.collect()))
}

fn xinfo_help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    ))
}

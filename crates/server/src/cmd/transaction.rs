//! MULTI, EXEC, DISCARD, WATCH and UNWATCH. Queuing itself happens in the
//! dispatcher (after the arity and auth gates, so a bad command aborts the
//! transaction as in Redis); EXEC runs the queue under the world lock (see
//! `crate::multi`) and wraps its writes in MULTI/EXEC effects so a replica
//! or the AOF applies them as one unit.

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{Args, CmdResult, Ctx};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | TX_CONTROL, KeySpec::NONE, multi)
        .doc("transactions", "1.2.0", "Starts a transaction."),
    CommandSpec::new(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | TX_CONTROL | EXCLUSIVE,
        KeySpec::NONE,
        exec,
    )
    .doc("transactions", "1.2.0", "Executes all commands in a transaction."),
    CommandSpec::new("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | TX_CONTROL, KeySpec::NONE, discard)
        .doc("transactions", "2.0.0", "Discards a transaction."),
    CommandSpec::new(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | TX_CONTROL,
        KeySpec::range(1, -1, 1),
        watch,
    )
    .doc("transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction."),
    CommandSpec::new("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, KeySpec::NONE, unwatch).doc(
        "transactions",
        "2.2.0",
        "Forgets about watched keys of a transaction.",
    ),
];

/// MULTI
fn multi(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::Err("MULTI calls can not be nested".into()));
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.publish_multi();
    ctx.client.multi_error = false;
    Ok(Frame::ok())
}

/// Drops the client's WATCH registrations.
pub fn unwatch_all(ctx: &mut Ctx<'_>) {
    if let Some((flag, keys)) = ctx.client.watch.take() {
        ctx.shared.watches.unwatch(&keys, &flag);
    }
}

/// EXEC
fn exec(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let Some(queue) = ctx.client.multi.take() else { return Err(CmdError::Err("EXEC without MULTI".into())) };
    ctx.client.publish_multi();
    if std::mem::take(&mut ctx.client.multi_error) {
        unwatch_all(ctx);
        return Err(CmdError::Raw("EXECABORT Transaction discarded because of previous errors.".into()));
    }
    if let Some((flag, keys)) = ctx.client.watch.clone() {
        // A watched key that expired since WATCH counts as modified: a
        // lookup reclaims it, and its DEL effect sets the flag.
        for (db, key) in &keys {
            ctx.shared.keyspace.lock(*db, key, ctx.now).contains(key);
        }
        if flag.load(Ordering::Relaxed) {
            unwatch_all(ctx);
            return Ok(Frame::NullArray);
        }
    }
    unwatch_all(ctx);
    let writes = queue.iter().any(|(req, input)| {
        let name = req.arg(input, 0);
        ctx.shared.commands.lookup(name).is_some_and(|c| c.spec.has(WRITE) || !c.subs.is_empty())
    });
    let db = ctx.db();
    if writes {
        ctx.shared.keyspace.effects.emit(db, &[b"MULTI"]);
    }
    ctx.client.in_exec = true;
    let replies: Vec<Frame> =
        queue.iter().map(|(req, input)| crate::dispatch::execute(ctx.shared, ctx.client, req, input)).collect();
    ctx.client.in_exec = false;
    if writes {
        ctx.shared.keyspace.effects.emit(ctx.db(), &[b"EXEC"]);
    }
    Ok(Frame::Array(replies))
}

/// DISCARD
fn discard(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CmdError::Err("DISCARD without MULTI".into()));
    }
    ctx.client.publish_multi();
    ctx.client.multi_error = false;
    unwatch_all(ctx);
    Ok(Frame::ok())
}

/// WATCH key [key ...]
fn watch(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::Err("WATCH inside MULTI is not allowed".into()));
    }
    let db = ctx.db();
    let (flag, mut keys) = ctx.client.watch.take().unwrap_or_else(|| (Arc::new(AtomicBool::new(false)), Vec::new()));
    for k in args.rest() {
        if !keys.iter().any(|(d, key)| *d == db && key == k) {
            let stale = ctx.shared.keyspace.lock(db, k, ctx.now).is_stale(k);
            ctx.shared.watches.watch(db, k, &flag, stale);
            keys.push((db, Bytes::copy_from_slice(k)));
        }
    }
    ctx.client.watch = Some((flag, keys));
    Ok(Frame::ok())
}

/// UNWATCH
fn unwatch(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    unwatch_all(ctx);
    Ok(Frame::ok())
}

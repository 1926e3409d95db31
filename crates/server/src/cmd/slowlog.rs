//! SLOWLOG GET, LEN, RESET and HELP over the server's log (slowlog.rs).

use super::keys::help_reply;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{Args, CmdResult, Ctx};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;

pub(super) static COMMANDS: &[CommandSpec] =
    &[CommandSpec::container("slowlog", SUBCOMMANDS).doc("server", "2.2.12", "A container for slow log commands.")];

static SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", -2, ADMIN | LOADING | STALE, KeySpec::NONE, get).doc(
        "server",
        "2.2.12",
        "Returns the slow log's entries.",
    ),
    CommandSpec::new("len", 2, ADMIN | LOADING | STALE, KeySpec::NONE, len).doc(
        "server",
        "2.2.12",
        "Returns the number of entries in the slow log.",
    ),
    CommandSpec::new("reset", 2, ADMIN | LOADING | STALE, KeySpec::NONE, reset).doc(
        "server",
        "2.2.12",
        "Clears all entries from the slow log.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, help).doc(
        "server",
        "6.2.0",
        "Show helpful text about the different subcommands",
    ),
];

/// SLOWLOG GET [count]: the newest `count` entries (10; -1 for all).
fn get(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let count = match args.next() {
        None => 10,
        Some(a) => {
            let bad = || CmdError::Err("count should be greater than or equal to -1".into());
            match super::parse_i64(a).map_err(|_| bad())? {
                -1 => usize::MAX,
                n if n < -1 => return Err(bad()),
                n => n as usize,
            }
        }
    };
    if args.next().is_some() {
        // Redis's addReplySubcommandSyntaxError, the name as typed.
        return Err(CmdError::Err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(args.get(1))
        )));
    }
    let entries = ctx.shared.slowlog.newest(count, |it| {
        it.map(|e| {
            Frame::Array(vec![
                Frame::Integer(e.id as i64),
                Frame::Integer(e.unix_secs as i64),
                Frame::Integer(e.micros as i64),
                Frame::Array(e.args.iter().map(|a| Frame::Bulk(a.clone())).collect()),
                Frame::Bulk(Bytes::from(e.peer.clone())),
                Frame::Bulk(e.name.clone()),
            ])
        })
        .collect()
    });
    Ok(Frame::Array(entries))
}

fn len(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Integer(ctx.shared.slowlog.len() as i64))
}

fn reset(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.shared.slowlog.reset();
    Ok(Frame::ok())
}

fn help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    ))
}

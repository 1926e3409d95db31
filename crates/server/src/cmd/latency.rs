//! LATENCY LATEST, HISTORY, RESET and HELP over the latency monitor
//! (latency.rs). GRAPH, DOCTOR and HISTOGRAM are not implemented and
//! answer as unknown subcommands.

use super::keys::help_reply;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{Args, CmdResult, Ctx};
use bytes::Bytes;
use larder_protocol::Frame;

pub(super) static COMMANDS: &[CommandSpec] = &[CommandSpec::container("latency", SUBCOMMANDS).doc(
    "server",
    "2.8.13",
    "A container for latency diagnostics commands.",
)];

static SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("latest", 2, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, latest).doc(
        "server",
        "2.8.13",
        "Returns the latest latency samples for all events.",
    ),
    CommandSpec::new("history", 3, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, history).doc(
        "server",
        "2.8.13",
        "Returns timestamp-latency samples for an event.",
    ),
    CommandSpec::new("reset", -2, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, reset).doc(
        "server",
        "2.8.13",
        "Resets the latency data for one or more events.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, help).doc(
        "server",
        "2.8.13",
        "Returns helpful text about the different subcommands.",
    ),
];

fn latest(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let rows = ctx.shared.latency.latest();
    Ok(Frame::Array(
        rows.into_iter()
            .map(|(event, at, ms, max)| {
                Frame::Array(vec![
                    Frame::Bulk(Bytes::from_static(event.as_bytes())),
                    Frame::Integer(at as i64),
                    Frame::Integer(ms as i64),
                    Frame::Integer(max as i64),
                ])
            })
            .collect(),
    ))
}

fn history(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let event = args.next_arg()?;
    Ok(Frame::Array(
        ctx.shared
            .latency
            .history(event)
            .into_iter()
            .map(|s| Frame::Array(vec![Frame::Integer(s.unix_secs as i64), Frame::Integer(s.ms as i64)]))
            .collect(),
    ))
}

fn reset(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let names = args.rest();
    Ok(Frame::Integer(ctx.shared.latency.reset(&names) as i64))
}

fn help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "LATENCY",
        &[
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
        ],
    ))
}

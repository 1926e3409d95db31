//! LATENCY LATEST, HISTORY, RESET, GRAPH and HELP over the latency
//! monitor (latency.rs), and HISTOGRAM over the per-command histograms
//! kept with commandstats (cmd/table.rs), and DOCTOR's plain-text reading
//! of both logs.

use super::keys::help_reply;
use super::table::{flags::*, Command, CommandSpec, KeySpec};
use super::{Args, CmdResult, Ctx};
use crate::error::CmdError;
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
    CommandSpec::new("histogram", -2, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, histogram).doc(
        "server",
        "7.0.0",
        "Returns the cumulative distribution of latencies of a subset or all commands.",
    ),
    CommandSpec::new("graph", 3, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, graph).doc(
        "server",
        "2.8.13",
        "Returns a latency graph for an event.",
    ),
    CommandSpec::new("doctor", 2, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, doctor).doc(
        "server",
        "2.8.13",
        "Returns a human-readable latency analysis report.",
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

/// LATENCY HISTOGRAM [command ...]: per command called since the last
/// CONFIG RESETSTAT, its calls and the cumulative count at each power of
/// two of microseconds where the count grows. A container command names
/// its subcommands; unknown names are skipped.
fn histogram(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let names = args.rest();
    let table = &ctx.shared.commands;
    let chosen: Vec<&Command> = if names.is_empty() {
        table.iter_all()
    } else {
        let mut out = Vec::new();
        for name in names {
            let mut parts = name.splitn(2, |&b| b == b'|');
            let Some(top) = parts.next().and_then(|p| table.lookup(p)) else { continue };
            match parts.next() {
                Some(sub) => out.extend(top.lookup_sub(sub)),
                None if top.subs.is_empty() => out.push(top),
                None => {
                    let mut subs: Vec<&Command> = top.subs.values().collect();
                    subs.sort_by(|a, b| a.full_name.cmp(&b.full_name));
                    out.extend(subs);
                }
            }
        }
        out
    };
    let mut rows = Vec::new();
    for c in chosen {
        let buckets = c.stats.histogram();
        let calls: u64 = buckets.iter().sum();
        if calls == 0 {
            continue;
        }
        let mut cdf = Vec::new();
        let mut seen = 0;
        for (i, n) in buckets.iter().enumerate() {
            if *n > 0 {
                seen += n;
                cdf.push((Frame::Integer(1i64 << i), Frame::Integer(seen as i64)));
            }
        }
        let row = Frame::Map(vec![
            (Frame::bulk("calls"), Frame::Integer(calls as i64)),
            (Frame::bulk("histogram_usec"), Frame::Map(cdf)),
        ]);
        rows.push((Frame::Bulk(Bytes::from(c.full_name.clone())), row));
    }
    Ok(Frame::Map(rows))
}

/// LATENCY DOCTOR: each event's spikes in figures, then what to look at
/// for the kinds of event seen (Redis's report covers the same ground in
/// its own words).
fn doctor(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let latency = &ctx.shared.latency;
    let events = latency.stats();
    let threshold = latency.threshold();
    let slowlog_us = ctx.shared.config.read().slowlog_log_slower_than;
    let mut out = String::new();
    if events.is_empty() {
        out.push_str(if threshold == 0 {
            "The latency monitor is off, so there is nothing to report. Turn it on with \
             CONFIG SET latency-monitor-threshold <milliseconds>: spikes at least that long are then recorded.\n"
        } else {
            "No latency spike has been recorded since the monitor was turned on or last reset.\n"
        });
        return Ok(Frame::Verbatim { format: *b"txt", text: Bytes::from(out) });
    }
    out.push_str("Latency spikes recorded, by event:\n\n");
    for (i, e) in events.iter().enumerate() {
        out.push_str(&format!(
            "{}. {}: {} spikes kept (average {} ms, mean deviation {} ms, one every {:.2} s). Worst ever {} ms.\n",
            i + 1,
            e.event,
            e.samples,
            e.avg_ms,
            e.mad_ms,
            e.period_secs,
            e.worst_ms
        ));
    }
    out.push_str("\nWhat to look at:\n\n");
    let seen = |name: &str| events.iter().any(|e| e.event == name);
    if seen("command") {
        if slowlog_us < 0 {
            out.push_str(&format!(
                "- Slow commands: SLOWLOG is off; CONFIG SET slowlog-log-slower-than {} records the commands behind these spikes.\n",
                threshold * 1000
            ));
        } else {
            if slowlog_us as u64 / 1000 > threshold {
                out.push_str(&format!(
                    "- SLOWLOG only records commands slower than {} ms, more than this monitor's threshold; CONFIG SET slowlog-log-slower-than {} records the ones behind these spikes.\n",
                    slowlog_us as u64 / 1000,
                    threshold * 1000
                ));
            }
            out.push_str("- SLOWLOG GET shows which commands ran long: commands over many elements (KEYS, SMEMBERS, LRANGE 0 -1, SORT, ...) and scripts are the usual cause.\n");
        }
        out.push_str(
            "- Deleting a large collection takes time in proportion to its size: UNLINK frees it in the background.\n",
        );
    }
    if seen("fast-command") {
        out.push_str("- Commands that should take microseconds took milliseconds: the machine itself (a busy or oversubscribed host, a virtual machine's steal time, swapping) is the likely cause, not the commands.\n");
    }
    if seen("expire-cycle") {
        out.push_str("- The active expiry cycle ran long: many keys expiring at the same moment, or large ones. Spreading the TTLs (jitter) and a higher hz, which does the same work in smaller steps, both help.\n");
    }
    Ok(Frame::Verbatim { format: *b"txt", text: Bytes::from(out) })
}

/// LATENCY GRAPH event: the event's samples drawn (latency.rs).
fn graph(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let event = args.next_arg()?;
    match ctx.shared.latency.graph(event) {
        Some(text) => Ok(Frame::Verbatim { format: *b"txt", text: Bytes::from(text) }),
        None => Err(CmdError::Err(format!("No samples available for event '{}'", String::from_utf8_lossy(event)))),
    }
}

fn help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    ))
}

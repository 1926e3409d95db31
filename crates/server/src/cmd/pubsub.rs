//! Pub/Sub commands. Subscription confirmations are pushed as separate
//! frames (`Client::pushes`), as Redis sends one per channel; messages
//! travel through each subscriber's outbox (see `crate::pubsub`).

use super::keys::help_reply;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{Args, CmdResult, Ctx};
use crate::pubsub::Kind;
use bytes::Bytes;
use larder_protocol::Frame;

static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("channels", -2, PUBSUB | LOADING | STALE, KeySpec::NONE, channels).doc(
        "pubsub",
        "2.8.0",
        "Returns the active channels.",
    ),
    CommandSpec::new("numsub", -2, PUBSUB | LOADING | STALE, KeySpec::NONE, numsub).doc(
        "pubsub",
        "2.8.0",
        "Returns a count of subscribers to channels.",
    ),
    CommandSpec::new("numpat", 2, PUBSUB | LOADING | STALE, KeySpec::NONE, numpat).doc(
        "pubsub",
        "2.8.0",
        "Returns a count of unique pattern subscriptions.",
    ),
    CommandSpec::new("shardchannels", -2, PUBSUB | LOADING | STALE, KeySpec::NONE, shardchannels).doc(
        "pubsub",
        "7.0.0",
        "Returns the active shard channels.",
    ),
    CommandSpec::new("shardnumsub", -2, PUBSUB | LOADING | STALE, KeySpec::NONE, shardnumsub).doc(
        "pubsub",
        "7.0.0",
        "Returns the count of subscribers of shard channels.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, help).doc(
        "pubsub",
        "6.2.0",
        "Returns helpful text about the different subcommands.",
    ),
];

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, KeySpec::NONE, subscribe).doc(
        "pubsub",
        "2.0.0",
        "Listens for messages published to channels.",
    ),
    CommandSpec::new("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, KeySpec::NONE, unsubscribe).doc(
        "pubsub",
        "2.0.0",
        "Stops listening to messages posted to channels.",
    ),
    CommandSpec::new("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, KeySpec::NONE, psubscribe).doc(
        "pubsub",
        "2.0.0",
        "Listens for messages published to channels that match one or more patterns.",
    ),
    CommandSpec::new("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, KeySpec::NONE, punsubscribe).doc(
        "pubsub",
        "2.0.0",
        "Stops listening to messages published to channels that match one or more patterns.",
    ),
    CommandSpec::new("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, KeySpec::range(1, -1, 1), ssubscribe).doc(
        "pubsub",
        "7.0.0",
        "Listens for messages published to shard channels.",
    ),
    CommandSpec::new("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, KeySpec::range(1, -1, 1), sunsubscribe)
        .doc("pubsub", "7.0.0", "Stops listening to messages posted to shard channels."),
    CommandSpec::new("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, KeySpec::NONE, publish).doc(
        "pubsub",
        "2.0.0",
        "Posts a message to a channel.",
    ),
    CommandSpec::new("spublish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, KeySpec::single(1), spublish).doc(
        "pubsub",
        "7.0.0",
        "Post a message to a shard channel",
    ),
    CommandSpec::container("pubsub", PUBSUB_SUBCOMMANDS).doc("pubsub", "2.8.0", "A container for Pub/Sub commands."),
];

fn idx(kind: Kind) -> usize {
    match kind {
        Kind::Channel => 0,
        Kind::Pattern => 1,
        Kind::Shard => 2,
    }
}

/// What a confirmation counts: channels + patterns, or shard channels.
fn count(ctx: &Ctx<'_>, kind: Kind) -> i64 {
    match kind {
        Kind::Shard => ctx.client.subs[2].len() as i64,
        _ => ctx.client.sub_count() as i64,
    }
}

fn confirm(ctx: &mut Ctx<'_>, what: &'static str, name: Option<Bytes>, kind: Kind) {
    let n = count(ctx, kind);
    let frame = Frame::Push(vec![Frame::bulk_static(what), name.map_or(Frame::Null, Frame::Bulk), Frame::Integer(n)]);
    ctx.client.pushes.push(frame);
}

fn sub(ctx: &mut Ctx<'_>, mut args: Args<'_>, kind: Kind, what: &'static str) -> CmdResult {
    let outbox = ctx.client.outbox.clone();
    for name in args.rest() {
        if ctx.client.subs[idx(kind)].insert(Bytes::copy_from_slice(name)) {
            ctx.shared.pubsub.subscribe(kind, name, ctx.client.id(), &outbox);
        }
        confirm(ctx, what, Some(Bytes::copy_from_slice(name)), kind);
    }
    outbox.set_subscribed(true);
    ctx.client.publish_subs();
    ctx.client.no_reply = true;
    Ok(Frame::Null)
}

/// Unsubscribes from the named ones, or from all of `kind` if none named.
pub(crate) fn unsub(ctx: &mut Ctx<'_>, names: Vec<Bytes>, kind: Kind, what: &'static str, reply: bool) {
    let names = if names.is_empty() { ctx.client.subs[idx(kind)].iter().cloned().collect() } else { names };
    if names.is_empty() && reply {
        confirm(ctx, what, None, kind);
    }
    for name in names {
        if ctx.client.subs[idx(kind)].remove(&name) {
            ctx.shared.pubsub.unsubscribe(kind, &name, ctx.client.id());
        }
        if reply {
            confirm(ctx, what, Some(name), kind);
        }
    }
    ctx.client.outbox.set_subscribed(ctx.client.subs.iter().any(|s| !s.is_empty()));
    ctx.client.publish_subs();
}

fn unsub_cmd(ctx: &mut Ctx<'_>, mut args: Args<'_>, kind: Kind, what: &'static str) -> CmdResult {
    let names = args.rest().into_iter().map(Bytes::copy_from_slice).collect();
    unsub(ctx, names, kind, what, true);
    ctx.client.no_reply = true;
    Ok(Frame::Null)
}

/// SUBSCRIBE channel [channel ...]
fn subscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    sub(ctx, args, Kind::Channel, "subscribe")
}

/// PSUBSCRIBE pattern [pattern ...]
fn psubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    sub(ctx, args, Kind::Pattern, "psubscribe")
}

/// SSUBSCRIBE shardchannel [shardchannel ...]
fn ssubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    sub(ctx, args, Kind::Shard, "ssubscribe")
}

/// UNSUBSCRIBE [channel ...]
fn unsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsub_cmd(ctx, args, Kind::Channel, "unsubscribe")
}

/// PUNSUBSCRIBE [pattern ...]
fn punsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsub_cmd(ctx, args, Kind::Pattern, "punsubscribe")
}

/// SUNSUBSCRIBE [shardchannel ...]
fn sunsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsub_cmd(ctx, args, Kind::Shard, "sunsubscribe")
}

fn do_publish(ctx: &mut Ctx<'_>, mut args: Args<'_>, shard: bool) -> CmdResult {
    let (channel, msg) = (args.next_arg()?, args.next_arg()?);
    // Replicas get the message too, to pass on to their own subscribers
    // (not the AOF: aof.rs skips it), as Redis propagates PUBLISH.
    if ctx.shared.replication.has_replicas() {
        let name: &[u8] = if shard { b"SPUBLISH" } else { b"PUBLISH" };
        ctx.shared.keyspace.effects.emit(ctx.client.db, &[name, channel, msg]);
    }
    Ok(Frame::Integer(ctx.shared.pubsub.publish(channel, msg, shard) as i64))
}

/// PUBLISH channel message
fn publish(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    do_publish(ctx, args, false)
}

/// SPUBLISH shardchannel message
fn spublish(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    do_publish(ctx, args, true)
}

fn list_channels(ctx: &mut Ctx<'_>, mut args: Args<'_>, kind: Kind) -> CmdResult {
    let pattern = args.next();
    if args.remaining() > 0 {
        let sub = if kind == Kind::Shard { "SHARDCHANNELS" } else { "CHANNELS" };
        return Err(crate::error::CmdError::Err(format!(
            "unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."
        )));
    }
    let names = ctx.shared.pubsub.channels(kind, pattern);
    Ok(Frame::Array(names.into_iter().map(Frame::Bulk).collect()))
}

fn count_subs(ctx: &mut Ctx<'_>, mut args: Args<'_>, kind: Kind) -> CmdResult {
    // A flat [channel, count, …] array in both protocols, as Redis replies.
    let flat = args.rest().into_iter().flat_map(|c| {
        [Frame::Bulk(Bytes::copy_from_slice(c)), Frame::Integer(ctx.shared.pubsub.numsub(kind, c) as i64)]
    });
    Ok(Frame::Array(flat.collect()))
}

/// PUBSUB CHANNELS [pattern]
fn channels(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    list_channels(ctx, args, Kind::Channel)
}

/// PUBSUB SHARDCHANNELS [pattern]
fn shardchannels(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    list_channels(ctx, args, Kind::Shard)
}

/// PUBSUB NUMSUB [channel ...]
fn numsub(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    count_subs(ctx, args, Kind::Channel)
}

/// PUBSUB SHARDNUMSUB [shardchannel ...]
fn shardnumsub(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    count_subs(ctx, args, Kind::Shard)
}

/// PUBSUB NUMPAT
fn numpat(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Integer(ctx.shared.pubsub.numpat() as i64))
}

fn help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ))
}

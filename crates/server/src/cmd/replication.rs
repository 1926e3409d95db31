//! Replication commands: on the primary SYNC, PSYNC and REPLCONF (see
//! replication.rs for the stream they start); REPLICAOF (SLAVEOF) to
//! follow a primary (replica.rs); ROLE for either side.

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{eq_ic, parse_i64, Args, CmdResult, Ctx};
use crate::error::CmdError;
use crate::replication::Joining;
use larder_protocol::Frame;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub(super) static COMMANDS: &[CommandSpec] =
    &[
        CommandSpec::new("sync", 1, ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING | EXCLUSIVE, KeySpec::NONE, sync)
            .doc("server", "1.0.0", "An internal command used in replication."),
        CommandSpec::new("psync", -3, ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING | EXCLUSIVE, KeySpec::NONE, psync)
            .doc("server", "2.8.0", "An internal command used in replication."),
        CommandSpec::new("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, KeySpec::NONE, replconf).doc(
            "server",
            "3.0.0",
            "An internal command for configuring the replication stream.",
        ),
        CommandSpec::new("replicaof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, KeySpec::NONE, replicaof).doc(
            "server",
            "5.0.0",
            "Configures a server as replica of another, or promotes it to a master.",
        ),
        CommandSpec::new("slaveof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, KeySpec::NONE, replicaof).doc(
            "server",
            "1.0.0",
            "Sets a Redis server as a replica of another, or promotes it to being a master.",
        ),
        CommandSpec::new("wait", 3, NOSCRIPT, KeySpec::NONE, wait).doc(
            "generic",
            "3.0.0",
            "Waits until this connection's writes reach a number of replicas, or a timeout, and returns how many they reached.",
        ),
        CommandSpec::new("waitaof", 4, BLOCKING, KeySpec::NONE, waitaof).doc(
            "generic",
            "7.2.0",
            "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the primary and/or replicas.",
        ),
        CommandSpec::new("role", 1, NOSCRIPT | LOADING | STALE | FAST, KeySpec::NONE, role).doc(
            "server",
            "2.8.12",
            "Returns the replication role.",
        ),
        CommandSpec::new("failover", -1, ADMIN | NOSCRIPT | STALE, KeySpec::NONE, failover).doc(
            "server",
            "6.2.0",
            "Hands the primary's role to one of its replicas without losing a write (see failover.rs).",
        ),
    ];

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: Redis's checks,
/// in Redis's order, then failover.rs does the rest.
fn failover(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let shared = ctx.shared;
    let argv: Vec<&[u8]> = (1..args.len()).map(|i| args.get(i)).collect();
    if argv.len() == 1 && eq_ic(argv[0], "abort") {
        if !shared.failover.active() {
            return Err(CmdError::Err("No failover in progress.".into()));
        }
        shared.failover.abort(shared, "Failover manually aborted");
        return Ok(Frame::ok());
    }
    let (mut timeout, mut force, mut target) = (0i64, false, None);
    let mut j = 0;
    while j < argv.len() {
        if eq_ic(argv[j], "timeout") && j + 1 < argv.len() && timeout == 0 {
            timeout = parse_i64(argv[j + 1])?;
            if timeout <= 0 {
                return Err(CmdError::Err("FAILOVER timeout must be greater than 0".into()));
            }
            j += 2;
        } else if eq_ic(argv[j], "to") && j + 2 < argv.len() && target.is_none() {
            let port = parse_i64(argv[j + 2])?;
            target = Some((String::from_utf8_lossy(argv[j + 1]).into_owned(), port));
            j += 3;
        } else if eq_ic(argv[j], "force") && !force {
            force = true;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if shared.failover.active() {
        return Err(CmdError::Err("FAILOVER already in progress.".into()));
    }
    if shared.replication.is_replica() {
        return Err(CmdError::Err("FAILOVER is not valid when server is a replica.".into()));
    }
    let replicas = shared.replication.replicas(ctx.now);
    if replicas.is_empty() {
        return Err(CmdError::Err("FAILOVER requires connected replicas.".into()));
    }
    if force && (timeout == 0 || target.is_none()) {
        return Err(CmdError::Err("FAILOVER with force option requires both a timeout and target HOST and IP.".into()));
    }
    let target = match target {
        Some((host, port)) => {
            let Some(r) = replicas.iter().find(|r| r.ip == host && i64::from(r.port) == port) else {
                return Err(CmdError::Err("FAILOVER target HOST and PORT is not a replica.".into()));
            };
            if !r.online {
                return Err(CmdError::Err("FAILOVER target replica is not online.".into()));
            }
            tracing::info!("FAILOVER requested to {host}:{port}.");
            Some((host, r.port))
        }
        None => {
            tracing::info!("FAILOVER requested to any replica.");
            None
        }
    };
    shared.failover.begin(shared, target, timeout as u64, force);
    Ok(Frame::ok())
}

/// REPLICAOF host port | REPLICAOF NO ONE
fn replicaof(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (host, port) = (args.next_arg()?, args.next_arg()?);
    let shared = ctx.shared;
    if shared.failover.active() {
        return Err(CmdError::Err("REPLICAOF not allowed while failing over.".into()));
    }
    if eq_ic(host, "no") && eq_ic(port, "one") {
        if promote(shared) {
            tracing::info!("MASTER MODE enabled (user request)");
        }
        return Ok(Frame::ok());
    }
    if ctx.client.replica.is_some() {
        return Err(CmdError::Err("Command is not valid when client is a replica.".into()));
    }
    let port = parse_i64(port)
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| CmdError::Err("Invalid master port".into()))?;
    let host = String::from_utf8_lossy(host).into_owned();
    if let Some(link) = shared.replication.upstream.link() {
        if link.host.eq_ignore_ascii_case(&host) && link.port == port {
            return Ok(Frame::simple("OK Already connected to specified master"));
        }
    }
    tracing::info!("REPLICAOF {host}:{port} enabled (user request)");
    follow(&shared.arc(), host, port);
    Ok(Frame::ok())
}

/// This server becomes a primary (REPLICAOF NO ONE, PSYNC … FAILOVER, a
/// failover undone); false if it was one. Its own replicas are
/// disconnected, to learn the history's new id.
pub(crate) fn promote(shared: &crate::Shared) -> bool {
    // CONFIG GET replicaof and CONFIG REWRITE follow the role, as in
    // Redis (a promoted replica must not follow its old primary again
    // after a restart from a rewritten file).
    shared.config.write().replicaof.clear();
    let Some(dropped) = shared.replication.unfollow(&shared.keyspace) else { return false };
    for id in dropped {
        shared.clients.kill(id);
    }
    crate::process::apply(&shared.config.read(), false);
    true
}

/// This server follows `host:port` (REPLICAOF, FAILOVER's handover); its
/// own replicas are disconnected, to sync again with it.
pub(crate) fn follow(shared: &Arc<crate::Shared>, host: String, port: u16) {
    shared.config.write().replicaof = format!("{host} {port}");
    for id in shared.replication.follow(shared, host, port) {
        shared.clients.kill(id);
    }
    crate::process::apply(&shared.config.read(), true);
}

/// WAIT numreplicas timeout: blocks until `numreplicas` replicas have
/// acknowledged the stream up to this client's last write, or `timeout`
/// ms pass (0: no limit); replies how many had.
fn wait(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let shared = ctx.shared;
    let repl = &shared.replication;
    if repl.is_replica() {
        return Err(CmdError::Err(
            "WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is \
             configured to be writable (which is not the default) writes to replicas are just local and are not \
             propagated."
                .into(),
        ));
    }
    let want = parse_i64(args.next_arg()?)?;
    let timeout = parse_wait_timeout(args.next_arg()?)?;
    let woff = ctx.client.woff;
    let count = |t: &[u64]| {
        let acked = repl.acked_at_least(t[0]) as i64;
        (Frame::Integer(acked), acked >= want)
    };
    let register = |waiter: &Arc<crate::blocking::Waiter>| repl.wait_for_acks(waiter);
    wait_for_events(ctx, "wait", timeout, &[woff], count, register)
}

/// WAITAOF numlocal numreplicas timeout (Redis 7.2): blocks until this
/// client's writes so far are fsynced to the local AOF (numlocal 1) and
/// to the AOF of `numreplicas` replicas (their REPLCONF ACK's FACK), or
/// `timeout` ms pass (0: no limit); replies how many of each had.
fn waitaof(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let numlocal = parse_i64(args.next_arg()?)?;
    if !(0..=1).contains(&numlocal) {
        return Err(CmdError::Err("value is out of range, value must between 0 and 1".into()));
    }
    let numreplicas = super::parse_positive(args.next_arg()?)? as i64;
    let timeout = parse_wait_timeout(args.next_arg()?)?;
    let shared = ctx.shared;
    let (repl, aof) = (&shared.replication, &shared.aof);
    if repl.is_replica() {
        return Err(CmdError::Err(
            "WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local \
             and are not propagated."
                .into(),
        ));
    }
    if numlocal > 0 && !aof.enabled() {
        return Err(CmdError::Err("WAITAOF cannot be used when numlocal is set but appendonly is disabled.".into()));
    }
    // The local target is a position in the AOF, the replicas' one in
    // the stream.
    let targets = [ctx.client.aof_woff, ctx.client.woff];
    let count = |t: &[u64]| {
        let local = (aof.enabled() && aof.synced() >= t[0]) as i64;
        let replicas = repl.aof_acked_at_least(t[1]) as i64;
        (
            Frame::Array(vec![Frame::Integer(local), Frame::Integer(replicas)]),
            local >= numlocal && replicas >= numreplicas,
        )
    };
    let register = |waiter: &Arc<crate::blocking::Waiter>| {
        repl.wait_for_acks(waiter);
        aof.wait_for_sync(waiter);
    };
    wait_for_events(ctx, "waitaof", timeout, &targets, count, register)
}

/// WAIT's and WAITAOF's timeout argument, in ms (0: no limit).
fn parse_wait_timeout(arg: &[u8]) -> Result<u64, CmdError> {
    let timeout = parse_i64(arg).map_err(|_| CmdError::Err("timeout is not an integer or out of range".into()))?;
    u64::try_from(timeout).map_err(|_| CmdError::NegativeTimeout)
}

/// What WAIT and WAITAOF share: they wait on events (acknowledgements,
/// fsyncs), not keys. The first run takes its `targets` from the client;
/// the block's memo keeps them for the runs each event and the deadline
/// make (see blocking.rs). `count` gives the reply for the targets and
/// whether it meets what was asked; it is the reply at once when it does,
/// at the deadline, and inside MULTI or a script, which never block.
/// Otherwise the client blocks under a name of its own, no key's, so that
/// CLIENT UNBLOCK and CLIENT LIST find it like any blocked client, and
/// `register` puts its waiter where the events wake it.
fn wait_for_events(
    ctx: &mut Ctx<'_>,
    kind: &str,
    timeout_ms: u64,
    targets: &[u64],
    count: impl Fn(&[u64]) -> (Frame, bool),
    register: impl FnOnce(&Arc<crate::blocking::Waiter>),
) -> CmdResult {
    let number = |b: &bytes::Bytes| std::str::from_utf8(b).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let blocked = ctx.client.blocked.as_ref();
    let memo: Option<Vec<u64>> = blocked.filter(|b| !b.memo.is_empty()).map(|b| b.memo.iter().map(number).collect());
    let expired = blocked.and_then(|b| b.deadline).is_some_and(|d| std::time::Instant::now() >= d);
    let first = memo.is_none();
    let targets = memo.unwrap_or_else(|| targets.to_vec());
    let (reply, met) = count(&targets);
    if met || expired || ctx.client.in_exec {
        return Ok(reply);
    }
    let limit = (timeout_ms > 0).then(|| std::time::Duration::from_millis(timeout_ms));
    let name = format!("\0{kind}:{}", ctx.client.id());
    ctx.block(&[name.as_bytes()], limit, reply)?;
    if first {
        let st = ctx.client.blocked.as_mut().expect("block() keeps the state");
        st.memo = targets.iter().map(|t| t.to_string().into()).collect();
        st.rerun_at_deadline = true;
        register(&st.waiter);
        // An event that landed between the count above and the
        // registration woke nobody: count again, now that one would.
        if count(&targets).1 {
            st.waiter.wake();
        }
        ctx.shared.replication.request_acks();
    }
    Ok(Frame::Null)
}

/// ROLE
fn role(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let repl = &ctx.shared.replication;
    if let (true, Some(link)) = (repl.is_replica(), repl.upstream.link()) {
        let state = match link.state.load(Relaxed) {
            crate::replica::CONNECTED => "connected",
            crate::replica::SYNCING => "sync",
            _ => "connecting",
        };
        return Ok(Frame::Array(vec![
            Frame::bulk_static("slave"),
            Frame::bulk(link.host.clone()),
            Frame::Integer(link.port as i64),
            Frame::bulk_static(state),
            Frame::Integer(link.offset.load(Relaxed) as i64),
        ]));
    }
    let replicas = repl
        .replicas(ctx.now)
        .into_iter()
        .map(|r| {
            Frame::Array(vec![Frame::bulk(r.ip), Frame::bulk(r.port.to_string()), Frame::bulk(r.offset.to_string())])
        })
        .collect();
    Ok(Frame::Array(vec![Frame::bulk_static("master"), Frame::Integer(repl.offset() as i64), Frame::Array(replicas)]))
}

/// SYNC: the image as a bulk without its trailing CRLF, then the stream.
fn sync(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    refuse_without_link(ctx)?;
    full_sync(ctx, false)
}

/// A replica serves its own replicas only while linked to its primary,
/// and a primary none while it fails over, as Redis's do.
fn refuse_without_link(ctx: &Ctx<'_>) -> Result<(), CmdError> {
    if ctx.shared.failover.active() && ctx.client.replica.is_none() {
        return Err(CmdError::Raw("NOMASTERLINK Can't SYNC while failing over".into()));
    }
    let repl = &ctx.shared.replication;
    let linked = repl.upstream.link().is_some_and(|l| l.state.load(Relaxed) == crate::replica::CONNECTED);
    if repl.is_replica() && !linked && ctx.client.replica.is_none() {
        return Err(CmdError::Raw("NOMASTERLINK Can't SYNC while not connected with my master".into()));
    }
    Ok(())
}

/// PSYNC replid offset: +CONTINUE and the missed stream if the backlog
/// holds it from `offset` on, else a full resynchronization. `?` (a
/// replica with no history) always gets the full one.
fn psync(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (replid, offset) = (args.next_arg()?, args.next_arg()?);
    if ctx.client.replica.is_some() {
        ctx.client.no_reply = true;
        return Ok(Frame::ok());
    }
    // PSYNC id offset FAILOVER: this replica's primary hands it its role
    // (FAILOVER, see failover.rs); it takes it if the id is its own, and
    // the PSYNC then continues as from any replica.
    if args.next().is_some_and(|a| eq_ic(a, "failover")) {
        let shared = ctx.shared;
        tracing::warn!("Failover request received for replid {}.", String::from_utf8_lossy(replid));
        if !shared.replication.is_replica() {
            return Err(CmdError::Err("PSYNC FAILOVER can't be sent to a master.".into()));
        }
        if replid != shared.replication.replid().as_bytes() {
            return Err(CmdError::Err("PSYNC FAILOVER replid must match my replid.".into()));
        }
        promote(shared);
        tracing::info!("MASTER MODE enabled (failover request)");
    }
    refuse_without_link(ctx)?;
    let shared = ctx.shared;
    // An offset that is no integer is refused, the connection kept, as
    // Redis 7.0.12 on does; before, it began a full sync anyway.
    let offset = parse_i64(offset).inspect_err(|_| {
        let who = joining(ctx);
        let port = if who.port == 0 { String::new() } else { format!(":{}", who.port) };
        tracing::warn!("Replica {}{port} asks for synchronization but with a wrong offset", who.ip);
    })?;
    if replid != b"?" {
        let from = u64::try_from(offset).ok();
        let (who, now) = (joining(ctx), shared.clock.now_ms());
        let id = who.id;
        if let Some(acked) = from.and_then(|from| shared.replication.resume(replid, from, who, now)) {
            ctx.client.no_reply = true;
            ctx.client.become_replica(acked);
            shared.replication.stats.partial_ok.fetch_add(1, Relaxed);
            tracing::info!("Partial resynchronization request from replica {id} accepted");
            return Ok(Frame::ok());
        }
        shared.replication.stats.partial_err.fetch_add(1, Relaxed);
    }
    full_sync(ctx, true)
}

fn full_sync(ctx: &mut Ctx<'_>, psync: bool) -> CmdResult {
    ctx.client.no_reply = true;
    if ctx.client.replica.is_some() {
        // Redis ignores a second SYNC from a replica.
        return Ok(Frame::ok());
    }
    let shared = ctx.shared;
    let who = joining(ctx);
    ctx.client.become_replica(who.ack.clone());
    shared.replication.stats.full.fetch_add(1, Relaxed);
    if shared.replication.is_replica() {
        // Its stream is its primary's: the image must be cut between two
        // of that stream's commands, which only the link knows.
        shared.replication.defer(who, psync);
    } else {
        serve_full_sync(&shared.arc(), who, psync, None);
    }
    Ok(Frame::ok())
}

/// Attaches `who` as a replica whose stream starts now and sends it the
/// image of this instant. The image is a cut made in the background, the
/// replica's stream starting at the cut (attached while every shard is
/// locked), so clients go on meanwhile. While another cut runs (BGSAVE,
/// an AOF rewrite), it is made here, under the world lock, which the
/// caller holds (PSYNC is exclusive) or is taken here (a replica's link).
/// `stream_db`: the database the stream is in, for a replica passing on
/// its primary's stream (which will not select one first).
pub fn serve_full_sync(shared: &Arc<crate::Shared>, who: Joining, psync: bool, stream_db: Option<usize>) {
    let (id, now) = (who.id, shared.clock.now_ms());
    shared.replication.reset_ping(now);
    // The history's id is taken with the offset: +FULLRESYNC names both.
    let attach = || {
        let (_, offset) = shared.replication.attach(who.clone(), now);
        format!("{} {offset}", shared.replication.replid())
    };
    let sender = shared.clone();
    let background = crate::snapshot::image_in_background(shared, stream_db, attach, move |at, image| {
        send_image(&sender, id, psync.then_some(&at), image)
    });
    if background.is_none() {
        let image = |shared: &crate::Shared| {
            let at = attach();
            send_image(shared, id, psync.then_some(&at), crate::snapshot::rdb_image(shared, stream_db));
        };
        if stream_db.is_some() {
            crate::scripting::off_worker(|| {
                let _world = shared.world.write();
                image(shared)
            });
        } else {
            image(shared);
        }
    }
}

/// This connection, as a replica about to attach.
fn joining(ctx: &Ctx<'_>) -> Joining {
    Joining {
        id: ctx.client.id(),
        outbox: ctx.client.outbox.clone(),
        limit: ctx.shared.config.read().output_limits[1],
        ip: ctx.client.replica_ip.clone().unwrap_or_else(|| ctx.client.info.addr.host()),
        port: ctx.client.replica_port,
        ack: Default::default(),
    }
}

/// Queues the image for replica `id` (after `+FULLRESYNC <at>` for PSYNC:
/// the replication id and offset), then what its stream held meanwhile;
/// a failed image closes its connection.
fn send_image(shared: &crate::Shared, id: u64, fullresync: Option<&String>, image: Result<Vec<u8>, String>) {
    let image = match image {
        Ok(image) => image,
        Err(e) => {
            tracing::warn!("full sync of replica {id} failed: {e}");
            shared.clients.kill(id);
            return;
        }
    };
    let mut head = Vec::with_capacity(image.len() + 80);
    if let Some(at) = fullresync {
        head.extend_from_slice(format!("+FULLRESYNC {at}\r\n").as_bytes());
    }
    head.extend_from_slice(format!("${}\r\n", image.len()).as_bytes());
    head.extend_from_slice(&image);
    shared.replication.release(id, &head);
    tracing::info!("Synchronization with replica {id} succeeded ({} bytes of RDB)", image.len());
}

/// REPLCONF option value [option value ...]
fn replconf(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    if args.is_empty() || !args.remaining().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    while let Some(opt) = args.next() {
        let value = args.next_arg()?;
        if eq_ic(opt, "listening-port") {
            let port = parse_i64(value)?;
            ctx.client.replica_port = u16::try_from(port).map_err(|_| CmdError::NotInteger)?;
        } else if eq_ic(opt, "ip-address") {
            // Redis's NET_HOST_STR_LEN.
            if value.len() >= 256 {
                return Err(CmdError::Err(format!(
                    "REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    value.len()
                )));
            }
            ctx.client.replica_ip = Some(String::from_utf8_lossy(value).into_owned());
        } else if eq_ic(opt, "ack") || eq_ic(opt, "fack") {
            // A replica's report of how far it has applied (ACK) and how
            // far its AOF is synced (FACK, which follows ACK in the same
            // command): never answered.
            if let (Some(acked), Ok(n)) = (&ctx.client.replica, parse_i64(value)) {
                let to = if eq_ic(opt, "ack") { &acked.offset } else { &acked.aof_offset };
                to.fetch_max(n.max(0) as u64, Relaxed);
                acked.at_ms.store(ctx.shared.clock.now_ms(), Relaxed);
                ctx.shared.replication.acked();
            }
            ctx.client.no_reply = true;
            if args.remaining() == 0 {
                return Ok(Frame::ok());
            }
        } else if eq_ic(opt, "getack") {
            ctx.client.no_reply = true;
            return Ok(Frame::ok());
        } else if !["capa", "rdb-only", "rdb-filter-only"].iter().any(|o| eq_ic(opt, o)) {
            return Err(CmdError::Err(format!("Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt))));
        }
    }
    Ok(Frame::ok())
}

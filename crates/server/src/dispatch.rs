//! lookup → subcommand → arity → gates → call → stats → reply.
//!
//! Everything a command's flags imply is enforced here, once, so handlers
//! only implement semantics. Rejections happen before the keyspace is
//! touched.

use crate::cmd::table::{flags, Command};
use crate::cmd::{Args, Ctx};
use crate::conn::client::Client;
use crate::conn::reply::Reply;
use crate::error::CmdError;
use crate::Shared;
use larder_protocol::{encode, Frame, Request};

/// Runs one parsed command and appends its reply to `out`.
pub fn dispatch(shared: &Shared, client: &mut Client, req: &Request, input: &[u8], out: &mut Reply) {
    // WAIT's offset: only kept while there is a stream to wait on.
    let stream_before = shared.replication.stream_offset();
    let aof_before = shared.aof.enabled().then(|| shared.aof.appended());
    let reply = execute(shared, client, req, input);
    if client.postponed {
        // Held by CLIENT PAUSE: not run, nothing to reply yet.
        return;
    }
    if let Some(before) = stream_before {
        let after = shared.replication.offset();
        if after != before {
            client.woff = after;
        }
    }
    if let Some(before) = aof_before {
        let after = shared.aof.appended();
        if after != before {
            client.aof_woff = after;
        }
    }
    // CLIENT CACHING yes|no covers the next command, or the next EXEC.
    if client.caching && client.multi.is_none() && !is_client_caching(req, input) {
        client.caching = false;
    }
    if client.wants_block {
        // Nothing to reply yet: the connection waits and runs it again.
        return;
    }
    if let Some(st) = client.blocked.take() {
        shared.blocking.unregister(&st);
    }
    // Confirmations and messages this command produced come before its
    // reply (a client that publishes to its own channel sees the message
    // first, as with Redis).
    for p in client.pushes.drain(..) {
        encode(&p, client.proto, out);
    }
    out.extend_from_slice(&client.outbox.take());
    use crate::conn::client::ReplyMode;
    let silenced = match client.reply_mode {
        ReplyMode::On => false,
        ReplyMode::Off => true,
        ReplyMode::SkipThisAndNext => {
            client.reply_mode = ReplyMode::Skip;
            true
        }
        ReplyMode::Skip => {
            client.reply_mode = ReplyMode::On;
            true
        }
    };
    if !std::mem::take(&mut client.no_reply) && !silenced {
        match client.replica {
            None => out.push(&reply, client.proto),
            // A reply would land in the replica's stream, where it reads
            // as a command from its primary: Redis drops such a replica
            // with a warning, so the bug that made it ask shows.
            Some(_) => drop_replying_replica(shared, client, req, input),
        }
    }
    crate::tracking::take_after_reply(out);
}

/// A replica sent a command that replies (anything but REPLCONF ACK):
/// logged in Redis's words and disconnected.
fn drop_replying_replica(shared: &Shared, client: &mut Client, req: &Request, input: &[u8]) {
    let name = logged_name(shared, req, input);
    let line = crate::cmd::connection::client_line(client, shared.uptime_ms(), 0);
    tracing::warn!("Replica generated a reply to command '{name}', disconnecting it: {line}");
    client.close_after_reply = true;
}

/// A command's name as Redis's log lines give it: the table's full name
/// (`xinfo|help`), or `<unknown>`.
fn logged_name(shared: &Shared, req: &Request, input: &[u8]) -> String {
    resolve(shared, req, input).map_or_else(|_| "<unknown>".to_string(), |(cmd, _)| cmd.full_name.clone())
}

fn is_client_caching(req: &Request, input: &[u8]) -> bool {
    req.len() >= 2
        && req.arg(input, 0).eq_ignore_ascii_case(b"client")
        && req.arg(input, 1).eq_ignore_ascii_case(b"caching")
}

fn sanitize(s: &[u8], max: usize) -> String {
    // Error replies must stay on one line.
    String::from_utf8_lossy(&s[..s.len().min(max)]).replace(['\r', '\n'], " ")
}

fn unknown_command(req: &Request, input: &[u8]) -> CmdError {
    let mut args = String::new();
    for a in req.args(input).skip(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push_str(&format!("'{}' ", sanitize(a, room)));
    }
    CmdError::UnknownCommand { name: sanitize(req.arg(input, 0), 128), args }
}

fn resolve<'t>(shared: &'t Shared, req: &Request, input: &[u8]) -> Result<(&'t Command, usize), CmdError> {
    let name = req.arg(input, 0);
    let cmd = shared.commands.lookup(name).ok_or_else(|| unknown_command(req, input))?;
    if cmd.subs.is_empty() {
        return Ok((cmd, 1));
    }
    if req.len() < 2 {
        // COMMAND alone runs its own handler; CLIENT alone is an arity error.
        return match cmd.spec.handler {
            Some(_) => Ok((cmd, 1)),
            None => Err(CmdError::WrongArity(cmd.full_name.clone())),
        };
    }
    let sub = req.arg(input, 1);
    match cmd.lookup_sub(sub) {
        Some(s) => Ok((s, 2)),
        None => Err(CmdError::UnknownSubcommand {
            sub: sanitize(sub, 128),
            cmd: String::from_utf8_lossy(name).to_uppercase(),
        }),
    }
}

/// Runs one command through every gate and returns its reply. EXEC and
/// scripts call this for each command they run (with `client.in_exec`
/// set). Every error reply counts in INFO errorstats where it is made, as
/// in Redis: a script's error that only passes on one its command already
/// counted (`client.error_counted`) does not count twice.
pub fn execute(shared: &Shared, client: &mut Client, req: &Request, input: &[u8]) -> Frame {
    let reply = run_command(shared, client, req, input);
    let counted = std::mem::take(&mut client.error_counted);
    if let Frame::Error(e) = &reply {
        if !counted {
            record_error(shared, e);
        }
        // (Not a script's commands: their errors go to the script.)
        let from_source = client.from_master || client.replaying || client.replica.is_some();
        if from_source && !client.busy_held && !(client.in_exec && shared.scripting.is_running()) {
            unexpected_error(shared, client, req, input, e);
        }
    }
    reply
}

/// A busy script refuses the command. The primary's is not refused but
/// held (see `Client::busy_held`): nothing is counted or logged, and the
/// link runs it again once the script is done.
fn busy(shared: &Shared, client: &mut Client, cmd: &Command) -> Frame {
    if client.from_master {
        client.busy_held = true;
        client.error_counted = true;
        return shared.scripting.busy_error().to_frame();
    }
    reject(shared, client, cmd, shared.scripting.busy_error())
}

/// An error replied to the primary's stream, to a replica or to the AOF
/// being loaded: counted (INFO `unexpected_error_replies`) and, but for
/// the AOF (its loader says which commands failed), logged, as Redis
/// logs it, since the data may now differ from its source.
#[cold]
fn unexpected_error(shared: &Shared, client: &Client, req: &Request, input: &[u8], e: &[u8]) {
    shared.stats.unexpected_error_replies.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if client.replaying {
        return;
    }
    let to = if client.from_master { "master" } else { "replica" };
    let name = logged_name(shared, req, input);
    tracing::warn!(
        "== CRITICAL == This {} is sending an error to its {to}: '{}' after processing the command '{name}'",
        if client.from_master { "replica" } else { "master" },
        String::from_utf8_lossy(&e[..e.len().min(128)]),
    );
    // The replica's data now differs from its primary's: under
    // `propagation-error-behavior panic` (or `panic-on-replicas`) a
    // read-only replica stops rather than serve it (SIGABRT, with the
    // crash report). A writable replica may diverge by design (its own
    // writes), so it only logs, as in Redis.
    if client.from_master
        && shared.replication.read_only_replica()
        && shared.config.read().extra("propagation-error-behavior") != "ignore"
    {
        tracing::error!("Guru Meditation: This replica panicked sending an error to its master after processing the command '{name}'");
        std::process::abort();
    }
}

/// Counts one error reply under its code (the first word).
pub fn record_error(shared: &Shared, text: &[u8]) {
    let code = text.split(|&b| b == b' ').next().unwrap_or(b"ERR");
    shared.stats.record_error(&String::from_utf8_lossy(code));
}

fn run_command(shared: &Shared, client: &mut Client, req: &Request, input: &[u8]) -> Frame {
    let (cmd, argpos) = match resolve(shared, req, input) {
        Ok(c) => c,
        Err(e) => return reject_in_multi(client, e),
    };
    let spec = cmd.spec;
    let argc = req.len() as i32;
    let gate = if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        Err(CmdError::WrongArity(cmd.full_name.clone()))
    } else if !client.authenticated && !spec.has(flags::NO_AUTH) {
        Err(CmdError::NoAuth)
    } else if let Err(e) = acl_check(shared, client, cmd, req, input) {
        Err(e)
    } else if let Err(e) = disk_gate(shared, client, cmd) {
        Err(e)
    } else if let Err(e) = replication_gate(shared, client, cmd) {
        Err(e)
    } else if shared.snapshots.loading.is_active() && !spec.has(flags::LOADING) && !client.replaying {
        Err(CmdError::Raw("LOADING Redis is loading the dataset in memory".into()))
    } else if client.in_subscribed_mode() && !allowed_when_subscribed(&cmd.full_name) {
        Err(CmdError::Err(format!(
            "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            cmd.full_name
        )))
    } else if client.multi.is_some() && spec.has(flags::NO_MULTI) {
        Err(CmdError::Err("Command not allowed inside a transaction".into()))
    } else {
        Ok(())
    };
    if let Err(e) = gate {
        return reject(shared, client, cmd, e);
    }
    // Redis checks the tracking table's size before every command, so a
    // lowered tracking-table-max-keys takes effect at once.
    if !client.in_exec && shared.tracking.any_tracking() {
        shared.tracking.enforce_limit();
    }
    // Redis's performEvictions: before every command while maxmemory is
    // set, except inside EXEC or a script (checked when they began), while
    // a script is busy, and on a replica that ignores maxmemory (its keys
    // leave when the primary's stream says). Out of memory, denyoom
    // commands are refused, and so is queuing in MULTI, and EXEC of
    // denyoom commands, as in Redis.
    if !client.in_exec {
        client.oom = false;
        if shared.may_evict() {
            // Waiting behind a script ends in BUSY once it turns busy.
            let Some(world) = shared.world.read_unless(|| shared.scripting.busy()) else {
                return reject(shared, client, cmd, shared.scripting.busy_error());
            };
            let pressure = shared.memory.enforce(&shared.keyspace, || shared.clock.now_ms());
            drop(world);
            client.oom = pressure == crate::memory::Pressure::OutOfMemory;
            // Queuing in MULTI takes memory too: everything but the
            // commands that end a transaction or connection is refused.
            let name = cmd.full_name.as_str();
            let queuing = client.multi.is_some() && !matches!(name, "exec" | "discard" | "quit" | "reset");
            if client.oom
                && (spec.has(flags::DENYOOM)
                    || queuing
                    || (name == "exec" && queued_any(shared, client, |c, _, _| c.spec.has(flags::DENYOOM))))
            {
                return reject(shared, client, cmd, CmdError::Oom);
            }
        }
    }
    // A busy script refuses all but the ALLOW_BUSY commands, queuing in
    // MULTI included (which dooms the EXEC), as Redis's processCommand does.
    let busy_exempt = spec.has(flags::ALLOW_BUSY) && shared.scripting.is_running();
    if !client.in_exec && !busy_exempt && shared.scripting.busy() {
        return busy(shared, client, cmd);
    }
    // CLIENT PAUSE holds the commands it covers, before they run or queue
    // (Redis's processCommand order): never a replica's, the primary's
    // link, EXEC's or a script's own commands, a replayed log, or a
    // blocked command woken to run again.
    if shared.pause.any()
        && !client.in_exec
        && !client.replaying
        && !client.from_master
        && client.replica.is_none()
        && client.blocked.is_none()
        && pause_covers(shared, client, cmd, req, input).is_some()
    {
        client.postponed = true;
        return Frame::Null;
    }
    // CLIENT LIST shows the running command (in MULTI, the one queued
    // last, as Redis); lock only when it changes.
    let id = cmd as *const Command as usize;
    if client.last_cmd != id {
        client.last_cmd = id;
        client.info.meta.lock().last_cmd.clone_from(&cmd.full_name);
    }
    if client.multi.is_some() && !spec.has(flags::TX_CONTROL) {
        client.queue(req, input);
        return Frame::simple("QUEUED");
    }
    let handler = spec.handler.expect("table test: every leaf has a handler");
    // Nothing runs while EXEC does; EXEC's own queue already holds the lock.
    // The guards live to the end of this function.
    let (_read, _write);
    // While a script runs, the commands allowed then (SCRIPT KILL…) must
    // not wait for it: they touch no keys.
    if !client.in_exec && !busy_exempt && !client.replaying {
        let acquired = if spec.has(flags::EXCLUSIVE) {
            match shared.world.write_unless(|| shared.scripting.busy()) {
                Some(g) => {
                    _write = g;
                    true
                }
                None => false,
            }
        } else {
            match shared.world.read_unless(|| shared.scripting.busy()) {
                Some(g) => {
                    _read = g;
                    true
                }
                None => false,
            }
        };
        if !acquired {
            return busy(shared, client, cmd);
        }
    }
    // One clock reading per top-level command: what EXEC or a script runs
    // sees the time it started at, so a key cannot expire halfway through
    // (Redis's fixed_time_expire).
    let now = if client.in_exec && client.frozen_now != 0 {
        client.frozen_now
    } else {
        client.frozen_now = shared.clock.now_ms();
        client.frozen_now
    };
    let retry = client.blocked.is_some();
    // The TSC, not the OS clock: two reads per command for commandstats
    // cost ~10% of a pipelined GET with clock_gettime on this kind of VM.
    let started = quanta::Instant::now();
    // A command a script or function runs (not EVAL itself, nor EXEC's
    // commands): its keys are the script's.
    let in_script = client.in_exec && shared.scripting.is_running();
    let result = {
        let read_only = spec.has(flags::READONLY);
        // Inside a script, the first read-only command records the
        // script's declared keys instead (Redis's rule for scripts). The
        // script is atomic, so no write can slip in before that record.
        if read_only && in_script {
            for key in client.script_keys.take().unwrap_or_default() {
                larder_store::ReadObserver::read(&*shared.tracking, client.id(), &key);
            }
        }
        let track_reads = read_only && !in_script && crate::tracking::Tracking::records_reads(client);
        let monitored = shared.monitors.active() && !spec.has(flags::ADMIN);
        let before = monitored && crate::monitor::fed_before(&cmd.full_name);
        if before && !retry {
            feed_monitors(shared, client, req, input, in_script);
        }
        crate::tracking::set_current_client(client.id());
        let mut ctx = Ctx { shared, client, now, read_only, track_reads };
        let result = handler(&mut ctx, Args::new(req, input, argpos));
        // Once: a blocking command on its first run, as in Redis, not
        // again when it is run to be served.
        if monitored && !before && !retry {
            feed_monitors(shared, client, req, input, in_script);
        }
        result
    };
    if !client.in_exec {
        shared.tracking.end_command();
    }
    // A blocked command run again when woken is still one call.
    let micros = (quanta::Instant::now() - started).as_micros() as u64;
    cmd.stats.record(!retry as u64, micros, shared.latency.tracking());
    if !client.replaying {
        let event = if spec.has(flags::FAST) { "fast-command" } else { "command" };
        shared.latency.sample_if_needed(event, micros / 1000);
    }
    // A command that blocked is logged when it is served (its last run);
    // one a script calls, as from Redis's Lua client (no address, no
    // name); none while the AOF is replayed.
    if shared.slowlog.is_slow(micros) && !client.wants_block && !client.replaying && !spec.has(flags::SKIP_SLOWLOG) {
        let args: Vec<&[u8]> = req.args(input).collect();
        let (peer, name) = match in_script {
            true => ("?:0".to_string(), Default::default()),
            false => (client.info.addr.to_string(), client.info.meta.lock().name.clone().unwrap_or_default()),
        };
        shared.slowlog.push(&args, micros, peer, name);
    }
    // A command fails when it replies with an error, whether the handler
    // returned one or passed one on (a script returning an error table).
    let reply = result.unwrap_or_else(|e| e.to_frame());
    if matches!(reply, Frame::Error(_)) {
        cmd.stats.fail();
    }
    reply
}

/// Shows the command to MONITOR's clients, from `lua` inside a script.
fn feed_monitors(shared: &Shared, client: &Client, req: &Request, input: &[u8], in_script: bool) {
    let args: Vec<&[u8]> = req.args(input).collect();
    let addr = if in_script { "lua".to_string() } else { client.info.addr.monitor_label() };
    let limit = shared.config.read().output_limits[0];
    shared.monitors.feed(client.db, &addr, &args, limit);
}

/// The client's ACL permissions for this command. Its copy of its user is
/// refreshed first when any user changed since it last looked.
fn acl_check(shared: &Shared, client: &mut Client, cmd: &Command, req: &Request, input: &[u8]) -> Result<(), CmdError> {
    let generation = shared.acl.generation();
    if client.acl_gen != generation {
        client.acl_gen = generation;
        // A deleted user's clients are disconnected by ACL DELUSER; until
        // that lands, they keep the permissions they had.
        if let Some(u) = shared.acl.get(client.user.name.as_bytes()) {
            client.user = u;
        }
    }
    if client.acl_exempt() {
        return Ok(());
    }
    let argv: Vec<&[u8]> = req.args(input).collect();
    let in_script = client.in_exec && shared.scripting.is_running();
    let context = if in_script {
        "lua"
    } else if client.multi.is_some() || client.in_exec {
        "multi"
    } else {
        "toplevel"
    };
    client.user.check(cmd, &argv).map_err(|d| {
        let message = d.message(&client.user.name, &cmd.full_name);
        log_denial(shared, client, &d, context);
        CmdError::Raw(format!("NOPERM {message}"))
    })
}

/// Whether `cmd` writes: a write command, or an EXEC that queued one (an
/// EXEC is judged by what it queued, when it arrives).
fn writes(shared: &Shared, client: &Client, cmd: &Command) -> bool {
    cmd.spec.has(flags::WRITE)
        || (cmd.full_name == "exec" && queued_any(shared, client, |c, _, _| c.spec.has(flags::WRITE)))
}

/// Redis's MISCONF: while the last background save failed (with save
/// points set and `stop-writes-on-bgsave-error yes`), or the last AOF
/// write did, writes and PING are refused, so clients learn that what
/// they write is not reaching the disk; so are a script's writes. Not the
/// primary's stream.
fn disk_gate(shared: &Shared, client: &Client, cmd: &Command) -> Result<(), CmdError> {
    let rdb_failed = shared.snapshots.last_failed.load(std::sync::atomic::Ordering::Relaxed);
    let aof_failed = shared.aof.enabled() && !shared.aof.last_write_ok.load(std::sync::atomic::Ordering::Relaxed);
    if !(rdb_failed || aof_failed) || client.from_master {
        return Ok(());
    }
    // EXEC was judged by what it queued; a script's writes are judged one
    // by one, as Redis's scriptVerifyWriteCommandAllow does.
    let in_script = client.in_exec && shared.scripting.is_running();
    if client.in_exec && !in_script {
        return Ok(());
    }
    if !(writes(shared, client, cmd) || (!in_script && cmd.full_name == "ping")) {
        return Ok(());
    }
    if rdb_failed {
        let cfg = shared.config.read();
        if cfg.extra_flag("stop-writes-on-bgsave-error") && !cfg.save.trim().is_empty() {
            return Err(CmdError::Raw(
                "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. \
                 Commands that may modify the data set are disabled, because this instance is configured to report \
                 errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check \
                 the Redis logs for details about the RDB error."
                    .into(),
            ));
        }
    }
    if aof_failed {
        let why = shared.aof.last_write_error.lock().clone();
        return Err(CmdError::Raw(format!("MISCONF Errors writing to the AOF file: {why}")));
    }
    Ok(())
}

/// What replication refuses, in Redis's order: writes without enough good
/// replicas (NOREPLICAS), writes to a read-only replica (READONLY), and,
/// on a replica cut off from its primary with replica-serve-stale-data
/// no, every command without the stale flag (MASTERDOWN). An EXEC is
/// judged by what it queued, when it arrives: as in Redis, what it runs is
/// not judged again (a REPLICAOF inside it does not fail the rest), and
/// scripts check their own commands (scripting.rs).
fn replication_gate(shared: &Shared, client: &Client, cmd: &Command) -> Result<(), CmdError> {
    // A replica's connection carries its acknowledgements, nothing that
    // reads or writes keys (Redis refuses them: a replica is exempt from
    // CLIENT PAUSE, so it must not write through one).
    if client.replica.is_some() && cmd.spec.has(flags::WRITE | flags::READONLY | flags::MAY_REPLICATE) {
        return Err(CmdError::Err("Replica can't interact with the keyspace".into()));
    }
    if client.from_master || client.in_exec {
        return Ok(());
    }
    let exec = cmd.full_name == "exec";
    let writing = || writes(shared, client, cmd);
    if shared.replication.refuses_writes(|| shared.clock.now_ms()) && writing() {
        return Err(CmdError::NoReplicas);
    }
    if shared.replication.read_only_replica() && writing() {
        return Err(CmdError::ReadOnlyReplica);
    }
    if shared.replication.stale_refused() {
        let denied =
            !cmd.spec.has(flags::STALE) || (exec && queued_any(shared, client, |c, _, _| !c.spec.has(flags::STALE)));
        if denied {
            return Err(CmdError::MasterDown);
        }
    }
    Ok(())
}

/// Records a refused command in ACL LOG.
pub fn log_denial(shared: &Shared, client: &Client, d: &crate::acl::Denial, context: &'static str) {
    let reason = match d.why {
        crate::acl::Denied::Command => "command",
        crate::acl::Denied::Key => "key",
        crate::acl::Denied::Channel => "channel",
    };
    let info = crate::cmd::connection::client_line(client, shared.uptime_ms(), 0);
    shared.acl.log(
        reason,
        context,
        String::from_utf8_lossy(&d.object).into_owned(),
        client.user.name.clone(),
        info.trim_end().to_string(),
        shared.clock.now_ms(),
    );
}

/// The end (ms) of the CLIENT PAUSE that holds this command, if one does.
fn pause_covers(shared: &Shared, client: &Client, cmd: &Command, req: &Request, input: &[u8]) -> Option<u64> {
    let (mode, end) = shared.pause.current(shared.clock.now_ms())?;
    (mode == crate::pause::Mode::All || may_replicate(shared, client, cmd, req, input)).then_some(end)
}

/// For the primary's stream on a replica, which CLIENT PAUSE holds as
/// Redis holds its primary's client: the pause's end if it holds this
/// command.
pub fn held_by_pause(shared: &Shared, client: &Client, req: &Request, input: &[u8]) -> Option<u64> {
    let (cmd, _) = resolve(shared, req, input).ok()?;
    pause_covers(shared, client, cmd, req, input)
}

/// Whether a command may change the dataset or reach the replication
/// stream, as CLIENT PAUSE WRITE judges it: write and may-replicate
/// commands, an EXEC queuing any, and scripts unless they declare
/// no-writes (Redis's evalGetCommandFlags and fcallGetCommandFlags).
fn may_replicate(shared: &Shared, client: &Client, cmd: &Command, req: &Request, input: &[u8]) -> bool {
    let name = cmd.full_name.as_str();
    if name == "exec" {
        return queued_any(shared, client, |c, req, input| may_replicate(shared, client, c, req, input));
    }
    if !cmd.spec.has(flags::WRITE | flags::MAY_REPLICATE) {
        return false;
    }
    match name {
        "eval" | "evalsha" | "fcall" if req.len() > 1 => !shared.scripting.declares_no_writes(name, req.arg(input, 1)),
        _ => true,
    }
}

/// Whether any command queued since MULTI satisfies `pred`, given the
/// command and its request (has DENYOOM: may grow memory; WRITE; lacks
/// STALE; may replicate, which for a script depends on its arguments).
fn queued_any(shared: &Shared, client: &Client, pred: impl Fn(&Command, &Request, &[u8]) -> bool) -> bool {
    client.multi.as_ref().is_some_and(|q| {
        q.iter().any(|(req, input)| resolve(shared, req, input).is_ok_and(|(c, _)| pred(c, req, input)))
    })
}

fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// A found command refused before it ran, counted in its commandstats
/// `rejected_calls`. A refused EXEC discards the transaction and says
/// why, as Redis's execCommandAbort does.
fn reject(shared: &Shared, client: &mut Client, cmd: &Command, e: CmdError) -> Frame {
    cmd.stats.reject();
    if cmd.full_name != "exec" {
        return reject_in_multi(client, e);
    }
    client.multi = None;
    client.publish_multi();
    client.multi_error = false;
    if let Some((flag, keys)) = client.watch.take() {
        shared.watches.unwatch(&keys, &flag);
    }
    let Frame::Error(text) = e.to_frame() else { unreachable!("an error converts to an error frame") };
    let mut msg = b"EXECABORT Transaction discarded because of: ".to_vec();
    msg.extend_from_slice(&text);
    Frame::Error(msg.into())
}

/// A command refused before it ran: inside MULTI it also dooms the EXEC.
fn reject_in_multi(client: &mut Client, e: CmdError) -> Frame {
    if client.multi.is_some() {
        client.multi_error = true;
    }
    e.to_frame()
}

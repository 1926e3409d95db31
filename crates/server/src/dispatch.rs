//! lookup → subcommand → arity → gates → call → stats → reply.
//!
//! Everything a command's flags imply is enforced here, once, so handlers
//! only implement semantics. Rejections happen before the keyspace is
//! touched.

use crate::cmd::table::{flags, Command};
use crate::cmd::{Args, Ctx};
use crate::conn::client::Client;
use crate::error::CmdError;
use crate::Shared;
use bytes::BytesMut;
use larder_protocol::{encode, Frame, Request};
use std::sync::atomic::Ordering::Relaxed;

/// Runs one parsed command and appends its reply to `out`.
pub fn dispatch(shared: &Shared, client: &mut Client, req: &Request, input: &[u8], out: &mut BytesMut) {
    let reply = execute(shared, client, req, input);
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
    if let Frame::Error(e) = &reply {
        let code = e.split(|&b| b == b' ').next().unwrap_or(b"ERR");
        shared.stats.record_error(&String::from_utf8_lossy(code));
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
    if !std::mem::take(&mut client.no_reply) && client.replica.is_none() && !silenced {
        encode(&reply, client.proto, out);
    }
    crate::tracking::take_after_reply(out);
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

/// Runs one command through every gate and returns its reply. EXEC calls
/// this for each queued command (with `client.in_exec` set).
pub fn execute(shared: &Shared, client: &mut Client, req: &Request, input: &[u8]) -> Frame {
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
        cmd.stats.rejected_calls.fetch_add(1, Relaxed);
        return reject_in_multi(client, e);
    }
    // Redis's performEvictions: before every command while maxmemory is
    // set, except inside EXEC or a script (checked when they began) and
    // while a script is busy. Out of memory, denyoom commands are refused,
    // and so is queuing in MULTI, and EXEC of denyoom commands, as in Redis.
    if !client.in_exec {
        client.oom = false;
        if shared.memory.limited() && !shared.scripting.busy() {
            let pressure = {
                let _world = shared.world.read(client.id());
                shared.memory.enforce(&shared.keyspace, shared.clock.now_ms())
            };
            client.oom = pressure == crate::memory::Pressure::OutOfMemory;
            // Queuing in MULTI takes memory too: everything but the
            // commands that end a transaction or connection is refused.
            let name = cmd.full_name.as_str();
            let queuing = client.multi.is_some() && !matches!(name, "exec" | "discard" | "quit" | "reset");
            if client.oom && (spec.has(flags::DENYOOM) || queuing || (name == "exec" && queued_denyoom(shared, client)))
            {
                cmd.stats.rejected_calls.fetch_add(1, Relaxed);
                return reject_in_multi(client, CmdError::Oom);
            }
        }
    }
    if let Some(queue) = client.multi.as_mut() {
        if !spec.has(flags::TX_CONTROL) {
            queue.push((req.clone(), input.to_vec()));
            return Frame::simple("QUEUED");
        }
    }
    let handler = spec.handler.expect("table test: every leaf has a handler");
    // CLIENT LIST shows the running command; lock only when it changes.
    let id = cmd as *const Command as usize;
    if client.last_cmd != id {
        client.last_cmd = id;
        client.info.meta.lock().last_cmd.clone_from(&cmd.full_name);
    }
    // Nothing runs while EXEC does; EXEC's own queue already holds the lock.
    // The guards live to the end of this function.
    let busy_exempt = spec.has(flags::ALLOW_BUSY) && shared.scripting.running_ms().is_some();
    let busy = || {
        cmd.stats.rejected_calls.fetch_add(1, Relaxed);
        shared.scripting.busy_error().to_frame()
    };
    if !client.in_exec && !busy_exempt && shared.scripting.busy() {
        return busy();
    }
    let (_read, _write);
    // While a script runs, the commands allowed then (SCRIPT KILL…) must
    // not wait for it: they touch no keys.
    if !client.in_exec && !busy_exempt && !client.replaying {
        if spec.has(flags::EXCLUSIVE) {
            _write = shared.world.write();
        } else {
            match shared.world.read_unless(client.id(), || shared.scripting.busy()) {
                Some(g) => _read = g,
                None => return busy(),
            }
        }
    }
    let now = shared.clock.now_ms();
    let retry = client.blocked.is_some();
    // The TSC, not the OS clock: two reads per command for commandstats
    // cost ~10% of a pipelined GET with clock_gettime on this kind of VM.
    let started = quanta::Instant::now();
    let result = {
        let read_only = spec.has(flags::READONLY);
        // Inside a script, the first read-only command records the
        // script's declared keys instead (Redis's rule for scripts). The
        // script is atomic, so no write can slip in before that record.
        let in_script = client.in_exec && shared.scripting.running_ms().is_some();
        if read_only && in_script {
            for key in client.script_keys.take().unwrap_or_default() {
                larder_store::ReadObserver::read(&*shared.tracking, client.id(), &key);
            }
        }
        let track_reads = read_only && !in_script && crate::tracking::Tracking::records_reads(client);
        crate::tracking::set_current_client(client.id());
        let mut ctx = Ctx { shared, client, now, read_only, track_reads };
        handler(&mut ctx, Args::new(req, input, argpos))
    };
    if !client.in_exec {
        shared.tracking.end_command();
    }
    // A blocked command run again when woken is still one call.
    if !retry {
        cmd.stats.calls.fetch_add(1, Relaxed);
    }
    cmd.stats.usec.fetch_add((quanta::Instant::now() - started).as_micros() as u64, Relaxed);
    result.unwrap_or_else(|e| {
        cmd.stats.failed_calls.fetch_add(1, Relaxed);
        e.to_frame()
    })
}

/// Whether any command queued since MULTI may grow memory.
fn queued_denyoom(shared: &Shared, client: &Client) -> bool {
    client.multi.as_ref().is_some_and(|q| {
        q.iter().any(|(req, input)| resolve(shared, req, input).is_ok_and(|(c, _)| c.spec.has(flags::DENYOOM)))
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

/// A command refused before it ran: inside MULTI it also dooms the EXEC.
fn reject_in_multi(client: &mut Client, e: CmdError) -> Frame {
    if client.multi.is_some() {
        client.multi_error = true;
    }
    e.to_frame()
}

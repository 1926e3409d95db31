//! MIGRATE: moves keys to another Redis-protocol server, as DUMP there
//! and RESTORE at the target, then DEL here unless COPY.
//!
//! Redis runs MIGRATE on its one thread, so nothing touches the keys
//! between the dump and the delete, and a target that is slow stalls the
//! whole server up to the timeout. Here the command is EXCLUSIVE (it holds
//! the world lock, as EVAL does) for the same atomicity: a write landing
//! between the dump and the delete would otherwise be lost with the key.
//! Unlike Redis, the connection to the target is not cached between calls
//! (Redis keeps it 10 s); each MIGRATE connects, authenticates and selects
//! afresh, which costs a round trip and nothing in correctness.

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, eq_ic, Args, CmdResult, Ctx};
use crate::error::CmdError;
use larder_protocol::encode_command;
use larder_protocol::Frame;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub static COMMANDS: &[CommandSpec] =
    &[CommandSpec::new("migrate", -6, WRITE | MOVABLEKEYS | EXCLUSIVE, KeySpec::single(3), migrate).doc(
        "generic",
        "2.6.0",
        "Atomically transfers a key from one Redis instance to another.",
    )];

const CONNECT_FAILED: &str = "IOERR error or timeout connecting to the client";
const READ_FAILED: &str = "IOERR error or timeout reading to target instance";

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password | AUTH2 username password] [KEYS key [key ...]]
fn migrate(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let host = String::from_utf8_lossy(args.next_arg()?).into_owned();
    let port = args.next_i64()?;
    let key = args.next_arg()?;
    let db = args.next_i64()?;
    let timeout = args.next_i64()?;
    let (mut copy, mut replace, mut auth): (bool, bool, Vec<&[u8]>) = (false, false, Vec::new());
    let mut keys = vec![key];
    while let Some(a) = args.next() {
        if eq_ic(a, "copy") {
            copy = true;
        } else if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "auth") {
            auth = vec![b"AUTH", args.next_arg().map_err(|_| CmdError::Syntax)?];
        } else if eq_ic(a, "auth2") {
            let user = args.next_arg().map_err(|_| CmdError::Syntax)?;
            auth = vec![b"AUTH", user, args.next_arg().map_err(|_| CmdError::Syntax)?];
        } else if eq_ic(a, "keys") {
            if !key.is_empty() {
                return Err(CmdError::Err(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty string".into(),
                ));
            }
            keys = args.rest();
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    // What exists, with its payload and the TTL left (at least 1 ms, as
    // Redis sends it).
    let mut moving = Vec::new();
    {
        let mut tx = ctx.lock_keys(keys.iter().copied());
        for &k in &keys {
            if let Some(e) = tx.peek(k) {
                let payload = larder_persist::dump_payload(&e.value).map_err(|e| CmdError::Err(e.to_string()))?;
                let ttl = e.expire_at().map_or(0, |at| at.saturating_sub(ctx.now).max(1));
                moving.push((k, ttl.to_string(), payload));
            }
        }
    }
    if moving.is_empty() {
        return Ok(Frame::simple("NOKEY"));
    }
    let mut request = Vec::new();
    if !auth.is_empty() {
        encode_command(&mut request, &auth);
    }
    let db = db.to_string();
    encode_command(&mut request, &[b"SELECT", db.as_bytes()]);
    for (k, ttl, payload) in &moving {
        let mut cmd: Vec<&[u8]> = vec![b"RESTORE", k, ttl.as_bytes(), payload];
        if replace {
            cmd.push(b"REPLACE");
        }
        encode_command(&mut request, &cmd);
    }
    let replies = exchange(&host, port, timeout, &request, moving.len() + 1 + usize::from(!auth.is_empty()))?;
    let (setup, restored) = replies.split_at(replies.len() - moving.len());
    if let Some(err) = setup.iter().find_map(|r| r.strip_prefix('-')) {
        return Err(CmdError::Raw(format!("ERR Target instance replied with error: {err}")));
    }
    let mut first_error = None;
    let mut tx = ctx.lock_keys(moving.iter().map(|(k, ..)| *k));
    for ((k, ..), reply) in moving.iter().zip(restored) {
        if let Some(err) = reply.strip_prefix('-') {
            first_error.get_or_insert_with(|| err.to_string());
        } else if !copy && tx.remove(k).is_some() {
            tx.emit(&[b"DEL", k]);
            tx.notify(class::GENERIC, "del", k);
        }
    }
    match first_error {
        Some(err) => Err(CmdError::Raw(format!("ERR Target instance replied with error: {err}"))),
        None => Ok(Frame::ok()),
    }
}

/// Sends `request` and reads `count` one-line replies (+OK or -ERR …: all
/// AUTH, SELECT and RESTORE answer), each within `timeout`.
fn exchange(host: &str, port: i64, timeout: Duration, request: &[u8], count: usize) -> Result<Vec<String>, CmdError> {
    let connect_failed = || CmdError::Raw(CONNECT_FAILED.into());
    let port = u16::try_from(port).map_err(|_| connect_failed())?;
    let addr = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(connect_failed)?;
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|_| connect_failed())?;
    let read_failed = || CmdError::Raw(READ_FAILED.into());
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(timeout)))
        .map_err(|_| read_failed())?;
    (&stream).write_all(request).map_err(|_| read_failed())?;
    let mut reader = BufReader::new(&stream);
    let mut replies = Vec::with_capacity(count);
    for _ in 0..count {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|_| read_failed())? == 0 {
            return Err(read_failed());
        }
        replies.push(line.trim_end().to_string());
    }
    Ok(replies)
}

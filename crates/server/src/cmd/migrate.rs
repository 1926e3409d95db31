//! MIGRATE: moves keys to another Redis-protocol server, as DUMP there
//! and RESTORE at the target, then DEL here unless COPY.
//!
//! Redis runs MIGRATE on its one thread, so nothing touches the keys
//! between the dump and the delete, and a target that is slow stalls the
//! whole server up to the timeout. Here the command is EXCLUSIVE (it holds
//! the world lock, as EVAL does) for the same atomicity: a write landing
//! between the dump and the delete would otherwise be lost with the key.
//!
//! Connections to targets are cached as Redis caches them ([`Sockets`]):
//! by host and port, 64 at most, each closed after 10 s unused, so a
//! resharding tool that moves keys one MIGRATE at a time connects once,
//! and SELECTs only when the database changes. A cached connection the
//! target closed meanwhile fails at its first write or read; then the
//! MIGRATE connects once more and tries again, as Redis does, unless the
//! target had answered part of it or the failure was a timeout.

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, eq_ic, Args, CmdResult, Ctx};
use crate::error::CmdError;
use hashbrown::HashMap;
use larder_protocol::encode_command;
use larder_protocol::Frame;
use parking_lot::Mutex;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub static COMMANDS: &[CommandSpec] =
    &[CommandSpec::new("migrate", -6, WRITE | MOVABLEKEYS | EXCLUSIVE, KeySpec::single(3), migrate).doc(
        "generic",
        "2.6.0",
        "Atomically transfers a key from one Redis instance to another.",
    )];

const CONNECT_FAILED: &str = "IOERR error or timeout connecting to the client";
const READ_FAILED: &str = "IOERR error or timeout reading to target instance";
const WRITE_FAILED: &str = "IOERR error or timeout writing to target instance";

/// Redis's `MIGRATE_SOCKET_CACHE_ITEMS` and `MIGRATE_SOCKET_CACHE_TTL`.
const CACHED_AT_MOST: usize = 64;
const CACHED_FOR: Duration = Duration::from_secs(10);

/// MIGRATE's connections to its targets, by `host:port` as given (INFO's
/// `migrate_cached_sockets` counts them).
#[derive(Default)]
pub struct Sockets(Mutex<HashMap<String, Cached>>);

/// A target's connection, the database it last SELECTed (`None`: send
/// SELECT), and when MIGRATE last used it.
struct Cached {
    conn: BufReader<TcpStream>,
    db: Option<i64>,
    used: Instant,
}

impl Sockets {
    pub fn len(&self) -> usize {
        self.0.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes those unused for 10 s (the cron calls this every second).
    pub fn close_idle(&self) {
        self.0.lock().retain(|_, c| c.used.elapsed() <= CACHED_FOR);
    }

    /// The cached connection to `name`, taken out while MIGRATE uses it
    /// (the command holds the world lock, so no other MIGRATE waits), or
    /// a new one. The bool says whether it was cached.
    fn take(&self, name: &str, host: &str, port: i64, timeout: Duration) -> Result<(Cached, bool), CmdError> {
        if let Some(c) = self.0.lock().remove(name) {
            return Ok((c, true));
        }
        let connect_failed = || CmdError::Raw(CONNECT_FAILED.into());
        let port = u16::try_from(port).map_err(|_| connect_failed())?;
        let addr = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(connect_failed)?;
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|_| connect_failed())?;
        let _ = stream.set_nodelay(true);
        Ok((Cached { conn: BufReader::new(stream), db: None, used: Instant::now() }, false))
    }

    /// Puts a connection back for the next MIGRATE to `name`, making room
    /// by closing another if 64 are cached already.
    fn put(&self, name: String, mut c: Cached) {
        c.used = Instant::now();
        let mut map = self.0.lock();
        if map.len() >= CACHED_AT_MOST {
            if let Some(other) = map.keys().next().cloned() {
                map.remove(&other);
            }
        }
        map.insert(name, c);
    }
}

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
                let payload = larder_persist::dump_payload(&e.value()).map_err(|e| CmdError::Err(e.to_string()))?;
                let ttl = e.expire_at().map_or(0, |at| at.saturating_sub(ctx.now).max(1));
                moving.push((k, ttl.to_string(), payload));
            }
        }
    }
    if moving.is_empty() {
        return Ok(Frame::simple("NOKEY"));
    }
    let mut restores = Vec::new();
    for (k, ttl, payload) in &moving {
        let mut cmd: Vec<&[u8]> = vec![b"RESTORE", k, ttl.as_bytes(), payload];
        if replace {
            cmd.push(b"REPLACE");
        }
        encode_command(&mut restores, &cmd);
    }
    let sockets = &ctx.shared.migrate_sockets;
    let name = format!("{host}:{}", String::from_utf8_lossy(args.get(2)));
    let mut retried = false;
    let (mut conn, replies) = loop {
        let (mut conn, cached) = sockets.take(&name, &host, port, timeout)?;
        let mut request = Vec::new();
        if !auth.is_empty() {
            encode_command(&mut request, &auth);
        }
        // SELECT only when the cached connection is not in `db` already.
        let select = conn.db != Some(db);
        if select {
            encode_command(&mut request, &[b"SELECT", db.to_string().as_bytes()]);
        }
        request.extend_from_slice(&restores);
        let count = moving.len() + usize::from(select) + usize::from(!auth.is_empty());
        match exchange(&mut conn, timeout, &request, count) {
            Ok(replies) => break (conn, replies),
            // A cached connection the target closed fails before any
            // reply: one more try on a new one, unless it timed out.
            Err(e) if cached && !retried && e.replied == 0 && !e.timed_out => retried = true,
            Err(e) => return Err(CmdError::Raw(if e.writing { WRITE_FAILED } else { READ_FAILED }.into())),
        }
    };
    let (setup, restored) = replies.split_at(replies.len() - moving.len());
    let target_error = setup.iter().chain(restored).find_map(|r| r.strip_prefix('-')).is_some();
    // After an error the target's database is in doubt: SELECT next time.
    conn.db = if target_error { None } else { Some(db) };
    sockets.put(name, conn);
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

/// How an exchange with the target failed: writing or reading, after
/// how many replies, and whether by the timeout.
struct Failed {
    writing: bool,
    replied: usize,
    timed_out: bool,
}

impl Failed {
    fn new(writing: bool, replied: usize, e: Option<std::io::Error>) -> Failed {
        let timed_out =
            e.is_some_and(|e| matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        Failed { writing, replied, timed_out }
    }
}

/// Sends `request` and reads `count` one-line replies (+OK or -ERR …: all
/// AUTH, SELECT and RESTORE answer), each within `timeout`.
fn exchange(conn: &mut Cached, timeout: Duration, request: &[u8], count: usize) -> Result<Vec<String>, Failed> {
    let stream = conn.conn.get_ref();
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| Failed::new(true, 0, Some(e)))?;
    let mut writer = stream;
    writer.write_all(request).map_err(|e| Failed::new(true, 0, Some(e)))?;
    let mut replies = Vec::with_capacity(count);
    for _ in 0..count {
        let mut line = String::new();
        match conn.conn.read_line(&mut line) {
            Ok(0) => return Err(Failed::new(false, replies.len(), None)),
            Ok(_) => replies.push(line.trim_end().to_string()),
            Err(e) => return Err(Failed::new(false, replies.len(), Some(e))),
        }
    }
    Ok(replies)
}

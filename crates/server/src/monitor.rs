//! MONITOR: every command the server runs, streamed as text to the
//! clients that asked.
//!
//! Each line is Redis's: `+<unix seconds>.<micros> [<db> <addr>] "arg" …`,
//! the address `lua` for commands a script or function runs. The dispatcher
//! feeds a command once it has run (so SELECT shows the database it
//! selected; a blocking command once, on its first run), except the script
//! runners (EVAL…, FCALL…), fed before they run so their commands follow
//! them, as in Redis. Administrative commands
//! are never shown, nor commands refused before they ran, nor commands
//! queued by MULTI until EXEC runs them; passwords in AUTH, HELLO and
//! MIGRATE are replaced by `(redacted)`.
//!
//! A line goes to each monitor's outbox (the queue pub/sub messages use),
//! so a monitor that stops reading is cut off by the normal clients'
//! `client-output-buffer-limit` instead of growing memory. The line is
//! formatted once, and only while someone monitors: the check before
//! that is one relaxed load.

use crate::pubsub::{BufferLimit, Outbox};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Default)]
pub struct Monitors {
    clients: Mutex<Vec<(u64, Arc<Outbox>)>>,
    count: AtomicUsize,
}

impl Monitors {
    /// Someone monitors: commands must be fed.
    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    /// Client `id` monitors from now on (again: no change).
    pub fn add(&self, id: u64, outbox: Arc<Outbox>) {
        let mut clients = self.clients.lock();
        if !clients.iter().any(|(c, _)| *c == id) {
            clients.push((id, outbox));
        }
        self.count.store(clients.len(), Relaxed);
    }

    /// Client `id` monitors no more (RESET).
    pub fn remove(&self, id: u64) {
        let mut clients = self.clients.lock();
        clients.retain(|(c, _)| *c != id);
        self.count.store(clients.len(), Relaxed);
    }

    /// Sends one command to every monitor; forgets those that are gone.
    pub fn feed(&self, db: usize, addr: &str, args: &[&[u8]], limit: BufferLimit) {
        let text = line(std::time::SystemTime::now(), db, addr, args);
        let mut clients = self.clients.lock();
        clients.retain(|(_, outbox)| !outbox.is_closed() && outbox.push(&text, limit));
        self.count.store(clients.len(), Relaxed);
    }
}

/// Whether MONITOR shows a command by this name before it runs.
pub fn fed_before(name: &str) -> bool {
    name.starts_with("eval") || name.starts_with("fcall")
}

/// One MONITOR line.
fn line(at: std::time::SystemTime, db: usize, addr: &str, args: &[&[u8]]) -> Vec<u8> {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut out = format!("+{}.{:06} [{db} {addr}]", since.as_secs(), since.subsec_micros()).into_bytes();
    let hidden = redacted(args);
    for (i, arg) in args.iter().enumerate() {
        out.push(b' ');
        if hidden.contains(&i) {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            larder_protocol::quote(&mut out, arg);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Positions of the arguments that are secrets (Redis's
/// redactClientCommandArgument calls): everything after AUTH; HELLO's
/// `AUTH user pass`; MIGRATE's `AUTH pass` and `AUTH2 user pass`; all of
/// ACL SETUSER's after the subcommand; the values CONFIG SET gives
/// `requirepass`, `masterauth` and `masteruser`. SLOWLOG shares them.
pub(crate) fn redacted(args: &[&[u8]]) -> Vec<usize> {
    let Some(name) = args.first() else { return Vec::new() };
    let is = |a: &[u8], b: &str| a.eq_ignore_ascii_case(b.as_bytes());
    if is(name, "auth") {
        return (1..args.len()).collect();
    }
    let sub = args.get(1).copied().unwrap_or_default();
    if is(name, "acl") && is(sub, "setuser") && args.len() >= 3 {
        return (2..args.len()).collect();
    }
    if is(name, "config") && is(sub, "set") {
        let secret = |a: &[u8]| ["requirepass", "masterauth", "masteruser"].iter().any(|n| is(a, n));
        return (2..args.len()).step_by(2).filter(|&i| secret(args[i]) && i + 1 < args.len()).map(|i| i + 1).collect();
    }
    let mut hidden = Vec::new();
    let (hello, migrate) = (is(name, "hello"), is(name, "migrate"));
    for (i, arg) in args.iter().enumerate().skip(1) {
        let after = if (hello && is(arg, "auth")) || (migrate && is(arg, "auth2")) {
            2
        } else if migrate && is(arg, "auth") {
            1
        } else {
            0
        };
        hidden.extend((i + 1..=i + after).filter(|&j| j < args.len()));
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_and_redact_as_redis_does() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_339_518_083_107_412);
        let args: [&[u8]; 3] = [b"set", b"k\"\n", b"\x01 v"];
        assert_eq!(
            line(at, 3, "127.0.0.1:6000", &args),
            b"+1339518083.107412 [3 127.0.0.1:6000] \"set\" \"k\\\"\\n\" \"\\x01 v\"\r\n"
        );
        let hello: [&[u8]; 5] = [b"HELLO", b"2", b"AUTH", b"u", b"p"];
        assert_eq!(redacted(&hello), vec![3, 4]);
        let migrate: [&[u8]; 9] = [b"migrate", b"h", b"1", b"key", b"9", b"5000", b"AUTH2", b"u", b"p"];
        assert_eq!(redacted(&migrate), vec![7, 8]);
        let migrate: [&[u8]; 8] = [b"migrate", b"h", b"1", b"key", b"9", b"5000", b"auth", b"p"];
        assert_eq!(redacted(&migrate), vec![7]);
        assert_eq!(redacted(&[b"auth".as_slice(), b"u", b"p"]), vec![1, 2]);
        assert!(redacted(&[b"set".as_slice(), b"auth", b"x"]).is_empty());
        assert_eq!(redacted(&[b"ACL".as_slice(), b"setuser", b"u", b"+get"]), vec![2, 3]);
        let config: [&[u8]; 6] = [b"config", b"set", b"maxmemory", b"1", b"MASTERAUTH", b"pw"];
        assert_eq!(redacted(&config), vec![5]);
    }
}

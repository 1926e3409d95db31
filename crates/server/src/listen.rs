//! The listening sockets: binding `bind` × `port` as Redis does, and
//! changing them while the server runs (CONFIG SET port / bind).
//!
//! Why the listeners sit behind a mutex in [`Shared`] rather than in the
//! accept loop's hands: Redis 7 changes them inside CONFIG SET, closing the
//! old sockets first, then binding the new ones, and answers the command
//! with the outcome ("Unable to listen on this port"), rolled back on
//! failure. Commands run synchronously on a worker, and the accept loop is
//! another task that may be parked on the old sockets; so the command swaps
//! the set under the lock and wakes the loop, which takes the lock only
//! inside a poll, never across an await. Closing first matters when the
//! port stays: a new set that shares an address and port with the old one
//! (`bind 127.0.0.1` to `bind 127.0.0.1 ::1`) could not be bound while the
//! old was open. A new port is bound first instead (see [`rebind`]).
//!
//! Address rules, from Redis's listenToPort: `*` is every IPv4 address,
//! `::*` every IPv6 one, an IPv6 socket is IPv6-only (so `* ::*` binds
//! both), a leading `-` makes an address optional (skipped where the
//! machine lacks it or its protocol), and sockets reuse addresses so a
//! restart is not refused by connections in TIME_WAIT.
//!
//! `tls-port` is a second set bound the same way, on the same addresses,
//! whose connections begin with a TLS handshake (tls.rs). `unixsocket`
//! adds a Unix socket beside them, bound once at startup (the setting is
//! immutable, as in Redis) and removed at shutdown.

use crate::server::Shared;
use atomic_waker::AtomicWaker;
use parking_lot::Mutex;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::{TcpListener, TcpStream};

/// Redis's CONFIG_BINDADDR_MAX.
pub const MAX_BIND_ADDRESSES: usize = 16;

/// The sockets the accept loop serves, and its waker for when they change.
#[derive(Default)]
pub struct Listeners {
    sockets: Mutex<Vec<TcpListener>>,
    /// `tls-port`'s sockets.
    tls: Mutex<Vec<TcpListener>>,
    /// `unixsocket`'s listener and its path.
    #[cfg(unix)]
    unix: Mutex<Option<(tokio::net::UnixListener, Arc<str>)>>,
    waker: AtomicWaker,
    /// Where the next poll starts, so a busy socket cannot starve the rest.
    turn: AtomicUsize,
}

impl Listeners {
    /// Replaces the set (dropping, so closing, the old sockets) and wakes
    /// the accept loop to poll the new ones.
    pub fn install(&self, shared: &Shared, sockets: Vec<TcpListener>) {
        *shared.listen_addr.write() = sockets.first().and_then(|l| l.local_addr().ok());
        *self.sockets.lock() = sockets;
        self.waker.wake();
    }

    /// [`Self::install`] for `tls-port`'s set.
    pub fn install_tls(&self, sockets: Vec<TcpListener>) {
        *self.tls.lock() = sockets;
        self.waker.wake();
    }

    /// Closes every plain TCP socket: the accept loop then waits for a
    /// new set (or the server is shutting down).
    pub fn close(&self) {
        self.sockets.lock().clear();
    }

    /// Closes `tls-port`'s sockets.
    pub fn close_tls(&self) {
        self.tls.lock().clear();
    }

    /// Whether `tls-port`'s sockets are open.
    pub fn has_tls(&self) -> bool {
        !self.tls.lock().is_empty()
    }

    /// The port `tls-port`'s sockets listen on.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.lock().first().and_then(|l| l.local_addr().ok()).map(|a| a.port())
    }

    /// The next connection on any socket; pending while there is none
    /// (between a failed rebind and its rollback).
    pub async fn accept(&self) -> io::Result<Accepted> {
        std::future::poll_fn(|cx: &mut Context<'_>| {
            self.waker.register(cx.waker());
            let turn = self.turn.fetch_add(1, Relaxed);
            #[cfg(unix)]
            if turn % 2 == 1 {
                if let Poll::Ready(r) = self.poll_unix(cx) {
                    return Poll::Ready(r);
                }
            }
            let (plain, tls) = (self.sockets.lock(), self.tls.lock());
            let n = plain.len() + tls.len();
            for i in 0..n {
                let k = (turn + i) % n;
                let (socket, secure) = match k.checked_sub(plain.len()) {
                    None => (&plain[k], false),
                    Some(t) => (&tls[t], true),
                };
                if let Poll::Ready(r) = socket.poll_accept(cx) {
                    return Poll::Ready(r.map(|(stream, addr)| match secure {
                        false => Accepted::Tcp(stream, addr),
                        true => Accepted::Tls(stream, addr),
                    }));
                }
            }
            drop((plain, tls));
            #[cfg(unix)]
            if turn.is_multiple_of(2) {
                return self.poll_unix(cx);
            }
            Poll::Pending
        })
        .await
    }

    #[cfg(unix)]
    fn poll_unix(&self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted>> {
        match &*self.unix.lock() {
            Some((l, path)) => l.poll_accept(cx).map_ok(|(stream, _)| Accepted::Unix(stream, path.clone())),
            None => Poll::Pending,
        }
    }

    /// Listens on the Unix socket `path` (Redis's `unixsocket`): a file
    /// left there by an earlier run is removed first, as Redis does, and
    /// a `perm` other than 0 (`unixsocketperm`) becomes its mode. Needs a
    /// runtime context.
    #[cfg(unix)]
    pub fn bind_unix(&self, path: &str, perm: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path)?;
        if perm != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))?;
        }
        *self.unix.lock() = Some((listener, path.into()));
        self.waker.wake();
        Ok(())
    }

    /// Whether the Unix socket is listening.
    pub fn has_unix(&self) -> bool {
        #[cfg(unix)]
        return self.unix.lock().is_some();
        #[cfg(not(unix))]
        return false;
    }

    /// Closes the Unix socket and removes its file (at shutdown).
    pub fn close_unix(&self) {
        #[cfg(unix)]
        if let Some((listener, path)) = self.unix.lock().take() {
            drop(listener);
            let _ = std::fs::remove_file(&*path);
        }
    }
}

/// A new connection: over TCP with the peer's address (on `tls-port`, its
/// handshake still to come), or over the Unix socket at the path given.
pub enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Tls(TcpStream, SocketAddr),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream, Arc<str>),
}

/// One entry of `bind`: its address and whether it may be missing.
fn parse_entry(entry: &str) -> (&str, bool) {
    match entry.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (entry, false),
    }
}

/// Where one `bind` entry resolves on `port`: `*` and `::*` are the
/// wildcards, anything else goes through the resolver (a name such as
/// `localhost` works, as with Redis's getaddrinfo).
fn resolve(addr: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    match addr {
        "*" => Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)]),
        "::*" => Ok(vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)]),
        _ => match addr.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
            Err(_) => Ok((addr, port).to_socket_addrs()?.collect()),
        },
    }
}

fn bind_one(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Errors that let an optional (`-`) address be skipped: the machine lacks
/// the address or its protocol family.
fn absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EADDRNOTAVAIL
                | libc::EAFNOSUPPORT
                | libc::EPROTONOSUPPORT
                | libc::ESOCKTNOSUPPORT
                | libc::EPFNOSUPPORT
                | libc::ENOPROTOOPT
        )
    )
}

/// Binds every `bind` entry on `port` (0: a port the system picks, shared
/// by the later addresses so all listen on one port). The error names the
/// address that failed, as Redis's log line does.
pub fn bind_all(entries: &[String], port: u16, backlog: u64) -> Result<Vec<std::net::TcpListener>, String> {
    let backlog = backlog.min(i32::MAX as u64) as i32;
    let mut port = port;
    let mut out = Vec::new();
    for entry in entries {
        let (addr, optional) = parse_entry(entry);
        let candidates = match resolve(addr, port) {
            Ok(c) if !c.is_empty() => c,
            Ok(_) | Err(_) if optional => continue,
            Ok(_) => return Err(format!("{addr}:{port}: no such address")),
            Err(e) => return Err(format!("{addr}:{port}: {e}")),
        };
        let mut last_err = None;
        let mut bound = None;
        for candidate in candidates {
            match bind_one(candidate, backlog) {
                Ok(l) => {
                    bound = Some(l);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        match (bound, last_err) {
            (Some(l), _) => {
                if port == 0 {
                    port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                }
                out.push(l);
            }
            (None, Some(e)) if optional && absent(&e) => continue,
            (None, e) => {
                let why = e.map(|e| e.to_string()).unwrap_or_default();
                return Err(format!("Could not create server TCP listening socket {addr}:{port}: {why}"));
            }
        }
    }
    if out.is_empty() {
        return Err("Configured to not listen anywhere".into());
    }
    Ok(out)
}

/// `tcp-keepalive`: TCP keepalive probes after `secs` idle, as Redis's
/// anetKeepAlive sets them (then every `secs / 3`, three unanswered
/// probes close the connection), so a peer that vanished without a FIN is
/// noticed and its client freed.
pub fn keep_alive(stream: &TcpStream, secs: u64) -> io::Result<()> {
    let idle = std::time::Duration::from_secs(secs);
    let interval = std::time::Duration::from_secs((secs / 3).max(1));
    let ka = socket2::TcpKeepalive::new().with_time(idle).with_interval(interval).with_retries(3);
    socket2::SockRef::from(stream).set_tcp_keepalive(&ka)
}

/// [`bind_all`], as the runtime's sockets (needs a runtime context).
pub fn bind_tokio(entries: &[String], port: u16, backlog: u64) -> Result<Vec<TcpListener>, String> {
    let sockets = bind_all(entries, port, backlog)?;
    sockets.into_iter().map(TcpListener::from_std).collect::<io::Result<_>>().map_err(|e| e.to_string())
}

/// CONFIG SET port / bind (or tls-port, `tls`): closes the current
/// sockets, binds `entries` on `port`, and on failure binds the old ones
/// again (Redis's rollback) and returns the reason for the log. Returns
/// the port now listened on. A `tls-port` of 0 is TLS off: nothing bound.
pub fn rebind(shared: &Shared, entries: &[String], port: u16, old: (&[String], u16), tls: bool) -> Result<u16, String> {
    let backlog = shared.config.read().tcp_backlog;
    let bind = |entries: &[String], port: u16| match tls && port == 0 {
        true => Ok(Vec::new()),
        false => bind_tokio(entries, port, backlog),
    };
    let install = |sockets: Vec<TcpListener>| match tls {
        true => shared.listeners.install_tls(sockets),
        false => shared.listeners.install(shared, sockets),
    };
    let close = || match tls {
        true => shared.listeners.close_tls(),
        false => shared.listeners.close(),
    };
    // A new port shares no socket with the old set: bind it first, and
    // the old sockets close only once it is up. A refused port then
    // leaves them as they were, with no moment without a listener, in
    // which another process could take the old port.
    if port != old.1 && port != 0 {
        let sockets = bind(entries, port).inspect_err(|why| tracing::warn!("Failed to listen: {why}"))?;
        let port = sockets.first().and_then(|l| l.local_addr().ok()).map_or(port, |a| a.port());
        close();
        install(sockets);
        return Ok(port);
    }
    close();
    match bind(entries, port) {
        Ok(sockets) => {
            let port = sockets.first().and_then(|l| l.local_addr().ok()).map_or(port, |a| a.port());
            install(sockets);
            Ok(port)
        }
        Err(why) => {
            tracing::warn!("Failed to listen: {why}");
            match bind(old.0, old.1) {
                Ok(sockets) => install(sockets),
                Err(e) => tracing::warn!("Failed to listen on the previous addresses again: {e}"),
            }
            Err(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_addresses_may_be_missing_and_the_port_is_shared() {
        // 192.0.2.1 (TEST-NET-1) is on no interface of a test machine.
        let entries: Vec<String> = ["127.0.0.1", "-192.0.2.1"].iter().map(|s| s.to_string()).collect();
        let socks = bind_all(&entries, 0, 16).expect("the optional address is skipped");
        assert_eq!(socks.len(), 1);
        let err = bind_all(&["192.0.2.1".to_string()], 0, 16).expect_err("a required address must bind");
        assert!(err.contains("192.0.2.1"), "{err}");
    }

    #[test]
    fn a_port_in_use_is_refused() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        assert!(bind_all(&["127.0.0.1".to_string()], port, 16).is_err());
        drop(taken);
        assert!(bind_all(&["127.0.0.1".to_string()], port, 16).is_ok());
    }
}

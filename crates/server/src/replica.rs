//! The replica side of replication: REPLICAOF's link to a primary.
//!
//! One tokio task per link does what Redis's replication state machine
//! does, as straight-line code: connect, PING, REPLCONF listening-port and
//! capa psync2, PSYNC ? -1, read +FULLRESYNC and the RDB image (a `$len`
//! bulk: not announcing `capa eof` makes every primary send that form),
//! load it under the world lock, then apply the command stream through
//! the dispatcher as a client flagged `from_master`, acknowledging the
//! offset every second. A broken link is retried every second until
//! REPLICAOF NO ONE or another REPLICAOF aborts the task.
//!
//! A link that breaks keeps what it reached: the primary's replication id,
//! the offset of the last whole command applied (both in replication.rs,
//! which passes each applied command on to this server's own replicas and
//! backlog), and the database the stream last selected (Redis's cached
//! master). The next connection asks PSYNC for the rest; a primary whose
//! backlog still holds it answers +CONTINUE and the stream goes on where
//! it stopped, with no image. A new primary (after a failover) is asked
//! the same way, and continues the stream if it was promoted from the
//! same history (PSYNC2; see replication.rs). `masterauth` (and
//! `masteruser`) authenticate the link first.
//!
//! A restart keeps it too: a snapshot saves the position its data stands
//! at (`repl-id`, `repl-offset`, `repl-stream-db`, as Redis's RDB does),
//! and a server started with `replicaof` that loads one asks PSYNC from
//! there. With none it asks `PSYNC ? -1`. The link runs each command
//! through [`crate::replication::Replication::applying`], so a snapshot
//! cut between a command's writes and its passing on still names the
//! offset its data holds.

use crate::conn::client::Client;
use crate::Shared;
use bytes::BytesMut;
use larder_protocol::{encode, parse_request, Frame, Proto, Request, RequestLimits};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Link states, as INFO's master_link_status and ROLE name them.
pub const CONNECTING: u8 = 0;
pub const SYNCING: u8 = 1;
pub const CONNECTED: u8 = 2;

/// What a link shows while it lives.
pub struct LinkState {
    pub host: String,
    pub port: u16,
    pub state: AtomicU8,
    /// Stream bytes applied (slave_repl_offset).
    pub offset: AtomicU64,
    /// Stream bytes received (slave_read_repl_offset): ahead of `offset`
    /// while CLIENT PAUSE holds the stream's commands.
    pub read_offset: AtomicU64,
    /// Milliseconds (server clock) of the last byte from the primary.
    pub last_io_ms: AtomicU64,
    /// The connection applying the stream (CLIENT KILL TYPE master).
    pub client_id: AtomicU64,
}

/// The primary this server replicates, if any.
pub struct Upstream {
    pub link: Arc<LinkState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
pub struct ReplicaRole {
    upstream: Mutex<Option<Upstream>>,
}

impl ReplicaRole {
    pub fn link(&self) -> Option<Arc<LinkState>> {
        self.upstream.lock().as_ref().map(|u| u.link.clone())
    }

    /// Stops replicating (REPLICAOF NO ONE); false if this was a primary.
    pub fn stop(&self) -> bool {
        match self.upstream.lock().take() {
            Some(u) => {
                u.task.abort();
                true
            }
            None => false,
        }
    }

    /// Starts replicating `host:port`, replacing any current link.
    pub fn start(&self, shared: &Arc<Shared>, host: String, port: u16) {
        let offset = shared.replication.offset();
        let link = Arc::new(LinkState {
            host,
            port,
            state: AtomicU8::new(CONNECTING),
            offset: AtomicU64::new(offset),
            read_offset: AtomicU64::new(offset),
            last_io_ms: AtomicU64::new(0),
            client_id: AtomicU64::new(0),
        });
        let task = tokio::spawn(run(Arc::downgrade(shared), link.clone()));
        if let Some(old) = self.upstream.lock().replace(Upstream { link, task }) {
            old.task.abort();
        }
    }
}

async fn run(shared: Weak<Shared>, link: Arc<LinkState>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        link.state.store(CONNECTING, Relaxed);
        match sync_once(&s, &link).await {
            Ok(()) => tracing::info!("Connection with primary lost"),
            Err(e) => tracing::warn!("Replication link to {}:{}: {e}", link.host, link.port),
        }
        link.state.store(CONNECTING, Relaxed);
        drop(s);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads one `\r\n`-terminated line, skipping the bare newlines a primary
/// sends to keep the link alive while it prepares the image.
async fn read_line(stream: &mut (impl AsyncRead + Unpin), buf: &mut BytesMut) -> anyhow::Result<String> {
    loop {
        while buf.first() == Some(&b'\n') {
            let _ = buf.split_to(1);
        }
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(i + 2);
            return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        if stream.read_buf(buf).await? == 0 {
            anyhow::bail!("the primary closed the connection");
        }
    }
}

/// Sends one command to the primary, encoded as any RESP request.
async fn send(stream: &mut (impl AsyncWrite + Unpin), args: &[&str]) -> anyhow::Result<()> {
    let mut out = BytesMut::new();
    encode(&Frame::Array(args.iter().map(Frame::bulk).collect()), Proto::Resp2, &mut out);
    stream.write_all(&out).await?;
    Ok(())
}

async fn command(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    buf: &mut BytesMut,
    args: &[&str],
) -> anyhow::Result<String> {
    send(stream, args).await?;
    read_line(stream, buf).await
}

/// Connects to `addr`, from `source` (`bind-source-addr`) if one is set.
async fn connect(addr: &str, source: &str) -> anyhow::Result<TcpStream> {
    if source.is_empty() {
        return Ok(TcpStream::connect(addr).await?);
    }
    let target = tokio::net::lookup_host(addr).await?.next().ok_or_else(|| anyhow::anyhow!("no address for {addr}"))?;
    let socket = if target.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    let from: std::net::IpAddr =
        source.parse().map_err(|_| anyhow::anyhow!("bind-source-addr {source:?} is not an address"))?;
    socket.bind((from, 0).into())?;
    Ok(socket.connect(target).await?)
}

/// One connection's life: handshake, full sync, then the stream until the
/// link breaks.
async fn sync_once(shared: &Arc<Shared>, link: &Arc<LinkState>) -> anyhow::Result<()> {
    let addr = format!("{}:{}", link.host, link.port);
    let (source, tls) = {
        let c = shared.config.read();
        (c.extra("bind-source-addr").to_string(), c.extra_flag("tls-replication"))
    };
    let stream = tokio::time::timeout(Duration::from_secs(5), connect(&addr, &source)).await??;
    let peer = stream.peer_addr().unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
    if !tls {
        return sync_over(shared, link, stream, peer).await;
    }
    // tls-replication: the link is TLS, with this server's client
    // certificate and roots (tls.rs).
    let connector = crate::tls::connector(&shared.config.read()).map_err(anyhow::Error::msg)?;
    let name = crate::tls::server_name(&link.host);
    let stream = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, stream)).await??;
    sync_over(shared, link, stream, peer).await
}

/// [`sync_once`] over the connection made.
async fn sync_over(
    shared: &Arc<Shared>,
    link: &Arc<LinkState>,
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    peer: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let pong = command(&mut stream, &mut buf, &["PING"]).await?;
    // A primary with a password answers NOAUTH until masterauth is sent.
    if pong.starts_with('-') && !pong.starts_with("-NOAUTH") {
        anyhow::bail!("PING: {pong}");
    }
    let (user, pass) = {
        let c = shared.config.read();
        (c.masteruser.clone(), c.masterauth.clone())
    };
    if !pass.is_empty() {
        let auth: &[&str] = if user.is_empty() { &["AUTH", &pass] } else { &["AUTH", &user, &pass] };
        let reply = command(&mut stream, &mut buf, auth).await?;
        if reply.starts_with('-') {
            anyhow::bail!("Unable to AUTH to MASTER: {reply}");
        }
    }
    // What this replica announces (replica-announce-port and -ip, for
    // NAT or containers), else its own port and the address it connects
    // from.
    let (announce_port, announce_ip) = {
        let c = shared.config.read();
        (c.extra_int("replica-announce-port") as u16, c.extra("replica-announce-ip").to_string())
    };
    // Over TLS links a replica is reached on its TLS port, as Redis
    // announces `tls-port` when tls-replication is on.
    let own_port = match shared.listeners.tls_port() {
        Some(port) if shared.config.read().extra_flag("tls-replication") => port,
        _ => shared.listen_addr.read().map(|a| a.port()).unwrap_or(0),
    };
    let port = if announce_port != 0 { announce_port } else { own_port }.to_string();
    let mut steps = vec![vec!["REPLCONF", "listening-port", &port]];
    if !announce_ip.is_empty() {
        steps.push(vec!["REPLCONF", "ip-address", &announce_ip]);
    }
    steps.push(vec!["REPLCONF", "capa", "psync2"]);
    for step in &steps {
        let reply = command(&mut stream, &mut buf, step).await?;
        if reply.starts_with("-NOAUTH") {
            anyhow::bail!("the primary requires authentication (masterauth): {reply}");
        }
    }
    link.state.store(SYNCING, Relaxed);
    // What this server's data stands at: its last primary's history, or
    // its own if it was a primary (Redis's cached master).
    let (replid, mut offset) = shared.replication.position().unwrap_or_else(|| ("?".into(), 0));
    let from = if replid == "?" { "-1".to_string() } else { (offset + 1).to_string() };
    // A primary handing its role over (FAILOVER) asks the target to take it.
    let failing_over = shared.failover.in_progress();
    let psync: &[&str] = if failing_over { &["PSYNC", &replid, &from, "FAILOVER"] } else { &["PSYNC", &replid, &from] };
    let reply = command(&mut stream, &mut buf, psync).await?;
    if failing_over {
        let accepted = reply.starts_with("+CONTINUE") || reply.starts_with("+FULLRESYNC");
        shared.failover.answered(shared, accepted);
        if !accepted {
            anyhow::bail!("the failover target refused: {reply}");
        }
    }
    if let Some(id) = reply.strip_prefix("+CONTINUE") {
        // A primary may name a new id for the same history (Redis's
        // PSYNC2, after a failover): this server's replicas learn it.
        for id in shared.replication.continued(id.trim()) {
            shared.clients.kill(id);
        }
        link.offset.store(offset, Relaxed);
        tracing::info!("Successful partial resynchronization with primary at offset {offset}");
    } else {
        offset = full_sync(shared, link, &mut stream, &mut buf, &reply).await?;
    }
    link.state.store(CONNECTED, Relaxed);
    link.last_io_ms.store(shared.clock.now_ms(), Relaxed);

    let addr = crate::conn::client::Peer::Tcp(peer);
    let (info, outbox) = shared.clients.register(addr.clone(), addr, -1, shared.uptime_ms());
    let mut client = Client::new(info, outbox, shared.acl.default_user(), true);
    client.from_master = true;
    client.db = shared.replication.stream_db();
    link.client_id.store(client.id(), Relaxed);
    let result = apply_stream(shared, link, &mut stream, &mut buf, &mut client, &mut offset).await;
    link.client_id.store(0, Relaxed);
    shared.clients.unregister(client.id());
    result
}

/// After a PSYNC answered `reply` (+FULLRESYNC replid offset): reads and
/// loads the image; the offset the stream starts at.
async fn full_sync(
    shared: &Arc<Shared>,
    link: &LinkState,
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    buf: &mut BytesMut,
    reply: &str,
) -> anyhow::Result<u64> {
    let mut parts = reply.split(' ');
    let (Some("+FULLRESYNC"), Some(replid), Some(offset)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("PSYNC: unexpected reply {reply:?}");
    };
    let offset: u64 = offset.parse()?;
    let header = read_line(stream, buf).await?;
    let len: usize = header
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad image header {header:?}"))?;
    while buf.len() < len {
        match stream.read_buf(buf).await? {
            0 => anyhow::bail!("the primary closed the connection during the transfer"),
            n => shared.stats.total_net_repl_input_bytes.add(n as u64),
        }
    }
    let image = buf.split_to(len);
    tracing::info!("Primary replied FULLRESYNC: loading {len} bytes of RDB");
    load_image(shared, &image)?;
    // The stream goes on in the database the image names (a primary that
    // is itself a replica passes its primary's stream on as it is).
    let db = larder_persist::file::aux_field(&image, "repl-stream-db")
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
        .unwrap_or(0);
    shared.replication.synced(replid, offset, db);
    link.offset.store(offset, Relaxed);
    tracing::info!("Primary <-> replica sync: finished with success");
    Ok(offset)
}

/// Flushes the dataset and loads the primary's image, holding the world
/// lock so no client sees it half loaded.
fn load_image(shared: &Shared, image: &[u8]) -> anyhow::Result<()> {
    crate::scripting::off_worker(|| {
        let _world = shared.world.write();
        // This server's own replicas (chained) cannot follow a load: they
        // sync again, from the new data. The history is renamed first, so
        // a load that fails halfway is never continued from.
        for id in shared.replication.loading_image() {
            shared.clients.kill(id);
        }
        let lazy = shared.config.read().extra_flag("replica-lazy-flush");
        shared.lazyfree.free_flushed(shared.keyspace.take_all(), lazy);
        shared.scripting.function_flush();
        crate::snapshot::load_rdb(shared, image, std::path::Path::new("(replication image)"), true).map(drop)
    })
}

async fn apply_stream(
    shared: &Arc<Shared>,
    link: &LinkState,
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    buf: &mut BytesMut,
    client: &mut Client,
    offset: &mut u64,
) -> anyhow::Result<()> {
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    // Each fsync of this server's AOF may move what FACK reports: told at
    // once, so the primary's WAITAOF need not wait for the next second.
    let mut synced = shared.aof.subscribe_synced();
    let mut fack = AofAck::default();
    let mut req = Request::default();
    let limits = RequestLimits { authenticated: true, ..Default::default() };
    link.read_offset.store(*offset + buf.len() as u64, Relaxed);
    // Applied bytes not yet passed on: a transaction's, until its EXEC.
    let mut unproxied: Vec<u8> = Vec::new();
    loop {
        // Between two commands: this server's replicas that need a full
        // sync get it now, so the image and their stream meet exactly.
        for (who, psync) in shared.replication.take_deferred() {
            crate::cmd::replication::serve_full_sync(shared, who, psync, Some(client.db));
        }
        // Everything complete in the buffer runs before reading more,
        // unless CLIENT PAUSE holds a command: then it and what follows
        // wait (Redis pauses its primary's client too), and reading goes
        // on meanwhile.
        let mut pos = 0;
        let mut held_until = None;
        let mut busy_hold = false;
        while let Some(n) = parse_request(&buf[pos..], &limits, &mut req)? {
            let input = &buf[pos..pos + n];
            let getack = req.len() > 1
                && req.arg(input, 0).eq_ignore_ascii_case(b"replconf")
                && req.arg(input, 1).eq_ignore_ascii_case(b"getack");
            if shared.pause.any() && !req.is_empty() && !getack {
                held_until = crate::dispatch::held_by_pause(shared, client, &req, input);
                if held_until.is_some() {
                    break;
                }
            }
            if !req.is_empty() && !getack {
                let up_to = *offset + n as u64;
                shared.replication.applying(up_to, || crate::dispatch::execute(shared, client, &req, input));
                client.outbox.take();
                if std::mem::take(&mut client.busy_held) {
                    // Not run: it and what follows wait for the script.
                    busy_hold = true;
                    break;
                }
            }
            pos += n;
            *offset += n as u64;
            // The offset a new link continues from, stored per command (a
            // link that fails mid-batch must not ask again for what it
            // applied), but never inside MULTI: the new link's client has
            // no transaction open, so the whole of it must come again
            // (Redis's reploff stays put inside one too).
            // What is applied is passed on, as the offset says: a
            // transaction whole, after its EXEC.
            if client.multi.is_none() {
                link.offset.store(*offset, Relaxed);
                if unproxied.is_empty() {
                    shared.replication.proxy(input, client.db);
                } else {
                    unproxied.extend_from_slice(input);
                    shared.replication.proxy(&unproxied, client.db);
                    unproxied.clear();
                }
            } else {
                unproxied.extend_from_slice(input);
            }
            if getack {
                // Redis counts the GETACK itself in the offset it reports.
                ack_applied(stream, link, &mut fack, &shared.aof).await?;
            }
        }
        let _ = buf.split_to(pos);
        let mut pause_changed = shared.pause.subscribe();
        let held = async {
            match held_until {
                Some(end) => {
                    let wait = Duration::from_millis(end.saturating_sub(shared.clock.now_ms()));
                    tokio::select! {
                        _ = pause_changed.changed() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = stream.read_buf(buf) => {
                let r = r?;
                if r == 0 {
                    return Ok(());
                }
                link.read_offset.fetch_add(r as u64, Relaxed);
                link.last_io_ms.store(shared.clock.now_ms(), Relaxed);
                shared.stats.total_net_repl_input_bytes.add(r as u64);
            }
            _ = held => {}
            // A busy script held the stream: look again shortly (the
            // script's end has no signal; SCRIPT KILL or its own return).
            _ = tokio::time::sleep(Duration::from_millis(10)), if busy_hold => {}
            _ = shared.replication.deferred_wanted() => {}
            _ = ack.tick() => {
                // repl-timeout: a primary pings every repl-ping-replica-period;
                // silence longer than this means the link is dead.
                let timeout = shared.config.read().extra_int("repl-timeout") as u64 * 1000;
                if shared.clock.now_ms().saturating_sub(link.last_io_ms.load(Relaxed)) > timeout {
                    anyhow::bail!("MASTER timeout: no data nor PING received...");
                }
                ack_applied(stream, link, &mut fack, &shared.aof).await?
            }
            _ = synced.changed() => {
                let applied = link.offset.load(Relaxed);
                let before = fack.synced;
                if let Some(now) = fack.update(&shared.aof, applied).filter(|&n| n > before) {
                    send_ack(stream, applied, Some(now)).await?;
                }
            }
            // CLIENT KILL TYPE master: the link drops, and reconnects.
            _ = client.info.killed() => anyhow::bail!("the link was killed (CLIENT KILL)"),
        }
    }
}

/// REPLCONF ACK, with FACK (how far of the stream this server's AOF is
/// synced) while the AOF is on, as Redis 7.2's replicas send it.
async fn send_ack(stream: &mut (impl AsyncWrite + Unpin), offset: u64, fack: Option<u64>) -> anyhow::Result<()> {
    match fack {
        Some(f) => send(stream, &["REPLCONF", "ACK", &offset.to_string(), "FACK", &f.to_string()]).await,
        None => send(stream, &["REPLCONF", "ACK", &offset.to_string()]).await,
    }
}

/// REPLCONF ACK of what is applied now, with FACK while the AOF is on.
async fn ack_applied(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    link: &LinkState,
    fack: &mut AofAck,
    aof: &crate::aof::Aof,
) -> anyhow::Result<()> {
    let applied = link.offset.load(Relaxed);
    send_ack(stream, applied, fack.update(aof, applied)).await
}

/// How far of the stream this server's AOF is synced. The AOF counts
/// bytes, the stream its own offsets: a command applied up to stream
/// offset `o` is in the AOF before the AOF's appended position is next
/// read, so once the AOF is synced to that position, `o` is. A
/// checkpoint (one position and its offset) carries that over while
/// writes keep the AOF ahead of its last fsync.
#[derive(Default)]
struct AofAck {
    checkpoint: Option<(u64, u64)>,
    synced: u64,
}

impl AofAck {
    /// The synced offset, given that the stream is applied to `applied`
    /// (read before calling); None while the AOF is off.
    fn update(&mut self, aof: &crate::aof::Aof, applied: u64) -> Option<u64> {
        if !aof.enabled() {
            *self = AofAck::default();
            return None;
        }
        let (appended, synced) = (aof.appended(), aof.synced());
        if synced >= appended {
            self.synced = self.synced.max(applied);
            self.checkpoint = None;
        } else {
            if let Some((at, offset)) = self.checkpoint {
                if synced >= at {
                    self.synced = self.synced.max(offset);
                    self.checkpoint = None;
                }
            }
            self.checkpoint.get_or_insert((appended, applied));
        }
        Some(self.synced)
    }
}

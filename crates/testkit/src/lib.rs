//! larder-testkit: real servers for tests, never mocks.
//!
//! - [`spawn_server`] runs Larder in-process on 127.0.0.1:0, on its own
//!   runtime thread, and stops it on drop. Tests talk to it through the
//!   `redis` crate in RESP2 or RESP3, or through [`RawConn`] for bytes.
//! - [`RedisServer::start`] runs a real redis-server on a free port, for
//!   differential tests. Without one installed it returns None, unless
//!   `LARDER_REQUIRE_REDIS=1` (set by CI), where that is a failure.
//! - [`diff`] sends the same commands to both and compares the replies.
//! - [`PgServer::start`] runs a throwaway PostgreSQL cluster on a free port
//!   for the cache tests (`LARDER_REQUIRE_POSTGRES=1` makes its absence a
//!   failure).
//! - [`Browser::start`] drives a headless Chromium for the demo's
//!   dashboard test (`LARDER_REQUIRE_BROWSER=1` likewise).

mod browser;
pub mod diff;
mod pki;
pub use pki::TestPki;

pub use browser::Browser;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use larder_protocol::{decode, encode, Frame, Proto};
use larder_server::{Config, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Larder running in this process. Dropping it shuts the server down.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shared: Arc<larder_server::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The directory made for it, if the test named none. Fields drop after
    /// `Drop::drop` has joined the server's thread, so it goes only once
    /// nothing writes there.
    _scratch: Option<PrivateDir>,
}

/// A TCP port nobody listens on at the moment of asking (for settings such
/// as `tls-port` that name one; another process may take it meanwhile).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Starts Larder with default settings on a free port.
pub fn spawn_server() -> TestServer {
    spawn_server_with(Config::default())
}

/// Starts Larder with `config` (its port and bind are ignored).
pub fn spawn_server_with(config: Config) -> TestServer {
    spawn_server_with_clock(config, Arc::new(larder_store::SystemClock))
}

/// Starts Larder reading time from `clock`, so expiry tests never sleep.
pub fn spawn_server_with_clock(mut config: Config, clock: Arc<dyn larder_store::Clock>) -> TestServer {
    let mut scratch = None;
    if config.dir == "." {
        // A SAVE (a fuzz test may send one) must not litter the crate.
        let dir = private_dir("server");
        config.dir = dir.to_string_lossy().into_owned();
        scratch = Some(dir);
    }
    // As Redis's own test suite runs it: DEBUG, MODULE and CONFIG SET dir
    // allowed (Redis 7's defaults refuse them), unless the test says.
    for option in ["enable-debug-command", "enable-module-command", "enable-protected-configs"] {
        if !config.extras.contains_key(option) {
            config.set(option, "yes", true).expect("a known option");
        }
    }
    let std_listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("local addr");
    // As the binary does for `--port 0`: CONFIG GET port names the port.
    config.port = addr.port();
    let config_workers = config.io_threads as usize;
    let server = Server::with_clock(config, clock);
    let shared = server.shared().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        // Two workers unless the test asks (`io_threads`) for another
        // count: the binary's default is machine-dependent, tests are not.
        let workers = if config_workers == 0 { 2 } else { config_workers };
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers).thread_stack_size(larder_server::WORKER_STACK_BYTES).enable_all();
        // As the binary: requests from different connections in arrival order.
        #[cfg(tokio_unstable)]
        builder.disable_lifo_slot();
        let rt = builder.build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
            let _ = server
                .run(vec![listener], async {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    // The listener is bound before the thread starts, so connects succeed
    // at once; this only waits for the accept loop to be scheduled.
    let probe = wait_ready(addr, || false);
    // The readiness connection counts as a client until the server reads
    // its close. A test that counts clients (maxclients 2 refused its
    // second one on a busy machine) must not find it. (Not "no client at
    // all": a replica's link to its primary is one.)
    if let Some(probe) = probe {
        eventually(10, || {
            match shared.clients.all().iter().any(|c| c.addr == larder_server::conn::client::Peer::Tcp(probe)) {
                false => Ok(()),
                true => Err("the readiness connection is still open".to_string()),
            }
        });
    }
    TestServer { addr, shared, stop: Some(stop), thread: Some(thread), _scratch: scratch }
}

/// A fresh directory under the system's temp dir, unique to this process,
/// removed with everything in it when this drops (a run of the suite left
/// some 130 of them behind before).
pub struct PrivateDir(std::path::PathBuf);

impl std::ops::Deref for PrivateDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A [`PrivateDir`] named after `what`.
pub fn private_dir(what: &str) -> PrivateDir {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("larder-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    PrivateDir(dir)
}

/// Polls `check` every 10 ms until it returns `Ok`, and panics with its
/// last `Err` once `secs` seconds have passed: for state a server reaches
/// in its own time (a replica's link, the expiry cycle, a freed buffer).
/// Tests wait on the state itself, never on a fixed sleep.
pub fn eventually<T>(secs: u64, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(v) => return v,
            Err(why) if Instant::now() >= deadline => panic!("still not so after {secs} s: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A read that a signal interrupted is tried again. A socket with a read
/// timeout is not restarted after a signal handler runs (signal(7)), and
/// the test process has handlers: an in-process server's, and tokio's
/// SIGCHLD one once a test spawns a child through it.
pub(crate) fn read_some(stream: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Waits until the server at `addr` answers PING: the address the
/// answering connection came from (the server's name for that client),
/// or None if `exited` says its process is gone first (it lost its port).
fn wait_ready(addr: SocketAddr, mut exited: impl FnMut() -> bool) -> Option<SocketAddr> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut c) = RawConn::connect(addr) {
            if c.call(&["PING"]).is_ok() {
                return Some(c.stream.local_addr().unwrap_or(addr));
            }
        }
        if exited() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("server at {addr} did not answer PING");
}

impl TestServer {
    pub fn url(&self, proto: Proto) -> String {
        let p = if proto == Proto::Resp3 { "?protocol=resp3" } else { "" };
        format!("redis://{}/{}", self.addr, p)
    }

    /// A `redis` crate client speaking `proto`.
    pub fn client(&self, proto: Proto) -> redis::Client {
        redis::Client::open(self.url(proto)).expect("client")
    }

    /// A blocking `redis` connection speaking `proto`.
    pub fn conn(&self, proto: Proto) -> redis::Connection {
        self.client(proto).get_connection().expect("connect")
    }

    pub fn raw(&self) -> RawConn {
        RawConn::connect(self.addr).expect("raw connect")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A plain TCP connection that sends RESP and reads frames, for tests that
/// need exact bytes: malformed input, pipelining, differential replies.
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
    pub proto: Proto,
}

impl RawConn {
    pub fn connect(addr: SocketAddr) -> Result<RawConn> {
        let stream = TcpStream::connect(addr)?;
        // A reply that never comes fails the test instead of hanging it.
        // 30 s: PFSELFTEST alone takes 9 s in a debug build on a loaded
        // two-core machine.
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(RawConn { stream, buf: BytesMut::new(), proto: Proto::Resp2 })
    }

    /// This end's address (the server sees it as the peer).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("a connected socket has an address")
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Encodes `args` as a multibulk command and sends it.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        let frame = Frame::Array(args.iter().map(|a| Frame::bulk(a.as_ref())).collect());
        let mut out = BytesMut::new();
        encode(&frame, Proto::Resp2, &mut out);
        self.send_raw(&out)
    }

    /// Reads one reply frame.
    pub fn read_frame(&mut self) -> Result<Frame> {
        loop {
            if let Some((frame, n)) = decode(&self.buf)? {
                let _ = self.buf.split_to(n);
                return Ok(frame);
            }
            let mut chunk = [0u8; 16384];
            let n = read_some(&mut self.stream, &mut chunk).context("read reply")?;
            if n == 0 {
                bail!("connection closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads a full sync's image: `$<len>\r\n` and then `len` bytes with
    /// no CRLF after them (how a primary sends the RDB after SYNC).
    pub fn read_sync_payload(&mut self) -> Result<Vec<u8>> {
        let mut chunk = [0u8; 16384];
        let header_end = loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                break p;
            }
            let n = read_some(&mut self.stream, &mut chunk).context("read sync header")?;
            if n == 0 {
                bail!("connection closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let header = self.buf.split_to(header_end + 2);
        let len: usize = std::str::from_utf8(&header[1..header_end])?.parse().context("sync payload length")?;
        if header[0] != b'$' {
            bail!("expected a bulk header, got {:?}", String::from_utf8_lossy(&header));
        }
        while self.buf.len() < len {
            let n = read_some(&mut self.stream, &mut chunk).context("read sync payload")?;
            if n == 0 {
                bail!("connection closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(self.buf.split_to(len).to_vec())
    }

    /// Reads until the server closes the connection; returns what arrived.
    pub fn read_to_close(&mut self) -> Result<Vec<u8>> {
        let mut rest = self.buf.split().to_vec();
        self.stream.read_to_end(&mut rest)?;
        Ok(rest)
    }

    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame> {
        self.send(args)?;
        self.read_frame()
    }
}

/// A real redis-server on a free port, killed on drop.
pub struct RedisServer {
    pub addr: SocketAddr,
    child: Child,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl RedisServer {
    /// Starts redis-server, or returns None when it is not installed (and
    /// `LARDER_REQUIRE_REDIS` is not set).
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// Starts redis-server with extra arguments.
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        RedisServer::start_with_ports(|_| extra.iter().map(|s| s.to_string()).collect())
    }

    /// Starts redis-server with extra arguments that may name a second
    /// free port (`extra(port)`, e.g. a cluster bus port). Both ports are
    /// held while they are picked, so they differ; a start that loses its
    /// port to another process in the moment before redis binds it is
    /// retried on new ones.
    pub fn start_with_ports(extra: impl Fn(u16) -> Vec<String>) -> Option<RedisServer> {
        let found = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok();
        if !found {
            if std::env::var("LARDER_REQUIRE_REDIS").is_ok_and(|v| v == "1") {
                panic!("LARDER_REQUIRE_REDIS=1 but redis-server is not installed");
            }
            eprintln!("redis-server not found: skipping differential test");
            return None;
        }
        for _ in 0..5 {
            let (a, b) = (TcpListener::bind("127.0.0.1:0").ok()?, TcpListener::bind("127.0.0.1:0").ok()?);
            let (port, spare) = (a.local_addr().ok()?.port(), b.local_addr().ok()?.port());
            drop((a, b));
            let dir = std::env::temp_dir().join(format!("larder-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--enable-debug-command", "yes"])
                .args(extra(spare))
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let mut server = RedisServer { addr, child, _dir: TempDir(dir) };
            let child = &mut server.child;
            if wait_ready(addr, || child.try_wait().ok().flatten().is_some()).is_some() && server.is_the_one_listening()
            {
                return Some(server);
            }
        }
        panic!("redis-server did not start on five pairs of free ports");
    }

    pub fn raw(&self) -> RawConn {
        RawConn::connect(self.addr).expect("raw connect to redis-server")
    }

    /// Whether the server answering on its port is this child: a port
    /// picked free can be taken (by a Larder test server binding port 0)
    /// before redis-server binds it, and redis-server then exits while
    /// the other answers its PING.
    fn is_the_one_listening(&self) -> bool {
        let Ok(mut c) = RawConn::connect(self.addr) else { return false };
        let Ok(Frame::Bulk(info)) = c.call(&["INFO", "server"]) else { return false };
        let pid = format!("process_id:{}\r\n", self.child.id());
        String::from_utf8_lossy(&info).contains(&pid)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Redis Cluster of `n` primaries (redis-server in cluster mode,
/// slots assigned by `redis-cli --cluster create`), killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the cluster and waits until every node reports
    /// `cluster_state:ok`; None when redis-server is not installed (and
    /// `LARDER_REQUIRE_REDIS` is not set).
    pub fn start(n: usize) -> Option<RedisCluster> {
        let mut nodes = Vec::new();
        for _ in 0..n {
            // The cluster bus gets its own free port: the default
            // (port + 10000) may be taken or past 65535.
            nodes.push(RedisServer::start_with_ports(|bus| {
                ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", &bus.to_string()]
                    .map(String::from)
                    .to_vec()
            })?);
        }
        let addrs: Vec<String> = nodes.iter().map(|s| s.addr.to_string()).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run redis-cli --cluster create");
        assert!(created.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &nodes {
            loop {
                let state = node.raw().call(&["CLUSTER", "INFO"]).ok();
                let ok = matches!(&state, Some(Frame::Bulk(b)) | Some(Frame::Verbatim { text: b, .. })
                    if String::from_utf8_lossy(b).contains("cluster_state:ok"));
                if ok {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster at {} never reached state ok", node.addr);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(RedisCluster { nodes })
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("redis://{}/", n.addr)).collect()
    }
}

/// For examples: the server URL given as the first argument, or an
/// in-process Larder (returned, so it lives as long as the caller keeps it).
pub fn url_from_args_or_embedded() -> (Option<TestServer>, String) {
    match std::env::args().nth(1) {
        Some(url) => (None, url),
        None => {
            let server = spawn_server();
            let url = format!("redis://{}/", server.addr);
            (Some(server), url)
        }
    }
}

/// A throwaway PostgreSQL cluster on a free port, from the locally
/// installed binaries; stopped and deleted on drop. As root it runs the
/// server as the `postgres` user (initdb refuses root).
pub struct PgServer {
    pub port: u16,
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    as_postgres: bool,
}

impl PgServer {
    fn bin_dir() -> Option<std::path::PathBuf> {
        let mut candidates: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
            .unwrap_or_default();
        candidates.sort();
        candidates.into_iter().rev().find(|p| p.join("initdb").exists())
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Starts one, or returns None when PostgreSQL is not installed (and
    /// `LARDER_REQUIRE_POSTGRES` is not set).
    pub fn start() -> Option<PgServer> {
        let Some(bin) = Self::bin_dir() else {
            if std::env::var("LARDER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("LARDER_REQUIRE_POSTGRES=1 but PostgreSQL is not installed");
            }
            eprintln!("PostgreSQL not found: skipping");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let dir = std::env::temp_dir().join(format!("larder-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let as_postgres = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if as_postgres {
            let status = Command::new("chown").arg("postgres").arg(&dir).status().expect("chown");
            assert!(status.success(), "chown the PostgreSQL data directory");
        }
        let pg = PgServer { port, dir, bin, as_postgres };
        let data = pg.dir.join("data");
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let out = pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.join("log"))
            .arg("-o")
            .arg(format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", pg.dir.display()))
            .args(["-w", "start"])
            .output()
            .expect("run pg_ctl");
        assert!(out.status.success(), "pg_ctl start failed: {}", String::from_utf8_lossy(&out.stderr));
        Some(pg)
    }

    /// A connection string for the `postgres` database.
    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::eventually;

    #[test]
    fn eventually_returns_what_the_check_found_once_it_holds() {
        let mut tries = 0;
        let got = eventually(5, || {
            tries += 1;
            if tries == 3 {
                Ok(tries * 10)
            } else {
                Err(format!("try {tries}"))
            }
        });
        assert_eq!(got, 30);
    }

    #[test]
    #[should_panic(expected = "still not so after 0 s: never")]
    fn eventually_fails_with_the_last_reason() {
        eventually(0, || Err::<(), _>("never".to_string()));
    }
}

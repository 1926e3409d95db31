//! Integration tests: Larder in-process on port 0, driven through the
//! `redis` crate in RESP2 and RESP3, or through raw bytes.

mod acl;
mod aof;
mod binary;
mod blocking;
mod collections;
mod connection;
mod effects;
mod expire;
mod fuzz;
mod keyspace;
mod memory;
mod persistence;
mod protocol;
mod pubsub;
mod replication;
mod scripting;
mod server;
mod string;
mod suite_findings;
mod tls;
mod tools;
mod tracking;
mod transactions;

use larder_protocol::Proto;
use larder_testkit::{spawn_server, TestServer};

/// Runs `f` once per protocol, each on a fresh server.
pub fn each_proto(f: impl Fn(&TestServer, &mut redis::Connection, Proto)) {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let server = spawn_server();
        let mut con = server.conn(proto);
        f(&server, &mut con, proto);
    }
}

/// A fresh Larder and, where one is installed, a fresh redis-server, for
/// the same steps against both: keep it alive while the connections
/// [`Both::conns`] gives are used.
pub struct Both {
    pub larder: TestServer,
    pub redis: Option<larder_testkit::RedisServer>,
}

impl Both {
    pub fn start() -> Both {
        Both { larder: spawn_server(), redis: larder_testkit::RedisServer::start() }
    }

    /// A connection to each server, named for assertion messages; Larder's
    /// first.
    pub fn conns(&self) -> Vec<(&'static str, larder_testkit::RawConn)> {
        let mut conns = vec![("larder", self.larder.raw())];
        if let Some(r) = &self.redis {
            conns.push(("redis", r.raw()));
        }
        conns
    }
}

pub fn cmd(name: &str) -> redis::Cmd {
    redis::cmd(name)
}

/// Waits (up to 20 s) until INFO `section`'s `name` reads `want`.
pub fn wait_info_field(conn: &mut larder_testkit::RawConn, section: &str, name: &str, want: &str) {
    larder_testkit::eventually(20, || {
        let got = info_field(conn, section, name);
        (got == want).then_some(()).ok_or(format!("{name} is {got}, not {want}"))
    })
}

/// `name`'s value in INFO `section`, through a raw connection.
pub fn info_field(conn: &mut larder_testkit::RawConn, section: &str, name: &str) -> String {
    let info = match conn.call(&["INFO", section]).unwrap() {
        larder_protocol::Frame::Bulk(b) | larder_protocol::Frame::Verbatim { text: b, .. } => {
            String::from_utf8_lossy(&b).into_owned()
        }
        other => panic!("INFO is a bulk string, not {other:?}"),
    };
    let prefix = format!("{name}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in INFO {section}: {info}"))
        .trim()
        .to_string()
}

/// The larder-server binary, running; killed and reaped on drop (tests
/// that need a process of their own: signals, process-wide memory),
/// with the directory made for it, if any.
pub struct Proc(pub std::process::Child, Option<larder_testkit::PrivateDir>);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        // Its directory goes once the process is gone.
        drop(self.1.take());
    }
}

/// Starts the binary with `args` and returns it with the port from its
/// ready line, and its log (standard output, as Redis's with no
/// `logfile`).
pub fn start_binary(args: &[&str]) -> (Proc, u16, std::io::BufReader<std::process::ChildStdout>) {
    use std::io::BufRead;
    // Its own directory unless the test names one: no stray dump.rdb is
    // loaded at start, and a SAVE writes nowhere shared.
    let dir = larder_testkit::private_dir("bin");
    let default_dir = ["--dir", dir.to_str().unwrap()];
    let named = args.contains(&"--dir");
    let extra: &[&str] = if named { &[] } else { &default_dir };
    // DEBUG and CONFIG SET dir allowed, as Redis's test suite runs it,
    // unless the test says otherwise.
    let protected: Vec<&str> = ["--enable-debug-command", "--enable-protected-configs"]
        .into_iter()
        .filter(|o| !args.contains(o))
        .flat_map(|o| [o, "yes"])
        .collect();
    let spawned = std::process::Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .args(args)
        .args(extra)
        .args(&protected)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut proc = Proc(spawned.expect("spawn larder-server"), (!named).then_some(dir));
    let mut log = std::io::BufReader::new(proc.0.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(log.read_line(&mut line).unwrap_or(0) > 0, "larder-server exited before it was ready");
        if let Some(rest) = line.split("Ready to accept connections on ").nth(1) {
            let port = rest.split(' ').next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
            return (proc, port, log);
        }
    }
}

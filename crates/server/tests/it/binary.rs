//! The larder-server binary as a user runs it: config file plus flags,
//! clean exit on signals and SHUTDOWN, a clear error for a bad directive.

use crate::{start_binary as start, Proc};
use larder_protocol::Frame;
use std::process::Command;

fn ping(port: u16) -> String {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    redis::cmd("PING").query(&mut con).unwrap()
}

fn signal(proc: &Proc, sig: &str) {
    let ok = Command::new("kill").args(["-s", sig, &proc.0.id().to_string()]).status().unwrap().success();
    assert!(ok);
}

#[test]
fn config_file_and_flags_then_sigterm() {
    let dir = std::env::temp_dir().join(format!("larder-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("larder.conf");
    std::fs::write(&conf, "# a comment\nport 0\ndatabases 4\nrequirepass \"from file\"\n").unwrap();
    // The flag overrides the file's password.
    let (mut child, port, _err) = start(&[conf.to_str().unwrap(), "--requirepass", "flag"]);
    let mut con = redis::Client::open(format!("redis://:flag@127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let dbs: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("databases").query(&mut con).unwrap();
    assert_eq!(dbs, vec!["databases", "4"]);
    signal(&child, "TERM");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigint_and_shutdown_exit_cleanly() {
    let (mut child, port, _err) = start(&["--port", "0"]);
    assert_eq!(ping(port), "PONG");
    signal(&child, "INT");
    assert!(child.0.wait().unwrap().success());

    let (mut child, port, _err) = start(&["--port", "0"]);
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut con);
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn bad_directive_is_a_clear_startup_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .args(["--port", "0", "--no-such-thing", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FATAL CONFIG FILE ERROR") && err.contains("Bad directive"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_larder-server")).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("redis-server's arguments"));
}

fn config_get(con: &mut redis::Connection, name: &str) -> String {
    let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(con).unwrap();
    pair[1].clone()
}

/// CONFIG REWRITE writes the running configuration into the file the
/// server started from: its comments stay, the next start reads the new
/// values back, and redis-server reads the same file to the same values.
/// Without a file it is refused as Redis refuses it.
#[test]
fn config_rewrite_writes_the_file_the_server_started_from() {
    let dir = larder_testkit::private_dir("rewrite");
    let conf = dir.join("larder.conf");
    std::fs::write(&conf, "# kept\nmaxmemory 100mb\nmaxmemory 200mb\nhash-max-ziplist-entries 64\nsave 900 1\n")
        .unwrap();
    let (path, dir_arg) = (conf.to_str().unwrap(), dir.to_str().unwrap());
    let set = [
        ("maxmemory", "1000000"),
        ("hash-max-listpack-entries", "100"),
        ("save", "3600 1 300 100"),
        ("masterauth", "a b\"c"),
        ("notify-keyspace-events", "KEA"),
        ("client-output-buffer-limit", "pubsub 1048576 2097152 60"),
    ];
    let mut want = Vec::new();
    {
        // A directory that outlives the server: the file will name it.
        let (_child, port, _err) = start(&[path, "--port", "0", "--dir", dir_arg]);
        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let info: String = redis::cmd("INFO").arg("server").query(&mut con).unwrap();
        assert!(info.contains(&format!("config_file:{path}\r\n")), "{info}");
        for (name, value) in set {
            let _: () = redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query(&mut con).unwrap();
            want.push((name, config_get(&mut con, name)));
        }
        let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
    }
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.starts_with("# kept\nmaxmemory 1000000\n\nhash-max-listpack-entries 100\nsave 3600 1\n"), "{text}");
    let (_child, port, _err) = start(&[path, "--port", "0", "--dir", dir_arg]);
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    for (name, value) in &want {
        assert_eq!(&config_get(&mut con, name), value, "{name} after a restart");
    }
    // The same file, as redis-server reads it (its port and directory
    // given as flags after it).
    if Command::new("redis-server").arg("--version").output().is_ok() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let redis = Command::new("redis-server")
            .args([path, "--port", &port.to_string(), "--dir", dir_arg])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let redis = Proc(redis, None);
        let url = format!("redis://127.0.0.1:{port}/");
        let mut rcon = (0..200)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(25));
                redis::Client::open(url.as_str()).unwrap().get_connection().ok()
            })
            .expect("redis-server starts on the rewritten file");
        for (name, value) in &want {
            assert_eq!(&config_get(&mut rcon, name), value, "{name} in redis-server");
        }
        drop(redis);
    }
    // No file, no rewrite.
    let (_child, port, _err) = start(&["--port", "0"]);
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let err = redis::cmd("CONFIG").arg("REWRITE").query::<()>(&mut con).unwrap_err();
    assert_eq!(err.detail(), Some("The server is running without a config file"), "{err}");
}

/// The redis.conf a distribution installs with redis-server starts Larder
/// (every directive in it is one Larder knows), with only what a test
/// must change overridden on the command line.
#[test]
fn the_stock_redis_conf_starts_larder() {
    let stock = std::path::Path::new("/etc/redis/redis.conf");
    if !stock.exists() {
        assert!(std::env::var("LARDER_REQUIRE_REDIS").map_or(true, |v| v != "1"), "no /etc/redis/redis.conf");
        return;
    }
    let dir = larder_testkit::private_dir("stock-conf");
    let pid = dir.join("larder.pid");
    let (mut child, port, _err) = start(&[
        stock.to_str().unwrap(),
        "--port",
        "0",
        "--dir",
        dir.to_str().unwrap(),
        "--pidfile",
        pid.to_str().unwrap(),
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]);
    assert_eq!(ping(port), "PONG");
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let stale: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("stop-writes-on-bgsave-error").query(&mut con).unwrap();
    assert_eq!(stale, ["stop-writes-on-bgsave-error", "yes"]);
    // pidfile: this process's id, gone after a clean exit.
    let written = std::fs::read_to_string(&pid).unwrap();
    assert_eq!(written.trim(), child.0.id().to_string());
    // disable-thp yes (the file's): the kernel says so for this process.
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id())).unwrap();
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert!(line.ends_with('0'), "{line}");
    }
    // jemalloc-bg-thread yes (the file's): jemalloc's purging thread runs
    // (jemalloc starts it when it gets round to it: wait a little).
    let threads = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", child.0.id()))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .collect()
    };
    larder_testkit::eventually(20, || {
        let names = threads();
        if names.iter().any(|t| t.starts_with("jemalloc_bg_thd")) {
            return Ok(());
        }
        let _ = ping(port);
        Err(format!("no jemalloc background thread: {names:?}"))
    });
    signal(&child, "TERM");
    assert!(child.0.wait().unwrap().success());
    assert!(!pid.exists(), "the pid file goes at exit");
}

/// oom-score-adj sets the kernel's OOM score for the server's role, at
/// start-up and at CONFIG SET; shutdown-on-sigterm decides whether SIGTERM
/// saves.
#[test]
fn process_settings_follow_the_config() {
    let dir = larder_testkit::private_dir("process-settings");
    let args = ["--port", "0", "--dir", dir.to_str().unwrap(), "--save", ""];
    let (mut child, port, _err) =
        start(&[&args[..], &["--oom-score-adj", "absolute", "--oom-score-adj-values", "100 200 300"]].concat());
    let score = || std::fs::read_to_string(format!("/proc/{}/oom_score_adj", child.0.id())).unwrap().trim().to_string();
    assert_eq!(score(), "100");
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("oom-score-adj-values").arg("150 200 300").query(&mut con).unwrap();
    assert_eq!(score(), "150");
    // As a replica, the second value.
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg("1").query(&mut con).unwrap();
    assert_eq!(score(), "200");
    // No save points, but shutdown-on-sigterm save: SIGTERM saves.
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut con).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("shutdown-on-sigterm").arg("save").query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    signal(&child, "TERM");
    assert!(child.0.wait().unwrap().success());
    assert!(dir.join("dump.rdb").exists(), "SIGTERM saved");
    // With save points, shutdown-on-sigint nosave: SIGINT does not.
    std::fs::remove_file(dir.join("dump.rdb")).unwrap();
    let (mut child, port, _err) =
        start(&["--port", "0", "--dir", dir.to_str().unwrap(), "--save", "3600 1", "--shutdown-on-sigint", "nosave"]);
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    signal(&child, "INT");
    assert!(child.0.wait().unwrap().success());
    assert!(!dir.join("dump.rdb").exists(), "SIGINT did not save");
}

/// supervised systemd: READY=1 reaches the socket NOTIFY_SOCKET names.
#[test]
fn supervised_systemd_reports_ready() {
    let dir = larder_testkit::private_dir("notify");
    let sock_path = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .args(["--port", "0", "--dir", dir.to_str().unwrap(), "--supervised", "systemd"])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let got = sock.recv(&mut buf);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(&buf[..got.unwrap()], b"READY=1\n");
}

/// ACL users survive a restart: `user` lines in the config file are
/// loaded at start, CONFIG REWRITE writes the users as they are then
/// (ACL SETUSER's included), and `aclfile` is loaded at start; a file
/// with errors, or users in both places, stops the start with Redis's
/// reasons.
#[test]
fn acl_users_survive_a_restart() {
    let dir = larder_testkit::private_dir("acl-restart");
    let conf = dir.join("larder.conf");
    std::fs::write(&conf, "port 0\nuser alice on >pw ~a* +@string\n").unwrap();
    let d = dir.to_str().unwrap();
    let auth = |port: u16, user: &str, pass: &str| -> redis::RedisResult<String> {
        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection()?;
        redis::cmd("AUTH").arg(user).arg(pass).query(&mut con)
    };
    {
        let (_child, port, _err) = start(&[conf.to_str().unwrap(), "--dir", d]);
        assert_eq!(auth(port, "alice", "pw").unwrap(), "OK");
        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let _: () =
            redis::cmd("ACL").arg("SETUSER").arg("bob").arg("on").arg(">pw2").arg("+ping").query(&mut con).unwrap();
        let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
    }
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.lines().filter(|l| l.starts_with("user ")).count() == 3, "{text}");
    {
        let (_child, port, _err) = start(&[conf.to_str().unwrap(), "--dir", d]);
        assert_eq!(auth(port, "alice", "pw").unwrap(), "OK");
        assert_eq!(auth(port, "bob", "pw2").unwrap(), "OK");
        assert!(auth(port, "bob", "wrong").is_err());
    }
    // An ACL file, loaded at start.
    let acl = dir.join("users.acl");
    std::fs::write(&acl, "user carol on >pw3 +@all ~*\n").unwrap();
    let (_child, port, _err) = start(&["--port", "0", "--dir", d, "--aclfile", acl.to_str().unwrap()]);
    assert_eq!(auth(port, "carol", "pw3").unwrap(), "OK");
    // Errors stop the start.
    let fails = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_larder-server")).args(args).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    std::fs::write(&acl, "user carol on +nosuch\n").unwrap();
    let err = fails(&["--port", "0", "--dir", d, "--aclfile", acl.to_str().unwrap()]);
    assert!(err.contains("Aborting Redis startup because of ACL errors") && err.contains("'+nosuch'"), "{err}");
    let err = fails(&[conf.to_str().unwrap(), "--dir", d, "--aclfile", acl.to_str().unwrap()]);
    assert!(err.contains("either an ACL file or declare users directly"), "{err}");
}

/// A server that detached from the test (`daemonize yes`): killed by pid
/// on drop, should the test fail before it shuts it down.
struct Daemon(String);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.0]).status();
    }
}

/// `daemonize yes`: the command returns at once and the server runs on
/// in a session of its own, its pid in the pid file. `logfile`: lines
/// land in the file, and after the file is moved away (logrotate) the
/// next line starts it afresh. `CONFIG SET loglevel` takes effect at
/// once. A log file that cannot be opened stops the start.
#[test]
fn daemonize_and_logfile_as_redis_does() {
    let dir = larder_testkit::private_dir("daemon");
    let (log, pid) = (dir.join("larder.log"), dir.join("larder.pid"));
    let [d, l, p] = [dir.to_path_buf(), log.clone(), pid.clone()].map(|x| x.to_str().unwrap().to_string());
    let args = ["--port", "0", "--dir", &d, "--save", "", "--daemonize", "yes", "--logfile", &l, "--pidfile", &p];
    // Reaped (and, if it never returned, killed) as a `Proc`.
    let mut started = Proc(Command::new(env!("CARGO_BIN_EXE_larder-server")).args(args).spawn().unwrap(), None);
    let status =
        larder_testkit::eventually(20, || started.0.try_wait().unwrap().ok_or("still in the foreground".to_string()));
    assert!(status.success(), "{status:?}");
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    let port: u16 = larder_testkit::eventually(20, || {
        let text = read(&log);
        let rest = text.split("Ready to accept connections on ").nth(1).ok_or(format!("no ready line: {text}"))?;
        Ok(rest.split(' ').next().unwrap().rsplit(':').next().unwrap().parse().unwrap())
    });
    let daemon = Daemon(read(&pid).trim().to_string());
    assert!(!daemon.0.is_empty(), "no pid file");
    // Field 6 of /proc/<pid>/stat is the session: the server leads its own.
    let stat = read(std::path::Path::new(&format!("/proc/{}/stat", daemon.0)));
    let after_name = stat.rsplit(')').next().unwrap();
    assert_eq!(after_name.split_whitespace().nth(3), Some(daemon.0.as_str()), "{stat}");

    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let mut run = |args: &[&str]| -> String {
        let mut c = redis::cmd(args[0]);
        c.arg(&args[1..]);
        c.query(&mut con).unwrap()
    };
    let saved = |text: String| text.matches("DB saved on disk").count();
    run(&["CONFIG", "SET", "loglevel", "warning"]);
    run(&["SAVE"]);
    assert_eq!(saved(read(&log)), 0, "an info line at loglevel warning");
    run(&["CONFIG", "SET", "loglevel", "notice"]);
    run(&["SAVE"]);
    assert_eq!(saved(read(&log)), 1);
    let rotated = dir.join("larder.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    run(&["SAVE"]);
    assert_eq!((saved(read(&rotated)), saved(read(&log))), (1, 1), "the next line starts a new file");
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut con);
    larder_testkit::eventually(10, || match pid.exists() {
        false => Ok(()),
        true => Err("the pid file is still there".to_string()),
    });
    assert!(read(&log).contains("User requested shutdown"));
    drop(daemon);

    let out = Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .args(["--port", "0", "--dir", &d, "--logfile", &format!("{d}/no/such/dir/x.log")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("Can't open the log file: "), "{err}");
}

/// A fatal signal leaves Redis's bug report in the log: the signal, the
/// thread and a symbolized stack. The exit status stays the signal's, and
/// `crash-log-enabled no` leaves the report out.
#[test]
fn a_crash_writes_a_report_to_the_log() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let crash = |enabled: bool| -> (std::process::ExitStatus, String) {
        let (mut child, port, mut log) = start(&["--port", "0"]);
        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        if !enabled {
            let _: () = redis::cmd("CONFIG").arg("SET").arg("crash-log-enabled").arg("no").query(&mut con).unwrap();
        }
        let _: () = redis::cmd("DEBUG").arg("LOG").arg("before the crash").query(&mut con).unwrap();
        // A script past busy-reply-threshold is logged as slow, as in Redis.
        let _: () = redis::cmd("CONFIG").arg("SET").arg("busy-reply-threshold").arg("20").query(&mut con).unwrap();
        let slow = "local s = redis.call('TIME') repeat local t = redis.call('TIME') \
                    until (t[1] - s[1]) * 1000000 + (t[2] - s[2]) > 100000 return 1";
        let _: i64 = redis::cmd("EVAL").arg(slow).arg(0).query(&mut con).unwrap();
        let reply: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SEGFAULT").query(&mut con);
        assert!(reply.is_err(), "the connection closes with the process");
        let status = child.0.wait().unwrap();
        let mut text = String::new();
        log.read_to_string(&mut text).unwrap();
        (status, text)
    };
    let (status, text) = crash(true);
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
    for part in [
        "DEBUG LOG: before the crash",
        "Slow script detected: still in execution after ",
        "You can try killing the script using the SCRIPT KILL command. Script name is: f_",
        "=== LARDER BUG REPORT START",
        "crashed by signal: 11 (SIGSEGV), si_code: 2",
        "Accessing address: 0x",
        "Crashed running thread 'tokio-rt-worker'",
        "------ STACK TRACE ------",
        "larder_server::crash::segfault",
        "src/cmd/server.rs",
        "=== LARDER BUG REPORT END",
    ] {
        assert!(text.contains(part), "no {part:?} in {text}");
    }
    let (status, text) = crash(false);
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
    assert!(!text.contains("BUG REPORT"), "{text}");

    // Sent from outside: no faulting address, the main thread's report.
    let (mut child, _port, mut log) = start(&["--port", "0"]);
    signal(&child, "ABRT");
    assert_eq!(child.0.wait().unwrap().signal(), Some(libc::SIGABRT));
    let mut text = String::new();
    log.read_to_string(&mut text).unwrap();
    assert!(text.contains("crashed by signal: 6 (SIGABRT)") && text.contains("STACK TRACE"), "{text}");
    assert!(!text.contains("Accessing address"), "{text}");
}

/// The start-up load runs while clients are served, as Redis's does: a
/// command without Redis's `loading` flag gets LOADING, INFO shows the
/// load's progress, the ready line comes once it is done, and a SHUTDOWN
/// during it leaves the file as it was instead of saving half of it.
#[test]
fn clients_are_answered_while_the_dataset_loads() {
    let dir = larder_testkit::private_dir("loading");
    let d = dir.to_str().unwrap();
    let (child, port, _log) = start(&["--port", "0", "--dir", d]);
    let mut c = larder_testkit::RawConn::connect(([127, 0, 0, 1], port).into()).unwrap();
    c.call(&["DEBUG", "POPULATE", "1000", "key", "100"]).unwrap();
    c.call(&["SAVE"]).unwrap();
    drop(child);
    let file = dir.join("dump.rdb");
    let saved = std::fs::read(&file).unwrap();

    // 1000 keys, 3 ms each: three seconds of loading.
    let restart = |extra: &[&str]| {
        let port = larder_testkit::free_port();
        let args = ["--port", &port.to_string(), "--dir", d, "--key-load-delay", "3000"].map(String::from);
        let child = Command::new(env!("CARGO_BIN_EXE_larder-server"))
            .args(args.iter().chain(extra.iter().map(|s| s.to_string()).collect::<Vec<_>>().iter()))
            .args(["--enable-debug-command", "yes"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let conn = larder_testkit::eventually(20, || {
            larder_testkit::RawConn::connect(([127, 0, 0, 1], port).into()).map_err(|e| e.to_string())
        });
        (Proc(child, None), conn)
    };
    let info = |c: &mut larder_testkit::RawConn, field: &str| -> String {
        let text = match c.call(&["INFO", "persistence"]).unwrap() {
            Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        };
        let line = text.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap_or_default();
        line.split_once(':').map(|(_, v)| v.to_string()).unwrap_or_default()
    };
    let (mut child, mut c) = restart(&[]);
    assert_eq!(c.call(&["PING"]).unwrap(), Frame::Error("LOADING Redis is loading the dataset in memory".into()));
    assert_eq!(
        c.call(&["GET", "key:1"]).unwrap(),
        Frame::Error("LOADING Redis is loading the dataset in memory".into())
    );
    assert_eq!(info(&mut c, "loading"), "1");
    assert_eq!(info(&mut c, "loading_total_bytes"), saved.len().to_string());
    let perc: f64 = info(&mut c, "loading_loaded_perc").parse().unwrap();
    assert!((0.0..100.0).contains(&perc), "{perc}");
    larder_testkit::eventually(20, || match info(&mut c, "loading").as_str() {
        "0" => Ok(()),
        other => Err(format!("loading:{other}")),
    });
    assert_eq!(c.call(&["DBSIZE"]).unwrap(), Frame::Integer(1000));
    assert!(info(&mut c, "loading_total_bytes").is_empty(), "the load's figures go with it");
    let mut out = String::new();
    let _ = c.call(&["SHUTDOWN", "NOSAVE"]);
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.contains("Ready to accept connections"), "{out}");

    // With save points a SHUTDOWN would save; during the load it must not.
    let (mut child, mut c) = restart(&["--save", "3600 1"]);
    assert_eq!(info(&mut c, "loading"), "1");
    let _ = c.call(&["SHUTDOWN"]);
    assert!(child.0.wait().unwrap().success());
    assert_eq!(std::fs::read(&file).unwrap(), saved, "the file is as it was");
}

/// A command from the primary that fails on the replica means their data
/// diverged: the replica says so in Redis's CRITICAL words, and with
/// `propagation-error-behavior panic` a read-only replica stops rather
/// than serve diverged data (a writable one may diverge by design). DEBUG REPLICATE (Redis's) puts a command on the replicas' stream
/// without running it, which is how the divergence is made here.
#[test]
fn a_replica_logs_a_failed_command_from_its_primary_and_can_stop_on_it() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let (_primary, pport, _plog) = start(&["--port", "0"]);
    let (mut replica, rport, mut rlog) = start(&["--port", "0"]);
    let conn = |port: u16| larder_testkit::RawConn::connect(([127, 0, 0, 1], port).into()).unwrap();
    let (mut p, mut r) = (conn(pport), conn(rport));
    r.call(&["REPLICAOF", "127.0.0.1", &pport.to_string()]).unwrap();
    larder_testkit::eventually(20, || match r.call(&["INFO", "replication"]).unwrap() {
        Frame::Bulk(b) if String::from_utf8_lossy(&b).contains("master_link_status:up") => Ok(()),
        other => Err(format!("{other:?}")),
    });
    for cmd in [&["DEBUG", "REPLICATE", "SET", "ghost", "1"][..], &["DEBUG", "REPLICATE", "fake-command-1"]] {
        assert_eq!(p.call(cmd).unwrap(), Frame::ok());
    }
    p.call(&["SET", "real", "1"]).unwrap();
    larder_testkit::eventually(20, || match r.call(&["GET", "real"]).unwrap() {
        Frame::Bulk(_) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    assert_eq!(r.call(&["GET", "ghost"]).unwrap(), Frame::Bulk("1".into()), "run on the replica only");
    assert_eq!(p.call(&["GET", "ghost"]).unwrap(), Frame::Null);
    // A writable replica may diverge by design: it logs and goes on.
    r.call(&["CONFIG", "SET", "propagation-error-behavior", "panic"]).unwrap();
    r.call(&["CONFIG", "SET", "replica-read-only", "no"]).unwrap();
    p.call(&["DEBUG", "REPLICATE", "fake-command-w"]).unwrap();
    p.call(&["SET", "real", "2"]).unwrap();
    larder_testkit::eventually(20, || match r.call(&["GET", "real"]).unwrap() {
        Frame::Bulk(b) if b == "2" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    r.call(&["CONFIG", "SET", "replica-read-only", "yes"]).unwrap();
    p.call(&["DEBUG", "REPLICATE", "fake-command-2"]).unwrap();
    let status = larder_testkit::eventually(20, || replica.0.try_wait().unwrap().ok_or("still running".to_string()));
    assert_eq!(status.signal(), Some(libc::SIGABRT));
    let mut log = String::new();
    rlog.read_to_string(&mut log).unwrap();
    for n in ["1", "w", "2"] {
        let line = format!(
            "== CRITICAL == This replica is sending an error to its master: 'ERR unknown command 'fake-command-{n}'"
        );
        assert!(log.contains(&line), "no {line:?} in {log}");
    }
}

/// Redis's banner comes once the port is bound, before the load: with
/// `always-show-logo yes` it names the port and the pid, which is what
/// Redis's test suite waits for before it connects.
#[test]
fn the_banner_names_the_port_and_pid_before_the_ready_line() {
    use std::io::BufRead;
    let port = larder_testkit::free_port();
    let dir = larder_testkit::private_dir("banner");
    let mut child = Proc(
        Command::new(env!("CARGO_BIN_EXE_larder-server"))
            .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap(), "--always-show-logo", "yes"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        None,
    );
    let out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let lines: Vec<String> =
        out.lines().map(|l| l.unwrap()).take_while(|l| !l.contains("Ready to accept connections")).collect();
    let banner = format!("Port: {port}, PID: {}", child.0.id());
    assert!(lines.iter().any(|l| l.contains(&banner)), "no {banner:?} in {lines:?}");
}

/// A shutdown whose final snapshot fails leaves the server up, as Redis
/// does, rather than exit and lose what it could not save: SHUTDOWN gets
/// Redis's error and a SIGTERM is logged and changes nothing. Once the
/// snapshot can be written the next signal stops it with everything
/// saved; SHUTDOWN FORCE exits whatever happens.
#[test]
fn a_shutdown_that_cannot_save_leaves_the_server_up() {
    use std::os::unix::process::ExitStatusExt;
    let dir = larder_testkit::private_dir("cannot-save");
    let d = dir.to_str().unwrap();
    let (mut child, port, _log) = start(&["--port", "0", "--dir", d, "--save", "3600 1"]);
    let conn = || larder_testkit::RawConn::connect(([127, 0, 0, 1], port).into()).unwrap();
    let mut c = conn();
    c.call(&["SET", "k", "v"]).unwrap();
    // A directory where the snapshot goes: the rename onto it fails.
    let blocker = dir.join("dump.rdb");
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    let refused = conn().call(&["SHUTDOWN"]).unwrap();
    assert_eq!(refused, Frame::Error("ERR Errors trying to SHUTDOWN. Check logs.".into()));
    assert_eq!(c.call(&["GET", "k"]).unwrap(), Frame::Bulk("v".into()));
    // Writes are refused while saving fails (stop-writes-on-bgsave-error),
    // and come back after.
    assert!(matches!(c.call(&["SET", "k2", "v2"]).unwrap(), Frame::Error(e) if e.starts_with(b"MISCONF")));
    signal(&child, "TERM");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(child.0.try_wait().unwrap().is_none(), "still up after SIGTERM");
    assert_eq!(c.call(&["GET", "k"]).unwrap(), Frame::Bulk("v".into()));
    std::fs::remove_dir_all(&blocker).unwrap();
    signal(&child, "TERM");
    assert!(child.0.wait().unwrap().success());

    let (mut child, port, _log) = start(&["--port", "0", "--dir", d, "--save", "3600 1"]);
    let mut c = larder_testkit::RawConn::connect(([127, 0, 0, 1], port).into()).unwrap();
    assert_eq!(c.call(&["GET", "k"]).unwrap(), Frame::Bulk("v".into()), "saved at the second signal");
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    let _ = c.call(&["SHUTDOWN", "FORCE"]);
    let status = child.0.wait().unwrap();
    assert!(status.success() && status.signal().is_none(), "{status:?}");
}

//! Snapshots as a user meets them: SAVE, restart, the data is back; a
//! file Larder wrote loads in redis-server and one redis-server wrote
//! loads in Larder, with the same contents; a corrupt file stops the
//! server with a clear error instead of a partial load.

use crate::{cmd, start_binary};
use redis::Connection;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A fresh directory for one test's files, removed when the test ends.
pub(crate) fn temp_dir(name: &str) -> larder_testkit::PrivateDir {
    larder_testkit::private_dir(&format!("rdb-{name}"))
}

pub(crate) fn connect(port: u16) -> Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    larder_testkit::eventually(5, || {
        let mut c = client.get_connection().map_err(|e| format!("no server on {port}: {e}"))?;
        redis::cmd("PING").query::<String>(&mut c).map_err(|e| format!("no server on {port}: {e}"))?;
        Ok(c)
    })
}

/// Writes one of every kind of value, in compact and large encodings.
pub(crate) fn fill(con: &mut Connection) {
    let _: () = cmd("SET").arg("str").arg("hello").query(con).unwrap();
    let _: () = cmd("SET").arg("int").arg(12345).query(con).unwrap();
    let _: () = cmd("SET").arg("big").arg("x".repeat(5000)).query(con).unwrap();
    let _: () = cmd("SET").arg("ttl").arg("soon").arg("EX").arg(1000).query(con).unwrap();
    let _: () = cmd("HSET").arg("h").arg(&["a", "1", "b", "2"]).query(con).unwrap();
    for i in 0..300 {
        let _: () = cmd("HSET").arg("hbig").arg(format!("f{i}")).arg(i).query(con).unwrap();
        let _: () = cmd("RPUSH").arg("lbig").arg(format!("item{i}")).query(con).unwrap();
        let _: () = cmd("SADD").arg("sbig").arg(format!("m{i}")).query(con).unwrap();
        let _: () = cmd("ZADD").arg("zbig").arg(i as f64 / 3.0).arg(format!("z{i}")).query(con).unwrap();
    }
    let _: () = cmd("RPUSH").arg("l").arg(&["a", "b", "c"]).query(con).unwrap();
    let _: () = cmd("SADD").arg("si").arg(&["1", "2", "3"]).query(con).unwrap();
    let _: () = cmd("SADD").arg("ss").arg(&["x", "y"]).query(con).unwrap();
    let _: () = cmd("ZADD").arg("z").arg(&["1.5", "a", "-2", "b"]).query(con).unwrap();
    // A stream across the node layouts (same and other field names, a
    // seq below the master's), a deletion, and a group with pending
    // entries, consumers, and one consumer with nothing pending.
    for (id, fields) in [
        ("1-1", &["f", "v", "n", "1"][..]),
        ("1-2", &["f", "v", "n", "2"]),
        ("2-0", &["other", "x"]),
        ("2-5", &["f", "w", "n", "3"]),
    ] {
        let _: String = cmd("XADD").arg("st").arg(id).arg(fields).query(con).unwrap();
    }
    for i in 0..150 {
        let _: String = cmd("XADD").arg("st").arg(format!("3-{i}")).arg(&["f", "bulk"]).query(con).unwrap();
    }
    let _: i64 = cmd("XDEL").arg("st").arg("1-2").query(con).unwrap();
    let _: () = cmd("XGROUP").arg(&["CREATE", "st", "g", "0"]).query(con).unwrap();
    let _: redis::Value =
        cmd("XREADGROUP").arg(&["GROUP", "g", "alice", "COUNT", "2", "STREAMS", "st", ">"]).query(con).unwrap();
    let _: redis::Value =
        cmd("XREADGROUP").arg(&["GROUP", "g", "bob", "COUNT", "1", "STREAMS", "st", ">"]).query(con).unwrap();
    let _: i64 = cmd("XGROUP").arg(&["CREATECONSUMER", "st", "g", "idle"]).query(con).unwrap();
    let _: () = cmd("XGROUP").arg(&["CREATE", "st", "late", "$"]).query(con).unwrap();
    let _: () = cmd("SELECT").arg(3).query(con).unwrap();
    let _: () = cmd("SET").arg("in3").arg("db three").query(con).unwrap();
    let _: () = cmd("SELECT").arg(0).query(con).unwrap();
}

/// A stream's entries, metadata, groups and pending entries, in a form
/// that compares across servers (no idle times, no radix-tree figures).
fn stream_contents(con: &mut Connection, k: &str) -> String {
    let entries: redis::Value = cmd("XRANGE").arg(k).arg("-").arg("+").query(con).unwrap();
    let info: Vec<redis::Value> = cmd("XINFO").arg("STREAM").arg(k).query(con).unwrap();
    let pick = |kv: &[redis::Value], names: &[&str]| -> Vec<String> {
        kv.chunks(2)
            .filter(
                |p| matches!(&p[0], redis::Value::BulkString(n) if names.iter().any(|w| w.as_bytes() == n.as_slice())),
            )
            .map(|p| format!("{:?}", p))
            .collect()
    };
    let meta = pick(&info, &["length", "last-generated-id", "max-deleted-entry-id", "entries-added", "groups"]);
    let mut groups = Vec::new();
    let raw: Vec<Vec<redis::Value>> = cmd("XINFO").arg("GROUPS").arg(k).query(con).unwrap();
    for g in raw {
        let fields = pick(&g, &["name", "consumers", "pending", "last-delivered-id", "entries-read", "lag"]);
        let name = match &g[1] {
            redis::Value::BulkString(n) => String::from_utf8_lossy(n).into_owned(),
            other => panic!("{other:?}"),
        };
        let pending: Vec<(String, String, i64, i64)> =
            cmd("XPENDING").arg(k).arg(&name).arg("-").arg("+").arg(100).query(con).unwrap();
        let pending: Vec<(String, String, i64)> = pending.into_iter().map(|(id, c, _, n)| (id, c, n)).collect();
        let mut consumers: Vec<String> = cmd("XINFO")
            .arg("CONSUMERS")
            .arg(k)
            .arg(&name)
            .query::<Vec<Vec<redis::Value>>>(con)
            .unwrap()
            .iter()
            .map(|c| format!("{:?}", pick(c, &["name", "pending"])))
            .collect();
        consumers.sort();
        groups.push(format!("{fields:?} {pending:?} {consumers:?}"));
    }
    groups.sort();
    format!("{entries:?} {meta:?} {groups:?}")
}

/// Everything `fill` wrote, read back in a form that compares.
pub(crate) fn contents(con: &mut Connection) -> Vec<String> {
    let mut out = Vec::new();
    let mut keys: Vec<String> = cmd("KEYS").arg("*").query(con).unwrap();
    keys.sort();
    for k in keys {
        let ty: String = cmd("TYPE").arg(&k).query(con).unwrap();
        let v = match ty.as_str() {
            "string" => cmd("GET").arg(&k).query::<String>(con).unwrap(),
            "hash" => {
                let mut pairs: Vec<(String, String)> = cmd("HGETALL").arg(&k).query(con).unwrap();
                pairs.sort();
                format!("{pairs:?}")
            }
            "list" => format!("{:?}", cmd("LRANGE").arg(&k).arg(0).arg(-1).query::<Vec<String>>(con).unwrap()),
            "set" => {
                let mut m: Vec<String> = cmd("SMEMBERS").arg(&k).query(con).unwrap();
                m.sort();
                format!("{m:?}")
            }
            // Scores as numbers: servers print doubles differently.
            "zset" => format!(
                "{:?}",
                cmd("ZRANGE").arg(&k).arg(0).arg(-1).arg("WITHSCORES").query::<Vec<(String, f64)>>(con).unwrap()
            ),
            "stream" => stream_contents(con, &k),
            other => other.to_string(),
        };
        let ttl: i64 = cmd("TTL").arg(&k).query(con).unwrap();
        out.push(format!("{k} {ty} {v} ttl:{}", ttl > 0));
    }
    let _: () = cmd("SELECT").arg(3).query(con).unwrap();
    out.push(cmd("GET").arg("in3").query::<String>(con).unwrap());
    let _: () = cmd("SELECT").arg(0).query(con).unwrap();
    out
}

fn larder(dir: &Path) -> (crate::Proc, Connection) {
    let (proc, port, mut err) = start_binary(&["--port", "0", "--dir", dir.to_str().unwrap()]);
    // Keep draining its log: a closed pipe would fail its next log line.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (proc, connect(port))
}

pub(crate) struct Redis(pub Child, pub u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// redis-check-rdb's verdict on `dir`/dump.rdb, where the tool is installed.
fn check_rdb(dir: &Path) {
    let Ok(out) = Command::new("redis-check-rdb").arg(dir.join("dump.rdb")).output() else {
        assert!(std::env::var("LARDER_REQUIRE_REDIS").map_or(true, |v| v != "1"), "redis-check-rdb missing");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("RDB looks OK"), "{text}");
}

pub(crate) fn redis(dir: &Path) -> Option<Redis> {
    redis_with(dir, &[])
}

/// A redis-server over `dir` (None if it is not installed and the run
/// does not require it).
pub(crate) fn redis_with(dir: &Path, extra: &[&str]) -> Option<Redis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--dir", dir.to_str()?, "--save", ""])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(c) => Some(Redis(c, port)),
        Err(_) if std::env::var("LARDER_REQUIRE_REDIS").is_ok_and(|v| v == "1") => panic!("redis-server missing"),
        Err(_) => None,
    }
}

#[test]
fn save_then_restart_brings_every_value_back() {
    let dir = temp_dir("restart");
    let before = {
        let (_proc, mut con) = larder(&dir);
        fill(&mut con);
        let _: () = cmd("FUNCTION")
            .arg("LOAD")
            .arg("#!lua name=keep\nredis.register_function('one', function() return 1 end)")
            .query(&mut con)
            .unwrap();
        // Field TTLs (Redis 7.4's form in the file; not in `fill`, which
        // redis-server 7.0 must load too).
        let _: () = cmd("HSET").arg("hf").arg(&["keep", "1", "soon", "2", "later", "3"]).query(&mut con).unwrap();
        let _: Vec<i64> = cmd("HPEXPIRE").arg("hf").arg(300).arg("FIELDS").arg(1).arg("soon").query(&mut con).unwrap();
        let _: Vec<i64> = cmd("HEXPIRE").arg("hf").arg(1000).arg("FIELDS").arg(1).arg("later").query(&mut con).unwrap();
        // rdbcompression (on by default): the 5000 repeated bytes travel LZF-compressed.
        let dumped: Vec<u8> = cmd("DUMP").arg("big").query(&mut con).unwrap();
        assert!(dumped.len() < 200, "{} bytes", dumped.len());
        let last: i64 = cmd("LASTSAVE").query(&mut con).unwrap();
        let _: () = cmd("SAVE").query(&mut con).unwrap();
        assert!(cmd("LASTSAVE").query::<i64>(&mut con).unwrap() >= last);
        let info: String = cmd("INFO").arg("persistence").query(&mut con).unwrap();
        assert!(info.contains("rdb_changes_since_last_save:0"), "{info}");
        contents(&mut con)
    };
    let (_proc, mut con) = larder(&dir);
    // hf's short-lived field may expire between the two reads: it is checked below.
    let strip = |v: Vec<String>| v.into_iter().filter(|l| !l.starts_with("hf ")).collect::<Vec<_>>();
    assert_eq!(strip(contents(&mut con)), strip(before));
    let one: i64 = cmd("FCALL").arg("one").arg(0).query(&mut con).unwrap();
    assert_eq!(one, 1, "function libraries survive too");
    let ttls: Vec<i64> = cmd("HTTL").arg("hf").arg("FIELDS").arg(2).arg("keep").arg("later").query(&mut con).unwrap();
    assert!(ttls[0] == -1 && ttls[1] > 900, "{ttls:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(cmd("HEXISTS").arg("hf").arg("soon").query::<i64>(&mut con).unwrap(), 0, "a loaded field TTL fires");
    assert_eq!(cmd("HLEN").arg("hf").query::<i64>(&mut con).unwrap(), 2);
}

#[test]
fn files_move_both_ways_between_larder_and_redis() {
    // Larder writes, redis-server loads.
    let dir = temp_dir("to-redis");
    let written = {
        let (_proc, mut con) = larder(&dir);
        fill(&mut con);
        let _: () = cmd("SAVE").query(&mut con).unwrap();
        contents(&mut con)
    };
    check_rdb(&dir);
    let Some(r) = redis(&dir) else { return };
    let mut rcon = connect(r.1);
    assert_eq!(contents(&mut rcon), written, "redis-server loaded Larder's dump.rdb");
    drop(r);

    // redis-server writes, Larder loads.
    let dir = temp_dir("from-redis");
    let Some(r) = redis(&dir) else { return };
    let mut rcon = connect(r.1);
    fill(&mut rcon);
    let _: () = cmd("SAVE").query(&mut rcon).unwrap();
    let theirs = contents(&mut rcon);
    drop(r);
    let (_proc, mut con) = larder(&dir);
    assert_eq!(contents(&mut con), theirs, "Larder loaded redis-server's dump.rdb");
}

#[test]
fn a_corrupt_file_stops_the_server_with_a_clear_error() {
    let dir = temp_dir("corrupt");
    {
        let (_proc, mut con) = larder(&dir);
        fill(&mut con);
        let _: () = cmd("SAVE").query(&mut con).unwrap();
    }
    let file = dir.join("dump.rdb");
    let mut data = std::fs::read(&file).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0x55;
    std::fs::write(&file, &data).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .args(["--port", "0", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "started on a corrupt file");
    let err = String::from_utf8_lossy(&out.stdout);
    // Which check trips depends on what the flipped byte was (the key
    // order in the file follows a per-process hash seed).
    let named = ["checksum", "truncated", "Bad data", "unknown RDB"];
    assert!(err.contains("dump.rdb") && named.iter().any(|n| err.contains(n)), "{err}");
}

/// Waits for the process to exit on its own (SHUTDOWN, a signal).
pub(crate) fn wait_exit(proc: &mut crate::Proc) {
    larder_testkit::eventually(10, || match proc.0.try_wait().unwrap() {
        Some(_) => Ok(()),
        None => Err("the server did not exit".into()),
    })
}

#[test]
fn shutdown_saves_when_asked_or_when_save_points_are_set() {
    let dir = temp_dir("shutdown");
    let d = dir.to_str().unwrap();
    // SHUTDOWN SAVE writes a final snapshot.
    let (mut proc, mut con) = larder(&dir);
    let _: () = cmd("SET").arg("a").arg("1").query(&mut con).unwrap();
    let _ = cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut con);
    wait_exit(&mut proc);
    // With save points, SIGTERM saves too.
    let (mut proc, port, mut err) = start_binary(&["--port", "0", "--dir", d, "--save", "3600 1"]);
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let mut con = connect(port);
    assert_eq!(cmd("GET").arg("a").query::<Option<String>>(&mut con).unwrap().as_deref(), Some("1"));
    let _: () = cmd("SET").arg("b").arg("2").query(&mut con).unwrap();
    assert!(Command::new("kill").args(["-TERM", &proc.0.id().to_string()]).status().unwrap().success());
    wait_exit(&mut proc);
    // SHUTDOWN NOSAVE does not, save points or not.
    let (mut proc, port, mut err) = start_binary(&["--port", "0", "--dir", d, "--save", "3600 1"]);
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let mut con = connect(port);
    assert_eq!(cmd("GET").arg("b").query::<Option<String>>(&mut con).unwrap().as_deref(), Some("2"));
    let _: () = cmd("SET").arg("c").arg("3").query(&mut con).unwrap();
    let _ = cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
    wait_exit(&mut proc);
    let (_proc, mut con) = larder(&dir);
    assert_eq!(cmd("GET").arg("c").query::<Option<String>>(&mut con).unwrap(), None);
    assert_eq!(cmd("DBSIZE").query::<i64>(&mut con).unwrap(), 2);
}

/// Polls INFO persistence until no BGSAVE runs.
pub(crate) fn wait_bgsave(con: &mut Connection) -> String {
    wait_persistence(con, "rdb_bgsave_in_progress:0", "BGSAVE never finished")
}

/// Waits (up to 20 s) until INFO persistence contains `line`; returns it.
pub(crate) fn wait_persistence(con: &mut Connection, line: &str, never: &str) -> String {
    larder_testkit::eventually(20, || {
        let info: String = cmd("INFO").arg("persistence").query(con).unwrap();
        if info.contains(line) {
            Ok(info)
        } else {
            Err(never.to_string())
        }
    })
}

#[test]
fn bgsave_writes_the_instant_it_was_asked_for_while_writes_go_on() {
    const KEYS: usize = 30_000;
    let dir = temp_dir("bgsave");
    let before = {
        let (_proc, mut con) = larder(&dir);
        fill(&mut con);
        let mut pipe = redis::pipe();
        for i in 0..KEYS {
            pipe.cmd("SET").arg(format!("k{i}")).arg(format!("v0-{i}")).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        let before = contents(&mut con);
        let reply: String = cmd("BGSAVE").query(&mut con).unwrap();
        assert_eq!(reply, "Background saving started");
        // Every write from here on is after the cut: none may reach the file.
        let mut pipe = redis::pipe();
        for i in 0..KEYS {
            pipe.cmd("SET").arg(format!("k{i}")).arg("after").ignore();
        }
        pipe.cmd("SET").arg("late").arg("1").ignore();
        pipe.cmd("FLUSHDB").ignore();
        let _: () = pipe.query(&mut con).unwrap();
        let info = wait_bgsave(&mut con);
        assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
        assert!(!info.contains("rdb_last_cow_size:0\r"), "the writes made the cut hold chunks: {info}");
        before
    };
    let (_proc, mut con) = larder(&dir);
    let after = contents(&mut con);
    assert_eq!(after, before, "the file holds the keyspace as of BGSAVE, not later");
    assert_eq!(cmd("DBSIZE").query::<usize>(&mut con).unwrap(), before.len() - 1);
    // The chunked file (a SELECTDB per chunk) passes redis-check-rdb and
    // loads in redis-server too.
    drop(con);
    drop(_proc);
    check_rdb(&dir);
    let Some(r) = redis(&dir) else { return };
    let mut rcon = connect(r.1);
    assert_eq!(contents(&mut rcon), before, "redis-server loaded the BGSAVE file");
}

#[test]
fn bgsave_answers_as_redis_does_when_busy_and_save_points_run_it() {
    let dir = temp_dir("schedule");
    let d = dir.to_str().unwrap();
    let (_proc, port, mut err) = start_binary(&["--port", "0", "--dir", d, "--save", "1 1"]);
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let mut con = connect(port);
    let e = cmd("BGSAVE").arg("NOW").query::<String>(&mut con).unwrap_err();
    assert!(e.to_string().contains("syntax error"), "{e}");
    let _: () = cmd("SET").arg("a").arg("1").query(&mut con).unwrap();
    // One change and more than a second since the last save: the cron saves.
    larder_testkit::eventually(5, || {
        let info: String = cmd("INFO").arg("persistence").query(&mut con).unwrap();
        info.contains("rdb_saves:1").then_some(()).ok_or(format!("the cron never saved: {info}"))
    });
    let info = wait_bgsave(&mut con);
    assert!(info.contains("rdb_saves:1"), "{info}");
    assert!(info.contains("rdb_changes_since_last_save:0"), "{info}");
    assert!(info.contains("rdb_last_bgsave_time_sec:0"), "{info}");
    assert!(dir.join("dump.rdb").exists());
}

/// stop-writes-on-bgsave-error: once a background save fails (with save
/// points set), writes and PING get Redis's MISCONF until a save succeeds
/// or the option is turned off; reads go on. The same steps on
/// redis-server give the same replies.
#[test]
fn a_failed_background_save_stops_writes() {
    let larder = larder_testkit::spawn_server();
    let mut servers = vec![larder.raw()];
    let redis = larder_testkit::RedisServer::start_with(&["--enable-protected-configs", "yes"]);
    if let Some(r) = &redis {
        servers.push(r.raw());
    }
    let mut transcripts = Vec::new();
    for c in &mut servers {
        let gone = temp_dir("misconf-gone");
        let good = temp_dir("misconf-good");
        let mut seen = Vec::new();
        let mut call =
            |c: &mut larder_testkit::RawConn, args: &[&str]| seen.push(format!("{args:?} {:?}", c.call(args).unwrap()));
        call(c, &["SET", "k", "v"]);
        call(c, &["CONFIG", "SET", "save", "900 1"]);
        call(c, &["CONFIG", "SET", "dir", gone.to_str().unwrap()]);
        std::fs::remove_dir_all(&*gone).unwrap();
        c.call(&["BGSAVE"]).unwrap();
        crate::wait_info_field(c, "persistence", "rdb_last_bgsave_status", "err");
        crate::wait_info_field(c, "persistence", "rdb_bgsave_in_progress", "0");
        for args in [
            &["SET", "k", "w"][..],
            &["PING"],
            &["GET", "k"],
            &["MULTI"],
            &["INCR", "n"],
            &["EXEC"],
            &["EVAL", "return redis.call('get', 'k')", "0"],
            &["EVAL", "return redis.call('set', 'k', 's')", "0"],
            &["EVAL", "return redis.pcall('set', 'k', 's')", "0"],
        ] {
            call(c, args);
        }
        call(c, &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"]);
        call(c, &["SET", "k", "x"]);
        call(c, &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"]);
        call(c, &["SET", "k", "y"]);
        call(c, &["CONFIG", "SET", "dir", good.to_str().unwrap()]);
        let started = c.call(&["BGSAVE"]).unwrap();
        assert!(matches!(started, larder_protocol::Frame::Simple(_)), "{started:?}");
        crate::wait_info_field(c, "persistence", "rdb_last_bgsave_status", "ok");
        call(c, &["SET", "k", "z"]);
        call(c, &["GET", "k"]);
        transcripts.push(seen.into_iter().filter(|l| !l.contains("CONFIG")).collect::<Vec<_>>());
    }
    let ours = &transcripts[0];
    assert!(ours[1].contains("MISCONF") && ours[2].contains("MISCONF"), "{ours:#?}");
    assert!(ours[3].contains("\"v\""), "reads go on: {ours:#?}");
    assert!(ours[6].contains("EXECABORT"), "{ours:#?}");
    assert!(ours[7].contains("\"v\"") && ours[8].contains("MISCONF") && ours[9].contains("MISCONF"), "{ours:#?}");
    assert!(ours[10].contains("Simple(b\"OK\")") && ours[11].contains("MISCONF"), "{ours:#?}");
    assert!(ours[13].contains("\"z\""), "{ours:#?}");
    if let Some(theirs) = transcripts.get(1) {
        assert_eq!(ours, theirs);
    }
}

/// rdbchecksum no: the file's trailer is zero (nothing computed), and
/// Larder and redis-check-rdb load it all the same, as Redis's files
/// saved so.
#[test]
fn rdbchecksum_no_writes_a_zero_trailer() {
    let dir = temp_dir("no-checksum");
    let d = dir.to_str().unwrap();
    {
        let (_proc, port, _err) = start_binary(&["--port", "0", "--dir", d, "--rdbchecksum", "no"]);
        let mut con = connect(port);
        let _: () = cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
        let _: () = cmd("SAVE").query(&mut con).unwrap();
    }
    let file = std::fs::read(dir.join("dump.rdb")).unwrap();
    assert_eq!(file[file.len() - 8..], [0u8; 8]);
    check_rdb(&dir);
    let (_proc, port, _err) = start_binary(&["--port", "0", "--dir", d]);
    let mut con = connect(port);
    assert_eq!(cmd("GET").arg("k").query::<String>(&mut con).unwrap(), "v");
    let _: () = cmd("SAVE").query(&mut con).unwrap();
    let file = std::fs::read(dir.join("dump.rdb")).unwrap();
    assert_ne!(file[file.len() - 8..], [0u8; 8], "rdbchecksum yes (the default) writes one");
}

/// `rdb-key-save-delay` (Redis's hidden test knob) slows a BGSAVE per key
/// written, so a test can act while one is in progress: here the save
/// is still running after it started, writes are served meanwhile, and it
/// ends with every key saved.
#[test]
fn rdb_key_save_delay_holds_a_bgsave_in_progress() {
    let dir = temp_dir("save-delay");
    let (_proc, mut con) = larder(&dir);
    for i in 0..5 {
        let _: () = cmd("SET").arg(format!("k{i}")).arg(i).query(&mut con).unwrap();
    }
    // 5 keys x 0.2 s: a second of saving.
    let _: () = cmd("CONFIG").arg("SET").arg("rdb-key-save-delay").arg(200_000).query(&mut con).unwrap();
    let _: String = cmd("BGSAVE").query(&mut con).unwrap();
    let info: String = cmd("INFO").arg("persistence").query(&mut con).unwrap();
    assert!(info.contains("rdb_bgsave_in_progress:1"), "{info}");
    let _: () = cmd("SET").arg("during").arg(1).query(&mut con).unwrap();
    wait_persistence(&mut con, "rdb_bgsave_in_progress:0", "the BGSAVE never ended");
    let saved = std::fs::read(dir.join("dump.rdb")).unwrap();
    assert!((0..5).all(|i| saved.windows(2).any(|w| w == format!("k{i}").as_bytes())));
    // Hidden, as in Redis: only asked for by name.
    let all: Vec<String> = cmd("CONFIG").arg("GET").arg("*").query(&mut con).unwrap();
    assert!(!all.iter().any(|n| n == "rdb-key-save-delay"));
}

/// FLUSHALL stops a BGSAVE in progress, as Redis's kills its child: the
/// file it was writing held the flushed data. The last save's status
/// stays ok and the changes are still unsaved. With save points, FLUSHALL
/// saves the empty dataset at once, so a restart does not bring the keys
/// back.
#[test]
fn flushall_stops_a_bgsave_and_a_restart_finds_nothing() {
    let dir = temp_dir("flushall-save");
    let (proc, mut con) = larder(&dir);
    let set = |con: &mut Connection, name: &str, value: &str| {
        let _: () = cmd("CONFIG").arg("SET").arg(name).arg(value).query(con).unwrap();
    };
    for i in 0..50 {
        let _: () = cmd("SET").arg(format!("k{i}")).arg(i).query(&mut con).unwrap();
    }
    set(&mut con, "save", "");
    // 50 keys x 0.2 s: ten seconds of saving, were it not stopped.
    set(&mut con, "rdb-key-save-delay", "200000");
    let _: String = cmd("BGSAVE").query(&mut con).unwrap();
    let _: () = cmd("FLUSHALL").query(&mut con).unwrap();
    let info = wait_persistence(&mut con, "rdb_bgsave_in_progress:0", "the BGSAVE went on");
    assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
    assert!(!info.contains("rdb_changes_since_last_save:0\r"), "{info}");
    assert!(!dir.join("dump.rdb").exists(), "the stopped save wrote its file");
    let temps: Vec<_> = std::fs::read_dir(&*dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert!(temps.iter().all(|n| !n.to_string_lossy().starts_with("temp-")), "{temps:?}");
    // With save points: the empty dataset is saved at once.
    set(&mut con, "rdb-key-save-delay", "0");
    let _: () = cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let _: () = cmd("SAVE").query(&mut con).unwrap();
    set(&mut con, "save", "3600 1");
    let _: () = cmd("FLUSHALL").query(&mut con).unwrap();
    drop(proc); // SIGKILL: no shutdown save
    let (_proc, mut con) = larder(&dir);
    let n: i64 = cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 0, "FLUSHALL's data came back after a restart");
}

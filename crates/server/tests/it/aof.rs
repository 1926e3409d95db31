//! The append-only file as a user meets it: kill -9 under a write load
//! and every acknowledged write is back after the restart (with
//! `appendfsync always` and with `everysec`); a torn tail is cut off with
//! a warning, or refused when `aof-load-truncated` is no, and corruption
//! before the tail always stops the server; BGREWRITEAOF under writes
//! keeps every value; the directory moves both ways with redis-server and
//! passes redis-check-aof.

use crate::persistence::{connect, contents, fill, redis_with, temp_dir, wait_exit};
use crate::{cmd, start_binary, Proc};
use redis::Connection;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn larder(dir: &Path, extra: &[&str]) -> (Proc, u16) {
    let mut args = vec!["--port", "0", "--dir", dir.to_str().unwrap(), "--appendonly", "yes"];
    args.extend_from_slice(extra);
    let (proc, port, mut log) = start_binary(&args);
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    (proc, port)
}

/// Runs the binary to completion (a start-up that must fail), returning
/// its log.
fn failed_start(dir: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .args(["--port", "0", "--dir", dir.to_str().unwrap(), "--appendonly", "yes"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            let mut log = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut log).unwrap();
            return log;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    panic!("the server started on a file it should have refused");
}

fn incr_file(dir: &Path) -> std::path::PathBuf {
    let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    let name = manifest.lines().rfind(|l| l.ends_with("type i")).unwrap().split(' ').nth(1).unwrap().to_string();
    dir.join("appendonlydir").join(name)
}

/// Runs `commands` on Larder with `appendfsync always` in `dir`, then
/// stops it; the incremental file they were logged to.
fn logged(dir: &Path, commands: &[&[&str]]) -> std::path::PathBuf {
    let (_proc, port) = larder(dir, &["--appendfsync", "always"]);
    let mut con = connect(port);
    for args in commands {
        let mut c = cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query::<redis::Value>(&mut con).unwrap();
    }
    incr_file(dir)
}

/// What one writer thread had acknowledged when the server died.
#[derive(Default, Debug)]
struct Acked {
    incrs: i64,
    pushes: i64,
    txs: i64,
}

/// Four clients write as fast as they can (INCR, RPUSH, a MULTI of two
/// INCRs); the server is killed with SIGKILL mid-stream; after a restart
/// every acknowledged write must be there, in order, and every
/// transaction whole.
fn kill_9_loses_no_acknowledged_write(policy: &str) {
    let dir = temp_dir(&format!("kill9-{policy}"));
    let (mut proc, port) = larder(&dir, &["--appendfsync", policy]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut con = connect(port);
                let mut acked = Acked::default();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = cmd("INCR").arg(format!("c{t}")).query::<i64>(&mut con) else { break };
                    acked.incrs = n;
                    if cmd("RPUSH").arg(format!("l{t}")).arg(acked.pushes).query::<i64>(&mut con).is_err() {
                        break;
                    }
                    acked.pushes += 1;
                    let tx: redis::RedisResult<(i64, i64)> =
                        redis::pipe().atomic().incr(format!("ta{t}"), 1).incr(format!("tb{t}"), 1).query(&mut con);
                    if tx.is_err() {
                        break;
                    }
                    acked.txs += 1;
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    proc.0.kill().unwrap();
    let _ = proc.0.wait();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Acked> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(acked.iter().all(|a| a.incrs > 10), "the load ran: {acked:?}");

    let (_proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    for (t, a) in acked.iter().enumerate() {
        let c: i64 = cmd("GET").arg(format!("c{t}")).query(&mut con).unwrap();
        // Acknowledged writes are all there; one more may have reached
        // the file before the kill without its reply reaching us.
        assert!(c == a.incrs || c == a.incrs + 1, "{policy}: counter {t} is {c}, acknowledged {}", a.incrs);
        let list: Vec<i64> = cmd("LRANGE").arg(format!("l{t}")).arg(0).arg(-1).query(&mut con).unwrap();
        assert!(
            list.len() as i64 == a.pushes || list.len() as i64 == a.pushes + 1,
            "{policy}: list {t}: {} vs {}",
            list.len(),
            a.pushes
        );
        assert!(list.iter().enumerate().all(|(i, v)| *v == i as i64), "pushes in order");
        let (ta, tb): (Option<i64>, Option<i64>) =
            redis::pipe().get(format!("ta{t}")).get(format!("tb{t}")).query(&mut con).unwrap();
        assert_eq!(ta, tb, "{policy}: a transaction came back torn");
        let ta = ta.unwrap_or(0);
        assert!(ta == a.txs || ta == a.txs + 1, "{policy}: transactions {ta} vs {}", a.txs);
    }
}

#[test]
fn kill_9_with_appendfsync_always_loses_nothing_acknowledged() {
    kill_9_loses_no_acknowledged_write("always");
}

/// Larder writes the file before every reply under each policy, so a
/// process crash loses nothing even with everysec (which then bounds only
/// what a machine crash can take, to about a second).
#[test]
fn kill_9_with_appendfsync_everysec_loses_nothing_acknowledged() {
    kill_9_loses_no_acknowledged_write("everysec");
}

#[test]
fn a_torn_tail_is_cut_with_a_warning_or_refused_and_corruption_stops_the_server() {
    let dir = temp_dir("torn");
    let incr = logged(&dir, &[&["SET", "kept", "1"], &["RPUSH", "list", "a"]]);
    let whole = std::fs::read(&incr).unwrap();
    // A command cut short, then a transaction without its EXEC.
    let mut torn = whole.clone();
    torn.extend_from_slice(
        b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$1\r\nx",
    );
    std::fs::write(&incr, &torn).unwrap();
    let err = failed_start(&dir, &["--aof-load-truncated", "no"]);
    assert!(err.contains("Unexpected end of file reading the append only file"), "{err}");
    assert_eq!(std::fs::read(&incr).unwrap(), torn, "a refused load leaves the file alone");
    {
        let (_proc, port) = larder(&dir, &[]);
        let mut con = connect(port);
        assert_eq!(cmd("GET").arg("kept").query::<String>(&mut con).unwrap(), "1");
        assert_eq!(cmd("GET").arg("lost").query::<Option<String>>(&mut con).unwrap(), None, "half a transaction");
        assert_eq!(std::fs::read(&incr).unwrap(), whole, "the torn tail was cut off");
        let _: () = cmd("SET").arg("after").arg("2").query(&mut con).unwrap();
    }
    // A broken command header in the middle is never a partial load.
    let mut bad = std::fs::read(&incr).unwrap();
    let at = bad.windows(4).position(|w| w == b"RPUS").unwrap() - 4;
    assert_eq!(&bad[at..at + 2], b"$5");
    bad[at] = b'?';
    std::fs::write(&incr, &bad).unwrap();
    let err = failed_start(&dir, &[]);
    assert!(err.contains("Bad file format reading the append only file"), "{err}");
}

/// Nothing expires while the log replays, as Redis expires nothing while
/// it loads: a key set with a TTL, changed, then made persistent comes
/// back as the last command left it even when its first deadline passed
/// before the restart (redis-server 7.0 answers 2 here too).
#[test]
fn a_replayed_log_expires_nothing_a_later_command_kept() {
    let dir = temp_dir("replay-ttl");
    {
        let (_proc, port) = larder(&dir, &["--appendfsync", "always"]);
        let mut con = connect(port);
        let _: () = cmd("SET").arg("k").arg("1").arg("PX").arg(1500).query(&mut con).unwrap();
        assert_eq!(cmd("INCR").arg("k").query::<i64>(&mut con).unwrap(), 2);
        assert_eq!(cmd("PERSIST").arg("k").query::<i64>(&mut con).unwrap(), 1);
    }
    // The SET's own deadline (PXAT in the log) is behind us at the replay.
    std::thread::sleep(Duration::from_millis(1700));
    let (_proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    assert_eq!(cmd("GET").arg("k").query::<Option<String>>(&mut con).unwrap().as_deref(), Some("2"));
    assert_eq!(cmd("TTL").arg("k").query::<i64>(&mut con).unwrap(), -1);
}

/// The AOF directory's manifest and its files' names, sorted.
fn aof_dir(dir: &Path) -> (String, Vec<String>) {
    let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    (manifest, files)
}

fn shutdown(con: &mut Connection, proc: &mut Proc) {
    let _ = cmd("SHUTDOWN").query::<()>(con);
    wait_exit(proc);
}

#[test]
fn rewrite_under_writes_keeps_every_value_and_redis_reads_the_directory() {
    let dir = temp_dir("rewrite");
    let (mut proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    fill(&mut con);
    let mut pipe = redis::pipe();
    for i in 0..20_000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut con).unwrap();
    let reply: String = cmd("BGREWRITEAOF").query(&mut con).unwrap();
    assert_eq!(reply, "Background append only file rewriting started");
    // Writes while the base is being written land in the new increment.
    for i in 0..2_000 {
        let _: () = cmd("INCR").arg(format!("k{i}")).query(&mut con).unwrap();
    }
    let info = wait_rewrite(&mut con);
    assert!(info.contains("aof_rewrites:1") && info.contains("aof_last_bgrewrite_status:ok"), "{info}");
    let (manifest, files) = aof_dir(&dir);
    assert_eq!(manifest, "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n");
    assert_eq!(
        files,
        ["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"],
        "old files gone"
    );
    let before = contents(&mut con);
    shutdown(&mut con, &mut proc);

    // maxmemory far below the dataset does not apply while loading (the
    // increment's INCRs would otherwise be refused as OOM).
    let (_proc, port) = larder(&dir, &["--maxmemory", "1mb"]);
    let mut con = connect(port);
    assert_eq!(contents(&mut con), before);
    assert_eq!(cmd("GET").arg("k1999").query::<i64>(&mut con).unwrap(), 2000);
    drop(con);
    drop(_proc);

    match Command::new("redis-check-aof").arg(dir.join("appendonlydir/appendonly.aof.manifest")).output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("All AOF files and manifest are valid"), "{text}");
        }
        Err(_) => {
            assert!(std::env::var("LARDER_REQUIRE_REDIS").map_or(true, |v| v != "1"), "redis-check-aof missing")
        }
    }
    let Some(r) = redis_with(&dir, &["--appendonly", "yes"]) else { return };
    let mut rcon = connect(r.1);
    assert_eq!(contents(&mut rcon), before, "redis-server loaded Larder's AOF directory");
}

#[test]
fn redis_aof_loads_in_larder_and_config_set_turns_aof_on() {
    // redis-server writes an AOF directory; Larder loads it.
    let dir = temp_dir("from-redis-aof");
    let Some(mut r) = redis_with(&dir, &["--appendonly", "yes", "--appendfsync", "always"]) else { return };
    let mut rcon = connect(r.1);
    fill(&mut rcon);
    let _: () = redis::pipe().atomic().incr("n", 5).set("m", "x").query(&mut rcon).unwrap();
    let theirs = contents(&mut rcon);
    let _ = cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut rcon);
    let _ = r.0.wait();
    let (_proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    assert_eq!(contents(&mut con), theirs, "Larder loaded redis-server's AOF");
    drop(con);
    drop(_proc);

    // CONFIG SET appendonly yes on a running server writes a base of what
    // is there and records from then on.
    let dir = temp_dir("config-set-aof");
    let (proc, port, mut err) = start_binary(&["--port", "0", "--dir", dir.to_str().unwrap()]);
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let mut con = connect(port);
    let _: () = cmd("SET").arg("before").arg("1").query(&mut con).unwrap();
    let _: () = cmd("CONFIG").arg("SET").arg("appendonly").arg("yes").query(&mut con).unwrap();
    let _: () = cmd("SET").arg("after").arg("2").query(&mut con).unwrap();
    let _: String = cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=kept\nredis.register_function('two', function() return 2 end)")
        .query(&mut con)
        .unwrap();
    let info: String = cmd("INFO").arg("persistence").query(&mut con).unwrap();
    assert!(info.contains("aof_enabled:1"), "{info}");
    wait_rewrite(&mut con);
    drop(proc); // SIGKILL
    let (_proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    let got: (String, String) = redis::pipe().get("before").get("after").query(&mut con).unwrap();
    assert_eq!(got, ("1".into(), "2".into()));
    assert_eq!(cmd("FCALL").arg("two").arg(0).query::<i64>(&mut con).unwrap(), 2, "FUNCTION LOAD was recorded");
}

/// Turning the AOF off and on again starts its files over from what is
/// there: writes logged before it went off are not replayed over the new
/// base after a restart (a key deleted while it was off stays deleted),
/// and the old files go once the new base is in.
#[test]
fn turning_the_aof_off_and_on_again_replays_nothing_from_before() {
    let dir = temp_dir("aof-off-on");
    let (proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    let run = |con: &mut Connection, args: &[&str]| {
        let mut c = cmd(args[0]);
        c.arg(&args[1..]);
        c.query::<redis::Value>(con).unwrap();
    };
    run(&mut con, &["SET", "gone", "1"]);
    run(&mut con, &["SET", "kept", "1"]);
    run(&mut con, &["CONFIG", "SET", "appendonly", "no"]);
    run(&mut con, &["DEL", "gone"]);
    run(&mut con, &["SET", "kept", "2"]);
    run(&mut con, &["SET", "while-off", "1"]);
    run(&mut con, &["CONFIG", "SET", "appendonly", "yes"]);
    wait_rewrite(&mut con);
    run(&mut con, &["SET", "after", "1"]);
    let (manifest, files) = aof_dir(&dir);
    assert_eq!(manifest, "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n");
    assert_eq!(files, ["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"]);
    drop(proc); // SIGKILL
    let (_proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    let got: (Option<String>, String, String, String) =
        redis::pipe().get("gone").get("kept").get("while-off").get("after").query(&mut con).unwrap();
    assert_eq!(got, (None, "2".into(), "1".into(), "1".into()));
}

/// Waits for the AOF rewrite in progress to end; INFO persistence then.
fn wait_rewrite(con: &mut redis::Connection) -> String {
    crate::persistence::wait_persistence(con, "aof_rewrite_in_progress:0", "the AOF rewrite never ended")
}

/// A command the log holds that fails when replayed (the file was edited,
/// or holds commands meant for other data) is counted in INFO
/// `unexpected_error_replies`, as Redis counts it; the rest of the file
/// still loads.
#[test]
fn a_command_failing_in_the_log_counts_as_an_unexpected_error() {
    let dir = temp_dir("aof-unexpected");
    let incr = logged(&dir, &[&["SET", "s", "text"]]);
    let mut log = std::fs::read(&incr).unwrap();
    log.extend_from_slice(b"*3\r\n$5\r\nLPUSH\r\n$1\r\ns\r\n$1\r\nx\r\n*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\n1\r\n");
    std::fs::write(&incr, &log).unwrap();
    let (_proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    assert_eq!(cmd("GET").arg("after").query::<String>(&mut con).unwrap(), "1");
    let info: String = cmd("INFO").arg("stats").query(&mut con).unwrap();
    assert!(info.contains("\r\nunexpected_error_replies:1\r\n"), "{info}");
    assert!(info.contains("\r\ntotal_error_replies:1\r\n"), "{info}");
    drop(_proc);
    // A command the server does not know stops the start, in Redis's words.
    log.extend_from_slice(b"*2\r\n$3\r\nBLA\r\n$1\r\nx\r\n");
    std::fs::write(&incr, &log).unwrap();
    let err = failed_start(&dir, &[]);
    assert!(err.contains("Unknown command 'BLA' reading the append only file"), "{err}");
}

/// An AOF from before Redis 7 (one `appendonly.aof` in `dir`) is moved
/// into the AOF directory as its base, as Redis 7 does, in both of its
/// forms: plain commands, and an RDB preamble with commands after it. The
/// manifest lists it as base 1 with a new increment; a restart loads both;
/// a rewrite replaces it. A move cut short (the manifest written, the file
/// not yet moved) is finished at the next start.
#[test]
fn an_old_style_aof_is_moved_into_the_aof_directory_and_loaded() {
    let resp = |args: &[&str]| -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        out
    };
    // An RDB image holding `snap`, made by a Larder without an AOF.
    let image = {
        let dir = temp_dir("aof-old-image");
        let (proc, port, mut log) = start_binary(&["--port", "0", "--dir", dir.to_str().unwrap()]);
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        let mut con = connect(port);
        let _: () = cmd("SET").arg("snap").arg("from the preamble").query(&mut con).unwrap();
        let _: () = cmd("SAVE").query(&mut con).unwrap();
        drop(proc);
        std::fs::read(dir.join("dump.rdb")).unwrap()
    };
    let plain = [resp(&["SELECT", "0"]), resp(&["SET", "old", "v1"]), resp(&["RPUSH", "list", "a", "b"])].concat();
    let preamble = [image, resp(&["SET", "old", "v2"])].concat();
    for (file, want_old, want_snap) in [(plain, "v1", None), (preamble, "v2", Some("from the preamble"))] {
        for interrupted in [false, true] {
            let dir = temp_dir("aof-old-style");
            std::fs::write(dir.join("appendonly.aof"), &file).unwrap();
            if interrupted {
                std::fs::create_dir(dir.join("appendonlydir")).unwrap();
                std::fs::write(dir.join("appendonlydir/appendonly.aof.manifest"), "file appendonly.aof seq 1 type b\n")
                    .unwrap();
            }
            let (proc, port) = larder(&dir, &[]);
            let mut con = connect(port);
            let got: (String, Option<String>) = redis::pipe().get("old").get("snap").query(&mut con).unwrap();
            assert_eq!(got, (want_old.to_string(), want_snap.map(String::from)), "interrupted: {interrupted}");
            assert!(!dir.join("appendonly.aof").exists(), "moved out of dir");
            let (manifest, files) = aof_dir(&dir);
            assert_eq!(manifest, "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n");
            assert_eq!(files, ["appendonly.aof", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"]);
            let _: () = cmd("SET").arg("new").arg("1").query(&mut con).unwrap();
            drop(proc); // SIGKILL
            let (_proc, port) = larder(&dir, &[]);
            let mut con = connect(port);
            let got: (String, String) = redis::pipe().get("old").get("new").query(&mut con).unwrap();
            assert_eq!(got, (want_old.to_string(), "1".to_string()));
            let _: () = cmd("BGREWRITEAOF").query(&mut con).unwrap();
            wait_rewrite(&mut con);
            let (_, files) = aof_dir(&dir);
            assert_eq!(files, ["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"]);
        }
    }
}

/// `aof-timestamp-enabled yes`: a `#TS:<unix seconds>` line before the
/// first command of each new second, as Redis writes them. Larder loads
/// the file over them, redis-check-aof finds it valid, and its
/// `--truncate-to-timestamp` cuts it back to the first second's writes.
#[test]
fn timestamp_annotations_are_written_and_skipped_on_load() {
    let dir = temp_dir("aof-timestamps");
    let (proc, port) = larder(&dir, &["--appendfsync", "always", "--aof-timestamp-enabled", "yes"]);
    let mut con = connect(port);
    let _: () = cmd("SET").arg("first").arg("1").query(&mut con).unwrap();
    // The next second, to the millisecond.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    std::thread::sleep(Duration::from_millis(1000 - now.subsec_millis() as u64 + 20));
    let _: () = cmd("SET").arg("second").arg("2").query(&mut con).unwrap();
    let text = String::from_utf8_lossy(&std::fs::read(incr_file(&dir)).unwrap()).into_owned();
    let stamps: Vec<u64> =
        text.lines().filter_map(|l| l.trim_end().strip_prefix("#TS:")).map(|t| t.parse().unwrap()).collect();
    assert_eq!(stamps.len(), 2, "{text}");
    assert!(text.find("#TS").unwrap() < text.find("first").unwrap(), "{text}");
    drop(proc);
    let (proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    let got: (String, String) = redis::pipe().get("first").get("second").query(&mut con).unwrap();
    assert_eq!(got, ("1".into(), "2".into()));
    drop(proc);
    let manifest = dir.join("appendonlydir/appendonly.aof.manifest");
    let Ok(out) = Command::new("redis-check-aof").arg(&manifest).output() else {
        assert!(std::env::var("LARDER_REQUIRE_REDIS").map_or(true, |v| v != "1"), "redis-check-aof missing");
        return;
    };
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"), "{out:?}");
    let cut = Command::new("redis-check-aof")
        .args(["--truncate-to-timestamp", &stamps[0].to_string()])
        .arg(&manifest)
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(cut.status.success(), "{cut:?}");
    let (_proc, port) = larder(&dir, &[]);
    let mut con = connect(port);
    let got: (Option<String>, Option<String>) = redis::pipe().get("first").get("second").query(&mut con).unwrap();
    assert_eq!(got, (Some("1".into()), None), "cut back to the first second");
}

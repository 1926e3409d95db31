//! Replication both ways. Larder as a primary: a real redis-server
//! replicates from it (PSYNC, full sync, then the write stream), and the raw
//! SYNC stream has the shape Redis gives its replicas. Larder as a replica
//! (REPLICAOF) of Larder and of redis-server, with READONLY and MASTERDOWN.

use crate::{info_field, wait_info_field};
use larder_protocol::{Frame, Proto};
use larder_testkit::{eventually, spawn_server, RawConn, RedisServer};
use std::time::{Duration, Instant};

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Integer(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// The next command in a replication stream, lowercased name first.
fn next_command(stream: &mut RawConn) -> String {
    match stream.read_frame().expect("a command from the stream") {
        Frame::Array(items) => {
            let mut words: Vec<String> = items.iter().map(text).collect();
            words[0] = words[0].to_lowercase();
            words.join(" ")
        }
        other => panic!("expected a command, got {other:?}"),
    }
}

fn digest(conn: &mut RawConn) -> String {
    let d = digest_or_empty(conn);
    assert!(d.bytes().any(|c| c != b'0'), "not the digest of a dataset: {d}");
    d
}

/// DEBUG DIGEST, all zeros for an empty dataset.
fn digest_or_empty(conn: &mut RawConn) -> String {
    match conn.call(&["DEBUG", "DIGEST"]).expect("DEBUG DIGEST") {
        Frame::Simple(d) if d.len() == 40 => String::from_utf8_lossy(&d).into_owned(),
        other => panic!("not a digest: {other:?}"),
    }
}

#[test]
fn redis_replica_follows_larder() {
    let s = spawn_server();
    let mut w = s.raw();
    // Before the replica: these arrive in the image.
    w.call(&["SET", "before", "1"]).unwrap();
    w.call(&["RPUSH", "list", "a", "b", "c"]).unwrap();
    w.call(&["HSET", "h", "f", "v"]).unwrap();
    let port = s.addr.port().to_string();
    let Some(replica) = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]) else { return };
    let mut r = replica.raw();
    eventually(20, || {
        let info = text(&r.call(&["INFO", "replication"]).unwrap());
        info.contains("master_link_status:up")
            .then_some(())
            .ok_or(format!("the replica never finished its sync: {info}"))
    });
    // After: the stream. Every kind of propagated write.
    for cmd in [
        &["SET", "after", "2", "EX", "100"][..],
        &["INCRBYFLOAT", "f", "1.5"],
        &["SADD", "s", "x", "y", "z"],
        &["SPOP", "s"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZPOPMIN", "z"],
        &["XADD", "stream", "*", "k", "v"],
        &["EVAL", "redis.call('SET', KEYS[1], 'lua'); return redis.call('INCR', KEYS[2])", "2", "fromlua", "n"],
        &["SELECT", "3"],
        &["SET", "indb3", "x"],
        &["SET", "short", "x", "PX", "30"],
        &["SELECT", "0"],
        &["DEL", "before"],
    ] {
        let reply = w.call(cmd).unwrap();
        assert!(!matches!(reply, Frame::Error(_)), "{cmd:?}: {reply:?}");
    }
    for cmd in [&["MULTI"][..], &["INCR", "n"], &["LPUSH", "list", "z"], &["EXEC"]] {
        w.call(cmd).unwrap();
    }
    // The short-lived key expires on Larder; its DEL must reach the replica.
    std::thread::sleep(Duration::from_millis(60));
    w.call(&["SELECT", "3"]).unwrap();
    assert_eq!(w.call(&["GET", "short"]).unwrap(), Frame::Null);
    // Same data everywhere: DEBUG DIGEST is Redis's algorithm on both.
    eventually(10, || {
        let (ours, theirs) = (digest(&mut w), digest(&mut r));
        (ours == theirs).then_some(()).ok_or(format!("digests differ: larder {ours}, replica {theirs}"))
    });
    assert_eq!(text(&r.call(&["GET", "fromlua"]).unwrap()), "lua");
    assert_eq!(text(&r.call(&["LINDEX", "list", "0"]).unwrap()), "z");
    let ttl = r.call(&["TTL", "after"]).unwrap();
    assert!(matches!(ttl, Frame::Integer(t) if t > 90 && t <= 100), "{ttl:?}");
    assert_eq!(r.call(&["EXISTS", "before"]).unwrap(), Frame::Integer(0));
    // Larder lists the replica.
    let mut c = s.conn(Proto::Resp2);
    let info: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
    assert!(info.contains("connected_slaves:1"), "{info}");
    assert!(info.contains(&format!("port={}", replica.addr.port())), "{info}");
}

/// PSYNC with an offset that is no integer is refused and the connection
/// stays a client's, as in Redis 7.0.12 on; it used to start a full sync.
#[test]
fn psync_with_a_wrong_offset_is_refused() {
    let server = spawn_server();
    let mut c = server.raw();
    c.call(&["SET", "k", "v"]).unwrap();
    let refused = c.call(&["PSYNC", "replicationid", "offset_str"]).unwrap();
    assert_eq!(refused, Frame::Error("ERR value is not an integer or out of range".into()));
    assert_eq!(c.call(&["GET", "k"]).unwrap(), Frame::Bulk("v".into()));
    assert_eq!(info_field(&mut c, "replication", "connected_slaves"), "0");
}

#[test]
fn sync_stream_has_redis_shape() {
    let s = spawn_server();
    let mut w = s.raw();
    w.call(&["SET", "k0", "v0"]).unwrap();
    let mut repl = s.raw();
    repl.send(&["SYNC"]).unwrap();
    let image = repl.read_sync_payload().unwrap();
    assert!(image.starts_with(b"REDIS"), "an RDB image");
    assert!(image.windows(2).any(|p| p == b"k0"), "the image holds the key written before");
    w.call(&["SET", "a", "1"]).unwrap();
    // A transaction of one write is sent bare; of none, not at all.
    for cmd in [&["MULTI"][..], &["SET", "b", "2"], &["EXEC"], &["MULTI"], &["DEL", "missing"], &["EXEC"]] {
        w.call(cmd).unwrap();
    }
    for cmd in [&["MULTI"][..], &["SELECT", "1"], &["SET", "c", "3"], &["SELECT", "2"], &["SET", "d", "4"], &["EXEC"]] {
        w.call(cmd).unwrap();
    }
    w.call(&["SELECT", "0"]).unwrap();
    w.call(&["SET", "t", "x", "EX", "100"]).unwrap();
    w.call(&["SETBIT", "bits", "3", "0"]).unwrap();
    // Rewriting a bit with its own value is no write.
    w.call(&["SETBIT", "bits", "3", "0"]).unwrap();
    w.call(&["SET", "last", "1"]).unwrap();
    // (B)RPOPLPUSH goes as RPOPLPUSH, (B)LMOVE as LMOVE, as Redis sends them.
    w.call(&["RPUSH", "l", "1", "2", "3", "4"]).unwrap();
    for cmd in
        [&["RPOPLPUSH", "l", "m"][..], &["BRPOPLPUSH", "l", "m", "0"], &["BLMOVE", "l", "m", "LEFT", "RIGHT", "0"]]
    {
        w.call(cmd).unwrap();
    }
    let expected =
        ["select 0", "set a 1", "set b 2", "select 1", "multi", "set c 3", "select 2", "set d 4", "exec", "select 0"];
    for want in expected {
        assert_eq!(next_command(&mut repl), want);
    }
    let set_t = next_command(&mut repl);
    assert!(set_t.starts_with("set t x PXAT "), "relative TTLs become absolute: {set_t}");
    assert_eq!(next_command(&mut repl), "setbit bits 3 0");
    assert_eq!(next_command(&mut repl), "set last 1");
    assert_eq!(next_command(&mut repl), "rpush l 1 2 3 4");
    assert_eq!(next_command(&mut repl), "rpoplpush l m");
    assert_eq!(next_command(&mut repl), "rpoplpush l m");
    assert_eq!(next_command(&mut repl), "lmove l m LEFT RIGHT");
    // Replies to what a replica sends are not sent (REPLCONF ACK).
    repl.send(&["REPLCONF", "ACK", "0"]).unwrap();
    w.call(&["SET", "after-ack", "1"]).unwrap();
    assert_eq!(next_command(&mut repl), "set after-ack 1");
}

/// A replica's connection carries acknowledgements only. A command that
/// would reply (its reply would land in the replica's stream) drops the
/// replica, as in Redis, and one that touches keys is refused first, so
/// a SET sent there writes nothing.
#[test]
fn a_replica_that_sends_a_replying_command_is_dropped() {
    let s = spawn_server();
    let mut w = s.raw();
    for (sync, cmd) in [(&["SYNC"][..], &["PING"][..]), (&["PSYNC", "?", "-1"], &["SET", "k", "from-replica"])] {
        let mut repl = s.raw();
        repl.send(sync).unwrap();
        if sync[0] == "PSYNC" {
            assert!(text(&repl.read_frame().unwrap()).starts_with("FULLRESYNC "));
        }
        repl.read_sync_payload().unwrap();
        eventually(10, || match info_field(&mut w, "replication", "connected_slaves").as_str() {
            "1" => Ok(()),
            n => Err(format!("{n} replicas")),
        });
        repl.send(cmd).unwrap();
        eventually(10, || match info_field(&mut w, "replication", "connected_slaves").as_str() {
            "0" => Ok(()),
            n => Err(format!("{n} replicas")),
        });
        assert!(repl.read_frame().is_err(), "{cmd:?}: the connection is closed, nothing written to it");
    }
    assert_eq!(w.call(&["EXISTS", "k"]).unwrap(), Frame::Integer(0));
}

/// While a script on the replica is past busy-reply-threshold, the
/// primary's writes wait for it, as Redis stops reading its primary
/// meanwhile. They used to be refused with BUSY, and so lost: the replica
/// ended without them.
#[test]
fn a_busy_script_on_the_replica_holds_the_primarys_writes() {
    let ([_primary, replica], mut w, mut r) = primary_and_replica();
    w.call(&["SET", "before", "1"]).unwrap();
    wait_in_step(&mut w, &mut r);
    assert_eq!(r.call(&["CONFIG", "SET", "busy-reply-threshold", "50"]).unwrap(), Frame::ok());
    let mut script = replica.raw();
    script.send(&["EVAL", "while true do end", "0"]).unwrap();
    let mut admin = replica.raw();
    eventually(10, || match admin.call(&["PING"]).unwrap() {
        Frame::Error(e) if e.starts_with(b"BUSY") => Ok(()),
        other => Err(format!("{other:?}")),
    });
    for i in 0..200 {
        w.call(&["SET", &format!("during:{i}"), "x"]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin.call(&["SCRIPT", "KILL"]).unwrap(), Frame::ok());
    assert!(matches!(script.read_frame().unwrap(), Frame::Error(_)), "the script was killed");
    wait_in_step(&mut w, &mut r);
    assert_eq!(r.call(&["DBSIZE"]).unwrap(), Frame::Integer(201));
    assert_eq!(info_field(&mut r, "stats", "unexpected_error_replies"), "0");
}

/// A primary and a replica following it (both kept alive by the first
/// value), with a connection to each.
fn primary_and_replica() -> ([larder_testkit::TestServer; 2], RawConn, RawConn) {
    let (primary, replica) = (spawn_server(), spawn_server());
    let (w, mut r) = (primary.raw(), replica.raw());
    follow(&mut r, primary.addr);
    ([primary, replica], w, r)
}

/// Waits until `conn`'s INFO replication says the link to its primary is up.
fn wait_link_up(conn: &mut RawConn) {
    eventually(20, || {
        let info = text(&conn.call(&["INFO", "replication"]).unwrap());
        info.contains("master_link_status:up").then_some(()).ok_or(format!("the link never came up: {info}"))
    })
}

/// Makes `conn`'s server a replica of the server at `primary` and waits
/// for the link.
fn follow(conn: &mut RawConn, primary: std::net::SocketAddr) {
    conn.call(&["REPLICAOF", "127.0.0.1", &primary.port().to_string()]).unwrap();
    wait_link_up(conn);
}

/// Waits until both sides hold the same data.
fn wait_same_digest(a: &mut RawConn, b: &mut RawConn) -> String {
    eventually(20, || {
        // The replica may still be empty (its data on the way): wait. The
        // primary must hold data, or two empty datasets would agree.
        let (x, y) = (digest(a), digest_or_empty(b));
        if x == y {
            Ok(x)
        } else {
            Err(format!("the replica never caught up: {x} vs {y}"))
        }
    })
}

fn write_mix(w: &mut RawConn) {
    for cmd in [
        &["SET", "after", "2", "EX", "100"][..],
        &["INCRBYFLOAT", "f", "1.5"],
        &["SADD", "s", "x", "y", "z"],
        &["ZADD", "z", "1", "a", "2", "b"],
        &["ZPOPMIN", "z"],
        &["XADD", "x", "1-1", "k", "v"],
        &["EVAL", "redis.call('set', KEYS[1], ARGV[1]) return redis.call('incr', 'counter')", "1", "k", "v"],
        &["SELECT", "4"],
        &["SET", "in4", "x"],
    ] {
        let f = w.call(cmd).unwrap();
        assert!(!matches!(f, Frame::Error(_)), "{cmd:?}: {f:?}");
    }
}

#[test]
fn larder_replicates_larder_and_redis() {
    // A Larder replica of a Larder primary, then of a real redis-server:
    // the image, then the stream, until DEBUG DIGEST agrees; clients may
    // not write to it; REPLICAOF NO ONE makes it a primary again.
    let primary = spawn_server();
    let replica = spawn_server();
    let mut w = primary.raw();
    w.call(&["SET", "before", "1"]).unwrap();
    w.call(&["RPUSH", "list", "a", "b", "c"]).unwrap();
    let mut r = replica.raw();
    let port = primary.addr.port().to_string();
    assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &port]).unwrap(), Frame::Simple("OK".into()));
    assert_eq!(
        r.call(&["REPLICAOF", "127.0.0.1", &port]).unwrap(),
        Frame::Simple("OK Already connected to specified master".into())
    );
    wait_link_up(&mut r);
    write_mix(&mut w);
    wait_same_digest(&mut w, &mut r);
    let refused = r.call(&["SET", "k", "v"]).unwrap();
    assert_eq!(refused, Frame::Error("READONLY You can't write against a read only replica.".into()));
    let role = r.call(&["ROLE"]).unwrap();
    assert!(format!("{role:?}").contains("connected"), "{role:?}");

    if let Some(redis) = RedisServer::start() {
        let mut rw = redis.raw();
        rw.call(&["SET", "from", "redis"]).unwrap();
        let port = redis.addr.port().to_string();
        r.call(&["REPLICAOF", "127.0.0.1", &port]).unwrap();
        write_mix(&mut rw);
        wait_link_up(&mut r);
        rw.call(&["SELECT", "0"]).unwrap();
        r.call(&["SELECT", "0"]).unwrap();
        wait_same_digest(&mut rw, &mut r);
    }
    assert_eq!(r.call(&["REPLICAOF", "NO", "ONE"]).unwrap(), Frame::Simple("OK".into()));
    assert_eq!(r.call(&["SET", "k", "v"]).unwrap(), Frame::Simple("OK".into()));
}

#[test]
fn a_replica_cut_off_from_its_primary_can_refuse_stale_reads() {
    let s = spawn_server();
    let mut c = s.raw();
    c.call(&["SET", "x", "1"]).unwrap();
    c.call(&["CONFIG", "SET", "replica-serve-stale-data", "no"]).unwrap();
    // Nothing listens on port 1: the link stays down.
    c.call(&["REPLICAOF", "127.0.0.1", "1"]).unwrap();
    let down = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
    assert_eq!(c.call(&["GET", "x"]).unwrap(), Frame::Error(down.into()));
    // Commands flagged stale still run (INFO, CONFIG, REPLICAOF…).
    let info = text(&c.call(&["INFO", "replication"]).unwrap());
    assert!(info.contains("role:slave") && info.contains("master_link_status:down"), "{info}");
    c.call(&["CONFIG", "SET", "replica-serve-stale-data", "yes"]).unwrap();
    assert_eq!(c.call(&["GET", "x"]).unwrap(), Frame::Bulk("1".into()));
    // CONFIG GET replicaof (and so CONFIG REWRITE) follows the role.
    let replicaof = |c: &mut RawConn| c.call(&["CONFIG", "GET", "replicaof"]).unwrap();
    let pair = |v: &str| Frame::Array(vec![Frame::bulk("replicaof"), Frame::Bulk(v.to_string().into())]);
    assert_eq!(replicaof(&mut c), pair("127.0.0.1 1"));
    c.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
    assert_eq!(replicaof(&mut c), pair(""));
}

#[test]
fn replicaof_in_the_config_follows_from_the_start() {
    let primary = spawn_server();
    let mut w = primary.raw();
    w.call(&["SET", "k", "v"]).unwrap();
    let mut config = larder_server::Config::default();
    config.apply_text(&format!("replicaof 127.0.0.1 {}", primary.addr.port())).unwrap();
    assert!(larder_server::Config::default().apply_text("replicaof 127.0.0.1 notaport").is_err());
    let replica = larder_testkit::spawn_server_with(config);
    let mut r = replica.raw();
    wait_link_up(&mut r);
    wait_same_digest(&mut w, &mut r);
    // With no history of its own to continue it asked `PSYNC ? -1`, as
    // Redis's replica does: a full sync, and no refused partial one.
    assert_eq!(info_field(&mut w, "stats", "sync_full"), "1");
    assert_eq!(info_field(&mut w, "stats", "sync_partial_err"), "0");
}

/// The binary, started in `dir` with `args` more; its log drained.
fn larder_binary(dir: &std::path::Path, args: &[&str]) -> (crate::Proc, RawConn, u16) {
    let mut all = vec!["--port", "0", "--dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let (proc, port, mut err) = crate::start_binary(&all);
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (proc, RawConn::connect(([127, 0, 0, 1], port).into()).unwrap(), port)
}

/// A replica restarted from its snapshot continues its primary's stream
/// from the offset the file saved (Redis's repl-id and repl-offset aux
/// fields), with no second full sync: the counter is applied neither
/// twice nor never, and what the primary writes next, with no SELECT, lands
/// in the database the file named (repl-stream-db).
#[test]
fn a_restarted_replica_continues_from_its_saved_position() {
    let primary = spawn_server();
    restart_and_continue(&mut primary.raw(), primary.addr.port());
    // The same with redis-server as the primary: its id and offsets.
    if let Some(redis) = RedisServer::start() {
        restart_and_continue(&mut redis.raw(), redis.addr.port());
    }
}

fn restart_and_continue(w: &mut RawConn, port: u16) {
    let dir = larder_testkit::private_dir("replica-restart");
    let port = port.to_string();
    let args = ["--replicaof", "127.0.0.1", &port];
    let (replica, mut r, _) = larder_binary(&dir, &args);
    wait_link_up(&mut r);
    for cmd in [&["SELECT", "3"][..], &["SET", "k", "v"], &["INCRBY", "counter", "50"]] {
        w.call(cmd).unwrap();
    }
    wait_in_step(w, &mut r);
    assert_eq!(r.call(&["SAVE"]).unwrap(), Frame::ok());
    drop(replica); // killed: what it had is what the file has
    for _ in 0..20 {
        w.call(&["INCR", "counter"]).unwrap();
    }
    let (_replica, mut r, _) = larder_binary(&dir, &args);
    wait_link_up(&mut r);
    wait_in_step(w, &mut r);
    assert_eq!(info_field(w, "stats", "sync_full"), "1", "no second full sync");
    assert_eq!(info_field(w, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(w, "stats", "sync_partial_err"), "0");
    r.call(&["SELECT", "3"]).unwrap();
    assert_eq!(r.call(&["GET", "counter"]).unwrap(), Frame::Bulk("70".into()));
}

/// A primary saves its position too (it has a backlog: a replica
/// attached). Restarted from that file as a replica of the replica
/// promoted in its place, it continues from it (PSYNC with its own old id,
/// which the promoted one keeps as replid2): no full sync, even though
/// the file lacks writes made after it was saved.
#[test]
fn a_restarted_old_primary_continues_from_the_replica_promoted() {
    let pdir = larder_testkit::private_dir("primary-restart");
    let (old, mut wp, pport) = larder_binary(&pdir, &[]);
    let a = spawn_server();
    let mut ra = a.raw();
    follow(&mut ra, ([127, 0, 0, 1], pport).into());
    write_counted(&mut wp, "one");
    wait_in_step(&mut wp, &mut ra);
    assert_eq!(wp.call(&["SAVE"]).unwrap(), Frame::ok());
    write_counted(&mut wp, "two");
    wait_in_step(&mut wp, &mut ra);
    drop(old);
    ra.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
    write_counted(&mut ra, "three");
    let aport = a.addr.port().to_string();
    let (_p, mut rp, _) = larder_binary(&pdir, &["--replicaof", "127.0.0.1", &aport]);
    wait_link_up(&mut rp);
    wait_in_step(&mut ra, &mut rp);
    assert_eq!(info_field(&mut ra, "stats", "sync_full"), "0", "no full sync");
    assert_eq!(info_field(&mut ra, "stats", "sync_partial_ok"), "1");
    rp.call(&["SELECT", "0"]).unwrap();
    let log = rp.call(&["LRANGE", "log", "0", "-1"]).unwrap();
    assert_eq!(log, Frame::Array(["one", "two", "three"].iter().map(|t| Frame::bulk(*t)).collect()));
}

/// A primary restarted from the file its SHUTDOWN saved keeps its old
/// history as replid2, up to the saved offset, so its replica continues
/// with PSYNC instead of a full sync, as Redis 7's does. Keys that were
/// past their deadline but not yet deleted are saved (as Redis saves
/// them), skipped by the load, and deleted in the stream, so the replica,
/// which still held them, ends with the primary's data.
#[test]
fn a_restarted_primary_continues_its_replicas_from_its_saved_position() {
    let dir = larder_testkit::private_dir("primary-restart-psync");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let args = ["--port", &port, "--save", "3600 1"];
    let (primary, mut p, _) = larder_binary(&dir, &args);
    let replica = spawn_server();
    let mut r = replica.raw();
    follow(&mut r, ([127, 0, 0, 1], port.parse().unwrap()).into());
    p.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).unwrap();
    write_counted(&mut p, "kept");
    for i in 0..10 {
        p.call(&["SET", &format!("short{i}"), "v", "PX", "10"]).unwrap();
    }
    wait_in_step(&mut p, &mut r);
    std::thread::sleep(Duration::from_millis(20));
    let (old_id, offset) =
        (info_field(&mut p, "replication", "master_replid"), info_field(&mut p, "replication", "master_repl_offset"));
    // Acknowledged up to there, so SHUTDOWN has no replica to wait for
    // (waiting, it would send a GETACK, and the saved offset would move).
    eventually(10, || {
        let info = text(&p.call(&["INFO", "replication"]).unwrap());
        info.contains(&format!(",offset={offset},")).then_some(()).ok_or(info)
    });
    let _ = p.call(&["SHUTDOWN"]);
    let mut primary = primary;
    eventually(10, || primary.0.try_wait().unwrap().map(drop).ok_or("the primary did not exit".to_string()));
    let (_primary, mut p, _) = larder_binary(&dir, &args);
    wait_link_up(&mut r);
    wait_in_step(&mut p, &mut r);
    assert_eq!(info_field(&mut p, "replication", "master_replid2"), old_id);
    let second: u64 = info_field(&mut p, "replication", "second_repl_offset").parse().unwrap();
    assert_eq!(second, offset.parse::<u64>().unwrap() + 1);
    assert_eq!(info_field(&mut p, "persistence", "rdb_last_load_keys_expired"), "10");
    assert_eq!(info_field(&mut p, "stats", "sync_full"), "0", "no full sync");
    assert_eq!(info_field(&mut p, "stats", "sync_partial_ok"), "1");
    assert_eq!(wait_same_digest(&mut p, &mut r), digest(&mut p));
    // DBSIZE counts keys past their deadline too: the replica's ten went.
    assert_eq!(r.call(&["DBSIZE"]).unwrap(), p.call(&["DBSIZE"]).unwrap());
    assert_eq!(r.call(&["DBSIZE"]).unwrap(), Frame::Integer(2), "the expired keys deleted on the replica");
}

/// A replica ignores maxmemory by default (replica-ignore-maxmemory yes,
/// as Redis): it neither evicts nor refuses, so its data stays the
/// primary's. `maxmemory 1` is over the limit whatever the process holds.
#[test]
fn a_replica_ignores_maxmemory_unless_told_otherwise() {
    let primary = spawn_server();
    let replica = spawn_server();
    let (mut w, mut r) = (primary.raw(), replica.raw());
    for cmd in [&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"][..], &["CONFIG", "SET", "maxmemory", "1"]] {
        assert_eq!(r.call(cmd).unwrap(), Frame::ok());
    }
    follow(&mut r, primary.addr);
    for i in 0..200 {
        w.call(&["SET", &format!("k{i}"), "v"]).unwrap();
    }
    wait_in_step(&mut w, &mut r);
    std::thread::sleep(Duration::from_millis(300)); // the cron and eviction ahead had their turns
    assert_eq!(r.call(&["DBSIZE"]).unwrap(), Frame::Integer(200));
    assert_eq!(info_field(&mut r, "stats", "evicted_keys"), "0");
    // Told otherwise, it evicts like any server over its limit.
    r.call(&["CONFIG", "SET", "replica-ignore-maxmemory", "no"]).unwrap();
    r.call(&["PING"]).unwrap();
    eventually(10, || match r.call(&["DBSIZE"]).unwrap() {
        Frame::Integer(0) => Ok(()),
        n => Err(format!("the replica kept its keys over maxmemory: {n:?}")),
    });
    r.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
}

/// A replica leaves keys past their deadline to its primary, as Redis's
/// do: its clients see them as gone, but it keeps them until the
/// primary's DEL, and the primary's stream still finds them. Here the
/// replica's clock runs an hour ahead, so every TTL the primary gives is
/// already past on the replica; a replica that expired keys itself would
/// lose them for good, and PERSIST or INCR on the primary would then leave
/// the two holding different data.
#[test]
fn a_replica_leaves_expiry_to_its_primary() {
    use larder_store::{Clock, ManualClock, SystemClock};
    use std::sync::Arc;
    let primary = spawn_server();
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms() + 3_600_000));
    let replica = larder_testkit::spawn_server_with_clock(larder_server::Config::default(), clock);
    let (mut w, mut r) = (primary.raw(), replica.raw());
    // One key arrives in the image, the others in the stream.
    w.call(&["SET", "img", "a", "EX", "600"]).unwrap();
    follow(&mut r, primary.addr);
    w.call(&["SET", "n", "5", "EX", "600"]).unwrap();
    assert_eq!(w.call(&["INCR", "n"]).unwrap(), Frame::Integer(6));
    w.call(&["SET", "k", "v", "EX", "600"]).unwrap();
    // A hash field's TTL is the primary's to act on too.
    w.call(&["HSET", "h", "f", "1", "g", "2"]).unwrap();
    w.call(&["HEXPIRE", "h", "600", "FIELDS", "1", "f"]).unwrap();
    wait_in_step(&mut w, &mut r);
    // Gone for the replica's readers…
    assert_eq!(r.call(&["GET", "k"]).unwrap(), Frame::Null);
    assert_eq!(r.call(&["EXISTS", "img", "n", "k"]).unwrap(), Frame::Integer(0));
    assert_eq!(r.call(&["TTL", "n"]).unwrap(), Frame::Integer(-2));
    assert_eq!(r.call(&["KEYS", "*"]).unwrap(), Frame::Array(vec![Frame::Bulk("h".into())]));
    assert_ne!(r.call(&["RANDOMKEY"]).unwrap(), Frame::Null, "an expired key, after 100 draws");
    // The hash's field past its TTL reads as gone too, the other stays.
    assert_eq!(r.call(&["HGET", "h", "f"]).unwrap(), Frame::Null);
    assert_eq!(
        r.call(&["HGETALL", "h"]).unwrap(),
        Frame::Array(vec![Frame::Bulk("g".into()), Frame::Bulk("2".into())])
    );
    assert_eq!(r.call(&["HLEN", "h"]).unwrap(), Frame::Integer(1));
    assert_eq!(r.call(&["HTTL", "h", "FIELDS", "1", "f"]).unwrap(), Frame::Array(vec![Frame::Integer(-2)]));
    // …but kept, through the active cycle's turns.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(r.call(&["DBSIZE"]).unwrap(), Frame::Integer(4));
    assert_eq!(info_field(&mut r, "stats", "expired_keys"), "0");
    w.call(&["HPERSIST", "h", "FIELDS", "1", "f"]).unwrap();
    wait_in_step(&mut w, &mut r);
    assert_eq!(r.call(&["HGET", "h", "f"]).unwrap(), Frame::Bulk("1".into()));
    // The primary's PERSIST brings them back as the primary holds them.
    for key in ["img", "n", "k"] {
        w.call(&["PERSIST", key]).unwrap();
    }
    wait_in_step(&mut w, &mut r);
    assert_eq!(r.call(&["GET", "img"]).unwrap(), Frame::Bulk("a".into()));
    assert_eq!(r.call(&["GET", "n"]).unwrap(), Frame::Bulk("6".into()));
    // The primary's DEL removes a key; a promoted replica expires its own.
    w.call(&["DEL", "k"]).unwrap();
    w.call(&["SET", "t", "1", "EX", "600"]).unwrap();
    wait_in_step(&mut w, &mut r);
    assert_eq!(r.call(&["DBSIZE"]).unwrap(), Frame::Integer(4));
    r.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
    assert_eq!(r.call(&["GET", "t"]).unwrap(), Frame::Null);
    assert_eq!(r.call(&["DBSIZE"]).unwrap(), Frame::Integer(3));
}

/// A writable replica expires the keys its own clients gave a deadline,
/// as Redis's `expireSlaveKeys` does: the primary never sends their DEL,
/// so without this they stayed stored for good. Keys from the primary
/// still wait for the primary's DEL.
#[test]
fn a_writable_replica_expires_the_keys_its_clients_gave_a_deadline() {
    use larder_store::{Clock, ManualClock, SystemClock};
    use std::sync::Arc;
    let primary = spawn_server();
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let replica = larder_testkit::spawn_server_with_clock(larder_server::Config::default(), clock.clone());
    let (mut w, mut r) = (primary.raw(), replica.raw());
    follow(&mut r, primary.addr);
    // Sixty seconds: the primary, on the real clock, must not expire it
    // while the test runs.
    w.call(&["SET", "from-primary", "v", "EX", "60"]).unwrap();
    wait_in_step(&mut w, &mut r);
    assert_eq!(r.call(&["CONFIG", "SET", "replica-read-only", "no"]).unwrap(), Frame::ok());
    for cmd in [
        "SET own-set v EX 5",
        "SET own-expire v",
        "PEXPIRE own-expire 5000",
        "SET moved v EX 5",
        "EXPIRE moved 100",
        "SET deleted v EX 5",
        "DEL deleted",
        "SET persisted v EX 5",
        "PERSIST persisted",
        "SET renamed-from v EX 5",
        "RENAME renamed-from renamed",
    ] {
        r.call(&cmd.split(' ').collect::<Vec<_>>()).unwrap();
    }
    assert_eq!(r.call(&["DBSIZE"]).unwrap(), Frame::Integer(6));
    clock.advance(10_000);
    let dbsize = |r: &mut larder_testkit::RawConn| match r.call(&["DBSIZE"]).unwrap() {
        Frame::Integer(n) => n,
        other => panic!("{other:?}"),
    };
    // own-set, own-expire and renamed go; the primary's key, the moved
    // deadline and the persisted key stay.
    larder_testkit::eventually(10, || match dbsize(&mut r) {
        3 => Ok(()),
        n => Err(format!("{n} keys")),
    });
    assert_eq!(info_field(&mut r, "stats", "expired_keys"), "3");
    assert_eq!(r.call(&["EXISTS", "moved", "persisted"]).unwrap(), Frame::Integer(2));
    clock.advance(100_000);
    larder_testkit::eventually(10, || match dbsize(&mut r) {
        2 => Ok(()),
        n => Err(format!("{n} keys")),
    });
    // The primary's key is hidden from readers but stays until its DEL.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(dbsize(&mut r), 2);
    assert_eq!(r.call(&["GET", "from-primary"]).unwrap(), Frame::Null);
    w.call(&["DEL", "from-primary"]).unwrap();
    larder_testkit::eventually(10, || match dbsize(&mut r) {
        1 => Ok(()),
        n => Err(format!("{n} keys")),
    });
}

/// CLIENT PAUSE on a replica holds its primary's stream too, as Redis
/// holds its primary's client: the bytes keep arriving
/// (slave_read_repl_offset) but are applied (slave_repl_offset) only once
/// the pause ends.
#[test]
fn a_paused_replica_receives_the_stream_but_applies_it_after() {
    let ([_primary, _replica], mut w, mut r) = primary_and_replica();
    w.call(&["SET", "foo", "bar"]).unwrap();
    wait_in_step(&mut w, &mut r);
    let applied = info_field(&mut r, "replication", "slave_repl_offset");
    assert_eq!(r.call(&["CLIENT", "PAUSE", "100000", "WRITE"]).unwrap(), Frame::ok());
    w.call(&["SET", "foo2", "bar2"]).unwrap();
    let sent = info_field(&mut w, "replication", "master_repl_offset");
    wait_info_field(&mut r, "replication", "slave_read_repl_offset", &sent);
    assert_eq!(info_field(&mut r, "replication", "slave_repl_offset"), applied);
    assert_eq!(r.call(&["GET", "foo2"]).unwrap(), Frame::Null);
    r.call(&["CLIENT", "UNPAUSE"]).unwrap();
    wait_in_step(&mut w, &mut r);
    assert_eq!(r.call(&["GET", "foo2"]).unwrap(), Frame::Bulk("bar2".into()));
    r.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
}

/// Client eviction never disconnects a replica (nor the primary's link on
/// the replica side): with maxmemory-clients at one byte, every normal
/// client goes and the link stays.
#[test]
fn client_eviction_spares_replication_links() {
    let ([primary, _replica], mut w, mut r) = primary_and_replica();
    for c in [&mut w, &mut r] {
        c.call(&["CLIENT", "NO-EVICT", "on"]).unwrap();
    }
    let mut victim = primary.raw();
    victim.call(&["PING"]).unwrap();
    for c in [&mut w, &mut r] {
        assert_eq!(c.call(&["CONFIG", "SET", "maxmemory-clients", "1"]).unwrap(), Frame::ok());
    }
    assert!(victim.call(&["PING"]).is_err(), "a normal client is disconnected");
    assert_eq!(info_field(&mut w, "stats", "evicted_clients"), "1");
    w.call(&["SET", "after", "1"]).unwrap();
    wait_in_step(&mut w, &mut r);
    assert_eq!(info_field(&mut w, "stats", "sync_full"), "1", "the replica never had to sync again");
    assert_eq!(r.call(&["GET", "after"]).unwrap(), Frame::Bulk("1".into()));
    r.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
}

/// Writes a replica must apply exactly once: a counter it would count
/// twice if a resumed stream repeated a command, in two databases.
fn write_counted(w: &mut RawConn, tag: &str) {
    for cmd in
        [&["SELECT", "0"][..], &["INCR", "counted"], &["RPUSH", "log", tag], &["SELECT", "4"], &["INCR", "counted"]]
    {
        let f = w.call(cmd).unwrap();
        assert!(!matches!(f, Frame::Error(_)), "{cmd:?}: {f:?}");
    }
}

/// Waits until `replica` has applied all `primary` sent (the offsets
/// agree), then checks that the data agrees too.
fn wait_in_step(primary: &mut RawConn, replica: &mut RawConn) {
    eventually(20, || {
        let sent = info_field(primary, "replication", "master_repl_offset");
        let applied = info_field(replica, "replication", "slave_repl_offset");
        (sent == applied).then_some(()).ok_or(format!("the replica applied up to {applied}, the primary sent {sent}"))
    });
    let (a, b) = (digest(primary), digest(replica));
    assert_eq!(a, b, "same offset, different data");
}

#[test]
fn a_broken_link_continues_from_the_backlog() {
    // Larder replicating Larder: a link cut from either side resumes with
    // PSYNC +CONTINUE and only the missed stream (a repeated INCR would
    // show in the digest); a gap larger than the backlog takes a full sync.
    let primary = spawn_server();
    let replica = spawn_server();
    let (mut w, mut r) = (primary.raw(), replica.raw());
    // A replica that came and went leaves the stream in database 4: the
    // next one needs a SELECT first, and the offsets must count it.
    let mut gone = primary.raw();
    gone.send(&["SYNC"]).unwrap();
    gone.read_sync_payload().unwrap();
    write_counted(&mut w, "before");
    drop(gone);
    follow(&mut r, primary.addr);
    write_mix(&mut w);
    // Each cut comes right after counted writes: a resume that started
    // early would apply them twice, and one that started late would skip
    // some; either shows in the digest, and in the offsets.
    write_counted(&mut w, "one");
    wait_in_step(&mut w, &mut r);
    assert_eq!(info_field(&mut w, "replication", "repl_backlog_active"), "1");
    let replid = info_field(&mut w, "replication", "master_replid");

    // Cut by the primary; writes land while the replica is away.
    assert_eq!(w.call(&["CLIENT", "KILL", "TYPE", "replica"]).unwrap(), Frame::Integer(1));
    write_counted(&mut w, "gap1");
    wait_info_field(&mut w, "stats", "sync_partial_ok", "1");
    wait_in_step(&mut w, &mut r);
    // Cut by the replica (the connection applying the primary's stream).
    assert_eq!(r.call(&["CLIENT", "KILL", "TYPE", "master"]).unwrap(), Frame::Integer(1));
    write_counted(&mut w, "gap2");
    wait_info_field(&mut w, "stats", "sync_partial_ok", "2");
    wait_in_step(&mut w, &mut r);
    assert_eq!(info_field(&mut w, "stats", "sync_full"), "2", "the one gone, and this one");
    r.call(&["SELECT", "4"]).unwrap();
    assert_eq!(r.call(&["GET", "counted"]).unwrap(), Frame::Bulk("4".into()));
    assert_eq!(info_field(&mut w, "replication", "master_replid"), replid);

    // More missed than the backlog holds: a full sync, and the same data.
    w.call(&["CONFIG", "SET", "repl-backlog-size", "16kb"]).unwrap();
    assert_eq!(info_field(&mut w, "replication", "repl_backlog_size"), "16384");
    assert_eq!(w.call(&["CLIENT", "KILL", "TYPE", "replica"]).unwrap(), Frame::Integer(1));
    let big = "x".repeat(20_000);
    w.call(&["SET", "big", &big]).unwrap();
    write_counted(&mut w, "gap3");
    wait_info_field(&mut w, "stats", "sync_full", "3");
    wait_in_step(&mut w, &mut r);
    // This one, and the first: a server turned replica asks to continue
    // its own history (Redis's cached master made from itself), which
    // its primary does not hold.
    assert_eq!(info_field(&mut w, "stats", "sync_partial_err"), "2");
    assert_eq!(info_field(&mut w, "replication", "repl_backlog_histlen"), "16384");

    // No replica for repl-backlog-ttl seconds: the backlog is freed, and
    // the history renamed so nobody continues across the gap.
    r.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
    w.call(&["CONFIG", "SET", "repl-backlog-ttl", "1"]).unwrap();
    wait_info_field(&mut w, "replication", "repl_backlog_active", "0");
    assert_ne!(info_field(&mut w, "replication", "master_replid"), replid);
    assert_eq!(info_field(&mut w, "replication", "repl_backlog_histlen"), "0");
}

#[test]
fn redis_resumes_from_larder_and_larder_from_redis() {
    // The same cut against a real redis-server, both ways: each side's
    // INFO stats counts the partial resynchronization it accepted.
    let larder = spawn_server();
    let Some(redis) = RedisServer::start_with(&["--replicaof", "127.0.0.1", &larder.addr.port().to_string()]) else {
        return;
    };
    let (mut l, mut rr) = (larder.raw(), redis.raw());
    wait_link_up(&mut rr);
    write_counted(&mut l, "one");
    cut_and_resume(&mut l, &mut rr);

    // Now a Larder replica of another redis-server.
    let Some(primary) = RedisServer::start() else { return };
    let (mut p, follower) = (primary.raw(), spawn_server());
    let mut f = follower.raw();
    write_counted(&mut p, "one");
    follow(&mut f, primary.addr);
    write_counted(&mut p, "two");
    cut_and_resume(&mut p, &mut f);
}

/// With `replica` in step after counted writes: cuts `primary`'s link to
/// it, writes while it is away, and checks that it continued (one partial
/// resynchronization, still one full one) and is in step again.
fn cut_and_resume(primary: &mut RawConn, replica: &mut RawConn) {
    wait_in_step(primary, replica);
    assert_eq!(primary.call(&["CLIENT", "KILL", "TYPE", "replica"]).unwrap(), Frame::Integer(1));
    write_counted(primary, "gap");
    wait_info_field(primary, "stats", "sync_partial_ok", "1");
    wait_in_step(primary, replica);
    assert_eq!(info_field(primary, "stats", "sync_full"), "1");
}

#[test]
fn masterauth_authenticates_the_link() {
    let primary = spawn_server();
    let mut w = primary.raw();
    write_counted(&mut w, "one");
    w.call(&["CONFIG", "SET", "requirepass", "s3cret"]).unwrap();
    let replica = spawn_server();
    let mut r = replica.raw();
    r.call(&["REPLICAOF", "127.0.0.1", &primary.addr.port().to_string()]).unwrap();
    // Without masterauth the primary refuses the sync; tries go on.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(info_field(&mut r, "replication", "master_link_status"), "down");
    assert_eq!(info_field(&mut w, "stats", "sync_full"), "0");
    r.call(&["CONFIG", "SET", "masterauth", "s3cret"]).unwrap();
    assert_eq!(
        r.call(&["CONFIG", "GET", "masterauth"]).unwrap(),
        Frame::Array(vec![Frame::Bulk("masterauth".into()), Frame::Bulk("s3cret".into())])
    );
    wait_link_up(&mut r);
    wait_same_digest(&mut w, &mut r);

    // masteruser with an ACL user, against a real redis-server.
    let Some(redis) = RedisServer::start() else { return };
    let mut p = redis.raw();
    write_counted(&mut p, "one");
    p.call(&["ACL", "SETUSER", "repl", "on", ">pw", "+psync", "+replconf", "+ping"]).unwrap();
    p.call(&["ACL", "SETUSER", "default", "off"]).unwrap();
    let follower = spawn_server();
    let mut f = follower.raw();
    f.call(&["CONFIG", "SET", "masteruser", "repl"]).unwrap();
    f.call(&["CONFIG", "SET", "masterauth", "pw"]).unwrap();
    f.call(&["REPLICAOF", "127.0.0.1", &redis.addr.port().to_string()]).unwrap();
    wait_link_up(&mut f);
    wait_same_digest(&mut p, &mut f);
}

#[test]
fn a_full_sync_lets_clients_write_and_misses_none_of_their_writes() {
    // The image is a cut made in the background: while it is being made
    // the primary goes on answering, and every write from the cut on
    // reaches the replica through the stream, none twice.
    let primary = spawn_server();
    let mut w = primary.raw();
    let value = "v".repeat(100);
    w.call(&["DEBUG", "POPULATE", "300000", "key", "100"]).unwrap();
    w.call(&["SET", "big", &value]).unwrap();
    let replica = spawn_server();
    let mut r = replica.raw();
    r.call(&["REPLICAOF", "127.0.0.1", &primary.addr.port().to_string()]).unwrap();
    // Writes while the image is made, each answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut during = 0;
    loop {
        let saving = info_field(&mut w, "persistence", "rdb_bgsave_in_progress") == "1";
        write_counted(&mut w, "during");
        if saving && info_field(&mut w, "persistence", "rdb_bgsave_in_progress") == "1" {
            during += 1;
        }
        let up = info_field(&mut r, "replication", "master_link_status") == "up";
        if up && during > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no write was answered while the image was made");
    }
    write_counted(&mut w, "after");
    wait_in_step(&mut w, &mut r);
    assert_eq!(info_field(&mut w, "stats", "sync_full"), "1");
}

#[test]
fn a_chained_replica_syncs_again_when_its_primary_reloads() {
    // a <- b <- c. When b takes a full sync from a (its gap outgrew a's
    // backlog), the data b passes on did not come through its stream: c
    // must not continue from b's backlog, but sync again.
    let (a, b, c) = (spawn_server(), spawn_server(), spawn_server());
    let (mut wa, mut rb, mut rc) = (a.raw(), b.raw(), c.raw());
    rb.call(&["REPLICAOF", "127.0.0.1", &a.addr.port().to_string()]).unwrap();
    wait_link_up(&mut rb);
    rc.call(&["REPLICAOF", "127.0.0.1", &b.addr.port().to_string()]).unwrap();
    wait_link_up(&mut rc);
    write_counted(&mut wa, "one");
    wait_same_digest(&mut wa, &mut rc);
    wa.call(&["CONFIG", "SET", "repl-backlog-size", "16kb"]).unwrap();
    assert_eq!(wa.call(&["CLIENT", "KILL", "TYPE", "replica"]).unwrap(), Frame::Integer(1));
    wa.call(&["SET", "big", &"x".repeat(20_000)]).unwrap();
    write_counted(&mut wa, "gap");
    wait_info_field(&mut wa, "stats", "sync_full", "2");
    wait_same_digest(&mut wa, &mut rb);
    wait_same_digest(&mut wa, &mut rc);
    let mut wb = b.raw();
    assert_eq!(info_field(&mut wb, "stats", "sync_full"), "2", "c synced in full twice");
}

#[test]
fn wait_counts_the_replicas_that_acknowledged_a_clients_writes() {
    let primary = spawn_server();
    let mut w = primary.raw();
    // No replica: WAIT 0 is met at once, WAIT 1 returns 0 at its timeout.
    assert_eq!(w.call(&["WAIT", "0", "0"]).unwrap(), Frame::Integer(0));
    w.call(&["SET", "a", "1"]).unwrap();
    assert_eq!(w.call(&["WAIT", "1", "50"]).unwrap(), Frame::Integer(0));
    assert_eq!(w.call(&["WAIT", "1", "-1"]).unwrap(), Frame::Error("ERR timeout is negative".into()));
    assert_eq!(
        w.call(&["WAIT", "x", "0"]).unwrap(),
        Frame::Error("ERR value is not an integer or out of range".into())
    );
    assert_eq!(
        w.call(&["WAIT", "1", "x"]).unwrap(),
        Frame::Error("ERR timeout is not an integer or out of range".into())
    );
    // A replica that acknowledges only by hand: WAIT counts what it
    // acknowledged, not that it is there.
    let mut fake = primary.raw();
    fake.send(&["SYNC"]).unwrap();
    fake.read_sync_payload().unwrap();
    w.call(&["SET", "a", "2"]).unwrap();
    assert_eq!(w.call(&["WAIT", "1", "50"]).unwrap(), Frame::Integer(0), "nothing acknowledged yet");
    // The acknowledgement races the WAIT (it may land between WAIT's count
    // and its registration), many times over: none may be lost.
    for i in 0..300 {
        w.call(&["SET", "a", &i.to_string()]).unwrap();
        let end = info_field(&mut w, "replication", "master_repl_offset");
        fake.send(&["REPLCONF", "ACK", &end]).unwrap();
        assert_eq!(w.call(&["WAIT", "1", "0"]).unwrap(), Frame::Integer(1), "acknowledged to the end, round {i}");
    }
    drop(fake);
    let replica = spawn_server();
    let mut r = replica.raw();
    follow(&mut r, primary.addr);
    let Frame::Error(e) = r.call(&["WAIT", "0", "0"]).unwrap() else { panic!("WAIT on a replica") };
    assert!(e.starts_with(b"ERR WAIT cannot be used with replica instances."), "{e:?}");
    // Each write is acknowledged: WAIT with no timeout returns once the
    // replica has it (GETACK asks at once), and the replica does have it.
    for i in 0..20 {
        w.call(&["INCR", "n"]).unwrap();
        assert_eq!(w.call(&["WAIT", "1", "0"]).unwrap(), Frame::Integer(1), "round {i}");
        assert_eq!(r.call(&["GET", "n"]).unwrap(), Frame::Bulk((i + 1).to_string().into()));
    }
    // More replicas than exist: the timeout, then the count.
    assert_eq!(w.call(&["WAIT", "2", "100"]).unwrap(), Frame::Integer(1));
    // CLIENT UNBLOCK … TIMEOUT ends a WAIT with the count as of then.
    // Unblocked once the replica has acknowledged everything (the GETACK
    // that WAIT sent included), the count is 1.
    let Frame::Integer(id) = w.call(&["CLIENT", "ID"]).unwrap() else { panic!("CLIENT ID") };
    w.call(&["INCR", "n"]).unwrap();
    let mut other = primary.raw();
    let written: u64 = info_field(&mut other, "replication", "master_repl_offset").parse().unwrap();
    w.send(&["WAIT", "5", "0"]).unwrap();
    eventually(10, || {
        let info = text(&other.call(&["INFO", "replication"]).unwrap());
        let sent: u64 = info_field(&mut other, "replication", "master_repl_offset").parse().unwrap();
        let acked = sent > written && info.contains(&format!(",offset={sent},"));
        acked.then_some(()).ok_or(format!("no GETACK, or no acknowledgement: {info}"))
    });
    assert_eq!(other.call(&["CLIENT", "UNBLOCK", &id.to_string(), "TIMEOUT"]).unwrap(), Frame::Integer(1));
    assert_eq!(w.read_frame().unwrap(), Frame::Integer(1));
    // Not from scripts; at once inside MULTI.
    let Frame::Error(e) = w.call(&["EVAL", "return redis.call('wait', 0, 0)", "0"]).unwrap() else {
        panic!("WAIT in a script")
    };
    assert!(e.starts_with(b"ERR This Redis command is not allowed from script"), "{e:?}");
    w.call(&["MULTI"]).unwrap();
    w.call(&["WAIT", "5", "0"]).unwrap();
    assert_eq!(w.call(&["EXEC"]).unwrap(), Frame::Array(vec![Frame::Integer(1)]));
    // A redis-server replica acknowledges too.
    if let Some(redis) = RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.addr.port().to_string()]) {
        let mut rr = redis.raw();
        wait_link_up(&mut rr);
        w.call(&["SET", "b", "2"]).unwrap();
        assert_eq!(w.call(&["WAIT", "2", "0"]).unwrap(), Frame::Integer(2));
        assert_eq!(rr.call(&["GET", "b"]).unwrap(), Frame::Bulk("2".into()));
    }
}

/// Reads one RESP array of bulk strings (what a replica sends).
fn read_command(r: &mut impl std::io::BufRead) -> Vec<String> {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let n: usize = line.trim().trim_start_matches('*').parse().expect("an array");
    (0..n)
        .map(|_| {
            line.clear();
            r.read_line(&mut line).unwrap();
            let len: usize = line.trim().trim_start_matches('$').parse().expect("a bulk");
            let mut arg = vec![0; len + 2];
            r.read_exact(&mut arg).unwrap();
            String::from_utf8_lossy(&arg[..len]).into_owned()
        })
        .collect()
}

#[test]
fn a_link_cut_inside_a_transaction_continues_from_before_it() {
    // A scripted primary: a full sync at offset 100, then MULTI and INCR,
    // and the link drops before EXEC. The replica's next PSYNC must ask
    // for offset 101: the transaction again, whole.
    use std::io::{BufReader, Write};
    let image = {
        let empty = spawn_server();
        let mut sync = empty.raw();
        sync.send(&["SYNC"]).unwrap();
        sync.read_sync_payload().unwrap()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let replid = "a".repeat(40);
    let multi = b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n";
    let fake = {
        let replid = replid.clone();
        std::thread::spawn(move || {
            let mut asked = Vec::new();
            for round in 0..2 {
                let (conn, _) = listener.accept().unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let cmd = read_command(&mut r);
                    match cmd[0].to_lowercase().as_str() {
                        "ping" => w.write_all(b"+PONG\r\n").unwrap(),
                        "psync" => {
                            asked.push(cmd[1..].join(" "));
                            break;
                        }
                        _ => w.write_all(b"+OK\r\n").unwrap(),
                    }
                }
                if round == 0 {
                    w.write_all(format!("+FULLRESYNC {replid} 100\r\n${}\r\n", image.len()).as_bytes()).unwrap();
                    w.write_all(&image).unwrap();
                    w.write_all(multi).unwrap();
                    std::thread::sleep(Duration::from_millis(300));
                } else {
                    w.write_all(format!("+CONTINUE {replid}\r\n").as_bytes()).unwrap();
                    w.write_all(multi).unwrap();
                    w.write_all(b"*1\r\n$4\r\nEXEC\r\n").unwrap();
                    std::thread::sleep(Duration::from_millis(2000));
                }
            }
            asked
        })
    };
    let replica = spawn_server();
    let mut r = replica.raw();
    let own = info_field(&mut r, "replication", "master_replid");
    r.call(&["REPLICAOF", "127.0.0.1", &port.to_string()]).unwrap();
    eventually(15, || match r.call(&["GET", "n"]).unwrap() {
        Frame::Bulk(b) if b == "1" => Ok(()),
        other => Err(format!("the transaction never ran whole: n is {other:?}")),
    });
    let asked = fake.join().unwrap();
    // First its own history (a server turned replica asks to continue
    // it, as Redis's does), then the primary's from before the EXEC.
    assert_eq!(asked, vec![format!("{own} 1"), format!("{replid} 101")]);
    r.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
}

/// A failover without full syncs (PSYNC2), as Sentinel drives one: p with
/// replicas a and b; a is promoted; b and then p itself are pointed at a
/// and each continues from a's backlog (a's sync_full stays 0); writes on
/// a reach both. Then c chains behind b: b passes a's stream on verbatim,
/// so c's full sync is cut between two of a's commands, in the database
/// a's stream is in (written into the image, as Redis's repl-stream-db).
#[test]
fn a_failover_continues_without_a_full_sync() {
    let (p, a, b, c) = (spawn_server(), spawn_server(), spawn_server(), spawn_server());
    let (mut wp, mut ra, mut rb, mut rc) = (p.raw(), a.raw(), b.raw(), c.raw());
    follow(&mut ra, p.addr);
    follow(&mut rb, p.addr);
    write_mix(&mut wp);
    write_counted(&mut wp, "one");
    wait_in_step(&mut wp, &mut ra);
    wait_in_step(&mut wp, &mut rb);
    let old_id = info_field(&mut wp, "replication", "master_replid");
    let reached: u64 = info_field(&mut wp, "replication", "master_repl_offset").parse().unwrap();
    // A replica's history is its primary's.
    assert_eq!(info_field(&mut ra, "replication", "master_replid"), old_id);
    assert_eq!(info_field(&mut ra, "replication", "master_repl_offset"), reached.to_string());

    ra.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
    let new_id = info_field(&mut ra, "replication", "master_replid");
    assert_ne!(new_id, old_id);
    assert_eq!(info_field(&mut ra, "replication", "master_replid2"), old_id);
    assert_eq!(info_field(&mut ra, "replication", "second_repl_offset"), (reached + 1).to_string());
    write_counted(&mut ra, "two");

    follow(&mut rb, a.addr);
    wait_in_step(&mut ra, &mut rb);
    assert_eq!(info_field(&mut ra, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut rb, "replication", "master_replid"), new_id, "b took the new id");
    assert_eq!(info_field(&mut rb, "replication", "master_replid2"), old_id);
    // The old primary, demoted, continues its own history from a.
    follow(&mut wp, a.addr);
    write_counted(&mut ra, "three");
    wait_in_step(&mut ra, &mut wp);
    wait_in_step(&mut ra, &mut rb);
    assert_eq!(info_field(&mut ra, "stats", "sync_partial_ok"), "2");
    assert_eq!(info_field(&mut ra, "stats", "sync_full"), "0", "nobody needed the whole dataset");

    // c chains behind b, while a's stream is in database 4 (write_counted
    // ends there): what a writes next, without a SELECT, lands in 4 on c.
    follow(&mut rc, b.addr);
    ra.call(&["SELECT", "4"]).unwrap();
    ra.call(&["SET", "after-c", "1"]).unwrap();
    wait_in_step(&mut ra, &mut rc);
    rc.call(&["SELECT", "4"]).unwrap();
    assert_eq!(rc.call(&["GET", "after-c"]).unwrap(), Frame::Bulk("1".into()));
    assert_eq!(info_field(&mut rb, "stats", "sync_full"), "1");
    assert_eq!(info_field(&mut rc, "replication", "master_replid"), new_id);
}

/// The same failover across implementations: a redis-server replica of a
/// Larder primary continues from the Larder replica promoted in its place,
/// and a Larder replica of a redis-server primary continues from the
/// redis-server replica promoted in its place. Each promoted server's
/// INFO counts a partial resynchronization and no full one.
#[test]
fn a_failover_continues_across_redis_and_larder() {
    // Larder p, Larder a and redis-server r replicating it; a promoted.
    let (p, a) = (spawn_server(), spawn_server());
    let port = p.addr.port().to_string();
    let Some(r) = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]) else { return };
    let (mut wp, mut ra, mut rr) = (p.raw(), a.raw(), r.raw());
    follow(&mut ra, p.addr);
    wait_link_up(&mut rr);
    promote_and_repoint(&mut wp, &mut ra, a.addr, &mut rr);

    // redis-server p2, redis-server a2 and Larder l replicating it; a2
    // promoted.
    let Some(p2) = RedisServer::start() else { return };
    let port2 = p2.addr.port().to_string();
    let Some(a2) = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port2]) else { return };
    let l = spawn_server();
    let (mut wp2, mut ra2, mut rl) = (p2.raw(), a2.raw(), l.raw());
    wait_link_up(&mut ra2);
    follow(&mut rl, p2.addr);
    promote_and_repoint(&mut wp2, &mut ra2, a2.addr, &mut rl);
}

/// A connected replica pointed at a sibling (another replica of the same
/// primary, as Sentinel does when it reshapes a chain) continues from it
/// in the database the stream is in now, not the one its link started
/// in: the sibling passes the primary's stream on without a new SELECT.
#[test]
fn a_replica_repointed_at_a_sibling_stays_in_the_streams_database() {
    let (p, a, b) = (spawn_server(), spawn_server(), spawn_server());
    let (mut wp, mut ra, mut rb) = (p.raw(), a.raw(), b.raw());
    wp.call(&["SET", "before", "1"]).unwrap();
    follow(&mut ra, p.addr);
    follow(&mut rb, p.addr);
    // The stream selects 4 while both links are up.
    wp.call(&["SELECT", "4"]).unwrap();
    wp.call(&["SET", "in4", "1"]).unwrap();
    wait_in_step(&mut wp, &mut ra);
    wait_in_step(&mut wp, &mut rb);
    follow(&mut rb, a.addr);
    assert_eq!(info_field(&mut ra, "stats", "sync_partial_ok"), "1");
    wp.call(&["SET", "later", "1"]).unwrap();
    wait_in_step(&mut wp, &mut ra);
    wait_in_step(&mut ra, &mut rb);
    rb.call(&["SELECT", "4"]).unwrap();
    assert_eq!(rb.call(&["GET", "later"]).unwrap(), Frame::Bulk("1".into()));
    rb.call(&["SELECT", "0"]).unwrap();
    assert_eq!(rb.call(&["EXISTS", "later"]).unwrap(), Frame::Integer(0));
}

/// With `promoted` and `follower` replicating `primary`: writes, then
/// `promoted` takes over (REPLICAOF NO ONE, as Sentinel does) and
/// `follower` is pointed at it, which it continues from (one partial
/// resynchronization, no full one).
fn promote_and_repoint(
    primary: &mut RawConn,
    promoted: &mut RawConn,
    at: std::net::SocketAddr,
    follower: &mut RawConn,
) {
    write_counted(primary, "one");
    wait_in_step(primary, promoted);
    wait_in_step(primary, follower);
    promoted.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
    write_counted(promoted, "two");
    follow(follower, at);
    wait_in_step(promoted, follower);
    assert_eq!(info_field(promoted, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(promoted, "stats", "sync_full"), "0");
}

/// FAILOVER as Redis coordinates it: writes pause until a replica is in
/// step, then the primary becomes its replica and the replica a primary,
/// by one PSYNC … FAILOVER that continues (no full sync). A target that
/// cannot catch up before the TIMEOUT aborts it, and the writes held
/// meanwhile run. The errors are Redis's.
#[test]
fn failover_hands_the_role_to_a_replica() {
    let (p, a, b) = (spawn_server(), spawn_server(), spawn_server());
    let (mut wp, mut ra, mut rb) = (p.raw(), a.raw(), b.raw());
    follow(&mut ra, p.addr);
    follow(&mut rb, p.addr);
    write_counted(&mut wp, "one");
    wait_in_step(&mut wp, &mut ra);
    wait_in_step(&mut wp, &mut rb);
    let a_port = a.addr.port().to_string();
    let err = |c: &mut RawConn, args: &[&str]| match c.call(args).unwrap() {
        Frame::Error(e) => String::from_utf8_lossy(&e).into_owned(),
        other => panic!("{args:?}: {other:?}"),
    };
    assert_eq!(err(&mut ra, &["FAILOVER"]), "ERR FAILOVER is not valid when server is a replica.");
    assert_eq!(
        err(&mut wp, &["FAILOVER", "TO", "127.0.0.1", "1"]),
        "ERR FAILOVER target HOST and PORT is not a replica."
    );
    assert_eq!(
        err(&mut wp, &["FAILOVER", "FORCE"]),
        "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
    );
    assert_eq!(err(&mut wp, &["FAILOVER", "TIMEOUT", "0"]), "ERR FAILOVER timeout must be greater than 0");
    assert_eq!(err(&mut wp, &["FAILOVER", "ABORT"]), "ERR No failover in progress.");
    assert_eq!(info_field(&mut wp, "replication", "master_failover_state"), "no-failover");

    // a holds its primary's stream (CLIENT PAUSE on a replica does), so it
    // cannot catch up: the failover to it times out.
    ra.call(&["CLIENT", "PAUSE", "100000", "WRITE"]).unwrap();
    wp.call(&["SET", "before", "1"]).unwrap();
    // Long enough for the checks below to run inside it on a busy machine.
    assert_eq!(wp.call(&["FAILOVER", "TO", "127.0.0.1", &a_port, "TIMEOUT", "2000"]).unwrap(), Frame::ok());
    assert_eq!(info_field(&mut wp, "replication", "master_failover_state"), "waiting-for-sync");
    assert_eq!(err(&mut wp, &["FAILOVER"]), "ERR FAILOVER already in progress.");
    assert_eq!(err(&mut wp, &["REPLICAOF", "NO", "ONE"]), "ERR REPLICAOF not allowed while failing over.");
    let mut writer = p.raw();
    writer.send(&["SET", "held", "1"]).unwrap();
    wait_info_field(&mut wp, "replication", "master_failover_state", "no-failover");
    assert_eq!(writer.read_frame().unwrap(), Frame::ok(), "the held write ran after the abort");
    assert_eq!(info_field(&mut wp, "replication", "role"), "master");
    ra.call(&["CLIENT", "UNPAUSE"]).unwrap();
    wait_in_step(&mut wp, &mut ra);

    assert_eq!(wp.call(&["FAILOVER", "TO", "127.0.0.1", &a_port]).unwrap(), Frame::ok());
    wait_info_field(&mut wp, "replication", "role", "slave");
    wait_info_field(&mut wp, "replication", "master_failover_state", "no-failover");
    wait_info_field(&mut wp, "replication", "master_link_status", "up");
    assert_eq!(info_field(&mut ra, "replication", "role"), "master");
    assert_eq!(info_field(&mut ra, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut ra, "stats", "sync_full"), "0", "the old primary continued");
    // The old primary now refuses writes, and passes a's stream on to b,
    // which continues from it too.
    assert!(err(&mut wp, &["SET", "x", "1"]).starts_with("READONLY"));
    write_counted(&mut ra, "two");
    wait_in_step(&mut ra, &mut wp);
    wait_in_step(&mut ra, &mut rb);
    // a's and b's first syncs, and then b's continuation.
    assert_eq!(info_field(&mut wp, "stats", "sync_full"), "2");
    assert_eq!(info_field(&mut wp, "stats", "sync_partial_ok"), "1");
}

/// FAILOVER across implementations: a Larder primary hands its role to a
/// redis-server replica, and a redis-server primary to a Larder replica;
/// each new primary counts one partial resynchronization (the old
/// primary's PSYNC … FAILOVER continued) and no full one.
#[test]
fn failover_works_between_redis_and_larder() {
    let p = spawn_server();
    let port = p.addr.port().to_string();
    let Some(r) = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]) else { return };
    let (mut wp, mut rr) = (p.raw(), r.raw());
    wait_link_up(&mut rr);
    hand_over(&mut wp, &mut rr);

    let Some(p2) = RedisServer::start() else { return };
    let l = spawn_server();
    let (mut wp2, mut rl) = (p2.raw(), l.raw());
    follow(&mut rl, p2.addr);
    hand_over(&mut wp2, &mut rl);
}

/// With `replica` linked to `primary`: FAILOVER on the primary, then the
/// checks that the roles swapped by a continued PSYNC and that writes on
/// the new primary reach the old one.
fn hand_over(primary: &mut RawConn, replica: &mut RawConn) {
    write_counted(primary, "one");
    wait_in_step(primary, replica);
    assert_eq!(primary.call(&["FAILOVER"]).unwrap(), Frame::ok());
    wait_info_field(primary, "replication", "role", "slave");
    wait_info_field(primary, "replication", "master_link_status", "up");
    assert_eq!(info_field(replica, "replication", "role"), "master");
    assert_eq!(info_field(replica, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(replica, "stats", "sync_full"), "0");
    write_counted(replica, "two");
    wait_in_step(replica, primary);
}

/// replica-announce-ip and -port are what a primary lists for the replica
/// (Larder's and redis-server's INFO both read them from REPLCONF), and
/// replica-priority and replica-announced show in the replica's INFO, for
/// Sentinel to read.
#[test]
fn a_replica_announces_what_its_config_says() {
    let larder = spawn_server();
    let redis = RedisServer::start();
    let mut primaries: Vec<(RawConn, std::net::SocketAddr)> = vec![(larder.raw(), larder.addr)];
    if let Some(r) = &redis {
        primaries.push((r.raw(), r.addr));
    }
    for (mut p, addr) in primaries {
        let replica = spawn_server();
        let mut r = replica.raw();
        for (name, value) in [
            ("replica-announce-ip", "10.9.8.7"),
            ("slave-announce-port", "7777"),
            ("replica-priority", "7"),
            ("replica-announced", "no"),
        ] {
            assert_eq!(r.call(&["CONFIG", "SET", name, value]).unwrap(), Frame::ok());
        }
        follow(&mut r, addr);
        eventually(20, || {
            let slave0 = info_field(&mut p, "replication", "slave0");
            slave0.starts_with("ip=10.9.8.7,port=7777,").then_some(()).ok_or(slave0)
        });
        assert_eq!(info_field(&mut r, "replication", "slave_priority"), "7");
        assert_eq!(info_field(&mut r, "replication", "replica_announced"), "0");
    }
}

/// repl-timeout, both ways. A primary closes a replica that has sent no
/// REPLCONF ACK for that long; a replica whose primary has sent nothing
/// (not even a PING) for that long drops the link and connects again.
#[test]
fn repl_timeout_ends_silent_links() {
    // The primary's side: a raw replica that never acknowledges.
    let primary = spawn_server();
    let mut p = primary.raw();
    p.call(&["CONFIG", "SET", "repl-timeout", "1"]).unwrap();
    let mut silent = primary.raw();
    silent.send(&["SYNC"]).unwrap();
    silent.read_sync_payload().unwrap();
    wait_info_field(&mut p, "replication", "connected_slaves", "1");
    let started = Instant::now();
    silent.read_to_close().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "closed after {:?}", started.elapsed());
    wait_info_field(&mut p, "replication", "connected_slaves", "0");

    // The replica's side: a primary that syncs it, then says nothing.
    let image = {
        let mut c = primary.raw();
        c.send(&["SYNC"]).unwrap();
        c.read_sync_payload().unwrap()
    };
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_addr = mute.local_addr().unwrap();
    let serve = std::thread::spawn(move || {
        use std::io::{BufRead, Read, Write};
        let mut connections = 0;
        for stream in mute.incoming().take(2) {
            connections += 1;
            let mut stream = stream.unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            // PING, REPLCONF listening-port, REPLCONF capa, PSYNC: each an
            // array of bulk strings; only the command's first word matters.
            for _ in 0..4 {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let n: usize = header.trim()[1..].parse().unwrap();
                let mut words = Vec::new();
                for _ in 0..n {
                    let (mut len, mut word) = (String::new(), String::new());
                    reader.read_line(&mut len).unwrap();
                    reader.read_line(&mut word).unwrap();
                    words.push(word.trim().to_string());
                }
                let reply = match words[0].as_str() {
                    "PING" => b"+PONG\r\n".to_vec(),
                    "PSYNC" => {
                        let mut r = format!("+FULLRESYNC {} 0\r\n${}\r\n", "a".repeat(40), image.len()).into_bytes();
                        r.extend_from_slice(&image);
                        r
                    }
                    _ => b"+OK\r\n".to_vec(),
                };
                stream.write_all(&reply).unwrap();
            }
            // Then silence, until the replica gives up on this link.
            if connections == 1 {
                let _ = reader.read_to_end(&mut Vec::new());
            }
        }
        connections
    });
    let replica = spawn_server();
    let mut r = replica.raw();
    r.call(&["CONFIG", "SET", "repl-timeout", "1"]).unwrap();
    let started = Instant::now();
    follow(&mut r, mute_addr);
    assert_eq!(serve.join().unwrap(), 2, "the replica connected again");
    assert!(started.elapsed() < Duration::from_secs(15), "after {:?}", started.elapsed());
}

/// bind-source-addr: the replica's link connects from that address (the
/// primary lists the replica under it).
#[test]
fn a_replica_connects_from_bind_source_addr() {
    let (primary, replica) = (spawn_server(), spawn_server());
    let (mut p, mut r) = (primary.raw(), replica.raw());
    assert_eq!(r.call(&["CONFIG", "SET", "bind-source-addr", "127.0.0.2"]).unwrap(), Frame::ok());
    follow(&mut r, primary.addr);
    wait_info_field(&mut p, "replication", "connected_slaves", "1");
    assert!(info_field(&mut p, "replication", "slave0").starts_with("ip=127.0.0.2,"));
}

/// Turns the AOF on (CONFIG SET appendonly yes) and waits for the base
/// the switch writes.
fn aof_on(conn: &mut RawConn) {
    assert_eq!(conn.call(&["CONFIG", "SET", "appendonly", "yes"]).unwrap(), Frame::ok());
    wait_info_field(conn, "persistence", "aof_rewrite_in_progress", "0");
}

fn waitaof(conn: &mut RawConn, args: &[&str]) -> Frame {
    let mut cmd = vec!["WAITAOF"];
    cmd.extend_from_slice(args);
    conn.call(&cmd).unwrap()
}

fn pair(local: i64, replicas: i64) -> Frame {
    Frame::Array(vec![Frame::Integer(local), Frame::Integer(replicas)])
}

/// WAITAOF (Redis 7.2; the 7.0 redis-server has none, so these are not
/// differential) counts this client's writes synced to the local AOF: at
/// once under `always`, at the next second's fsync under `everysec`,
/// never under `no` (the kernel syncs when it likes, and Redis counts no
/// fsync then either); its arguments are checked as Redis's are.
#[test]
fn waitaof_counts_local_fsyncs() {
    let s = spawn_server();
    let mut c = s.raw();
    let err = |f: Frame| match f {
        Frame::Error(e) => String::from_utf8_lossy(&e).into_owned(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(waitaof(&mut c, &["1", "0", "0"])),
        "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
    );
    assert_eq!(waitaof(&mut c, &["0", "0", "0"]), pair(0, 0));
    assert_eq!(err(waitaof(&mut c, &["2", "0", "0"])), "ERR value is out of range, value must between 0 and 1");
    assert_eq!(err(waitaof(&mut c, &["x", "0", "0"])), "ERR value is not an integer or out of range");
    assert_eq!(err(waitaof(&mut c, &["0", "-1", "0"])), "ERR value is out of range, must be positive");
    assert_eq!(err(waitaof(&mut c, &["0", "0", "-1"])), "ERR timeout is negative");
    aof_on(&mut c);
    c.call(&["SET", "k", "1"]).unwrap();
    // everysec: blocks until the syncer's next fsync (at most a second).
    assert_eq!(waitaof(&mut c, &["1", "0", "0"]), pair(1, 0));
    c.call(&["CONFIG", "SET", "appendfsync", "no"]).unwrap();
    c.call(&["SET", "k", "2"]).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(waitaof(&mut c, &["1", "0", "300"]), pair(0, 0), "no fsync under appendfsync no");
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    c.call(&["CONFIG", "SET", "appendfsync", "always"]).unwrap();
    c.call(&["SET", "k", "3"]).unwrap();
    assert_eq!(waitaof(&mut c, &["1", "0", "0"]), pair(1, 0));
    // No replica to count: the timeout ends it, with the local count.
    assert_eq!(waitaof(&mut c, &["1", "1", "100"]), pair(1, 0));
    // Inside MULTI it never blocks.
    c.call(&["MULTI"]).unwrap();
    c.call(&["WAITAOF", "1", "1", "0"]).unwrap();
    assert_eq!(c.call(&["EXEC"]).unwrap(), Frame::Array(vec![pair(1, 0)]));
    // Turning the AOF off ends a wait that asks for the local fsync with
    // the error, as Redis's does, not at the timeout (here none): this
    // one, synced locally, waits for a replica there is none of.
    c.call(&["SET", "k", "4"]).unwrap();
    c.send(&["WAITAOF", "1", "1", "0"]).unwrap();
    let mut admin = s.raw();
    eventually(10, || {
        let list = text(&admin.call(&["CLIENT", "LIST"]).unwrap());
        list.contains("cmd=waitaof").then_some(()).ok_or(list)
    });
    assert_eq!(admin.call(&["CONFIG", "SET", "appendonly", "no"]).unwrap(), Frame::ok());
    assert_eq!(
        c.read_frame().unwrap(),
        Frame::Error("ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.".into())
    );
}

/// A replica with its AOF on reports how far it is synced (REPLCONF ACK's
/// FACK, as Redis 7.2's replicas do), and its primary's WAITAOF counts it;
/// on the replica WAITAOF is refused, as WAIT is.
#[test]
fn waitaof_counts_replicas_whose_aof_is_synced() {
    let (p, r) = (spawn_server(), spawn_server());
    let (mut w, mut rc) = (p.raw(), r.raw());
    aof_on(&mut rc);
    follow(&mut rc, p.addr);
    w.call(&["SET", "k", "v"]).unwrap();
    assert_eq!(waitaof(&mut w, &["0", "1", "20000"]), pair(0, 1));
    match waitaof(&mut rc, &["0", "0", "0"]) {
        Frame::Error(e) => assert!(e.starts_with(b"ERR WAITAOF cannot be used with replica instances"), "{e:?}"),
        other => panic!("{other:?}"),
    }
    // A replica without an AOF reports no FACK, and counts for WAIT only.
    rc.call(&["CONFIG", "SET", "appendonly", "no"]).unwrap();
    w.call(&["SET", "k", "w"]).unwrap();
    assert_eq!(w.call(&["WAIT", "1", "20000"]).unwrap(), Frame::Integer(1));
    assert_eq!(waitaof(&mut w, &["0", "1", "200"]), pair(0, 0));
    rc.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
}

/// `tls-replication`: a Larder replica follows a Larder primary on its
/// `tls-port` (at 127.0.0.2, a name its certificate does not carry: as in
/// Redis, a replica checks the chain, not the name), then a redis-server
/// primary's TLS port; a redis-server replica with `tls-replication yes`
/// follows Larder's TLS port.
#[test]
fn replicas_follow_over_tls() {
    let pki = larder_testkit::TestPki::new();
    let tls_port = larder_testkit::free_port();
    let mut config = larder_server::Config { bind: vec!["127.0.0.1".into(), "127.0.0.2".into()], ..Default::default() };
    pki.configure(&mut config, tls_port);
    let primary = larder_testkit::spawn_server_with(config);
    // The replica serves TLS too: it announces that port to its primary.
    let replica_tls = larder_testkit::free_port();
    let mut replica_config = larder_server::Config::default();
    pki.configure(&mut replica_config, replica_tls);
    for (k, v) in [
        ("tls-replication", "yes".to_string()),
        ("tls-ca-cert-file", pki.path("ca.crt")),
        ("tls-client-cert-file", pki.path("client.crt")),
        ("tls-client-key-file", pki.path("client.key")),
    ] {
        replica_config.set(k, &v, true).unwrap();
    }
    let replica = larder_testkit::spawn_server_with(replica_config);
    let (mut w, mut r) = (primary.raw(), replica.raw());
    w.call(&["SET", "before", "1"]).unwrap();
    r.call(&["REPLICAOF", "127.0.0.2", &tls_port.to_string()]).unwrap();
    wait_link_up(&mut r);
    write_mix(&mut w);
    wait_same_digest(&mut w, &mut r);
    let info = text(&w.call(&["INFO", "replication"]).unwrap());
    assert!(info.contains(&format!(",port={replica_tls},")), "{info}");

    let redis_tls = larder_testkit::free_port();
    let args = pki.server_args(redis_tls);
    if let Some(redis) = RedisServer::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>()) {
        let mut rw = redis.raw();
        rw.call(&["SET", "from", "redis"]).unwrap();
        r.call(&["REPLICAOF", "127.0.0.1", &redis_tls.to_string()]).unwrap();
        write_mix(&mut rw);
        wait_link_up(&mut r);
        rw.call(&["SELECT", "0"]).unwrap();
        r.call(&["SELECT", "0"]).unwrap();
        wait_same_digest(&mut rw, &mut r);
    }

    let mut args = vec!["--tls-replication".to_string(), "yes".into()];
    args.extend(["--tls-ca-cert-file".to_string(), pki.path("ca.crt")]);
    // (Redis wants its own server pair configured for any TLS at all.)
    args.extend(["--tls-cert-file".to_string(), pki.path("server.crt")]);
    args.extend(["--tls-key-file".to_string(), pki.path("server.key")]);
    args.extend(["--tls-client-cert-file".to_string(), pki.path("client.crt")]);
    args.extend(["--tls-client-key-file".to_string(), pki.path("client.key")]);
    args.extend(["--replicaof".to_string(), "127.0.0.1".into(), tls_port.to_string()]);
    w.call(&["SELECT", "0"]).unwrap();
    if let Some(redis) = RedisServer::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>()) {
        let mut rr = redis.raw();
        wait_link_up(&mut rr);
        wait_same_digest(&mut w, &mut rr);
    }
}

/// Replication's traffic is counted apart, as Redis counts it: what the
/// primary sends its replica in `total_net_repl_output_bytes` (not in
/// `total_net_output_bytes`, which its clients' small replies make),
/// what the replica reads from its primary in
/// `total_net_repl_input_bytes`; the instantaneous rate follows.
#[test]
fn replication_traffic_is_counted_apart_from_clients() {
    let stat = |c: &mut RawConn, name: &str| -> f64 { crate::info_field(c, "stats", name).parse().unwrap() };
    let primary = spawn_server();
    let replica = spawn_server();
    let (mut w, mut r) = (primary.raw(), replica.raw());
    w.call(&["SET", "before", "1"]).unwrap();
    follow(&mut r, primary.addr);
    let (sent_before, out_before) =
        (stat(&mut w, "total_net_repl_output_bytes"), stat(&mut w, "total_net_output_bytes"));
    let value = "v".repeat(10_000);
    for i in 0..100 {
        assert_eq!(w.call(&["SET", &format!("k{i}"), &value]).unwrap(), Frame::ok());
    }
    wait_same_digest(&mut w, &mut r);
    let sent = stat(&mut w, "total_net_repl_output_bytes") - sent_before;
    let replies = stat(&mut w, "total_net_output_bytes") - out_before;
    assert!(sent >= 1_000_000.0, "a megabyte of SETs went to the replica: {sent}");
    assert!(replies < 100_000.0, "the client's replies are small, the stream is not among them: {replies}");
    let read = stat(&mut r, "total_net_repl_input_bytes");
    assert!(read >= 1_000_000.0, "the replica read the stream: {read}");
    // The replica's connection counts as a replica's memory on the
    // primary, and on the replica nothing does.
    let mem = |c: &mut RawConn, name: &str| -> u64 { crate::info_field(c, "memory", name).parse().unwrap() };
    assert!(mem(&mut w, "mem_clients_slaves") > 0);
    assert_eq!(mem(&mut r, "mem_clients_slaves"), 0);
    // While writes go on, the rates (over the last 1.6 s) show the stream.
    let addr = primary.addr;
    let writer = std::thread::spawn(move || {
        let mut c = RawConn::connect(addr).unwrap();
        let value = "v".repeat(10_000);
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(1500) {
            assert_eq!(c.call(&["SET", "busy", &value]).unwrap(), Frame::ok());
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let (out_kbps, in_kbps) =
        (stat(&mut w, "instantaneous_output_repl_kbps"), stat(&mut r, "instantaneous_input_repl_kbps"));
    writer.join().unwrap();
    assert!(out_kbps > 100.0 && in_kbps > 100.0, "primary sends {out_kbps} kbps, replica reads {in_kbps} kbps");
}

/// A writable replica whose data has drifted from its primary's: the
/// primary's LPUSH meets a string the replica's own client wrote, and the
/// WRONGTYPE it gets counts in INFO `unexpected_error_replies` (Redis's
/// figure for errors replied to the primary, a replica or the AOF).
/// Errors replied to ordinary clients do not count.
#[test]
fn errors_replied_to_the_primary_count_as_unexpected() {
    let primary = spawn_server();
    let replica = spawn_server();
    let (mut w, mut r) = (primary.raw(), replica.raw());
    assert!(matches!(w.call(&["INCR", "not-a-number-first"]).unwrap(), Frame::Integer(1)));
    assert!(matches!(w.call(&["LPUSH", "not-a-number-first", "x"]).unwrap(), Frame::Error(_)));
    follow(&mut r, primary.addr);
    assert_eq!(r.call(&["CONFIG", "SET", "replica-read-only", "no"]).unwrap(), Frame::ok());
    assert_eq!(r.call(&["SET", "drifted", "a string"]).unwrap(), Frame::ok());
    assert_eq!(w.call(&["LPUSH", "drifted", "x"]).unwrap(), Frame::Integer(1));
    wait_info_field(&mut r, "stats", "unexpected_error_replies", "1");
    assert_eq!(info_field(&mut w, "stats", "unexpected_error_replies"), "0");
    assert_eq!(r.call(&["CONFIG", "RESETSTAT"]).unwrap(), Frame::ok());
    assert_eq!(info_field(&mut r, "stats", "unexpected_error_replies"), "0");
    r.call(&["REPLICAOF", "NO", "ONE"]).unwrap();
}

/// Redis 7's `shutdown-timeout`: a primary whose replica has not
/// acknowledged its last write waits for it before exiting (INFO shows
/// `shutdown_in_milliseconds` meanwhile), and exits once it has, the
/// replica holding the write; SHUTDOWN NOW does not wait.
#[test]
fn shutdown_waits_for_a_lagging_replica_unless_now() {
    for now in [false, true] {
        let pdir = larder_testkit::private_dir("shutdown-wait-primary");
        let rdir = larder_testkit::private_dir("shutdown-wait-replica");
        let (mut primary, mut p, pport) = larder_binary(&pdir, &["--save", ""]);
        let pport = pport.to_string();
        let (replica, mut r, _) = larder_binary(&rdir, &["--replicaof", "127.0.0.1", &pport]);
        wait_link_up(&mut r);
        p.call(&["SET", "k", "1"]).unwrap();
        wait_in_step(&mut p, &mut r);
        let signal = |sig: &str| {
            assert!(std::process::Command::new("kill")
                .args([sig, &replica.0.id().to_string()])
                .status()
                .unwrap()
                .success())
        };
        signal("-STOP");
        // Past what the kernel's socket buffers take: the replica's
        // outbox grows, and INFO counts it (as Redis's suite does this).
        let value = "x".repeat(1024);
        let total = |p: &mut RawConn| info_field(p, "memory", "mem_total_replication_buffers").parse::<u64>().unwrap();
        let mut round = 0;
        while total(&mut p) <= 2 << 20 {
            round += 1;
            assert!(round < 64, "64 MB written, and INFO counts {} bytes of replication buffers", total(&mut p));
            for i in 0..1024 {
                p.send(&["SET", &format!("junk{round}:{i}"), &value]).unwrap();
            }
            for _ in 0..1024 {
                p.read_frame().unwrap();
            }
        }
        p.call(&["INCR", "k"]).unwrap();
        // Connected (and served once) before: no new connection is
        // accepted once a shutdown has begun.
        let mut other = RawConn::connect(([127, 0, 0, 1], pport.parse().unwrap()).into()).unwrap();
        other.call(&["PING"]).unwrap();
        let _ = p.send(if now { &["SHUTDOWN", "NOW"][..] } else { &["SHUTDOWN"] });
        if now {
            eventually(10, || primary.0.try_wait().unwrap().map(drop).ok_or("SHUTDOWN NOW waited".to_string()));
            signal("-CONT");
            continue;
        }
        eventually(10, || {
            let info = text(&other.call(&["INFO", "server"]).unwrap());
            info.contains("shutdown_in_milliseconds:").then_some(()).ok_or(info)
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(primary.0.try_wait().unwrap().is_none(), "exited with its replica behind");
        signal("-CONT");
        eventually(20, || primary.0.try_wait().unwrap().map(drop).ok_or("still waiting".to_string()));
        assert_eq!(r.call(&["GET", "k"]).unwrap(), Frame::Bulk("2".into()));
    }
}

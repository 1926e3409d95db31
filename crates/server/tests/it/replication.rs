//! Larder as a primary: a real redis-server replicates from it (PSYNC,
//! full sync, then the write stream), and the raw SYNC stream has the
//! shape Redis gives its replicas.

use larder_protocol::{Frame, Proto};
use larder_testkit::{spawn_server, RawConn, RedisServer};
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
    match conn.call(&["DEBUG", "DIGEST"]).expect("DEBUG DIGEST") {
        Frame::Simple(d) if d.len() == 40 && d.iter().any(|&c| c != b'0') => String::from_utf8_lossy(&d).into_owned(),
        other => panic!("not the digest of a dataset: {other:?}"),
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
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = text(&r.call(&["INFO", "replication"]).unwrap());
        if info.contains("master_link_status:up") {
            break;
        }
        assert!(Instant::now() < deadline, "the replica never finished its sync: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ours, theirs) = (digest(&mut w), digest(&mut r));
        if ours == theirs {
            break;
        }
        assert!(Instant::now() < deadline, "digests differ: larder {ours}, replica {theirs}");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let expected =
        ["select 0", "set a 1", "set b 2", "select 1", "multi", "set c 3", "select 2", "set d 4", "exec", "select 0"];
    for want in expected {
        assert_eq!(next_command(&mut repl), want);
    }
    let set_t = next_command(&mut repl);
    assert!(set_t.starts_with("set t x PXAT "), "relative TTLs become absolute: {set_t}");
    assert_eq!(next_command(&mut repl), "setbit bits 3 0");
    assert_eq!(next_command(&mut repl), "set last 1");
    // Replies to what a replica sends are not sent (REPLCONF ACK).
    repl.send(&["REPLCONF", "ACK", "0"]).unwrap();
    w.call(&["SET", "after-ack", "1"]).unwrap();
    assert_eq!(next_command(&mut repl), "set after-ack 1");
}

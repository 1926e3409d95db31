//! Blocking list commands with several real clients: a push wakes the
//! client blocked longest, timeouts answer with a null, and a killed or
//! vanished client leaves no waiter behind to swallow a later push.

use crate::cmd;
use larder_protocol::Proto;
use larder_testkit::{spawn_server, TestServer};
use redis::Commands;
use std::thread;
use std::time::{Duration, Instant};

/// Waits (polling the server's own counter) until `n` clients are blocked.
fn wait_blocked(server: &TestServer, n: usize) {
    let start = Instant::now();
    while server.shared.blocking.stats().0 != n {
        assert!(start.elapsed() < Duration::from_secs(10), "never reached {n} blocked clients");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn push_wakes_blocked_clients_in_fifo_order() {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let server = spawn_server();
        let mut handles = Vec::new();
        for i in 0..3 {
            let mut con = server.conn(proto);
            handles.push(thread::spawn(move || {
                let r: (String, String) = cmd("BLPOP").arg("q").arg("other").arg(0).query(&mut con).unwrap();
                r
            }));
            wait_blocked(&server, i + 1);
        }
        let mut con = server.conn(proto);
        let _: i64 = con.rpush("q", &["a", "b", "c"]).unwrap();
        let got: Vec<(String, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let want: Vec<(String, String)> = ["a", "b", "c"].iter().map(|v| ("q".to_string(), v.to_string())).collect();
        assert_eq!(got, want);
        assert_eq!(server.shared.blocking.stats(), (0, 0, 0));
        let exists: bool = con.exists("q").unwrap();
        assert!(!exists);
    }
}

#[test]
fn timeout_replies_null_and_unregisters() {
    let server = spawn_server();
    let mut con = server.conn(Proto::Resp2);
    let started = Instant::now();
    let r: Option<(String, String)> = cmd("BLPOP").arg("nothing").arg(0.05).query(&mut con).unwrap();
    assert_eq!(r, None);
    assert!(started.elapsed() >= Duration::from_millis(50));
    let r: Option<String> =
        cmd("BLMOVE").arg("nothing").arg("d").arg("LEFT").arg("LEFT").arg(0.05).query(&mut con).unwrap();
    assert_eq!(r, None);
    assert_eq!(server.shared.blocking.stats(), (0, 0, 0));
    // The connection keeps working after a timeout.
    let pong: String = cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn blmove_and_blmpop_are_served_by_a_later_push() {
    let server = spawn_server();
    let mut a = server.conn(Proto::Resp3);
    let mover = thread::spawn(move || {
        let v: String = cmd("BLMOVE").arg("src").arg("dst").arg("RIGHT").arg("LEFT").arg(0).query(&mut a).unwrap();
        v
    });
    wait_blocked(&server, 1);
    let mut b = server.conn(Proto::Resp2);
    let mpop = thread::spawn(move || {
        let v: (String, Vec<String>) =
            cmd("BLMPOP").arg(0).arg(2).arg("k1").arg("k2").arg("LEFT").arg("COUNT").arg(5).query(&mut b).unwrap();
        v
    });
    wait_blocked(&server, 2);
    let mut con = server.conn(Proto::Resp2);
    let _: i64 = con.rpush("src", &["x", "y"]).unwrap();
    assert_eq!(mover.join().unwrap(), "y");
    let dst: Vec<String> = con.lrange("dst", 0, -1).unwrap();
    assert_eq!(dst, vec!["y"]);
    let _: i64 = con.rpush("k2", &["1", "2", "3"]).unwrap();
    assert_eq!(mpop.join().unwrap(), ("k2".to_string(), vec!["1".into(), "2".into(), "3".into()]));
}

#[test]
fn killed_or_disconnected_waiters_do_not_swallow_pushes() {
    let server = spawn_server();
    let mut victim = server.conn(Proto::Resp2);
    let id: i64 = cmd("CLIENT").arg("ID").query(&mut victim).unwrap();
    let h = thread::spawn(move || cmd("BLPOP").arg("k").arg(0).query::<Option<(String, String)>>(&mut victim).is_err());
    wait_blocked(&server, 1);
    let mut con = server.conn(Proto::Resp2);
    let killed: i64 = cmd("CLIENT").arg("KILL").arg("ID").arg(id).query(&mut con).unwrap();
    assert_eq!(killed, 1);
    assert!(h.join().unwrap(), "the killed client's BLPOP must fail");
    wait_blocked(&server, 0);

    // A client that disconnects while blocked.
    let mut raw = server.raw();
    raw.send(&["BLPOP", "k", "0"]).unwrap();
    wait_blocked(&server, 1);
    drop(raw);
    wait_blocked(&server, 0);

    let _: i64 = con.rpush("k", "v").unwrap();
    let len: i64 = con.llen("k").unwrap();
    assert_eq!(len, 1, "nobody may have popped the element");
}

#[test]
fn bzpopmin_is_served_by_zadd() {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let server = spawn_server();
        let mut a = server.conn(proto);
        let h = thread::spawn(move || {
            let v: (String, String, f64) = cmd("BZPOPMIN").arg("z1").arg("z2").arg(0).query(&mut a).unwrap();
            v
        });
        wait_blocked(&server, 1);
        let mut con = server.conn(proto);
        let _: i64 = cmd("ZADD").arg("z2").arg(2).arg("two").arg(1).arg("one").query(&mut con).unwrap();
        assert_eq!(h.join().unwrap(), ("z2".to_string(), "one".to_string(), 1.0));
        let left: Vec<String> = con.zrange("z2", 0, -1).unwrap();
        assert_eq!(left, vec!["two"]);
    }
}

#[test]
fn xread_block_dollar_and_xreadgroup_block_are_served_by_xadd() {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let server = spawn_server();
        let mut con = server.conn(proto);
        let _: String = cmd("XADD").arg("s").arg("1-1").arg("old").arg("1").query(&mut con).unwrap();
        let _: () = cmd("XGROUP").arg("CREATE").arg("s").arg("g").arg("$").query(&mut con).unwrap();
        let mut a = server.conn(proto);
        let reader = thread::spawn(move || {
            let v: redis::Value =
                cmd("XREAD").arg("BLOCK").arg(0).arg("STREAMS").arg("s").arg("$").query(&mut a).unwrap();
            v
        });
        wait_blocked(&server, 1);
        let mut b = server.conn(proto);
        let grouped = thread::spawn(move || {
            let v: redis::Value = cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg("c")
                .arg("BLOCK")
                .arg(0)
                .arg("STREAMS")
                .arg("s")
                .arg(">")
                .query(&mut b)
                .unwrap();
            v
        });
        wait_blocked(&server, 2);
        let _: String = cmd("XADD").arg("s").arg("2-1").arg("new").arg("2").query(&mut con).unwrap();
        for v in [reader.join().unwrap(), grouped.join().unwrap()] {
            let text = format!("{v:?}");
            assert!(text.contains("2-1") && !text.contains("1-1"), "{text}");
        }
        // The group delivered it to c: it is pending there.
        let pending: (i64, String, String, redis::Value) = cmd("XPENDING").arg("s").arg("g").query(&mut con).unwrap();
        assert_eq!((pending.0, pending.1.as_str()), (1, "2-1"));
    }
}

#[test]
fn swapdb_serves_a_client_blocked_on_the_swapped_in_key() {
    let server = spawn_server();
    let mut a = server.conn(Proto::Resp2);
    let h = thread::spawn(move || {
        let v: (String, String) = cmd("BLPOP").arg("q").arg(0).query(&mut a).unwrap();
        v
    });
    wait_blocked(&server, 1);
    let mut con = server.conn(Proto::Resp2);
    let _: () = cmd("SELECT").arg(1).query(&mut con).unwrap();
    let _: i64 = con.rpush("q", "from-db1").unwrap();
    let _: () = cmd("SWAPDB").arg(0).arg(1).query(&mut con).unwrap();
    assert_eq!(h.join().unwrap(), ("q".to_string(), "from-db1".to_string()));
}

/// Requests from two connections that arrive together are served in the
/// order they arrived, as Redis's event loop serves them: an XREADGROUP
/// BLOCK sent just before another client's SET of the same key blocks
/// first, and the SET then ends it with "no longer exists", never the
/// WRONGTYPE of a read that came second. tokio's LIFO slot (disabled in
/// the binary and the testkit) ran the later connection first in about
/// 3% of tries (about 12 of 400). One worker, the binary's default on two
/// cores: with more, two connections run in parallel and which takes the
/// key first is a race (README, `io-threads`). On a loaded machine (a cold
/// CI run, every test binary at once) one try in 400 has come out of order
/// even so: the other connection's task can already be queued for its own
/// reasons when both arrive. So up to two of 400 pass; the LIFO slot's
/// dozen does not.
#[test]
fn requests_arriving_together_are_served_in_arrival_order() {
    let server = larder_testkit::spawn_server_with(larder_server::Config { io_threads: 1, ..Default::default() });
    let mut main = server.raw();
    let mut out_of_order = 0;
    for _ in 0..400 {
        main.call(&["DEL", "s"]).unwrap();
        main.call(&["XADD", "s", "1-1", "f", "v"]).unwrap();
        main.call(&["XGROUP", "CREATE", "s", "g", "$"]).unwrap();
        let mut reader = server.raw();
        reader.call(&["PING"]).unwrap();
        reader.send(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]).unwrap();
        main.call(&["SET", "s", "x"]).unwrap();
        match reader.read_frame().unwrap() {
            larder_protocol::Frame::Error(e) if e.starts_with(b"WRONGTYPE") => out_of_order += 1,
            larder_protocol::Frame::Error(e) => assert!(e.ends_with(b"no longer exists"), "{e:?}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(out_of_order <= 2, "of 400 tries, the SET overtook the XREADGROUP sent before it {out_of_order} times");
}

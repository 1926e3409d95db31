//! MULTI/EXEC/WATCH with several clients: WATCH sees other clients'
//! writes and expiry, and EXEC is atomic against concurrent writers.

use larder_protocol::Proto;
use larder_server::Config;
use larder_store::ManualClock;
use larder_testkit::{spawn_server, spawn_server_with_clock};
use redis::{cmd, Commands};
use std::sync::Arc;
use std::thread;

#[test]
fn watch_aborts_exec_when_another_client_writes() {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let server = spawn_server();
        let mut a = server.conn(proto);
        let mut b = server.conn(proto);
        let _: () = a.set("k", 1).unwrap();
        let _: () = cmd("WATCH").arg("k").query(&mut a).unwrap();
        let _: () = b.set("k", 2).unwrap();
        let r: Option<(i64,)> = redis::pipe().atomic().incr("k", 1).query(&mut a).unwrap();
        assert_eq!(r, None, "EXEC must fail after another client's write");
        // Unwatched after EXEC: the same transaction now goes through.
        let r: Option<(i64,)> = redis::pipe().atomic().incr("k", 1).query(&mut a).unwrap();
        assert_eq!(r, Some((3,)));
    }
}

#[test]
fn expiry_of_a_watched_key_aborts_exec() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let server = spawn_server_with_clock(Config::default(), clock.clone());
    let mut a = server.conn(Proto::Resp2);
    let _: () = cmd("SET").arg("t").arg("v").arg("PX").arg(30).query(&mut a).unwrap();
    let _: () = cmd("WATCH").arg("t").query(&mut a).unwrap();
    clock.advance(30);
    let r: Option<(String,)> = redis::pipe().atomic().cmd("PING").query(&mut a).unwrap();
    assert_eq!(r, None);
}

#[test]
fn exec_is_atomic_against_concurrent_writers() {
    let server = spawn_server();
    let mut writers = Vec::new();
    for _ in 0..2 {
        let mut c = server.conn(Proto::Resp2);
        writers.push(thread::spawn(move || {
            for _ in 0..300 {
                let _: () = redis::pipe().atomic().incr("x", 1).incr("y", 1).query(&mut c).unwrap();
            }
        }));
    }
    let mut reader = server.conn(Proto::Resp2);
    for _ in 0..300 {
        // Inside a transaction both counters must always agree.
        let (x, y): (Option<i64>, Option<i64>) = redis::pipe().atomic().get("x").get("y").query(&mut reader).unwrap();
        assert_eq!(x, y);
    }
    for w in writers {
        w.join().unwrap();
    }
    let (x, y): (i64, i64) = redis::pipe().get("x").get("y").query(&mut reader).unwrap();
    assert_eq!((x, y), (600, 600));
}

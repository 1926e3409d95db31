//! Pub/Sub with real clients: delivery to channel and pattern
//! subscribers in RESP2 and RESP3 (as push frames), the RESP2
//! subscribed-mode rules, the `redis` crate's pub/sub API, and the output
//! buffer limit that disconnects a subscriber that stops reading.

use larder_protocol::Frame;
use larder_testkit::{spawn_server, RawConn, TestServer};
use std::thread;
use std::time::{Duration, Instant};

fn bulk(s: &str) -> Frame {
    Frame::bulk(s)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn numsub(s: &TestServer, ch: &str) -> i64 {
    let mut c = s.raw();
    match c.call(&["PUBSUB", "NUMSUB", ch]).unwrap() {
        Frame::Array(v) => match v[1] {
            Frame::Integer(n) => n,
            _ => panic!(),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn messages_reach_channel_and_pattern_subscribers_in_both_protocols() {
    let s = spawn_server();
    let mut sub2 = s.raw();
    sub2.send(&["SUBSCRIBE", "news", "other"]).unwrap();
    for (i, ch) in ["news", "other"].iter().enumerate() {
        let f = sub2.read_frame().unwrap();
        assert_eq!(f, Frame::Array(vec![bulk("subscribe"), bulk(ch), Frame::Integer(i as i64 + 1)]));
    }
    assert_eq!(
        sub2.call(&["PSUBSCRIBE", "n*"]).unwrap(),
        Frame::Array(vec![bulk("psubscribe"), bulk("n*"), Frame::Integer(3)])
    );
    // RESP2 subscribed mode refuses other commands but answers PING.
    let e = sub2.call(&["GET", "k"]).unwrap();
    assert!(matches!(e, Frame::Error(ref t) if t.starts_with(b"ERR Can't execute 'get'")), "{e:?}");
    assert_eq!(sub2.call(&["PING"]).unwrap(), Frame::Array(vec![bulk("pong"), bulk("")]));

    let mut sub3 = s.raw();
    assert!(matches!(sub3.call(&["HELLO", "3"]).unwrap(), Frame::Map(_)));
    assert_eq!(
        sub3.call(&["SUBSCRIBE", "news"]).unwrap(),
        Frame::Push(vec![bulk("subscribe"), bulk("news"), Frame::Integer(1)])
    );
    // A RESP3 subscriber may still run commands.
    assert_eq!(sub3.call(&["GET", "k"]).unwrap(), Frame::Null);

    let info = s.shared.pubsub.counts();
    assert_eq!(info, (2, 1, 0), "channels news+other, pattern n*");
    let mut publisher = s.raw();
    let Frame::Bulk(stats) = publisher.call(&["INFO", "stats"]).unwrap() else { panic!() };
    let stats = String::from_utf8_lossy(&stats).into_owned();
    assert!(stats.contains("pubsub_channels:2\r\n") && stats.contains("pubsub_patterns:1\r\n"), "{stats}");
    assert_eq!(publisher.call(&["PUBLISH", "news", "hello"]).unwrap(), Frame::Integer(3));
    assert_eq!(sub2.read_frame().unwrap(), Frame::Array(vec![bulk("message"), bulk("news"), bulk("hello")]));
    assert_eq!(
        sub2.read_frame().unwrap(),
        Frame::Array(vec![bulk("pmessage"), bulk("n*"), bulk("news"), bulk("hello")])
    );
    assert_eq!(sub3.read_frame().unwrap(), Frame::Push(vec![bulk("message"), bulk("news"), bulk("hello")]));

    // Unsubscribing everything leaves subscribed mode.
    sub2.send(&["UNSUBSCRIBE"]).unwrap();
    let mut left = Vec::new();
    for _ in 0..2 {
        let Frame::Array(v) = sub2.read_frame().unwrap() else { panic!() };
        left.push(v[1].clone());
    }
    left.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(left, vec![bulk("news"), bulk("other")]);
    assert_eq!(
        sub2.call(&["PUNSUBSCRIBE"]).unwrap(),
        Frame::Array(vec![bulk("punsubscribe"), bulk("n*"), Frame::Integer(0)])
    );
    assert_eq!(sub2.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    assert_eq!(publisher.call(&["PUBLISH", "news", "again"]).unwrap(), Frame::Integer(1));
    // Disconnecting drops the subscription.
    drop(sub3);
    wait_for("the dropped subscriber to go", || numsub(&s, "news") == 0);
}

#[test]
fn redis_crate_pubsub_works() {
    let s = spawn_server();
    let mut con = s.conn(larder_protocol::Proto::Resp2);
    let mut ps = con.as_pubsub();
    ps.subscribe("events").unwrap();
    ps.psubscribe("ev*").unwrap();
    let mut publisher = s.raw();
    assert_eq!(publisher.call(&["PUBLISH", "events", "payload"]).unwrap(), Frame::Integer(2));
    for _ in 0..2 {
        let msg = ps.get_message().unwrap();
        assert_eq!(msg.get_channel_name(), "events");
        let body: String = msg.get_payload().unwrap();
        assert_eq!(body, "payload");
    }
}

#[test]
fn a_subscriber_that_stops_reading_is_disconnected() {
    let s = spawn_server();
    let mut admin = s.raw();
    assert_eq!(admin.call(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0"]).unwrap(), Frame::ok());
    let mut slow = RawConn::connect(s.addr).unwrap();
    let Frame::Integer(id) = slow.call(&["CLIENT", "ID"]).unwrap() else { panic!("CLIENT ID") };
    assert_eq!(
        slow.call(&["SUBSCRIBE", "firehose"]).unwrap(),
        Frame::Array(vec![bulk("subscribe"), bulk("firehose"), Frame::Integer(1)])
    );
    let payload = "x".repeat(64 * 1024);
    // The subscriber never reads: socket buffers fill, then the outbox
    // passes 1 MB and the server drops the client. Watched by its id: the
    // client count also moves when the test kit's readiness probe, closed
    // just before, is cleaned up (which ended this loop early when the
    // machine was loaded).
    let start = Instant::now();
    while s.shared.clients.exists(id as u64) {
        assert!(start.elapsed() < Duration::from_secs(20), "slow subscriber was never disconnected");
        admin.call(&["PUBLISH", "firehose", &payload]).unwrap();
    }
    wait_for("the subscription to go", || numsub(&s, "firehose") == 0);
    drop(slow);
}

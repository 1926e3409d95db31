//! Expiry under a manual clock: time moves only when the test says so.

use larder_protocol::Proto;
use larder_server::Config;
use larder_store::ManualClock;
use larder_testkit::spawn_server_with_clock;
use redis::{Commands, RedisResult};
use std::sync::Arc;

const T0: u64 = 1_700_000_000_000;

fn server() -> (larder_testkit::TestServer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    (spawn_server_with_clock(Config::default(), clock.clone()), clock)
}

#[test]
fn set_ex_expires_exactly_at_deadline() {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let (s, clock) = server();
        let mut con = s.conn(proto);
        let _: () = redis::cmd("SET").arg("k").arg("v").arg("EX").arg(10).query(&mut con).unwrap();
        clock.advance(9_999);
        let v: Option<String> = con.get("k").unwrap();
        assert_eq!(v.as_deref(), Some("v"));
        let pttl: i64 = con.pttl("k").unwrap();
        assert_eq!(pttl, 1);
        clock.advance(1);
        let v: Option<String> = con.get("k").unwrap();
        assert_eq!(v, None);
        let ttl: i64 = con.ttl("k").unwrap();
        assert_eq!(ttl, -2);
    }
}

#[test]
fn ttl_rounds_like_redis_and_expiretime_is_absolute() {
    let (s, clock) = server();
    let mut con = s.conn(Proto::Resp2);
    let _: () = redis::cmd("SET").arg("k").arg("v").arg("PX").arg(1500).query(&mut con).unwrap();
    let ttl: i64 = con.ttl("k").unwrap();
    assert_eq!(ttl, 2, "(1500 + 500) / 1000");
    clock.advance(600);
    let ttl: i64 = con.ttl("k").unwrap();
    assert_eq!(ttl, 1);
    let at: i64 = redis::cmd("PEXPIRETIME").arg("k").query(&mut con).unwrap();
    assert_eq!(at as u64, T0 + 1500);
    let at: i64 = redis::cmd("EXPIRETIME").arg("k").query(&mut con).unwrap();
    assert_eq!(at as u64, (T0 + 1500) / 1000);
    let _: () = con.set("plain", "v").unwrap();
    let at: i64 = redis::cmd("EXPIRETIME").arg("plain").query(&mut con).unwrap();
    assert_eq!(at, -1);
}

#[test]
fn expire_options_nx_xx_gt_lt() {
    let (s, _clock) = server();
    let mut con = s.conn(Proto::Resp3);
    let _: () = con.set("k", "v").unwrap();
    let exp = |con: &mut redis::Connection, secs: i64, opt: &str| -> i64 {
        let mut c = redis::cmd("EXPIRE");
        c.arg("k").arg(secs);
        if !opt.is_empty() {
            c.arg(opt);
        }
        c.query(con).unwrap()
    };
    assert_eq!(exp(&mut con, 100, "XX"), 0, "no TTL yet");
    assert_eq!(exp(&mut con, 100, "GT"), 0, "no TTL counts as infinite");
    assert_eq!(exp(&mut con, 100, "NX"), 1);
    assert_eq!(exp(&mut con, 50, "NX"), 0);
    assert_eq!(exp(&mut con, 50, "GT"), 0);
    assert_eq!(exp(&mut con, 200, "GT"), 1);
    assert_eq!(exp(&mut con, 300, "LT"), 0);
    assert_eq!(exp(&mut con, 10, "LT"), 1);
    let ttl: i64 = con.ttl("k").unwrap();
    assert_eq!(ttl, 10);
    let r: RedisResult<i64> = redis::cmd("EXPIRE").arg("k").arg(1).arg("NX").arg("XX").query(&mut con);
    assert!(r.unwrap_err().to_string().contains("NX and XX, GT or LT options at the same time are not compatible"));
    let r: i64 = redis::cmd("EXPIRE").arg("missing").arg(100).query(&mut con).unwrap();
    assert_eq!(r, 0);
}

#[test]
fn expire_in_the_past_deletes_and_persist_clears() {
    let (s, _clock) = server();
    let mut con = s.conn(Proto::Resp2);
    let _: () = con.set("k", "v").unwrap();
    let r: i64 = redis::cmd("EXPIRE").arg("k").arg(-1).query(&mut con).unwrap();
    assert_eq!(r, 1);
    let exists: bool = con.exists("k").unwrap();
    assert!(!exists);
    let _: () = con.set("p", "v").unwrap();
    let _: i64 = redis::cmd("PEXPIREAT").arg("p").arg(T0 + 5000).query(&mut con).unwrap();
    let r: i64 = redis::cmd("PERSIST").arg("p").query(&mut con).unwrap();
    assert_eq!(r, 1);
    let r: i64 = redis::cmd("PERSIST").arg("p").query(&mut con).unwrap();
    assert_eq!(r, 0);
    let ttl: i64 = con.ttl("p").unwrap();
    assert_eq!(ttl, -1);
}

#[test]
fn set_clears_ttl_but_keepttl_and_incr_keep_it() {
    let (s, _clock) = server();
    let mut con = s.conn(Proto::Resp2);
    let _: () = redis::cmd("SET").arg("k").arg("1").arg("EX").arg(100).query(&mut con).unwrap();
    let _: i64 = con.incr("k", 1).unwrap();
    let ttl: i64 = con.ttl("k").unwrap();
    assert_eq!(ttl, 100, "INCR keeps the TTL");
    let _: () = redis::cmd("SET").arg("k").arg("x").arg("KEEPTTL").query(&mut con).unwrap();
    let ttl: i64 = con.ttl("k").unwrap();
    assert_eq!(ttl, 100);
    let _: () = con.set("k", "y").unwrap();
    let ttl: i64 = con.ttl("k").unwrap();
    assert_eq!(ttl, -1, "plain SET clears the TTL");
}

#[test]
fn active_expiry_removes_keys_nobody_reads() {
    let (s, clock) = server();
    let mut con = s.conn(Proto::Resp2);
    for i in 0..200 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").arg("PX").arg(100).query(&mut con).unwrap();
    }
    let _: () = con.set("stay", "v").unwrap();
    clock.advance(101);
    // The cron runs hz=10 times a second on real time; poll DBSIZE, which
    // does not expire keys itself, until the cycle has run.
    larder_testkit::eventually(10, || {
        let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        (n == 1).then_some(()).ok_or(format!("active expiry did not run: dbsize {n}"))
    });
    let info: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
    assert!(info.contains("expired_keys:200"), "{info}");
}

#[test]
fn debug_set_active_expire_disables_the_cycle() {
    let (s, clock) = server();
    let mut con = s.conn(Proto::Resp2);
    let _: () = redis::cmd("DEBUG").arg("SET-ACTIVE-EXPIRE").arg(0).query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").arg("PX").arg(1).query(&mut con).unwrap();
    clock.advance(10);
    // Wait for several real cron runs; with the cycle off the key stays.
    let start = s.shared.cron_loops.load(std::sync::atomic::Ordering::SeqCst);
    while s.shared.cron_loops.load(std::sync::atomic::Ordering::SeqCst) < start + 3 {
        std::thread::yield_now();
    }
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 1);
    let v: Option<String> = con.get("k").unwrap();
    assert_eq!(v, None, "lazy expiry still applies");
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 0);
}

/// Redis 7.4's per-field TTLs: HEXPIRE and friends, under the manual clock.
#[test]
fn hash_field_ttls_follow_redis_74() {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let (s, clock) = server();
        let mut con = s.conn(proto);
        let cmd = redis::cmd;
        let _: () = con.hset_multiple("h", &[("a", "1"), ("b", "2"), ("c", "3")]).unwrap();
        let r: Vec<i64> =
            cmd("HEXPIRE").arg("h").arg(10).arg("FIELDS").arg(2).arg("a").arg("nope").query(&mut con).unwrap();
        assert_eq!(r, vec![1, -2]);
        let enc: String = cmd("OBJECT").arg("ENCODING").arg("h").query(&mut con).unwrap();
        assert_eq!(enc, "listpackex");
        let r: Vec<i64> =
            cmd("HTTL").arg("h").arg("FIELDS").arg(3).arg("a").arg("b").arg("nope").query(&mut con).unwrap();
        assert_eq!(r, vec![10, -1, -2]);
        let r: Vec<i64> = cmd("HPEXPIRETIME").arg("h").arg("FIELDS").arg(1).arg("a").query(&mut con).unwrap();
        assert_eq!(r, vec![(T0 + 10_000) as i64]);
        // Conditions: NX fails on a field with a TTL, GT against "no TTL" fails, LT succeeds.
        let r: Vec<i64> = cmd("HPEXPIRE")
            .arg("h")
            .arg(5000)
            .arg("NX")
            .arg("FIELDS")
            .arg(2)
            .arg("a")
            .arg("b")
            .query(&mut con)
            .unwrap();
        assert_eq!(r, vec![0, 1]);
        let r: Vec<i64> =
            cmd("HEXPIRE").arg("h").arg(100).arg("GT").arg("FIELDS").arg(1).arg("c").query(&mut con).unwrap();
        assert_eq!(r, vec![0]);
        let r: Vec<i64> =
            cmd("HEXPIRE").arg("h").arg(100).arg("LT").arg("FIELDS").arg(1).arg("c").query(&mut con).unwrap();
        assert_eq!(r, vec![1]);
        let r: Vec<i64> = cmd("HPERSIST").arg("h").arg("FIELDS").arg(2).arg("c").arg("c").query(&mut con).unwrap();
        assert_eq!(r, vec![1, -1]);
        // b expires at +5 s, a at +10 s; HSET clears a field's TTL.
        clock.advance(5_000);
        let b: Option<String> = con.hget("h", "b").unwrap();
        assert_eq!(b, None);
        let n: i64 = con.hlen("h").unwrap();
        assert_eq!(n, 2);
        let _: () = con.hset("h", "a", "fresh").unwrap();
        clock.advance(10_000);
        let all: std::collections::HashMap<String, String> = con.hgetall("h").unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        // A time in the past deletes the field at once; the last field takes the key.
        let r: Vec<i64> =
            cmd("HEXPIREAT").arg("h").arg(1).arg("FIELDS").arg(2).arg("a").arg("c").query(&mut con).unwrap();
        assert_eq!(r, vec![2, 2]);
        let exists: bool = con.exists("h").unwrap();
        assert!(!exists);
        let r: Vec<i64> = cmd("HTTL").arg("h").arg("FIELDS").arg(1).arg("a").query(&mut con).unwrap();
        assert_eq!(r, vec![-2]);
        // Errors.
        let e: RedisResult<Vec<i64>> = cmd("HEXPIRE").arg("h").arg(10).arg("FIELDS").arg(2).arg("a").query(&mut con);
        assert!(e.unwrap_err().to_string().contains("numfields"));
        let e: RedisResult<Vec<i64>> = cmd("HEXPIRE").arg("h").arg(10).arg("a").arg(1).arg("a").query(&mut con);
        assert!(e.unwrap_err().to_string().contains("Mandatory argument FIELDS"));
        let e: RedisResult<Vec<i64>> = cmd("HEXPIRE").arg("h").arg(-1).arg("FIELDS").arg(1).arg("a").query(&mut con);
        assert!(e.unwrap_err().to_string().contains("invalid expire time"));
    }
}

/// A field TTL makes an HDEL effect when the field is reclaimed.
#[test]
fn expired_hash_fields_are_deleted_through_the_effect_stream() {
    let (s, clock) = server();
    let log = std::sync::Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    struct Sink(std::sync::Arc<parking_lot::Mutex<Vec<String>>>);
    impl larder_store::EffectSink for Sink {
        fn apply(&self, e: &larder_store::Effect<'_>) {
            self.0
                .lock()
                .push(e.args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "));
        }
    }
    s.shared.keyspace.effects.subscribe(std::sync::Arc::new(Sink(log.clone())));
    let mut con = s.conn(Proto::Resp2);
    let _: () = con.hset_multiple("h", &[("a", "1"), ("b", "2")]).unwrap();
    let _: Vec<i64> = redis::cmd("HEXPIRE").arg("h").arg(1).arg("FIELDS").arg(1).arg("a").query(&mut con).unwrap();
    clock.advance(1_000);
    let n: i64 = con.hlen("h").unwrap();
    assert_eq!(n, 1);
    let log = log.lock();
    assert!(log.iter().any(|l| l.starts_with("HPEXPIREAT h ") && l.ends_with("FIELDS 1 a")), "{log:?}");
    assert!(log.contains(&"HDEL h a".to_string()), "{log:?}");
}

/// The active cycle reclaims expired hash fields that nobody reads, and a
/// hash whose last field expires goes with it.
#[test]
fn active_expiry_reclaims_hash_fields() {
    let (s, clock) = server();
    let mut con = s.conn(Proto::Resp2);
    let _: () = con.hset_multiple("h", &[("a", "1"), ("b", "2")]).unwrap();
    let _: () = con.hset("gone", "only", "1").unwrap();
    let _: Vec<i64> = redis::cmd("HPEXPIRE").arg("h").arg(100).arg("FIELDS").arg(1).arg("a").query(&mut con).unwrap();
    let _: Vec<i64> =
        redis::cmd("HPEXPIRE").arg("gone").arg(100).arg("FIELDS").arg(1).arg("only").query(&mut con).unwrap();
    clock.advance(100);
    let start = s.shared.cron_loops.load(std::sync::atomic::Ordering::SeqCst);
    while s.shared.cron_loops.load(std::sync::atomic::Ordering::SeqCst) < start + 2 {
        std::thread::yield_now();
    }
    // DBSIZE does not touch hashes: only the active cycle can have removed "gone".
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 1);
    let fields: Vec<String> = con.hkeys("h").unwrap();
    assert_eq!(fields, vec!["b"]);
}

/// Reads `__keyevent@0__:*` messages from `sub` until `n` have arrived.
fn keyevents(sub: &mut larder_testkit::RawConn, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let larder_protocol::Frame::Array(parts) = sub.read_frame().unwrap() else { panic!("not a message") };
            let text = |f: &larder_protocol::Frame| match f {
                larder_protocol::Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            };
            (text(&parts[2]), text(&parts[3]))
        })
        .collect()
}

#[test]
fn active_expiry_fires_expired_and_hexpired_events() {
    let (s, clock) = server();
    let mut con = s.conn(Proto::Resp2);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("notify-keyspace-events").arg("Exgh").query(&mut con).unwrap();
    let mut sub = s.raw();
    sub.call(&["PSUBSCRIBE", "__keyevent@0__:*"]).unwrap();
    let _: () = con.pset_ex("k", "v", 100).unwrap();
    let _: () = con.hset_multiple("h", &[("a", "1"), ("b", "2")]).unwrap();
    let _: Vec<i64> =
        redis::cmd("HPEXPIRE").arg("h").arg(100).arg("FIELDS").arg(2).arg("a").arg("b").query(&mut con).unwrap();
    let setup = keyevents(&mut sub, 3);
    assert_eq!(setup[0].0, "__keyevent@0__:expire");
    assert_eq!(setup[1].0, "__keyevent@0__:hset");
    assert_eq!(setup[2].0, "__keyevent@0__:hexpire");
    clock.advance(100);
    // Nobody touches the keys: only the active cycle can fire these.
    let mut got = keyevents(&mut sub, 3);
    got.sort();
    assert_eq!(
        got,
        [("__keyevent@0__:del", "h"), ("__keyevent@0__:expired", "k"), ("__keyevent@0__:hexpired", "h")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

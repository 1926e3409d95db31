//! String commands in RESP2 and RESP3, with Redis's replies and errors.

use crate::{cmd, each_proto};
use redis::{Commands, RedisResult, Value};

#[test]
fn set_get_round_trip_in_both_protocols() {
    each_proto(|_, con, _| {
        let _: () = con.set("k", "v").unwrap();
        let v: String = con.get("k").unwrap();
        assert_eq!(v, "v");
        let missing: Option<String> = con.get("nope").unwrap();
        assert_eq!(missing, None);
        let bin: Vec<u8> = vec![0, 255, 13, 10, 7];
        let _: () = con.set("bin", &bin).unwrap();
        let back: Vec<u8> = con.get("bin").unwrap();
        assert_eq!(back, bin);
    });
}

#[test]
fn set_nx_keeps_existing_value() {
    each_proto(|_, con, _| {
        let _: () = con.set("k", "a").unwrap();
        let r: Option<String> = cmd("SET").arg("k").arg("b").arg("NX").query(con).unwrap();
        assert_eq!(r, None);
        let v: String = con.get("k").unwrap();
        assert_eq!(v, "a");
        let r: Option<String> = cmd("SET").arg("new").arg("b").arg("XX").query(con).unwrap();
        assert_eq!(r, None);
        let exists: bool = con.exists("new").unwrap();
        assert!(!exists);
    });
}

#[test]
fn set_get_option_returns_old_value() {
    each_proto(|_, con, _| {
        let old: Option<String> = cmd("SET").arg("k").arg("1").arg("GET").query(con).unwrap();
        assert_eq!(old, None);
        let old: Option<String> = cmd("SET").arg("k").arg("2").arg("GET").query(con).unwrap();
        assert_eq!(old.as_deref(), Some("1"));
        let old: String = cmd("GETSET").arg("k").arg("3").query(con).unwrap();
        assert_eq!(old, "2");
    });
}

#[test]
fn set_rejects_conflicting_options() {
    each_proto(|_, con, _| {
        for args in [&["NX", "XX"][..], &["EX", "10", "PX", "100"], &["KEEPTTL", "EX", "5"], &["EX"], &["BOGUS"]] {
            let r: RedisResult<Value> = cmd("SET").arg("k").arg("v").arg(args).query(con);
            let err = r.unwrap_err();
            assert!(err.to_string().contains("syntax error"), "{args:?}: {err}");
        }
        let r: RedisResult<Value> = cmd("SET").arg("k").arg("v").arg("EX").arg("0").query(con);
        assert!(r.unwrap_err().to_string().contains("invalid expire time in 'set' command"));
        let r: RedisResult<Value> = cmd("SET").arg("k").arg("v").arg("EX").arg("abc").query(con);
        assert!(r.unwrap_err().to_string().contains("value is not an integer or out of range"));
    });
}

#[test]
fn incr_family_and_overflow() {
    each_proto(|_, con, _| {
        let n: i64 = con.incr("n", 1).unwrap();
        assert_eq!(n, 1);
        let n: i64 = con.incr("n", 41).unwrap();
        assert_eq!(n, 42);
        let n: i64 = con.decr("n", 2).unwrap();
        assert_eq!(n, 40);
        let n: i64 = cmd("DECR").arg("n").query(con).unwrap();
        assert_eq!(n, 39);
        let _: () = con.set("big", i64::MAX).unwrap();
        let r: RedisResult<i64> = con.incr("big", 1);
        assert!(r.unwrap_err().to_string().contains("increment or decrement would overflow"));
        let _: () = con.set("s", "abc").unwrap();
        let r: RedisResult<i64> = con.incr("s", 1);
        assert!(r.unwrap_err().to_string().contains("value is not an integer"));
        let _: () = con.set("sp", " 1").unwrap();
        let r: RedisResult<i64> = con.incr("sp", 1);
        assert!(r.is_err(), "leading space is not an integer");
    });
}

#[test]
fn incrbyfloat_formats_like_redis() {
    each_proto(|_, con, _| {
        let _: () = con.set("f", "10.5").unwrap();
        let v: String = cmd("INCRBYFLOAT").arg("f").arg("0.1").query(con).unwrap();
        assert_eq!(v, "10.6");
        let v: String = cmd("INCRBYFLOAT").arg("f").arg("-10.6").query(con).unwrap();
        assert_eq!(v, "0");
        let v: String = cmd("INCRBYFLOAT").arg("g").arg("5.0e3").query(con).unwrap();
        assert_eq!(v, "5000");
        let r: RedisResult<String> = cmd("INCRBYFLOAT").arg("f").arg("nan").query(con);
        assert!(r.unwrap_err().to_string().contains("not a valid float"));
        let _: () = con.set("h", "1e308").unwrap();
        let r: RedisResult<String> = cmd("INCRBYFLOAT").arg("h").arg("1e308").query(con);
        assert!(r.unwrap_err().to_string().contains("NaN or Infinity"));
    });
}

#[test]
fn append_strlen_getrange_setrange() {
    each_proto(|_, con, _| {
        let n: i64 = con.append("s", "Hello").unwrap();
        assert_eq!(n, 5);
        let n: i64 = con.append("s", " World").unwrap();
        assert_eq!(n, 11);
        let n: i64 = con.strlen("s").unwrap();
        assert_eq!(n, 11);
        let enc: String = cmd("OBJECT").arg("ENCODING").arg("s").query(con).unwrap();
        assert_eq!(enc, "raw");
        let r: String = con.getrange("s", 0, 4).unwrap();
        assert_eq!(r, "Hello");
        let r: String = con.getrange("s", -5, -1).unwrap();
        assert_eq!(r, "World");
        let r: String = con.getrange("s", 5, 1).unwrap();
        assert_eq!(r, "");
        let n: i64 = con.setrange("s", 6, "Redis").unwrap();
        assert_eq!(n, 11);
        let v: String = con.get("s").unwrap();
        assert_eq!(v, "Hello Redis");
        let n: i64 = con.setrange("pad", 3, "x").unwrap();
        assert_eq!(n, 4);
        let v: Vec<u8> = con.get("pad").unwrap();
        assert_eq!(v, b"\0\0\0x");
        let r: RedisResult<i64> = con.setrange("pad", -1, "x");
        assert!(r.unwrap_err().to_string().contains("offset is out of range"));
        let n: i64 = con.setrange("none", 5, "").unwrap();
        assert_eq!(n, 0);
        let exists: bool = con.exists("none").unwrap();
        assert!(!exists, "SETRANGE with an empty value creates nothing");
    });
}

#[test]
fn mset_mget_msetnx() {
    each_proto(|_, con, _| {
        let _: () = con.mset(&[("a", "1"), ("b", "2"), ("c", "3")]).unwrap();
        let v: Vec<Option<String>> = con.mget(&["a", "b", "nope", "c"]).unwrap();
        assert_eq!(v, vec![Some("1".into()), Some("2".into()), None, Some("3".into())]);
        let ok: bool = con.mset_nx(&[("x", "1"), ("a", "9")]).unwrap();
        assert!(!ok);
        let x: Option<String> = con.get("x").unwrap();
        assert_eq!(x, None, "MSETNX is all or nothing");
        let ok: bool = con.mset_nx(&[("x", "1"), ("y", "2")]).unwrap();
        assert!(ok);
        let r: RedisResult<()> = cmd("MSET").arg("a").arg("1").arg("b").query(con);
        assert!(r.unwrap_err().to_string().contains("wrong number of arguments for 'mset' command"));
    });
}

#[test]
fn getdel_and_getex() {
    each_proto(|_, con, _| {
        let _: () = con.set("k", "v").unwrap();
        let v: String = cmd("GETDEL").arg("k").query(con).unwrap();
        assert_eq!(v, "v");
        let v: Option<String> = cmd("GETDEL").arg("k").query(con).unwrap();
        assert_eq!(v, None);
        let _: () = con.set("e", "v").unwrap();
        let v: String = cmd("GETEX").arg("e").arg("EX").arg("100").query(con).unwrap();
        assert_eq!(v, "v");
        let ttl: i64 = con.ttl("e").unwrap();
        assert!((99..=100).contains(&ttl), "{ttl}");
        let _: String = cmd("GETEX").arg("e").arg("PERSIST").query(con).unwrap();
        let ttl: i64 = con.ttl("e").unwrap();
        assert_eq!(ttl, -1);
        let r: RedisResult<String> = cmd("GETEX").arg("e").arg("EX").arg("-1").query(con);
        assert!(r.unwrap_err().to_string().contains("invalid expire time in 'getex' command"));
    });
}

#[test]
fn lcs_variants() {
    each_proto(|_, con, proto| {
        let _: () = con.mset(&[("a", "ohmytext"), ("b", "mynewtext")]).unwrap();
        let s: String = cmd("LCS").arg("a").arg("b").query(con).unwrap();
        assert_eq!(s, "mytext");
        let n: i64 = cmd("LCS").arg("a").arg("b").arg("LEN").query(con).unwrap();
        assert_eq!(n, 6);
        let v: Value =
            cmd("LCS").arg("a").arg("b").arg("IDX").arg("MINMATCHLEN").arg("4").arg("WITHMATCHLEN").query(con).unwrap();
        // One match of length 4: "text" at a[4..=7], b[5..=8].
        let range = |s, e| Value::Array(vec![Value::Int(s), Value::Int(e)]);
        let expected_match = Value::Array(vec![Value::Array(vec![range(4, 7), range(5, 8), Value::Int(4)])]);
        let fields: Vec<(Value, Value)> = match &v {
            Value::Map(m) => m.clone(),
            Value::Array(a) => a.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(fields[0], (Value::BulkString(b"matches".to_vec()), expected_match), "{proto:?}");
        assert_eq!(fields[1], (Value::BulkString(b"len".to_vec()), Value::Int(6)));
        if proto == larder_protocol::Proto::Resp3 {
            assert!(matches!(v, Value::Map(_)), "IDX replies with a map in RESP3");
        }
    });
}

#[test]
fn wrongtype_is_reported_on_reads_and_writes() {
    // Only strings exist so far; the check is exercised through LCS's own
    // error and through the generic path once other types land.
    each_proto(|_, con, _| {
        let _: () = con.set("s", "v").unwrap();
        let t: String = cmd("TYPE").arg("s").query(con).unwrap();
        assert_eq!(t, "string");
        let t: String = cmd("TYPE").arg("nothing").query(con).unwrap();
        assert_eq!(t, "none");
    });
}

/// A large argument (32 KB and more) is read into a buffer of its
/// request's size, and SET keeps it there as the value: whole requests,
/// requests cut anywhere (header, argument, options), several pipelined
/// with small ones after them, SET with options after the value, a SET
/// held by CLIENT PAUSE WRITE, and one queued in MULTI (copied: the
/// queue keeps its own copy) all store exactly what was sent. The value
/// kept in its buffer costs MEMORY USAGE a little more than the copy
/// (the request's other bytes and the buffer's count), which is how the
/// test knows which path each took.
#[test]
fn large_values_are_kept_in_the_buffer_they_arrived_in() {
    use larder_protocol::{encode_command, Frame};
    let s = larder_testkit::spawn_server();
    let mut c = s.raw();
    let value = |seed: u8, len: usize| -> Vec<u8> { (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect() };
    let get = |c: &mut larder_testkit::RawConn, key: &str| match c.call(&["GET", key]).unwrap() {
        Frame::Bulk(b) => b.to_vec(),
        other => panic!("{other:?}"),
    };
    // Whole, then cut at every 7,919th byte with a pause between pieces.
    let big = value(1, 100_000);
    c.call(&[&b"SET"[..], b"whole", &big]).unwrap();
    assert_eq!(get(&mut c, "whole"), big);
    let mut request = Vec::new();
    encode_command(&mut request, &[b"SET", b"cut", &big, b"EX", b"1000"]);
    for piece in request.chunks(7919) {
        c.send_raw(piece).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(c.read_frame().unwrap(), Frame::ok());
    assert_eq!(get(&mut c, "cut"), big);
    assert!(matches!(c.call(&["TTL", "cut"]).unwrap(), Frame::Integer(t) if t > 990));
    // Pipelined: three large SETs and small commands in one write.
    let mut batch = Vec::new();
    for i in 0..3u8 {
        encode_command(&mut batch, &[b"SET", format!("p{i}").as_bytes(), &value(i + 10, 40_000 + i as usize)]);
        encode_command(&mut batch, &[b"INCR", b"n"]);
    }
    encode_command(&mut batch, &[b"SET", b"small", b"v"]);
    c.send_raw(&batch).unwrap();
    for i in 1..=3 {
        assert_eq!(c.read_frame().unwrap(), Frame::ok());
        assert_eq!(c.read_frame().unwrap(), Frame::Integer(i));
    }
    assert_eq!(c.read_frame().unwrap(), Frame::ok());
    for i in 0..3u8 {
        assert_eq!(get(&mut c, &format!("p{i}")), value(i + 10, 40_000 + i as usize));
    }
    // Small commands ahead of a large SET in one write, into the buffer
    // the large SET before left.
    let mut batch = Vec::new();
    for _ in 0..20 {
        encode_command(&mut batch, &[b"INCR", b"m"]);
    }
    encode_command(&mut batch, &[b"SET", b"after", &value(7, 40_001)]);
    c.send_raw(&batch).unwrap();
    for i in 1..=20 {
        assert_eq!(c.read_frame().unwrap(), Frame::Integer(i));
    }
    assert_eq!(c.read_frame().unwrap(), Frame::ok());
    assert_eq!(get(&mut c, "after"), value(7, 40_001));
    // Held by a pause, then run.
    let mut admin = s.raw();
    admin.call(&["CLIENT", "PAUSE", "10000", "WRITE"]).unwrap();
    c.send(&[&b"SET"[..], b"paused", &big]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    admin.call(&["CLIENT", "UNPAUSE"]).unwrap();
    assert_eq!(c.read_frame().unwrap(), Frame::ok());
    assert_eq!(get(&mut c, "paused"), big);
    // Queued in MULTI: stored from the queue's copy.
    c.call(&["MULTI"]).unwrap();
    c.call(&[&b"SET"[..], b"queued", &big]).unwrap();
    assert!(matches!(c.call(&["EXEC"]).unwrap(), Frame::Array(_)));
    assert_eq!(get(&mut c, "queued"), big);
    let usage = |c: &mut larder_testkit::RawConn, key: &str| match c.call(&["MEMORY", "USAGE", key]).unwrap() {
        Frame::Integer(n) => n,
        other => panic!("{other:?}"),
    };
    let (kept, copied) = (usage(&mut c, "whole"), usage(&mut c, "queued"));
    assert!(kept > copied, "kept in its buffer: {kept}; copied: {copied}");
    assert_eq!(c.call(&["PING"]).unwrap(), Frame::simple("PONG"));
}

/// A reply that is one large value (4 KB and more) is sent from where the
/// value is stored, beside the reply buffer (conn/reply.rs). Pipelined
/// among small replies, at the splice size and either side of it, to a
/// client that reads nothing until the server's writes have filled the
/// socket (so they go out in pieces), alone and in MGET's array, in RESP2
/// and RESP3: every reply arrives whole and in order, and the
/// connection's output counts the values' bytes. (TLS: tls.rs's large
/// GET.)
#[test]
fn large_values_are_sent_from_where_they_are_stored() {
    use larder_protocol::Frame;
    let s = larder_testkit::spawn_server();
    let value = |seed: usize, len: usize| -> Vec<u8> { (0..len).map(|i| (i * 7 + seed) as u8).collect() };
    let sizes = [4096 - 1, 4096, 100_000, 3 << 20];
    let mut setup = s.raw();
    for (i, &n) in sizes.iter().enumerate() {
        assert_eq!(setup.call(&[b"SET".to_vec(), format!("v{i}").into_bytes(), value(i, n)]).unwrap(), Frame::ok());
    }
    let before: u64 = crate::info_field(&mut setup, "stats", "total_net_output_bytes").parse().unwrap();
    let mut sent = 0;
    for proto in ["2", "3"] {
        let mut c = s.raw();
        assert!(matches!(c.call(&["HELLO", proto]).unwrap(), Frame::Map(_) | Frame::Array(_)));
        for _ in 0..3 {
            for i in 0..sizes.len() {
                c.send(&["GET", &format!("v{i}")]).unwrap();
                c.send(&["PING"]).unwrap();
            }
            c.send(&["GET", "missing"]).unwrap();
            c.send(&["MGET", "v3", "missing", "v0", "v2"]).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        for _ in 0..3 {
            for (i, &n) in sizes.iter().enumerate() {
                match c.read_frame().unwrap() {
                    Frame::Bulk(b) => assert!(b[..] == value(i, n)[..], "v{i} came back changed"),
                    other => panic!("{other:?}"),
                }
                assert_eq!(c.read_frame().unwrap(), Frame::simple("PONG"));
                sent += n;
            }
            assert_eq!(c.read_frame().unwrap(), Frame::Null);
            let want = |i: usize| Frame::Bulk(value(i, sizes[i]).into());
            assert!(c.read_frame().unwrap() == Frame::Array(vec![want(3), Frame::Null, want(0), want(2)]), "MGET");
            sent += sizes[3] + sizes[0] + sizes[2];
        }
    }
    let after: u64 = crate::info_field(&mut setup, "stats", "total_net_output_bytes").parse().unwrap();
    assert!(after - before > sent as u64, "{} bytes of output for {sent} bytes of values", after - before);
}

//! Collection types through the `redis` crate in RESP2 and RESP3: typed
//! round trips, reply shapes that differ by protocol, and the encodings
//! Redis 7.2 reports (the differential tests run against redis-server 7.0,
//! which has no listpack sets or lists, so those are pinned here).

use crate::{cmd, each_proto};
use larder_protocol::Proto;
use redis::{Commands, Value};
use std::collections::{BTreeSet, HashMap};

fn encoding(con: &mut redis::Connection, key: &str) -> String {
    cmd("OBJECT").arg("ENCODING").arg(key).query(con).unwrap()
}

#[test]
fn typed_round_trips_in_both_protocols() {
    each_proto(|_, con, _| {
        let _: () = con.hset_multiple("h", &[("a", "1"), ("b", "2")]).unwrap();
        let all: HashMap<String, i64> = con.hgetall("h").unwrap();
        assert_eq!(all, HashMap::from([("a".into(), 1), ("b".into(), 2)]));
        let n: i64 = con.hincr("h", "a", 41).unwrap();
        assert_eq!(n, 42);

        let _: () = con.sadd("s", &["x", "y", "z"]).unwrap();
        let members: BTreeSet<String> = con.smembers("s").unwrap();
        assert_eq!(members, ["x", "y", "z"].iter().map(|s| s.to_string()).collect());

        let _: () = con.rpush("l", &[1, 2, 3]).unwrap();
        let l: Vec<i64> = con.lrange("l", 0, -1).unwrap();
        assert_eq!(l, vec![1, 2, 3]);

        let _: () = con.zadd_multiple("z", &[(1.5, "a"), (0.5, "b")]).unwrap();
        let z: Vec<(String, f64)> = con.zrange_withscores("z", 0, -1).unwrap();
        assert_eq!(z, vec![("b".into(), 0.5), ("a".into(), 1.5)]);
        let s: f64 = con.zscore("z", "a").unwrap();
        assert_eq!(s, 1.5);
    });
}

#[test]
fn resp3_shapes() {
    each_proto(|_, con, proto| {
        let _: () = con.hset("h", "f", "v").unwrap();
        let raw: Value = cmd("HGETALL").arg("h").query(con).unwrap();
        let _: () = con.sadd("s", "m").unwrap();
        let set: Value = cmd("SMEMBERS").arg("s").query(con).unwrap();
        let _: () = con.zadd("z", "m", 2.5).unwrap();
        let score: Value = cmd("ZSCORE").arg("z").arg("m").query(con).unwrap();
        let pairs: Value = cmd("ZRANGE").arg("z").arg(0).arg(-1).arg("WITHSCORES").query(con).unwrap();
        match proto {
            Proto::Resp2 => {
                assert!(matches!(raw, Value::Array(ref v) if v.len() == 2), "{raw:?}");
                assert!(matches!(set, Value::Array(_)), "{set:?}");
                assert_eq!(score, Value::BulkString(b"2.5".to_vec()));
                assert!(matches!(pairs, Value::Array(ref v) if v.len() == 2), "{pairs:?}");
            }
            Proto::Resp3 => {
                assert!(matches!(raw, Value::Map(ref v) if v.len() == 1), "{raw:?}");
                assert!(matches!(set, Value::Set(_)), "{set:?}");
                assert_eq!(score, Value::Double(2.5));
                let Value::Array(outer) = pairs else { panic!("{pairs:?}") };
                assert_eq!(outer, vec![Value::Array(vec![Value::BulkString(b"m".to_vec()), Value::Double(2.5)])]);
            }
        }
    });
}

/// ZRANK and ZREVRANK WITHSCORE (Redis 7.2; the differential tests'
/// 7.0 has an arity of 3 for both): the rank and the score, a bulk
/// string in RESP2 and a double in RESP3; a null array for a missing
/// member.
#[test]
fn zrank_withscore_as_redis_72() {
    each_proto(|_, con, proto| {
        let _: () = cmd("ZADD").arg("z").arg(1.5).arg("a").arg(2).arg("b").arg(3).arg("c").query(con).unwrap();
        let got: Value = cmd("ZRANK").arg("z").arg("a").arg("WITHSCORE").query(con).unwrap();
        let score = |s: &str| match proto {
            Proto::Resp2 => Value::BulkString(s.as_bytes().to_vec()),
            Proto::Resp3 => Value::Double(s.parse().unwrap()),
        };
        assert_eq!(got, Value::Array(vec![Value::Int(0), score("1.5")]));
        let got: Value = cmd("ZREVRANK").arg("z").arg("a").arg("withscore").query(con).unwrap();
        assert_eq!(got, Value::Array(vec![Value::Int(2), score("1.5")]));
        let got: Value = cmd("ZRANK").arg("z").arg("nope").arg("WITHSCORE").query(con).unwrap();
        assert_eq!(got, Value::Nil);
        let rank: i64 = cmd("ZRANK").arg("z").arg("c").query(con).unwrap();
        assert_eq!(rank, 2);
        let err = cmd("ZRANK").arg("z").arg("c").arg("WITHSCORES").query::<Value>(con).unwrap_err();
        assert!(err.to_string().contains("syntax error"), "{err}");
    });
}

#[test]
fn encodings_follow_redis_72() {
    each_proto(|_, con, _| {
        let _: () = con.sadd("ints", &[3, 1, 2]).unwrap();
        assert_eq!(encoding(con, "ints"), "intset");
        let _: () = con.sadd("ints", "x").unwrap();
        assert_eq!(encoding(con, "ints"), "listpack");
        let many: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        let _: () = con.sadd("wide", &many).unwrap();
        assert_eq!(encoding(con, "wide"), "hashtable");
        let nums: Vec<i64> = (0..600).collect();
        let _: () = con.sadd("bigints", &nums).unwrap();
        assert_eq!(encoding(con, "bigints"), "hashtable");

        let _: () = con.rpush("list", &["a", "b"]).unwrap();
        assert_eq!(encoding(con, "list"), "listpack");
        let big = "x".repeat(5000);
        let _: () = con.rpush("list", &[&big, &big]).unwrap();
        assert_eq!(encoding(con, "list"), "quicklist");
        let _: Vec<String> = con.rpop("list", std::num::NonZeroUsize::new(2)).unwrap();
        assert_eq!(encoding(con, "list"), "listpack");

        let _: () = con.hset("h", "f", "v").unwrap();
        assert_eq!(encoding(con, "h"), "listpack");
        let _: () = cmd("CONFIG").arg("SET").arg("hash-max-listpack-entries").arg(1).query(con).unwrap();
        let _: () = con.hset("h", "g", "v").unwrap();
        assert_eq!(encoding(con, "h"), "hashtable");
        let _: () = cmd("CONFIG").arg("SET").arg("hash-max-ziplist-entries").arg(512).query(con).unwrap();
        let v: HashMap<String, String> = cmd("CONFIG").arg("GET").arg("hash-max-listpack-entries").query(con).unwrap();
        assert_eq!(v["hash-max-listpack-entries"], "512");
    });
}

#[test]
fn dump_restore_moves_collections() {
    each_proto(|_, con, _| {
        let _: () = con.rpush("l", &["a", "1", "-5000"]).unwrap();
        let _: () = con.zadd_multiple("z", &[(1.0, "a"), (2.5, "b")]).unwrap();
        for key in ["l", "z"] {
            let payload: Vec<u8> = cmd("DUMP").arg(key).query(con).unwrap();
            let _: () = cmd("RESTORE").arg(format!("{key}2")).arg(0).arg(payload).query(con).unwrap();
        }
        let l: Vec<String> = con.lrange("l2", 0, -1).unwrap();
        assert_eq!(l, vec!["a", "1", "-5000"]);
        let z: Vec<(String, f64)> = con.zrange_withscores("z2", 0, -1).unwrap();
        assert_eq!(z, vec![("a".into(), 1.0), ("b".into(), 2.5)]);
    });
}

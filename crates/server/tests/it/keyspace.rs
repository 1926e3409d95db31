//! Generic key commands in RESP2 and RESP3: existence, renaming, copying,
//! databases, KEYS/SCAN/RANDOMKEY, OBJECT, DUMP/RESTORE and FLUSHALL.

use crate::{cmd, each_proto};
use redis::{Commands, RedisResult, Value};
use std::collections::HashSet;

#[test]
fn del_exists_touch_count_keys() {
    each_proto(|_, con, _| {
        let _: () = con.mset(&[("a", "1"), ("b", "2")]).unwrap();
        let n: i64 = cmd("EXISTS").arg("a").arg("a").arg("zz").query(con).unwrap();
        assert_eq!(n, 2, "EXISTS counts repeats");
        let n: i64 = cmd("TOUCH").arg("a").arg("b").arg("zz").query(con).unwrap();
        assert_eq!(n, 2);
        let n: i64 = con.del(&["a", "zz"]).unwrap();
        assert_eq!(n, 1);
        let n: i64 = cmd("UNLINK").arg("b").query(con).unwrap();
        assert_eq!(n, 1);
        let n: i64 = cmd("DBSIZE").query(con).unwrap();
        assert_eq!(n, 0);
    });
}

#[test]
fn rename_moves_value_and_ttl() {
    each_proto(|_, con, _| {
        let _: () = cmd("SET").arg("src").arg("v").arg("EX").arg(100).query(con).unwrap();
        let _: () = con.rename("src", "dst").unwrap();
        let v: String = con.get("dst").unwrap();
        assert_eq!(v, "v");
        let ttl: i64 = con.ttl("dst").unwrap();
        assert!(ttl > 90);
        let r: RedisResult<()> = con.rename("nope", "x");
        assert!(r.unwrap_err().to_string().contains("no such key"));
        let _: () = con.set("other", "o").unwrap();
        let n: i64 = cmd("RENAMENX").arg("dst").arg("other").query(con).unwrap();
        assert_eq!(n, 0);
        let n: i64 = cmd("RENAMENX").arg("dst").arg("fresh").query(con).unwrap();
        assert_eq!(n, 1);
        let _: () = con.rename("fresh", "fresh").unwrap();
        let v: String = con.get("fresh").unwrap();
        assert_eq!(v, "v", "renaming a key to itself keeps it");
    });
}

#[test]
fn copy_within_and_across_databases() {
    each_proto(|_, con, _| {
        let _: () = cmd("SET").arg("a").arg("1").arg("EX").arg(100).query(con).unwrap();
        let n: i64 = cmd("COPY").arg("a").arg("b").query(con).unwrap();
        assert_eq!(n, 1);
        let ttl: i64 = con.ttl("b").unwrap();
        assert!(ttl > 90, "COPY keeps the TTL");
        let n: i64 = cmd("COPY").arg("a").arg("b").query(con).unwrap();
        assert_eq!(n, 0, "destination exists");
        let n: i64 = cmd("COPY").arg("a").arg("b").arg("REPLACE").query(con).unwrap();
        assert_eq!(n, 1);
        let n: i64 = cmd("COPY").arg("a").arg("a").arg("DB").arg(3).query(con).unwrap();
        assert_eq!(n, 1);
        let r: RedisResult<i64> = cmd("COPY").arg("a").arg("a").query(con);
        assert!(r.unwrap_err().to_string().contains("source and destination objects are the same"));
        let r: RedisResult<i64> = cmd("COPY").arg("a").arg("z").arg("DB").arg(99).query(con);
        assert!(r.unwrap_err().to_string().contains("DB index is out of range"));
        let _: () = cmd("SELECT").arg(3).query(con).unwrap();
        let v: String = con.get("a").unwrap();
        assert_eq!(v, "1");
    });
}

#[test]
fn select_move_swapdb() {
    each_proto(|_, con, _| {
        let _: () = con.set("k", "db0").unwrap();
        let n: i64 = cmd("MOVE").arg("k").arg(1).query(con).unwrap();
        assert_eq!(n, 1);
        let n: i64 = cmd("MOVE").arg("k").arg(1).query(con).unwrap();
        assert_eq!(n, 0, "no longer in db 0");
        let _: () = cmd("SWAPDB").arg(0).arg(1).query(con).unwrap();
        let v: String = con.get("k").unwrap();
        assert_eq!(v, "db0", "db 1's contents are now db 0's");
        let r: RedisResult<()> = cmd("SELECT").arg(16).query(con);
        assert!(r.unwrap_err().to_string().contains("DB index is out of range"));
        let r: RedisResult<()> = cmd("SWAPDB").arg("x").arg(1).query(con);
        assert!(r.unwrap_err().to_string().contains("invalid first DB index"));
        let r: RedisResult<i64> = cmd("MOVE").arg("k").arg(0).query(con);
        assert!(r.unwrap_err().to_string().contains("source and destination objects are the same"));
    });
}

#[test]
fn keys_scan_randomkey() {
    each_proto(|_, con, _| {
        for i in 0..300 {
            let _: () = con.set(format!("user:{i}"), i).unwrap();
        }
        let _: () = con.set("other", "x").unwrap();
        let keys: Vec<String> = con.keys("user:1*").unwrap();
        assert_eq!(keys.len(), 1 + 10 + 100);
        let mut seen = HashSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) =
                cmd("SCAN").arg(cursor).arg("MATCH").arg("user:*").arg("COUNT").arg(37).query(con).unwrap();
            seen.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 300);
        let (_, none): (u64, Vec<String>) =
            cmd("SCAN").arg(0).arg("TYPE").arg("hash").arg("COUNT").arg(1000).query(con).unwrap();
        assert!(none.is_empty());
        let r: RedisResult<Value> = cmd("SCAN").arg("abc").query(con);
        assert!(r.unwrap_err().to_string().contains("invalid cursor"));
        let r: RedisResult<Value> = cmd("SCAN").arg(0).arg("COUNT").arg(0).query(con);
        assert!(r.unwrap_err().to_string().contains("syntax error"));
        let k: String = cmd("RANDOMKEY").query(con).unwrap();
        assert!(k.starts_with("user:") || k == "other");
        let _: () = cmd("FLUSHDB").query(con).unwrap();
        let k: Option<String> = cmd("RANDOMKEY").query(con).unwrap();
        assert_eq!(k, None);
    });
}

#[test]
fn object_subcommands() {
    each_proto(|_, con, _| {
        let _: () = con.set("i", 123).unwrap();
        let _: () = con.set("e", "hello").unwrap();
        let _: () = con.set("r", "x".repeat(45)).unwrap();
        for (k, enc) in [("i", "int"), ("e", "embstr"), ("r", "raw")] {
            let got: String = cmd("OBJECT").arg("ENCODING").arg(k).query(con).unwrap();
            assert_eq!(got, enc);
        }
        let n: Option<String> = cmd("OBJECT").arg("ENCODING").arg("missing").query(con).unwrap();
        assert_eq!(n, None);
        let rc: i64 = cmd("OBJECT").arg("REFCOUNT").arg("e").query(con).unwrap();
        assert_eq!(rc, 1);
        let idle: i64 = cmd("OBJECT").arg("IDLETIME").arg("e").query(con).unwrap();
        assert!(idle <= 1);
        let r: RedisResult<i64> = cmd("OBJECT").arg("FREQ").arg("e").query(con);
        assert!(r.unwrap_err().to_string().contains("An LFU maxmemory policy is not selected"));
        let _: () = cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-lfu").query(con).unwrap();
        let f: i64 = cmd("OBJECT").arg("FREQ").arg("e").query(con).unwrap();
        assert!(f >= 5);
        let help: Vec<String> = cmd("OBJECT").arg("HELP").query(con).unwrap();
        assert!(help.len() > 4);
        let r: RedisResult<Value> = cmd("OBJECT").arg("nope").query(con);
        assert!(r.unwrap_err().to_string().contains("unknown subcommand 'nope'. Try OBJECT HELP."));
    });
}

#[test]
fn dump_restore_round_trip() {
    each_proto(|_, con, _| {
        let _: () = con.set("k", "hello world").unwrap();
        let payload: Vec<u8> = cmd("DUMP").arg("k").query(con).unwrap();
        let _: () = cmd("RESTORE").arg("copy").arg(0).arg(&payload).query(con).unwrap();
        let v: String = con.get("copy").unwrap();
        assert_eq!(v, "hello world");
        let r: RedisResult<()> = cmd("RESTORE").arg("copy").arg(0).arg(&payload).query(con);
        assert!(r.unwrap_err().to_string().contains("Target key name already exists"));
        let _: () = cmd("RESTORE").arg("copy").arg(5000).arg(&payload).arg("REPLACE").query(con).unwrap();
        let pttl: i64 = con.pttl("copy").unwrap();
        assert!(pttl > 4000 && pttl <= 5000);
        let mut bad = payload.clone();
        bad[1] ^= 0x55;
        let r: RedisResult<()> = cmd("RESTORE").arg("bad").arg(0).arg(&bad).query(con);
        assert!(r.unwrap_err().to_string().contains("DUMP payload version or checksum are wrong"));
        let none: Option<Vec<u8>> = cmd("DUMP").arg("missing").query(con).unwrap();
        assert_eq!(none, None);
    });
}

#[test]
fn flushall_empties_every_database() {
    each_proto(|_, con, _| {
        let _: () = con.set("a", 1).unwrap();
        let _: () = cmd("SELECT").arg(5).query(con).unwrap();
        let _: () = con.set("b", 1).unwrap();
        let _: () = cmd("FLUSHALL").arg("ASYNC").query(con).unwrap();
        let n: i64 = cmd("DBSIZE").query(con).unwrap();
        assert_eq!(n, 0);
        let _: () = cmd("SELECT").arg(0).query(con).unwrap();
        let n: i64 = cmd("DBSIZE").query(con).unwrap();
        assert_eq!(n, 0);
        let r: RedisResult<()> = cmd("FLUSHALL").arg("LATER").query(con);
        assert!(r.unwrap_err().to_string().contains("syntax error"));
    });
}

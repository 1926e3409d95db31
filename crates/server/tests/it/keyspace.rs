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
        // Under an LFU policy a new key starts at LFU_INIT_VAL (5), and
        // its first read always climbs.
        let _: () = cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-lfu").query(con).unwrap();
        let _: () = con.set("lfu", "v").unwrap();
        let f: i64 = cmd("OBJECT").arg("FREQ").arg("lfu").query(con).unwrap();
        assert_eq!(f, 5);
        let _: String = con.get("lfu").unwrap();
        let f: i64 = cmd("OBJECT").arg("FREQ").arg("lfu").query(con).unwrap();
        assert_eq!(f, 6);
        let _: () = cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("noeviction").query(con).unwrap();
        let help: Vec<String> = cmd("OBJECT").arg("HELP").query(con).unwrap();
        assert!(help.len() > 4);
        let r: RedisResult<Value> = cmd("OBJECT").arg("nope").query(con);
        assert!(r.unwrap_err().to_string().contains("unknown subcommand 'nope'. Try OBJECT HELP."));
    });
}

/// CLIENT NO-TOUCH (Redis 7.2, so no differential test against the 7.0
/// redis-server): the client's reads leave keys' LRU clocks and LFU
/// counters alone, an overwrite starts a new LRU clock as Redis's new
/// object does, TOUCH still touches, and CLIENT LIST shows the T flag.
#[test]
fn client_no_touch_leaves_access_clocks_alone() {
    let clock = std::sync::Arc::new(larder_store::ManualClock::new(1_800_000_000_000));
    let s = larder_testkit::spawn_server_with_clock(larder_server::Config::default(), clock.clone());
    for proto in [larder_protocol::Proto::Resp2, larder_protocol::Proto::Resp3] {
        let mut con = s.conn(proto);
        let con = &mut con;
        let idle =
            |con: &mut redis::Connection, k: &str| -> i64 { cmd("OBJECT").arg("IDLETIME").arg(k).query(con).unwrap() };
        let _: () = cmd("FLUSHALL").query(con).unwrap();
        let _: () = con.set("k", "v").unwrap();
        clock.advance(10_000);
        let _: () = cmd("CLIENT").arg("NO-TOUCH").arg("on").query(con).unwrap();
        let _: String = con.get("k").unwrap();
        let _: i64 = cmd("STRLEN").arg("k").query(con).unwrap();
        assert_eq!(idle(con, "k"), 10, "reads under NO-TOUCH leave the clock");
        let list: String = cmd("CLIENT").arg("INFO").query(con).unwrap();
        assert!(list.contains(" flags=T "), "{list}");
        let _: () = con.set("k", "w").unwrap();
        assert_eq!(idle(con, "k"), 0, "an overwrite is a new value, as in Redis");
        clock.advance(5_000);
        let n: i64 = cmd("TOUCH").arg("k").query(con).unwrap();
        assert_eq!((n, idle(con, "k")), (1, 0), "TOUCH still touches");
        clock.advance(3_000);
        let _: () = cmd("CLIENT").arg("NO-TOUCH").arg("OFF").query(con).unwrap();
        let _: String = con.get("k").unwrap();
        assert_eq!(idle(con, "k"), 0);
        let r: RedisResult<()> = cmd("CLIENT").arg("NO-TOUCH").arg("maybe").query(con);
        assert!(r.unwrap_err().to_string().contains("syntax error"));
        // LFU: a new key starts at 5, and its first read always climbs,
        // unless the reader is in NO-TOUCH mode.
        let _: () = cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-lfu").query(con).unwrap();
        let _: () = con.set("f", "v").unwrap();
        let _: () = cmd("CLIENT").arg("NO-TOUCH").arg("on").query(con).unwrap();
        for _ in 0..20 {
            let _: String = con.get("f").unwrap();
        }
        let freq: i64 = cmd("OBJECT").arg("FREQ").arg("f").query(con).unwrap();
        assert_eq!(freq, 5);
        let _: () = cmd("CLIENT").arg("NO-TOUCH").arg("off").query(con).unwrap();
        let _: String = con.get("f").unwrap();
        let freq: i64 = cmd("OBJECT").arg("FREQ").arg("f").query(con).unwrap();
        assert_eq!(freq, 6);
        let _: () = cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("noeviction").query(con).unwrap();
    }
}

/// A file keeps each key's seconds idle under an LRU policy and its LFU
/// counter under an LFU one, and nothing under the others, as Redis's
/// rdbSaveKeyValuePair: after DEBUG RELOAD (a save and a load) the clocks
/// read as before. BGSAVE, AOF rewrites and full syncs write the same way.
#[test]
fn a_reload_keeps_idle_times_and_counters_under_their_policies() {
    let clock = std::sync::Arc::new(larder_store::ManualClock::new(1_800_000_000_000));
    let s = larder_testkit::spawn_server_with_clock(larder_server::Config::default(), clock.clone());
    let mut con = s.conn(larder_protocol::Proto::Resp2);
    let con = &mut con;
    let idle = |con: &mut redis::Connection| -> i64 { cmd("OBJECT").arg("IDLETIME").arg("k").query(con).unwrap() };
    let set = |con: &mut redis::Connection, param: &str, value: &str| {
        let _: () = cmd("CONFIG").arg("SET").arg(param).arg(value).query(con).unwrap();
    };
    let reload = |con: &mut redis::Connection| {
        let _: () = cmd("DEBUG").arg("RELOAD").query(con).unwrap();
    };
    set(con, "maxmemory-policy", "allkeys-lru");
    let _: () = con.set("k", "v").unwrap();
    clock.advance(100_000);
    reload(con);
    assert_eq!(idle(con), 100);
    clock.advance(5_000);
    assert_eq!(idle(con), 105);
    // No LRU policy: nothing saved, and a loaded key starts idle at 0.
    set(con, "maxmemory-policy", "noeviction");
    reload(con);
    assert_eq!(idle(con), 0);
    set(con, "maxmemory-policy", "allkeys-lfu");
    set(con, "lfu-decay-time", "0");
    let _: () = con.set("f", "v").unwrap();
    for _ in 0..50 {
        let _: String = con.get("f").unwrap();
    }
    let before: i64 = cmd("OBJECT").arg("FREQ").arg("f").query(con).unwrap();
    assert!(before > 5, "{before}");
    reload(con);
    let after: i64 = cmd("OBJECT").arg("FREQ").arg("f").query(con).unwrap();
    assert_eq!(after, before);
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

/// MIGRATE moves keys to another server (Larder, then a real redis-server
/// when installed) with their TTLs; COPY keeps them here; a key already
/// there answers the target's BUSYKEY unless REPLACE; AUTH reaches a
/// protected target; nothing to move answers NOKEY. As in Redis, the
/// connection to a target is cached (one connection for every MIGRATE
/// to it, INFO's `migrate_cached_sockets`; SELECT only when the database
/// changes), and a cached connection the target closed is replaced
/// without an error.
#[test]
fn migrate_moves_keys_to_larder_and_to_redis() {
    use larder_protocol::Frame;
    use larder_testkit::{spawn_server, RawConn, RedisServer};
    let source = spawn_server();
    let mut src = source.raw();
    let larder = spawn_server();
    let redis = RedisServer::start();
    let mut targets: Vec<(std::net::SocketAddr, RawConn)> = vec![(larder.addr, larder.raw())];
    if let Some(r) = &redis {
        targets.push((r.addr, r.raw()));
    }
    let ok = || Frame::ok();
    let stat = |conn: &mut RawConn, section: &str, prefix: &str| -> u64 {
        let Frame::Bulk(info) = conn.call(&["INFO", section]).unwrap() else { panic!() };
        let info = String::from_utf8_lossy(&info).into_owned();
        let rest = info.lines().find_map(|l| l.strip_prefix(prefix)).map(str::to_string);
        rest.map_or(0, |r| r.trim_end().split(',').next().unwrap().parse().unwrap())
    };
    let selects = |dst: &mut RawConn| stat(dst, "commandstats", "cmdstat_select:calls=");
    let connections = |dst: &mut RawConn| stat(dst, "stats", "total_connections_received:");
    for (addr, mut dst) in targets {
        let (host, port) = (addr.ip().to_string(), addr.port().to_string());
        let migrate = |src: &mut RawConn, rest: &[&str]| {
            let mut args = vec!["MIGRATE", &host, &port];
            args.extend_from_slice(rest);
            src.call(&args).unwrap()
        };
        src.call(&["FLUSHALL"]).unwrap();
        dst.call(&["FLUSHALL"]).unwrap();
        src.call(&["SET", "s", "v", "PX", "100000"]).unwrap();
        src.call(&["RPUSH", "l", "a", "b"]).unwrap();
        src.call(&["SET", "c", "kept"]).unwrap();
        src.call(&["CONFIG", "RESETSTAT"]).unwrap();
        let connected = connections(&mut dst);
        // (The loop's earlier targets keep theirs.)
        let cached = stat(&mut src, "stats", "migrate_cached_sockets:");
        assert_eq!(migrate(&mut src, &["s", "3", "5000"]), ok());
        assert_eq!(stat(&mut src, "stats", "migrate_cached_sockets:"), cached + 1);
        assert_eq!(src.call(&["EXISTS", "s"]).unwrap(), Frame::Integer(0));
        dst.call(&["SELECT", "3"]).unwrap();
        assert_eq!(dst.call(&["GET", "s"]).unwrap(), Frame::Bulk("v".into()));
        let Frame::Integer(ttl) = dst.call(&["PTTL", "s"]).unwrap() else { panic!() };
        assert!((90_000..=100_000).contains(&ttl), "TTL {ttl}");
        // Several keys; one missing is skipped. The cached connection is
        // in database 3 already: no SELECT.
        let selected = selects(&mut dst);
        assert_eq!(migrate(&mut src, &["", "3", "5000", "COPY", "KEYS", "l", "c", "nosuch"]), ok());
        assert_eq!(selects(&mut dst), selected);
        assert_eq!(src.call(&["EXISTS", "l", "c"]).unwrap(), Frame::Integer(2));
        assert_eq!(
            dst.call(&["LRANGE", "l", "0", "-1"]).unwrap(),
            Frame::Array(vec![Frame::Bulk("a".into()), Frame::Bulk("b".into())])
        );
        let busy = "ERR Target instance replied with error: BUSYKEY Target key name already exists.";
        assert_eq!(migrate(&mut src, &["c", "3", "5000"]), Frame::Error(busy.into()));
        assert_eq!(src.call(&["EXISTS", "c"]).unwrap(), Frame::Integer(1), "a refused key stays");
        src.call(&["SET", "c", "newer"]).unwrap();
        assert_eq!(migrate(&mut src, &["c", "3", "5000", "REPLACE"]), ok());
        assert_eq!(dst.call(&["GET", "c"]).unwrap(), Frame::Bulk("newer".into()));
        assert_eq!(migrate(&mut src, &["nosuch", "3", "5000"]), Frame::simple("NOKEY"));
        assert_eq!(connections(&mut dst), connected + 1, "every MIGRATE went over one connection");
        assert_eq!(stat(&mut src, "stats", "migrate_cached_sockets:"), cached + 1);
        // A protected target: refused without AUTH, served with it. The
        // cached connection logged in before the password was set, so it
        // is closed first (it still serves, as in Redis, while it lasts);
        // the next MIGRATE finds it closed and connects again.
        dst.call(&["CONFIG", "SET", "requirepass", "pw"]).unwrap();
        let Frame::Integer(1) = dst.call(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]).unwrap() else {
            panic!("the cached connection, and only it, is killed")
        };
        src.call(&["SET", "p", "1"]).unwrap();
        let Frame::Error(e) = migrate(&mut src, &["p", "0", "5000"]) else { panic!() };
        assert!(e.starts_with(b"ERR Target instance replied with error: NOAUTH"), "{e:?}");
        assert_eq!(migrate(&mut src, &["p", "0", "5000", "AUTH", "pw"]), ok());
        assert_eq!(src.call(&["EXISTS", "p"]).unwrap(), Frame::Integer(0));
        dst.call(&["AUTH", "pw"]).unwrap();
        dst.call(&["CONFIG", "SET", "requirepass", ""]).unwrap();
    }
    // Errors before any connection.
    let e = |f: Frame| match f {
        Frame::Error(e) => String::from_utf8(e.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    let keys_err = e(src.call(&["MIGRATE", "127.0.0.1", "1", "k", "0", "10", "KEYS", "a"]).unwrap());
    assert_eq!(keys_err, "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string");
    assert_eq!(e(src.call(&["MIGRATE", "127.0.0.1", "1", "k", "0", "10", "BOGUS"]).unwrap()), "ERR syntax error");
    src.call(&["SET", "k", "v"]).unwrap();
    // Nothing listens on port 1.
    let io = e(src.call(&["MIGRATE", "127.0.0.1", "1", "k", "0", "100"]).unwrap());
    assert_eq!(io, "IOERR error or timeout connecting to the client");
    assert_eq!(src.call(&["EXISTS", "k"]).unwrap(), Frame::Integer(1));
}

/// UNLINK, FLUSHALL ASYNC and FLUSHDB ASYNC free large values on the
/// lazyfree thread, counted as Redis counts them (INFO memory's
/// lazyfreed_objects: one per value, one per key of a flushed database),
/// and used_memory falls; a small value and DEL free on the spot unless
/// lazyfree-lazy-user-del says otherwise; CONFIG RESETSTAT zeroes the
/// count.
#[test]
fn unlink_and_async_flushes_free_in_the_background() {
    use crate::{info_field, wait_info_field};
    let s = larder_testkit::spawn_server();
    let mut raw = s.raw();
    let big = |raw: &mut larder_testkit::RawConn, key: &str, members: usize| {
        for chunk in (0..members).collect::<Vec<_>>().chunks(1000) {
            let mut args = vec!["SADD".to_string(), key.to_string()];
            args.extend(chunk.iter().map(|i| format!("member:{i}")));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            raw.call(&args).unwrap();
        }
    };
    let used = |raw: &mut larder_testkit::RawConn| info_field(raw, "memory", "used_memory").parse::<i64>().unwrap();
    let before = used(&mut raw);
    big(&mut raw, "s1", 50_000);
    raw.call(&["SET", "small", "x"]).unwrap();
    let peak = used(&mut raw);
    raw.call(&["UNLINK", "s1", "small"]).unwrap();
    wait_info_field(&mut raw, "memory", "lazyfreed_objects", "1");
    // The thread's frees count in used_memory (they once did not: a
    // thread's first frees went uncounted).
    let after = used(&mut raw);
    assert!(after < before + (peak - before) / 2, "used_memory {before} -> {peak} -> {after}");
    big(&mut raw, "s2", 500);
    raw.call(&["DEL", "s2"]).unwrap();
    raw.call(&["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"]).unwrap();
    big(&mut raw, "s3", 500);
    raw.call(&["DEL", "s3"]).unwrap();
    wait_info_field(&mut raw, "memory", "lazyfreed_objects", "2");
    for k in ["a", "b", "c"] {
        raw.call(&["SET", k, "1"]).unwrap();
    }
    raw.call(&["FLUSHALL", "ASYNC"]).unwrap();
    wait_info_field(&mut raw, "memory", "lazyfreed_objects", "5");
    raw.call(&["SET", "d", "1"]).unwrap();
    raw.call(&["FLUSHDB", "SYNC"]).unwrap();
    raw.call(&["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"]).unwrap();
    raw.call(&["SET", "e", "1"]).unwrap();
    raw.call(&["FLUSHDB"]).unwrap();
    wait_info_field(&mut raw, "memory", "lazyfree_pending_objects", "0");
    // Exactly: a DEL or SYNC flush that went to the thread would show here.
    assert_eq!(info_field(&mut raw, "memory", "lazyfreed_objects"), "6");
    assert_eq!(raw.call(&["DBSIZE"]).unwrap(), larder_protocol::Frame::Integer(0));
    raw.call(&["CONFIG", "RESETSTAT"]).unwrap();
    assert_eq!(info_field(&mut raw, "memory", "lazyfreed_objects"), "0");
}

/// lazyfree-lazy-server-del, -expire and -eviction: a big value replaced
/// by SET, expired, or evicted goes to the lazyfree thread only under its
/// option, and the counts match redis-server's for the same steps (the
/// eviction step, which needs a real memory limit, is Larder's alone).
#[test]
fn the_keyspaces_own_deletions_free_lazily_when_told() {
    use crate::{info_field, wait_info_field};
    let both = crate::Both::start();
    let mut servers: Vec<_> = both.conns().into_iter().map(|(_, c)| c).collect();
    let big = |raw: &mut larder_testkit::RawConn, key: &str| {
        let mut args = vec!["HSET".to_string(), key.to_string()];
        // Past hash-max-listpack-entries: a hashtable in Redis too, whose
        // lazyfree effort (its size) passes the threshold.
        args.extend((0..1000).flat_map(|i| [format!("f{i}"), "v".to_string()]));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(raw.call(&args).unwrap(), larder_protocol::Frame::Integer(1000));
    };
    for raw in &mut servers {
        // Off (the defaults): freed on the spot.
        big(raw, "h1");
        raw.call(&["SET", "h1", "x"]).unwrap();
        big(raw, "h2");
        raw.call(&["PEXPIRE", "h2", "1"]).unwrap();
        wait_info_field(raw, "keyspace", "db0", "keys=1,expires=0,avg_ttl=0");
        assert_eq!(info_field(raw, "memory", "lazyfreed_objects"), "0");
        // On: each goes to the thread.
        for option in ["lazyfree-lazy-server-del", "lazyfree-lazy-expire"] {
            raw.call(&["CONFIG", "SET", option, "yes"]).unwrap();
        }
        big(raw, "h4");
        raw.call(&["SET", "h4", "x"]).unwrap();
        wait_info_field(raw, "memory", "lazyfreed_objects", "1");
        big(raw, "h3");
        raw.call(&["PEXPIRE", "h3", "1"]).unwrap();
        wait_info_field(raw, "memory", "lazyfreed_objects", "2");
        // A small value is freed on the spot all the same.
        raw.call(&["SET", "h1", "y"]).unwrap();
        assert_eq!(info_field(raw, "memory", "lazyfreed_objects"), "2");
    }
    let raw = &mut servers[0];
    raw.call(&["CONFIG", "SET", "lazyfree-lazy-eviction", "yes"]).unwrap();
    raw.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]).unwrap();
    big(raw, "h5");
    // The whole process is over one byte: the next write evicts all.
    raw.call(&["CONFIG", "SET", "maxmemory", "1"]).unwrap();
    let _ = raw.call(&["SET", "k", "v"]).unwrap();
    wait_info_field(raw, "memory", "lazyfreed_objects", "3");
    raw.call(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
}

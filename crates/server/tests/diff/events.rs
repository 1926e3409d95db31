//! Keyspace notifications against real Redis: the same writes run on both
//! servers with `notify-keyspace-events` on, a second connection on each
//! records every `__keyspace@…`/`__keyevent@…` message, and the two
//! recordings must be identical, event names, keys and order included.

use crate::pair;
use larder_protocol::Frame;
use larder_testkit::RawConn;

/// The (channel, message) pairs `sub` receives until the end marker.
fn record(sub: &mut RawConn) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let (Frame::Array(parts) | Frame::Push(parts)) = sub.read_frame().expect("event") else {
            panic!("not a message")
        };
        let text = |f: &Frame| match f {
            Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        };
        let (channel, msg) = (text(&parts[2]), text(&parts[3]));
        if channel == "__key_end" {
            return out;
        }
        out.push((channel, msg));
    }
}

/// Runs `script` on both servers with `flags` and compares the events.
pub(crate) fn check_events(flags: &str, script: &str) {
    let Some(mut p) = pair(false) else { return };
    let mut subs = [p.larder.raw(), p.redis.raw()];
    for (sub, conn) in subs.iter_mut().zip([&mut p.ours, &mut p.theirs]) {
        assert_eq!(conn.call(&["CONFIG", "SET", "notify-keyspace-events", flags]).unwrap(), Frame::ok());
        assert!(matches!(sub.call(&["PSUBSCRIBE", "__key*"]).unwrap(), Frame::Array(_)));
    }
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        // `?`: a random reply (SPOP); only the events are compared.
        let (random, line) = match line.strip_prefix('?') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let args = larder_protocol::split_args(line.as_bytes()).expect("script line");
        let ours = p.ours.call(&args).unwrap();
        let theirs = p.theirs.call(&args).unwrap();
        if random {
            continue;
        }
        assert_eq!(larder_testkit::diff::normalize(&ours), larder_testkit::diff::normalize(&theirs), "reply to {line}");
    }
    for conn in [&mut p.ours, &mut p.theirs] {
        conn.call(&["PUBLISH", "__key_end", "x"]).unwrap();
    }
    let [mut ours_sub, mut theirs_sub] = subs;
    let (ours, theirs) = (record(&mut ours_sub), record(&mut theirs_sub));
    assert!(!theirs.is_empty(), "the script fires events on Redis");
    let first_diff = ours.iter().zip(&theirs).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs.len()));
    assert!(
        ours == theirs,
        "events differ from #{first_diff}:\n larder: {:?}\n redis:  {:?}",
        &ours[first_diff.saturating_sub(2)..(first_diff + 12).min(ours.len())],
        &theirs[first_diff.saturating_sub(2)..(first_diff + 12).min(theirs.len())],
    );
}

const WRITES: &str = r#"
    SET s 1
    SET s 2 EX 100
    SET s 3 KEEPTTL
    SET s 4 NX
    SET s 5 XX GET
    SETNX s2 x
    SETEX s3 100 x
    PSETEX s4 100000 x
    GETSET s 5
    GETDEL s2
    GETDEL s2
    GETEX s3 PERSIST
    GETEX s3 EX 100
    MSET m1 a m2 b m1 c
    MSETNX m3 a m4 b
    MSETNX m3 a m9 b
    APPEND s x
    SETRANGE s 5 yy
    INCR n
    DECR n
    INCRBY n 5
    DECRBY n 3
    INCRBYFLOAT n 1.5
    DEL m1 nosuch
    UNLINK m2
    RENAME m3 m5
    RENAME m5 m5
    RENAMENX m5 m6
    RENAMENX m6 s
    COPY m6 m7
    COPY m6 m7 REPLACE
    COPY m6 m7 DB 2
    MOVE m7 1
    EXPIRE m6 100
    PEXPIRE m6 100000
    EXPIREAT m6 9999999999
    EXPIRE m6 50 NX
    PERSIST m6
    PERSIST m6
    EXPIRE m6 0
    LPUSH l a b c
    RPUSH l d
    LPUSHX l e
    RPUSHX l f
    LPUSHX nol e
    LINSERT l BEFORE a z
    LSET l 0 q
    LPOP l
    RPOP l 2
    LTRIM l 0 1
    LREM l 0 b
    LREM l 0 nothere
    LMOVE l l2 LEFT RIGHT
    RPOPLPUSH l l2
    RPUSH l3 a b
    LMOVE l3 l3 LEFT RIGHT
    LMPOP 1 l2 LEFT COUNT 10
    BLPOP l3 0
    BRPOP l3 0
    HSET h a 1 b 2
    HSETNX h c 3
    HSETNX h c 3
    HMSET h d 4
    HINCRBY h a 1
    HINCRBYFLOAT h a 1.5
    HDEL h a b c d
    SADD st a b c
    SADD st a
    SREM st a
    SADD sp only
    SPOP sp
    SMOVE st st2 c
    SMOVE st st2 c
    SADD st a b
    SINTERSTORE st3 st st
    SUNIONSTORE st4 st st2
    SDIFFSTORE st5 st st2
    SDIFFSTORE st4 st st
    ?SPOP st 10
    ZADD z 1 a 2 b 3 c 4 d 5 e
    ZADD z INCR 1 a
    ZADD z NX 1 a
    ZINCRBY z 1 a
    ZREM z a
    ZREMRANGEBYSCORE z 0 2
    ZREMRANGEBYRANK z 0 0
    ZADD z 1 a 1 b 1 c
    ZREMRANGEBYLEX z [a [a
    ZPOPMIN z
    ZPOPMAX z
    ZADD z 1 a 2 b
    ZUNIONSTORE z2 1 z
    ZINTERSTORE z3 1 z
    ZDIFFSTORE z4 1 z
    ZRANGESTORE z5 z 0 -1
    ZRANGESTORE z5 z 5 10
    ZMPOP 1 z MIN
    BZPOPMIN z 0
    XADD x 1-1 a 1
    XADD x MAXLEN 1 2-1 a 1
    XTRIM x MAXLEN 0
    XADD x 3-1 a 1
    XDEL x 3-1
    XADD x 4-1 a 1
    XGROUP CREATE x g 0
    XGROUP CREATE x g2 $ MKSTREAM
    XGROUP CREATE x3 g2 $ MKSTREAM
    XGROUP CREATECONSUMER x g c
    XGROUP CREATECONSUMER x g c
    XGROUP SETID x g 0
    XREADGROUP GROUP g c2 COUNT 1 STREAMS x >
    XGROUP DELCONSUMER x g c
    XGROUP DESTROY x g
    XSETID x 5-1
    SETBIT b 1 1
    BITOP OR b2 b b
    BITOP AND b2 nob nob
    BITFIELD b SET u8 0 1 GET u8 0
    BITFIELD b GET u8 0
    PFADD p a
    PFADD p a
    PFMERGE p2 p
    GEOADD g 1 1 a
    GEOSEARCHSTORE g2 g FROMLONLAT 1 1 BYRADIUS 10 km
    GEORADIUS g 1 1 10 km STORE g3
    RPUSH so 3 1 2
    SORT so STORE so2
    SORT nolist STORE so2
    DUMP l3
    DEL so r
    FLUSHDB
"#;

#[test]
fn keyspace_events_match_redis() {
    check_events("KEA", WRITES);
}

#[test]
fn keyspace_and_new_events_match_redis_per_class() {
    // One class at a time, with `n`: each class filter must let through
    // exactly Redis's events.
    for flags in ["Kg", "E$", "Kl", "Es", "Kh", "Ez", "Kt", "KEn", "Kgn"] {
        check_events(flags, WRITES);
    }
}

#[test]
fn keymiss_and_expired_events_match_redis() {
    check_events(
        "KEAm",
        r#"
        GET missing
        MGET missing1 missing2
        HGET nokey f
        EXISTS nokey
        TTL nokey
        TYPE nokey
        OBJECT ENCODING nokey
        LRANGE nokey 0 -1
        SMEMBERS nokey
        ZSCORE nokey m
        SET k v
        GET k
        PSETEX e 1 v
        DEBUG SLEEP 0.01
        GET e
        SET k2 v PX 1
        DEBUG SLEEP 0.01
        EXISTS k2
        "#,
    );
}

#[test]
fn keymiss_fires_for_every_read_family() {
    check_events(
        "Em",
        r#"
        STRLEN nokey
        TOUCH nokey
        PTTL nokey
        EXPIRETIME nokey
        DUMP nokey
        LLEN nokey
        LINDEX nokey 0
        HGETALL nokey
        HLEN nokey
        SCARD nokey
        SISMEMBER nokey m
        SINTER nokey
        ZRANGE nokey 0 1
        ZCARD nokey
        XRANGE nokey - +
        XLEN nokey
        GETRANGE nokey 0 1
        GETBIT nokey 1
        BITCOUNT nokey
        PFCOUNT nokey
        GEOPOS nokey m
        SORT_RO nokey
        LPUSH l a
        LPOP l
        SET s v
        GETDEL s
        GETEX nokey
        GETDEL nokey
        GETSET nokey2 v
        SET nokey3 v GET
        SET nokey3 v2 GET
        "#,
    );
}

#[test]
fn notify_keyspace_events_config_matches_redis() {
    crate::check_script(
        r#"
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events KEAnm
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events Kg
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events AKn
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events Egn$lshzxetd
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events xe
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events bad
        CONFIG SET notify-keyspace-events ""
        CONFIG GET notify-keyspace-events
        "#,
    );
}

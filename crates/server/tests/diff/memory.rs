//! maxmemory against real Redis: the OOM error and which commands get it
//! (denyoom ones only), inside MULTI (the EXEC aborts), inside scripts
//! (redis.call raises, redis.pcall returns it), the policies that find
//! nothing to evict, and the `evicted` keyspace event. `maxmemory 1` is
//! over the limit on both servers whatever they hold, so the replies are
//! deterministic.

use crate::check_script;
use crate::events::check_events;

#[test]
fn out_of_memory_replies_match() {
    check_script(
        r#"
        SET a 1
        CONFIG SET maxmemory-policy noeviction
        CONFIG SET maxmemory 1
        SET b 2
        INCR a
        GET a
        EXISTS a b
        DEL a
        MULTI
        SET c 3
        GET c
        EXEC
        MULTI
        GET c
        EXEC
        EVAL "return redis.call('set','x','1')" 0
        EVAL "return redis.pcall('set','x','1')" 0
        EVAL "return redis.call('get','x')" 0
        CONFIG SET maxmemory-policy allkeys-lru
        SET d 4
        CONFIG SET maxmemory-policy volatile-ttl
        SET d 4
        CONFIG SET maxmemory 0
        MSET k1 1 k2 2 k3 3
        SET t 1 EX 100
        CONFIG SET maxmemory-policy volatile-lru
        CONFIG SET maxmemory 1
        SET f 6
        DBSIZE
        EXISTS t
        CONFIG SET maxmemory-policy allkeys-random
        SET f 6
        DBSIZE
        CONFIG SET maxmemory 0
        SET f 6
        "#,
    );
}

#[test]
fn an_eviction_fires_evicted() {
    check_events(
        "KEA",
        r#"
        SET victim v
        CONFIG SET maxmemory-policy allkeys-lru
        CONFIG SET maxmemory 1
        SET other v
        CONFIG SET maxmemory 0
        "#,
    );
}

#[test]
fn memory_command_errors_and_shapes_match() {
    check_script(
        r#"
        SET k v
        RPUSH l a bb ccc
        ?MEMORY USAGE k
        ?MEMORY USAGE l SAMPLES 0
        MEMORY USAGE nokey
        MEMORY USAGE k SAMPLES x
        MEMORY USAGE k SAMPLES -1
        MEMORY USAGE k SAMPLES
        MEMORY USAGE k foo
        MEMORY USAGE
        MEMORY PURGE
        MEMORY HELP
        MEMORY NOSUCH
        ?MEMORY DOCTOR
        ?MEMORY MALLOC-STATS
        "#,
    );
}

/// MEMORY STATS names the same fields, in the same order, as Redis.
#[test]
fn memory_stats_fields_match() {
    for resp3 in [false, true] {
        let Some(mut p) = crate::pair(resp3) else { return };
        let names = |conn: &mut larder_testkit::RawConn| -> Vec<String> {
            conn.call(&["SET", "k", "v"]).unwrap();
            let text = |f: &larder_protocol::Frame| match f {
                larder_protocol::Frame::Bulk(b) | larder_protocol::Frame::Simple(b) => {
                    String::from_utf8_lossy(b).into_owned()
                }
                other => panic!("field name {other:?}"),
            };
            match conn.call(&["MEMORY", "STATS"]).unwrap() {
                larder_protocol::Frame::Map(pairs) => pairs.iter().map(|(k, _)| text(k)).collect(),
                larder_protocol::Frame::Array(flat) => flat.iter().step_by(2).map(text).collect(),
                other => panic!("MEMORY STATS: {other:?}"),
            }
        };
        assert_eq!(names(&mut p.ours), names(&mut p.theirs), "resp3: {resp3}");
    }
}

/// Strings Larder stores seven bits a character (ASCII, set whole, 23 to
/// 512 bytes) read back, change and report their encoding as Redis's do,
/// at each edge of the packed range, beside strings with a byte past
/// ASCII, which stay as they are.
#[test]
fn packed_strings_behave_as_redis_strings() {
    let mut script = String::new();
    for n in [22, 23, 44, 45, 100, 511, 512, 513] {
        let text: String =
            (0..n).map(|i| (b'!' + (i * 7 % 90) as u8) as char).filter(|c| *c != '"' && *c != '\\').collect();
        let text = format!("{text}{}", "x".repeat(n - text.len()));
        for (key, value) in [("t", format!("\"{text}\"")), ("b", format!("\"{}\\xc3\\xa9\"", &text[2..]))] {
            script.push_str(&format!(
                "
                SET {key} {value}
                GET {key}
                STRLEN {key}
                OBJECT ENCODING {key}
                GETRANGE {key} 3 17
                GETRANGE {key} -9 -1
                GETBIT {key} 13
                BITCOUNT {key}
                BITPOS {key} 0
                LCS t b LEN
                SETRANGE {key} 7 ZZ
                GET {key}
                OBJECT ENCODING {key}
                SET {key} {value}
                APPEND {key} tail
                GET {key}
                OBJECT ENCODING {key}
                SET {key} {value}
                SETBIT {key} 20 1
                GET {key}
                SET {key} {value}
                GETSET {key} {value}
                GETDEL {key}
                SET {key} {value}
                "
            ));
        }
    }
    check_script(&script);
}

/// The access clock is one field kept in the form of the policy in force
/// (entry.rs), as Redis's: a key made under an LFU policy starts at
/// LFU_INIT_VAL and its first read moves it to 6 (a counter at or below
/// 5 always climbs); RESTORE's FREQ and IDLETIME each land only under
/// their own policy. The payload is DUMP of "hello" from redis-server.
#[test]
fn access_clocks_follow_the_policy() {
    check_script(
        r#"
        CONFIG SET maxmemory-policy allkeys-lfu
        SET f hello
        OBJECT FREQ f
        GET f
        OBJECT FREQ f
        OBJECT IDLETIME f
        RESTORE r 0 "\x00\x05hello\n\x00cr\xdfve4 \n" FREQ 100
        OBJECT FREQ r
        RESTORE r2 0 "\x00\x05hello\n\x00cr\xdfve4 \n" IDLETIME 1000
        OBJECT FREQ r2
        CONFIG SET maxmemory-policy allkeys-lru
        OBJECT FREQ f
        RESTORE r3 0 "\x00\x05hello\n\x00cr\xdfve4 \n" IDLETIME 1000
        OBJECT IDLETIME r3
        RESTORE r4 0 "\x00\x05hello\n\x00cr\xdfve4 \n" IDLETIME 20000000
        OBJECT IDLETIME r4
        RESTORE r5 0 "\x00\x05hello\n\x00cr\xdfve4 \n" FREQ 100
        OBJECT IDLETIME r5
        DEBUG OBJECT missing
        "#,
    );
}

/// Deadlines are exact however far they are (entry.rs keeps those more
/// than seven years out, or long past, in a side table): they survive
/// RENAME, COPY, MOVE and an overwrite with KEEPTTL, and PERSIST drops
/// them.
#[test]
fn far_and_near_deadlines_read_back_exactly() {
    check_script(
        r#"
        SET big v
        PEXPIREAT big 9223372036854770000
        PEXPIRETIME big
        EXPIRETIME big
        SET c2100 v EXAT 4102444800
        EXPIRETIME c2100
        SET c2030 v PXAT 1900000000123
        PEXPIRETIME c2030
        RENAME c2100 moved
        PEXPIRETIME moved
        COPY moved copied
        PEXPIRETIME copied
        SET moved w KEEPTTL
        PEXPIRETIME moved
        MOVE copied 1
        SELECT 1
        PEXPIRETIME copied
        SELECT 0
        PERSIST moved
        PEXPIRETIME moved
        PEXPIREAT c2030 4102444800001
        PEXPIRETIME c2030
        PEXPIREAT c2030 1900000000124
        PEXPIRETIME c2030
        PEXPIREAT big -9223372036854770000
        EXISTS big
        DBSIZE
        "#,
    );
}

/// Redis saves a key's LFU counter under an LFU policy, so DEBUG RELOAD
/// (save, then load) keeps it; with lfu-decay-time 0 the counter cannot
/// move meanwhile, so both servers answer exactly.
#[test]
fn lfu_counters_survive_a_reload() {
    check_script(
        r#"
        CONFIG SET lfu-decay-time 0
        CONFIG SET maxmemory-policy allkeys-lfu
        RESTORE f 0 "\x00\x05hello\n\x00cr\xdfve4 \n" FREQ 100
        RESTORE g 0 "\x00\x05hello\n\x00cr\xdfve4 \n" FREQ 3 ABSTTL
        DEBUG RELOAD
        OBJECT FREQ f
        OBJECT FREQ g
        "#,
    );
}

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

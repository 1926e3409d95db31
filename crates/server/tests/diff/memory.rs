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

//! Differences the Redis project's own test suite found (scripts/redis-suite),
//! pinned here as differential checks so they stay fixed: debugging
//! commands the suite relies on (DEBUG DIGEST, DEBUG PROTOCOL, PFDEBUG),
//! error texts and edge cases of several families.

use crate::check_script;

#[test]
fn debug_digests_are_redis_digests() {
    // The same data gives the same digest, byte for byte, on both servers.
    check_script(
        r#"
        DEBUG DIGEST
        SET s hello
        SET n 12345
        RPUSH l a b c
        SADD set x y 1 2
        ZADD z 1.5 a 2 b -3 c
        HSET h f v g w
        XADD x 1-1 f v
        XADD x 2-0 g w h i
        SET ttl v EX 1000
        DEBUG DIGEST-VALUE s n l set z h x ttl missing
        DEBUG DIGEST
        SELECT 3
        SET other v
        DEBUG DIGEST
        DEBUG DIGEST-VALUE other
        "#,
    );
}

#[test]
fn debug_protocol_replies_like_redis() {
    check_script(
        r#"
        DEBUG PROTOCOL string
        DEBUG PROTOCOL integer
        DEBUG PROTOCOL double
        DEBUG PROTOCOL bignum
        DEBUG PROTOCOL null
        DEBUG PROTOCOL array
        DEBUG PROTOCOL set
        DEBUG PROTOCOL map
        DEBUG PROTOCOL attrib
        DEBUG PROTOCOL true
        DEBUG PROTOCOL false
        DEBUG PROTOCOL verbatim
        DEBUG PROTOCOL nope
        "#,
    );
}

/// DEBUG REPLYBUFFER (the replybufsize unit sets it): its replies and
/// refusals, then the defaults back.
#[test]
fn debug_replybuffer_replies_like_redis() {
    check_script(
        r#"
        DEBUG REPLYBUFFER PEAK-RESET-TIME 100
        DEBUG REPLYBUFFER PEAK-RESET-TIME never
        DEBUG REPLYBUFFER PEAK-RESET-TIME abc
        DEBUG REPLYBUFFER PEAK-RESET-TIME
        DEBUG REPLYBUFFER SIZE 1
        DEBUG REPLYBUFFER RESIZING 0
        DEBUG REPLYBUFFER RESIZING x
        DEBUG REPLYBUFFER RESIZING 1
        DEBUG REPLYBUFFER PEAK-RESET-TIME reset
        "#,
    );
}

#[test]
fn hyperloglog_debugging_matches_redis() {
    check_script(
        r#"
        PFADD h a b c foo bar
        PFDEBUG ENCODING h
        PFDEBUG DECODE h
        PFDEBUG GETREG h
        PFDEBUG ENCODING h
        PFDEBUG DECODE h
        PFDEBUG TODENSE h
        PFDEBUG ENCODING missing
        SET str notahll
        PFDEBUG ENCODING str
        PFDEBUG NOPE h
        PFSELFTEST
        CONFIG SET hll-sparse-max-bytes 30
        PFADD small a b c d e f g h i j k l m n o p
        PFDEBUG ENCODING small
        CONFIG SET hll-sparse-max-bytes 3000
        "#,
    );
}

#[test]
fn edge_cases_the_suite_found() {
    check_script(
        r#"
        HSET h a 1
        HRANDFIELD h -9223372036854770000 WITHVALUES
        HRANDFIELD h -9223372036854775808 WITHVALUES
        HRANDFIELD h -9223372036854775808
        ZADD z 1 a
        ZRANDMEMBER z -9223372036854770000 WITHSCORES
        HINCRBYFLOAT h a inf
        HINCRBYFLOAT h a nan
        RPUSH l a b c
        LPOP l 1 1
        RPOP l 1 1
        SET str xxxx
        BITCOUNT str -6 -7
        BITCOUNT str -6 -15 BIT
        BITCOUNT str -1 -2
        XADD x 1-0 f v
        XADD x 18446744073709551615-18446744073709551615 f v
        XRANGE x (- +
        XRANGE x - (+
        XRANGE x (18446744073709551615-18446744073709551615 +
        XRANGE x - (0-0
        XREVRANGE x (0-0 -
        XGROUP CREATE x g $
        XGROUP SETID x g -
        XINFO GROUPS x
        XGROUP SETID x g +
        COMMAND GETKEYS SORT abc STORE invalid STORE stillbad STORE def
        FUNCTION RESTORE a b c
        CLIENT REPLY BOGUS
        CLIENT UNBLOCK 999999
        CLIENT UNBLOCK 999999 ERROR
        CLIENT UNBLOCK 999999 BOGUS
        "#,
    );
}

#[test]
fn xautoclaim_count_covers_deleted_entries() {
    check_script(
        r#"
        XADD x 1-0 f v
        XADD x 2-0 f v
        XADD x 3-0 f v
        XGROUP CREATE x grp 0
        XREADGROUP GROUP grp Alice STREAMS x >
        XDEL x 1-0
        XDEL x 2-0
        XAUTOCLAIM x grp Bob 0 0-0 COUNT 1
        XAUTOCLAIM x grp Bob 0 0-0 COUNT 1
        XAUTOCLAIM x grp Bob 0 0-0 COUNT 1
        XPENDING x grp
        "#,
    );
}

#[test]
fn script_sandbox_tricks_fail_like_redis() {
    // Library tables and the globals are read-only, compiled chunks do not
    // load, and print does not exist.
    check_script(
        r##"
        EVAL "setmetatable(_G, {})" 0
        EVAL "local g = getmetatable(_G) g.__index = {}" 0
        EVAL "redis.call = function() return 1 end" 0
        EVAL "cjson.encode = function() return 1 end" 0
        EVAL "cmsgpack.pack = function() return 1 end" 0
        EVAL "bit.lshift = function() return 1 end" 0
        EVAL "string.len = function() return 1 end" 0
        EVAL "return loadstring(string.dump(function() return 1 end))()" 0
        EVAL "print('x')" 0
        EVAL "return redis.error_reply('')" 0
        EVAL "return redis.error_reply('My Error')" 0
        EVAL "return redis.error_reply('oops')" 0
        EVAL "return redis.error_reply('-CODE text')" 0
        EVAL "return {err='a\r\nb'}" 0
        EVAL "return {big_number='123\r\n123'}" 0
        "##,
    );
}

#[test]
fn eval_shebang_flags_work_like_redis() {
    check_script(
        r##"
        SET x 123
        EVAL "#!not-lua\nreturn 1" 0
        EVAL "#!lua badger=data\nreturn 1" 0
        EVAL "#!lua flags=allow-oom,what?\nreturn 1" 0
        EVAL "#!lua" 0
        EVAL "#!lua flags=no-writes\nreturn redis.call('set','x',1)" 1 x
        EVAL_RO "#!lua\nreturn 1" 0
        EVAL_RO "#!lua flags=no-writes\nreturn redis.call('get','x')" 1 x
        EVAL "#!lua\nreturn redis.call('get','x')" 1 x
        CONFIG SET maxmemory 1
        EVAL "redis.call('set','x',1) return 1" 1 x
        EVAL "return redis.call('get','x')" 1 x
        EVAL "#!lua flags=\nreturn 1" 0
        EVAL "#!lua flags=allow-oom\nredis.call('set','x',1) return 1" 1 x
        EVAL "#!lua flags=no-writes\nreturn redis.call('get','x')" 0
        CONFIG SET maxmemory 0
        "##,
    );
}

#[test]
fn script_errors_count_once_in_errorstats() {
    // A command's error counts where it happens; the script's reply that
    // passes it on does not count again, one the script makes does.
    check_script(
        r##"
        CONFIG RESETSTAT
        CONFIG SET maxmemory 1
        EVAL "return redis.call('set','x','y')" 1 x
        INFO errorstats
        EVAL "local t = redis.pcall('set','x','y') return 1" 1 x
        INFO errorstats
        EVAL "return redis.pcall('set','x','y')" 1 x
        INFO errorstats
        CONFIG SET maxmemory 0
        EVAL "return redis.call('select', 99)" 0
        EVAL "return redis.error_reply('MY err')" 0
        EVAL "return redis.call('nosuchcommand')" 0
        INFO errorstats
        MULTI
        SET a 1
        LPUSH a x
        INCR a
        EXEC
        INFO errorstats
        "##,
    );
}

#[test]
fn scripts_see_frozen_time_and_noscript_switch() {
    // Time stands still while a script runs; DEBUG SET-DISABLE-DENY-SCRIPTS
    // lets scripts call DEBUG (the suite uses both); DEBUG OBJECT sees a
    // key past its deadline that nothing reclaimed yet.
    check_script(
        r##"
        EVAL "return redis.call('debug','protocol','map')" 0
        DEBUG SET-DISABLE-DENY-SCRIPTS 1
        EVAL "redis.call('SET','key','value','PX','1') redis.call('DEBUG','SLEEP',0.01) return redis.call('EXISTS','key')" 0
        EXISTS key
        EVAL "redis.setresp(3) return redis.call('debug','protocol','map')" 0
        EVAL "redis.setresp(3) return redis.call('debug','protocol','bignum')" 0
        EVAL "redis.setresp(3) return redis.call('debug','protocol','double')" 0
        EVAL "redis.setresp(2) return redis.call('debug','protocol','true')" 0
        DEBUG SET-DISABLE-DENY-SCRIPTS 0
        DEBUG SET-ACTIVE-EXPIRE 0
        SET k v PX 1
        DEBUG SLEEP 0.01
        ?DEBUG OBJECT k
        EXISTS k
        DEBUG OBJECT k
        DEBUG SET-ACTIVE-EXPIRE 1
        CLUSTER INFO
        CLUSTER KEYSLOT x
        CLUSTER NOPE
        EVAL "return redis.call('cluster','reset')" 0
        "##,
    );
}

#[test]
fn min_replicas_to_write_refuses_writes_like_redis() {
    check_script(
        r##"
        SET x v
        CONFIG SET min-replicas-to-write 1
        ~CONFIG GET min-replicas-*
        SET x w
        GET x
        EVAL "return redis.call('get','x')" 1 x
        EVAL "return redis.call('set','x',1)" 1 x
        EVAL "#!lua flags=no-writes\nreturn redis.call('get','x')" 1 x
        EVAL "#!lua\nreturn redis.call('get','x')" 1 x
        MULTI
        SET x 2
        EXEC
        CONFIG SET min-slaves-to-write 0
        SET x w
        "##,
    );
}

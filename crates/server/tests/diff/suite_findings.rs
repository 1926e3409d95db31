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

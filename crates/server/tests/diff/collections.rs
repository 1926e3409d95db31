//! Scripted differential checks for the collection families: every
//! command, its options and its error replies, in both encodings where the
//! encoding changes what a client sees (reply order, OBJECT ENCODING).
//!
//! redis-server 7.0 differs from 7.2 (our target) in two places these
//! scripts avoid: sets have no listpack encoding and lists are always
//! quicklists in 7.0, so OBJECT ENCODING is compared for hashes and sorted
//! sets only.

use crate::check_script;

#[test]
fn hash_commands_match_redis() {
    check_script(
        r#"
        HSET h a 1 b 2 c 3
        HSET h a 10 d 4
        HSET h a
        HMSET h e 5 f 6
        HMSET h e
        HGETALL h
        HKEYS h
        HVALS h
        HLEN h
        HGET h a
        HGET h nope
        HGET nokey a
        HMGET h a nope b
        HMGET nokey a b
        HSETNX h a 99
        HSETNX h z 26
        HEXISTS h z
        HEXISTS h y
        HEXISTS nokey y
        HSTRLEN h a
        HSTRLEN h nope
        HDEL h a nope b
        HDEL h nope
        HDEL nokey a
        HGETALL h
        OBJECT ENCODING h
        HINCRBY h n 5
        HINCRBY h n -15
        HINCRBY h n abc
        HINCRBY h z 1
        HSET h s hello
        HINCRBY h s 1
        HSET h big 9223372036854775807
        HINCRBY h big 1
        HINCRBYFLOAT h f 1.5
        HINCRBYFLOAT h f 0.25
        HINCRBYFLOAT h s 1
        HINCRBYFLOAT h f abc
        HINCRBYFLOAT h nf 10.5e1
        HGETALL h
        HRANDFIELD nokey
        HRANDFIELD nokey 5
        HRANDFIELD h 0
        HRANDFIELD h 100
        HRANDFIELD h 100 WITHVALUES
        HRANDFIELD h 5 withvalues extra
        HRANDFIELD h 5 bogus
        HRANDFIELD h abc
        HRANDFIELD h -9223372036854775808
        %HRANDFIELD h 3
        %HRANDFIELD h -20
        %HRANDFIELD h -20 WITHVALUES
        %HRANDFIELD h 2 WITHVALUES
        ?HRANDFIELD h
        HSCAN h 0
        HSCAN h 0 MATCH a*
        HSCAN h 0 COUNT 0
        HSCAN h abc
        HSCAN h 0 BOGUS 1
        HSCAN nokey 0
        SET str v
        HSET str a 1
        HGET str a
        HGETALL str
        HLEN str
        HDEL str a
        HRANDFIELD str
        HSCAN str 0
        DEL h
        HSET long f aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        OBJECT ENCODING long
        HSET h2 a 1
        CONFIG SET hash-max-listpack-entries 2
        HSET h2 b 2
        OBJECT ENCODING h2
        HSET h2 c 3
        OBJECT ENCODING h2
        ~HGETALL h2
        ~HKEYS h2
        ~HVALS h2
        CONFIG SET hash-max-listpack-entries 512
        HDEL h2 a b c
        EXISTS h2
        TYPE long
        "#,
    );
}

//! Differential tests: the same commands go to Larder and to a real
//! redis-server, under RESP2 and RESP3, and the replies are compared frame
//! by frame. Without redis-server installed these tests say so and pass,
//! unless LARDER_REQUIRE_REDIS=1 (CI sets it), where that is a failure.

mod acl;
mod collections;
mod events;
mod memory;
mod random;
mod scripting;
mod suite_findings;
mod tls;
mod tracking;
#[cfg(unix)]
mod unixsocket;

use larder_protocol::Frame;
use larder_testkit::diff::{compare, Compare};
use larder_testkit::{spawn_server, RawConn, RedisServer, TestServer};

pub struct Pair {
    pub larder: TestServer,
    pub redis: RedisServer,
    pub ours: RawConn,
    pub theirs: RawConn,
}

/// Both servers, with one connection each, speaking RESP3 if asked.
pub fn pair(resp3: bool) -> Option<Pair> {
    let redis = RedisServer::start()?;
    let larder = spawn_server();
    let mut ours = larder.raw();
    let mut theirs = redis.raw();
    if resp3 {
        // HELLO's reply names the server and version, so it is not compared.
        assert!(matches!(ours.call(&["HELLO", "3"]).unwrap(), Frame::Map(_)));
        assert!(matches!(theirs.call(&["HELLO", "3"]).unwrap(), Frame::Map(_)));
    }
    Some(Pair { larder, redis, ours, theirs })
}

/// Runs `script` (one command per line, split like redis-cli) under both
/// protocols. A line starting with `~` compares unordered, `?` shape only,
/// `%` shape and length (random picks), `!` that both fail with the same
/// error code.
pub fn check_script(script: &str) {
    for resp3 in [false, true] {
        let Some(mut p) = pair(resp3) else { return };
        let mut failures = Vec::new();
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (how, line) = match line.as_bytes()[0] {
                b'~' => (Compare::Unordered, &line[1..]),
                b'?' => (Compare::Shape, &line[1..]),
                b'%' => (Compare::Len, &line[1..]),
                b'!' => (Compare::ErrorCode, &line[1..]),
                _ => (Compare::Exact, line),
            };
            let args = larder_protocol::split_args(line.as_bytes()).expect("script line");
            if let Some(d) = compare(&mut p.ours, &mut p.theirs, &args, how) {
                failures.push(d);
            }
        }
        assert!(
            failures.is_empty(),
            "RESP{}: {} differences:\n{}",
            if resp3 { 3 } else { 2 },
            failures.len(),
            failures.join("\n")
        );
    }
}

#[test]
fn string_commands_match_redis() {
    check_script(
        r#"
        SET k v
        GET k
        SET k v2 XX GET
        SET k v3 NX
        SET k v4 NX GET
        SET n 10 EX 1000
        TTL n
        SET n 11 KEEPTTL
        TTL n
        SET n 12
        TTL n
        SET k v EX 0
        SET k v PX -5
        SET k v EX abc
        SET k v EX 10 PX 10
        SET k v KEEPTTL EX 10
        SET k v NX XX
        SET k v GET GET
        SET k v BOGUS
        SET k v EXAT 99999999999
        SET k v EX 9223372036854775807
        SETNX k other
        SETNX fresh value
        SETEX se 100 v
        SETEX se 0 v
        SETEX se -10 v
        PSETEX pse 100000 v
        PSETEX pse 0 v
        GETSET k newer
        GETSET nothere v
        GETDEL k
        GETDEL k
        GETEX se
        GETEX se PERSIST
        TTL se
        GETEX se EX 100 PERSIST
        GETEX se EX -1
        GETEX se FOO
        GETEX missing EX 10
        MSET a 1 b 2 c 3
        MGET a b c missing
        MSET a 1 b
        MSETNX a 1 z 2
        MSETNX y 1 z 2
        MGET y z
        INCR counter
        INCRBY counter 41
        DECR counter
        DECRBY counter 10
        INCRBY counter abc
        INCRBY counter 9223372036854775807
        DECRBY counter -9223372036854775808
        SET big 9223372036854775807
        INCR big
        SET notnum hello
        INCR notnum
        SET spaced " 1"
        INCR spaced
        SET lead 01
        INCR lead
        INCRBYFLOAT f 10.5
        INCRBYFLOAT f 0.1
        INCRBYFLOAT f -10.6
        INCRBYFLOAT f 5.0e3
        INCRBYFLOAT f abc
        INCRBYFLOAT f nan
        INCRBYFLOAT f inf
        INCRBYFLOAT notnum 1
        OBJECT ENCODING f
        SET h 10.1
        INCRBYFLOAT h 0.2
        APPEND ap Hello
        APPEND ap " World"
        STRLEN ap
        STRLEN missing
        OBJECT ENCODING ap
        APPEND num 123
        OBJECT ENCODING num
        GETRANGE ap 0 4
        GETRANGE ap -5 -1
        GETRANGE ap 5 1
        GETRANGE ap -1 -5
        GETRANGE ap 0 -100
        GETRANGE ap -100 100
        GETRANGE missing 0 -1
        GETRANGE ap x 1
        SUBSTR ap 0 2
        SETRANGE ap 6 Redis
        GET ap
        SETRANGE pad 3 x
        GET pad
        SETRANGE pad -1 x
        SETRANGE empty 5 ""
        EXISTS empty
        SETRANGE ap 0 ""
        OBJECT ENCODING pad
        SET i 12345
        GETRANGE i 1 2
        APPEND i 6
        GET i
        OBJECT ENCODING i
        MSET l1 ohmytext l2 mynewtext
        LCS l1 l2
        LCS l1 l2 LEN
        LCS l1 l2 IDX
        LCS l1 l2 IDX MINMATCHLEN 4 WITHMATCHLEN
        LCS l1 l2 IDX WITHMATCHLEN
        LCS l1 l2 LEN IDX
        LCS l1 missing
        LCS l1 l2 BOGUS
        SET e1 ""
        GET e1
        STRLEN e1
        "#,
    );
}

/// Strings of 23 to 512 bytes are split, packed and may lend bytes to a
/// short key's unused ones (crates/store/src/entry.rs). Every way a
/// string is read, changed, moved or copied must see the same bytes as
/// redis-server does: printable text (20-bit triples), other ASCII (seven
/// bits), binary; under keys long and short enough to take lent bytes or
/// not, and keys that change length on RENAME.
#[test]
fn strings_that_lend_bytes_to_their_keys_match_redis() {
    // Printable, spaces and punctuation too (no quote or backslash, which
    // the script would need escaped).
    let chars = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 {}:,.-_~!@#$%^&*()[]<>+=|/?";
    let printable: String = (0..100).map(|i| chars[i * 7 % chars.len()] as char).collect();
    let tabbed = format!("{}\t{}", &printable[..40], &printable[..55]);
    let binary = (0..100).map(|i| format!("\\x{:02x}", (i * 37 + 128) % 256)).collect::<String>();
    let mut script = String::new();
    for (n, v) in
        [printable.clone(), printable[..90].to_string(), printable[..30].to_string(), tabbed, binary].iter().enumerate()
    {
        let v = format!("\"{v}\"");
        for key in ["k", "key:0000000001", "key:000000000000001", "key:00000000000000001", "key:0000000000000000001"] {
            let key = format!("{key}{n}");
            script += &format!(
                "SET {key} {v}\nGET {key}\nSTRLEN {key}\nGETRANGE {key} 5 40\nGETRANGE {key} -20 -1\nOBJECT ENCODING {key}\n\
                 MGET {key} nothere {key}\nSUBSTR {key} 0 13\nBITCOUNT {key}\nGETBIT {key} 100\nLCS {key} {key}\n\
                 COPY {key} {key}c\nGET {key}c\nRENAME {key}c x{n}\nGET x{n}\nRENAME x{n} {key}longer_than_twenty_two\n\
                 GET {key}longer_than_twenty_two\nMOVE {key}longer_than_twenty_two 1\nSELECT 1\n\
                 GET {key}longer_than_twenty_two\nSELECT 0\nGETEX {key} PX 100000\nGET {key}\nSET {key} {v} GET\n\
                 GETSET {key} {v}\nSETNX {key} x\nGET {key}\nAPPEND {key} tail\nGET {key}\nSET {key} {v}\n\
                 SETRANGE {key} 3 XYZ\nGET {key}\nSET {key} {v}\nSETBIT {key} 7 1\nGET {key}\nSET {key} {v}\n\
                 MSET {key} {v} {key}m {v}\nGET {key}m\nGETDEL {key}\nGET {key}\nEXISTS {key}\n"
            );
        }
    }
    check_script(&script);
}

#[test]
fn keyspace_commands_match_redis() {
    check_script(
        r#"
        MSET a 1 b 2 c 3
        EXISTS a a b missing
        DEL a missing
        UNLINK b
        TOUCH c missing
        TYPE c
        TYPE missing
        RENAME c d
        RENAME missing x
        RENAME d d
        SET e 5
        RENAMENX d e
        RENAMENX d f
        RENAMENX f f
        COPY f g
        COPY f g
        COPY f g REPLACE
        COPY f f
        COPY f g DB 99
        COPY f g DB x
        COPY f g BOGUS
        COPY missing g
        COPY f h DB 1
        MOVE f 1
        MOVE e 1
        MOVE e 0
        MOVE e 99
        MOVE missing 1
        SELECT 1
        MGET f h e
        SELECT 0
        SELECT 99
        SELECT -1
        SELECT x
        SWAPDB 0 1
        ~KEYS *
        SWAPDB 0 x
        SWAPDB x 0
        SWAPDB 0 99
        DBSIZE
        SET t v
        EXPIRE t 1000
        TTL t
        EXPIRE t 500 NX
        EXPIRE t 500 XX
        EXPIRE t 2000 GT
        EXPIRE t 100 GT
        EXPIRE t 3000 LT
        EXPIRE t 50 LT
        TTL t
        EXPIRE t 10 NX XX
        EXPIRE t 10 GT LT
        EXPIRE t 10 BOGUS
        EXPIRE t abc
        EXPIRE t 9223372036854775807
        PEXPIRE t 9223372036854775807
        EXPIRE missing 10
        SET nottl v
        EXPIRE nottl 10 XX
        EXPIRE nottl 10 GT
        EXPIRE nottl 10 LT
        TTL nottl
        PERSIST nottl
        PERSIST t
        PERSIST t
        TTL t
        PTTL missing
        PTTL nottl
        EXPIRETIME nottl
        PEXPIRETIME missing
        EXPIREAT t 100
        EXISTS t
        PEXPIRE nottl -1
        EXISTS nottl
        OBJECT ENCODING e
        OBJECT ENCODING missing
        OBJECT REFCOUNT e
        OBJECT FREQ e
        OBJECT BOGUS e
        OBJECT
        OBJECT ENCODING
        DUMP missing
        RESTORE r 0 garbage
        RESTORE r -1 garbage
        SET s1 v
        ~KEYS *
        ~KEYS s*
        ~KEYS [st]*
        ~KEYS *1
        SCAN abc
        SCAN 0 COUNT 0
        SCAN 0 BOGUS x
        SCAN 0 MATCH
        FLUSHDB BOGUS
        FLUSHDB SYNC
        DBSIZE
        RANDOMKEY
        FLUSHALL ASYNC
        "#,
    );
}

#[test]
fn connection_and_server_commands_match_redis() {
    check_script(
        r#"
        PING
        PING hello
        PING a b
        ECHO hi
        ECHO
        CLIENT GETNAME
        CLIENT SETNAME myname
        CLIENT GETNAME
        CLIENT SETNAME "bad name"
        CLIENT SETNAME ""
        CLIENT GETNAME
        CLIENT NO-EVICT maybe
        CLIENT NO-EVICT on
        CLIENT KILL 1.2.3.4:5
        CLIENT KILL ID abc
        CLIENT KILL ID 999999
        CLIENT KILL BOGUS x
        CLIENT BOGUS
        CLIENT
        AUTH x
        AUTH a b c
        HELLO 4
        HELLO abc
        HELLO 3 BOGUS
        ?CLIENT ID
        ?TIME
        CONFIG GET maxmemory
        CONFIG GET maxmemory-policy
        CONFIG SET maxmemory-policy allkeys-lru
        CONFIG GET maxmemory-policy
        CONFIG SET maxmemory-policy bogus
        CONFIG SET nosuch 1
        CONFIG SET maxclients abc
        CONFIG SET timeout
        CONFIG SET protected-mode maybe
        CONFIG GET timeout
        CONFIG BOGUS
        CONFIG RESETSTAT
        CONFIG SET slowlog-log-slower-than -1
        SLOWLOG RESET
        SLOWLOG LEN
        SLOWLOG GET
        SLOWLOG GET 0
        SLOWLOG GET -1
        SLOWLOG GET -2
        SLOWLOG GET abc
        SLOWLOG GET 1 2
        SLOWLOG
        SLOWLOG BOGUS
        SLOWLOG HELP
        CONFIG SET slowlog-log-slower-than -2
        CONFIG SET slowlog-max-len -1
        CONFIG GET slowlog-max-len
        LATENCY LATEST
        LATENCY HISTORY command
        LATENCY HISTORY
        LATENCY RESET
        LATENCY RESET command nosuch
        LATENCY BOGUS
        LATENCY HISTOGRAM blabla nosuch|sub
        CONFIG SET latency-monitor-threshold -1
        CONFIG GET latency-monitor-threshold
        COMMAND INFO nosuchcommand
        COMMAND GETKEYS MSET a 1 b 2
        COMMAND GETKEYS GET
        COMMAND GETKEYS PING
        COMMAND GETKEYS NOSUCH x
        COMMAND GETKEYS ZUNIONSTORE d 2 a b WEIGHTS 1 2
        COMMAND GETKEYS XREAD COUNT 1 STREAMS s1 s2 0 0
        COMMAND GETKEYS XREADGROUP GROUP g c STREAMS s1 >
        COMMAND GETKEYS SORT k BY w GET x STORE d
        COMMAND GETKEYS GEORADIUS g 1 1 1 km STORE d
        COMMAND GETKEYS BLMPOP 0 2 a b LEFT
        COMMAND GETKEYS SINTERCARD 2 a b LIMIT 1
        COMMAND GETKEYS LMPOP 0 a LEFT
        COMMAND GETKEYS ZDIFF 1 a
        COMMAND GETKEYS ZMPOP 2 a b MIN
        NOSUCH
        NOSUCH a b c
        GET
        GET a b
        "#,
    );
}

/// Keys and their flags, found from the key specs or, where those cannot
/// tell, from the per-command procedures: one line per way a spec or a
/// procedure can go (index, keyword from either end, range with a limit,
/// a count, a count that is not one, an incomplete or unknown spec,
/// variable flags).
#[test]
fn getkeysandflags_matches_redis() {
    check_script(
        r#"
        COMMAND GETKEYSANDFLAGS GET k
        COMMAND GETKEYSANDFLAGS MSET a 1 b 2
        COMMAND GETKEYSANDFLAGS LMOVE src dst LEFT RIGHT
        COMMAND GETKEYSANDFLAGS COPY src dst REPLACE
        COMMAND GETKEYSANDFLAGS RENAME a b
        COMMAND GETKEYSANDFLAGS EXISTS a b c
        COMMAND GETKEYSANDFLAGS DEL a b
        COMMAND GETKEYSANDFLAGS SET k v
        COMMAND GETKEYSANDFLAGS SET k v GET
        COMMAND GETKEYSANDFLAGS SET k v EX 10 get
        COMMAND GETKEYSANDFLAGS BITFIELD k GET u8 0
        COMMAND GETKEYSANDFLAGS BITFIELD k GET u8 0 SET u8 0 1
        COMMAND GETKEYSANDFLAGS BITFIELD k OVERFLOW SAT INCRBY u8 0 1
        COMMAND GETKEYSANDFLAGS BITFIELD k BOGUS
        COMMAND GETKEYSANDFLAGS SORT k
        COMMAND GETKEYSANDFLAGS SORT k BY w LIMIT 0 1 GET x STORE d
        COMMAND GETKEYSANDFLAGS SORT k STORE d1 STORE d2
        COMMAND GETKEYSANDFLAGS SORT k GET store
        COMMAND GETKEYSANDFLAGS SORT_RO k BY w
        COMMAND GETKEYSANDFLAGS MIGRATE h 1 k 0 5
        COMMAND GETKEYSANDFLAGS MIGRATE h 1 "" 0 5 COPY AUTH pw KEYS a b
        COMMAND GETKEYSANDFLAGS MIGRATE h 1 "" 0 5 AUTH2 u pw KEYS a
        COMMAND GETKEYSANDFLAGS MIGRATE h 1 k 0 5 KEYS a b
        COMMAND GETKEYSANDFLAGS GEORADIUS g 1 1 1 km STORE d
        COMMAND GETKEYSANDFLAGS GEORADIUS g 1 1 1 km STORE d STOREDIST e
        COMMAND GETKEYSANDFLAGS GEORADIUSBYMEMBER g m 1 km STOREDIST d
        COMMAND GETKEYSANDFLAGS XREAD COUNT 1 STREAMS s1 s2 0 0
        COMMAND GETKEYSANDFLAGS XREAD STREAMS s1 s2 0
        COMMAND GETKEYSANDFLAGS XREADGROUP GROUP g c STREAMS s1 >
        COMMAND GETKEYSANDFLAGS ZUNIONSTORE d 2 a b WEIGHTS 1 2
        COMMAND GETKEYSANDFLAGS ZUNIONSTORE d 0 a
        COMMAND GETKEYSANDFLAGS ZUNIONSTORE d x a
        COMMAND GETKEYSANDFLAGS ZUNIONSTORE d 5 a
        COMMAND GETKEYSANDFLAGS ZINTER 2 a b
        COMMAND GETKEYSANDFLAGS SINTERCARD 2 a b LIMIT 1
        COMMAND GETKEYSANDFLAGS LMPOP 2 a b LEFT
        COMMAND GETKEYSANDFLAGS BLMPOP 0 2 a b LEFT
        COMMAND GETKEYSANDFLAGS BZMPOP 0 1 a MIN
        COMMAND GETKEYSANDFLAGS EVAL "return 1" 2 a b x
        COMMAND GETKEYSANDFLAGS EVAL "return 1" 0
        COMMAND GETKEYSANDFLAGS EVAL "return 1" 9223372036854775807 a
        COMMAND GETKEYSANDFLAGS EVAL "return 1" -1 a
        COMMAND GETKEYSANDFLAGS EVAL_RO "return 1" 1 a
        COMMAND GETKEYSANDFLAGS FCALL f 1 a x
        COMMAND GETKEYSANDFLAGS OBJECT ENCODING k
        COMMAND GETKEYSANDFLAGS MEMORY USAGE k
        COMMAND GETKEYSANDFLAGS XINFO STREAM s FULL
        COMMAND GETKEYSANDFLAGS XGROUP CREATE s g $
        COMMAND GETKEYSANDFLAGS PFMERGE d a b
        COMMAND GETKEYSANDFLAGS BITOP AND d a b
        COMMAND GETKEYSANDFLAGS SMOVE a b m
        COMMAND GETKEYSANDFLAGS RPOPLPUSH a b
        COMMAND GETKEYSANDFLAGS GETDEL k
        COMMAND GETKEYSANDFLAGS GETEX k PERSIST
        COMMAND GETKEYSANDFLAGS RESTORE k 0 x
        COMMAND GETKEYSANDFLAGS WATCH a b
        COMMAND GETKEYSANDFLAGS HEXISTS h f
        COMMAND GETKEYSANDFLAGS SPUBLISH ch m
        COMMAND GETKEYSANDFLAGS PUBLISH ch m
        COMMAND GETKEYSANDFLAGS PING
        COMMAND GETKEYSANDFLAGS OBJECT HELP
        COMMAND GETKEYSANDFLAGS CLIENT NOSUCH
        COMMAND GETKEYSANDFLAGS NOSUCH x
        COMMAND GETKEYSANDFLAGS GET
        COMMAND GETKEYSANDFLAGS GET a b
        COMMAND GETKEYS LMOVE src dst LEFT RIGHT
        COMMAND GETKEYS SET k v GET
        COMMAND GETKEYS OBJECT ENCODING k
        COMMAND GETKEYS CLIENT NOSUCH
        COMMAND GETKEYS EVAL "return 1" 0
        COMMAND INFO lmove sort set getex flushall client|kill object|freq
        ~COMMAND INFO object config
        "#,
    );
}

/// Our COMMAND INFO rows against Redis's: arity, key positions and flags.
#[test]
fn command_table_matches_redis() {
    let Some(mut p) = pair(false) else { return };
    let Frame::Array(ours) = p.ours.call(&["COMMAND"]).unwrap() else { panic!() };
    let mut failures = Vec::new();
    for entry in ours {
        let Frame::Array(fields) = entry else { panic!() };
        let Frame::Bulk(name) = &fields[0] else { panic!() };
        let name = String::from_utf8_lossy(name).into_owned();
        let reply = p.theirs.call(&["COMMAND", "INFO", &name]).unwrap();
        let Frame::Array(mut theirs) = reply else { panic!() };
        let Frame::Array(theirs) = theirs.remove(0) else {
            // Newer than redis-server 7.0 (CLIENT SETINFO), or ours alone.
            eprintln!("{name}: not in this redis-server");
            continue;
        };
        let mut pairs = vec![(name.clone(), fields.clone(), theirs.clone())];
        // Subcommands (the tenth field), by name.
        if let (Some(Frame::Array(ours)), Some(Frame::Array(redis))) = (fields.get(9), theirs.get(9)) {
            for sub in ours {
                let Frame::Array(sub) = sub else { panic!() };
                let found = redis.iter().find_map(|r| match r {
                    Frame::Array(r) if r[0] == sub[0] => Some(r.clone()),
                    _ => None,
                });
                match found {
                    Some(r) => pairs.push((format!("{:?}", sub[0]), sub.clone(), r)),
                    None => eprintln!("{:?}: not in this redis-server", sub[0]),
                }
            }
        }
        for (name, fields, theirs) in pairs {
            for (i, what) in [(1, "arity"), (3, "first key"), (4, "last key"), (5, "step"), (2, "flags")] {
                // Where Redis 7.2 changed a row, Larder has 7.2's: ZRANK
                // and ZREVRANK took WITHSCORE (arity 3 became -3).
                if i == 1 && ["zrank", "zrevrank"].contains(&name.as_str()) {
                    assert_eq!(fields[i], Frame::Integer(-3), "{name}: Redis 7.2's arity");
                    continue;
                }
                let (a, b) = (larder_testkit::diff::normalize(&fields[i]), larder_testkit::diff::normalize(&theirs[i]));
                if a != b {
                    failures.push(format!("{name} {what}: larder {a:?}, redis {b:?}"));
                }
            }
            // Categories, tips and key specs in order: a spec's place is
            // part of what GETKEYS answers, and the categories decide what
            // ACL rules such as -@dangerous let through.
            for (i, what) in [(6, "acl categories"), (7, "tips"), (8, "key specs")] {
                if fields[i] != theirs[i] {
                    failures.push(format!("{name} {what}: larder {:?}, redis {:?}", fields[i], theirs[i]));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
    // Every command and subcommand redis-server has, Larder has.
    let missing_by_design: [&str; 0] = [];
    let list = |c: &mut larder_testkit::RawConn| -> std::collections::BTreeSet<String> {
        let Frame::Array(names) = c.call(&["COMMAND", "LIST"]).unwrap() else { panic!() };
        names
            .iter()
            .map(|n| match n {
                Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).to_lowercase(),
                other => panic!("a command name: {other:?}"),
            })
            .collect()
    };
    let (ours, theirs) = (list(&mut p.ours), list(&mut p.theirs));
    let missing: Vec<&str> = theirs.difference(&ours).map(String::as_str).collect();
    assert_eq!(missing, missing_by_design, "commands redis-server has and Larder lacks");
}

/// Every parameter redis-server lists for `CONFIG GET *` exists in Larder
/// under the same name, with Redis's default, so any redis.conf starts
/// Larder and tools that read or set the whole list meet no surprise. The
/// only differences are listed here with their reasons; one appearing or
/// going away fails the test. Then CONFIG SET's validation on a sample of
/// each kind, and the values Larder refuses because it cannot honour them.
#[test]
fn config_parameters_match_redis() {
    let Some(redis) = RedisServer::start_with(&["--enable-protected-configs", "yes", "--enable-module-command", "yes"])
    else {
        return;
    };
    let larder = spawn_server();
    let (mut ours, mut theirs) = (larder.raw(), redis.raw());
    let all = |c: &mut RawConn| -> std::collections::BTreeMap<String, String> {
        let Frame::Array(items) = c.call(&["CONFIG", "GET", "*"]).unwrap() else { panic!("CONFIG GET *") };
        let text = |f: &Frame| match f {
            Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("{other:?}"),
        };
        items.chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect()
    };
    let (l, r) = (all(&mut ours), all(&mut theirs));
    let only_redis: Vec<&String> = r.keys().filter(|k| !l.contains_key(*k)).collect();
    assert!(only_redis.is_empty(), "parameters Larder lacks: {only_redis:?}");
    // Redis 7.2's names for the set encodings (7.0 has only the intset one).
    let only_larder: Vec<&String> = l.keys().filter(|k| !r.contains_key(*k)).collect();
    assert_eq!(only_larder, ["set-max-listpack-entries", "set-max-listpack-value"]);
    let differ: Vec<&str> = r.keys().filter(|k| l[*k] != r[*k]).map(String::as_str).collect();
    // Each server's own port and directory; io-threads 0 is Larder's "one
    // per core but one" (README).
    assert_eq!(
        differ,
        ["dir", "io-threads", "port"],
        "{:?}",
        differ.iter().map(|k| (k, &l[*k], &r[*k])).collect::<Vec<_>>()
    );
    check_script(
        r#"
        CONFIG SET replica-priority -1
        CONFIG SET replica-priority 7
        CONFIG GET replica-priority
        CONFIG GET slave-priority
        CONFIG SET slave-priority 100
        CONFIG SET oom-score-adj-values "1 2"
        CONFIG SET oom-score-adj-values "1 2 3000"
        CONFIG SET oom-score-adj-values "-10 20 300"
        CONFIG GET oom-score-adj-values
        CONFIG SET latency-tracking-info-percentiles "50 200"
        CONFIG SET latency-tracking-info-percentiles "a"
        CONFIG SET latency-tracking-info-percentiles "99.99 50"
        CONFIG GET latency-tracking-info-percentiles
        CONFIG SET shutdown-on-sigterm "save now"
        CONFIG GET shutdown-on-sigterm
        CONFIG SET shutdown-on-sigterm bad
        CONFIG SET stream-node-max-bytes 8kb
        CONFIG GET stream-node-max-bytes
        CONFIG SET stream-node-max-bytes 1x
        CONFIG SET acl-pubsub-default allchannels
        CONFIG GET acl-pubsub-default
        CONFIG SET acl-pubsub-default bogus
        CONFIG SET unixsocketperm 700
        CONFIG SET supervised systemd
        CONFIG SET lazyfree-lazy-server-del maybe
        CONFIG SET repl-timeout 0
        CONFIG SET maxmemory-eviction-tenacity 101
        CONFIG SET active-expire-effort 11
        CONFIG SET activedefrag no
        CONFIG SET tls-port 0
        "#,
    );
    // Values Larder cannot honour are refused, not pretended (and a TLS
    // port without a certificate cannot be served).
    for (name, value) in [("activedefrag", "yes"), ("tls-port", "6390"), ("tls-cluster", "yes")] {
        let reply = ours.call(&["CONFIG", "SET", name, value]).unwrap();
        assert!(matches!(&reply, Frame::Error(e) if e.starts_with(b"ERR CONFIG SET failed")), "{name}: {reply:?}");
    }
    assert!(larder_server::Config::default().apply_text("cluster-enabled yes").is_err());
    // (A Unix socket is served: diff/unixsocket.rs.)
    assert!(larder_server::Config::default().apply_text("unixsocket /tmp/x.sock").is_ok());
}

/// Redis 7's protected actions: DEBUG, and CONFIG SET of `dir` and
/// `dbfilename`, are refused unless `enable-debug-command` and
/// `enable-protected-configs` allow them (`yes`, or `local` for a client on
/// this host), with Redis's texts.
#[test]
fn protected_actions_follow_redis() {
    let Some(redis) = RedisServer::start_with(&["--enable-debug-command", "no"]) else { return };
    let mut config = larder_server::Config::default();
    config.apply_text("enable-debug-command no\nenable-protected-configs no\nenable-module-command no").unwrap();
    let larder = larder_testkit::spawn_server_with(config);
    let (mut ours, mut theirs) = (larder.raw(), redis.raw());
    for cmd in [
        &["DEBUG", "DIGEST"][..],
        &["CONFIG", "SET", "dir", "/tmp"],
        &["CONFIG", "SET", "dbfilename", "x.rdb"],
        &["MODULE", "LOAD", "/tmp/x.so"],
        &["MODULE", "UNLOAD", "x"],
    ] {
        let (a, b) = (ours.call(cmd).unwrap(), theirs.call(cmd).unwrap());
        assert!(matches!(&a, Frame::Error(_)), "{cmd:?}: {a:?}");
        assert_eq!(a, b, "{cmd:?}");
    }
    let mut config = larder_server::Config::default();
    config.apply_text("enable-debug-command local\nenable-protected-configs local").unwrap();
    let local = larder_testkit::spawn_server_with(config);
    let mut c = local.raw();
    assert!(matches!(c.call(&["DEBUG", "DIGEST"]).unwrap(), Frame::Simple(_)));
    assert_eq!(
        c.call(&["CONFIG", "GET", "enable-debug-command"]).unwrap(),
        Frame::Array(vec![Frame::bulk("enable-debug-command"), Frame::bulk("local")])
    );
}

/// MODULE: no module is loaded, and loading one fails as Redis's does for
/// a library it cannot load (Larder cannot load Redis modules), allowed
/// by enable-module-command on both sides here.
#[test]
fn module_commands_match_redis() {
    let Some(redis) = RedisServer::start_with(&["--enable-module-command", "yes"]) else { return };
    let larder = spawn_server();
    let (mut ours, mut theirs) = (larder.raw(), redis.raw());
    for line in [
        "MODULE LIST",
        "MODULE HELP",
        "MODULE LOAD /tmp/no-such-module.so",
        "MODULE LOAD /tmp/no-such-module.so a b",
        "MODULE LOADEX /tmp/no-such-module.so CONFIG a b ARGS x",
        "MODULE UNLOAD nosuch",
        "MODULE UNLOAD",
        "MODULE BOGUS",
        "MODULE",
    ] {
        let args = larder_protocol::split_args(line.as_bytes()).unwrap();
        assert_eq!(compare(&mut ours, &mut theirs, &args, Compare::Exact), None, "{line}");
    }
}

/// LOLWUT: the art is random on both sides, so its shape is compared: the
/// lines, the characters (braille or coloured cells) per line, and the
/// caption up to the version; errors exactly.
#[test]
fn lolwut_matches_redis_in_shape() {
    let Some(mut p) = pair(false) else { return };
    let shape = |f: Frame| -> Vec<String> {
        let text = match f {
            Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            Frame::Verbatim { text, .. } => String::from_utf8(text.to_vec()).unwrap(),
            other => return vec![format!("{other:?}")],
        };
        text.split('\n')
            .map(|l| match l.find("Redis ver. ") {
                Some(i) => l[..i].to_string(),
                // Colour codes differ in length: count cells, not bytes.
                None if l.contains('\x1b') => format!("{} cells", l.matches(" \x1b[0m").count()),
                None => format!("{} chars", l.chars().count()),
            })
            .collect()
    };
    for line in [
        "LOLWUT",
        "LOLWUT VERSION 5",
        "LOLWUT VERSION 5 30 4 3",
        "LOLWUT VERSION 5 1 1 1",
        "LOLWUT VERSION 5 2000 500 0",
        "LOLWUT VERSION 6",
        "LOLWUT VERSION 6 12 4",
        "LOLWUT VERSION 4",
        "LOLWUT VERSION 59",
        "LOLWUT VERSION abc",
        "LOLWUT VERSION 5 x",
        "LOLWUT VERSION",
    ] {
        let args = larder_protocol::split_args(line.as_bytes()).unwrap();
        let (a, b) = (p.ours.call(&args).unwrap(), p.theirs.call(&args).unwrap());
        assert_eq!(shape(a), shape(b), "{line}");
    }
}

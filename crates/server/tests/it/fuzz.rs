//! Random arguments to every command in the table. Each call must get a
//! reply (any reply, errors included) on a connection that stays open: a
//! handler panic would drop the connection and fail the test.

use larder_protocol::Frame;
use larder_testkit::spawn_server;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const POOL: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "2",
    "10",
    "-100",
    "k",
    "k2",
    "v",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "NX",
    "XX",
    "GT",
    "LT",
    "GET",
    "KEEPTTL",
    "PERSIST",
    "MATCH",
    "COUNT",
    "TYPE",
    "DB",
    "REPLACE",
    "ABSTTL",
    "IDLETIME",
    "FREQ",
    "LEN",
    "IDX",
    "MINMATCHLEN",
    "WITHMATCHLEN",
    "ID",
    "ADDR",
    "SKIPME",
    "MAXAGE",
    "AUTH",
    "SETNAME",
    "default",
    "*",
    "[a-",
    "\\",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e308",
    "-inf",
    "nan",
    "0.5",
    "\r\n",
    "\0",
    "ÿ",
    "string",
    "yes",
    "no",
    "ON",
    "OFF",
    "LIB-NAME",
    "FILTERBY",
    "PATTERN",
    "ACLCAT",
];

/// Commands whose purpose is to stall or end the connection or server.
/// Blocking commands (BLPOP…) are skipped too, by their flag: a random
/// timeout of 0 would wait forever; tests/it/blocking.rs covers them.
/// The subscribe family answers with one frame per channel, which this
/// one-reply-per-call loop cannot follow; tests/it/pubsub.rs covers them.
const SKIP: &[&str] = &[
    "shutdown",
    "debug",
    "quit",
    "client|kill",
    "hello",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    // These end replies on purpose: SYNC/PSYNC make the connection a
    // replica, REPLCONF ACK is never answered, CLIENT REPLY OFF silences.
    "sync",
    "psync",
    "replconf",
    "client|reply",
    // MONITOR interleaves its lines with the replies; WAIT for a replica
    // that does not exist, with no timeout, waits forever (it is not
    // flagged blocking, in Redis either). tests/it cover both.
    "monitor",
    "wait",
    // Connects out: a random host name is a DNS lookup, a random timeout
    // a wait of that long. tests/it/keyspace.rs covers it.
    "migrate",
    // A fixed 10-million-element self test: slow, and takes no arguments.
    "pfselftest",
];

fn is_blocking(raw: &mut larder_testkit::RawConn, name: &str) -> bool {
    let Ok(Frame::Array(info)) = raw.call(&["COMMAND", "INFO", name]) else { return false };
    let Some(Frame::Array(fields)) = info.first() else { return false };
    matches!(fields.get(2), Some(Frame::Array(flags)) if flags.contains(&Frame::simple("blocking")))
}

#[test]
fn random_arguments_never_break_a_connection() {
    let s = spawn_server();
    let mut raw = s.raw();
    let Frame::Array(names) = raw.call(&["COMMAND", "LIST"]).unwrap() else { panic!() };
    let mut rng = StdRng::seed_from_u64(42);
    let mut calls = 0;
    let mut history = Vec::new();
    for name in names {
        let Frame::Bulk(name) = name else { panic!() };
        let name = String::from_utf8_lossy(&name).into_owned();
        if SKIP.contains(&name.as_str()) || is_blocking(&mut raw, &name) {
            continue;
        }
        let words: Vec<&str> = name.split('|').collect();
        for _ in 0..150 {
            let mut args: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            for _ in 0..rng.random_range(0..7) {
                args.push(POOL[rng.random_range(0..POOL.len())].as_bytes().to_vec());
            }
            let shown = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ");
            history.push(shown);
            let reply = raw.call(&args);
            assert!(
                reply.is_ok(),
                "connection lost ({reply:?}); last commands:\n{}",
                history[history.len().saturating_sub(8)..].join("\n")
            );
            calls += 1;
        }
        // Keep state small and the connection in a known place.
        raw.call(&["SELECT", "0"]).unwrap();
    }
    assert!(calls > 5000, "only {calls} calls");
    assert_eq!(raw.call(&["PING"]).unwrap(), Frame::simple("PONG"));
}

//! Random command sequences over a few keys, replayed against both servers
//! with fixed seeds, so any difference reproduces.

use crate::pair;
use larder_testkit::diff::{compare, Compare};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Short keys, whose unused inline bytes a long value borrows, and one of
/// 21 bytes with a single spare byte (crates/store/src/entry.rs).
const KEYS: &[&str] = &["k1", "k2", "k3", "{k}4", "key:00000000000000005"];
/// Short values and integers, and strings long enough to be split and
/// packed: printable (20-bit triples), with a tab (seven bits).
const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-7",
    "42",
    "abc",
    "hello world",
    "3.5",
    "9223372036854775807",
    "007",
    " 1",
    "{\"id\": 12345, \"name\": \"a session\", \"seen\": [1, 2, 3]}",
    "The quick brown fox jumps over the lazy dog; THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG! 0123456789",
    "tab\tseparated\tfields of a row that is long enough to be split and packed seven bits a character",
];
/// Increments for the float key. Redis adds in long double; below 16 in
/// magnitude its 17-decimal output equals the exact decimal sum, which is
/// what Larder prints, so these keep the key small.
const FLOATS: &[&str] = &["0.5", "-0.25", "1.5", "0.1", "-0.2", "-3", "abc", "1e0", "-1.75", "2.5e-1"];
const INTS: &[&str] = &["0", "1", "-1", "5", "-5", "100", "abc", "9223372036854775807", "-9223372036854775808"];
/// Expiry times in seconds: invalid ones and ones no run outlives. A key
/// that expires during a run (1 s or 5 s did, on a slow machine) is gone
/// from DBSIZE at a different moment on each server: both are right, since
/// Redis counts an expired key until its lazy or active expiry takes it.
const TTLS: &[&str] = &["0", "-5", "100", "abc", "9223372036854775807", "-9223372036854775808"];

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

/// One random command and how to compare its replies.
fn random_command(rng: &mut StdRng) -> (Vec<String>, Compare) {
    let k = pick(rng, KEYS).to_string();
    let k2 = pick(rng, KEYS).to_string();
    let v = pick(rng, VALUES).to_string();
    let i = pick(rng, INTS).to_string();
    let ttl = pick(rng, TTLS).to_string();
    let f = pick(rng, FLOATS).to_string();
    let small = rng.random_range(-12i64..12).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let exact = Compare::Exact;
    match rng.random_range(0..34) {
        0 => (s(&["GET", &k]), exact),
        1 => {
            let mut c = s(&["SET", &k, &v]);
            let opts: &[&[&str]] = &[
                &[],
                &["NX"],
                &["XX"],
                &["GET"],
                &["EX", "1000"],
                &["PX", "900000"],
                &["KEEPTTL"],
                &["NX", "GET"],
                &["XX", "EX", "5000"],
                &["EX", &ttl],
            ];
            c.extend(opts[rng.random_range(0..opts.len())].iter().map(|x| x.to_string()));
            (c, exact)
        }
        2 => (s(&["SETNX", &k, &v]), exact),
        3 => (s(&["GETSET", &k, &v]), exact),
        4 => (s(&["GETDEL", &k]), exact),
        5 => (s(&["MGET", &k, &k2, "nokey"]), exact),
        6 => (s(&["MSET", &k, &v, &k2, "x"]), exact),
        7 => (s(&["MSETNX", &k, &v, &k2, "y"]), exact),
        8 => (s(&["INCR", &k]), exact),
        9 => (s(&["DECR", &k]), exact),
        10 => (s(&["INCRBY", &k, &i]), exact),
        11 => (s(&["DECRBY", &k, &i]), exact),
        // Its own key: near 2^63 Redis's long double rounding differs from
        // exact decimal addition (a documented difference), and the other
        // commands would otherwise push this key's value there.
        12 => {
            // Keep |fl| < 16 (see FLOATS) by resetting it now and then.
            if rng.random_bool(0.1) {
                (s(&["SET", "fl", "1.5"]), exact)
            } else {
                (s(&["INCRBYFLOAT", "fl", &f]), exact)
            }
        }
        13 => (s(&["APPEND", &k, &v]), exact),
        14 => (s(&["STRLEN", &k]), exact),
        15 => (s(&["GETRANGE", &k, &small, &rng.random_range(-12i64..12).to_string()]), exact),
        16 => (s(&["SETRANGE", &k, &rng.random_range(0i64..12).to_string(), &v]), exact),
        17 => (s(&["DEL", &k, &k2]), exact),
        18 => (s(&["EXISTS", &k, &k2, &k]), exact),
        19 => (s(&["TYPE", &k]), exact),
        20 => (s(&["RENAME", &k, &k2]), exact),
        21 => (s(&["RENAMENX", &k, &k2]), exact),
        22 => (s(&["COPY", &k, &k2, if rng.random_bool(0.5) { "REPLACE" } else { "DB" }, "2"]), exact),
        23 => {
            let opts = ["", "NX", "XX", "GT", "LT"];
            let mut c = s(&["EXPIRE", &k, &rng.random_range(500i64..5000).to_string()]);
            let o = opts[rng.random_range(0..opts.len())];
            if !o.is_empty() {
                c.push(o.to_string());
            }
            (c, exact)
        }
        24 => (s(&["TTL", &k]), exact),
        25 => (s(&["PERSIST", &k]), exact),
        26 => (s(&["OBJECT", "ENCODING", &k]), exact),
        27 => (s(&["LCS", &k, &k2]), exact),
        28 => (s(&["LCS", &k, &k2, "IDX", "WITHMATCHLEN"]), exact),
        29 => (
            s(&[if rng.random_bool(0.5) { "DBSIZE" } else { "GET" }, "fl"][..if rng.random_bool(0.5) { 1 } else { 2 }]),
            exact,
        ),
        30 => (s(&["KEYS", "k*"]), Compare::Unordered),
        31 => (s(&["GETEX", &k, if rng.random_bool(0.5) { "PERSIST" } else { "EX" }, "700"]), exact),
        32 => (s(&["SETEX", &k, &ttl, &v]), exact),
        _ => (s(&["MOVE", &k, "1"]), exact),
    }
}

/// Replays seeded sequences of 300 commands from `gen` against both
/// servers in each protocol, failing with the last commands on the first
/// difference. 20 seeds by default; LARDER_DIFF_SEEDS=N runs more.
fn run_random(gen: fn(&mut StdRng) -> (Vec<String>, Compare)) {
    let seeds: u64 = std::env::var("LARDER_DIFF_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    for resp3 in [false, true] {
        for seed in 1..=seeds {
            // A reference redis-server that dies mid-sequence (CI saw one
            // close its connection once in many runs, not reproduced
            // since) is no difference of Larder's: the seed runs again on
            // a fresh pair, and fails only if that happens twice.
            for attempt in 1..=2 {
                let Some(mut p) = pair(resp3) else { return };
                let mut rng = StdRng::seed_from_u64(seed);
                let mut history = Vec::new();
                let mut reference_died = false;
                for _ in 0..300 {
                    let (cmd, how) = gen(&mut rng);
                    let args: Vec<Vec<u8>> = cmd.iter().map(|a| a.as_bytes().to_vec()).collect();
                    history.push(cmd.join(" "));
                    if let Some(d) = compare(&mut p.ours, &mut p.theirs, &args, how) {
                        let tail = history.iter().rev().take(15).rev().cloned().collect::<Vec<_>>().join("\n    ");
                        let report =
                            format!("seed {seed} RESP{}: {d}\n  last commands:\n    {tail}", if resp3 { 3 } else { 2 });
                        if attempt == 1 && p.theirs.call(&["PING"]).is_err() {
                            eprintln!("the reference redis-server died; running the seed again: {report}");
                            reference_died = true;
                            break;
                        }
                        panic!("{report}");
                    }
                }
                if !reference_died {
                    break;
                }
            }
        }
    }
}

#[test]
fn random_sequences_match_redis() {
    run_random(random_command);
}

const CKEYS: &[&str] = &["c1", "c2", "c3", "s"];
const MEMBERS: &[&str] = &["a", "b", "c", "1", "2", "10", "-3", "x y", ""];
/// Scores whose binary value is exact, so both servers print them alike.
const SCORES: &[&str] = &["1", "2.5", "-3", "0", "+inf", "-inf", "0.25", "abc", "7"];

/// One random collection command over keys that may hold any type.
fn random_collection_command(rng: &mut StdRng) -> (Vec<String>, Compare) {
    let k = pick(rng, CKEYS).to_string();
    let k2 = pick(rng, CKEYS).to_string();
    let m = pick(rng, MEMBERS).to_string();
    let m2 = pick(rng, MEMBERS).to_string();
    let sc = pick(rng, SCORES).to_string();
    let a = rng.random_range(-4i64..5).to_string();
    let b = rng.random_range(-4i64..5).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (exact, unordered) = (Compare::Exact, Compare::Unordered);
    let side = if rng.random_bool(0.5) { "LEFT" } else { "RIGHT" };
    match rng.random_range(0..46) {
        0 => (s(&["HSET", &k, &m, &m2]), exact),
        1 => (s(&["HGET", &k, &m]), exact),
        2 => (s(&["HDEL", &k, &m, &m2]), exact),
        3 => (s(&["HGETALL", &k]), exact),
        4 => (s(&["HINCRBY", &k, &m, &a]), exact),
        5 => (s(&["HLEN", &k]), exact),
        6 => (s(&["HSETNX", &k, &m, &m2]), exact),
        7 => (s(&["HMGET", &k, &m, &m2]), exact),
        8 => (s(&["SADD", &k, &m, &m2]), exact),
        9 => (s(&["SREM", &k, &m]), exact),
        10 => (s(&["SMEMBERS", &k]), unordered),
        11 => (s(&["SISMEMBER", &k, &m]), exact),
        12 => (s(&["SCARD", &k]), exact),
        13 => (s(&["SINTER", &k, &k2]), unordered),
        14 => (s(&["SUNIONSTORE", &k, &k2, "s"]), exact),
        15 => (s(&["SDIFF", &k, &k2]), unordered),
        16 => (s(&["SMOVE", &k, &k2, &m]), exact),
        17 => (s(&["LPUSH", &k, &m, &m2]), exact),
        18 => (s(&["RPUSH", &k, &m]), exact),
        19 => (s(&["LPOP", &k]), exact),
        20 => (s(&["RPOP", &k, "2"]), exact),
        21 => (s(&["LRANGE", &k, &a, &b]), exact),
        22 => (s(&["LINDEX", &k, &a]), exact),
        23 => (s(&["LSET", &k, &a, &m]), exact),
        24 => (s(&["LREM", &k, &a, &m]), exact),
        25 => (s(&["LINSERT", &k, if rng.random_bool(0.5) { "BEFORE" } else { "AFTER" }, &m, &m2]), exact),
        26 => (s(&["LTRIM", &k, &a, &b]), exact),
        27 => (s(&["LMOVE", &k, &k2, side, "LEFT"]), exact),
        28 => (s(&["LPOS", &k, &m, "RANK", if a == "0" { "1" } else { &a }, "COUNT", "0"]), exact),
        29 => (s(&["LMPOP", "2", &k, &k2, side, "COUNT", "2"]), exact),
        30 => (s(&["ZADD", &k, &sc, &m]), exact),
        31 => {
            let opts: &[&str] = &["NX", "XX", "GT", "LT", "CH", "INCR"];
            (s(&["ZADD", &k, pick(rng, opts), &sc, &m]), exact)
        }
        32 => (s(&["ZRANGE", &k, &a, &b, "WITHSCORES"]), exact),
        33 => (s(&["ZRANGE", &k, "-inf", "+inf", "BYSCORE", "REV", "LIMIT", "0", &b, "WITHSCORES"]), exact),
        34 => (s(&["ZREM", &k, &m]), exact),
        35 => (s(&["ZINCRBY", &k, &sc, &m]), exact),
        36 => (s(&["ZRANK", &k, &m]), exact),
        37 => (s(&["ZSCORE", &k, &m]), exact),
        38 => (s(&["ZCOUNT", &k, &format!("({sc}"), "+inf"]), exact),
        39 => (s(&["ZPOPMIN", &k, "2"]), exact),
        40 => (s(&["ZUNIONSTORE", &k, "2", &k2, "s", "WEIGHTS", "2", "1"]), exact),
        41 => (s(&["ZINTER", "2", &k, &k2, "WITHSCORES"]), exact),
        42 => (s(&["ZREMRANGEBYRANK", &k, &a, &b]), exact),
        43 => (s(&["TYPE", &k]), exact),
        44 => (s(&["RENAME", &k, &k2]), exact),
        _ => (s(&["DEL", &k]), exact),
    }
}

#[test]
fn random_collection_sequences_match_redis() {
    run_random(random_collection_command);
}

/// Stream commands over a few keys, with explicit IDs (a `*` ID would
/// differ by clock between the servers). IDs grow with the step number so
/// most XADDs succeed; some go backwards on purpose.
fn random_stream_command(rng: &mut StdRng) -> (Vec<String>, Compare) {
    const SKEYS: &[&str] = &["s1", "s2", "c1"];
    let k = pick(rng, SKEYS).to_string();
    let k2 = pick(rng, SKEYS).to_string();
    let ms = rng.random_range(1..40u64);
    let id = format!("{ms}-{}", rng.random_range(0..3u64));
    let id2 = format!("{}-{}", rng.random_range(1..40u64), rng.random_range(0..3u64));
    let n = rng.random_range(0..6u64).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let exact = Compare::Exact;
    match rng.random_range(0..20) {
        0..=4 => (s(&["XADD", &k, &id, "f", &n]), exact),
        5 => (s(&["XADD", &k, "MAXLEN", &n, &id, "f", "v"]), exact),
        6 => (s(&["XADD", &k, &format!("{ms}-*"), "f", "v"]), exact),
        7 => (s(&["XRANGE", &k, "-", "+"]), exact),
        8 => (s(&["XRANGE", &k, &id, "+", "COUNT", &n]), exact),
        9 => (s(&["XREVRANGE", &k, "+", &format!("({id2}"), "COUNT", &n]), exact),
        10 => (s(&["XDEL", &k, &id, &id2]), exact),
        11 => (s(&["XTRIM", &k, "MAXLEN", &n]), exact),
        12 => (s(&["XTRIM", &k, "MINID", &id]), exact),
        13 => (s(&["XLEN", &k]), exact),
        14 => (s(&["XREAD", "COUNT", &n, "STREAMS", &k, &k2, &id, &id2]), exact),
        15 => (s(&["XGROUP", "CREATE", &k, "g", &id2, "MKSTREAM"]), exact),
        16 => (s(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", &k, ">"]), exact),
        17 => (s(&["XACK", &k, "g", &id, &id2]), exact),
        18 => (s(&["XPENDING", &k, "g"]), exact),
        _ => (s(&["XINFO", "GROUPS", &k]), exact),
    }
}

#[test]
fn random_stream_sequences_match_redis() {
    run_random(random_stream_command);
}

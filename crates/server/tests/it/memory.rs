//! maxmemory and eviction.
//!
//! Memory is a process-wide figure, and the in-process servers of this
//! test binary share one process with each other and with the tests. So
//! the tests that need a real limit run the larder-server binary as a
//! process of its own; the in-process ones use `maxmemory 1`, which is
//! exceeded whatever else the process holds.

use crate::{cmd, start_binary};
use larder_protocol::Proto;
use larder_testkit::spawn_server;
use redis::Connection;

fn info_field(con: &mut Connection, section: &str, field: &str) -> u64 {
    let info: String = cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
        .trim()
        .parse()
        .unwrap()
}

fn connect(port: u16) -> Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap()
}

/// Writes `n` keys `prefix:i` of `size` bytes, one by one (a pipeline
/// would hide how many went through before an error); returns how many
/// were acknowledged before the first error, and that error.
fn fill(con: &mut Connection, prefix: &str, n: usize, size: usize, ttl: Option<u64>) -> (usize, Option<String>) {
    let value = vec![b'x'; size];
    for i in 0..n {
        let mut c = cmd("SET");
        c.arg(format!("{prefix}:{i}")).arg(&value);
        if let Some(ms) = ttl {
            c.arg("PX").arg(ms);
        }
        if let Err(e) = c.query::<()>(con) {
            return (i, Some(e.to_string()));
        }
    }
    (n, None)
}

/// A separate server process with `policy`, and a limit of `headroom`
/// bytes above what it uses empty.
fn limited_server(policy: &str, headroom: u64) -> (crate::Proc, Connection, u64) {
    let (proc, port, _err) = start_binary(&["--port", "0", "--maxmemory-policy", policy]);
    let mut con = connect(port);
    let base = info_field(&mut con, "memory", "used_memory");
    let limit = base + headroom;
    let _: () = cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut con).unwrap();
    (proc, con, limit)
}

#[test]
fn allkeys_lru_holds_memory_at_the_limit_and_keeps_recent_keys() {
    let (_proc, mut con, limit) = limited_server("allkeys-lru", 8 << 20);
    // 40 MB of 1 KB values into an 8 MB budget.
    let (written, err) = fill(&mut con, "cold", 40_000, 1000, None);
    assert_eq!((written, err), (40_000, None), "allkeys-lru never refuses a write");
    let used = info_field(&mut con, "memory", "used_memory");
    assert!(used <= limit + (1 << 20), "used_memory {used} over maxmemory {limit}");
    // Read together (EXEC is atomic): the cron may be evicting meanwhile.
    let (info, keys): (String, u64) =
        redis::pipe().atomic().cmd("INFO").arg("stats").cmd("DBSIZE").query(&mut con).unwrap();
    let evicted: u64 = info.lines().find_map(|l| l.strip_prefix("evicted_keys:")).unwrap().trim().parse().unwrap();
    assert!(evicted > 20_000 && keys + evicted == 40_000, "evicted {evicted}, left {keys}");
    // The most recently written keys are still there; the first ones went.
    let recent: Vec<Option<Vec<u8>>> =
        (39_900..40_000).fold(&mut cmd("MGET"), |c, i| c.arg(format!("cold:{i}"))).query(&mut con).unwrap();
    assert!(recent.iter().filter(|v| v.is_some()).count() >= 90, "recent keys evicted");
    let first: Vec<Option<Vec<u8>>> =
        (0..100).fold(&mut cmd("MGET"), |c, i| c.arg(format!("cold:{i}"))).query(&mut con).unwrap();
    assert!(first.iter().filter(|v| v.is_some()).count() <= 10, "the oldest keys stayed");
}

/// Writes `n` keys of `size` bytes in pipelines of 1,000 (only where no
/// write may fail).
fn fill_fast(con: &mut Connection, prefix: &str, n: usize, size: usize) {
    let value = vec![b'x'; size];
    for start in (0..n).step_by(1000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 1000).min(n) {
            pipe.cmd("SET").arg(format!("{prefix}:{i}")).arg(&value).ignore();
        }
        let _: () = pipe.query(con).unwrap();
    }
}

/// Polls used_memory for up to two seconds until `ok` holds; returns the
/// last reading.
fn used_settles(con: &mut Connection, ok: impl Fn(u64) -> bool) -> u64 {
    let mut used = 0;
    for _ in 0..40 {
        used = info_field(con, "memory", "used_memory");
        if ok(used) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    used
}

/// Eviction ahead (memory.rs): once writes reach the limit, the idle
/// server evicts down to a 256th under it, so the next burst of writes
/// finds room without evicting. Commands alone would leave memory at the
/// limit (each evicts only until under it). DEBUG PAUSE-CRON stops it,
/// and the first command after the pause wakes it again.
#[test]
fn an_idle_server_evicts_ahead_to_a_little_under_the_limit() {
    let (_proc, mut con, limit) = limited_server("allkeys-lru", 64 << 20);
    let low = limit - limit / 256;
    // Other threads' unpublished changes (4 KB each) and a key or two.
    let slack = 48 << 10;
    fill_fast(&mut con, "a", 100_000, 1000);
    assert!(info_field(&mut con, "stats", "evicted_keys") > 20_000);
    let used = used_settles(&mut con, |u| u <= low + slack);
    assert!(used <= low + slack, "idle at {used}: {} over the low mark {low}", used as i64 - low as i64);
    let ahead = info_field(&mut con, "stats", "evicted_keys_ahead");
    assert!(ahead > 0 && ahead <= info_field(&mut con, "stats", "evicted_keys"), "{ahead} evicted ahead");
    let _: () = cmd("DEBUG").arg("PAUSE-CRON").arg(1).query(&mut con).unwrap();
    fill_fast(&mut con, "b", 10_000, 1000);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let used = info_field(&mut con, "memory", "used_memory");
    assert!(used > limit - (32 << 10), "paused, yet memory went down to {used} of {limit}");
    let _: () = cmd("DEBUG").arg("PAUSE-CRON").arg(0).query(&mut con).unwrap();
    let used = used_settles(&mut con, |u| u <= low + slack);
    assert!(used <= low + slack, "resumed, idle at {used} against the low mark {low}");
    // The cron may still be evicting the last few keys down to the low
    // mark (settling stops within the slack above it); pause it so that
    // none is counted between the reset and the reading. A batch already
    // under way when the pause lands takes microseconds; the sleep lets
    // it finish.
    let _: () = cmd("DEBUG").arg("PAUSE-CRON").arg(1).query(&mut con).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let _: () = cmd("CONFIG").arg("RESETSTAT").query(&mut con).unwrap();
    assert_eq!(info_field(&mut con, "stats", "evicted_keys_ahead"), 0);
}

#[test]
fn allkeys_lfu_keeps_the_frequently_read_keys() {
    let (_proc, mut con, _) = limited_server("allkeys-lfu", 6 << 20);
    fill(&mut con, "hot", 500, 1000, None);
    for _ in 0..30 {
        let _: Vec<Option<Vec<u8>>> =
            (0..500).fold(&mut cmd("MGET"), |c, i| c.arg(format!("hot:{i}"))).query(&mut con).unwrap();
    }
    let freq: i64 = cmd("OBJECT").arg("FREQ").arg("hot:7").query(&mut con).unwrap();
    assert!(freq > 5, "a key read 30 times has a counter above the initial 5: {freq}");
    assert_eq!(fill(&mut con, "cold", 30_000, 1000, None), (30_000, None));
    let hot: Vec<Option<Vec<u8>>> =
        (0..500).fold(&mut cmd("MGET"), |c, i| c.arg(format!("hot:{i}"))).query(&mut con).unwrap();
    let kept = hot.iter().filter(|v| v.is_some()).count();
    assert!(kept >= 450, "only {kept} of 500 hot keys survived 30 MB of one-off writes");
}

/// allkeys-sieve learns to judge newcomers first when the keys its hand
/// evicts are the ones that come back. Here 500 keys are read (and, when
/// missing, set again, as a cache-aside client would) once per round,
/// between which come twice as many one-off writes as the budget holds.
/// A hand alone goes round twice a round, clears the kept keys' bits and
/// takes them: without newcomers about 300 of the 500 were missing in
/// every round. Each one that comes back is a regret of the hand, the
/// share of evictions that judge newcomers first rises, the one-off keys
/// go as they come, and the 500 stay: in eleven runs, none were missing
/// from round 14-22 on (at most 50 from round 18 on). The check is on the
/// last three of 28 rounds.
#[test]
fn allkeys_sieve_learns_to_keep_the_keys_that_come_back() {
    let (_proc, mut con, _) = limited_server("allkeys-sieve", 6 << 20);
    let value = vec![b'x'; 1000];
    let mut one_off = 0;
    let mut misses = Vec::new();
    for _ in 0..28 {
        let got: Vec<Option<Vec<u8>>> =
            (0..500).fold(&mut cmd("MGET"), |c, i| c.arg(format!("kept:{i}"))).query(&mut con).unwrap();
        let missing: Vec<usize> = (0..500).filter(|&i| got[i].is_none()).collect();
        misses.push(missing.len());
        // Set and read in one transaction: an eviction between the two
        // would judge the key before its first read.
        for &i in &missing {
            let k = format!("kept:{i}");
            let _: () = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&k)
                .arg(&value)
                .ignore()
                .cmd("GET")
                .arg(&k)
                .ignore()
                .query(&mut con)
                .unwrap();
        }
        for _ in 0..120 {
            let mut pipe = redis::pipe();
            for _ in 0..100 {
                pipe.cmd("SET").arg(format!("once:{one_off}")).arg(&value).ignore();
                one_off += 1;
            }
            let _: () = pipe.query(&mut con).unwrap();
        }
    }
    assert_eq!(misses[0], 500);
    let last = &misses[misses.len() - 3..];
    assert!(last.iter().all(|&m| m <= 50), "kept keys missing per round: {misses:?}");
}

#[test]
fn volatile_lru_evicts_only_keys_with_a_ttl_then_refuses_writes() {
    let (_proc, mut con, _) = limited_server("volatile-lru", 6 << 20);
    assert_eq!(fill(&mut con, "temp", 3000, 1000, Some(3_600_000)), (3000, None));
    // Persistent writes push the volatile keys out, then hit the OOM error.
    let (written, err) = fill(&mut con, "keep", 20_000, 1000, None);
    let err = err.expect("volatile-lru refuses once no key with a TTL is left");
    assert!(err.contains("OOM") && err.contains("command not allowed when used memory > 'maxmemory'"), "{err}");
    assert!(written > 1000, "wrote {written} before OOM");
    let temp_left =
        (0..3000).filter(|i| cmd("EXISTS").arg(format!("temp:{i}")).query::<i64>(&mut con).unwrap() == 1).count();
    assert_eq!(temp_left, 0, "every volatile key went before the OOM");
    let keys: u64 = cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys as usize, written, "no persistent key was evicted");
    // Reads and deletes still work; after a DEL, writes fit again.
    let _: Option<Vec<u8>> = cmd("GET").arg("keep:1").query(&mut con).unwrap();
    let gone: i64 = (0..2000).fold(&mut cmd("DEL"), |c, i| c.arg(format!("keep:{i}"))).query(&mut con).unwrap();
    assert_eq!(gone, 2000);
    let _: () = cmd("SET").arg("after").arg("fits").query(&mut con).unwrap();
}

#[test]
fn an_eviction_reaches_keyspace_events_and_client_tracking() {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let server = spawn_server();
        let mut con = server.conn(proto);
        let _: () = cmd("SET").arg("victim").arg("v").query(&mut con).unwrap();
        let _: () = cmd("CONFIG").arg("SET").arg("notify-keyspace-events").arg("Ee").query(&mut con).unwrap();
        // A RESP2 subscriber for the event; a RESP3 reader tracking the key.
        let mut sub = server.raw();
        sub.call(&["SUBSCRIBE", "__keyevent@0__:evicted"]).unwrap();
        let mut reader = server.raw();
        reader.call(&["HELLO", "3"]).unwrap();
        reader.call(&["CLIENT", "TRACKING", "on"]).unwrap();
        reader.call(&["GET", "victim"]).unwrap();
        let _: () = cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-random").query(&mut con).unwrap();
        let _: () = cmd("CONFIG").arg("SET").arg("maxmemory").arg(1).query(&mut con).unwrap();
        // Always over one byte: the write evicts everything, then is refused.
        let err = cmd("SET").arg("other").arg("v").query::<()>(&mut con).unwrap_err();
        assert_eq!(err.code(), Some("OOM"), "{err:?}");
        let event = sub.read_frame().unwrap();
        assert!(format!("{event:?}").contains("victim"), "{event:?}");
        let push = reader.read_frame().unwrap();
        assert!(format!("{push:?}").contains("invalidate") && format!("{push:?}").contains("victim"), "{push:?}");
        assert_eq!(info_field(&mut con, "stats", "evicted_keys"), 1);
        let _: () = cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query(&mut con).unwrap();
        let _: () = cmd("SET").arg("other").arg("v").query(&mut con).unwrap();
    }
}

#[test]
fn memory_usage_counts_the_value_and_samples_collections() {
    crate::each_proto(|_, con, _| {
        let _: () = cmd("SET").arg("big").arg(vec![b'x'; 1000]).query(con).unwrap();
        let big: i64 = cmd("MEMORY").arg("USAGE").arg("big").query(con).unwrap();
        assert!((1000..1300).contains(&big), "a 1000-byte value: {big}");
        let _: () = cmd("SET").arg("small").arg("x").query(con).unwrap();
        let small: i64 = cmd("MEMORY").arg("USAGE").arg("small").query(con).unwrap();
        assert!(small < 200 && small > 0, "{small}");
        // Five small fields first, then large ones: the default sample of
        // five sees only the small ones; SAMPLES 0 counts them all.
        let _: () = cmd("HSET").arg("h").arg(&["a", "1", "b", "2", "c", "3", "d", "4", "e", "5"]).query(con).unwrap();
        for i in 0..50 {
            let _: () = cmd("HSET").arg("h").arg(format!("f{i}")).arg(vec![b'y'; 500]).query(con).unwrap();
        }
        let sampled: i64 = cmd("MEMORY").arg("USAGE").arg("h").query(con).unwrap();
        let full: i64 = cmd("MEMORY").arg("USAGE").arg("h").arg("SAMPLES").arg(0).query(con).unwrap();
        assert!(full > 25_000 && sampled < full / 4, "sampled {sampled}, full {full}");
        // A list's elements sit in packed nodes whose sizes are known, so
        // it is counted whole either way, as Redis samples nodes, not
        // elements.
        for _ in 0..50 {
            let _: () = cmd("RPUSH").arg("l").arg(vec![b'y'; 500]).query(con).unwrap();
        }
        let list: i64 = cmd("MEMORY").arg("USAGE").arg("l").query(con).unwrap();
        assert!((25_000..40_000).contains(&list), "a list of 25,000 bytes: {list}");
        let none: Option<i64> = cmd("MEMORY").arg("USAGE").arg("nosuch").query(con).unwrap();
        assert_eq!(none, None);
    });
}

#[test]
fn info_memory_splits_startup_overhead_and_dataset() {
    let (_proc, port, _err) = start_binary(&["--port", "0"]);
    let mut con = connect(port);
    let before = info_field(&mut con, "memory", "used_memory_dataset");
    fill(&mut con, "k", 5000, 200, None);
    let info: String = cmd("INFO").arg("memory").query(&mut con).unwrap();
    let field = |name: &str| -> u64 {
        info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap().trim().parse().unwrap()
    };
    let (used, startup, overhead, dataset) = (
        field("used_memory"),
        field("used_memory_startup"),
        field("used_memory_overhead"),
        field("used_memory_dataset"),
    );
    assert_eq!(overhead + dataset, used);
    assert!(startup > 0 && overhead > startup, "startup {startup}, overhead {overhead}");
    // Text values are stored seven bits a character: 175 bytes each.
    assert!(dataset > before + 5000 * 175, "dataset {before} → {dataset}");
    assert!(info.contains("mem_allocator:jemalloc") && info.contains("maxmemory_policy:noeviction"));
}

/// INFO's eviction-exceeded times, with the same steps against Larder and
/// redis-server: a write refused over the limit starts the clock
/// (`current_eviction_exceeded_time`); the first command once memory is
/// under the limit again stops it, and the spell is in
/// `total_eviction_exceeded_time`; CONFIG RESETSTAT clears both. In
/// Larder removing the limit ends a spell as well.
#[test]
fn time_over_the_memory_limit_is_in_info() {
    let both = crate::Both::start();
    for (who, c) in &mut both.conns() {
        let times = |c: &mut larder_testkit::RawConn| -> (u64, u64) {
            let mut field = |name| crate::info_field(c, "stats", name).parse::<u64>().unwrap();
            (field("current_eviction_exceeded_time"), field("total_eviction_exceeded_time"))
        };
        c.call(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]).unwrap();
        assert_eq!(times(c), (0, 0), "{who}");
        c.call(&["CONFIG", "SET", "maxmemory", "1"]).unwrap();
        let refused = c.call(&["SET", "k", "v"]).unwrap();
        assert!(matches!(&refused, larder_protocol::Frame::Error(e) if e.starts_with(b"OOM")), "{who}: {refused:?}");
        std::thread::sleep(std::time::Duration::from_millis(150));
        let (current, total) = times(c);
        assert!(current >= 140 && total >= current, "{who}: over the limit {current} ms, {total} in all");
        c.call(&["CONFIG", "SET", "maxmemory", "1gb"]).unwrap();
        assert_eq!(c.call(&["SET", "k", "v"]).unwrap(), larder_protocol::Frame::ok(), "{who}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (current, after) = times(c);
        assert!(current == 0 && after >= total && after < total + 1000, "{who}: {current} ms now, {after} in all");
        c.call(&["CONFIG", "RESETSTAT"]).unwrap();
        assert_eq!(times(c), (0, 0), "{who}");
        if *who == "larder" {
            // Removing the limit ends a spell too (Redis's clock runs on).
            c.call(&["CONFIG", "SET", "maxmemory", "1"]).unwrap();
            assert!(matches!(c.call(&["SET", "k", "v"]).unwrap(), larder_protocol::Frame::Error(_)));
            std::thread::sleep(std::time::Duration::from_millis(20));
            c.call(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
            let (current, total) = times(c);
            assert!(current == 0 && total >= 10, "{current} ms now, {total} in all");
        }
    }
}

/// Runs `add(i)` for each of `n` elements, pipelined, and returns per
/// element how much `used_memory` grew by and how much MEMORY USAGE of
/// `key` (SAMPLES 0) says it grew by.
fn grown_per_element(con: &mut Connection, key: &str, n: usize, add: impl Fn(usize) -> redis::Cmd) -> (f64, f64) {
    let usage = |con: &mut Connection| -> u64 {
        let bytes: Option<u64> = cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0).query(con).unwrap();
        bytes.unwrap_or(0)
    };
    let (before, usage_before) = (info_field(con, "memory", "used_memory"), usage(con));
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.add_command(add(i)).ignore();
    }
    let _: () = pipe.query(con).unwrap();
    let grew = info_field(con, "memory", "used_memory") - before;
    let usage_grew = usage(con) - usage_before;
    (grew as f64 / n as f64, usage_grew as f64 / n as f64)
}

/// MEMORY USAGE within 20% of what the allocator holds.
fn assert_usage_near(what: &str, (grew, usage): (f64, f64)) {
    assert!((usage - grew).abs() < grew * 0.2, "{what}: MEMORY USAGE {usage:.1} an element, used_memory {grew:.1}");
}

/// Large sets, sorted sets and hashes of short elements keep each element
/// in its 16-byte handle (table.rs's `Elem`), not in an allocation of its
/// own; MEMORY USAGE counts them so. Measured in a process of its own,
/// where `used_memory` moves only with this test.
#[test]
fn short_elements_of_large_collections_cost_no_allocation() {
    let (_proc, port, _err) = start_binary(&["--port", "0"]);
    let mut con = connect(port);
    const N: usize = 20_000;
    // Members of 14 bytes: in the handle (a box of them took 16 more).
    let set = grown_per_element(&mut con, "s", N, |i| {
        let mut c = cmd("SADD");
        c.arg("s").arg(format!("member:{i:07}"));
        c
    });
    let zset = grown_per_element(&mut con, "z", N, |i| {
        let mut c = cmd("ZADD");
        c.arg("z").arg(i).arg(format!("member:{i:07}"));
        c
    });
    // A length byte, a 7-byte field and a value of up to 5 digits: in the
    // handle too (a box of them took 16 more).
    let hash = grown_per_element(&mut con, "h", N, |i| {
        let mut c = cmd("HSET");
        c.arg("h").arg(format!("f{i:06}")).arg(i);
        c
    });
    eprintln!("bytes per element (used_memory, MEMORY USAGE): set {set:?}, zset {zset:?}, hash {hash:?}");
    assert!(set.0 < 30.0, "set: {set:?}");
    assert!(zset.0 < 72.0, "sorted set: {zset:?}");
    assert!(hash.0 < 28.0, "hash: {hash:?}");
    for (what, measured) in [("set", set), ("zset", zset), ("hash", hash)] {
        assert_usage_near(what, measured);
    }
}

/// Stream entries sit packed in nodes of a hundred, each storing its ID as
/// a distance from the node's first, its values alone when its field names
/// are the first's, and integers as integers, as Redis's listpack nodes do
/// (31 bytes an entry of three short pairs there; 355 when each entry was
/// a vector of `Bytes`, 116 when each had a B-tree slot and a buffer of
/// its own, 32 with the timestamp kept as text); entries pending in a
/// consumer group cost about Redis's; MEMORY USAGE counts both so.
#[test]
fn stream_entries_are_packed() {
    let (_proc, port, _err) = start_binary(&["--port", "0"]);
    let mut con = connect(port);
    let entry = grown_per_element(&mut con, "st", 20_000, |i| {
        let mut c = cmd("XADD");
        c.arg("st").arg("*").arg("user").arg(format!("u{}", i % 1000));
        c.arg("event").arg("click").arg("ts").arg(1_700_000_000 + i);
        c
    });
    eprintln!("bytes per stream entry (used_memory, MEMORY USAGE): {entry:?}");
    assert!(entry.0 < 30.0, "{entry:?}");
    assert_usage_near("stream", entry);
    // Each entry delivered to a consumer and not acknowledged: MEMORY
    // USAGE counts the group's and the consumer's bookkeeping.
    let _: () = cmd("XGROUP").arg("CREATE").arg("st").arg("g").arg("0").query(&mut con).unwrap();
    let pending = grown_per_element(&mut con, "st", 20_000, |_| {
        let mut c = cmd("XREADGROUP");
        c.arg("GROUP").arg("g").arg("alice").arg("COUNT").arg(1).arg("STREAMS").arg("st").arg(">");
        c
    });
    eprintln!("bytes per pending entry (used_memory, MEMORY USAGE): {pending:?}");
    // Redis's take 84; in B-trees, which deliveries in ID order leave half
    // full, 168.
    assert!(pending.0 < 100.0, "{pending:?}");
    assert_usage_near("pending entries", pending);
    // What went in comes out.
    let last: Vec<(String, Vec<(String, String)>)> =
        cmd("XREVRANGE").arg("st").arg("+").arg("-").arg("COUNT").arg(1).query(&mut con).unwrap();
    let fields: Vec<(String, String)> = [("user", "u999"), ("event", "click"), ("ts", "1700019999")]
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .into();
    assert_eq!(last[0].1, fields);
}

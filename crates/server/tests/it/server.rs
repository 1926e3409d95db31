//! Server commands: INFO sections, CONFIG GET/SET/RESETSTAT, COMMAND
//! introspection generated from the table, TIME, DEBUG and SHUTDOWN.

use crate::cmd;
use larder_protocol::{Frame, Proto};
use larder_testkit::spawn_server;
use redis::{RedisResult, Value};

#[test]
fn info_sections_and_keyspace() {
    crate::each_proto(|_, con, _| {
        let _: () = cmd("SET").arg("a").arg(1).arg("EX").arg(100).query(con).unwrap();
        let _: () = cmd("SET").arg("b").arg(1).query(con).unwrap();
        let info: String = cmd("INFO").query(con).unwrap();
        for section in ["# Server", "# Clients", "# Memory", "# Stats", "# Replication", "# Keyspace"] {
            assert!(info.contains(section), "{section} missing");
        }
        assert!(info.contains("db0:keys=2,expires=1,avg_ttl=0"), "{info}");
        assert!(!info.contains("# Commandstats"), "not in default");
        let only: String = cmd("INFO").arg("server").arg("clients").query(con).unwrap();
        assert!(only.contains("# Server") && only.contains("# Clients") && !only.contains("# Memory"));
        let stats: String = cmd("INFO").arg("commandstats").query(con).unwrap();
        assert!(stats.contains("cmdstat_set:calls=2,"), "{stats}");
        let mem: String = cmd("INFO").arg("memory").query(con).unwrap();
        let used: u64 = mem.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap();
        assert!(used > 0, "jemalloc reports allocated bytes");
    });
}

#[test]
fn config_get_set_resetstat() {
    crate::each_proto(|_, con, proto| {
        let v: Value = cmd("CONFIG").arg("GET").arg("maxmemory*").query(con).unwrap();
        if proto == Proto::Resp3 {
            assert!(matches!(v, Value::Map(_)), "{v:?}");
        }
        let _: () = cmd("CONFIG").arg("SET").arg("maxmemory").arg("100mb").arg("timeout").arg("30").query(con).unwrap();
        let got: std::collections::HashMap<String, String> =
            cmd("CONFIG").arg("GET").arg("maxmemory").query(con).unwrap();
        assert_eq!(got.get("maxmemory"), Some(&(100u64 << 20).to_string()));
        assert_eq!(got.len(), 1);
        let r: RedisResult<()> = cmd("CONFIG").arg("SET").arg("nosuch").arg("1").query(con);
        assert!(r.unwrap_err().to_string().contains("Unknown option or number of arguments for CONFIG SET - 'nosuch'"));
        let r: RedisResult<()> = cmd("CONFIG").arg("SET").arg("timeout").arg("5").arg("maxclients").arg("x").query(con);
        assert!(r.unwrap_err().to_string().contains("argument couldn't be parsed into an integer"));
        let got: std::collections::HashMap<String, String> =
            cmd("CONFIG").arg("GET").arg("timeout").query(con).unwrap();
        assert_eq!(got["timeout"], "30", "a failed CONFIG SET changes nothing");
        let r: RedisResult<()> = cmd("CONFIG").arg("SET").arg("databases").arg("4").query(con);
        assert!(r.unwrap_err().to_string().contains("can't set immutable config"));
        let _: () = cmd("CONFIG").arg("RESETSTAT").query(con).unwrap();
        let stats: String = cmd("INFO").arg("commandstats").query(con).unwrap();
        assert!(!stats.contains("cmdstat_set"), "{stats}");
    });
}

/// CONFIG SET port and bind move the listening sockets before answering,
/// as in Redis 7: the old port closes, the new one serves, a port in use
/// is refused with Redis's text and the old sockets come back, and setting
/// the current values changes nothing.
#[test]
fn config_set_port_and_bind_move_the_listener() {
    let s = spawn_server();
    let mut raw = s.raw();
    let port = s.addr.port();
    let get = |raw: &mut larder_testkit::RawConn, name: &str| match raw.call(&["CONFIG", "GET", name]).unwrap() {
        Frame::Array(v) => v.get(1).cloned(),
        other => panic!("{other:?}"),
    };
    assert_eq!(get(&mut raw, "port"), Some(Frame::bulk(port.to_string())), "the port in use, not the default");
    // Its own values: a no-op (rebinding the same port would collide).
    assert_eq!(raw.call(&["CONFIG", "SET", "port", &port.to_string(), "bind", "127.0.0.1"]).unwrap(), Frame::ok());
    assert!(std::net::TcpStream::connect(s.addr).is_ok());

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let refused = raw.call(&["CONFIG", "SET", "maxmemory", "12345", "port", &busy.to_string()]).unwrap();
    assert_eq!(
        refused,
        Frame::error("ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs.")
    );
    assert_eq!(get(&mut raw, "maxmemory"), Some(Frame::bulk("0")), "rolled back");
    assert_eq!(get(&mut raw, "port"), Some(Frame::bulk(port.to_string())));
    let mut again = larder_testkit::RawConn::connect(s.addr).expect("the old port serves again");
    assert_eq!(again.call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));

    let free = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert_eq!(raw.call(&["CONFIG", "SET", "port", &free.to_string()]).unwrap(), Frame::ok());
    let moved = std::net::SocketAddr::from(([127, 0, 0, 1], free));
    let mut new = larder_testkit::RawConn::connect(moved).expect("the new port serves");
    assert_eq!(new.call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));
    assert!(std::net::TcpStream::connect(s.addr).is_err(), "the old port is closed");
    let info = match new.call(&["INFO", "server"]).unwrap() {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(info.contains(&format!("tcp_port:{free}")), "{info}");

    // An address the machine lacks is refused, unless marked optional.
    let bad = new.call(&["CONFIG", "SET", "bind", "127.0.0.1 192.0.2.1"]).unwrap();
    assert_eq!(
        bad,
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses."
        )
    );
    assert_eq!(new.call(&["CONFIG", "SET", "bind", "127.0.0.1 -192.0.2.1"]).unwrap(), Frame::ok());
    assert_eq!(get(&mut new, "bind"), Some(Frame::bulk("127.0.0.1 -192.0.2.1")));
    let mut last = larder_testkit::RawConn::connect(moved).expect("still served");
    assert_eq!(last.call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));
    // The connections made before any of this stay open throughout.
    assert_eq!(raw.call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));
    drop(taken);
}

/// Hidden parameters answer only to their exact names, as Redis's
/// HIDDEN_CONFIG ones: a `CONFIG GET *` round trip (get every value, set
/// it back) must not meet an immutable one it cannot know to skip.
#[test]
fn hidden_configs_answer_only_to_their_names() {
    let s = spawn_server();
    let mut raw = s.raw();
    let Frame::Array(all) = raw.call(&["CONFIG", "GET", "*"]).unwrap() else { panic!() };
    let names: Vec<&Frame> = all.iter().step_by(2).collect();
    for hidden in ["key-load-delay", "shards"] {
        assert!(!names.contains(&&Frame::bulk(hidden)), "{hidden} listed by *");
        let Frame::Array(one) = raw.call(&["CONFIG", "GET", hidden]).unwrap() else { panic!() };
        assert_eq!(one.first(), Some(&Frame::bulk(hidden)));
    }
    // It slows a load down by what it says: DEBUG RELOAD of 100 keys at
    // 2 ms a key cannot take less than 200 ms (a sleep never ends early).
    for i in 0..100 {
        raw.call(&["SET", &format!("k{i}"), "v"]).unwrap();
    }
    assert_eq!(raw.call(&["CONFIG", "SET", "key-load-delay", "2000"]).unwrap(), Frame::ok());
    let started = std::time::Instant::now();
    assert_eq!(raw.call(&["DEBUG", "RELOAD"]).unwrap(), Frame::ok());
    assert!(started.elapsed() >= std::time::Duration::from_millis(200), "{:?}", started.elapsed());
    assert_eq!(raw.call(&["DBSIZE"]).unwrap(), Frame::Integer(100));
}

/// SLOWLOG logs what Redis 7.0's call() logs: a client's commands, each
/// of EXEC's (not EXEC), a script and what it calls, a blocking command
/// once, when it is served; passwords redacted; the newest first, at
/// most slowlog-max-len.
#[test]
fn slowlog_logs_what_redis_logs() {
    let s = spawn_server();
    let mut raw = s.raw();
    let mut other = s.raw();
    let logged = |raw: &mut larder_testkit::RawConn| -> Vec<Vec<Frame>> {
        match raw.call(&["SLOWLOG", "GET", "-1"]).unwrap() {
            Frame::Array(entries) => entries
                .into_iter()
                .map(|e| match e {
                    Frame::Array(f) => match &f[3] {
                        Frame::Array(args) => args.clone(),
                        other => panic!("{other:?}"),
                    },
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    let args = |v: &[&str]| v.iter().map(Frame::bulk).collect::<Vec<_>>();
    raw.call(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]).unwrap();
    raw.call(&["CLIENT", "SETNAME", "me"]).unwrap();
    raw.call(&["SLOWLOG", "RESET"]).unwrap();
    raw.call(&["SET", "k", "v"]).unwrap();
    raw.call(&["AUTH", "default", "nopass"]).unwrap();
    raw.call(&["MULTI"]).unwrap();
    raw.call(&["INCR", "n"]).unwrap();
    raw.call(&["EXEC"]).unwrap();
    raw.call(&["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]).unwrap();
    raw.send(&["BLPOP", "q", "0"]).unwrap();
    // Only once BLPOP is blocked (it is then a blocked client).
    let start = std::time::Instant::now();
    while s.shared.blocking.stats().0 == 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    other.call(&["RPUSH", "q", "x"]).unwrap();
    raw.read_frame().unwrap();
    let got = logged(&mut raw);
    assert_eq!(
        got,
        vec![
            args(&["BLPOP", "q", "0"]),
            args(&["RPUSH", "q", "x"]),
            args(&["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]),
            args(&["get", "k"]),
            args(&["INCR", "n"]),
            args(&["MULTI"]),
            args(&["AUTH", "(redacted)", "(redacted)"]),
            args(&["SET", "k", "v"]),
            args(&["SLOWLOG", "RESET"]),
        ]
    );
    let Frame::Array(newest) = raw.call(&["SLOWLOG", "GET", "5"]).unwrap() else { panic!() };
    let Frame::Array(entry) = &newest[0] else { panic!() };
    assert_eq!(entry[5], Frame::bulk("me"), "the client's name");
    assert!(matches!(&entry[4], Frame::Bulk(b) if b.starts_with(b"127.0.0.1:")), "{entry:?}");
    let Frame::Array(scripted) = &newest[4] else { panic!() };
    assert_eq!((&scripted[4], &scripted[5]), (&Frame::bulk("?:0"), &Frame::bulk("")), "from the Lua client");
    raw.call(&["CONFIG", "SET", "slowlog-max-len", "2"]).unwrap();
    assert_eq!(raw.call(&["SLOWLOG", "LEN"]).unwrap(), Frame::Integer(2));
    // A threshold: DEBUG SLEEP 0.25 is slow, PING is not (200 ms, so a
    // loaded machine's pause in PING does not count).
    raw.call(&["CONFIG", "SET", "slowlog-log-slower-than", "200000"]).unwrap();
    raw.call(&["SLOWLOG", "RESET"]).unwrap();
    raw.call(&["PING"]).unwrap();
    raw.call(&["DEBUG", "SLEEP", "0.25"]).unwrap();
    assert_eq!(logged(&mut raw), vec![args(&["DEBUG", "SLEEP", "0.25"])]);
    let Frame::Array(newest) = raw.call(&["SLOWLOG", "GET"]).unwrap() else { panic!() };
    let Frame::Array(entry) = &newest[0] else { panic!() };
    assert!(matches!(entry[2], Frame::Integer(us) if us >= 250_000), "{entry:?}");
}

/// The latency monitor records a command's spike under "command" (a
/// `fast` command's under "fast-command") once the threshold is set, one
/// sample a second, the worst of it.
#[test]
fn latency_monitor_records_spikes_past_its_threshold() {
    let s = spawn_server();
    let mut raw = s.raw();
    // No expire-cycle events; and a threshold of 150 ms, so that only the
    // sleeps below, not a loaded machine's pauses, are spikes.
    raw.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).unwrap();
    raw.call(&["DEBUG", "SLEEP", "0.2"]).unwrap();
    assert_eq!(raw.call(&["LATENCY", "LATEST"]).unwrap(), Frame::Array(vec![]), "off by default");
    raw.call(&["CONFIG", "SET", "latency-monitor-threshold", "150"]).unwrap();
    raw.call(&["PING"]).unwrap();
    raw.call(&["DEBUG", "SLEEP", "0.2"]).unwrap();
    raw.call(&["DEBUG", "SLEEP", "0.3"]).unwrap();
    let Frame::Array(rows) = raw.call(&["LATENCY", "LATEST"]).unwrap() else { panic!() };
    assert_eq!(rows.len(), 1, "{rows:?}");
    let Frame::Array(row) = &rows[0] else { panic!() };
    assert_eq!(row[0], Frame::bulk("command"));
    let (Frame::Integer(latest), Frame::Integer(max)) = (&row[2], &row[3]) else { panic!("{row:?}") };
    assert!(*max >= 300 && *latest >= 200, "{row:?}");
    let Frame::Array(history) = raw.call(&["LATENCY", "HISTORY", "command"]).unwrap() else { panic!() };
    assert!(!history.is_empty() && history.len() <= 2, "one sample a second: {history:?}");
    let doctor = match raw.call(&["LATENCY", "DOCTOR"]).unwrap() {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(
        doctor.contains("1. command: ") && doctor.contains(" spikes kept (average ") && doctor.contains("SLOWLOG GET"),
        "{doctor}"
    );
    // The graph: header, rule, bars and "Ns" labels under them.
    let graph = match raw.call(&["LATENCY", "GRAPH", "command"]).unwrap() {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    let lines: Vec<&str> = graph.lines().collect();
    assert!(lines[0].starts_with("command - high ") && lines[0].contains("(all time high "), "{graph}");
    assert_eq!(lines[1], "-".repeat(80), "{graph}");
    assert!(lines.iter().any(|l| l.contains('s')) && lines.len() >= 8, "{graph}");
    assert_eq!(
        raw.call(&["LATENCY", "GRAPH", "fork"]).unwrap(),
        Frame::Error("ERR No samples available for event 'fork'".into())
    );
    assert_eq!(raw.call(&["LATENCY", "RESET", "command", "fast-command"]).unwrap(), Frame::Integer(1));
    let Frame::Bulk(calm) = raw.call(&["LATENCY", "DOCTOR"]).unwrap() else { panic!() };
    assert!(calm.starts_with(b"No latency spike"), "{calm:?}");
    assert_eq!(raw.call(&["LATENCY", "LATEST"]).unwrap(), Frame::Array(vec![]));
}

/// LATENCY HISTOGRAM: per command called since CONFIG RESETSTAT, its
/// calls and cumulative counts at powers of two of µs; a container names
/// its subcommands; `latency-tracking no` stops the counting.
#[test]
fn latency_histogram_counts_calls_per_command() {
    let s = spawn_server();
    let mut raw = s.raw();
    raw.call(&["HELLO", "3"]).unwrap();
    raw.call(&["CONFIG", "RESETSTAT"]).unwrap();
    raw.call(&["SET", "a", "1"]).unwrap();
    raw.call(&["SET", "b", "2"]).unwrap();
    raw.call(&["CLIENT", "ID"]).unwrap();
    // (command, calls, [(µs, cumulative calls)]) per row.
    type Row = (String, u64, Vec<(i64, i64)>);
    let histogram = |raw: &mut larder_testkit::RawConn, names: &[&str]| -> Vec<Row> {
        let mut args = vec!["LATENCY", "HISTOGRAM"];
        args.extend(names);
        let Frame::Map(rows) = raw.call(&args).unwrap() else { panic!() };
        rows.into_iter()
            .map(|(name, row)| {
                let Frame::Bulk(name) = name else { panic!("{name:?}") };
                let Frame::Map(fields) = row else { panic!("{row:?}") };
                let Frame::Integer(calls) = fields[0].1 else { panic!() };
                let Frame::Map(cdf) = &fields[1].1 else { panic!() };
                let cdf = cdf
                    .iter()
                    .map(|(k, v)| match (k, v) {
                        (Frame::Integer(k), Frame::Integer(v)) => (*k, *v),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                (String::from_utf8_lossy(&name).into_owned(), calls as u64, cdf)
            })
            .collect()
    };
    let rows = histogram(&mut raw, &["set", "client", "get", "nosuch"]);
    let names: Vec<(&str, u64)> = rows.iter().map(|(n, c, _)| (n.as_str(), *c)).collect();
    assert_eq!(names, vec![("set", 2), ("client|id", 1)], "get was never called");
    let (_, _, cdf) = &rows[0];
    assert_eq!(cdf.last().unwrap().1, 2, "cumulative up to every call: {cdf:?}");
    assert!(cdf.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "{cdf:?}");
    assert!(cdf.iter().all(|(us, _)| (*us as u64).is_power_of_two()), "{cdf:?}");
    let all: Vec<String> = histogram(&mut raw, &[]).into_iter().map(|r| r.0).collect();
    assert_eq!(all, vec!["client|id", "config|resetstat", "latency|histogram", "set"]);
    raw.call(&["CONFIG", "SET", "latency-tracking", "no"]).unwrap();
    raw.call(&["SET", "c", "3"]).unwrap();
    assert_eq!(histogram(&mut raw, &["set"])[0].1, 2, "not counted while tracking is off");
    raw.call(&["CONFIG", "RESETSTAT"]).unwrap();
    assert!(histogram(&mut raw, &["set"]).is_empty());
}

#[test]
fn command_introspection_comes_from_the_table() {
    let s = spawn_server();
    let mut raw = s.raw();
    let count = raw.call(&["COMMAND", "COUNT"]).unwrap();
    let Frame::Integer(n) = count else { panic!() };
    assert!(n > 60);
    let Frame::Array(all) = raw.call(&["COMMAND"]).unwrap() else { panic!() };
    assert_eq!(all.len() as i64, n);
    let Frame::Array(info) = raw.call(&["COMMAND", "INFO", "get", "nosuch", "client|kill"]).unwrap() else { panic!() };
    let Frame::Array(get) = &info[0] else { panic!() };
    assert_eq!(get[0], Frame::bulk("get"));
    assert_eq!(get[1], Frame::Integer(2));
    assert_eq!(&get[3..6], &[Frame::Integer(1), Frame::Integer(1), Frame::Integer(1)]);
    assert_eq!(info[1], Frame::Null);
    let Frame::Array(kill) = &info[2] else { panic!() };
    assert_eq!(kill[0], Frame::bulk("client|kill"));
    assert_eq!(
        raw.call(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]).unwrap(),
        Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b")])
    );
    let Frame::Array(list) = raw.call(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "client*"]).unwrap() else {
        panic!()
    };
    assert!(list.contains(&Frame::bulk("client|setname")));
    let Frame::Array(docs) = raw.call(&["COMMAND", "DOCS", "set"]).unwrap() else { panic!() };
    assert_eq!(docs[0], Frame::bulk("set"));
}

#[test]
fn time_and_debug() {
    let s = spawn_server();
    let mut con = s.conn(Proto::Resp2);
    let (secs, usecs): (u64, u64) = cmd("TIME").query(&mut con).unwrap();
    assert!(secs > 1_600_000_000 && usecs < 1_000_000);
    let _: () = cmd("SET").arg("k").arg("hello").query(&mut con).unwrap();
    let dbg: String = cmd("DEBUG").arg("OBJECT").arg("k").query(&mut con).unwrap();
    assert!(dbg.contains("encoding:embstr"), "{dbg}");
    let r: RedisResult<String> = cmd("DEBUG").arg("OBJECT").arg("nope").query(&mut con);
    assert!(r.unwrap_err().to_string().contains("no such key"));
    let _: () = cmd("DEBUG").arg("SLEEP").arg("0").query(&mut con).unwrap();
    for bad in ["inf", "1e300", "x"] {
        let r: RedisResult<()> = cmd("DEBUG").arg("SLEEP").arg(bad).query(&mut con);
        assert!(r.unwrap_err().to_string().contains("not a valid float"), "{bad}");
    }
}

#[test]
fn shutdown_stops_the_server() {
    let s = spawn_server();
    let mut raw = s.raw();
    raw.send(&["SHUTDOWN", "NOSAVE"]).unwrap();
    assert_eq!(raw.read_to_close().unwrap(), b"", "SHUTDOWN closes without a reply");
    // The accept loop has ended and closed the listening socket: new
    // connections are refused, not left in a backlog nobody accepts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match std::net::TcpStream::connect_timeout(&s.addr, std::time::Duration::from_secs(2)) {
            Ok(_) => assert!(std::time::Instant::now() < deadline, "still accepting connections after SHUTDOWN"),
            // Refused, or reset when the attempt met the socket closing. A
            // backlog that fills up times out instead; that is not this.
            Err(e) => break assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn debug_populate_adds_numbered_keys_as_redis_does() {
    let s = spawn_server();
    let mut c = s.raw();
    c.call(&["SET", "key:1", "mine"]).unwrap();
    assert_eq!(c.call(&["DEBUG", "POPULATE", "3"]).unwrap(), Frame::Simple("OK".into()));
    assert_eq!(c.call(&["GET", "key:0"]).unwrap(), Frame::Bulk("value:0".into()));
    assert_eq!(c.call(&["GET", "key:1"]).unwrap(), Frame::Bulk("mine".into()), "existing keys stay");
    assert_eq!(c.call(&["GET", "key:2"]).unwrap(), Frame::Bulk("value:2".into()));
    // A size pads with zero bytes or cuts; 0 means no size.
    c.call(&["DEBUG", "POPULATE", "2", "p", "10"]).unwrap();
    assert_eq!(c.call(&["GET", "p:1"]).unwrap(), Frame::Bulk(bytes::Bytes::from_static(b"value:1\0\0\0")));
    c.call(&["DEBUG", "POPULATE", "1", "q", "3"]).unwrap();
    assert_eq!(c.call(&["GET", "q:0"]).unwrap(), Frame::Bulk("val".into()));
    c.call(&["DEBUG", "POPULATE", "1", "z", "0"]).unwrap();
    assert_eq!(c.call(&["GET", "z:0"]).unwrap(), Frame::Bulk("value:0".into()));
    assert_eq!(c.call(&["DBSIZE"]).unwrap(), Frame::Integer(7));
    let positive = Frame::Error("ERR value is out of range, must be positive".into());
    assert_eq!(c.call(&["DEBUG", "POPULATE", "-1"]).unwrap(), positive);
    assert_eq!(c.call(&["DEBUG", "POPULATE", "x"]).unwrap(), positive);
    assert_eq!(
        c.call(&["DEBUG", "POPULATE", "1", "a", "3", "4"]).unwrap(),
        Frame::Error("ERR unknown subcommand or wrong number of arguments for 'populate'. Try DEBUG HELP.".into())
    );
}

/// INFO latencystats (in `everything`, not the default INFO): a line per
/// command called, with the percentiles latency-tracking-info-percentiles
/// names, each a power of two of µs (Larder's histogram buckets).
#[test]
fn info_latencystats_follows_its_percentiles() {
    let s = larder_testkit::spawn_server();
    let mut c = s.raw();
    for _ in 0..20 {
        c.call(&["SET", "k", "v"]).unwrap();
        c.call(&["GET", "k"]).unwrap();
    }
    let text = |f: larder_protocol::Frame| match f {
        larder_protocol::Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(!text(c.call(&["INFO"]).unwrap()).contains("Latencystats"));
    assert!(text(c.call(&["INFO", "everything"]).unwrap()).contains("# Latencystats\r\n"));
    let line = |c: &mut larder_testkit::RawConn, cmd: &str| {
        let info = text(c.call(&["INFO", "latencystats"]).unwrap());
        let prefix = format!("latency_percentiles_usec_{cmd}:");
        info.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()).map(str::to_string))
            .unwrap_or_else(|| panic!("{info}"))
    };
    let get = line(&mut c, "get");
    let names: Vec<&str> = get.split(',').map(|p| p.split('=').next().unwrap()).collect();
    assert_eq!(names, ["p50", "p99", "p99.9"], "{get}");
    for part in get.split(',') {
        let v: f64 = part.split('=').nth(1).unwrap().parse().unwrap();
        assert!(v >= 1.0 && (v as u64).is_power_of_two(), "{get}");
    }
    c.call(&["CONFIG", "SET", "latency-tracking-info-percentiles", "50 99.99"]).unwrap();
    assert!(line(&mut c, "get").starts_with("p50=") && line(&mut c, "get").contains(",p99.99="));
    c.call(&["CONFIG", "SET", "latency-tracking-info-percentiles", ""]).unwrap();
    assert_eq!(line(&mut c, "set"), "");
}

/// INFO's measured fields that were missing or zero: the instantaneous
/// rates (Redis's 100 ms samples averaged over 16) rise under a load and
/// fall back once it stops; reads and writes are counted per batch; the
/// expiry cycle's time and caps, the connections' and scripts' memory and
/// the last RDB load's keys are reported.
#[test]
fn info_reports_rates_reads_clients_scripts_and_the_last_load() {
    let s = spawn_server();
    let mut raw = s.raw();
    let field = |raw: &mut larder_testkit::RawConn, section: &str, name: &str| -> f64 {
        crate::info_field(raw, section, name).parse().unwrap()
    };
    // A second connection sends PINGs one at a time for a second.
    let addr = s.addr;
    let load = std::thread::spawn(move || {
        let mut c = larder_testkit::RawConn::connect(addr).unwrap();
        let started = std::time::Instant::now();
        let mut n = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(1500) {
            assert_eq!(c.call(&["PING"]).unwrap(), Frame::simple("PONG"));
            n += 1;
        }
        n
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    let ops = field(&mut raw, "stats", "instantaneous_ops_per_sec");
    let (input, output) =
        (field(&mut raw, "stats", "instantaneous_input_kbps"), field(&mut raw, "stats", "instantaneous_output_kbps"));
    let reads_before = field(&mut raw, "stats", "total_reads_processed");
    let pings = load.join().unwrap();
    assert!(ops > 100.0, "{ops} commands a second while {pings} PINGs ran");
    assert!(input > 0.0 && output > 0.0, "in {input} kbps, out {output} kbps");
    let reads = field(&mut raw, "stats", "total_reads_processed");
    let writes = field(&mut raw, "stats", "total_writes_processed");
    assert!(reads > reads_before && reads >= pings as f64 && writes >= pings as f64, "{reads} {writes} {pings}");
    // Two seconds without a load: the rates average 1.6 s of samples.
    let quiet = larder_testkit::eventually(10, || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        match field(&mut raw, "stats", "instantaneous_ops_per_sec") {
            n if n < 20.0 => Ok(n),
            n => Err(format!("{n} commands a second after the load")),
        }
    });
    assert!(quiet < ops);
    for name in ["expired_time_cap_reached_count", "expire_cycle_cpu_milliseconds", "total_forks"] {
        field(&mut raw, "stats", name);
    }

    // Each connection's buffers and state count in mem_clients_normal.
    let one = field(&mut raw, "memory", "mem_clients_normal");
    let others: Vec<_> = (0..4).map(|_| s.raw()).collect();
    let five = larder_testkit::eventually(10, || match field(&mut raw, "memory", "mem_clients_normal") {
        n if n >= one + 4.0 * 16384.0 => Ok(n),
        n => Err(format!("{n} for five connections, {one} for one")),
    });
    drop(others);
    assert!(five > one);

    // Scripts and functions: counted, and their code's bytes.
    let body = "return 'a script'";
    let Frame::Bulk(sha) = raw.call(&["SCRIPT", "LOAD", body]).unwrap() else { panic!() };
    let library = "#!lua name=lib\nredis.register_function('f1', function() return 1 end)\n\
                   redis.register_function('f2', function() return 2 end)";
    assert_eq!(raw.call(&["FUNCTION", "LOAD", library]).unwrap(), Frame::bulk("lib"));
    assert_eq!(field(&mut raw, "memory", "number_of_cached_scripts"), 1.0);
    assert_eq!(field(&mut raw, "memory", "used_memory_scripts_eval"), (sha.len() + body.len()) as f64);
    assert_eq!(field(&mut raw, "memory", "number_of_libraries"), 1.0);
    assert_eq!(field(&mut raw, "memory", "number_of_functions"), 2.0);
    assert_eq!(field(&mut raw, "memory", "used_memory_functions"), (3 + library.len() + 4) as f64);
    assert!(field(&mut raw, "memory", "used_memory_vm_total") > 0.0, "the Lua heap");
    // MEMORY STATS shows the same figures (its caches in bytes, as Redis's).
    let Frame::Array(stats) = raw.call(&["MEMORY", "STATS"]).unwrap() else { panic!() };
    let stat = |name: &str| -> i64 {
        let at = stats.iter().position(|f| *f == Frame::bulk(name)).unwrap_or_else(|| panic!("no {name}"));
        let Frame::Integer(n) = stats[at + 1] else { panic!("{name}: {:?}", stats[at + 1]) };
        n
    };
    assert_eq!(stat("lua.caches") as f64, field(&mut raw, "memory", "used_memory_scripts_eval"));
    assert_eq!(stat("functions.caches") as f64, field(&mut raw, "memory", "used_memory_functions"));
    assert!(stat("clients.normal") >= 16384, "this connection's buffers at least");

    // The last load: keys loaded, and those past their deadline skipped
    // (saved while they lived, loaded once they had expired).
    for i in 0..5 {
        raw.call(&["SET", &format!("k{i}"), "v"]).unwrap();
    }
    for i in 0..3 {
        raw.call(&["SET", &format!("short{i}"), "v", "PX", "300"]).unwrap();
    }
    assert_eq!(raw.call(&["SAVE"]).unwrap(), Frame::ok());
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(raw.call(&["DEBUG", "RELOAD", "NOSAVE"]).unwrap(), Frame::ok());
    assert_eq!(field(&mut raw, "persistence", "rdb_last_load_keys_loaded"), 5.0);
    assert_eq!(field(&mut raw, "persistence", "rdb_last_load_keys_expired"), 3.0);
}

/// CONFIG RESETSTAT starts INFO's expiry counts again, in Larder as in
/// redis-server (the same steps against both).
#[test]
fn config_resetstat_clears_the_expiry_counts() {
    let both = crate::Both::start();
    for (who, c) in &mut both.conns() {
        let expired = |c: &mut larder_testkit::RawConn| crate::info_field(c, "stats", "expired_keys");
        assert_eq!(c.call(&["SET", "k", "v", "PX", "1"]).unwrap(), Frame::ok());
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(c.call(&["GET", "k"]).unwrap(), Frame::Null);
        assert_eq!(expired(c), "1", "{who}");
        assert_eq!(c.call(&["CONFIG", "RESETSTAT"]).unwrap(), Frame::ok());
        assert_eq!(expired(c), "0", "{who}");
        assert_eq!(crate::info_field(c, "stats", "expired_time_cap_reached_count"), "0", "{who}");
    }
}

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
    // The accept loop has ended: new connections are refused or closed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match larder_testkit::RawConn::connect(s.addr) {
            Err(_) => break,
            Ok(mut c) => {
                if c.call(&["PING"]).is_err() {
                    break;
                }
            }
        }
        assert!(std::time::Instant::now() < deadline, "server still answering after SHUTDOWN");
        std::thread::yield_now();
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

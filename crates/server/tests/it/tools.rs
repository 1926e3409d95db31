//! The stock Redis tools against Larder: redis-cli and redis-benchmark run
//! as separate processes, exactly as a user would run them.

use larder_testkit::spawn_server;
use std::process::Command;

fn tool(name: &str) -> Option<Command> {
    if Command::new(name).arg("--version").output().is_ok() {
        return Some(Command::new(name));
    }
    assert!(std::env::var("LARDER_REQUIRE_REDIS").as_deref() != Ok("1"), "{name} is not installed");
    eprintln!("{name} not installed: skipping");
    None
}

#[test]
fn redis_cli_works() {
    let s = spawn_server();
    let port = s.addr.port().to_string();
    let run = |args: &[&str]| -> String {
        let Some(mut cli) = tool("redis-cli") else { return String::new() };
        let out = cli.args(["-p", &port]).args(args).output().expect("run redis-cli");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    if tool("redis-cli").is_none() {
        return;
    }
    assert_eq!(run(&["PING"]), "PONG\n");
    assert_eq!(run(&["SET", "greeting", "hello"]), "OK\n");
    assert_eq!(run(&["GET", "greeting"]), "hello\n");
    assert_eq!(run(&["INCRBY", "n", "5"]), "5\n");
    assert_eq!(run(&["--no-raw", "MGET", "greeting", "missing"]), "1) \"hello\"\n2) (nil)\n");
    assert_eq!(run(&["-3", "--no-raw", "GET", "missing"]), "(nil)\n");
    assert!(run(&["INFO", "server"]).contains("redis_version:"));
    assert_eq!(run(&["--no-raw", "GET"]), "(error) ERR wrong number of arguments for 'get' command\n");
    // --scan drives SCAN to completion.
    let keys = run(&["--scan", "--pattern", "g*"]);
    assert_eq!(keys, "greeting\n");
}

#[test]
fn redis_benchmark_works() {
    let s = spawn_server();
    let Some(mut bench) = tool("redis-benchmark") else { return };
    let out = bench
        .args([
            "-p",
            &s.addr.port().to_string(),
            "-t",
            "set,get,incr,mset,ping",
            "-n",
            "2000",
            "-c",
            "10",
            "-P",
            "4",
            "--csv",
        ])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for test in ["\"SET\"", "\"GET\"", "\"INCR\"", "\"MSET (10 keys)\"", "\"PING_MBULK\""] {
        let line = text.lines().find(|l| l.starts_with(test)).unwrap_or_else(|| panic!("{test} missing:\n{text}"));
        let rps: f64 = line.split(',').nth(1).unwrap().trim_matches('"').parse().unwrap();
        assert!(rps > 0.0, "{line}");
    }
    let mut con = s.conn(larder_protocol::Proto::Resp2);
    let n: i64 = redis::cmd("GET").arg("counter:__rand_int__").query(&mut con).unwrap();
    assert_eq!(n, 2000, "every INCR was applied once");
}

/// `redis-cli --ldb-sync-mode --eval` debugs a script against Larder as
/// against redis-server: the same commands typed in give the same screen
/// (stops, locals, a command and its reply, redis.debug output, the
/// result). `--ldb` (SCRIPT DEBUG YES) runs too, and its writes are
/// refused, so the rollback redis-cli reports holds.
#[test]
fn redis_cli_debugs_scripts() {
    use std::io::Write;
    if tool("redis-cli").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("larder-ldb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("script.lua");
    std::fs::write(&file, "local a = 1\nredis.debug('a is', a)\nredis.call('SET', KEYS[1], ARGV[1])\nreturn a\n")
        .unwrap();
    let debug = |port: u16, mode: &str| -> String {
        let mut cli = tool("redis-cli")
            .unwrap()
            .args(["-p", &port.to_string(), mode, "--eval", file.to_str().unwrap(), "k", ",", "v1"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run redis-cli");
        cli.stdin.take().unwrap().write_all(b"s\np\ns\ns\nc\n").unwrap();
        let out = cli.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let s = spawn_server();
    let ours = debug(s.addr.port(), "--ldb-sync-mode");
    for line in ["<value> a = 1", "<debug> line 2: \"a is\", 1", "<redis> SET k v1", "<reply> \"+OK\"", "(integer) 1"] {
        assert!(ours.contains(line), "no {line:?} in:\n{ours}");
    }
    let mut c = s.raw();
    assert_eq!(c.call(&["GET", "k"]).unwrap(), larder_protocol::Frame::Bulk("v1".into()));
    if let Some(redis) = larder_testkit::RedisServer::start() {
        assert_eq!(ours, debug(redis.addr.port(), "--ldb-sync-mode"));
    }
    c.call(&["DEL", "k"]).unwrap();
    let forked = debug(s.addr.port(), "--ldb");
    assert!(forked.contains("write commands are refused"), "{forked}");
    assert!(forked.contains("dataset changes rolled back"), "{forked}");
    assert_eq!(c.call(&["EXISTS", "k"]).unwrap(), larder_protocol::Frame::Integer(0));
    let _ = std::fs::remove_dir_all(&dir);
}

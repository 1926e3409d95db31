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

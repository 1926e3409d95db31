//! The larder-server binary as a user runs it: config file plus flags,
//! clean exit on signals and SHUTDOWN, a clear error for a bad directive.

use crate::{start_binary as start, Proc};
use std::process::Command;

fn ping(port: u16) -> String {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    redis::cmd("PING").query(&mut con).unwrap()
}

fn signal(proc: &Proc, sig: &str) {
    let ok = Command::new("kill").args(["-s", sig, &proc.0.id().to_string()]).status().unwrap().success();
    assert!(ok);
}

#[test]
fn config_file_and_flags_then_sigterm() {
    let dir = std::env::temp_dir().join(format!("larder-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("larder.conf");
    std::fs::write(&conf, "# a comment\nport 0\ndatabases 4\nrequirepass \"from file\"\n").unwrap();
    // The flag overrides the file's password.
    let (mut child, port, _err) = start(&[conf.to_str().unwrap(), "--requirepass", "flag"]);
    let mut con = redis::Client::open(format!("redis://:flag@127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let dbs: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("databases").query(&mut con).unwrap();
    assert_eq!(dbs, vec!["databases", "4"]);
    signal(&child, "TERM");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigint_and_shutdown_exit_cleanly() {
    let (mut child, port, _err) = start(&["--port", "0"]);
    assert_eq!(ping(port), "PONG");
    signal(&child, "INT");
    assert!(child.0.wait().unwrap().success());

    let (mut child, port, _err) = start(&["--port", "0"]);
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut con);
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn bad_directive_is_a_clear_startup_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .args(["--port", "0", "--no-such-thing", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FATAL CONFIG FILE ERROR") && err.contains("Bad directive"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_larder-server")).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("redis-server's arguments"));
}

//! The Unix socket against redis-server's: both listen on one (`unixsocket`,
//! `unixsocketperm 700`), and what a client connected over it sees of
//! itself and of the settings must match once each server's path is
//! written as `<sock>`.

use larder_server::Config;
use larder_testkit::{private_dir, spawn_server_with, RedisServer};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// One reply, read as the text of its lines: enough for the simple,
/// bulk and array replies asked for here.
fn call(con: &mut BufReader<UnixStream>, args: &[&str]) -> Vec<String> {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req += &format!("${}\r\n{a}\r\n", a.len());
    }
    con.get_mut().write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut pending = 1;
    while pending > 0 {
        let mut line = String::new();
        con.read_line(&mut line).unwrap();
        pending -= 1;
        let line = line.trim_end().to_string();
        match line.as_bytes()[0] {
            b'*' => pending += line[1..].parse::<usize>().unwrap(),
            b'$' => {
                let n: usize = line[1..].parse().unwrap();
                let mut bulk = vec![0; n + 2];
                con.read_exact(&mut bulk).unwrap();
                out.push(String::from_utf8_lossy(&bulk[..n]).into_owned());
            }
            _ => out.push(line),
        }
    }
    out
}

/// What the server says over the socket at `path`, the path written `<sock>`.
fn seen_over(path: &Path) -> Vec<String> {
    let mut con = BufReader::new(UnixStream::connect(path).unwrap());
    let shown = path.to_str().unwrap();
    let info = call(&mut con, &["CLIENT", "INFO"]).concat();
    let fields: Vec<&str> = info
        .split_whitespace()
        .filter(|f| ["addr=", "laddr=", "flags=", "resp="].iter().any(|p| f.starts_with(p)))
        .collect();
    let mut seen = vec![fields.join(" ")];
    // (A pattern's pairs come in Redis's dict order: one name at a time.)
    seen.extend(call(&mut con, &["CONFIG", "GET", "unixsocket"]));
    seen.extend(call(&mut con, &["CONFIG", "GET", "unixsocketperm"]));
    seen.extend(call(&mut con, &["CONFIG", "SET", "unixsocketperm", "777"]));
    seen.extend(call(&mut con, &["SET", "k", "v"]));
    seen.extend(call(&mut con, &["GET", "k"]));
    seen.push(format!("{:o}", std::fs::metadata(path).unwrap().permissions().mode() & 0o777));
    seen.into_iter().map(|s| s.replace(shown, "<sock>")).collect()
}

#[test]
fn a_unix_socket_client_sees_what_redis_shows_it() {
    let dir = private_dir("diff-unixsocket");
    let (ours, theirs) = (dir.join("larder.sock"), dir.join("redis.sock"));
    let Some(_redis) = RedisServer::start_with(&["--unixsocket", theirs.to_str().unwrap(), "--unixsocketperm", "700"])
    else {
        return;
    };
    let mut config = Config::default();
    config.set("unixsocket", ours.to_str().unwrap(), true).unwrap();
    config.set("unixsocketperm", "700", true).unwrap();
    let _larder = spawn_server_with(config);
    let (a, b) = (seen_over(&ours), seen_over(&theirs));
    assert_eq!(a, b);
    assert!(a[0].contains("addr=<sock>:0 laddr=<sock>:0 flags=U"), "{a:?}");
}

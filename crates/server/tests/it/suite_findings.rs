//! Behaviour the Redis project's own test suite (scripts/redis-suite)
//! showed missing or wrong, with several real clients: BCAST invalidations
//! batched per command and prefix, blocked clients that stay blocked (or
//! fail) when their key changes type or goes away, CLIENT UNBLOCK, CLIENT
//! REPLY, WATCH on a key that had already expired, DEBUG RELOAD.

use larder_protocol::Frame;
use larder_testkit::{spawn_server, RawConn, TestServer};
use std::time::{Duration, Instant};

fn wait_blocked(server: &TestServer, n: usize) {
    let start = Instant::now();
    while server.shared.blocking.stats().0 != n {
        assert!(start.elapsed() < Duration::from_secs(10), "never reached {n} blocked clients");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn ok(c: &mut RawConn, args: &[&str]) -> Frame {
    let f = c.call(args).unwrap();
    assert!(!matches!(f, Frame::Error(_)), "{args:?}: {f:?}");
    f
}

fn bulk(s: &str) -> Frame {
    Frame::bulk(s)
}

/// The keys of the next invalidation message a RESP2 redirect target gets.
fn invalidated(sub: &mut RawConn) -> Vec<String> {
    match sub.read_frame().unwrap() {
        Frame::Array(parts) | Frame::Push(parts) => match &parts[2] {
            Frame::Array(keys) => {
                let mut k: Vec<String> = keys
                    .iter()
                    .map(|f| match f {
                        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                k.sort();
                k
            }
            other => panic!("{other:?}"),
        },
        other => panic!("not an invalidation: {other:?}"),
    }
}

#[test]
fn bcast_invalidations_come_one_message_per_command_and_prefix() {
    let s = spawn_server();
    let mut sub = s.raw();
    let id = match sub.call(&["CLIENT", "ID"]).unwrap() {
        Frame::Integer(i) => i.to_string(),
        other => panic!("{other:?}"),
    };
    ok(&mut sub, &["SUBSCRIBE", "__redis__:invalidate"]);
    let mut c = s.raw();
    ok(&mut c, &["CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", &id]);
    ok(&mut c, &["MSET", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(invalidated(&mut sub), ["a", "b", "c"]);
    ok(&mut c, &["CLIENT", "TRACKING", "OFF"]);
    ok(&mut c, &["CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", &id, "PREFIX", "a:", "PREFIX", "b:"]);
    for cmd in [&["MULTI"][..], &["INCR", "a:1"], &["INCR", "a:2"], &["INCR", "b:1"], &["INCR", "c:1"]] {
        c.call(cmd).unwrap();
    }
    ok(&mut c, &["EXEC"]);
    // One message per prefix, in prefix order; c:1 matches neither.
    assert_eq!(invalidated(&mut sub), ["a:1", "a:2"]);
    assert_eq!(invalidated(&mut sub), ["b:1"]);
    // NOLOOP hides a client's own writes, but not a key that expired
    // lazily: the expiry is the server's write. Inside EXEC time stands
    // still (as in Redis), so the key expires at the next access.
    ok(&mut c, &["CLIENT", "TRACKING", "OFF"]);
    ok(&mut c, &["CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", &id, "NOLOOP"]);
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for cmd in [
        &["MULTI"][..],
        &["SET", "mykey", "v", "PX", "1"],
        &["SET", "other", "v"],
        &["DEBUG", "SLEEP", "0.01"],
        &["GET", "mykey"],
    ] {
        c.call(cmd).unwrap();
    }
    let replies = c.call(&["EXEC"]).unwrap();
    assert!(format!("{replies:?}").contains("Bulk(b\"v\")"), "no expiry inside EXEC: {replies:?}");
    assert_eq!(c.call(&["GET", "mykey"]).unwrap(), Frame::Null);
    assert_eq!(invalidated(&mut sub), ["mykey"]);
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
}

#[test]
fn blocked_clients_wait_through_type_changes_and_can_be_unblocked() {
    let s = spawn_server();
    let mut w = s.raw();
    let mut b = s.raw();
    let id = match b.call(&["CLIENT", "ID"]).unwrap() {
        Frame::Integer(i) => i.to_string(),
        other => panic!("{other:?}"),
    };
    b.send(&["BLPOP", "list", "0"]).unwrap();
    wait_blocked(&s, 1);
    let listed = w.call(&["CLIENT", "LIST", "ID", &id]).unwrap();
    assert!(format!("{listed:?}").contains("flags=b"), "{listed:?}");
    // The key turns into a string: the client keeps waiting.
    for cmd in [&["MULTI"][..], &["LPUSH", "list", "a"], &["DEL", "list"], &["SET", "list", "foo"]] {
        w.call(cmd).unwrap();
    }
    ok(&mut w, &["EXEC"]);
    ok(&mut w, &["DEL", "list"]);
    ok(&mut w, &["LPUSH", "list", "b"]);
    assert_eq!(b.read_frame().unwrap(), Frame::Array(vec![bulk("list"), bulk("b")]));
    // CLIENT UNBLOCK: as a timeout, then as an error.
    b.send(&["BRPOP", "nothing", "0"]).unwrap();
    wait_blocked(&s, 1);
    assert_eq!(w.call(&["CLIENT", "UNBLOCK", &id]).unwrap(), Frame::Integer(1));
    assert_eq!(b.read_frame().unwrap(), Frame::NullArray);
    b.send(&["BRPOP", "nothing", "0"]).unwrap();
    wait_blocked(&s, 1);
    assert_eq!(w.call(&["CLIENT", "UNBLOCK", &id, "ERROR"]).unwrap(), Frame::Integer(1));
    assert_eq!(b.read_frame().unwrap(), Frame::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into()));
    assert_eq!(w.call(&["CLIENT", "UNBLOCK", &id]).unwrap(), Frame::Integer(0));
    wait_blocked(&s, 0);
}

#[test]
fn blocked_xreadgroup_fails_when_its_stream_goes() {
    let s = spawn_server();
    let mut w = s.raw();
    let mut b = s.raw();
    for (end, expected) in [
        (&["DEL", "st"][..], "UNBLOCKED the stream key no longer exists"),
        (&["SET", "st", "x"][..], "UNBLOCKED the stream key no longer exists"),
        (
            &["XGROUP", "DESTROY", "st", "g"][..],
            "NOGROUP the consumer group this client was blocked on no longer exists",
        ),
    ] {
        w.call(&["DEL", "st"]).unwrap();
        ok(&mut w, &["XGROUP", "CREATE", "st", "g", "$", "MKSTREAM"]);
        b.send(&["XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "st", ">"]).unwrap();
        wait_blocked(&s, 1);
        ok(&mut w, end);
        assert_eq!(b.read_frame().unwrap(), Frame::Error(expected.into()), "after {end:?}");
    }
    // XREAD (no group) just goes on waiting through a type change.
    w.call(&["DEL", "st"]).unwrap();
    b.send(&["XREAD", "BLOCK", "0", "STREAMS", "st", "$"]).unwrap();
    wait_blocked(&s, 1);
    ok(&mut w, &["SET", "st", "x"]);
    ok(&mut w, &["DEL", "st"]);
    ok(&mut w, &["XADD", "st", "1-1", "f", "v"]);
    let got = b.read_frame().unwrap();
    assert!(format!("{got:?}").contains("1-1"), "{got:?}");
    // One call however often it was woken.
    let stats = match w.call(&["INFO", "commandstats"]).unwrap() {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(stats.contains("cmdstat_xread:calls=1,"), "{stats}");
}

#[test]
fn client_reply_off_and_skip_silence_replies_not_messages() {
    let s = spawn_server();
    let mut c = s.raw();
    c.send(&["CLIENT", "REPLY", "OFF"]).unwrap();
    c.send(&["SET", "k", "1"]).unwrap();
    c.send(&["CLIENT", "REPLY", "SKIP"]).unwrap();
    c.send(&["CLIENT", "REPLY", "ON"]).unwrap();
    // ON's own reply is the first thing to arrive.
    assert_eq!(c.read_frame().unwrap(), Frame::ok());
    c.send(&["CLIENT", "REPLY", "SKIP"]).unwrap();
    c.send(&["INCR", "k"]).unwrap();
    assert_eq!(c.call(&["GET", "k"]).unwrap(), bulk("2"));
    // Subscription confirmations and messages are pushes: they still come.
    c.send(&["CLIENT", "REPLY", "OFF"]).unwrap();
    c.send(&["SUBSCRIBE", "ch"]).unwrap();
    assert_eq!(c.read_frame().unwrap(), Frame::Array(vec![bulk("subscribe"), bulk("ch"), Frame::Integer(1)]));
    let mut p = s.raw();
    assert_eq!(p.call(&["PUBLISH", "ch", "hi"]).unwrap(), Frame::Integer(1));
    assert_eq!(c.read_frame().unwrap(), Frame::Array(vec![bulk("message"), bulk("ch"), bulk("hi")]));
}

#[test]
fn watch_on_an_already_expired_key_is_not_a_change() {
    let s = spawn_server();
    let mut c = s.raw();
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    // Expired before WATCH: reclaiming it (or DEL) changes nothing.
    for reclaim in [&["GET", "x"][..], &["DEL", "x"], &["PING"]] {
        ok(&mut c, &["SET", "x", "foo", "PX", "1"]);
        std::thread::sleep(Duration::from_millis(5));
        ok(&mut c, &["WATCH", "x"]);
        ok(&mut c, reclaim);
        ok(&mut c, &["MULTI"]);
        c.call(&["PING"]).unwrap();
        assert_eq!(c.call(&["EXEC"]).unwrap(), Frame::Array(vec![Frame::simple("PONG")]), "after {reclaim:?}");
    }
    // Expired after WATCH: that is a change.
    ok(&mut c, &["SET", "x", "foo", "PX", "50"]);
    ok(&mut c, &["WATCH", "x"]);
    std::thread::sleep(Duration::from_millis(60));
    ok(&mut c, &["MULTI"]);
    c.call(&["PING"]).unwrap();
    assert_eq!(c.call(&["EXEC"]).unwrap(), Frame::NullArray);
    // A stale key overwritten after WATCH is a change too.
    ok(&mut c, &["SET", "x", "foo", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(5));
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut c, &["SET", "x", "bar"]);
    ok(&mut c, &["MULTI"]);
    c.call(&["PING"]).unwrap();
    assert_eq!(c.call(&["EXEC"]).unwrap(), Frame::NullArray);
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
}

#[test]
fn debug_reload_round_trips_the_dataset() {
    let dir = larder_testkit::private_dir("debug-reload");
    let config = larder_server::Config { dir: dir.display().to_string(), ..Default::default() };
    let s = larder_testkit::spawn_server_with(config);
    let mut c = s.raw();
    ok(&mut c, &["RPUSH", "l", "a", "b"]);
    ok(&mut c, &["SET", "t", "v", "EX", "100"]);
    // Strings that lend bytes to their keys (crates/store/src/entry.rs)
    // are saved and loaded whole: printable, other ASCII, binary.
    let long: Vec<(String, Vec<u8>)> = [
        (0..100).map(|i| b' ' + (i * 7 % 95) as u8).collect::<Vec<u8>>(),
        (0..100).map(|i| if i % 10 == 0 { b'\n' } else { b'a' + (i % 26) as u8 }).collect(),
        (0..100).map(|i| (i * 37 + 128) as u8).collect(),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, v)| (format!("key:000000000{i}"), v))
    .collect();
    for (k, v) in &long {
        assert_eq!(c.call(&[&b"SET"[..], k.as_bytes(), v]).unwrap(), Frame::ok());
    }
    ok(&mut c, &["FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)"]);
    let before = c.call(&["DEBUG", "DIGEST"]).unwrap();
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(c.call(&["DEBUG", "DIGEST"]).unwrap(), before);
    for (k, v) in &long {
        assert_eq!(c.call(&["GET", k]).unwrap(), Frame::Bulk(v.clone().into()), "{k}");
    }
    assert_eq!(c.call(&["FCALL", "F", "0"]).unwrap(), Frame::Integer(1), "function names ignore case");
    // Without flushing, the file's library clashes with the loaded one
    // unless MERGE says to replace it.
    let e = c.call(&["DEBUG", "RELOAD", "NOFLUSH"]).unwrap();
    assert!(matches!(&e, Frame::Error(t) if t.starts_with(b"ERR Error trying to load the RDB")), "{e:?}");
    ok(&mut c, &["DEBUG", "RELOAD", "NOFLUSH", "MERGE"]);
    assert_eq!(c.call(&["DEBUG", "DIGEST"]).unwrap(), before);
    // Flushing empties the functions too, as Redis's emptyData does: a
    // library loaded after the save is gone after the reload.
    ok(&mut c, &["FUNCTION", "LOAD", "#!lua name=later\nredis.register_function('g', function() return 2 end)"]);
    ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
    let e = c.call(&["FCALL", "g", "0"]).unwrap();
    assert!(matches!(&e, Frame::Error(t) if t.starts_with(b"ERR Function not found")), "{e:?}");
    assert_eq!(c.call(&["FCALL", "f", "0"]).unwrap(), Frame::Integer(1));

    // The reload is a load: other clients get LOADING meanwhile, as from
    // Redis (300 keys, 5 ms each).
    ok(&mut c, &["DEBUG", "POPULATE", "300"]);
    ok(&mut c, &["SAVE"]);
    ok(&mut c, &["CONFIG", "SET", "key-load-delay", "5000"]);
    c.send(&["DEBUG", "RELOAD", "NOSAVE"]).unwrap();
    let mut other = s.raw();
    larder_testkit::eventually(10, || match other.call(&["PING"]).unwrap() {
        Frame::Error(e) if e.starts_with(b"LOADING") => Ok(()),
        reply => Err(format!("{reply:?}")),
    });
    assert_eq!(c.read_frame().unwrap(), Frame::ok());
    assert_eq!(other.call(&["PING"]).unwrap(), Frame::simple("PONG"));
}

#[test]
fn scripts_cannot_overflow_the_servers_stack() {
    // Each of these recursed without bound once; the suite's "Script return
    // recursive object" took the whole server down.
    let s = spawn_server();
    // The self-referencing reply: nested arrays, then the error where the
    // depth runs out (too deep for the test client's decoder, so read raw).
    {
        use std::io::{Read, Write};
        let mut raw = std::net::TcpStream::connect(s.addr).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let script = "local a = {}; local b = {a}; a[1] = b; return a";
        write!(raw, "*3\r\n$4\r\nEVAL\r\n${}\r\n{script}\r\n$1\r\n0\r\n", script.len()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while !got.ends_with(b"-ERR reached lua stack limit\r\n") {
            let n = raw.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"*1\r\n*1\r\n"));
    }
    let mut c = s.raw();
    let cases = [
        ("return #cmsgpack.unpack(string.rep(string.char(0x91), 200000) .. string.char(1))", "nested too deeply"),
        ("cjson.encode_max_depth(2000000000); local a = {}; a[1] = a; return cjson.encode(a)", "excessive nesting"),
        ("return cjson.decode(string.rep('[', 100000))", "invalid token"),
    ];
    for (script, expected) in cases {
        let reply = c.call(&["EVAL", script, "0"]).unwrap();
        let text = format!("{reply:?}");
        assert!(text.contains(expected), "{script}: {text}");
        assert_eq!(c.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    }
    ok(&mut c, &["EVAL", "cjson.encode_max_depth(1000)", "0"]);
    // A packed self-reference stops at lua-cmsgpack's 16 levels.
    let packed = c.call(&["EVAL", "local a = {}; a[1] = a; return cmsgpack.pack(a)", "0"]).unwrap();
    assert!(matches!(packed, Frame::Bulk(b) if b.len() == 17), "sixteen fixarrays and a nil");
}

/// Sends PING until the server answers BUSY (the script passed its time
/// limit).
fn wait_busy(c: &mut RawConn) {
    let start = Instant::now();
    loop {
        match c.call(&["PING"]).unwrap() {
            Frame::Error(e) if e.starts_with(b"BUSY") => return,
            _ => {
                assert!(start.elapsed() < Duration::from_secs(10), "the script never turned busy");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[test]
fn a_busy_script_answers_busy_and_dies_by_kill_even_inside_pcall() {
    // With a 10 ms limit the background cron used to park a runtime thread
    // behind the script, and nothing answered any more (the suite's FUNCTION
    // KILL stall). A second script must get BUSY, not wait. A script that
    // catches the kill with pcall must die anyway.
    let s = spawn_server();
    let mut admin = s.raw();
    ok(&mut admin, &["CONFIG", "SET", "lua-time-limit", "10"]);
    ok(
        &mut admin,
        &[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=spin\nredis.register_function('spin', function() while true do end end)",
        ],
    );
    let scripts: [(&[&str], &str); 2] = [
        (&["FCALL", "spin", "0"], "FUNCTION"),
        (
            &["EVAL", "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end", "0"],
            "SCRIPT",
        ),
    ];
    for (script, kill) in scripts {
        let mut runner = s.raw();
        runner.send(script).unwrap();
        wait_busy(&mut admin);
        let mut other = s.raw();
        let second = other.call(&["EVAL", "return 1", "0"]).unwrap();
        assert!(matches!(&second, Frame::Error(e) if e.starts_with(b"BUSY")), "{second:?}");
        ok(&mut admin, &[kill, "KILL"]);
        let reply = runner.read_frame().unwrap();
        assert!(
            matches!(&reply, Frame::Error(e) if String::from_utf8_lossy(e).contains("killed by user")),
            "{reply:?}"
        );
        assert_eq!(admin.call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));
    }
}

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION (Redis's test knob, which its
/// corrupt-dump unit needs): RESTORE takes a payload whatever its CRC
/// says, and the decoder alone judges the body. In a process of its own:
/// the knob is process-wide.
#[test]
fn skipping_checksum_validation_leaves_restore_to_the_decoder() {
    let (_proc, port, mut log) = crate::start_binary(&["--port", "0", "--save", ""]);
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    let mut c = larder_testkit::RawConn::connect(([127, 0, 0, 1], port).into()).unwrap();
    ok(&mut c, &["RPUSH", "l", "a", "b"]);
    let Frame::Bulk(payload) = c.call(&["DUMP", "l"]).unwrap() else { panic!("DUMP") };
    let mut payload = payload.to_vec();
    let last = payload.len() - 1;
    payload[last] ^= 0xff;
    let restore = |c: &mut larder_testkit::RawConn, key: &str, body: &[u8]| {
        let args: [&[u8]; 4] = [b"RESTORE", key.as_bytes(), b"0", body];
        c.call(&args).unwrap()
    };
    let e = restore(&mut c, "m", &payload);
    assert!(matches!(&e, Frame::Error(t) if t.ends_with(b"checksum are wrong")), "{e:?}");
    ok(&mut c, &["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"]);
    assert_eq!(restore(&mut c, "m", &payload), Frame::ok());
    assert_eq!(c.call(&["LRANGE", "m", "0", "-1"]).unwrap(), Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b")]));
    // A body the decoder refuses is still refused.
    let mut broken = payload.clone();
    broken[1] = 0xff;
    let e = restore(&mut c, "n", &broken);
    assert!(matches!(&e, Frame::Error(_)), "{e:?}");
}

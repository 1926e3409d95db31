//! Connection commands through the redis crate and raw bytes: PING, ECHO,
//! HELLO, AUTH/requirepass, CLIENT, QUIT, maxclients and the idle timeout.

use crate::{cmd, info_field, wait_info_field};
use larder_protocol::{Frame, Proto};
use larder_server::Config;
use larder_testkit::{spawn_server, spawn_server_with};
use redis::{RedisResult, Value};
use std::time::Duration;

#[test]
fn ping_echo_in_both_protocols() {
    crate::each_proto(|_, con, _| {
        let p: String = cmd("PING").query(con).unwrap();
        assert_eq!(p, "PONG");
        let p: String = cmd("PING").arg("hi").query(con).unwrap();
        assert_eq!(p, "hi");
        let e: Vec<u8> = cmd("ECHO").arg(&b"a\r\nb"[..]).query(con).unwrap();
        assert_eq!(e, b"a\r\nb");
        let r: RedisResult<String> = cmd("PING").arg("a").arg("b").query(con);
        assert!(r.unwrap_err().to_string().contains("wrong number of arguments for 'ping' command"));
    });
}

#[test]
fn hello_switches_protocol_and_reports_server() {
    let s = spawn_server();
    let mut raw = s.raw();
    let reply = raw.call(&["HELLO", "3"]).unwrap();
    let Frame::Map(pairs) = reply else { panic!("HELLO 3 replies with a map: {reply:?}") };
    let get = |k: &str| pairs.iter().find(|(kk, _)| *kk == Frame::bulk(k)).map(|(_, v)| v.clone());
    assert_eq!(get("proto"), Some(Frame::Integer(3)));
    assert_eq!(get("server"), Some(Frame::bulk("redis")));
    assert_eq!(get("mode"), Some(Frame::bulk("standalone")));
    // Now in RESP3: a missing key is `_`.
    raw.send(&["GET", "missing"]).unwrap();
    assert_eq!(raw.read_frame().unwrap(), Frame::Null);
    let reply = raw.call(&["HELLO", "2"]).unwrap();
    assert!(matches!(reply, Frame::Array(_)), "RESP2 maps are flat arrays");
    assert_eq!(raw.call(&["HELLO", "4"]).unwrap(), Frame::error("NOPROTO unsupported protocol version"));
    assert_eq!(
        raw.call(&["HELLO", "x"]).unwrap(),
        Frame::error("ERR Protocol version is not an integer or out of range")
    );
    assert!(matches!(raw.call(&["HELLO", "3", "SETNAME", "me"]).unwrap(), Frame::Map(_)));
    assert_eq!(raw.call(&["CLIENT", "GETNAME"]).unwrap(), Frame::bulk("me"));
}

#[test]
fn requirepass_gates_commands_until_auth() {
    let config = Config { requirepass: "s3cret".into(), ..Config::default() };
    let s = spawn_server_with(config);
    let mut raw = s.raw();
    assert_eq!(raw.call(&["GET", "k"]).unwrap(), Frame::error("NOAUTH Authentication required."));
    assert_eq!(
        raw.call(&["AUTH", "wrong"]).unwrap(),
        Frame::error("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(raw.call(&["AUTH", "s3cret"]).unwrap(), Frame::ok());
    assert_eq!(raw.call(&["GET", "k"]).unwrap(), Frame::Null);
    // HELLO with AUTH authenticates a fresh connection in one step.
    let mut raw2 = s.raw();
    assert!(
        matches!(raw2.call(&["HELLO", "3"]).unwrap(), Frame::Error(e) if e.starts_with(b"NOAUTH HELLO must be called"))
    );
    assert!(matches!(raw2.call(&["HELLO", "3", "AUTH", "default", "s3cret"]).unwrap(), Frame::Map(_)));
    // The redis crate authenticates from the URL.
    let url = format!("redis://:s3cret@{}/", s.addr);
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let p: String = cmd("PING").query(&mut con).unwrap();
    assert_eq!(p, "PONG");
    // RESET drops authentication again.
    assert_eq!(raw.call(&["RESET"]).unwrap(), Frame::simple("RESET"));
    assert_eq!(raw.call(&["GET", "k"]).unwrap(), Frame::error("NOAUTH Authentication required."));
}

#[test]
fn auth_without_password_configured() {
    let s = spawn_server();
    let mut raw = s.raw();
    assert_eq!(
        raw.call(&["AUTH", "x"]).unwrap(),
        Frame::error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
    );
    assert_eq!(raw.call(&["AUTH", "default", "anything"]).unwrap(), Frame::ok());
}

#[test]
fn client_id_name_list_info_kill() {
    let s = spawn_server();
    let mut a = s.conn(Proto::Resp2);
    let mut b = s.conn(Proto::Resp3);
    let id_a: i64 = cmd("CLIENT").arg("ID").query(&mut a).unwrap();
    let id_b: i64 = cmd("CLIENT").arg("ID").query(&mut b).unwrap();
    assert_ne!(id_a, id_b);
    let _: () = cmd("CLIENT").arg("SETNAME").arg("alpha").query(&mut a).unwrap();
    let n: String = cmd("CLIENT").arg("GETNAME").query(&mut a).unwrap();
    assert_eq!(n, "alpha");
    let r: RedisResult<()> = cmd("CLIENT").arg("SETNAME").arg("has space").query(&mut a);
    assert!(r.unwrap_err().to_string().contains("Client names cannot contain spaces"));
    let _: () = cmd("CLIENT").arg("SETINFO").arg("LIB-NAME").arg("mylib").query(&mut a).unwrap();
    let list: String = cmd("CLIENT").arg("LIST").query(&mut b).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains(&format!("id={id_a} ")) && list.contains("name=alpha") && list.contains("lib-name=mylib"));
    assert!(list.contains("cmd=client|list"), "{list}");
    let info: String = cmd("CLIENT").arg("INFO").query(&mut a).unwrap();
    assert!(info.starts_with(&format!("id={id_a} ")) && info.contains("resp=2"));
    let info: Value = cmd("CLIENT").arg("INFO").query(&mut b).unwrap();
    assert!(matches!(info, Value::VerbatimString { .. }), "RESP3 CLIENT INFO is verbatim: {info:?}");
    let killed: i64 = cmd("CLIENT").arg("KILL").arg("ID").arg(id_a).query(&mut b).unwrap();
    assert_eq!(killed, 1);
    let r: RedisResult<String> = cmd("PING").query(&mut a);
    assert!(r.is_err(), "killed connection is closed");
    let r: RedisResult<()> = cmd("CLIENT").arg("KILL").arg("1.2.3.4:5").query(&mut b);
    assert!(r.unwrap_err().to_string().contains("No such client"));
    let _: () = cmd("CLIENT").arg("NO-EVICT").arg("on").query(&mut b).unwrap();
    let r: RedisResult<Value> = cmd("CLIENT").arg("BOGUS").query(&mut b);
    assert!(r.unwrap_err().to_string().contains("unknown subcommand 'BOGUS'. Try CLIENT HELP."));
}

/// CLIENT LIST shows each connection's own state as Redis does: the
/// query buffer while a command runs (`qbuf=26` is CLIENT INFO's own
/// 26 bytes, the Redis suite's expectation), subscriptions (flag P),
/// a transaction's queue (flag x), a monitor (flag O), and client
/// tracking (flags t and B, the redirect id).
#[test]
fn client_list_shows_subscriptions_transactions_monitors_and_the_query_buffer() {
    let s = spawn_server();
    let bulk = |f: Frame| match f {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    let mut a = s.raw();
    let own = bulk(a.call(&["CLIENT", "INFO"]).unwrap());
    assert!(own.contains(" flags=N ") && own.contains(" sub=0 psub=0 ssub=0 multi=-1 qbuf=26 "), "{own}");
    let id = |c: &mut larder_testkit::RawConn| match c.call(&["CLIENT", "ID"]).unwrap() {
        Frame::Integer(n) => n,
        other => panic!("{other:?}"),
    };
    let (mut sub, mut tx, mut mon) = (s.raw(), s.raw(), s.raw());
    let (sub_id, tx_id, mon_id) = (id(&mut sub), id(&mut tx), id(&mut mon));
    sub.send(&["SUBSCRIBE", "c1", "c2"]).unwrap();
    sub.send(&["PSUBSCRIBE", "p*"]).unwrap();
    for _ in 0..3 {
        sub.read_frame().unwrap();
    }
    assert_eq!(tx.call(&["MULTI"]).unwrap(), Frame::ok());
    assert_eq!(tx.call(&["SET", "k", "v"]).unwrap(), Frame::simple("QUEUED"));
    assert_eq!(mon.call(&["MONITOR"]).unwrap(), Frame::ok());
    let line_of = |a: &mut larder_testkit::RawConn, id: i64| {
        let list = bulk(a.call(&["CLIENT", "LIST"]).unwrap());
        list.lines().find(|l| l.starts_with(&format!("id={id} "))).unwrap().to_string()
    };
    let l = line_of(&mut a, sub_id);
    assert!(l.contains(" flags=P ") && l.contains(" sub=2 psub=1 ssub=0 multi=-1 qbuf=0 "), "{l}");
    let l = line_of(&mut a, tx_id);
    assert!(l.contains(" flags=x ") && l.contains(" multi=1 ") && l.contains(" cmd=set "), "{l}");
    let l = line_of(&mut a, mon_id);
    assert!(l.contains(" flags=O "), "{l}");
    let mut trk = s.raw();
    let trk_id = id(&mut trk);
    let sub_id_text = sub_id.to_string();
    let on = ["CLIENT", "TRACKING", "ON", "REDIRECT", &sub_id_text, "BCAST"];
    assert_eq!(trk.call(&on).unwrap(), Frame::ok());
    let l = line_of(&mut a, trk_id);
    assert!(l.contains(" flags=tB ") && l.contains(&format!(" redir={sub_id} ")), "{l}");
    assert_eq!(trk.call(&["CLIENT", "TRACKING", "OFF"]).unwrap(), Frame::ok());
    let l = line_of(&mut a, trk_id);
    assert!(l.contains(" flags=N ") && l.contains(" redir=-1 "), "{l}");
    assert!(matches!(tx.call(&["EXEC"]).unwrap(), Frame::Array(_)));
    sub.send(&["UNSUBSCRIBE"]).unwrap();
    sub.send(&["PUNSUBSCRIBE"]).unwrap();
    for _ in 0..3 {
        sub.read_frame().unwrap();
    }
    let l = line_of(&mut a, tx_id);
    assert!(l.contains(" flags=N ") && l.contains(" multi=-1 "), "{l}");
    let l = line_of(&mut a, sub_id);
    assert!(l.contains(" flags=N ") && l.contains(" sub=0 psub=0 ssub=0 "), "{l}");
}

/// RESET ends MONITOR, client tracking and CLIENT REPLY OFF, as Redis's
/// clearClientConnectionState does.
#[test]
fn reset_ends_monitor_tracking_and_reply_off() {
    let s = spawn_server();
    let mut m = s.raw();
    assert_eq!(m.call(&["CLIENT", "TRACKING", "ON"]).unwrap(), Frame::ok());
    assert_eq!(m.call(&["MONITOR"]).unwrap(), Frame::ok());
    assert_eq!(m.call(&["RESET"]).unwrap(), Frame::simple("RESET"));
    // No monitor line for another client's command, and replies again.
    s.raw().call(&["SET", "k", "v"]).unwrap();
    assert_eq!(m.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    let Frame::Array(info) = m.call(&["CLIENT", "TRACKINGINFO"]).unwrap() else { panic!() };
    assert_eq!(info[1], Frame::Array(vec![Frame::Bulk("off".into())]), "{info:?}");
    let Frame::Bulk(own) = m.call(&["CLIENT", "INFO"]).unwrap() else { panic!() };
    let own = String::from_utf8(own.to_vec()).unwrap();
    assert!(own.contains(" flags=N ") && own.contains(" redir=-1 "), "{own}");
    let mut r = s.raw();
    r.send(&["CLIENT", "REPLY", "OFF"]).unwrap();
    assert_eq!(r.call(&["RESET"]).unwrap(), Frame::simple("RESET"));
    assert_eq!(r.call(&["PING"]).unwrap(), Frame::simple("PONG"));
}

#[test]
fn quit_replies_then_closes() {
    let s = spawn_server();
    let mut raw = s.raw();
    raw.send(&["QUIT"]).unwrap();
    assert_eq!(raw.read_to_close().unwrap(), b"+OK\r\n");
}

#[test]
fn maxclients_refuses_extra_connections() {
    let config = Config { maxclients: 2, ..Config::default() };
    let s = spawn_server_with(config);
    let mut a = s.raw();
    let mut b = s.raw();
    assert_eq!(a.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    assert_eq!(b.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    let mut c = s.raw();
    assert_eq!(c.read_to_close().unwrap(), b"-ERR max number of clients reached\r\n");
}

#[test]
fn idle_timeout_closes_clients() {
    let config = Config { timeout: 1, ..Config::default() };
    let s = spawn_server_with(config);
    let mut raw = s.raw();
    assert_eq!(raw.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    // The server closes the socket by itself after about a second idle.
    let rest = raw.read_to_close().unwrap();
    assert!(rest.is_empty());
}

#[test]
fn monitor_streams_commands_as_redis_does() {
    let s = spawn_server();
    let mut m = s.raw();
    assert_eq!(m.call(&["MONITOR"]).unwrap(), Frame::Simple("OK".into()));
    let mut c = s.raw();
    let addr = {
        let Frame::Bulk(text) = c.call(&["CLIENT", "INFO"]).unwrap() else { panic!("CLIENT INFO") };
        let text = String::from_utf8_lossy(&text).into_owned();
        text.split(' ').find_map(|f| f.strip_prefix("addr=")).unwrap().to_string()
    };
    let next = |m: &mut larder_testkit::RawConn| match m.read_frame().unwrap() {
        Frame::Simple(line) => String::from_utf8_lossy(&line).into_owned(),
        other => panic!("a monitor line, got {other:?}"),
    };
    assert!(next(&mut m).ends_with(&format!("[0 {addr}] \"CLIENT\" \"INFO\"")));
    c.call(&["SET", "k", "a\"b\n"]).unwrap();
    let line = next(&mut m);
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert!(stamp.len() == 17 && stamp.as_bytes()[10] == b'.', "seconds.micros: {line}");
    assert_eq!(rest, format!("[0 {addr}] \"SET\" \"k\" \"a\\\"b\\n\""));
    // After it ran: SELECT shows the database it selected.
    c.call(&["SELECT", "2"]).unwrap();
    assert!(next(&mut m).ends_with(&format!("[2 {addr}] \"SELECT\" \"2\"")));
    // A script: the EVAL first, then what it runs, from `lua`.
    c.call(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "n"]).unwrap();
    assert!(next(&mut m).ends_with("\"EVAL\" \"return redis.call('incr', KEYS[1])\" \"1\" \"n\""));
    assert!(next(&mut m).ends_with("[2 lua] \"incr\" \"n\""));
    // MULTI, then what EXEC runs, then EXEC; nothing while queuing.
    for cmd in [&["MULTI"][..], &["SET", "a", "1"], &["EXEC"]] {
        c.call(cmd).unwrap();
    }
    for want in ["\"MULTI\"", "\"SET\" \"a\" \"1\"", "\"EXEC\""] {
        assert!(next(&mut m).ends_with(want));
    }
    // Passwords are hidden; administrative and refused commands not shown.
    c.call(&["AUTH", "nobody", "secret"]).unwrap();
    c.call(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    c.call(&["NOSUCHCOMMAND"]).unwrap();
    c.call(&["HELLO", "2", "AUTH", "default", "pw"]).unwrap();
    assert!(next(&mut m).ends_with("\"AUTH\" \"(redacted)\" \"(redacted)\""));
    assert!(next(&mut m).ends_with("\"HELLO\" \"2\" \"AUTH\" \"(redacted)\" \"(redacted)\""));
    // A blocked command shows once (when it first ran).
    c.call(&["SELECT", "0"]).unwrap();
    assert!(next(&mut m).ends_with("\"SELECT\" \"0\""));
    c.send(&["BLPOP", "q", "0"]).unwrap();
    let mut other = s.raw();
    larder_testkit::eventually(10, || {
        let list = format!("{:?}", other.call(&["CLIENT", "LIST"]).unwrap());
        list.contains("cmd=blpop").then_some(()).ok_or(format!("BLPOP never blocked: {list}"))
    });
    other.call(&["RPUSH", "q", "x"]).unwrap();
    c.read_frame().unwrap();
    // The CLIENT LISTs above, then the two (in either order).
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = next(&mut m);
        if !line.ends_with("\"CLIENT\" \"LIST\"") {
            seen.push(line);
        }
    }
    assert!(seen.iter().any(|l| l.ends_with("\"BLPOP\" \"q\" \"0\"")), "{seen:?}");
    assert!(seen.iter().any(|l| l.ends_with("\"RPUSH\" \"q\" \"x\"")), "{seen:?}");
    other.call(&["PING"]).unwrap();
    assert!(next(&mut m).ends_with("\"PING\""), "BLPOP was shown once");
    // Not from a transaction (redis-server 7.0.15's reply).
    let mut t = s.raw();
    t.call(&["MULTI"]).unwrap();
    assert_eq!(t.call(&["MONITOR"]).unwrap(), Frame::Simple("QUEUED".into()));
    assert_eq!(
        t.call(&["EXEC"]).unwrap(),
        Frame::Array(vec![Frame::Error("ERR MONITOR isn't allowed for DENY BLOCKING client".into())])
    );
}

#[test]
fn client_kill_user_names_a_user_that_exists() {
    let s = spawn_server();
    let mut c = s.raw();
    assert_eq!(
        c.call(&["CLIENT", "KILL", "USER", "wrong_user"]).unwrap(),
        Frame::Error("ERR No such user 'wrong_user'".into())
    );
    assert_eq!(c.call(&["CLIENT", "KILL", "USER", "default", "SKIPME", "yes"]).unwrap(), Frame::Integer(0));
}

/// The kernel's timer on the server's end of a connection, from
/// /proc/net/tcp: "02" while a keepalive timer runs on an idle one.
#[cfg(target_os = "linux")]
fn server_side_timer(server: std::net::SocketAddr, client: std::net::SocketAddr) -> String {
    let hex = |a: std::net::SocketAddr| match a {
        std::net::SocketAddr::V4(v4) => format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port()),
        other => panic!("{other}"),
    };
    let (local, remote) = (hex(server), hex(client));
    // "01" (retransmit) runs until the client's ACK of the last reply,
    // which a delayed ACK holds back for up to 40 ms: wait it out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
        let timer = table
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 5 && f[1] == local && f[2] == remote)
            .map(|f| f[5].split(':').next().unwrap().to_string())
            .expect("the server's socket for this connection");
        if timer != "01" || std::time::Instant::now() > deadline {
            return timer;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// tcp-keepalive turns TCP keepalive on for each accepted connection (the
/// kernel then runs its keepalive timer on the idle socket); 0 leaves it
/// off, as in Redis.
#[cfg(target_os = "linux")]
#[test]
fn tcp_keepalive_is_set_on_accepted_connections() {
    let s = larder_testkit::spawn_server();
    let mut on = s.raw();
    on.call(&["PING"]).unwrap();
    let client = on.local_addr();
    assert_eq!(server_side_timer(s.addr, client), "02", "keepalive timer on the idle connection");
    on.call(&["CONFIG", "SET", "tcp-keepalive", "0"]).unwrap();
    let mut off = s.raw();
    off.call(&["PING"]).unwrap();
    assert_eq!(server_side_timer(s.addr, off.local_addr()), "00", "no timer without keepalive");
}

/// CLIENT PAUSE WRITE holds writes, may-replicate commands, scripts that
/// do not declare no-writes and EXECs queuing any of them, in arrival
/// order, until CLIENT UNPAUSE; reads, no-writes scripts and read-only
/// EXECs run meanwhile. Nothing expires while it lasts (a key past its
/// deadline reads as gone but stays), as in Redis's unit/pause.
#[test]
fn client_pause_write_holds_writes_until_unpause_and_keeps_keys() {
    let s = spawn_server();
    let mut c = s.raw();
    c.call(&["CONFIG", "SET", "hz", "100"]).unwrap();
    c.call(&["SET", "k", "0"]).unwrap();
    c.call(&["PFADD", "hll", "a"]).unwrap();
    c.call(&["SET", "t", "x", "PX", "100"]).unwrap();
    let mut tx = s.raw();
    tx.call(&["MULTI"]).unwrap();
    assert_eq!(tx.call(&["INCR", "n"]).unwrap(), Frame::Simple("QUEUED".into()));
    assert_eq!(c.call(&["CLIENT", "PAUSE", "60000", "WRITE"]).unwrap(), Frame::ok());
    let held: Vec<(&[&str], Frame)> = vec![
        (&["SET", "k", "5"], Frame::ok()),
        (&["PFCOUNT", "hll"], Frame::Integer(1)),
        (&["PUBLISH", "ch", "m"], Frame::Integer(0)),
        (&["EVAL", "return redis.call('incr', 'n')", "0"], Frame::Null),
    ];
    let mut conns = Vec::new();
    for (cmd, _) in &held {
        let mut w = s.raw();
        w.send(cmd).unwrap();
        conns.push(w);
        // One at a time, so the order they wait in is known.
        wait_info_field(&mut c, "clients", "blocked_clients", &conns.len().to_string());
    }
    tx.send(&["EXEC"]).unwrap();
    wait_info_field(&mut c, "clients", "blocked_clients", &(held.len() + 1).to_string());
    // Reads run; so do no-writes scripts and a read-only transaction.
    assert_eq!(c.call(&["GET", "k"]).unwrap(), Frame::Bulk("0".into()));
    let ro = "#!lua flags=no-writes\nreturn redis.call('get', 'k')";
    assert_eq!(c.call(&["EVAL", ro, "0"]).unwrap(), Frame::Bulk("0".into()));
    c.call(&["MULTI"]).unwrap();
    c.call(&["GET", "k"]).unwrap();
    assert_eq!(c.call(&["EXEC"]).unwrap(), Frame::Array(vec![Frame::Bulk("0".into())]));
    // A wrong command is refused at once, not held.
    assert!(matches!(c.call(&["SET", "k"]).unwrap(), Frame::Error(_)));
    // The key past its deadline reads as gone but is kept.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.call(&["GET", "t"]).unwrap(), Frame::Null);
    assert_eq!(c.call(&["DBSIZE"]).unwrap(), Frame::Integer(3));
    assert_eq!(info_field(&mut c, "stats", "expired_keys"), "0");

    assert_eq!(c.call(&["CLIENT", "UNPAUSE"]).unwrap(), Frame::ok());
    // The two INCRs of n (the script's and the transaction's) may run in
    // either order once released (the test server has two workers).
    let mut incrs = Vec::new();
    for (mut w, (cmd, want)) in conns.into_iter().zip(held) {
        match w.read_frame().unwrap() {
            Frame::Integer(i) if want == Frame::Null => incrs.push(i),
            got => assert_eq!(got, want, "{cmd:?}"),
        }
    }
    let Frame::Array(exec) = tx.read_frame().unwrap() else { panic!("EXEC's reply") };
    let [Frame::Integer(i)] = exec[..] else { panic!("{exec:?}") };
    incrs.push(i);
    incrs.sort();
    assert_eq!(incrs, [1, 2]);
    assert_eq!(c.call(&["GET", "k"]).unwrap(), Frame::Bulk("5".into()));
    assert_eq!(c.call(&["GET", "t"]).unwrap(), Frame::Null);
    assert_eq!(info_field(&mut c, "stats", "expired_keys"), "1");
    assert_eq!(c.call(&["DBSIZE"]).unwrap(), Frame::Integer(3));
}

/// CLIENT PAUSE (ALL) holds every command, CLIENT UNPAUSE too, until its
/// timeout; replies and errors are Redis's.
#[test]
fn client_pause_all_holds_everything_until_its_timeout() {
    let s = spawn_server();
    let mut c = s.raw();
    let err = |m: &'static str| Frame::Error(m.into());
    for (cmd, want) in [
        (&["CLIENT", "PAUSE", "-1"][..], err("ERR timeout is negative")),
        (&["CLIENT", "PAUSE", "x"], err("ERR timeout is not an integer or out of range")),
        (&["CLIENT", "PAUSE", "10", "x"], err("ERR CLIENT PAUSE mode must be WRITE or ALL")),
        (
            &["CLIENT", "PAUSE", "10", "all", "x"],
            err("ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP."),
        ),
        (&["CLIENT", "UNPAUSE", "x"], err("ERR wrong number of arguments for 'client|unpause' command")),
    ] {
        assert_eq!(c.call(cmd).unwrap(), want, "{cmd:?}");
    }
    let started = std::time::Instant::now();
    assert_eq!(c.call(&["CLIENT", "PAUSE", "800"]).unwrap(), Frame::ok());
    let mut other = s.raw();
    assert_eq!(other.call(&["CLIENT", "UNPAUSE"]).unwrap(), Frame::ok());
    assert_eq!(c.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(700), "the pause lasted only {waited:?}");
}

/// maxmemory-clients: once the clients it may disconnect hold more than
/// the limit, the largest go (INFO evicted_clients), here one with a large
/// unfinished command in its query buffer; a NO-EVICT client neither goes
/// nor counts. CLIENT LIST shows each client's tot-mem. The setting's
/// forms and errors are Redis's.
#[test]
fn maxmemory_clients_disconnects_the_largest_clients() {
    let s = spawn_server();
    let mut c = s.raw();
    let err = |m: &str| {
        Frame::Error(format!("ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - {m}").into())
    };
    for (value, want) in [
        ("101%", err("percentage argument must be less or equal to 100")),
        ("abc", err("argument must be a memory or percent value")),
        ("-1", err("argument must be a memory or percent value")),
        ("10%", Frame::ok()),
    ] {
        assert_eq!(c.call(&["CONFIG", "SET", "maxmemory-clients", value]).unwrap(), want, "{value}");
    }
    assert_eq!(
        c.call(&["CONFIG", "GET", "maxmemory-clients"]).unwrap(),
        Frame::Array(vec![Frame::bulk("maxmemory-clients"), Frame::bulk("10%")])
    );
    c.call(&["CONFIG", "SET", "maxmemory-clients", "1mb"]).unwrap();
    assert_eq!(c.call(&["CLIENT", "NO-EVICT", "on"]).unwrap(), Frame::ok());
    let Frame::Bulk(list) = c.call(&["CLIENT", "LIST"]).unwrap() else { panic!() };
    let tot_mem: u64 = String::from_utf8_lossy(&list)
        .split_whitespace()
        .find_map(|f| f.strip_prefix("tot-mem=").map(|v| v.parse().unwrap()))
        .unwrap();
    assert!(tot_mem > 16 * 1024, "an idle client's buffers: {list:?}");
    let mut small = s.raw();
    assert_eq!(small.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    // 2 MB of a 3 MB argument: the command never completes.
    let mut big = s.raw();
    big.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n").unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..32 {
        if big.send_raw(&chunk).is_err() {
            break;
        }
    }
    let _ = big.read_to_close();
    assert_eq!(info_field(&mut c, "stats", "evicted_clients"), "1");
    // The others stay: the small one is not the largest, and this one is
    // exempt.
    assert_eq!(small.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    assert_eq!(c.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    c.call(&["CONFIG", "SET", "maxmemory-clients", "0"]).unwrap();
}

/// A connection idle two seconds gives its buffers back (CLIENT LIST
/// tot-mem drops from about 33 KB to its fixed part), as Redis frees an
/// idle client's query buffer, and serves small and large requests as
/// before once it is busy again.
#[test]
fn idle_connections_give_their_buffers_back() {
    let s = spawn_server();
    let mut c = named(&s, "idler");
    let mut watcher = s.raw();
    let field = |w: &mut larder_testkit::RawConn, name: &str| -> u64 {
        let Frame::Bulk(list) = w.call(&["CLIENT", "LIST"]).unwrap() else { panic!() };
        let list = String::from_utf8_lossy(&list).into_owned();
        let line = list.lines().find(|l| l.contains("name=idler")).expect("the idle client").to_string();
        let prefix = format!("{name}=");
        line.split_whitespace().find_map(|f| f.strip_prefix(prefix.as_str()).map(|v| v.parse().unwrap())).unwrap()
    };
    let tot_mem = |w: &mut larder_testkit::RawConn| field(w, "tot-mem");
    // The query buffer's size, as Redis's querybuf test reads it.
    let query_buffer = |w: &mut larder_testkit::RawConn| field(w, "qbuf") + field(w, "qbuf-free");
    // A connection publishes its footprint after it has written its
    // replies, so the reply to SETNAME can arrive first (a loaded CI
    // machine read tot-mem 0 here).
    let busy = larder_testkit::eventually(10, || match (tot_mem(&mut watcher), query_buffer(&mut watcher)) {
        (busy, query) if busy > 32 * 1024 && (8 * 1024..32 * 1024).contains(&query) => Ok(busy),
        (busy, query) => Err(format!("two 16 KB buffers: {busy}; a query buffer of about 16 KB: {query}")),
    });
    let idle = larder_testkit::eventually(20, || {
        let m = tot_mem(&mut watcher);
        if m < 8 * 1024 {
            Ok(m)
        } else {
            Err(format!("the idle client kept {m} bytes"))
        }
    });
    assert!(idle < busy / 4, "{idle} of {busy}");
    assert_eq!(query_buffer(&mut watcher), 0);
    assert_eq!(c.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    let big = "v".repeat(300_000);
    assert_eq!(c.call(&["SET", "big", &big]).unwrap(), Frame::ok());
    assert_eq!(c.call(&["GET", "big"]).unwrap(), Frame::Bulk(big.into()));
}

/// One field of the CLIENT LIST line of the client named `name`, as seen
/// from `watcher`.
fn list_field(watcher: &mut larder_testkit::RawConn, name: &str, field: &str) -> String {
    let list = match watcher.call(&["CLIENT", "LIST"]).unwrap() {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    let line = list.lines().find(|l| l.contains(&format!(" name={name} "))).expect("the client").to_string();
    let prefix = format!("{field}=");
    line.split_whitespace().find_map(|f| f.strip_prefix(prefix.as_str())).unwrap().to_string()
}

fn list_number(watcher: &mut larder_testkit::RawConn, name: &str, field: &str) -> u64 {
    list_field(watcher, name, field).parse().unwrap()
}

/// A new connection to `s`, named `name` for CLIENT LIST.
fn named(s: &larder_testkit::TestServer, name: &str) -> larder_testkit::RawConn {
    let mut c = s.raw();
    assert_eq!(c.call(&["CLIENT", "SETNAME", name]).unwrap(), Frame::ok());
    c
}

/// CLIENT LIST's memory fields are measured, not zeros: `argv-mem` is
/// the running command's arguments (and a blocked command's), `multi-mem`
/// a transaction's queue as Redis counts it (the arguments and a pointer
/// each: 62 for the queue below, redis-server's figure), and a subscriber
/// that stops reading shows what waits for it (`obl`, `oll`, `omem`,
/// events `rw`) and counts in INFO's `client_recent_max_output_buffer`.
#[test]
fn client_list_shows_arguments_queues_and_waiting_output() {
    let s = spawn_server();
    let mut w = s.raw();
    let own = match w.call(&["CLIENT", "INFO"]).unwrap() {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(own.contains(" argv-mem=10 multi-mem=0 "), "CLIENT INFO is 10 bytes of arguments: {own}");
    let mut tx = named(&s, "tx");
    assert_eq!(tx.call(&["MULTI"]).unwrap(), Frame::ok());
    assert_eq!(tx.call(&["SET", "a", "bbbbbbbbbbbbbb"]).unwrap(), Frame::simple("QUEUED"));
    assert_eq!(tx.call(&["GET", "a"]).unwrap(), Frame::simple("QUEUED"));
    assert_eq!(list_number(&mut w, "tx", "multi-mem"), 62);
    assert!(matches!(tx.call(&["EXEC"]).unwrap(), Frame::Array(_)));
    assert_eq!(list_number(&mut w, "tx", "multi-mem"), 0);
    assert_eq!(tx.call(&["MULTI"]).unwrap(), Frame::ok());
    assert_eq!(tx.call(&["PING"]).unwrap(), Frame::simple("QUEUED"));
    assert_eq!(list_number(&mut w, "tx", "multi-mem"), 12);
    assert_eq!(tx.call(&["DISCARD"]).unwrap(), Frame::ok());
    assert_eq!(list_number(&mut w, "tx", "multi-mem"), 0);

    let mut blocked = named(&s, "blocked");
    blocked.send(&["BLPOP", "queue", "0"]).unwrap();
    larder_testkit::eventually(10, || match list_number(&mut w, "blocked", "argv-mem") {
        11 => Ok(()),
        n => Err(format!("BLPOP queue 0 is 11 bytes of arguments, not {n}")),
    });
    w.call(&["RPUSH", "queue", "x"]).unwrap();
    blocked.read_frame().unwrap();
    assert_eq!(list_number(&mut w, "blocked", "argv-mem"), 0);

    let mut sub = named(&s, "sub");
    sub.send(&["SUBSCRIBE", "ch"]).unwrap();
    sub.read_frame().unwrap();
    assert_eq!(list_field(&mut w, "sub", "events"), "r");
    assert_eq!(list_number(&mut w, "sub", "omem"), 0);
    // 20 MB to a client that reads none of it: more than the sockets
    // hold, less than the pub/sub hard limit (32 MB).
    let message = "m".repeat(512 * 1024);
    for _ in 0..40 {
        w.call(&["PUBLISH", "ch", &message]).unwrap();
    }
    let omem = larder_testkit::eventually(10, || {
        let (obl, oll, omem) =
            (list_number(&mut w, "sub", "obl"), list_number(&mut w, "sub", "oll"), list_number(&mut w, "sub", "omem"));
        let events = list_field(&mut w, "sub", "events");
        if obl > 0 && oll == 1 && omem > 1024 * 1024 && events == "rw" {
            Ok(omem)
        } else {
            Err(format!("obl={obl} oll={oll} omem={omem} events={events}"))
        }
    });
    larder_testkit::eventually(10, || {
        let recent: u64 = info_field(&mut w, "clients", "client_recent_max_output_buffer").parse().unwrap();
        (recent > 1024 * 1024).then_some(()).ok_or(format!("{recent}, with {omem} queued"))
    });
}

/// The query buffer is measured whole (`qbuf` + `qbuf-free` is its
/// allocation: 16 KB for a connection that sent small commands, as the
/// Redis querybuf suite expects), and one a large request grew is trimmed
/// back, without an idle pause, once the requests after it are small
/// (Redis's `clientsCronResizeQueryBuffer`); INFO keeps the largest
/// input buffer of the last seconds.
#[test]
fn a_query_buffer_grown_by_one_large_request_is_trimmed_while_busy() {
    let s = spawn_server();
    let mut w = s.raw();
    let mut q = named(&s, "q");
    let size = |w: &mut larder_testkit::RawConn| list_number(w, "q", "qbuf") + list_number(w, "q", "qbuf-free");
    let small = larder_testkit::eventually(10, || match size(&mut w) {
        n if (16 * 1024..32 * 1024).contains(&n) => Ok(n),
        n => Err(format!("a 16 KB query buffer, not {n}")),
    });
    // The cron stays out of it until the large buffer has been seen.
    assert_eq!(w.call(&["DEBUG", "PAUSE-CRON", "1"]).unwrap(), Frame::ok());
    assert_eq!(q.call(&["SET", "x", &"A".repeat(400_000)]).unwrap(), Frame::ok());
    let big = larder_testkit::eventually(10, || match size(&mut w) {
        n if n > 400_000 => Ok(n),
        n => Err(format!("a query buffer that held 400 KB, not {n}")),
    });
    assert_eq!(w.call(&["DEBUG", "PAUSE-CRON", "0"]).unwrap(), Frame::ok());
    larder_testkit::eventually(10, || {
        let recent: u64 = info_field(&mut w, "clients", "client_recent_max_input_buffer").parse().unwrap();
        (recent >= 400_000).then_some(()).ok_or(format!("client_recent_max_input_buffer {recent}"))
    });
    let trimmed = larder_testkit::eventually(10, || {
        assert_eq!(q.call(&["SET", "x", "small"]).unwrap(), Frame::ok());
        std::thread::sleep(Duration::from_millis(10));
        match size(&mut w) {
            n if n < big => Ok(n),
            n => Err(format!("still {n} after small requests only")),
        }
    });
    assert!(trimmed > 0 && trimmed <= 32 * 1024, "trimmed to {trimmed} (it held {small} at first)");
    assert_eq!(q.call(&["GET", "x"]).unwrap(), Frame::Bulk("small".into()));
}

/// The reply buffer is sized by use, as Redis 7's is: `rbs` starts at
/// 16 KB with `rbp` at the same (a new client is never trimmed before its
/// first peak reset); after a reset (DEBUG REPLYBUFFER PEAK-RESET-TIME) a
/// client that got only small replies is trimmed to 1 KB; a large reply
/// grows it again (one large value alone does not: it is sent from where
/// it is stored); with RESIZING 0 nothing is trimmed. INFO counts the
/// shrinks and expands.
#[test]
fn reply_buffers_are_sized_by_their_recent_peak() {
    let s = spawn_server();
    let mut w = s.raw();
    let mut c = named(&s, "rb");
    larder_testkit::eventually(10, || match (list_number(&mut w, "rb", "rbs"), list_number(&mut w, "rb", "rbp")) {
        (16384, 16384) => Ok(()),
        (rbs, rbp) => Err(format!("rbs={rbs} rbp={rbp}")),
    });
    assert_eq!(w.call(&["DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "100"]).unwrap(), Frame::ok());
    larder_testkit::eventually(10, || match list_number(&mut w, "rb", "rbs") {
        1024 => Ok(()),
        n => Err(format!("an idle client's reply buffer is {n}")),
    });
    let shrinks: u64 = info_field(&mut w, "stats", "reply_buffer_shrinks").parse().unwrap();
    assert!(shrinks >= 1);
    let expands: u64 = info_field(&mut w, "stats", "reply_buffer_expands").parse().unwrap();
    let big = "x".repeat(32 * 1024);
    w.call(&["SET", "big", &big]).unwrap();
    assert_eq!(w.call(&["DEBUG", "REPLYBUFFER", "RESIZING", "0"]).unwrap(), Frame::ok());
    // A value this large is sent from where it is stored (conn/reply.rs):
    // only its header goes through the buffer.
    assert_eq!(c.call(&["GET", "big"]).unwrap(), Frame::Bulk(big.clone().into()));
    assert_eq!(list_number(&mut w, "rb", "rbs"), 1024);
    // As a hash's field it is copied, and the buffer grows to take it.
    w.call(&["HSET", "h", "f", &big]).unwrap();
    assert!(matches!(c.call(&["HGETALL", "h"]).unwrap(), Frame::Array(v) if v.len() == 2));
    let grown = list_number(&mut w, "rb", "rbs");
    assert!(grown > 32 * 1024, "rbs {grown} after a 32 KB reply");
    let after: u64 = info_field(&mut w, "stats", "reply_buffer_expands").parse().unwrap();
    assert!(after > expands);
    // Several peak resets later, with resizing off, it is as it was.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(list_number(&mut w, "rb", "rbp"), 0);
    assert_eq!(list_number(&mut w, "rb", "rbs"), grown);
    assert_eq!(w.call(&["DEBUG", "REPLYBUFFER", "RESIZING", "1"]).unwrap(), Frame::ok());
    larder_testkit::eventually(10, || match list_number(&mut w, "rb", "rbs") {
        1024 => Ok(()),
        n => Err(format!("with resizing on again, rbs is {n}")),
    });
    for bad in [&["DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME"][..], &["DEBUG", "REPLYBUFFER", "SIZE", "1"]] {
        match w.call(bad).unwrap() {
            Frame::Error(e) => {
                assert_eq!(e, "ERR unknown subcommand or wrong number of arguments for 'REPLYBUFFER'. Try DEBUG HELP.")
            }
            other => panic!("{other:?}"),
        }
    }
}

/// `unixsocket`: the redis crate connects over the socket in RESP2 and
/// RESP3; the socket has `unixsocketperm`'s mode; its clients show as
/// Redis shows them (CLIENT INFO, MONITOR); shutdown removes the file.
#[cfg(unix)]
#[test]
fn clients_connect_over_the_unix_socket() {
    use std::io::{BufRead, Write};
    use std::os::unix::fs::PermissionsExt;
    let dir = larder_testkit::private_dir("unixsocket");
    let path = dir.join("larder.sock");
    let shown = path.to_str().unwrap().to_string();
    // A file left at the path (a crashed run's socket) is replaced.
    std::fs::write(&path, b"stale").unwrap();
    let mut config = Config::default();
    config.set("unixsocket", &shown, true).unwrap();
    config.set("unixsocketperm", "700", true).unwrap();
    let s = spawn_server_with(config);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
    for proto in ["resp2", "resp3"] {
        let client = redis::Client::open(format!("unix://{shown}?protocol={proto}")).unwrap();
        let mut con = client.get_connection().unwrap();
        let _: () = cmd("SET").arg("k").arg(proto).query(&mut con).unwrap();
        let got: String = cmd("GET").arg("k").query(&mut con).unwrap();
        assert_eq!(got, proto);
        let info: String = cmd("CLIENT").arg("INFO").query(&mut con).unwrap();
        assert!(info.contains(&format!(" addr={shown}:0 laddr={shown}:0 ")), "{info}");
        assert!(info.contains(" flags=U "), "{info}");
        let resp: i64 = if proto == "resp3" { 3 } else { 2 };
        assert!(info.contains(&format!(" resp={resp} ")), "{info}");
    }
    // MONITOR names a socket client `unix:<path>`.
    let mut monitor = std::os::unix::net::UnixStream::connect(&path).unwrap();
    monitor.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    monitor.write_all(b"MONITOR\r\n").unwrap();
    let mut lines = std::io::BufReader::new(monitor.try_clone().unwrap());
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    let mut con = redis::Client::open(format!("unix://{shown}")).unwrap().get_connection().unwrap();
    let _: () = cmd("SET").arg("seen").arg("1").query(&mut con).unwrap();
    // (The redis crate's CLIENT SETINFO calls come first.)
    let want = format!(" [0 unix:{shown}] \"SET\" \"seen\" \"1\"");
    let mut fed = Vec::new();
    while fed.len() < 4 && !line.contains("\"SET\"") {
        line.clear();
        lines.read_line(&mut line).unwrap();
        fed.push(line.clone());
    }
    assert!(fed.last().unwrap().contains(&want), "{fed:?}");
    // A TCP client still works beside it, and is not flagged U.
    let mut tcp = s.conn(Proto::Resp2);
    let info: String = cmd("CLIENT").arg("INFO").query(&mut tcp).unwrap();
    assert!(info.contains(" flags=N "), "{info}");
    let got: String = cmd("GET").arg("seen").query(&mut tcp).unwrap();
    assert_eq!(got, "1");
    drop((con, monitor, lines));
    drop(s);
    assert!(!path.exists(), "shutdown removes the socket file");
}

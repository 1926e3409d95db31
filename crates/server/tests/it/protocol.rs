//! Raw bytes: pipelining, inline commands, and malformed frames.

use larder_protocol::Frame;
use larder_server::Config;
use larder_testkit::{spawn_server, spawn_server_with};

#[test]
fn pipelined_commands_all_run_in_order() {
    let s = spawn_server();
    let mut raw = s.raw();
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{}\r\n", i.to_string().len(), i).as_bytes(),
        );
        batch.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n");
    }
    raw.send_raw(&batch).unwrap();
    for i in 0..1000 {
        assert_eq!(raw.read_frame().unwrap(), Frame::ok());
        assert_eq!(raw.read_frame().unwrap(), Frame::Integer(i + 1));
    }
}

#[test]
fn command_split_across_writes_is_reassembled() {
    let s = spawn_server();
    let mut raw = s.raw();
    let cmd = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    for b in cmd.chunks(3) {
        raw.send_raw(b).unwrap();
    }
    assert_eq!(raw.read_frame().unwrap(), Frame::ok());
    assert_eq!(raw.call(&["GET", "key"]).unwrap(), Frame::bulk("value"));
}

#[test]
fn inline_commands_work() {
    let s = spawn_server();
    let mut raw = s.raw();
    raw.send_raw(b"SET greeting \"hello world\"\r\nGET greeting\r\n\r\nPING\n").unwrap();
    assert_eq!(raw.read_frame().unwrap(), Frame::ok());
    assert_eq!(raw.read_frame().unwrap(), Frame::bulk("hello world"));
    assert_eq!(raw.read_frame().unwrap(), Frame::simple("PONG"));
}

fn assert_protocol_error(input: &[u8], expected: &str) {
    let s = spawn_server();
    let mut raw = s.raw();
    raw.send_raw(input).unwrap();
    let got = raw.read_to_close().unwrap();
    assert_eq!(String::from_utf8_lossy(&got), format!("-ERR Protocol error: {expected}\r\n"), "input {input:?}");
}

#[test]
fn malformed_frames_get_redis_errors_and_close() {
    assert_protocol_error(b"*abc\r\n", "invalid multibulk length");
    assert_protocol_error(b"*1\r\n+PING\r\n", "expected '$', got '+'");
    assert_protocol_error(b"*1\r\n$-3\r\n", "invalid bulk length");
    assert_protocol_error(b"*1\r\n$abc\r\n", "invalid bulk length");
    assert_protocol_error(b"SET \"unterminated\r\n", "unbalanced quotes in request");
    let mut big = b"*1".to_vec();
    big.extend(std::iter::repeat_n(b'1', 70_000));
    assert_protocol_error(&big, "too big mbulk count string");
    assert_protocol_error(&vec![b'x'; 70_000], "too big inline request");
}

#[test]
fn replies_before_a_protocol_error_are_still_sent() {
    let s = spawn_server();
    let mut raw = s.raw();
    raw.send_raw(b"PING\r\n*1\r\n+bad\r\n").unwrap();
    let got = raw.read_to_close().unwrap();
    assert_eq!(got, b"+PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n");
}

#[test]
fn proto_max_bulk_len_is_enforced() {
    let config = Config { proto_max_bulk_len: 1024, ..Config::default() };
    let s = spawn_server_with(config);
    let mut raw = s.raw();
    raw.send_raw(b"*2\r\n$4\r\nECHO\r\n$2000\r\n").unwrap();
    let got = raw.read_to_close().unwrap();
    assert_eq!(got, b"-ERR Protocol error: invalid bulk length\r\n");
}

#[test]
fn unauthenticated_clients_get_small_limits() {
    let config = Config { requirepass: "pw".into(), ..Config::default() };
    let s = spawn_server_with(config);
    let mut raw = s.raw();
    raw.send_raw(b"*20\r\n").unwrap();
    let got = raw.read_to_close().unwrap();
    assert_eq!(got, b"-ERR Protocol error: unauthenticated multibulk length\r\n");
}

#[test]
fn bad_commands_keep_the_connection_open() {
    let s = spawn_server();
    let mut raw = s.raw();
    assert_eq!(
        raw.call(&["NOSUCH", "a", "b"]).unwrap(),
        Frame::error("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(raw.call(&["GET"]).unwrap(), Frame::error("ERR wrong number of arguments for 'get' command"));
    assert_eq!(
        raw.call(&["SET", "k", "v", "EX", "x"]).unwrap(),
        Frame::error("ERR value is not an integer or out of range")
    );
    assert_eq!(raw.call(&["PING"]).unwrap(), Frame::simple("PONG"));
    // Error text never spans lines, whatever the client sent.
    let reply = raw.call(&["NO\r\nSUCH"]).unwrap();
    assert_eq!(reply, Frame::error("ERR unknown command 'NO  SUCH', with args beginning with: "));
}

#[test]
fn random_garbage_never_kills_the_server() {
    use rand::{Rng, SeedableRng};
    let s = spawn_server();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let len = rng.random_range(1..200);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Bias towards RESP-looking input.
        if rng.random_bool(0.5) {
            junk.insert(0, b'*');
        }
        let mut raw = s.raw();
        let _ = raw.send_raw(&junk);
        let _ = raw.send_raw(b"\r\n");
        drop(raw);
    }
    let mut raw = s.raw();
    assert_eq!(raw.call(&["PING"]).unwrap(), Frame::simple("PONG"));
}

//! Client-side caching with several connections: a tracking reader, a
//! writer, and (for REDIRECT) an invalidation listener. Every invalidation
//! is queued before the writer's reply leaves, so a test that has its
//! write acknowledged can read the push at once; "nothing arrived" is
//! shown by a PING whose PONG is the very next frame.

use larder_protocol::Frame;
use larder_testkit::{spawn_server, RawConn, TestServer};

fn bulk(s: &str) -> Frame {
    Frame::bulk(s)
}

fn resp3(s: &TestServer) -> RawConn {
    let mut c = s.raw();
    assert!(matches!(c.call(&["HELLO", "3"]).unwrap(), Frame::Map(_)));
    c
}

fn ok(c: &mut RawConn, args: &[&str]) {
    assert_eq!(c.call(args).unwrap(), Frame::ok(), "{args:?}");
}

fn client_id(c: &mut RawConn) -> String {
    match c.call(&["CLIENT", "ID"]).unwrap() {
        Frame::Integer(n) => n.to_string(),
        other => panic!("{other:?}"),
    }
}

fn invalidate(keys: &[&str]) -> Frame {
    Frame::Push(vec![bulk("invalidate"), Frame::Array(keys.iter().map(|k| bulk(k)).collect())])
}

/// Asserts nothing is queued for `c`: its PING is answered first.
fn quiet(c: &mut RawConn) {
    assert_eq!(c.call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));
}

#[test]
fn resp3_reader_is_told_once_when_a_key_it_read_changes() {
    let s = spawn_server();
    let (mut reader, mut writer) = (resp3(&s), s.raw());
    ok(&mut reader, &["CLIENT", "TRACKING", "ON"]);
    ok(&mut writer, &["SET", "k", "1"]);
    quiet(&mut reader);
    assert_eq!(reader.call(&["GET", "k"]).unwrap(), bulk("1"));
    assert_eq!(reader.call(&["MGET", "a", "b"]).unwrap(), Frame::Array(vec![Frame::Null, Frame::Null]));
    ok(&mut writer, &["SET", "k", "2"]);
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["k"]));
    // One-shot: until the reader reads k again, more writes say nothing.
    ok(&mut writer, &["SET", "k", "3"]);
    quiet(&mut reader);
    // Keys read while missing are tracked too, and every write kind counts.
    assert_eq!(writer.call(&["LPUSH", "a", "x"]).unwrap(), Frame::Integer(1));
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["a"]));
    ok(&mut writer, &["RENAME", "a", "b"]);
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["b"]));
    quiet(&mut reader);
    // The reader's own writes invalidate too (no NOLOOP), after the reply
    // to the write, as Redis sends them.
    assert_eq!(reader.call(&["GET", "k"]).unwrap(), bulk("3"));
    assert_eq!(reader.call(&["SET", "k", "4"]).unwrap(), Frame::ok());
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["k"]));
    ok(&mut reader, &["CLIENT", "TRACKING", "OFF"]);
    assert_eq!(reader.call(&["GET", "k"]).unwrap(), bulk("4"));
    ok(&mut writer, &["SET", "k", "5"]);
    quiet(&mut reader);
}

#[test]
fn resp2_invalidations_go_to_the_redirect_client() {
    let s = spawn_server();
    let (mut listener, mut reader, mut writer) = (s.raw(), s.raw(), s.raw());
    let id = client_id(&mut listener);
    assert!(matches!(listener.call(&["SUBSCRIBE", "__redis__:invalidate"]).unwrap(), Frame::Array(_)));
    ok(&mut reader, &["CLIENT", "TRACKING", "ON", "REDIRECT", &id]);
    assert_eq!(reader.call(&["CLIENT", "GETREDIR"]).unwrap(), Frame::Integer(id.parse().unwrap()));
    assert_eq!(reader.call(&["GET", "user:1"]).unwrap(), Frame::Null);
    ok(&mut writer, &["SET", "user:1", "ann"]);
    assert_eq!(
        listener.read_frame().unwrap(),
        Frame::Array(vec![bulk("message"), bulk("__redis__:invalidate"), Frame::Array(vec![bulk("user:1")])])
    );
    // A flush invalidates everything: the key list is null.
    assert_eq!(reader.call(&["GET", "user:1"]).unwrap(), bulk("ann"));
    ok(&mut writer, &["FLUSHALL"]);
    assert_eq!(
        listener.read_frame().unwrap(),
        Frame::Array(vec![bulk("message"), bulk("__redis__:invalidate"), Frame::Null])
    );
}

#[test]
fn a_broken_redirect_is_reported_to_a_resp3_reader() {
    let s = spawn_server();
    let (mut reader, mut writer) = (resp3(&s), s.raw());
    let mut listener = s.raw();
    let id = client_id(&mut listener);
    ok(&mut reader, &["CLIENT", "TRACKING", "ON", "REDIRECT", &id]);
    drop(listener);
    // The server notices the disconnect on its own time.
    let start = std::time::Instant::now();
    while matches!(writer.call(&["CLIENT", "LIST", "ID", &id]).unwrap(), Frame::Bulk(ref b) if !b.is_empty()) {
        assert!(start.elapsed().as_secs() < 10, "listener never went away");
        std::thread::yield_now();
    }
    assert_eq!(reader.call(&["GET", "k"]).unwrap(), Frame::Null);
    ok(&mut writer, &["SET", "k", "v"]);
    assert_eq!(
        reader.read_frame().unwrap(),
        Frame::Push(vec![bulk("tracking-redir-broken"), Frame::Integer(id.parse().unwrap())])
    );
    match reader.call(&["CLIENT", "TRACKINGINFO"]).unwrap() {
        Frame::Map(m) => assert_eq!(m[0].1, Frame::Set(vec![bulk("on"), bulk("broken_redirect")])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bcast_sends_every_write_under_a_prefix_without_reads() {
    let s = spawn_server();
    let (mut reader, mut writer) = (resp3(&s), s.raw());
    ok(&mut reader, &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "post:"]);
    ok(&mut writer, &["SET", "user:1", "a"]);
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["user:1"]));
    ok(&mut writer, &["SET", "other", "a"]);
    ok(&mut writer, &["MSET", "post:9", "x", "zzz", "y"]);
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["post:9"]));
    // Not one-shot: the same key again is sent again.
    ok(&mut writer, &["SET", "user:1", "b"]);
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["user:1"]));
    quiet(&mut reader);
}

#[test]
fn optin_tracks_only_after_caching_yes_and_optout_skips_after_caching_no() {
    let s = spawn_server();
    let (mut reader, mut writer) = (resp3(&s), s.raw());
    ok(&mut reader, &["CLIENT", "TRACKING", "ON", "OPTIN"]);
    assert_eq!(reader.call(&["GET", "a"]).unwrap(), Frame::Null);
    ok(&mut reader, &["CLIENT", "CACHING", "YES"]);
    assert_eq!(reader.call(&["GET", "b"]).unwrap(), Frame::Null);
    // CACHING covers one command only.
    assert_eq!(reader.call(&["GET", "c"]).unwrap(), Frame::Null);
    ok(&mut writer, &["MSET", "a", "1", "b", "1", "c", "1"]);
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["b"]));
    quiet(&mut reader);

    ok(&mut reader, &["CLIENT", "TRACKING", "OFF"]);
    ok(&mut reader, &["CLIENT", "TRACKING", "ON", "OPTOUT"]);
    ok(&mut reader, &["CLIENT", "CACHING", "NO"]);
    assert_eq!(reader.call(&["GET", "a"]).unwrap(), bulk("1"));
    assert_eq!(reader.call(&["GET", "b"]).unwrap(), bulk("1"));
    ok(&mut writer, &["MSET", "a", "2", "b", "2"]);
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["b"]));
    quiet(&mut reader);
}

#[test]
fn noloop_skips_the_readers_own_writes() {
    let s = spawn_server();
    let (mut reader, mut writer) = (resp3(&s), s.raw());
    ok(&mut reader, &["CLIENT", "TRACKING", "ON", "NOLOOP"]);
    assert_eq!(reader.call(&["GET", "k"]).unwrap(), Frame::Null);
    ok(&mut reader, &["SET", "k", "mine"]);
    quiet(&mut reader);
    assert_eq!(reader.call(&["GET", "k"]).unwrap(), bulk("mine"));
    ok(&mut writer, &["SET", "k", "theirs"]);
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["k"]));
}

#[test]
fn expiry_and_flushdb_invalidate() {
    let s = spawn_server();
    let (mut reader, mut writer) = (resp3(&s), s.raw());
    ok(&mut reader, &["CLIENT", "TRACKING", "ON"]);
    ok(&mut writer, &["SET", "k", "v"]);
    assert_eq!(reader.call(&["GET", "k"]).unwrap(), bulk("v"));
    // An EXPIRE in the past deletes the key: a write like any other.
    assert_eq!(writer.call(&["PEXPIREAT", "k", "1"]).unwrap(), Frame::Integer(1));
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["k"]));
    assert_eq!(reader.call(&["GET", "k"]).unwrap(), Frame::Null);
    ok(&mut writer, &["FLUSHDB"]);
    assert_eq!(reader.read_frame().unwrap(), Frame::Push(vec![bulk("invalidate"), Frame::Null]));
}

#[test]
fn the_table_forgets_keys_past_tracking_table_max_keys() {
    let s = spawn_server();
    let (mut reader, mut writer) = (resp3(&s), s.raw());
    ok(&mut writer, &["CONFIG", "SET", "tracking-table-max-keys", "1"]);
    ok(&mut reader, &["CLIENT", "TRACKING", "ON"]);
    assert_eq!(reader.call(&["GET", "a"]).unwrap(), Frame::Null);
    // Reading a second key pushes the first out, with its invalidation
    // (after the reply: the reader's own command caused it).
    assert_eq!(reader.call(&["GET", "b"]).unwrap(), Frame::Null);
    assert_eq!(reader.read_frame().unwrap(), invalidate(&["a"]));
    let info = match writer.call(&["INFO", "stats"]).unwrap() {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(info.contains("tracking_total_keys:1\r\n"), "{info}");
}

/// The race client tracking must close on a multi-threaded server: a
/// write that lands while a read is in flight. Each round starts a read
/// and a write of one key at the same moment; whenever the reader got the
/// old value, it must be told the key changed.
#[test]
fn a_read_racing_a_write_is_always_invalidated() {
    const ROUNDS: usize = 300;
    let s = spawn_server();
    let mut setup = s.raw();
    for r in 0..ROUNDS {
        ok(&mut setup, &["SET", &format!("k{r}"), "old"]);
    }
    let mut reader = resp3(&s);
    ok(&mut reader, &["CLIENT", "TRACKING", "ON"]);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let (addr, b) = (s.addr, barrier.clone());
    let writer = std::thread::spawn(move || {
        let mut w = RawConn::connect(addr).unwrap();
        for r in 0..ROUNDS {
            b.wait();
            assert_eq!(w.call(&["SET", &format!("k{r}"), "new"]).unwrap(), Frame::ok());
        }
    });
    let mut invalidated = std::collections::HashSet::new();
    let mut note = |f: &Frame| match f {
        Frame::Push(p) => match &p[1] {
            Frame::Array(keys) => keys.iter().for_each(|k| {
                invalidated.insert(format!("{k:?}"));
            }),
            other => panic!("{other:?}"),
        },
        _ => unreachable!(),
    };
    let mut reads = Vec::new();
    for r in 0..ROUNDS {
        barrier.wait();
        reader.send(&["GET", &format!("k{r}")]).unwrap();
        let reply = loop {
            match reader.read_frame().unwrap() {
                f @ Frame::Push(_) => note(&f),
                reply => break reply,
            }
        };
        reads.push(reply);
    }
    writer.join().unwrap();
    reader.send(&["PING"]).unwrap();
    loop {
        match reader.read_frame().unwrap() {
            f @ Frame::Push(_) => note(&f),
            pong => {
                assert_eq!(pong, Frame::Simple("PONG".into()));
                break;
            }
        }
    }
    let stale: Vec<usize> = (0..ROUNDS)
        .filter(|&r| reads[r] == bulk("old") && !invalidated.contains(&format!("{:?}", bulk(&format!("k{r}")))))
        .collect();
    let old = reads.iter().filter(|v| **v == bulk("old")).count();
    assert!(stale.is_empty(), "{} of {old} old reads were never invalidated: {stale:?}", stale.len());
}

/// The `redis` crate's own client-side cache (CLIENT TRACKING in RESP3)
/// against Larder: a repeated GET is served locally, and another client's
/// write evicts it, in the default and the OPTIN modes.
#[test]
fn the_redis_crates_client_side_cache_works() {
    use redis::caching::{CacheConfig, CacheMode};
    let s = spawn_server();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = redis::Client::open(format!("redis://{}/?protocol=resp3", s.addr)).unwrap();
        let mut other = client.get_multiplexed_async_connection().await.unwrap();
        for mode in [CacheMode::All, CacheMode::OptIn] {
            let config = redis::AsyncConnectionConfig::new().set_cache_config(CacheConfig::new().set_mode(mode));
            let mut con = client.get_multiplexed_async_connection_with_config(&config).await.unwrap();
            let _: () = redis::cmd("SET").arg("k").arg("v1").query_async(&mut other).await.unwrap();
            let mut get = redis::cmd("GET");
            get.arg("k");
            if mode == CacheMode::OptIn {
                get.set_cache_config(redis::CommandCacheConfig::new().set_enable_cache(true));
            }
            let stats = |con: &redis::aio::MultiplexedConnection| con.get_cache_statistics().unwrap();
            let v: String = get.query_async(&mut con).await.unwrap();
            assert_eq!(v, "v1");
            let v: String = get.query_async(&mut con).await.unwrap();
            assert_eq!(v, "v1");
            assert_eq!((stats(&con).miss, stats(&con).hit), (1, 1), "second GET is a local hit");
            let _: () = redis::cmd("SET").arg("k").arg("v2").query_async(&mut other).await.unwrap();
            // The invalidation arrives asynchronously on `con`'s socket.
            let start = std::time::Instant::now();
            while stats(&con).invalidate == 0 {
                assert!(start.elapsed().as_secs() < 10, "no invalidation reached the cache");
                tokio::task::yield_now().await;
                let _: () = redis::cmd("PING").query_async(&mut con).await.unwrap();
            }
            let v: String = get.query_async(&mut con).await.unwrap();
            assert_eq!(v, "v2", "the cache dropped the stale value");
            assert_eq!(stats(&con).miss, 2);
        }
    });
}

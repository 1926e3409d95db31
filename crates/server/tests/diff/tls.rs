//! TLS against redis-server's: both serve `tls-port` with one test PKI;
//! replies over TLS match in RESP2 and RESP3, and both refuse the same
//! clients under each `tls-auth-clients`.

use larder_protocol::Proto;
use larder_server::Config;
use larder_testkit::{free_port, spawn_server_with, RedisServer, TestPki};

#[test]
fn tls_replies_and_refusals_match_redis() {
    let pki = TestPki::new();
    let theirs = free_port();
    let args = pki.server_args(theirs);
    let Some(redis_server) = RedisServer::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>()) else {
        return;
    };
    let ours = free_port();
    let mut config = Config::default();
    pki.configure(&mut config, ours);
    let larder = spawn_server_with(config);
    let script: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["GET", "k"],
        &["INCR", "n"],
        &["HSET", "h", "f", "1", "g", "2"],
        &["HGETALL", "h"],
        &["GET", "missing"],
        &["CONFIG", "GET", "tls-auth-clients"],
        &["CONFIG", "SET", "tls-auth-clients", "maybe"],
        &["CONFIG", "GET", "tls-ca-cert-file"],
        &["NOSUCHCOMMAND"],
    ];
    for proto in [Proto::Resp2, Proto::Resp3] {
        let mut a = pki.client(ours, proto, Some("client")).get_connection().unwrap();
        let mut b = pki.client(theirs, proto, Some("client")).get_connection().unwrap();
        for args in script {
            let run = |con: &mut redis::Connection| {
                let mut c = redis::cmd(args[0]);
                args[1..].iter().for_each(|x| {
                    c.arg(*x);
                });
                c.query::<redis::Value>(con).map_err(|e| e.to_string())
            };
            // The CA file's path names each server's own copy: the same.
            assert_eq!(run(&mut a), run(&mut b), "{args:?} in {proto:?}");
        }
    }
    let mut plain_a = larder.conn(Proto::Resp2);
    let mut plain_b = redis::Client::open(format!("redis://{}", redis_server.addr)).unwrap().get_connection().unwrap();
    for auth in ["yes", "optional", "no"] {
        for con in [&mut plain_a, &mut plain_b] {
            let _: () = redis::cmd("CONFIG").arg("SET").arg("tls-auth-clients").arg(auth).query(con).unwrap();
        }
        for cert in [None, Some("client"), Some("stranger")] {
            assert_eq!(pki.admits(ours, cert), pki.admits(theirs, cert), "{auth} {cert:?}");
        }
    }
}

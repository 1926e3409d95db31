//! TLS on `tls-port` through the redis crate (rustls) in RESP2 and RESP3:
//! who may connect under each `tls-auth-clients`, and CONFIG SET of the
//! port and of the certificate.

use crate::cmd;
use larder_protocol::Proto;
use larder_server::Config;
use larder_testkit::{free_port, spawn_server_with, TestPki, TestServer};
use std::io::{Read, Write};

/// Larder serving plain TCP and TLS on the port returned, with `pki`.
fn tls_server(pki: &TestPki, extra: &[(&str, &str)]) -> (TestServer, u16) {
    let port = free_port();
    let mut config = Config::default();
    pki.configure(&mut config, port);
    for (k, v) in extra {
        config.set(k, v, true).unwrap();
    }
    (spawn_server_with(config), port)
}

#[test]
fn clients_with_a_certificate_the_ca_signed_talk_over_tls() {
    let pki = TestPki::new();
    let (s, port) = tls_server(&pki, &[]);
    for proto in [Proto::Resp2, Proto::Resp3] {
        let mut con = pki.client(port, proto, Some("client")).get_connection().unwrap();
        let _: () = cmd("SET").arg("k").arg(format!("{proto:?}")).query(&mut con).unwrap();
        let got: String = cmd("GET").arg("k").query(&mut con).unwrap();
        assert_eq!(got, format!("{proto:?}"));
        let info: String = cmd("CLIENT").arg("INFO").query(&mut con).unwrap();
        assert!(info.contains(&format!(" laddr=127.0.0.1:{port} ")), "{info}");
        // A large reply crosses many TLS records (and goes out from where
        // the value is stored, through vectored writes: conn/reply.rs).
        let big: String = (0..1 << 20).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let _: () = cmd("SET").arg("big").arg(&big).query(&mut con).unwrap();
        let back: String = cmd("GET").arg("big").query(&mut con).unwrap();
        assert!(back == big, "the value came back changed");
    }
    // tls-auth-clients yes (the default): no certificate, or one another
    // CA signed, is refused.
    assert!(!pki.admits(port, None));
    assert!(!pki.admits(port, Some("stranger")));
    // Plain RESP on the TLS port gets no reply; the plain port still serves.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    raw.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert!(!buf[..n].starts_with(b"+PONG"), "{:?}", &buf[..n]);
    let pong: String = cmd("PING").query(&mut s.conn(Proto::Resp2)).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn tls_auth_clients_optional_and_no_admit_clients_without_a_certificate() {
    let pki = TestPki::new();
    let (s, port) = tls_server(&pki, &[("tls-auth-clients", "optional")]);
    assert!(pki.admits(port, None));
    assert!(pki.admits(port, Some("client")));
    assert!(!pki.admits(port, Some("stranger")), "a certificate given must verify");
    let mut admin = s.conn(Proto::Resp2);
    let _: () = cmd("CONFIG").arg("SET").arg("tls-auth-clients").arg("yes").query(&mut admin).unwrap();
    assert!(!pki.admits(port, None));
    let _: () = cmd("CONFIG").arg("SET").arg("tls-auth-clients").arg("no").query(&mut admin).unwrap();
    assert!(pki.admits(port, None));
}

#[test]
fn config_set_moves_the_tls_port_and_keeps_a_working_certificate() {
    let pki = TestPki::new();
    let (s, port) = tls_server(&pki, &[]);
    let mut admin = s.conn(Proto::Resp2);
    // A certificate that cannot load is refused; the one in force serves on.
    let r: redis::RedisResult<()> =
        cmd("CONFIG").arg("SET").arg("tls-cert-file").arg("/nonexistent.crt").query(&mut admin);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("'tls-cert-file'") && e.contains("Unable to update TLS configuration"), "{e}");
    let file: Vec<String> = cmd("CONFIG").arg("GET").arg("tls-cert-file").query(&mut admin).unwrap();
    assert_eq!(file[1], pki.path("server.crt"));
    assert!(pki.admits(port, Some("client")));
    // A new port: the old one closes.
    let next = free_port();
    let _: () = cmd("CONFIG").arg("SET").arg("tls-port").arg(next).query(&mut admin).unwrap();
    assert!(pki.admits(next, Some("client")));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // 0 turns TLS off.
    let _: () = cmd("CONFIG").arg("SET").arg("tls-port").arg(0).query(&mut admin).unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", next)).is_err());
    // And on again, on a server that started without it.
    let plain = larder_testkit::spawn_server();
    let mut admin = plain.conn(Proto::Resp2);
    let port = free_port();
    let mut set = cmd("CONFIG");
    set.arg("SET");
    for pair in pki.server_args(port).chunks(2) {
        set.arg(pair[0].trim_start_matches('-')).arg(&pair[1]);
    }
    let _: () = set.query(&mut admin).unwrap();
    assert!(pki.admits(port, Some("client")));
}

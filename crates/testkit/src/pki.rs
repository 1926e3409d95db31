//! A throwaway PKI for TLS tests: two certificate authorities, a server
//! certificate for `localhost` and 127.0.0.1, and a client certificate
//! from each authority, as PEM files in a private directory (what
//! `tls-cert-file` and friends name, for Larder and redis-server alike).

use crate::{private_dir, PrivateDir};
use larder_protocol::Proto;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

pub struct TestPki {
    dir: PrivateDir,
}

/// A certificate signed by `issuer`, written as `<name>.crt` and `<name>.key`.
fn issue(dir: &std::path::Path, name: &str, names: &[&str], client: bool, issuer: &Issuer<'_, KeyPair>) {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("names");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![match client {
        true => ExtendedKeyUsagePurpose::ClientAuth,
        false => ExtendedKeyUsagePurpose::ServerAuth,
    }];
    let cert = params.signed_by(&key, issuer).expect("a signed certificate");
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write a certificate");
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write a key");
}

/// An authority, written as `<name>.crt`.
fn authority(dir: &std::path::Path, name: &str) -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write a certificate");
    Issuer::new(params, key)
}

impl TestPki {
    /// `ca.crt` signs `server.crt` and `client.crt`; `other-ca.crt` signs
    /// `stranger.crt` (a client the server should not trust).
    pub fn new() -> TestPki {
        let dir = private_dir("pki");
        let ca = authority(&dir, "ca");
        issue(&dir, "server", &["localhost", "127.0.0.1"], false, &ca);
        issue(&dir, "client", &[], true, &ca);
        let other = authority(&dir, "other-ca");
        issue(&dir, "stranger", &[], true, &other);
        TestPki { dir }
    }

    /// The path of one of its files (`ca.crt`, `server.key`, …).
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(file)).expect("a PKI file")
    }

    /// The redis-server arguments (and Larder config directives) that serve
    /// TLS on `port` with this PKI's server certificate and CA.
    pub fn server_args(&self, port: u16) -> Vec<String> {
        [
            ("--tls-port", port.to_string()),
            ("--tls-cert-file", self.path("server.crt")),
            ("--tls-key-file", self.path("server.key")),
            ("--tls-ca-cert-file", self.path("ca.crt")),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }

    /// Sets [`Self::server_args`] in a Larder config.
    pub fn configure(&self, config: &mut larder_server::Config, port: u16) {
        for pair in self.server_args(port).chunks(2) {
            config.set(pair[0].trim_start_matches('-'), &pair[1], true).expect("a TLS setting");
        }
    }

    /// A redis crate client for `rediss://127.0.0.1:port` that trusts this
    /// PKI's CA and presents `client` (`"client"`, `"stranger"`) if given.
    pub fn client(&self, port: u16, proto: Proto, client: Option<&str>) -> redis::Client {
        let p = if proto == Proto::Resp3 { "?protocol=resp3" } else { "" };
        let client_tls = client.map(|name| redis::ClientTlsConfig {
            client_cert: self.read(&format!("{name}.crt")),
            client_key: self.read(&format!("{name}.key")),
        });
        let certs = redis::TlsCertificates { client_tls, root_cert: Some(self.read("ca.crt")) };
        redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}/{p}"), certs).expect("a TLS client")
    }

    /// Whether a client presenting `cert` gets to run a command on the
    /// TLS port `port`.
    pub fn admits(&self, port: u16, cert: Option<&str>) -> bool {
        let client = self.client(port, Proto::Resp2, cert);
        client.get_connection().and_then(|mut c| redis::cmd("PING").query::<String>(&mut c)).is_ok()
    }
}

impl Default for TestPki {
    fn default() -> TestPki {
        TestPki::new()
    }
}

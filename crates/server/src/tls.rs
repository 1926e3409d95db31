//! TLS on `tls-port`: the server's rustls configuration, built from
//! Redis's `tls-*` parameters, and the handshake a connection on that
//! port begins with (see server.rs).
//!
//! Why rustls: no system library to match at build or run time, and
//! memory safety in the code that parses what strangers send first. Its
//! crypto is `ring` (aws-lc-rs, rustls's default, needs cmake to build).
//!
//! What the parameters do, as in Redis: `tls-cert-file` and `tls-key-file`
//! are the server's PEM chain and key; `tls-ca-cert-file` and
//! `tls-ca-cert-dir` the roots client certificates must chain to;
//! `tls-auth-clients` `yes` (the default) makes a client present such a
//! certificate, `optional` lets it, `no` does not ask; `tls-protocols`
//! names the versions (`TLSv1.2`, `TLSv1.3`; rustls has no older ones);
//! `tls-ciphersuites` the TLS 1.3 suites; `tls-prefer-server-ciphers` picks
//! the suite by the server's order; `tls-session-caching` and
//! `tls-session-cache-size` the resumption cache (0, OpenSSL's "no
//! limit", is a million sessions). Refused: `tls-key-file-pass` and
//! `tls-client-key-file-pass` (rustls reads no encrypted keys). Accepted
//! without effect: `tls-ciphers` (OpenSSL's TLS 1.2 cipher-list syntax;
//! rustls offers only ECDHE suites with AEAD ciphers) and
//! `tls-dh-params-file` (rustls has no finite-field Diffie-Hellman).
//!
//! The configuration is built whole, at start and at each CONFIG SET of
//! one of these, and swapped in; connections already open keep the one
//! they shook hands with, as in Redis.
//!
//! `tls-replication yes` makes a replica's link to its primary TLS
//! ([`connector`]): it presents `tls-client-cert-file` and
//! `tls-client-key-file` (else the server's own pair, as Redis falls back)
//! and checks the primary's chain against the same roots, but not the
//! name in it, which Redis (OpenSSL given no host name) does not check
//! either. A primary needs nothing: its replicas connect to `tls-port` as
//! any client does.

use crate::config::Config;
use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The parameters a change of which rebuilds the configuration.
pub const PARAMS: [&str; 11] = [
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-protocols",
    "tls-ciphersuites",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-session-cache-size",
];

/// The acceptor new TLS connections shake hands with, once configured.
#[derive(Default)]
pub struct Tls {
    acceptor: RwLock<Option<TlsAcceptor>>,
}

impl Tls {
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.acceptor.read().clone()
    }

    /// Builds the configuration `cfg` describes and puts it in force; on
    /// failure the one in force stays.
    pub fn configure(&self, cfg: &Config) -> Result<(), String> {
        let acceptor = acceptor(cfg)?;
        *self.acceptor.write() = Some(acceptor);
        Ok(())
    }
}

/// Whether any TLS parameter differs between `a` and `b`.
pub fn changed(a: &Config, b: &Config) -> bool {
    PARAMS.iter().any(|p| a.extra(p) != b.extra(p))
}

fn acceptor(cfg: &Config) -> Result<TlsAcceptor, String> {
    let (cert_file, key_file) = (cfg.extra("tls-cert-file"), cfg.extra("tls-key-file"));
    if cert_file.is_empty() || key_file.is_empty() {
        return Err("tls-cert-file and tls-key-file must both be set".into());
    }
    let (certs, key) = load_pair(cert_file, key_file)?;
    let provider = Arc::new(provider(cfg.extra("tls-ciphersuites"))?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&protocols(cfg.extra("tls-protocols"))?)
        .map_err(|e| e.to_string())?;
    let builder = match cfg.extra("tls-auth-clients") {
        "no" => builder.with_no_client_auth(),
        auth => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(cfg)?), provider);
            let verifier = if auth == "optional" { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| format!("Invalid certificate or key: {e}"))?;
    config.ignore_client_order = cfg.extra("tls-prefer-server-ciphers") == "yes";
    config.session_storage = if cfg.extra("tls-session-caching") == "no" {
        Arc::new(NoServerSessionStorage {})
    } else {
        // 0 is OpenSSL's "no limit"; held to a million sessions here.
        let size = match cfg.extra_int("tls-session-cache-size") {
            0 => 1_000_000,
            n => n as usize,
        };
        ServerSessionMemoryCache::new(size)
    };
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A certificate chain and its private key, from PEM files.
fn load_pair(
    cert_file: &str,
    key_file: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("Failed to load certificate: {cert_file}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("Failed to load certificate: {cert_file}: no certificate in it"));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("Failed to load private key: {key_file}: {e}"))?;
    Ok((certs, key))
}

/// The TLS configuration of a replica's link to its primary
/// (`tls-replication yes`; see the module doc).
pub fn connector(cfg: &Config) -> Result<tokio_rustls::TlsConnector, String> {
    let pick = |own: &'static str, fallback: &'static str| match cfg.extra(own) {
        "" => cfg.extra(fallback).to_string(),
        set => set.to_string(),
    };
    let (cert_file, key_file) =
        (pick("tls-client-cert-file", "tls-cert-file"), pick("tls-client-key-file", "tls-key-file"));
    let provider = Arc::new(provider(cfg.extra("tls-ciphersuites"))?);
    let roots = roots(cfg)?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&protocols(cfg.extra("tls-protocols"))?)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyName(verifier)));
    let config = if cert_file.is_empty() || key_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let (certs, key) = load_pair(&cert_file, &key_file)?;
        builder.with_client_auth_cert(certs, key).map_err(|e| format!("Invalid certificate or key: {e}"))?
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The name a primary at `host` is greeted by (SNI): its IP address or
/// DNS name; one that is neither (an odd container name) greets as
/// `localhost`, since the name is not checked.
pub fn server_name(host: &str) -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| rustls::pki_types::ServerName::try_from("localhost").expect("a valid name"))
}

/// WebPKI's verification of a primary's certificate, less the check of
/// the name in it (which runs last, after the chain's).
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(NotValidForName | NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `tls-protocols`: both versions rustls has when empty.
fn protocols(text: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if text.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    text.split_whitespace()
        .map(|word| match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => Ok(&rustls::version::TLS12),
            "tlsv1.3" => Ok(&rustls::version::TLS13),
            "tlsv1" | "tlsv1.1" => Err(format!("{word} is not supported (TLSv1.2 and TLSv1.3 are)")),
            _ => Err(format!("Invalid tls-protocols specified: {word}")),
        })
        .collect()
}

/// ring's suites, the TLS 1.3 ones narrowed to `tls-ciphersuites`
/// (OpenSSL's names, `:`-separated) when it is set.
fn provider(suites: &str) -> Result<CryptoProvider, String> {
    // Deprecated only in that ring has no post-quantum key exchange (nor
    // has the OpenSSL 3.0 a Debian redis-server links); aws-lc-rs, which
    // has, would add cmake to the build.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if suites.trim().is_empty() {
        return Ok(provider);
    }
    // rustls names TLS 1.3 suites TLS13_…, OpenSSL TLS_….
    let name = |s: &rustls::SupportedCipherSuite| format!("{:?}", s.suite()).replacen("TLS13_", "TLS_", 1);
    let wanted: Vec<&str> = suites.split(':').map(str::trim).filter(|s| !s.is_empty()).collect();
    if let Some(unknown) = wanted.iter().find(|w| !provider.cipher_suites.iter().any(|s| name(s) == **w)) {
        return Err(format!("Invalid tls-ciphersuites: {unknown}"));
    }
    provider.cipher_suites.retain(|s| s.version() == &rustls::version::TLS12 || wanted.contains(&name(s).as_str()));
    Ok(provider)
}

/// The roots client certificates must chain to: every certificate in
/// `tls-ca-cert-file` and in the files of `tls-ca-cert-dir`.
fn roots(cfg: &Config) -> Result<RootCertStore, String> {
    let (file, dir) = (cfg.extra("tls-ca-cert-file"), cfg.extra("tls-ca-cert-dir"));
    if file.is_empty() && dir.is_empty() {
        return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified".into());
    }
    let mut roots = RootCertStore::empty();
    let mut add = |path: &std::path::Path, must: bool| -> Result<(), String> {
        let certs = CertificateDer::pem_file_iter(path).and_then(|c| c.collect::<Result<Vec<_>, _>>());
        match certs {
            Ok(certs) => {
                roots.add_parsable_certificates(certs);
                Ok(())
            }
            Err(e) if must => Err(format!("Failed to configure CA certificate(s) file/directory: {e}")),
            Err(_) => Ok(()),
        }
    };
    if !file.is_empty() {
        add(file.as_ref(), true)?;
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("Failed to read tls-ca-cert-dir {dir}: {e}"))?;
        for entry in entries.flatten() {
            // OpenSSL's hashed links and anything else there: what parses.
            if entry.path().is_file() {
                add(&entry.path(), false)?;
            }
        }
    }
    if roots.is_empty() {
        return Err("Failed to configure CA certificate(s) file/directory: no certificate found".into());
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_and_suites_parse_as_redis_names_them() {
        assert_eq!(protocols("").unwrap().len(), 2);
        assert_eq!(protocols("TLSv1.3").unwrap(), vec![&rustls::version::TLS13]);
        assert_eq!(protocols("tlsv1.2 TLSv1.3").unwrap().len(), 2);
        assert!(protocols("TLSv1.1").unwrap_err().contains("not supported"));
        assert!(protocols("SSLv3").unwrap_err().contains("Invalid tls-protocols"));
        let all = provider("").unwrap().cipher_suites.len();
        let one = provider("TLS_AES_256_GCM_SHA384").unwrap();
        let tls13: Vec<_> = one.cipher_suites.iter().filter(|s| s.version() == &rustls::version::TLS13).collect();
        assert_eq!(tls13.len(), 1);
        assert!(one.cipher_suites.len() < all);
        assert!(provider("TLS_NOPE").unwrap_err().contains("TLS_NOPE"));
    }

    #[test]
    fn a_configuration_without_a_certificate_or_with_a_key_password_is_refused() {
        let refusal = |cfg: &Config| acceptor(cfg).err().expect("refused");
        let mut cfg = Config::default();
        assert!(refusal(&cfg).contains("tls-cert-file"));
        cfg.set("tls-cert-file", "/nonexistent/cert.pem", true).unwrap();
        cfg.set("tls-key-file", "/nonexistent/key.pem", true).unwrap();
        assert!(refusal(&cfg).contains("/nonexistent/cert.pem"));
        // Refused as a setting: rustls reads no encrypted keys.
        for pass in ["tls-key-file-pass", "tls-client-key-file-pass"] {
            assert!(cfg.set(pass, "secret", true).is_err(), "{pass}");
        }
    }
}

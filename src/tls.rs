//! TLS for the webhook server: loading and checking certificate/key pairs,
//! a resolver whose pair is swapped atomically on rotation, client
//! certificate verification, and the in-memory self-signed set-up for a
//! fresh machine (CONVENTIONS habit 8).
//!
//! A pair is checked before it is ever served: the key matches the
//! certificate and the certificate is valid now. A bad pair at start fails
//! the start; a bad pair on rotation is refused and the old one keeps
//! serving. Nothing here watches files: `reload` re-reads the paths.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

/// Why a certificate set-up cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn invalid(what: &str, message: impl fmt::Display) -> TlsError {
    TlsError::Invalid {
        what: what.to_owned(),
        message: message.to_string(),
    }
}

/// A checked certificate chain and key, ready to serve.
#[derive(Debug, Clone)]
pub struct Pair {
    pub key: Arc<CertifiedKey>,
    /// Expiry of the leaf certificate, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Parses PEM certificate and key bytes and checks that they belong
/// together and that the leaf is valid at `now` (Unix seconds).
pub fn load_pair(cert_pem: &[u8], key_pem: &[u8], now: i64) -> Result<Pair, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("certificate", format!("not PEM: {e}")))?;
    let leaf = chain
        .first()
        .ok_or_else(|| invalid("certificate", "no CERTIFICATE block in the file"))?;
    let (not_before, not_after) = validity(leaf)?;
    if now < not_before {
        return Err(invalid(
            "certificate",
            "not valid yet (notBefore is in the future)",
        ));
    }
    if now > not_after {
        return Err(invalid("certificate", "expired (notAfter is in the past)"));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| invalid("private key", format!("not a PEM private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| invalid("private key", e))?;
    let key = CertifiedKey::new(chain, signing_key);
    key.keys_match().map_err(|_| {
        invalid(
            "certificate and key",
            "the private key does not match the certificate",
        )
    })?;
    Ok(Pair {
        key: Arc::new(key),
        not_after,
    })
}

/// The validity window of a DER certificate, in Unix seconds.
pub fn validity(der: &CertificateDer<'_>) -> Result<(i64, i64), TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| invalid("certificate", format!("not X.509: {e}")))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// Serves whatever pair is current; `set` swaps it for new handshakes
/// while live connections keep theirs.
#[derive(Debug)]
pub struct Resolver {
    current: ArcSwap<Pair>,
}

impl Resolver {
    pub fn new(pair: Pair) -> Resolver {
        Resolver {
            current: ArcSwap::from_pointee(pair),
        }
    }

    pub fn set(&self, pair: Pair) {
        self.current.store(Arc::new(pair));
    }

    pub fn current(&self) -> Arc<Pair> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

/// The rustls configuration: TLS 1.2 and 1.3, ALPN h2 and http/1.1, and
/// client certificates required when a CA is given.
pub fn server_config(
    resolver: Arc<Resolver>,
    client_ca_pem: Option<&[u8]>,
) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| invalid("client CA", format!("not PEM: {e}")))?;
                roots.add(cert).map_err(|e| invalid("client CA", e))?;
            }
            if roots.is_empty() {
                return Err(invalid("client CA", "no CERTIFICATE block in the file"));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid("client CA", e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A CA and a serving certificate signed by it, in PEM.
#[derive(Debug, Clone)]
pub struct Generated {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA and a serving certificate for `names` (DNS names or IP
/// addresses), valid for `days`.
pub fn generate(names: &[String], days: i64) -> Result<Generated, TlsError> {
    let now = time_now();
    let not_after = now + time_days(days);
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "meshguard CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names.to_vec())?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.not_before = now;
    leaf.not_after = not_after;
    let cert = leaf.signed_by(&key, &Issuer::from_params(&ca, &ca_key))?;
    Ok(Generated {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn time_now() -> time::OffsetDateTime {
    // A minute of slack for clocks that disagree slightly.
    time::OffsetDateTime::now_utc() - time::Duration::minutes(1)
}

fn time_days(days: i64) -> time::Duration {
    time::Duration::days(days)
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pairs_load_and_mismatched_ones_do_not() {
        let a = generate(&["localhost".into(), "127.0.0.1".into()], 30).expect("generate");
        let b = generate(&["localhost".into()], 30).expect("generate");
        let pair =
            load_pair(a.cert_pem.as_bytes(), a.key_pem.as_bytes(), unix_now()).expect("valid pair");
        assert!(pair.not_after > unix_now() + 29 * 86_400);
        let err = load_pair(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), unix_now())
            .expect_err("mismatch");
        assert!(err.to_string().contains("does not match"), "{err}");
        let err = load_pair(
            a.cert_pem.as_bytes(),
            a.key_pem.as_bytes(),
            unix_now() + 31 * 86_400,
        )
        .expect_err("expired");
        assert!(err.to_string().contains("expired"), "{err}");
        let err = load_pair(b"garbage", a.key_pem.as_bytes(), unix_now()).expect_err("garbage");
        assert!(err.to_string().contains("certificate"), "{err}");
        let err = load_pair(a.cert_pem.as_bytes(), b"", unix_now()).expect_err("no key");
        assert!(err.to_string().contains("private key"), "{err}");
    }
}

//! Certificates of `meshguard serve`: rotation through a Kubernetes-style
//! `..data` symlink swap with no failed request, refusal of a bad pair, and
//! client-certificate authentication.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::{Conn, Server, client_config, connect, scratch, wait_for};
use crate::pki::{Issued, Pki};
use crate::util::data;

/// Lays out a Secret volume as the kubelet does: `tls.crt` and `tls.key`
/// are symlinks through `..data`, which points at a versioned directory.
fn write_secret(dir: &Path, version: usize, pair: &Issued) {
    let versioned = dir.join(format!("..2026_11_25_{version:04}"));
    std::fs::create_dir_all(&versioned).expect("mkdir");
    std::fs::write(versioned.join("tls.crt"), &pair.cert).expect("write");
    std::fs::write(versioned.join("tls.key"), &pair.key).expect("write");
    // Atomic swap: a new symlink renamed over `..data`.
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(versioned.file_name().expect("name"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("rename");
    for file in ["tls.crt", "tls.key"] {
        let link = dir.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(file), &link).expect("symlink");
        }
    }
}

/// The leaf certificate a fresh connection is served (DER). Session
/// resumption is off: a resumed session reports the certificate of the
/// session it resumes, not the one the server would serve now.
async fn served_cert(
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> Option<Vec<u8>> {
    let mut fresh = (*tls).clone();
    fresh.resumption = rustls::client::Resumption::disabled();
    let stream = connect(addr, Arc::new(fresh)).await.ok()?;
    let certs = stream.get_ref().1.peer_certificates()?;
    Some(certs.first()?.as_ref().to_vec())
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("pem")
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_symlink_swap_drops_no_request_and_refuses_bad_pairs() {
    let pki = Pki::new("rotation CA");
    let dir = scratch("rotation");
    let first = pki.server(&["localhost", "127.0.0.1"]);
    write_secret(&dir, 0, &first);
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    let ns = data("namespaces.json");
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().expect("utf-8"),
        "--tls-key",
        key.to_str().expect("utf-8"),
        "--namespaces",
        ns.to_str().expect("utf-8"),
        "--reload-interval",
        "50ms",
    ]);
    let tls = client_config(pki.ca_pem.as_bytes(), None, &[b"http/1.1"]);
    assert_eq!(
        served_cert(server.addr, tls.clone()).await,
        Some(der_of(&first.cert))
    );

    // A client loop: new connections and keep-alive requests, all the time.
    let body = std::fs::read(data(
        "reviews/0069-validate-CREATE-Deployment-catalog-checkout.json",
    ))
    .expect("review");
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (stop, ok, failed, tls, addr) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            tls.clone(),
            server.addr,
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match Conn::open(addr, tls.clone()).await {
                    Ok(mut conn) => {
                        for _ in 0..5 {
                            match conn.post("/validate", body.clone()).await {
                                Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                                _ => failed.fetch_add(1, Ordering::Relaxed),
                            };
                        }
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    for version in 1..=10 {
        let next = pki.server(&["localhost", "127.0.0.1"]);
        write_secret(&dir, version, &next);
        let want = der_of(&next.cert);
        let mut served = false;
        for _ in 0..500 {
            if served_cert(server.addr, tls.clone()).await.as_ref() == Some(&want) {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            served,
            "rotation {version}: the new certificate is served\n{}",
            server.log_text()
        );
    }
    let last = std::fs::read_to_string(&cert).expect("current cert");

    // A pair whose key does not match is refused; the old pair keeps serving.
    let other = pki.server(&["localhost"]);
    let mismatched = Issued {
        cert: pki.server(&["localhost"]).cert,
        key: other.key,
    };
    write_secret(&dir, 11, &mismatched);
    assert!(
        wait_for(Duration::from_secs(10), || (server
            .count_logs("certificate reload refused")
            > 0)
        .then_some(()))
        .is_some(),
        "{}",
        server.log_text()
    );
    // Garbage too.
    write_secret(
        &dir,
        12,
        &Issued {
            cert: "garbage".into(),
            key: "garbage".into(),
        },
    );
    assert!(
        wait_for(Duration::from_secs(10), || (server
            .count_logs("certificate reload refused")
            > 1)
        .then_some(()))
        .is_some()
    );
    // And an expired pair.
    write_secret(&dir, 13, &pki.expired_server(&["localhost", "127.0.0.1"]));
    assert!(
        wait_for(Duration::from_secs(10), || (server
            .count_logs("certificate reload refused")
            > 2)
        .then_some(()))
        .is_some(),
        "{}",
        server.log_text()
    );
    // Every refusal is logged: the old certificate still serves.
    assert_eq!(
        served_cert(server.addr, tls.clone()).await,
        Some(der_of(&last))
    );

    stop.store(true, Ordering::Relaxed);
    client.await.expect("client loop");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed during rotation"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "the loop really ran: {}",
        ok.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pair_at_start_fails_the_start_with_a_clear_message() {
    let pki = Pki::new("start CA");
    let dir = scratch("badstart");
    let a = pki.server(&["localhost"]);
    let b = pki.server(&["localhost"]);
    std::fs::write(dir.join("tls.crt"), &a.cert).expect("write");
    std::fs::write(dir.join("tls.key"), &b.key).expect("write");
    let out = crate::util::meshguard(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            dir.join("tls.crt").to_str().expect("utf-8"),
            "--tls-key",
            dir.join("tls.key").to_str().expect("utf-8"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        crate::util::stderr(&out).contains("does not match"),
        "{}",
        crate::util::stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_requires_a_client_certificate_from_that_ca() {
    let pki = Pki::new("api-server CA");
    let dir = scratch("mtls");
    let serving = pki.server(&["localhost"]);
    std::fs::write(dir.join("tls.crt"), &serving.cert).expect("write");
    std::fs::write(dir.join("tls.key"), &serving.key).expect("write");
    std::fs::write(dir.join("client-ca.crt"), &pki.ca_pem).expect("write");
    let server = Server::start(&[
        "--tls-cert",
        dir.join("tls.crt").to_str().expect("utf-8"),
        "--tls-key",
        dir.join("tls.key").to_str().expect("utf-8"),
        "--client-ca",
        dir.join("client-ca.crt").to_str().expect("utf-8"),
    ]);
    // Without a client certificate: refused at the handshake.
    let anonymous = client_config(pki.ca_pem.as_bytes(), None, &[b"http/1.1"]);
    let refused = match Conn::open(server.addr, anonymous).await {
        Err(_) => true,
        Ok(mut conn) => conn.get("/healthz").await.is_err(),
    };
    assert!(refused, "a client without a certificate is refused");
    // With a certificate from another CA: refused too.
    let stranger = Pki::new("stranger CA");
    let foreign = stranger.client("kube-apiserver");
    let foreign_tls = client_config(
        pki.ca_pem.as_bytes(),
        Some((foreign.cert.as_bytes(), foreign.key.as_bytes())),
        &[b"http/1.1"],
    );
    let refused = match Conn::open(server.addr, foreign_tls).await {
        Err(_) => true,
        Ok(mut conn) => conn.get("/healthz").await.is_err(),
    };
    assert!(refused, "a certificate from another CA is refused");
    // With a certificate from the CA: served.
    let apiserver = pki.client("kube-apiserver");
    let tls = client_config(
        pki.ca_pem.as_bytes(),
        Some((apiserver.cert.as_bytes(), apiserver.key.as_bytes())),
        &[b"http/1.1"],
    );
    let mut conn = Conn::open(server.addr, tls).await.expect("mutual TLS");
    assert_eq!(conn.get("/healthz").await.expect("healthz").status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_and_1_3_clients_are_both_served() {
    let pki = Pki::new("versions CA");
    let dir = scratch("versions");
    let pair = pki.server(&["localhost"]);
    std::fs::write(dir.join("tls.crt"), &pair.cert).expect("write");
    std::fs::write(dir.join("tls.key"), &pair.key).expect("write");
    let server = Server::start(&[
        "--tls-cert",
        dir.join("tls.crt").to_str().expect("utf-8"),
        "--tls-key",
        dir.join("tls.key").to_str().expect("utf-8"),
    ]);
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(der_of(&pki.ca_pem)))
            .expect("root");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[version])
        .expect("version")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let stream = connect(server.addr, config.clone())
            .await
            .expect("handshake");
        assert_eq!(stream.get_ref().1.protocol_version(), Some(version.version));
        let mut conn = Conn::open(server.addr, config).await.expect("connect");
        assert_eq!(conn.get("/healthz").await.expect("healthz").status, 200);
    }
}

//! Certificates of `meshguard serve`: rotation through a Kubernetes-style
//! `..data` symlink swap with no failed request, refusal of a bad pair, and
//! client-certificate authentication.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::{Conn, Server, client_config, connect, eventually, scratch};
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
        let started = std::time::Instant::now();
        let mut served = false;
        while started.elapsed() < Duration::from_secs(30) {
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
        // The client loop keeps going across every rotation, however slow
        // the machine: five more answers before the next swap.
        let seen = ok.load(Ordering::Relaxed);
        let more = eventually(Duration::from_secs(60), || {
            (ok.load(Ordering::Relaxed) >= seen + 5).then_some(())
        })
        .await;
        assert!(
            more.is_some(),
            "rotation {version}: the client loop is served"
        );
    }
    let last = std::fs::read_to_string(&cert).expect("current cert");

    // Bad pairs are refused, each for its own reason (the test waits for
    // the refusal after those already logged, so an earlier one cannot
    // stand in for it); the old pair keeps serving.
    let other = pki.server(&["localhost"]);
    let mismatched = Issued {
        cert: pki.server(&["localhost"]).cert,
        key: other.key,
    };
    let garbage = Issued {
        cert: "garbage".into(),
        key: "garbage".into(),
    };
    let expired = pki.expired_server(&["localhost", "127.0.0.1"]);
    for (version, pair, reason) in [
        (
            11,
            &mismatched,
            "the private key does not match the certificate",
        ),
        (
            12,
            &garbage,
            "certificate: no CERTIFICATE block in the file",
        ),
        (13, &expired, "certificate: expired"),
    ] {
        let before = server.log_events("certificate reload refused").len();
        write_secret(&dir, version, pair);
        let refusal = eventually(Duration::from_secs(30), || {
            server
                .log_events("certificate reload refused")
                .get(before)
                .cloned()
        })
        .await
        .unwrap_or_else(|| panic!("pair {version} is refused\n{}", server.log_text()));
        let error = refusal["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "pair {version}: {error}");
    }
    assert_eq!(
        served_cert(server.addr, tls.clone()).await,
        Some(der_of(&last))
    );
    // The reload metrics, through the real reload path: one success per
    // rotation and one failure per bad pair (a `..data` swap is never seen
    // half done, which would count a mismatch that is not there).
    let (_, metrics) = server.scrape();
    let not_after = {
        let (_, pem) = x509_parser::pem::parse_x509_pem(last.as_bytes()).expect("PEM");
        pem.parse_x509()
            .expect("X.509")
            .validity()
            .not_after
            .timestamp()
    };
    for sample in [
        r#"meshguard_tls_certificate_reloads_total{result="success"} 10"#.to_owned(),
        r#"meshguard_tls_certificate_reloads_total{result="failure"} 3"#.to_owned(),
        "meshguard_tls_certificate_last_reload_successful 0".to_owned(),
        format!("meshguard_tls_certificate_not_after_timestamp_seconds {not_after}"),
    ] {
        assert!(
            metrics.lines().any(|l| l == sample),
            "missing `{sample}` in\n{metrics}"
        );
    }
    assert!(
        server.log_events("certificate reload refused").len() == 3,
        "only the three bad pairs were refused:\n{}",
        server.log_text()
    );

    stop.store(true, Ordering::Relaxed);
    client.await.expect("client loop");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed during rotation"
    );
    assert!(
        ok.load(Ordering::Relaxed) >= 50,
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
    // Each refusal is logged at debug with its reason (an operator whose
    // API server cannot call the webhook needs to see why).
    let refusals = eventually(Duration::from_secs(30), || {
        let events = server.log_events("TLS handshake failed");
        (events.len() >= 2).then_some(events)
    })
    .await
    .unwrap_or_else(|| panic!("two refusals logged:\n{}", server.log_text()));
    let reasons: Vec<&str> = refusals
        .iter()
        .map(|e| e["error"].as_str().unwrap_or_default())
        .collect();
    assert!(
        reasons[0].contains("peer sent no certificates"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("UnknownIssuer"), "{reasons:?}");
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

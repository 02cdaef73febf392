//! `meshguard serve` over real TLS: decisions, bad input, reload, drain.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Conn, Server, client_config, connect, eventually, post, read_ca, scratch};
use crate::util::data;

/// A server with the captured namespaces and its self-signed certificate.
fn start(name: &str, extra: &[&str]) -> (Server, std::sync::Arc<rustls::ClientConfig>) {
    let (server, config, _) = start_with_ca(name, extra);
    (server, config)
}

/// Like `start`, also returning the server's CA (PEM).
fn start_with_ca(
    name: &str,
    extra: &[&str],
) -> (Server, std::sync::Arc<rustls::ClientConfig>, Vec<u8>) {
    let dir = scratch(name);
    let ca = dir.join("ca.pem");
    let ns = data("namespaces.json");
    let mut args = vec![
        "--namespaces",
        ns.to_str().expect("utf-8"),
        "--ca-out",
        ca.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let ca_pem = read_ca(&ca);
    let config = client_config(&ca_pem, None, &[b"http/1.1"]);
    (server, config, ca_pem)
}

fn review_body(file: &str) -> Vec<u8> {
    std::fs::read(data(&format!("reviews/{file}"))).expect("review")
}

const DENIED: &str = "0073-validate-CREATE-Deployment-payments-orders.json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_captured_review_gets_its_expected_answer_over_the_wire() {
    let (server, tls) = start("wire", &[]);
    let expected = crate::fixtures::expected();
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    for (file, want) in &expected {
        let body = review_body(file);
        let path = if want["webhook"] == "mutate" {
            "/mutate"
        } else {
            "/validate"
        };
        let reply = conn.post(path, body.clone()).await.expect("reply");
        assert_eq!(reply.status, 200, "{file}: {:?}", reply.body);
        // Checked against expected.json, not against the code that renders
        // the answer.
        crate::fixtures::assert_answer(file, want, &body, &reply.body);
    }
    // `meshguard review` prints what the server sends, byte for byte.
    let ns = data("namespaces.json");
    for file in [DENIED, "0072-mutate-CREATE-Deployment-payments-orders.json"] {
        let webhook = if file.contains("-mutate-") {
            "mutate"
        } else {
            "validate"
        };
        let path = data(&format!("reviews/{file}"));
        let out = crate::util::meshguard(
            &[
                "review",
                path.to_str().expect("utf-8"),
                "--namespaces",
                ns.to_str().expect("utf-8"),
                "--webhook",
                webhook,
            ],
            None,
        );
        let reply = conn
            .post(&format!("/{webhook}"), review_body(file))
            .await
            .expect("reply");
        assert_eq!(
            crate::util::stdout(&out).trim_end().as_bytes(),
            reply.body.as_ref(),
            "{file}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let (server, tls) = start("health", &[]);
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    assert_eq!(conn.get("/healthz").await.expect("healthz").status, 200);
    let ready = conn.get("/readyz").await.expect("readyz");
    assert_eq!(ready.status, 200);
    let text = String::from_utf8_lossy(&ready.body);
    assert!(
        text.contains("static namespace view (13 namespaces)"),
        "{text}"
    );
}

/// One bad request and the status it must get.
struct Bad {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Bytes,
    status: u16,
    says: &'static str,
}

fn bad(name: &'static str, body: impl Into<Bytes>, status: u16, says: &'static str) -> Bad {
    Bad {
        name,
        path: "/validate",
        content_type: "application/json",
        body: body.into(),
        status,
        says,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_over_the_wire_get_4xx_and_the_server_keeps_serving() {
    // A small body limit, so the too-large body is refused by its size in
    // microseconds, never raced by the 1 s body timeout on a loaded machine.
    let (server, tls, ca_pem) = start_with_ca(
        "bad",
        &[
            "--header-timeout",
            "1s",
            "--body-timeout",
            "1s",
            "--max-body-bytes",
            "65536",
        ],
    );
    let good = review_body(DENIED);
    let v1beta1 = String::from_utf8(good.clone()).expect("utf-8").replacen(
        "admission.k8s.io/v1",
        "admission.k8s.io/v1beta1",
        1,
    );
    let no_uid = String::from_utf8(good.clone())
        .expect("utf-8")
        .replacen("\"uid\"", "\"uuid\"", 1);
    let nested = format!(
        "{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{}",
        "[".repeat(50_000)
    );
    // Exactly the limit is read; one byte more is refused.
    let mut at_limit = good.clone();
    at_limit.resize(65536, b' ');
    let cases = vec![
        bad(
            "malformed JSON",
            "{\"apiVersion\": admission",
            400,
            "not valid JSON",
        ),
        bad("empty body", "", 400, "not valid JSON"),
        bad(
            "truncated review",
            good[..good.len() / 2].to_vec(),
            400,
            "not valid JSON",
        ),
        bad(
            "binary garbage",
            vec![0u8, 159, 146, 150, 255, 1, 2],
            400,
            "not valid JSON",
        ),
        bad("JSON array", "[]", 400, "not valid JSON"),
        bad("v1beta1 review", v1beta1, 400, "admission.k8s.io/v1 only"),
        bad("review without uid", no_uid, 400, "uid"),
        bad(
            "review without request",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            400,
            "no request",
        ),
        bad(
            "wrong kind",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"ConfigMap"}"#,
            400,
            "AdmissionReview",
        ),
        bad(
            "unknown operation",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"PATCH"}}"#,
            400,
            "PATCH",
        ),
        bad("deeply nested JSON", nested, 400, "JSON"),
        bad(
            "a body over --max-body-bytes",
            vec![b' '; 65537],
            413,
            "larger than the limit of 65536 bytes",
        ),
        Bad {
            content_type: "text/plain",
            ..bad("wrong content type", good.clone(), 415, "application/json")
        },
        Bad {
            content_type: "application/x-www-form-urlencoded",
            ..bad("form content type", good.clone(), 415, "application/json")
        },
        bad(
            "a body of exactly --max-body-bytes",
            at_limit,
            200,
            "\"allowed\":false",
        ),
    ];
    for case in cases {
        let mut conn = Conn::open(server.addr, tls.clone()).await.expect("connect");
        let reply = conn
            .send(post(case.path, case.content_type, case.body))
            .await
            .expect(case.name);
        assert_eq!(
            reply.status,
            case.status,
            "{}: {:?}",
            case.name,
            String::from_utf8_lossy(&reply.body)
        );
        let text = String::from_utf8_lossy(&reply.body);
        assert!(text.contains(case.says), "{}: {text}", case.name);
        assert_good_request_served(&server, &tls, &good).await;
    }
    // GET on a webhook path; a path that does not exist.
    let mut conn = Conn::open(server.addr, tls.clone()).await.expect("connect");
    assert_eq!(conn.get("/validate").await.expect("get").status, 405);
    let reply = conn
        .send(post("/nope", "application/json", good.clone()))
        .await
        .expect("404");
    assert_eq!((reply.status, reply.body.as_ref()), (404, &b""[..]));
    // An object whose fields have the wrong types is decided as the same
    // object without those fields (README, "Lenient reading").
    let review = |object: &str| {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"apps","version":"v1","kind":"Deployment"}},"operation":"CREATE","namespace":"shop","object":{object}}}}}"#
        )
    };
    let wrong = conn
        .post(
            "/validate",
            review(r#"{"metadata":[],"spec":{"template":"x"}}"#),
        )
        .await
        .expect("reply");
    let absent = conn
        .post("/validate", review(r#"{"spec":{}}"#))
        .await
        .expect("reply");
    assert_eq!((wrong.status, absent.status), (200, 200));
    assert_eq!(
        String::from_utf8_lossy(&wrong.body),
        String::from_utf8_lossy(&absent.body)
    );
    // HTTP/2 by ALPN, good and bad.
    let h2 = client_config(&ca_pem, None, &[b"h2"]);
    let mut conn = Conn::open(server.addr, h2).await.expect("h2 connect");
    let reply = conn.post("/validate", good.clone()).await.expect("h2");
    assert_eq!((reply.status, reply.version), (200, hyper::Version::HTTP_2));
    assert_eq!(
        conn.post("/validate", "nope").await.expect("h2").status,
        400
    );
    assert_good_request_served(&server, &tls, &good).await;

    // Plain HTTP on the TLS port gets a readable 400.
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut buf)).await;
    assert!(buf.starts_with("HTTP/1.1 400"), "{buf}");
    assert_good_request_served(&server, &tls, &good).await;

    // A huge header is refused.
    let mut conn = Conn::open(server.addr, tls.clone()).await.expect("connect");
    let mut req = post("/validate", "application/json", good.clone());
    req.headers_mut()
        .insert("x-huge", "a".repeat(100 * 1024).parse().expect("header"));
    match conn.send(req).await {
        Ok(reply) => assert_eq!(reply.status, 431),
        Err(e) => assert!(
            e.is_closed() || e.is_incomplete_message() || e.to_string().contains("connection"),
            "{e}"
        ),
    }
    assert_good_request_served(&server, &tls, &good).await;

    // Slowloris on the headers: the connection is closed after the timeout.
    let mut slow = connect(server.addr, tls.clone()).await.expect("tls");
    slow.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("write");
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "a client that never finishes its headers is cut off"
    );
    // ... and on the body: 408.
    let mut slow = connect(server.addr, tls.clone()).await.expect("tls");
    slow.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"apiVersion\"").await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer)).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // A TCP client that never starts TLS is cut off too.
    let mut idle = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let mut sink = Vec::new();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut sink))
            .await
            .is_ok()
    );
    assert_good_request_served(&server, &tls, &good).await;
    assert!(!server.log_text().contains("panicked"));
    // Every refusal was counted once, by reason: eleven 400s from the table
    // and one over HTTP/2, two 415s, one 413, one 408 (the slow body). The
    // 404, 405, 431 and plain-HTTP answers never reached a webhook.
    let (_, metrics) = server.scrape();
    for sample in [
        r#"meshguard_bad_requests_total{reason="bad_request"} 12"#,
        r#"meshguard_bad_requests_total{reason="content_type"} 2"#,
        r#"meshguard_bad_requests_total{reason="too_large"} 1"#,
        r#"meshguard_bad_requests_total{reason="timeout"} 1"#,
        r#"meshguard_requests_total{webhook="validate",kind="other",operation="unknown",decision="error",dry_run="false"} 16"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == sample),
            "missing `{sample}` in\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_body_limit_is_7_mib() {
    // A generous body timeout: 7 MiB through TLS in a debug build on a
    // loaded machine takes a while, and this test is about the size.
    let (server, tls) = start("limit", &["--body-timeout", "300s"]);
    let limit = 7 * 1024 * 1024;
    let mut body = review_body(DENIED);
    body.resize(limit, b' ');
    let mut conn = Conn::open(server.addr, tls.clone()).await.expect("connect");
    let reply = conn.post("/validate", body.clone()).await.expect("reply");
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    body.push(b' ');
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    let reply = conn.post("/validate", body).await.expect("reply");
    assert_eq!(reply.status, 413);
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        "body larger than the limit of 7340032 bytes\n"
    );
}

async fn assert_good_request_served(
    server: &Server,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    good: &[u8],
) {
    let mut conn = Conn::open(server.addr, tls.clone()).await.expect("connect");
    let reply = conn
        .post("/validate", good.to_vec())
        .await
        .expect("good request");
    assert_eq!(reply.status, 200);
    let v: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(v["response"]["allowed"], false);
}

/// Replaces `path` atomically (a temp file renamed over it), so a poll of
/// the server never reads a torn or empty file.
fn write_atomic(path: &std::path::Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// A ConfigMap volume as the kubelet lays it out: `config.yaml` ->
/// `..data/config.yaml`, `..data` -> a versioned directory, swapped by
/// renaming a new symlink over `..data`.
fn write_config_map(dir: &std::path::Path, version: usize, content: &str) {
    use std::os::unix::fs::symlink;
    let versioned = dir.join(format!("..2026_12_01_{version:04}"));
    std::fs::create_dir_all(&versioned).expect("mkdir");
    std::fs::write(versioned.join("config.yaml"), content).expect("write");
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(versioned.file_name().expect("name"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("rename");
    let link = dir.join("config.yaml");
    if std::fs::symlink_metadata(&link).is_err() {
        symlink("..data/config.yaml", &link).expect("symlink");
    }
}

fn allowed(reply: &crate::harness::Reply) -> bool {
    let v: Value = serde_json::from_slice(&reply.body).expect("json");
    v["response"]["allowed"].as_bool().expect("allowed")
}

/// The rules a denial of the `DENIED` review names, relaxed to warn.
const RELAXED: &str = "rules:\n  MG101: {action: warn}\n  MG102: {action: warn}\n  MG103: {action: warn}\n  MG104: {action: warn}\n  MG107: {action: warn}\n";

/// Posts `body` until the answer's `allowed` is `want` (bounded).
async fn until_allowed(conn: &mut Conn, body: &[u8], want: bool) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if allowed(&conn.post("/validate", body.to_vec()).await.expect("reply")) == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_takes_effect_and_a_broken_file_keeps_the_old_config() {
    let dir = scratch("reload");
    let file = dir.join("meshguard.yaml");
    std::fs::write(&file, meshguard::config::DEFAULT_YAML).expect("write");
    let (server, tls) = start(
        "reload-server",
        &[
            "--config",
            file.to_str().expect("utf-8"),
            "--reload-interval",
            "100ms",
        ],
    );
    let good = review_body(DENIED);
    let mut conn = Conn::open(server.addr, tls.clone()).await.expect("connect");
    assert!(!allowed(
        &conn.post("/validate", good.clone()).await.expect("reply")
    ));
    write_atomic(&file, RELAXED);
    assert!(
        until_allowed(&mut conn, &good, true).await,
        "the relaxed config took effect"
    );
    write_atomic(&file, "rules:\n  MG101: {action: nope}\n");
    let refused = eventually(Duration::from_secs(30), || {
        server.log_events("config reload refused").first().cloned()
    })
    .await
    .unwrap_or_else(|| panic!("the broken file is refused:\n{}", server.log_text()));
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("MG101.action"),
        "{refused}"
    );
    assert!(
        allowed(&conn.post("/validate", good.clone()).await.expect("reply")),
        "the old config keeps deciding"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_through_a_config_map_swap_and_its_metrics() {
    let dir = scratch("configmap");
    write_config_map(&dir, 0, meshguard::config::DEFAULT_YAML);
    let file = dir.join("config.yaml");
    let (server, tls) = start(
        "configmap-server",
        &[
            "--config",
            file.to_str().expect("utf-8"),
            "--reload-interval",
            "100ms",
        ],
    );
    let sample = |text: &str, name: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(name))
            .map(str::to_owned)
            .collect()
    };
    let info = |hash: String| vec![format!("meshguard_config_info{{hash=\"{hash}\"}} 1")];
    let (_, text) = server.scrape();
    let default_hash = crate::util::fnv1a64(meshguard::config::DEFAULT_YAML.as_bytes());
    assert_eq!(
        sample(&text, "meshguard_config_info"),
        info(default_hash.clone())
    );

    let good = review_body(DENIED);
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    write_config_map(&dir, 1, RELAXED);
    assert!(
        until_allowed(&mut conn, &good, true).await,
        "the swap is seen"
    );
    let (_, text) = server.scrape();
    assert_eq!(
        sample(&text, "meshguard_config_info"),
        info(crate::util::fnv1a64(RELAXED.as_bytes())),
        "only the new file's hash"
    );
    for line in [
        r#"meshguard_config_reloads_total{result="success"} 1"#,
        r#"meshguard_config_reloads_total{result="failure"} 0"#,
        "meshguard_config_last_reload_successful 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }

    // A broken ConfigMap is refused: counted, flagged, the hash unchanged.
    write_config_map(&dir, 2, "rules: [");
    let counted = eventually(Duration::from_secs(30), || {
        let (_, text) = server.scrape();
        text.lines()
            .any(|l| l == r#"meshguard_config_reloads_total{result="failure"} 1"#)
            .then_some(text)
    })
    .await
    .expect("the refusal is counted");
    assert!(
        counted
            .lines()
            .any(|l| l == "meshguard_config_last_reload_successful 0"),
        "{counted}"
    );
    assert_eq!(
        sample(&counted, "meshguard_config_info"),
        info(crate::util::fnv1a64(RELAXED.as_bytes()))
    );
    assert!(allowed(&conn.post("/validate", good).await.expect("reply")));
}

/// Opens `n` HTTP/1.1 requests for `body` with half their body sent: they
/// sit in the handler, waiting for the rest.
async fn half_sent(
    server: &Server,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    body: &[u8],
    n: usize,
) -> Vec<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let mut s = connect(server.addr, tls.clone()).await.expect("tls");
        let headers = format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(headers.as_bytes()).await.expect("write");
        s.write_all(&body[..body.len() / 2]).await.expect("write");
        s.flush().await.expect("flush");
        streams.push(s);
    }
    streams
}

/// Waits until the metrics say `n` requests are in flight.
async fn in_flight(server: &Server, n: usize) -> bool {
    let line = format!("\nmeshguard_requests_in_flight {n}\n");
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let (_, metrics) = tokio::task::block_in_place(|| server.scrape());
        if metrics.contains(&line) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Whether a log line containing `needle` has been written.
async fn logged(logs: &std::sync::Arc<std::sync::Mutex<Vec<String>>>, needle: &str) -> bool {
    eventually(Duration::from_secs(30), || {
        logs.lock()
            .expect("logs")
            .iter()
            .any(|l| l.contains(needle))
            .then_some(())
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_exits_0() {
    // Generous timeouts: the test must not depend on a loaded machine's
    // speed, only on the drain.
    let (mut server, tls, ca_pem) = start_with_ca(
        "drain",
        &[
            "--grace",
            "60s",
            "--header-timeout",
            "5s",
            "--body-timeout",
            "120s",
        ],
    );
    let body = review_body(DENIED);
    // An idle keep-alive connection, used once: it must not hold the drain.
    let mut idle = Conn::open(server.addr, tls.clone()).await.expect("connect");
    assert_eq!(
        idle.post("/validate", body.clone())
            .await
            .expect("reply")
            .status,
        200
    );
    // Five requests with half their body sent, all in the handler.
    let streams = half_sent(&server, &tls, &body, 5).await;
    assert!(in_flight(&server, 5).await, "five requests in flight");
    // An HTTP/2 client that sends its preface and settings, then never
    // reads again (it will not answer the GOAWAY): dropped after
    // `header_timeout`, well before the grace period ends.
    let h2 = client_config(&ca_pem, None, &[b"h2"]);
    let mut deaf = connect(server.addr, h2).await.expect("h2 tls");
    deaf.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("preface");
    deaf.flush().await.expect("flush");
    let addr = server.addr;
    let logs = server.logs.clone();
    let waiter = std::thread::spawn(move || server.terminate());
    // The server has stopped accepting (it logs the drain) ...
    assert!(
        logged(&logs, "shutting down: draining").await,
        "the server drains"
    );
    // ... so a new client is refused while the five are still in flight.
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting during the drain"
    );
    let tail = &body[body.len() / 2..];
    for mut s in streams {
        s.write_all(tail).await.expect("finish the body");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "in-flight request completed: {text}"
        );
        assert!(text.contains("\"allowed\":false"));
    }
    let status = tokio::task::spawn_blocking(move || waiter.join().expect("terminate"))
        .await
        .expect("join");
    assert_eq!(status.code(), Some(0));
    let logs = logs.lock().expect("logs").join("\n");
    assert!(
        logs.contains("\"drained\"") && !logs.contains("grace period over"),
        "drained before the grace period, idle connection and all:\n{logs}"
    );
    assert!(
        eventually(Duration::from_secs(5), || idle.is_closed().then_some(()))
            .await
            .is_some(),
        "the idle connection was closed"
    );
    drop(deaf);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_and_exits_0_like_sigterm() {
    let (mut server, tls) = start("sigint", &["--body-timeout", "120s", "--grace", "60s"]);
    let body = review_body(DENIED);
    let mut streams = half_sent(&server, &tls, &body, 1).await;
    assert!(in_flight(&server, 1).await);
    let logs = server.logs.clone();
    let waiter = std::thread::spawn(move || server.signal("INT"));
    assert!(
        logged(&logs, "shutting down: draining").await,
        "Ctrl-C drains"
    );
    let mut s = streams.remove(0);
    s.write_all(&body[body.len() / 2..]).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    let status = tokio::task::spawn_blocking(move || waiter.join().expect("signal"))
        .await
        .expect("join");
    assert_eq!(status.code(), Some(0));
    assert!(
        logs.lock()
            .expect("logs")
            .iter()
            .any(|l| l.contains("\"drained\""))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_in_flight_when_the_grace_period_ends_is_cut_off() {
    let (mut server, tls) = start("grace", &["--body-timeout", "300s", "--grace", "1s"]);
    let body = review_body(DENIED);
    let mut streams = half_sent(&server, &tls, &body, 1).await;
    assert!(in_flight(&server, 1).await);
    let logs = server.logs.clone();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("terminate");
    // The body never came: the server gave up after --grace, not after the
    // 300 s body timeout, and still exits 0.
    assert_eq!(status.code(), Some(0));
    let text = logs.lock().expect("logs").join("\n");
    assert!(
        text.contains("grace period over") && !text.contains("\"drained\""),
        "{text}"
    );
    let mut answer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(30), streams[0].read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the connection is gone with the process");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
}

/// A request body sent piece by piece, as the test decides.
struct Streamed(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(hyper::body::Frame::data(c))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_http2_stream_in_flight_finish() {
    let (mut server, _, ca_pem) =
        start_with_ca("drain-h2", &["--body-timeout", "120s", "--grace", "60s"]);
    let body = review_body(DENIED);
    let tls = connect(server.addr, client_config(&ca_pem, None, &[b"h2"]))
        .await
        .expect("h2 tls");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("h2 handshake");
    let connection = tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let stream_body = Streamed(rx);
    let req = hyper::Request::post("/validate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(stream_body)
        .expect("request");
    let response = tokio::spawn(send.send_request(req));
    tx.send(Bytes::copy_from_slice(&body[..body.len() / 2]))
        .await
        .expect("first half");
    assert!(in_flight(&server, 1).await, "the stream is in the handler");
    let logs = server.logs.clone();
    let waiter = std::thread::spawn(move || server.terminate());
    assert!(logged(&logs, "shutting down: draining").await);
    tx.send(Bytes::copy_from_slice(&body[body.len() / 2..]))
        .await
        .expect("second half");
    drop(tx);
    let reply = tokio::time::timeout(Duration::from_secs(30), response)
        .await
        .expect("an answer")
        .expect("task")
        .expect("the stream finished after the GOAWAY");
    assert_eq!(reply.status(), 200);
    let answer = http_body_util::BodyExt::collect(reply.into_body())
        .await
        .expect("body")
        .to_bytes();
    assert!(String::from_utf8_lossy(&answer).contains("\"allowed\":false"));
    // The GOAWAY then ends the connection, and the server exits drained.
    let ended = tokio::time::timeout(Duration::from_secs(30), connection).await;
    assert!(ended.is_ok(), "the HTTP/2 connection ends after its stream");
    let status = tokio::task::spawn_blocking(move || waiter.join().expect("terminate"))
        .await
        .expect("join");
    assert_eq!(status.code(), Some(0));
    let text = logs.lock().expect("logs").join("\n");
    assert!(text.contains("\"drained\""), "{text}");
}

/// Waits (bounded) for the server to close a raw TLS stream: true when it
/// did (end of stream or reset), false when it was still open at `limit`.
async fn closed_by_server(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    limit: Duration,
) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut sink))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_hold_connections_without_using_them_are_cut_off() {
    let (server, _, ca_pem) = start_with_ca(
        "idle",
        &[
            "--header-timeout",
            "3s",
            "--idle-timeout",
            "6s",
            "--max-connections",
            "2",
        ],
    );
    let h1 = client_config(&ca_pem, None, &[b"http/1.1"]);
    let h2 = client_config(&ca_pem, None, &[b"h2"]);

    // TLS, then silence, by either protocol.
    for tls in [h1.clone(), h2.clone()] {
        let mut silent = connect(server.addr, tls).await.expect("tls");
        assert!(
            closed_by_server(&mut silent, Duration::from_secs(30)).await,
            "a client that says nothing after the handshake is cut off"
        );
    }
    // Half an HTTP/2 preface.
    let mut half = connect(server.addr, h2.clone()).await.expect("tls");
    half.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    assert!(
        closed_by_server(&mut half, Duration::from_secs(30)).await,
        "half a preface is cut off"
    );

    // An HTTP/2 connection used once and then left idle is closed (GOAWAY)
    // after the idle timeout, though it would answer every ping.
    let good = review_body(DENIED);
    let mut used = Conn::open(server.addr, h2.clone()).await.expect("h2");
    assert_eq!(
        used.post("/validate", good.clone())
            .await
            .expect("reply")
            .status,
        200
    );
    assert!(!used.is_closed());
    let closed = eventually(Duration::from_secs(30), || used.is_closed().then_some(())).await;
    assert!(closed.is_some(), "an idle HTTP/2 connection is closed");

    // The cap: two silent clients hold both slots; a third client waits in
    // the backlog and is served once the server has cut a holder off. The
    // server's own log orders the two events (closing a holder, then
    // deciding the third client's request), so no timing is assumed.
    let mark = server.logs.lock().expect("logs").len();
    let mut holders = Vec::new();
    let mut holder_peers = Vec::new();
    for _ in 0..2 {
        let h = connect(server.addr, h1.clone()).await.expect("tls");
        holder_peers.push(h.get_ref().0.local_addr().expect("addr").to_string());
        holders.push(h);
    }
    let mut conn = Conn::open(server.addr, h1.clone()).await.expect("third");
    let third = conn.post("/validate", good.clone()).await.expect("reply");
    assert_eq!(third.status, 200, "the third client is served");
    let logs = server.logs.lock().expect("logs")[mark..].to_vec();
    let position = |what: &dyn Fn(&Value) -> bool| {
        logs.iter().position(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .is_some_and(|v| what(&v["fields"]))
        })
    };
    let holder_cut = position(&|f| {
        f["message"] == "closing an unused connection"
            && holder_peers.iter().any(|p| f["peer"] == p.as_str())
    });
    let third_decided = position(&|f| f["message"] == "denied");
    assert!(
        matches!((holder_cut, third_decided), (Some(cut), Some(decided)) if cut < decided),
        "the third client waited for a free slot: {holder_cut:?} < {third_decided:?}\n{}",
        logs.join("\n")
    );
    drop(holders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http1_keep_alive_connection_outlives_the_header_timeout_then_closes() {
    // The API server keeps idle connections for 90 s and reuses them for
    // the next POST, which Go does not retry if the server closed the
    // connection meanwhile.
    let (server, tls) = start(
        "keepalive",
        &["--header-timeout", "1s", "--idle-timeout", "10s"],
    );
    let good = review_body(DENIED);
    let mut conn = Conn::open(server.addr, tls.clone()).await.expect("connect");
    assert_eq!(
        conn.post("/validate", good.clone())
            .await
            .expect("first")
            .status,
        200
    );
    // A silent connection opened after the request: once the server has
    // cut it off, the header timeout has passed for the used one too.
    let mut silent = connect(server.addr, tls).await.expect("tls");
    assert!(closed_by_server(&mut silent, Duration::from_secs(30)).await);
    assert!(!conn.is_closed(), "still open after the header timeout");
    assert_eq!(
        conn.post("/validate", good).await.expect("second").status,
        200
    );
    // Unused for --idle-timeout, it is closed by the server.
    let closed = eventually(Duration::from_secs(60), || conn.is_closed().then_some(())).await;
    assert!(closed.is_some(), "an idle HTTP/1.1 connection is closed");
}

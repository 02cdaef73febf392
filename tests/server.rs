//! `meshguard serve` over real TLS: decisions, bad input, reload, drain.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use meshguard::admission;
use meshguard::config::Config;
use meshguard::engine::Webhook;
use meshguard::namespaces::NamespaceMap;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Conn, Server, client_config, connect, post, read_ca, scratch, wait_for};
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
async fn every_captured_review_gets_the_same_answer_as_meshguard_review() {
    let (server, tls) = start("wire", &[]);
    let namespaces = NamespaceMap::load(&data("namespaces.json")).expect("namespaces");
    let expected: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(data("expected.json")).expect("expected"))
            .expect("json");
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    for (file, want) in &expected {
        let body = review_body(file);
        let webhook = if want["webhook"] == "mutate" {
            Webhook::Mutate
        } else {
            Webhook::Validate
        };
        let path = if webhook == Webhook::Mutate {
            "/mutate"
        } else {
            "/validate"
        };
        let reply = conn.post(path, body.clone()).await.expect("reply");
        assert_eq!(reply.status, 200, "{file}: {:?}", reply.body);
        let lib = admission::review(
            &body,
            webhook,
            &Config::default(),
            &namespaces,
            jiff::Timestamp::now(),
        )
        .expect("review");
        assert_eq!(reply.body.as_ref(), lib.body.as_slice(), "{file}");
        if webhook == Webhook::Validate {
            let v: Value = serde_json::from_slice(&reply.body).expect("json");
            assert_eq!(v["response"]["allowed"], want["allowed"], "{file}");
        }
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
    let (server, tls, ca_pem) =
        start_with_ca("bad", &["--header-timeout", "1s", "--body-timeout", "1s"]);
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
    let wrong_types = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","namespace":"shop","object":{"metadata":[],"spec":{"template":"x"}}}}"#;
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
        bad("8 MiB body", vec![b' '; 8 * 1024 * 1024], 413, "limit"),
        Bad {
            content_type: "text/plain",
            ..bad("wrong content type", good.clone(), 415, "application/json")
        },
        Bad {
            content_type: "application/x-www-form-urlencoded",
            ..bad("form content type", good.clone(), 415, "application/json")
        },
        Bad {
            path: "/nope",
            ..bad("unknown path", good.clone(), 404, "")
        },
        bad(
            "object with wrong field types is decided",
            wrong_types,
            200,
            "\"allowed\"",
        ),
    ];
    assert!(cases.len() >= 16);
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
    // GET on a webhook path.
    let mut conn = Conn::open(server.addr, tls.clone()).await.expect("connect");
    assert_eq!(conn.get("/validate").await.expect("get").status, 405);
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
    let allowed = |reply: &crate::harness::Reply| {
        let v: Value = serde_json::from_slice(&reply.body).expect("json");
        v["response"]["allowed"].as_bool().expect("allowed")
    };
    let mut conn = Conn::open(server.addr, tls.clone()).await.expect("connect");
    assert!(!allowed(
        &conn.post("/validate", good.clone()).await.expect("reply")
    ));
    let relaxed = "rules:\n  MG101: {action: warn}\n  MG102: {action: warn}\n  MG103: {action: warn}\n  MG104: {action: warn}\n  MG107: {action: warn}\n";
    std::fs::write(&file, relaxed).expect("write");
    let mut became_allowed = false;
    for _ in 0..250 {
        if allowed(&conn.post("/validate", good.clone()).await.expect("reply")) {
            became_allowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(became_allowed, "the relaxed config took effect");
    std::fs::write(&file, "rules:\n  MG101: {action: nope}\n").expect("write");
    assert!(
        wait_for(Duration::from_secs(10), || (server
            .count_logs("config reload refused")
            > 0)
        .then_some(()))
        .is_some(),
        "the broken file is refused:\n{}",
        server.log_text()
    );
    assert!(
        allowed(&conn.post("/validate", good.clone()).await.expect("reply")),
        "the old config keeps deciding"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_exits_0() {
    // Generous timeouts: the test must not depend on a loaded machine's
    // speed, only on the drain.
    let (mut server, tls, ca_pem) = start_with_ca(
        "drain",
        &[
            "--grace",
            "25s",
            "--header-timeout",
            "5s",
            "--body-timeout",
            "60s",
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
    let (head, tail) = body.split_at(body.len() / 2);
    // Five requests with half their body sent.
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut s = connect(server.addr, tls.clone()).await.expect("tls");
        let headers = format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(headers.as_bytes()).await.expect("write");
        s.write_all(head).await.expect("write");
        s.flush().await.expect("flush");
        streams.push(s);
    }
    // All five are in the handler, waiting for the rest of their body.
    let in_flight = wait_for(Duration::from_secs(10), || {
        let (_, metrics) = server.scrape();
        metrics
            .contains("\nmeshguard_requests_in_flight 5\n")
            .then_some(())
    });
    assert!(in_flight.is_some(), "five requests in flight");
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
    // Wait until the server has stopped accepting (it logs the drain).
    let draining = wait_for(Duration::from_secs(10), || {
        let logs = logs.lock().expect("logs");
        logs.iter()
            .any(|l| l.contains("shutting down: draining"))
            .then_some(())
    });
    assert!(draining.is_some(), "the server drains");
    for mut s in streams {
        s.write_all(tail).await.expect("finish the body");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "in-flight request completed: {text}"
        );
        assert!(text.contains("\"allowed\":false"));
    }
    let status = waiter.join().expect("terminate");
    assert_eq!(status.code(), Some(0));
    let logs = logs.lock().expect("logs").join("\n");
    assert!(
        logs.contains("\"drained\"") && !logs.contains("grace period over"),
        "drained before the grace period, idle connection and all:\n{logs}"
    );
    assert!(
        wait_for(Duration::from_secs(5), || idle.is_closed().then_some(())).is_some(),
        "the idle connection was closed"
    );
    drop(deaf);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
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
            closed_by_server(&mut silent, Duration::from_secs(10)).await,
            "a client that says nothing after the handshake is cut off"
        );
    }
    // Half an HTTP/2 preface.
    let mut half = connect(server.addr, h2.clone()).await.expect("tls");
    half.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    assert!(
        closed_by_server(&mut half, Duration::from_secs(10)).await,
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
    let closed = wait_for(Duration::from_secs(15), || used.is_closed().then_some(()));
    assert!(closed.is_some(), "an idle HTTP/2 connection is closed");

    // The cap: two silent clients hold both slots; a third client waits in
    // the backlog and is served once they are cut off.
    let mut holders = Vec::new();
    for _ in 0..2 {
        holders.push(connect(server.addr, h1.clone()).await.expect("tls"));
    }
    let third = tokio::time::timeout(Duration::from_secs(15), async {
        let mut conn = Conn::open(server.addr, h1.clone()).await.expect("third");
        conn.post("/validate", good.clone())
            .await
            .expect("reply")
            .status
    })
    .await;
    assert_eq!(third.ok(), Some(200), "the third client is served");
    // ... only once a holder had been cut off: the cap held it back.
    let mut cut = 0;
    for mut h in holders {
        if closed_by_server(&mut h, Duration::from_millis(200)).await {
            cut += 1;
        }
    }
    assert!(cut >= 1, "the third client waited for a free slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http1_keep_alive_connection_outlives_the_header_timeout() {
    // The API server keeps idle connections for 90 s and reuses them for
    // the next POST, which Go does not retry if the server closed the
    // connection meanwhile.
    let (server, tls) = start(
        "keepalive",
        &["--header-timeout", "1s", "--idle-timeout", "30s"],
    );
    let good = review_body(DENIED);
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    assert_eq!(
        conn.post("/validate", good.clone())
            .await
            .expect("first")
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!conn.is_closed(), "still open after 2.5 header timeouts");
    assert_eq!(
        conn.post("/validate", good).await.expect("second").status,
        200
    );
}

//! The namespace view of `meshguard serve`, fed by a test API endpoint that
//! replays what kube-apiserver really sent: the namespace list
//! (`namespaces.json`) and the watch stream (`namespaces-watch.jsonl`:
//! MODIFIED, ADDED, MODIFIED, BOOKMARK).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::fake_api::{self, Answer, FakeApi};
use crate::harness::{Conn, Server, client_config, eventually, read_ca, scratch};
use crate::util::data;

/// The API of the capture: the namespace list, one watch that replays the
/// captured events, and 404 for single namespaces (counted).
fn fake_api() -> (FakeApi, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let watches = Arc::new(AtomicUsize::new(0));
    let gets = Arc::new(AtomicUsize::new(0));
    let (w, g) = (watches.clone(), gets.clone());
    let api = FakeApi::start(move |path, query| {
        if path == "/api/v1/namespaces" && query.contains("watch=true") {
            let first = w.fetch_add(1, Ordering::SeqCst) == 0;
            let events = if first {
                let text = std::fs::read_to_string(data("namespaces-watch.jsonl")).expect("watch");
                text.lines().map(str::to_owned).collect()
            } else {
                Vec::new()
            };
            Answer::Stream(events)
        } else if path == "/api/v1/namespaces" {
            Answer::Json(
                200,
                std::fs::read_to_string(data("namespaces.json")).expect("list"),
            )
        } else if let Some(name) = path.strip_prefix("/api/v1/namespaces/") {
            g.fetch_add(1, Ordering::SeqCst);
            fake_api::status(404, "NotFound", &format!("namespaces \"{name}\" not found"))
        } else {
            fake_api::status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    });
    (api, watches, gets)
}

/// A Deployment review in `namespace` whose pods carry no injection marker.
fn unmarked_deployment(namespace: &str) -> String {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u-{namespace}","kind":{{"group":"apps","version":"v1","kind":"Deployment"}},"operation":"CREATE","namespace":"{namespace}","object":{{"metadata":{{"name":"web","namespace":"{namespace}"}},"spec":{{"template":{{"metadata":{{"labels":{{"app":"web","version":"v1"}}}},"spec":{{"serviceAccountName":"web"}}}}}}}}}}}}"#
    )
}

fn mg103_message(reply: &[u8]) -> String {
    let v: Value = serde_json::from_slice(reply).expect("json");
    v["response"]["status"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_follows_the_list_and_the_watch_stream() {
    let (api, watches, gets) = fake_api();
    let dir = scratch("watch");
    let (server, ca) = api.serve(&dir);
    let tls = client_config(&read_ca(&ca), None, &[b"http/1.1"]);
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");

    // Ready once the list is in; the watch then adds `reviews`: 13 + 1.
    let mut readiness = String::new();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let reply = conn.get("/readyz").await.expect("readyz");
        readiness = String::from_utf8_lossy(&reply.body).into_owned();
        if reply.status == 200 && readiness.contains("(14 namespaces)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        readiness.contains("namespace view synced (14 namespaces)"),
        "{readiness}\n{}",
        server.log_text()
    );
    assert!(watches.load(Ordering::SeqCst) >= 1);

    // The MODIFIED event moved `canary` to revision 1-25.
    let canary = eventually(Duration::from_secs(30), || {
        server
            .logs
            .lock()
            .expect("logs")
            .iter()
            .find(|l| l.contains("namespace view updated") && l.contains("\"canary\""))
            .cloned()
    })
    .await;
    let canary = canary.expect("the canary update is applied");
    assert!(canary.contains("1-25"), "{canary}");

    // `reviews` came from the ADDED event: its (empty) labels are known.
    let reply = conn
        .post("/validate", unmarked_deployment("reviews"))
        .await
        .expect("reply");
    let message = mg103_message(&reply.body);
    assert!(
        message.contains("namespace `reviews` has neither istio-injection nor istio.io/rev"),
        "{message}"
    );
    // `catalog` (from the list) injects; `payments` (from the list) does not.
    let reply = conn
        .post("/validate", unmarked_deployment("catalog"))
        .await
        .expect("reply");
    assert!(
        !mg103_message(&reply.body).contains("MG103"),
        "{:?}",
        reply.body
    );
    let reply = conn
        .post("/validate", unmarked_deployment("payments"))
        .await
        .expect("reply");
    assert!(mg103_message(&reply.body).contains("namespace `payments` has neither"));
    // `sandbox` (being deleted, still there) keeps meshguard.io/mode=warn.
    let reply = conn
        .post("/validate", unmarked_deployment("sandbox"))
        .await
        .expect("reply");
    let v: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(v["response"]["allowed"], true, "mode warn: {v}");

    // A namespace nobody knows: one GET (404 here), then the pod's markers.
    let before = gets.load(Ordering::SeqCst);
    let reply = conn
        .post("/validate", unmarked_deployment("brand-new"))
        .await
        .expect("reply");
    assert!(mg103_message(&reply.body).contains("labels of namespace `brand-new` are unknown"));
    assert_eq!(
        gets.load(Ordering::SeqCst),
        before + 1,
        "exactly one GET for the unknown namespace"
    );
}

/// The captured namespace list, with one more namespace when `extra`.
fn namespace_list(extra: bool) -> String {
    let mut list: Value =
        serde_json::from_str(&std::fs::read_to_string(data("namespaces.json")).expect("list"))
            .expect("json");
    if extra {
        list["items"].as_array_mut().expect("items").push(serde_json::json!({
            "metadata": {"name": "relisted", "resourceVersion": "900", "labels": {"istio-injection": "enabled"}}
        }));
    }
    list.to_string()
}

/// The server's metrics sample `name` (a line without labels), as a number.
fn metric(server: &Server, name: &str) -> Option<f64> {
    let (_, text) = server.scrape();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_is_re_listed_and_the_new_list_replaces_the_view() {
    // The first watch ends with the API server's 410 Gone (resource version
    // too old): the view must list again, and take the new list whole.
    let lists = Arc::new(AtomicUsize::new(0));
    let watches = Arc::new(AtomicUsize::new(0));
    let (l, w) = (lists.clone(), watches.clone());
    let api = FakeApi::start(move |path, query| {
        if path == "/api/v1/namespaces" && query.contains("watch=true") {
            let events = if w.fetch_add(1, Ordering::SeqCst) == 0 {
                vec![r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (900)","reason":"Expired","code":410}}"#.to_owned()]
            } else {
                Vec::new()
            };
            Answer::Stream(events)
        } else if path == "/api/v1/namespaces" {
            Answer::Json(200, namespace_list(l.fetch_add(1, Ordering::SeqCst) > 0))
        } else {
            fake_api::status(404, "NotFound", "not found")
        }
    });
    let dir = scratch("relist");
    let (server, ca) = api.serve(&dir);
    let tls = client_config(&read_ca(&ca), None, &[b"http/1.1"]);
    let relisted = eventually(Duration::from_secs(60), || {
        (metric(&server, "meshguard_namespace_view_namespaces") == Some(14.0)).then_some(())
    })
    .await;
    assert!(relisted.is_some(), "re-listed:\n{}", server.log_text());
    assert_eq!(lists.load(Ordering::SeqCst), 2, "one list, one re-list");
    assert_eq!(
        metric(&server, "meshguard_namespace_watch_restarts_total"),
        Some(1.0)
    );
    assert_eq!(
        metric(&server, "meshguard_namespace_view_synced"),
        Some(1.0)
    );
    // The namespace that only the second list has is judged by its labels.
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    let reply = conn
        .post("/validate", unmarked_deployment("relisted"))
        .await
        .expect("reply");
    let message = mg103_message(&reply.body);
    assert!(
        message.contains("MG104") && !message.contains("MG103"),
        "injected by the namespace label, only the marker is missing: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_watch_is_retried_with_backoff_and_the_view_keeps_serving() {
    // The list works, every watch fails: the view stays synced with the
    // list, each failure is counted, and the retries back off (kube-rs:
    // 0.8 s, then doubling) instead of hammering the API server.
    let attempts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let a = attempts.clone();
    let api = FakeApi::start(move |path, query| {
        if path == "/api/v1/namespaces" && query.contains("watch=true") {
            a.lock().expect("attempts").push(std::time::Instant::now());
            fake_api::status(500, "InternalError", "etcdserver: request timed out")
        } else if path == "/api/v1/namespaces" {
            Answer::Json(200, namespace_list(false))
        } else {
            fake_api::status(404, "NotFound", "not found")
        }
    });
    let dir = scratch("backoff");
    let (server, ca) = api.serve(&dir);
    let tls = client_config(&read_ca(&ca), None, &[b"http/1.1"]);
    let third = eventually(Duration::from_secs(60), || {
        let a = attempts.lock().expect("attempts");
        (a.len() >= 3).then(|| a[2] - a[0])
    })
    .await
    .unwrap_or_else(|| panic!("three watch attempts:\n{}", server.log_text()));
    // A lower bound only: a slow machine makes the gaps longer, never
    // shorter. Without backoff the three attempts take milliseconds.
    assert!(
        third >= Duration::from_millis(2400),
        "backoff 0.8 s + 1.6 s at least between three attempts: {third:?}"
    );
    let restarts = metric(&server, "meshguard_namespace_watch_restarts_total").unwrap_or(0.0);
    assert!(restarts >= 2.0, "each failure counted: {restarts}");
    assert_eq!(
        metric(&server, "meshguard_namespace_view_synced"),
        Some(1.0)
    );
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    assert_eq!(conn.get("/readyz").await.expect("readyz").status, 200);
    let reply = conn
        .post("/validate", unmarked_deployment("payments"))
        .await
        .expect("reply");
    assert!(mg103_message(&reply.body).contains("namespace `payments` has neither"));
}

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
    let kubeconfig = api.kubeconfig(&dir);
    let ca = dir.join("ca.pem");
    let server = Server::start_with_env(
        &["--ca-out", ca.to_str().expect("utf-8")],
        &[("KUBECONFIG", kubeconfig.to_str().expect("utf-8"))],
    );
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

//! The mesh index of `meshguard serve` (SPEC section 10), fed by the real
//! watches against a test API: MG5xx are judged at admission only once
//! every watch has listed, `/readyz` does not wait for it, and the posture
//! gauges follow ADDED, MODIFIED and DELETED events and a 410 re-list.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_api::{self, Answer, FakeApi};
use crate::harness::{Conn, Server, client_config, read_ca, scratch};

fn list(kind: &str, api_version: &str, items: Vec<Value>, rv: &str) -> Answer {
    Answer::Json(
        200,
        json!({"kind": format!("{kind}List"), "apiVersion": api_version,
               "metadata": {"resourceVersion": rv}, "items": items})
        .to_string(),
    )
}

fn deployment(name: &str, version: &str, rv: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "resourceVersion": rv},
        "spec": {"template": {
            "metadata": {"labels": {"app": "reviews", "version": version, "sidecar.istio.io/inject": "true"}},
            "spec": {"serviceAccountName": "reviews", "containers": [{"name": "app", "image": "reviews"}]}}}})
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "resourceVersion": "1", "labels": labels}})
}

/// The test API: what it serves, whether the deployments list may answer
/// yet, and the live deployments watches.
struct Mesh {
    api: FakeApi,
    release: Arc<AtomicBool>,
    watches: Arc<Mutex<Vec<Sender<String>>>>,
    lists: Arc<AtomicUsize>,
}

fn mesh_api() -> Mesh {
    let release = Arc::new(AtomicBool::new(false));
    let watches: Arc<Mutex<Vec<Sender<String>>>> = Arc::default();
    let lists = Arc::new(AtomicUsize::new(0));
    let (r, w, l) = (release.clone(), watches.clone(), lists.clone());
    let api = FakeApi::start(move |path, query| {
        let watch = query.contains("watch=true");
        match path {
            "/api/v1/namespaces" if watch => Answer::Stream(Vec::new()),
            "/api/v1/namespaces" => list(
                "Namespace",
                "v1",
                vec![
                    namespace("shop", json!({"istio-injection": "enabled"})),
                    namespace("istio-system", json!({})),
                ],
                "10",
            ),
            "/apis/apps/v1/deployments" if watch => {
                let (tx, rx) = std::sync::mpsc::channel();
                w.lock().expect("watches").push(tx);
                Answer::Live(rx)
            }
            "/apis/apps/v1/deployments" => {
                // The index cannot sync before the test lets it.
                while !r.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                // The probe asks for one item; the watcher's lists are
                // counted (the second one is the re-list after 410).
                if query.contains("limit=1&") || query.ends_with("limit=1") {
                    return list(
                        "Deployment",
                        "apps/v1",
                        vec![deployment("reviews-v1", "v1", "20")],
                        "20",
                    );
                }
                let n = l.fetch_add(1, Ordering::SeqCst);
                let items = if n == 0 {
                    vec![deployment("reviews-v1", "v1", "20")]
                } else {
                    Vec::new()
                };
                list("Deployment", "apps/v1", items, "40")
            }
            "/apis/security.istio.io/v1/peerauthentications" if watch => Answer::Stream(Vec::new()),
            "/apis/security.istio.io/v1/peerauthentications" => list(
                "PeerAuthentication",
                "security.istio.io/v1",
                vec![
                    json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                    "metadata": {"name": "default", "namespace": "istio-system", "resourceVersion": "5"},
                    "spec": {"mtls": {"mode": "STRICT"}}}),
                ],
                "5",
            ),
            "/apis/networking.istio.io/v1/destinationrules" if watch => Answer::Stream(Vec::new()),
            "/apis/networking.istio.io/v1/destinationrules" => list(
                "DestinationRule",
                "networking.istio.io/v1",
                vec![
                    json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": {"name": "reviews", "namespace": "shop", "resourceVersion": "6"},
                    "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}}),
                ],
                "6",
            ),
            _ => fake_api::status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        }
    });
    Mesh {
        api,
        release,
        watches,
        lists,
    }
}

/// A canary VirtualService review: 10% to subset v2, which no
/// DestinationRule defines.
fn canary_review() -> String {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-canary", "kind": {"group": "networking.istio.io", "version": "v1", "kind": "VirtualService"},
        "operation": "CREATE", "namespace": "shop",
        "object": {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "shop"},
            "spec": {"hosts": ["reviews"], "http": [{"timeout": "5s", "route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10}]}]}}}})
    .to_string()
}

fn warnings(body: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(body).expect("json");
    v["response"]["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The value of one sample of the metrics text, by its exact series.
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map(str::to_owned)
}

const STRICT_OPEN: &str =
    r#"meshguard_mesh_workloads{namespace="shop",sidecar="yes",mtls="STRICT",authz="open"}"#;

async fn wait_metric(server: &Server, series: &str, want: Option<&str>) -> String {
    let mut text = String::new();
    for _ in 0..500 {
        text = server.scrape().1;
        if sample(&text, series).as_deref() == want {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{series} never became {want:?}:\n{text}\n{}",
        server.log_text()
    );
}

fn event(kind: &str, object: Value) -> String {
    json!({"type": kind, "object": object}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mg5xx_wait_for_the_index_and_the_gauges_follow_the_watches() {
    let mesh = mesh_api();
    let dir = scratch("server-mesh");
    let (server, ca) = mesh.api.serve(&dir);
    let tls = client_config(&read_ca(&ca), None, &[b"h2"]);
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");

    // Ready without the index; the index is not synced: no MG5xx, no
    // posture gauges.
    let mut ready = false;
    for _ in 0..500 {
        if conn.get("/readyz").await.expect("readyz").status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "{}", server.log_text());
    let text = server.scrape().1;
    assert_eq!(
        sample(&text, "meshguard_mesh_index_synced").as_deref(),
        Some("0"),
        "{text}"
    );
    assert!(!text.contains("meshguard_mesh_workloads{"), "{text}");
    let reply = conn
        .post("/validate", canary_review())
        .await
        .expect("reply");
    assert_eq!(reply.status, 200);
    assert!(
        !warnings(&reply.body).iter().any(|w| w.starts_with("MG501")),
        "{:?}",
        warnings(&reply.body)
    );

    // Synced: the one workload is encrypted (mesh-wide STRICT) and open.
    mesh.release.store(true, Ordering::SeqCst);
    wait_metric(&server, "meshguard_mesh_index_synced", Some("1")).await;
    let text = wait_metric(&server, STRICT_OPEN, Some("1")).await;
    // The monitoring uses the mesh gauges as a synced server exports them.
    let defined = crate::metrics::defined_names(&text);
    for file in [
        "grafana-dashboard.json",
        "alerts.yaml",
        "prometheusrule.yaml",
    ] {
        let used = crate::metrics::used_names(&crate::util::repo("deploy/monitoring").join(file));
        let mesh: Vec<_> = used
            .iter()
            .filter(|n| n.starts_with("meshguard_mesh_"))
            .collect();
        assert!(!mesh.is_empty(), "{file} uses the mesh gauges");
        for name in mesh {
            assert!(defined.contains(name), "{file} uses {name}:\n{defined:?}");
        }
    }
    // Namespaces (labels) are watched as metadata only; workloads whole.
    let metadata: Vec<String> = mesh.api.metadata_requests.lock().expect("log").clone();
    assert!(
        metadata
            .iter()
            .any(|t| t.starts_with("/api/v1/namespaces?") && t.contains("watch=true")),
        "{metadata:?}"
    );
    assert!(
        !metadata
            .iter()
            .any(|t| t.starts_with("/apis/apps/v1/deployments?") && !t.contains("limit=1")),
        "{metadata:?}"
    );
    let reply = conn
        .post("/validate", canary_review())
        .await
        .expect("reply");
    let found = warnings(&reply.body);
    assert_eq!(
        found
            .iter()
            .filter(|w| w.starts_with("MG501 subset-defined: "))
            .count(),
        1,
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|w| w.contains("subset `v2`") && w.contains("shop/reviews")),
        "{found:?}"
    );

    // ADDED, MODIFIED, DELETED move the gauge.
    let watch = wait_for_watch(&mesh).await;
    watch
        .send(event("ADDED", deployment("reviews-v2", "v2", "21")))
        .expect("send");
    wait_metric(&server, STRICT_OPEN, Some("2")).await;
    let mut opted_out = deployment("reviews-v2", "v2", "22");
    opted_out["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] = json!("false");
    watch
        .send(event("MODIFIED", opted_out.clone()))
        .expect("send");
    wait_metric(&server, STRICT_OPEN, Some("1")).await;
    wait_metric(
        &server,
        r#"meshguard_mesh_workloads{namespace="shop",sidecar="no",mtls="none",authz="open"}"#,
        Some("1"),
    )
    .await;
    watch.send(event("DELETED", opted_out)).expect("send");
    wait_metric(
        &server,
        r#"meshguard_mesh_workloads{namespace="shop",sidecar="no",mtls="none",authz="open"}"#,
        None,
    )
    .await;

    // 410 Gone: the watcher lists again, and the new list (empty) replaces
    // what the index held of the kind.
    watch
        .send(
            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                "status": "Failure", "reason": "Expired", "code": 410,
                "message": "too old resource version"}})
            .to_string(),
        )
        .expect("send");
    let text = wait_metric(&server, STRICT_OPEN, None).await;
    assert!(mesh.lists.load(Ordering::SeqCst) >= 2, "a re-list happened");
    // The expired watch was restarted: counted for the index's watches,
    // not for the namespace watch.
    let text = match sample(&text, "meshguard_mesh_index_watch_restarts_total").as_deref() {
        Some("1") => text,
        _ => {
            wait_metric(
                &server,
                "meshguard_mesh_index_watch_restarts_total",
                Some("1"),
            )
            .await
        }
    };
    assert_eq!(
        sample(&text, "meshguard_namespace_watch_restarts_total").as_deref(),
        Some("0"),
        "{text}"
    );
}

/// The deployments watch, once the server has opened it.
async fn wait_for_watch(mesh: &Mesh) -> Sender<String> {
    for _ in 0..500 {
        if let Some(tx) = mesh.watches.lock().expect("watches").last().cloned() {
            return tx;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the deployments watch never started");
}

#[test]
fn cluster_audit_reports_the_posture_of_what_the_cluster_holds() {
    let mesh = mesh_api();
    mesh.release.store(true, Ordering::SeqCst);
    let dir = scratch("cluster-posture");
    let kubeconfig = mesh.api.kubeconfig(&dir);
    let out = crate::util::meshguard(
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
            "--posture",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["posture"],
        json!({
            "summary": {"workloads": 1, "encrypted": 1, "authorized": 0,
                        "encryptedPercent": 100.0, "authorizedPercent": 0.0},
            "workloads": [{"namespace": "shop", "kind": "Deployment", "name": "reviews-v1",
                "sidecar": "yes", "mtls": "STRICT", "mtlsFrom": "istio-system/default",
                "authz": "open", "authzFrom": []}]
        })
    );
    // The CI gate names the workload that misses the target (a fresh API:
    // this one answers a second list as a re-list, empty).
    let mesh = mesh_api();
    mesh.release.store(true, Ordering::SeqCst);
    let kubeconfig = mesh.api.kubeconfig(&dir);
    let out = crate::util::meshguard(
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
            "--require-posture",
            "encrypted,authorized",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = crate::util::stderr(&out);
    let gaps: Vec<&str> = stderr.lines().filter(|l| l.contains("posture:")).collect();
    assert_eq!(
        gaps,
        ["meshguard: posture: not authorized: shop/Deployment/reviews-v1 (authz open)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_it_may_not_list_keeps_the_index_unsynced_and_counts_restarts() {
    let api = FakeApi::start(|path, query| match path {
        "/api/v1/namespaces" if query.contains("watch=true") => Answer::Stream(Vec::new()),
        "/api/v1/namespaces" => list(
            "Namespace",
            "v1",
            vec![namespace("shop", json!({"istio-injection": "enabled"}))],
            "10",
        ),
        "/apis/apps/v1/deployments" => fake_api::status(
            403,
            "Forbidden",
            "deployments.apps is forbidden: User \"system:serviceaccount:meshguard-system:meshguard\" cannot list resource \"deployments\"",
        ),
        _ => fake_api::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    });
    let dir = scratch("server-mesh-forbidden");
    let (server, _) = api.serve(&dir);
    let mut text = String::new();
    for _ in 0..500 {
        text = server.scrape().1;
        let restarts = sample(&text, "meshguard_mesh_index_watch_restarts_total")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if restarts >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        sample(&text, "meshguard_mesh_index_watch_restarts_total").is_some_and(|v| v != "0"),
        "{text}\n{}",
        server.log_text()
    );
    // Never guessed: not synced, no posture; the server is ready anyway.
    assert_eq!(
        sample(&text, "meshguard_mesh_index_synced").as_deref(),
        Some("0"),
        "{text}"
    );
    assert!(!text.contains("meshguard_mesh_workloads{"), "{text}");
    assert_eq!(
        sample(&text, "meshguard_ready").as_deref(),
        Some("1"),
        "{text}"
    );
    assert!(
        !server.log_events("mesh index watch failed").is_empty(),
        "{}",
        server.log_text()
    );
}

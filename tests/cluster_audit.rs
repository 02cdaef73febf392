//! `meshguard audit --cluster` against a test API endpoint that serves the
//! objects kube-apiserver received in the captures: paged lists, a kind
//! served only at an older Istio version, kinds not installed, and a kind
//! meshguard may not list.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::fake_api::{self, Answer, FakeApi};
use crate::harness::scratch;
use crate::util::{data, meshguard, stderr};

/// The object of a captured review.
fn object(review: &str) -> Value {
    let text = std::fs::read_to_string(data(&format!("reviews/{review}"))).expect("review");
    let v: Value = serde_json::from_str(&text).expect("json");
    v["request"]["object"].clone()
}

fn list(kind: &str, items: Vec<Value>, next: Option<&str>) -> Answer {
    let mut metadata = json!({"resourceVersion": "42"});
    if let Some(token) = next {
        metadata["continue"] = json!(token);
    }
    Answer::Json(
        200,
        json!({"kind": format!("{kind}List"), "apiVersion": "v1", "metadata": metadata, "items": items})
            .to_string(),
    )
}

pub(crate) fn cluster() -> FakeApi {
    // The first request for the second page of Deployments finds its
    // continue token expired (410 Gone): the kind is listed again.
    let expired = std::sync::atomic::AtomicBool::new(false);
    FakeApi::start(move |path, query| match path {
        "/apis/apps/v1/deployments"
            if query.contains("continue=page-2")
                && !expired.swap(true, std::sync::atomic::Ordering::SeqCst) =>
        {
            fake_api::status(410, "Expired", "The provided continue parameter is too old")
        }
        "/api/v1/namespaces" => Answer::Json(
            200,
            std::fs::read_to_string(data("namespaces.json")).expect("namespaces"),
        ),
        "/api/v1/pods" => fake_api::status(
            403,
            "Forbidden",
            "pods is forbidden: User \"system:serviceaccount:ci:auditor\" cannot list resource \"pods\" in API group \"\" at the cluster scope",
        ),
        "/api/v1/services" => list(
            "Service",
            vec![
                object("0071-validate-CREATE-Service-catalog-checkout.json"),
                object("0139-validate-CREATE-Service-payments-orders.json"),
            ],
            None,
        ),
        // Two pages.
        "/apis/apps/v1/deployments" if !query.contains("continue=") => list(
            "Deployment",
            vec![object(
                "0069-validate-CREATE-Deployment-catalog-checkout.json",
            )],
            Some("page-2"),
        ),
        "/apis/apps/v1/deployments" if query.contains("continue=page-2") => list(
            "Deployment",
            vec![object(
                "0073-validate-CREATE-Deployment-payments-orders.json",
            )],
            None,
        ),
        // An older Istio: PeerAuthentication only at v1beta1.
        "/apis/security.istio.io/v1beta1/peerauthentications" => list(
            "PeerAuthentication",
            vec![
                object("0114-validate-CREATE-PeerAuthentication-istio-system-default.json"),
                object("0115-validate-CREATE-PeerAuthentication-payments-legacy-permissive.json"),
            ],
            None,
        ),
        "/apis/networking.istio.io/v1/gateways" => list(
            "Gateway",
            vec![
                object("0125-validate-CREATE-Gateway-istio-ingress-public.json"),
                object("0126-validate-CREATE-Gateway-payments-insecure.json"),
            ],
            None,
        ),
        // Everything else (Argo Rollouts, the other Istio kinds, empty
        // core and apps kinds) is not served here.
        _ => fake_api::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    })
}

#[test]
fn cluster_audit_judges_what_the_cluster_holds() {
    let api = cluster();
    let dir = scratch("cluster-audit");
    let kubeconfig = api.kubeconfig(&dir);
    let out = meshguard(
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
            "--format",
            "json",
        ],
        None,
    );
    // Pods could not be listed: an input error, exit 2, the rest audited.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cluster:pods: cannot list pods: forbidden"),
        "{}",
        stderr(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let namespaces = 13;
    assert_eq!(v["summary"]["objects"], namespaces + 2 + 2 + 2 + 2);
    let found: BTreeSet<String> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] != "Namespace")
        .map(|f| {
            format!(
                "{} {} {}/{}",
                f["rule"].as_str().expect("rule"),
                f["kind"].as_str().expect("kind"),
                f["namespace"].as_str().expect("namespace"),
                f["object"].as_str().expect("object")
            )
        })
        .collect();
    for expected in [
        "MG101 Deployment payments/orders",
        "MG201 Service payments/orders",
        "MG401 PeerAuthentication payments/legacy-permissive",
        "MG406 Gateway payments/insecure",
    ] {
        assert!(found.contains(expected), "{expected} in {found:?}");
    }
    for compliant in [
        "catalog/checkout",
        "istio-system/default",
        "istio-ingress/public",
    ] {
        assert!(
            !found.iter().any(|f| f.ends_with(compliant)),
            "{compliant} is compliant: {found:?}"
        );
    }
    assert!(
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .all(|f| f["source"] == "cluster")
    );
    // Every judged kind was asked for where the API serves it; what the
    // cluster lacks is named.
    let asked: BTreeSet<String> = api
        .requests
        .lock()
        .expect("requests")
        .iter()
        .cloned()
        .collect();
    for path in [
        "/api/v1/namespaces",
        "/api/v1/pods",
        "/api/v1/replicationcontrollers",
        "/api/v1/services",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/statefulsets",
        "/apis/apps/v1/daemonsets",
        "/apis/apps/v1/replicasets",
        "/apis/batch/v1/jobs",
        "/apis/batch/v1/cronjobs",
        "/apis/argoproj.io/v1alpha1/rollouts",
        "/apis/security.istio.io/v1/peerauthentications",
        "/apis/security.istio.io/v1beta1/peerauthentications",
        "/apis/security.istio.io/v1/authorizationpolicies",
        "/apis/security.istio.io/v1beta1/authorizationpolicies",
        "/apis/networking.istio.io/v1alpha3/destinationrules",
        "/apis/networking.istio.io/v1alpha3/virtualservices",
        "/apis/networking.istio.io/v1/gateways",
        "/apis/networking.istio.io/v1alpha3/serviceentries",
        "/apis/networking.istio.io/v1alpha3/sidecars",
    ] {
        assert!(asked.contains(path), "{path} asked for: {asked:?}");
    }
    assert!(
        !asked.contains("/apis/networking.istio.io/v1beta1/gateways"),
        "v1 served gateways: no fallback"
    );
    let skipped = stderr(&out);
    assert!(
        skipped.contains("not served by this cluster, skipped:")
            && skipped.contains("rollouts.argoproj.io")
            && skipped.contains("sidecars.networking.istio.io"),
        "{skipped}"
    );
}

#[test]
fn cluster_audit_without_a_cluster_is_a_clear_error() {
    let dir = scratch("cluster-none");
    let missing = dir.join("no-such-kubeconfig");
    let out = meshguard(
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            missing.to_str().expect("utf-8"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "meshguard: cannot reach a cluster: no kubeconfig at {} (--kubeconfig); point at one with --kubeconfig FILE or KUBECONFIG=FILE\n",
            missing.display()
        )
    );
    // No flag, no KUBECONFIG, no ~/.kube/config, not a pod: one line that
    // names the default file.
    let home = dir.join("home");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args(["audit", "--cluster"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", &home)
        .output()
        .expect("meshguard runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "meshguard: cannot reach a cluster: no kubeconfig at {}/.kube/config (the default: KUBECONFIG is not set and this is not a pod); point at one with --kubeconfig FILE or KUBECONFIG=FILE\n",
            home.display()
        )
    );
    // A kubeconfig whose API server does not answer: a port this test
    // holds bound without listening, so connections are refused and no
    // other process can take it meanwhile.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let closed = socket.local_addr().expect("port");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {{server: \"http://{closed}\"}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: gone\n  context: {{cluster: gone, user: u}}\ncurrent-context: gone\n"
        ),
    )
    .expect("kubeconfig");
    let out = meshguard(
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach a cluster") && err.lines().count() < 3,
        "{err}"
    );
    drop(socket);
    let out = meshguard(&["audit", "--cluster", "examples/"], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "paths and --cluster exclude each other"
    );
}

//! Criterion benchmarks of the mesh index and posture (SPEC section 10),
//! over a generated mesh of 100 namespaces with 10,000 workloads, 10,000
//! Services and 2,000 Istio objects (run by hand: `cargo bench --bench
//! mesh`; CI only compiles them). Targets, on one core:
//!
//! - building the index from all of them: <= 1 s;
//! - the posture of every workload: <= 200 ms;
//! - one VirtualService admission review judged against the index (MG5xx
//!   included): <= 50 us;
//! - one watch event (an object read and applied): <= 20 us.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use meshguard::admission;
use meshguard::config::Config;
use meshguard::engine::Webhook;
use meshguard::lenient::Labels;
use meshguard::mesh::{Coverage, Indexed, MeshIndex};
use meshguard::object::{Kind, Object};
use meshguard::posture;
use serde_json::{Value, json};

const NAMESPACES: usize = 100;
const PER_NAMESPACE: usize = 100;

fn workload(ns: &str, i: usize) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("svc-{i}"), "namespace": ns},
        "spec": {"template": {
            "metadata": {"labels": {"app": format!("svc-{i}"), "version": "v1", "sidecar.istio.io/inject": "true"}},
            "spec": {"serviceAccountName": format!("svc-{i}"), "containers": [{"name": "app", "image": "app"}]}}}})
}

fn service(ns: &str, i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": ns},
        "spec": {"selector": {"app": format!("svc-{i}")}, "ports": [{"name": "http", "port": 80}]}})
}

fn virtual_service(ns: &str, i: usize) -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": format!("svc-{i}"), "namespace": ns},
        "spec": {"hosts": [format!("svc-{i}")], "http": [{"timeout": "5s", "route": [
            {"destination": {"host": format!("svc-{i}"), "subset": "v1"}, "weight": 90},
            {"destination": {"host": format!("svc-{i}"), "subset": "v2"}, "weight": 10}]}]}})
}

/// Twenty Istio objects per namespace.
fn istio(ns: &str) -> Vec<Value> {
    let mut out = vec![
        json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": ns}, "spec": {"mtls": {"mode": "STRICT"}}}),
    ];
    for i in 0..5 {
        out.push(json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": format!("svc-{i}"), "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": format!("svc-{i}")}},
                "rules": [{"from": [{"source": {"principals": [format!("cluster.local/ns/{ns}/sa/svc-{}", i + 1)]}}]}]}}));
        out.push(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": format!("svc-{i}"), "namespace": ns},
            "spec": {"host": format!("svc-{i}"), "subsets": [
                {"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}}));
        out.push(virtual_service(ns, i));
    }
    for i in 0..2 {
        out.push(
            json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": format!("external-{i}"), "namespace": ns},
            "spec": {"hosts": [format!("api-{i}.example.com")], "location": "MESH_EXTERNAL"}}),
        );
        out.push(
            json!({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": format!("svc-{i}"), "namespace": ns},
            "spec": {"workloadSelector": {"labels": {"app": format!("svc-{i}")}}}}),
        );
    }
    out
}

fn kind_of(v: &Value) -> Kind {
    Kind::from_api_version(
        v["apiVersion"].as_str().unwrap_or(""),
        v["kind"].as_str().unwrap_or(""),
    )
}

fn generated() -> Vec<Value> {
    let mut out = Vec::new();
    for n in 0..NAMESPACES {
        let ns = format!("team-{n}");
        out.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"istio-injection": "enabled"}}}));
        for i in 0..PER_NAMESPACE {
            out.push(workload(&ns, i));
            out.push(service(&ns, i));
        }
        out.extend(istio(&ns));
    }
    out
}

fn build(objects: &[Value]) -> MeshIndex {
    let mut index = MeshIndex::new(Coverage::Cluster);
    for v in objects {
        if let Ok(object) = Object::read(kind_of(v), v) {
            index.apply(&object);
        }
    }
    index
}

fn mesh(c: &mut Criterion) {
    let config = Config::default();
    let objects = generated();
    let index = build(&objects);
    let posture = posture::of_mesh(&index, &config);
    assert_eq!(posture.workloads.len(), NAMESPACES * PER_NAMESPACE);
    assert_eq!(posture.encrypted(), NAMESPACES * PER_NAMESPACE);
    assert_eq!(posture.authorized(), NAMESPACES * 5);

    // A review of a canary VirtualService to subset v3, which no
    // DestinationRule defines: MG501 must fire, or this times a skip.
    let mut vs = virtual_service("team-7", 3);
    vs["spec"]["http"][0]["route"][1]["destination"]["subset"] = json!("v3");
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "networking.istio.io", "version": "v1", "kind": "VirtualService"},
        "operation": "CREATE", "namespace": "team-7", "object": vs}})
    .to_string();
    let labels = Labels::from_pairs([("istio-injection", "enabled")]);
    let now = Timestamp::now();
    let decide = |body: &[u8]| {
        let parsed = admission::parse(body).expect("a review");
        admission::decide_in_mesh(
            &parsed,
            Webhook::Validate,
            &config,
            Some(&labels),
            Some(&index),
            now,
        )
    };
    let decided = decide(review.as_bytes());
    assert!(
        decided
            .decision
            .findings
            .iter()
            .any(|f| f.rule.as_str() == "MG501"),
        "{:?}",
        decided.decision.findings
    );

    let mut group = c.benchmark_group("mesh");
    group.sample_size(10);
    group.bench_function("index_10k_workloads_10k_services_2k_istio", |b| {
        b.iter(|| black_box(build(black_box(&objects)).len()))
    });
    group.bench_function("posture_10k_workloads", |b| {
        b.iter(|| black_box(posture::of_mesh(black_box(&index), &config).encrypted()))
    });
    group.finish();

    let mut group = c.benchmark_group("mesh_event");
    group.bench_function("virtualservice_review_against_index", |b| {
        b.iter(|| black_box(decide(black_box(review.as_bytes())).body.len()))
    });
    let mut live = index.clone();
    let event = workload("team-42", 17);
    group.bench_function("watch_event_applied", |b| {
        b.iter(|| {
            let object = Object::read(Kind::Deployment, black_box(&event)).expect("object");
            live.insert(Indexed::of(&object).expect("indexed"));
        })
    });
    group.finish();
}

criterion_group!(benches, mesh);
criterion_main!(benches);

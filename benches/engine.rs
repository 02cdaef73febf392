//! Criterion benchmarks of the policy engine (run by hand:
//! `cargo bench --bench engine`; CI only compiles them).
//!
//! - one AdmissionReview parsed, judged and answered: the 6.4 KB reference
//!   Deployment (target <= 15 us), a canary VirtualService (<= 15 us) and the
//!   1.4 MB review captured from kube-apiserver (<= 5 ms);
//! - audit throughput over a generated multi-document YAML stream
//!   (target >= 20,000 objects/s on one core).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use meshguard::admission;
use meshguard::audit::{self, AuditInput, AuditReport};
use meshguard::config::Config;
use meshguard::documents;
use meshguard::engine::Webhook;
use meshguard::lenient::Labels;
use meshguard::namespaces::NamespaceMap;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect("bench data")
}

fn namespaces() -> NamespaceMap {
    let mut view = NamespaceMap::default();
    view.insert(
        "bookinfo",
        Labels::from_pairs([("istio-injection", "enabled")]),
    );
    view.insert(
        "catalog",
        Labels::from_pairs([("istio-injection", "enabled")]),
    );
    view
}

/// A measured review: name, file, webhook, and its decision (allowed, the
/// rule ids found).
type Case = (
    &'static str,
    &'static str,
    Webhook,
    (bool, &'static [&'static str]),
);

fn reviews(c: &mut Criterion) {
    let config = Config::default();
    let view = namespaces();
    let now = Timestamp::now();
    // Each case with the decision it must get: (allowed, rule ids found).
    let cases: [Case; 4] = [
        (
            "deployment_6k_validate",
            "benches/data/admissionreview-deployment.json",
            Webhook::Validate,
            // Injected by the namespace; the marker is only the annotation.
            (true, &["MG104"]),
        ),
        (
            "deployment_6k_mutate",
            "benches/data/admissionreview-deployment.json",
            Webhook::Mutate,
            // The annotation is a marker: MGP2 adds nothing.
            (true, &[]),
        ),
        (
            "virtualservice_validate",
            "benches/data/admissionreview-virtualservice.json",
            Webhook::Validate,
            (true, &[]),
        ),
        (
            "bulky_1_4mb_validate",
            "tests/data/reviews/0131-validate-CREATE-Deployment-catalog-bulky.json",
            Webhook::Validate,
            (false, &["MG104"]),
        ),
    ];
    let mut group = c.benchmark_group("review");
    for (name, path, webhook, (allowed, rules)) in cases {
        let body = read(path);
        // What is measured is a real decision, not a skip path: each review
        // is judged and gets its expected decision before it is timed.
        let r = admission::review(&body, webhook, &config, &view, now).expect("decided");
        assert_eq!(r.decision.skipped, None, "{name} is judged, not skipped");
        let found: Vec<&str> = r
            .decision
            .findings
            .iter()
            .map(|f| f.rule.as_str())
            .collect();
        assert_eq!(
            (r.decision.allowed(), found.as_slice()),
            (allowed, rules),
            "{name}"
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = admission::review(black_box(&body), webhook, &config, &view, now)
                    .expect("decided");
                black_box(r.body.len())
            })
        });
    }
    group.finish();
}

/// A stream of `n` objects: Deployments (half of them breaking rules) and
/// their Services, as a GitOps repository renders them.
fn generated_stream(n: usize) -> String {
    let mut out = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {istio-injection: enabled}\n",
    );
    for i in 0..n / 2 {
        let sa = if i % 2 == 0 {
            format!("svc-{i}")
        } else {
            "default".to_owned()
        };
        out.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i}\n  namespace: shop\n  labels: {{app: svc-{i}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: svc-{i}}}}}\n  template:\n    metadata:\n      labels: {{app: svc-{i}, version: v1}}\n    spec:\n      serviceAccountName: {sa}\n      containers:\n      - name: app\n        image: registry.example.com/shop/svc-{i}:1.0.{i}\n        ports: [{{name: http, containerPort: 8080}}]\n        resources: {{requests: {{cpu: 100m, memory: 128Mi}}}}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: shop\nspec:\n  selector: {{app: svc-{i}}}\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n  - {{name: admin, port: 9000}}\n"
        ));
    }
    out
}

fn audit_throughput(c: &mut Criterion) {
    let config = Config::default();
    let now = Timestamp::now();
    let text = generated_stream(2000);
    let objects = documents::split(&text).expect("stream parses").len();
    // Every generated object is judged and half the Deployments break
    // MG101 (the `default` account): the throughput is of real judging.
    {
        let docs = documents::split(&text)
            .expect("parses")
            .into_iter()
            .map(|d| ("bench.yaml".to_owned(), d))
            .collect();
        let mut report = AuditReport::default();
        audit::audit_documents(docs, &AuditInput::default(), &config, now, &mut report);
        assert_eq!(report.objects, objects, "every object read");
        let mg101 = report
            .audited
            .iter()
            .filter(|o| o.findings.iter().any(|f| f.rule.as_str() == "MG101"))
            .count();
        assert_eq!(mg101, 500, "half of the 1000 Deployments break MG101");
    }
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(objects as u64));
    group.sample_size(20);
    group.bench_function("generated_stream_parse_and_judge", |b| {
        b.iter(|| {
            let docs = documents::split(black_box(&text)).expect("parses");
            let docs = docs
                .into_iter()
                .map(|d| ("bench.yaml".to_owned(), d))
                .collect();
            let mut report = AuditReport::default();
            audit::audit_documents(docs, &AuditInput::default(), &config, now, &mut report);
            black_box(report.audited.len())
        })
    });
    group.finish();
}

criterion_group!(benches, reviews, audit_throughput);
criterion_main!(benches);

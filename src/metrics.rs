//! Prometheus metrics of `meshguard serve` (SPEC section 9), served as
//! OpenMetrics text on `GET /metrics` of a plain-HTTP listener.
//!
//! One `Metrics`, registered once. Every label value comes from a fixed list
//! (webhook, kind, operation, decision, rule id, mutation id, reason,
//! result), never from request data: an unknown kind is `other`, an
//! unreadable request has operation `unknown`. The only free-form value is
//! the config hash of `meshguard_config_info`, and only the current one is
//! kept. Pure bookkeeping: nothing here does I/O.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::admission::Reviewed;
use crate::engine::Webhook;
use crate::rules::Action;

/// Request duration buckets, in seconds: sub-millisecond resolution where
/// meshguard answers (tens of microseconds), up to the API server's
/// longest webhook timeout (30 s would never be reached: 10 s is plenty).
const DURATION_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// The content type of `GET /metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a webhook request ended, the `decision` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    Warned,
    Patched,
    /// Not an AdmissionReview we could decide (answered 4xx).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Warned => "warned",
            Outcome::Patched => "patched",
            Outcome::Error => "error",
        }
    }

    /// The outcome of a decided review.
    pub fn of(webhook: Webhook, reviewed: &Reviewed) -> Outcome {
        let d = &reviewed.decision;
        match webhook {
            Webhook::Mutate if d.mutations.is_empty() => Outcome::Allowed,
            Webhook::Mutate => Outcome::Patched,
            Webhook::Validate if !d.allowed() => Outcome::Denied,
            Webhook::Validate if d.findings.iter().any(|f| f.action == Action::Warn) => {
                Outcome::Warned
            }
            Webhook::Validate => Outcome::Allowed,
        }
    }
}

/// Why a request was refused before a decision, the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// Not JSON, not an AdmissionReview v1, no uid... (400).
    Invalid,
    /// Not `application/json` (415).
    ContentType,
    /// Over the body limit (413).
    TooLarge,
    /// The body did not arrive in time (408).
    Timeout,
}

impl BadRequest {
    pub fn as_str(self) -> &'static str {
        match self {
            BadRequest::Invalid => "bad_request",
            BadRequest::ContentType => "content_type",
            BadRequest::TooLarge => "too_large",
            BadRequest::Timeout => "timeout",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    webhook: &'static str,
    kind: &'static str,
    operation: &'static str,
    decision: &'static str,
    dry_run: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabel {
    webhook: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViolationLabels {
    rule: &'static str,
    action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MutationLabel {
    mutation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HashLabel {
    hash: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NoLabels {}

/// One posture class of one namespace (SPEC section 10).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PostureLabels {
    pub namespace: String,
    pub sidecar: &'static str,
    pub mtls: &'static str,
    pub authz: &'static str,
}

/// The mesh index as of a scrape: `None` without a cluster (the gauges are
/// then absent).
#[derive(Debug, Clone, Default)]
pub struct MeshState {
    pub synced: bool,
    /// Times a watch of the index failed and was restarted (monotonic).
    pub watch_restarts: u64,
    /// Workloads by posture class; empty until synced.
    pub workloads: Vec<(PostureLabels, i64)>,
}

impl MeshState {
    /// Counts a posture by namespace and class.
    pub fn of(posture: &crate::posture::Posture) -> MeshState {
        let mut counts: std::collections::BTreeMap<
            (String, &'static str, &'static str, &'static str),
            i64,
        > = std::collections::BTreeMap::new();
        for w in &posture.workloads {
            let key = (
                w.namespace.clone(),
                if w.sidecar { "yes" } else { "no" },
                w.mtls.as_str(),
                w.authz.as_str(),
            );
            *counts.entry(key).or_default() += 1;
        }
        MeshState {
            synced: true,
            watch_restarts: 0,
            workloads: counts
                .into_iter()
                .map(|((namespace, sidecar, mtls, authz), n)| {
                    (
                        PostureLabels {
                            namespace,
                            sidecar,
                            mtls,
                            authz,
                        },
                        n,
                    )
                })
                .collect(),
        }
    }
}

type F64Gauge = Gauge<f64, AtomicU64>;

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<WebhookLabel, Histogram, fn() -> Histogram>,
    violations: Family<ViolationLabels, Counter>,
    patches: Family<MutationLabel, Counter>,
    bad_requests: Family<ReasonLabel, Counter>,
    in_flight: Gauge,
    config_reloads: Family<ResultLabel, Counter>,
    config_info: Family<HashLabel, Gauge>,
    config_hash: Mutex<Option<String>>,
    config_loaded_at: F64Gauge,
    config_ok: Gauge,
    cert_not_after: Gauge,
    cert_ok: Gauge,
    cert_reloads: Family<ResultLabel, Counter>,
    ready: Gauge,
    namespaces_synced: Gauge,
    namespaces_size: Gauge,
    watch_restarts: Counter,
    mesh_synced: Family<NoLabels, Gauge>,
    mesh_watch_restarts: Family<NoLabels, Counter>,
    mesh_workloads: Family<PostureLabels, Gauge>,
    /// Serializes scrapes, which bring the namespace view's numbers up to
    /// date before encoding.
    scrape: Mutex<()>,
}

/// The namespace view and readiness as of a scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ViewState {
    pub ready: bool,
    pub synced: bool,
    pub namespaces: usize,
    /// Times the watch was restarted since the start (monotonic).
    pub watch_restarts: u64,
}

fn histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("meshguard"),
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram),
            violations: Family::default(),
            patches: Family::default(),
            bad_requests: Family::default(),
            in_flight: Gauge::default(),
            config_reloads: Family::default(),
            config_info: Family::default(),
            config_hash: Mutex::new(None),
            config_loaded_at: F64Gauge::default(),
            config_ok: Gauge::default(),
            cert_not_after: Gauge::default(),
            cert_ok: Gauge::default(),
            cert_reloads: Family::default(),
            ready: Gauge::default(),
            namespaces_synced: Gauge::default(),
            namespaces_size: Gauge::default(),
            watch_restarts: Counter::default(),
            mesh_synced: Family::default(),
            mesh_watch_restarts: Family::default(),
            mesh_workloads: Family::default(),
            scrape: Mutex::new(()),
        };
        let r = &mut m.registry;
        r.register(
            "requests",
            "Admission requests by webhook, kind, operation, decision and dry run",
            m.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from the request's headers to the response, by webhook",
            m.duration.clone(),
        );
        r.register(
            "violations",
            "Rule violations reported by the validating webhook, after modes and ratcheting",
            m.violations.clone(),
        );
        r.register(
            "patches",
            "Mutations applied by the mutating webhook",
            m.patches.clone(),
        );
        r.register(
            "bad_requests",
            "Webhook requests refused before a decision, by reason",
            m.bad_requests.clone(),
        );
        r.register(
            "requests_in_flight",
            "Webhook requests being answered now",
            m.in_flight.clone(),
        );
        r.register(
            "config_reloads",
            "Config file reloads by result (a failed one keeps the previous config)",
            m.config_reloads.clone(),
        );
        r.register(
            "config_info",
            "The config in force: 1 for the hash of its file",
            m.config_info.clone(),
        );
        r.register(
            "config_last_reload_success_timestamp_seconds",
            "When the config in force was loaded (unix seconds)",
            m.config_loaded_at.clone(),
        );
        r.register(
            "config_last_reload_successful",
            "1 when the config file on disk is the one in force, 0 while a changed file is refused",
            m.config_ok.clone(),
        );
        r.register(
            "tls_certificate_last_reload_successful",
            "1 when the certificate files on disk are the ones serving, 0 while a changed pair is refused",
            m.cert_ok.clone(),
        );
        r.register(
            "tls_certificate_not_after_timestamp_seconds",
            "Expiry of the serving certificate in use (unix seconds)",
            m.cert_not_after.clone(),
        );
        r.register(
            "tls_certificate_reloads",
            "Serving certificate reloads by result (a failed one keeps the previous certificate)",
            m.cert_reloads.clone(),
        );
        r.register(
            "ready",
            "1 when /readyz answers 200 (config, certificate, namespace view)",
            m.ready.clone(),
        );
        r.register(
            "namespace_view_synced",
            "1 when the namespace view is synced with the cluster (or static, or off by design)",
            m.namespaces_synced.clone(),
        );
        r.register(
            "namespace_view_namespaces",
            "Namespaces in the namespace view",
            m.namespaces_size.clone(),
        );
        r.register(
            "namespace_watch_restarts",
            "Times the namespace watch failed and was restarted",
            m.watch_restarts.clone(),
        );
        r.register(
            "mesh_index_synced",
            "1 when every watch of the mesh index has finished its first list (absent without a cluster)",
            m.mesh_synced.clone(),
        );
        r.register(
            "mesh_index_watch_restarts",
            "Times a watch of the mesh index failed and was restarted (absent without a cluster)",
            m.mesh_watch_restarts.clone(),
        );
        r.register(
            "mesh_workloads",
            "Workloads of non-exempt namespaces by sidecar, effective mTLS and authorization class (absent until the mesh index has synced)",
            m.mesh_workloads.clone(),
        );
        r.register(
            "build",
            "meshguard's version and git commit",
            Info::new([
                ("version", env!("CARGO_PKG_VERSION")),
                (
                    "commit",
                    option_env!("MESHGUARD_GIT_COMMIT").unwrap_or("unknown"),
                ),
            ]),
        );
        // Every label combination a dashboard sums over exists from the
        // start, so rates are 0 rather than absent.
        for webhook in [Webhook::Validate, Webhook::Mutate] {
            let _ = m.duration.get_or_create(&WebhookLabel {
                webhook: webhook.as_str(),
            });
        }
        for result in ["success", "failure"] {
            let _ = m.config_reloads.get_or_create(&ResultLabel { result });
            let _ = m.cert_reloads.get_or_create(&ResultLabel { result });
        }
        for reason in [
            BadRequest::Invalid,
            BadRequest::ContentType,
            BadRequest::TooLarge,
            BadRequest::Timeout,
        ] {
            let _ = m.bad_requests.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        m
    }

    /// Marks a webhook request as in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Records a decided review.
    pub fn decided(&self, webhook: Webhook, reviewed: &Reviewed, elapsed: Duration) {
        let outcome = Outcome::of(webhook, reviewed);
        self.requests
            .get_or_create(&RequestLabels {
                webhook: webhook.as_str(),
                kind: reviewed.kind.as_str(),
                operation: reviewed.operation.as_str(),
                decision: outcome.as_str(),
                dry_run: if reviewed.dry_run { "true" } else { "false" },
            })
            .inc();
        for finding in &reviewed.decision.findings {
            if finding.action != Action::Off {
                self.violations
                    .get_or_create(&ViolationLabels {
                        rule: finding.rule.as_str(),
                        action: finding.action.as_str(),
                    })
                    .inc();
            }
        }
        for mutation in &reviewed.decision.mutations {
            self.patches
                .get_or_create(&MutationLabel {
                    mutation: mutation.id.as_str(),
                })
                .inc();
        }
        self.observe(webhook, elapsed);
    }

    /// Records a request refused before a decision.
    pub fn refused(&self, webhook: Webhook, reason: BadRequest, elapsed: Duration) {
        self.bad_requests
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
        self.requests
            .get_or_create(&RequestLabels {
                webhook: webhook.as_str(),
                kind: "other",
                operation: "unknown",
                decision: Outcome::Error.as_str(),
                dry_run: "false",
            })
            .inc();
        self.observe(webhook, elapsed);
    }

    fn observe(&self, webhook: Webhook, elapsed: Duration) {
        self.duration
            .get_or_create(&WebhookLabel {
                webhook: webhook.as_str(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records a config (re)load: `Some(content hash)` when it took effect.
    pub fn config_loaded(&self, hash: Option<String>, unix_now: f64) {
        let Some(hash) = hash else {
            self.config_reloads
                .get_or_create(&ResultLabel { result: "failure" })
                .inc();
            self.config_ok.set(0);
            return;
        };
        self.config_ok.set(1);
        let mut current = self
            .config_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = current.take() {
            self.config_info.remove(&HashLabel { hash: old });
            self.config_reloads
                .get_or_create(&ResultLabel { result: "success" })
                .inc();
        }
        self.config_info
            .get_or_create(&HashLabel { hash: hash.clone() })
            .set(1);
        *current = Some(hash);
        self.config_loaded_at.set(unix_now);
    }

    /// Records a certificate (re)load: `Some(not_after)` when it took
    /// effect. The first call is the start, not a reload.
    pub fn certificate_loaded(&self, not_after: Option<i64>, reload: bool) {
        if reload {
            let result = if not_after.is_some() {
                "success"
            } else {
                "failure"
            };
            self.cert_reloads
                .get_or_create(&ResultLabel { result })
                .inc();
        }
        self.cert_ok.set(i64::from(not_after.is_some()));
        if let Some(t) = not_after {
            self.cert_not_after.set(t);
        }
    }

    /// The OpenMetrics text, with the namespace view's numbers as of now.
    pub fn encode(&self, view: ViewState) -> String {
        self.encode_with_mesh(view, None)
    }

    /// The OpenMetrics text, with the namespace view's and the mesh
    /// index's numbers as of now.
    pub fn encode_with_mesh(&self, view: ViewState, mesh: Option<&MeshState>) -> String {
        let _serial = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.ready.set(i64::from(view.ready));
        self.namespaces_synced.set(i64::from(view.synced));
        self.namespaces_size
            .set(i64::try_from(view.namespaces).unwrap_or(i64::MAX));
        let seen = self.watch_restarts.get();
        if view.watch_restarts > seen {
            self.watch_restarts.inc_by(view.watch_restarts - seen);
        }
        self.mesh_synced.clear();
        self.mesh_workloads.clear();
        if let Some(mesh) = mesh {
            self.mesh_synced
                .get_or_create(&NoLabels {})
                .set(i64::from(mesh.synced));
            let restarts = self.mesh_watch_restarts.get_or_create(&NoLabels {});
            let seen = restarts.get();
            if mesh.watch_restarts > seen {
                restarts.inc_by(mesh.watch_restarts - seen);
            }
            for (labels, n) in &mesh.workloads {
                self.mesh_workloads.get_or_create(labels).set(*n);
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Decrements the in-flight gauge when a request is answered (or dropped).
pub struct InFlight<'m>(&'m Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A short, stable content hash of a config file (FNV-1a, 64 bits, hex):
/// enough to tell which file is in force across replicas.
pub fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_in_the_output_from_the_start() {
        let m = Metrics::new();
        m.config_loaded(Some(content_hash(b"a")), 1.0);
        m.certificate_loaded(Some(2_000_000_000), false);
        let text = m.encode(ViewState::default());
        for name in [
            "meshguard_config_reloads_total{result=\"failure\"} 0",
            "meshguard_tls_certificate_reloads_total{result=\"success\"} 0",
            "meshguard_bad_requests_total{reason=\"too_large\"} 0",
            "meshguard_tls_certificate_not_after_timestamp_seconds 2000000000",
            "meshguard_requests_in_flight 0",
            "meshguard_ready 0",
            "meshguard_build_info{version=\"",
            "# EOF",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
    }

    #[test]
    fn a_new_config_replaces_the_old_hash() {
        let m = Metrics::new();
        m.config_loaded(Some("aaaa".into()), 1.0);
        m.config_loaded(None, 2.0);
        let refused = m.encode(ViewState::default());
        assert!(
            refused.contains("meshguard_config_last_reload_successful 0"),
            "{refused}"
        );
        assert!(
            refused.contains("meshguard_config_info{hash=\"aaaa\"} 1"),
            "{refused}"
        );
        m.config_loaded(Some("bbbb".into()), 3.0);
        let text = m.encode(ViewState::default());
        assert!(!text.contains("hash=\"aaaa\""), "{text}");
        assert!(
            text.contains("meshguard_config_info{hash=\"bbbb\"} 1"),
            "{text}"
        );
        assert!(text.contains("meshguard_config_reloads_total{result=\"success\"} 1"));
        assert!(text.contains("meshguard_config_reloads_total{result=\"failure\"} 1"));
        assert!(text.contains("meshguard_config_last_reload_success_timestamp_seconds 3.0"));
        assert!(
            text.contains("meshguard_config_last_reload_successful 1"),
            "{text}"
        );
    }

    #[test]
    fn watch_restarts_follow_the_view_monotonically() {
        let m = Metrics::new();
        let view = |n| ViewState {
            watch_restarts: n,
            ..ViewState::default()
        };
        m.encode(view(3));
        let text = m.encode(view(2));
        assert!(
            text.contains("meshguard_namespace_watch_restarts_total 3"),
            "{text}"
        );
    }

    #[test]
    fn content_hash_is_stable() {
        assert_eq!(content_hash(b""), "cbf29ce484222325");
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }
}

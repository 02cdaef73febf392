//! The install manifests of `deploy/` (rendered by the real `kubectl
//! kustomize`) and `meshguard certs`: webhook configurations that are safe
//! by construction, objects that deserialize into the Kubernetes types, a
//! Deployment that matches what `meshguard serve` really serves, a ConfigMap
//! equal to `config default`, and certificates a TLS client accepts.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use meshguard::certs;
use meshguard::config::Config;
use meshguard::rules::{Action, RuleId};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::harness::{Server, scratch};
use crate::util::{meshguard, repo, stderr, stdout};

const NAMESPACE: &str = "meshguard-system";

/// `kubectl kustomize DIR`, parsed into documents.
fn render(dir: &Path) -> Vec<Value> {
    let out = Command::new("kubectl")
        .args(["kustomize", dir.to_str().expect("utf-8")])
        .output()
        .expect("kubectl (client) is on PATH");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    meshguard::documents::split(&text)
        .expect("rendered YAML parses")
        .into_iter()
        .map(|d| d.value)
        .collect()
}

/// A copy of `deploy/` with `meshguard certs` output in the static-certs
/// overlay, as a user would prepare it.
fn deploy_with_certs(name: &str) -> std::path::PathBuf {
    let root = scratch(name).join("deploy");
    copy_dir(&repo("deploy"), &root);
    let out_dir = root.join("overlays/static-certs/certs");
    let out = meshguard(
        &["certs", "--out-dir", out_dir.to_str().expect("utf-8")],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    root
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every installable rendering: (name, documents).
fn installs() -> Vec<(&'static str, Vec<Value>)> {
    let with_certs = deploy_with_certs("deploy-installs");
    vec![
        ("base", render(&repo("deploy/base"))),
        (
            "cert-manager",
            render(&repo("deploy/overlays/cert-manager")),
        ),
        ("audit-only", render(&repo("deploy/overlays/audit-only"))),
        (
            "static-certs",
            render(&with_certs.join("overlays/static-certs")),
        ),
    ]
}

fn of_kind<'d>(docs: &'d [Value], kind: &str) -> Vec<&'d Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn typed<T: DeserializeOwned>(doc: &Value) -> T {
    serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} {}: {e}", doc["kind"], doc["metadata"]["name"]))
}

fn one<T: DeserializeOwned>(docs: &[Value], kind: &str) -> T {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "one {kind}");
    typed(found[0])
}

#[test]
fn every_rendering_deserializes_into_kubernetes_types_with_labels_and_namespace() {
    let cluster_scoped = [
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ];
    for (name, docs) in installs() {
        for doc in &docs {
            let kind = doc["kind"].as_str().expect("kind");
            match kind {
                "Namespace" => drop(typed::<Namespace>(doc)),
                "ServiceAccount" => drop(typed::<ServiceAccount>(doc)),
                "ClusterRole" => drop(typed::<ClusterRole>(doc)),
                "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(doc)),
                "ConfigMap" => drop(typed::<ConfigMap>(doc)),
                "Deployment" => drop(typed::<Deployment>(doc)),
                "Service" => drop(typed::<Service>(doc)),
                "PodDisruptionBudget" => drop(typed::<PodDisruptionBudget>(doc)),
                "NetworkPolicy" => drop(typed::<NetworkPolicy>(doc)),
                "ValidatingWebhookConfiguration" => {
                    drop(typed::<ValidatingWebhookConfiguration>(doc))
                }
                "MutatingWebhookConfiguration" => drop(typed::<MutatingWebhookConfiguration>(doc)),
                "Secret" => {
                    // kustomize folds base64 into lines, which the API
                    // server's decoder (Go) skips and k8s-openapi's does not.
                    let mut unfolded = doc.clone();
                    if let Some(data) = unfolded["data"].as_object_mut() {
                        for v in data.values_mut() {
                            if let Some(text) = v.as_str() {
                                *v = Value::String(text.replace('\n', ""));
                            }
                        }
                    }
                    let secret: k8s_openapi::api::core::v1::Secret = typed(&unfolded);
                    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"), "{name}");
                    let data = secret.data.expect("data");
                    assert!(
                        data.contains_key("tls.crt") && data.contains_key("tls.key"),
                        "{name}"
                    );
                }
                "Issuer" | "Certificate" => {}
                other => panic!("{name}: unexpected kind {other}"),
            }
            assert_eq!(
                doc["metadata"]["labels"]["app.kubernetes.io/name"], "meshguard",
                "{name}: {kind} {} carries the app label",
                doc["metadata"]["name"]
            );
            if cluster_scoped.contains(&kind) {
                assert!(
                    doc["metadata"]["namespace"].is_null(),
                    "{name}: {kind} is cluster-scoped"
                );
            } else {
                assert_eq!(
                    doc["metadata"]["namespace"], NAMESPACE,
                    "{name}: {kind} namespace"
                );
            }
        }
        for kind in [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ] {
            assert_eq!(of_kind(&docs, kind).len(), 1, "{name}: one {kind}");
        }
    }
}

/// The exempt namespaces (SPEC section 2) and the Istio webhook's subset.
const EXCLUDED_WORKLOADS: [&str; 5] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "istio-system",
    NAMESPACE,
];
const EXCLUDED_ISTIO: [&str; 4] = ["kube-system", "kube-public", "kube-node-lease", NAMESPACE];

/// The common shape of both webhook kinds, for the checks.
struct Hook {
    name: String,
    path: String,
    failure_policy: String,
    rules: Vec<RuleWithOperations>,
    selector: Option<LabelSelector>,
    versions: Vec<String>,
    side_effects: String,
    timeout: Option<i32>,
    match_policy: Option<String>,
    ca_bundle: bool,
}

/// Reads one webhook of either kind into a `Hook`.
macro_rules! hook {
    ($w:expr) => {{
        let w = $w;
        Hook {
            name: w.name,
            path: w
                .client_config
                .service
                .and_then(|s| s.path)
                .unwrap_or_default(),
            failure_policy: w.failure_policy.unwrap_or_default(),
            rules: w.rules.unwrap_or_default(),
            selector: w.namespace_selector,
            versions: w.admission_review_versions,
            side_effects: w.side_effects,
            timeout: w.timeout_seconds,
            match_policy: w.match_policy,
            ca_bundle: w.client_config.ca_bundle.is_some(),
        }
    }};
}

fn hooks(docs: &[Value]) -> Vec<Hook> {
    let validating: ValidatingWebhookConfiguration = one(docs, "ValidatingWebhookConfiguration");
    let mutating: MutatingWebhookConfiguration = one(docs, "MutatingWebhookConfiguration");
    let mut out: Vec<Hook> = validating
        .webhooks
        .unwrap_or_default()
        .into_iter()
        .map(|w| hook!(w))
        .collect();
    for w in mutating.webhooks.unwrap_or_default() {
        assert_eq!(
            w.reinvocation_policy.as_deref(),
            Some("IfNeeded"),
            "{}",
            w.name
        );
        out.push(hook!(w));
    }
    out
}

/// The namespaces a selector keeps out by `kubernetes.io/metadata.name`,
/// and whether it honours the opt-out label.
fn exclusions(selector: &Option<LabelSelector>) -> (BTreeSet<String>, bool) {
    let mut names = BTreeSet::new();
    let mut opt_out = false;
    let expressions = selector
        .as_ref()
        .and_then(|s| s.match_expressions.clone())
        .unwrap_or_default();
    for e in expressions {
        let values = e.values.unwrap_or_default();
        match (e.key.as_str(), e.operator.as_str()) {
            ("kubernetes.io/metadata.name", "NotIn") => names.extend(values),
            ("meshguard.io/ignore", "NotIn") if values == ["true"] => opt_out = true,
            (key, op) => panic!("unexpected selector term {key} {op}"),
        }
    }
    (names, opt_out)
}

#[test]
fn webhook_configurations_are_safe_by_construction() {
    for (name, docs) in installs() {
        let hooks = hooks(&docs);
        assert_eq!(hooks.len(), 3, "{name}: three webhooks");
        let expected: BTreeSet<&str> = certs::WEBHOOKS
            .iter()
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        let found: BTreeSet<&str> = hooks.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            found, expected,
            "{name}: the webhook names `meshguard certs` patches"
        );
        for h in &hooks {
            let what = format!("{name}: {}", h.name);
            assert_eq!(h.versions, ["v1"], "{what}: v1 only");
            assert_eq!(h.side_effects, "None", "{what}");
            assert_eq!(h.match_policy.as_deref(), Some("Equivalent"), "{what}");
            assert_eq!(h.timeout, Some(3), "{what}: timeoutSeconds (README: 3)");
            let expected_path = if h.name.contains(".mutate.") {
                "/mutate"
            } else {
                "/validate"
            };
            assert_eq!(h.path, expected_path, "{what}");
            for rule in &h.rules {
                let ops = rule.operations.clone().unwrap_or_default();
                assert!(!ops.is_empty(), "{what}: operations listed");
                for op in &ops {
                    assert!(op == "CREATE" || op == "UPDATE", "{what}: operation {op}");
                }
                for list in [&rule.api_groups, &rule.api_versions, &rule.resources] {
                    for item in list.clone().unwrap_or_default() {
                        assert!(!item.contains('*'), "{what}: no wildcard ({item})");
                        assert!(!item.contains('/'), "{what}: no subresource ({item})");
                    }
                }
            }
            let (excluded, opt_out) = exclusions(&h.selector);
            // Workloads can opt out by label; the Istio rules cannot.
            assert_eq!(
                opt_out,
                !h.name.starts_with("istio."),
                "{what}: meshguard.io/ignore=true"
            );
            let want: BTreeSet<String> = if h.name.starts_with("istio.") {
                EXCLUDED_ISTIO.iter().map(|s| s.to_string()).collect()
            } else {
                EXCLUDED_WORKLOADS.iter().map(|s| s.to_string()).collect()
            };
            assert_eq!(excluded, want, "{what}: excluded namespaces");
            // Failure policy: enforcement fails closed, except in the
            // audit-only phase; mutation always fails open.
            let policy = match (name, h.path.as_str()) {
                ("audit-only", _) | (_, "/mutate") => "Ignore",
                _ => "Fail",
            };
            assert_eq!(h.failure_policy, policy, "{what}: failurePolicy");
            let needs_ca = name == "static-certs";
            if needs_ca {
                assert!(h.ca_bundle, "{what}: caBundle patched in");
            }
        }
        if name == "cert-manager" || name == "audit-only" {
            for kind in [
                "ValidatingWebhookConfiguration",
                "MutatingWebhookConfiguration",
            ] {
                let doc = of_kind(&docs, kind)[0];
                assert_eq!(
                    doc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                    format!("{NAMESPACE}/meshguard-serving"),
                    "{name}: {kind}"
                );
            }
        }
    }
}

/// (group, resource) of every kind the engine judges, as the API server
/// names them (SPEC section 1, Services, Namespaces, Istio kinds).
fn judged_resources() -> BTreeSet<(String, String, bool)> {
    let workloads = [
        ("", "pods"),
        ("", "replicationcontrollers"),
        ("", "namespaces"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apps", "replicasets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("argoproj.io", "rollouts"),
    ];
    let istio = [
        ("security.istio.io", "peerauthentications"),
        ("security.istio.io", "authorizationpolicies"),
        ("security.istio.io", "requestauthentications"),
        ("networking.istio.io", "destinationrules"),
        ("networking.istio.io", "virtualservices"),
        ("networking.istio.io", "gateways"),
        ("networking.istio.io", "serviceentries"),
        ("networking.istio.io", "sidecars"),
    ];
    let mut out = BTreeSet::new();
    for (g, r) in workloads.iter().chain(&istio) {
        out.insert((g.to_string(), r.to_string(), true));
    }
    out.insert((String::new(), "services".to_owned(), false));
    out
}

#[test]
fn webhook_rules_cover_exactly_the_kinds_the_engine_judges() {
    // Each (group, resource) must map to a kind meshguard judges, at a
    // version it judges...
    let docs = render(&repo("deploy/base"));
    let kind_of = |group: &str, resource: &str| -> &'static str {
        match resource {
            "pods" => "Pod",
            "replicationcontrollers" => "ReplicationController",
            "services" => "Service",
            "namespaces" => "Namespace",
            "deployments" => "Deployment",
            "statefulsets" => "StatefulSet",
            "daemonsets" => "DaemonSet",
            "replicasets" => "ReplicaSet",
            "jobs" => "Job",
            "cronjobs" => "CronJob",
            "rollouts" => "Rollout",
            "peerauthentications" => "PeerAuthentication",
            "authorizationpolicies" => "AuthorizationPolicy",
            "requestauthentications" => "RequestAuthentication",
            "destinationrules" => "DestinationRule",
            "virtualservices" => "VirtualService",
            "gateways" => "Gateway",
            "serviceentries" => "ServiceEntry",
            "sidecars" => "Sidecar",
            other => panic!("{group}/{other} is not a resource meshguard judges"),
        }
    };
    let mut validated = BTreeSet::new();
    let mut mutated = BTreeSet::new();
    for h in hooks(&docs) {
        for rule in &h.rules {
            for group in rule.api_groups.clone().unwrap_or_default() {
                for version in rule.api_versions.clone().unwrap_or_default() {
                    for resource in rule.resources.clone().unwrap_or_default() {
                        let kind = kind_of(&group, &resource);
                        let judged = meshguard::object::Kind::from_gvk(&group, &version, kind);
                        assert_ne!(
                            judged,
                            meshguard::object::Kind::Other,
                            "{}: {group}/{version} {resource} is not judged",
                            h.name
                        );
                        if h.path == "/mutate" {
                            mutated.insert((group.clone(), resource.clone()));
                        } else {
                            validated.insert((group.clone(), resource.clone(), true));
                        }
                    }
                }
            }
        }
    }
    // ...and every judged kind is sent to the validating webhook; the
    // mutating one gets exactly the kinds MGP1/MGP2 patch.
    let all: BTreeSet<(String, String)> = judged_resources()
        .into_iter()
        .map(|(g, r, _)| (g, r))
        .collect();
    let validated: BTreeSet<(String, String)> =
        validated.into_iter().map(|(g, r, _)| (g, r)).collect();
    assert_eq!(validated, all, "validating webhooks");
    let patched: BTreeSet<(String, String)> = judged_resources()
        .into_iter()
        .filter(|(g, _, patched)| *patched && !g.ends_with("istio.io"))
        .map(|(g, r, _)| (g, r))
        .collect();
    assert_eq!(mutated, patched, "mutating webhook");
}

/// The value after `flag` in a container's args.
fn arg<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} in {args:?}"));
    &args[i + 1]
}

fn port_of(addr: &str) -> i32 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("host:port")
}

#[test]
fn the_deployment_matches_what_meshguard_serve_serves() {
    let docs = render(&repo("deploy/base"));
    let deployment: Deployment = one(&docs, "Deployment");
    let spec = deployment.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.expect("pod spec");
    assert!(
        pod.affinity.and_then(|a| a.pod_anti_affinity).is_some(),
        "anti-affinity"
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("meshguard"));
    let security = pod.security_context.expect("pod securityContext");
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(
        security.seccomp_profile.map(|s| s.type_),
        Some("RuntimeDefault".to_owned())
    );
    let grace = pod.termination_grace_period_seconds.expect("grace period");
    let [container] = pod.containers.as_slice() else {
        panic!("one container");
    };
    let args = container.args.clone().expect("args");
    assert_eq!(args[0], "serve");
    // The drain (--grace, default 20s) fits in the termination grace period.
    let drain = args.iter().position(|a| a == "--grace").map_or(20, |i| {
        args[i + 1]
            .trim_end_matches('s')
            .parse::<i64>()
            .expect("seconds")
    });
    // README: a 5 s preStop pause (traffic moves away before SIGTERM), a
    // 20 s drain, a 30 s termination grace period.
    let pre_stop = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.sleep.as_ref())
        .map(|s| s.seconds)
        .expect("a preStop sleep");
    assert_eq!((pre_stop, drain, grace), (5, 20, 30));
    assert!(
        grace > pre_stop + drain,
        "terminationGracePeriodSeconds {grace} > preStop {pre_stop} + drain {drain}"
    );
    let c_security = container
        .security_context
        .clone()
        .expect("container securityContext");
    assert_eq!(c_security.read_only_root_filesystem, Some(true));
    assert_eq!(c_security.allow_privilege_escalation, Some(false));
    assert_eq!(
        c_security.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_owned()])
    );
    let resources = container.resources.clone().expect("resources");
    assert!(resources.requests.is_some() && resources.limits.is_some());

    // Ports: the named container ports are the ones `serve` listens on.
    let ports = container.ports.clone().expect("ports");
    let named = |name: &str| -> i32 {
        ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("port {name}"))
            .container_port
    };
    assert_eq!(named("https"), port_of(arg(&args, "--listen")));
    assert_eq!(named("metrics"), port_of(arg(&args, "--metrics-listen")));

    // Probes point at real paths of the HTTPS listener.
    for (probe, path) in [
        (container.readiness_probe.clone(), "/readyz"),
        (container.liveness_probe.clone(), "/healthz"),
    ] {
        let get = probe.and_then(|p| p.http_get).expect("httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        let port = match get.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => named(&name),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => p,
        };
        assert_eq!(port, named("https"), "{path}");
    }

    // The mounted files are the ones the args name.
    let mounts = container.volume_mounts.clone().expect("mounts");
    for flag in ["--config", "--tls-cert", "--tls-key"] {
        let file = arg(&args, flag);
        assert!(
            mounts
                .iter()
                .any(|m| file.starts_with(&format!("{}/", m.mount_path))
                    && m.read_only == Some(true)),
            "{flag} {file} is on a read-only mount"
        );
    }

    // The Service's target ports exist on the container; names follow
    // Istio's protocol convention (MG201).
    let service: Service = one(&docs, "Service");
    for port in service.spec.and_then(|s| s.ports).expect("service ports") {
        let name = port.name.expect("named port");
        assert!(name == "https" || name.starts_with("http-"), "{name}");
        match port.target_port.expect("targetPort") {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(n) => drop(named(&n)),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => {
                assert!(ports.iter().any(|c| c.container_port == p))
            }
        }
    }

    // The ClusterRole grants what the namespace view and the mesh index
    // need (SPEC section 10: read-only list/watch of those kinds) and
    // nothing more: no Secrets, no write verb, no wildcard.
    let role: ClusterRole = one(&docs, "ClusterRole");
    let rules: Vec<(Vec<String>, Vec<String>, Vec<String>)> = role
        .rules
        .expect("rules")
        .into_iter()
        .map(|r| {
            assert!(r.resource_names.is_none() && r.non_resource_urls.is_none());
            (
                r.api_groups.unwrap_or_default(),
                r.resources.unwrap_or_default(),
                r.verbs,
            )
        })
        .collect();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let read = ["list", "watch"];
    let table: [(&[&str], &[&str], &[&str]); 8] = [
        (&[""], &["namespaces"], &["get", "list", "watch"]),
        (
            &[""],
            &[
                "pods",
                "replicationcontrollers",
                "services",
                "serviceaccounts",
            ],
            &read,
        ),
        (
            &["apps"],
            &["deployments", "statefulsets", "daemonsets", "replicasets"],
            &read,
        ),
        (&["batch"], &["jobs", "cronjobs"], &read),
        (&["argoproj.io"], &["rollouts"], &read),
        (
            &["security.istio.io"],
            &[
                "peerauthentications",
                "authorizationpolicies",
                "requestauthentications",
            ],
            &read,
        ),
        (
            &["networking.istio.io"],
            &[
                "destinationrules",
                "virtualservices",
                "gateways",
                "serviceentries",
                "sidecars",
            ],
            &read,
        ),
        (&["gateway.networking.k8s.io"], &["gateways"], &read),
    ];
    let want: Vec<(Vec<String>, Vec<String>, Vec<String>)> = table
        .iter()
        .map(|(g, r, v)| (strings(g), strings(r), strings(v)))
        .collect();
    assert_eq!(rules, want, "ClusterRole rules");
    // ...which are exactly the resources `serve` watches and `audit
    // --cluster` lists (one table).
    let granted: BTreeSet<(String, String)> = want
        .iter()
        .flat_map(|(groups, resources, _)| {
            groups
                .iter()
                .flat_map(move |g| resources.iter().map(move |r| (g.clone(), r.clone())))
        })
        .collect();
    let watched: BTreeSet<(String, String)> = meshguard::resources::RESOURCES
        .iter()
        .map(|r| (r.group.to_owned(), r.plural.to_owned()))
        .collect();
    assert_eq!(
        granted, watched,
        "ClusterRole = meshguard::resources::RESOURCES"
    );
}

#[test]
fn a_server_started_with_the_deployment_args_answers_its_probes() {
    // The Deployment's args, with the cluster paths replaced by local files.
    let docs = render(&repo("deploy/base"));
    let deployment: Deployment = one(&docs, "Deployment");
    let pod = deployment.spec.and_then(|s| s.template.spec).expect("pod");
    let mut args = pod.containers[0].args.clone().expect("args");
    let dir = scratch("deploy-args");
    let issued = meshguard(&["certs", "--out-dir", dir.to_str().expect("utf-8")], None);
    assert_eq!(issued.status.code(), Some(0), "{}", stderr(&issued));
    let config_map: ConfigMap = one(&docs, "ConfigMap");
    let config = dir.join("config.yaml");
    std::fs::write(&config, &config_map.data.expect("data")["config.yaml"]).expect("write");
    for (flag, local) in [
        ("--config", config.clone()),
        ("--tls-cert", dir.join("tls.crt")),
        ("--tls-key", dir.join("tls.key")),
    ] {
        let i = args.iter().position(|a| a == flag).expect("flag");
        args[i + 1] = local.display().to_string();
    }
    // Ports and the log format come from the harness (ephemeral ports).
    for flag in ["--listen", "--metrics-listen", "--log-format"] {
        if let Some(i) = args.iter().position(|a| a == flag) {
            args.drain(i..=i + 1);
        }
    }
    assert_eq!(args.remove(0), "serve");
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&refs);
    let ca = std::fs::read(dir.join("ca.crt")).expect("ca");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let tls = tls_for(&ca);
        for path in ["/healthz", "/readyz"] {
            let mut conn =
                connect_as(server.addr, tls.clone(), "meshguard.meshguard-system.svc").await;
            assert_eq!(conn.get(path).await.expect(path).status, 200, "{path}");
        }
    });
    let (_, metrics) = server.scrape();
    assert!(metrics.contains("meshguard_ready 1"), "{metrics}");
}

fn tls_for(ca: &[u8]) -> std::sync::Arc<rustls::ClientConfig> {
    crate::harness::client_config(ca, None, &[b"http/1.1"])
}

/// A connection that checks the certificate for `name` (not `localhost`).
async fn connect_as(
    addr: std::net::SocketAddr,
    tls: std::sync::Arc<rustls::ClientConfig>,
    name: &'static str,
) -> crate::harness::Conn {
    crate::harness::Conn::open_as(addr, tls, name)
        .await
        .unwrap_or_else(|e| panic!("TLS to {addr} as {name}: {e}"))
}

#[test]
fn the_config_maps_are_the_default_config_and_a_warn_only_one() {
    let default = meshguard(&["config", "default"], None);
    let base = render(&repo("deploy/base"));
    let cm: ConfigMap = one(&base, "ConfigMap");
    assert_eq!(
        cm.data.expect("data")["config.yaml"],
        stdout(&default),
        "base ConfigMap = `meshguard config default`"
    );

    let audit_only = render(&repo("deploy/overlays/audit-only"));
    let cm: ConfigMap = one(&audit_only, "ConfigMap");
    let config =
        Config::parse(&cm.data.expect("data")["config.yaml"]).expect("audit-only config is valid");
    for id in RuleId::ALL {
        let action = config.rule(id).action;
        assert!(action <= Action::Warn, "audit-only: {id} is {action}");
        assert!(
            config.rule(id).enforce_after.is_none(),
            "audit-only: {id} never turns to deny"
        );
    }
    assert!(
        !config.mutations.namespace_injection && !config.mutations.sidecar_marker,
        "audit-only patches nothing"
    );
}

#[test]
fn prometheus_rule_carries_exactly_the_alert_rules() {
    let read = |file: &str| {
        let text =
            std::fs::read_to_string(repo(&format!("deploy/monitoring/{file}"))).expect("read");
        meshguard::documents::split(&text)
            .expect("YAML")
            .remove(0)
            .value
    };
    let alerts = read("alerts.yaml");
    let rule = read("prometheusrule.yaml");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert!(alerts["groups"].as_array().is_some_and(|g| !g.is_empty()));
    assert_eq!(rule["spec"]["groups"], alerts["groups"]);
    let docs = render(&repo("deploy/monitoring"));
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "PrometheusRule", "ServiceMonitor"])
    );
}

#[test]
fn certs_issue_a_serving_certificate_for_the_service_and_never_overwrite() {
    let dir = scratch("certs").join("out");
    let args = [
        "certs",
        "--service",
        "guard",
        "--namespace",
        "mesh",
        "--out-dir",
        dir.to_str().expect("utf-8"),
        "--days",
        "30",
    ];
    let out = meshguard(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for file in certs::FILES {
        assert!(stdout(&out).contains(file), "{file} reported");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("tls.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "tls.key is private");
    }

    // SANs and validity, read with x509-parser.
    let cert_pem = std::fs::read(dir.join("tls.crt")).expect("cert");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&cert_pem).expect("PEM");
    let cert = pem.parse_x509().expect("X.509");
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .expect("SAN extension")
        .expect("SANs")
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        sans,
        [
            "DNSName(guard.mesh.svc)",
            "DNSName(guard.mesh.svc.cluster.local)"
        ]
    );
    let days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
    assert!((30..=31).contains(&days), "{days} days");

    // The patch carries the CA, as kustomize reads it: every webhook of
    // both configurations, by name, with caBundle = base64(ca.crt).
    let ca = std::fs::read(dir.join("ca.crt")).expect("ca");
    let patch = std::fs::read_to_string(dir.join("webhook-ca-patch.yaml")).expect("patch");
    let bundle = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&ca)
    };
    let docs: Vec<Value> = meshguard::documents::split(&patch)
        .expect("the patch is YAML")
        .into_iter()
        .map(|d| d.value)
        .collect();
    let patched: BTreeSet<(String, String)> = docs
        .iter()
        .flat_map(|d| {
            assert_eq!(d["metadata"]["name"], "meshguard", "{d}");
            d["webhooks"]
                .as_array()
                .expect("webhooks")
                .iter()
                .map(|w| {
                    assert_eq!(w["clientConfig"]["caBundle"], bundle.as_str(), "{w}");
                    (
                        d["kind"].as_str().expect("kind").to_owned(),
                        w["name"].as_str().expect("name").to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let rendered = render(&repo("deploy/base"));
    let hooks_of = |kind: &str| -> Vec<(String, String)> {
        of_kind(&rendered, kind)[0]["webhooks"]
            .as_array()
            .expect("webhooks")
            .iter()
            .map(|w| {
                (
                    kind.to_owned(),
                    w["name"].as_str().expect("name").to_owned(),
                )
            })
            .collect()
    };
    let mut want: BTreeSet<(String, String)> = hooks_of("ValidatingWebhookConfiguration")
        .into_iter()
        .collect();
    want.extend(hooks_of("MutatingWebhookConfiguration"));
    assert_eq!(patched, want, "every webhook of deploy/base, by name");

    // A server with the pair is trusted through that CA, under the Service's
    // names (rustls verifies the chain and the name).
    let server = Server::start(&[
        "--tls-cert",
        dir.join("tls.crt").to_str().expect("utf-8"),
        "--tls-key",
        dir.join("tls.key").to_str().expect("utf-8"),
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for name in ["guard.mesh.svc", "guard.mesh.svc.cluster.local"] {
            let mut conn = connect_as(server.addr, tls_for(&ca), name).await;
            assert_eq!(conn.get("/healthz").await.expect("healthz").status, 200);
        }
        let wrong =
            crate::harness::Conn::open_as(server.addr, tls_for(&ca), "other.mesh.svc").await;
        assert!(wrong.is_err(), "a name not on the certificate is refused");
    });

    // Again without --force: refused, nothing changed.
    let before: Vec<Vec<u8>> = certs::FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).expect("file"))
        .collect();
    let again = meshguard(&args, None);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let after: Vec<Vec<u8>> = certs::FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).expect("file"))
        .collect();
    assert_eq!(before, after, "a refused run changes nothing");

    // With --force: new certificates.
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = meshguard(&forced, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(std::fs::read(dir.join("tls.crt")).expect("cert"), before[1]);
}

#[test]
fn certs_refuses_bad_names() {
    let dir = scratch("certs-bad");
    let out = meshguard(
        &[
            "certs",
            "--service",
            "Bad_Name",
            "--out-dir",
            dir.to_str().expect("utf-8"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Bad_Name"), "{}", stderr(&out));
    assert!(!dir.join("tls.key").exists());
}

#[test]
fn selectors_match_the_pods_and_the_network_policy_guards_metrics() {
    let docs = render(&repo("deploy/base"));
    let deployment: Deployment = one(&docs, "Deployment");
    let spec = deployment.spec.expect("spec");
    let pod_labels = spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .expect("pod labels");
    let matches = |selector: &std::collections::BTreeMap<String, String>| {
        !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
    };
    assert!(matches(
        &spec
            .selector
            .match_labels
            .clone()
            .expect("deployment selector")
    ));
    let service: Service = one(&docs, "Service");
    assert!(matches(
        &service
            .spec
            .and_then(|s| s.selector)
            .expect("service selector")
    ));
    let pdb: PodDisruptionBudget = one(&docs, "PodDisruptionBudget");
    let pdb_spec = pdb.spec.expect("pdb spec");
    assert!(matches(
        &pdb_spec
            .selector
            .and_then(|s| s.match_labels)
            .expect("pdb selector")
    ));
    assert!(pdb_spec.min_available.is_some() || pdb_spec.max_unavailable.is_some());

    let policy: NetworkPolicy = one(&docs, "NetworkPolicy");
    let policy = policy.spec.expect("policy spec");
    assert!(matches(
        &policy
            .pod_selector
            .and_then(|s| s.match_labels)
            .expect("pod selector")
    ));
    let ingress = policy.ingress.expect("ingress rules");
    let port_rule = |port: i32| {
        ingress
            .iter()
            .find(|r| {
                r.ports.iter().flatten().any(|p| {
                    p.port
                        == Some(
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(port),
                        )
                })
            })
            .unwrap_or_else(|| panic!("an ingress rule for port {port}"))
    };
    // The webhook port: from anywhere (the API server's address is not known).
    assert!(port_rule(8443).from.as_ref().is_none_or(|f| f.is_empty()));
    // The metrics port: only from the monitoring namespace.
    let from = port_rule(8080).from.clone().expect("metrics sources");
    assert_eq!(from.len(), 1);
    let ns = from[0]
        .namespace_selector
        .clone()
        .and_then(|s| s.match_labels)
        .expect("namespace selector");
    assert_eq!(
        ns.get("kubernetes.io/metadata.name").map(String::as_str),
        Some("monitoring")
    );
    assert!(from[0].pod_selector.is_none() && from[0].ip_block.is_none());
}

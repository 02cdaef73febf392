//! Real kube-apiserver traffic (tests/data, captured from kube-apiserver
//! 1.24): every review through the same code path as `meshguard review`
//! must give the decision of `expected.json`.

use std::collections::BTreeMap;

use base64::Engine as _;
use meshguard::admission;
use meshguard::config::Config;
use meshguard::engine::Webhook;
use meshguard::namespaces::NamespaceMap;
use meshguard::rules::{Action, RuleId};
use serde_json::Value;

use crate::util::{data, meshguard, now, stdout};

pub fn expected() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(data("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

/// Rule names and default actions of SPEC section 4, written out here
/// rather than read from src, so rendered answers are checked against the
/// spec and not against the code that renders them.
pub const SPEC_RULES: [(&str, &str, &str); 25] = [
    ("MG101", "dedicated-service-account", "deny"),
    ("MG102", "mesh-labels", "deny"),
    ("MG103", "sidecar-injection", "deny"),
    ("MG104", "sidecar-marker", "deny"),
    ("MG105", "proxy-uid", "deny"),
    ("MG106", "host-network", "deny"),
    ("MG107", "reserved-names-and-ports", "deny"),
    ("MG108", "misplaced-marker", "warn"),
    ("MG201", "service-port-protocol", "deny"),
    ("MG301", "namespace-injection", "deny"),
    ("MG401", "peer-authentication-strict", "deny"),
    ("MG402", "destination-rule-mtls", "deny"),
    ("MG403", "destination-rule-circuit-breaker", "warn"),
    ("MG404", "authorization-policy-least-privilege", "deny"),
    ("MG405", "virtual-service-weights", "deny"),
    ("MG406", "gateway-tls", "deny"),
    ("MG407", "external-service-control", "deny"),
    ("MG408", "egress-registry-only", "warn"),
    ("MG409", "route-timeout", "warn"),
    ("MG501", "subset-defined", "warn"),
    ("MG502", "subset-selects-pods", "warn"),
    ("MG503", "selector-matches-workload", "warn"),
    ("MG504", "principal-exists", "warn"),
    ("MG505", "authorization-needs-mtls", "warn"),
    ("MG506", "route-target-exists", "warn"),
];

fn spec_name(id: &str) -> &'static str {
    SPEC_RULES
        .iter()
        .find(|(i, _, _)| *i == id)
        .map(|(_, name, _)| *name)
        .unwrap_or_else(|| panic!("{id} is not a rule of the spec"))
}

/// The warning prefix of a ratcheted violation (README, Decisions).
pub const RATCHETED: &str = "(not denied: already broken before this update) ";

/// Checks one rendered AdmissionReview response (`response`, the bytes a
/// client received) for the review `request` against its `expected.json`
/// entry: the envelope, `allowed`, the 403 status and the rules its message
/// names, the rules of the warnings and their form (the 256-byte cut, the
/// ratchet prefix only on UPDATE), no audit annotations under the default
/// config, and the mutating answer's patch (with no warnings: each warning
/// is shown once, by the validating webhook).
pub fn assert_answer(file: &str, want: &Value, request: &[u8], response: &[u8]) {
    let request: Value = serde_json::from_slice(request).expect("review is JSON");
    let v: Value = serde_json::from_slice(response).expect("response is JSON");
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1", "{file}");
    assert_eq!(v["kind"], "AdmissionReview", "{file}");
    let r = &v["response"];
    assert_eq!(r["uid"], request["request"]["uid"], "{file}: uid echoed");
    for key in r.as_object().expect("response").keys() {
        assert!(
            [
                "uid",
                "allowed",
                "status",
                "warnings",
                "auditAnnotations",
                "patchType",
                "patch"
            ]
            .contains(&key.as_str()),
            "{file}: unexpected response.{key}"
        );
    }
    assert!(
        r.get("auditAnnotations").is_none(),
        "{file}: no audit rule by default"
    );
    let ids = |v: &Value| -> Vec<String> { strings(v) };
    if want["webhook"] == "mutate" {
        assert_eq!(r["allowed"], true, "{file}: mutate always allows");
        assert!(
            r.get("status").is_none() && r.get("warnings").is_none(),
            "{file}: {r}"
        );
        let patch = match r["patch"].as_str() {
            Some(b64) => {
                assert_eq!(r["patchType"], "JSONPatch", "{file}");
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .expect("base64");
                serde_json::from_slice(&bytes).expect("patch is JSON")
            }
            None => {
                assert!(r.get("patchType").is_none(), "{file}");
                Value::Array(Vec::new())
            }
        };
        assert_eq!(patch, want["patch"], "{file}: patch");
        return;
    }
    assert_eq!(r["allowed"], want["allowed"], "{file}: allowed");
    assert!(
        r.get("patch").is_none() && r.get("patchType").is_none(),
        "{file}"
    );
    // The 403 names every denied rule, one line each, with its fix.
    let mut denied: Vec<String> = Vec::new();
    if r["allowed"] == false {
        let status = &r["status"];
        assert_eq!(
            (&status["code"], &status["reason"]),
            (&Value::from(403), &Value::from("Forbidden")),
            "{file}"
        );
        let message = status["message"].as_str().expect("status.message");
        let mut lines = message.split('\n');
        let head = lines.next().expect("a first line");
        let items: Vec<&str> = lines.collect();
        let plural = if items.len() == 1 { "" } else { "s" };
        assert_eq!(
            head,
            format!(
                "meshguard denied the request: {} violation{plural}",
                items.len()
            ),
            "{file}"
        );
        for item in items {
            let item = item
                .strip_prefix("- ")
                .unwrap_or_else(|| panic!("{file}: {item}"));
            let id = &item[..5];
            assert!(
                item.starts_with(&format!("{id} {} at ", spec_name(id)))
                    && item.contains(". Fix: "),
                "{file}: {item}"
            );
            denied.push(id.to_owned());
        }
    } else {
        assert!(r.get("status").is_none(), "{file}");
    }
    denied.sort();
    denied.dedup();
    assert_eq!(denied, ids(&want["deny"]), "{file}: denied rules");
    // Warnings: `MGxxx name: message`, at most 256 bytes, ratcheted ones
    // (only an UPDATE has an old object) prefixed.
    let update = request["request"]["operation"] == "UPDATE";
    let mut warned: Vec<String> = Vec::new();
    for w in r["warnings"].as_array().map_or(&[][..], Vec::as_slice) {
        let w = w.as_str().expect("a warning is a string");
        assert!(w.len() <= 256, "{file}: {} bytes: {w}", w.len());
        let plain = match w.strip_prefix(RATCHETED) {
            Some(rest) => {
                assert!(
                    update,
                    "{file}: ratcheted on a {}",
                    request["request"]["operation"]
                );
                rest
            }
            None => w,
        };
        let id = &plain[..5];
        assert!(
            plain.starts_with(&format!("{id} {}: ", spec_name(id))),
            "{file}: {w}"
        );
        warned.push(id.to_owned());
    }
    warned.sort();
    warned.dedup();
    assert_eq!(warned, ids(&want["warn"]), "{file}: warned rules");
}

fn ids(decision: &meshguard::engine::Decision, action: Action) -> Vec<String> {
    let mut v: Vec<RuleId> = decision.with_action(action).map(|f| f.rule).collect();
    v.sort();
    v.dedup();
    v.into_iter().map(|id| id.to_string()).collect()
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn every_captured_review_gets_the_expected_decision() {
    let namespaces = NamespaceMap::load(&data("namespaces.json")).expect("namespaces.json");
    let config = Config::default();
    let expected = expected();
    // Every capture in the directory, so one missing from expected.json
    // fails instead of going untested.
    let mut files: Vec<String> = std::fs::read_dir(data("reviews"))
        .expect("reviews")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        expected.keys().cloned().collect::<Vec<_>>(),
        "expected.json covers exactly the captures"
    );
    let mut compared = 0;
    let mut failures = Vec::new();
    for file in &files {
        let want = &expected[file];
        let body = std::fs::read(data(&format!("reviews/{file}"))).expect("review file");
        let webhook = match want["webhook"].as_str() {
            Some("validate") => Webhook::Validate,
            Some("mutate") => Webhook::Mutate,
            other => panic!("{file}: unknown webhook {other:?}"),
        };
        let reviewed = admission::review(&body, webhook, &config, &namespaces, now())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let response: Value = serde_json::from_slice(&reviewed.body).expect("response is JSON");
        assert_answer(file, want, &body, &reviewed.body);
        compared += 1;
        let mut got = BTreeMap::new();
        match webhook {
            Webhook::Validate => {
                let allowed = response["response"]["allowed"].as_bool().expect("allowed");
                assert_eq!(allowed, reviewed.decision.allowed(), "{file}");
                got.insert("allowed", Value::Bool(allowed));
                got.insert("deny", ids(&reviewed.decision, Action::Deny).into());
                got.insert("warn", ids(&reviewed.decision, Action::Warn).into());
                let want_cmp = BTreeMap::from([
                    ("allowed", want["allowed"].clone()),
                    ("deny", strings(&want["deny"]).into()),
                    ("warn", strings(&want["warn"]).into()),
                ]);
                if got != want_cmp {
                    failures.push(format!("{file}: got {got:?}, want {want_cmp:?}"));
                }
                // Denials come with a 403 status naming every denied rule.
                if !allowed {
                    let msg = response["response"]["status"]["message"]
                        .as_str()
                        .expect("message");
                    assert_eq!(response["response"]["status"]["code"], 403, "{file}");
                    for id in ids(&reviewed.decision, Action::Deny) {
                        assert!(msg.contains(&id), "{file}: message names {id}");
                    }
                }
            }
            Webhook::Mutate => {
                assert_eq!(
                    response["response"]["allowed"], true,
                    "{file}: mutate always allows"
                );
                let patch = match response["response"]["patch"].as_str() {
                    Some(b64) => {
                        assert_eq!(response["response"]["patchType"], "JSONPatch", "{file}");
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .expect("base64");
                        serde_json::from_slice(&bytes).expect("patch is JSON")
                    }
                    None => Value::Array(Vec::new()),
                };
                if patch != want["patch"] {
                    failures.push(format!("{file}: patch {patch}, want {}", want["patch"]));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} decisions differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(compared, 122);
}

/// `meshguard review` prints the answer of expected.json (the server's
/// test checks it prints what the server sends).
#[test]
fn review_command_prints_the_expected_response() {
    let expected = expected();
    let ns_arg = data("namespaces.json");
    for file in [
        "0073-validate-CREATE-Deployment-payments-orders.json",
        "0072-mutate-CREATE-Deployment-payments-orders.json",
        "0093-validate-UPDATE-Deployment-payments-orders.json",
        "0075-validate-CREATE-StatefulSet-catalog-ledger.json",
        "0132-validate-DELETE-Deployment-payments-orders.json",
    ] {
        let path = data(&format!("reviews/{file}"));
        let webhook = if file.contains("-mutate-") {
            "mutate"
        } else {
            "validate"
        };
        let out = meshguard(
            &[
                "review",
                path.to_str().expect("utf-8"),
                "--namespaces",
                ns_arg.to_str().expect("utf-8"),
                "--webhook",
                webhook,
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(0), "{file}");
        let body = std::fs::read(&path).expect("review");
        assert!(out.stdout.ends_with(b"}\n"), "compact JSON and a newline");
        assert_answer(
            file,
            &expected[file],
            &body,
            stdout(&out).trim_end().as_bytes(),
        );
    }
}

/// A dry run (`kubectl apply --dry-run=server`) gets exactly the decision
/// of the real request: compare the captured pairs.
#[test]
fn dry_run_reviews_decide_like_the_real_ones() {
    let namespaces = NamespaceMap::load(&data("namespaces.json")).expect("namespaces.json");
    let config = Config::default();
    let mut pairs = 0;
    for entry in std::fs::read_dir(data("reviews")).expect("reviews") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        let Some(stem) = name.strip_suffix("-dryrun.json") else {
            continue;
        };
        let real_suffix = &stem[5..];
        let Some(real) = std::fs::read_dir(data("reviews"))
            .expect("reviews")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find(|n| {
                n != &name && n.ends_with(&format!("{real_suffix}.json")) && !n.contains("dryrun")
            })
        else {
            continue;
        };
        let webhook = if name.contains("-mutate-") {
            Webhook::Mutate
        } else {
            Webhook::Validate
        };
        let decide = |f: &str| {
            let body = std::fs::read(data(&format!("reviews/{f}"))).expect("review");
            let r = admission::review(&body, webhook, &config, &namespaces, now()).expect("review");
            (r.decision.findings, r.decision.mutations, r.dry_run)
        };
        let (f1, m1, dry1) = decide(&name);
        let (f2, m2, dry2) = decide(&real);
        assert!(dry1 && !dry2, "{name} is a dry run, {real} is not");
        assert_eq!(f1, f2, "{name} vs {real}");
        assert_eq!(m1, m2, "{name} vs {real}");
        pairs += 1;
    }
    assert_eq!(pairs, 20, "every captured dry run has its real request");
}

/// `meshguard review` on a capture: the response's `response` object.
fn answer_of(review: &std::path::Path, extra: &[&str]) -> Value {
    let ns = data("namespaces.json");
    let mut args = vec!["review", review.to_str().expect("utf-8")];
    if !extra.contains(&"--namespaces") {
        args.extend(["--namespaces", ns.to_str().expect("utf-8")]);
    }
    args.extend_from_slice(extra);
    let out = meshguard(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["response"].clone()
}

/// The rendered texts, literally (README, Decisions: "Warnings", and SPEC
/// section 3): the 403 message with every denied rule, its path and fix;
/// warnings `MGxxx name: message`; the ratchet prefix; the 256-byte cut;
/// audit-level findings in `auditAnnotations` under the rule id.
#[test]
fn rendered_answers_say_literally_what_was_decided() {
    let review = |f: &str| data(&format!("reviews/{f}"));
    let denied = answer_of(
        &review("0073-validate-CREATE-Deployment-payments-orders.json"),
        &[],
    );
    assert_eq!(
        denied["status"],
        serde_json::json!({"code": 403, "reason": "Forbidden", "message": "meshguard denied the request: 5 violations\n- MG101 dedicated-service-account at spec.template.spec.serviceAccountName: serviceAccountName is not set, so the pods run as `default` and share one Istio identity. Fix: Create a ServiceAccount for the workload and set `serviceAccountName` in the pod template.\n- MG102 mesh-labels at spec.template.metadata.labels: the pod template has no `version` label (nor app.kubernetes.io/version). Fix: Add `version: <value>` to spec.template.metadata.labels (the controller's own labels do not reach the pods).\n- MG103 sidecar-injection at spec.template.metadata.labels: the pods will not get an Istio sidecar: namespace `payments` has neither istio-injection nor istio.io/rev, and spec.template.metadata.labels has no sidecar.istio.io/inject: \"true\". Fix: Label namespace `payments` istio-injection=enabled (or istio.io/rev=<revision>), or add the label sidecar.istio.io/inject: \"true\" to spec.template.metadata.labels.\n- MG104 sidecar-marker at spec.template.metadata.labels: the pod template has no sidecar.istio.io/inject label; an explicit \"true\" keeps injection on wherever the workload runs. Fix: Add the label `sidecar.istio.io/inject: \"true\"` to the pod template's `metadata.labels`.\n- MG107 reserved-names-and-ports at spec.template.spec.containers[0].ports[0].containerPort: container `orders` uses port 15001, which the Istio proxy reserves. Fix: Rename the container and move the application off the proxy's ports."})
    );
    assert!(denied.get("warnings").is_none());

    let warned = answer_of(
        &review("0129-validate-CREATE-Sidecar-payments-default.json"),
        &[],
    );
    assert_eq!(
        warned,
        serde_json::json!({"uid": "4a615f65-79e4-48e6-8888-a37c8e0499b3", "allowed": true, "warnings": ["MG408 egress-registry-only: outboundTrafficPolicy.mode is ALLOW_ANY: the selected workloads can call any external host, bypassing the ServiceEntry allowlist"]})
    );

    // The UPDATE of a Deployment that was already broken: allowed, every
    // violation a ratcheted warning.
    let ratcheted = answer_of(
        &review("0093-validate-UPDATE-Deployment-payments-orders.json"),
        &[],
    );
    assert_eq!(ratcheted["allowed"], true);
    assert_eq!(
        ratcheted["warnings"],
        serde_json::json!([
            "(not denied: already broken before this update) MG101 dedicated-service-account: serviceAccountName is not set, so the pods run as `default` and share one Istio identity",
            "(not denied: already broken before this update) MG102 mesh-labels: the pod template has no `version` label (nor app.kubernetes.io/version)",
            "(not denied: already broken before this update) MG103 sidecar-injection: the pods will not get an Istio sidecar: namespace `payments` has neither istio-injection nor istio.io/rev, and spec.template.metadata.labels has no sidecar.istio.io/inject: \"true\"",
            "(not denied: already broken before this update) MG104 sidecar-marker: the pod template has no sidecar.istio.io/inject label; an explicit \"true\" keeps injection on wherever the workload runs",
            "(not denied: already broken before this update) MG107 reserved-names-and-ports: container `orders` uses port 15001, which the Istio proxy reserves",
        ])
    );

    // The same update in a namespace with a 63-character name: the MG103
    // warning would be 291 bytes, so it is cut to 256 with an ellipsis.
    let long = "payments-team-with-a-rather-long-namespace-name-0123456789abcde";
    assert_eq!(long.len(), 63);
    let dir = crate::harness::scratch("cut");
    let body = std::fs::read_to_string(review(
        "0093-validate-UPDATE-Deployment-payments-orders.json",
    ))
    .expect("review")
    .replace("\"payments\"", &format!("\"{long}\""));
    std::fs::write(dir.join("review.json"), body).expect("write");
    std::fs::write(
        dir.join("ns.yaml"),
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {long}\n"),
    )
    .expect("write");
    let ns = dir.join("ns.yaml");
    let cut = answer_of(
        &dir.join("review.json"),
        &["--namespaces", ns.to_str().expect("utf-8")],
    );
    let full = format!(
        "{RATCHETED}MG103 sidecar-injection: the pods will not get an Istio sidecar: namespace `{long}` has neither istio-injection nor istio.io/rev, and spec.template.metadata.labels has no sidecar.istio.io/inject: \"true\""
    );
    assert!(full.len() > 256);
    let w = cut["warnings"][2].as_str().expect("MG103 warning");
    assert_eq!(w, format!("{}…", &full[..253]));
    assert_eq!(w.len(), 256);

    // An audit-level rule: nothing shown, recorded under its id.
    std::fs::write(dir.join("audit.yaml"), "rules:\n  MG108: {action: audit}\n").expect("write");
    let config = dir.join("audit.yaml");
    let audited = answer_of(
        &review("0075-validate-CREATE-StatefulSet-catalog-ledger.json"),
        &["--config", config.to_str().expect("utf-8")],
    );
    assert!(audited.get("warnings").is_none(), "{audited}");
    assert_eq!(
        audited["auditAnnotations"],
        serde_json::json!({"MG108": "metadata.annotations: sidecar.istio.io/inject: \"true\" is on the StatefulSet's own metadata.annotations, where the injector never sees it"})
    );
}

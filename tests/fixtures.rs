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

fn expected() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(data("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
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
    assert_eq!(expected.len(), 122, "all captured reviews are expected");
    let mut compared = 0;
    let mut failures = Vec::new();
    for (file, want) in &expected {
        let body = std::fs::read(data(&format!("reviews/{file}"))).expect("review file");
        let webhook = match want["webhook"].as_str() {
            Some("validate") => Webhook::Validate,
            Some("mutate") => Webhook::Mutate,
            other => panic!("{file}: unknown webhook {other:?}"),
        };
        let reviewed = admission::review(&body, webhook, &config, &namespaces, now())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let response: Value = serde_json::from_slice(&reviewed.body).expect("response is JSON");
        let request: Value = serde_json::from_slice(&body).expect("review is JSON");
        assert_eq!(
            response["response"]["uid"], request["request"]["uid"],
            "{file}: uid echoed"
        );
        assert_eq!(response["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(response["kind"], "AdmissionReview");
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

/// `meshguard review` prints byte for byte what the library (and so the
/// server) answers.
#[test]
fn review_command_prints_the_library_response() {
    let namespaces = NamespaceMap::load(&data("namespaces.json")).expect("namespaces.json");
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
        let wh = if webhook == "mutate" {
            Webhook::Mutate
        } else {
            Webhook::Validate
        };
        let lib =
            admission::review(&body, wh, &Config::default(), &namespaces, now()).expect("review");
        assert_eq!(
            stdout(&out).trim_end().as_bytes(),
            lib.body.as_slice(),
            "{file}"
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
    assert!(pairs >= 10, "found {pairs} dry-run pairs");
}

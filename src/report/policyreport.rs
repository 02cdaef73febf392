//! `--format policyreport`: the audit as `wgpolicyk8s.io/v1alpha2` reports,
//! the format Kyverno, Trivy Operator and the Policy Reporter UI read. One
//! YAML stream that `kubectl apply -f -` takes:
//!
//! * one `PolicyReport` named `meshguard` per namespace with objects in the
//!   audit, and one `ClusterPolicyReport` named `meshguard` (always, so the
//!   stream is never empty) for cluster-scoped objects (Namespaces) and
//!   input errors;
//! * every finding is a result: policy `meshguard`, rule `<id> <name>`,
//!   `fail` for `deny`, `warn` for `warn` and `audit` (the effective
//!   action is in the `action` property), severity from the rule's default
//!   action (`high` for deny rules, `medium` for warn rules), the message
//!   and the fix, the object (apiVersion, kind, namespace, name, and uid
//!   when known), source `meshguard` and the audit's timestamp;
//! * a judged object without findings is one `pass` result, a skipped one
//!   a `skip` result with the reason (except controller-owned Pods and
//!   ReplicaSets, whose controller's result stands for them, and documents
//!   that name no object); an input error is an `error` result;
//! * the summary counts the results by kind, passes included;
//! * every report carries the label `app.kubernetes.io/managed-by:
//!   meshguard`, so `kubectl apply --prune -l app.kubernetes.io/managed-by=meshguard`
//!   also removes the reports of namespaces that are gone from the input.
//!
//! Rendering only: the audit is `audit`'s.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::audit::{AuditReport, AuditedObject, ObjectRef, SkipReason};
use crate::engine::Finding;
use crate::report::yaml;
use crate::rules::{Action, RuleId};

pub const API_VERSION: &str = "wgpolicyk8s.io/v1alpha2";
/// The name of every report meshguard writes (one per namespace, and the
/// cluster's), so the next run replaces it.
pub const REPORT_NAME: &str = "meshguard";
pub const POLICY: &str = "meshguard";
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "meshguard");

/// The YAML stream of every report.
pub fn render(report: &AuditReport, now: Timestamp) -> String {
    let stamp = json!({"seconds": now.as_second(), "nanos": now.subsec_nanosecond()});
    // Namespace -> results; "" holds the cluster-scoped ones.
    let mut results: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    results.entry("").or_default();
    for o in &report.audited {
        let bucket = results.entry(o.namespace.as_str()).or_default();
        if o.findings.is_empty() {
            bucket.push(pass(&audited_ref(o), &pass_message(o), &stamp));
        }
        for f in &o.findings {
            bucket.push(finding(o, f, &stamp));
        }
    }
    for p in &report.passed {
        let message = "meshguard judged this object: no violations";
        results
            .entry(p.namespace.as_str())
            .or_default()
            .push(pass(p, message, &stamp));
    }
    for s in &report.skipped {
        if matches!(
            s.reason,
            SkipReason::NotAnObject | SkipReason::ControllerOwned
        ) {
            continue;
        }
        let message = format!("not judged: {}", s.reason.text());
        let mut r = base("skip", &message, &stamp);
        r.insert("resources".into(), json!([resource(&s.object)]));
        r.insert("properties".into(), json!({"reason": s.reason.code()}));
        results
            .entry(s.object.namespace.as_str())
            .or_default()
            .push(Value::Object(r));
    }
    for e in &report.errors {
        let message = format!("{}: {}", e.source, e.message);
        results
            .entry("")
            .or_default()
            .push(Value::Object(base("error", &message, &stamp)));
    }

    let mut out = String::new();
    // The cluster's report first, then the namespaces in name order.
    let (cluster, namespaced): (Vec<_>, Vec<_>) =
        results.into_iter().partition(|(ns, _)| ns.is_empty());
    for (namespace, results) in cluster.into_iter().chain(namespaced) {
        out.push_str("---\n");
        out.push_str(&yaml::document(&policy_report(namespace, results)));
    }
    out
}

fn policy_report(namespace: &str, results: Vec<Value>) -> Value {
    let count = |what: &str| results.iter().filter(|r| r["result"] == what).count();
    let summary = json!({
        "pass": count("pass"),
        "fail": count("fail"),
        "warn": count("warn"),
        "error": count("error"),
        "skip": count("skip"),
    });
    let mut labels = Map::new();
    labels.insert(MANAGED_BY.0.into(), json!(MANAGED_BY.1));
    let mut metadata = json!({"name": REPORT_NAME, "labels": labels});
    let kind = if namespace.is_empty() {
        "ClusterPolicyReport"
    } else {
        metadata["namespace"] = json!(namespace);
        "PolicyReport"
    };
    json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "summary": summary,
        "results": results,
    })
}

/// What every result has.
fn base(result: &str, message: &str, stamp: &Value) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("policy".into(), json!(POLICY));
    r.insert("result".into(), json!(result));
    r.insert("message".into(), json!(message));
    r.insert("source".into(), json!(POLICY));
    r.insert("timestamp".into(), stamp.clone());
    r
}

fn pass(object: &ObjectRef, message: &str, stamp: &Value) -> Value {
    let mut r = base("pass", message, stamp);
    r.insert("resources".into(), json!([resource(object)]));
    Value::Object(r)
}

fn finding(o: &AuditedObject, f: &Finding, stamp: &Value) -> Value {
    let result = match f.action {
        Action::Deny => "fail",
        Action::Warn | Action::Audit | Action::Off => "warn",
    };
    let message = format!("{}. Fix: {}", f.message, f.fix);
    let mut r = base(result, &message, stamp);
    r.insert(
        "rule".into(),
        json!(format!("{} {}", f.rule, f.rule.name())),
    );
    r.insert("category".into(), json!(category(f.rule)));
    r.insert("severity".into(), json!(severity(f.rule)));
    r.insert("scored".into(), json!(true));
    r.insert("resources".into(), json!([resource(&audited_ref(o))]));
    r.insert(
        "properties".into(),
        json!({
            "ruleId": f.rule.as_str(),
            "action": f.action.as_str(),
            "path": f.path,
            "origin": o.source.to_string(),
        }),
    );
    Value::Object(r)
}

fn pass_message(o: &AuditedObject) -> String {
    let mut message = "meshguard judged this object: no violations".to_owned();
    if !o.mutations.is_empty() {
        let ids: Vec<&str> = o.mutations.iter().map(|m| m.id.as_str()).collect();
        message.push_str(&format!(
            " once the mutating webhook's patches ({}) are applied",
            ids.join(", ")
        ));
    }
    for note in &o.notes {
        message.push_str(&format!(" (note: {note})"));
    }
    message
}

fn audited_ref(o: &AuditedObject) -> ObjectRef {
    ObjectRef {
        source: o.source.clone(),
        api_version: o.api_version.clone(),
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        uid: o.uid.clone(),
    }
}

/// The object reference of a result; empty fields are left out.
fn resource(o: &ObjectRef) -> Value {
    let mut r = Map::new();
    for (key, value) in [
        ("apiVersion", o.api_version.as_str()),
        ("kind", o.kind.as_str()),
        ("namespace", o.namespace.as_str()),
        ("name", o.name.as_str()),
        ("uid", o.uid.as_deref().unwrap_or("")),
    ] {
        if !value.is_empty() {
            r.insert(key.into(), json!(value));
        }
    }
    Value::Object(r)
}

/// The family of a rule, by the hundreds of its id (SPEC section 4).
fn category(rule: RuleId) -> &'static str {
    match rule.as_str().as_bytes().get(2) {
        Some(b'1') => "Workloads",
        Some(b'2') => "Services",
        Some(b'3') => "Namespaces",
        Some(b'4') => "Istio resources",
        Some(b'5') => "Mesh",
        _ => "meshguard",
    }
}

/// How bad a violation is, by the rule's default action: the spec's view
/// of the rule, independent of this cluster's modes and settings.
fn severity(rule: RuleId) -> &'static str {
    match rule.info().default_action {
        Action::Deny => "high",
        Action::Warn => "medium",
        Action::Audit | Action::Off => "low",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_severities_follow_the_catalogue() {
        assert_eq!(category(RuleId::MG101), "Workloads");
        assert_eq!(category(RuleId::MG201), "Services");
        assert_eq!(category(RuleId::MG301), "Namespaces");
        assert_eq!(category(RuleId::MG406), "Istio resources");
        assert_eq!(severity(RuleId::MG101), "high");
        assert_eq!(severity(RuleId::MG403), "medium");
    }

    #[test]
    fn an_empty_audit_is_one_empty_cluster_report() {
        let now: Timestamp = "2026-11-25T12:00:00.5Z".parse().expect("timestamp");
        let text = render(&AuditReport::default(), now);
        let docs: Vec<Value> = text
            .split("---\n")
            .filter(|d| !d.is_empty())
            .map(|d| serde_saphyr::from_str(d).expect("YAML"))
            .collect();
        assert_eq!(
            docs,
            [json!({
                "apiVersion": "wgpolicyk8s.io/v1alpha2",
                "kind": "ClusterPolicyReport",
                "metadata": {"name": "meshguard", "labels": {"app.kubernetes.io/managed-by": "meshguard"}},
                "summary": {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0},
                "results": [],
            })]
        );
    }
}

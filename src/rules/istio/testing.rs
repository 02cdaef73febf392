//! Test support for the Istio rules: wraps a `spec` in an object of a given
//! `apiVersion` and kind, parses it the way the webhook does and runs the
//! Istio rules on it. Tests only.

use serde_json::{Value, json};

use crate::config::Config;
use crate::object::{Kind, Object};
use crate::rules::{Context, NamespaceLabels, RuleId, Violation};

/// Runs the Istio rules on `spec` as the resource `api_version`/`kind`.
pub(super) fn run(api_version: &str, kind: &str, spec: Value, cfg: &Config) -> Vec<Violation> {
    let judged = Kind::from_api_version(api_version, kind);
    assert_ne!(judged, Kind::Other, "{api_version} {kind} must be judged");
    let text = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "t", "namespace": "ns"},
        "spec": spec,
    })
    .to_string();
    let object = Object::from_json(judged, &text).expect("a test object is valid JSON");
    let ctx = Context {
        namespace: "ns",
        namespace_labels: NamespaceLabels::Unknown,
        config: cfg,
        mesh: None,
    };
    let mut out = Vec::new();
    super::check(&object, &ctx, &mut out);
    out
}

/// The paths of the violations of one rule, in the order reported.
pub(super) fn paths(found: &[Violation], rule: RuleId) -> Vec<String> {
    found
        .iter()
        .filter(|v| v.rule == rule)
        .map(|v| v.path.clone())
        .collect()
}

/// The message of the violation of `rule` at `path`, or a panic naming what
/// was found instead.
pub(super) fn message<'v>(found: &'v [Violation], rule: RuleId, path: &str) -> &'v str {
    found
        .iter()
        .find(|v| v.rule == rule && v.path == path)
        .map(|v| v.message.as_str())
        .unwrap_or_else(|| panic!("no {rule} at {path} in {found:?}"))
}

/// One row of a rule's case table: a name, the resource's `apiVersion`, its
/// `spec` and the paths the rule must report (in order; empty = allowed).
pub(super) type Case<'c> = (&'c str, &'c str, Value, &'c [&'c str]);

/// Runs a case table for one rule of one kind.
pub(super) fn table(kind: &str, rule: RuleId, cfg: &Config, cases: Vec<Case<'_>>) {
    for (name, api_version, spec, expected) in cases {
        let found = run(api_version, kind, spec, cfg);
        assert_eq!(
            paths(&found, rule),
            expected,
            "{rule} case `{name}`: {found:#?}"
        );
    }
}

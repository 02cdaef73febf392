//! MG404 authorization-policy-least-privilege: an ALLOW (or action-less)
//! AuthorizationPolicy does not allow everything (SPEC section 4).
//!
//! A policy without rules allows nothing (Istio's deny-all idiom `spec: {}`)
//! and is fine. A violation is a rule that constrains nothing (empty, not a
//! map, or with none of `from`, `to`, `when` set), or a `from[].source` that
//! matches any caller: missing or empty, `principals` containing `"*"`, or
//! only negative fields with `notPrincipals`/`notNamespaces` among them.
//! DENY, CUSTOM, AUDIT and actions we do not know are never judged. A field
//! we do not know counts as a constraint, never as a reason to deny.

use serde_json::Value;

use super::{Choice, choice, is_set, items};
use crate::rules::{RuleId, Violation};

/// The negative fields of a `source`: they match every caller except some.
const NEGATIVE: [&str; 6] = [
    "notPrincipals",
    "notNamespaces",
    "notRequestPrincipals",
    "notIpBlocks",
    "notRemoteIpBlocks",
    "notServiceAccounts",
];

const FIX_FROM: &str = "Name the callers: `from: [{source: {principals: [\"cluster.local/ns/<namespace>/sa/<service-account>\"]}}]`.";

pub(super) fn check(spec: &Value, out: &mut Vec<Violation>) {
    if !matches!(choice(spec, "action"), Choice::Unset | Choice::Is("ALLOW")) {
        return;
    }
    for (i, rule) in items(spec, "rules").iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        if let Some(found) = unconstrained(rule) {
            out.push(
                Violation::new(
                    RuleId::MG404,
                    path,
                    format!("rule {i} {found}: it matches every request, so the policy allows everything to the selected workloads"),
                )
                .with_fix(format!(
                    "Give spec.rules[{i}] a `from` with the callers' principals, e.g. `from: [{{source: {{principals: [\"cluster.local/ns/<namespace>/sa/<service-account>\"]}}}}]`, and a `to` with the allowed operations; to allow nothing, use `spec: {{}}`."
                )),
            );
            continue;
        }
        for (k, from) in items(rule, "from").iter().enumerate() {
            let path = format!("{path}.from[{k}].source");
            if let Some((field, found)) = any_caller(from.get("source")) {
                out.push(
                    Violation::new(
                        RuleId::MG404,
                        format!("{path}{field}"),
                        format!("{found}, so rule {i} allows any caller"),
                    )
                    .with_fix(FIX_FROM),
                );
            }
        }
    }
}

/// Why a rule constrains nothing, if it does not. A rule that is not a map
/// is not judged (the API server's schema refuses it).
fn unconstrained(rule: &Value) -> Option<&'static str> {
    let fields = rule.as_object()?;
    if fields.values().any(|v| is_set(Some(v))) {
        return None;
    }
    if fields.is_empty() {
        Some("is empty")
    } else {
        Some("has no `from`, `to` or `when`")
    }
}

/// Whether a source matches any caller: the path suffix below `source` to
/// report and what was found.
fn any_caller(source: Option<&Value>) -> Option<(&'static str, String)> {
    let source = match source {
        None | Some(Value::Null) => return Some(("", "the entry has no source".to_owned())),
        // Of a type no source has: not judged.
        Some(s) if !s.is_object() => return None,
        Some(s) => s,
    };
    let set: Vec<&str> = source
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| is_set(Some(v)))
        .map(|(k, _)| k.as_str())
        .collect();
    if set.is_empty() {
        return Some(("", "the source is empty".to_owned()));
    }
    // `principals: ["*"]` matches any caller unless another positive field
    // (namespaces, ipBlocks...) narrows the same source.
    let wildcard = items(source, "principals")
        .iter()
        .any(|p| p.as_str() == Some("*"));
    let narrowed = set
        .iter()
        .any(|k| *k != "principals" && !NEGATIVE.contains(k));
    if wildcard && !narrowed {
        return Some((
            ".principals",
            "principals contains \"*\", which matches every caller".to_owned(),
        ));
    }
    let only_negative = set.iter().all(|k| NEGATIVE.contains(k));
    let excludes = set
        .iter()
        .any(|k| matches!(*k, "notPrincipals" | "notNamespaces"));
    if only_negative && excludes {
        return Some((
            "",
            format!(
                "the source has only {}, which matches every caller except those listed",
                set.join(" and ")
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{message, run, table};
    use crate::config::Config;
    use crate::rules::RuleId;

    const NONE: &[&str] = &[];
    const V1: &str = "security.istio.io/v1";
    const V1BETA1: &str = "security.istio.io/v1beta1";

    fn from(source: serde_json::Value) -> serde_json::Value {
        json!({"rules": [{"from": [{"source": source}]}]})
    }

    #[test]
    fn rules_that_allow_everything() {
        let rule0: &[&str] = &["spec.rules[0]"];
        table(
            "AuthorizationPolicy",
            RuleId::MG404,
            &Config::default(),
            vec![
                ("deny-all idiom", V1, json!({}), NONE),
                ("allow with no rules", V1, json!({"action": "ALLOW"}), NONE),
                (
                    "allow with an empty rule list",
                    V1,
                    json!({"action": "ALLOW", "rules": []}),
                    NONE,
                ),
                (
                    "empty rule",
                    V1,
                    json!({"action": "ALLOW", "rules": [{}]}),
                    rule0,
                ),
                (
                    "empty rule, no action, v1beta1",
                    V1BETA1,
                    json!({"rules": [{}]}),
                    rule0,
                ),
                (
                    "rule with empty parts",
                    V1,
                    json!({"rules": [{"from": [], "to": [], "when": null}]}),
                    rule0,
                ),
                (
                    "rule not a map is not judged",
                    V1,
                    json!({"rules": [null, "x"]}),
                    NONE,
                ),
                (
                    "only to",
                    V1,
                    json!({"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}),
                    NONE,
                ),
                (
                    "only when",
                    V1,
                    json!({"rules": [{"when": [{"key": "request.auth.claims[iss]", "values": ["x"]}]}]}),
                    NONE,
                ),
                (
                    "unknown rule field",
                    V1,
                    json!({"rules": [{"fromTheFuture": [{"x": 1}]}]}),
                    NONE,
                ),
                (
                    "second rule only",
                    V1,
                    json!({"rules": [{"from": [{"source": {"namespaces": ["shop"]}}]}, {}]}),
                    &["spec.rules[1]"],
                ),
                ("rules not a list", V1, json!({"rules": {"from": []}}), NONE),
            ],
        );
    }

    #[test]
    fn sources_that_match_any_caller() {
        let src: &[&str] = &["spec.rules[0].from[0].source"];
        let principals: &[&str] = &["spec.rules[0].from[0].source.principals"];
        table(
            "AuthorizationPolicy",
            RuleId::MG404,
            &Config::default(),
            vec![
                (
                    "star principal",
                    V1BETA1,
                    from(json!({"principals": ["*"]})),
                    principals,
                ),
                (
                    "star among others",
                    V1,
                    from(json!({"principals": ["cluster.local/ns/a/sa/b", "*"]})),
                    principals,
                ),
                (
                    "prefix wildcard is a constraint",
                    V1,
                    from(json!({"principals": ["cluster.local/ns/shop/*"]})),
                    NONE,
                ),
                (
                    "named principal",
                    V1,
                    from(json!({"principals": ["cluster.local/ns/catalog/sa/frontend"]})),
                    NONE,
                ),
                (
                    "only notPrincipals",
                    V1,
                    from(json!({"notPrincipals": ["cluster.local/ns/a/sa/b"]})),
                    src,
                ),
                (
                    "only notNamespaces",
                    V1BETA1,
                    from(json!({"notNamespaces": ["sandbox"]})),
                    src,
                ),
                (
                    "notNamespaces and notIpBlocks",
                    V1,
                    from(json!({"notNamespaces": ["a"], "notIpBlocks": ["10.0.0.0/8"]})),
                    src,
                ),
                (
                    "notPrincipals with namespaces",
                    V1,
                    from(json!({"notPrincipals": ["x"], "namespaces": ["shop"]})),
                    NONE,
                ),
                (
                    "notPrincipals with an unknown field",
                    V1,
                    from(json!({"notPrincipals": ["x"], "serviceAccounts": ["shop/a"]})),
                    NONE,
                ),
                (
                    "only notIpBlocks",
                    V1,
                    from(json!({"notIpBlocks": ["10.0.0.0/8"]})),
                    NONE,
                ),
                ("empty source", V1, from(json!({})), src),
                (
                    "source with empty lists",
                    V1,
                    from(json!({"principals": [], "notPrincipals": []})),
                    src,
                ),
                (
                    "missing source",
                    V1,
                    json!({"rules": [{"from": [{}]}]}),
                    src,
                ),
                ("source not a map is not judged", V1, from(json!("x")), NONE),
                ("null source", V1, from(serde_json::Value::Null), src),
                (
                    "star principal narrowed by namespaces",
                    V1,
                    from(json!({"principals": ["*"], "namespaces": ["shop"]})),
                    NONE,
                ),
                (
                    "star principal with only negative neighbours",
                    V1,
                    from(json!({"principals": ["*"], "notNamespaces": ["sandbox"]})),
                    principals,
                ),
                (
                    "from not a list",
                    V1,
                    json!({"rules": [{"from": {"source": {"principals": ["*"]}}}]}),
                    NONE,
                ),
                (
                    "principals not a list",
                    V1,
                    from(json!({"principals": "*"})),
                    NONE,
                ),
                (
                    "one violation per source",
                    V1,
                    json!({"rules": [{"from": [{"source": {"namespaces": ["a"]}}, {"source": {"principals": ["*"]}}, {"source": {}}]}]}),
                    &[
                        "spec.rules[0].from[1].source.principals",
                        "spec.rules[0].from[2].source",
                    ],
                ),
            ],
        );
    }

    #[test]
    fn other_actions_are_not_judged() {
        let star = json!([{"from": [{"source": {"principals": ["*"]}}]}, {}]);
        let both: &[&str] = &["spec.rules[0].from[0].source.principals", "spec.rules[1]"];
        table(
            "AuthorizationPolicy",
            RuleId::MG404,
            &Config::default(),
            vec![
                ("allow", V1, json!({"action": "ALLOW", "rules": star}), both),
                (
                    "null action is allow",
                    V1,
                    json!({"action": null, "rules": star}),
                    both,
                ),
                ("deny", V1, json!({"action": "DENY", "rules": star}), NONE),
                (
                    "custom",
                    V1BETA1,
                    json!({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": star}),
                    NONE,
                ),
                ("audit", V1, json!({"action": "AUDIT", "rules": star}), NONE),
                (
                    "unknown action",
                    V1,
                    json!({"action": "SHADOW", "rules": star}),
                    NONE,
                ),
                (
                    "action not a string",
                    V1,
                    json!({"action": 1, "rules": star}),
                    NONE,
                ),
            ],
        );
    }

    #[test]
    fn fixture_policy_with_principals_and_operations_is_allowed() {
        let spec = json!({
            "selector": {"matchLabels": {"app": "checkout"}},
            "action": "ALLOW",
            "rules": [{
                "from": [{"source": {"principals": ["cluster.local/ns/catalog/sa/frontend"]}}],
                "to": [{"operation": {"methods": ["GET", "POST"], "paths": ["/api/*"]}}],
            }],
        });
        assert!(run(V1, "AuthorizationPolicy", spec, &Config::default()).is_empty());
        let found = run(
            V1,
            "AuthorizationPolicy",
            from(json!({"notNamespaces": ["x"]})),
            &Config::default(),
        );
        let msg = message(&found, RuleId::MG404, "spec.rules[0].from[0].source");
        assert!(
            msg.contains("notNamespaces") && msg.contains("any caller"),
            "{msg}"
        );
    }
}

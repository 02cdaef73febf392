//! MG407 external-service-control: a ServiceEntry neither trusts an
//! outside host as part of the mesh nor opens egress to a host off the
//! allowlist (SPEC section 4).
//!
//! Per `spec.hosts[i]` that is not in-mesh (see `in_mesh`):
//!
//! * with `location: MESH_INTERNAL` it is a violation: Istio would treat it
//!   as a mesh service (mTLS, identities) although it is not one;
//! * when the configured allowlist is not empty and no entry matches it, it
//!   is a violation. An entry is an exact host or `*.domain`, which matches
//!   any host below `domain` (a wildcard host must be covered by an equal or
//!   broader wildcard). Comparison ignores case.
//!
//! An absent `location` is MESH_EXTERNAL, Istio's default. At most one
//! violation per host, naming every reason.

use serde_json::Value;

use super::{Choice, choice, in_mesh, items};
use crate::rules::{Context, RuleId, Violation};

pub(super) fn check(spec: &Value, ctx: &Context<'_>, out: &mut Vec<Violation>) {
    let internal = choice(spec, "location") == Choice::Is("MESH_INTERNAL");
    let allowlist = &ctx.config.allowed_hosts;
    let domain = &ctx.config.cluster_domain;
    for (i, host) in items(spec, "hosts").iter().enumerate() {
        let Some(host) = host.as_str() else {
            continue;
        };
        if in_mesh(host, domain) {
            continue;
        }
        let mut reasons = Vec::new();
        let mut fixes = Vec::new();
        if internal {
            reasons.push(format!(
                "`{host}` is outside the cluster domain {domain} but the ServiceEntry says `location: MESH_INTERNAL`, so Istio trusts it as an in-mesh service"
            ));
            fixes.push("set `location: MESH_EXTERNAL`".to_owned());
        }
        if !allowlist.is_empty() && !allowlist.iter().any(|a| allowed(host, a)) {
            reasons.push(format!(
                "`{host}` is not on the allowlist of external hosts ({})",
                allowlist.join(", ")
            ));
            fixes.push(format!(
                "have `{host}` reviewed and added to `rules.MG407.allowedHosts`, or remove it"
            ));
        }
        if reasons.is_empty() {
            continue;
        }
        let mut fix = fixes.join("; ");
        if let Some(first) = fix.get(..1) {
            fix = first.to_ascii_uppercase() + &fix[1..];
        }
        out.push(
            Violation::new(
                RuleId::MG407,
                format!("spec.hosts[{i}]"),
                reasons.join("; and "),
            )
            .with_fix(format!("{fix}.")),
        );
    }
}

/// Whether `host` is covered by the allowlist entry `entry`.
fn allowed(host: &str, entry: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let entry = entry.to_ascii_lowercase();
    match entry.strip_prefix("*.") {
        // `*.example.com` covers `api.example.com`, `a.b.example.com` and
        // the wildcard `*.api.example.com`, not `example.com` itself.
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        None => host == entry,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{message, run, table};
    use super::allowed;
    use crate::config::Config;
    use crate::rules::RuleId;

    #[test]
    fn mesh_internal_hosts_stay_in_the_cluster() {
        let none: &[&str] = &[];
        table(
            "ServiceEntry",
            RuleId::MG407,
            &Config::default(),
            vec![
                (
                    "external api, external location",
                    "networking.istio.io/v1",
                    json!({"hosts": ["api.stripe.com"], "location": "MESH_EXTERNAL"}),
                    none,
                ),
                (
                    "no location is external",
                    "networking.istio.io/v1beta1",
                    json!({"hosts": ["api.stripe.com"]}),
                    none,
                ),
                (
                    "outside host marked internal",
                    "networking.istio.io/v1alpha3",
                    json!({"hosts": ["pastebin.com"], "location": "MESH_INTERNAL"}),
                    &["spec.hosts[0]"],
                ),
                (
                    "in-mesh host marked internal",
                    "networking.istio.io/v1",
                    json!({"hosts": ["vm.legacy.svc.cluster.local"], "location": "MESH_INTERNAL"}),
                    none,
                ),
                (
                    "short host marked internal",
                    "networking.istio.io/v1",
                    json!({"hosts": ["legacy-db"], "location": "MESH_INTERNAL"}),
                    none,
                ),
                (
                    "wildcard outside marked internal",
                    "networking.istio.io/v1",
                    json!({"hosts": ["legacy.svc.cluster.local", "*.corp.example"], "location": "MESH_INTERNAL"}),
                    &["spec.hosts[1]"],
                ),
                (
                    "hosts of the wrong type",
                    "networking.istio.io/v1",
                    json!({"hosts": "pastebin.com", "location": "MESH_INTERNAL"}),
                    none,
                ),
                (
                    "unknown location",
                    "networking.istio.io/v1",
                    json!({"hosts": ["pastebin.com"], "location": "MESH_SOMEWHERE"}),
                    none,
                ),
            ],
        );
    }

    #[test]
    fn allowlist_applies_when_configured() {
        let none: &[&str] = &[];
        let cfg = Config {
            allowed_hosts: vec!["api.stripe.com".to_owned(), "*.googleapis.com".to_owned()],
            ..Config::default()
        };
        table(
            "ServiceEntry",
            RuleId::MG407,
            &cfg,
            vec![
                (
                    "exact host",
                    "networking.istio.io/v1",
                    json!({"hosts": ["api.stripe.com"]}),
                    none,
                ),
                (
                    "exact host, other case",
                    "networking.istio.io/v1",
                    json!({"hosts": ["API.Stripe.com"]}),
                    none,
                ),
                (
                    "wildcard entry covers subdomains",
                    "networking.istio.io/v1",
                    json!({"hosts": ["storage.googleapis.com", "a.b.googleapis.com"]}),
                    none,
                ),
                (
                    "wildcard entry covers a narrower wildcard",
                    "networking.istio.io/v1",
                    json!({"hosts": ["*.storage.googleapis.com"]}),
                    none,
                ),
                (
                    "wildcard entry does not cover the apex",
                    "networking.istio.io/v1",
                    json!({"hosts": ["googleapis.com"]}),
                    &["spec.hosts[0]"],
                ),
                (
                    "host off the list",
                    "networking.istio.io/v1beta1",
                    json!({"hosts": ["api.stripe.com", "pastebin.com"]}),
                    &["spec.hosts[1]"],
                ),
                (
                    "broader wildcard host",
                    "networking.istio.io/v1",
                    json!({"hosts": ["*.com"]}),
                    &["spec.hosts[0]"],
                ),
                (
                    "in-mesh hosts need no allowlist",
                    "networking.istio.io/v1",
                    json!({"hosts": ["orders.shop.svc.cluster.local"]}),
                    none,
                ),
                (
                    "both reasons, one violation",
                    "networking.istio.io/v1",
                    json!({"hosts": ["pastebin.com"], "location": "MESH_INTERNAL"}),
                    &["spec.hosts[0]"],
                ),
            ],
        );
        let found = run(
            "networking.istio.io/v1",
            "ServiceEntry",
            json!({"hosts": ["pastebin.com"], "location": "MESH_INTERNAL"}),
            &cfg,
        );
        let msg = message(&found, RuleId::MG407, "spec.hosts[0]");
        assert!(
            msg.contains("MESH_INTERNAL") && msg.contains("allowlist"),
            "{msg}"
        );
        assert!(
            found[0]
                .fix_text()
                .starts_with("Set `location: MESH_EXTERNAL`")
        );
    }

    #[test]
    fn allowlist_matching() {
        assert!(allowed("api.example.com", "*.example.com"));
        assert!(!allowed("example.com", "*.example.com"));
        assert!(!allowed("badexample.com", "*.example.com"));
        assert!(!allowed("*.example.com", "api.example.com"));
        assert!(allowed("*.example.com", "*.example.com"));
        assert!(allowed("*.api.example.com", "*.example.com"));
        assert!(!allowed("*.com", "*.example.com"));
    }

    #[test]
    fn custom_cluster_domain() {
        let cfg = Config {
            cluster_domain: "corp.local".to_owned(),
            ..Config::default()
        };
        let internal = |host: &str| json!({"hosts": [host], "location": "MESH_INTERNAL"});
        assert!(
            run(
                "networking.istio.io/v1",
                "ServiceEntry",
                internal("db.data.svc.corp.local"),
                &cfg
            )
            .is_empty()
        );
        assert_eq!(
            run(
                "networking.istio.io/v1",
                "ServiceEntry",
                internal("db.data.svc.cluster.local"),
                &cfg
            )
            .len(),
            1
        );
    }
}

//! DestinationRule rules (SPEC section 4): MG402 destination-rule-mtls keeps
//! ISTIO_MUTUAL for in-mesh hosts, MG403 destination-rule-circuit-breaker
//! asks for outlier detection and a connection pool.
//!
//! MG402 looks at every place a `tls` block can sit: the traffic policy, its
//! port-level settings, and each subset's traffic policy and port-level
//! settings. An absent `tls` is fine (auto mTLS applies); a `tls` without a
//! mode is what Istio reads as DISABLE.

use serde_json::Value;

use super::{Choice, choice, in_mesh, items, map, text};
use crate::rules::{Context, RuleId, Violation};

pub(super) fn check(spec: &Value, ctx: &Context<'_>, out: &mut Vec<Violation>) {
    mtls(spec, ctx, out);
    circuit_breaker(spec, out);
}

/// MG402.
fn mtls(spec: &Value, ctx: &Context<'_>, out: &mut Vec<Violation>) {
    let Some(host) = text(spec, "host") else {
        return;
    };
    if !covers_in_mesh(host, &ctx.config.cluster_domain) {
        return;
    }
    if let Some(policy) = map(spec, "trafficPolicy") {
        traffic_policy("spec.trafficPolicy", policy, host, out);
    }
    for (j, subset) in items(spec, "subsets").iter().enumerate() {
        if let Some(policy) = map(subset, "trafficPolicy") {
            let path = format!("spec.subsets[{j}].trafficPolicy");
            traffic_policy(&path, policy, host, out);
        }
    }
}

/// Whether a DestinationRule for `host` applies to in-mesh services: an
/// in-mesh host, or a wildcard that covers them (`*`, `*.local`,
/// `*.cluster.local`, `*.svc.cluster.local`: the mesh-wide rules of Istio's
/// own documentation).
fn covers_in_mesh(host: &str, cluster_domain: &str) -> bool {
    if host == "*" || in_mesh(host, cluster_domain) {
        return true;
    }
    let Some(suffix) = host.strip_prefix("*.") else {
        return false;
    };
    let in_mesh_suffix = format!(".svc.{}", cluster_domain.to_ascii_lowercase());
    !suffix.is_empty() && in_mesh_suffix.ends_with(&format!(".{}", suffix.to_ascii_lowercase()))
}

fn traffic_policy(path: &str, policy: &Value, host: &str, out: &mut Vec<Violation>) {
    tls_mode(path, policy, host, out);
    for (i, setting) in items(policy, "portLevelSettings").iter().enumerate() {
        tls_mode(
            &format!("{path}.portLevelSettings[{i}]"),
            setting,
            host,
            out,
        );
    }
}

/// Judges the `tls` of one traffic policy or port-level setting at `path`.
fn tls_mode(path: &str, settings: &Value, host: &str, out: &mut Vec<Violation>) {
    let Some(tls) = map(settings, "tls") else {
        return;
    };
    let found = match choice(tls, "mode") {
        Choice::Is("DISABLE") => "tls.mode is DISABLE: the sidecar sends plain text",
        Choice::Is("SIMPLE") => {
            "tls.mode is SIMPLE: the sidecar originates TLS without the workload's Istio identity"
        }
        Choice::Is("MUTUAL") => {
            "tls.mode is MUTUAL: the sidecar presents a user-supplied certificate instead of the workload's Istio identity"
        }
        Choice::Unset => {
            "tls has no mode, which Istio reads as DISABLE: the sidecar sends plain text"
        }
        // ISTIO_MUTUAL, or a value we do not know.
        Choice::Is(_) | Choice::Unreadable => return,
    };
    out.push(
        Violation::new(
            RuleId::MG402,
            format!("{path}.tls.mode"),
            format!("{found} to in-mesh host `{host}`, overriding Istio's automatic mTLS"),
        )
        .with_fix(format!(
            "Set `{path}.tls: {{mode: ISTIO_MUTUAL}}`, or remove `{path}.tls` so auto mTLS applies."
        )),
    );
}

/// MG403: the top-level traffic policy is the circuit breaker.
fn circuit_breaker(spec: &Value, out: &mut Vec<Violation>) {
    let policy = match spec.get("trafficPolicy") {
        None | Some(Value::Null) => None,
        Some(p) if p.is_object() => Some(p),
        // Of a type no traffic policy has: not judged.
        Some(_) => return,
    };
    let parts = [
        (
            "outlierDetection",
            "a failing pod keeps receiving its share of traffic",
            "outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}",
        ),
        (
            "connectionPool",
            "a slow dependency can exhaust the callers' connections",
            "connectionPool: {tcp: {maxConnections: 100}, http: {http1MaxPendingRequests: 100}}",
        ),
    ];
    for (field, consequence, fragment) in parts {
        // Present with any value counts: a shape we do not know is never
        // a reason to warn.
        if policy
            .and_then(|p| p.get(field))
            .is_some_and(|v| !v.is_null())
        {
            continue;
        }
        let found = if policy.is_some() {
            format!("the top-level trafficPolicy has no {field}")
        } else {
            format!("there is no top-level trafficPolicy, so no {field}")
        };
        out.push(
            Violation::new(
                RuleId::MG403,
                format!("spec.trafficPolicy.{field}"),
                format!("{found}: {consequence}"),
            )
            .with_fix(format!(
                "Add `trafficPolicy: {{{fragment}}}` (tuned to the service)."
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::testing::{message, run, table};
    use crate::config::Config;
    use crate::rules::RuleId;

    const NONE: &[&str] = &[];

    fn tls(host: &str, mode: &str) -> Value {
        json!({"host": host, "trafficPolicy": {"tls": {"mode": mode}}})
    }

    #[test]
    fn in_mesh_hosts_keep_istio_mutual() {
        let top: &[&str] = &["spec.trafficPolicy.tls.mode"];
        table(
            "DestinationRule",
            RuleId::MG402,
            &Config::default(),
            vec![
                (
                    "short host",
                    "networking.istio.io/v1",
                    tls("orders", "DISABLE"),
                    top,
                ),
                (
                    "svc host",
                    "networking.istio.io/v1beta1",
                    tls("orders.payments.svc", "SIMPLE"),
                    top,
                ),
                (
                    "mesh-wide *.local",
                    "networking.istio.io/v1",
                    tls("*.local", "DISABLE"),
                    top,
                ),
                (
                    "mesh-wide *.cluster.local",
                    "networking.istio.io/v1",
                    tls("*.Cluster.Local", "SIMPLE"),
                    top,
                ),
                (
                    "a wildcard outside the mesh",
                    "networking.istio.io/v1",
                    tls("*.example.com", "SIMPLE"),
                    NONE,
                ),
                (
                    "a wildcard that only looks alike",
                    "networking.istio.io/v1",
                    tls("*.al", "DISABLE"),
                    NONE,
                ),
                (
                    "fqdn",
                    "networking.istio.io/v1alpha3",
                    tls("orders.payments.svc.cluster.local", "MUTUAL"),
                    top,
                ),
                (
                    "upper-case fqdn",
                    "networking.istio.io/v1",
                    tls("Orders.Payments.SVC.cluster.LOCAL", "DISABLE"),
                    top,
                ),
                (
                    "wildcard in-mesh",
                    "networking.istio.io/v1",
                    tls("*.payments.svc.cluster.local", "DISABLE"),
                    top,
                ),
                (
                    "bare wildcard",
                    "networking.istio.io/v1",
                    tls("*", "DISABLE"),
                    top,
                ),
                (
                    "istio mutual",
                    "networking.istio.io/v1",
                    tls("orders", "ISTIO_MUTUAL"),
                    NONE,
                ),
                (
                    "external host",
                    "networking.istio.io/v1alpha3",
                    tls("api.stripe.com", "SIMPLE"),
                    NONE,
                ),
                (
                    "name.namespace is not in-mesh",
                    "networking.istio.io/v1",
                    tls("orders.payments", "DISABLE"),
                    NONE,
                ),
                (
                    "other cluster domain",
                    "networking.istio.io/v1",
                    tls("orders.payments.svc.corp.local", "DISABLE"),
                    NONE,
                ),
                (
                    "no tls: auto mTLS",
                    "networking.istio.io/v1",
                    json!({"host": "orders", "trafficPolicy": {}}),
                    NONE,
                ),
                (
                    "tls without mode",
                    "networking.istio.io/v1",
                    json!({"host": "orders", "trafficPolicy": {"tls": {"sni": "x"}}}),
                    top,
                ),
                (
                    "unknown mode",
                    "networking.istio.io/v1",
                    tls("orders", "FUTURE_MTLS"),
                    NONE,
                ),
                (
                    "mode not a string",
                    "networking.istio.io/v1",
                    json!({"host": "orders", "trafficPolicy": {"tls": {"mode": 1}}}),
                    NONE,
                ),
                (
                    "tls not a map",
                    "networking.istio.io/v1",
                    json!({"host": "orders", "trafficPolicy": {"tls": "DISABLE"}}),
                    NONE,
                ),
                (
                    "no host",
                    "networking.istio.io/v1",
                    json!({"trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
                    NONE,
                ),
                (
                    "host not a string",
                    "networking.istio.io/v1",
                    json!({"host": ["orders"], "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
                    NONE,
                ),
            ],
        );
    }

    #[test]
    fn subsets_and_port_level_settings() {
        let spec = json!({
            "host": "orders",
            "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL"},
                "portLevelSettings": [
                    {"port": {"number": 80}, "tls": {"mode": "ISTIO_MUTUAL"}},
                    {"port": {"number": 9000}, "tls": {"mode": "DISABLE"}},
                ],
            },
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "trafficPolicy": {"tls": {"mode": "SIMPLE"},
                    "portLevelSettings": [{"port": {"number": 9000}, "tls": {"mode": "MUTUAL"}}]}},
                "not a subset",
                {"name": "v3", "trafficPolicy": {"portLevelSettings": {"tls": {"mode": "DISABLE"}}}},
            ],
        });
        table(
            "DestinationRule",
            RuleId::MG402,
            &Config::default(),
            vec![
                (
                    "each place once",
                    "networking.istio.io/v1beta1",
                    spec.clone(),
                    &[
                        "spec.trafficPolicy.portLevelSettings[1].tls.mode",
                        "spec.subsets[1].trafficPolicy.tls.mode",
                        "spec.subsets[1].trafficPolicy.portLevelSettings[0].tls.mode",
                    ],
                ),
                (
                    "subset of an external host",
                    "networking.istio.io/v1",
                    json!({"host": "api.stripe.com", "subsets": [{"name": "a", "trafficPolicy": {"tls": {"mode": "SIMPLE"}}}]}),
                    NONE,
                ),
            ],
        );
        let found = run(
            "networking.istio.io/v1",
            "DestinationRule",
            spec,
            &Config::default(),
        );
        let msg = message(
            &found,
            RuleId::MG402,
            "spec.subsets[1].trafficPolicy.tls.mode",
        );
        assert!(msg.contains("SIMPLE") && msg.contains("`orders`"), "{msg}");
    }

    #[test]
    fn cluster_domain_is_configurable() {
        let cfg = Config {
            cluster_domain: "corp.local".to_owned(),
            ..Config::default()
        };
        let top: &[&str] = &["spec.trafficPolicy.tls.mode"];
        table(
            "DestinationRule",
            RuleId::MG402,
            &cfg,
            vec![
                (
                    "custom domain",
                    "networking.istio.io/v1",
                    tls("orders.payments.svc.corp.local", "DISABLE"),
                    top,
                ),
                (
                    "default domain is now external",
                    "networking.istio.io/v1",
                    tls("orders.payments.svc.cluster.local", "DISABLE"),
                    NONE,
                ),
                (
                    "short name still in-mesh",
                    "networking.istio.io/v1",
                    tls("orders", "DISABLE"),
                    top,
                ),
                (
                    "svc still in-mesh",
                    "networking.istio.io/v1",
                    tls("orders.payments.svc", "DISABLE"),
                    top,
                ),
            ],
        );
    }

    #[test]
    fn circuit_breaker_parts() {
        let od = "spec.trafficPolicy.outlierDetection";
        let cp = "spec.trafficPolicy.connectionPool";
        let both = json!({"connectionPool": {"tcp": {"maxConnections": 10}}, "outlierDetection": {"consecutive5xxErrors": 5}});
        table(
            "DestinationRule",
            RuleId::MG403,
            &Config::default(),
            vec![
                (
                    "both",
                    "networking.istio.io/v1",
                    json!({"host": "a", "trafficPolicy": both}),
                    NONE,
                ),
                (
                    "no traffic policy",
                    "networking.istio.io/v1beta1",
                    json!({"host": "a"}),
                    &[od, cp],
                ),
                (
                    "empty spec",
                    "networking.istio.io/v1alpha3",
                    json!({}),
                    &[od, cp],
                ),
                (
                    "no outlier detection",
                    "networking.istio.io/v1",
                    json!({"trafficPolicy": {"connectionPool": {}}}),
                    &[od],
                ),
                (
                    "no connection pool",
                    "networking.istio.io/v1",
                    json!({"trafficPolicy": {"outlierDetection": {}}}),
                    &[cp],
                ),
                (
                    "traffic policy not a map is not judged",
                    "networking.istio.io/v1",
                    json!({"trafficPolicy": 5}),
                    NONE,
                ),
                (
                    "a part of the wrong type counts, a null one does not",
                    "networking.istio.io/v1",
                    json!({"trafficPolicy": {"outlierDetection": true, "connectionPool": null}}),
                    &[cp],
                ),
                (
                    "only in a subset",
                    "networking.istio.io/v1",
                    json!({"subsets": [{"name": "v1", "trafficPolicy": {"connectionPool": {}, "outlierDetection": {}}}]}),
                    &[od, cp],
                ),
            ],
        );
    }
}

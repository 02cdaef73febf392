//! MG408 egress-registry-only: a Sidecar resource does not open egress to
//! any host (SPEC section 4).
//!
//! Only `spec.outboundTrafficPolicy.mode: ALLOW_ANY` is a violation;
//! `REGISTRY_ONLY`, an absent mode (the mesh-wide setting applies) and values
//! we do not know are not.

use serde_json::Value;

use super::{Choice, choice, map};
use crate::rules::{RuleId, Violation};

pub(super) fn check(spec: &Value, out: &mut Vec<Violation>) {
    let Some(policy) = map(spec, "outboundTrafficPolicy") else {
        return;
    };
    if choice(policy, "mode") != Choice::Is("ALLOW_ANY") {
        return;
    }
    out.push(
        Violation::new(
            RuleId::MG408,
            "spec.outboundTrafficPolicy.mode",
            "outboundTrafficPolicy.mode is ALLOW_ANY: the selected workloads can call any external host, bypassing the ServiceEntry allowlist",
        )
        .with_fix(
            "Set `outboundTrafficPolicy: {mode: REGISTRY_ONLY}` (or remove it to inherit the mesh setting) and declare each external API with a ServiceEntry.",
        ),
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::table;
    use crate::config::Config;
    use crate::rules::RuleId;

    #[test]
    fn outbound_modes() {
        let none: &[&str] = &[];
        let path: &[&str] = &["spec.outboundTrafficPolicy.mode"];
        table(
            "Sidecar",
            RuleId::MG408,
            &Config::default(),
            vec![
                (
                    "allow any",
                    "networking.istio.io/v1",
                    json!({"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}),
                    path,
                ),
                (
                    "allow any v1alpha3",
                    "networking.istio.io/v1alpha3",
                    json!({"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}),
                    path,
                ),
                (
                    "registry only",
                    "networking.istio.io/v1beta1",
                    json!({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}),
                    none,
                ),
                (
                    "no mode",
                    "networking.istio.io/v1",
                    json!({"outboundTrafficPolicy": {}}),
                    none,
                ),
                (
                    "no policy",
                    "networking.istio.io/v1",
                    json!({"egress": [{"hosts": ["./*"]}]}),
                    none,
                ),
                (
                    "unknown mode",
                    "networking.istio.io/v1",
                    json!({"outboundTrafficPolicy": {"mode": "SOMETIMES"}}),
                    none,
                ),
                (
                    "wrong types",
                    "networking.istio.io/v1",
                    json!({"outboundTrafficPolicy": "ALLOW_ANY"}),
                    none,
                ),
                (
                    "mode not a string",
                    "networking.istio.io/v1",
                    json!({"outboundTrafficPolicy": {"mode": 1}}),
                    none,
                ),
            ],
        );
    }
}

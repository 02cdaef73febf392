//! MG401 peer-authentication-strict: a PeerAuthentication keeps mTLS STRICT
//! (SPEC section 4).
//!
//! Judges `spec.mtls.mode` and every `spec.portLevelMtls.<port>.mode`, one
//! violation per place. PERMISSIVE and DISABLE are violations; STRICT, UNSET,
//! an absent mode (inherits) and values we do not know are not.

use serde_json::Value;

use super::{Choice, choice, map};
use crate::rules::{RuleId, Violation};

pub(super) fn check(spec: &Value, out: &mut Vec<Violation>) {
    if let Some(mode) = map(spec, "mtls").and_then(weak_mode) {
        out.push(
            Violation::new(
                RuleId::MG401,
                "spec.mtls.mode",
                format!("mtls.mode is {mode}: {}", consequence(mode)),
            )
            .with_fix(
                "Set `mtls: {mode: STRICT}`, or remove the mode (UNSET) to inherit the mesh-wide STRICT policy.",
            ),
        );
    }
    let Some(ports) = spec.get("portLevelMtls").and_then(Value::as_object) else {
        return;
    };
    for (port, setting) in ports {
        if let Some(mode) = weak_mode(setting) {
            out.push(
                Violation::new(
                    RuleId::MG401,
                    format!("spec.portLevelMtls.{port}.mode"),
                    format!("port {port} sets mtls mode {mode}: {}", consequence(mode)),
                )
                .with_fix(format!(
                    "Set `portLevelMtls: {{\"{port}\": {{mode: STRICT}}}}`, or remove the entry for port {port}."
                )),
            );
        }
    }
}

/// The mode of an `mtls` setting when it weakens mTLS.
fn weak_mode(setting: &Value) -> Option<&str> {
    match choice(setting, "mode") {
        Choice::Is(mode @ ("PERMISSIVE" | "DISABLE")) => Some(mode),
        _ => None,
    }
}

fn consequence(mode: &str) -> &'static str {
    if mode == "DISABLE" {
        "the workload accepts plain text only, so no caller has an identity and principal-based policies cannot match"
    } else {
        "the workload also accepts plain text, so any pod can call it without an identity"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{message, run, table};
    use crate::config::Config;
    use crate::rules::RuleId;

    #[test]
    fn mtls_modes() {
        let none: &[&str] = &[];
        table(
            "PeerAuthentication",
            RuleId::MG401,
            &Config::default(),
            vec![
                (
                    "strict",
                    "security.istio.io/v1",
                    json!({"mtls": {"mode": "STRICT"}}),
                    none,
                ),
                (
                    "permissive",
                    "security.istio.io/v1",
                    json!({"mtls": {"mode": "PERMISSIVE"}}),
                    &["spec.mtls.mode"],
                ),
                (
                    "disable v1beta1",
                    "security.istio.io/v1beta1",
                    json!({"mtls": {"mode": "DISABLE"}}),
                    &["spec.mtls.mode"],
                ),
                (
                    "unset",
                    "security.istio.io/v1beta1",
                    json!({"mtls": {"mode": "UNSET"}}),
                    none,
                ),
                (
                    "no mtls at all",
                    "security.istio.io/v1",
                    json!({"selector": {"matchLabels": {"app": "a"}}}),
                    none,
                ),
                ("empty spec", "security.istio.io/v1", json!({}), none),
                (
                    "unknown mode",
                    "security.istio.io/v1",
                    json!({"mtls": {"mode": "QUANTUM"}}),
                    none,
                ),
                (
                    "lower case is not Istio's",
                    "security.istio.io/v1",
                    json!({"mtls": {"mode": "permissive"}}),
                    none,
                ),
                (
                    "wrong types",
                    "security.istio.io/v1",
                    json!({"mtls": 5, "portLevelMtls": [1]}),
                    none,
                ),
                (
                    "mode not a string",
                    "security.istio.io/v1",
                    json!({"mtls": {"mode": 2}}),
                    none,
                ),
                (
                    "null mode",
                    "security.istio.io/v1",
                    json!({"mtls": {"mode": null}}),
                    none,
                ),
            ],
        );
    }

    #[test]
    fn port_level_modes() {
        let none: &[&str] = &[];
        table(
            "PeerAuthentication",
            RuleId::MG401,
            &Config::default(),
            vec![
                (
                    "one permissive port",
                    "security.istio.io/v1beta1",
                    json!({"mtls": {"mode": "STRICT"}, "portLevelMtls": {"9090": {"mode": "PERMISSIVE"}}}),
                    &["spec.portLevelMtls.9090.mode"],
                ),
                (
                    "one violation per port and the top level",
                    "security.istio.io/v1",
                    json!({"mtls": {"mode": "DISABLE"}, "portLevelMtls": {
                        "8080": {"mode": "DISABLE"}, "8443": {"mode": "STRICT"}, "9090": {"mode": "PERMISSIVE"}}}),
                    &[
                        "spec.mtls.mode",
                        "spec.portLevelMtls.8080.mode",
                        "spec.portLevelMtls.9090.mode",
                    ],
                ),
                (
                    "strict and unset ports",
                    "security.istio.io/v1",
                    json!({"portLevelMtls": {"8080": {"mode": "STRICT"}, "9090": {"mode": "UNSET"}, "9091": {}}}),
                    none,
                ),
                (
                    "port entries of the wrong type",
                    "security.istio.io/v1",
                    json!({"portLevelMtls": {"8080": "PERMISSIVE", "9090": null, "9091": [{"mode": "DISABLE"}]}}),
                    none,
                ),
            ],
        );
    }

    #[test]
    fn messages_name_the_mode_and_port() {
        let cfg = Config::default();
        let found = run(
            "security.istio.io/v1",
            "PeerAuthentication",
            json!({"portLevelMtls": {"9090": {"mode": "PERMISSIVE"}}}),
            &cfg,
        );
        let msg = message(&found, RuleId::MG401, "spec.portLevelMtls.9090.mode");
        assert!(
            msg.contains("port 9090") && msg.contains("PERMISSIVE"),
            "{msg}"
        );
        assert!(found[0].fix_text().contains("\"9090\": {mode: STRICT}"));
    }
}

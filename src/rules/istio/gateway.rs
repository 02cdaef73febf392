//! MG406 gateway-tls: a Gateway terminates TLS on its HTTPS/TLS servers and
//! redirects plain HTTP (SPEC section 4).
//!
//! Each `spec.servers[i]` is judged by its `port.protocol`, compared without
//! regard to case as Istio does:
//!
//! * `HTTPS` / `TLS`: `tls.mode` `SIMPLE`, `MUTUAL` or `OPTIONAL_MUTUAL`
//!   needs a certificate (`credentialName`, `credentialNames` or
//!   `serverCertificate`); `ISTIO_MUTUAL` needs none. No `tls`, or a `tls`
//!   without a mode (Istio then silently uses PASSTHROUGH), is a violation.
//!   `PASSTHROUGH` and `AUTO_PASSTHROUGH` are fine by default: the stream
//!   stays encrypted end to end and the backend terminates it (Istio's own
//!   multi-cluster east-west gateway is `AUTO_PASSTHROUGH`); the rule
//!   parameter `passthrough: deny` makes them violations for teams that
//!   require termination at the edge.
//! * `HTTP`: `tls.httpsRedirect` must be `true`.
//! * any other protocol, and modes we do not know, are not judged.

use serde_json::Value;

use super::{Choice, choice, is_set, items, map, text};
use crate::config::Passthrough;
use crate::rules::{Context, RuleId, Violation};

pub(super) fn check(spec: &Value, ctx: &Context<'_>, out: &mut Vec<Violation>) {
    let passthrough = ctx.config.gateway_passthrough;
    for (i, server) in items(spec, "servers").iter().enumerate() {
        let Some(protocol) = map(server, "port").and_then(|p| text(p, "protocol")) else {
            continue;
        };
        let path = format!("spec.servers[{i}]");
        let hosts = hosts(server);
        match protocol.to_ascii_uppercase().as_str() {
            "HTTPS" | "TLS" => terminates_tls(&path, protocol, &hosts, server, passthrough, out),
            "HTTP" => redirects(&path, &hosts, server, out),
            _ => {}
        }
    }
}

/// The server's hosts for messages: `shop.example.com, pay.example.com`.
fn hosts(server: &Value) -> String {
    let names: Vec<&str> = items(server, "hosts")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if names.is_empty() {
        "no hosts".to_owned()
    } else {
        names.join(", ")
    }
}

fn terminates_tls(
    path: &str,
    protocol: &str,
    hosts: &str,
    server: &Value,
    passthrough: Passthrough,
    out: &mut Vec<Violation>,
) {
    let fix_simple = format!(
        "Give {path} `tls: {{mode: SIMPLE, credentialName: <secret with the certificate for {hosts}>}}` (or MUTUAL to require client certificates)."
    );
    let tls = match server.get("tls") {
        Some(tls) if tls.is_object() => tls,
        // Of a type no `tls` has: not judged.
        Some(tls) if !tls.is_null() => return,
        _ => {
            out.push(
            Violation::new(
                RuleId::MG406,
                format!("{path}.tls"),
                format!("{protocol} server for {hosts} has no `tls`, so the gateway does not terminate TLS"),
            )
            .with_fix(fix_simple),
            );
            return;
        }
    };
    let mode = match choice(tls, "mode") {
        Choice::Is("ISTIO_MUTUAL") => return,
        Choice::Is(mode @ ("SIMPLE" | "MUTUAL" | "OPTIONAL_MUTUAL")) => mode,
        Choice::Is(mode @ ("PASSTHROUGH" | "AUTO_PASSTHROUGH")) => {
            if passthrough == Passthrough::Deny {
                out.push(
                    Violation::new(
                        RuleId::MG406,
                        format!("{path}.tls.mode"),
                        format!("{protocol} server for {hosts} has tls.mode {mode}: the gateway forwards the encrypted stream without terminating TLS, and this mesh's MG406 setting `passthrough: deny` requires termination at the gateway"),
                    )
                    .with_fix(fix_simple),
                );
            }
            return;
        }
        Choice::Unset => {
            out.push(
                Violation::new(
                    RuleId::MG406,
                    format!("{path}.tls.mode"),
                    format!("{protocol} server for {hosts} has a `tls` without a mode, which Istio silently reads as PASSTHROUGH"),
                )
                .with_fix(format!(
                    "Set {path}.tls.mode: SIMPLE with a `credentialName` to terminate TLS at the gateway, or PASSTHROUGH explicitly if the backend terminates it."
                )),
            );
            return;
        }
        // A mode we do not know (a future one) or of the wrong type: never
        // a reason to deny.
        Choice::Is(_) | Choice::Unreadable => return,
    };
    if ["credentialName", "credentialNames", "serverCertificate"]
        .iter()
        .any(|key| is_set(tls.get(*key)))
    {
        return;
    }
    out.push(
        Violation::new(
            RuleId::MG406,
            format!("{path}.tls.credentialName"),
            format!("{protocol} server for {hosts} has tls.mode {mode} without a certificate (`credentialName`, `credentialNames` or `serverCertificate`): the gateway has nothing to present to clients"),
        )
        .with_fix(format!(
            "Set {path}.tls.credentialName to the Secret (in the gateway's namespace) holding the certificate for {hosts}."
        )),
    );
}

fn redirects(path: &str, hosts: &str, server: &Value, out: &mut Vec<Violation>) {
    let redirect = match server.get("tls") {
        None | Some(Value::Null) => None,
        Some(tls) if tls.is_object() => tls.get("httpsRedirect").filter(|v| !v.is_null()),
        // A `tls` of a type no `tls` has: not judged.
        Some(_) => return,
    };
    match redirect {
        None | Some(Value::Bool(false)) => {}
        // `true`, or a value of the wrong type: not a violation.
        Some(_) => return,
    }
    out.push(
        Violation::new(
            RuleId::MG406,
            format!("{path}.tls.httpsRedirect"),
            format!("plain HTTP server for {hosts} does not redirect to HTTPS, so it serves users in plain text"),
        )
        .with_fix(format!("Set `{path}.tls: {{httpsRedirect: true}}`.")),
    );
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::testing::{message, run, table};
    use crate::config::Config;
    use crate::rules::RuleId;

    fn server(protocol: &str, tls: Value) -> Value {
        let mut s = json!({"port": {"number": 443, "name": "p", "protocol": protocol}, "hosts": ["shop.example.com"]});
        if !tls.is_null() {
            s["tls"] = tls;
        }
        json!({"selector": {"istio": "ingressgateway"}, "servers": [s]})
    }

    #[test]
    fn tls_servers_terminate_tls() {
        let none: &[&str] = &[];
        table(
            "Gateway",
            RuleId::MG406,
            &Config::default(),
            vec![
                (
                    "https simple with credential",
                    "networking.istio.io/v1",
                    server(
                        "HTTPS",
                        json!({"mode": "SIMPLE", "credentialName": "shop-tls"}),
                    ),
                    none,
                ),
                (
                    "tls mutual with credential v1beta1",
                    "networking.istio.io/v1beta1",
                    server(
                        "TLS",
                        json!({"mode": "MUTUAL", "credentialName": "shop-tls"}),
                    ),
                    none,
                ),
                (
                    "credentialNames list",
                    "networking.istio.io/v1",
                    server(
                        "HTTPS",
                        json!({"mode": "SIMPLE", "credentialNames": ["rsa", "ecdsa"]}),
                    ),
                    none,
                ),
                (
                    "istio mutual needs no credential",
                    "networking.istio.io/v1alpha3",
                    server("TLS", json!({"mode": "ISTIO_MUTUAL"})),
                    none,
                ),
                (
                    "https without tls",
                    "networking.istio.io/v1",
                    server("HTTPS", Value::Null),
                    &["spec.servers[0].tls"],
                ),
                (
                    "lower-case protocol is Istio's too",
                    "networking.istio.io/v1",
                    server("https", Value::Null),
                    &["spec.servers[0].tls"],
                ),
                (
                    "simple without credential",
                    "networking.istio.io/v1",
                    server("HTTPS", json!({"mode": "SIMPLE"})),
                    &["spec.servers[0].tls.credentialName"],
                ),
                (
                    "empty credential",
                    "networking.istio.io/v1",
                    server("TLS", json!({"mode": "MUTUAL", "credentialName": ""})),
                    &["spec.servers[0].tls.credentialName"],
                ),
                (
                    "passthrough is terminated by the backend",
                    "networking.istio.io/v1",
                    server("TLS", json!({"mode": "PASSTHROUGH"})),
                    none,
                ),
                (
                    "auto passthrough (east-west gateway)",
                    "networking.istio.io/v1alpha3",
                    server("TLS", json!({"mode": "AUTO_PASSTHROUGH"})),
                    none,
                ),
                (
                    "optional mutual with credential",
                    "networking.istio.io/v1",
                    server(
                        "HTTPS",
                        json!({"mode": "OPTIONAL_MUTUAL", "credentialName": "shop-tls"}),
                    ),
                    none,
                ),
                (
                    "optional mutual without a certificate",
                    "networking.istio.io/v1",
                    server("HTTPS", json!({"mode": "OPTIONAL_MUTUAL"})),
                    &["spec.servers[0].tls.credentialName"],
                ),
                (
                    "serverCertificate file counts as a certificate",
                    "networking.istio.io/v1beta1",
                    server(
                        "HTTPS",
                        json!({"mode": "SIMPLE", "serverCertificate": "/etc/certs/tls.crt", "privateKey": "/etc/certs/tls.key"}),
                    ),
                    none,
                ),
                (
                    "tls without a mode",
                    "networking.istio.io/v1",
                    server("HTTPS", json!({"credentialName": "x"})),
                    &["spec.servers[0].tls.mode"],
                ),
                (
                    "unknown mode",
                    "networking.istio.io/v1",
                    server("HTTPS", json!({"mode": "QUANTUM_SAFE_MUTUAL"})),
                    none,
                ),
                (
                    "tls of the wrong type is not judged",
                    "networking.istio.io/v1",
                    server("HTTPS", json!("SIMPLE")),
                    none,
                ),
                (
                    "tcp is not judged",
                    "networking.istio.io/v1",
                    server("TCP", Value::Null),
                    none,
                ),
                (
                    "grpc is not judged",
                    "networking.istio.io/v1",
                    server("GRPC", Value::Null),
                    none,
                ),
                (
                    "no protocol",
                    "networking.istio.io/v1",
                    json!({"servers": [{"port": {"number": 443}}]}),
                    none,
                ),
            ],
        );
    }

    #[test]
    fn passthrough_deny_makes_passthrough_modes_violations() {
        let cfg = Config::parse("rules:\n  MG406: {passthrough: deny}\n").expect("valid config");
        let none: &[&str] = &[];
        table(
            "Gateway",
            RuleId::MG406,
            &cfg,
            vec![
                (
                    "passthrough",
                    "networking.istio.io/v1",
                    server("TLS", json!({"mode": "PASSTHROUGH"})),
                    &["spec.servers[0].tls.mode"],
                ),
                (
                    "auto passthrough",
                    "networking.istio.io/v1alpha3",
                    server("TLS", json!({"mode": "AUTO_PASSTHROUGH"})),
                    &["spec.servers[0].tls.mode"],
                ),
                (
                    "simple with credential is still fine",
                    "networking.istio.io/v1",
                    server(
                        "HTTPS",
                        json!({"mode": "SIMPLE", "credentialName": "shop-tls"}),
                    ),
                    none,
                ),
            ],
        );
        let found = run(
            "networking.istio.io/v1",
            "Gateway",
            server("TLS", json!({"mode": "AUTO_PASSTHROUGH"})),
            &cfg,
        );
        let msg = message(&found, RuleId::MG406, "spec.servers[0].tls.mode");
        assert!(
            msg.contains("AUTO_PASSTHROUGH") && msg.contains("passthrough: deny"),
            "{msg}"
        );
    }

    #[test]
    fn istio_east_west_gateway_is_allowed_by_default() {
        // The cross-network gateway of istio/istio's
        // samples/multicluster/expose-services.yaml, which every
        // multi-network install applies.
        let spec = json!({"selector": {"istio": "eastwestgateway"}, "servers": [
            {"port": {"number": 15443, "name": "tls", "protocol": "TLS"},
             "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": ["*.local"]}]});
        assert!(
            run(
                "networking.istio.io/v1",
                "Gateway",
                spec,
                &Config::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn plain_http_servers_redirect() {
        let none: &[&str] = &[];
        table(
            "Gateway",
            RuleId::MG406,
            &Config::default(),
            vec![
                (
                    "redirect",
                    "networking.istio.io/v1",
                    server("HTTP", json!({"httpsRedirect": true})),
                    none,
                ),
                (
                    "no redirect",
                    "networking.istio.io/v1",
                    server("HTTP", Value::Null),
                    &["spec.servers[0].tls.httpsRedirect"],
                ),
                (
                    "redirect false",
                    "networking.istio.io/v1beta1",
                    server("HTTP", json!({"httpsRedirect": false})),
                    &["spec.servers[0].tls.httpsRedirect"],
                ),
                (
                    "redirect of the wrong type is not judged",
                    "networking.istio.io/v1",
                    server("HTTP", json!({"httpsRedirect": "true"})),
                    none,
                ),
                (
                    "tls without a redirect",
                    "networking.istio.io/v1",
                    server("HTTP", json!({"mode": "SIMPLE"})),
                    &["spec.servers[0].tls.httpsRedirect"],
                ),
            ],
        );
    }

    #[test]
    fn fixture_gateways() {
        let cfg = Config::default();
        let public = json!({"selector": {"istio": "ingressgateway"}, "servers": [
            {"hosts": ["shop.example.com"], "port": {"name": "https", "number": 443, "protocol": "HTTPS"},
             "tls": {"credentialName": "shop-example-com-tls", "mode": "SIMPLE"}},
            {"hosts": ["shop.example.com"], "port": {"name": "http", "number": 80, "protocol": "HTTP"},
             "tls": {"httpsRedirect": true}}]});
        assert!(run("networking.istio.io/v1beta1", "Gateway", public, &cfg).is_empty());
        let insecure = json!({"servers": [
            {"hosts": ["pay.example.com"], "port": {"name": "http", "number": 80, "protocol": "HTTP"}},
            {"hosts": ["pay.example.com"], "port": {"name": "https", "number": 443, "protocol": "HTTPS"}}]});
        let found = run("networking.istio.io/v1beta1", "Gateway", insecure, &cfg);
        assert_eq!(found.len(), 2, "{found:?}");
        let msg = message(&found, RuleId::MG406, "spec.servers[1].tls");
        assert!(
            msg.contains("pay.example.com") && msg.contains("HTTPS"),
            "{msg}"
        );
        assert!(found[1].fix_text().contains("credentialName"));
    }
}

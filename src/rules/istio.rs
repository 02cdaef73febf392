//! Istio resource rules MG401-MG409 (SPEC section 4, "Istio resources").
//!
//! Each resource family has its own file under `istio/`; this module
//! dispatches by kind and owns what they share: lenient look-ups into the
//! resource's `spec` and the definition of an in-mesh host (MG402, MG407).
//! Pure functions: no I/O, no configuration beyond the `Context`.
//!
//! Istio's schemas change under us (CONVENTIONS habit 5), so the `spec` is a
//! `serde_json::Value` read with these conventions, decided once for every
//! rule here:
//!
//! * a field of the wrong type, or `null`, is absent;
//! * an enum value we do not know is never a violation;
//! * a `spec` that is not a map is not judged at all (the API server's schema
//!   rejects such an object before it could matter);
//! * nothing indexes untrusted data with `[]` and nothing panics.

mod authorization_policy;
mod destination_rule;
mod gateway;
mod peer_authentication;
mod service_entry;
mod sidecar;
#[cfg(test)]
mod testing;
mod virtual_service;

use serde_json::Value;

use crate::object::{Body, Kind, Object};
use crate::rules::{Context, Violation};

pub fn check(object: &Object<'_>, ctx: &Context<'_>, out: &mut Vec<Violation>) {
    let Body::Istio(spec) = &object.body else {
        return;
    };
    if !spec.is_object() {
        return;
    }
    match object.kind {
        Kind::PeerAuthentication => peer_authentication::check(spec, out),
        Kind::DestinationRule => destination_rule::check(spec, ctx, out),
        Kind::AuthorizationPolicy => authorization_policy::check(spec, out),
        Kind::VirtualService => virtual_service::check(spec, ctx, out),
        Kind::Gateway => gateway::check(spec, ctx, out),
        Kind::ServiceEntry => service_entry::check(spec, ctx, out),
        Kind::Sidecar => sidecar::check(spec, out),
        _ => {}
    }
}

/// The items of a list field; anything else (absent, `null`, a map) is an
/// empty list.
pub(crate) fn items<'v>(parent: &'v Value, key: &str) -> &'v [Value] {
    parent
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A string field; any other type is absent.
pub(crate) fn text<'v>(parent: &'v Value, key: &str) -> Option<&'v str> {
    parent.get(key).and_then(Value::as_str)
}

/// A map field, as a value that `get` can look into; any other type is
/// absent.
pub(crate) fn map<'v>(parent: &'v Value, key: &str) -> Option<&'v Value> {
    parent.get(key).filter(|v| v.is_object())
}

/// An enum field as Istio would read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice<'v> {
    /// Absent or `null`: Istio applies the field's default.
    Unset,
    Is(&'v str),
    /// Present with a type no enum has: judged like an unknown value.
    Unreadable,
}

fn choice<'v>(parent: &'v Value, key: &str) -> Choice<'v> {
    match parent.get(key) {
        None | Some(Value::Null) => Choice::Unset,
        Some(Value::String(s)) => Choice::Is(s),
        Some(_) => Choice::Unreadable,
    }
}

/// True when a field holds something: not absent, `null`, or an empty list,
/// map or string. A value of an unexpected type counts as set, so that a
/// shape we do not understand never makes a rule think a constraint is
/// missing.
fn is_set(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// SPEC section 4 (MG402): a host is in-mesh when it is a short name (no
/// dot), or ends in `.svc` or `.svc.<cluster-domain>`, compared without
/// regard to case. `name.namespace` is not in-mesh by this definition, and
/// neither is the bare wildcard `*` (it names every host, inside and out:
/// MG402 still judges a DestinationRule for `*` or `*.local`, since they
/// cover the in-mesh hosts too, while MG407 treats a ServiceEntry for `*` as
/// outside).
pub(crate) fn in_mesh(host: &str, cluster_domain: &str) -> bool {
    let host = host.to_ascii_lowercase();
    if host.is_empty() || host == "*" {
        return false;
    }
    if !host.contains('.') {
        return true;
    }
    let domain = cluster_domain.to_ascii_lowercase();
    host.ends_with(".svc") || host.ends_with(&format!(".svc.{domain}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::testing::run;
    use super::*;
    use crate::config::Config;

    #[test]
    fn in_mesh_hosts() {
        let cases = [
            ("orders", "cluster.local", true),
            ("ORDERS", "cluster.local", true),
            ("orders.payments", "cluster.local", false),
            ("orders.payments.svc", "cluster.local", true),
            ("orders.payments.svc.cluster.local", "cluster.local", true),
            ("Orders.Payments.SVC.Cluster.Local", "cluster.local", true),
            ("*.payments.svc.cluster.local", "cluster.local", true),
            ("orders.payments.svc.corp.local", "cluster.local", false),
            ("orders.payments.svc.corp.local", "corp.local", true),
            ("orders.payments.svc.cluster.local", "corp.local", false),
            ("api.stripe.com", "cluster.local", false),
            ("svc.example.com", "cluster.local", false),
            ("*", "cluster.local", false),
            ("", "cluster.local", false),
        ];
        for (host, domain, expected) in cases {
            assert_eq!(in_mesh(host, domain), expected, "{host} in {domain}");
        }
    }

    #[test]
    fn choices_distinguish_unset_from_unreadable() {
        let v = json!({"a": "STRICT", "b": null, "c": 5});
        assert_eq!(choice(&v, "a"), Choice::Is("STRICT"));
        assert_eq!(choice(&v, "b"), Choice::Unset);
        assert_eq!(choice(&v, "missing"), Choice::Unset);
        assert_eq!(choice(&v, "c"), Choice::Unreadable);
        assert_eq!(choice(&json!("x"), "a"), Choice::Unset);
    }

    #[test]
    fn specs_that_are_not_maps_are_not_judged() {
        let cfg = Config::default();
        let kinds = [
            ("security.istio.io/v1", "PeerAuthentication"),
            ("security.istio.io/v1beta1", "AuthorizationPolicy"),
            ("networking.istio.io/v1alpha3", "DestinationRule"),
            ("networking.istio.io/v1", "VirtualService"),
            ("networking.istio.io/v1beta1", "Gateway"),
            ("networking.istio.io/v1", "ServiceEntry"),
            ("networking.istio.io/v1alpha3", "Sidecar"),
        ];
        for (api_version, kind) in kinds {
            for spec in [
                json!(null),
                json!("x"),
                json!(5),
                json!([1, 2]),
                json!(true),
            ] {
                let found = run(api_version, kind, spec.clone(), &cfg);
                assert!(found.is_empty(), "{kind} {spec}: {found:?}");
            }
        }
    }

    #[test]
    fn garbage_inside_a_spec_never_panics() {
        let cfg = Config {
            canary_steps: vec![0, 10, 100],
            allowed_hosts: vec!["*.example.com".to_owned()],
            ..Config::default()
        };
        let garbage = [
            json!(null),
            json!(5),
            json!(-1.5),
            json!("x"),
            json!([]),
            json!([null, 5, "x", [], {}]),
            json!({}),
            json!({"": null}),
            json!({"route": 5, "tls": [], "from": "x", "source": 1}),
        ];
        let kinds = [
            "PeerAuthentication",
            "AuthorizationPolicy",
            "DestinationRule",
            "VirtualService",
            "Gateway",
            "ServiceEntry",
            "Sidecar",
        ];
        let keys = [
            "mtls",
            "portLevelMtls",
            "host",
            "trafficPolicy",
            "subsets",
            "action",
            "rules",
            "http",
            "tls",
            "tcp",
            "servers",
            "hosts",
            "location",
            "outboundTrafficPolicy",
        ];
        // The top-level fields each kind reads, with the JSON type it reads
        // them as: a value of another type is absent (module doc), and a
        // field the kind does not read is ignored, whatever its value.
        let reads = |kind: &str, key: &str| -> Option<fn(&Value) -> bool> {
            match (kind, key) {
                ("PeerAuthentication", "mtls" | "portLevelMtls")
                | ("DestinationRule", "trafficPolicy")
                | ("Sidecar", "outboundTrafficPolicy") => Some(Value::is_object),
                ("AuthorizationPolicy", "action")
                | ("DestinationRule", "host")
                | ("ServiceEntry", "location") => Some(Value::is_string),
                ("AuthorizationPolicy", "rules")
                | ("DestinationRule", "subsets")
                | ("VirtualService", "http" | "tls" | "tcp" | "hosts")
                | ("Gateway", "servers")
                | ("ServiceEntry", "hosts") => Some(Value::is_array),
                _ => None,
            }
        };
        let mut compared = 0;
        for kind in kinds {
            let group = if kind.ends_with("Policy") || kind == "PeerAuthentication" {
                "security.istio.io/v1"
            } else {
                "networking.istio.io/v1"
            };
            let without = run(group, kind, json!({}), &cfg);
            for key in keys {
                for value in &garbage {
                    // Never a panic; a value of the wrong type (or a field
                    // the kind does not read) decides like no field at all.
                    let found = run(group, kind, json!({ key: value }), &cfg);
                    if reads(kind, key).is_none_or(|right_type| !right_type(value)) {
                        // The one exception, decided in destination_rule.rs
                        // (CONVENTIONS habit 5): a trafficPolicy of a shape
                        // no policy has is not judged for a circuit breaker,
                        // rather than warned about as missing.
                        let want: Vec<Violation> = if (kind, key)
                            == ("DestinationRule", "trafficPolicy")
                            && !value.is_null()
                        {
                            without
                                .iter()
                                .filter(|v| v.rule != crate::rules::RuleId::MG403)
                                .cloned()
                                .collect()
                        } else {
                            without.clone()
                        };
                        assert_eq!(found, want, "{kind} {{{key}: {value}}}");
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 700, "{compared}");
    }
}

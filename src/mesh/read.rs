//! Reading an object into its index entry: the few fields SPEC section 10
//! needs, leniently (CONVENTIONS habit 5). A field of the wrong type is
//! absent; nothing here fails or panics. The webhook reads the object under
//! review with the same function, so admission and the index agree.

use serde::Deserialize;
use serde_json::Value;

use super::{
    Age, AuthorizationPolicy, AuthzAction, AuthzRule, Destination, DestinationRule, Entry,
    ExportTo, GatewayRef, Mode, PeerAuthentication, Selector, Service, ServiceEntry, Source,
    Subset, VirtualService, Workload,
};
use crate::injection;
use crate::lenient::{Labels, Obj};
use crate::object::{
    Annotations, Body, Kind, Meta, Object, PodSpec, PodTemplate, SERVICE_EXPORT_TO,
};
use crate::rules::istio::{items, map, text};

/// The entry of an object; `None` for kinds the index does not hold, for
/// controller-owned Pods and ReplicaSets, and for a Rollout that points at
/// a Deployment (`workloadRef`: the Deployment is the workload).
pub fn entry_of(object: &Object<'_>, seq: u64) -> Option<Entry> {
    let age = Age {
        created: object
            .meta
            .creation_timestamp
            .as_str()
            .and_then(|t| t.parse().ok()),
        seq,
    };
    let entry = match (&object.body, object.kind) {
        (Body::Workload(template), _) => {
            if object.is_controller_owned() {
                return None;
            }
            Entry::Workload(Box::new(workload(object.kind, template.as_deref()?)))
        }
        (Body::Service { selector, .. }, _) => Entry::Service(Service {
            selector: selector
                .clone()
                .filter(|s| !s.0.is_empty())
                .map(Labels::into_owned),
            export_to: ExportTo(
                object
                    .meta
                    .annotation(SERVICE_EXPORT_TO)
                    .map(|v| {
                        v.split(',')
                            .map(str::trim)
                            .filter(|e| !e.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
        }),
        (Body::Namespace { .. }, _) => Entry::Namespace(
            object
                .meta
                .labels
                .get()
                .cloned()
                .unwrap_or_default()
                .into_owned(),
        ),
        (Body::Istio(spec), kind) => istio(kind, spec, age)?,
        (Body::Other, Kind::ServiceAccount) => Entry::ServiceAccount,
        (Body::Other, Kind::KubeGateway) => Entry::Gateway,
        _ => return None,
    };
    Some(entry)
}

fn workload(kind: Kind, template: &PodTemplate<'_>) -> Workload {
    let meta = template.metadata.get();
    let spec = template.spec.get();
    let labels = meta
        .and_then(|m| m.labels.get())
        .cloned()
        .unwrap_or_default()
        .into_owned();
    let inject = meta.and_then(|m| m.annotation(injection::INJECT));
    let service_account = spec
        .and_then(|s| {
            [&s.service_account_name, &s.service_account]
                .into_iter()
                .find_map(|t| t.as_str().filter(|n| !n.is_empty()))
        })
        .unwrap_or("default")
        .to_owned();
    // Only what `injection::decide` reads: labels, the injection
    // annotation, hostNetwork.
    let trimmed = PodTemplate {
        metadata: Obj(Some(Meta {
            labels: Obj(Some(labels.clone())),
            annotations: Obj(Some(Annotations(Labels::from_pairs(
                inject.map(|v| (injection::INJECT.to_owned(), v.to_owned())),
            )))),
            ..Meta::default()
        })),
        spec: Obj(Some(PodSpec {
            host_network: spec.map(|s| s.host_network).unwrap_or_default(),
            ..PodSpec::default()
        })),
    };
    Workload {
        labels,
        service_account,
        template: trimmed,
        template_field: kind.template_field(),
    }
}

fn istio(kind: Kind, spec: &Value, age: Age) -> Option<Entry> {
    Some(match kind {
        Kind::PeerAuthentication => Entry::PeerAuthentication(PeerAuthentication {
            selector: selector(spec, "selector", "matchLabels"),
            mode: map(spec, "mtls").and_then(mode),
            ports: map(spec, "portLevelMtls")
                .and_then(Value::as_object)
                .map(|ports| {
                    ports
                        .iter()
                        .map(|(port, setting)| (port.clone(), mode(setting)))
                        .collect()
                })
                .unwrap_or_default(),
            age,
        }),
        Kind::AuthorizationPolicy => Entry::AuthorizationPolicy(AuthorizationPolicy {
            selector: selector(spec, "selector", "matchLabels"),
            action: match text(spec, "action") {
                None | Some("ALLOW") => AuthzAction::Allow,
                Some("DENY") => AuthzAction::Deny,
                Some(_) => AuthzAction::Other,
            },
            rules: items(spec, "rules").iter().map(authz_rule).collect(),
        }),
        Kind::RequestAuthentication => {
            Entry::RequestAuthentication(selector(spec, "selector", "matchLabels"))
        }
        Kind::Sidecar => Entry::Sidecar(selector(spec, "workloadSelector", "labels")),
        Kind::DestinationRule => Entry::DestinationRule(DestinationRule {
            host: lower(text(spec, "host").unwrap_or("")),
            subsets: items(spec, "subsets")
                .iter()
                .filter_map(|s| {
                    Some(Subset {
                        name: text(s, "name")?.to_owned(),
                        labels: labels(s.get("labels")),
                    })
                })
                .collect(),
            export_to: export_to(spec),
        }),
        Kind::VirtualService => Entry::VirtualService(virtual_service(spec)),
        Kind::Gateway => Entry::Gateway,
        Kind::ServiceEntry => Entry::ServiceEntry(ServiceEntry {
            hosts: strings(spec, "hosts").iter().map(|h| lower(h)).collect(),
            export_to: export_to(spec),
        }),
        _ => return None,
    })
}

/// A workload selector: `targetRef(s)` win (they bind waypoints and
/// gateways, not sidecars); an empty selector is no selector.
fn selector(spec: &Value, field: &str, labels_field: &str) -> Selector {
    let target = |k| spec.get(k).is_some_and(|v| !v.is_null());
    if target("targetRef") || target("targetRefs") {
        return Selector::TargetRef;
    }
    let wanted = labels(map(spec, field).and_then(|s| s.get(labels_field)));
    if wanted.0.is_empty() {
        Selector::All
    } else {
        Selector::Labels(wanted)
    }
}

fn mode(setting: &Value) -> Option<Mode> {
    match text(setting, "mode")? {
        "STRICT" => Some(Mode::Strict),
        "PERMISSIVE" => Some(Mode::Permissive),
        "DISABLE" => Some(Mode::Disable),
        // UNSET, or a value Istio does not know: the next level decides.
        _ => None,
    }
}

fn authz_rule(rule: &Value) -> AuthzRule {
    AuthzRule {
        from: items(rule, "from")
            .iter()
            .map(|f| {
                let source = map(f, "source").unwrap_or(&Value::Null);
                Source {
                    principals: strings(source, "principals"),
                    not_principals: strings(source, "notPrincipals"),
                    namespaces: strings(source, "namespaces"),
                    not_namespaces: strings(source, "notNamespaces"),
                }
            })
            .collect(),
        when_identity: items(rule, "when").iter().any(|w| {
            matches!(
                text(w, "key"),
                Some("source.principal" | "source.namespace")
            )
        }),
    }
}

fn virtual_service(spec: &Value) -> VirtualService {
    let mut destinations = Vec::new();
    let mut gateways: Vec<GatewayRef> = strings(spec, "gateways")
        .into_iter()
        .enumerate()
        .map(|(i, reference)| GatewayRef {
            path: format!("spec.gateways[{i}]"),
            reference,
        })
        .collect();
    for section in ["http", "tls", "tcp"] {
        for (i, route) in items(spec, section).iter().enumerate() {
            let at = format!("spec.{section}[{i}]");
            for (j, r) in items(route, "route").iter().enumerate() {
                destination(
                    r.get("destination"),
                    format!("{at}.route[{j}].destination"),
                    &mut destinations,
                );
            }
            if section == "http" {
                destination(
                    route.get("mirror"),
                    format!("{at}.mirror"),
                    &mut destinations,
                );
                for (j, m) in items(route, "mirrors").iter().enumerate() {
                    destination(
                        m.get("destination"),
                        format!("{at}.mirrors[{j}].destination"),
                        &mut destinations,
                    );
                }
            }
            for (j, m) in items(route, "match").iter().enumerate() {
                for (k, reference) in strings(m, "gateways").into_iter().enumerate() {
                    gateways.push(GatewayRef {
                        path: format!("{at}.match[{j}].gateways[{k}]"),
                        reference,
                    });
                }
            }
        }
    }
    VirtualService {
        destinations,
        gateways,
    }
}

fn destination(value: Option<&Value>, path: String, out: &mut Vec<Destination>) {
    let Some(d) = value.filter(|v| v.is_object()) else {
        return;
    };
    let Some(host) = text(d, "host").filter(|h| !h.is_empty()) else {
        return;
    };
    out.push(Destination {
        path,
        host: lower(host),
        subset: text(d, "subset")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    });
}

fn export_to(spec: &Value) -> ExportTo {
    ExportTo(strings(spec, "exportTo"))
}

/// The string items of a list field; other items are dropped.
fn strings(parent: &Value, key: &str) -> Vec<String> {
    items(parent, key)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// A string map, leniently (entries that are not strings are dropped).
fn labels(value: Option<&Value>) -> Labels<'static> {
    value
        .and_then(|v| Labels::deserialize(v).ok())
        .map(Labels::into_owned)
        .unwrap_or_default()
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

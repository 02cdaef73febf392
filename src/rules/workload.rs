//! Workload rules MG101-MG108 (SPEC section 4, "Workloads").
//!
//! They judge a pod template, wherever its kind keeps it (SPEC section 1),
//! and report the exact field path of what is wrong. Pure functions.

use crate::injection::{self, INJECT, REV, STATUS};
use crate::object::{Container, Kind, Object, PodSpec, PodTemplate};
use crate::rules::{Context, RuleId, Violation};

/// UID of the Istio proxy: traffic from it bypasses the sidecar.
pub const PROXY_UID: i64 = 1337;
/// Container names only the injector may add.
pub const RESERVED_NAMES: [&str; 3] = ["istio-proxy", "istio-init", "istio-validation"];
/// Ports the proxy listens on.
pub const RESERVED_PORTS: [i64; 9] = [
    15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090,
];

pub fn check(object: &Object<'_>, ctx: &Context<'_>, out: &mut Vec<Violation>) {
    let Some(template) = object.pod_template() else {
        return;
    };
    let field = object.kind.template_field();
    let default_spec = PodSpec::default();
    let spec = template.spec.get().unwrap_or(&default_spec);

    service_account(spec, field, out);
    mesh_labels(template, field, ctx, out);
    sidecar(template, spec, field, ctx, out);
    let injected_pod = object.kind == Kind::Pod
        && template
            .metadata
            .get()
            .and_then(|m| m.annotation(STATUS))
            .is_some();
    proxy_uid(spec, field, injected_pod, out);
    if spec.host_network.is_true() {
        out.push(Violation::new(
            RuleId::MG106,
            format!("{field}spec.hostNetwork"),
            "hostNetwork is true: the sidecar injector skips host-network pods, so they cannot be in the mesh",
        ));
    }
    reserved_names_and_ports(object.kind, spec, field, injected_pod, out);
    misplaced_marker(object, out);
}

/// MG101: the pod's service account is its mesh identity.
fn service_account(spec: &PodSpec<'_>, field: &str, out: &mut Vec<Violation>) {
    // `serviceAccount` is the deprecated alias Kubernetes still honours when
    // `serviceAccountName` is empty.
    let (name, key) = match spec.service_account_name.as_str().filter(|s| !s.is_empty()) {
        Some(n) => (Some(n), "serviceAccountName"),
        None => (
            spec.service_account.as_str().filter(|s| !s.is_empty()),
            "serviceAccount",
        ),
    };
    let message = match name {
        Some("default") => format!("{key} is `default`: every pod using it shares one Istio identity"),
        Some(_) => return,
        None => "serviceAccountName is not set, so the pods run as `default` and share one Istio identity"
            .to_owned(),
    };
    let key = if name.is_some() {
        key
    } else {
        "serviceAccountName"
    };
    out.push(Violation::new(
        RuleId::MG101,
        format!("{field}spec.{key}"),
        message,
    ));
}

/// MG102: the configured pod-template labels, each under its name or one of
/// its alternatives.
fn mesh_labels(
    template: &PodTemplate<'_>,
    field: &str,
    ctx: &Context<'_>,
    out: &mut Vec<Violation>,
) {
    let meta = template.metadata.get();
    let has = |key: &str| {
        meta.and_then(|m| m.label(key))
            .is_some_and(|v| !v.is_empty())
    };
    for required in &ctx.config.mesh_labels {
        if has(&required.name) || required.alternatives.iter().any(|a| has(a)) {
            continue;
        }
        let alternatives = if required.alternatives.is_empty() {
            String::new()
        } else {
            format!(" (nor {})", required.alternatives.join(", "))
        };
        out.push(
            Violation::new(
                RuleId::MG102,
                format!("{field}metadata.labels"),
                format!(
                    "the pod template has no `{}` label{alternatives}",
                    required.name
                ),
            )
            .with_fix(format!(
                "Add `{}: <value>` to {field}metadata.labels (the controller's own labels do not reach the pods).",
                required.name
            )),
        );
    }
}

/// MG103 (will the pods get a sidecar?) and MG104 (is there an explicit
/// marker?).
fn sidecar(
    template: &PodTemplate<'_>,
    spec: &PodSpec<'_>,
    field: &str,
    ctx: &Context<'_>,
    out: &mut Vec<Violation>,
) {
    if spec.host_network.is_true() {
        // MG106 alone reports host-network pods (SPEC section 4).
        return;
    }
    let decision = injection::decide(template, field, ctx.namespace, ctx.namespace_labels);
    if !decision.injected {
        let fix = if decision.explicit_opt_out {
            format!(
                "Remove sidecar.istio.io/inject: \"false\" from {field}metadata (or exempt this workload in the config with a reason)."
            )
        } else {
            format!(
                "Label namespace `{}` istio-injection=enabled (or istio.io/rev=<revision>), or add the label sidecar.istio.io/inject: \"true\" to {field}metadata.labels.",
                ctx.namespace
            )
        };
        out.push(
            Violation::new(
                RuleId::MG103,
                decision.path.clone(),
                format!(
                    "the pods will not get an Istio sidecar: {}",
                    decision.reason
                ),
            )
            .with_fix(fix),
        );
    }
    if decision.explicit_opt_out {
        return;
    }
    let meta = template.metadata.get();
    if meta.and_then(|m| m.label(INJECT)) == Some("true") {
        return;
    }
    if meta.and_then(|m| m.annotation(INJECT)) == Some("true") {
        out.push(
            Violation::new(
                RuleId::MG104,
                format!("{field}metadata.annotations"),
                "the injection marker is the annotation sidecar.istio.io/inject, a form Istio deprecated",
            )
            .with_fix(format!(
                "Move sidecar.istio.io/inject: \"true\" from {field}metadata.annotations to {field}metadata.labels."
            ))
            .advisory(),
        );
        return;
    }
    let found = match meta.and_then(|m| m.label(INJECT)) {
        Some(other) => format!("has sidecar.istio.io/inject: \"{other}\""),
        None => "has no sidecar.istio.io/inject label".to_owned(),
    };
    out.push(Violation::new(
        RuleId::MG104,
        format!("{field}metadata.labels"),
        format!("the pod template {found}; an explicit \"true\" keeps injection on wherever the workload runs"),
    ));
}

/// True for the containers the injector added to a pod it injected.
fn injected_container(injected_pod: bool, c: &Container<'_>) -> bool {
    injected_pod && c.name.as_str().is_some_and(|n| RESERVED_NAMES.contains(&n))
}

/// MG105: no container runs as the proxy's UID, by its own or the pod's
/// security context.
fn proxy_uid(spec: &PodSpec<'_>, field: &str, injected_pod: bool, out: &mut Vec<Violation>) {
    let pod_uid = spec.security_context.get().and_then(|s| s.run_as_user.0);
    for (list, i, c) in spec.all_containers() {
        if injected_container(injected_pod, c) {
            continue;
        }
        let own = c.security_context.get().and_then(|s| s.run_as_user.0);
        let (uid, path) = match own {
            Some(uid) => (
                uid,
                format!("{field}spec.{list}[{i}].securityContext.runAsUser"),
            ),
            None => match pod_uid {
                Some(uid) => (uid, format!("{field}spec.securityContext.runAsUser")),
                None => continue,
            },
        };
        if uid == PROXY_UID {
            let name = c.name.as_str().unwrap_or("?");
            let via = if own.is_some() {
                "its own securityContext"
            } else {
                "the pod's securityContext"
            };
            out.push(Violation::new(
                RuleId::MG105,
                path,
                format!("container `{name}` runs as UID 1337 (through {via}), the proxy's UID: its traffic bypasses the sidecar"),
            ));
        }
    }
}

/// MG107: the injector's container names and the proxy's ports.
fn reserved_names_and_ports(
    kind: Kind,
    spec: &PodSpec<'_>,
    field: &str,
    injected_pod: bool,
    out: &mut Vec<Violation>,
) {
    for (list, i, c) in spec.all_containers() {
        let name = c.name.as_str().unwrap_or("");
        if RESERVED_NAMES.contains(&name) && !injected_pod {
            let whose = if kind == Kind::Pod {
                "a Pod not injected by Istio (no sidecar.istio.io/status annotation)"
            } else {
                "a pod template (only the injector may add it)"
            };
            out.push(Violation::new(
                RuleId::MG107,
                format!("{field}spec.{list}[{i}].name"),
                format!(
                    "container name `{name}` is reserved for Istio's injector, found in {whose}"
                ),
            ));
        }
        if injected_container(injected_pod, c) {
            continue;
        }
        for (j, port) in c.ports.0.iter().enumerate() {
            let Some(number) = port.get().and_then(|p| p.container_port.0) else {
                continue;
            };
            if RESERVED_PORTS.contains(&number) {
                out.push(Violation::new(
                    RuleId::MG107,
                    format!("{field}spec.{list}[{i}].ports[{j}].containerPort"),
                    format!(
                        "container `{name}` uses port {number}, which the Istio proxy reserves"
                    ),
                ));
            }
        }
    }
}

/// MG108: injection markers on a controller's own metadata do nothing.
fn misplaced_marker(object: &Object<'_>, out: &mut Vec<Violation>) {
    if object.kind == Kind::Pod {
        return;
    }
    let target = object.kind.template_field();
    for key in [INJECT, REV] {
        if let Some(v) = object.meta.label(key) {
            out.push(misplaced(object.kind, "labels", key, v, target));
        }
        if let Some(v) = object.meta.annotation(key) {
            out.push(misplaced(object.kind, "annotations", key, v, target));
        }
    }
}

fn misplaced(kind: Kind, map: &str, key: &str, value: &str, target: &str) -> Violation {
    Violation::new(
        RuleId::MG108,
        format!("metadata.{map}"),
        format!(
            "{key}: \"{value}\" is on the {}'s own metadata.{map}, where the injector never sees it",
            kind.as_str()
        ),
    )
    .with_fix(format!("Move {key} to {target}metadata.labels."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::lenient::Labels;
    use crate::rules::NamespaceLabels;

    /// The rules a Deployment in an injected namespace breaks, with paths.
    fn broken(pod_labels: &str, pod_spec: &str) -> Vec<(RuleId, String)> {
        let json = format!(
            r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"web","namespace":"shop"}},"spec":{{"template":{{"metadata":{{"labels":{{{pod_labels}}}}},"spec":{{{pod_spec}}}}}}}}}"#
        );
        let object = Object::from_json(Kind::Deployment, &json).expect("deployment");
        let labels = Labels::from_pairs([("istio-injection", "enabled")]);
        let config = Config::default();
        let ctx = Context {
            namespace: "shop",
            namespace_labels: NamespaceLabels::Known(&labels),
            config: &config,
            mesh: None,
        };
        let mut out = Vec::new();
        check(&object, &ctx, &mut out);
        out.into_iter().map(|v| (v.rule, v.path)).collect()
    }

    const GOOD_LABELS: &str = r#""app":"web","version":"v1","sidecar.istio.io/inject":"true""#;
    const GOOD_SPEC: &str = r#""serviceAccountName":"web","containers":[{"name":"web"}]"#;

    #[test]
    fn a_compliant_template_breaks_nothing() {
        assert_eq!(broken(GOOD_LABELS, GOOD_SPEC), vec![]);
    }

    #[test]
    fn denies_default_or_missing_service_account() {
        for spec in [
            r#""containers":[{"name":"web"}]"#,
            r#""serviceAccountName":"default""#,
            r#""serviceAccountName":"""#,
        ] {
            let found = broken(GOOD_LABELS, spec);
            assert_eq!(found[0].0, RuleId::MG101, "{spec}: {found:?}");
            assert_eq!(found[0].1, "spec.template.spec.serviceAccountName");
        }
        // The deprecated field counts.
        assert_eq!(broken(GOOD_LABELS, r#""serviceAccount":"web""#), vec![]);
    }

    #[test]
    fn mesh_labels_accept_the_kubernetes_recommended_ones() {
        let found = broken(r#""app":"web","sidecar.istio.io/inject":"true""#, GOOD_SPEC);
        assert_eq!(
            found,
            vec![(RuleId::MG102, "spec.template.metadata.labels".to_owned())]
        );
        let recommended = r#""app.kubernetes.io/name":"web","app.kubernetes.io/version":"1","sidecar.istio.io/inject":"true""#;
        assert_eq!(broken(recommended, GOOD_SPEC), vec![]);
    }

    #[test]
    fn proxy_uid_host_network_and_reserved_ports() {
        let uid = r#""serviceAccountName":"web","securityContext":{"runAsUser":1337},"containers":[{"name":"web"}]"#;
        assert!(
            broken(GOOD_LABELS, uid)
                .iter()
                .any(|(r, _)| *r == RuleId::MG105)
        );
        let host = r#""serviceAccountName":"web","hostNetwork":true,"containers":[{"name":"web"}]"#;
        let found: Vec<RuleId> = broken(GOOD_LABELS, host)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert!(
            found.contains(&RuleId::MG106) && !found.contains(&RuleId::MG103),
            "{found:?}"
        );
        let port = r#""serviceAccountName":"web","containers":[{"name":"web","ports":[{"containerPort":15001}]}]"#;
        assert!(
            broken(GOOD_LABELS, port)
                .iter()
                .any(|(r, _)| *r == RuleId::MG107)
        );
        let name = r#""serviceAccountName":"web","containers":[{"name":"istio-proxy"}]"#;
        assert!(
            broken(GOOD_LABELS, name)
                .iter()
                .any(|(r, _)| *r == RuleId::MG107)
        );
    }

    #[test]
    fn an_explicit_opt_out_is_mg103_not_mg104() {
        let found: Vec<RuleId> = broken(
            r#""app":"web","version":"v1","sidecar.istio.io/inject":"false""#,
            GOOD_SPEC,
        )
        .into_iter()
        .map(|(r, _)| r)
        .collect();
        assert_eq!(found, vec![RuleId::MG103]);
    }
}

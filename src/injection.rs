//! "Will the pods get a sidecar?" with Istio's own semantics (SPEC section 4).
//!
//! Istio's injector webhooks select pods by namespace labels and the pod's
//! `sidecar.istio.io/inject` label, then the injector itself honours the
//! annotation of the same name for opt-outs. This module reproduces that
//! decision and says which label or setting decided it, so MG103's message
//! can tell the user exactly what to change. Pure: no I/O.

use crate::object::PodTemplate;
use crate::rules::NamespaceLabels;

/// Pod label (and deprecated annotation) that opts a pod in or out.
pub const INJECT: &str = "sidecar.istio.io/inject";
/// Label selecting an Istio revision, on a namespace or a pod.
pub const REV: &str = "istio.io/rev";
/// Namespace label switching injection on (`enabled`) or off (`disabled`).
pub const NS_INJECTION: &str = "istio-injection";
/// Annotation the injector writes on the pods it injected.
pub const STATUS: &str = "sidecar.istio.io/status";

/// The outcome, with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    pub injected: bool,
    pub reason: String,
    /// The field that decided it (`metadata.namespace` when the namespace's
    /// labels did).
    pub path: String,
    /// The pod opted out itself with `sidecar.istio.io/inject: "false"`.
    pub explicit_opt_out: bool,
}

impl Injection {
    fn yes(path: String, reason: String) -> Injection {
        Injection {
            injected: true,
            reason,
            path,
            explicit_opt_out: false,
        }
    }
    fn no(path: String, reason: String) -> Injection {
        Injection {
            injected: false,
            reason,
            path,
            explicit_opt_out: false,
        }
    }
}

const NAMESPACE_FIELD: &str = "metadata.namespace";

/// Decides injection for a pod template in a namespace. `field` is the
/// dotted path of the template (`spec.template.`) for messages.
pub fn decide(
    template: &PodTemplate<'_>,
    field: &str,
    namespace: &str,
    ns: NamespaceLabels<'_>,
) -> Injection {
    let spec = template.spec.get();
    let meta = template.metadata.get();
    let label = |k: &str| meta.and_then(|m| m.label(k));
    let annotation = |k: &str| meta.and_then(|m| m.annotation(k));

    // 1. The injector skips host-network pods.
    if spec.is_some_and(|s| s.host_network.is_true()) {
        return Injection::no(
            format!("{field}spec.hostNetwork"),
            format!("{field}spec.hostNetwork is true; the injector skips such pods"),
        );
    }
    let ns_injection = ns.get(NS_INJECTION);
    let ns_rev = ns.get(REV);
    // 2. The namespace switched injection off.
    if ns_injection == Some("disabled") {
        return Injection::no(
            NAMESPACE_FIELD.to_owned(),
            format!("namespace `{namespace}` has label istio-injection=disabled"),
        );
    }
    // 3. The pod opted out: the label decides; the annotation only when the
    //    label is absent.
    match label(INJECT) {
        Some("false") => {
            return Injection {
                explicit_opt_out: true,
                ..Injection::no(
                    format!("{field}metadata.labels"),
                    format!("{field}metadata.labels has sidecar.istio.io/inject: \"false\""),
                )
            };
        }
        None if annotation(INJECT) == Some("false") => {
            return Injection {
                explicit_opt_out: true,
                ..Injection::no(
                    format!("{field}metadata.annotations"),
                    format!("{field}metadata.annotations has sidecar.istio.io/inject: \"false\""),
                )
            };
        }
        _ => {}
    }
    // 4. The namespace switched injection on.
    if ns_injection == Some("enabled") {
        return Injection::yes(
            NAMESPACE_FIELD.to_owned(),
            format!("namespace `{namespace}` has label istio-injection=enabled"),
        );
    }
    if ns_injection.is_none()
        && let Some(rev) = ns_rev
    {
        return Injection::yes(
            NAMESPACE_FIELD.to_owned(),
            format!("namespace `{namespace}` has label istio.io/rev={rev}"),
        );
    }
    // 5. A namespace with neither label: the pod's own label decides.
    let unknown = matches!(ns, NamespaceLabels::Unknown);
    let ns_words = if unknown {
        format!(
            "the labels of namespace `{namespace}` are unknown, so only the pod's own markers count"
        )
    } else {
        format!("namespace `{namespace}` has neither istio-injection nor istio.io/rev")
    };
    let labels_field = format!("{field}metadata.labels");
    if ns_injection.is_none() && ns_rev.is_none() {
        if label(INJECT) == Some("true") {
            return Injection::yes(
                labels_field,
                format!(
                    "{ns_words}, and {field}metadata.labels has sidecar.istio.io/inject: \"true\""
                ),
            );
        }
        if let Some(rev) = label(REV) {
            return Injection::yes(
                labels_field,
                format!("{ns_words}, and {field}metadata.labels has istio.io/rev={rev}"),
            );
        }
        if annotation(INJECT) == Some("true") {
            return Injection::no(
                labels_field,
                format!(
                    "{ns_words}, and the pod has only the sidecar.istio.io/inject annotation, which does not select it for injection (the label does)"
                ),
            );
        }
        return Injection::no(
            labels_field,
            format!(
                "{ns_words}, and {field}metadata.labels has no sidecar.istio.io/inject: \"true\""
            ),
        );
    }
    // 6. Anything else (e.g. istio-injection with an unexpected value).
    Injection::no(
        NAMESPACE_FIELD.to_owned(),
        format!(
            "namespace `{namespace}` has istio-injection={}, which neither enables nor disables injection",
            ns_injection.unwrap_or("")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lenient::Labels;
    use crate::object::{Kind, Object};

    fn template(json: &str) -> PodTemplate<'_> {
        let obj = Object::from_json(Kind::Deployment, json).expect("json");
        obj.pod_template().cloned().expect("template")
    }

    fn deployment(labels: &str, annotations: &str, spec: &str) -> String {
        format!(
            r#"{{"spec":{{"template":{{"metadata":{{"labels":{{{labels}}},"annotations":{{{annotations}}}}},"spec":{{{spec}}}}}}}}}"#
        )
    }

    fn run(labels: &str, annotations: &str, spec: &str, ns: &[(&str, &str)]) -> Injection {
        let json = deployment(labels, annotations, spec);
        let t = template(&json);
        let ns_labels = Labels::from_pairs(ns.iter().copied());
        decide(
            &t,
            "spec.template.",
            "shop",
            NamespaceLabels::Known(&ns_labels),
        )
    }

    #[test]
    fn host_network_is_never_injected() {
        let i = run(
            "",
            "",
            r#""hostNetwork":true"#,
            &[("istio-injection", "enabled")],
        );
        assert!(!i.injected);
        assert!(i.reason.contains("hostNetwork"));
    }

    #[test]
    fn namespace_disabled_wins_over_pod_label() {
        let i = run(
            r#""sidecar.istio.io/inject":"true""#,
            "",
            "",
            &[("istio-injection", "disabled")],
        );
        assert!(!i.injected);
        assert!(i.reason.contains("istio-injection=disabled"));
    }

    #[test]
    fn pod_label_false_opts_out_of_an_enabled_namespace() {
        let i = run(
            r#""sidecar.istio.io/inject":"false""#,
            "",
            "",
            &[("istio-injection", "enabled")],
        );
        assert!(!i.injected && i.explicit_opt_out);
    }

    #[test]
    fn annotation_false_opts_out_only_without_the_label() {
        let i = run(
            "",
            r#""sidecar.istio.io/inject":"false""#,
            "",
            &[("istio-injection", "enabled")],
        );
        assert!(!i.injected && i.explicit_opt_out);
        let i = run(
            r#""sidecar.istio.io/inject":"true""#,
            r#""sidecar.istio.io/inject":"false""#,
            "",
            &[("istio-injection", "enabled")],
        );
        assert!(i.injected, "the label decides: {}", i.reason);
    }

    #[test]
    fn namespace_revision_injects_without_istio_injection() {
        let i = run("", "", "", &[("istio.io/rev", "1-24")]);
        assert!(i.injected);
        assert!(i.reason.contains("istio.io/rev=1-24"));
    }

    #[test]
    fn unlabelled_namespace_injects_by_pod_label_or_pod_revision_only() {
        assert!(run(r#""sidecar.istio.io/inject":"true""#, "", "", &[]).injected);
        assert!(run(r#""istio.io/rev":"canary""#, "", "", &[]).injected);
        let i = run("", r#""sidecar.istio.io/inject":"true""#, "", &[]);
        assert!(!i.injected, "the annotation alone does not inject");
        assert!(i.reason.contains("annotation"));
        assert!(!run("", "", "", &[]).injected);
    }

    #[test]
    fn unknown_namespace_falls_back_to_pod_markers_and_says_so() {
        let json = deployment("", "", "");
        let t = template(&json);
        let i = decide(&t, "spec.template.", "shop", NamespaceLabels::Unknown);
        assert!(!i.injected);
        assert!(i.reason.contains("unknown"));
    }

    #[test]
    fn unexpected_istio_injection_value_does_not_inject() {
        let i = run(
            r#""sidecar.istio.io/inject":"true""#,
            "",
            "",
            &[("istio-injection", "yes")],
        );
        assert!(!i.injected);
    }
}

//! Mutations MGP1 and MGP2 (SPEC section 5): minimal, escaped, never
//! overwriting, idempotent.

use meshguard::config::MarkerForm;
use meshguard::engine::Webhook;
use meshguard::mutate::MutationId;
use meshguard::object::Kind;
use serde_json::{Value, json};

use crate::util::{Case, GOOD_SPEC, deployment};

/// The patch a CREATE gets, as JSON.
fn patch_of(case: &Case<'_>) -> Value {
    let d = case.run(Webhook::Mutate);
    let ops: Vec<_> = d.mutations.iter().flat_map(|m| m.ops.clone()).collect();
    serde_json::to_value(ops).expect("patch serializes")
}

/// Applies the webhook's patch, then runs the webhook on the result: the
/// second patch must be empty.
fn assert_idempotent(
    kind: Kind,
    json: &str,
    configure: impl Fn(&mut meshguard::config::Config),
) -> Value {
    let case = Case::new(kind, json).config(&configure);
    let d = case.run(Webhook::Mutate);
    let mut doc: Value = serde_json::from_str(json).expect("json");
    for m in &d.mutations {
        json_patch::patch(&mut doc, &m.ops).expect("patch applies");
    }
    let patched = doc.to_string();
    let again = Case::new(kind, &patched)
        .config(&configure)
        .run(Webhook::Mutate);
    assert!(
        again.mutations.is_empty(),
        "second pass patches nothing: {patched}"
    );
    doc
}

#[test]
fn mgp2_adds_the_label_with_an_escaped_pointer() {
    let json = deployment(r#""app":"a""#, "", GOOD_SPEC);
    let case = Case::new(Kind::Deployment, &json);
    assert_eq!(
        patch_of(&case),
        json!([{"op": "add", "path": "/spec/template/metadata/labels/sidecar.istio.io~1inject", "value": "true"}])
    );
    let doc = assert_idempotent(Kind::Deployment, &json, |_| {});
    assert_eq!(
        doc["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"],
        "true"
    );
    assert_eq!(
        doc["spec"]["template"]["metadata"]["labels"]["app"], "a",
        "other labels kept"
    );
}

#[test]
fn mgp2_creates_missing_maps() {
    let no_labels = r#"{"metadata":{"name":"d"},"spec":{"template":{"metadata":{"annotations":{"a":"b"}},"spec":{}}}}"#;
    assert_eq!(
        patch_of(&Case::new(Kind::Deployment, no_labels)),
        json!([{"op": "add", "path": "/spec/template/metadata/labels", "value": {"sidecar.istio.io/inject": "true"}}])
    );
    assert_idempotent(Kind::Deployment, no_labels, |_| {});
    let no_metadata = r#"{"metadata":{"name":"d"},"spec":{"template":{"spec":{}}}}"#;
    assert_eq!(
        patch_of(&Case::new(Kind::Deployment, no_metadata)),
        json!([{"op": "add", "path": "/spec/template/metadata", "value": {"labels": {"sidecar.istio.io/inject": "true"}}}])
    );
    assert_idempotent(Kind::Deployment, no_metadata, |_| {});
}

#[test]
fn mgp2_patches_each_kind_at_its_template() {
    let cron = r#"{"metadata":{"name":"c"},"spec":{"jobTemplate":{"spec":{"template":{"metadata":{"labels":{}},"spec":{}}}}}}"#;
    assert_eq!(
        patch_of(&Case::new(Kind::CronJob, cron)),
        json!([{"op": "add", "path": "/spec/jobTemplate/spec/template/metadata/labels/sidecar.istio.io~1inject", "value": "true"}])
    );
    assert_idempotent(Kind::CronJob, cron, |_| {});
    let pod = r#"{"metadata":{"name":"p","labels":{"app":"a"}},"spec":{"containers":[]}}"#;
    assert_eq!(
        patch_of(&Case::new(Kind::Pod, pod)),
        json!([{"op": "add", "path": "/metadata/labels/sidecar.istio.io~1inject", "value": "true"}])
    );
    assert_idempotent(Kind::Pod, pod, |_| {});
}

#[test]
fn mgp2_never_overwrites_and_skips_host_network() {
    for json in [
        deployment(r#""sidecar.istio.io/inject":"false""#, "", GOOD_SPEC),
        deployment("", r#""sidecar.istio.io/inject":"false""#, GOOD_SPEC),
        deployment("", r#""sidecar.istio.io/inject":"true""#, GOOD_SPEC),
        deployment("", "", r#""hostNetwork":true"#),
    ] {
        assert_eq!(
            patch_of(&Case::new(Kind::Deployment, &json)),
            json!([]),
            "{json}"
        );
    }
}

#[test]
fn mgp2_can_add_the_annotation_instead() {
    let json = deployment(r#""app":"a""#, "", GOOD_SPEC);
    let case = Case::new(Kind::Deployment, &json)
        .config(|c| c.mutations.sidecar_marker_as = MarkerForm::Annotation);
    assert_eq!(
        patch_of(&case),
        json!([{"op": "add", "path": "/spec/template/metadata/annotations/sidecar.istio.io~1inject", "value": "true"}])
    );
    assert_idempotent(Kind::Deployment, &json, |c| {
        c.mutations.sidecar_marker_as = MarkerForm::Annotation
    });
}

#[test]
fn mgp1_labels_namespaces_with_injection_or_the_revision() {
    let bare = r#"{"metadata":{"name":"shop","labels":{"kubernetes.io/metadata.name":"shop"}}}"#;
    assert_eq!(
        patch_of(&Case::new(Kind::Namespace, bare)),
        json!([{"op": "add", "path": "/metadata/labels/istio-injection", "value": "enabled"}])
    );
    assert_idempotent(Kind::Namespace, bare, |_| {});
    let revisioned = |c: &mut meshguard::config::Config| c.revision = Some("1-24".into());
    assert_eq!(
        patch_of(&Case::new(Kind::Namespace, bare).config(revisioned)),
        json!([{"op": "add", "path": "/metadata/labels/istio.io~1rev", "value": "1-24"}])
    );
    assert_idempotent(Kind::Namespace, bare, revisioned);
    let no_labels = r#"{"metadata":{"name":"shop"}}"#;
    assert_eq!(
        patch_of(&Case::new(Kind::Namespace, no_labels)),
        json!([{"op": "add", "path": "/metadata/labels", "value": {"istio-injection": "enabled"}}])
    );
    for chosen in [
        r#"{"istio-injection":"disabled"}"#,
        r#"{"istio.io/rev":"x"}"#,
        r#"{"istio-injection":"enabled"}"#,
    ] {
        let json = format!(r#"{{"metadata":{{"name":"shop","labels":{chosen}}}}}"#);
        assert_eq!(
            patch_of(&Case::new(Kind::Namespace, &json)),
            json!([]),
            "{chosen}"
        );
    }
}

#[test]
fn mutations_can_be_switched_off() {
    let json = deployment(r#""app":"a""#, "", GOOD_SPEC);
    assert!(
        Case::new(Kind::Deployment, &json)
            .config(|c| c.mutations.sidecar_marker = false)
            .run(Webhook::Mutate)
            .mutations
            .is_empty()
    );
    let ns = r#"{"metadata":{"name":"shop"}}"#;
    assert!(
        Case::new(Kind::Namespace, ns)
            .config(|c| c.mutations.namespace_injection = false)
            .run(Webhook::Mutate)
            .mutations
            .is_empty()
    );
    let d = Case::new(Kind::Deployment, &json).run(Webhook::Mutate);
    assert_eq!(d.mutations[0].id, MutationId::MGP2);
}

#[test]
fn validate_webhook_never_patches_and_mutate_never_judges() {
    let json = deployment("", "", "");
    let v = Case::new(Kind::Deployment, &json).run(Webhook::Validate);
    assert!(v.mutations.is_empty() && !v.findings.is_empty());
    let m = Case::new(Kind::Deployment, &json).run(Webhook::Mutate);
    assert!(m.findings.is_empty() && !m.mutations.is_empty());
}

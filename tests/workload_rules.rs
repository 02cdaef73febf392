//! Case tables for the workload, Service and Namespace rules: each case is
//! an object, its namespace context, and the rule ids that must fire.

use meshguard::object::Kind;
use meshguard::rules::RuleId::{self, *};

use crate::util::{Case, GOOD_LABELS, GOOD_SPEC, deployment};

/// Asserts that, of `rules`, exactly `want` fire.
fn check(name: &str, case: Case<'_>, rules: &[RuleId], want: &[RuleId]) {
    let fired: Vec<RuleId> = case
        .fired()
        .into_iter()
        .filter(|r| rules.contains(r))
        .collect();
    assert_eq!(fired, want, "case {name}");
}

#[test]
fn compliant_deployment_breaks_no_rule() {
    let json = deployment(GOOD_LABELS, "", GOOD_SPEC);
    assert_eq!(
        Case::new(Kind::Deployment, &json).fired(),
        Vec::<RuleId>::new()
    );
}

#[test]
fn mg101_dedicated_service_account() {
    let containers = r#""containers":[{"name":"c"}]"#;
    let cases: &[(&str, &str, &[RuleId])] = &[
        ("absent", containers, &[MG101]),
        ("default", r#""serviceAccountName":"default""#, &[MG101]),
        ("empty", r#""serviceAccountName":"""#, &[MG101]),
        ("dedicated", r#""serviceAccountName":"cart""#, &[]),
        (
            "legacy serviceAccount field",
            r#""serviceAccount":"cart""#,
            &[],
        ),
        (
            "legacy field default",
            r#""serviceAccount":"default""#,
            &[MG101],
        ),
        (
            "name wins over legacy",
            r#""serviceAccountName":"cart","serviceAccount":"default""#,
            &[],
        ),
        (
            "empty name falls back to legacy",
            r#""serviceAccountName":"","serviceAccount":"cart""#,
            &[],
        ),
        (
            "wrong type is absent",
            r#""serviceAccountName":42"#,
            &[MG101],
        ),
    ];
    for (name, spec, want) in cases {
        let json = deployment(GOOD_LABELS, "", spec);
        check(name, Case::new(Kind::Deployment, &json), &[MG101], want);
    }
}

#[test]
fn mg101_applies_to_every_workload_kind_at_its_pod_spec_path() {
    let pod_spec = r#"{"serviceAccountName":"default","containers":[{"name":"c"}]}"#;
    let template = format!(r#"{{"metadata":{{"labels":{{{GOOD_LABELS}}}}},"spec":{pod_spec}}}"#);
    let under_template =
        format!(r#"{{"metadata":{{"name":"w"}},"spec":{{"template":{template}}}}}"#);
    let cronjob = format!(
        r#"{{"metadata":{{"name":"w"}},"spec":{{"jobTemplate":{{"spec":{{"template":{template}}}}}}}}}"#
    );
    let pod =
        format!(r#"{{"metadata":{{"name":"w","labels":{{{GOOD_LABELS}}}}},"spec":{pod_spec}}}"#);
    let cases = [
        (
            Kind::Deployment,
            &under_template,
            "spec.template.spec.serviceAccountName",
        ),
        (
            Kind::StatefulSet,
            &under_template,
            "spec.template.spec.serviceAccountName",
        ),
        (
            Kind::DaemonSet,
            &under_template,
            "spec.template.spec.serviceAccountName",
        ),
        (
            Kind::ReplicaSet,
            &under_template,
            "spec.template.spec.serviceAccountName",
        ),
        (
            Kind::ReplicationController,
            &under_template,
            "spec.template.spec.serviceAccountName",
        ),
        (
            Kind::Job,
            &under_template,
            "spec.template.spec.serviceAccountName",
        ),
        (
            Kind::Rollout,
            &under_template,
            "spec.template.spec.serviceAccountName",
        ),
        (
            Kind::CronJob,
            &cronjob,
            "spec.jobTemplate.spec.template.spec.serviceAccountName",
        ),
        (Kind::Pod, &pod, "spec.serviceAccountName"),
    ];
    for (kind, json, path) in cases {
        let d = Case::new(kind, json).run(meshguard::engine::Webhook::Validate);
        let f = d
            .findings
            .iter()
            .find(|f| f.rule == MG101)
            .unwrap_or_else(|| panic!("{kind:?}: MG101"));
        assert_eq!(f.path, path, "{kind:?}");
    }
}

#[test]
fn rollout_with_workload_ref_has_no_template_to_judge() {
    let json = r#"{"metadata":{"name":"r"},"spec":{"workloadRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}}}"#;
    assert!(Case::new(Kind::Rollout, json).fired().is_empty());
}

#[test]
fn mg102_mesh_labels() {
    let cases: &[(&str, &str, &[RuleId])] = &[
        ("both", r#""app":"a","version":"v1""#, &[]),
        ("no version", r#""app":"a""#, &[MG102]),
        ("no labels", "", &[MG102]),
        (
            "kubernetes.io names",
            r#""app.kubernetes.io/name":"a","app.kubernetes.io/version":"2""#,
            &[],
        ),
        (
            "mixed forms",
            r#""app":"a","app.kubernetes.io/version":"2""#,
            &[],
        ),
        ("empty value", r#""app":"","version":"v1""#, &[MG102]),
        ("non-string value", r#""app":"a","version":1"#, &[MG102]),
    ];
    for (name, labels, want) in cases {
        let labels = if labels.is_empty() {
            r#""sidecar.istio.io/inject":"true""#.to_owned()
        } else {
            format!(r#"{labels},"sidecar.istio.io/inject":"true""#)
        };
        let json = deployment(&labels, "", GOOD_SPEC);
        check(name, Case::new(Kind::Deployment, &json), &[MG102], want);
    }
    // One violation per missing label, each naming it.
    let json = deployment("", "", GOOD_SPEC);
    let d = Case::new(Kind::Deployment, &json).run(meshguard::engine::Webhook::Validate);
    let msgs: Vec<&str> = d
        .findings
        .iter()
        .filter(|f| f.rule == MG102)
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(msgs.len(), 2);
    assert!(
        msgs[0].contains("`app`") && msgs[1].contains("`version`"),
        "{msgs:?}"
    );
}

#[test]
fn mg102_labels_on_the_controller_do_not_count() {
    let json = r#"{"metadata":{"name":"w","labels":{"app":"a","version":"v1"}},"spec":{"template":{"metadata":{"labels":{"sidecar.istio.io/inject":"true"}},"spec":{"serviceAccountName":"w"}}}}"#;
    check(
        "controller labels",
        Case::new(Kind::Deployment, json),
        &[MG102],
        &[MG102],
    );
}

#[test]
fn mg102_labels_are_configurable() {
    let json = deployment(GOOD_LABELS, "", GOOD_SPEC);
    let case = Case::new(Kind::Deployment, &json).config(|c| {
        c.mesh_labels.push(meshguard::config::MeshLabel {
            name: "team".into(),
            alternatives: vec![],
        })
    });
    check("extra label", case, &[MG102], &[MG102]);
}

#[test]
fn mg103_sidecar_injection_follows_istio() {
    type Ns = &'static [(&'static str, &'static str)];
    let enabled: Ns = &[("istio-injection", "enabled")];
    let disabled: Ns = &[("istio-injection", "disabled")];
    let rev: Ns = &[("istio.io/rev", "1-24")];
    let none: Ns = &[];
    let mark = r#""app":"a","version":"v1""#;
    let cases: &[(&str, Ns, &str, &str, bool)] = &[
        ("enabled namespace", enabled, "", "", false),
        (
            "disabled namespace",
            disabled,
            r#","sidecar.istio.io/inject":"true""#,
            "",
            true,
        ),
        (
            "label false opts out",
            enabled,
            r#","sidecar.istio.io/inject":"false""#,
            "",
            true,
        ),
        (
            "annotation false opts out",
            enabled,
            "",
            r#""sidecar.istio.io/inject":"false""#,
            true,
        ),
        (
            "label true beats annotation false",
            enabled,
            r#","sidecar.istio.io/inject":"true""#,
            r#""sidecar.istio.io/inject":"false""#,
            false,
        ),
        ("revision namespace", rev, "", "", false),
        (
            "plain namespace, pod label",
            none,
            r#","sidecar.istio.io/inject":"true""#,
            "",
            false,
        ),
        (
            "plain namespace, pod revision",
            none,
            r#","istio.io/rev":"1-24""#,
            "",
            false,
        ),
        (
            "plain namespace, annotation only",
            none,
            "",
            r#""sidecar.istio.io/inject":"true""#,
            true,
        ),
        ("plain namespace, nothing", none, "", "", true),
    ];
    for (name, ns, extra_labels, annotations, fires) in cases {
        let json = deployment(&format!("{mark}{extra_labels}"), annotations, GOOD_SPEC);
        let want: &[RuleId] = if *fires { &[MG103] } else { &[] };
        check(
            name,
            Case::new(Kind::Deployment, &json).ns(ns),
            &[MG103],
            want,
        );
    }
}

#[test]
fn mg103_message_says_what_decided() {
    let json = deployment(
        r#""app":"a","version":"v1","sidecar.istio.io/inject":"false""#,
        "",
        GOOD_SPEC,
    );
    let d = Case::new(Kind::Deployment, &json).run(meshguard::engine::Webhook::Validate);
    let f = d.findings.iter().find(|f| f.rule == MG103).expect("MG103");
    assert!(
        f.message.contains("sidecar.istio.io/inject: \"false\""),
        "{}",
        f.message
    );
    assert_eq!(f.path, "spec.template.metadata.labels");

    let json = deployment(GOOD_LABELS, "", GOOD_SPEC);
    let d = Case::new(Kind::Deployment, &json)
        .ns(&[("istio-injection", "disabled")])
        .run(meshguard::engine::Webhook::Validate);
    let f = d.findings.iter().find(|f| f.rule == MG103).expect("MG103");
    assert!(
        f.message.contains("istio-injection=disabled"),
        "{}",
        f.message
    );
}

#[test]
fn mg103_unknown_namespace_falls_back_to_pod_markers() {
    let json = deployment(GOOD_LABELS, "", GOOD_SPEC);
    check(
        "pod label",
        Case::new(Kind::Deployment, &json).unknown_ns(),
        &[MG103],
        &[],
    );
    let json = deployment(r#""app":"a","version":"v1""#, "", GOOD_SPEC);
    let case = Case::new(Kind::Deployment, &json).unknown_ns();
    let d = case.run(meshguard::engine::Webhook::Validate);
    let f = d.findings.iter().find(|f| f.rule == MG103).expect("MG103");
    assert!(
        f.message.contains("unknown"),
        "the finding says the namespace is unknown: {}",
        f.message
    );
}

#[test]
fn mg104_sidecar_marker() {
    let base = r#""app":"a","version":"v1""#;
    let cases: &[(&str, &str, &str, &str, &[RuleId])] = &[
        (
            "label true",
            r#","sidecar.istio.io/inject":"true""#,
            "",
            GOOD_SPEC,
            &[],
        ),
        ("no marker", "", "", GOOD_SPEC, &[MG104]),
        (
            "label with another value",
            r#","sidecar.istio.io/inject":"yes""#,
            "",
            GOOD_SPEC,
            &[MG104],
        ),
        (
            "explicit opt-out label",
            r#","sidecar.istio.io/inject":"false""#,
            "",
            GOOD_SPEC,
            &[],
        ),
        (
            "explicit opt-out annotation",
            "",
            r#""sidecar.istio.io/inject":"false""#,
            GOOD_SPEC,
            &[],
        ),
        (
            "host network",
            "",
            "",
            r#""serviceAccountName":"a","hostNetwork":true"#,
            &[],
        ),
    ];
    for (name, labels, annotations, spec, want) in cases {
        let json = deployment(&format!("{base}{labels}"), annotations, spec);
        check(name, Case::new(Kind::Deployment, &json), &[MG104], want);
    }
}

#[test]
fn mg104_annotation_form_is_accepted_with_a_warning() {
    let json = deployment(
        r#""app":"a","version":"v1""#,
        r#""sidecar.istio.io/inject":"true""#,
        GOOD_SPEC,
    );
    let (deny, warn, _) = Case::new(Kind::Deployment, &json).judge();
    assert!(!deny.contains(&MG104));
    assert!(warn.contains(&MG104));
}

#[test]
fn mg105_proxy_uid() {
    let c = |sc: &str| format!(r#"{{"name":"app"{sc}}}"#);
    let cases: &[(&str, String, &[RuleId])] = &[
        (
            "container 1337",
            format!(
                r#""serviceAccountName":"a","containers":[{}]"#,
                c(r#","securityContext":{"runAsUser":1337}"#)
            ),
            &[MG105],
        ),
        (
            "pod 1337",
            format!(
                r#""serviceAccountName":"a","securityContext":{{"runAsUser":1337}},"containers":[{}]"#,
                c("")
            ),
            &[MG105],
        ),
        (
            "pod 1337, container overrides",
            format!(
                r#""serviceAccountName":"a","securityContext":{{"runAsUser":1337}},"containers":[{}]"#,
                c(r#","securityContext":{"runAsUser":10001}"#)
            ),
            &[],
        ),
        (
            "init container 1337",
            format!(
                r#""serviceAccountName":"a","containers":[{}],"initContainers":[{}]"#,
                c(""),
                c(r#","securityContext":{"runAsUser":1337}"#)
            ),
            &[MG105],
        ),
        (
            "other uid",
            format!(
                r#""serviceAccountName":"a","containers":[{}]"#,
                c(r#","securityContext":{"runAsUser":1000}"#)
            ),
            &[],
        ),
        (
            "uid as string is absent",
            format!(
                r#""serviceAccountName":"a","containers":[{}]"#,
                c(r#","securityContext":{"runAsUser":"1337"}"#)
            ),
            &[],
        ),
    ];
    for (name, spec, want) in cases {
        let json = deployment(GOOD_LABELS, "", spec);
        check(name, Case::new(Kind::Deployment, &json), &[MG105], want);
    }
}

#[test]
fn mg105_and_mg107_spare_the_containers_istio_injected_into_a_pod() {
    let pod = r#"{"metadata":{"name":"p","labels":{"app":"a","version":"v1","sidecar.istio.io/inject":"true"},"annotations":{"sidecar.istio.io/status":"{\"containers\":[\"istio-proxy\"]}"}},"spec":{"serviceAccountName":"a","initContainers":[{"name":"istio-init","securityContext":{"runAsUser":1337}}],"containers":[{"name":"app"},{"name":"istio-proxy","securityContext":{"runAsUser":1337},"ports":[{"containerPort":15090}]}]}}"#;
    check(
        "injected pod",
        Case::new(Kind::Pod, pod),
        &[MG105, MG107],
        &[],
    );
    let impostor = pod.replace("sidecar.istio.io/status", "example.com/status");
    check(
        "impostor pod",
        Case::new(Kind::Pod, &impostor),
        &[MG105, MG107],
        &[MG105, MG107],
    );
}

#[test]
fn mg106_host_network() {
    let cases: &[(&str, &str, &[RuleId])] = &[
        (
            "host network",
            r#""serviceAccountName":"a","hostNetwork":true"#,
            &[MG106],
        ),
        (
            "pod network",
            r#""serviceAccountName":"a","hostNetwork":false"#,
            &[],
        ),
        (
            "string is absent",
            r#""serviceAccountName":"a","hostNetwork":"true""#,
            &[],
        ),
    ];
    for (name, spec, want) in cases {
        let json = deployment(GOOD_LABELS, "", spec);
        check(
            name,
            Case::new(Kind::Deployment, &json),
            &[MG103, MG104, MG106],
            want,
        );
    }
}

#[test]
fn mg107_reserved_names_and_ports() {
    let cases: &[(&str, &str, &[RuleId])] = &[
        (
            "istio-proxy in a template",
            r#""serviceAccountName":"a","containers":[{"name":"istio-proxy"}]"#,
            &[MG107],
        ),
        (
            "istio-validation init container",
            r#""serviceAccountName":"a","containers":[{"name":"a"}],"initContainers":[{"name":"istio-validation"}]"#,
            &[MG107],
        ),
        (
            "proxy port",
            r#""serviceAccountName":"a","containers":[{"name":"a","ports":[{"containerPort":15001}]}]"#,
            &[MG107],
        ),
        (
            "metrics port",
            r#""serviceAccountName":"a","containers":[{"name":"a","ports":[{"containerPort":15090}]}]"#,
            &[MG107],
        ),
        (
            "app port",
            r#""serviceAccountName":"a","containers":[{"name":"a","ports":[{"containerPort":8080},{"containerPort":15100}]}]"#,
            &[],
        ),
        (
            "look-alike name",
            r#""serviceAccountName":"a","containers":[{"name":"istio-proxy-helper"}]"#,
            &[],
        ),
    ];
    for (name, spec, want) in cases {
        let json = deployment(GOOD_LABELS, "", spec);
        check(name, Case::new(Kind::Deployment, &json), &[MG107], want);
    }
}

#[test]
fn mg108_misplaced_marker() {
    let template = format!(
        r#""template":{{"metadata":{{"labels":{{{GOOD_LABELS}}}}},"spec":{{{GOOD_SPEC}}}}}"#
    );
    let cases: &[(&str, &str, &[RuleId])] = &[
        (
            "label on controller",
            r#""labels":{"sidecar.istio.io/inject":"true"}"#,
            &[MG108],
        ),
        (
            "annotation on controller",
            r#""annotations":{"sidecar.istio.io/inject":"true"}"#,
            &[MG108],
        ),
        (
            "revision on controller",
            r#""labels":{"istio.io/rev":"1-24"}"#,
            &[MG108],
        ),
        ("nothing on controller", r#""labels":{"app":"a"}"#, &[]),
    ];
    for (name, meta, want) in cases {
        let json = format!(r#"{{"metadata":{{"name":"w",{meta}}},"spec":{{{template}}}}}"#);
        check(name, Case::new(Kind::StatefulSet, &json), &[MG108], want);
    }
    let (_, warn, _) = Case::new(
        Kind::Deployment,
        &format!(r#"{{"metadata":{{"name":"w","labels":{{"sidecar.istio.io/inject":"true"}}}},"spec":{{{template}}}}}"#),
    )
    .judge();
    assert_eq!(warn, vec![MG108], "MG108 warns by default");
    // A Pod's metadata is its template: the marker is in the right place.
    let pod = format!(
        r#"{{"metadata":{{"name":"p","labels":{{{GOOD_LABELS}}}}},"spec":{{{GOOD_SPEC}}}}}"#
    );
    check("pod", Case::new(Kind::Pod, &pod), &[MG108], &[]);
}

#[test]
fn mg201_service_port_protocol() {
    let cases: &[(&str, &str, &[RuleId])] = &[
        ("named http", r#"{"name":"http","port":80}"#, &[]),
        ("named with suffix", r#"{"name":"grpc-api","port":80}"#, &[]),
        ("grpc-web", r#"{"name":"grpc-web","port":80}"#, &[]),
        (
            "appProtocol",
            r#"{"name":"metrics","port":9090,"appProtocol":"http"}"#,
            &[],
        ),
        ("unnamed", r#"{"port":80}"#, &[MG201]),
        ("unknown name", r#"{"name":"admin","port":8081}"#, &[MG201]),
        (
            "protocol as suffix only",
            r#"{"name":"web-http","port":80}"#,
            &[MG201],
        ),
    ];
    for (name, port, want) in cases {
        let json = format!(r#"{{"metadata":{{"name":"s"}},"spec":{{"ports":[{port}]}}}}"#);
        check(name, Case::new(Kind::Service, &json), &[MG201], want);
    }
}

#[test]
fn mg301_namespace_injection() {
    let cases: &[(&str, &str, &[RuleId])] = &[
        ("enabled", r#"{"istio-injection":"enabled"}"#, &[]),
        ("revision", r#"{"istio.io/rev":"1-24"}"#, &[]),
        ("none", r#"{"team":"a"}"#, &[MG301]),
        ("disabled", r#"{"istio-injection":"disabled"}"#, &[MG301]),
        (
            "both",
            r#"{"istio-injection":"enabled","istio.io/rev":"1-24"}"#,
            &[MG301],
        ),
        ("unknown value", r#"{"istio-injection":"on"}"#, &[MG301]),
    ];
    for (name, labels, want) in cases {
        let json = format!(r#"{{"metadata":{{"name":"shop","labels":{labels}}}}}"#);
        check(name, Case::new(Kind::Namespace, &json), &[MG301], want);
    }
}

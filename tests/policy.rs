//! How rules become decisions: what is evaluated at all, actions, namespace
//! modes, enforceAfter, ratcheting and exemptions (SPEC sections 2 and 3).

use meshguard::config::Exemption;
use meshguard::engine::{self, Operation, Request, Skip, Webhook};
use meshguard::object::{Kind, Object};
use meshguard::rules::{Action, RuleId::*};

use crate::util::{Case, GOOD_LABELS, GOOD_SPEC, deployment, labels, now};

/// A Deployment breaking MG101 only.
fn no_service_account() -> String {
    deployment(GOOD_LABELS, "", r#""containers":[{"name":"c"}]"#)
}

#[test]
fn delete_connect_and_subresources_are_never_judged() {
    let json = no_service_account();
    let object = Object::from_json(Kind::Deployment, &json).expect("parses");
    let config = meshguard::config::Config::default();
    for (op, sub, skip) in [
        (Operation::Delete, false, Skip::Operation),
        (Operation::Connect, false, Skip::Operation),
        (Operation::Update, true, Skip::Subresource),
    ] {
        let req = Request {
            operation: op,
            kind: Kind::Deployment,
            namespace: "shop",
            object: Some(&object),
            old_object: None,
            subresource: sub,
        };
        let d = engine::evaluate(&req, &config, None, now(), Webhook::Validate);
        assert!(d.allowed() && d.findings.is_empty());
        assert_eq!(d.skipped, Some(skip));
    }
}

#[test]
fn unknown_kinds_are_allowed_untouched() {
    let json = no_service_account();
    for (group, version, kind) in [
        ("apps", "v1", "ControllerRevision"),
        ("example.com", "v1", "Deployment"),
        ("apps", "v2", "Deployment"),
        ("security.istio.io", "v2", "PeerAuthentication"),
    ] {
        let k = Kind::from_gvk(group, version, kind);
        assert_eq!(k, Kind::Other, "{group}/{version} {kind}");
        let object = Object::from_json(k, &json).expect("parses");
        let req = Request {
            operation: Operation::Create,
            kind: k,
            namespace: "shop",
            object: Some(&object),
            old_object: None,
            subresource: false,
        };
        let config = meshguard::config::Config::default();
        let v = engine::evaluate(&req, &config, None, now(), Webhook::Validate);
        let m = engine::evaluate(&req, &config, None, now(), Webhook::Mutate);
        assert_eq!(v.skipped, Some(Skip::UnjudgedKind));
        assert!(m.mutations.is_empty());
    }
}

#[test]
fn controller_owned_pods_and_replicasets_are_skipped_bare_ones_judged() {
    let owned = r#"{"metadata":{"name":"p","ownerReferences":[{"kind":"ReplicaSet","name":"rs","controller":true}]},"spec":{"containers":[{"name":"c"}]}}"#;
    let not_controller = r#"{"metadata":{"name":"p","ownerReferences":[{"kind":"ReplicaSet","name":"rs","controller":false}]},"spec":{"containers":[{"name":"c"}]}}"#;
    let bare = r#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}"#;
    assert_eq!(
        Case::new(Kind::Pod, owned).run(Webhook::Validate).skipped,
        Some(Skip::ControllerOwned)
    );
    assert_eq!(
        Case::new(Kind::Pod, owned).run(Webhook::Mutate).mutations,
        vec![]
    );
    assert!(!Case::new(Kind::Pod, not_controller).fired().is_empty());
    assert!(!Case::new(Kind::Pod, bare).fired().is_empty());
    let rs = r#"{"metadata":{"name":"rs","ownerReferences":[{"controller":true}]},"spec":{"template":{"spec":{}}}}"#;
    assert_eq!(
        Case::new(Kind::ReplicaSet, rs)
            .run(Webhook::Validate)
            .skipped,
        Some(Skip::ControllerOwned)
    );
    // A Deployment is never "controller-owned" for this purpose.
    let dep = r#"{"metadata":{"name":"d","ownerReferences":[{"controller":true}]},"spec":{"template":{"spec":{}}}}"#;
    assert!(!Case::new(Kind::Deployment, dep).fired().is_empty());
}

#[test]
fn exempt_namespaces_skip_workload_service_and_namespace_rules() {
    let json = no_service_account();
    for ns in [
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "istio-system",
        "meshguard-system",
    ] {
        let d = Case::new(Kind::Deployment, &json)
            .in_namespace(ns)
            .run(Webhook::Validate);
        assert_eq!(d.skipped, Some(Skip::ExemptNamespace), "{ns}");
        let m = Case::new(Kind::Deployment, &json)
            .in_namespace(ns)
            .run(Webhook::Mutate);
        assert!(m.mutations.is_empty(), "{ns}: nothing is patched");
    }
    let namespace = r#"{"metadata":{"name":"kube-system"}}"#;
    assert_eq!(
        Case::new(Kind::Namespace, namespace)
            .run(Webhook::Validate)
            .skipped,
        Some(Skip::ExemptNamespace)
    );
    assert!(
        Case::new(Kind::Namespace, namespace)
            .run(Webhook::Mutate)
            .mutations
            .is_empty()
    );
    let custom = Case::new(Kind::Deployment, &json)
        .in_namespace("legacy")
        .config(|c| c.exempt_namespaces.push("legacy".into()));
    assert_eq!(
        custom.run(Webhook::Validate).skipped,
        Some(Skip::ExemptNamespace)
    );
}

#[test]
fn namespace_mode_caps_every_rule() {
    let json = deployment(
        GOOD_LABELS,
        "",
        r#""containers":[{"name":"c","ports":[{"containerPort":15001}]}]"#,
    );
    let judge = |mode: Option<&'static str>| {
        let mut pairs = vec![("istio-injection", "enabled")];
        if let Some(m) = mode {
            pairs.push(("meshguard.io/mode", m));
        }
        let leaked: &'static [(&str, &str)] = Box::leak(pairs.into_boxed_slice());
        Case::new(Kind::Deployment, &json).ns(leaked).judge()
    };
    assert_eq!(judge(None), (vec![MG101, MG107], vec![], vec![]));
    assert_eq!(judge(Some("enforce")), (vec![MG101, MG107], vec![], vec![]));
    assert_eq!(judge(Some("warn")), (vec![], vec![MG101, MG107], vec![]));
    assert_eq!(judge(Some("audit")), (vec![], vec![], vec![MG101, MG107]));
    assert_eq!(judge(Some("off")), (vec![], vec![], vec![]));
    assert_eq!(
        judge(Some("bogus")),
        (vec![MG101, MG107], vec![], vec![]),
        "an unknown mode never weakens policy"
    );
    // A mode caps, it never raises: a warn rule stays warn under enforce.
    let misplaced = format!(
        r#"{{"metadata":{{"name":"w","labels":{{"sidecar.istio.io/inject":"true"}}}},"spec":{{"template":{{"metadata":{{"labels":{{{GOOD_LABELS}}}}},"spec":{{{GOOD_SPEC}}}}}}}}}"#
    );
    let misplaced_in = |mode: &'static str| {
        let leaked: &'static [(&str, &str)] = Box::leak(
            vec![("istio-injection", "enabled"), ("meshguard.io/mode", mode)].into_boxed_slice(),
        );
        Case::new(Kind::Deployment, &misplaced).ns(leaked).judge()
    };
    assert_eq!(misplaced_in("enforce"), (vec![], vec![MG108], vec![]));
    assert_eq!(misplaced_in("audit"), (vec![], vec![], vec![MG108]));
    let off = Case::new(Kind::Deployment, &json)
        .ns(&[("meshguard.io/mode", "off")])
        .run(Webhook::Mutate);
    assert!(off.mutations.is_empty(), "mode off patches nothing");
}

#[test]
fn configured_actions_apply() {
    let json = no_service_account();
    for (action, want) in [
        (Action::Deny, (vec![MG101], vec![], vec![])),
        (Action::Warn, (vec![], vec![MG101], vec![])),
        (Action::Audit, (vec![], vec![], vec![MG101])),
        (Action::Off, (vec![], vec![], vec![])),
    ] {
        let case = Case::new(Kind::Deployment, &json).config(|c| c.set_action(MG101, action));
        assert_eq!(case.judge(), want, "{action}");
    }
}

#[test]
fn enforce_after_turns_warn_into_deny_at_that_instant() {
    let json = no_service_account();
    let at: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().expect("ts");
    let mut case = Case::new(Kind::Deployment, &json).config(|c| {
        c.set_action(MG101, Action::Warn);
        c.set_enforce_after(MG101, Some(at));
    });
    case.now = "2026-11-30T23:59:59Z".parse().expect("ts");
    assert_eq!(case.judge(), (vec![], vec![MG101], vec![]));
    case.now = at;
    assert_eq!(case.judge(), (vec![MG101], vec![], vec![]));
    // The namespace mode still caps an enforced rule.
    let case = Case::new(Kind::Deployment, &json)
        .ns(&[
            ("istio-injection", "enabled"),
            ("meshguard.io/mode", "warn"),
        ])
        .config(|c| {
            c.set_action(MG101, Action::Audit);
            c.set_enforce_after(MG101, Some(at));
        });
    let mut case = case;
    case.now = at;
    assert_eq!(case.judge(), (vec![], vec![MG101], vec![]));
}

#[test]
fn ratcheting_denies_only_newly_broken_rules() {
    let old = no_service_account();
    // The update keeps MG101 broken and adds MG107.
    let new = deployment(
        GOOD_LABELS,
        "",
        r#""containers":[{"name":"c","ports":[{"containerPort":15001}]}]"#,
    );
    let case = Case::new(Kind::Deployment, &new).update(&old);
    assert_eq!(case.judge(), (vec![MG107], vec![MG101], vec![]));
    let d = case.run(Webhook::Validate);
    assert!(d.findings.iter().any(|f| f.rule == MG101 && f.ratcheted));
    // With ratcheting off, both deny.
    let case = Case::new(Kind::Deployment, &new)
        .update(&old)
        .config(|c| c.ratcheting = false);
    assert_eq!(case.judge(), (vec![MG101, MG107], vec![], vec![]));
    // A CREATE is never ratcheted.
    assert_eq!(
        Case::new(Kind::Deployment, &new).judge().0,
        vec![MG101, MG107]
    );
    // An UPDATE that fixes nothing and breaks nothing new is allowed.
    let case = Case::new(Kind::Deployment, &old).update(&old);
    assert_eq!(case.judge(), (vec![], vec![MG101], vec![]));
}

#[test]
fn ratcheting_of_namespaces_uses_the_old_labels() {
    let none = r#"{"metadata":{"name":"shop"}}"#;
    let disabled = r#"{"metadata":{"name":"shop","labels":{"istio-injection":"disabled"}}}"#;
    let enabled = r#"{"metadata":{"name":"shop","labels":{"istio-injection":"enabled"}}}"#;
    assert_eq!(
        Case::new(Kind::Namespace, disabled).update(none).judge(),
        (vec![], vec![MG301], vec![])
    );
    assert_eq!(
        Case::new(Kind::Namespace, none).update(enabled).judge(),
        (vec![MG301], vec![], vec![])
    );
}

#[test]
fn exemptions_switch_rules_off_for_matching_objects() {
    // Breaks MG101 and MG107: each case differs from a matching exemption
    // in one respect only, so each shows one reason to apply or not.
    let json = deployment(
        GOOD_LABELS,
        "",
        r#""containers":[{"name":"c","ports":[{"containerPort":15001}]}]"#,
    );
    let exempt = |ns: &str, name: &str, rules: &str| {
        let yaml = format!(
            "exemptions:\n  - {{namespace: {ns}, kind: Deployment, name: \"{name}\", rules: {rules}, reason: migrating}}\n"
        );
        meshguard::config::Config::parse(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    };
    let fired = |config: meshguard::config::Config| {
        let mut case = Case::new(Kind::Deployment, &json);
        case.config = config;
        case.fired()
    };
    assert_eq!(
        fired(meshguard::config::Config::default()),
        vec![MG101, MG107]
    );
    // Matching object, one rule listed: only that rule is off.
    assert_eq!(fired(exempt("shop", "ca*", "[MG101]")), vec![MG107]);
    // `*` is every rule, also next to an id.
    assert_eq!(fired(exempt("shop", "ca*", "[\"*\"]")), vec![]);
    assert_eq!(fired(exempt("shop", "ca*", "[MG101, \"*\"]")), vec![]);
    // The name does not match.
    assert_eq!(
        fired(exempt("shop", "web-*", "[\"*\"]")),
        vec![MG101, MG107]
    );
    // The namespace does not match.
    assert_eq!(fired(exempt("other", "*", "[\"*\"]")), vec![MG101, MG107]);
    // An empty list is refused: it would silently exempt every rule.
    let err = meshguard::config::Config::parse(
        "exemptions:\n  - {namespace: shop, rules: [], reason: migrating}\n",
    )
    .expect_err("rules: [] is refused");
    assert!(
        err.to_string()
            .contains("exemptions[0].rules: lists no rule"),
        "{err}"
    );
    // The engine-level exemption, as the config builds it.
    let case = Case::new(Kind::Deployment, &json).config(|c| {
        c.exemptions.push(Exemption {
            namespace: Some("shop".into()),
            kind: Some(Kind::Deployment),
            name: None,
            rules: vec![MG107],
            reason: "migrating".into(),
        })
    });
    assert_eq!(case.fired(), vec![MG101]);
}

#[test]
fn namespace_requests_are_judged_by_their_own_labels() {
    // The namespace view says nothing about `shop`; the object's own labels decide.
    let json = r#"{"metadata":{"name":"shop","labels":{"istio-injection":"enabled","meshguard.io/mode":"warn"}}}"#;
    let case = Case::new(Kind::Namespace, json).unknown_ns();
    assert!(case.fired().is_empty());
    let json = r#"{"metadata":{"name":"shop","labels":{"istio-injection":"disabled","meshguard.io/mode":"warn"}}}"#;
    assert_eq!(
        Case::new(Kind::Namespace, json).judge(),
        (vec![], vec![MG301], vec![])
    );
    let _ = labels(&[]);
}

/// A PeerAuthentication with mTLS PERMISSIVE (breaks MG401).
const PERMISSIVE: &str = r#"{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"default","namespace":"istio-system"},"spec":{"mtls":{"mode":"PERMISSIVE"}}}"#;
const STRICT: &str = r#"{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"default","namespace":"istio-system"},"spec":{"mtls":{"mode":"STRICT"}}}"#;
/// A DestinationRule without a circuit breaker (MG403, a warning).
const NO_BREAKER: &str = r#"{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"orders","namespace":"istio-system"},"spec":{"host":"orders.shop.svc.cluster.local"}}"#;

#[test]
fn istio_rules_apply_in_exempt_namespaces() {
    // istio-system is exempt from workload rules, not from MG4xx: the
    // mesh-wide PeerAuthentication lives there.
    let case = Case::new(Kind::PeerAuthentication, PERMISSIVE)
        .in_namespace("istio-system")
        .ns(&[]);
    assert_eq!(case.judge(), (vec![MG401], vec![], vec![]));
    let case = Case::new(Kind::PeerAuthentication, STRICT)
        .in_namespace("istio-system")
        .ns(&[]);
    assert_eq!(case.judge(), (vec![], vec![], vec![]));
}

#[test]
fn istio_rules_follow_namespace_modes() {
    let run = |mode: &'static str| {
        Case::new(Kind::PeerAuthentication, PERMISSIVE)
            .ns(&[("istio-injection", "enabled"), ("meshguard.io/mode", mode)])
            .judge()
    };
    assert_eq!(run("enforce"), (vec![MG401], vec![], vec![]));
    assert_eq!(run("warn"), (vec![], vec![MG401], vec![]));
    assert_eq!(run("audit"), (vec![], vec![], vec![MG401]));
    assert_eq!(run("off"), (vec![], vec![], vec![]));
}

#[test]
fn istio_rules_ratchet_on_update() {
    // Already PERMISSIVE before: the update is allowed, with a warning.
    let ratcheted = Case::new(Kind::PeerAuthentication, PERMISSIVE).update(PERMISSIVE);
    let d = ratcheted.run(Webhook::Validate);
    assert!(d.allowed());
    assert!(d.findings.iter().any(|f| f.rule == MG401 && f.ratcheted));
    // STRICT before: weakening it is denied.
    let weakened = Case::new(Kind::PeerAuthentication, PERMISSIVE).update(STRICT);
    assert_eq!(weakened.judge().0, vec![MG401]);
}

#[test]
fn istio_rules_honour_actions_and_enforce_after() {
    let off = Case::new(Kind::PeerAuthentication, PERMISSIVE)
        .config(|c| c.set_action(MG401, Action::Off));
    assert_eq!(off.fired(), vec![]);
    let warn = Case::new(Kind::DestinationRule, NO_BREAKER).in_namespace("istio-system");
    assert_eq!(warn.judge(), (vec![], vec![MG403], vec![]));
    let past = now()
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .expect("time");
    let future = now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .expect("time");
    let enforced = Case::new(Kind::DestinationRule, NO_BREAKER)
        .config(|c| c.set_enforce_after(MG403, Some(past)));
    assert_eq!(enforced.judge(), (vec![MG403], vec![], vec![]));
    let not_yet = Case::new(Kind::DestinationRule, NO_BREAKER)
        .config(|c| c.set_enforce_after(MG403, Some(future)));
    assert_eq!(not_yet.judge(), (vec![], vec![MG403], vec![]));
}

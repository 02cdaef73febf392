//! What an audit judges and what it skips (SPEC section 1): old API
//! versions are judged like their `v1` kinds and say they are no longer
//! served; every object not judged is counted and named with its reason,
//! in every format.

use serde_json::Value;

use crate::util::{meshguard, stderr, stdout};

const NS: &str = "--namespace-labels=shop=istio-injection=enabled";

/// A Deployment in `shop` of the given apiVersion, without a service
/// account (MG101) unless `sa` is given.
fn deployment(api_version: &str, sa: Option<&str>) -> String {
    let sa = sa.map_or(String::new(), |s| {
        format!("      serviceAccountName: {s}\n")
    });
    format!(
        "apiVersion: {api_version}\nkind: Deployment\nmetadata:\n  name: legacy\n  namespace: shop\nspec:\n  template:\n    metadata:\n      labels: {{app: legacy, version: v1, sidecar.istio.io/inject: \"true\"}}\n    spec:\n{sa}      containers: [{{name: app, image: app:1}}]\n"
    )
}

#[test]
fn an_apps_v1beta1_deployment_is_judged_and_told_it_is_no_longer_served() {
    // The newcomer's case: this used to be "1 objects: 0 deny" and exit 0.
    let input = deployment("apps/v1beta1", None);
    let out = meshguard(&["audit", "-", NS], Some(input.as_bytes()));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "<stdin>:1: Deployment shop/legacy\n  deny   MG101 dedicated-service-account: "
        ),
        "{text}"
    );
    assert!(
        text.contains("(note: apps/v1beta1 Deployment is no longer served (since Kubernetes 1.16): the API server refuses this manifest until apiVersion is apps/v1)"),
        "the finding says so: {text}"
    );
    assert!(
        text.contains("  note   apps/v1beta1 Deployment is no longer served"),
        "{text}"
    );
    assert!(
        text.contains("1 objects (1 judged, 0 skipped): 1 deny, 0 warn, 0 audit, 0 patches"),
        "{text}"
    );

    let out = meshguard(
        &["audit", "-", NS, "--format", "json"],
        Some(input.as_bytes()),
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["findings"][0]["rule"], "MG101");
    assert_eq!(v["findings"][0]["kind"], "Deployment");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .expect("message")
            .contains("no longer served (since Kubernetes 1.16)")
    );
    assert_eq!(v["notes"][0]["apiVersion"], "apps/v1beta1");
}

#[test]
fn a_compliant_object_of_an_old_version_still_gets_the_note() {
    for (api_version, release) in [("extensions/v1beta1", "1.16"), ("apps/v1beta2", "1.16")] {
        let input = deployment(api_version, Some("legacy"));
        let out = meshguard(
            &["audit", "-", NS, "--format", "json"],
            Some(input.as_bytes()),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["findings"], serde_json::json!([]), "{api_version}");
        assert_eq!(v["summary"]["judged"], 1);
        let note = v["notes"][0]["message"].as_str().expect("a note");
        assert!(
            note.starts_with(&format!(
                "{api_version} Deployment is no longer served (since Kubernetes {release})"
            )),
            "{note}"
        );
    }
    let cron = "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly, namespace: shop}\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n          labels: {app: nightly, version: v1, sidecar.istio.io/inject: \"true\"}\n        spec:\n          serviceAccountName: nightly\n          containers: [{name: job, image: job:1}]\n";
    let out = meshguard(&["audit", "-", NS], Some(cron.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("  note   batch/v1beta1 CronJob is no longer served (since Kubernetes 1.25): the API server refuses this manifest until apiVersion is batch/v1"),
        "{}",
        stdout(&out)
    );
}

/// One object of every skip reason, a values file, and one judged Service.
const MIXED: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: quiet, labels: {meshguard.io/mode: \"off\", istio-injection: enabled}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
---
apiVersion: apps/v1beta3
kind: Deployment
metadata: {name: future, namespace: shop}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-7d9c-abcde
  namespace: shop
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d9c, uid: u1, controller: true}]
spec: {containers: [{name: web, image: web:1}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: dns, namespace: kube-system}
spec: {template: {spec: {containers: [{name: dns, image: dns:1}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hushed, namespace: quiet}
spec: {template: {spec: {containers: [{name: app, image: app:1}]}}}
---
replicas: 3
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{name: http, port: 80}]}
";

#[test]
fn every_skipped_object_is_counted_and_named_with_its_reason() {
    let out = meshguard(
        &["audit", "-", NS, "--format", "json"],
        Some(MIXED.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["summary"]["objects"], 8);
    // The Namespace `quiet` carries `meshguard.io/mode: off` itself, so it
    // is skipped too; only the Service is judged.
    assert_eq!(v["summary"]["skipped"], 7);
    assert_eq!(v["summary"]["judged"], 1);
    let skipped: Vec<String> = v["skipped"]
        .as_array()
        .expect("skipped list")
        .iter()
        .map(|s| {
            format!(
                "{} {} {}/{} {} {}",
                s["apiVersion"].as_str().expect("apiVersion"),
                s["kind"].as_str().expect("kind"),
                s["namespace"].as_str().expect("namespace"),
                s["object"].as_str().expect("object"),
                s["source"].as_str().expect("source"),
                s["reason"].as_str().expect("reason"),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            "v1 Namespace /quiet <stdin>:1 mode-off",
            "v1 ConfigMap shop/settings <stdin>:5 unjudged-kind",
            "apps/v1beta3 Deployment shop/future <stdin>:9 unjudged-kind",
            "v1 Pod shop/web-7d9c-abcde <stdin>:13 controller-owned",
            "apps/v1 Deployment kube-system/dns <stdin>:21 exempt-namespace",
            "apps/v1 Deployment quiet/hushed <stdin>:26 mode-off",
            "  / <stdin>:31 not-an-object",
        ]
    );
    assert_eq!(
        v["skipped"][3]["why"],
        "owned by a controller, which is judged instead"
    );

    let out = meshguard(&["audit", "-", NS], Some(MIXED.as_bytes()));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("skipped ")).collect();
    assert_eq!(
        lines,
        [
            "skipped 1 (not a Kubernetes object: no apiVersion and kind): document at <stdin>:31",
            "skipped 2 (a kind or API version meshguard does not judge): ConfigMap shop/settings at <stdin>:5, Deployment shop/future at <stdin>:9",
            "skipped 1 (owned by a controller, which is judged instead): Pod shop/web-7d9c-abcde at <stdin>:13",
            "skipped 1 (in an exempt namespace): Deployment kube-system/dns at <stdin>:21",
            "skipped 2 (its namespace has meshguard.io/mode=off): Namespace quiet at <stdin>:1, Deployment quiet/hushed at <stdin>:26",
        ],
        "{text}"
    );
    assert!(
        text.ends_with("8 objects (1 judged, 7 skipped): 0 deny, 0 warn, 0 audit, 0 patches\n"),
        "{text}"
    );
}

#[test]
fn junit_lists_skipped_objects_as_skipped_cases() {
    use quick_xml::events::Event;
    let out = meshguard(
        &["audit", "-", NS, "--format", "junit"],
        Some(MIXED.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut reader = quick_xml::Reader::from_reader(out.stdout.as_slice());
    let mut buf = Vec::new();
    let (mut case, mut skipped, mut totals) = (String::new(), Vec::new(), None);
    loop {
        match reader.read_event_into(&mut buf).expect("well-formed XML") {
            Event::Start(e) if e.name().0 == "testsuites" => {
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .expect("attribute")
                        .map(|a| a.value.to_string())
                };
                totals = Some((attr("tests"), attr("skipped")));
            }
            Event::Start(e) if e.name().0 == "testcase" => {
                case = e
                    .try_get_attribute("name")
                    .expect("attribute")
                    .map(|a| a.value.to_string())
                    .unwrap_or_default();
            }
            Event::Empty(e) if e.name().0 == "skipped" => skipped.push(case.clone()),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    assert_eq!(totals, Some((Some("8".into()), Some("7".into()))));
    assert_eq!(
        skipped,
        [
            "Namespace quiet",
            "ConfigMap shop/settings",
            "Deployment shop/future",
            "Pod shop/web-7d9c-abcde",
            "Deployment kube-system/dns",
            "Deployment quiet/hushed",
            "document at &lt;stdin&gt;:31",
        ]
    );
}

#[test]
fn an_input_of_only_skipped_objects_says_nothing_was_judged() {
    let input = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b, namespace: shop}\n";
    let out = meshguard(&["audit", "-"], Some(input));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).ends_with("2 objects, all skipped: nothing was judged\n"),
        "{}",
        stdout(&out)
    );
    let out = meshguard(&["audit", "-", "--format", "json"], Some(input));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (
            v["summary"]["judged"].as_u64(),
            v["summary"]["skipped"].as_u64()
        ),
        (Some(0), Some(2))
    );
    assert!(
        stderr(&out).contains("nothing was judged: all 2 objects were skipped"),
        "{}",
        stderr(&out)
    );
}

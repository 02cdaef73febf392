//! Bad input gets a clear error or a correct decision, never a panic.

use meshguard::admission::{self, ReviewError};
use meshguard::config::Config;
use meshguard::engine::Webhook;
use meshguard::namespaces::NamespaceMap;

use crate::util::{data, meshguard, now, stderr, stdout};

fn review(body: &[u8]) -> Result<admission::Reviewed, ReviewError> {
    admission::review(
        body,
        Webhook::Validate,
        &Config::default(),
        &NamespaceMap::default(),
        now(),
    )
}

fn err(body: &[u8]) -> String {
    match review(body) {
        Ok(r) => panic!(
            "expected an error, got {}",
            String::from_utf8_lossy(&r.body)
        ),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","namespace":"shop","object":"#;

#[test]
fn malformed_envelopes_are_errors_that_say_what_is_wrong() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "not valid JSON"),
        (b"{\"apiVersion\":\"admission.k8s.io/v1\",", "not valid JSON"),
        (b"\x00\xff\xfe garbage \x01", "not valid JSON"),
        (b"[1,2,3]", "not valid JSON"),
        (b"null", "not valid JSON"),
        (br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#, "admission.k8s.io/v1 only"),
        (br#"{"kind":"AdmissionReview","request":{"uid":"u"}}"#, "apiVersion"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#, "expected AdmissionReview"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#, "no request"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"Pod","version":"v1"},"operation":"CREATE"}}"#, "uid"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","kind":{"kind":"Pod","version":"v1"},"operation":"CREATE"}}"#, "uid"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE"}}"#, "request.kind"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod","version":"v1"},"operation":"PATCH"}}"#, "PATCH"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#, "not valid JSON"),
    ];
    for (body, needle) in cases {
        let e = err(body);
        assert!(
            e.contains(needle),
            "{:?}: {e}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let mut body = HEAD.to_owned();
    body.push_str(&"[".repeat(100_000));
    assert!(err(body.as_bytes()).contains("JSON"));
}

/// The decision as data: allowed, and (rule, action) of every finding.
fn decided(object: &str) -> (bool, Vec<(String, String)>) {
    let body = format!("{HEAD}{object}}}}}");
    let r = review(body.as_bytes()).unwrap_or_else(|e| panic!("{object}: {e}"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("response is JSON");
    assert_eq!(v["response"]["uid"], "u1", "{object}");
    let mut findings: Vec<(String, String)> = r
        .decision
        .findings
        .iter()
        .map(|f| (f.rule.to_string(), f.action.to_string()))
        .collect();
    findings.sort();
    (r.decision.allowed(), findings)
}

#[test]
fn objects_with_wrong_field_types_are_judged_as_if_the_fields_were_absent() {
    // (object with wrong types, the same object without those fields)
    let pairs = [
        (r#"{"metadata":5,"spec":"x"}"#, r#"{}"#),
        (
            r#"{"metadata":{"labels":[1],"annotations":"a","ownerReferences":{"x":1}},"spec":{"template":[]}}"#,
            r#"{"metadata":{},"spec":{}}"#,
        ),
        (
            r#"{"spec":{"template":{"metadata":{"labels":{"app":{"x":1}}},"spec":{"containers":"c","hostNetwork":"yes","securityContext":[]}}}}"#,
            r#"{"spec":{"template":{"metadata":{"labels":{}},"spec":{}}}}"#,
        ),
        (
            r#"{"spec":{"template":{"spec":{"serviceAccountName":7,"containers":[{"name":7,"ports":[{"containerPort":"15001"}],"securityContext":{"runAsUser":1337.5}}]}}}}"#,
            r#"{"spec":{"template":{"spec":{"containers":[{"ports":[{}],"securityContext":{}}]}}}}"#,
        ),
        (
            r#"{"spec":{"template":{"spec":{"containers":[null,5,{"name":"c"}]}}}}"#,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"c"}]}}}}"#,
        ),
        (r#"null"#, r#"{}"#),
        (r#"[]"#, r#"{}"#),
    ];
    for (wrong, absent) in pairs {
        let got = decided(wrong);
        assert_eq!(got, decided(absent), "{wrong} is judged like {absent}");
    }
}

#[test]
fn the_largest_captured_review_is_decided() {
    let body = std::fs::read(data(
        "reviews/0131-validate-CREATE-Deployment-catalog-bulky.json",
    ))
    .expect("fixture");
    assert!(body.len() > 1_400_000);
    let r = review(&body).expect("decided");
    assert!(!r.decision.allowed());
}

#[test]
fn review_command_reports_bad_input_with_exit_2() {
    for input in [&b""[..], b"{not json", b"\xff\xfe\x00", br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#] {
        let out = meshguard(&["review", "-"], Some(input));
        assert_eq!(out.status.code(), Some(2), "{:?}", String::from_utf8_lossy(input));
        assert!(stderr(&out).starts_with("meshguard: "), "{}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
    let out = meshguard(&["review", "does-not-exist.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does-not-exist.json"));
}

#[test]
fn audit_reports_unreadable_files_and_still_audits_the_others() {
    let dir = tempdir("unreadable");
    std::fs::write(
        dir.join("tabs.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: x\n",
    )
    .expect("write");
    std::fs::write(dir.join("empty.yaml"), "").expect("write");
    std::fs::write(dir.join("garbage.json"), b"\x00\xff{{{").expect("write");
    std::fs::write(dir.join("notes.txt"), "not a manifest").expect("write");
    std::fs::write(
        dir.join("ok.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec:\n  ports: [{port: 80}]\n",
    )
    .expect("write");
    let out = meshguard(&["audit", dir.to_str().expect("utf-8")], None);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("MG201"),
        "the good file is still audited: {text}"
    );
    let err = stderr(&out);
    assert!(err.contains("tabs.yaml:4"), "names file and line: {err}");
    assert!(err.contains("garbage.json"), "{err}");
    assert!(!err.contains("notes.txt"), "only .yaml/.yml/.json are read");
    assert!(!err.contains("empty.yaml"), "an empty file is no error");
}

#[test]
fn audit_of_an_empty_input_is_clean() {
    let out = meshguard(&["audit", "-"], Some(b""));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("0 objects"));
}

#[test]
fn audit_of_a_missing_path_is_an_input_error() {
    let out = meshguard(&["audit", "no/such/dir"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no/such/dir"));
}

#[test]
fn documents_that_are_not_kubernetes_objects_are_skipped() {
    let out = meshguard(
        &["audit", "-"],
        Some(b"just: values\n---\n- a\n- b\n---\nplain text\n"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("skipped 3 (not a Kubernetes object: no apiVersion and kind): document at <stdin>:1, document at <stdin>:3, document at <stdin>:6\n"),
        "{text}"
    );
    assert!(
        text.ends_with("3 objects, all skipped: nothing was judged\n"),
        "{text}"
    );
}

/// A fresh directory under the target dir (no temp-dir crate needed),
/// unique per call: process id and a counter, so two tests (threads of one
/// `cargo test` process, or a name used twice) never share one.
pub fn tempdir(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

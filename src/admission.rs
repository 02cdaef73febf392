//! AdmissionReview in, AdmissionReview out: the one code path shared by
//! `meshguard review` and the webhook server, so they can never disagree.
//!
//! The envelope is parsed strictly (a body that is not an
//! `admission.k8s.io/v1` AdmissionReview is a `ReviewError`, which the server
//! answers with 400), the objects inside leniently (see `object`). The body
//! is scanned once: the object is read straight into the view the rules
//! need as soon as its kind is known (see `request`), the old object kept
//! as raw text until ratcheting needs it. No `serde_json::Value` of the
//! whole object on the hot path.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::engine::{self, Decision, OldObject, Operation, Request, Webhook};
use crate::lenient::Labels;
use crate::mesh::MeshIndex;
use crate::object::{Kind, Object};
use crate::rules::Action;

/// Where the namespace labels come from (a static map, a watched cluster).
pub trait NamespaceLookup {
    fn labels(&self, namespace: &str) -> Option<Arc<Labels<'static>>>;
}

impl NamespaceLookup for crate::namespaces::NamespaceMap {
    fn labels(&self, namespace: &str) -> Option<Arc<Labels<'static>>> {
        crate::namespaces::NamespaceMap::labels(self, namespace)
    }
}

/// Why a body is not an AdmissionReview we can answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("body is not valid JSON for an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "apiVersion is {0:?}; meshguard serves admission.k8s.io/v1 only (set admissionReviewVersions: [v1])"
    )]
    ApiVersion(String),
    #[error("kind is {0:?}, expected AdmissionReview")]
    Kind(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("request.uid is missing or empty")]
    NoUid,
    #[error("request.kind is missing")]
    NoKind,
    #[error("request.operation {0:?} is not CREATE, UPDATE, DELETE or CONNECT")]
    Operation(String),
    #[error("request.object is not a valid object: {0}")]
    Object(serde_json::Error),
}

mod json;
mod request;

use request::{ObjectIn, OnePass, RequestFields, RequestIn, Str};

#[derive(Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>, 'de: 'a"))]
struct ReviewIn<'a, R> {
    // `Str`, not `Cow<str>`: serde's `Option<Cow<str>>` never borrows.
    #[serde(borrow, rename = "apiVersion")]
    api_version: Option<Str<'a>>,
    #[serde(borrow)]
    kind: Option<Str<'a>>,
    request: Option<R>,
}

/// The request part of a review, parsed and checked.
#[derive(Debug)]
pub struct ParsedReview<'a> {
    pub uid: Cow<'a, str>,
    pub kind: Kind,
    pub namespace: Cow<'a, str>,
    pub operation: Operation,
    pub subresource: bool,
    pub dry_run: bool,
    pub object: Option<Object<'a>>,
    old_object: Option<&'a str>,
}

/// Parses and checks an AdmissionReview body, in one pass over it (see
/// `request`), with the quick reader (`json`). A body it refuses is read
/// again by the reference reader, whose answer (a review or the error) is
/// then the answer.
pub fn parse(body: &[u8]) -> Result<ParsedReview<'_>, ReviewError> {
    match read_quick(body) {
        Some(review) => check(review.api_version, review.kind, review.request.map(|r| r.0)),
        None => parse_reference(body),
    }
}

/// The review as the quick reader reads it, or `None` when it leaves the
/// body to the reference reader.
fn read_quick(body: &[u8]) -> Option<ReviewIn<'_, OnePass<'_>>> {
    let text = std::str::from_utf8(body).ok()?;
    json::from_str(text).ok()
}

/// `parse` with serde_json alone: what defines every answer, and what the
/// tests and the fuzz target hold `parse` to. The one-pass reader first;
/// a body it refuses is read again by `RequestIn`, whose error is then the
/// answer.
pub fn parse_reference(body: &[u8]) -> Result<ParsedReview<'_>, ReviewError> {
    match serde_json::from_slice::<ReviewIn<'_, OnePass<'_>>>(body) {
        Ok(review) => check(review.api_version, review.kind, review.request.map(|r| r.0)),
        Err(_) => {
            let review: ReviewIn<'_, RequestIn<'_>> = serde_json::from_slice(body)?;
            check(
                review.api_version,
                review.kind,
                review.request.map(Into::into),
            )
        }
    }
}

/// Checks the envelope and reads the object if it was not read yet.
fn check<'a>(
    api_version: Option<Str<'a>>,
    review_kind: Option<Str<'a>>,
    request: Option<RequestFields<'a>>,
) -> Result<ParsedReview<'a>, ReviewError> {
    match api_version.as_ref().map(|s| s.0.as_ref()) {
        Some("admission.k8s.io/v1") => {}
        other => return Err(ReviewError::ApiVersion(other.unwrap_or("").to_owned())),
    }
    match review_kind.as_ref().map(|s| s.0.as_ref()) {
        Some("AdmissionReview") => {}
        other => return Err(ReviewError::Kind(other.unwrap_or("").to_owned())),
    }
    let request = request.ok_or(ReviewError::NoRequest)?;
    let uid = request
        .uid
        .filter(|u| !u.is_empty())
        .ok_or(ReviewError::NoUid)?;
    let gvk = request.kind.ok_or(ReviewError::NoKind)?;
    let operation_text = request.operation.unwrap_or_default();
    let operation = Operation::parse(&operation_text)
        .ok_or_else(|| ReviewError::Operation(operation_text.into_owned()))?;
    let kind = Kind::from_gvk(&gvk.group, &gvk.version, &gvk.kind);
    let subresource = request.sub_resource.is_some_and(|s| !s.is_empty());
    // Only objects meshguard judges are kept; DELETE carries none. One read
    // before a `subResource` that came after it is dropped here.
    let object = match request.object {
        _ if kind == Kind::Other || subresource => None,
        ObjectIn::Read(object) => object,
        ObjectIn::Raw(Some(raw)) => {
            Some(Object::from_json(kind, raw).map_err(ReviewError::Object)?)
        }
        ObjectIn::Raw(None) => None,
    };
    Ok(ParsedReview {
        uid,
        kind,
        namespace: request.namespace.unwrap_or_default(),
        operation,
        subresource,
        dry_run: request.dry_run.unwrap_or(false),
        object,
        old_object: request.old_object,
    })
}

/// A decided review: what the engine said and the response body.
#[derive(Debug)]
pub struct Reviewed {
    pub kind: Kind,
    pub operation: Operation,
    pub dry_run: bool,
    pub decision: Decision,
    /// The serialized AdmissionReview response.
    pub body: Vec<u8>,
}

impl ParsedReview<'_> {
    /// The namespace whose labels the decision needs; `None` for a
    /// Namespace (judged by its own labels) or a cluster-scoped object.
    pub fn context_namespace(&self) -> Option<&str> {
        if self.kind == Kind::Namespace {
            return None;
        }
        let ns = match self.namespace.as_ref() {
            "" => self
                .object
                .as_ref()
                .and_then(|o| o.meta.namespace.as_str())
                .unwrap_or(""),
            ns => ns,
        };
        (!ns.is_empty()).then_some(ns)
    }
}

/// Decides one AdmissionReview body and renders the response (`meshguard
/// review`; the server runs `parse` and `decide` with its own namespace
/// look-up in between).
pub fn review(
    body: &[u8],
    webhook: Webhook,
    config: &Config,
    namespaces: &dyn NamespaceLookup,
    now: Timestamp,
) -> Result<Reviewed, ReviewError> {
    let parsed = parse(body)?;
    let labels = parsed
        .context_namespace()
        .and_then(|ns| namespaces.labels(ns));
    Ok(decide(&parsed, webhook, config, labels.as_deref(), now))
}

/// Decides a parsed review given its namespace's labels.
pub fn decide(
    parsed: &ParsedReview<'_>,
    webhook: Webhook,
    config: &Config,
    namespace_labels: Option<&Labels<'_>>,
    now: Timestamp,
) -> Reviewed {
    decide_in_mesh(parsed, webhook, config, namespace_labels, None, now)
}

/// Decides a parsed review; with the mesh index, MG5xx judge it too (SPEC
/// section 10: the object under review in place of its old version).
pub fn decide_in_mesh(
    parsed: &ParsedReview<'_>,
    webhook: Webhook,
    config: &Config,
    namespace_labels: Option<&Labels<'_>>,
    mesh: Option<&MeshIndex>,
    now: Timestamp,
) -> Reviewed {
    let request = Request {
        operation: parsed.operation,
        kind: parsed.kind,
        namespace: &parsed.namespace,
        object: parsed.object.as_ref(),
        old_object: parsed.old_object.map(OldObject::Json),
        subresource: parsed.subresource,
    };
    let decision = engine::evaluate_in_mesh(&request, config, namespace_labels, mesh, now, webhook);
    let body = render(&parsed.uid, &decision, webhook);
    Reviewed {
        kind: parsed.kind,
        operation: parsed.operation,
        dry_run: parsed.dry_run,
        decision,
        body,
    }
}

#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(
        rename = "auditAnnotations",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    audit_annotations: BTreeMap<&'static str, String>,
    #[serde(rename = "patchType", skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

#[derive(Serialize)]
struct StatusOut {
    code: u16,
    reason: &'static str,
    message: String,
}

/// kubectl prints each warning as `Warning: ...`; the API server may cut
/// warnings longer than 256 characters, so we cut them ourselves, cleanly.
const MAX_WARNING: usize = 256;

/// Renders the AdmissionReview response for a decision.
pub fn render(uid: &str, decision: &Decision, webhook: Webhook) -> Vec<u8> {
    let allowed = decision.allowed();
    let status = (!allowed).then(|| StatusOut {
        code: 403,
        reason: "Forbidden",
        message: denial_message(decision),
    });
    let warnings = decision
        .with_action(Action::Warn)
        .map(|f| {
            let ratcheted = if f.ratcheted {
                "(not denied: already broken before this update) "
            } else {
                ""
            };
            // One allocation of the exact size.
            let parts = [
                ratcheted,
                f.rule.as_str(),
                " ",
                f.rule.name(),
                ": ",
                &f.message,
            ];
            truncate(parts.concat(), MAX_WARNING)
        })
        .collect();
    let mut audit_annotations: BTreeMap<&'static str, String> = BTreeMap::new();
    for f in decision.with_action(Action::Audit) {
        let entry = audit_annotations.entry(f.rule.as_str()).or_default();
        if !entry.is_empty() {
            entry.push_str("; ");
        }
        let _ = write!(entry, "{}: {}", f.path, f.message);
    }
    let ops: Vec<_> = decision
        .mutations
        .iter()
        .flat_map(|m| m.ops.iter())
        .collect();
    let (patch_type, patch) = if webhook == Webhook::Mutate && !ops.is_empty() {
        let json = serde_json::to_vec(&ops).expect("patch operations always serialize");
        (
            Some("JSONPatch"),
            Some(base64::engine::general_purpose::STANDARD.encode(json)),
        )
    } else {
        (None, None)
    };
    let out = ReviewOut {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed,
            status,
            warnings,
            audit_annotations,
            patch_type,
            patch,
        },
    };
    // Sized once for the usual answer (envelope, uid, a few warnings), so
    // the writer does not grow it step by step.
    let mut body = Vec::with_capacity(1024);
    serde_json::to_writer(&mut body, &out).expect("the response always serializes");
    body
}

/// The 403 message: every deny-level violation, what is wrong and how to fix
/// it.
fn denial_message(decision: &Decision) -> String {
    let denied: Vec<_> = decision.with_action(Action::Deny).collect();
    let mut msg = format!(
        "meshguard denied the request: {} violation{}",
        denied.len(),
        if denied.len() == 1 { "" } else { "s" }
    );
    for f in denied {
        let _ = write!(
            msg,
            "\n- {} {} at {}: {}. Fix: {}",
            f.rule,
            f.rule.name(),
            f.path,
            f.message,
            f.fix
        );
    }
    msg
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max - '…'.len_utf8();
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kube-apiserver sends is read by the quick reader, never left
    /// to the reference: the quick path is the path real traffic takes.
    #[test]
    fn the_quick_reader_reads_every_recorded_review() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reviews");
        let mut read = 0;
        for entry in std::fs::read_dir(dir).expect("the recorded reviews") {
            let path = entry.expect("an entry").path();
            let body = std::fs::read(&path).expect("a review");
            assert!(
                read_quick(&body).is_some(),
                "{} left to the reference",
                path.display()
            );
            read += 1;
        }
        assert_eq!(read, 122);
        let bench = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data");
        for name in [
            "admissionreview-deployment.json",
            "admissionreview-virtualservice.json",
        ] {
            let body = std::fs::read(bench.join(name)).expect("a bench review");
            assert!(read_quick(&body).is_some(), "{name}");
        }
    }

    #[test]
    fn bodies_the_quick_reader_refuses_get_the_reference_answer() {
        let review = |request: &str| {
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
            )
        };
        let ok = review(
            r#"{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"metadata":{"name":"a\ud83d\ude00"}}}"#,
        );
        // A surrogate pair: refused by the quick reader, read by serde_json.
        assert!(read_quick(ok.as_bytes()).is_none());
        let parsed = parse(ok.as_bytes()).expect("the reference reads it");
        assert_eq!(
            parsed.object.map(|o| o.name().to_owned()).as_deref(),
            Some("a😀")
        );
        // Not UTF-8 in a string no rule reads: serde_json has always read it.
        let mut bytes = review(r#"{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"x":"\xff"}}}"#).into_bytes();
        let at = bytes
            .windows(4)
            .position(|w| w == b"\\xff")
            .expect("the marker");
        bytes.splice(at..at + 4, [0xff]);
        assert!(read_quick(&bytes).is_none());
        assert!(parse(&bytes).is_ok());
        // Broken JSON: the reference reader's message.
        let broken = review(
            r#"{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"x":[1 2]}}}"#,
        );
        let err = parse(broken.as_bytes()).expect_err("broken");
        assert_eq!(
            err.to_string(),
            parse_reference(broken.as_bytes())
                .expect_err("broken")
                .to_string()
        );
        assert!(
            err.to_string().starts_with("body is not valid JSON"),
            "{err}"
        );
    }

    /// Annotations the view does not keep are still checked as reading
    /// them would check them: leaving them unread refuses what reading
    /// them refused, with the same message (the messages of 85dc589, which
    /// read every annotation).
    #[test]
    fn annotations_left_unread_are_checked_as_if_read() {
        let review = |value: &[u8]| {
            let mut body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","object":{"metadata":{"annotations":{"other":"#.to_vec();
            body.extend_from_slice(value);
            body.extend_from_slice(
                br#"}},"spec":{"template":{"spec":{"serviceAccountName":"a"}}}}}}"#,
            );
            body
        };
        for (value, message) in [
            (
                &b"1e400"[..],
                "request.object is not a valid object: number out of range at line 1 column 41",
            ),
            (
                &b"\"\\ud800\""[..],
                "request.object is not a valid object: unexpected end of hex escape at line 1 column 44",
            ),
            (
                &b"\"\xff\""[..],
                "body is not valid JSON for an AdmissionReview: invalid unicode code point at line 1 column 209",
            ),
        ] {
            let body = review(value);
            let err = parse(&body).expect_err("refused");
            assert_eq!(err.to_string(), message);
            assert_eq!(
                err.to_string(),
                parse_reference(&body).expect_err("refused").to_string()
            );
        }
        // What reading accepted, leaving unread accepts.
        for value in [
            &b"1e300"[..],
            b"{\"a\":1e400}",
            b"\"\\u00e9\"",
            b"[true,null]",
        ] {
            assert!(parse(&review(value)).is_ok());
        }
    }
}

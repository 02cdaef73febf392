//! `--format json`: one object with summary, findings and patches, the
//! schema of SPEC section 7 (plus `path` on findings, `source` on patches,
//! `errors` for unreadable input, `notes` for unserved API versions, and
//! the `skipped` count and list: SPEC section 1).

use serde::Serialize;

use crate::audit::AuditReport;
use crate::mutate::MutationId;
use crate::rules::{Action, RuleId};

#[derive(Serialize)]
struct Out<'a> {
    summary: Summary,
    findings: Vec<FindingOut<'a>>,
    patches: Vec<PatchOut<'a>>,
    skipped: Vec<SkippedOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<NoteOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ErrorOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    posture: Option<super::posture::PostureOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SkippedOut<'a> {
    api_version: &'a str,
    kind: &'a str,
    namespace: &'a str,
    object: &'a str,
    source: String,
    /// A stable code (`unjudged-kind`, `controller-owned`, ...).
    reason: &'static str,
    /// The same for people.
    why: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NoteOut<'a> {
    api_version: &'a str,
    kind: &'a str,
    namespace: &'a str,
    object: &'a str,
    source: String,
    message: &'a str,
}

#[derive(Serialize)]
struct Summary {
    objects: usize,
    judged: usize,
    skipped: usize,
    deny: usize,
    warn: usize,
    audit: usize,
    patches: usize,
}

#[derive(Serialize)]
struct FindingOut<'a> {
    rule: RuleId,
    name: &'static str,
    action: Action,
    kind: &'a str,
    namespace: &'a str,
    object: &'a str,
    source: String,
    path: &'a str,
    message: &'a str,
    fix: &'a str,
}

#[derive(Serialize)]
struct PatchOut<'a> {
    mutation: MutationId,
    kind: &'a str,
    namespace: &'a str,
    object: &'a str,
    source: String,
    patch: &'a [json_patch::PatchOperation],
}

#[derive(Serialize)]
struct ErrorOut {
    source: String,
    message: String,
}

pub fn render(report: &AuditReport) -> String {
    let mut findings = Vec::new();
    let mut patches = Vec::new();
    let mut notes = Vec::new();
    for o in &report.audited {
        for note in &o.notes {
            notes.push(NoteOut {
                api_version: &o.api_version,
                kind: &o.kind,
                namespace: &o.namespace,
                object: &o.name,
                source: o.source.to_string(),
                message: note,
            });
        }
        for f in &o.findings {
            findings.push(FindingOut {
                rule: f.rule,
                name: f.rule.name(),
                action: f.action,
                kind: &o.kind,
                namespace: &o.namespace,
                object: &o.name,
                source: o.source.to_string(),
                path: &f.path,
                message: &f.message,
                fix: &f.fix,
            });
        }
        for m in &o.mutations {
            patches.push(PatchOut {
                mutation: m.id,
                kind: &o.kind,
                namespace: &o.namespace,
                object: &o.name,
                source: o.source.to_string(),
                patch: &m.ops,
            });
        }
    }
    let out = Out {
        summary: Summary {
            objects: report.objects,
            judged: report.judged(),
            skipped: report.skipped.len(),
            deny: report.count(Action::Deny),
            warn: report.count(Action::Warn),
            audit: report.count(Action::Audit),
            patches: report.patch_count(),
        },
        findings,
        patches,
        skipped: report
            .skipped
            .iter()
            .map(|s| SkippedOut {
                api_version: &s.object.api_version,
                kind: &s.object.kind,
                namespace: &s.object.namespace,
                object: &s.object.name,
                source: s.object.source.to_string(),
                reason: s.reason.code(),
                why: s.reason.text(),
            })
            .collect(),
        notes,
        errors: report
            .errors
            .iter()
            .map(|e| ErrorOut {
                source: e.source.to_string(),
                message: e.message.clone(),
            })
            .collect(),
        posture: report.posture.as_ref().map(super::posture::json),
    };
    let mut text = serde_json::to_string_pretty(&out).expect("the report always serializes");
    text.push('\n');
    text
}

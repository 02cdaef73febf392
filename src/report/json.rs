//! `--format json`: one object with summary, findings and patches, the
//! schema of SPEC section 7 (plus `path` on findings, `source` on patches
//! and `errors` for unreadable input).

use serde::Serialize;

use crate::audit::AuditReport;
use crate::mutate::MutationId;
use crate::rules::{Action, RuleId};

#[derive(Serialize)]
struct Out<'a> {
    summary: Summary,
    findings: Vec<FindingOut<'a>>,
    patches: Vec<PatchOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ErrorOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    posture: Option<super::posture::PostureOut<'a>>,
}

#[derive(Serialize)]
struct Summary {
    objects: usize,
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
    for o in &report.audited {
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
            deny: report.count(Action::Deny),
            warn: report.count(Action::Warn),
            audit: report.count(Action::Audit),
            patches: report.patch_count(),
        },
        findings,
        patches,
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

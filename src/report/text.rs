//! `--format text`: findings grouped by object, each with its rule, where,
//! what and how to fix it, then a summary line.

use std::fmt::Write as _;

use crate::audit::AuditReport;
use crate::rules::Action;

pub fn render(report: &AuditReport) -> String {
    let mut out = String::new();
    for o in &report.audited {
        let _ = writeln!(out, "{}: {} {}", o.source, o.kind, o.qualified_name());
        for f in &o.findings {
            let _ = writeln!(
                out,
                "  {:<6} {} {}: {}",
                f.action,
                f.rule,
                f.rule.name(),
                f.message
            );
            let _ = writeln!(out, "         at {}", f.path);
            let _ = writeln!(out, "         fix: {}", f.fix);
        }
        for m in &o.mutations {
            for op in &m.ops {
                let op = serde_json::to_string(op).expect("patch operations always serialize");
                let _ = writeln!(
                    out,
                    "  {:<6} {} {}: {}",
                    "patch",
                    m.id.as_str(),
                    m.id.name(),
                    op
                );
            }
        }
        out.push('\n');
    }
    for s in &report.skipped {
        let _ = writeln!(
            out,
            "{s}: skipped: not a Kubernetes object (no apiVersion/kind)"
        );
    }
    for e in &report.errors {
        let _ = writeln!(out, "{}: error: {}", e.source, e.message);
    }
    if let Some(posture) = &report.posture {
        out.push_str(&super::posture::text(posture));
    }
    let _ = writeln!(
        out,
        "{} objects: {} deny, {} warn, {} audit, {} patches{}",
        report.objects,
        report.count(Action::Deny),
        report.count(Action::Warn),
        report.count(Action::Audit),
        report.patch_count(),
        if report.errors.is_empty() {
            String::new()
        } else {
            format!(", {} input errors", report.errors.len())
        }
    );
    out
}

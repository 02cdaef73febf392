//! `--format text`: findings grouped by object, each with its rule, where,
//! what and how to fix it; a line per skip reason naming what was not
//! judged; then a summary line.

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
        for note in &o.notes {
            let _ = writeln!(out, "  {:<6} {note}", "note");
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
    skipped_lines(&mut out, report);
    for e in &report.errors {
        let _ = writeln!(out, "{}: error: {}", e.source, e.message);
    }
    let errors = if report.errors.is_empty() {
        String::new()
    } else {
        format!(", {} input errors", report.errors.len())
    };
    if report.nothing_judged() {
        let _ = writeln!(
            out,
            "{} objects, all skipped: nothing was judged{errors}",
            report.objects
        );
        return out;
    }
    if let Some(posture) = &report.posture {
        out.push_str(&super::posture::text(posture));
    }
    let _ = writeln!(
        out,
        "{} objects ({} judged, {} skipped): {} deny, {} warn, {} audit, {} patches{errors}",
        report.objects,
        report.judged(),
        report.skipped.len(),
        report.count(Action::Deny),
        report.count(Action::Warn),
        report.count(Action::Audit),
        report.patch_count(),
    );
    out
}

/// Names listed per skip reason; the rest are counted (`--format json`
/// lists every one).
const NAMED: usize = 10;

/// One line per reason: how many, why, and which.
fn skipped_lines(out: &mut String, report: &AuditReport) {
    for (reason, objects) in report.skipped_by_reason() {
        let names: Vec<String> = objects
            .iter()
            .take(NAMED)
            .map(|s| {
                if s.object.kind.is_empty() && s.object.name.is_empty() {
                    s.object.describe()
                } else {
                    format!("{} at {}", s.object.describe(), s.object.source)
                }
            })
            .collect();
        let more = match objects.len().saturating_sub(NAMED) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let _ = writeln!(
            out,
            "skipped {} ({}): {}{more}",
            objects.len(),
            reason.text(),
            names.join(", ")
        );
    }
}

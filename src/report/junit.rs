//! `--format junit`: JUnit XML, what CI servers (GitLab, Jenkins, Azure
//! Pipelines) show as test results. One test suite per input file, one test
//! case per object with findings; the findings at or above `--fail-on` are
//! the case's failure (so failed cases and the exit code agree), the others
//! are listed in its output. An unreadable file is a case with an error.
//! Clean objects are counted in their suite's `tests` but not listed;
//! objects not judged are `<skipped>` cases naming the reason (SPEC
//! section 1: skipped is not clean).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::audit::{AuditReport, AuditedObject, InputError, SkippedObject};
use crate::report::FailOn;

/// What one input file contributed.
#[derive(Default)]
struct Suite<'r> {
    objects: Vec<&'r AuditedObject>,
    errors: Vec<&'r InputError>,
    skipped: Vec<&'r SkippedObject>,
}

pub fn render(report: &AuditReport, fail_on: FailOn) -> String {
    let mut suites: BTreeMap<&str, Suite<'_>> = BTreeMap::new();
    for file in report.objects_by_file.keys() {
        suites.entry(file).or_default();
    }
    for o in &report.audited {
        suites.entry(&o.source.file).or_default().objects.push(o);
    }
    for e in &report.errors {
        suites.entry(&e.source.file).or_default().errors.push(e);
    }
    for s in &report.skipped {
        suites
            .entry(&s.object.source.file)
            .or_default()
            .skipped
            .push(s);
    }
    let failing = |o: &AuditedObject| o.findings.iter().any(|f| fail_on.includes(f.action));
    // Objects without findings or patches are passed tests: counted, not
    // listed.
    let tests = |file: &str, suite: &Suite<'_>| {
        let read = report.objects_by_file.get(file).copied().unwrap_or(0);
        read.max(suite.objects.len() + suite.skipped.len()) + suite.errors.len()
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"meshguard\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
        suites.iter().map(|(f, s)| tests(f, s)).sum::<usize>(),
        report.audited.iter().filter(|o| failing(o)).count(),
        report.errors.len(),
        report.skipped.len()
    );
    for (file, suite) in &suites {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            escape(file),
            tests(file, suite),
            suite.objects.iter().filter(|o| failing(o)).count(),
            suite.errors.len(),
            suite.skipped.len()
        );
        for o in &suite.objects {
            case(&mut out, o, fail_on);
        }
        for s in &suite.skipped {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\">\n      <skipped message=\"{}\"/>\n    </testcase>",
                escape(&s.object.source.to_string()),
                escape(&s.object.describe()),
                escape(&format!("not judged: {}", s.reason.text()))
            );
        }
        for e in &suite.errors {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"read {}\">\n      <error message=\"{}\"/>\n    </testcase>",
                escape(file),
                escape(&e.source.to_string()),
                escape(&e.message)
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn case(out: &mut String, o: &AuditedObject, fail_on: FailOn) {
    let name = format!("{} {}", o.kind, o.qualified_name());
    let _ = writeln!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\">",
        escape(&o.source.to_string()),
        escape(&name)
    );
    let (failing, other): (Vec<_>, Vec<_>) =
        o.findings.iter().partition(|f| fail_on.includes(f.action));
    if let Some(first) = failing.first() {
        let ids: Vec<&str> = failing.iter().map(|f| f.rule.as_str()).collect();
        let mut body = String::new();
        for f in &failing {
            describe(&mut body, f);
        }
        let _ = writeln!(
            out,
            "      <failure message=\"{}\" type=\"{}\">{}</failure>",
            escape(&format!(
                "{} {}: {}",
                ids.join(", "),
                first.rule.name(),
                first.message
            )),
            first.action,
            escape(&body)
        );
    }
    if !other.is_empty() || !o.mutations.is_empty() || !o.notes.is_empty() {
        let mut body = String::new();
        for f in &other {
            describe(&mut body, f);
        }
        for note in &o.notes {
            let _ = writeln!(body, "note: {note}");
        }
        for m in &o.mutations {
            let _ = writeln!(body, "patch {} {}", m.id.as_str(), m.id.name());
        }
        let _ = writeln!(out, "      <system-out>{}</system-out>", escape(&body));
    }
    out.push_str("    </testcase>\n");
}

/// One finding as text: what, where, how to fix.
fn describe(out: &mut String, f: &crate::engine::Finding) {
    let _ = writeln!(
        out,
        "{} {} {} at {}: {}\nfix: {}",
        f.action,
        f.rule,
        f.rule.name(),
        f.path,
        f.message,
        f.fix
    );
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry at all
/// (controls other than tab, newline, carriage return) are dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_carry() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("x\u{1}y\tz\n"), "xy\tz\n");
    }
}

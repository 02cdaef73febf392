//! `--format sarif`: SARIF 2.1.0, what code-scanning tools (GitHub, GitLab,
//! Azure DevOps) read. One run; every rule of the catalogue is a
//! `reportingDescriptor` with its rationale and fix; every finding is a
//! result at its file and line, with the object and JSON path as a logical
//! location. Levels: deny -> error, warn -> warning, audit -> note. Pending
//! patches are not findings and are not reported here (use `json`); input
//! errors are tool notifications and make the invocation unsuccessful.

use serde_json::{Value, json};

use crate::audit::{AuditReport, Source};
use crate::rules::{Action, CATALOGUE};

fn level(action: Action) -> &'static str {
    match action {
        Action::Deny => "error",
        Action::Warn => "warning",
        Action::Audit | Action::Off => "note",
    }
}

/// A SARIF artifact location for a source file (`<stdin>` has no path).
fn location(source: &Source) -> Value {
    let uri: String = if source.file == "<stdin>" {
        "stdin".to_owned()
    } else {
        source
            .file
            .replace('\\', "/")
            .replace('%', "%25")
            .replace(' ', "%20")
    };
    let mut physical = json!({"artifactLocation": {"uri": uri}});
    if source.line > 0 {
        physical["region"] = json!({"startLine": source.line});
    }
    physical
}

pub fn render(report: &AuditReport) -> String {
    let rules: Vec<Value> = CATALOGUE
        .iter()
        .map(|r| {
            json!({
                "id": r.id_str,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.rationale},
                "help": {"text": format!("{}\n\nExample:\n{}", r.fix, r.example)},
                "defaultConfiguration": {"level": level(r.default_action)},
            })
        })
        .collect();
    let mut results = Vec::new();
    for o in &report.audited {
        let object = if o.namespace.is_empty() {
            format!("{}/{}", o.kind, o.name)
        } else {
            format!("{}/{}/{}", o.namespace, o.kind, o.name)
        };
        for f in &o.findings {
            results.push(json!({
                "ruleId": f.rule.as_str(),
                "ruleIndex": f.rule.index(),
                "level": level(f.action),
                "message": {"text": format!("{} {}: {}. Fix: {}", o.kind, o.name, f.message, f.fix)},
                "locations": [{
                    "physicalLocation": location(&o.source),
                    "logicalLocations": [{
                        "fullyQualifiedName": format!("{object}:{}", f.path),
                        "kind": "member",
                    }],
                }],
                "properties": {
                    "action": f.action.as_str(),
                    "kind": o.kind,
                    "namespace": o.namespace,
                    "object": o.name,
                    "path": f.path,
                },
            }));
        }
    }
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            json!({
                "level": "error",
                "message": {"text": e.message},
                "locations": [{"physicalLocation": location(&e.source)}],
            })
        })
        .collect();
    let out = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "meshguard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&out).expect("a JSON value always serializes");
    text.push('\n');
    text
}

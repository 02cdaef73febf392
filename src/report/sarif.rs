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

/// A file path as a URI reference: relative paths stay relative (to the
/// working directory, `%SRCROOT%`, where code scanning expects them),
/// absolute ones become `file://` URIs; every byte outside RFC 3986's
/// unreserved set and `/` is percent-encoded.
fn uri(file: &str) -> String {
    let file = file.replace('\\', "/");
    let file = file.strip_prefix("./").unwrap_or(&file);
    let mut out = String::with_capacity(file.len());
    if file.starts_with('/') {
        out.push_str("file://");
    }
    for b in file.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A SARIF physical location for a source (standard input and the cluster
/// have no file; they keep their name).
fn location(source: &Source) -> Value {
    let uri = match source.file.as_str() {
        "<stdin>" => "stdin".to_owned(),
        file => uri(file),
    };
    let mut physical = json!({"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}});
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
            // Stable across runs and lines: the same violation of the same
            // object is the same alert, and two violations on one line stay
            // two.
            let fingerprint = crate::metrics::content_hash(
                format!("{}|{}|{}|{}", f.rule, object, f.path, o.source.file).as_bytes(),
            );
            results.push(json!({
                "ruleId": f.rule.as_str(),
                "partialFingerprints": {"meshguardFinding/v1": fingerprint},
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
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the directory meshguard ran in"}}},
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

#[cfg(test)]
mod tests {
    use super::uri;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri("k8s/app.yaml"), "k8s/app.yaml");
        assert_eq!(uri("./k8s/app.yaml"), "k8s/app.yaml");
        assert_eq!(
            uri("/tmp/a b#c/x&<y>.yaml"),
            "file:///tmp/a%20b%23c/x%26%3Cy%3E.yaml"
        );
        assert_eq!(uri("k8s\\win.yaml"), "k8s/win.yaml");
        assert_eq!(uri("ünï.yaml"), "%C3%BCn%C3%AF.yaml");
    }
}

//! A small YAML emitter for JSON values, for reports that tools read as
//! YAML (`--format policyreport`, fed to `kubectl apply -f -`).
//!
//! Only the deserializer of serde-saphyr is linked, and one stream of JSON
//! documents is not an option: kubectl reads a stream whose first byte is
//! `{` as JSON and then fails at the `---` between documents. So this
//! writes block-style YAML with one rule that makes it unambiguous for
//! every YAML parser (YAML 1.1 and 1.2 alike): every string is a
//! double-quoted scalar, written with JSON's escapes, which YAML's
//! double-quoted style shares. Nothing is ever read as a boolean, a number
//! or null that was not one (`"y"`, `"off"`, `"1.16"` stay strings), and
//! any character is safe. Map keys that are plain words are written plain
//! for readability; any other key is quoted too.

use std::fmt::Write as _;

use serde_json::Value;

/// One YAML document (without the `---` separator), ending in a newline.
pub fn document(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => block_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => block_list(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

/// A scalar, or an empty map or list, on one line.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quoted(s),
        Value::Array(a) if a.is_empty() => "[]".to_owned(),
        Value::Object(m) if m.is_empty() => "{}".to_owned(),
        // Callers write non-empty collections as blocks.
        other => other.to_string(),
    }
}

/// A double-quoted scalar: JSON's string syntax is valid YAML here.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// A key that every YAML parser reads as this very string when plain:
/// letters, digits and `-_./`, starting with a letter, and not one of the
/// words YAML 1.1 reads as a boolean or null.
fn key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain { k.to_owned() } else { quoted(k) }
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn block_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    for (k, v) in map {
        indent(out, level);
        out.push_str(&key(k));
        out.push(':');
        entry_value(out, v, level);
    }
}

/// The value after `key:` or `- key:`; nested blocks go two columns in.
fn entry_value(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            block_map(out, m, level + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            block_list(out, a, level + 2);
        }
        scalar => {
            let _ = writeln!(out, " {}", inline(scalar));
        }
    }
}

fn block_list(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first entry shares the dash's line, the rest align
                // with it.
                for (i, (k, v)) in m.iter().enumerate() {
                    if i == 0 {
                        out.push(' ');
                    } else {
                        indent(out, level + 2);
                    }
                    out.push_str(&key(k));
                    out.push(':');
                    entry_value(out, v, level + 2);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                block_list(out, a, level + 2);
            }
            scalar => {
                debug_assert!(!is_block(scalar));
                let _ = writeln!(out, " {}", inline(scalar));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::document;

    fn round_trip(v: &Value) -> Value {
        let text = document(v);
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    }

    #[test]
    fn writes_block_yaml_with_quoted_strings() {
        let v = json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"app.kubernetes.io/managed-by": "meshguard"}},
            "results": [{"policy": "p", "n": 3, "ok": true}, {"policy": "q"}], "empty": [], "none": {}});
        assert_eq!(
            document(&v),
            // Keys in serde_json's (sorted) order; `n` is quoted: YAML 1.1
            // reads a plain n as false.
            "apiVersion: \"v1\"\nempty: []\nmetadata:\n  labels:\n    app.kubernetes.io/managed-by: \"meshguard\"\n  name: \"x\"\nnone: {}\nresults:\n  - \"n\": 3\n    ok: true\n    policy: \"p\"\n  - policy: \"q\"\n"
        );
    }

    #[test]
    fn strings_that_look_like_other_types_stay_strings() {
        let v = json!({"a": "y", "b": "off", "c": "1.16", "d": "null", "e": "", "f": "- x", "g": "#x",
            "h": "a: b", "i": "line\nbreak\t\"quoted\" \\ é \u{1}", "y": "key y", "on": 1, "2x": "digit key", "k k": "space"});
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn nested_lists_and_maps_round_trip() {
        let v = json!({"l": [[1, 2], [], [{"a": [{"b": {"c": "d"}}]}], "s"], "m": {"n": {"o": [null, false, -1.5]}}});
        assert_eq!(round_trip(&v), v);
        let top = json!([{"a": 1}, "b"]);
        assert_eq!(round_trip(&top), top);
    }
}

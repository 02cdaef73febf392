//! Splitting manifest text into documents with their line numbers.
//!
//! Manifests come as YAML multi-document streams, JSON objects (one or a
//! stream), and `List` kinds (`kubectl get -o yaml`). Each document keeps the
//! line it starts on, so findings can say `file:line`. A document that does
//! not parse is an error naming its line, computed in the whole file.

use serde_json::Value;

/// One parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based line of the document's first content line.
    pub line: usize,
    pub value: Value,
}

/// A document that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DocumentError {
    pub line: usize,
    pub message: String,
}

/// Parses a YAML or JSON stream into its documents (empty documents are
/// dropped; `List` kinds are not expanded here, see `expand_lists`).
pub fn split(text: &str) -> Result<Vec<Document>, DocumentError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{')
        && let Ok(docs) = split_json(text)
    {
        return Ok(docs);
    }
    split_yaml(text)
}

fn split_json(text: &str) -> Result<Vec<Document>, DocumentError> {
    let mut docs = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let offset = stream.byte_offset();
        match stream.next() {
            None => return Ok(docs),
            Some(Ok(value)) => {
                let skipped = text[offset..].len() - text[offset..].trim_start().len();
                let line = line_of(text, offset + skipped);
                docs.push(Document { line, value });
            }
            Some(Err(e)) => {
                return Err(DocumentError {
                    line: e.line(),
                    message: format!("invalid JSON: {e}"),
                });
            }
        }
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// True for a line that starts a new YAML document (`---`) or ends one
/// (`...`).
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

fn split_yaml(text: &str) -> Result<Vec<Document>, DocumentError> {
    let mut docs = Vec::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut start = 0;
    while start < lines.len() {
        let mut end = start + 1;
        while end < lines.len() && !is_marker(lines[end], "---") && !is_marker(lines[end], "...") {
            end += 1;
        }
        parse_chunk(&lines[start..end], start, &mut docs)?;
        start = end;
        // A `...` line only ends the document; the next one starts after it.
        if start < lines.len() && is_marker(lines[start], "...") {
            start += 1;
        }
    }
    Ok(docs)
}

fn parse_chunk(
    lines: &[&str],
    first: usize,
    docs: &mut Vec<Document>,
) -> Result<(), DocumentError> {
    let content = lines.iter().position(|l| {
        let t = l.trim();
        !(t.is_empty() || t.starts_with('#') || t == "---")
    });
    let Some(content) = content else {
        return Ok(());
    };
    let chunk = lines.concat();
    match serde_saphyr::from_str::<Value>(&chunk) {
        Ok(Value::Null) => Ok(()),
        Ok(value) => {
            docs.push(Document {
                line: first + content + 1,
                value,
            });
            Ok(())
        }
        Err(e) => {
            let line = e.location().map(|l| l.line() as usize).unwrap_or(1);
            Err(DocumentError {
                line: first + line,
                message: format!("invalid YAML: {}", plain_message(&e)),
            })
        }
    }
}

/// The parser's message without its rendered snippet or position (we give
/// our own line, counted in the whole file).
fn plain_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("").trim();
    match first.find(" at line ") {
        Some(i) => first[..i].to_owned(),
        None => first.to_owned(),
    }
}

/// Replaces every `List` document (`kind: List`, `NamespaceList`, ...) by
/// its items, which keep the list's line.
pub fn expand_lists(docs: Vec<Document>) -> Vec<Document> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let is_list = doc
            .value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"));
        match doc.value {
            Value::Object(mut map) if is_list && map.get("items").is_some_and(Value::is_array) => {
                if let Some(Value::Array(items)) = map.remove("items") {
                    let nested = items
                        .into_iter()
                        .map(|value| Document {
                            line: doc.line,
                            value,
                        })
                        .collect();
                    out.extend(expand_lists(nested));
                }
            }
            value => out.push(Document {
                line: doc.line,
                value,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_stream_keeps_start_lines() {
        let docs = split("# c\napiVersion: v1\nkind: A\n---\n\n---\n# x\nkind: B\n...\nkind: C\n")
            .expect("ok");
        let lines: Vec<usize> = docs.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![2, 8, 10]);
    }

    #[test]
    fn json_stream_and_single_object() {
        let docs = split("{\"kind\":\"A\"}\n\n{\"kind\":\"B\"}").expect("ok");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 3);
    }

    #[test]
    fn errors_carry_the_line_in_the_whole_file() {
        let err = split("kind: A\n---\nkind: B\nmetadata:\n\tname: x\n").expect_err("tab");
        assert!(err.line >= 4, "{err}");
        let err = split("{\"kind\": ").expect_err("truncated");
        assert!(
            err.message.contains("YAML") || err.message.contains("JSON"),
            "{err}"
        );
    }

    #[test]
    fn lists_are_expanded() {
        let docs = split("kind: List\nitems:\n- {kind: A}\n- {kind: B}\n").expect("ok");
        let docs = expand_lists(docs);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].value["kind"], "A");
    }
}

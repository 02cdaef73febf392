//! The namespace view: which labels each namespace has (SPEC section 2).
//!
//! Rules never fetch namespaces themselves; they get the labels from a view.
//! This module holds the static view (read from a file: what `GET
//! /api/v1/namespaces` returns, or Namespace documents) and the parsing of
//! Namespace documents shared with the audit. The live, watched view of a
//! cluster builds on the same map.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::lenient::{Labels, Obj};
use crate::object::Meta;

/// Labels by namespace name.
#[derive(Debug, Clone, Default)]
pub struct NamespaceMap {
    map: HashMap<String, Arc<Labels<'static>>>,
}

impl NamespaceMap {
    pub fn labels(&self, namespace: &str) -> Option<Arc<Labels<'static>>> {
        self.map.get(namespace).cloned()
    }

    pub fn insert(&mut self, namespace: impl Into<String>, labels: Labels<'static>) {
        self.map.insert(namespace.into(), Arc::new(labels));
    }

    pub fn remove(&mut self, namespace: &str) {
        self.map.remove(namespace);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Every namespace in the view.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Reads a namespace file: a `NamespaceList` (or any `List`, items with
    /// or without kind), or one or more Namespace documents, in YAML or JSON.
    pub fn load(path: &Path) -> Result<NamespaceMap, NamespaceFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| NamespaceFileError {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        NamespaceMap::parse(&text).map_err(|message| NamespaceFileError {
            file: path.display().to_string(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<NamespaceMap, String> {
        let docs = crate::documents::split(text).map_err(|e| e.to_string())?;
        let mut view = NamespaceMap::default();
        for doc in docs {
            view.add_document(&doc.value)?;
        }
        Ok(view)
    }

    fn add_document(&mut self, doc: &Value) -> Result<(), String> {
        if let Some(items) = doc.get("items").and_then(Value::as_array) {
            for item in items {
                self.add_document(item)?;
            }
            return Ok(());
        }
        match doc.get("kind").and_then(Value::as_str) {
            None | Some("Namespace") => {}
            Some(other) => {
                return Err(format!(
                    "expected Namespace documents or a NamespaceList, found kind {other}"
                ));
            }
        }
        let (name, labels) = namespace_labels(doc).ok_or("a Namespace without metadata.name")?;
        self.insert(name, labels);
        Ok(())
    }
}

/// The name and labels of a Namespace document, read leniently.
pub fn namespace_labels(doc: &Value) -> Option<(String, Labels<'static>)> {
    let meta = Obj::<Meta<'_>>::deserialize(doc.get("metadata")?).ok()?.0?;
    let name = meta.name.as_str()?.to_owned();
    let labels = meta.labels.0.unwrap_or_default().into_owned();
    Some((name, labels))
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read namespaces from {file}: {message}")]
pub struct NamespaceFileError {
    pub file: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_api_namespace_list_whose_items_have_no_kind() {
        let view = NamespaceMap::parse(
            r#"{"kind":"NamespaceList","apiVersion":"v1","items":[{"metadata":{"name":"shop","labels":{"istio-injection":"enabled"}}},{"metadata":{"name":"bare"}}]}"#,
        )
        .expect("list");
        assert_eq!(view.len(), 2);
        assert_eq!(
            view.labels("shop")
                .and_then(|l| l.get("istio-injection").map(str::to_owned))
                .as_deref(),
            Some("enabled")
        );
        assert!(view.labels("bare").is_some_and(|l| l.0.is_empty()));
    }

    #[test]
    fn reads_yaml_namespace_documents() {
        let view = NamespaceMap::parse(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {x: y}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
        )
        .expect("docs");
        assert_eq!(view.len(), 2);
    }

    #[test]
    fn rejects_other_kinds() {
        let err = NamespaceMap::parse("kind: Deployment\nmetadata: {name: x}\n")
            .expect_err("not a namespace");
        assert!(err.contains("Deployment"));
    }
}

//! What an audit did not judge, and why (SPEC section 1: an audit never
//! calls an object clean that it did not judge).
//!
//! Every object read is either judged (clean, or with findings and patches)
//! or skipped with one of these reasons; the reports count and name both.

use serde_json::Value;

use super::Source;
use crate::engine::Skip;
use crate::object::Kind;

/// Who an object is: enough to name it in a report and to point a
/// PolicyReport result at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub source: Source,
    /// As written (empty when absent).
    pub api_version: String,
    /// As written (empty when absent).
    pub kind: String,
    /// The namespace it is judged in (empty for cluster-scoped objects, and
    /// as written for kinds meshguard does not know).
    pub namespace: String,
    pub name: String,
    /// `metadata.uid`, when the object came from a cluster.
    pub uid: Option<String>,
}

impl ObjectRef {
    /// Reads the identity of a document. `judged` is the kind it is judged
    /// as: a namespaced judged object without a namespace lands in
    /// `default`, as with `kubectl apply`.
    pub fn read(source: Source, value: &Value, judged: Option<Kind>) -> ObjectRef {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
        let meta = value.get("metadata");
        let written = text(meta.and_then(|m| m.get("namespace")));
        let namespace = match judged {
            Some(Kind::Namespace) => String::new(),
            Some(_) if written.is_empty() => "default".to_owned(),
            _ => written,
        };
        ObjectRef {
            source,
            api_version: text(value.get("apiVersion")),
            kind: text(value.get("kind")),
            namespace,
            name: text(meta.and_then(|m| m.get("name"))),
            uid: meta
                .and_then(|m| m.get("uid"))
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
        }
    }

    /// `Kind namespace/name` (`Kind name` when cluster-scoped), or the
    /// source for a document that names nothing.
    pub fn describe(&self) -> String {
        match (self.kind.is_empty(), self.namespace.is_empty()) {
            (true, _) if self.name.is_empty() => format!("document at {}", self.source),
            (_, true) => format!("{} {}", self.kind, self.name).trim().to_owned(),
            (_, false) => format!("{} {}/{}", self.kind, self.namespace, self.name),
        }
    }
}

/// Why an object was not judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// No `apiVersion`/`kind` (a Helm values file, a kustomization).
    NotAnObject,
    /// A kind, or a version of a kind, whose schema meshguard does not know.
    UnjudgedKind,
    /// A Pod or ReplicaSet owned by a controller (which is judged instead).
    ControllerOwned,
    ExemptNamespace,
    /// Its namespace has `meshguard.io/mode: off`.
    ModeOff,
}

impl SkipReason {
    pub const ALL: [SkipReason; 5] = [
        SkipReason::NotAnObject,
        SkipReason::UnjudgedKind,
        SkipReason::ControllerOwned,
        SkipReason::ExemptNamespace,
        SkipReason::ModeOff,
    ];

    /// A stable machine-readable code (JSON `reason`).
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::NotAnObject => "not-an-object",
            SkipReason::UnjudgedKind => "unjudged-kind",
            SkipReason::ControllerOwned => "controller-owned",
            SkipReason::ExemptNamespace => "exempt-namespace",
            SkipReason::ModeOff => "mode-off",
        }
    }

    /// What it means, for people.
    pub fn text(self) -> &'static str {
        match self {
            SkipReason::NotAnObject => "not a Kubernetes object: no apiVersion and kind",
            SkipReason::UnjudgedKind => "a kind or API version meshguard does not judge",
            SkipReason::ControllerOwned => "owned by a controller, which is judged instead",
            SkipReason::ExemptNamespace => "in an exempt namespace",
            SkipReason::ModeOff => "its namespace has meshguard.io/mode=off",
        }
    }

    /// The audit's reason for an engine skip. The others (operation,
    /// subresource, no object) cannot happen in an audit, which judges
    /// every object as a CREATE.
    pub fn from_engine(skip: Skip) -> SkipReason {
        match skip {
            Skip::ControllerOwned => SkipReason::ControllerOwned,
            Skip::ExemptNamespace => SkipReason::ExemptNamespace,
            Skip::ModeOff => SkipReason::ModeOff,
            Skip::UnjudgedKind | Skip::Operation | Skip::Subresource | Skip::NoObject => {
                SkipReason::UnjudgedKind
            }
        }
    }
}

/// One object the audit did not judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedObject {
    pub object: ObjectRef,
    pub reason: SkipReason,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn source() -> Source {
        Source {
            file: "f.yaml".to_owned(),
            line: 3,
        }
    }

    #[test]
    fn reads_identity_with_the_namespace_it_is_judged_in() {
        let v = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "uid": "u-1"}});
        let r = ObjectRef::read(source(), &v, Some(Kind::Deployment));
        assert_eq!(
            (r.namespace.as_str(), r.name.as_str(), r.uid.as_deref()),
            ("default", "web", Some("u-1"))
        );
        assert_eq!(r.describe(), "Deployment default/web");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        assert_eq!(
            ObjectRef::read(source(), &ns, Some(Kind::Namespace)).describe(),
            "Namespace shop"
        );
        let unknown = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let r = ObjectRef::read(source(), &unknown, None);
        assert_eq!((r.namespace.as_str(), r.uid), ("", None));
    }

    #[test]
    fn a_document_without_identity_is_named_by_its_source() {
        let r = ObjectRef::read(source(), &json!({"replicas": 3}), None);
        assert_eq!(r.describe(), "document at f.yaml:3");
        let wrong_types = json!({"kind": 7, "metadata": {"name": ["x"]}});
        assert_eq!(
            ObjectRef::read(source(), &wrong_types, None).describe(),
            "document at f.yaml:3"
        );
    }
}

//! Mutations MGP1 and MGP2 (SPEC section 5) as RFC 6902 patches.
//!
//! Patches are minimal (one `add`), never overwrite a value the user set,
//! create a missing parent map instead of assuming it, and are idempotent:
//! the patched object yields no patch. Keys are escaped by `PointerBuf`
//! (`sidecar.istio.io~1inject`). Whether a mutation applies at all (exempt
//! namespace, mode `off`, operation) is the engine's decision; this module
//! only builds the patch.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{Config, MarkerForm};
use crate::injection::{INJECT, NS_INJECTION, REV};
use crate::object::{Body, Meta, Object};

/// The stable mutation ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MutationId {
    /// Namespace gets the injection label.
    MGP1,
    /// Pod template gets the injection marker.
    MGP2,
}

impl MutationId {
    pub const ALL: [MutationId; 2] = [MutationId::MGP1, MutationId::MGP2];

    pub fn as_str(self) -> &'static str {
        match self {
            MutationId::MGP1 => "MGP1",
            MutationId::MGP2 => "MGP2",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MutationId::MGP1 => "namespace-injection",
            MutationId::MGP2 => "sidecar-marker",
        }
    }
}

impl Serialize for MutationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One applied mutation and its operations.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub id: MutationId,
    pub ops: Vec<PatchOperation>,
}

/// MGP1: add the injection label to a Namespace that has neither
/// `istio-injection` nor `istio.io/rev` (even `disabled` is the user's
/// explicit choice, judged by MG301, never overwritten).
pub fn namespace_injection(object: &Object<'_>, config: &Config) -> Option<Mutation> {
    let Body::Namespace { metadata } = object.body else {
        return None;
    };
    if object.meta.label(NS_INJECTION).is_some() || object.meta.label(REV).is_some() {
        return None;
    }
    let (key, value) = match &config.revision {
        Some(rev) => (REV, rev.as_str()),
        None => (NS_INJECTION, "enabled"),
    };
    Some(Mutation {
        id: MutationId::MGP1,
        // Without a `metadata` map (a manifest's bare Namespace), the patch
        // creates it: `/metadata/labels` would not apply (found by fuzzing).
        ops: vec![add_to_map(
            &[],
            metadata.then_some(&object.meta),
            "labels",
            key,
            value,
        )],
    })
}

/// MGP2: add `sidecar.istio.io/inject: "true"` to a pod template that has
/// neither the label nor the annotation, unless it uses the host network.
pub fn sidecar_marker(object: &Object<'_>, config: &Config) -> Option<Mutation> {
    let template = object.pod_template()?;
    if template
        .spec
        .get()
        .is_some_and(|s| s.host_network.is_true())
    {
        return None;
    }
    let meta = template.metadata.get();
    if meta.is_some_and(|m| m.label(INJECT).is_some() || m.annotation(INJECT).is_some()) {
        return None;
    }
    let map = match config.mutations.sidecar_marker_as {
        MarkerForm::Label => "labels",
        MarkerForm::Annotation => "annotations",
    };
    Some(Mutation {
        id: MutationId::MGP2,
        ops: vec![add_to_map(
            object.kind.template_path(),
            meta,
            map,
            INJECT,
            "true",
        )],
    })
}

/// Builds the one `add` that sets `<base>/metadata/<map>/<key>`, creating
/// `metadata` or the map when absent.
fn add_to_map(
    base: &[&str],
    meta: Option<&Meta<'_>>,
    map: &str,
    key: &str,
    value: &str,
) -> PatchOperation {
    let entry = |k: &str, v: Value| Value::Object(Map::from_iter([(k.to_owned(), v)]));
    let present = |m: &Meta<'_>| -> bool {
        if map == "labels" {
            m.labels.is_present()
        } else {
            m.annotations.is_present()
        }
    };
    let (tokens, value): (Vec<&str>, Value) = match meta {
        None => (
            [base, &["metadata"]].concat(),
            entry(map, entry(key, Value::from(value))),
        ),
        Some(m) if !present(m) => (
            [base, &["metadata", map]].concat(),
            entry(key, Value::from(value)),
        ),
        Some(_) => ([base, &["metadata", map, key]].concat(), Value::from(value)),
    };
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(tokens),
        value,
    })
}

/// Applies mutations to a JSON document (the audit's "what the cluster would
/// store"). Fails only if a patch does not fit the document, which would be a
/// bug in the patch builder.
pub fn apply(doc: &mut Value, mutations: &[Mutation]) -> Result<(), json_patch::PatchError> {
    for m in mutations {
        json_patch::patch(doc, &m.ops)?;
    }
    Ok(())
}

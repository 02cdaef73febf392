//! The offline audit: the same rules over manifest files (SPEC section 7).
//!
//! Each object is judged as the cluster would judge it on CREATE: the
//! mutating webhook runs first and its patches are applied, then the
//! validating webhook judges the patched object. A missing marker that
//! meshguard would add is therefore reported as a pending patch, not as a
//! violation (SPEC MG104), and Namespaces of the input give their (patched)
//! labels to the objects in them. Reading files is here; judging is the
//! engine's.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::Value;

mod skipped;

pub use skipped::{ObjectRef, SkipReason, SkippedObject};

use crate::config::Config;
use crate::documents::{self, Document};
use crate::engine::{self, Finding, Operation, Request, Webhook};
use crate::legacy_api::{self, Unserved};
use crate::lenient::Labels;
use crate::mutate::{self, Mutation};
use crate::namespaces::namespace_labels;
use crate::object::{Kind, Object};

/// Where an object came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Line 0: the file as a whole (it could not be read).
        if self.line == 0 {
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// One judged object and what the audit found about it.
#[derive(Debug, Clone)]
pub struct AuditedObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub source: Source,
    pub findings: Vec<Finding>,
    pub mutations: Vec<Mutation>,
    /// `apiVersion` as written.
    pub api_version: String,
    /// `metadata.uid`, when known (objects read from a cluster).
    pub uid: Option<String>,
    /// What the reader should know beyond the findings (an API version
    /// that is no longer served).
    pub notes: Vec<String>,
}

impl AuditedObject {
    /// `namespace/name`, or the name alone for a cluster-scoped object.
    pub fn qualified_name(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// A file or document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub source: Source,
    pub message: String,
}

/// The whole audit.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    /// Every object read, judged or not.
    pub objects: usize,
    /// The same, by input file (`<stdin>` for standard input).
    pub objects_by_file: std::collections::BTreeMap<String, usize>,
    /// Objects with findings, patches or notes, in input order.
    pub audited: Vec<AuditedObject>,
    /// Judged objects without findings, patches or notes, in input order.
    pub passed: Vec<ObjectRef>,
    pub errors: Vec<InputError>,
    /// Objects (and documents) not judged, with the reason, in input order.
    pub skipped: Vec<SkippedObject>,
}

/// What to audit.
#[derive(Debug, Clone, Default)]
pub struct AuditInput {
    /// Files and directories; `-` is standard input.
    pub paths: Vec<PathBuf>,
    /// Extra namespace labels (`--namespace-labels`), over those of the
    /// input's Namespace documents.
    pub namespace_labels: Vec<(String, String, String)>,
}

const STDIN: &str = "-";

/// Reads every input, then judges every object.
pub fn run(input: &AuditInput, config: &Config, now: Timestamp) -> AuditReport {
    let mut report = AuditReport::default();
    let mut docs = Vec::new();
    for path in &input.paths {
        read_path(path, &mut docs, &mut report.errors);
    }
    audit_documents(docs, input, config, now, &mut report);
    report
}

/// Audits documents already read (also used by tests and benchmarks).
pub fn audit_documents(
    docs: Vec<(String, Document)>,
    input: &AuditInput,
    config: &Config,
    now: Timestamp,
    report: &mut AuditReport,
) {
    let mut items = Vec::with_capacity(docs.len());
    for (file, doc) in docs {
        let line = doc.line;
        for doc in documents::expand_lists(vec![doc]) {
            let source = Source {
                file: file.clone(),
                line,
            };
            items.push((source, doc.value));
        }
    }
    report.objects += items.len();
    for (source, _) in &items {
        *report
            .objects_by_file
            .entry(source.file.clone())
            .or_default() += 1;
    }

    // Namespaces first: their labels, as the cluster would store them, are
    // the context of every other object.
    let mut namespaces: HashMap<String, Labels<'static>> = HashMap::new();
    for (_, value) in &items {
        if kind_of(value) == Some(Kind::Namespace) {
            let stored = patched(value, Kind::Namespace, config, now);
            if let Some((name, labels)) = namespace_labels(stored.as_ref().unwrap_or(value)) {
                namespaces.insert(name, labels);
            }
        }
    }
    for (ns, key, value) in &input.namespace_labels {
        namespaces
            .entry(ns.clone())
            .or_default()
            .insert(key.clone(), value.clone());
    }

    for (source, value) in items {
        let (kind, unserved) = match judged_kind(&value) {
            Ok(judged) => judged,
            Err(reason) => {
                let object = ObjectRef::read(source, &value, None);
                report.skipped.push(SkippedObject { object, reason });
                continue;
            }
        };
        let object = ObjectRef::read(source, &value, Some(kind));
        match audit_object(&value, kind, unserved, &namespaces, config, now) {
            Ok(Judged::Found(mut audited)) => {
                audited.api_version = object.api_version;
                audited.uid = object.uid;
                audited.source = object.source;
                report.audited.push(*audited);
            }
            Ok(Judged::Clean) => report.passed.push(object),
            Ok(Judged::Skipped(skip)) => report.skipped.push(SkippedObject {
                object,
                reason: SkipReason::from_engine(skip),
            }),
            Err(message) => report.errors.push(InputError {
                source: object.source,
                message,
            }),
        }
    }
}

/// The kind a document is judged as, and the unserved API version it was
/// written in (judged like its `v1` kind: SPEC section 1); or why it is not
/// judged.
fn judged_kind(value: &Value) -> Result<(Kind, Option<Unserved>), SkipReason> {
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let kind = value.get("kind").and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Err(SkipReason::NotAnObject);
    };
    let unserved = legacy_api::unserved(api_version, kind);
    match (Kind::from_api_version(api_version, kind), unserved) {
        (Kind::Other, Some(u)) => Ok((u.kind, Some(u))),
        (Kind::Other, None) => Err(SkipReason::UnjudgedKind),
        (judged, unserved) => Ok((judged, unserved)),
    }
}

/// What the audit made of one object.
enum Judged {
    Found(Box<AuditedObject>),
    Clean,
    Skipped(engine::Skip),
}

/// The judged kind of a document, `None` when it is no Kubernetes object.
fn kind_of(value: &Value) -> Option<Kind> {
    let api_version = value.get("apiVersion")?.as_str()?;
    let kind = value.get("kind")?.as_str()?;
    Some(Kind::from_api_version(api_version, kind))
}

/// The namespace an object lands in: its own, else `default` (where
/// `kubectl apply` without `-n` puts it).
fn namespace_of<'v>(object: &'v Object<'v>) -> &'v str {
    match object.kind {
        Kind::Namespace => object.name(),
        _ => object
            .meta
            .namespace
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or("default"),
    }
}

fn create_request<'r>(object: &'r Object<'r>) -> Request<'r> {
    Request {
        operation: Operation::Create,
        kind: object.kind,
        namespace: namespace_of(object),
        object: Some(object),
        old_object: None,
        subresource: false,
    }
}

/// The document after the mutating webhook, when it patches anything.
fn patched(value: &Value, kind: Kind, config: &Config, now: Timestamp) -> Option<Value> {
    let object = Object::read(kind, value).ok()?;
    let request = create_request(&object);
    let decision = engine::evaluate(&request, config, None, now, Webhook::Mutate);
    if decision.mutations.is_empty() {
        return None;
    }
    let mut doc = value.clone();
    mutate::apply(&mut doc, &decision.mutations).ok()?;
    Some(doc)
}

fn audit_object(
    value: &Value,
    kind: Kind,
    unserved: Option<Unserved>,
    namespaces: &HashMap<String, Labels<'static>>,
    config: &Config,
    now: Timestamp,
) -> Result<Judged, String> {
    if kind == Kind::Other {
        return Ok(Judged::Skipped(engine::Skip::UnjudgedKind));
    }
    let object = Object::read(kind, value).map_err(|e| e.to_string())?;
    let request = create_request(&object);
    let ns_labels = namespaces.get(request.namespace);
    let decision = engine::evaluate(&request, config, ns_labels, now, Webhook::Mutate);
    if let Some(skip) = decision.skipped {
        return Ok(Judged::Skipped(skip));
    }
    let mutations = decision.mutations;
    let stored;
    let judged = if mutations.is_empty() {
        object.clone()
    } else {
        let mut doc = value.clone();
        mutate::apply(&mut doc, &mutations)
            .map_err(|e| format!("internal error: a patch does not apply: {e}"))?;
        stored = doc;
        Object::read(kind, &stored).map_err(|e| e.to_string())?
    };
    let request = create_request(&judged);
    let mut findings =
        engine::evaluate(&request, config, ns_labels, now, Webhook::Validate).findings;
    let notes: Vec<String> = unserved.iter().map(Unserved::note).collect();
    // SPEC section 1: the finding itself says the API version is gone.
    for note in &notes {
        for f in &mut findings {
            f.message = format!("{} (note: {note})", f.message);
        }
    }
    if findings.is_empty() && mutations.is_empty() && notes.is_empty() {
        return Ok(Judged::Clean);
    }
    Ok(Judged::Found(Box::new(AuditedObject {
        kind: kind.as_str().to_owned(),
        namespace: if kind == Kind::Namespace {
            String::new()
        } else {
            request.namespace.to_owned()
        },
        name: judged.name().to_owned(),
        source: Source {
            file: String::new(),
            line: 0,
        },
        findings,
        mutations,
        api_version: String::new(),
        uid: None,
        notes,
    })))
}

/// Reads one path (file, directory, or `-`) into documents.
fn read_path(path: &Path, docs: &mut Vec<(String, Document)>, errors: &mut Vec<InputError>) {
    let name = path.display().to_string();
    if name == STDIN {
        let mut text = String::new();
        match std::io::stdin().read_to_string(&mut text) {
            Ok(_) => parse_text("<stdin>", &text, docs, errors),
            Err(e) => errors.push(file_error(
                "<stdin>",
                format!("cannot read standard input: {e}"),
            )),
        }
        return;
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return errors.push(file_error(&name, format!("cannot read: {e}"))),
    };
    if meta.is_dir() {
        let mut files = Vec::new();
        collect_manifests(path, &mut files, errors);
        files.sort();
        for file in files {
            read_file(&file, docs, errors);
        }
    } else {
        read_file(path, docs, errors);
    }
}

fn collect_manifests(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return errors.push(file_error(
                &dir.display().to_string(),
                format!("cannot read directory: {e}"),
            ));
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            collect_manifests(&path, files, errors);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            files.push(path);
        }
    }
}

fn read_file(path: &Path, docs: &mut Vec<(String, Document)>, errors: &mut Vec<InputError>) {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => parse_text(&name, &text, docs, errors),
            Err(e) => errors.push(file_error(&name, format!("not UTF-8 text ({e})"))),
        },
        Err(e) => errors.push(file_error(&name, format!("cannot read: {e}"))),
    }
}

fn parse_text(
    name: &str,
    text: &str,
    docs: &mut Vec<(String, Document)>,
    errors: &mut Vec<InputError>,
) {
    match documents::split(text) {
        Ok(parsed) => docs.extend(parsed.into_iter().map(|d| (name.to_owned(), d))),
        Err(e) => errors.push(InputError {
            source: Source {
                file: name.to_owned(),
                line: e.line,
            },
            message: e.message,
        }),
    }
}

fn file_error(file: &str, message: String) -> InputError {
    InputError {
        source: Source {
            file: file.to_owned(),
            line: 0,
        },
        message,
    }
}

impl AuditReport {
    pub fn count(&self, action: crate::rules::Action) -> usize {
        self.audited
            .iter()
            .flat_map(|o| &o.findings)
            .filter(|f| f.action == action)
            .count()
    }

    pub fn patch_count(&self) -> usize {
        self.audited.iter().map(|o| o.mutations.len()).sum()
    }

    /// Objects judged (with or without findings).
    pub fn judged(&self) -> usize {
        self.audited.len() + self.passed.len()
    }

    /// Skipped objects by reason, in `SkipReason` order, reasons with none
    /// left out.
    pub fn skipped_by_reason(&self) -> Vec<(SkipReason, Vec<&SkippedObject>)> {
        SkipReason::ALL
            .into_iter()
            .map(|r| (r, self.skipped.iter().filter(|s| s.reason == r).collect()))
            .filter(|(_, v): &(SkipReason, Vec<&SkippedObject>)| !v.is_empty())
            .collect()
    }

    /// True when objects were read but none was judged (SPEC section 1: say
    /// so, never report such a run as clean).
    pub fn nothing_judged(&self) -> bool {
        !self.skipped.is_empty() && self.judged() == 0
    }
}

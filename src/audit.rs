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
use crate::mesh::{self, Coverage, MeshIndex};
use crate::mutate::{self, Mutation};
use crate::namespaces::{NamespaceMap, namespace_labels};
use crate::object::{Kind, Object};
use crate::posture::{self, Posture};

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
    /// The mesh posture, when asked for (SPEC section 10).
    pub posture: Option<Posture>,
}

/// What to audit.
#[derive(Debug, Clone, Default)]
pub struct AuditInput {
    /// Files and directories; `-` is standard input.
    pub paths: Vec<PathBuf>,
    /// Extra namespace labels (`--namespace-labels`), over those of the
    /// input's Namespace documents.
    pub namespace_labels: Vec<(String, String, String)>,
    /// The cluster's namespaces (`audit --namespaces F`): their labels, and
    /// the list that says which namespaces exist (SPEC section 10).
    pub namespaces: Option<NamespaceMap>,
    /// The input is a whole cluster (`audit --cluster`).
    pub cluster: bool,
    /// Report the mesh posture (`--posture`, `--require-posture`).
    pub posture: bool,
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

/// One object of the input, as the cluster would store it: after the
/// mutating webhook.
struct Prepared {
    /// Position in the input.
    order: usize,
    object: ObjectRef,
    kind: Kind,
    /// The API version is no longer served (judged like its `v1` kind).
    unserved: Option<Unserved>,
    /// The patched document, or the document as read.
    stored: Value,
    mutations: Vec<Mutation>,
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
    let namespaces = namespace_context(&items, input, config, now);

    // Then every object as the cluster would store it, and the mesh index
    // of all of them (SPEC section 10), before any is judged.
    let mut prepared = Vec::with_capacity(items.len());
    let mut skipped = Vec::new();
    for (order, (source, value)) in items.into_iter().enumerate() {
        let (kind, unserved) = match judged_kind(&value) {
            Ok(judged) => judged,
            Err(reason) => {
                let object = ObjectRef::read(source, &value, None);
                skipped.push((order, SkippedObject { object, reason }));
                continue;
            }
        };
        let object = ObjectRef::read(source, &value, Some(kind));
        match prepare(value, kind, &namespaces, config, now) {
            Ok((stored, mutations)) => prepared.push(Prepared {
                order,
                object,
                kind,
                unserved,
                stored,
                mutations,
            }),
            Err(message) => report.errors.push(InputError {
                source: object.source,
                message,
            }),
        }
    }
    let index = mesh_index(&prepared, input);

    for p in prepared {
        match judge(&p, &namespaces, &index, config, now) {
            Ok(Judged::Found(mut audited)) => {
                audited.api_version = p.object.api_version;
                audited.uid = p.object.uid;
                audited.source = p.object.source;
                report.audited.push(*audited);
            }
            Ok(Judged::Clean) => report.passed.push(p.object),
            Ok(Judged::Skipped(skip)) => skipped.push((
                p.order,
                SkippedObject {
                    object: p.object,
                    reason: SkipReason::from_engine(skip),
                },
            )),
            Err(message) => report.errors.push(InputError {
                source: p.object.source,
                message,
            }),
        }
    }
    // Skipped objects in input order, whichever pass skipped them.
    skipped.sort_by_key(|(order, _)| *order);
    report.skipped.extend(skipped.into_iter().map(|(_, s)| s));
    if input.posture {
        report.posture = Some(posture::of_mesh(&index, config));
    }
}

/// Labels by namespace: the cluster's (`--namespaces`), under those of the
/// input's Namespace documents (patched), under `--namespace-labels`.
fn namespace_context(
    items: &[(Source, Value)],
    input: &AuditInput,
    config: &Config,
    now: Timestamp,
) -> HashMap<String, Labels<'static>> {
    let mut namespaces: HashMap<String, Labels<'static>> = HashMap::new();
    if let Some(map) = &input.namespaces {
        for name in map.names() {
            if let Some(labels) = map.labels(name) {
                namespaces.insert(name.to_owned(), (*labels).clone());
            }
        }
    }
    for (_, value) in items {
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
    namespaces
}

/// The index of every prepared object; offline, a namespace the input does
/// not mention may exist unless `--namespaces` lists the cluster's.
fn mesh_index(prepared: &[Prepared], input: &AuditInput) -> MeshIndex {
    let coverage = if input.cluster {
        Coverage::Cluster
    } else {
        Coverage::Input {
            listed: input
                .namespaces
                .as_ref()
                .map(|m| m.names().map(str::to_owned).collect()),
        }
    };
    let mut index = MeshIndex::new(coverage);
    for p in prepared {
        if let Ok(object) = Object::read(p.kind, &p.stored) {
            index.apply(&object);
        }
    }
    if let Some(map) = &input.namespaces {
        for name in map.names() {
            if let Some(labels) = map.labels(name) {
                index.default_namespace_labels(name, (*labels).clone());
            }
        }
    }
    for (ns, key, value) in &input.namespace_labels {
        index.add_namespace_label(ns, key, value);
    }
    index
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

fn create_request<'r>(object: &'r Object<'r>) -> Request<'r> {
    Request {
        operation: Operation::Create,
        kind: object.kind,
        namespace: mesh::namespace_of(object),
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

/// Runs the mutating webhook on one document (SPEC MG104: a marker that
/// meshguard adds is a pending patch, not a violation): the document as
/// the cluster would store it, and the patches.
fn prepare(
    value: Value,
    kind: Kind,
    namespaces: &HashMap<String, Labels<'static>>,
    config: &Config,
    now: Timestamp,
) -> Result<(Value, Vec<Mutation>), String> {
    let mutations = {
        let object = Object::read(kind, &value).map_err(|e| e.to_string())?;
        let request = create_request(&object);
        let ns_labels = namespaces.get(request.namespace);
        engine::evaluate(&request, config, ns_labels, now, Webhook::Mutate).mutations
    };
    if mutations.is_empty() {
        return Ok((value, mutations));
    }
    let mut stored = value;
    mutate::apply(&mut stored, &mutations)
        .map_err(|e| format!("internal error: a patch does not apply: {e}"))?;
    Ok((stored, mutations))
}

/// Judges one prepared object with the validating webhook's rules, MG5xx
/// against the index of the whole input.
fn judge(
    p: &Prepared,
    namespaces: &HashMap<String, Labels<'static>>,
    index: &MeshIndex,
    config: &Config,
    now: Timestamp,
) -> Result<Judged, String> {
    let judged = Object::read(p.kind, &p.stored).map_err(|e| e.to_string())?;
    let request = create_request(&judged);
    let ns_labels = namespaces.get(request.namespace);
    let decision = engine::evaluate_in_mesh(
        &request,
        config,
        ns_labels,
        Some(index),
        now,
        Webhook::Validate,
    );
    if let Some(skip) = decision.skipped {
        return Ok(Judged::Skipped(skip));
    }
    let mut findings = decision.findings;
    let notes: Vec<String> = p.unserved.iter().map(Unserved::note).collect();
    // SPEC section 1: the finding itself says the API version is gone.
    for note in &notes {
        for f in &mut findings {
            f.message = format!("{} (note: {note})", f.message);
        }
    }
    if findings.is_empty() && p.mutations.is_empty() && notes.is_empty() {
        return Ok(Judged::Clean);
    }
    Ok(Judged::Found(Box::new(AuditedObject {
        kind: p.kind.as_str().to_owned(),
        namespace: if p.kind == Kind::Namespace {
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
        mutations: p.mutations.clone(),
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

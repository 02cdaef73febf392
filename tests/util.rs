//! Helpers shared by the integration tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use jiff::Timestamp;
use meshguard::config::Config;
use meshguard::engine::{self, Decision, OldObject, Operation, Request, Webhook};
use meshguard::lenient::Labels;
use meshguard::object::{Kind, Object};
use meshguard::rules::{Action, RuleId};

pub fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A fixed instant, so `enforceAfter` tests never depend on the clock.
pub fn now() -> Timestamp {
    "2026-11-25T12:00:00Z".parse().expect("timestamp")
}

/// Runs the built binary with arguments and optional standard input.
pub fn meshguard(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("meshguard binary runs");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // The child may exit before reading everything (bad input); that is fine.
        let _ = pipe.write_all(input);
    }
    child.wait_with_output().expect("meshguard finishes")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// 64-bit FNV-1a of `bytes`, in hex: how README says `config_info{hash}`
/// is computed (written here from the FNV definition, not taken from src).
pub fn fnv1a64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Namespace labels from `(key, value)` pairs.
pub fn labels(pairs: &[(&'static str, &'static str)]) -> Labels<'static> {
    Labels::from_pairs(pairs.iter().copied())
}

/// Everything needed to judge one object in tests.
pub struct Case<'a> {
    pub kind: Kind,
    pub json: &'a str,
    pub namespace: &'a str,
    pub ns_labels: Option<Labels<'static>>,
    pub config: Config,
    pub operation: Operation,
    pub old_json: Option<&'a str>,
    pub now: Timestamp,
}

impl<'a> Case<'a> {
    /// A CREATE in namespace `shop`, which has `istio-injection=enabled`.
    pub fn new(kind: Kind, json: &'a str) -> Case<'a> {
        Case {
            kind,
            json,
            namespace: "shop",
            ns_labels: Some(labels(&[("istio-injection", "enabled")])),
            config: Config::default(),
            operation: Operation::Create,
            old_json: None,
            now: now(),
        }
    }

    pub fn ns(mut self, pairs: &[(&'static str, &'static str)]) -> Self {
        self.ns_labels = Some(labels(pairs));
        self
    }

    pub fn unknown_ns(mut self) -> Self {
        self.ns_labels = None;
        self
    }

    pub fn in_namespace(mut self, ns: &'a str) -> Self {
        self.namespace = ns;
        self
    }

    pub fn update(mut self, old: &'a str) -> Self {
        self.operation = Operation::Update;
        self.old_json = Some(old);
        self
    }

    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    pub fn run(&self, webhook: Webhook) -> Decision {
        let object = Object::from_json(self.kind, self.json).expect("test object parses");
        let request = Request {
            operation: self.operation,
            kind: self.kind,
            namespace: self.namespace,
            object: Some(&object),
            old_object: self.old_json.map(OldObject::Json),
            subresource: false,
        };
        engine::evaluate(
            &request,
            &self.config,
            self.ns_labels.as_ref(),
            self.now,
            webhook,
        )
    }

    /// Rule ids by action: (deny, warn, audit).
    pub fn judge(&self) -> (Vec<RuleId>, Vec<RuleId>, Vec<RuleId>) {
        let d = self.run(Webhook::Validate);
        let ids = |a: Action| {
            let mut v: Vec<RuleId> = d.with_action(a).map(|f| f.rule).collect();
            v.sort();
            v.dedup();
            v
        };
        (ids(Action::Deny), ids(Action::Warn), ids(Action::Audit))
    }

    /// Rule ids that fire at any action.
    pub fn fired(&self) -> Vec<RuleId> {
        let (mut d, w, a) = self.judge();
        d.extend(w);
        d.extend(a);
        d.sort();
        d.dedup();
        d
    }
}

/// A Deployment in namespace `shop` with the given pod-template labels,
/// annotations and pod spec fields (JSON fragments without braces).
pub fn deployment(labels: &str, annotations: &str, spec: &str) -> String {
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"cart","namespace":"shop"}},"spec":{{"template":{{"metadata":{{"labels":{{{labels}}},"annotations":{{{annotations}}}}},"spec":{{{spec}}}}}}}}}"#
    )
}

/// Pod-template labels of a compliant workload.
pub const GOOD_LABELS: &str = r#""app":"cart","version":"v1","sidecar.istio.io/inject":"true""#;
/// Pod-spec fields of a compliant workload.
pub const GOOD_SPEC: &str = r#""serviceAccountName":"cart","containers":[{"name":"cart","image":"cart:1","ports":[{"containerPort":8080}]}]"#;

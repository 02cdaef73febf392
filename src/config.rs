//! meshguard's configuration (SPEC section 6).
//!
//! One YAML document, validated once and immutable afterwards. Validation
//! walks the whole document and reports every problem with its path, so a
//! user fixes a file in one round trip. Unknown keys are problems too: in our
//! own file a typo must never silently mean "default".
//!
//! This module does no I/O beyond `load` reading the file it is given;
//! reloading is the server's business.

use std::fmt;
use std::path::Path;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::object::Kind;
use crate::rules::{Action, RuleId};

/// The built-in default, exactly SPEC.md's defaults, with comments. `meshguard
/// config default` prints it and a test keeps it equal to `Config::default()`.
pub const DEFAULT_YAML: &str = include_str!("config/default.yaml");

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Namespaces where no workload, Service or Namespace rule applies and
    /// nothing is patched (Istio rules still apply: SPEC section 2).
    pub exempt_namespaces: Vec<String>,
    /// When set, MGP1 adds `istio.io/rev: <revision>` instead of
    /// `istio-injection: enabled`.
    pub revision: Option<String>,
    /// Decides which hosts are in-mesh (MG402, MG407) and how hosts
    /// resolve (SPEC section 10).
    pub cluster_domain: String,
    /// Istio's root namespace: mesh-wide PeerAuthentication and
    /// AuthorizationPolicy live there (SPEC section 10).
    pub root_namespace: String,
    /// The trust domain of principals `<trust-domain>/ns/N/sa/S` (MG504).
    pub trust_domain: String,
    /// SPEC section 3: UPDATEs are denied only for newly broken rules.
    pub ratcheting: bool,
    pub mutations: Mutations,
    pub(crate) rules: Vec<RuleSettings>,
    /// MG102: the labels every pod template must carry.
    pub mesh_labels: Vec<MeshLabel>,
    /// MG405: the allowed canary weights; empty = any weight.
    pub canary_steps: Vec<u32>,
    /// MG407: approved external hosts (exact or `*.domain`); empty = that
    /// check is off.
    pub allowed_hosts: Vec<String>,
    /// MG406: whether PASSTHROUGH / AUTO_PASSTHROUGH servers are violations.
    pub gateway_passthrough: Passthrough,
    pub exemptions: Vec<Exemption>,
}

/// MG406's `passthrough` parameter: a server that forwards the encrypted
/// stream to the backend (SPEC section 4) is fine (`allow`, the default:
/// Istio's east-west gateways depend on it) or a violation (`deny`, for
/// teams that require TLS termination at the edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthrough {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSettings {
    pub action: Action,
    /// From this instant on, `warn`/`audit` become `deny` (progressive
    /// enforcement without a redeploy).
    pub enforce_after: Option<Timestamp>,
}

impl RuleSettings {
    /// The action in force at `now`.
    pub fn action_at(&self, now: Timestamp) -> Action {
        match self.enforce_after {
            Some(t) if now >= t && matches!(self.action, Action::Warn | Action::Audit) => {
                Action::Deny
            }
            _ => self.action,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutations {
    /// MGP1: add the injection label to Namespaces.
    pub namespace_injection: bool,
    /// MGP2: add the injection marker to pod templates.
    pub sidecar_marker: bool,
    pub sidecar_marker_as: MarkerForm,
}

/// Where MGP2 puts `sidecar.istio.io/inject: "true"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerForm {
    Label,
    Annotation,
}

/// A required pod-template label and the names accepted in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshLabel {
    pub name: String,
    pub alternatives: Vec<String>,
}

/// Rules switched off for matching objects, with the reason why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    /// Glob (`*`) on the namespace; `None` = any.
    pub namespace: Option<String>,
    pub kind: Option<Kind>,
    /// Glob (`*`) on the object name; `None` = any.
    pub name: Option<String>,
    /// Empty = every rule.
    pub rules: Vec<RuleId>,
    pub reason: String,
}

impl Exemption {
    pub fn matches(&self, namespace: &str, kind: Kind, name: &str, rule: RuleId) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|p| glob_match(p, namespace))
            && self.kind.is_none_or(|k| k == kind)
            && self.name.as_deref().is_none_or(|p| glob_match(p, name))
            && (self.rules.is_empty() || self.rules.contains(&rule))
    }
}

/// Matches `text` against a pattern where `*` stands for any run of
/// characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            exempt_namespaces: [
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "istio-system",
                "meshguard-system",
            ]
            .map(String::from)
            .to_vec(),
            revision: None,
            cluster_domain: "cluster.local".to_owned(),
            root_namespace: "istio-system".to_owned(),
            trust_domain: "cluster.local".to_owned(),
            ratcheting: true,
            mutations: Mutations {
                namespace_injection: true,
                sidecar_marker: true,
                sidecar_marker_as: MarkerForm::Label,
            },
            rules: RuleId::ALL
                .iter()
                .map(|id| RuleSettings {
                    action: id.info().default_action,
                    enforce_after: None,
                })
                .collect(),
            mesh_labels: vec![
                MeshLabel {
                    name: "app".to_owned(),
                    alternatives: vec!["app.kubernetes.io/name".to_owned()],
                },
                MeshLabel {
                    name: "version".to_owned(),
                    alternatives: vec!["app.kubernetes.io/version".to_owned()],
                },
            ],
            canary_steps: Vec::new(),
            allowed_hosts: Vec::new(),
            gateway_passthrough: Passthrough::Allow,
            exemptions: Vec::new(),
        }
    }
}

impl Config {
    pub fn rule(&self, id: RuleId) -> &RuleSettings {
        &self.rules[id.index()]
    }

    /// Sets a rule's action (tests and callers that build configs in code).
    pub fn set_action(&mut self, id: RuleId, action: Action) {
        self.rules[id.index()].action = action;
    }

    pub fn set_enforce_after(&mut self, id: RuleId, at: Option<Timestamp>) {
        self.rules[id.index()].enforce_after = at;
    }

    pub fn is_exempt_namespace(&self, namespace: &str) -> bool {
        self.exempt_namespaces.iter().any(|n| n == namespace)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("cannot read {}: {e}", path.display())],
        })?;
        Config::parse(&text)
    }

    /// Parses and validates YAML (or JSON) text, reporting every problem.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let value: Value = serde_saphyr::from_str(text).map_err(|e| ConfigError {
            problems: vec![format!("not valid YAML: {e}")],
        })?;
        let mut v = Validator::default();
        let config = v.config(&value);
        if v.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: v.problems,
            })
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem", self.problems.len())?;
        if self.problems.len() != 1 {
            f.write_str("s")?;
        }
        f.write_str("):")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Walks the parsed document, collecting problems instead of stopping at
/// the first one.
#[derive(Default)]
struct Validator {
    problems: Vec<String>,
}

impl Validator {
    fn problem(&mut self, path: &str, msg: impl fmt::Display) {
        self.problems.push(format!("{path}: {msg}"));
    }

    fn config(&mut self, value: &Value) -> Config {
        let mut c = Config::default();
        let root = match value {
            Value::Null => return c,
            Value::Object(m) => m,
            other => {
                self.problem(
                    "(top level)",
                    format!("expected a map, found {}", type_name(other)),
                );
                return c;
            }
        };
        for (key, v) in root {
            match key.as_str() {
                "exemptNamespaces" => {
                    c.exempt_namespaces = self.strings(key, v);
                    for (i, ns) in c.exempt_namespaces.iter().enumerate() {
                        if !is_dns_label(ns) {
                            self.problems.push(format!(
                                "exemptNamespaces[{i}]: `{ns}` is not a valid namespace name"
                            ));
                        }
                    }
                }
                "revision" => {
                    c.revision = self.string(key, v).filter(|r| !r.is_empty());
                    if let Some(r) = &c.revision
                        && !is_label_value(r)
                    {
                        self.problem(key, format!("`{r}` is not a valid label value"));
                    }
                }
                "clusterDomain" => {
                    if let Some(d) = self.string(key, v) {
                        if d.is_empty() || !d.split('.').all(is_dns_label) {
                            self.problem(key, format!("`{d}` is not a valid DNS domain"));
                        }
                        c.cluster_domain = d;
                    }
                }
                "rootNamespace" => {
                    if let Some(ns) = self.string(key, v) {
                        if !is_dns_label(&ns) {
                            self.problem(key, format!("`{ns}` is not a valid namespace name"));
                        }
                        c.root_namespace = ns;
                    }
                }
                "trustDomain" => {
                    if let Some(d) = self.string(key, v) {
                        if d.is_empty() || d.contains('/') || d.contains('*') {
                            self.problem(key, format!("`{d}` is not a trust domain such as cluster.local"));
                        }
                        c.trust_domain = d;
                    }
                }
                "ratcheting" => c.ratcheting = self.bool(key, v).unwrap_or(c.ratcheting),
                "mutations" => self.mutations(v, &mut c.mutations),
                "rules" => self.rules(v, &mut c),
                "exemptions" => c.exemptions = self.exemptions(v),
                _ => self.problem(
                    key,
                    "unknown key (expected exemptNamespaces, revision, clusterDomain, rootNamespace, trustDomain, ratcheting, mutations, rules or exemptions)",
                ),
            }
        }
        c
    }

    fn mutations(&mut self, v: &Value, m: &mut Mutations) {
        let Some(map) = self.map("mutations", v) else {
            return;
        };
        for (key, v) in map {
            let path = format!("mutations.{key}");
            match key.as_str() {
                "namespaceInjection" => {
                    m.namespace_injection = self.bool(&path, v).unwrap_or(m.namespace_injection)
                }
                "sidecarMarker" => {
                    m.sidecar_marker = self.bool(&path, v).unwrap_or(m.sidecar_marker)
                }
                "sidecarMarkerAs" => match self.string(&path, v).as_deref() {
                    Some("label") => m.sidecar_marker_as = MarkerForm::Label,
                    Some("annotation") => m.sidecar_marker_as = MarkerForm::Annotation,
                    Some(other) => self.problem(
                        &path,
                        format!("`{other}` is neither `label` nor `annotation`"),
                    ),
                    None => {}
                },
                _ => self.problem(
                    &path,
                    "unknown key (expected namespaceInjection, sidecarMarker or sidecarMarkerAs)",
                ),
            }
        }
    }

    fn rules(&mut self, v: &Value, c: &mut Config) {
        let Some(map) = self.map("rules", v) else {
            return;
        };
        for (key, v) in map {
            let path = format!("rules.{key}");
            let id = match key.parse::<RuleId>() {
                Ok(id) => id,
                Err(e) => {
                    self.problem(&path, e);
                    continue;
                }
            };
            let Some(settings) = self.map(&path, v) else {
                continue;
            };
            for (field, v) in settings {
                let fpath = format!("{path}.{field}");
                match (field.as_str(), id) {
                    ("action", _) => {
                        if let Some(s) = self.string(&fpath, v) {
                            match s.parse::<Action>() {
                                Ok(a) => c.rules[id.index()].action = a,
                                Err(e) => self.problem(&fpath, e),
                            }
                        }
                    }
                    ("enforceAfter", _) => {
                        if let Some(s) = self.string(&fpath, v) {
                            match s.parse::<Timestamp>() {
                                Ok(t) => c.rules[id.index()].enforce_after = Some(t),
                                Err(e) => self.problem(
                                    &fpath,
                                    format!("`{s}` is not an RFC 3339 timestamp such as 2026-12-01T00:00:00Z ({e})"),
                                ),
                            }
                        }
                    }
                    ("labels", RuleId::MG102) => c.mesh_labels = self.mesh_labels(&fpath, v),
                    ("canarySteps", RuleId::MG405) => c.canary_steps = self.canary_steps(&fpath, v),
                    ("passthrough", RuleId::MG406) => match self.string(&fpath, v).as_deref() {
                        Some("allow") => c.gateway_passthrough = Passthrough::Allow,
                        Some("deny") => c.gateway_passthrough = Passthrough::Deny,
                        Some(other) => {
                            self.problem(&fpath, format!("`{other}` is neither `allow` nor `deny`"))
                        }
                        None => {}
                    },
                    ("allowedHosts", RuleId::MG407) => {
                        c.allowed_hosts = self.strings(&fpath, v);
                        for (i, h) in c.allowed_hosts.iter().enumerate() {
                            let bare = h.strip_prefix("*.").unwrap_or(h);
                            if bare.is_empty()
                                || bare.contains('*')
                                || !bare.split('.').all(is_dns_label)
                            {
                                self.problems.push(format!(
                                    "{fpath}[{i}]: `{h}` is neither a host name nor a `*.domain` wildcard"
                                ));
                            }
                        }
                    }
                    _ => self.problem(
                        &fpath,
                        format!("unknown setting for {id} (expected {})", settings_of(id)),
                    ),
                }
            }
        }
    }

    fn mesh_labels(&mut self, path: &str, v: &Value) -> Vec<MeshLabel> {
        let Some(items) = self.list(path, v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            let (name, alternatives) = match item {
                Value::String(s) => (Some(s.clone()), Vec::new()),
                Value::Object(m) => {
                    let mut name = None;
                    let mut alternatives = Vec::new();
                    for (k, v) in m {
                        match k.as_str() {
                            "name" => name = self.string(&format!("{ipath}.name"), v),
                            "alternatives" => {
                                alternatives = self.strings(&format!("{ipath}.alternatives"), v)
                            }
                            _ => self.problem(
                                &format!("{ipath}.{k}"),
                                "unknown key (expected name or alternatives)",
                            ),
                        }
                    }
                    if name.is_none() {
                        self.problem(&ipath, "a label needs a `name`");
                    }
                    (name, alternatives)
                }
                other => {
                    self.problem(
                        &ipath,
                        format!("expected a label name or a map, found {}", type_name(other)),
                    );
                    (None, Vec::new())
                }
            };
            let Some(name) = name else { continue };
            for key in std::iter::once(&name).chain(&alternatives) {
                if let Err(e) = check_label_key(key) {
                    self.problem(&ipath, format!("`{key}` is not a valid label key: {e}"));
                }
            }
            out.push(MeshLabel { name, alternatives });
        }
        out
    }

    fn canary_steps(&mut self, path: &str, v: &Value) -> Vec<u32> {
        let Some(items) = self.list(path, v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.as_u64() {
                Some(n) if n <= 100 => out.push(n as u32),
                _ => self.problem(
                    &format!("{path}[{i}]"),
                    format!("`{item}` is not a weight between 0 and 100"),
                ),
            }
        }
        out
    }

    fn exemptions(&mut self, v: &Value) -> Vec<Exemption> {
        let Some(items) = self.list("exemptions", v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("exemptions[{i}]");
            let Some(map) = self.map(&path, item) else {
                continue;
            };
            let mut e = Exemption {
                namespace: None,
                kind: None,
                name: None,
                rules: Vec::new(),
                reason: String::new(),
            };
            let mut has_rules = false;
            for (k, v) in map {
                let fpath = format!("{path}.{k}");
                match k.as_str() {
                    "namespace" => e.namespace = self.string(&fpath, v),
                    "name" => e.name = self.string(&fpath, v),
                    "kind" => {
                        if let Some(s) = self.string(&fpath, v) {
                            match Kind::JUDGED.into_iter().find(|k| k.as_str() == s) {
                                Some(k) => e.kind = Some(k),
                                None => self.problem(
                                    &fpath,
                                    format!("`{s}` is not a kind meshguard judges"),
                                ),
                            }
                        }
                    }
                    "rules" => {
                        has_rules = true;
                        let listed = self.strings(&fpath, v);
                        // An empty list would mean "every rule" below: an
                        // exemption that wide must say so with "*".
                        if listed.is_empty() {
                            self.problem(&fpath, "lists no rule (rule ids, or [\"*\"] for all)");
                        }
                        let mut all = false;
                        for (j, r) in listed.iter().enumerate() {
                            if r == "*" {
                                all = true;
                                continue;
                            }
                            match r.parse::<RuleId>() {
                                Ok(id) => e.rules.push(id),
                                Err(err) => self.problem(&format!("{fpath}[{j}]"), err),
                            }
                        }
                        // `*` is every rule, whatever else is listed.
                        if all {
                            e.rules.clear();
                        }
                    }
                    "reason" => e.reason = self.string(&fpath, v).unwrap_or_default(),
                    _ => self.problem(
                        &fpath,
                        "unknown key (expected namespace, kind, name, rules or reason)",
                    ),
                }
            }
            if e.reason.trim().is_empty() {
                self.problem(&path, "an exemption needs a `reason`");
            }
            if !has_rules {
                self.problem(
                    &path,
                    "an exemption needs `rules` (rule ids, or [\"*\"] for all)",
                );
            }
            if e.namespace.is_none() && e.kind.is_none() && e.name.is_none() {
                self.problem(
                    &path,
                    "an exemption needs at least one of namespace, kind or name",
                );
            }
            out.push(e);
        }
        out
    }

    fn map<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => {
                self.problem(path, format!("expected a map, found {}", type_name(other)));
                None
            }
        }
    }

    fn list<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            Value::Null => None,
            other => {
                self.problem(path, format!("expected a list, found {}", type_name(other)));
                None
            }
        }
    }

    fn string(&mut self, path: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(
                    path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn strings(&mut self, path: &str, v: &Value) -> Vec<String> {
        let Some(items) = self.list(path, v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = self.string(&format!("{path}[{i}]"), item) {
                out.push(s);
            }
        }
        out
    }

    fn bool(&mut self, path: &str, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.problem(
                    path,
                    format!("expected true or false, found {}", type_name(other)),
                );
                None
            }
        }
    }
}

fn settings_of(id: RuleId) -> &'static str {
    match id {
        RuleId::MG102 => "action, enforceAfter or labels",
        RuleId::MG405 => "action, enforceAfter or canarySteps",
        RuleId::MG406 => "action, enforceAfter or passthrough",
        RuleId::MG407 => "action, enforceAfter or allowedHosts",
        _ => "action or enforceAfter",
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// An RFC 1123 label: lower-case alphanumerics and `-`, at most 63.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A Kubernetes label value (may be empty).
fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

/// The name part of a label key: at most 63 alphanumerics, `-`, `_`, `.`,
/// starting and ending with an alphanumeric.
fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks a label key: `[prefix/]name`, the prefix a DNS subdomain.
pub fn check_label_key(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !p.split('.').all(is_dns_label))
    {
        return Err("the prefix must be a DNS subdomain such as example.com");
    }
    if !is_label_name(name) {
        return Err(
            "the name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_yaml_is_the_default_config() {
        assert_eq!(
            Config::parse(DEFAULT_YAML).expect("default parses"),
            Config::default()
        );
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::parse("").expect("empty"), Config::default());
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let err = Config::parse(
            "rules:\n  MG999: {action: deny}\n  MG101: {action: block}\n  MG103: {enforceAfter: next-week}\n  MG102:\n    labels: [\"bad key!\"]\nexemptions:\n  - {namespace: legacy}\nratcheting: maybe\ncolour: blue\n",
        )
        .expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "rules.MG999: unknown rule",
            "rules.MG101.action: unknown action `block`",
            "rules.MG103.enforceAfter: `next-week` is not an RFC 3339 timestamp",
            "`bad key!` is not a valid label key",
            "exemptions[0]: an exemption needs a `reason`",
            "exemptions[0]: an exemption needs `rules`",
            "ratcheting: expected true or false",
            "colour: unknown key",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(err.problems.len(), 8, "{text}");
    }

    #[test]
    fn reads_parameters_and_timestamps() {
        let c = Config::parse(
            "revision: 1-24\nclusterDomain: corp.local\nrules:\n  MG405: {canarySteps: [0, 10, 50, 90, 100]}\n  MG407: {allowedHosts: [api.stripe.com, \"*.googleapis.com\"]}\n  MG409: {action: warn, enforceAfter: 2026-12-01T00:00:00Z}\nexemptions:\n  - {namespace: legacy, kind: Deployment, name: \"batch-*\", rules: [MG101], reason: migrating}\n",
        )
        .expect("valid");
        assert_eq!(c.revision.as_deref(), Some("1-24"));
        assert_eq!(c.cluster_domain, "corp.local");
        assert_eq!(c.canary_steps, vec![0, 10, 50, 90, 100]);
        assert_eq!(c.allowed_hosts.len(), 2);
        assert_eq!(c.gateway_passthrough, Passthrough::Allow);
        let at: Timestamp = "2026-12-01T00:00:00Z".parse().expect("ts");
        assert_eq!(c.rule(RuleId::MG409).enforce_after, Some(at));
        assert!(c.exemptions[0].matches("legacy", Kind::Deployment, "batch-7", RuleId::MG101));
        assert!(!c.exemptions[0].matches("legacy", Kind::Deployment, "web", RuleId::MG101));
        assert!(!c.exemptions[0].matches("legacy", Kind::Deployment, "batch-7", RuleId::MG102));
    }

    #[test]
    fn reads_the_passthrough_parameter_of_mg406_only() {
        let c = Config::parse("rules:\n  MG406: {passthrough: deny}\n").expect("valid");
        assert_eq!(c.gateway_passthrough, Passthrough::Deny);
        let err =
            Config::parse("rules:\n  MG406: {passthrough: maybe}\n  MG402: {passthrough: deny}\n")
                .expect_err("invalid");
        let text = err.to_string();
        assert!(
            text.contains("rules.MG406.passthrough: `maybe` is neither `allow` nor `deny`"),
            "{text}"
        );
        assert!(
            text.contains("rules.MG402.passthrough: unknown setting for MG402"),
            "{text}"
        );
        assert_eq!(err.problems.len(), 2, "{text}");
    }

    #[test]
    fn enforce_after_turns_warn_into_deny_from_that_instant() {
        let at: Timestamp = "2026-12-01T00:00:00Z".parse().expect("ts");
        let s = RuleSettings {
            action: Action::Warn,
            enforce_after: Some(at),
        };
        assert_eq!(
            s.action_at("2026-11-30T23:59:59Z".parse().expect("ts")),
            Action::Warn
        );
        assert_eq!(s.action_at(at), Action::Deny);
        let off = RuleSettings {
            action: Action::Off,
            enforce_after: Some(at),
        };
        assert_eq!(off.action_at(at), Action::Off);
    }

    #[test]
    fn globs() {
        assert!(glob_match("batch-*", "batch-1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b", "ab-"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn label_keys() {
        assert!(check_label_key("app").is_ok());
        assert!(check_label_key("app.kubernetes.io/name").is_ok());
        assert!(check_label_key("bad key").is_err());
        assert!(check_label_key("/name").is_err());
        assert!(check_label_key("UPPER.example/x").is_err());
    }
}

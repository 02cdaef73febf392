//! The policy engine: one pure `evaluate` shared by the webhooks, `review`
//! and the audits (CONVENTIONS habit 3).
//!
//! It decides what is evaluated at all (operations, subresources, kinds,
//! controller-owned objects, exempt namespaces, `meshguard.io/mode`), runs
//! the rules, turns violations into findings with their effective action
//! (configured action, `enforceAfter`, namespace mode, ratcheting,
//! exemptions) and builds the mutations. No I/O, no clock, no async: the
//! caller passes `now` and the namespace's labels.

use jiff::Timestamp;

use crate::config::Config;
use crate::lenient::Labels;
use crate::mesh::MeshIndex;
use crate::mutate::{self, Mutation};
use crate::object::{Family, Kind, Object};
use crate::rules::{self, Action, Context, NamespaceLabels, RuleId, Violation};

/// Namespace label capping every rule's action (SPEC section 2).
pub const MODE_LABEL: &str = "meshguard.io/mode";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Operation> {
        match s {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            "CONNECT" => Some(Operation::Connect),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// Which webhook is answering: the validating one judges, the mutating one
/// patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Webhook {
    Validate,
    Mutate,
}

impl Webhook {
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        }
    }
}

/// The old object of an UPDATE, parsed only if ratcheting needs it.
#[derive(Debug, Clone, Copy)]
pub enum OldObject<'r> {
    Parsed(&'r Object<'r>),
    Json(&'r str),
}

/// One request to judge, however it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Request<'r> {
    pub operation: Operation,
    pub kind: Kind,
    /// The request's namespace (empty for cluster-scoped objects).
    pub namespace: &'r str,
    /// `None` on DELETE.
    pub object: Option<&'r Object<'r>>,
    pub old_object: Option<OldObject<'r>>,
    /// A subresource (`status`, `scale`, ...) is never evaluated.
    pub subresource: bool,
}

/// Why nothing was evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Operation,
    Subresource,
    NoObject,
    UnjudgedKind,
    ControllerOwned,
    ExemptNamespace,
    ModeOff,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Operation => "operation is never judged",
            Skip::Subresource => "subresources are never judged",
            Skip::NoObject => "the request carries no object",
            Skip::UnjudgedKind => "meshguard does not judge this kind",
            Skip::ControllerOwned => "owned by a controller, which was judged already",
            Skip::ExemptNamespace => "exempt namespace",
            Skip::ModeOff => "namespace has meshguard.io/mode=off",
        }
    }
}

/// A violation with its effective action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: RuleId,
    pub action: Action,
    pub path: String,
    pub message: String,
    pub fix: String,
    /// Denied by the rule, but the old object already broke it (UPDATE).
    pub ratcheted: bool,
}

/// The engine's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub findings: Vec<Finding>,
    pub mutations: Vec<Mutation>,
    pub skipped: Option<Skip>,
}

impl Decision {
    fn skipped(why: Skip) -> Decision {
        Decision {
            skipped: Some(why),
            ..Decision::default()
        }
    }

    pub fn allowed(&self) -> bool {
        !self.findings.iter().any(|f| f.action == Action::Deny)
    }

    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.action == action)
    }
}

/// The per-namespace cap of SPEC section 2; `None` means `off`.
fn mode_cap(labels: NamespaceLabels<'_>) -> Option<Action> {
    match labels.get(MODE_LABEL) {
        Some("off") => None,
        Some("audit") => Some(Action::Audit),
        Some("warn") => Some(Action::Warn),
        // `enforce`, absent, or a value we do not know: rules keep their
        // configured action (an unknown value must not weaken policy).
        _ => Some(Action::Deny),
    }
}

/// Judges (validate) or patches (mutate) one request, without the mesh
/// index (MG5xx are not evaluated).
pub fn evaluate(
    request: &Request<'_>,
    config: &Config,
    namespace_labels: Option<&Labels<'_>>,
    now: Timestamp,
    webhook: Webhook,
) -> Decision {
    evaluate_in_mesh(request, config, namespace_labels, None, now, webhook)
}

/// Judges or patches one request; with a mesh index, the cross-object
/// rules MG5xx judge Istio objects against it (SPEC section 10).
pub fn evaluate_in_mesh(
    request: &Request<'_>,
    config: &Config,
    namespace_labels: Option<&Labels<'_>>,
    mesh: Option<&MeshIndex>,
    now: Timestamp,
    webhook: Webhook,
) -> Decision {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Decision::skipped(Skip::Operation);
    }
    if request.subresource {
        return Decision::skipped(Skip::Subresource);
    }
    let Some(object) = request.object else {
        return Decision::skipped(Skip::NoObject);
    };
    let family = request.kind.family();
    if family == Family::Other {
        return Decision::skipped(Skip::UnjudgedKind);
    }
    if object.is_controller_owned() {
        return Decision::skipped(Skip::ControllerOwned);
    }
    // A Namespace is judged by its own labels and is its own namespace.
    let own_labels;
    let (namespace, labels) = if request.kind == Kind::Namespace {
        own_labels = object.meta.labels.get().cloned().unwrap_or_default();
        (object.name(), NamespaceLabels::Known(&own_labels))
    } else {
        let ns = if request.namespace.is_empty() {
            object.meta.namespace.as_str().unwrap_or("")
        } else {
            request.namespace
        };
        let labels = match namespace_labels {
            Some(l) => NamespaceLabels::Known(l),
            None => NamespaceLabels::Unknown,
        };
        (ns, labels)
    };
    // Istio resources are judged in exempt namespaces too: istio-system is
    // where mesh-wide policy lives (SPEC section 2).
    if family != Family::Istio && config.is_exempt_namespace(namespace) {
        return Decision::skipped(Skip::ExemptNamespace);
    }
    let Some(cap) = mode_cap(labels) else {
        return Decision::skipped(Skip::ModeOff);
    };
    let ctx = Context {
        namespace,
        namespace_labels: labels,
        config,
        mesh,
    };
    match webhook {
        Webhook::Mutate => Decision {
            mutations: mutations(object, config),
            ..Decision::default()
        },
        Webhook::Validate => {
            let mut findings = judge(object, &ctx, cap, now);
            if request.operation == Operation::Update && config.ratcheting {
                ratchet(&mut findings, request, &ctx);
            }
            Decision {
                findings,
                ..Decision::default()
            }
        }
    }
}

fn mutations(object: &Object<'_>, config: &Config) -> Vec<Mutation> {
    let m = &config.mutations;
    let mutation = match object.kind.family() {
        Family::Namespace if m.namespace_injection => mutate::namespace_injection(object, config),
        Family::Workload if m.sidecar_marker => mutate::sidecar_marker(object, config),
        _ => None,
    };
    mutation.into_iter().collect()
}

/// Runs the rules and gives each violation its effective action.
fn judge(object: &Object<'_>, ctx: &Context<'_>, cap: Action, now: Timestamp) -> Vec<Finding> {
    let config = ctx.config;
    rules::check(object, ctx)
        .into_iter()
        .filter_map(|v| {
            let mut action = config.rule(v.rule).action_at(now).min(cap);
            if v.advisory {
                action = action.min(Action::Warn);
            }
            if action == Action::Off {
                return None;
            }
            let exempt = config
                .exemptions
                .iter()
                .any(|e| e.matches(ctx.namespace, object.kind, object.name(), v.rule));
            (!exempt).then(|| finding(v, action))
        })
        .collect()
}

fn finding(v: Violation, action: Action) -> Finding {
    let fix = v.fix.unwrap_or_else(|| v.rule.info().fix.to_owned());
    Finding {
        rule: v.rule,
        action,
        path: v.path,
        message: v.message,
        fix,
        ratcheted: false,
    }
}

/// SPEC section 3: on UPDATE a rule denies only if the old object did not
/// already break it (rule id by rule id), so a legacy workload can still be
/// scaled or re-imaged but cannot get worse. Ratcheted findings stay visible
/// as warnings. The old object is parsed only when something would deny.
fn ratchet(findings: &mut [Finding], request: &Request<'_>, ctx: &Context<'_>) {
    if !findings.iter().any(|f| f.action == Action::Deny) {
        return;
    }
    let parsed;
    let old = match request.old_object {
        Some(OldObject::Parsed(o)) => o,
        Some(OldObject::Json(json)) => match Object::from_json(request.kind, json) {
            Ok(o) => {
                parsed = o;
                &parsed
            }
            Err(_) => return,
        },
        None => return,
    };
    // Same namespace context as the new object; a Namespace's own rule reads
    // the old object's own labels.
    let broken_before = rules::check(old, ctx);
    for f in findings.iter_mut().filter(|f| f.action == Action::Deny) {
        if broken_before.iter().any(|v| v.rule == f.rule) {
            f.action = Action::Warn;
            f.ratcheted = true;
        }
    }
}

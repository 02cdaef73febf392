//! The mesh index (SPEC section 10): what the cross-object questions need
//! to know about every object of the mesh, and nothing more.
//!
//! Built from the objects of an offline audit, of a cluster listing, or of
//! the server's watches; each surface only calls `apply`, `delete` and
//! `reset_kind` (CONVENTIONS habit 16). The entries keep labels, selectors,
//! service accounts, hosts, subsets, modes and rules, never whole objects.
//! Pure data: no I/O, no clock, no async. The posture (`posture`) and the
//! rules MG501-MG506 (`rules::mesh`) are pure functions of it; host
//! resolution and selector matching live in `mesh::hosts`.

pub mod hosts;
mod read;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::config::Config;
use crate::injection;
use crate::lenient::Labels;
use crate::object::{Kind, Object, PodTemplate};
use crate::rules::NamespaceLabels;

pub use read::entry_of;

/// Which workloads a policy applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// No selector (or an empty one): every workload of the namespace.
    All,
    /// Workloads whose pod-template labels carry every one of these.
    Labels(Labels<'static>),
    /// `targetRef`/`targetRefs`: waypoints and gateways, no sidecar workload.
    TargetRef,
}

impl Selector {
    pub fn matches(&self, labels: &Labels<'_>) -> bool {
        match self {
            Selector::All => true,
            Selector::Labels(wanted) => hosts::labels_match(wanted, labels),
            Selector::TargetRef => false,
        }
    }
}

/// A PeerAuthentication mode; ordered from the weakest to the strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Disable,
    Permissive,
    Strict,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Disable => "DISABLE",
            Mode::Permissive => "PERMISSIVE",
            Mode::Strict => "STRICT",
        }
    }
}

/// Which of two policies of one level is the oldest: by creation time, then
/// name; objects without a timestamp are newer than all others and keep the
/// order in which the index first saw them (SPEC section 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Age {
    pub created: Option<Timestamp>,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAuthentication {
    pub selector: Selector,
    /// `None`: `UNSET`, absent, or a value Istio does not know: the next
    /// level decides.
    pub mode: Option<Mode>,
    /// `portLevelMtls`, as (port, mode); `None` is `UNSET`.
    pub ports: Vec<(String, Option<Mode>)>,
    pub age: Age,
}

/// The `action` of an AuthorizationPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzAction {
    Allow,
    Deny,
    /// AUDIT, CUSTOM, or a value we do not know: never decides the class.
    Other,
}

/// One `from[].source`, with the identity fields MG504 and the class read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub principals: Vec<String>,
    pub not_principals: Vec<String>,
    pub namespaces: Vec<String>,
    pub not_namespaces: Vec<String>,
}

impl Source {
    /// Names its callers by principals or namespaces (a list holding `*`
    /// names nobody in particular).
    pub fn names_callers(&self) -> bool {
        let names = |list: &[String]| !list.is_empty() && !list.iter().any(|p| p == "*");
        names(&self.principals) || names(&self.namespaces)
    }

    pub fn uses_identity(&self) -> bool {
        !(self.principals.is_empty()
            && self.not_principals.is_empty()
            && self.namespaces.is_empty()
            && self.not_namespaces.is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthzRule {
    /// Empty when the rule has no `from`.
    pub from: Vec<Source>,
    /// A `when` condition on `source.principal` or `source.namespace`.
    pub when_identity: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationPolicy {
    pub selector: Selector,
    pub action: AuthzAction,
    /// Empty when the policy has no `rules` (an ALLOW policy then allows
    /// nothing).
    pub rules: Vec<AuthzRule>,
}

impl AuthorizationPolicy {
    /// Every rule admits callers only by who they are.
    pub fn by_identity(&self) -> bool {
        self.rules
            .iter()
            .all(|r| !r.from.is_empty() && r.from.iter().all(Source::names_callers))
    }

    /// Reads caller identities somewhere (MG505).
    pub fn uses_identity(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.when_identity || r.from.iter().any(Source::uses_identity))
    }
}

/// Where a DestinationRule, ServiceEntry or Service is visible (`exportTo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportTo(pub Vec<String>);

impl ExportTo {
    /// Whether an object of namespace `own` is visible from namespace `from`.
    pub fn visible(&self, own: &str, from: &str) -> bool {
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|e| e == "*" || (e == "." && own == from) || e == from)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    pub name: String,
    pub labels: Labels<'static>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRule {
    /// Lower case, as written.
    pub host: String,
    pub subsets: Vec<Subset>,
    pub export_to: ExportTo,
}

/// A route destination or mirror of a VirtualService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The field path, e.g. `spec.http[0].route[1].destination`.
    pub path: String,
    /// Lower case, as written.
    pub host: String,
    pub subset: Option<String>,
}

/// A gateway reference of a VirtualService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRef {
    pub path: String,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualService {
    pub destinations: Vec<Destination>,
    pub gateways: Vec<GatewayRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Lower case.
    pub hosts: Vec<String>,
    pub export_to: ExportTo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `None`: no selector (the Service selects no pods by itself).
    pub selector: Option<Labels<'static>>,
    pub export_to: ExportTo,
}

/// A workload: its pods' labels, identity and what injection is decided on.
#[derive(Debug, Clone)]
pub struct Workload {
    pub labels: Labels<'static>,
    pub service_account: String,
    /// The pod template trimmed to what `injection::decide` reads (labels,
    /// the injection annotation, `hostNetwork`).
    template: PodTemplate<'static>,
    template_field: &'static str,
}

/// One object read for the index: its kind, place and entry.
#[derive(Debug, Clone)]
pub struct Indexed {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub entry: Entry,
}

impl Indexed {
    /// `None` for what the index does not hold (see `entry_of`).
    pub fn of(object: &Object<'_>) -> Option<Indexed> {
        Some(Indexed {
            kind: object.kind,
            namespace: namespace_of(object).to_owned(),
            name: object.name().to_owned(),
            entry: entry_of(object, 0)?,
        })
    }
}

/// What the index holds for one object.
#[derive(Debug, Clone)]
pub enum Entry {
    Namespace(Labels<'static>),
    Workload(Box<Workload>),
    Service(Service),
    ServiceAccount,
    PeerAuthentication(PeerAuthentication),
    AuthorizationPolicy(AuthorizationPolicy),
    RequestAuthentication(Selector),
    DestinationRule(DestinationRule),
    VirtualService(VirtualService),
    Gateway,
    ServiceEntry(ServiceEntry),
    Sidecar(Selector),
}

/// Everything indexed in one namespace, by kind and name.
#[derive(Debug, Clone, Default)]
pub struct Space {
    /// `Some` when the Namespace object itself is indexed (or its labels
    /// were given: `audit --namespaces`, `--namespace-labels`).
    pub labels: Option<Labels<'static>>,
    /// Some object of the namespace (its Namespace included) was indexed;
    /// labels given on the side do not count.
    has_objects: bool,
    pub workloads: BTreeMap<(KindKey, String), Workload>,
    pub services: BTreeMap<String, Service>,
    pub service_accounts: BTreeSet<String>,
    pub peer_authentications: BTreeMap<String, PeerAuthentication>,
    pub authorization_policies: BTreeMap<String, AuthorizationPolicy>,
    pub request_authentications: BTreeMap<String, Selector>,
    pub destination_rules: BTreeMap<String, DestinationRule>,
    pub virtual_services: BTreeMap<String, VirtualService>,
    /// Istio and Gateway API Gateways.
    pub gateways: BTreeSet<(KindKey, String)>,
    pub service_entries: BTreeMap<String, ServiceEntry>,
    pub sidecars: BTreeMap<String, Selector>,
}

/// A kind as an ordered map key (its API name; the Gateway API's Gateway
/// apart from Istio's).
pub type KindKey = &'static str;

pub fn kind_key(kind: Kind) -> KindKey {
    match kind {
        Kind::KubeGateway => "Gateway.gateway.networking.k8s.io",
        k => k.as_str(),
    }
}

impl Space {
    fn is_empty(&self) -> bool {
        self.labels.is_none()
            && self.workloads.is_empty()
            && self.services.is_empty()
            && self.service_accounts.is_empty()
            && self.peer_authentications.is_empty()
            && self.authorization_policies.is_empty()
            && self.request_authentications.is_empty()
            && self.destination_rules.is_empty()
            && self.virtual_services.is_empty()
            && self.gateways.is_empty()
            && self.service_entries.is_empty()
            && self.sidecars.is_empty()
    }

    /// The namespace labels the injection decision reads.
    pub fn namespace_labels(&self) -> NamespaceLabels<'_> {
        match &self.labels {
            Some(l) => NamespaceLabels::Known(l),
            None => NamespaceLabels::Unknown,
        }
    }
}

/// How much of the mesh the index has seen (SPEC section 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// The objects of an offline audit: a namespace of which the input holds
    /// nothing may still exist, with objects of its own. With a namespace
    /// list (`audit --namespaces`), a namespace it does not list does not
    /// exist.
    Input { listed: Option<BTreeSet<String>> },
    /// A whole cluster (`audit --cluster`, the server's watches): a
    /// namespace exists when its Namespace object does.
    Cluster,
}

/// What the index can say about a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// It exists and the index holds its objects.
    Known,
    /// It does not exist.
    Absent,
    /// It may exist; its objects are not known (never judged).
    Unknown,
}

/// The index.
#[derive(Debug, Clone)]
pub struct MeshIndex {
    coverage: Coverage,
    spaces: BTreeMap<String, Space>,
    /// Input order of objects, for policies without a timestamp.
    next_seq: u64,
    ages: BTreeMap<(KindKey, String, String), u64>,
}

impl MeshIndex {
    pub fn new(coverage: Coverage) -> MeshIndex {
        MeshIndex {
            coverage,
            spaces: BTreeMap::new(),
            next_seq: 0,
            ages: BTreeMap::new(),
        }
    }

    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    /// Adds or replaces one object (the last version of an object wins).
    /// Kinds the index does not need, and controller-owned Pods and
    /// ReplicaSets, are ignored; returns whether the object was indexed.
    pub fn apply(&mut self, object: &Object<'_>) -> bool {
        match Indexed::of(object) {
            Some(indexed) => {
                self.insert(indexed);
                true
            }
            None => false,
        }
    }

    /// Adds or replaces one object already read.
    pub fn insert(&mut self, indexed: Indexed) {
        let Indexed {
            kind,
            namespace,
            name,
            mut entry,
        } = indexed;
        let kind = kind_key(kind);
        let key = (kind, namespace.clone(), name.clone());
        let seq = *self.ages.entry(key).or_insert_with(|| {
            self.next_seq += 1;
            self.next_seq
        });
        if let Entry::PeerAuthentication(p) = &mut entry {
            p.age.seq = seq;
        }
        let space = self.spaces.entry(namespace).or_default();
        space.has_objects = true;
        match entry {
            Entry::Namespace(labels) => space.labels = Some(labels),
            Entry::Workload(w) => {
                space.workloads.insert((kind, name), *w);
            }
            Entry::Service(s) => {
                space.services.insert(name, s);
            }
            Entry::ServiceAccount => {
                space.service_accounts.insert(name);
            }
            Entry::PeerAuthentication(p) => {
                space.peer_authentications.insert(name, p);
            }
            Entry::AuthorizationPolicy(p) => {
                space.authorization_policies.insert(name, p);
            }
            Entry::RequestAuthentication(s) => {
                space.request_authentications.insert(name, s);
            }
            Entry::DestinationRule(d) => {
                space.destination_rules.insert(name, d);
            }
            Entry::VirtualService(v) => {
                space.virtual_services.insert(name, v);
            }
            Entry::Gateway => {
                space.gateways.insert((kind, name));
            }
            Entry::ServiceEntry(s) => {
                space.service_entries.insert(name, s);
            }
            Entry::Sidecar(s) => {
                space.sidecars.insert(name, s);
            }
        }
    }

    /// Removes one object; `namespace` is the Namespace's own name for a
    /// Namespace.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) {
        let k = kind_key(kind);
        self.ages
            .remove(&(k, namespace.to_owned(), name.to_owned()));
        let Some(space) = self.spaces.get_mut(namespace) else {
            return;
        };
        match kind {
            Kind::Namespace => space.labels = None,
            Kind::Service => drop(space.services.remove(name)),
            Kind::ServiceAccount => drop(space.service_accounts.remove(name)),
            Kind::PeerAuthentication => drop(space.peer_authentications.remove(name)),
            Kind::AuthorizationPolicy => drop(space.authorization_policies.remove(name)),
            Kind::RequestAuthentication => drop(space.request_authentications.remove(name)),
            Kind::DestinationRule => drop(space.destination_rules.remove(name)),
            Kind::VirtualService => drop(space.virtual_services.remove(name)),
            Kind::Gateway | Kind::KubeGateway => drop(space.gateways.remove(&(k, name.to_owned()))),
            Kind::ServiceEntry => drop(space.service_entries.remove(name)),
            Kind::Sidecar => drop(space.sidecars.remove(name)),
            _ => drop(space.workloads.remove(&(k, name.to_owned()))),
        }
        if space.is_empty() {
            self.spaces.remove(namespace);
        }
    }

    /// Replaces every object of `kind` by `objects` (a watch's re-list).
    pub fn reset_kind(&mut self, kind: Kind, objects: impl IntoIterator<Item = Indexed>) {
        let stale: Vec<(String, String)> = self
            .ages
            .keys()
            .filter(|(k, _, _)| *k == kind_key(kind))
            .map(|(_, ns, name)| (ns.clone(), name.clone()))
            .collect();
        for (ns, name) in stale {
            self.delete(kind, &ns, &name);
        }
        for indexed in objects {
            self.insert(indexed);
        }
    }

    /// The labels of a namespace known from elsewhere (`audit
    /// --namespaces`), unless its Namespace object is indexed.
    pub fn default_namespace_labels(&mut self, namespace: &str, labels: Labels<'static>) {
        let space = self.spaces.entry(namespace.to_owned()).or_default();
        space.labels.get_or_insert(labels);
    }

    /// Adds labels to a namespace (`audit --namespace-labels`).
    pub fn add_namespace_label(&mut self, namespace: &str, key: &str, value: &str) {
        let space = self.spaces.entry(namespace.to_owned()).or_default();
        space
            .labels
            .get_or_insert_with(Labels::default)
            .insert(key.to_owned(), value.to_owned());
    }

    pub fn space(&self, namespace: &str) -> Option<&Space> {
        self.spaces.get(namespace)
    }

    /// A namespace's space with the index's own copy of its name.
    pub fn space_entry(&self, namespace: &str) -> Option<(&str, &Space)> {
        self.spaces
            .get_key_value(namespace)
            .map(|(n, s)| (n.as_str(), s))
    }

    pub fn spaces(&self) -> impl Iterator<Item = (&str, &Space)> {
        self.spaces.iter().map(|(n, s)| (n.as_str(), s))
    }

    /// Number of objects indexed.
    pub fn len(&self) -> usize {
        self.ages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ages.is_empty()
    }

    /// What the index knows of a namespace.
    pub fn presence(&self, namespace: &str) -> Presence {
        let space = self.spaces.get(namespace);
        match &self.coverage {
            Coverage::Cluster => match space {
                Some(s) if s.labels.is_some() => Presence::Known,
                _ => Presence::Absent,
            },
            Coverage::Input { listed } => match (space, listed) {
                (Some(s), _) if s.has_objects => Presence::Known,
                (None, Some(list)) if !list.contains(namespace) => Presence::Absent,
                _ => Presence::Unknown,
            },
        }
    }

    /// Whether service account `name` exists in `namespace`: `None` when the
    /// index cannot tell. `default` exists in every namespace; offline, an
    /// account a workload runs under exists (the API server refuses pods
    /// whose account does not).
    pub fn service_account_exists(&self, namespace: &str, name: &str) -> Option<bool> {
        match self.presence(namespace) {
            Presence::Unknown => None,
            Presence::Absent => Some(false),
            Presence::Known => {
                let space = self.spaces.get(namespace)?;
                Some(
                    name == "default"
                        || space.service_accounts.contains(name)
                        || space.workloads.values().any(|w| w.service_account == name),
                )
            }
        }
    }
}

impl Workload {
    /// SPEC section 4: whether its pods get a sidecar in this namespace.
    pub fn sidecar(&self, namespace: &str, labels: NamespaceLabels<'_>) -> bool {
        injection::decide(&self.template, self.template_field, namespace, labels).injected
    }
}

/// The namespace an object lives in: its own, else `default`; a Namespace's
/// own name.
pub fn namespace_of<'o>(object: &'o Object<'_>) -> &'o str {
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

/// Whether a namespace's workloads count in the posture (SPEC section 10:
/// non-exempt namespaces, `meshguard.io/mode: off` ones included).
pub fn in_posture(config: &Config, namespace: &str) -> bool {
    !config.is_exempt_namespace(namespace)
}

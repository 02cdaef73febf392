//! The posture of every workload (SPEC section 10): does it get a sidecar,
//! which mTLS mode its pods accept by Istio's PeerAuthentication
//! precedence, and which AuthorizationPolicies decide who may call it; and
//! the mesh's two targets, 100% encrypted and 100% authorized. A pure
//! function of the mesh index.

use crate::config::Config;
use crate::mesh::{
    AuthorizationPolicy, AuthzAction, MeshIndex, Mode, PeerAuthentication, Space, Workload,
};

/// The effective mTLS of a workload's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mtls {
    /// No sidecar: nothing terminates mTLS.
    None,
    Mode(Mode),
}

impl Mtls {
    pub fn as_str(self) -> &'static str {
        match self {
            Mtls::None => "none",
            Mtls::Mode(m) => m.as_str(),
        }
    }
}

/// Who may call a workload, by the ALLOW policies that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Authz {
    /// No ALLOW policy applies: every caller is allowed.
    Open,
    /// Every ALLOW policy that applies has no rules: nothing is allowed.
    DenyAll,
    /// Callers are admitted by principal or namespace only.
    Identity,
    /// Some rule admits callers by something else, or by nothing.
    Broad,
}

impl Authz {
    pub const ALL: [Authz; 4] = [Authz::Open, Authz::DenyAll, Authz::Identity, Authz::Broad];

    pub fn as_str(self) -> &'static str {
        match self {
            Authz::Open => "open",
            Authz::DenyAll => "deny-all",
            Authz::Identity => "identity",
            Authz::Broad => "broad",
        }
    }
}

/// One workload's posture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadPosture {
    pub namespace: String,
    pub kind: &'static str,
    pub name: String,
    pub sidecar: bool,
    pub mtls: Mtls,
    /// `namespace/name` of the PeerAuthentication that decides the mode;
    /// `None` when Istio's default (PERMISSIVE) does, or without a sidecar.
    pub mtls_from: Option<String>,
    pub authz: Authz,
    /// `namespace/name` of every AuthorizationPolicy that applies.
    pub authz_from: Vec<String>,
}

impl WorkloadPosture {
    pub fn encrypted(&self) -> bool {
        self.sidecar && self.mtls == Mtls::Mode(Mode::Strict)
    }

    pub fn authorized(&self) -> bool {
        matches!(self.authz, Authz::Identity | Authz::DenyAll)
    }
}

/// The mesh's posture: every workload of the non-exempt namespaces, by
/// namespace and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Posture {
    pub workloads: Vec<WorkloadPosture>,
}

impl Posture {
    pub fn encrypted(&self) -> usize {
        self.workloads.iter().filter(|w| w.encrypted()).count()
    }

    pub fn authorized(&self) -> usize {
        self.workloads.iter().filter(|w| w.authorized()).count()
    }

    /// `part` of the workloads, in percent (100 when there are none).
    pub fn percent(&self, part: usize) -> f64 {
        if self.workloads.is_empty() {
            100.0
        } else {
            part as f64 * 100.0 / self.workloads.len() as f64
        }
    }
}

/// The posture of every workload in a non-exempt namespace.
pub fn of_mesh(index: &MeshIndex, config: &Config) -> Posture {
    let mut workloads = Vec::new();
    for (namespace, space) in index.spaces() {
        if !crate::mesh::in_posture(config, namespace) {
            continue;
        }
        for ((kind, name), w) in &space.workloads {
            workloads.push(of_workload(index, config, namespace, space, kind, name, w));
        }
    }
    Posture { workloads }
}

/// One workload's posture.
pub fn of_workload(
    index: &MeshIndex,
    config: &Config,
    namespace: &str,
    space: &Space,
    kind: &'static str,
    name: &str,
    w: &Workload,
) -> WorkloadPosture {
    let (sidecar, mtls, mtls_from) = effective_mtls(index, config, namespace, space, w);
    let applied = authorization_policies(index, config, namespace, w);
    WorkloadPosture {
        namespace: namespace.to_owned(),
        kind,
        name: name.to_owned(),
        sidecar,
        mtls,
        mtls_from,
        authz: authz_class(applied.iter().map(|(_, _, p)| *p)),
        authz_from: applied
            .iter()
            .map(|(ns, n, _)| format!("{ns}/{n}"))
            .collect(),
    }
}

/// Whether the workload gets a sidecar, and its effective mTLS with the
/// PeerAuthentication that decides it.
pub fn effective_mtls(
    index: &MeshIndex,
    config: &Config,
    namespace: &str,
    space: &Space,
    w: &Workload,
) -> (bool, Mtls, Option<String>) {
    if !w.sidecar(namespace, space.namespace_labels()) {
        return (false, Mtls::None, None);
    }
    let (mode, from) = mtls(index, config, namespace, space, w);
    (true, Mtls::Mode(mode), from)
}

/// The oldest of the policies that apply at one level (SPEC section 10).
fn oldest<'p>(
    policies: impl Iterator<Item = (&'p String, &'p PeerAuthentication)>,
) -> Option<(&'p String, &'p PeerAuthentication)> {
    policies.min_by(|(an, a), (bn, b)| {
        let key = |p: &PeerAuthentication| (p.age.created.is_none(), p.age.created);
        key(a).cmp(&key(b)).then_with(|| {
            if a.age.created.is_some() {
                an.cmp(bn)
            } else {
                a.age.seq.cmp(&b.age.seq)
            }
        })
    })
}

/// The effective mode by Istio's precedence: a matching selector policy of
/// the namespace, else the namespace's policy without a selector, else the
/// root namespace's policy without a selector, else PERMISSIVE; `UNSET`
/// defers to the next level; port-level modes count on a selector policy
/// only; the weakest of the workload's and its ports' modes wins.
fn mtls(
    index: &MeshIndex,
    config: &Config,
    namespace: &str,
    space: &Space,
    w: &Workload,
) -> (Mode, Option<String>) {
    use crate::mesh::Selector;
    let own = &space.peer_authentications;
    let workload_level = oldest(own.iter().filter(|(_, p)| {
        matches!(p.selector, Selector::Labels(_)) && p.selector.matches(&w.labels)
    }));
    let namespace_level = oldest(own.iter().filter(|(_, p)| p.selector == Selector::All));
    let root = &config.root_namespace;
    let root_level = if namespace == root {
        None
    } else {
        index.space(root).and_then(|s| {
            oldest(
                s.peer_authentications
                    .iter()
                    .filter(|(_, p)| p.selector == Selector::All),
            )
        })
    };
    let levels = [
        workload_level.map(|(n, p)| (namespace, n, p)),
        namespace_level.map(|(n, p)| (namespace, n, p)),
        root_level.map(|(n, p)| (root.as_str(), n, p)),
    ];
    let (mut mode, mut from) = levels
        .iter()
        .flatten()
        .find_map(|(ns, n, p)| p.mode.map(|m| (m, Some(format!("{ns}/{n}")))))
        .unwrap_or((Mode::Permissive, None));
    if let Some((n, p)) = workload_level {
        let base = mode;
        for port_mode in p.ports.iter().map(|(_, m)| m.unwrap_or(base)) {
            if port_mode < mode {
                mode = port_mode;
                from = Some(format!("{namespace}/{n}"));
            }
        }
    }
    (mode, from)
}

/// The AuthorizationPolicies that apply to a workload: those of the root
/// namespace and of its own, without a selector or with a matching one
/// (`targetRef` policies bind waypoints and gateways, not sidecars).
pub fn authorization_policies<'i>(
    index: &'i MeshIndex,
    config: &Config,
    namespace: &'i str,
    w: &Workload,
) -> Vec<(&'i str, &'i str, &'i AuthorizationPolicy)> {
    let root = config.root_namespace.as_str();
    let mut out = Vec::new();
    let mut namespaces = vec![root];
    if namespace != root {
        namespaces.push(namespace);
    }
    for ns in namespaces {
        let Some((ns, space)) = index.space_entry(ns) else {
            continue;
        };
        for (name, p) in &space.authorization_policies {
            if p.selector.matches(&w.labels) {
                out.push((ns, name.as_str(), p));
            }
        }
    }
    out
}

/// SPEC section 10: only ALLOW policies decide the class.
pub fn authz_class<'p>(policies: impl Iterator<Item = &'p AuthorizationPolicy>) -> Authz {
    let allow: Vec<_> = policies
        .filter(|p| p.action == AuthzAction::Allow)
        .collect();
    if allow.is_empty() {
        Authz::Open
    } else if allow.iter().all(|p| p.rules.is_empty()) {
        Authz::DenyAll
    } else if allow.iter().all(|p| p.by_identity()) {
        Authz::Identity
    } else {
        Authz::Broad
    }
}

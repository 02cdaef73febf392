//! The rule catalogue (SPEC section 4) and what a rule returns.
//!
//! Rules are pure functions from an object view and its context to
//! violations; they live in `rules/<family>.rs`. This module owns the stable
//! ids, names, default actions and the texts (`meshguard rules`,
//! `meshguard explain`). It does not decide actions: that is the engine's job.

pub mod istio;
pub mod mesh;
pub mod namespace;
pub mod service;
pub mod workload;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::config::Config;
use crate::lenient::Labels;
use crate::object::Object;

/// What happens when a rule is broken (SPEC section 3). Ordered from the
/// mildest to the strictest so that `min`/`max` cap and raise actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Off,
    Audit,
    Warn,
    Deny,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Deny, Action::Warn, Action::Audit, Action::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Off => "off",
            Action::Audit => "audit",
            Action::Warn => "warn",
            Action::Deny => "deny",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown action `{s}` (expected deny, warn, audit or off)"))
    }
}

/// The stable rule ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    MG101,
    MG102,
    MG103,
    MG104,
    MG105,
    MG106,
    MG107,
    MG108,
    MG201,
    MG301,
    MG401,
    MG402,
    MG403,
    MG404,
    MG405,
    MG406,
    MG407,
    MG408,
    MG409,
    MG501,
    MG502,
    MG503,
    MG504,
    MG505,
    MG506,
}

impl RuleId {
    pub const ALL: [RuleId; 25] = [
        RuleId::MG101,
        RuleId::MG102,
        RuleId::MG103,
        RuleId::MG104,
        RuleId::MG105,
        RuleId::MG106,
        RuleId::MG107,
        RuleId::MG108,
        RuleId::MG201,
        RuleId::MG301,
        RuleId::MG401,
        RuleId::MG402,
        RuleId::MG403,
        RuleId::MG404,
        RuleId::MG405,
        RuleId::MG406,
        RuleId::MG407,
        RuleId::MG408,
        RuleId::MG409,
        RuleId::MG501,
        RuleId::MG502,
        RuleId::MG503,
        RuleId::MG504,
        RuleId::MG505,
        RuleId::MG506,
    ];

    /// Position in `ALL`, for per-rule tables.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn info(self) -> &'static RuleInfo {
        &CATALOGUE[self.index()]
    }

    pub fn as_str(self) -> &'static str {
        self.info().id_str
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for RuleId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        RuleId::ALL
            .into_iter()
            .find(|id| id.as_str() == upper || id.name() == s)
            .ok_or_else(|| format!("unknown rule `{s}` (run `meshguard rules` for the list)"))
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The fixed description of a rule.
#[derive(Debug)]
pub struct RuleInfo {
    pub id: RuleId,
    pub id_str: &'static str,
    pub name: &'static str,
    pub default_action: Action,
    /// One line for `meshguard rules`.
    pub summary: &'static str,
    /// Why the rule exists: which mesh property breaks without it.
    pub rationale: &'static str,
    /// How to fix a violation, shown with every finding.
    pub fix: &'static str,
    /// A compliant YAML fragment, shown by `meshguard explain`.
    pub example: &'static str,
}

/// A broken rule, as a rule reports it (before the engine applies actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: RuleId,
    /// The JSON path of the offending field, e.g.
    /// `spec.template.spec.serviceAccountName`.
    pub path: String,
    /// What is wrong, naming the value found.
    pub message: String,
    /// Overrides the catalogue's fix text when the case needs its own.
    pub fix: Option<String>,
    /// Reported at most as `warn` whatever the configured action (used for
    /// accepted-but-deprecated forms).
    pub advisory: bool,
}

impl Violation {
    pub fn new(rule: RuleId, path: impl Into<String>, message: impl Into<String>) -> Violation {
        Violation {
            rule,
            path: path.into(),
            message: message.into(),
            fix: None,
            advisory: false,
        }
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Violation {
        self.fix = Some(fix.into());
        self
    }

    pub fn advisory(mut self) -> Violation {
        self.advisory = true;
        self
    }

    pub fn fix_text(&self) -> &str {
        self.fix.as_deref().unwrap_or(self.rule.info().fix)
    }
}

/// What a rule may know about the object's namespace (SPEC section 2).
#[derive(Debug, Clone, Copy)]
pub enum NamespaceLabels<'n> {
    Known(&'n Labels<'n>),
    /// Not in the namespace view: rules fall back to the pod's own markers
    /// and say so.
    Unknown,
}

impl<'n> NamespaceLabels<'n> {
    pub fn get(&self, key: &str) -> Option<&'n str> {
        match self {
            NamespaceLabels::Known(l) => l.get(key),
            NamespaceLabels::Unknown => None,
        }
    }
}

/// Everything a rule sees besides the object itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'c> {
    pub namespace: &'c str,
    pub namespace_labels: NamespaceLabels<'c>,
    pub config: &'c Config,
    /// The mesh index, when the surface has one that is complete enough
    /// to judge MG5xx (SPEC section 10); `None`: MG5xx are not evaluated.
    pub mesh: Option<&'c crate::mesh::MeshIndex>,
}

/// Runs every rule of the object's family. Rules whose action is `off` are
/// skipped by the engine afterwards; rules are cheap enough that evaluating
/// them all keeps this dispatch simple.
pub fn check(object: &Object<'_>, ctx: &Context<'_>) -> Vec<Violation> {
    use crate::object::Family;
    let mut out = Vec::new();
    match object.kind.family() {
        Family::Workload => workload::check(object, ctx, &mut out),
        Family::Service => service::check(object, &mut out),
        Family::Namespace => namespace::check(object, &mut out),
        Family::Istio => {
            istio::check(object, ctx, &mut out);
            if let Some(index) = ctx.mesh {
                mesh::check(object, ctx, index, &mut out);
            }
        }
        Family::Other => {}
    }
    out
}

macro_rules! rule {
    ($id:ident, $name:literal, $action:ident, $summary:literal, $rationale:literal, $fix:literal, $example:literal) => {
        RuleInfo {
            id: RuleId::$id,
            id_str: stringify!($id),
            name: $name,
            default_action: Action::$action,
            summary: $summary,
            rationale: $rationale,
            fix: $fix,
            example: $example,
        }
    };
}

/// The catalogue, in `RuleId::ALL` order.
pub static CATALOGUE: [RuleInfo; 25] = [
    rule!(
        MG101,
        "dedicated-service-account",
        Deny,
        "pods run under a dedicated service account, not `default`",
        "Istio derives every workload identity (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>) from the pod's service account. Pods that share `default` share one identity, so an AuthorizationPolicy that names a principal cannot tell them apart and least privilege is impossible.",
        "Create a ServiceAccount for the workload and set `serviceAccountName` in the pod template.",
        "spec:\n  template:\n    spec:\n      serviceAccountName: checkout"
    ),
    rule!(
        MG102,
        "mesh-labels",
        Deny,
        "pod templates carry the mesh labels (`app`, `version` by default)",
        "Istio's telemetry, Kiali's graph and every DestinationRule subset used for canary routing select pods by `app` and `version` (or `app.kubernetes.io/name` / `app.kubernetes.io/version`). A pod without them is invisible to dashboards and cannot be targeted by a canary split.",
        "Add the missing labels to the pod template's `metadata.labels` (not only to the Deployment's own metadata).",
        "spec:\n  template:\n    metadata:\n      labels:\n        app: checkout\n        version: v1"
    ),
    rule!(
        MG103,
        "sidecar-injection",
        Deny,
        "the pods will get an Istio sidecar",
        "A pod without a sidecar is outside the mesh: with STRICT mTLS nobody can call it, it calls others in plain text, and no AuthorizationPolicy, retry, timeout or telemetry applies to it. This rule follows Istio's own injection semantics (namespace labels, then the pod's label and annotation).",
        "Label the namespace `istio-injection=enabled` (or `istio.io/rev=<revision>`), and remove any `sidecar.istio.io/inject: \"false\"` from the pod template.",
        "metadata:\n  labels:\n    istio-injection: enabled   # on the Namespace"
    ),
    rule!(
        MG104,
        "sidecar-marker",
        Deny,
        "pod templates say `sidecar.istio.io/inject: \"true\"` explicitly",
        "An explicit marker keeps injection working when the workload moves to a namespace without the injection label, and makes the intent reviewable in the manifest. The label is the form Istio honours; the annotation is deprecated. meshguard's mutating webhook adds the label, so this fires at admission only when mutation is off or bypassed.",
        "Add the label `sidecar.istio.io/inject: \"true\"` to the pod template's `metadata.labels`.",
        "spec:\n  template:\n    metadata:\n      labels:\n        sidecar.istio.io/inject: \"true\""
    ),
    rule!(
        MG105,
        "proxy-uid",
        Deny,
        "no container runs as UID 1337, the sidecar proxy's UID",
        "Istio's iptables rules let traffic from UID 1337 bypass the sidecar so the proxy does not loop on itself. An application container running as 1337 escapes mTLS, authorization and telemetry entirely.",
        "Run the container as another UID: set `securityContext.runAsUser` to a value other than 1337 on the container or the pod.",
        "securityContext:\n  runAsUser: 10001\n  runAsNonRoot: true"
    ),
    rule!(
        MG106,
        "host-network",
        Deny,
        "pods do not use the host network",
        "The sidecar injector skips `hostNetwork` pods: they cannot be in the mesh, and their traffic bypasses every mesh policy.",
        "Remove `hostNetwork: true`, or run the workload in an exempt namespace if it truly needs the node's network.",
        "spec:\n  template:\n    spec:\n      hostNetwork: false"
    ),
    rule!(
        MG107,
        "reserved-names-and-ports",
        Deny,
        "containers do not use the proxy's names or ports",
        "The names `istio-proxy`, `istio-init` and `istio-validation` belong to containers the injector adds; a look-alike could claim the proxy's privileges or confuse the injector. Ports 15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053 and 15090 are taken by the proxy: an application port there breaks traffic capture or health checks.",
        "Rename the container and move the application off the proxy's ports.",
        "containers:\n- name: app\n  ports:\n  - containerPort: 8080"
    ),
    rule!(
        MG108,
        "misplaced-marker",
        Warn,
        "injection markers sit on the pod template, not on the controller",
        "`sidecar.istio.io/inject` and `istio.io/rev` on a Deployment's (or other controller's) own metadata do nothing: the injector only sees the pods, which get their labels and annotations from the pod template.",
        "Move the label or annotation from `metadata` to `spec.template.metadata.labels`.",
        "spec:\n  template:\n    metadata:\n      labels:\n        sidecar.istio.io/inject: \"true\""
    ),
    rule!(
        MG201,
        "service-port-protocol",
        Deny,
        "Service ports declare their protocol (name prefix or appProtocol)",
        "Istio picks the protocol of a Service port from `appProtocol` or from a name `<protocol>` / `<protocol>-<suffix>`. Without either it treats the traffic as opaque TCP: HTTP routing, retries, timeouts, canary weights and L7 authorization then silently do nothing.",
        "Name the port `<protocol>[-<suffix>]` (http, http2, https, grpc, grpc-web, tcp, tls, udp, mongo, mysql, redis) or set `appProtocol`.",
        "ports:\n- name: http-api\n  port: 80\n  targetPort: 8080"
    ),
    rule!(
        MG301,
        "namespace-injection",
        Deny,
        "namespaces switch sidecar injection on with exactly one label",
        "Injection is decided per namespace first. A namespace without `istio-injection=enabled` or `istio.io/rev` gets no sidecars unless every pod opts in; `istio-injection=disabled` turns the mesh off for the namespace; both labels at once leave it to Istio's precedence, and a revision upgrade then silently keeps the old proxies.",
        "Label the namespace with exactly one of `istio-injection=enabled` or `istio.io/rev=<revision>`.",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    istio-injection: enabled"
    ),
    rule!(
        MG401,
        "peer-authentication-strict",
        Deny,
        "PeerAuthentication keeps mTLS STRICT",
        "PERMISSIVE accepts plain text next to mTLS and DISABLE turns mTLS off: either lets any pod (or anything that reaches the pod network) call the workload without an identity, which defeats every principal-based AuthorizationPolicy.",
        "Set `mtls.mode: STRICT` (or leave it UNSET to inherit the mesh-wide STRICT policy), also in every `portLevelMtls` entry.",
        "spec:\n  mtls:\n    mode: STRICT"
    ),
    rule!(
        MG402,
        "destination-rule-mtls",
        Deny,
        "DestinationRules for in-mesh hosts keep ISTIO_MUTUAL TLS",
        "A DestinationRule's `tls` overrides Istio's automatic mTLS for the host it names. Any mode other than ISTIO_MUTUAL for an in-mesh service sends plain text or a foreign certificate to a server that demands STRICT mTLS, and the calls fail or bypass identity.",
        "Remove the `tls` block (auto mTLS applies) or set `tls.mode: ISTIO_MUTUAL`, in the traffic policy, its port-level settings and every subset.",
        "spec:\n  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL"
    ),
    rule!(
        MG403,
        "destination-rule-circuit-breaker",
        Warn,
        "DestinationRules set outlier detection and a connection pool",
        "Without `outlierDetection` a failing pod keeps receiving its share of traffic; without `connectionPool` a slow dependency can exhaust the caller's connections. Together they are the circuit breaker the rollout relies on.",
        "Add `outlierDetection` and `connectionPool` to the top-level `trafficPolicy`.",
        "spec:\n  trafficPolicy:\n    connectionPool:\n      tcp:\n        maxConnections: 100\n      http:\n        http1MaxPendingRequests: 100\n    outlierDetection:\n      consecutive5xxErrors: 5\n      interval: 10s\n      baseEjectionTime: 30s"
    ),
    rule!(
        MG404,
        "authorization-policy-least-privilege",
        Deny,
        "ALLOW AuthorizationPolicies do not allow everything",
        "An ALLOW policy with an empty rule, or a source that matches any caller, allows every request to the selected workloads and silently disables every narrower policy on them: least privilege is lost.",
        "Give every rule a `from` with the callers' `principals` (service-account identities) and, where possible, a `to` with the allowed methods and paths.",
        "spec:\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/shop/sa/frontend\"]\n    to:\n    - operation:\n        methods: [\"GET\"]"
    ),
    rule!(
        MG405,
        "virtual-service-weights",
        Deny,
        "VirtualService route weights add up to 100 and follow the canary steps",
        "Weights that do not add up to 100 are rejected or normalised by Istio in ways nobody reviewed, and a canary step outside the agreed plan (10% -> 50% -> 90% -> 100% for example) sends more traffic to an unproven version than intended.",
        "Make the weights of each route add up to 100, using only the configured canary steps.",
        "http:\n- route:\n  - destination: {host: checkout, subset: v1}\n    weight: 90\n  - destination: {host: checkout, subset: v2}\n    weight: 10"
    ),
    rule!(
        MG406,
        "gateway-tls",
        Deny,
        "Gateways keep TLS on HTTPS/TLS servers and redirect plain HTTP",
        "The ingress gateway is where traffic from outside enters the mesh. An HTTPS/TLS server without a `tls` block, with a `tls` that names no mode, or terminating TLS (SIMPLE, MUTUAL, OPTIONAL_MUTUAL) without a certificate, and a plain HTTP server that does not redirect, leave users in plain text or with a broken handshake. PASSTHROUGH and AUTO_PASSTHROUGH are fine: the stream stays encrypted end to end and the backend terminates it (Istio's multi-cluster east-west gateways depend on AUTO_PASSTHROUGH); the parameter `passthrough: deny` makes them violations where TLS must end at the edge.",
        "Give HTTPS/TLS servers `tls.mode: SIMPLE` (or MUTUAL / OPTIONAL_MUTUAL) with a `credentialName`, or an explicit PASSTHROUGH when the backend terminates TLS, and plain HTTP servers `tls.httpsRedirect: true`.",
        "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: [\"shop.example.com\"]\n  tls:\n    mode: SIMPLE\n    credentialName: shop-tls\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [\"shop.example.com\"]\n  tls:\n    httpsRedirect: true"
    ),
    rule!(
        MG407,
        "external-service-control",
        Deny,
        "ServiceEntries do not trust external hosts as in-mesh, and stay on the allowlist",
        "`location: MESH_INTERNAL` for a host outside the cluster makes Istio treat it as a mesh service (mTLS, identities) when it is not. Egress is only controlled if every external host is a reviewed one: the allowlist of external APIs.",
        "Use `location: MESH_EXTERNAL` for hosts outside the cluster domain, and add approved external hosts to the rule's `allowedHosts`.",
        "spec:\n  hosts: [\"api.stripe.com\"]\n  location: MESH_EXTERNAL\n  ports:\n  - {number: 443, name: https, protocol: TLS}\n  resolution: DNS"
    ),
    rule!(
        MG408,
        "egress-registry-only",
        Warn,
        "Sidecar resources do not allow any outbound traffic",
        "`outboundTrafficPolicy.mode: ALLOW_ANY` lets workloads call any host, bypassing the ServiceEntry allowlist that controls egress.",
        "Set `outboundTrafficPolicy.mode: REGISTRY_ONLY` and declare external hosts with ServiceEntries.",
        "spec:\n  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY"
    ),
    rule!(
        MG409,
        "route-timeout",
        Warn,
        "HTTP routes set a timeout",
        "Without a `timeout`, a slow dependency holds its callers for as long as it likes (Envoy's default is unbounded for most routes), and the slowness spreads up the call graph.",
        "Add a `timeout` to every HTTP route.",
        "http:\n- route:\n  - destination: {host: checkout}\n  timeout: 5s"
    ),
    rule!(
        MG501,
        "subset-defined",
        Warn,
        "VirtualService routes name subsets that a DestinationRule defines",
        "A route or mirror to a subset that no DestinationRule for its host defines has no Envoy cluster behind it: the share of traffic sent there fails with 503 (istioctl IST0101, Kiali KIA1107). It is the classic broken canary: 10% to `v2`, and `v2` was never declared.",
        "Add the subset (name and pod labels) to a DestinationRule for the destination's host, or route to a subset it defines.",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec:\n  host: checkout\n  subsets:\n  - name: v1\n    labels: {version: v1}\n  - name: v2\n    labels: {version: v2}"
    ),
    rule!(
        MG502,
        "subset-selects-pods",
        Warn,
        "DestinationRule subsets select at least one workload",
        "A subset's labels, together with the selector of the Service its host names, decide which pods get the subset's traffic. When no workload carries them (the subset says `version: v2`, the pods say `v2-canary`), the subset's cluster has no endpoints and its traffic fails with 503 (istioctl DestinationRuleSubsetNotSelectPods, Kiali KIA0203).",
        "Make the subset's labels match the pod-template labels of the workload it is meant for (and the Service's selector), or remove the subset.",
        "subsets:\n- name: v2\n  labels: {version: v2}   # the pods' template has version: v2"
    ),
    rule!(
        MG503,
        "selector-matches-workload",
        Warn,
        "policy selectors match at least one workload",
        "A PeerAuthentication, AuthorizationPolicy, RequestAuthentication or Sidecar with a workload selector applies only to workloads whose pod-template labels carry every selected label. A selector that matches nothing, usually a mistyped label, protects nothing while looking like it does (istioctl IST0127, Kiali KIA0004).",
        "Fix the selector's labels to those of the workload's pod template, or remove the selector to apply the policy to the whole namespace.",
        "spec:\n  selector:\n    matchLabels:\n      app: checkout   # as in the Deployment's spec.template.metadata.labels"
    ),
    rule!(
        MG504,
        "principal-exists",
        Warn,
        "AuthorizationPolicy principals and namespaces name identities that exist",
        "A principal `<trust-domain>/ns/<namespace>/sa/<service-account>` is a service account's identity. When that account (or the namespace) does not exist, the caller the rule meant to allow is refused, or the rule meant to deny is dead (Kiali KIA0106).",
        "Name the service account the caller's pods really run under (its `serviceAccountName`), or create the ServiceAccount; check the namespace's spelling.",
        "rules:\n- from:\n  - source:\n      principals: [\"cluster.local/ns/shop/sa/frontend\"]   # ServiceAccount frontend in shop"
    ),
    rule!(
        MG505,
        "authorization-needs-mtls",
        Warn,
        "identity-based AuthorizationPolicies apply only to workloads with STRICT mTLS",
        "Principals and namespaces are read from the caller's mTLS certificate. A plaintext caller of a PERMISSIVE workload carries no identity: ALLOW rules on identities refuse it and DENY rules on identities let it through. On a workload without a sidecar nothing enforces the policy at all (Kiali KIA0105).",
        "Make the selected workloads STRICT (a PeerAuthentication with `mtls.mode: STRICT` for them, their namespace or the mesh) and give them a sidecar.",
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}"
    ),
    rule!(
        MG506,
        "route-target-exists",
        Warn,
        "VirtualServices name Gateways and in-mesh hosts that exist",
        "A VirtualService bound to a Gateway that does not exist is never used, and a route or mirror to an in-mesh host that no Service or ServiceEntry provides goes nowhere. Istio expands only short names: `reviews.shop` and `reviews.shop.svc` name no Service (istioctl IST0101).",
        "Name an existing Gateway (`name`, `namespace/name`), and route to a Service by its short name or its full name `<service>.<namespace>.svc.<cluster-domain>`.",
        "http:\n- route:\n  - destination:\n      host: reviews.shop.svc.cluster.local"
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_in_id_order() {
        for (i, id) in RuleId::ALL.iter().enumerate() {
            assert_eq!(CATALOGUE[i].id, *id);
            assert_eq!(id.index(), i);
            assert_eq!(format!("{id:?}"), CATALOGUE[i].id_str);
        }
    }

    #[test]
    fn rule_ids_parse_by_id_and_name() {
        assert_eq!("MG103".parse::<RuleId>(), Ok(RuleId::MG103));
        assert_eq!("mg103".parse::<RuleId>(), Ok(RuleId::MG103));
        assert_eq!("sidecar-injection".parse::<RuleId>(), Ok(RuleId::MG103));
        assert!("MG999".parse::<RuleId>().is_err());
    }

    #[test]
    fn actions_order_from_mild_to_strict() {
        assert!(Action::Deny > Action::Warn);
        assert!(Action::Warn > Action::Audit);
        assert!(Action::Audit > Action::Off);
        assert!("block".parse::<Action>().is_err());
    }
}

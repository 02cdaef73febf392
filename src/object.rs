//! One view of any admitted or audited object (SPEC section 1).
//!
//! An object is read once, from JSON text (the webhook) or from a parsed
//! document (the audit), into the few fields the rules judge. The kind
//! decides which shape is read: the pod template of a workload (at the path
//! its kind keeps it), the ports of a Service, the labels of a Namespace,
//! the spec of an Istio resource. Everything is read leniently (see
//! `lenient`): a field of the wrong type is absent, never an error.
//!
//! This module knows nothing of rules or configuration.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::injection::{INJECT, REV, STATUS};
use crate::lenient::{Flag, Int, Labels, List, Obj, Text};

/// The kinds meshguard judges; everything else is `Other` and allowed
/// untouched (CONVENTIONS habit 4: one dispatch point by group/kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
    Rollout,
    Service,
    Namespace,
    PeerAuthentication,
    AuthorizationPolicy,
    DestinationRule,
    VirtualService,
    Gateway,
    ServiceEntry,
    Sidecar,
    RequestAuthentication,
    /// Not judged by any per-object rule; indexed for MG504 (SPEC section 10).
    ServiceAccount,
    /// A `gateway.networking.k8s.io` Gateway: not judged, indexed for MG506
    /// (Istio binds VirtualServices to it as to its own Gateways).
    KubeGateway,
    Other,
}

/// Which family of rules judges a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Workload,
    Service,
    Namespace,
    Istio,
    Other,
}

impl Kind {
    /// Every kind meshguard judges, in a stable order.
    pub const JUDGED: [Kind; 19] = [
        Kind::Pod,
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ReplicaSet,
        Kind::ReplicationController,
        Kind::Job,
        Kind::CronJob,
        Kind::Rollout,
        Kind::Service,
        Kind::Namespace,
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::DestinationRule,
        Kind::VirtualService,
        Kind::Gateway,
        Kind::ServiceEntry,
        Kind::Sidecar,
        Kind::RequestAuthentication,
    ];

    /// Maps an API group, version and kind to a judged kind. Only the
    /// versions whose schema we know are judged: an unknown version of a
    /// known kind is `Other`, so a new upstream schema is never denied by
    /// rules written for the old one.
    pub fn from_gvk(group: &str, version: &str, kind: &str) -> Kind {
        let known = match group {
            "" => version == "v1",
            "apps" => version == "v1",
            "batch" => matches!(version, "v1" | "v1beta1"),
            "argoproj.io" => version == "v1alpha1",
            "gateway.networking.k8s.io" => matches!(version, "v1" | "v1beta1"),
            "security.istio.io" | "networking.istio.io" => {
                matches!(version, "v1" | "v1beta1" | "v1alpha3")
            }
            _ => false,
        };
        if !known {
            return Kind::Other;
        }
        match (group, kind) {
            ("", "Pod") => Kind::Pod,
            ("", "ReplicationController") => Kind::ReplicationController,
            ("", "Service") => Kind::Service,
            ("", "Namespace") => Kind::Namespace,
            ("", "ServiceAccount") => Kind::ServiceAccount,
            ("apps", "Deployment") => Kind::Deployment,
            ("apps", "StatefulSet") => Kind::StatefulSet,
            ("apps", "DaemonSet") => Kind::DaemonSet,
            ("apps", "ReplicaSet") => Kind::ReplicaSet,
            ("batch", "Job") => Kind::Job,
            ("batch", "CronJob") => Kind::CronJob,
            ("argoproj.io", "Rollout") => Kind::Rollout,
            ("security.istio.io", "PeerAuthentication") => Kind::PeerAuthentication,
            ("security.istio.io", "AuthorizationPolicy") => Kind::AuthorizationPolicy,
            ("security.istio.io", "RequestAuthentication") => Kind::RequestAuthentication,
            ("networking.istio.io", "DestinationRule") => Kind::DestinationRule,
            ("networking.istio.io", "VirtualService") => Kind::VirtualService,
            ("networking.istio.io", "Gateway") => Kind::Gateway,
            ("networking.istio.io", "ServiceEntry") => Kind::ServiceEntry,
            ("networking.istio.io", "Sidecar") => Kind::Sidecar,
            ("gateway.networking.k8s.io", "Gateway") => Kind::KubeGateway,
            _ => Kind::Other,
        }
    }

    /// Maps a manifest's `apiVersion` (`group/version` or `version`) and kind.
    pub fn from_api_version(api_version: &str, kind: &str) -> Kind {
        match api_version.split_once('/') {
            Some((group, version)) => Kind::from_gvk(group, version, kind),
            None => Kind::from_gvk("", api_version, kind),
        }
    }

    pub fn family(self) -> Family {
        match self {
            Kind::Pod
            | Kind::Deployment
            | Kind::StatefulSet
            | Kind::DaemonSet
            | Kind::ReplicaSet
            | Kind::ReplicationController
            | Kind::Job
            | Kind::CronJob
            | Kind::Rollout => Family::Workload,
            Kind::Service => Family::Service,
            Kind::Namespace => Family::Namespace,
            Kind::PeerAuthentication
            | Kind::AuthorizationPolicy
            | Kind::DestinationRule
            | Kind::VirtualService
            | Kind::Gateway
            | Kind::ServiceEntry
            | Kind::Sidecar
            | Kind::RequestAuthentication => Family::Istio,
            Kind::ServiceAccount | Kind::KubeGateway | Kind::Other => Family::Other,
        }
    }

    /// The kind's name as the API spells it (`other` for unjudged kinds), a
    /// bounded value usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::Rollout => "Rollout",
            Kind::Service => "Service",
            Kind::Namespace => "Namespace",
            Kind::PeerAuthentication => "PeerAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::DestinationRule => "DestinationRule",
            Kind::VirtualService => "VirtualService",
            Kind::Gateway => "Gateway",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::Sidecar => "Sidecar",
            Kind::RequestAuthentication => "RequestAuthentication",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::KubeGateway => "Gateway",
            Kind::Other => "other",
        }
    }

    /// JSON Pointer tokens from the object root to its pod template
    /// (`template.metadata` and `template.spec` hang below), empty for a Pod.
    pub fn template_path(self) -> &'static [&'static str] {
        match self {
            Kind::Pod => &[],
            Kind::CronJob => &["spec", "jobTemplate", "spec", "template"],
            _ => &["spec", "template"],
        }
    }

    /// The dotted field path of the pod template, for messages.
    pub fn template_field(self) -> &'static str {
        match self {
            Kind::Pod => "",
            Kind::CronJob => "spec.jobTemplate.spec.template.",
            _ => "spec.template.",
        }
    }
}

/// `metadata` as the rules read it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Meta<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow)]
    pub namespace: Text<'a>,
    #[serde(borrow)]
    pub labels: Obj<Labels<'a>>,
    #[serde(borrow)]
    pub annotations: Obj<Annotations<'a>>,
    #[serde(rename = "ownerReferences")]
    pub owner_references: List<Obj<OwnerReference>>,
    /// Decides which PeerAuthentication is the oldest (SPEC section 10).
    #[serde(borrow, rename = "creationTimestamp")]
    pub creation_timestamp: Text<'a>,
}

impl<'a> Meta<'a> {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get().and_then(|l| l.get(key))
    }
    /// One of `READ_ANNOTATIONS` (the only ones kept).
    pub fn annotation(&self, key: &str) -> Option<&str> {
        debug_assert!(READ_ANNOTATIONS.contains(&key), "{key} is not kept");
        self.annotations.get().and_then(|a| a.0.get(key))
    }
    /// True when an owner reference says a controller manages this object.
    pub fn has_controller(&self) -> bool {
        self.owner_references
            .0
            .iter()
            .any(|r| r.get().is_some_and(|r| r.controller.is_true()))
    }
}

/// The annotations meshguard reads: `metadata.annotations` keeps only
/// these. The others are `Unread` (checked, never kept or unescaped):
/// `kubectl.kubernetes.io/last-applied-configuration` alone often weighs
/// more than the rest of the object.
pub const READ_ANNOTATIONS: [&str; 4] = [INJECT, STATUS, REV, SERVICE_EXPORT_TO];

/// Annotation limiting where a Service is visible, as Istio reads it.
pub const SERVICE_EXPORT_TO: &str = "networking.istio.io/exportTo";

/// `metadata.annotations`, only those of `READ_ANNOTATIONS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations<'a>(pub Labels<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Annotations<'a> {
    /// Read as the map in `Obj<Annotations>` (which handles every other
    /// shape).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Annotations<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Labels::read_entries(map, Vec::new(), |k| READ_ANNOTATIONS.contains(&k))
                    .map(Annotations)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct OwnerReference {
    pub controller: Flag,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SecurityContext {
    #[serde(rename = "runAsUser")]
    pub run_as_user: Int,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ContainerPort {
    #[serde(rename = "containerPort")]
    pub container_port: Int,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Container<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(rename = "securityContext")]
    pub security_context: Obj<SecurityContext>,
    pub ports: List<Obj<ContainerPort>>,
}

/// The parts of a pod spec the workload rules judge.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PodSpec<'a> {
    #[serde(borrow, rename = "serviceAccountName")]
    pub service_account_name: Text<'a>,
    #[serde(borrow, rename = "serviceAccount")]
    pub service_account: Text<'a>,
    #[serde(rename = "hostNetwork")]
    pub host_network: Flag,
    #[serde(rename = "securityContext")]
    pub security_context: Obj<SecurityContext>,
    #[serde(borrow)]
    pub containers: List<Obj<Container<'a>>>,
    #[serde(borrow, rename = "initContainers")]
    pub init_containers: List<Obj<Container<'a>>>,
}

impl<'a> PodSpec<'a> {
    /// Containers and init containers, each with the field name of its list
    /// and its index there (for messages that point at the exact place).
    pub fn all_containers(&self) -> impl Iterator<Item = (&'static str, usize, &Container<'a>)> {
        fn listed<'s, 'a>(
            field: &'static str,
            list: &'s List<Obj<Container<'a>>>,
        ) -> impl Iterator<Item = (&'static str, usize, &'s Container<'a>)> {
            list.0
                .iter()
                .enumerate()
                .filter_map(move |(i, c)| c.get().map(|c| (field, i, c)))
        }
        listed("containers", &self.containers)
            .chain(listed("initContainers", &self.init_containers))
    }
}

/// A pod template: the metadata its pods get and their spec.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PodTemplate<'a> {
    #[serde(borrow)]
    pub metadata: Obj<Meta<'a>>,
    #[serde(borrow)]
    pub spec: Obj<PodSpec<'a>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ServicePort<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow, rename = "appProtocol")]
    pub app_protocol: Text<'a>,
    pub port: Int,
}

/// What the rules read of an object, by family.
#[derive(Debug, Clone)]
pub enum Body<'a> {
    /// A workload's pod template; `None` when the object has none (an Argo
    /// Rollout that points at a Deployment through `workloadRef`, or a
    /// malformed object), in which case there is nothing to judge.
    Workload(Option<Box<PodTemplate<'a>>>),
    Service {
        ports: Vec<ServicePort<'a>>,
        /// `spec.selector`; `None` when absent or not a map (the Service
        /// then selects no pods by itself).
        selector: Option<Labels<'a>>,
    },
    /// `metadata`: whether the object has a `metadata` map at all (MGP1
    /// then adds its labels map inside it, else creates it: a manifest's
    /// Namespace may have none).
    Namespace {
        metadata: bool,
    },
    /// An Istio resource's `spec`, read as a generic value: Istio's schemas
    /// change under us, and the rules look fields up leniently.
    Istio(serde_json::Value),
    Other,
}

/// One admitted or audited object.
#[derive(Debug, Clone)]
pub struct Object<'a> {
    pub kind: Kind,
    pub meta: Meta<'a>,
    pub body: Body<'a>,
}

impl<'a> Object<'a> {
    /// Reads an object of a known kind from JSON text (the webhook's path).
    pub fn from_json(kind: Kind, json: &'a str) -> serde_json::Result<Object<'a>> {
        let mut de = serde_json::Deserializer::from_str(json);
        let object = Object::read(kind, &mut de)?;
        de.end()?;
        Ok(object)
    }

    /// Reads an object of a known kind from any self-describing deserializer
    /// (a `serde_json::Value` in the audit).
    pub fn read<D: Deserializer<'a>>(kind: Kind, d: D) -> Result<Object<'a>, D::Error> {
        match kind.family() {
            Family::Workload => Self::read_workload(kind, d),
            Family::Service => {
                let raw = Obj::<Shell<'a, ServiceSpec<'a>>>::deserialize(d)?
                    .0
                    .unwrap_or_default();
                let spec = raw.spec.0.unwrap_or_default();
                let ports = spec.ports.0.into_iter();
                let ports = ports.map(|p| p.0.unwrap_or_default()).collect();
                Ok(Object::new(
                    kind,
                    raw.metadata.0.unwrap_or_default(),
                    Body::Service {
                        ports,
                        selector: spec.selector.0,
                    },
                ))
            }
            Family::Namespace => {
                let raw = Obj::<Shell<'a, serde::de::IgnoredAny>>::deserialize(d)?
                    .0
                    .unwrap_or_default();
                let metadata = raw.metadata.is_present();
                Ok(Object::new(
                    kind,
                    raw.metadata.0.unwrap_or_default(),
                    Body::Namespace { metadata },
                ))
            }
            Family::Istio => {
                let raw = Obj::<Shell<'a, serde_json::Value>>::deserialize(d)?
                    .0
                    .unwrap_or_default();
                let spec = raw.spec.0.unwrap_or(serde_json::Value::Null);
                Ok(Object::new(
                    kind,
                    raw.metadata.0.unwrap_or_default(),
                    Body::Istio(spec),
                ))
            }
            Family::Other => {
                let raw = Obj::<Shell<'a, serde::de::IgnoredAny>>::deserialize(d)?
                    .0
                    .unwrap_or_default();
                Ok(Object::new(
                    kind,
                    raw.metadata.0.unwrap_or_default(),
                    Body::Other,
                ))
            }
        }
    }

    fn read_workload<D: Deserializer<'a>>(kind: Kind, d: D) -> Result<Object<'a>, D::Error> {
        let (meta, template) = match kind {
            Kind::Pod => {
                let raw = Obj::<Shell<'a, PodSpec<'a>>>::deserialize(d)?
                    .0
                    .unwrap_or_default();
                // A Pod is its own template: its metadata is the pods' metadata,
                // absent when the Pod has none (MGP2 then creates it).
                let template = PodTemplate {
                    metadata: Obj(raw.metadata.0.clone()),
                    spec: raw.spec,
                };
                (raw.metadata.0.unwrap_or_default(), Some(template))
            }
            Kind::CronJob => {
                let raw = Obj::<Shell<'a, CronJobSpec<'a>>>::deserialize(d)?
                    .0
                    .unwrap_or_default();
                let template = raw
                    .spec
                    .0
                    .and_then(|s| s.job_template.0)
                    .and_then(|j| j.spec.0)
                    .and_then(|s| s.template.0);
                (raw.metadata.0.unwrap_or_default(), template)
            }
            _ => {
                let raw = Obj::<Shell<'a, ControllerSpec<'a>>>::deserialize(d)?
                    .0
                    .unwrap_or_default();
                let spec = raw.spec.0.unwrap_or_default();
                // SPEC section 1: a Rollout with `workloadRef` has no template of
                // its own; the referenced Deployment is judged on its own.
                let template = if kind == Kind::Rollout && spec.workload_ref.is_present() {
                    None
                } else {
                    spec.template.0
                };
                (raw.metadata.0.unwrap_or_default(), template)
            }
        };
        Ok(Object::new(
            kind,
            meta,
            Body::Workload(template.map(Box::new)),
        ))
    }

    fn new(kind: Kind, meta: Meta<'a>, body: Body<'a>) -> Object<'a> {
        Object { kind, meta, body }
    }

    pub fn name(&self) -> &str {
        self.meta.name.as_str().unwrap_or("")
    }

    /// The pod template of a workload, if it has one.
    pub fn pod_template(&self) -> Option<&PodTemplate<'a>> {
        match &self.body {
            Body::Workload(t) => t.as_deref(),
            _ => None,
        }
    }

    /// SPEC section 1: a Pod or ReplicaSet with a controller owner is left to
    /// its controller, which was judged already.
    pub fn is_controller_owned(&self) -> bool {
        matches!(self.kind, Kind::Pod | Kind::ReplicaSet) && self.meta.has_controller()
    }
}

/// The outer shape every object shares.
#[derive(Debug, Deserialize)]
#[serde(default, bound(deserialize = "S: Deserialize<'de>, 'de: 'a"))]
struct Shell<'a, S> {
    #[serde(borrow)]
    metadata: Obj<Meta<'a>>,
    spec: Obj<S>,
}

impl<S> Default for Shell<'_, S> {
    fn default() -> Self {
        Shell {
            metadata: Obj(None),
            spec: Obj(None),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ControllerSpec<'a> {
    #[serde(borrow)]
    template: Obj<PodTemplate<'a>>,
    #[serde(rename = "workloadRef")]
    workload_ref: Obj<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CronJobSpec<'a> {
    #[serde(borrow, rename = "jobTemplate")]
    job_template: Obj<JobTemplate<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JobTemplate<'a> {
    #[serde(borrow)]
    spec: Obj<ControllerSpec<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServiceSpec<'a> {
    #[serde(borrow)]
    ports: List<Obj<ServicePort<'a>>>,
    #[serde(borrow)]
    selector: Obj<Labels<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_annotations_meshguard_reads_are_kept() {
        let json = r#"{"metadata":{"annotations":{
            "kubectl.kubernetes.io/last-applied-configuration":"{\"kind\":\"Deployment\"}",
            "sidecar.istio.io/inject":"true",
            "prometheus.io/port":"9090",
            "networking.istio.io/exportTo":"\u002e",
            "sidecar.istio.io/status":7}}}"#;
        let object = Object::from_json(Kind::Deployment, json).expect("valid");
        let kept = &object.meta.annotations.get().expect("a map").0;
        assert_eq!(
            kept,
            &Labels::from_pairs([
                ("sidecar.istio.io/inject", "true"),
                ("networking.istio.io/exportTo", "."),
            ])
        );
    }

    #[test]
    fn annotations_none_of_which_are_read_are_still_present() {
        let json = r#"{"metadata":{"annotations":{"a":"b"}}}"#;
        let object = Object::from_json(Kind::Deployment, json).expect("valid");
        assert!(object.meta.annotations.is_present());
        assert_eq!(
            object.meta.annotations.get().expect("a map").0,
            Labels::default()
        );
        let absent = Object::from_json(Kind::Deployment, r#"{"metadata":{"annotations":[1]}}"#);
        assert!(!absent.expect("valid").meta.annotations.is_present());
    }
}

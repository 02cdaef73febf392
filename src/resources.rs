//! The API resources meshguard reads from a cluster: every kind it judges
//! (SPEC section 1) and every kind the mesh index needs (section 10).
//! `audit --cluster` lists them and `serve` watches them; one table, so the
//! two never disagree, and the install's RBAC grants exactly these.

/// One resource: group, versions to try (newest first), kind, plural.
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    pub group: &'static str,
    pub versions: &'static [&'static str],
    pub kind: &'static str,
    pub plural: &'static str,
}

impl Resource {
    /// `group/version`, or the version alone for the core group.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    fn api_resource(&self, version: &str) -> kube::api::ApiResource {
        kube::api::ApiResource {
            group: self.group.to_owned(),
            version: version.to_owned(),
            api_version: self.api_version(version),
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
        }
    }

    /// A cluster-wide API of this resource at `version`.
    pub fn api(&self, client: &kube::Client, version: &str) -> kube::Api<kube::api::DynamicObject> {
        kube::Api::all_with(client.clone(), &self.api_resource(version))
    }

    /// The same API reading metadata only (`PartialObjectMetadata`).
    pub fn metadata_api(
        &self,
        client: &kube::Client,
        version: &str,
    ) -> kube::Api<kube::core::PartialObjectMeta<kube::api::DynamicObject>> {
        kube::Api::all_with(client.clone(), &self.api_resource(version))
    }

    /// `plural.group` (`plural` for the core group), as RBAC names it.
    pub fn name(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const fn r(
    group: &'static str,
    versions: &'static [&'static str],
    kind: &'static str,
    plural: &'static str,
) -> Resource {
    Resource {
        group,
        versions,
        kind,
        plural,
    }
}

const ISTIO: &[&str] = &["v1", "v1beta1", "v1alpha3"];
const ISTIO_SECURITY: &[&str] = &["v1", "v1beta1"];

/// Namespaces first: their labels are the context of the rest.
pub const RESOURCES: [Resource; 21] = [
    r("", &["v1"], "Namespace", "namespaces"),
    r("", &["v1"], "Pod", "pods"),
    r(
        "",
        &["v1"],
        "ReplicationController",
        "replicationcontrollers",
    ),
    r("", &["v1"], "Service", "services"),
    r("", &["v1"], "ServiceAccount", "serviceaccounts"),
    r("apps", &["v1"], "Deployment", "deployments"),
    r("apps", &["v1"], "StatefulSet", "statefulsets"),
    r("apps", &["v1"], "DaemonSet", "daemonsets"),
    r("apps", &["v1"], "ReplicaSet", "replicasets"),
    r("batch", &["v1"], "Job", "jobs"),
    r("batch", &["v1"], "CronJob", "cronjobs"),
    r("argoproj.io", &["v1alpha1"], "Rollout", "rollouts"),
    r(
        "security.istio.io",
        ISTIO_SECURITY,
        "PeerAuthentication",
        "peerauthentications",
    ),
    r(
        "security.istio.io",
        ISTIO_SECURITY,
        "AuthorizationPolicy",
        "authorizationpolicies",
    ),
    r(
        "security.istio.io",
        ISTIO_SECURITY,
        "RequestAuthentication",
        "requestauthentications",
    ),
    r(
        "networking.istio.io",
        ISTIO,
        "DestinationRule",
        "destinationrules",
    ),
    r(
        "networking.istio.io",
        ISTIO,
        "VirtualService",
        "virtualservices",
    ),
    r("networking.istio.io", ISTIO, "Gateway", "gateways"),
    r(
        "networking.istio.io",
        ISTIO,
        "ServiceEntry",
        "serviceentries",
    ),
    r("networking.istio.io", ISTIO, "Sidecar", "sidecars"),
    r(
        "gateway.networking.k8s.io",
        &["v1", "v1beta1"],
        "Gateway",
        "gateways",
    ),
];

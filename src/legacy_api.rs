//! API versions Kubernetes no longer serves (SPEC section 1).
//!
//! Old manifests still say `extensions/v1beta1`, `apps/v1beta1` or
//! `apps/v1beta2` for Deployments, DaemonSets, ReplicaSets and StatefulSets
//! (removed in Kubernetes 1.16) and `batch/v1beta1` for CronJobs (removed in
//! 1.25). Their pod template sits at the same path as in the `v1` kind, so
//! an offline audit judges them like that kind, and says that the API
//! server would refuse the manifest as written. A webhook never receives
//! them (the API server does not serve them), so only the audit asks.
//!
//! Pure lookup: no I/O, and nothing here decides whether an object is
//! judged.

use crate::object::Kind;

/// An API version of a kind that is no longer served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unserved {
    /// The kind it is judged as.
    pub kind: Kind,
    /// The API version as written in the manifest.
    pub api_version: &'static str,
    /// The served API version to use instead.
    pub replacement: &'static str,
    /// The Kubernetes release that stopped serving it.
    pub removed_in: &'static str,
}

impl Unserved {
    /// One sentence for findings and notes.
    pub fn note(&self) -> String {
        format!(
            "{} {} is no longer served (since Kubernetes {}): the API server refuses this manifest until apiVersion is {}",
            self.api_version,
            self.kind.as_str(),
            self.removed_in,
            self.replacement
        )
    }
}

/// (old API version, kind, replacement, removed in).
const TABLE: [(&str, Kind, &str, &str); 13] = [
    ("extensions/v1beta1", Kind::Deployment, "apps/v1", "1.16"),
    ("extensions/v1beta1", Kind::DaemonSet, "apps/v1", "1.16"),
    ("extensions/v1beta1", Kind::ReplicaSet, "apps/v1", "1.16"),
    ("extensions/v1beta1", Kind::StatefulSet, "apps/v1", "1.16"),
    ("apps/v1beta1", Kind::Deployment, "apps/v1", "1.16"),
    ("apps/v1beta1", Kind::DaemonSet, "apps/v1", "1.16"),
    ("apps/v1beta1", Kind::ReplicaSet, "apps/v1", "1.16"),
    ("apps/v1beta1", Kind::StatefulSet, "apps/v1", "1.16"),
    ("apps/v1beta2", Kind::Deployment, "apps/v1", "1.16"),
    ("apps/v1beta2", Kind::DaemonSet, "apps/v1", "1.16"),
    ("apps/v1beta2", Kind::ReplicaSet, "apps/v1", "1.16"),
    ("apps/v1beta2", Kind::StatefulSet, "apps/v1", "1.16"),
    ("batch/v1beta1", Kind::CronJob, "batch/v1", "1.25"),
];

/// The unserved API version a manifest's `apiVersion` and `kind` name, if
/// any.
pub fn unserved(api_version: &str, kind: &str) -> Option<Unserved> {
    TABLE
        .iter()
        .find(|(v, k, _, _)| *v == api_version && k.as_str() == kind)
        .map(|&(api_version, kind, replacement, removed_in)| Unserved {
            kind,
            api_version,
            replacement,
            removed_in,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_workload_versions_map_to_their_v1_kinds() {
        let u = unserved("extensions/v1beta1", "Deployment").expect("unserved");
        assert_eq!(u.kind, Kind::Deployment);
        assert_eq!((u.replacement, u.removed_in), ("apps/v1", "1.16"));
        assert_eq!(
            unserved("apps/v1beta2", "StatefulSet").map(|u| u.kind),
            Some(Kind::StatefulSet)
        );
        assert_eq!(
            unserved("apps/v1beta1", "DaemonSet").map(|u| u.kind),
            Some(Kind::DaemonSet)
        );
        let cron = unserved("batch/v1beta1", "CronJob").expect("unserved");
        assert_eq!((cron.kind, cron.removed_in), (Kind::CronJob, "1.25"));
    }

    #[test]
    fn served_and_unknown_versions_are_not_listed() {
        assert_eq!(unserved("apps/v1", "Deployment"), None);
        assert_eq!(unserved("batch/v1", "CronJob"), None);
        assert_eq!(unserved("apps/v1beta3", "Deployment"), None);
        assert_eq!(unserved("extensions/v1beta1", "Ingress"), None);
        assert_eq!(unserved("batch/v1beta1", "Job"), None);
    }

    #[test]
    fn the_note_names_version_release_and_replacement() {
        let note = unserved("apps/v1beta1", "Deployment")
            .expect("unserved")
            .note();
        assert_eq!(
            note,
            "apps/v1beta1 Deployment is no longer served (since Kubernetes 1.16): the API server refuses this manifest until apiVersion is apps/v1"
        );
    }
}

//! `meshguard audit --cluster`: the objects a live cluster already holds,
//! judged by the same audit as manifest files (SPEC section 7). A dry run
//! before switching a rule to `deny`: what would break, and what the
//! mutating webhook would patch on the next update.
//!
//! Every kind meshguard judges or indexes (`resources`) is listed
//! cluster-wide, in pages. A kind the
//! cluster does not serve (no Argo Rollouts, no Istio, or an older Istio
//! version) is skipped; Istio kinds are tried at `v1`, then `v1beta1`, then
//! `v1alpha3`. A kind meshguard may not list (RBAC) is an input error that
//! names the missing permission, and the other kinds are still audited.
//! Only I/O lives here: the judging is `audit::audit_documents`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use kube::Client;
use kube::api::ListParams;
use serde_json::Value;

use crate::audit::{InputError, Source};
use crate::documents::Document;
use crate::resources::{RESOURCES, Resource};

/// The source name of objects read from the cluster.
pub const SOURCE: &str = "cluster";

/// Objects listed per request.
const PAGE: u32 = 500;

/// What the cluster holds: the objects as documents, and what could not be
/// listed.
#[derive(Debug, Default)]
pub struct Collected {
    pub documents: Vec<(String, Document)>,
    pub errors: Vec<InputError>,
    /// Kinds the cluster does not serve, as `plural.group`.
    pub not_served: Vec<String>,
}

/// A client from `kubeconfig`, or from the usual places (`KUBECONFIG`,
/// `~/.kube/config`, the in-cluster service account), that has reached the
/// API server once.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let env = std::env::var_os("KUBECONFIG");
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    if let Some(problem) =
        missing_kubeconfig(kubeconfig, env.as_deref(), home.as_deref(), in_cluster)
    {
        anyhow::bail!(problem);
    }
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    let client = Client::try_from(config)?;
    let version = client.apiserver_version().await?;
    tracing::debug!(version = %version.git_version, "API server reached");
    Ok(client)
}

/// One line naming the kubeconfig that was looked for and is not there,
/// and how to point at another; `None` when there is one to try (or the
/// in-cluster service account). kube's own error repeats the whole chain
/// of places it tried.
fn missing_kubeconfig(
    explicit: Option<&Path>,
    env: Option<&OsStr>,
    home: Option<&Path>,
    in_cluster: bool,
) -> Option<String> {
    const HOW: &str = "point at one with --kubeconfig FILE or KUBECONFIG=FILE";
    if let Some(path) = explicit {
        return (!path.is_file())
            .then(|| format!("no kubeconfig at {} (--kubeconfig); {HOW}", path.display()));
    }
    if let Some(list) = env.filter(|v| !v.is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(list).collect();
        return (!paths.iter().any(|p| p.is_file())).then(|| {
            let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            format!("no kubeconfig at {} (KUBECONFIG); {HOW}", shown.join(", "))
        });
    }
    if in_cluster {
        return None;
    }
    let default = home.map(|h| h.join(".kube").join("config"));
    match default {
        Some(path) if path.is_file() => None,
        Some(path) => Some(format!(
            "no kubeconfig at {} (the default: KUBECONFIG is not set and this is not a pod); {HOW}",
            path.display()
        )),
        None => Some(format!(
            "no kubeconfig: HOME and KUBECONFIG are not set and this is not a pod; {HOW}"
        )),
    }
}

/// Lists every judged kind.
pub async fn collect(client: &Client) -> Collected {
    let mut out = Collected::default();
    for resource in &RESOURCES {
        let name = resource.name();
        let mut served = false;
        for version in resource.versions {
            match list(client, resource, version).await {
                Ok(items) => {
                    out.documents.extend(
                        items
                            .into_iter()
                            .map(|value| (SOURCE.to_owned(), Document { line: 0, value })),
                    );
                    served = true;
                    break;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => continue,
                Err(e) => {
                    out.errors.push(InputError {
                        source: Source {
                            file: format!("{SOURCE}:{name}"),
                            line: 0,
                        },
                        message: describe(&e, &name),
                    });
                    served = true;
                    break;
                }
            }
        }
        if !served {
            out.not_served.push(name);
        }
    }
    out
}

/// Every object of one kind at one version, with `apiVersion` and `kind`
/// set (list items carry neither).
async fn list(
    client: &Client,
    resource: &Resource,
    version: &str,
) -> Result<Vec<Value>, kube::Error> {
    let kind = resource.kind;
    let api_version = resource.api_version(version);
    let api = resource.api(client, version);
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    // A continue token expires with etcd compaction (410 Gone): start the
    // kind over, a couple of times at most.
    let mut restarts = 0;
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(kube::Error::Api(status))
                if status.code == 410 && params.continue_token.is_some() && restarts < 2 =>
            {
                restarts += 1;
                items.clear();
                params = ListParams::default().limit(PAGE);
                continue;
            }
            Err(e) => return Err(e),
        };
        for object in page.items {
            let mut value = serde_json::to_value(&object).map_err(kube::Error::SerdeError)?;
            value["apiVersion"] = Value::String(api_version.clone());
            value["kind"] = Value::String(kind.to_owned());
            items.push(value);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// A listing error in the terms of what to do about it.
fn describe(e: &kube::Error, name: &str) -> String {
    match e {
        kube::Error::Api(status) if status.code == 403 => format!(
            "cannot list {name}: forbidden ({}); grant list on {name} to the identity meshguard runs as",
            status.message
        ),
        kube::Error::Api(status) => {
            format!("cannot list {name}: {} ({})", status.message, status.code)
        }
        other => format!("cannot list {name}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kubeconfig_it_looked_for_and_how_to_point_at_another() {
        let home = Path::new("/nonexistent-home");
        assert_eq!(
            missing_kubeconfig(None, None, Some(home), false).as_deref(),
            Some(
                "no kubeconfig at /nonexistent-home/.kube/config (the default: KUBECONFIG is not set and this is not a pod); point at one with --kubeconfig FILE or KUBECONFIG=FILE"
            )
        );
        assert_eq!(
            missing_kubeconfig(Some(Path::new("/no/kc")), None, Some(home), false).as_deref(),
            Some(
                "no kubeconfig at /no/kc (--kubeconfig); point at one with --kubeconfig FILE or KUBECONFIG=FILE"
            )
        );
        assert_eq!(
            missing_kubeconfig(None, Some(OsStr::new("/a:/b")), Some(home), false).as_deref(),
            Some(
                "no kubeconfig at /a, /b (KUBECONFIG); point at one with --kubeconfig FILE or KUBECONFIG=FILE"
            )
        );
    }

    #[test]
    fn an_existing_file_or_a_pod_is_left_to_kube() {
        let file = std::env::current_exe().expect("a file that exists");
        let home = Path::new("/nonexistent-home");
        assert_eq!(
            missing_kubeconfig(Some(&file), None, Some(home), false),
            None
        );
        let list = std::env::join_paths([Path::new("/missing"), file.as_path()]).expect("paths");
        assert_eq!(
            missing_kubeconfig(None, Some(&list), Some(home), false),
            None
        );
        assert_eq!(missing_kubeconfig(None, None, Some(home), true), None);
    }
}

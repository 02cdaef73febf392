//! The server's view of the cluster, from kube-rs watchers (list, then
//! watch with bookmarks; a fresh list after 410 Gone; backoff on errors):
//! the namespace labels of SPEC section 2 and the mesh index of section 10,
//! fed by the same watches.
//!
//! Namespace labels: off, static (from a file), or watched. Requests never
//! GET namespaces, except once, with a short timeout, for a namespace the
//! view does not have yet (created a moment ago).
//!
//! The mesh index: with a cluster only, one watcher per kind of
//! `resources` (the objects are turned into index entries as they arrive;
//! no whole object is kept). It is synced when every watch has finished
//! its first list; until then MG5xx are not judged and the posture gauges
//! are absent. Readiness never waits for it. A kind the cluster does not
//! serve (no Argo Rollouts, no Gateway API) counts as synced and empty.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::lenient::Labels;
use crate::mesh::{Coverage, Indexed, MeshIndex};
use crate::namespaces::NamespaceMap;
use crate::object::{Kind, Object};
use crate::resources::{RESOURCES, Resource};

/// How long a request waits for the one GET of a namespace missing from the
/// view before falling back to the pod's own markers.
const FETCH_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the server gets namespace labels from.
pub enum NamespaceView {
    /// No cluster and no file: rules fall back to the pod's markers.
    Off,
    Static(NamespaceMap),
    Cluster(Arc<ClusterView>),
}

impl NamespaceView {
    /// The labels of `namespace`, fetching it once if a watched view lacks
    /// it.
    pub async fn labels(&self, namespace: &str) -> Option<Arc<Labels<'static>>> {
        match self {
            NamespaceView::Off => None,
            NamespaceView::Static(map) => map.labels(namespace),
            NamespaceView::Cluster(c) => c.labels_or_fetch(namespace).await,
        }
    }

    /// Readiness of the view: `Ok` with a description, or `Err` while a
    /// watched view has not finished its first list.
    pub fn readiness(&self) -> Result<String, String> {
        match self {
            NamespaceView::Off => Ok(
                "namespace view off (no cluster configured): rules use the pods' own markers"
                    .to_owned(),
            ),
            NamespaceView::Static(map) => {
                Ok(format!("static namespace view ({} namespaces)", map.len()))
            }
            NamespaceView::Cluster(c) if c.is_synced() => {
                Ok(format!("namespace view synced ({} namespaces)", c.len()))
            }
            NamespaceView::Cluster(_) => Err("namespace view not synced yet".to_owned()),
        }
    }

    /// The view's numbers for the metrics: a static view or a view that is
    /// off by design counts as synced.
    pub fn metrics_state(&self) -> crate::metrics::ViewState {
        let ready = self.readiness().is_ok();
        let (synced, namespaces, watch_restarts) = match self {
            NamespaceView::Off => (true, 0, 0),
            NamespaceView::Static(map) => (true, map.len(), 0),
            NamespaceView::Cluster(c) => (c.is_synced(), c.len(), c.restarts()),
        };
        crate::metrics::ViewState {
            ready,
            synced,
            namespaces,
            watch_restarts,
        }
    }

    /// The mesh index, when it is there to be asked: `None` without a
    /// cluster and until every watch has synced (never guessed).
    pub fn mesh(&self) -> Option<&ClusterView> {
        match self {
            NamespaceView::Cluster(c) if c.mesh_synced() => Some(c),
            _ => None,
        }
    }
}

/// Namespace labels and the mesh index kept from a cluster's watches.
pub struct ClusterView {
    map: RwLock<NamespaceMap>,
    synced: AtomicBool,
    restarts: AtomicU64,
    /// For the one GET of a namespace missing from the view.
    api: Api<Namespace>,
    /// The watch: labels are all it needs, so it reads metadata only.
    metadata_api: Api<PartialObjectMeta<Namespace>>,
    mesh: RwLock<MeshIndex>,
    /// Watches of the index (the namespace watch included) that have not
    /// finished their first list.
    unsynced: AtomicUsize,
    /// Times a watch of the index (the namespace watch apart) failed.
    mesh_restarts: AtomicU64,
}

impl ClusterView {
    /// Starts watching; the returned view fills in as the watches run.
    pub fn start(client: kube::Client) -> Arc<ClusterView> {
        let indexed: Vec<&'static Resource> =
            RESOURCES.iter().filter(|r| r.kind != "Namespace").collect();
        let view = Arc::new(ClusterView {
            map: RwLock::new(NamespaceMap::default()),
            synced: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            api: Api::all(client.clone()),
            metadata_api: Api::all(client.clone()),
            mesh: RwLock::new(MeshIndex::new(Coverage::Cluster)),
            unsynced: AtomicUsize::new(indexed.len() + 1),
            mesh_restarts: AtomicU64::new(0),
        });
        tokio::spawn(view.clone().run());
        for resource in indexed {
            tokio::spawn(view.clone().watch_kind(client.clone(), resource));
        }
        view
    }

    /// Every watch of the index has finished its first list.
    pub fn mesh_synced(&self) -> bool {
        self.unsynced.load(Ordering::Acquire) == 0
    }

    /// Reads the index (a short, synchronous read: no await while held).
    pub fn with_mesh<R>(&self, f: impl FnOnce(&MeshIndex) -> R) -> R {
        f(&self.mesh.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn update_mesh(&self, f: impl FnOnce(&mut MeshIndex)) {
        f(&mut self.mesh.write().unwrap_or_else(|e| e.into_inner()));
    }

    fn watch_synced(&self, what: &str) {
        let left = self.unsynced.fetch_sub(1, Ordering::AcqRel) - 1;
        tracing::debug!(what, left, "mesh index watch synced");
        if left == 0 {
            let objects = self.with_mesh(MeshIndex::len);
            tracing::info!(objects, "mesh index synced");
        }
    }

    /// Lists, then watches, one kind into the index. The version is the
    /// first the cluster serves; a kind it does not serve is empty.
    async fn watch_kind(self: Arc<Self>, client: kube::Client, resource: &'static Resource) {
        let name = resource.name();
        let mut chosen = None;
        for version in resource.versions {
            let api = resource.api(&client, version);
            match api.list_metadata(&ListParams::default().limit(1)).await {
                Err(kube::Error::Api(status)) if status.code == 404 => continue,
                Err(e) => {
                    // Forbidden or unreachable: the watch retries with
                    // backoff, and the index stays unsynced meanwhile.
                    tracing::warn!(resource = %name, error = %e, "cannot list for the mesh index; retrying");
                    chosen = Some((api, version));
                    break;
                }
                Ok(_) => {
                    chosen = Some((api, version));
                    break;
                }
            }
        }
        let Some((api, version)) = chosen else {
            tracing::debug!(resource = %name, "not served by this cluster: empty in the mesh index");
            self.watch_synced(&name);
            return;
        };
        let Some(kind) = resource
            .versions
            .iter()
            .map(|v| Kind::from_api_version(&resource.api_version(v), resource.kind))
            .find(|k| *k != Kind::Other)
        else {
            self.watch_synced(&name);
            return;
        };
        // Metadata-only where the name is all the index keeps.
        let config = watcher::Config::default();
        if metadata_only(kind) {
            let api = resource.metadata_api(&client, version);
            let stream = watcher::watcher(api, config).default_backoff();
            self.follow(kind, &name, stream).await;
        } else {
            let stream = watcher::watcher(api, config).default_backoff();
            self.follow(kind, &name, stream).await;
        }
    }

    /// Applies one kind's watch events to the index: a (re-)list replaces
    /// the kind's entries whole, so objects deleted while the watch was down
    /// disappear.
    async fn follow<T>(
        &self,
        kind: Kind,
        name: &str,
        stream: impl futures::Stream<Item = Result<Event<T>, watcher::Error>>,
    ) where
        T: serde::Serialize + kube::Resource,
    {
        let mut stream = std::pin::pin!(stream);
        let mut relist: Option<Vec<Indexed>> = None;
        let mut first = true;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => relist = Some(Vec::new()),
                Ok(Event::InitApply(object)) => {
                    if let (Some(list), Some(indexed)) = (relist.as_mut(), indexed(kind, &object)) {
                        list.push(indexed);
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(list) = relist.take() {
                        self.update_mesh(|m| m.reset_kind(kind, list));
                    }
                    if std::mem::take(&mut first) {
                        self.watch_synced(name);
                    }
                }
                Ok(Event::Apply(object)) => match indexed(kind, &object) {
                    Some(i) => self.update_mesh(|m| m.insert(i)),
                    // No longer indexed (say, now owned by a controller).
                    None => self.delete(kind, object.meta()),
                },
                Ok(Event::Delete(object)) => self.delete(kind, object.meta()),
                Err(e) => {
                    self.mesh_restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(resource = %name, error = %e, "mesh index watch failed; retrying with backoff");
                }
            }
        }
    }

    fn delete(&self, kind: Kind, meta: &ObjectMeta) {
        let ns = meta.namespace.as_deref().unwrap_or("default");
        if let Some(name) = meta.name.as_deref() {
            self.update_mesh(|m| m.delete(kind, ns, name));
        }
    }

    /// Times a watch of the index failed and was restarted (with backoff).
    pub fn mesh_restarts(&self) -> u64 {
        self.mesh_restarts.load(Ordering::Relaxed)
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Times the watch failed and was restarted (with backoff).
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, NamespaceMap> {
        // A poisoned lock only means a writer panicked mid-update of a plain
        // map; the map itself is still usable.
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, NamespaceMap> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn labels(&self, namespace: &str) -> Option<Arc<Labels<'static>>> {
        self.read().labels(namespace)
    }

    async fn labels_or_fetch(&self, namespace: &str) -> Option<Arc<Labels<'static>>> {
        if let Some(labels) = self.labels(namespace) {
            return Some(labels);
        }
        match tokio::time::timeout(FETCH_TIMEOUT, self.api.get_opt(namespace)).await {
            Ok(Ok(Some(ns))) => {
                let labels = labels_of(&ns.metadata);
                self.write().insert(namespace, labels);
                self.labels(namespace)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!(%namespace, error = %e, "namespace lookup failed; judging by the pod's own markers");
                None
            }
            Err(_) => {
                tracing::warn!(%namespace, "namespace lookup timed out; judging by the pod's own markers");
                None
            }
        }
    }

    async fn run(self: Arc<Self>) {
        let stream = watcher::watcher(self.metadata_api.clone(), watcher::Config::default())
            .default_backoff();
        let mut stream = std::pin::pin!(stream);
        // A (re-)list builds a fresh map, swapped in whole when complete, so
        // namespaces deleted while the watch was down disappear.
        let mut relist: Option<NamespaceMap> = None;
        let mut first = true;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => relist = Some(NamespaceMap::default()),
                Ok(Event::InitApply(ns)) => {
                    if let (Some(map), Some(name)) = (relist.as_mut(), ns.metadata.name.as_deref())
                    {
                        map.insert(name, labels_of(&ns.metadata));
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(map) = relist.take() {
                        let n = map.len();
                        let entries: Vec<Indexed> = map
                            .names()
                            .filter_map(|name| namespace_entry(name, &map))
                            .collect();
                        *self.write() = map;
                        self.update_mesh(|m| m.reset_kind(Kind::Namespace, entries));
                        self.synced.store(true, Ordering::Release);
                        tracing::info!(namespaces = n, "namespace view synced");
                        if std::mem::take(&mut first) {
                            self.watch_synced("namespaces");
                        }
                    }
                }
                Ok(Event::Apply(ns)) => {
                    if let Some(name) = ns.metadata.name.as_deref() {
                        let labels = labels_of(&ns.metadata);
                        tracing::debug!(namespace = name, labels = ?labels, "namespace view updated");
                        let mut map = self.write();
                        map.insert(name, labels);
                        let entry = namespace_entry(name, &map);
                        drop(map);
                        if let Some(entry) = entry {
                            self.update_mesh(|m| m.insert(entry));
                        }
                    }
                }
                Ok(Event::Delete(ns)) => {
                    if let Some(name) = ns.metadata.name.as_deref() {
                        self.write().remove(name);
                        self.update_mesh(|m| m.delete(Kind::Namespace, name, name));
                    }
                }
                Err(e) => {
                    self.restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "namespace watch failed; retrying with backoff");
                }
            }
        }
    }
}

/// The index entry of a namespace of the view.
fn namespace_entry(name: &str, map: &NamespaceMap) -> Option<Indexed> {
    Some(Indexed {
        kind: Kind::Namespace,
        namespace: name.to_owned(),
        name: name.to_owned(),
        entry: crate::mesh::Entry::Namespace((*map.labels(name)?).clone()),
    })
}

/// Kinds of which the index keeps the name only: their watches fetch
/// metadata alone.
fn metadata_only(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::ServiceAccount | Kind::Gateway | Kind::KubeGateway
    )
}

/// A watched object (whole, or its metadata) as the index reads it.
fn indexed(kind: Kind, object: &impl serde::Serialize) -> Option<Indexed> {
    let value = serde_json::to_value(object).ok()?;
    let object = Object::read(kind, &value).ok()?;
    Indexed::of(&object)
}

fn labels_of(meta: &ObjectMeta) -> Labels<'static> {
    Labels::from_pairs(
        meta.labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    )
}

/// Connects to the cluster named by the kubeconfig (`KUBECONFIG`, or
/// `~/.kube/config`) or the in-cluster service account; `None` when there is
/// none.
pub async fn cluster_client() -> Option<kube::Client> {
    let config = kube::Config::infer().await.ok()?;
    kube::Client::try_from(config).ok()
}

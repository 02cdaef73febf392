//! The server's namespace view (SPEC section 2): off, static (from a file),
//! or kept in memory from a cluster through a kube-rs watcher (list, then
//! watch with bookmarks; a fresh list after 410 Gone; backoff on errors).
//! Requests never GET namespaces, except once, with a short timeout, for a
//! namespace the view does not have yet (created a moment ago).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::lenient::Labels;
use crate::namespaces::NamespaceMap;

/// How long a request waits for the one GET of a namespace missing from the
/// view before falling back to the pod's own markers.
const FETCH_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the server gets namespace labels from.
pub enum NamespaceView {
    /// No cluster and no file: rules fall back to the pod's markers.
    Off,
    Static(NamespaceMap),
    Cluster(Arc<ClusterNamespaces>),
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
}

/// Namespace labels kept from a cluster watch.
pub struct ClusterNamespaces {
    map: RwLock<NamespaceMap>,
    synced: AtomicBool,
    restarts: AtomicU64,
    api: Api<Namespace>,
}

impl ClusterNamespaces {
    /// Starts watching; the returned view fills in as the watch runs.
    pub fn start(client: kube::Client) -> Arc<ClusterNamespaces> {
        let view = Arc::new(ClusterNamespaces {
            map: RwLock::new(NamespaceMap::default()),
            synced: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            api: Api::all(client),
        });
        tokio::spawn(view.clone().run());
        view
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
                let labels = labels_of(&ns);
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
        let stream =
            watcher::watcher(self.api.clone(), watcher::Config::default()).default_backoff();
        let mut stream = std::pin::pin!(stream);
        // A (re-)list builds a fresh map, swapped in whole when complete, so
        // namespaces deleted while the watch was down disappear.
        let mut relist: Option<NamespaceMap> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => relist = Some(NamespaceMap::default()),
                Ok(Event::InitApply(ns)) => {
                    if let (Some(map), Some(name)) = (relist.as_mut(), ns.metadata.name.as_deref())
                    {
                        map.insert(name, labels_of(&ns));
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(map) = relist.take() {
                        let n = map.len();
                        *self.write() = map;
                        self.synced.store(true, Ordering::Release);
                        tracing::info!(namespaces = n, "namespace view synced");
                    }
                }
                Ok(Event::Apply(ns)) => {
                    if let Some(name) = ns.metadata.name.as_deref() {
                        let labels = labels_of(&ns);
                        tracing::debug!(namespace = name, labels = ?labels, "namespace view updated");
                        self.write().insert(name, labels);
                    }
                }
                Ok(Event::Delete(ns)) => {
                    if let Some(name) = ns.metadata.name.as_deref() {
                        self.write().remove(name);
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

fn labels_of(ns: &Namespace) -> Labels<'static> {
    Labels::from_pairs(
        ns.metadata
            .labels
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

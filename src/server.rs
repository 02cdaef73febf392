//! `meshguard serve`: the admission webhooks over HTTPS (SPEC section 8).
//!
//! Start-up (config and certificate checked before binding, both ports
//! bound before the self-signed CA is written), the routes, the body limit and timeout, the metrics listener.
//! Connections (TLS accept, HTTP version by ALPN, deadlines, the cap, the
//! drain) are `connections`' business. Every decision goes through
//! `admission::parse` + `admission::decide`, the code path of `meshguard
//! review`, so the two can never disagree. Bad input gets a 4xx with a
//! message, never a 5xx and never a panic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

mod connections;

use crate::admission::{self, Reviewed};
use crate::config::Config;
use crate::engine::Webhook;
use crate::metrics::{BadRequest, Metrics};
use crate::object::Family;
use crate::reload;
use crate::rules::Action;
use crate::tls::{self, Resolver};
use crate::watch::NamespaceView;

/// Everything `serve` needs, parsed from the command line.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Plain-HTTP listener of `GET /metrics`; `None` = no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    pub config: Option<PathBuf>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub client_ca: Option<PathBuf>,
    pub namespaces: Option<PathBuf>,
    /// Where the self-signed CA is written when no certificate is given.
    pub ca_out: PathBuf,
    pub body_limit: usize,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub grace: Duration,
    pub reload_interval: Duration,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    // Transparent: `main` prints the error chain (`{:#}`), which would
    // otherwise say each of these twice.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Namespaces(#[from] crate::namespaces::NamespaceFileError),
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the self-signed CA to {path}")]
    WriteCa {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// State shared by every request.
pub struct AppState {
    pub config: ArcSwap<Config>,
    pub namespaces: NamespaceView,
    pub resolver: Arc<Resolver>,
    pub metrics: Metrics,
    body_limit: usize,
    body_timeout: Duration,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Loads config, certificates and the namespace view, binds, and serves
/// until SIGTERM or Ctrl-C; then drains and returns.
pub async fn run(opts: ServeOptions) -> Result<(), ServeError> {
    // Everything is checked before binding: a bad Secret or ConfigMap fails
    // the start with a clear message instead of serving errors.
    let metrics = Metrics::new();
    let (config, config_hash) = match &opts.config {
        Some(path) => {
            let bytes = read(path)?;
            let config = Config::parse(&String::from_utf8_lossy(&bytes))?;
            (config, crate::metrics::content_hash(&bytes))
        }
        None => (
            Config::default(),
            crate::metrics::content_hash(crate::config::DEFAULT_YAML.as_bytes()),
        ),
    };
    metrics.config_loaded(Some(config_hash), tls::unix_now() as f64);
    let static_namespaces = match &opts.namespaces {
        Some(path) => Some(crate::namespaces::NamespaceMap::load(path)?),
        None => None,
    };
    let (pair, self_signed_ca) = match &opts.tls {
        Some((cert, key)) => (
            tls::load_pair(&read(cert)?, &read(key)?, tls::unix_now())?,
            None,
        ),
        None => {
            let (pair, ca) = self_signed()?;
            (pair, Some(ca))
        }
    };
    let not_after = pair.not_after;
    let resolver = Arc::new(Resolver::new(pair));
    let client_ca = opts.client_ca.as_ref().map(read).transpose()?;
    let server_config = tls::server_config(resolver.clone(), client_ca.as_deref())?;
    // Logged once every piece of TLS (the client CA too) has been checked.
    tracing::info!(not_after, "serving certificate loaded");
    metrics.certificate_loaded(Some(not_after), false);
    // Both ports are taken before anything is written: a second `serve`
    // next to a running one fails here and leaves the running server's CA
    // file (which its clients trust) as it is.
    let listener = bind(opts.listen).await?;
    let metrics_listener = match opts.metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    if let Some(ca) = &self_signed_ca {
        write_ca(&opts.ca_out, ca)?;
    }
    let namespaces = match static_namespaces {
        Some(map) => NamespaceView::Static(map),
        None => match crate::watch::cluster_client().await {
            Some(client) => NamespaceView::Cluster(crate::watch::ClusterView::start(client)),
            None => {
                tracing::info!(
                    "no cluster configured: namespace view off, rules use the pods' own markers"
                );
                NamespaceView::Off
            }
        },
    };
    let state = Arc::new(AppState {
        config: ArcSwap::from_pointee(config),
        namespaces,
        resolver,
        metrics,
        body_limit: opts.body_limit,
        body_timeout: opts.body_timeout,
    });
    reload::spawn(&opts, state.clone());
    if let Some(listener) = metrics_listener {
        serve_metrics(listener, state.clone());
    }

    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: opts.listen,
        source,
    })?;
    tracing::info!(addr = %local, "listening (HTTPS: /validate, /mutate, /healthz, /readyz)");
    connections::serve(
        listener,
        TlsAcceptor::from(Arc::new(server_config)),
        router(state),
        connections::Limits {
            max_connections: opts.max_connections,
            header_timeout: opts.header_timeout,
            idle_timeout: opts.idle_timeout,
            grace: opts.grace,
        },
    )
    .await;
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves the plain-HTTP metrics listener in the background (it ends with
/// the process).
fn serve_metrics(listener: TcpListener, state: Arc<AppState>) {
    if let Ok(local) = listener.local_addr() {
        tracing::info!(addr = %local, "metrics listening (HTTP: /metrics)");
    }
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    // The mesh gauges: absent without a cluster, empty until synced.
    let mesh = match &state.namespaces {
        NamespaceView::Cluster(view) => {
            let mut mesh = if view.mesh_synced() {
                let config = state.config.load();
                view.with_mesh(|m| {
                    crate::metrics::MeshState::of(&crate::posture::of_mesh(m, &config))
                })
            } else {
                crate::metrics::MeshState::default()
            };
            mesh.watch_restarts = view.mesh_restarts();
            Some(mesh)
        }
        _ => None,
    };
    let text = state
        .metrics
        .encode_with_mesh(state.namespaces.metrics_state(), mesh.as_ref());
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "meshguard.meshguard-system.svc"];

/// A self-signed serving pair and the PEM of its CA (written only once the
/// ports are bound).
fn self_signed() -> Result<(tls::Pair, String), ServeError> {
    let names = SELF_SIGNED_NAMES.map(String::from);
    let generated = tls::generate(&names, 365)?;
    let pair = tls::load_pair(
        generated.cert_pem.as_bytes(),
        generated.key_pem.as_bytes(),
        tls::unix_now(),
    )?;
    Ok((pair, generated.ca_pem))
}

fn write_ca(ca_out: &PathBuf, ca_pem: &str) -> Result<(), ServeError> {
    std::fs::write(ca_out, ca_pem).map_err(|source| ServeError::WriteCa {
        path: ca_out.display().to_string(),
        source,
    })?;
    eprintln!(
        "meshguard: no --tls-cert/--tls-key given: serving a self-signed certificate for {}.\nmeshguard: its CA is written to {} (use it with curl --cacert):\n{}",
        SELF_SIGNED_NAMES.join(", "),
        ca_out.display(),
        ca_pem.trim_end()
    );
    Ok(())
}

/// The HTTP routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn validate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    admit(&state, Webhook::Validate, request).await
}

async fn mutate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    admit(&state, Webhook::Mutate, request).await
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.namespaces.readiness() {
        Ok(view) => (
            StatusCode::OK,
            format!("ready: config loaded, certificate loaded, {view}\n"),
        )
            .into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

fn bad_request(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    message.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// Reads, decides and answers one AdmissionReview, and counts it. (It
/// takes the whole request, not the `HeaderMap` extractor, which would
/// clone the headers of every review.)
async fn admit(state: &AppState, webhook: Webhook, request: Request) -> Response {
    let started = std::time::Instant::now();
    let _in_flight = state.metrics.in_flight();
    let (parts, body) = request.into_parts();
    match answer(state, webhook, &parts.headers, body).await {
        Ok((reviewed, response)) => {
            state.metrics.decided(webhook, &reviewed, started.elapsed());
            response
        }
        Err((reason, response)) => {
            state.metrics.refused(webhook, reason, started.elapsed());
            response
        }
    }
}

/// A request refused before a decision: why, and the 4xx answer.
type Refusal = (BadRequest, Response);

async fn answer(
    state: &AppState,
    webhook: Webhook,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Reviewed, Response), Refusal> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err((
            BadRequest::ContentType,
            bad_request(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json (an admission.k8s.io/v1 AdmissionReview)",
            ),
        ));
    }
    let collected = tokio::time::timeout(
        state.body_timeout,
        Limited::new(body, state.body_limit).collect(),
    )
    .await;
    let bytes = match collected {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err((
                BadRequest::TooLarge,
                bad_request(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body larger than the limit of {} bytes", state.body_limit),
                ),
            ));
        }
        Ok(Err(e)) => {
            return Err((
                BadRequest::Invalid,
                bad_request(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                ),
            ));
        }
        Err(_) => {
            return Err((
                BadRequest::Timeout,
                bad_request(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time",
                ),
            ));
        }
    };
    let parsed = match admission::parse(&bytes) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(webhook = webhook.as_str(), error = %e, "bad request");
            return Err((
                BadRequest::Invalid,
                bad_request(StatusCode::BAD_REQUEST, e.to_string()),
            ));
        }
    };
    let labels = match parsed.context_namespace() {
        Some(ns) => state.namespaces.labels(ns).await,
        None => None,
    };
    let config = state.config.load();
    let now = Timestamp::now();
    // MG5xx judge Istio objects against the index, once it has synced.
    let mesh = (parsed.kind.family() == Family::Istio)
        .then(|| state.namespaces.mesh())
        .flatten();
    let mut reviewed = match mesh {
        Some(view) => view.with_mesh(|index| {
            admission::decide_in_mesh(
                &parsed,
                webhook,
                &config,
                labels.as_deref(),
                Some(index),
                now,
            )
        }),
        None => admission::decide(&parsed, webhook, &config, labels.as_deref(), now),
    };
    log_decision(webhook, &parsed, &reviewed);
    // The body moves into the response; the metrics need only the decision.
    let body = std::mem::take(&mut reviewed.body);
    let response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    Ok((reviewed, response))
}

/// One log line per request: denials and warnings at info, the rest at
/// debug (CONVENTIONS habit 10: fields, not format strings).
fn log_decision(webhook: Webhook, parsed: &admission::ParsedReview<'_>, reviewed: &Reviewed) {
    let d = &reviewed.decision;
    // The lists are built inside the macros, which evaluate their fields
    // only for a line that is logged: nothing for an allowed request at
    // the default level.
    let rules = |action: Action| {
        d.findings
            .iter()
            .filter(|f| f.action == action)
            .map(|f| f.rule.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let patched = || {
        d.mutations
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let has = |action: Action| d.findings.iter().any(|f| f.action == action);
    let name = parsed.object.as_ref().map(|o| o.name()).unwrap_or("");
    let (webhook, kind, ns, op) = (
        webhook.as_str(),
        reviewed.kind.as_str(),
        parsed.namespace.as_ref(),
        reviewed.operation.as_str(),
    );
    let dry_run = reviewed.dry_run;
    if has(Action::Deny) {
        tracing::info!(webhook, kind, ns, name, op, dry_run, rules = %rules(Action::Deny), warnings = %rules(Action::Warn), "denied");
    } else if has(Action::Warn) {
        tracing::info!(webhook, kind, ns, name, op, dry_run, rules = %rules(Action::Warn), "allowed with warnings");
    } else {
        tracing::debug!(webhook, kind, ns, name, op, dry_run, patches = %patched(), "allowed");
    }
}

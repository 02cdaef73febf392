//! Connections of `meshguard serve`: TLS accept under a deadline, the HTTP
//! version chosen by ALPN, a cap on concurrent connections, deadlines for
//! clients that hold a connection without using it, and the drain on
//! shutdown.
//!
//! Each connection is served by its own task, which owns one permit of the
//! connection cap. A connection is closed gracefully (HTTP/2 GOAWAY,
//! HTTP/1.1 close after the response) when
//!
//! * no request has started `header_timeout` after the connection was
//!   accepted (a client that opens TLS and says nothing, or sends half an
//!   HTTP/2 preface);
//! * no request has been in flight for `idle_timeout` (a keep-alive
//!   connection nobody uses, which HTTP/2 pings alone would keep forever);
//! * the server shuts down: the accept loop stops and every connection
//!   finishes its requests in flight within the grace period.
//!
//! Without these deadlines a few hundred silent clients would hold every
//! permit and lock the API server out: the cluster would stop admitting
//! workloads because of meshguard.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// The limits of `ServeOptions` that connections need.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub grace: Duration,
}

/// Accepts connections until a shutdown signal, then drains.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, router: Router, limits: Limits) {
    let max = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(max as usize));
    let builders = Arc::new(Builders::new(limits));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        // The cap: wait for a free slot before accepting; waiting clients sit
        // in the kernel's backlog.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, typically: back off instead of
                    // spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // One deadline from accept: handshake and first request together
        // get `header_timeout`, so a silent client cannot stack them.
        let accepted = Instant::now();
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let builders = builders.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let deadline = accepted + limits.header_timeout;
            let Some(tls) = handshake(stream, peer, &acceptor, deadline).await else {
                return;
            };
            serve_connection(tls, peer, accepted, service, &builders, limits, stop).await;
        });
    }
    drop(listener);
    tracing::info!(
        grace_seconds = limits.grace.as_secs(),
        "shutting down: draining requests in flight"
    );
    let _ = stop_tx.send(true);
    // Every connection task holds a permit until it ends: all permits back
    // means every connection is done.
    tokio::select! {
        _ = permits.acquire_many(max) => tracing::info!("drained"),
        _ = tokio::time::sleep(limits.grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
}

/// One builder per HTTP version: the version comes from ALPN, so hyper
/// never waits (without a deadline) for bytes to guess it.
struct Builders {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
}

impl Builders {
    fn new(limits: Limits) -> Builders {
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            // hyper's header timer also runs while a keep-alive connection
            // waits for its next request, so it must not be shorter than
            // the idle timeout: closing an idle HTTP/1.1 connection early
            // races the client's next POST, which Go does not retry. New
            // connections get `header_timeout` from `drive`'s deadline.
            .header_read_timeout(limits.idle_timeout)
            .keep_alive(true)
            .max_buf_size(64 * 1024)
            // Answered with 431, whatever the read sizes were.
            .max_header_size(32 * 1024);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(32 * 1024)
            // Pings find dead peers; the idle deadline closes live but
            // unused connections.
            .keep_alive_interval(Some(limits.idle_timeout / 2))
            .keep_alive_timeout(limits.header_timeout);
        Builders { http1, http2 }
    }
}

async fn serve_connection(
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    accepted: Instant,
    service: TowerToHyperService<Router>,
    builders: &Builders,
    limits: Limits,
    stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new(accepted));
    let service = Tracked {
        inner: service,
        activity: activity.clone(),
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    if h2 {
        let conn = builders.http2.serve_connection(io, service);
        drive(conn, peer, &activity, limits, stop).await;
    } else {
        let conn = builders.http1.serve_connection(io, service);
        drive(conn, peer, &activity, limits, stop).await;
    }
}

/// Runs a connection to its end, closing it gracefully at its deadline or
/// on shutdown.
async fn drive<C>(
    conn: C,
    peer: SocketAddr,
    activity: &Activity,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    // A graceful close waits for the client (an HTTP/1.1 connection with no
    // request never ends by itself; an HTTP/2 client should answer the
    // GOAWAY): a connection with nothing in flight gets `header_timeout`
    // more, then it is dropped.
    let mut drop_at: Option<Instant> = None;
    loop {
        let deadline = activity.deadline(limits);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stopped| *stopped), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                // An idle keep-alive connection would otherwise hold the
                // drain for the whole grace period.
                drop_at = Some(Instant::now() + limits.header_timeout);
            }
            _ = tokio::time::sleep_until(deadline), if !closing => {
                // The deadline may have moved while we slept.
                if activity.deadline(limits) <= Instant::now() {
                    tracing::debug!(%peer, requests = activity.requests(), "closing an unused connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    drop_at = Some(Instant::now() + limits.header_timeout);
                }
            }
            _ = tokio::time::sleep_until(drop_at.unwrap_or_else(Instant::now)), if drop_at.is_some() => {
                if activity.in_flight.load(Ordering::Acquire) == 0 {
                    tracing::debug!(%peer, "dropping an unused connection");
                    return;
                }
                // A request arrived meanwhile: let it finish.
                drop_at = Some(Instant::now() + limits.idle_timeout);
            }
        }
    }
}

/// What a connection has been doing, for its deadlines.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    /// Milliseconds after `opened` when the last request ended.
    last_end_ms: AtomicU64,
}

impl Activity {
    fn new(opened: Instant) -> Activity {
        Activity {
            opened,
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last_end_ms: AtomicU64::new(0),
        }
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// When the connection should be closed if nothing happens meanwhile.
    fn deadline(&self, limits: Limits) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Busy: look again after an idle period (requests have their own
            // body timeout).
            return Instant::now() + limits.idle_timeout;
        }
        if self.requests() == 0 {
            return self.opened + limits.header_timeout;
        }
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Acquire));
        self.opened + last + limits.idle_timeout
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }
}

/// A request in flight on a connection; its end is recorded on drop.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let elapsed = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_end_ms.store(elapsed, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router, recording each request's start and end on the connection.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<hyper::Request<Incoming>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let response = self.inner.call(req);
        Box::pin(async move {
            let result = response.await;
            drop(in_flight);
            result
        })
    }
}

/// TLS handshake by a deadline. A client speaking plain HTTP to the TLS
/// port gets a readable 400 instead of a silent close.
async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    deadline: Instant,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != 0x16 => {
            const BODY: &str = "This port speaks HTTPS only: use https://\n";
            let reply = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{BODY}",
                BODY.len()
            );
            let mut stream = stream;
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
            return None;
        }
        Ok(Ok(_)) => {}
        _ => return None,
    }
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

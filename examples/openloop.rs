//! Open-loop load driver of `benches/load.sh`: POSTs one body at a fixed
//! rate over HTTP/2 + TLS, whatever the server's answers are doing, and
//! prints the latency percentiles.
//!
//! Each request's latency runs from the moment it was *due* (start + i /
//! rate), not from when it was sent: a slow answer cannot hold back the
//! send time of the next ones, so the percentiles are corrected for
//! coordinated omission (as wrk2 does). They include the driver's own
//! scheduling delay, the same for every server it drives.
//!
//! ```sh
//! cargo run --release --example openloop -- \
//!   https://127.0.0.1:8443/validate ca.crt SNI-NAME review.json RATE SECONDS [CONNECTIONS]
//! ```

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        bail!("usage: openloop URL CA_PEM SNI BODY RATE SECONDS [CONNECTIONS]");
    }
    let uri: hyper::Uri = args[1].parse().context("URL")?;
    let ca = std::fs::read(&args[2]).context("CA file")?;
    let sni = ServerName::try_from(args[3].clone()).context("SNI name")?;
    let body = Bytes::from(std::fs::read(&args[4]).context("body file")?);
    let rate: f64 = args[5].parse().context("RATE")?;
    let seconds: f64 = args[6].parse().context("SECONDS")?;
    let connections: usize = args.get(7).map_or(Ok(4), |c| c.parse())?;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.context("CA PEM")?)?;
    }
    let mut tls = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tls = Arc::new(tls);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let addr = format!(
        "{}:{}",
        uri.host().context("URL host")?,
        uri.port_u16().unwrap_or(443)
    );
    let senders = runtime.block_on(async {
        let mut senders = Vec::new();
        for _ in 0..connections.max(1) {
            senders.push(connect(&addr, sni.clone(), tls.clone()).await?);
        }
        anyhow::Ok(senders)
    })?;

    let (done_tx, done_rx) = mpsc::channel::<Option<Duration>>();
    let total = (rate * seconds) as usize;
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(50);
    // The pacing loop: a plain thread sleeping until each request is due
    // (finer than tokio's millisecond timer), handing it to the runtime.
    for i in 0..total {
        let due = start + period.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let mut sender = senders[i % senders.len()].clone();
        let request = Request::post(uri.clone())
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))?;
        let done = done_tx.clone();
        runtime.spawn(async move {
            let ok = match sender.send_request(request).await {
                Ok(response) => {
                    let ok = response.status().is_success();
                    ok && response.into_body().collect().await.is_ok()
                }
                Err(_) => false,
            };
            let _ = done.send(ok.then(|| due.elapsed()));
        });
    }
    drop(done_tx);
    let sent = start.elapsed();
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0usize;
    while let Ok(result) = done_rx.recv_timeout(Duration::from_secs(10)) {
        match result {
            Some(latency) => latencies.push(latency),
            None => errors += 1,
        }
    }
    let lost = total - latencies.len() - errors;
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1));
        latencies
            .get(i - 1)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "open-loop: {total} requests due at {rate}/s over {connections} HTTP/2 connections, sent in {:.2} s, errors {}, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        sent.as_secs_f64(),
        errors + lost,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0),
    );
    Ok(())
}

async fn connect(
    addr: &str,
    sni: ServerName<'static>,
    tls: Arc<ClientConfig>,
) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(addr).await.context("connect")?;
    tcp.set_nodelay(true)?;
    let stream = TlsConnector::from(tls).connect(sni, tcp).await?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

//! Running the real `meshguard serve` binary on 127.0.0.1 with an ephemeral
//! port, and talking to it over real TLS (no mocks of HTTP or TLS).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long a test waits for one reply before it fails instead of hanging
/// (nextest's slow-timeout in `.config/nextest.toml` bounds the whole test).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `f` until it returns `Some`, for at most `limit` (blocking: for
/// plain `#[test]`s; tokio tests use `eventually`).
pub fn wait_for<T>(limit: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    // Called from a tokio test (starting a server, say), the wait gives its
    // worker's other tasks to the runtime first.
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
            tokio::task::block_in_place(|| poll_blocking(limit, f))
        }
        _ => poll_blocking(limit, f),
    }
}

fn poll_blocking<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it returns `Some`, for at most `limit`, sleeping on the
/// tokio timer between tries (a blocking sleep would hold one of the test
/// runtime's two workers).
pub async fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running `meshguard serve`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The plain-HTTP metrics listener, unless `--metrics-listen off`.
    pub metrics_addr: Option<SocketAddr>,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server with `args` (plus `--listen 127.0.0.1:0`, metrics
    /// on an ephemeral port unless `args` say otherwise, and JSON logs) and
    /// waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshguard"));
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(if args.contains(&"--log-format") {
                &[][..]
            } else {
                &["--log-format", "json"][..]
            })
            .args(args)
            .args(if args.contains(&"--metrics-listen") {
                &[][..]
            } else {
                &["--metrics-listen", "127.0.0.1:0"][..]
            })
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("KUBECONFIG")
            .env("HOME", std::env::temp_dir())
            .env(
                "MESHGUARD_LOG",
                "debug,kube=info,hyper=info,rustls=info,tower=info,h2=info",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // An empty value removes the variable (the binary's own default).
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().expect("meshguard serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("logs").push(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            addr: "127.0.0.1:0".parse().expect("addr"),
            metrics_addr: None,
            logs,
        };
        let addr = wait_for(Duration::from_secs(30), || {
            server
                .log_field("listening", "addr")
                .and_then(|a| a.parse().ok())
        });
        match addr {
            Some(a) => server.addr = a,
            None => panic!("server did not start:\n{}", server.log_text()),
        }
        server.metrics_addr = server
            .log_field("metrics listening", "addr")
            .and_then(|a| a.parse().ok());
        server
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }

    /// The value of `field` in the first log line whose message starts with
    /// `message` (JSON lines, or `--log-format plain`'s `field=value`).
    pub fn log_field(&self, message: &str, field: &str) -> Option<String> {
        let logs = self.logs.lock().expect("logs");
        logs.iter().find_map(|line| {
            if !line.starts_with('{') {
                let (_, rest) = line.split_once(&format!(": {message}"))?;
                let (_, value) = rest.split_once(&format!(" {field}="))?;
                return value.split_whitespace().next().map(str::to_owned);
            }
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let fields = v.get("fields")?;
            if !fields.get("message")?.as_str()?.starts_with(message) {
                return None;
            }
            fields.get(field).map(|f| {
                f.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| f.to_string())
            })
        })
    }

    /// The `fields` of every JSON log line whose message starts with
    /// `message`, in order.
    pub fn log_events(&self, message: &str) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .filter_map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                let fields = v.get("fields")?;
                fields
                    .get("message")?
                    .as_str()?
                    .starts_with(message)
                    .then(|| fields.clone())
            })
            .collect()
    }

    /// `GET /metrics` on the plain-HTTP metrics listener: the content type
    /// and the body.
    pub fn scrape(&self) -> (String, String) {
        let addr = self
            .metrics_addr
            .expect("the server has a metrics listener");
        let reply = http_get(addr, "/metrics");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let (head, body) = reply.split_once("\r\n\r\n").expect("a header block");
        let content_type = head
            .lines()
            .find_map(|l| l.strip_prefix("content-type: "))
            .unwrap_or("")
            .to_owned();
        (content_type, body.to_owned())
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM")
    }

    /// Sends a signal (`TERM`, `INT`) and waits for the exit status.
    pub fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                return s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("server did not exit after SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// TLS client settings for talking to a server whose CA is `ca_pem`.
pub fn client_config(
    ca_pem: &[u8],
    identity: Option<(&[u8], &[u8])>,
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("CA cert");
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .expect("cert");
            let key = PrivateKeyDer::from_pem_slice(key).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A plain-HTTP GET with `Connection: close`: the whole reply as text.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("reply");
    reply
}

/// Opens a TLS connection to the server as `localhost`.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    connect_as(addr, config, "localhost").await
}

/// Opens a TLS connection to the server, verifying its certificate for
/// `name`.
pub async fn connect_as(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &'static str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(name).map_err(std::io::Error::other)?;
    let connect = async {
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(config).connect(name, tcp).await
    };
    tokio::time::timeout(REPLY_TIMEOUT, connect)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS connect timed out"))?
}

/// A keep-alive HTTP connection (HTTP/2 when ALPN chose it).
pub enum Conn {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub version: hyper::Version,
}

impl Conn {
    pub async fn open(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Conn> {
        Conn::open_as(addr, config, "localhost").await
    }

    /// Like `open`, verifying the certificate for `name`.
    pub async fn open_as(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        name: &'static str,
    ) -> std::io::Result<Conn> {
        let tls = connect_as(addr, config, name).await?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let to_io = |e: hyper::Error| std::io::Error::other(e);
        if h2 {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(to_io)?;
            tokio::spawn(conn);
            Ok(Conn::H2(send))
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(to_io)?;
            tokio::spawn(conn);
            Ok(Conn::H1(send))
        }
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::H1(send) => send.is_closed(),
            Conn::H2(send) => send.is_closed(),
        }
    }

    /// Sends a request and reads the whole reply; a server that does not
    /// answer within `REPLY_TIMEOUT` fails the test instead of hanging it.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, hyper::Error> {
        tokio::time::timeout(REPLY_TIMEOUT, self.send_unbounded(req))
            .await
            .unwrap_or_else(|_| panic!("no reply within {REPLY_TIMEOUT:?}"))
    }

    async fn send_unbounded(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, hyper::Error> {
        let resp = match self {
            Conn::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Conn::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let status = resp.status().as_u16();
        let version = resp.version();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            body,
            version,
        })
    }

    /// POSTs JSON to `path`.
    pub async fn post(
        &mut self,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Reply, hyper::Error> {
        self.send(post(path, "application/json", body)).await
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply, hyper::Error> {
        let req = Request::get(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .expect("request");
        self.send(req).await
    }
}

pub fn post(path: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("request")
}

/// The self-signed CA the server wrote.
pub fn read_ca(path: &Path) -> Vec<u8> {
    wait_for(Duration::from_secs(10), || {
        std::fs::read(path).ok().filter(|b| !b.is_empty())
    })
    .expect("CA file written")
}

/// A fresh directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    crate::bad_input::tempdir(name)
}

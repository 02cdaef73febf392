//! A minimal Kubernetes API endpoint over plain HTTP for tests: each
//! request is answered by a handler from its path and query, with a JSON
//! reply or a chunked stream (a watch) that then stays open.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub enum Answer {
    /// Status code and JSON body.
    Json(u16, String),
    /// JSON lines sent as chunks; the stream then stays open, as a watch
    /// does until the API server's timeout.
    Stream(Vec<String>),
    /// JSON lines sent as chunks as the test sends them, a watch that the
    /// test drives; the stream ends when the sender is dropped.
    Live(std::sync::mpsc::Receiver<String>),
}

/// A Kubernetes `Status` error body.
pub fn status(code: u16, reason: &str, message: &str) -> Answer {
    Answer::Json(
        code,
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code,
        })
        .to_string(),
    )
}

pub struct FakeApi {
    pub addr: SocketAddr,
    /// The paths asked for, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// The paths asked for with `Accept: ...;as=PartialObjectMetadata...`
    /// (metadata-only lists and watches), in order.
    pub metadata_requests: Arc<Mutex<Vec<String>>>,
}

type Handler = dyn Fn(&str, &str) -> Answer + Send + Sync;

impl FakeApi {
    pub fn start(handler: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let metadata_requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let metadata_log = metadata_requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, log, metadata_log) =
                    (handler.clone(), log.clone(), metadata_log.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log, &metadata_log));
            }
        });
        FakeApi {
            addr,
            requests,
            metadata_requests,
        }
    }

    /// A kubeconfig in `dir` that points at this endpoint.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://{}\"}}\nusers:\n- name: test\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: test}}\ncurrent-context: fake\n",
                self.addr
            ),
        )
        .expect("kubeconfig");
        path
    }

    /// `meshguard serve` against this API (its kubeconfig in `dir`),
    /// writing its CA to `dir/ca.pem`: the server and that path.
    pub fn serve(&self, dir: &Path) -> (crate::harness::Server, PathBuf) {
        let kubeconfig = self.kubeconfig(dir);
        let ca = dir.join("ca.pem");
        let server = crate::harness::Server::start_with_env(
            &["--ca-out", ca.to_str().expect("utf-8")],
            &[("KUBECONFIG", kubeconfig.to_str().expect("utf-8"))],
        );
        (server, ca)
    }
}

fn serve(
    mut stream: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<String>>,
    metadata_log: &Mutex<Vec<String>>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut metadata_only = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
            let lower = header.to_ascii_lowercase();
            metadata_only |=
                lower.starts_with("accept:") && lower.contains("as=partialobjectmetadata");
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        log.lock().expect("log").push(path.to_owned());
        if metadata_only {
            metadata_log.lock().expect("log").push(target.clone());
        }
        let answer = if path == "/version" {
            Answer::Json(
                200,
                r#"{"major":"1","minor":"24","gitVersion":"v1.24.0","gitCommit":"4ce5a8954017644c5420bae81d72b09b735c21f0","gitTreeState":"clean","buildDate":"2022-05-03T13:38:19Z","goVersion":"go1.18.1","compiler":"gc","platform":"linux/amd64"}"#.to_owned(),
            )
        } else {
            handler(path, query)
        };
        match answer {
            Answer::Json(code, body) => {
                let reply = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            }
            Answer::Stream(lines) => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
                for line in lines {
                    let chunk = format!("{line}\n");
                    let _ =
                        stream.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
                    let _ = stream.flush();
                }
                std::thread::sleep(Duration::from_secs(600));
                return;
            }
            Answer::Live(lines) => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
                for line in lines {
                    let chunk = format!("{line}\n");
                    if stream
                        .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
                        .is_err()
                    {
                        return;
                    }
                    let _ = stream.flush();
                }
                let _ = stream.write_all(b"0\r\n\r\n");
                return;
            }
        }
    }
}

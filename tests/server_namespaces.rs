//! The namespace view of `meshguard serve`, fed by a test API endpoint that
//! replays what kube-apiserver really sent: the namespace list
//! (`namespaces.json`) and the watch stream (`namespaces-watch.jsonl`:
//! MODIFIED, ADDED, MODIFIED, BOOKMARK).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Conn, Server, client_config, read_ca, scratch, wait_for};
use crate::util::data;

/// A minimal Kubernetes API endpoint serving namespaces over plain HTTP.
struct FakeApi {
    addr: SocketAddr,
    watches: Arc<AtomicUsize>,
    gets: Arc<AtomicUsize>,
}

impl FakeApi {
    fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let watches = Arc::new(AtomicUsize::new(0));
        let gets = Arc::new(AtomicUsize::new(0));
        let (w, g) = (watches.clone(), gets.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (w, g) = (w.clone(), g.clone());
                std::thread::spawn(move || serve(stream, &w, &g));
            }
        });
        FakeApi {
            addr,
            watches,
            gets,
        }
    }
}

fn serve(mut stream: TcpStream, watches: &AtomicUsize, gets: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path == "/api/v1/namespaces" && query.contains("watch=true") {
            let first = watches.fetch_add(1, Ordering::SeqCst) == 0;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
            if first {
                let events =
                    std::fs::read_to_string(data("namespaces-watch.jsonl")).expect("watch stream");
                for line in events.lines() {
                    let chunk = format!("{line}\n");
                    let _ =
                        stream.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
                    let _ = stream.flush();
                }
            }
            // Keep the watch open, as the API server does until its timeout.
            std::thread::sleep(Duration::from_secs(600));
            return;
        }
        let (status, body) = if path == "/api/v1/namespaces" {
            (
                "200 OK",
                std::fs::read_to_string(data("namespaces.json")).expect("list"),
            )
        } else if path.starts_with("/api/v1/namespaces/") {
            gets.fetch_add(1, Ordering::SeqCst);
            let name = path.trim_start_matches("/api/v1/namespaces/");
            (
                "404 Not Found",
                format!(
                    r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"namespaces \"{name}\" not found","reason":"NotFound","details":{{"name":"{name}","kind":"namespaces"}},"code":404}}"#
                ),
            )
        } else {
            (
                "404 Not Found",
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}"#.to_owned(),
            )
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A Deployment review in `namespace` whose pods carry no injection marker.
fn unmarked_deployment(namespace: &str) -> String {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u-{namespace}","kind":{{"group":"apps","version":"v1","kind":"Deployment"}},"operation":"CREATE","namespace":"{namespace}","object":{{"metadata":{{"name":"web","namespace":"{namespace}"}},"spec":{{"template":{{"metadata":{{"labels":{{"app":"web","version":"v1"}}}},"spec":{{"serviceAccountName":"web"}}}}}}}}}}}}"#
    )
}

fn mg103_message(reply: &[u8]) -> String {
    let v: Value = serde_json::from_slice(reply).expect("json");
    v["response"]["status"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_follows_the_list_and_the_watch_stream() {
    let api = FakeApi::start();
    let dir = scratch("watch");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://{}\"}}\nusers:\n- name: test\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: test}}\ncurrent-context: fake\n",
            api.addr
        ),
    )
    .expect("kubeconfig");
    let ca = dir.join("ca.pem");
    let server = Server::start_with_env(
        &["--ca-out", ca.to_str().expect("utf-8")],
        &[("KUBECONFIG", kubeconfig.to_str().expect("utf-8"))],
    );
    let tls = client_config(&read_ca(&ca), None, &[b"http/1.1"]);
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");

    // Ready once the list is in; the watch then adds `reviews`: 13 + 1.
    let mut readiness = String::new();
    for _ in 0..500 {
        let reply = conn.get("/readyz").await.expect("readyz");
        readiness = String::from_utf8_lossy(&reply.body).into_owned();
        if reply.status == 200 && readiness.contains("(14 namespaces)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        readiness.contains("namespace view synced (14 namespaces)"),
        "{readiness}\n{}",
        server.log_text()
    );
    assert!(api.watches.load(Ordering::SeqCst) >= 1);

    // The MODIFIED event moved `canary` to revision 1-25.
    let canary = wait_for(Duration::from_secs(10), || {
        server
            .logs
            .lock()
            .expect("logs")
            .iter()
            .find(|l| l.contains("namespace view updated") && l.contains("\"canary\""))
            .cloned()
    });
    let canary = canary.expect("the canary update is applied");
    assert!(canary.contains("1-25"), "{canary}");

    // `reviews` came from the ADDED event: its (empty) labels are known.
    let reply = conn
        .post("/validate", unmarked_deployment("reviews"))
        .await
        .expect("reply");
    let message = mg103_message(&reply.body);
    assert!(
        message.contains("namespace `reviews` has neither istio-injection nor istio.io/rev"),
        "{message}"
    );
    // `catalog` (from the list) injects; `payments` (from the list) does not.
    let reply = conn
        .post("/validate", unmarked_deployment("catalog"))
        .await
        .expect("reply");
    assert!(
        !mg103_message(&reply.body).contains("MG103"),
        "{:?}",
        reply.body
    );
    let reply = conn
        .post("/validate", unmarked_deployment("payments"))
        .await
        .expect("reply");
    assert!(mg103_message(&reply.body).contains("namespace `payments` has neither"));
    // `sandbox` (being deleted, still there) keeps meshguard.io/mode=warn.
    let reply = conn
        .post("/validate", unmarked_deployment("sandbox"))
        .await
        .expect("reply");
    let v: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(v["response"]["allowed"], true, "mode warn: {v}");

    // A namespace nobody knows: one GET (404 here), then the pod's markers.
    let before = api.gets.load(Ordering::SeqCst);
    let reply = conn
        .post("/validate", unmarked_deployment("brand-new"))
        .await
        .expect("reply");
    assert!(mg103_message(&reply.body).contains("labels of namespace `brand-new` are unknown"));
    assert_eq!(
        api.gets.load(Ordering::SeqCst),
        before + 1,
        "exactly one GET for the unknown namespace"
    );
}

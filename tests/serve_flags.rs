//! `meshguard serve` flags as README documents them, on the real binary:
//! `--metrics-listen off`, `--log-format`, the `MESHGUARD_LOG` levels, bad
//! files at start, and the quick start of "Get going".

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Conn, Server, client_config, http_get, read_ca, scratch};
use crate::util::{data, repo};

/// Runs `meshguard serve` with `args`, which must make it fail at start:
/// the exit code and stderr. A server that starts serving instead is
/// killed and fails the test rather than hanging it.
fn serve_must_fail(args: &[&str]) -> (Option<i32>, String) {
    let dir = scratch("serve-fails");
    let ca = dir.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .args(["--ca-out", ca.to_str().expect("utf-8")])
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("meshguard runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("meshguard serve {args:?} did not fail at start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    (status.code(), err)
}

#[test]
fn bad_files_at_start_fail_the_start_with_a_clear_message() {
    let dir = scratch("bad-start");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let config = dir.join("meshguard.yaml");
    std::fs::write(&config, "rules:\n  MG101: {action: block}\n").expect("write");
    let namespaces = dir.join("namespaces.json");
    std::fs::write(&namespaces, "{\"kind\": \"NamespaceList\", \"items\": [").expect("write");
    let missing = dir.join("missing.yaml");
    for (flag, file, says) in [
        (
            "--client-ca",
            &garbage,
            "client CA: no CERTIFICATE block in the file",
        ),
        ("--config", &config, "MG101.action"),
        ("--namespaces", &namespaces, "namespaces.json"),
        ("--config", &missing, "cannot read"),
        ("--client-ca", &missing, "cannot read"),
    ] {
        let (code, err) = serve_must_fail(&[flag, file.to_str().expect("utf-8")]);
        assert_eq!(code, Some(2), "{flag} {}: {err}", file.display());
        assert!(
            err.starts_with("meshguard: ") && err.matches(says).count() == 1,
            "{flag} {}: says {says:?}, once: {err}",
            file.display()
        );
        assert!(
            !err.contains("panicked") && !err.contains("listening"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_off_serves_webhooks_and_no_metrics() {
    let dir = scratch("metrics-off");
    let ca = dir.join("ca.pem");
    let server = Server::start(&[
        "--metrics-listen",
        "off",
        "--ca-out",
        ca.to_str().expect("utf-8"),
    ]);
    assert_eq!(server.metrics_addr, None);
    assert!(
        !server.log_text().contains("metrics listening"),
        "{}",
        server.log_text()
    );
    let tls = client_config(&read_ca(&ca), None, &[b"http/1.1"]);
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    assert_eq!(conn.get("/healthz").await.expect("healthz").status, 200);
    // The HTTPS listener has no /metrics either: they are never served
    // next to the webhooks.
    assert_eq!(conn.get("/metrics").await.expect("metrics").status, 404);
}

/// What a server logs for one denied, one warned and one allowed request,
/// with `MESHGUARD_LOG` set to `filter` (`None`: unset, the default).
async fn decision_logs(name: &str, format: &str, filter: Option<&str>) -> Vec<String> {
    let dir = scratch(name);
    let ca = dir.join("ca.pem");
    let ns = data("namespaces.json");
    let args = [
        "--log-format",
        format,
        "--namespaces",
        ns.to_str().expect("utf-8"),
        "--ca-out",
        ca.to_str().expect("utf-8"),
    ];
    let mut server = match filter {
        Some(f) => Server::start_with_env(&args, &[("MESHGUARD_LOG", f)]),
        None => Server::start_with_env(&args, &[("MESHGUARD_LOG", "")]),
    };
    let tls = client_config(&read_ca(&ca), None, &[b"http/1.1"]);
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    for file in [
        "0073-validate-CREATE-Deployment-payments-orders.json",
        "0129-validate-CREATE-Sidecar-payments-default.json",
        "0069-validate-CREATE-Deployment-catalog-checkout.json",
    ] {
        let body = std::fs::read(data(&format!("reviews/{file}"))).expect("review");
        assert_eq!(
            conn.post("/validate", body).await.expect("reply").status,
            200
        );
    }
    let logs = server.logs.clone();
    // Every line is written before the process exits.
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("terminate");
    assert_eq!(status.code(), Some(0));
    // The log lines: what follows the self-signed certificate's banner.
    let lines = logs.lock().expect("logs").clone();
    let end = lines
        .iter()
        .position(|l| l == "-----END CERTIFICATE-----")
        .expect("the CA banner");
    lines[end + 1..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_one_line_per_denial_or_warning_and_allowed_requests_at_debug() {
    // JSON at the default level (an empty MESHGUARD_LOG is no filter: info).
    let lines = decision_logs("log-json", "json", None).await;
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let decisions: Vec<&Value> = events
        .iter()
        .filter(|e| e["fields"]["webhook"].is_string())
        .collect();
    assert_eq!(
        decisions.len(),
        2,
        "denied and warned only:\n{}",
        lines.join("\n")
    );
    let denied = &decisions[0];
    assert_eq!(denied["level"], "INFO");
    assert_eq!(denied["fields"]["message"], "denied");
    assert_eq!(denied["fields"]["rules"], "MG101,MG102,MG103,MG104,MG107");
    assert_eq!(
        (
            &denied["fields"]["kind"],
            &denied["fields"]["ns"],
            &denied["fields"]["name"]
        ),
        (
            &Value::from("Deployment"),
            &Value::from("payments"),
            &Value::from("orders")
        )
    );
    assert_eq!(decisions[1]["fields"]["message"], "allowed with warnings");
    assert_eq!(decisions[1]["fields"]["rules"], "MG408");
    assert!(events.iter().all(|e| e["level"] != "DEBUG"));

    // At debug, the allowed request has its line too.
    let lines = decision_logs("log-debug", "json", Some("meshguard=debug")).await;
    let allowed: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"message\":\"allowed\""))
        .collect();
    assert_eq!(allowed.len(), 1, "{}", lines.join("\n"));
    assert!(
        allowed[0].contains("\"level\":\"DEBUG\"") && allowed[0].contains("\"name\":\"checkout\"")
    );

    // Plain text: one human-readable line per denial, fields as key=value.
    let lines = decision_logs("log-plain", "plain", None).await;
    assert!(
        lines.iter().all(|l| !l.starts_with('{')),
        "{}",
        lines.join("\n")
    );
    let denied: Vec<&String> = lines.iter().filter(|l| l.contains(" denied ")).collect();
    assert_eq!(denied.len(), 1, "{}", lines.join("\n"));
    assert!(
        denied[0].contains("INFO") && denied[0].contains("rules=MG101,MG102,MG103,MG104,MG107"),
        "{}",
        denied[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_quick_start_denies_the_bundled_review_with_mg103() {
    // `serve` with no flags (the harness adds only local ports and JSON
    // logs): a self-signed certificate whose CA lands in the temp dir, no
    // cluster, so the namespace view is off.
    let tmp = scratch("quick-start");
    let server = Server::start_with_env(&[], &[("TMPDIR", tmp.to_str().expect("utf-8"))]);
    let ca = read_ca(&tmp.join("meshguard-ca.pem"));
    let tls = client_config(&ca, None, &[b"h2", b"http/1.1"]);
    let body = std::fs::read(repo("benches/data/admissionreview-deployment.json")).expect("review");
    assert!((6000..7000).contains(&body.len()), "the 6.4 KB review");
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    let reply = conn.post("/validate", body).await.expect("reply");
    assert_eq!(reply.status, 200);
    let v: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(v["response"]["allowed"], false, "{v}");
    let message = v["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.starts_with("meshguard denied the request: 1 violation\n- MG103 sidecar-injection"),
        "{message}"
    );
    assert!(
        message.contains("the labels of namespace `bookinfo` are unknown")
            && message.contains("the pod has only the sidecar.istio.io/inject annotation")
            && message.contains("Fix:"),
        "the namespace is unknown, the pod has only the deprecated annotation, and the fix: {message}"
    );
    let metrics = http_get(server.metrics_addr.expect("metrics"), "/metrics");
    assert!(
        metrics.lines().any(|l| l
            == r#"meshguard_requests_total{webhook="validate",kind="Deployment",operation="CREATE",decision="denied",dry_run="false"} 1"#),
        "{metrics}"
    );
}

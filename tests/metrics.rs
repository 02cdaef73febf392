//! Metrics of `meshguard serve` (SPEC section 9): exact counters after a
//! known set of requests, the OpenMetrics text, a real Prometheus scraping
//! it, and the dashboard and alerts of `deploy/monitoring/` naming only
//! metrics that exist.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{
    Conn, Server, client_config, eventually, http_get, post, read_ca, scratch, wait_for,
};
use crate::util::{data, repo};

/// What the test sends: (webhook path, review file, times).
const SENT: &[(&str, &str, usize)] = &[
    (
        "/validate",
        "0115-validate-CREATE-PeerAuthentication-payments-legacy-permissive.json",
        2,
    ),
    (
        "/validate",
        "0129-validate-CREATE-Sidecar-payments-default.json",
        1,
    ),
    (
        "/validate",
        "0031-validate-CREATE-Namespace-payments-payments-dryrun.json",
        1,
    ),
    (
        "/validate",
        "0069-validate-CREATE-Deployment-catalog-checkout.json",
        3,
    ),
    (
        "/mutate",
        "0072-mutate-CREATE-Deployment-payments-orders.json",
        1,
    ),
    (
        "/mutate",
        "0030-mutate-CREATE-Namespace-payments-payments-dryrun.json",
        1,
    ),
];

/// Requests in `SENT` plus the ConfigMap and the two bad ones
/// `send_known_requests` adds.
const TOTAL: usize = 12;

/// The samples those requests must produce, exactly.
const EXPECTED: &[&str] = &[
    r#"meshguard_requests_total{webhook="validate",kind="PeerAuthentication",operation="CREATE",decision="denied",dry_run="false"} 2"#,
    r#"meshguard_requests_total{webhook="validate",kind="Sidecar",operation="CREATE",decision="warned",dry_run="false"} 1"#,
    r#"meshguard_requests_total{webhook="validate",kind="Namespace",operation="CREATE",decision="denied",dry_run="true"} 1"#,
    r#"meshguard_requests_total{webhook="validate",kind="Deployment",operation="CREATE",decision="allowed",dry_run="false"} 3"#,
    r#"meshguard_requests_total{webhook="mutate",kind="Deployment",operation="CREATE",decision="patched",dry_run="false"} 1"#,
    r#"meshguard_requests_total{webhook="mutate",kind="Namespace",operation="CREATE",decision="patched",dry_run="true"} 1"#,
    r#"meshguard_requests_total{webhook="validate",kind="other",operation="unknown",decision="error",dry_run="false"} 1"#,
    r#"meshguard_requests_total{webhook="validate",kind="other",operation="CREATE",decision="allowed",dry_run="false"} 1"#,
    r#"meshguard_requests_total{webhook="mutate",kind="other",operation="unknown",decision="error",dry_run="false"} 1"#,
    r#"meshguard_violations_total{rule="MG401",action="deny"} 2"#,
    r#"meshguard_violations_total{rule="MG408",action="warn"} 1"#,
    r#"meshguard_violations_total{rule="MG301",action="deny"} 1"#,
    r#"meshguard_patches_total{mutation="MGP2"} 1"#,
    r#"meshguard_patches_total{mutation="MGP1"} 1"#,
    r#"meshguard_bad_requests_total{reason="bad_request"} 1"#,
    r#"meshguard_bad_requests_total{reason="content_type"} 1"#,
    r#"meshguard_bad_requests_total{reason="too_large"} 0"#,
    r#"meshguard_request_duration_seconds_count{webhook="validate"} 9"#,
    r#"meshguard_request_duration_seconds_count{webhook="mutate"} 3"#,
    r#"meshguard_requests_in_flight 0"#,
    r#"meshguard_ready 1"#,
    r#"meshguard_namespace_view_synced 1"#,
    r#"meshguard_config_reloads_total{result="failure"} 0"#,
];

fn start(name: &str) -> (Server, std::sync::Arc<rustls::ClientConfig>) {
    let dir = scratch(name);
    let ca = dir.join("ca.pem");
    let ns = data("namespaces.json");
    let server = Server::start(&[
        "--namespaces",
        ns.to_str().expect("utf-8"),
        "--ca-out",
        ca.to_str().expect("utf-8"),
    ]);
    let tls = client_config(&read_ca(&ca), None, &[b"h2", b"http/1.1"]);
    (server, tls)
}

async fn send_known_requests(server: &Server, tls: std::sync::Arc<rustls::ClientConfig>) {
    let mut conn = Conn::open(server.addr, tls).await.expect("connect");
    for (path, file, times) in SENT {
        let body = std::fs::read(data(&format!("reviews/{file}"))).expect("review");
        for _ in 0..*times {
            let reply = conn.post(path, body.clone()).await.expect("reply");
            assert_eq!(reply.status, 200, "{file}");
        }
    }
    // A kind meshguard does not judge is counted as `other`, never by name.
    let mut review: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data(
            "reviews/0069-validate-CREATE-Deployment-catalog-checkout.json",
        ))
        .expect("review"),
    )
    .expect("json");
    review["request"]["kind"] =
        serde_json::json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    review["request"]["object"] =
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let reply = conn
        .post("/validate", serde_json::to_vec(&review).expect("json"))
        .await
        .expect("reply");
    assert_eq!(reply.status, 200);
    let reply = conn
        .send(post("/validate", "application/json", "{not json"))
        .await
        .expect("reply");
    assert_eq!(reply.status, 400);
    let reply = conn
        .send(post("/mutate", "text/plain", "hello"))
        .await
        .expect("reply");
    assert_eq!(reply.status, 415);
}

/// Checks the OpenMetrics text format line by line: descriptors, samples
/// with a parseable value, `# EOF` last.
fn assert_openmetrics(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let word = rest.split(' ').next().unwrap_or("");
            assert!(
                ["TYPE", "HELP", "UNIT"].contains(&word),
                "descriptor: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        assert!(series.starts_with("meshguard_"), "prefix: {line}");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "value: {line}"
        );
        if let Some((name, labels)) = series.split_once('{') {
            assert!(!name.is_empty() && labels.ends_with('}'), "labels: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_what_was_sent() {
    let (server, tls) = start("metrics-exact");
    send_known_requests(&server, tls).await;
    let (content_type, text) = server.scrape();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert_openmetrics(&text);
    for sample in EXPECTED {
        assert!(
            text.lines().any(|l| l == *sample),
            "missing `{sample}` in\n{text}"
        );
    }
    // Nothing else was counted: the request counters add up to what was sent.
    let sum: f64 = text
        .lines()
        .filter(|l| l.starts_with("meshguard_requests_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(sum, TOTAL as f64, "{text}");
    assert!(text.contains("meshguard_build_info{version=\""), "{text}");
    // Without --config, the hash is the built-in default's (README:
    // 64-bit FNV-1a of the file), and it is the only one.
    let hash = crate::util::fnv1a64(meshguard::config::DEFAULT_YAML.as_bytes());
    let info: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("meshguard_config_info{"))
        .collect();
    assert_eq!(
        info,
        [format!("meshguard_config_info{{hash=\"{hash}\"}} 1")]
    );
    assert_buckets(&text);
}

/// The request-duration histogram has the documented buckets (50 us to
/// 10 s, sub-millisecond ones first), cumulative counts that never
/// decrease, and `+Inf` equal to the count.
fn assert_buckets(text: &str) {
    const BOUNDS: [f64; 17] = [
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    for webhook in ["validate", "mutate"] {
        let suffix = format!("\",webhook=\"{webhook}\"}} ");
        let buckets: Vec<(String, f64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("meshguard_request_duration_seconds_bucket{le=\""))
            .filter_map(|rest| rest.split_once(suffix.as_str()))
            .map(|(le, count)| (le.to_owned(), count.parse().expect("count")))
            .collect();
        let les: Vec<&str> = buckets.iter().map(|(le, _)| le.as_str()).collect();
        let (inf, finite) = les.split_last().expect("buckets");
        assert_eq!(*inf, "+Inf", "{webhook}: {les:?}");
        let finite: Vec<f64> = finite.iter().map(|le| le.parse().expect("bound")).collect();
        assert_eq!(finite, BOUNDS, "{webhook}");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{webhook}: cumulative {buckets:?}"
        );
        let count = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "meshguard_request_duration_seconds_count{{webhook=\"{webhook}\"}} "
                ))
            })
            .expect("count");
        assert_eq!(buckets.last().map(|b| b.1), count.parse().ok(), "{webhook}");
    }
}

/// The metric names a `/metrics` text defines, with the sample suffixes of
/// each type (`_total`, `_bucket`, `_info`...).
pub(crate) fn defined_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let Some((name, kind)) = rest.split_once(' ') else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        for s in suffixes {
            names.insert(format!("{name}{s}"));
        }
    }
    names
}

/// Every `meshguard_*` name in a file.
pub(crate) fn used_names(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut names = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("meshguard_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_use_only_metrics_that_exist() {
    // Families with labels appear once they have a sample: send the known
    // set (denials, warnings, patches, bad requests) first.
    let (server, tls) = start("metrics-names");
    send_known_requests(&server, tls).await;
    let (_, text) = server.scrape();
    let defined = defined_names(&text);
    let monitoring = repo("deploy/monitoring");
    let mut checked = 0;
    for file in [
        "grafana-dashboard.json",
        "alerts.yaml",
        "prometheusrule.yaml",
    ] {
        let used = used_names(&monitoring.join(file));
        assert!(!used.is_empty(), "{file} uses meshguard metrics");
        // The mesh gauges exist only with a cluster: `server_mesh` checks
        // them against a server whose index has synced.
        for name in used.iter().filter(|n| !n.starts_with("meshguard_mesh_")) {
            assert!(
                defined.contains(name),
                "{file} uses {name}, which /metrics does not define:\n{defined:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "{checked}");
}

#[test]
fn promtool_checks_and_unit_tests_the_alert_rules() {
    let monitoring = repo("deploy/monitoring");
    for args in [
        &["check", "rules", "alerts.yaml"][..],
        &["test", "rules", "alerts.test.yaml"][..],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&monitoring)
            .output()
            .expect("promtool is installed (.ci/run installs Debian's prometheus package)");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A Prometheus server, stopped by its PID when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus on 127.0.0.1 scraping `target` every second.
    fn start(name: &str, target: SocketAddr) -> Prometheus {
        let dir = scratch(name);
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: meshguard\n  static_configs:\n  - targets: ['{target}']\n"
            ),
        )
        .expect("write config");
        // Prometheus cannot report an ephemeral port, so the test picks a
        // free one, releases it and lets Prometheus bind it; another process
        // may take it meanwhile, so a start whose bind failed is retried
        // with a new port.
        for attempt in 1..=5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            match Prometheus::start_on(&dir, &config, addr) {
                Some(p) => return p,
                None => eprintln!("prometheus could not bind {addr} (attempt {attempt})"),
            }
        }
        panic!(
            "prometheus did not start:\n{}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
    }

    /// Starts Prometheus on `addr`: `None` when it exits because the port
    /// is taken.
    fn start_on(dir: &Path, config: &Path, addr: SocketAddr) -> Option<Prometheus> {
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed (.ci/run installs Debian's prometheus package)");
        let mut prometheus = Prometheus { child, addr };
        let ready = wait_for(Duration::from_secs(60), || {
            if let Ok(Some(_)) = prometheus.child.try_wait() {
                return Some(false);
            }
            std::net::TcpStream::connect(addr).ok().and_then(|_| {
                http_get(addr, "/-/ready")
                    .starts_with("HTTP/1.1 200")
                    .then_some(true)
            })
        });
        let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        match ready {
            Some(true) => Some(prometheus),
            Some(false) if log.contains("address already in use") => None,
            _ => panic!("prometheus did not get ready:\n{log}"),
        }
    }

    /// The value of an instant query's single result, if it has one.
    fn query(&self, promql: &str) -> Option<f64> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let reply = http_get(self.addr, &format!("/api/v1/query?query={encoded}"));
        let json = &reply[reply.find('{')?..=reply.rfind('}')?];
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let result = v["data"]["result"].as_array()?;
        let [only] = result.as_slice() else {
            return None;
        };
        only["value"][1].as_str()?.parse().ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_what_the_server_counted() {
    let (server, tls) = start("metrics-prometheus");
    let target = server.metrics_addr.expect("metrics");
    let prometheus = tokio::task::block_in_place(|| Prometheus::start("prometheus", target));
    // A first scrape before the requests, so that rates see them arrive.
    let up = eventually(Duration::from_secs(60), || {
        prometheus
            .query(r#"up{job="meshguard"}"#)
            .filter(|v| *v == 1.0)
    })
    .await;
    assert_eq!(up, Some(1.0), "Prometheus scrapes meshguard");
    send_known_requests(&server, tls).await;
    let total = eventually(Duration::from_secs(60), || {
        prometheus
            .query("sum(meshguard_requests_total)")
            .filter(|v| *v == TOTAL as f64)
    })
    .await;
    assert_eq!(total, Some(TOTAL as f64), "Prometheus saw every request");
    let denied = prometheus.query(r#"sum(meshguard_violations_total{action="deny"})"#);
    assert_eq!(denied, Some(3.0));
    // The histogram as Prometheus stores it: every request observed once,
    // in 18 buckets per webhook (17 bounds and +Inf). No latency bound is
    // asserted: a loaded CI machine decides those, not meshguard.
    let observed = prometheus.query("sum(meshguard_request_duration_seconds_count)");
    assert_eq!(observed, Some(TOTAL as f64));
    let buckets =
        prometheus.query(r#"count(meshguard_request_duration_seconds_bucket{webhook="validate"})"#);
    assert_eq!(buckets, Some(18.0));
    let all = prometheus.query(r#"sum(meshguard_request_duration_seconds_bucket{le="+Inf"})"#);
    assert_eq!(all, Some(TOTAL as f64));
}

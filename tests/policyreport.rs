//! `audit --format policyreport`: what is emitted is valid against the
//! upstream PolicyReport CRDs (tests/data/crds, unchanged copies), is read
//! by kubectl's own manifest decoder, and carries the audit's findings.
//!
//! The schema is the CRD's `openAPIV3Schema`, read from the CRD file and
//! checked generically (types, required fields, enums, integer formats,
//! unknown fields, which the API server would prune), never a schema typed
//! here.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::bad_input::tempdir;
use crate::util::{data, meshguard, stderr, stdout};

/// The `openAPIV3Schema` of the CRD in `file` for `version`.
fn crd_schema(file: &str, version: &str) -> Value {
    let text = std::fs::read_to_string(data(&format!("crds/{file}"))).expect("CRD file");
    let crd: Value = serde_saphyr::from_str(&text).expect("CRD is YAML");
    crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("{file} has no version {version}"))["schema"]["openAPIV3Schema"]
        .clone()
}

fn schema_for(kind: &str) -> Value {
    match kind {
        "PolicyReport" => crd_schema("wgpolicyk8s.io_policyreports.yaml", "v1alpha2"),
        "ClusterPolicyReport" => crd_schema("wgpolicyk8s.io_clusterpolicyreports.yaml", "v1alpha2"),
        other => panic!("unexpected kind {other}"),
    }
}

/// Every way `value` breaks `schema` (a structural OpenAPI v3 schema, as
/// CRDs have), with its path.
fn violations(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(ty) = schema["type"].as_str() {
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            other => panic!("schema type {other} at {path} not handled by this check"),
        };
        if !ok {
            out.push(format!("{path}: expected {ty}, found {value}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    match schema["format"].as_str() {
        Some("int32") if value.as_i64().is_none_or(|n| i32::try_from(n).is_err()) => {
            out.push(format!("{path}: {value} is not an int32"))
        }
        Some("int64") if value.as_i64().is_none() => {
            out.push(format!("{path}: {value} is not an int64"))
        }
        _ => {}
    }
    if let Some(map) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().expect("required names are strings");
            if !map.contains_key(key) {
                out.push(format!("{path}: required field `{key}` is missing"));
            }
        }
        let properties = schema["properties"].as_object();
        let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
        for (key, v) in map {
            let child = format!("{path}.{key}");
            match (
                properties.and_then(|p| p.get(key)),
                &schema["additionalProperties"],
            ) {
                (Some(s), _) => violations(v, s, &child, out),
                (None, extra) if extra.is_object() => violations(v, extra, &child, out),
                // `metadata: {type: object}`: the API server's own schema.
                (None, _) if properties.is_none() || preserve => {}
                (None, _) => out.push(format!(
                    "{child}: not in the schema (the API server would drop it)"
                )),
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            violations(item, schema, &format!("{path}[{i}]"), out);
        }
    }
}

/// The documents of a YAML stream, read by meshguard's own reader (which
/// uses serde-saphyr).
fn documents(text: &str) -> Vec<Value> {
    meshguard::documents::split(text)
        .expect("the stream is YAML")
        .into_iter()
        .map(|d| d.value)
        .collect()
}

/// Checks every report of a stream against its CRD and the fields the API
/// server needs beyond the schema (`metadata.name`, the namespace of a
/// namespaced kind).
fn assert_valid(reports: &[Value]) {
    for report in reports {
        let kind = report["kind"].as_str().expect("kind");
        assert_eq!(report["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        let mut found = Vec::new();
        violations(report, &schema_for(kind), kind, &mut found);
        assert!(found.is_empty(), "{found:#?}\nin {report:#}");
        assert_eq!(report["metadata"]["name"], "meshguard");
        assert_eq!(
            report["metadata"]["namespace"].is_string(),
            kind == "PolicyReport",
            "{report:#}"
        );
        assert_eq!(
            report["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "meshguard"
        );
    }
}

#[test]
fn the_schema_check_catches_what_the_crd_forbids() {
    // The check itself must be able to fail: each of these breaks the CRD.
    let schema = schema_for("PolicyReport");
    let result = json!({"policy": "p", "result": "fail", "timestamp": {"seconds": 1, "nanos": 0}});
    for (broken, expected) in [
        (
            json!({"results": [{"result": "fail"}]}),
            "required field `policy`",
        ),
        (
            json!({"results": [{"policy": "p", "result": "failed"}]}),
            "is not one of",
        ),
        (
            json!({"results": [{"policy": "p", "severity": "urgent"}]}),
            "is not one of",
        ),
        (
            json!({"results": [{"policy": "p", "timestamp": {"seconds": 1}}]}),
            "required field `nanos`",
        ),
        (
            json!({"results": [{"policy": "p", "timestamp": {"seconds": 1, "nanos": 3_000_000_000u64}}]}),
            "not an int32",
        ),
        (json!({"summary": {"pass": "3"}}), "expected integer"),
        (
            json!({"results": [{"policy": "p", "properties": {"n": 1}}]}),
            "expected string",
        ),
        (
            json!({"results": [{"policy": "p", "resource": {}}]}),
            "not in the schema",
        ),
        (
            json!({"results": [result, {"policy": 7}]}),
            "results[1].policy: expected string",
        ),
    ] {
        let mut found = Vec::new();
        violations(&broken, &schema, "PolicyReport", &mut found);
        assert!(
            found.iter().any(|f| f.contains(expected)),
            "{expected} in {found:?} for {broken}"
        );
    }
}

#[test]
fn policy_reports_of_the_example_mesh_are_valid_and_carry_every_finding() {
    let out = meshguard(
        &[
            "audit",
            "examples/shop-mesh.yaml",
            "--format",
            "policyreport",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("---\n"), "{text}");
    let reports = documents(&text);
    assert_valid(&reports);
    let names: Vec<String> = reports
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["kind"].as_str().expect("kind"),
                r["metadata"]["namespace"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "ClusterPolicyReport -",
            "PolicyReport istio-ingress",
            "PolicyReport istio-system",
            "PolicyReport shop"
        ]
    );
    // examples/shop-mesh.yaml: the Namespace passes (after its patch), so
    // do the Gateway in istio-ingress and the PeerAuthentication in
    // istio-system; in shop 4 deny and 3 warn findings on 6 objects, 7
    // objects pass (one of them with a pending patch), the 2
    // ServiceAccounts are not judged.
    let pass_only = json!({"pass": 1, "fail": 0, "warn": 0, "error": 0, "skip": 0});
    for report in &reports[..3] {
        assert_eq!(report["summary"], pass_only, "{report:#}");
    }
    assert_eq!(
        reports[3]["summary"],
        json!({"pass": 7, "fail": 4, "warn": 3, "error": 0, "skip": 2})
    );
    let results = reports[3]["results"].as_array().expect("results");
    assert_eq!(results.len(), 16);
    let mg101 = results
        .iter()
        .find(|r| r["rule"] == "MG101 dedicated-service-account")
        .expect("the MG101 finding");
    assert_eq!(mg101["policy"], "meshguard");
    assert_eq!(mg101["result"], "fail");
    assert_eq!(mg101["severity"], "high");
    assert_eq!(mg101["category"], "Workloads");
    assert_eq!(mg101["source"], "meshguard");
    assert_eq!(
        mg101["resources"],
        json!([{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "checkout-v2"}])
    );
    assert_eq!(
        mg101["properties"],
        json!({"ruleId": "MG101", "action": "deny", "path": "spec.template.spec.serviceAccountName", "origin": "examples/shop-mesh.yaml:51"})
    );
    let message = mg101["message"].as_str().expect("message");
    assert!(
        message.contains(". Fix: Create a ServiceAccount"),
        "{message}"
    );
    assert!(mg101["timestamp"]["seconds"].as_i64().expect("seconds") > 1_700_000_000);
    let warned: Vec<&str> = results
        .iter()
        .filter(|r| r["result"] == "warn")
        .map(|r| r["rule"].as_str().expect("rule"))
        .collect();
    assert_eq!(
        warned,
        [
            "MG403 destination-rule-circuit-breaker",
            "MG403 destination-rule-circuit-breaker",
            "MG409 route-timeout",
        ]
    );
    let skipped: Vec<&Value> = results.iter().filter(|r| r["result"] == "skip").collect();
    assert_eq!(skipped[0]["resources"][0]["kind"], "ServiceAccount");
    assert_eq!(skipped[0]["properties"]["reason"], "unjudged-kind");

    // The same input gives the same stream, timestamps aside.
    let again = meshguard(
        &[
            "audit",
            "examples/shop-mesh.yaml",
            "--format",
            "policyreport",
        ],
        None,
    );
    let strip = |reports: Vec<Value>| -> Vec<Value> {
        reports
            .into_iter()
            .map(|mut r| {
                for result in r["results"].as_array_mut().expect("results") {
                    result.as_object_mut().expect("result").remove("timestamp");
                }
                r
            })
            .collect()
    };
    assert_eq!(strip(documents(&stdout(&again))), strip(reports));
}

#[test]
fn kubectl_reads_the_stream_as_it_would_for_apply() {
    // `kubectl annotate --local -f -` decodes the stream with the same
    // manifest reader as `kubectl apply -f -`, without a cluster.
    let input = "apiVersion: v1\nkind: Namespace\nmetadata: {name: \"off\", labels: {istio-injection: enabled}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: \"y\", namespace: \"off\"}\nspec: {ports: [{port: 80, name: \"tcp: \\\"quoted\\\" é\"}]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"1.16\", namespace: \"off\"}\n";
    let out = meshguard(
        &["audit", "-", "--format", "policyreport"],
        Some(input.as_bytes()),
    );
    let text = stdout(&out);
    let ours = documents(&text);
    assert_valid(&ours);
    let mut kubectl = Command::new("kubectl")
        .args([
            "annotate",
            "--local",
            "-f",
            "-",
            "-o",
            "json",
            "meshguard.test/read=yes",
        ])
        .env("KUBECONFIG", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl on PATH (scripts/install-test-deps.sh checks)");
    kubectl
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let read = kubectl.wait_with_output().expect("kubectl runs");
    assert!(
        read.status.success(),
        "kubectl: {}\n{text}",
        String::from_utf8_lossy(&read.stderr)
    );
    let theirs: Vec<Value> = serde_json::Deserializer::from_slice(&read.stdout)
        .into_iter::<Value>()
        .map(|v| {
            let mut v = v.expect("kubectl prints JSON");
            let meta = v["metadata"].as_object_mut().expect("metadata");
            meta.remove("annotations");
            v
        })
        .collect();
    assert_eq!(theirs, ours, "kubectl reads exactly what meshguard wrote");
    // A namespace named `off` and an object named `1.16` stayed strings.
    assert_eq!(ours[1]["metadata"]["namespace"], "off");
    let names: Vec<&Value> = ours[1]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| &r["resources"][0]["name"])
        .collect();
    assert!(names.contains(&&json!("1.16")), "{names:?}");
}

#[test]
fn cluster_reports_carry_uids_and_listing_errors() {
    let api = crate::cluster_audit::cluster();
    let dir = tempdir("policyreport-cluster");
    let kubeconfig = api.kubeconfig(&dir);
    let out = meshguard(
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
            "--format",
            "policyreport",
        ],
        None,
    );
    // Pods may not be listed: exit 2, and the report says so too.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let reports = documents(&stdout(&out));
    assert_valid(&reports);
    let cluster = &reports[0];
    assert_eq!(cluster["kind"], "ClusterPolicyReport");
    let errors: Vec<&Value> = cluster["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["result"] == "error")
        .collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]["message"]
            .as_str()
            .expect("message")
            .contains("cannot list pods: forbidden")
    );
    let payments = reports
        .iter()
        .find(|r| r["metadata"]["namespace"] == "payments")
        .expect("a report for payments");
    let orders = payments["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["rule"] == "MG101 dedicated-service-account")
        .expect("MG101 on payments/orders");
    // The uid kube-apiserver gave the Deployment in the capture.
    assert_eq!(
        orders["resources"],
        json!([{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "payments", "name": "orders", "uid": "a59df4a1-35e4-4f38-a1ee-d04773bf904d"}])
    );
    let gateway = payments["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["rule"] == "MG406 gateway-tls")
        .expect("MG406 on payments/insecure");
    assert_eq!(
        gateway["resources"][0]["uid"],
        "51db0be1-e415-467b-a1e7-4268fbfd5a4d"
    );
}

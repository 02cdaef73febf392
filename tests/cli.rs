//! The command line as users run it: exit codes, formats, texts.

use serde_json::Value;

use crate::bad_input::tempdir;
use crate::util::{meshguard, repo, stderr, stdout};

#[test]
fn rules_lists_every_rule_with_its_spec_name_and_default_action() {
    let out = meshguard(&["rules"], None);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert!(lines.next().is_some_and(|h| h.starts_with("ID ")), "{text}");
    let rows: Vec<(String, String, String)> = lines
        .map(|l| {
            let mut cols = l.split_whitespace();
            let mut col = || cols.next().unwrap_or_default().to_owned();
            (col(), col(), col())
        })
        .collect();
    let spec: Vec<(String, String, String)> = crate::fixtures::SPEC_RULES
        .iter()
        .map(|(id, name, action)| (id.to_string(), name.to_string(), action.to_string()))
        .collect();
    assert_eq!(rows, spec, "SPEC section 4: ids, names, default actions");
}

#[test]
fn explain_shows_rationale_fix_and_example() {
    let out = meshguard(&["explain", "MG103"], None);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("sidecar-injection")
            && text.contains("Why:")
            && text.contains("Fix:")
            && text.contains("Example:")
    );
    let out = meshguard(&["explain", "sidecar-injection"], None);
    assert_eq!(out.status.code(), Some(0));
    let out = meshguard(&["explain", "MG999"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown rule"));
}

#[test]
fn config_default_round_trips_through_config_check() {
    let out = meshguard(&["config", "default"], None);
    assert_eq!(out.status.code(), Some(0));
    let dir = tempdir("config");
    let file = dir.join("meshguard.yaml");
    std::fs::write(&file, &out.stdout).expect("write");
    let check = meshguard(&["config", "check", file.to_str().expect("utf-8")], None);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    std::fs::write(&file, "rules:\n  MG101: {action: block}\n  MG777: {}\n").expect("write");
    let check = meshguard(&["config", "check", file.to_str().expect("utf-8")], None);
    assert_eq!(check.status.code(), Some(2));
    let err = stderr(&check);
    assert!(
        err.contains("2 problems") && err.contains("MG101.action") && err.contains("MG777"),
        "{err}"
    );
}

#[test]
fn audit_exit_codes_follow_fail_on() {
    let bad = b"apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec:\n  ports: [{port: 80}]\n";
    let warn_only = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: w\n  namespace: shop\n  labels: {sidecar.istio.io/inject: \"true\"}\nspec:\n  template:\n    metadata:\n      labels: {app: w, version: v1, sidecar.istio.io/inject: \"true\"}\n    spec:\n      serviceAccountName: w\n";
    assert_eq!(meshguard(&["audit", "-"], Some(bad)).status.code(), Some(1));
    assert_eq!(
        meshguard(&["audit", "-", "--fail-on", "never"], Some(bad))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        meshguard(&["audit", "-"], Some(warn_only)).status.code(),
        Some(0)
    );
    assert_eq!(
        meshguard(&["audit", "-", "--fail-on", "warn"], Some(warn_only))
            .status
            .code(),
        Some(1)
    );
    // --namespace-labels decides: the same workload in a namespace that
    // disables injection is denied (MG103).
    let disabled = meshguard(
        &[
            "audit",
            "-",
            "--format",
            "json",
            "--namespace-labels=shop=istio-injection=disabled",
        ],
        Some(warn_only),
    );
    assert_eq!(disabled.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&disabled.stdout).expect("json");
    let denied: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["action"] == "deny")
        .map(|f| f["rule"].as_str().expect("rule"))
        .collect();
    assert_eq!(denied, ["MG103"], "{v}");
}

#[test]
fn objects_without_a_namespace_are_judged_in_default() {
    // README, Decisions: where `kubectl apply` without `-n` puts them. The
    // labels given for `default` decide; another namespace's do not.
    let deployment = b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  template:\n    metadata:\n      labels: {app: w, version: v1, sidecar.istio.io/inject: \"true\"}\n    spec: {serviceAccountName: w}\n";
    let judge = |labels: &str| {
        let out = meshguard(
            &["audit", "-", "--format", "json", labels],
            Some(deployment),
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        (out.status.code(), v)
    };
    let (code, v) = judge("--namespace-labels=default=istio-injection=disabled");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["findings"][0]["rule"], "MG103");
    assert_eq!(v["findings"][0]["namespace"], "default");
    let (code, v) = judge("--namespace-labels=shop=istio-injection=disabled");
    assert_eq!(code, Some(0), "{v}");
}

#[test]
fn unknown_audit_formats_are_usage_errors() {
    let out = meshguard(&["audit", "-", "--format", "xml"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn audit_sarif_reports_every_finding_at_its_line_with_the_rule_catalogue() {
    let out = meshguard(
        &["audit", "examples/shop-mesh.yaml", "--format", "sarif"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 25);
    let results = run["results"].as_array().expect("results");
    let summary: Vec<String> = results
        .iter()
        .map(|r| {
            let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(
                rules[index]["id"], r["ruleId"],
                "ruleIndex points at the rule"
            );
            let location = &r["locations"][0]["physicalLocation"];
            format!(
                "{} {} {}:{}",
                r["ruleId"].as_str().expect("id"),
                r["level"].as_str().expect("level"),
                location["artifactLocation"]["uri"].as_str().expect("uri"),
                location["region"]["startLine"]
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "MG101 error examples/shop-mesh.yaml:51",
            "MG103 error examples/shop-mesh.yaml:67",
            "MG201 error examples/shop-mesh.yaml:90",
            "MG404 error examples/shop-mesh.yaml:114",
            "MG403 warning examples/shop-mesh.yaml:137",
            "MG403 warning examples/shop-mesh.yaml:137",
            "MG409 warning examples/shop-mesh.yaml:154",
        ]
    );
    assert!(
        results[0]["message"]["text"]
            .as_str()
            .expect("text")
            .contains("Fix:")
    );
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    let fingerprints: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| {
            r["partialFingerprints"]["meshguardFinding/v1"]
                .as_str()
                .expect("fingerprint")
        })
        .collect();
    assert_eq!(fingerprints.len(), results.len(), "one alert per finding");
    // Paths are relative to %SRCROOT%, the directory meshguard ran in.
    assert!(run["originalUriBaseIds"]["%SRCROOT%"].is_object(), "{run}");
    for r in results {
        let artifact = &r["locations"][0]["physicalLocation"]["artifactLocation"];
        assert_eq!(artifact["uriBaseId"], "%SRCROOT%");
        assert!(!artifact["uri"].as_str().expect("uri").starts_with('/'));
    }
    // Rules carry their default level.
    let level_of = |id: &str| {
        rules.iter().find(|r| r["id"] == id).expect("rule")["defaultConfiguration"]["level"].clone()
    };
    assert_eq!(
        (level_of("MG101"), level_of("MG409")),
        ("error".into(), "warning".into())
    );
}

/// SARIF results of `audit - --format sarif` for `input`: (rule, level,
/// line, fingerprint).
fn sarif_results(input: &[u8], extra: &[&str]) -> Vec<(String, String, u64, String)> {
    let mut args = vec!["audit", "-", "--format", "sarif"];
    args.extend_from_slice(extra);
    let out = meshguard(&args, Some(input));
    let v: Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    v["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["ruleId"].as_str().expect("id").to_owned(),
                r["level"].as_str().expect("level").to_owned(),
                r["locations"][0]["physicalLocation"]["region"]["startLine"]
                    .as_u64()
                    .expect("line"),
                r["partialFingerprints"]["meshguardFinding/v1"]
                    .as_str()
                    .expect("fingerprint")
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn sarif_levels_follow_actions_and_fingerprints_survive_moved_lines() {
    // MG201 (deny), MG403 (warn) and MG409 configured to audit.
    let input = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec:\n  ports: [{port: 80}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: shop}\nspec:\n  host: s\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 10}}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: shop}\nspec:\n  hosts: [s]\n  http:\n  - route: [{destination: {host: s}}]\n";
    let dir = crate::harness::scratch("sarif");
    let config = dir.join("meshguard.yaml");
    std::fs::write(&config, "rules:\n  MG409: {action: audit}\n").expect("write");
    let config = ["--config", config.to_str().expect("utf-8")];
    let first = sarif_results(input.as_bytes(), &config);
    let levels: Vec<(&str, &str, u64)> = first
        .iter()
        .map(|(id, level, line, _)| (id.as_str(), level.as_str(), *line))
        .collect();
    assert_eq!(
        levels,
        [
            ("MG201", "error", 1),
            ("MG403", "warning", 7),
            ("MG409", "note", 14)
        ]
    );
    // The same run again, and the same objects three lines further down
    // (a document added above them): the same alerts, at their new lines.
    assert_eq!(sarif_results(input.as_bytes(), &config), first);
    let moved = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, namespace: shop}}\n---\n{input}"
    );
    let after = sarif_results(moved.as_bytes(), &config);
    assert_eq!(after.len(), first.len());
    for (a, b) in first.iter().zip(&after) {
        assert_eq!((&a.0, &a.3), (&b.0, &b.3), "fingerprint of {}", a.0);
        assert_eq!(b.2, a.2 + 4, "{} moved down", a.0);
    }
}

/// (tests, failures, errors) of `<testsuites>`, the failing case names, and
/// whether the document is well-formed XML to the end.
fn junit_counts(xml: &[u8]) -> ((String, String, String), Vec<String>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut totals = None;
    let mut failing = Vec::new();
    let mut case = String::new();
    let attr = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> String {
        e.try_get_attribute(name)
            .expect("attribute parses")
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("value")
                    .into_owned()
            })
            .unwrap_or_default()
    };
    loop {
        match reader.read_event_into(&mut buf).expect("well-formed XML") {
            Event::Start(e) if e.name().0 == "testsuites" => {
                totals = Some((attr(&e, "tests"), attr(&e, "failures"), attr(&e, "errors")));
            }
            Event::Start(e) if e.name().0 == "testcase" => case = attr(&e, "name"),
            Event::Start(e) | Event::Empty(e) if e.name().0 == "failure" => {
                failing.push(case.clone())
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    (totals.expect("a testsuites element"), failing)
}

#[test]
fn audit_junit_fails_the_cases_that_fail_the_exit_code() {
    let out = meshguard(
        &["audit", "examples/shop-mesh.yaml", "--format", "junit"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let (totals, failing) = junit_counts(&out.stdout);
    assert_eq!(totals, ("18".into(), "4".into(), "0".into()));
    assert_eq!(
        failing,
        [
            "Deployment shop/checkout-v2",
            "CronJob shop/nightly-report",
            "Service shop/checkout",
            "AuthorizationPolicy shop/frontend",
        ]
    );
    let out = meshguard(
        &[
            "audit",
            "examples/shop-mesh.yaml",
            "--format",
            "junit",
            "--fail-on",
            "warn",
        ],
        None,
    );
    let (totals, failing) = junit_counts(&out.stdout);
    assert_eq!(totals.1, "6");
    assert!(failing.contains(&"VirtualService shop/frontend".to_owned()));
    // Markup in names and messages is escaped; an unreadable file is an error.
    let dir = tempdir("junit");
    std::fs::write(
        dir.join("odd.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: \"a<b>&c\", namespace: shop}\nspec: {ports: [{port: 80}]}\n",
    )
    .expect("write");
    std::fs::write(dir.join("broken.yaml"), "a: [unclosed\n").expect("write");
    let out = meshguard(
        &["audit", dir.to_str().expect("utf-8"), "--format", "junit"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let (totals, failing) = junit_counts(&out.stdout);
    assert_eq!(totals.2, "1", "{}", stdout(&out));
    assert_eq!(failing, ["Service shop/a<b>&c"]);
}

#[test]
fn audit_json_follows_the_spec_schema() {
    let input = b"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cart, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {app: cart, version: v1}}\n    spec: {containers: [{name: cart}]}\n";
    let out = meshguard(&["audit", "-", "--format", "json"], Some(input));
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["summary"]["objects"], 2);
    assert_eq!(v["summary"]["deny"], 1);
    assert_eq!(v["summary"]["patches"], 2);
    let f = &v["findings"][0];
    for key in [
        "rule",
        "name",
        "action",
        "kind",
        "namespace",
        "object",
        "source",
        "message",
        "fix",
    ] {
        assert!(f.get(key).is_some(), "finding has {key}: {f}");
    }
    assert_eq!(f["rule"], "MG101");
    assert_eq!(f["source"], "<stdin>:5");
    // The namespace patch gives `shop` injection, and the marker is a pending
    // patch, not an MG103/MG104 violation.
    let patches: Vec<&str> = v["patches"]
        .as_array()
        .expect("patches")
        .iter()
        .map(|p| p["mutation"].as_str().expect("id"))
        .collect();
    assert_eq!(patches, vec!["MGP1", "MGP2"]);
    assert_eq!(
        v["patches"][1]["patch"][0]["path"],
        "/spec/template/metadata/labels/sidecar.istio.io~1inject"
    );
}

#[test]
fn audit_reads_lists_json_and_directories() {
    let dir = tempdir("lists");
    std::fs::create_dir_all(dir.join("nested/deeper")).expect("mkdir");
    std::fs::write(
        dir.join("nested/deeper/list.json"),
        r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"shop"},"spec":{"ports":[{"port":1}]}},{"apiVersion":"v1","kind":"Service","metadata":{"name":"b","namespace":"shop"},"spec":{"ports":[{"port":2}]}}]}"#,
    )
    .expect("write");
    std::fs::write(dir.join("svc.yml"), "apiVersion: v1\nkind: ServiceList\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: c, namespace: shop}\n  spec: {ports: [{port: 3, name: http}]}\n").expect("write");
    let out = meshguard(
        &["audit", dir.to_str().expect("utf-8"), "--format", "json"],
        None,
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["summary"]["objects"], 3);
    assert_eq!(v["summary"]["deny"], 2);
}

#[test]
fn readme_run_command_audits_the_bundled_example() {
    let out = meshguard(&["audit", "examples/shop-mesh.yaml"], None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the example has violations to show"
    );
    assert!(
        stdout(&out)
            .contains("18 objects (16 judged, 2 skipped): 4 deny, 3 warn, 0 audit, 2 patches")
    );
    assert!(repo("examples").is_dir());
}

#[test]
fn the_example_mesh_audit_has_exactly_its_findings_and_patches() {
    let out = meshguard(
        &["audit", "examples/shop-mesh.yaml", "--format", "json"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["summary"],
        serde_json::json!({"objects": 18, "judged": 16, "skipped": 2, "deny": 4, "warn": 3, "audit": 0, "patches": 2})
    );
    let findings: Vec<String> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}/{} {}",
                f["rule"].as_str().expect("rule"),
                f["action"].as_str().expect("action"),
                f["kind"].as_str().expect("kind"),
                f["namespace"].as_str().expect("namespace"),
                f["object"].as_str().expect("object"),
                f["source"].as_str().expect("source"),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            "MG101 deny Deployment shop/checkout-v2 examples/shop-mesh.yaml:51",
            "MG103 deny CronJob shop/nightly-report examples/shop-mesh.yaml:67",
            "MG201 deny Service shop/checkout examples/shop-mesh.yaml:90",
            "MG404 deny AuthorizationPolicy shop/frontend examples/shop-mesh.yaml:114",
            "MG403 warn DestinationRule shop/frontend examples/shop-mesh.yaml:137",
            "MG403 warn DestinationRule shop/frontend examples/shop-mesh.yaml:137",
            "MG409 warn VirtualService shop/frontend examples/shop-mesh.yaml:154",
        ]
    );
    let patches: Vec<String> = v["patches"]
        .as_array()
        .expect("patches")
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["mutation"], p["kind"], p["object"], p["patch"]
            )
        })
        .collect();
    assert_eq!(
        patches,
        [
            r#""MGP1" "Namespace" "shop" [{"op":"add","path":"/metadata/labels","value":{"istio-injection":"enabled"}}]"#,
            r#""MGP2" "Deployment" "checkout-v1" [{"op":"add","path":"/spec/template/metadata/labels/sidecar.istio.io~1inject","value":"true"}]"#,
        ]
    );
}

#[test]
fn audit_without_paths_reads_piped_input() {
    let bad = b"apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec:\n  ports: [{port: 80}]\n";
    let out = meshguard(&["audit", "--format", "json"], Some(bad));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["findings"][0]["rule"], "MG201");
    assert_eq!(v["findings"][0]["source"], "<stdin>:1");
}

#[test]
fn audit_without_paths_and_without_input_is_an_error_not_a_pass() {
    let out = meshguard(&["audit", "--format", "junit"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing on standard input"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn explain_mg406_states_the_passthrough_decision() {
    let out = meshguard(&["explain", "MG406"], None);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for needle in [
        "AUTO_PASSTHROUGH",
        "OPTIONAL_MUTUAL",
        "`passthrough: deny`",
        "east-west",
    ] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
    let out = meshguard(&["config", "default"], None);
    assert!(
        stdout(&out).contains("    passthrough: allow\n"),
        "the default config shows MG406's parameter"
    );
}

#[test]
fn audit_allows_an_east_west_gateway_unless_passthrough_is_denied() {
    // istio/istio samples/multicluster/expose-services.yaml, as published.
    let gateway = b"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: cross-network-gateway\nspec:\n  selector:\n    istio: eastwestgateway\n  servers:\n    - port:\n        number: 15443\n        name: tls\n        protocol: TLS\n      tls:\n        mode: AUTO_PASSTHROUGH\n      hosts:\n        - \"*.local\"\n";
    let out = meshguard(&["audit", "-", "--format", "json"], Some(gateway));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["summary"]["judged"], 1);
    assert_eq!(v["findings"], serde_json::json!([]));

    let dir = tempdir("passthrough-deny");
    let config = dir.join("meshguard.yaml");
    std::fs::write(&config, "rules:\n  MG406: {passthrough: deny}\n").expect("write");
    let out = meshguard(
        &[
            "audit",
            "-",
            "--format",
            "json",
            "--config",
            config.to_str().expect("utf-8"),
        ],
        Some(gateway),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["findings"][0]["rule"], "MG406");
    assert_eq!(v["findings"][0]["path"], "spec.servers[0].tls.mode");
}

#[test]
fn review_exits_0_for_a_denial_as_the_readme_says() {
    // The README's review example: a Deployment without a service account.
    let out = meshguard(
        &[
            "review",
            "tests/data/reviews/0073-validate-CREATE-Deployment-payments-orders.json",
            "--namespaces",
            "tests/data/namespaces.json",
            "--webhook",
            "validate",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("an AdmissionReview");
    assert_eq!(v["response"]["allowed"], false);
}

#[test]
fn the_example_mesh_posture_is_exactly_the_hand_worked_one() {
    // examples/shop-mesh.yaml: shop gets istio-injection=enabled by MGP1,
    // the mesh-wide PeerAuthentication is STRICT; checkout's policy names a
    // principal, frontend's rule is empty (broad), the CronJob opts out of
    // the sidecar and no policy selects it.
    let out = meshguard(
        &[
            "audit",
            "examples/shop-mesh.yaml",
            "--posture",
            "--format",
            "json",
        ],
        None,
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["posture"],
        serde_json::json!({
            "summary": {"workloads": 4, "encrypted": 3, "authorized": 2,
                        "encryptedPercent": 75.0, "authorizedPercent": 50.0},
            "workloads": [
                {"namespace": "shop", "kind": "CronJob", "name": "nightly-report", "sidecar": "no",
                 "mtls": "none", "mtlsFrom": null, "authz": "open", "authzFrom": []},
                {"namespace": "shop", "kind": "Deployment", "name": "checkout-v1", "sidecar": "yes",
                 "mtls": "STRICT", "mtlsFrom": "istio-system/default", "authz": "identity",
                 "authzFrom": ["shop/checkout"]},
                {"namespace": "shop", "kind": "Deployment", "name": "checkout-v2", "sidecar": "yes",
                 "mtls": "STRICT", "mtlsFrom": "istio-system/default", "authz": "identity",
                 "authzFrom": ["shop/checkout"]},
                {"namespace": "shop", "kind": "Deployment", "name": "frontend", "sidecar": "yes",
                 "mtls": "STRICT", "mtlsFrom": "istio-system/default", "authz": "broad",
                 "authzFrom": ["shop/frontend"]}
            ]
        })
    );
    // Every reference of the example resolves: no cross-object finding.
    let mg5: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .filter(|r| r.starts_with("MG5"))
        .collect();
    assert!(mg5.is_empty(), "{mg5:?}");
}

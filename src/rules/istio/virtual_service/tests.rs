use serde_json::{Value, json};

use super::super::testing::{message, run, table};
use crate::config::Config;
use crate::rules::RuleId;

fn dest(subset: &str, weight: Option<i64>) -> Value {
    let mut d = json!({"destination": {"host": "orders", "subset": subset}});
    if let Some(w) = weight {
        d["weight"] = json!(w);
    }
    d
}

fn routes(section: &str, destinations: Vec<Value>) -> Value {
    json!({"hosts": ["orders"], section: [{"route": destinations, "timeout": "5s"}]})
}

#[test]
fn weights_add_up_to_100() {
    let none: &[&str] = &[];
    table(
        "VirtualService",
        RuleId::MG405,
        &Config::default(),
        vec![
            (
                "90/10 http",
                "networking.istio.io/v1",
                routes("http", vec![dest("v1", Some(90)), dest("v2", Some(10))]),
                none,
            ),
            (
                "single destination without weight",
                "networking.istio.io/v1",
                routes("http", vec![dest("v1", None)]),
                none,
            ),
            (
                "no weights at all",
                "networking.istio.io/v1beta1",
                routes("tcp", vec![dest("v1", None), dest("v2", None)]),
                none,
            ),
            (
                "100 and 0",
                "networking.istio.io/v1alpha3",
                routes("http", vec![dest("v1", Some(100)), dest("v2", Some(0))]),
                none,
            ),
            (
                "http 80/10",
                "networking.istio.io/v1",
                routes("http", vec![dest("v1", Some(80)), dest("v2", Some(10))]),
                &["spec.http[0].route"],
            ),
            (
                "tls 50/60",
                "networking.istio.io/v1",
                routes("tls", vec![dest("v1", Some(50)), dest("v2", Some(60))]),
                &["spec.tls[0].route"],
            ),
            (
                "tcp one weight unset",
                "networking.istio.io/v1beta1",
                routes("tcp", vec![dest("v1", Some(90)), dest("v2", None)]),
                &["spec.tcp[0].route"],
            ),
            (
                "all zero",
                "networking.istio.io/v1",
                routes("http", vec![dest("v1", Some(0)), dest("v2", Some(0))]),
                &["spec.http[0].route"],
            ),
            (
                "a weight of the wrong type leaves the route unjudged",
                "networking.istio.io/v1",
                routes(
                    "http",
                    vec![
                        dest("v1", Some(90)),
                        json!({"destination": {"host": "orders"}, "weight": "10"}),
                    ],
                ),
                none,
            ),
            (
                "route of the wrong type",
                "networking.istio.io/v1",
                json!({"http": [{"route": {"weight": 5}}]}),
                none,
            ),
            (
                "huge weights do not overflow",
                "networking.istio.io/v1",
                routes(
                    "http",
                    vec![dest("v1", Some(i64::MAX)), dest("v2", Some(i64::MAX))],
                ),
                &[
                    "spec.http[0].route[0].weight",
                    "spec.http[0].route[1].weight",
                    "spec.http[0].route",
                ],
            ),
            (
                "150 and -50 add up but are out of range",
                "networking.istio.io/v1",
                routes("tcp", vec![dest("v1", Some(150)), dest("v2", Some(-50))]),
                &["spec.tcp[0].route[0].weight", "spec.tcp[0].route[1].weight"],
            ),
        ],
    );
}

#[test]
fn extreme_weights_with_canary_steps_do_not_panic() {
    let cfg = Config {
        canary_steps: vec![0, 10, 50, 90, 100],
        ..Config::default()
    };
    for w in [i64::MIN, i64::MAX, -1, 101] {
        let found = run(
            "networking.istio.io/v1",
            "VirtualService",
            routes("http", vec![dest("v1", Some(w)), dest("v2", Some(0))]),
            &cfg,
        );
        assert!(
            found
                .iter()
                .any(|v| v.path == "spec.http[0].route[0].weight"),
            "{w}: {found:?}"
        );
    }
}

#[test]
fn canary_steps_when_configured() {
    let none: &[&str] = &[];
    let cfg = Config {
        canary_steps: vec![0, 10, 50, 90, 100],
        ..Config::default()
    };
    table(
        "VirtualService",
        RuleId::MG405,
        &cfg,
        vec![
            (
                "90/10 on the plan",
                "networking.istio.io/v1",
                routes("http", vec![dest("v1", Some(90)), dest("v2", Some(10))]),
                none,
            ),
            (
                "100/0 on the plan",
                "networking.istio.io/v1",
                routes("tcp", vec![dest("v1", Some(100)), dest("v2", Some(0))]),
                none,
            ),
            (
                "75/25 off the plan",
                "networking.istio.io/v1",
                routes("http", vec![dest("v1", Some(75)), dest("v2", Some(25))]),
                &[
                    "spec.http[0].route[0].weight",
                    "spec.http[0].route[1].weight",
                ],
            ),
            (
                "off the plan and wrong sum",
                "networking.istio.io/v1",
                routes("tls", vec![dest("v1", Some(90)), dest("v2", Some(20))]),
                &["spec.tls[0].route", "spec.tls[0].route[1].weight"],
            ),
            (
                "unweighted single route",
                "networking.istio.io/v1",
                routes("http", vec![dest("v1", None)]),
                none,
            ),
        ],
    );
}

#[test]
fn weight_messages_show_the_sum_and_a_fix() {
    let found = run(
        "networking.istio.io/v1",
        "VirtualService",
        routes("http", vec![dest("v1", Some(80)), dest("v2", Some(10))]),
        &Config::default(),
    );
    let msg = message(&found, RuleId::MG405, "spec.http[0].route");
    assert_eq!(msg, "weights 80 + 10 = 90, not 100");
    assert!(
        found[0].fix_text().contains(
            "e.g. `route: [{destination: {host: orders, subset: v1}, weight: 80}, {destination: {host: orders, subset: v2}, weight: 20}]`"
        ),
        "{}",
        found[0].fix_text()
    );
    let cfg = Config {
        canary_steps: vec![0, 10, 50, 90, 100],
        ..Config::default()
    };
    let found = run(
        "networking.istio.io/v1",
        "VirtualService",
        routes("http", vec![dest("v1", Some(85)), dest("v2", Some(15))]),
        &cfg,
    );
    let msg = message(&found, RuleId::MG405, "spec.http[0].route[0].weight");
    assert!(
        msg.contains("85") && msg.contains("0, 10, 50, 90, 100"),
        "{msg}"
    );
    assert!(
        found[0].fix_text().contains("the nearest is 90"),
        "{}",
        found[0].fix_text()
    );
}

#[test]
fn http_routes_have_a_timeout() {
    let none: &[&str] = &[];
    let route = json!([{"destination": {"host": "orders"}}]);
    table(
        "VirtualService",
        RuleId::MG409,
        &Config::default(),
        vec![
            (
                "timeout",
                "networking.istio.io/v1",
                json!({"http": [{"route": route, "timeout": "3s"}]}),
                none,
            ),
            (
                "no timeout",
                "networking.istio.io/v1",
                json!({"http": [{"route": route}]}),
                &["spec.http[0].timeout"],
            ),
            (
                "second route without",
                "networking.istio.io/v1beta1",
                json!({"http": [{"route": route, "timeout": "1s"}, {"route": route}]}),
                &["spec.http[1].timeout"],
            ),
            (
                "empty timeout",
                "networking.istio.io/v1alpha3",
                json!({"http": [{"route": route, "timeout": ""}]}),
                &["spec.http[0].timeout"],
            ),
            (
                "zero timeout disables it",
                "networking.istio.io/v1",
                json!({"http": [{"route": route, "timeout": "0s"}]}),
                &["spec.http[0].timeout"],
            ),
            (
                "timeout of the wrong type is not judged",
                "networking.istio.io/v1",
                json!({"http": [{"route": route, "timeout": 5}]}),
                none,
            ),
            (
                "redirect needs none",
                "networking.istio.io/v1",
                json!({"http": [{"redirect": {"uri": "/v2"}}]}),
                none,
            ),
            (
                "direct response needs none",
                "networking.istio.io/v1",
                json!({"http": [{"directResponse": {"status": 503}}]}),
                none,
            ),
            (
                "delegate needs none",
                "networking.istio.io/v1",
                json!({"http": [{"delegate": {"name": "orders-routes"}}]}),
                none,
            ),
            (
                "tcp routes are not judged",
                "networking.istio.io/v1",
                json!({"tcp": [{"route": route}]}),
                none,
            ),
            (
                "entry of the wrong type",
                "networking.istio.io/v1",
                json!({"http": ["x", 5]}),
                none,
            ),
        ],
    );
}

#[test]
fn zero_durations() {
    use super::is_zero_duration;
    for zero in ["0s", "0", "0.0s", "0ms", " 0s "] {
        assert!(is_zero_duration(zero), "{zero}");
    }
    for other in ["5s", "0.5s", "10ms", "", "s", "1"] {
        assert!(!is_zero_duration(other), "{other}");
    }
}

//! What the fuzz targets and the property tests share: generators that turn
//! unstructured bytes into objects meshguard judges (so the fuzzer gets past
//! the JSON parser), and the properties every surface must keep.
//!
//! Used by `fuzz/fuzz_targets/*` (cargo-fuzz, nightly) and included by
//! `tests/properties.rs` (stable, many seeded cases), so one definition of
//! each property runs in both. A property that fails panics with the input
//! that broke it. Only meshguard's public API is used.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value, json};

use meshguard::admission;
use meshguard::audit::{self, AuditInput, AuditReport};
use meshguard::config::Config;
use meshguard::documents::{self, Document};
use meshguard::engine::{self, Decision, OldObject, Operation, Request, Webhook};
use meshguard::lenient::Labels;
use meshguard::mesh::{self, Coverage, MeshIndex};
use meshguard::mutate;
use meshguard::object::{Kind, Object};
use meshguard::posture;
use meshguard::rules::{Action, RuleId};

/// A fixed instant: properties never depend on the clock.
pub fn now() -> jiff::Timestamp {
    "2026-11-25T12:00:00Z".parse().expect("a valid timestamp")
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// Every kind meshguard judges or indexes, with its apiVersion and whether
/// it lives in a namespace.
pub const KINDS: &[(Kind, &str, &str)] = &[
    (Kind::Pod, "v1", "Pod"),
    (Kind::Deployment, "apps/v1", "Deployment"),
    (Kind::StatefulSet, "apps/v1", "StatefulSet"),
    (Kind::DaemonSet, "apps/v1", "DaemonSet"),
    (Kind::ReplicaSet, "apps/v1", "ReplicaSet"),
    (Kind::ReplicationController, "v1", "ReplicationController"),
    (Kind::Job, "batch/v1", "Job"),
    (Kind::CronJob, "batch/v1", "CronJob"),
    (Kind::Rollout, "argoproj.io/v1alpha1", "Rollout"),
    (Kind::Service, "v1", "Service"),
    (Kind::Namespace, "v1", "Namespace"),
    (
        Kind::PeerAuthentication,
        "security.istio.io/v1",
        "PeerAuthentication",
    ),
    (
        Kind::AuthorizationPolicy,
        "security.istio.io/v1beta1",
        "AuthorizationPolicy",
    ),
    (
        Kind::RequestAuthentication,
        "security.istio.io/v1",
        "RequestAuthentication",
    ),
    (
        Kind::DestinationRule,
        "networking.istio.io/v1alpha3",
        "DestinationRule",
    ),
    (
        Kind::VirtualService,
        "networking.istio.io/v1",
        "VirtualService",
    ),
    (Kind::Gateway, "networking.istio.io/v1beta1", "Gateway"),
    (Kind::ServiceEntry, "networking.istio.io/v1", "ServiceEntry"),
    (Kind::Sidecar, "networking.istio.io/v1", "Sidecar"),
    (Kind::ServiceAccount, "v1", "ServiceAccount"),
    (Kind::KubeGateway, "gateway.networking.k8s.io/v1", "Gateway"),
];

/// The Istio kinds (the lenient readers of schemas we do not own).
pub const ISTIO_KINDS: &[Kind] = &[
    Kind::PeerAuthentication,
    Kind::AuthorizationPolicy,
    Kind::RequestAuthentication,
    Kind::DestinationRule,
    Kind::VirtualService,
    Kind::Gateway,
    Kind::ServiceEntry,
    Kind::Sidecar,
];

const NAMESPACES: &[&str] = &[
    "shop",
    "payments",
    "default",
    "istio-system",
    "kube-system",
    "meshguard-system",
];
const NAMES: &[&str] = &["cart", "orders", "reviews", "default", "a/b~c", ""];
const LABEL_KEYS: &[&str] = &[
    "app",
    "version",
    "app.kubernetes.io/name",
    "app.kubernetes.io/version",
    "sidecar.istio.io/inject",
    "istio.io/rev",
    "istio-injection",
    "meshguard.io/mode",
    "team",
];
const LABEL_VALUES: &[&str] = &[
    "true", "false", "enabled", "disabled", "", "v1", "v2", "cart", "orders", "off", "warn",
    "audit", "enforce", "1-25",
];
const HOSTS: &[&str] = &[
    "cart",
    "orders",
    "reviews.shop.svc.cluster.local",
    "orders.payments.svc.cluster.local",
    "reviews.shop",
    "reviews.shop.svc",
    "api.stripe.com",
    "*.example.com",
    "*",
];
const MODES: &[&str] = &[
    "STRICT",
    "PERMISSIVE",
    "DISABLE",
    "UNSET",
    "ISTIO_MUTUAL",
    "SIMPLE",
    "MUTUAL",
    "PASSTHROUGH",
    "AUTO_PASSTHROUGH",
    "OPTIONAL_MUTUAL",
    "ALLOW_ANY",
    "REGISTRY_ONLY",
    "bogus",
];
const PRINCIPALS: &[&str] = &[
    "cluster.local/ns/shop/sa/cart",
    "cluster.local/ns/payments/sa/orders",
    "cluster.local/ns/ghost/sa/nobody",
    "other.domain/ns/shop/sa/cart",
    "*",
    "shop",
    "payments",
    "ghost",
];

fn pick<'a>(u: &mut Unstructured<'_>, pool: &[&'a str]) -> Result<&'a str> {
    Ok(*u.choose(pool)?)
}

/// A value of a type the schema does not expect: the lenient readers must
/// read it as absent, never fail or panic on it.
fn odd(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0u8..=6)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => json!(u.arbitrary::<f32>()?.to_string()),
        4 => json!([]),
        5 => json!({}),
        _ => Value::String(u.arbitrary()?),
    })
}

/// A string from the pool; now and then arbitrary text or a wrong type.
fn text(u: &mut Unstructured<'_>, pool: &[&str]) -> Result<Value> {
    Ok(match u.int_in_range(0u8..=19)? {
        0 => Value::String(u.arbitrary()?),
        1 => odd(u)?,
        _ => Value::String(pick(u, pool)?.to_owned()),
    })
}

fn strings(u: &mut Unstructured<'_>, pool: &[&str], max: usize) -> Result<Value> {
    let n = u.int_in_range(0..=max)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(text(u, pool)?);
    }
    Ok(Value::Array(out))
}

/// Sets `key` with probability 3/4.
fn maybe(
    u: &mut Unstructured<'_>,
    map: &mut Map<String, Value>,
    key: &str,
    f: impl FnOnce(&mut Unstructured<'_>) -> Result<Value>,
) -> Result<()> {
    if u.ratio(3u8, 4u8)? {
        let v = f(u)?;
        map.insert(key.to_owned(), v);
    }
    Ok(())
}

/// A generator of one field's value.
type Gen = dyn Fn(&mut Unstructured<'_>) -> Result<Value>;

fn obj(u: &mut Unstructured<'_>, fields: &[(&str, &Gen)]) -> Result<Value> {
    if u.ratio(1u8, 30u8)? {
        return odd(u);
    }
    let mut map = Map::new();
    for (key, f) in fields {
        maybe(u, &mut map, key, f)?;
    }
    Ok(Value::Object(map))
}

fn list(
    u: &mut Unstructured<'_>,
    max: usize,
    f: impl Fn(&mut Unstructured<'_>) -> Result<Value>,
) -> Result<Value> {
    if u.ratio(1u8, 30u8)? {
        return odd(u);
    }
    let n = u.int_in_range(0..=max)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(f(u)?);
    }
    Ok(Value::Array(out))
}

/// A labels (or annotations) map.
pub fn labels(u: &mut Unstructured<'_>) -> Result<Value> {
    if u.ratio(1u8, 30u8)? {
        return odd(u);
    }
    let n = u.int_in_range(0..=4)?;
    let mut map = Map::new();
    for _ in 0..n {
        let key = pick(u, LABEL_KEYS)?.to_owned();
        map.insert(key, text(u, LABEL_VALUES)?);
    }
    Ok(Value::Object(map))
}

fn metadata(u: &mut Unstructured<'_>, namespace: &str) -> Result<Value> {
    let mut map = Map::new();
    map.insert("name".into(), text(u, NAMES)?);
    if u.ratio(7u8, 8u8)? {
        map.insert("namespace".into(), json!(namespace));
    }
    maybe(u, &mut map, "labels", labels)?;
    maybe(u, &mut map, "annotations", labels)?;
    if u.ratio(1u8, 8u8)? {
        let controller = text(u, &[])?;
        let controller = if u.arbitrary()? {
            json!(true)
        } else {
            controller
        };
        map.insert(
            "ownerReferences".into(),
            json!([{"kind": "ReplicaSet", "name": "rs", "controller": controller}]),
        );
    }
    if u.ratio(1u8, 3u8)? {
        let t = pick(
            u,
            &["2026-01-01T00:00:00Z", "2025-06-01T12:00:00Z", "not a time"],
        )?;
        map.insert("creationTimestamp".into(), json!(t));
    }
    if u.ratio(1u8, 30u8)? {
        return odd(u);
    }
    Ok(Value::Object(map))
}

fn container(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("name", &|u| {
                text(u, &["app", "istio-proxy", "istio-init", "istio-validation"])
            }),
            ("image", &|u| text(u, &["cart:1"])),
            ("ports", &|u| {
                list(u, 2, |u| {
                    obj(
                        u,
                        &[("containerPort", &|u| {
                            Ok(json!(*u.choose(&[8080, 15001, 15090, 15021, 80])?))
                        })],
                    )
                })
            }),
            ("securityContext", &security_context),
        ],
    )
}

fn security_context(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[("runAsUser", &|u| {
            if u.ratio(1u8, 10u8)? {
                odd(u)
            } else {
                Ok(json!(*u.choose(&[1337, 1000, 0])?))
            }
        })],
    )
}

fn pod_spec(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("serviceAccountName", &|u| text(u, &["cart", "default", ""])),
            ("serviceAccount", &|u| text(u, &["cart", "default"])),
            ("hostNetwork", &|u| {
                if u.ratio(1u8, 10u8)? {
                    odd(u)
                } else {
                    Ok(json!(u.ratio(1u8, 4u8)?))
                }
            }),
            ("securityContext", &security_context),
            ("containers", &|u| list(u, 2, container)),
            ("initContainers", &|u| list(u, 1, container)),
        ],
    )
}

fn template(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("metadata", &|u| {
                obj(u, &[("labels", &labels), ("annotations", &labels)])
            }),
            ("spec", &pod_spec),
        ],
    )
}

fn selector(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(u, &[("matchLabels", &labels)])
}

fn peer_authentication(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("selector", &selector),
            ("mtls", &|u| obj(u, &[("mode", &|u| text(u, MODES))])),
            ("portLevelMtls", &|u| {
                let mut map = Map::new();
                for _ in 0..u.int_in_range(0..=2)? {
                    let port = pick(u, &["8080", "9090", "x"])?.to_owned();
                    map.insert(port, obj(u, &[("mode", &|u| text(u, MODES))])?);
                }
                Ok(Value::Object(map))
            }),
        ],
    )
}

fn source(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("principals", &|u| strings(u, PRINCIPALS, 2)),
            ("notPrincipals", &|u| strings(u, PRINCIPALS, 1)),
            ("namespaces", &|u| strings(u, PRINCIPALS, 2)),
            ("notNamespaces", &|u| strings(u, PRINCIPALS, 1)),
            ("ipBlocks", &|u| strings(u, &["10.0.0.0/8"], 1)),
        ],
    )
}

fn authorization_policy(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("selector", &selector),
            ("targetRef", &|u| {
                if u.ratio(1u8, 6u8)? {
                    Ok(json!({"kind": "Gateway", "name": "waypoint"}))
                } else {
                    Ok(Value::Null)
                }
            }),
            ("action", &|u| {
                text(u, &["ALLOW", "DENY", "CUSTOM", "AUDIT", ""])
            }),
            ("rules", &|u| {
                list(u, 2, |u| {
                    obj(
                        u,
                        &[
                            ("from", &|u| list(u, 2, |u| obj(u, &[("source", &source)]))),
                            ("to", &|u| {
                                list(u, 1, |u| {
                                    Ok(json!({"operation": {"methods": strings(u, &["GET"], 1)?}}))
                                })
                            }),
                            ("when", &|u| {
                                list(u, 1, |u| {
                                    Ok(json!({
                                        "key": text(u, &["source.principal", "source.namespace", "request.headers[x]"])?,
                                        "values": strings(u, PRINCIPALS, 1)?,
                                    }))
                                })
                            }),
                        ],
                    )
                })
            }),
        ],
    )
}

fn traffic_policy(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("tls", &|u| obj(u, &[("mode", &|u| text(u, MODES))])),
            ("outlierDetection", &|_| {
                Ok(json!({"consecutive5xxErrors": 5}))
            }),
            ("connectionPool", &|_| {
                Ok(json!({"tcp": {"maxConnections": 100}}))
            }),
            ("portLevelSettings", &|u| {
                list(u, 1, |u| {
                    obj(u, &[("tls", &|u| obj(u, &[("mode", &|u| text(u, MODES))]))])
                })
            }),
        ],
    )
}

fn destination_rule(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("host", &|u| text(u, HOSTS)),
            ("trafficPolicy", &traffic_policy),
            ("subsets", &|u| {
                list(u, 2, |u| {
                    obj(
                        u,
                        &[
                            ("name", &|u| text(u, &["v1", "v2", "canary"])),
                            ("labels", &labels),
                            ("trafficPolicy", &traffic_policy),
                        ],
                    )
                })
            }),
            ("exportTo", &|u| strings(u, &[".", "*", "shop"], 1)),
        ],
    )
}

fn destination(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("host", &|u| text(u, HOSTS)),
            ("subset", &|u| text(u, &["v1", "v2", "canary"])),
        ],
    )
}

fn routes(u: &mut Unstructured<'_>) -> Result<Value> {
    list(u, 2, |u| {
        obj(
            u,
            &[
                ("route", &|u| {
                    list(u, 3, |u| {
                        obj(
                            u,
                            &[
                                ("destination", &destination),
                                ("weight", &|u| {
                                    Ok(json!(*u.choose(&[0, 10, 50, 90, 100, 33, -1])?))
                                }),
                            ],
                        )
                    })
                }),
                ("timeout", &|u| text(u, &["5s"])),
                ("mirror", &destination),
                ("match", &|u| {
                    list(u, 1, |u| {
                        obj(u, &[("gateways", &|u| strings(u, &["public", "mesh"], 1))])
                    })
                }),
            ],
        )
    })
}

fn virtual_service(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("hosts", &|u| strings(u, HOSTS, 2)),
            ("gateways", &|u| {
                strings(
                    u,
                    &[
                        "mesh",
                        "public",
                        "istio-ingress/public",
                        "./public",
                        "public.istio-ingress.svc.cluster.local",
                    ],
                    2,
                )
            }),
            ("http", &routes),
            ("tcp", &routes),
            ("tls", &routes),
            ("exportTo", &|u| strings(u, &[".", "*"], 1)),
        ],
    )
}

fn gateway(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("selector", &labels),
            ("servers", &|u| {
                list(u, 2, |u| {
                    obj(
                        u,
                        &[
                            ("port", &|u| {
                                obj(
                                    u,
                                    &[("protocol", &|u| {
                                        text(u, &["HTTP", "HTTPS", "TLS", "TCP", "http"])
                                    })],
                                )
                            }),
                            ("hosts", &|u| strings(u, HOSTS, 1)),
                            ("tls", &|u| {
                                obj(
                                    u,
                                    &[
                                        ("mode", &|u| text(u, MODES)),
                                        ("credentialName", &|u| text(u, &["cert", ""])),
                                        ("httpsRedirect", &|u| Ok(json!(u.arbitrary::<bool>()?))),
                                    ],
                                )
                            }),
                        ],
                    )
                })
            }),
        ],
    )
}

fn service_entry(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("hosts", &|u| strings(u, HOSTS, 2)),
            ("location", &|u| {
                text(u, &["MESH_INTERNAL", "MESH_EXTERNAL"])
            }),
            ("exportTo", &|u| strings(u, &[".", "*"], 1)),
        ],
    )
}

fn sidecar(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("workloadSelector", &|u| obj(u, &[("labels", &labels)])),
            ("outboundTrafficPolicy", &|u| {
                obj(u, &[("mode", &|u| text(u, MODES))])
            }),
        ],
    )
}

fn service_spec(u: &mut Unstructured<'_>) -> Result<Value> {
    obj(
        u,
        &[
            ("selector", &labels),
            ("ports", &|u| {
                list(u, 2, |u| {
                    obj(
                        u,
                        &[
                            ("name", &|u| {
                                text(u, &["http", "grpc-web", "tcp-db", "foo", "http2x", ""])
                            }),
                            ("appProtocol", &|u| text(u, &["http", "kubernetes.io/h2c"])),
                            ("port", &|u| Ok(json!(*u.choose(&[80, 8080, 443])?))),
                        ],
                    )
                })
            }),
        ],
    )
}

/// The `spec` of an object of `kind`.
pub fn spec(u: &mut Unstructured<'_>, kind: Kind) -> Result<Option<Value>> {
    let spec = match kind {
        Kind::Pod => pod_spec(u)?,
        Kind::CronJob => obj(
            u,
            &[("jobTemplate", &|u| {
                obj(u, &[("spec", &|u| obj(u, &[("template", &template)]))])
            })],
        )?,
        Kind::Rollout if u.ratio(1u8, 6u8)? => {
            json!({"workloadRef": {"kind": "Deployment", "name": "cart"}})
        }
        Kind::Deployment
        | Kind::StatefulSet
        | Kind::DaemonSet
        | Kind::ReplicaSet
        | Kind::ReplicationController
        | Kind::Job
        | Kind::Rollout => obj(u, &[("template", &template)])?,
        Kind::Service => service_spec(u)?,
        Kind::PeerAuthentication => peer_authentication(u)?,
        Kind::AuthorizationPolicy => authorization_policy(u)?,
        Kind::RequestAuthentication => obj(u, &[("selector", &selector)])?,
        Kind::DestinationRule => destination_rule(u)?,
        Kind::VirtualService => virtual_service(u)?,
        Kind::Gateway => gateway(u)?,
        Kind::ServiceEntry => service_entry(u)?,
        Kind::Sidecar => sidecar(u)?,
        Kind::KubeGateway => json!({"gatewayClassName": "istio"}),
        Kind::Namespace | Kind::ServiceAccount | Kind::Other => return Ok(None),
    };
    Ok(Some(spec))
}

/// One generated object: its kind, apiVersion, kind name and JSON.
#[derive(Debug, Clone)]
pub struct Generated {
    pub kind: Kind,
    pub api_version: &'static str,
    pub kind_name: &'static str,
    pub value: Value,
}

impl Generated {
    /// The namespace the object lives in, as `mesh::namespace_of` says.
    pub fn namespace(&self) -> String {
        let text = self.value.to_string();
        let object = Object::from_json(self.kind, &text).expect("a generated object reads");
        mesh::namespace_of(&object).to_owned()
    }
}

/// An object of one of `kinds`.
pub fn object_of(
    u: &mut Unstructured<'_>,
    kinds: &[(Kind, &'static str, &'static str)],
) -> Result<Generated> {
    let (kind, api_version, kind_name) = *u.choose(kinds)?;
    let namespace = pick(u, NAMESPACES)?;
    let mut map = Map::new();
    map.insert("apiVersion".into(), json!(api_version));
    map.insert("kind".into(), json!(kind_name));
    let mut meta = metadata(u, namespace)?;
    if kind == Kind::Namespace
        && let Value::Object(m) = &mut meta
    {
        // A Namespace is cluster-scoped and named like the namespaces the
        // other objects live in.
        m.remove("namespace");
        if u.ratio(7u8, 8u8)? {
            m.insert("name".into(), json!(namespace));
        }
    }
    if u.ratio(15u8, 16u8)? {
        map.insert("metadata".into(), meta);
    }
    if let Some(spec) = spec(u, kind)? {
        map.insert("spec".into(), spec);
    }
    Ok(Generated {
        kind,
        api_version,
        kind_name,
        value: Value::Object(map),
    })
}

/// An object of any kind meshguard judges or indexes.
pub fn object(u: &mut Unstructured<'_>) -> Result<Generated> {
    object_of(u, KINDS)
}

/// Namespace labels: unknown, or a few labels.
pub fn namespace_labels(u: &mut Unstructured<'_>) -> Result<Option<Labels<'static>>> {
    if u.ratio(1u8, 4u8)? {
        return Ok(None);
    }
    let mut out = Labels::default();
    for _ in 0..u.int_in_range(1..=3)? {
        let key = pick(u, &["istio-injection", "istio.io/rev", "meshguard.io/mode"])?;
        let value = pick(
            u,
            &[
                "enabled", "disabled", "1-25", "off", "warn", "audit", "enforce", "",
            ],
        )?;
        out.insert(key.to_owned(), value.to_owned());
    }
    Ok(Some(out))
}

/// A config built in code: actions, ratcheting, mutations, revision.
pub fn config(u: &mut Unstructured<'_>) -> Result<Config> {
    let mut c = Config::default();
    if u.ratio(1u8, 2u8)? {
        return Ok(c);
    }
    for id in RuleId::ALL {
        if u.ratio(1u8, 6u8)? {
            let action = *u.choose(&[Action::Deny, Action::Warn, Action::Audit, Action::Off])?;
            c.set_action(id, action);
        }
    }
    c.ratcheting = u.ratio(7u8, 8u8)?;
    c.mutations.namespace_injection = u.ratio(7u8, 8u8)?;
    c.mutations.sidecar_marker = u.ratio(7u8, 8u8)?;
    if u.ratio(1u8, 4u8)? {
        c.mutations.sidecar_marker_as = meshguard::config::MarkerForm::Annotation;
    }
    if u.ratio(1u8, 4u8)? {
        c.revision = Some("1-25".to_owned());
    }
    if u.ratio(1u8, 4u8)? {
        c.canary_steps = vec![0, 10, 50, 90, 100];
    }
    Ok(c)
}

/// Perturbs a JSON value: now and then a node is replaced by a value of
/// another type, a key dropped or an unknown one added.
pub fn perturb(u: &mut Unstructured<'_>, value: &mut Value) -> Result<()> {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                match u.int_in_range(0u8..=40)? {
                    0 => drop(map.remove(&key)),
                    1 => drop(map.insert(key, odd(u)?)),
                    _ => perturb(u, map.get_mut(&key).expect("key is present"))?,
                }
            }
            if u.ratio(1u8, 40u8)? {
                map.insert(u.arbitrary()?, odd(u)?);
            }
        }
        Value::Array(items) => {
            for item in items {
                perturb(u, item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// An AdmissionReview body for `object` (CREATE or UPDATE).
pub fn review_json(
    uid: &str,
    object: &Generated,
    namespace: &str,
    operation: &str,
    old: Option<&Value>,
    dry_run: bool,
) -> Value {
    let (group, version) = match object.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", object.api_version),
    };
    let mut request = json!({
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": object.kind_name},
        "resource": {"group": group, "version": version, "resource": "things"},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "fuzz"},
        "object": object.value,
        "oldObject": old.cloned().unwrap_or(Value::Null),
        "dryRun": dry_run,
    });
    if object.kind == Kind::Namespace {
        request
            .as_object_mut()
            .expect("an object")
            .remove("namespace");
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// The webhook answers any body with a well-formed AdmissionReview (both
/// webhooks), or refuses it with a `ReviewError` (the server's 400); the
/// quick reader behind `admission::parse` agrees with the reference reader.
/// Returns the parsed request when it was one.
pub fn webhook_answers(
    body: &[u8],
    config: &Config,
    namespace_labels: Option<&Labels<'_>>,
    mesh: Option<&MeshIndex>,
) -> Option<Value> {
    // The quick reader reads exactly what the reference reader (serde_json)
    // reads, and every body it refuses gets the reference's answer.
    let parsed = admission::parse(body);
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", admission::parse_reference(body)),
        "admission::parse and its reference reader disagree"
    );
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            assert!(
                !e.to_string().is_empty(),
                "a ReviewError says what is wrong"
            );
            return None;
        }
    };
    for webhook in [Webhook::Validate, Webhook::Mutate] {
        let reviewed =
            admission::decide_in_mesh(&parsed, webhook, config, namespace_labels, mesh, now());
        check_response(&reviewed.body, &parsed.uid, &reviewed.decision, webhook);
    }
    serde_json::from_slice(body).ok()
}

/// An AdmissionReview response as the API server reads it.
pub fn check_response(body: &[u8], uid: &str, decision: &Decision, webhook: Webhook) {
    let v: Value = serde_json::from_slice(body).expect("the response is JSON");
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1", "{v}");
    assert_eq!(v["kind"], "AdmissionReview", "{v}");
    let r = &v["response"];
    assert_eq!(
        r["uid"].as_str(),
        Some(uid),
        "the response names the request"
    );
    assert_eq!(r["allowed"].as_bool(), Some(decision.allowed()), "{v}");
    if !decision.allowed() {
        assert_eq!(r["status"]["code"], 403, "{v}");
        assert!(
            r["status"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(
            webhook,
            Webhook::Validate,
            "only the validating webhook denies"
        );
    }
    if let Some(w) = r.get("warnings") {
        for w in w.as_array().expect("warnings are a list") {
            assert!(w.as_str().is_some_and(|w| w.len() <= 256), "{w}");
        }
    }
    match r.get("patch") {
        None => assert!(
            webhook == Webhook::Validate || decision.mutations.iter().all(|m| m.ops.is_empty()),
            "a mutation is sent as a patch"
        ),
        Some(p) => {
            assert_eq!(
                webhook,
                Webhook::Mutate,
                "only the mutating webhook patches"
            );
            assert_eq!(r["patchType"], "JSONPatch");
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p.as_str().expect("the patch is a string"))
                .expect("the patch is base64");
            let ops: json_patch::Patch =
                serde_json::from_slice(&bytes).expect("the patch is an RFC 6902 patch");
            let mine: Vec<_> = decision
                .mutations
                .iter()
                .flat_map(|m| m.ops.clone())
                .collect();
            assert_eq!(ops.0, mine, "the patch sent is the decision's");
        }
    }
}

/// `part` is contained in `whole`: every map and string the user set is
/// still there, unchanged (maps may have gained keys). `null`, and a value
/// of a type the schema does not allow there (a number as a label value, a
/// string where `labels` must be a map), may be replaced: the lenient
/// readers read them as absent, and the API server never sends them (it
/// decodes every object into its schema before admission; `null` is
/// absent), so only a manifest can hold them.
pub fn keeps_user_values(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| keeps_user_values(v, wv))),
        (Value::Object(_), _) => false,
        (Value::String(_), Value::Object(_)) => true,
        (Value::String(_), _) => part == whole,
        _ => true,
    }
}

/// What one side of a comparison decided: (rule, action) pairs, sorted.
fn verdicts(findings: &[engine::Finding]) -> Vec<(RuleId, Action)> {
    let mut v: Vec<_> = findings.iter().map(|f| (f.rule, f.action)).collect();
    v.sort();
    v
}

#[allow(clippy::too_many_arguments)]
fn decide_value(
    object: &Generated,
    value: &Value,
    namespace: &str,
    operation: Operation,
    old: Option<&str>,
    config: &Config,
    labels: Option<&Labels<'_>>,
    mesh: Option<&MeshIndex>,
    webhook: Webhook,
) -> Decision {
    let text = value.to_string();
    let parsed = Object::from_json(object.kind, &text).expect("a JSON object reads leniently");
    let request = Request {
        operation,
        kind: object.kind,
        namespace,
        object: Some(&parsed),
        old_object: old.map(OldObject::Json),
        subresource: false,
    };
    engine::evaluate_in_mesh(&request, config, labels, mesh, now(), webhook)
}

/// Every property of one object, on every surface:
///
/// * the webhook answers its CREATE and its UPDATE (both webhooks);
/// * the mutating webhook's patch applies, never changes a value the user
///   set, and is idempotent (the patched object gets no patch);
/// * an UPDATE of the object (or of its patched form) to itself is never
///   denied (ratcheting), with and without the mesh index;
/// * `audit` of the object as a manifest and `review` of its CREATE (the
///   mutating webhook, then the validating one on the patched object, with
///   the same namespace labels and the index of the same input) agree on
///   every rule id and action, and on the patches.
pub fn object_properties(object: &Generated, config: &Config, labels: Option<&Labels<'static>>) {
    let namespace = object.namespace();
    let request_ns = if object.kind == Kind::Namespace {
        ""
    } else {
        namespace.as_str()
    };

    // The webhook answers it, on both operations.
    let create = review_json("u-1", object, request_ns, "CREATE", None, false);
    let body = create.to_string();
    webhook_answers(body.as_bytes(), config, labels, None);

    // The mutating webhook on CREATE.
    let mutated = decide_value(
        object,
        &object.value,
        request_ns,
        Operation::Create,
        None,
        config,
        labels,
        None,
        Webhook::Mutate,
    );
    let mut patched = object.value.clone();
    mutate::apply(&mut patched, &mutated.mutations)
        .unwrap_or_else(|e| panic!("the patch applies ({e}): {}", object.value));
    assert!(
        keeps_user_values(&object.value, &patched),
        "the patch changes no value the user set:\n{}\n{patched}",
        object.value
    );
    let again = decide_value(
        object,
        &patched,
        request_ns,
        Operation::Create,
        None,
        config,
        labels,
        None,
        Webhook::Mutate,
    );
    assert!(
        again.mutations.is_empty(),
        "the patched object gets no patch: {patched}"
    );

    // The index of the same input as the audit's (one object, the
    // --namespace-labels of the labels).
    let mut index = MeshIndex::new(Coverage::Input { listed: None });
    let patched_text = patched.to_string();
    if let Ok(o) = Object::from_json(object.kind, &patched_text) {
        index.apply(&o);
    }
    let triples: Vec<(String, String, String)> = labels
        .map(|l| {
            l.0.iter()
                .map(|(k, v)| (namespace.clone(), k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    for (ns, k, v) in &triples {
        index.add_namespace_label(ns, k, v);
    }

    // An UPDATE to itself is never denied.
    for (value, mesh) in [
        (&object.value, None),
        (&patched, None),
        (&patched, Some(&index)),
    ] {
        let text = value.to_string();
        let d = decide_value(
            object,
            value,
            request_ns,
            Operation::Update,
            Some(&text),
            config,
            labels,
            mesh,
            Webhook::Validate,
        );
        if config.ratcheting {
            assert!(
                d.allowed(),
                "an UPDATE to itself is never denied: {:?}\n{text}",
                verdicts(&d.findings)
            );
        }
        let update = review_json("u-2", object, request_ns, "UPDATE", Some(value), false);
        let mut update = update;
        update["request"]["object"] = value.clone();
        webhook_answers(update.to_string().as_bytes(), config, labels, mesh);
    }

    // The surfaces agree: audit of the manifest, review of its CREATE.
    let reviewed = decide_value(
        object,
        &patched,
        request_ns,
        Operation::Create,
        None,
        config,
        labels,
        Some(&index),
        Webhook::Validate,
    );
    let input = AuditInput {
        namespace_labels: triples,
        ..AuditInput::default()
    };
    let mut report = AuditReport::default();
    // A manifest says what it is itself (a request says it in its envelope;
    // the readers ignore both).
    let mut manifest = object.value.clone();
    manifest["apiVersion"] = json!(object.api_version);
    manifest["kind"] = json!(object.kind_name);
    let doc = Document {
        line: 1,
        value: manifest,
    };
    audit::audit_documents(
        vec![("fuzz.yaml".into(), doc)],
        &input,
        config,
        now(),
        &mut report,
    );
    assert!(
        report.errors.is_empty(),
        "audit errors: {:?}\n{}",
        report.errors,
        object.value
    );
    let (findings, mutations) = match report.audited.first() {
        Some(a) => (a.findings.clone(), a.mutations.clone()),
        None => (Vec::new(), Vec::new()),
    };
    assert_eq!(
        verdicts(&findings),
        verdicts(&reviewed.findings),
        "audit and review agree on the findings: {}",
        object.value
    );
    assert_eq!(
        mutations, mutated.mutations,
        "audit and review agree on the patches: {}",
        object.value
    );
}

/// The audit of any text: no panic; every object and error keeps a line of
/// the input; an object is counted once, judged, passed, skipped or an error.
pub fn audit_text(text: &str, config: &Config, with_posture: bool) {
    // Lines as YAML counts them: a lone CR breaks a line too (a file with
    // classic Mac line endings; found by the audit target).
    let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
    let docs = match documents::split(text) {
        Ok(docs) => docs,
        Err(e) => {
            assert!(
                e.line >= 1 && e.line <= lines + 1,
                "line {} of {lines}",
                e.line
            );
            return;
        }
    };
    for d in &docs {
        assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}", d.line);
    }
    let input = AuditInput {
        posture: with_posture,
        ..AuditInput::default()
    };
    let mut report = AuditReport::default();
    let named = docs
        .into_iter()
        .map(|d| ("in.yaml".to_owned(), d))
        .collect();
    audit::audit_documents(named, &input, config, now(), &mut report);
    for a in &report.audited {
        assert!(a.source.line >= 1 && a.source.line <= lines);
    }
    for e in &report.errors {
        assert!(
            !e.message.contains("internal error"),
            "{}: {}\n{text}",
            e.source,
            e.message
        );
    }
    assert_eq!(
        report.objects,
        report.audited.len() + report.passed.len() + report.skipped.len() + report.errors.len(),
        "every object is accounted for once"
    );
    if let Some(p) = &report.posture {
        assert!(p.encrypted() <= p.workloads.len() && p.authorized() <= p.workloads.len());
    }
}

/// `config check` and `serve` load a config file the same way: check
/// reads it as UTF-8 (`Config::load`), serve and its reloads parse the
/// bytes lossily. What check accepts, serve loads, to the same config.
pub fn config_bytes(bytes: &[u8]) {
    let served = Config::parse(&String::from_utf8_lossy(bytes));
    if let Ok(text) = std::str::from_utf8(bytes) {
        let checked = Config::parse(text);
        if let Ok(c) = &checked {
            assert_eq!(
                served.as_ref().ok(),
                Some(c),
                "serve loads what check accepts"
            );
        }
    }
    if let Err(e) = served {
        assert!(
            !e.problems.is_empty(),
            "a refused config names its problems"
        );
    }
}

/// An Istio object of any shape (`byte` picks the kind): read leniently,
/// judged, indexed, without panic.
pub fn istio_json(kind: Kind, json: &str, config: &Config) {
    let Ok(object) = Object::from_json(kind, json) else {
        return;
    };
    let mut index = MeshIndex::new(Coverage::Cluster);
    index.apply(&object);
    let request = Request {
        operation: Operation::Create,
        kind,
        namespace: mesh::namespace_of(&object),
        object: Some(&object),
        old_object: Some(OldObject::Json(json)),
        subresource: false,
    };
    engine::evaluate_in_mesh(
        &request,
        config,
        None,
        Some(&index),
        now(),
        Webhook::Validate,
    );
    let _ = posture::of_mesh(&index, config);
    let update = Request {
        operation: Operation::Update,
        ..request
    };
    let u = engine::evaluate_in_mesh(
        &update,
        config,
        None,
        Some(&index),
        now(),
        Webhook::Validate,
    );
    if config.ratcheting {
        assert!(u.allowed(), "an UPDATE to itself is never denied: {json}");
    }
}

/// One step on the mesh index.
#[derive(Debug)]
pub enum MeshOp {
    Apply(Generated),
    Delete(Kind, String, String),
    Reset(Kind, Vec<Generated>),
}

/// A sequence of watch events.
pub fn mesh_ops(u: &mut Unstructured<'_>) -> Result<Vec<MeshOp>> {
    let n = u.int_in_range(1..=24)?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        ops.push(match u.int_in_range(0u8..=9)? {
            0..=6 => MeshOp::Apply(object(u)?),
            7 | 8 => {
                let (kind, _, _) = *u.choose(KINDS)?;
                MeshOp::Delete(
                    kind,
                    pick(u, NAMESPACES)?.to_owned(),
                    pick(u, NAMES)?.to_owned(),
                )
            }
            _ => {
                let (kind, api, name) = *u.choose(KINDS)?;
                let mut items = Vec::new();
                for _ in 0..u.int_in_range(0..=3)? {
                    items.push(object_of(u, &[(kind, api, name)])?);
                }
                MeshOp::Reset(kind, items)
            }
        });
    }
    Ok(ops)
}

type Key = (&'static str, String, String);

fn key_of(g: &Generated) -> Option<(Key, meshguard::mesh::Indexed)> {
    let text = g.value.to_string();
    let object = Object::from_json(g.kind, &text).ok()?;
    let indexed = meshguard::mesh::Indexed::of(&object)?;
    Some((
        (
            mesh::kind_key(g.kind),
            indexed.namespace.clone(),
            indexed.name.clone(),
        ),
        indexed,
    ))
}

/// The index after any sequence of `apply`, `delete` and `reset_kind` is
/// the index built from scratch from the objects that remain (in the order
/// the index first saw them): same posture, same MG5xx findings. Every
/// step answers posture and rule questions without panic.
pub fn mesh_sequence(ops: &[MeshOp], config: &Config) {
    let mut index = MeshIndex::new(Coverage::Cluster);
    // The model: what remains, with the order the index first saw it.
    let mut model: std::collections::BTreeMap<Key, (u64, Generated)> = Default::default();
    let mut seq = 0u64;
    let mut remember = |model: &mut std::collections::BTreeMap<Key, (u64, Generated)>,
                        g: &Generated| {
        if let Some((key, _)) = key_of(g) {
            seq += 1;
            let first = model.get(&key).map(|(s, _)| *s).unwrap_or(seq);
            model.insert(key, (first, g.clone()));
        }
    };
    for op in ops {
        match op {
            MeshOp::Apply(g) => {
                let text = g.value.to_string();
                let object = Object::from_json(g.kind, &text).expect("generated objects read");
                let indexed = index.apply(&object);
                assert_eq!(indexed, key_of(g).is_some());
                remember(&mut model, g);
            }
            MeshOp::Delete(kind, ns, name) => {
                let ns = if *kind == Kind::Namespace { name } else { ns };
                index.delete(*kind, ns, name);
                model.remove(&(mesh::kind_key(*kind), ns.clone(), name.clone()));
            }
            MeshOp::Reset(kind, items) => {
                let indexed: Vec<_> = items
                    .iter()
                    .filter_map(|g| key_of(g).map(|(_, i)| i))
                    .collect();
                index.reset_kind(*kind, indexed);
                model.retain(|(k, _, _), _| *k != mesh::kind_key(*kind));
                for g in items {
                    remember(&mut model, g);
                }
            }
        }
        let p = posture::of_mesh(&index, config);
        assert!(p.encrypted() <= p.workloads.len());
    }
    let mut rebuilt = MeshIndex::new(Coverage::Cluster);
    let mut remaining: Vec<_> = model.values().collect();
    remaining.sort_by_key(|(s, _)| *s);
    for (_, g) in &remaining {
        let text = g.value.to_string();
        let object = Object::from_json(g.kind, &text).expect("generated objects read");
        rebuilt.apply(&object);
    }
    assert_eq!(index.len(), rebuilt.len(), "{ops:#?}");
    assert_eq!(
        posture::of_mesh(&index, config),
        posture::of_mesh(&rebuilt, config),
        "the posture is a function of what remains: {ops:#?}"
    );
    for (_, g) in &remaining {
        let a = decide_value(
            g,
            &g.value,
            "",
            Operation::Create,
            None,
            config,
            None,
            Some(&index),
            Webhook::Validate,
        );
        let b = decide_value(
            g,
            &g.value,
            "",
            Operation::Create,
            None,
            config,
            None,
            Some(&rebuilt),
            Webhook::Validate,
        );
        assert_eq!(verdicts(&a.findings), verdicts(&b.findings), "{}", g.value);
    }
}

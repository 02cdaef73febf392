//! Cross-object rules MG501-MG506 (SPEC section 10): an Istio object judged
//! against the mesh index. The object under review is read with the
//! index's own reader and judged as it is (its new version in place of the
//! one the index may hold); what it refers to comes from the index. Each
//! rule reports once per object, naming every reason. A reference into a
//! namespace the index knows nothing of is never judged. Pure.

use std::collections::BTreeSet;

use crate::config::Config;
use crate::mesh::hosts::{self, Host};
use crate::mesh::{
    self, AuthorizationPolicy, DestinationRule, Entry, MeshIndex, Presence, Selector, Space,
    VirtualService,
};
use crate::object::{Kind, Object};
use crate::posture::{self, Mtls};
use crate::rules::{Context, RuleId, Violation};

/// How many names a message lists before "and N more".
const LIST: usize = 5;

pub fn check(object: &Object<'_>, ctx: &Context<'_>, index: &MeshIndex, out: &mut Vec<Violation>) {
    let Some(entry) = mesh::entry_of(object, 0) else {
        return;
    };
    let j = Judge {
        index,
        config: ctx.config,
        namespace: ctx.namespace,
    };
    match (&entry, object.kind) {
        (Entry::VirtualService(vs), _) => {
            j.subsets_defined(vs, out);
            j.route_targets_exist(vs, out);
        }
        (Entry::DestinationRule(dr), _) => j.subsets_select_pods(dr, out),
        (Entry::AuthorizationPolicy(ap), _) => {
            j.selector_matches(object.kind, &ap.selector, out);
            j.principals_exist(ap, out);
            j.authorization_needs_mtls(ap, out);
        }
        (
            Entry::PeerAuthentication(mesh::PeerAuthentication { selector, .. })
            | Entry::RequestAuthentication(selector)
            | Entry::Sidecar(selector),
            kind,
        ) => j.selector_matches(kind, selector, out),
        _ => {}
    }
}

/// The reasons one rule found, reported as one violation.
struct Reasons {
    rule: RuleId,
    path: Option<String>,
    messages: Vec<String>,
    fixes: Vec<String>,
}

impl Reasons {
    fn new(rule: RuleId) -> Reasons {
        Reasons {
            rule,
            path: None,
            messages: Vec::new(),
            fixes: Vec::new(),
        }
    }

    fn add(&mut self, path: &str, message: String, fix: String) {
        if self.messages.contains(&message) {
            return;
        }
        self.path.get_or_insert_with(|| path.to_owned());
        self.messages.push(message);
        if !self.fixes.contains(&fix) {
            self.fixes.push(fix);
        }
    }

    fn report(self, out: &mut Vec<Violation>) {
        let Some(path) = self.path else {
            return;
        };
        out.push(
            Violation::new(self.rule, path, self.messages.join("; "))
                .with_fix(self.fixes.join(" ")),
        );
    }
}

struct Judge<'a> {
    index: &'a MeshIndex,
    config: &'a Config,
    namespace: &'a str,
}

impl Judge<'_> {
    fn domain(&self) -> &str {
        &self.config.cluster_domain
    }

    /// The DestinationRules visible from this namespace whose host covers
    /// `fqdn`.
    fn destination_rules_for(&self, fqdn: &str) -> Vec<(String, &DestinationRule)> {
        let mut out = Vec::new();
        for (ns, space) in self.index.spaces() {
            for (name, dr) in &space.destination_rules {
                if hosts::covers_from(&dr.host, ns, self.domain(), fqdn)
                    && dr.export_to.visible(ns, self.namespace)
                {
                    out.push((format!("{ns}/{name}"), dr));
                }
            }
        }
        out
    }

    /// MG501: every subset a route or mirror names is defined.
    fn subsets_defined(&self, vs: &VirtualService, out: &mut Vec<Violation>) {
        let mut reasons = Reasons::new(RuleId::MG501);
        let mut seen: Vec<(String, Vec<(String, &DestinationRule)>)> = Vec::new();
        for d in &vs.destinations {
            let Some(subset) = &d.subset else { continue };
            if let Host::Service { namespace, .. } =
                hosts::resolve(&d.host, self.namespace, self.domain())
                && self.index.presence(&namespace) == Presence::Unknown
            {
                continue;
            }
            let fqdn = hosts::fqdn(&d.host, self.namespace, self.domain());
            // Canary routes name one host several times: look it up once.
            let rules = match seen.iter().position(|(h, _)| *h == fqdn) {
                Some(i) => &seen[i].1,
                None => {
                    let found = self.destination_rules_for(&fqdn);
                    seen.push((fqdn.clone(), found));
                    &seen[seen.len() - 1].1
                }
            };
            if rules
                .iter()
                .any(|(_, dr)| dr.subsets.iter().any(|s| &s.name == subset))
            {
                continue;
            }
            let host = &d.host;
            match rules.first() {
                None => reasons.add(
                    &d.path,
                    format!("{} routes to subset `{subset}` of {host}, but no DestinationRule for {fqdn} defines subsets", d.path),
                    format!("Add a DestinationRule for host {host} with subset {subset} (its name and pod labels)."),
                ),
                Some((name, dr)) => {
                    let defined: Vec<&str> = dr.subsets.iter().map(|s| s.name.as_str()).collect();
                    let alternative = if defined.is_empty() {
                        String::new()
                    } else {
                        format!(", or route to {}", defined.join(" or "))
                    };
                    reasons.add(
                        &d.path,
                        format!(
                            "{} routes to subset `{subset}` of {host}, which DestinationRule {name} does not define ({})",
                            d.path,
                            if defined.is_empty() { "it defines no subsets".to_owned() } else { format!("it defines {}", defined.join(", ")) }
                        ),
                        format!("Add subset {subset} to DestinationRule {name}{alternative}."),
                    );
                }
            }
        }
        reasons.report(out);
    }

    /// MG506: the Gateways and in-mesh hosts a VirtualService names exist.
    fn route_targets_exist(&self, vs: &VirtualService, out: &mut Vec<Violation>) {
        let mut reasons = Reasons::new(RuleId::MG506);
        for g in &vs.gateways {
            let Some((ns, name)) = hosts::gateway(&g.reference, self.namespace) else {
                continue;
            };
            let exists = match self.index.presence(&ns) {
                Presence::Unknown => continue,
                Presence::Absent => false,
                Presence::Known => self.index.space(&ns).is_some_and(|s| {
                    s.gateways
                        .contains(&(mesh::kind_key(Kind::Gateway), name.clone()))
                        || s.gateways
                            .contains(&(mesh::kind_key(Kind::KubeGateway), name.clone()))
                }),
            };
            if !exists {
                let existing: Vec<String> = self
                    .index
                    .space(&ns)
                    .map(|s| {
                        s.gateways
                            .iter()
                            .map(|(_, n)| format!("{ns}/{n}"))
                            .collect()
                    })
                    .unwrap_or_default();
                reasons.add(
                    &g.path,
                    format!("{} names Gateway {ns}/{name}, which does not exist", g.path),
                    if existing.is_empty() {
                        format!("Create Gateway {ns}/{name}, or name an existing Gateway as `namespace/name`.")
                    } else {
                        format!("Name an existing Gateway ({}) as `namespace/name`, or create {ns}/{name}.", list(&existing))
                    },
                );
            }
        }
        for d in &vs.destinations {
            if !hosts::in_mesh_form(&d.host, self.domain()) {
                continue;
            }
            let fqdn = hosts::fqdn(&d.host, self.namespace, self.domain());
            if self.service_entry_provides(&fqdn) {
                continue;
            }
            match hosts::resolve(&d.host, self.namespace, self.domain()) {
                Host::Service { namespace, name } => {
                    let exists = match self.index.presence(&namespace) {
                        Presence::Unknown => continue,
                        Presence::Absent => false,
                        Presence::Known => self.index.space(&namespace).is_some_and(|s| {
                            s.services.get(&name).is_some_and(|svc| {
                                svc.export_to.visible(&namespace, self.namespace)
                            })
                        }),
                    };
                    if !exists {
                        reasons.add(
                            &d.path,
                            format!("{} routes to {}, but no Service {namespace}/{name} or ServiceEntry provides it", d.path, d.host),
                            format!("Create Service {namespace}/{name} (or a ServiceEntry for {fqdn}), or route to an existing Service."),
                        );
                    }
                }
                Host::Other => {
                    let suggestion = expanded(&d.host, self.domain());
                    reasons.add(
                        &d.path,
                        format!("{} routes to {}, which Istio does not expand, so it names no Service", d.path, d.host),
                        match suggestion {
                            Some(full) => format!("Route to {full} (or the short name from the Service's own namespace)."),
                            None => format!("Route to a Service by its short name or as <service>.<namespace>.svc.{}.", self.domain()),
                        },
                    );
                }
            }
        }
        reasons.report(out);
    }

    fn service_entry_provides(&self, fqdn: &str) -> bool {
        self.index.spaces().any(|(ns, space)| {
            space.service_entries.values().any(|se| {
                se.export_to.visible(ns, self.namespace)
                    && se.hosts.iter().any(|h| hosts::covers(h, fqdn))
            })
        })
    }

    /// MG502: each subset's labels, with the Service's selector, select a
    /// workload.
    fn subsets_select_pods(&self, dr: &DestinationRule, out: &mut Vec<Violation>) {
        let Host::Service { namespace, name } =
            hosts::resolve(&dr.host, self.namespace, self.domain())
        else {
            return;
        };
        if self.index.presence(&namespace) != Presence::Known {
            return;
        }
        let Some(space) = self.index.space(&namespace) else {
            return;
        };
        let Some(selector) = space.services.get(&name).and_then(|s| s.selector.as_ref()) else {
            return;
        };
        let mut reasons = Reasons::new(RuleId::MG502);
        for (i, subset) in dr.subsets.iter().enumerate() {
            if subset.labels.0.is_empty() {
                continue;
            }
            let selected = |labels: &crate::lenient::Labels<'_>| {
                hosts::labels_match(selector, labels) && hosts::labels_match(&subset.labels, labels)
            };
            if space.workloads.values().any(|w| selected(&w.labels)) {
                continue;
            }
            // What the Service's pods say instead, for the fix.
            let seen: BTreeSet<String> = space
                .workloads
                .values()
                .filter(|w| hosts::labels_match(selector, &w.labels))
                .flat_map(|w| {
                    subset
                        .labels
                        .0
                        .iter()
                        .filter_map(|(k, _)| w.labels.get(k).map(|v| format!("{k}: {v}")))
                        .collect::<Vec<_>>()
                })
                .collect();
            let path = format!("spec.subsets[{i}]");
            let wanted = hosts::describe(&subset.labels);
            let service = format!("{namespace}/{name}");
            reasons.add(
                &path,
                format!(
                    "subset `{}` ({wanted}) selects no workload of Service {service} (selector {})",
                    subset.name,
                    hosts::describe(selector)
                ),
                if seen.is_empty() {
                    format!("Give subset {} the labels of the pods it is meant for; no workload matches Service {service}'s selector.", subset.name)
                } else {
                    let seen: Vec<String> = seen.into_iter().collect();
                    format!("Set subset {}'s labels to what the pods carry ({}), or label the canary's pod template {wanted}.", subset.name, list(&seen))
                },
            );
        }
        reasons.report(out);
    }

    /// MG503: a workload selector matches some workload.
    fn selector_matches(&self, kind: Kind, selector: &Selector, out: &mut Vec<Violation>) {
        let Selector::Labels(wanted) = selector else {
            return;
        };
        let mesh_wide = self.namespace == self.config.root_namespace
            && matches!(
                kind,
                Kind::AuthorizationPolicy | Kind::RequestAuthentication
            );
        if !mesh_wide && self.index.presence(self.namespace) != Presence::Known {
            return;
        }
        let spaces: Vec<(&str, &Space)> = if mesh_wide {
            self.index.spaces().collect()
        } else {
            self.index.space_entry(self.namespace).into_iter().collect()
        };
        if spaces.iter().any(|(_, s)| {
            s.workloads
                .values()
                .any(|w| hosts::labels_match(wanted, &w.labels))
        }) {
            return;
        }
        let seen: BTreeSet<String> = spaces
            .iter()
            .flat_map(|(_, s)| s.workloads.values())
            .flat_map(|w| {
                wanted
                    .0
                    .iter()
                    .filter_map(|(k, _)| w.labels.get(k).map(|v| format!("{k}: {v}")))
                    .collect::<Vec<_>>()
            })
            .collect();
        let field = if kind == Kind::Sidecar {
            "spec.workloadSelector.labels"
        } else {
            "spec.selector.matchLabels"
        };
        let scope = if mesh_wide {
            "any namespace (a policy of the root namespace applies mesh-wide)".to_owned()
        } else {
            format!("namespace {}", self.namespace)
        };
        let seen: Vec<String> = seen.into_iter().collect();
        let mut reasons = Reasons::new(RuleId::MG503);
        reasons.add(
            field,
            format!("selector {} matches no workload in {scope}, so the {} protects nothing", hosts::describe(wanted), kind.as_str()),
            if seen.is_empty() {
                format!("Set {field} to labels of a workload's pod template, or remove the selector to cover the whole namespace.")
            } else {
                format!("Set {field} to labels the pod templates carry ({}), or remove the selector to cover the whole namespace.", list(&seen))
            },
        );
        reasons.report(out);
    }

    /// MG504: named principals and namespaces exist.
    fn principals_exist(&self, ap: &AuthorizationPolicy, out: &mut Vec<Violation>) {
        let mut reasons = Reasons::new(RuleId::MG504);
        let prefix = format!("{}/ns/", self.config.trust_domain);
        for (i, rule) in ap.rules.iter().enumerate() {
            for (k, source) in rule.from.iter().enumerate() {
                let at = format!("spec.rules[{i}].from[{k}].source");
                for (field, names) in [
                    ("principals", &source.principals),
                    ("notPrincipals", &source.not_principals),
                ] {
                    for p in names.iter().filter(|p| !p.contains('*')) {
                        let Some((ns, sa)) = p
                            .strip_prefix(&prefix)
                            .and_then(|rest| rest.split_once("/sa/"))
                            .filter(|(ns, sa)| {
                                !ns.is_empty() && !sa.is_empty() && !sa.contains('/')
                            })
                        else {
                            continue;
                        };
                        if self.index.service_account_exists(ns, sa) != Some(false) {
                            continue;
                        }
                        let path = format!("{at}.{field}");
                        if self.index.presence(ns) == Presence::Absent {
                            reasons.add(
                                &path,
                                format!("{path} names {p}, but namespace {ns} does not exist"),
                                format!("Correct the namespace in {p}, or remove the entry."),
                            );
                        } else {
                            let accounts = self.accounts(ns);
                            reasons.add(
                                &path,
                                format!("{path} names {p}, but namespace {ns} has no service account {sa}"),
                                if accounts.is_empty() {
                                    format!("Create ServiceAccount {ns}/{sa} for the caller's pods, or name the account they run under.")
                                } else {
                                    format!("Name the account the caller's pods run under ({} in {ns}), or create ServiceAccount {ns}/{sa}.", list(&accounts))
                                },
                            );
                        }
                    }
                }
                for (field, names) in [
                    ("namespaces", &source.namespaces),
                    ("notNamespaces", &source.not_namespaces),
                ] {
                    for ns in names.iter().filter(|n| !n.contains('*')) {
                        if self.index.presence(ns) == Presence::Absent {
                            let path = format!("{at}.{field}");
                            reasons.add(
                                &path,
                                format!("{path} names namespace {ns}, which does not exist"),
                                format!("Correct the namespace name {ns}, or remove the entry."),
                            );
                        }
                    }
                }
            }
        }
        reasons.report(out);
    }

    fn accounts(&self, ns: &str) -> Vec<String> {
        let Some(space) = self.index.space(ns) else {
            return Vec::new();
        };
        let mut all: BTreeSet<&str> = space.service_accounts.iter().map(String::as_str).collect();
        all.extend(space.workloads.values().map(|w| w.service_account.as_str()));
        all.into_iter().map(str::to_owned).collect()
    }

    /// MG505: identity-based policies apply to STRICT workloads only.
    fn authorization_needs_mtls(&self, ap: &AuthorizationPolicy, out: &mut Vec<Violation>) {
        if !ap.uses_identity() || ap.selector == Selector::TargetRef {
            return;
        }
        let spaces: Vec<(&str, &Space)> = if self.namespace == self.config.root_namespace {
            self.index.spaces().collect()
        } else {
            self.index.space_entry(self.namespace).into_iter().collect()
        };
        let mut weak = Vec::new();
        for (ns, space) in spaces {
            if !mesh::in_posture(self.config, ns) {
                continue;
            }
            for ((kind, name), w) in &space.workloads {
                if !ap.selector.matches(&w.labels) {
                    continue;
                }
                let (_, mtls, _) = posture::effective_mtls(self.index, self.config, ns, space, w);
                if mtls != Mtls::Mode(mesh::Mode::Strict) {
                    let why = match mtls {
                        Mtls::None => "no sidecar".to_owned(),
                        Mtls::Mode(m) => m.as_str().to_owned(),
                    };
                    weak.push(format!("{ns}/{kind}/{name} ({why})"));
                }
            }
        }
        if weak.is_empty() {
            return;
        }
        let mut reasons = Reasons::new(RuleId::MG505);
        reasons.add(
            "spec.rules",
            format!(
                "the policy reads caller identities (principals, namespaces) but applies to {} without STRICT mTLS: {}",
                if weak.len() == 1 { "a workload".to_owned() } else { format!("{} workloads", weak.len()) },
                list(&weak)
            ),
            "Make those workloads STRICT (a PeerAuthentication with mtls.mode STRICT for them, their namespace or the root namespace) and give them a sidecar.".to_owned(),
        );
        reasons.report(out);
    }
}

/// The full name of an unexpanded in-mesh host (`reviews.shop.svc` →
/// `reviews.shop.svc.cluster.local`).
fn expanded(host: &str, domain: &str) -> Option<String> {
    let base = host.strip_suffix(".svc").unwrap_or(host);
    let (name, ns) = base.split_once('.')?;
    (!ns.contains('.')).then(|| format!("{name}.{ns}.svc.{domain}"))
}

/// The first few names, then how many more.
fn list(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(LIST)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LIST {
        s.push_str(&format!(" and {} more", names.len() - LIST));
    }
    s
}

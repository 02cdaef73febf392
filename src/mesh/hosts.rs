//! Host resolution, gateway references and selector matching, as Istio does
//! them (SPEC section 10); the one place the MG5xx rules and the posture
//! ask these questions. Pure.

use crate::lenient::Labels;

/// What a host names, read from an object of namespace `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// Service `name` of `namespace`: a short name (expanded in the
    /// object's namespace) or the full `name.namespace.svc.<clusterDomain>`.
    Service { namespace: String, name: String },
    /// Anything else: a ServiceEntry's host, a name outside the mesh, or a
    /// form Istio does not expand (`reviews.shop`, `reviews.shop.svc`).
    Other,
}

/// Resolves `host` (lower case) as Istio does: only a short name is
/// expanded.
pub fn resolve(host: &str, from: &str, cluster_domain: &str) -> Host {
    if host.is_empty() || host.contains('*') {
        return Host::Other;
    }
    if !host.contains('.') {
        return Host::Service {
            namespace: from.to_owned(),
            name: host.to_owned(),
        };
    }
    let suffix = format!(".svc.{}", cluster_domain.to_ascii_lowercase());
    match host.strip_suffix(&suffix).and_then(|h| h.split_once('.')) {
        Some((name, namespace))
            if !name.is_empty() && !namespace.is_empty() && !namespace.contains('.') =>
        {
            Host::Service {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            }
        }
        _ => Host::Other,
    }
}

/// The full name a host stands for: a short name expanded in `from`,
/// anything else as written.
pub fn fqdn(host: &str, from: &str, cluster_domain: &str) -> String {
    if !host.contains('.') && host != "*" {
        format!("{host}.{from}.svc.{}", cluster_domain.to_ascii_lowercase())
    } else {
        host.to_owned()
    }
}

/// Whether `pattern` (a host, `*`, or `*.suffix`) covers `host`; both are
/// full names in lower case.
pub fn covers(pattern: &str, host: &str) -> bool {
    if pattern == host || pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') => host.ends_with(suffix),
        _ => false,
    }
}

/// `covers(fqdn(pattern, from, cluster_domain), host)` without building
/// the full name: the index asks it of every DestinationRule per route.
pub fn covers_from(pattern: &str, from: &str, cluster_domain: &str, host: &str) -> bool {
    if pattern.contains('.') || pattern == "*" {
        return covers(pattern, host);
    }
    let Some(rest) = host.strip_prefix(pattern).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    rest.strip_prefix(from)
        .and_then(|r| r.strip_prefix(".svc."))
        .is_some_and(|d| d.eq_ignore_ascii_case(cluster_domain))
}

/// SPEC section 4 (MG506): in-mesh by its form: a short name, or a name
/// ending in `.svc` or `.svc.<clusterDomain>`.
pub fn in_mesh_form(host: &str, cluster_domain: &str) -> bool {
    crate::rules::istio::in_mesh(host, cluster_domain)
}

/// A VirtualService's gateway reference as (namespace, name), the way
/// Istio resolves it: `namespace/name` (`./name` for the VirtualService's
/// own namespace), a short `name`, or the legacy `name.namespace[.svc...]`.
/// `None` for `mesh`, the sidecars, which is no Gateway.
pub fn gateway(reference: &str, from: &str) -> Option<(String, String)> {
    if reference == "mesh" || reference.is_empty() {
        return None;
    }
    if let Some((ns, name)) = reference.split_once('/') {
        let ns = if ns == "." || ns.is_empty() { from } else { ns };
        return Some((ns.to_owned(), name.to_owned()));
    }
    match reference.split_once('.') {
        None => Some((from.to_owned(), reference.to_owned())),
        Some((name, rest)) => {
            let ns = rest.split('.').next().unwrap_or(rest);
            Some((ns.to_owned(), name.to_owned()))
        }
    }
}

/// A selector matches when every one of its labels is among `labels`.
pub fn labels_match(wanted: &Labels<'_>, labels: &Labels<'_>) -> bool {
    wanted
        .0
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v.as_ref()))
}

/// `k=v,k2=v2`, for messages.
pub fn describe(labels: &Labels<'_>) -> String {
    labels
        .0
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(ns: &str, name: &str) -> Host {
        Host::Service {
            namespace: ns.to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn only_short_names_and_full_names_name_a_service() {
        let cases = [
            (
                "reviews",
                "shop",
                "cluster.local",
                service("shop", "reviews"),
            ),
            (
                "reviews.books.svc.cluster.local",
                "shop",
                "cluster.local",
                service("books", "reviews"),
            ),
            ("reviews.books", "shop", "cluster.local", Host::Other),
            ("reviews.books.svc", "shop", "cluster.local", Host::Other),
            (
                "reviews.books.svc.corp.local",
                "shop",
                "cluster.local",
                Host::Other,
            ),
            (
                "reviews.books.svc.corp.local",
                "shop",
                "corp.local",
                service("books", "reviews"),
            ),
            (
                "reviews.books.svc.cluster.local",
                "shop",
                "corp.local",
                Host::Other,
            ),
            (
                "a.b.c.svc.cluster.local",
                "shop",
                "cluster.local",
                Host::Other,
            ),
            ("api.stripe.com", "shop", "cluster.local", Host::Other),
            (
                "*.shop.svc.cluster.local",
                "shop",
                "cluster.local",
                Host::Other,
            ),
            ("", "shop", "cluster.local", Host::Other),
        ];
        for (host, from, domain, expected) in cases {
            assert_eq!(
                resolve(host, from, domain),
                expected,
                "{host} from {from} in {domain}"
            );
        }
    }

    #[test]
    fn wildcards_cover_their_suffix_only() {
        assert!(covers(
            "reviews.shop.svc.cluster.local",
            "reviews.shop.svc.cluster.local"
        ));
        assert!(covers(
            "*.shop.svc.cluster.local",
            "reviews.shop.svc.cluster.local"
        ));
        assert!(covers("*.local", "reviews.shop.svc.cluster.local"));
        assert!(covers("*", "api.stripe.com"));
        assert!(!covers(
            "*.shop.svc.cluster.local",
            "reviews.books.svc.cluster.local"
        ));
        assert!(!covers(
            "*hop.svc.cluster.local",
            "reviews.shop.svc.cluster.local"
        ));
        assert!(!covers("reviews", "reviews.shop.svc.cluster.local"));
    }

    #[test]
    fn short_patterns_cover_their_expansion() {
        let host = "reviews.shop.svc.cluster.local";
        assert!(covers_from("reviews", "shop", "cluster.local", host));
        assert!(covers_from("reviews", "shop", "Cluster.Local", host));
        assert!(!covers_from("reviews", "books", "cluster.local", host));
        assert!(!covers_from("review", "shop", "cluster.local", host));
        assert!(!covers_from("reviews", "shop", "corp.local", host));
        assert!(covers_from(
            "*.shop.svc.cluster.local",
            "books",
            "cluster.local",
            host
        ));
        assert!(covers_from(host, "books", "cluster.local", host));
    }

    #[test]
    fn gateway_references_take_istios_forms() {
        let cases = [
            ("main", Some(("shop", "main"))),
            ("ingress/main", Some(("ingress", "main"))),
            ("./main", Some(("shop", "main"))),
            ("main.ingress.svc.cluster.local", Some(("ingress", "main"))),
            ("main.ingress", Some(("ingress", "main"))),
            ("mesh", None),
        ];
        for (reference, expected) in cases {
            let expected = expected.map(|(a, b): (&str, &str)| (a.to_owned(), b.to_owned()));
            assert_eq!(gateway(reference, "shop"), expected, "{reference}");
        }
    }

    #[test]
    fn selectors_need_every_label() {
        let pod = Labels::from_pairs([("app", "cart"), ("version", "v1")]);
        assert!(labels_match(&Labels::from_pairs([("app", "cart")]), &pod));
        assert!(!labels_match(
            &Labels::from_pairs([("app", "cart"), ("version", "v2")]),
            &pod
        ));
        assert!(!labels_match(&Labels::from_pairs([("tier", "web")]), &pod));
        assert!(labels_match(&Labels::default(), &pod));
    }
}

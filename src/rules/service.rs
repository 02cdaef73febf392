//! Service rule MG201 (SPEC section 4, "Services"): every port tells Istio
//! its protocol, or L7 policy silently does nothing. Pure.

use crate::object::{Body, Object};
use crate::rules::{RuleId, Violation};

/// Protocols Istio recognises in a port name `<protocol>[-<suffix>]`.
pub const PROTOCOLS: [&str; 11] = [
    "http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "udp", "mongo", "mysql", "redis",
];

pub fn check(object: &Object<'_>, out: &mut Vec<Violation>) {
    let Body::Service { ports, .. } = &object.body else {
        return;
    };
    for (i, port) in ports.iter().enumerate() {
        if port.app_protocol.as_str().is_some_and(|p| !p.is_empty()) {
            continue;
        }
        let name = port.name.as_str().unwrap_or("");
        if names_protocol(name) {
            continue;
        }
        let number = port.port.0.map(|n| format!(" {n}")).unwrap_or_default();
        let found = if name.is_empty() {
            "has no name".to_owned()
        } else {
            format!("is named `{name}`")
        };
        out.push(
            Violation::new(
                RuleId::MG201,
                format!("spec.ports[{i}]"),
                format!("port{number} {found} and no appProtocol, so Istio treats its traffic as opaque TCP"),
            )
            .with_fix(format!(
                "Name spec.ports[{i}] `<protocol>[-<suffix>]` (e.g. http-{}) or set appProtocol.",
                if name.is_empty() { "api" } else { name }
            )),
        );
    }
}

/// True when the name is `<protocol>` or `<protocol>-<suffix>` for a protocol
/// Istio knows (case-insensitive, as Istio reads it).
pub fn names_protocol(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    PROTOCOLS.iter().any(|p| {
        lower == *p
            || lower
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('-'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_that_declare_a_protocol() {
        for ok in [
            "http",
            "http-api",
            "HTTP-web",
            "grpc-web",
            "grpc-web-x",
            "redis",
            "tcp-db",
            "http2",
            "tls-1",
        ] {
            assert!(names_protocol(ok), "{ok}");
        }
        for bad in [
            "", "admin", "metrics", "httpx", "web-http", "grpcweb", "-http",
        ] {
            assert!(!names_protocol(bad), "{bad}");
        }
    }
}

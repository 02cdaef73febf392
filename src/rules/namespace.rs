//! Namespace rule MG301 (SPEC section 4, "Namespaces"): injection is
//! switched on with exactly one label. Pure; a Namespace is judged by its
//! own labels.

use crate::injection::{NS_INJECTION, REV};
use crate::object::Object;
use crate::rules::{RuleId, Violation};

pub fn check(object: &Object<'_>, out: &mut Vec<Violation>) {
    let injection = object.meta.label(NS_INJECTION);
    let rev = object.meta.label(REV);
    let message = match (injection, rev) {
        (Some(i), Some(r)) => format!(
            "the namespace has both istio-injection={i} and istio.io/rev={r}; Istio then ignores one of them"
        ),
        (Some("disabled"), None) => {
            "the namespace has istio-injection=disabled: no pod in it gets a sidecar".to_owned()
        }
        (Some("enabled"), None) | (None, Some(_)) => return,
        (Some(other), None) => format!(
            "the namespace has istio-injection={other}, which Istio does not recognise (only `enabled` switches injection on)"
        ),
        (None, None) => {
            "the namespace has no injection label (istio-injection=enabled or istio.io/rev)"
                .to_owned()
        }
    };
    out.push(Violation::new(RuleId::MG301, "metadata.labels", message));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;

    fn fired(labels: &str) -> bool {
        let json = format!(
            r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"shop","labels":{{{labels}}}}}}}"#
        );
        let object = Object::from_json(Kind::Namespace, &json).expect("namespace");
        let mut out = Vec::new();
        check(&object, &mut out);
        assert!(
            out.iter()
                .all(|v| v.rule == RuleId::MG301 && v.path == "metadata.labels")
        );
        !out.is_empty()
    }

    #[test]
    fn exactly_one_injection_label_switches_injection_on() {
        assert!(!fired(r#""istio-injection":"enabled""#));
        assert!(!fired(r#""istio.io/rev":"1-25""#));
        assert!(fired(""));
        assert!(fired(r#""istio-injection":"disabled""#));
        assert!(fired(r#""istio-injection":"Enabled""#));
        assert!(fired(
            r#""istio-injection":"enabled","istio.io/rev":"1-25""#
        ));
    }
}

//! VirtualService rules (SPEC section 4): MG405 virtual-service-weights
//! (route weights add up to 100 and follow the canary steps) and MG409
//! route-timeout (every HTTP route has a timeout).
//!
//! MG405 judges the route lists of `http`, `tls` and `tcp` alike. A list
//! where no destination gives a weight is fine (Istio then needs none); once
//! any weight is given, unset weights count as 0. A weight that is not an
//! integer is read as unset.

use serde_json::Value;

use super::{is_set, items, map, text};
use crate::rules::{Context, RuleId, Violation};

/// The sections whose entries carry a `route` list of weighted destinations.
const SECTIONS: [&str; 3] = ["http", "tls", "tcp"];

pub(super) fn check(spec: &Value, ctx: &Context<'_>, out: &mut Vec<Violation>) {
    let steps = &ctx.config.canary_steps;
    for section in SECTIONS {
        for (i, entry) in items(spec, section).iter().enumerate() {
            let path = format!("spec.{section}[{i}].route");
            weights(&path, items(entry, "route"), steps, out);
        }
    }
    for (i, entry) in items(spec, "http").iter().enumerate() {
        timeout(i, entry, out);
    }
}

/// MG405 for one route list at `path`.
fn weights(path: &str, destinations: &[Value], steps: &[u32], out: &mut Vec<Violation>) {
    let mut weights: Vec<Option<i64>> = Vec::with_capacity(destinations.len());
    for d in destinations {
        match d.get("weight") {
            None | Some(Value::Null) => weights.push(None),
            Some(w) => match w.as_i64() {
                Some(w) => weights.push(Some(w)),
                // A weight of a type Istio would not accept: the route is
                // not judged rather than judged on a guess.
                None => return,
            },
        }
    }
    if weights.iter().all(Option::is_none) {
        return;
    }
    for (j, weight) in weights.iter().enumerate() {
        if let Some(w) = weight.filter(|w| !(0..=100).contains(w)) {
            out.push(
                Violation::new(
                    RuleId::MG405,
                    format!("{path}[{j}].weight"),
                    format!("weight {w} is outside 0..100"),
                )
                .with_fix(format!(
                    "Give {path}[{j}] a weight between 0 and 100 (the share of traffic in percent)."
                )),
            );
        }
    }
    // i128: no sum of i64 weights can overflow it.
    let sum: i128 = weights.iter().flatten().map(|w| i128::from(*w)).sum();
    if sum != 100 {
        let terms: Vec<String> = weights
            .iter()
            .map(|w| w.map_or_else(|| "unset".to_owned(), |w| w.to_string()))
            .collect();
        let unset_note = if weights.iter().any(Option::is_none) {
            " (an unset weight counts as 0)"
        } else {
            ""
        };
        let example = suggestion(&weights, sum, steps)
            .map(|fixed| format!(", e.g. `route: {}`", route_fragment(destinations, &fixed)))
            .unwrap_or_default();
        out.push(
            Violation::new(
                RuleId::MG405,
                path,
                format!("weights {} = {sum}, not 100{unset_note}", terms.join(" + ")),
            )
            .with_fix(format!(
                "Give every destination of {path} a weight so that they add up to 100{example}."
            )),
        );
    }
    if steps.is_empty() {
        return;
    }
    let allowed = steps
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    for (j, weight) in weights.iter().enumerate() {
        let Some(weight) = *weight else {
            continue;
        };
        if steps.iter().any(|s| i64::from(*s) == weight) {
            continue;
        }
        let nearest = steps
            .iter()
            .min_by_key(|s| (i128::from(**s) - i128::from(weight)).unsigned_abs())
            .map(|s| format!(" (the nearest is {s})"))
            .unwrap_or_default();
        out.push(
            Violation::new(
                RuleId::MG405,
                format!("{path}[{j}].weight"),
                format!("weight {weight} is not one of the canary steps {allowed}"),
            )
            .with_fix(format!(
                "Use one of the canary steps [{allowed}] for {path}[{j}].weight{nearest}."
            )),
        );
    }
}

/// Weights that add up to 100 by changing only the last given weight, when
/// that gives a weight between 0 and 100 (and a canary step, if any).
fn suggestion(weights: &[Option<i64>], sum: i128, steps: &[u32]) -> Option<Vec<i128>> {
    let last = weights.iter().rposition(Option::is_some)?;
    let mut fixed: Vec<i128> = weights.iter().map(|w| i128::from(w.unwrap_or(0))).collect();
    let slot = fixed.get_mut(last)?;
    *slot += 100 - sum;
    let ok = |w: &i128| {
        (0..=100).contains(w) && (steps.is_empty() || steps.iter().any(|s| i128::from(*s) == *w))
    };
    fixed.iter().all(ok).then_some(fixed)
}

/// The corrected route as flow YAML: each destination's host and subset
/// with its new weight.
fn route_fragment(destinations: &[Value], weights: &[i128]) -> String {
    let entries: Vec<String> = destinations
        .iter()
        .zip(weights)
        .map(|(d, w)| {
            let dest = map(d, "destination");
            let mut fields = Vec::new();
            if let Some(host) = dest.and_then(|d| text(d, "host")) {
                fields.push(format!("host: {host}"));
            }
            if let Some(subset) = dest.and_then(|d| text(d, "subset")) {
                fields.push(format!("subset: {subset}"));
            }
            format!("{{destination: {{{}}}, weight: {w}}}", fields.join(", "))
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

/// MG409 for `spec.http[i]`. Routes that answer themselves (`redirect`,
/// `directResponse`) need no timeout, nor do `delegate` routes: the
/// delegate VirtualService's own routes carry it and are judged on their own.
fn timeout(i: usize, entry: &Value, out: &mut Vec<Violation>) {
    if !entry.is_object() {
        return;
    }
    if ["redirect", "directResponse", "delegate"]
        .iter()
        .any(|k| entry.get(*k).is_some_and(|v| !v.is_null()))
    {
        return;
    }
    let name = text(entry, "name")
        .map(|n| format!(" `{n}`"))
        .unwrap_or_default();
    let found = match entry.get("timeout") {
        Some(Value::String(t)) if is_zero_duration(t) => {
            format!("HTTP route {i}{name} has timeout {t}, which Envoy reads as no timeout")
        }
        // Any other value that is set, whatever its type, is not judged.
        t if is_set(t) => return,
        _ => format!("HTTP route {i}{name} has no timeout"),
    };
    out.push(
        Violation::new(
            RuleId::MG409,
            format!("spec.http[{i}].timeout"),
            format!("{found}: a slow dependency holds its callers for as long as it likes"),
        )
        .with_fix(format!(
            "Add `timeout: 5s` (or what the callers can afford) to spec.http[{i}]."
        )),
    );
}

/// `0s`, `0`, `0.0s`, `0ms`...: a duration of zero, which disables a route
/// timeout in Envoy.
fn is_zero_duration(text: &str) -> bool {
    let number = text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !number.is_empty() && number.chars().all(|c| c == '0' || c == '.') && number.contains('0')
}

#[cfg(test)]
mod tests;

//! The rule catalogue as Markdown, for the in-repository reference
//! (`docs/reference.md`). Generated from `rules::CATALOGUE`, never written
//! by hand: a test compares the file with this text, so the page cannot
//! drift from what `meshguard rules` and `meshguard explain` print, and new
//! rules appear in it by regenerating (`MESHGUARD_BLESS=1 cargo nextest run
//! docs::`).

use std::fmt::Write as _;

use crate::mutate::MutationId;
use crate::rules::CATALOGUE;

/// The catalogue section: a table of every rule, then one section per rule
/// with its rationale, fix and a compliant example, then the mutations.
pub fn catalogue_markdown() -> String {
    let mut out = String::new();
    out.push_str("| id | name | default | summary |\n| --- | --- | --- | --- |\n");
    for r in &CATALOGUE {
        let _ = writeln!(
            out,
            "| [{id}](#{anchor}) | {name} | {action} | {summary} |",
            id = r.id_str,
            anchor = anchor(r.id_str, r.name),
            name = r.name,
            action = r.default_action,
            summary = cell(&prose(r.summary)),
        );
    }
    for r in &CATALOGUE {
        let _ = write!(
            out,
            "\n### {id} {name}\n\nDefault action: `{action}`. {summary}.\n\n**Why.** {why}\n\n**Fix.** {fix}\n\nCompliant:\n\n```yaml\n{example}\n```\n",
            id = r.id_str,
            name = r.name,
            action = r.default_action,
            summary = capitalized(&prose(r.summary)),
            why = prose(r.rationale),
            fix = prose(r.fix),
            example = r.example,
        );
    }
    out.push_str("\n### Mutations\n\n| id | name |\n| --- | --- |\n");
    for m in MutationId::ALL {
        let _ = writeln!(out, "| {} | {} |", m.as_str(), m.name());
    }
    out
}

/// The anchor GitHub gives the heading `### MG101 dedicated-service-account`.
fn anchor(id: &str, name: &str) -> String {
    format!("{}-{}", id.to_ascii_lowercase(), name)
}

/// Catalogue text as Markdown: `<` outside code spans would start an HTML
/// tag (`spiffe://<trust-domain>/…` would lose its placeholder).
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            _ => out.push(c),
        }
    }
    out
}

/// A table cell: `|` would end it.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_row_and_a_section() {
        let md = catalogue_markdown();
        assert!(md.contains(
            "| [MG101](#mg101-dedicated-service-account) | dedicated-service-account | deny | pods run under a dedicated service account, not `default` |"
        ));
        assert!(md.contains(
            "\n### MG409 route-timeout\n\nDefault action: `warn`. HTTP routes set a timeout.\n"
        ));
        assert!(md.contains("| MGP2 | sidecar-marker |"));
        assert_eq!(md.matches("\n### MG").count(), CATALOGUE.len());
    }

    #[test]
    fn placeholders_outside_code_survive_markdown() {
        assert_eq!(
            prose("spiffe://<td>/ns and `<kept>`"),
            "spiffe://&lt;td>/ns and `<kept>`"
        );
    }
}

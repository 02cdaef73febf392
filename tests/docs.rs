//! The repository's own documentation tells the truth: the reference page
//! holds the generated rule catalogue, links point at files in the
//! repository, and tests/data/README.md names files that exist.

use std::path::{Path, PathBuf};

use crate::util::repo;

const BEGIN: &str = "<!-- BEGIN GENERATED: the rule catalogue, from src/docs.rs. Regenerate with `MESHGUARD_BLESS=1 cargo nextest run docs::` -->\n";
const END: &str = "<!-- END GENERATED -->";

#[test]
fn the_reference_page_holds_the_generated_rule_catalogue() {
    let path = repo("docs/reference.md");
    let page = std::fs::read_to_string(&path).expect("docs/reference.md");
    let start = page.find(BEGIN).expect("the BEGIN GENERATED marker") + BEGIN.len();
    let end = start + page[start..].find(END).expect("the END GENERATED marker");
    let generated = meshguard::docs::catalogue_markdown();
    if std::env::var_os("MESHGUARD_BLESS").is_some() {
        let updated = format!("{}{generated}{}", &page[..start], &page[end..]);
        std::fs::write(&path, updated).expect("write docs/reference.md");
        return;
    }
    assert!(
        page[start..end] == generated,
        "docs/reference.md is out of date with the rule catalogue: run `MESHGUARD_BLESS=1 cargo nextest run docs::`"
    );
    for rule in &meshguard::rules::CATALOGUE {
        assert!(page.contains(&format!("### {} {}", rule.id_str, rule.name)));
    }
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .collect()
}

fn assert_links_stay_in_the_repository(file: &str) {
    let path = repo(file);
    let text = std::fs::read_to_string(&path).expect("read");
    let root = repo("").canonicalize().expect("repository root");
    let dir = path.parent().expect("a directory");
    for target in link_targets(&text) {
        if target.starts_with("http://")
            || target.starts_with("https://")
            || target.starts_with('#')
        {
            continue;
        }
        let file_part = target.split('#').next().unwrap_or(target);
        let resolved = dir.join(file_part);
        let resolved: PathBuf = resolved
            .canonicalize()
            .unwrap_or_else(|_| panic!("{file} links to {target}, which does not exist"));
        assert!(
            resolved.starts_with(&root),
            "{file} links to {target}, outside the repository (a user's clone has no such file)"
        );
    }
}

#[test]
fn readme_and_reference_link_only_to_files_in_the_repository() {
    for file in [
        "README.md",
        "docs/reference.md",
        "certs/README.md",
        "deploy/monitoring/README.md",
    ] {
        assert_links_stay_in_the_repository(file);
    }
    let readme = std::fs::read_to_string(repo("README.md")).expect("README");
    assert!(
        !readme.contains("../shared"),
        "README points outside the repository"
    );
    assert!(
        readme.contains("(docs/reference.md)"),
        "README points at the reference"
    );
}

#[test]
fn the_test_data_readme_names_files_that_exist() {
    let text = std::fs::read_to_string(repo("tests/data/README.md")).expect("read");
    let data = repo("tests/data");
    let mut named = 0;
    for (i, token) in text.split('`').enumerate() {
        // Odd pieces are inside backticks; patterns (`<seq>-…`) are not files.
        let is_file = i % 2 == 1
            && !token.contains(['<', '…', ' ', '*'])
            && (token.ends_with('/')
                || [".json", ".jsonl", ".yaml", ".rs", ".md"]
                    .iter()
                    .any(|ext| token.ends_with(ext)));
        if !is_file {
            continue;
        }
        named += 1;
        let candidates = [
            data.join(token),
            data.join("scenario").join(token),
            repo(token),
        ];
        assert!(
            candidates.iter().any(|p| Path::new(p).exists()),
            "tests/data/README.md names `{token}`, which is not there"
        );
    }
    assert!(named >= 10, "the check found the file names ({named})");
}

/// The README's "Using it" commands that need no cluster run as written,
/// from the repository's root, on files it holds (exit 0 or 1, never the
/// input error 2).
#[test]
fn readme_usage_commands_run_on_files_that_exist() {
    let readme = std::fs::read_to_string(repo("README.md")).expect("README");
    let section = &readme[readme.find("## Using it").expect("a Using it section")..];
    let block = &section[section.find("```sh\n").expect("a sh block") + 6..];
    let block = &block[..block.find("```").expect("end of block")];
    let dir = crate::bad_input::tempdir("readme-usage");
    let joined = block.replace("\\\n", " ");
    let mut ran = 0;
    for line in joined.lines() {
        let command = line.split(" #").next().unwrap_or(line).trim();
        if !command.starts_with("meshguard ")
            || command.contains("--cluster")
            || command.contains('|')
            || command.starts_with("meshguard certs")
        {
            continue;
        }
        // `> file` goes to a scratch file, and later commands read it there.
        let (command, redirect) = match command.split_once(" > ") {
            Some((c, file)) => (c, Some(dir.join(file.trim()))),
            None => (command, None),
        };
        let args: Vec<String> = command
            .split_whitespace()
            .skip(1)
            .map(|a| {
                let scratch = dir.join(a);
                if scratch.exists() {
                    scratch.display().to_string()
                } else {
                    a.to_owned()
                }
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = crate::util::meshguard(&args, None);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "`{command}` exited {:?}: {}",
            out.status.code(),
            crate::util::stderr(&out)
        );
        if let Some(file) = redirect {
            std::fs::write(file, &out.stdout).expect("write");
        }
        ran += 1;
    }
    assert!(ran >= 9, "ran {ran} commands");
}

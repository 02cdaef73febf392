//! The command line (SPEC section 7): parsing into types at the edge, then
//! one function per command. Exit codes: 0 clean, 1 findings at or above
//! `--fail-on`, 2 usage or input error.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;

use crate::admission;
use crate::audit::{self, AuditInput};
use crate::config::{self, Config};
use crate::engine::Webhook;
use crate::namespaces::NamespaceMap;
use crate::report::{self, FailOn, Format};
use crate::rules::{CATALOGUE, RuleId};

/// meshguard keeps an Istio mesh's rollout invariants true: as a validating
/// and mutating admission webhook, and as an audit of manifests.
#[derive(Debug, Parser)]
#[command(name = "meshguard", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit manifest files (YAML or JSON, multi-document, Lists,
    /// directories recursively) with the same rules as the webhooks.
    Audit(AuditArgs),
    /// Run one recorded AdmissionReview through the webhook logic and print
    /// the AdmissionReview response the server would send.
    Review(ReviewArgs),
    /// List every rule with its id, name, default action and summary.
    Rules,
    /// Explain a rule: why it exists, how to fix a violation, an example.
    Explain {
        /// Rule id (MG103) or name (sidecar-injection).
        rule: String,
    },
    /// Print or check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Files or directories to audit; `-` reads standard input.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Configuration file (default: the built-in default).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Namespace labels not given by Namespace documents in the input, as
    /// NS=KEY=VALUE, comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub namespace_labels: Vec<NamespaceLabel>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 1 when a finding at or above this action exists.
    #[arg(long, value_enum, default_value_t = FailOn::Deny)]
    pub fail_on: FailOn,
}

#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// The AdmissionReview (JSON); `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
    /// Configuration file (default: the built-in default).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Namespace labels: what `GET /api/v1/namespaces` returns, or
    /// Namespace documents (YAML or JSON).
    #[arg(long)]
    pub namespaces: Option<PathBuf>,
    /// Which webhook answers.
    #[arg(long, value_enum, default_value_t = WebhookArg::Validate)]
    pub webhook: WebhookArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WebhookArg {
    Validate,
    Mutate,
}

impl From<WebhookArg> for Webhook {
    fn from(w: WebhookArg) -> Webhook {
        match w {
            WebhookArg::Validate => Webhook::Validate,
            WebhookArg::Mutate => Webhook::Mutate,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the built-in default configuration (commented YAML).
    Default,
    /// Validate a configuration file and list every problem.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

/// `NS=KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceLabel {
    pub namespace: String,
    pub key: String,
    pub value: String,
}

impl FromStr for NamespaceLabel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, '=');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(ns), Some(key), Some(value)) if !ns.is_empty() && !key.is_empty() => {
                config::check_label_key(key)
                    .map_err(|e| format!("`{key}` is not a label key: {e}"))?;
                Ok(NamespaceLabel {
                    namespace: ns.to_owned(),
                    key: key.to_owned(),
                    value: value.to_owned(),
                })
            }
            _ => Err(format!("`{s}` is not NS=KEY=VALUE")),
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Clean = 0,
    Findings = 1,
    Error = 2,
}

/// Runs a parsed command. `Err` is a usage or input error (exit 2).
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    let now = Timestamp::now();
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Audit(args) => {
            let exit = audit(args, now, &mut stdout)?;
            Ok(exit)
        }
        Command::Review(args) => {
            review(args, now, &mut stdout)?;
            Ok(Exit::Clean)
        }
        Command::Rules => {
            stdout.write_all(rules_table().as_bytes())?;
            Ok(Exit::Clean)
        }
        Command::Explain { rule } => {
            let id: RuleId = rule.parse().map_err(anyhow::Error::msg)?;
            stdout.write_all(explain(id).as_bytes())?;
            Ok(Exit::Clean)
        }
        Command::Config(ConfigCommand::Default) => {
            stdout.write_all(config::DEFAULT_YAML.as_bytes())?;
            Ok(Exit::Clean)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            Config::load(&file).with_context(|| format!("{}", file.display()))?;
            writeln!(stdout, "{}: valid", file.display())?;
            Ok(Exit::Clean)
        }
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Config::load(p).with_context(|| format!("config {}", p.display())),
        None => Ok(Config::default()),
    }
}

fn audit(args: AuditArgs, now: Timestamp, out: &mut impl Write) -> anyhow::Result<Exit> {
    if matches!(args.format, Format::Sarif | Format::Junit) {
        bail!(
            "--format {} is not available yet; use text or json",
            args.format
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default()
        );
    }
    let config = load_config(args.config.as_ref())?;
    let input = AuditInput {
        paths: args.paths,
        namespace_labels: args
            .namespace_labels
            .into_iter()
            .map(|l| (l.namespace, l.key, l.value))
            .collect(),
    };
    let report = audit::run(&input, &config, now);
    let text = match args.format {
        Format::Json => report::json::render(&report),
        _ => report::text::render(&report),
    };
    out.write_all(text.as_bytes())?;
    for e in &report.errors {
        eprintln!("meshguard: {}: {}", e.source, e.message);
    }
    Ok(if !report.errors.is_empty() {
        Exit::Error
    } else if args.fail_on.fails(&report) {
        Exit::Findings
    } else {
        Exit::Clean
    })
}

fn review(args: ReviewArgs, now: Timestamp, out: &mut impl Write) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    let namespaces = match &args.namespaces {
        Some(p) => NamespaceMap::load(p)?,
        None => NamespaceMap::default(),
    };
    let body = match args.file.as_ref().filter(|p| p.as_os_str() != "-") {
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read standard input")?;
            buf
        }
    };
    let reviewed = admission::review(&body, args.webhook.into(), &config, &namespaces, now)?;
    out.write_all(&reviewed.body)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `meshguard rules`.
pub fn rules_table() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<6} {:<37} {:<7} SUMMARY", "ID", "NAME", "DEFAULT");
    for r in &CATALOGUE {
        let _ = writeln!(
            out,
            "{:<6} {:<37} {:<7} {}",
            r.id_str, r.name, r.default_action, r.summary
        );
    }
    out
}

/// `meshguard explain ID`.
pub fn explain(id: RuleId) -> String {
    let r = id.info();
    let example: String = r.example.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "{} {} (default: {})\n\n{}\n\nWhy: {}\n\nFix: {}\n\nExample:\n{}",
        r.id_str, r.name, r.default_action, r.summary, r.rationale, r.fix, example
    )
}

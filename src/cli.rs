//! The command line (SPEC section 7): parsing into types at the edge, then
//! one function per command. Exit codes: 0 clean, 1 findings at or above
//! `--fail-on`, 2 usage or input error.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

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
use crate::server::{self, ServeOptions};

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
    /// Serve the validating (/validate) and mutating (/mutate) admission
    /// webhooks over HTTPS, with /healthz and /readyz.
    Serve(Box<ServeArgs>),
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
    /// Issue a CA and a serving certificate for the webhook's Service:
    /// ca.crt, tls.crt, tls.key and webhook-ca-patch.yaml (for
    /// deploy/overlays/static-certs).
    Certs(CertsArgs),
}

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// The webhook's Service name.
    #[arg(long, default_value = "meshguard")]
    pub service: String,
    /// The Service's namespace.
    #[arg(long, default_value = "meshguard-system")]
    pub namespace: String,
    /// Where to write the files (created if missing).
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Validity of the certificates, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Files or directories to audit; `-` (or nothing, with piped input)
    /// reads standard input.
    pub paths: Vec<PathBuf>,
    /// Audit the objects of a live cluster instead of files (every kind
    /// meshguard judges, listed cluster-wide).
    #[arg(long, conflicts_with = "paths")]
    pub cluster: bool,
    /// Kubeconfig for --cluster (default: KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long, requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,
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
    /// Also report the mesh posture: per namespace, each workload's
    /// sidecar, mTLS and authorization, and the encrypted and authorized
    /// percentages.
    #[arg(long)]
    pub posture: bool,
    /// Exit 1 unless every workload meets these targets (a CI gate for
    /// 100% encrypted / authorized); implies --posture.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub require_posture: Vec<Target>,
    /// The cluster's namespaces (what `GET /api/v1/namespaces` returns, or
    /// Namespace documents): their labels, and which namespaces exist, for
    /// references into namespaces the input holds nothing of.
    #[arg(long, conflicts_with = "cluster")]
    pub namespaces: Option<PathBuf>,
}

/// `--require-posture`: a mesh-wide target (SPEC section 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Every workload has a sidecar and STRICT mTLS.
    Encrypted,
    /// Every workload's authorization is `identity` or `deny-all`.
    Authorized,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file, re-read when it changes (default: the built-in
    /// default).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address of the HTTPS listener.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Address of the plain-HTTP metrics listener (`GET /metrics`,
    /// OpenMetrics text), or `off`.
    #[arg(long, default_value = "0.0.0.0:8080", value_parser = parse_metrics_listen)]
    pub metrics_listen: MetricsListen,
    /// Serving certificate chain (PEM), re-read when it changes. Without
    /// --tls-cert/--tls-key a self-signed certificate is made in memory.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// Static namespace labels instead of watching the cluster: what `GET
    /// /api/v1/namespaces` returns, or Namespace documents.
    #[arg(long)]
    pub namespaces: Option<PathBuf>,
    /// Where to write the CA of the self-signed certificate.
    #[arg(long, default_value_os_t = std::env::temp_dir().join("meshguard-ca.pem"))]
    pub ca_out: PathBuf,
    /// Largest accepted request body, in bytes (a review carries the object
    /// and the old object, each up to the API server's 3 MiB).
    #[arg(long, default_value_t = 7 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most connections served at once; more wait in the listen backlog.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Time from accepting a connection to its first request (TLS handshake
    /// and request headers included); a silent client is cut off.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time allowed for a request body.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Close a keep-alive connection with no request in flight for this
    /// long (HTTP/2 pings go at half this interval). Longer than Go's 90 s,
    /// so the API server normally closes an idle connection first.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// On SIGTERM, time allowed for requests in flight to finish.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub grace: Duration,
    /// How often the config and certificate files are re-read.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub reload_interval: Duration,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

/// `--metrics-listen`: an address, or `off` for no metrics listener.
#[derive(Debug, Clone, Copy)]
pub struct MetricsListen(pub Option<SocketAddr>);

fn parse_metrics_listen(s: &str) -> Result<MetricsListen, String> {
    if s == "off" {
        return Ok(MetricsListen(None));
    }
    s.parse()
        .map(|a| MetricsListen(Some(a)))
        .map_err(|e| format!("`{s}` is neither an address such as 0.0.0.0:8080 nor `off`: {e}"))
}

/// Parses `250ms`, `5s`, `2m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 250ms, 5s or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{s}` is not a duration such as 250ms, 5s or 2m")),
    }
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
        Command::Serve(args) => {
            serve(*args)?;
            Ok(Exit::Clean)
        }
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
        Command::Certs(args) => {
            let opts = crate::certs::CertsOptions {
                service: args.service,
                namespace: args.namespace,
                out_dir: args.out_dir,
                days: args.days,
                force: args.force,
            };
            let written = crate::certs::write(&opts)?;
            for path in &written {
                writeln!(stdout, "wrote {}", path.display())?;
            }
            writeln!(
                stdout,
                "serving certificate for {}, valid {} days",
                crate::certs::dns_names(&opts.service, &opts.namespace).join(", "),
                opts.days
            )?;
            Ok(Exit::Clean)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            Config::load(&file).with_context(|| format!("{}", file.display()))?;
            writeln!(stdout, "{}: valid", file.display())?;
            Ok(Exit::Clean)
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let opts = ServeOptions {
        listen: args.listen,
        metrics_listen: args.metrics_listen.0,
        config: args.config,
        tls: args.tls_cert.zip(args.tls_key),
        client_ca: args.client_ca,
        namespaces: args.namespaces,
        ca_out: args.ca_out,
        body_limit: args.max_body_bytes,
        max_connections: args.max_connections.max(1),
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
        idle_timeout: args.idle_timeout,
        grace: args.grace,
        reload_interval: args.reload_interval.max(Duration::from_millis(10)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(server::run(opts))?;
    Ok(())
}

/// Logs go to stderr; `MESHGUARD_LOG` sets the filter (default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MESHGUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Config::load(p).with_context(|| format!("config {}", p.display())),
        None => Ok(Config::default()),
    }
}

fn audit(args: AuditArgs, now: Timestamp, out: &mut impl Write) -> anyhow::Result<Exit> {
    let config = load_config(args.config.as_ref())?;
    let report = if args.cluster {
        audit_cluster(&args, &config, now)?
    } else {
        audit_files(&args, &config, now)?
    };
    let text = match args.format {
        Format::Text => report::text::render(&report),
        Format::Json => report::json::render(&report),
        Format::Sarif => report::sarif::render(&report),
        Format::Junit => report::junit::render(&report, args.fail_on),
        Format::Policyreport => report::policyreport::render(&report, now),
    };
    out.write_all(text.as_bytes())?;
    for e in &report.errors {
        eprintln!("meshguard: {}: {}", e.source, e.message);
    }
    // SPEC section 1: a run that judged nothing must not look clean (the
    // text report says so itself).
    if report.nothing_judged() && args.format != Format::Text {
        eprintln!(
            "meshguard: nothing was judged: all {} objects were skipped (the report lists why)",
            report.skipped.len()
        );
    }
    let gaps = posture_gaps(&report, &args.require_posture);
    for gap in &gaps {
        eprintln!("meshguard: posture: {gap}");
    }
    Ok(if !report.errors.is_empty() {
        Exit::Error
    } else if args.fail_on.fails(&report) || !gaps.is_empty() {
        Exit::Findings
    } else {
        Exit::Clean
    })
}

fn wants_posture(args: &AuditArgs) -> bool {
    args.posture || !args.require_posture.is_empty()
}

/// `--require-posture`: the workloads that miss a target, as lines for
/// standard error; empty when every target is met.
fn posture_gaps(report: &audit::AuditReport, targets: &[Target]) -> Vec<String> {
    let Some(posture) = &report.posture else {
        return Vec::new();
    };
    let mut gaps = Vec::new();
    for w in &posture.workloads {
        let who = format!("{}/{}/{}", w.namespace, w.kind, w.name);
        if targets.contains(&Target::Encrypted) && !w.encrypted() {
            let why = if w.sidecar {
                format!(
                    "mtls {}{}",
                    w.mtls.as_str(),
                    w.mtls_from
                        .as_ref()
                        .map(|f| format!(" from {f}"))
                        .unwrap_or_else(|| " (Istio's default)".to_owned())
                )
            } else {
                "no sidecar".to_owned()
            };
            gaps.push(format!("not encrypted: {who} ({why})"));
        }
        if targets.contains(&Target::Authorized) && !w.authorized() {
            gaps.push(format!(
                "not authorized: {who} (authz {})",
                w.authz.as_str()
            ));
        }
    }
    gaps
}

fn namespace_labels(args: &AuditArgs) -> Vec<(String, String, String)> {
    args.namespace_labels
        .iter()
        .map(|l| (l.namespace.clone(), l.key.clone(), l.value.clone()))
        .collect()
}

/// `audit --cluster`: list, then the same audit as for files.
fn audit_cluster(
    args: &AuditArgs,
    config: &Config,
    now: Timestamp,
) -> anyhow::Result<audit::AuditReport> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let collected = runtime.block_on(async {
        let client = crate::cluster_audit::client(args.kubeconfig.as_deref())
            .await
            .context("cannot reach a cluster")?;
        anyhow::Ok(crate::cluster_audit::collect(&client).await)
    })?;
    if !collected.not_served.is_empty() {
        eprintln!(
            "meshguard: not served by this cluster, skipped: {}",
            collected.not_served.join(", ")
        );
    }
    let input = AuditInput {
        paths: Vec::new(),
        namespace_labels: namespace_labels(args),
        cluster: true,
        posture: wants_posture(args),
        ..AuditInput::default()
    };
    let mut report = audit::AuditReport {
        errors: collected.errors,
        ..Default::default()
    };
    audit::audit_documents(collected.documents, &input, config, now, &mut report);
    Ok(report)
}

fn audit_files(
    args: &AuditArgs,
    config: &Config,
    now: Timestamp,
) -> anyhow::Result<audit::AuditReport> {
    const USAGE: &str = "give files or directories to audit, or pipe manifests in (`kubectl kustomize . | meshguard audit -`)";
    let implicit_stdin = args.paths.is_empty();
    if implicit_stdin && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(USAGE);
    }
    let paths = if implicit_stdin {
        vec![PathBuf::from("-")]
    } else {
        args.paths.clone()
    };
    let namespaces = match &args.namespaces {
        Some(p) => Some(NamespaceMap::load(p)?),
        None => None,
    };
    let input = AuditInput {
        paths,
        namespace_labels: namespace_labels(args),
        namespaces,
        cluster: false,
        posture: wants_posture(args),
    };
    let report = audit::run(&input, config, now);
    // No path and nothing piped in (a CI job whose file list came out
    // empty): an error, never a green "0 objects".
    if implicit_stdin
        && report.objects == 0
        && report.errors.is_empty()
        && report.skipped.is_empty()
    {
        bail!("nothing on standard input: {USAGE}");
    }
    Ok(report)
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

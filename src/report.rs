//! Rendering an audit report (SPEC section 7): `text` for people, `json`
//! for machines, `sarif` for code scanning, `junit` for CI test reports,
//! `policyreport` for the cluster's PolicyReport readers. Formats only; the
//! audit itself is in `audit`.

pub mod json;
pub mod junit;
pub mod policyreport;
pub mod posture;
pub mod sarif;
pub mod text;
pub mod yaml;

use crate::audit::AuditReport;
use crate::rules::Action;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Junit,
    /// wgpolicyk8s.io/v1alpha2 PolicyReports (one per namespace) and a
    /// ClusterPolicyReport, as one YAML stream for `kubectl apply -f -`.
    Policyreport,
}

/// `--fail-on`: the lowest action that makes the audit exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Deny,
    Warn,
    Never,
}

impl FailOn {
    /// Whether a finding with `action` makes the audit fail.
    pub fn includes(self, action: Action) -> bool {
        match self {
            FailOn::Never => false,
            FailOn::Deny => action == Action::Deny,
            FailOn::Warn => matches!(action, Action::Deny | Action::Warn),
        }
    }

    pub fn fails(self, report: &AuditReport) -> bool {
        report
            .audited
            .iter()
            .flat_map(|o| &o.findings)
            .any(|f| self.includes(f.action))
    }
}

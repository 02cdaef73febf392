//! The mesh posture in reports (SPEC section 10): a table per namespace
//! and the two percentages for people, the `posture` object for machines.

use std::fmt::Write as _;

use serde::Serialize;

use crate::posture::Posture;

#[derive(Serialize)]
pub struct PostureOut<'a> {
    summary: SummaryOut,
    workloads: Vec<WorkloadOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryOut {
    workloads: usize,
    encrypted: usize,
    authorized: usize,
    encrypted_percent: f64,
    authorized_percent: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkloadOut<'a> {
    namespace: &'a str,
    kind: &'a str,
    name: &'a str,
    sidecar: &'static str,
    mtls: &'static str,
    mtls_from: Option<&'a str>,
    authz: &'static str,
    authz_from: &'a [String],
}

/// One decimal, as the text shows it.
fn rounded(p: f64) -> f64 {
    (p * 10.0).round() / 10.0
}

pub fn json(posture: &Posture) -> PostureOut<'_> {
    PostureOut {
        summary: SummaryOut {
            workloads: posture.workloads.len(),
            encrypted: posture.encrypted(),
            authorized: posture.authorized(),
            encrypted_percent: rounded(posture.percent(posture.encrypted())),
            authorized_percent: rounded(posture.percent(posture.authorized())),
        },
        workloads: posture
            .workloads
            .iter()
            .map(|w| WorkloadOut {
                namespace: &w.namespace,
                kind: w.kind,
                name: &w.name,
                sidecar: if w.sidecar { "yes" } else { "no" },
                mtls: w.mtls.as_str(),
                mtls_from: w.mtls_from.as_deref(),
                authz: w.authz.as_str(),
                authz_from: &w.authz_from,
            })
            .collect(),
    }
}

/// The table per namespace, then the two percentages.
pub fn text(posture: &Posture) -> String {
    let mut out = String::from("posture:\n");
    let mut current: Option<&str> = None;
    let rows: Vec<[String; 4]> = posture
        .workloads
        .iter()
        .map(|w| {
            let mtls = match &w.mtls_from {
                Some(from) => format!("{} ({from})", w.mtls.as_str()),
                None if w.sidecar => format!("{} (Istio's default)", w.mtls.as_str()),
                None => w.mtls.as_str().to_owned(),
            };
            let authz = if w.authz_from.is_empty() {
                w.authz.as_str().to_owned()
            } else {
                format!("{} ({})", w.authz.as_str(), w.authz_from.join(", "))
            };
            [
                format!("{}/{}", w.kind, w.name),
                if w.sidecar { "yes" } else { "no" }.to_owned(),
                mtls,
                authz,
            ]
        })
        .collect();
    let width = |i: usize, title: &str| {
        rows.iter()
            .map(|r| r[i].len())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (w0, w1, w2) = (width(0, "WORKLOAD"), width(1, "SIDECAR"), width(2, "MTLS"));
    for (w, row) in posture.workloads.iter().zip(&rows) {
        if current != Some(w.namespace.as_str()) {
            current = Some(&w.namespace);
            let n = posture
                .workloads
                .iter()
                .filter(|o| o.namespace == w.namespace)
                .count();
            let _ = writeln!(
                out,
                "  namespace {} ({n} workload{})",
                w.namespace,
                plural(n)
            );
            let _ = writeln!(
                out,
                "    {:<w0$}  {:<w1$}  {:<w2$}  AUTHZ",
                "WORKLOAD", "SIDECAR", "MTLS"
            );
        }
        let _ = writeln!(
            out,
            "    {:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0], row[1], row[2], row[3]
        );
    }
    let total = posture.workloads.len();
    if total == 0 {
        out.push_str("  no workloads in non-exempt namespaces\n");
    }
    let _ = writeln!(
        out,
        "encrypted: {}/{total} workloads ({:.1}%), authorized: {}/{total} ({:.1}%)",
        posture.encrypted(),
        posture.percent(posture.encrypted()),
        posture.authorized(),
        posture.percent(posture.authorized()),
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

//! `meshguard certs`: a CA and a serving certificate for the webhook's
//! Service, written as the files a static-certificate install needs (SPEC
//! section 7).
//!
//! Files in `--out-dir`: `ca.crt`, `tls.crt`, `tls.key` (mode 0600) and
//! `webhook-ca-patch.yaml`, a kustomize strategic-merge patch that puts the
//! CA into every webhook of both webhook configurations (merged by webhook
//! name; `deploy/overlays/static-certs` applies it). Nothing is overwritten
//! without `force`, and the check covers every file before any is written,
//! so a refused run changes nothing. The CA's private key is not kept: a
//! renewal issues a new CA and a new patch.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::config::is_dns_label;
use crate::tls;

/// The webhooks of the shipped configurations (`deploy/base/webhooks.yaml`),
/// by configuration kind.
pub const WEBHOOKS: [(&str, &[&str]); 2] = [
    (
        "ValidatingWebhookConfiguration",
        &[
            "workloads.validate.meshguard.io",
            "istio.validate.meshguard.io",
        ],
    ),
    (
        "MutatingWebhookConfiguration",
        &["workloads.mutate.meshguard.io"],
    ),
];

/// The name of both webhook configurations.
pub const CONFIGURATION_NAME: &str = "meshguard";

/// What to issue and where.
#[derive(Debug, Clone)]
pub struct CertsOptions {
    pub service: String,
    pub namespace: String,
    pub out_dir: PathBuf,
    pub days: u32,
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error(
        "{0} already exists; pass --force to replace the certificates (the webhooks then need the new CA)"
    )]
    Exists(PathBuf),
    #[error("--days must be at least 1")]
    Days,
    #[error("`{0}` is not a DNS label (lower-case letters, digits and `-`)")]
    Name(String),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
}

/// The files written, in order.
pub const FILES: [&str; 4] = ["ca.crt", "tls.crt", "tls.key", "webhook-ca-patch.yaml"];

/// The DNS names the serving certificate is for.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Issues the certificates and writes the files; returns their paths.
pub fn write(opts: &CertsOptions) -> Result<Vec<PathBuf>, CertsError> {
    for name in [&opts.service, &opts.namespace] {
        if !is_dns_label(name) {
            return Err(CertsError::Name(name.clone()));
        }
    }
    if opts.days == 0 {
        return Err(CertsError::Days);
    }
    let paths: Vec<PathBuf> = FILES.iter().map(|f| opts.out_dir.join(f)).collect();
    if let Some(existing) = paths.iter().find(|p| !opts.force && p.exists()) {
        return Err(CertsError::Exists(existing.clone()));
    }
    let generated = tls::generate(
        &dns_names(&opts.service, &opts.namespace),
        i64::from(opts.days),
    )?;
    std::fs::create_dir_all(&opts.out_dir).map_err(|source| CertsError::Write {
        path: opts.out_dir.clone(),
        source,
    })?;
    let contents = [
        generated.ca_pem.clone(),
        generated.cert_pem,
        generated.key_pem,
        ca_patch(&generated.ca_pem),
    ];
    for (path, content) in paths.iter().zip(&contents) {
        let private = path.ends_with("tls.key");
        write_file(path, content.as_bytes(), private)?;
    }
    Ok(paths)
}

/// The kustomize patch that sets `caBundle` on every webhook.
pub fn ca_patch(ca_pem: &str) -> String {
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let mut out = String::from(
        "# Written by `meshguard certs`: puts the CA of the serving certificate\n# into every webhook (kustomize merges the list by webhook name).\n",
    );
    for (i, (kind, names)) in WEBHOOKS.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {CONFIGURATION_NAME}\nwebhooks:\n"
        ));
        for name in *names {
            out.push_str(&format!(
                "- name: {name}\n  clientConfig:\n    caBundle: {bundle}\n"
            ));
        }
    }
    out
}

fn write_file(path: &Path, content: &[u8], private: bool) -> Result<(), CertsError> {
    let err = |source| CertsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(if private { 0o600 } else { 0o644 });
        let mut file = options.open(path).map_err(err)?;
        // `mode` applies only to new files; a replaced key gets it too.
        file.set_permissions(std::fs::Permissions::from_mode(if private {
            0o600
        } else {
            0o644
        }))
        .map_err(err)?;
        file.write_all(content).map_err(err)
    }
    #[cfg(not(unix))]
    {
        let _ = private;
        options
            .open(path)
            .map_err(err)?
            .write_all(content)
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_names_every_webhook_once_with_the_bundle() {
        let patch = ca_patch("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n");
        for (kind, names) in WEBHOOKS {
            assert!(patch.contains(&format!("kind: {kind}")));
            for name in names {
                assert_eq!(patch.matches(&format!("- name: {name}\n")).count(), 1);
            }
        }
        assert_eq!(
            patch.matches("caBundle: LS0tLS1CRUdJTi").count(),
            3,
            "{patch}"
        );
    }

    #[test]
    fn names_must_be_dns_labels() {
        for bad in ["", "Meshguard", "a.b", "-a", "a_b"] {
            let opts = CertsOptions {
                service: bad.to_owned(),
                namespace: "meshguard-system".to_owned(),
                out_dir: std::env::temp_dir().join("meshguard-certs-never-written"),
                days: 1,
                force: false,
            };
            assert!(matches!(write(&opts), Err(CertsError::Name(_))), "{bad}");
        }
    }
}

//! meshguard's one integration-test binary (CONVENTIONS habit 14): modules
//! share helpers and are built once.

mod audit_skipped;
mod bad_input;
mod cli;
mod cluster_audit;
mod deploy;
mod docs;
mod fake_api;
mod fixtures;
mod harness;
mod metrics;
mod mutations;
mod pki;
mod policy;
mod policyreport;
mod posture;
mod properties;
mod serve_flags;
mod server;
mod server_mesh;
mod server_namespaces;
mod server_start;
mod server_tls;
mod util;
mod workload_rules;

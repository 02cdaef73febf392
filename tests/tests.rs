//! meshguard's one integration-test binary (CONVENTIONS habit 14): modules
//! share helpers and are built once.

mod bad_input;
mod cli;
mod cluster_audit;
mod deploy;
mod fake_api;
mod fixtures;
mod harness;
mod metrics;
mod mutations;
mod pki;
mod policy;
mod serve_flags;
mod server;
mod server_namespaces;
mod server_tls;
mod util;
mod workload_rules;

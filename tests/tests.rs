//! meshguard's one integration-test binary (CONVENTIONS habit 14): modules
//! share helpers and are built once.

mod bad_input;
mod cli;
mod fixtures;
mod mutations;
mod policy;
mod util;
mod workload_rules;

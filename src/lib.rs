//! meshguard: keeps the rollout invariants of an Istio service mesh true at
//! the moment objects enter a Kubernetes cluster, and in manifests before
//! they get there.
//!
//! ```text
//!  HTTPS ─► admission ─┐
//!  files ─► audit ─────┼─► engine ─► rules/*   pure: no I/O, no clock
//!                      │      └────► mutate    pure
//!  report ◄── audit    │
//! ```
//!
//! `object` reads any object once into the view the rules judge; `engine`
//! is the one `evaluate` every surface calls.

pub mod admission;
pub mod audit;
pub mod certs;
pub mod cli;
pub mod cluster_audit;
pub mod config;
pub mod docs;
pub mod documents;
pub mod engine;
pub mod injection;
pub mod legacy_api;
pub mod lenient;
pub mod mesh;
pub mod metrics;
pub mod mutate;
pub mod namespaces;
pub mod object;
pub mod posture;
pub mod reload;
pub mod report;
pub mod resources;
pub mod rules;
pub mod server;
pub mod tls;
pub mod watch;

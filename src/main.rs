//! The thin binary: parse the command line, run, map the outcome to an exit
//! code (0 clean, 1 findings, 2 usage or input error).

use std::process::ExitCode;

use clap::Parser;
use meshguard::cli::{self, Cli, Exit};

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process (server and kube client).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let exit = match cli::run(cli) {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("meshguard: {e:#}");
            Exit::Error
        }
    };
    ExitCode::from(exit as u8)
}

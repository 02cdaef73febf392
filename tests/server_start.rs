//! `meshguard serve` start-up order: a second server next to a running one
//! fails on its ports before it writes anything, so the running server's
//! clients keep trusting the CA file they were given.

use crate::harness::{Server, read_ca, scratch};
use crate::util::{data, meshguard, stderr};

#[test]
fn a_second_serve_on_taken_ports_leaves_the_running_servers_ca_alone() {
    let dir = scratch("second-serve");
    let ca = dir.join("ca.pem");
    let ns = data("namespaces.json");
    let (ca_arg, ns_arg) = (ca.to_str().expect("utf-8"), ns.to_str().expect("utf-8"));
    let first = Server::start(&["--namespaces", ns_arg, "--ca-out", ca_arg]);
    let running_ca = read_ca(&ca);
    let https = first.addr.to_string();
    let metrics = first.metrics_addr.expect("metrics listener").to_string();

    // The HTTPS port is taken.
    let out = meshguard(
        &[
            "serve",
            "--listen",
            &https,
            "--metrics-listen",
            "127.0.0.1:0",
            "--namespaces",
            ns_arg,
            "--ca-out",
            ca_arg,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {https}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(read_ca(&ca), running_ca, "the CA file is untouched");

    // The HTTPS port is free, the metrics port is taken.
    let out = meshguard(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &metrics,
            "--namespaces",
            ns_arg,
            "--ca-out",
            ca_arg,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {metrics}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(read_ca(&ca), running_ca, "the CA file is untouched");
    drop(first);
}

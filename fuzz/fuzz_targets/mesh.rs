//! The mesh index under any sequence of watch events (apply, delete,
//! reset_kind): posture and MG5xx are functions of what remains.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use meshguard_fuzz::{config, mesh_ops, mesh_sequence};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(config), Ok(ops)) = (config(&mut u), mesh_ops(&mut u)) else {
        return;
    };
    mesh_sequence(&ops, &config);
});

//! The lenient Istio readers: any JSON (the first byte picks the kind) read
//! by `Object::from_json`, judged, indexed and placed in the posture.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::config::Config;
use meshguard_fuzz::{ISTIO_KINDS, istio_json};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(json) = std::str::from_utf8(rest) else {
        return;
    };
    let kind = ISTIO_KINDS[first as usize % ISTIO_KINDS.len()];
    istio_json(kind, json, &Config::default());
});

//! Any text as an audited manifest: YAML and JSON streams, Lists, line
//! numbers, the mesh index and the posture of whatever it holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    meshguard_fuzz::audit_text(text, &Config::default(), true);
});

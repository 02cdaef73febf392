//! Any bytes as a config file: `Config::parse` reports problems, never
//! panics, and what `config check` accepts is what `serve` loads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    meshguard_fuzz::config_bytes(data);
});

#!/usr/bin/env bash
# The test suite, on a fresh machine too: installs what the tests need
# beyond Rust (Debian's prometheus, cargo-nextest) when missing, then runs
# every test. Extra arguments go to nextest (e.g. a filter: `metrics::`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo nextest run --locked "$@"

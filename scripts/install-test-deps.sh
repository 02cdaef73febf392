#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust, idempotently: Debian's
# `prometheus` package (the real Prometheus and promtool the metrics tests
# start) and cargo-nextest. `kubectl` (client) must be on PATH already; the
# deploy tests render manifests with `kubectl kustomize`.
set -euo pipefail

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "installing prometheus (Debian package)..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubectl (client) is not on PATH: the deploy tests need it for 'kubectl kustomize'" >&2
  exit 1
fi

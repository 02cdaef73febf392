#!/usr/bin/env bash
# Load benchmark of `meshguard serve` (run by hand, not by CI):
# HTTPS keep-alive, 16 connections, 15 s, the 6.4 KB reference Deployment
# review, against the release binary with the full default policy.
# Prints requests/s, p50/p99 latency, server CPU time per request (from
# /proc/<pid>/stat) and peak resident memory.
#
#   benches/load.sh [connections] [seconds] [review.json] [path]
#   METRICS=off benches/load.sh     # the same without the metrics listener
#   MESHGUARD_BIN=path METRICS=none benches/load.sh
#                                   # another build (e.g. one from before the
#                                   # metrics, which has no --metrics-listen)
set -euo pipefail
cd "$(dirname "$0")/.."

connections=${1:-16}
seconds=${2:-15}
review=${3:-benches/data/admissionreview-deployment.json}
path=${4:-/validate}

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk (Debian package)..." >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

bin=${MESHGUARD_BIN:-./target/release/meshguard}
[ -n "${MESHGUARD_BIN:-}" ] || cargo build --release --locked -q
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# Namespace labels for the review's namespace (`bookinfo`).
cat > "$work/namespaces.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, labels: {istio-injection: enabled}}
YAML

port=$((20000 + RANDOM % 20000))
case "${METRICS:-on}" in
  on) metrics_args=(--metrics-listen 127.0.0.1:0) ;;
  off) metrics_args=(--metrics-listen off) ;;
  none) metrics_args=() ;;
  *) echo "METRICS must be on, off or none" >&2; exit 2 ;;
esac
MESHGUARD_LOG=warn "$bin" serve --listen "127.0.0.1:$port" "${metrics_args[@]}" \
  --namespaces "$work/namespaces.yaml" --ca-out "$work/ca.pem" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do
  curl -sf --cacert "$work/ca.pem" "https://localhost:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

cat > "$work/post.lua" <<LUA
local f = assert(io.open("$review", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" "https://127.0.0.1:$port$path" | tee "$work/wrk.txt"
after=$(ticks)

requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
cpu_us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
echo
echo "meshguard load: $requests requests, $(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt") req/s," \
  "p50 $(awk '$1 == "50%" {print $2}' "$work/wrk.txt"), p99 $(awk '$1 == "99%" {print $2}' "$work/wrk.txt")," \
  "server CPU ${cpu_us} us/request, peak RSS $((rss_kib / 1024)) MiB (metrics ${METRICS:-on})"

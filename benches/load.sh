#!/usr/bin/env bash
# Load benchmark of `meshguard serve` against the TLS floor (run by hand, not
# by CI). The floor (../shared/bench/floor or $FLOOR_DIR, built into
# target/floor) is an HTTPS server that reads the body and sends a fixed
# AdmissionReview reply:
# the least work any webhook can do. Both servers get the same certificate,
# payload (the 6.4 KB reference Deployment review) and client, back to back:
#
# 1. closed loop, HTTP/1.1 (wrk) and HTTP/2 (h2load): requests/s, server CPU
#    time per request (from /proc/<pid>/stat) and meshguard's ratio to the
#    floor, per protocol;
# 2. open loop over HTTP/2 (examples/openloop.rs): a fixed rate, latency from
#    each request's due time (corrected for coordinated omission), p50, p99,
#    p99.9 for both servers.
#
#   benches/load.sh [connections] [seconds] [review.json]
#   RATE=5000 OPEN_SECONDS=8 ROUNDS=3 benches/load.sh   # quicker, noisier
#   METRICS=off benches/load.sh     # meshguard without the metrics listener
#   MESHGUARD_BIN=path METRICS=none benches/load.sh
#                                   # another build (e.g. one from before the
#                                   # metrics, which has no --metrics-listen)
set -euo pipefail
cd "$(dirname "$0")/.."

connections=${1:-16}
seconds=${2:-8}
review=${3:-benches/data/admissionreview-deployment.json}
rate=${RATE:-5000}
open_seconds=${OPEN_SECONDS:-8}
# Several rounds, floor and meshguard back to back in each: one round's
# ratio moves by 10-30% on a shared 2-core machine, the median of five
# rounds much less (medians of three still moved by 15%).
rounds=${ROUNDS:-5}

for tool in wrk:wrk h2load:nghttp2-client; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    echo "installing ${tool#*:} (Debian package)..." >&2
    (apt-get update -qq && apt-get install -y -qq "${tool#*:}") >/dev/null
  fi
done

bin=${MESHGUARD_BIN:-./target/release/meshguard}
[ -n "${MESHGUARD_BIN:-}" ] || cargo build --release --locked -q
cargo build --release --locked -q --example openloop
cargo build --release -q --manifest-path "${FLOOR_DIR:-../shared/bench/floor}/Cargo.toml" --target-dir target/floor
floor_bin=target/floor/release/floor
openloop=target/release/examples/openloop

work=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# One certificate for both servers.
"$bin" certs --out-dir "$work/certs" >/dev/null
sni=meshguard.meshguard-system.svc
# Namespace labels for the review's namespace (`bookinfo`).
cat > "$work/namespaces.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, labels: {istio-injection: enabled}}
YAML
cat > "$work/post.lua" <<LUA
local f = assert(io.open("$review", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

case "${METRICS:-on}" in
  on) metrics_args=(--metrics-listen 127.0.0.1:0) ;;
  off) metrics_args=(--metrics-listen off) ;;
  none) metrics_args=() ;;
  *) echo "METRICS must be on, off or none" >&2; exit 2 ;;
esac

# start floor|meshguard: starts the server on a fresh port ($port, $pid).
start() {
  port=$((20000 + RANDOM % 20000))
  case "$1" in
    floor) "$floor_bin" "$work/certs/tls.crt" "$work/certs/tls.key" "127.0.0.1:$port" 2>"$work/floor.log" & ;;
    meshguard) MESHGUARD_LOG=warn "$bin" serve --listen "127.0.0.1:$port" "${metrics_args[@]}" \
      --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" \
      --namespaces "$work/namespaces.yaml" 2>"$work/server.log" & ;;
  esac
  pid=$!
  for _ in $(seq 100); do
    curl -skf -o /dev/null "https://127.0.0.1:$port/healthz" && return
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

# closed server protocol: one closed-loop run; prints "requests req/s us/request".
closed() {
  local before after requests rps
  before=$(ticks)
  case "$2" in
    h1) wrk -t2 -c"$connections" -d"${seconds}s" -s "$work/post.lua" "https://127.0.0.1:$port/validate" > "$work/out.txt"
        requests=$(awk '/requests in/ {print $1}' "$work/out.txt")
        rps=$(awk '/Requests\/sec/ {printf "%d", $2}' "$work/out.txt")
        if grep -q "Non-2xx\|Socket errors" "$work/out.txt"; then echo "errors in the $1 h1 run:" >&2; cat "$work/out.txt" >&2; fi ;;
    h2) h2load -c"$connections" -t1 -m1 -D "$seconds" -d "$review" -H 'content-type: application/json' \
          "https://127.0.0.1:$port/validate" > "$work/out.txt"
        requests=$(awk '/^requests:/ {print $8}' "$work/out.txt")
        rps=$(awk '/^finished in/ {printf "%d", $4}' "$work/out.txt")
        awk '/^requests:/ && ($10 + $12 + $14) > 0 {print "errors in the h2 run: " $0 > "/dev/stderr"}' "$work/out.txt" ;;
  esac
  after=$(ticks)
  awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" -v rps="$rps" \
    'BEGIN { printf "%d %d %.1f\n", n, rps, t / hz * 1e6 / n }'
}

echo "closed loop: $connections connections, ${seconds} s per run, $(wc -c < "$review") byte review, $rounds round(s)"
printf '%-6s %-10s %10s %9s %16s %7s\n' proto server requests req/s "CPU us/request" ratio
declare -A cpu ratios
for round in $(seq "$rounds"); do
  for proto in h1 h2; do
    for server in floor meshguard; do
      start "$server"
      read -r n rps us < <(closed "$server" "$proto")
      [ "$server" = meshguard ] && rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
      stop
      cpu[$server]=$us
      ratio=$(awk -v a="$us" -v b="${cpu[floor]}" 'BEGIN { printf "%.2fx", a / b }')
      printf '%-6s %-10s %10s %9s %16s %7s\n' "$proto" "$server" "$n" "$rps" "$us" "$ratio"
    done
    ratio=$(awk -v a="${cpu[meshguard]}" -v b="${cpu[floor]}" 'BEGIN { printf "%.2f", a / b }')
    ratios[$proto]+="$ratio "
    echo "ratio $proto round $round: meshguard/floor CPU per request = $ratio (meshguard peak RSS $((rss_kib / 1024)) MiB, metrics ${METRICS:-on})"
  done
done
for proto in h1 h2; do
  # shellcheck disable=SC2086 # one ratio per word
  echo "ratio $proto, median of $rounds round(s): $(printf '%s\n' ${ratios[$proto]} | sort -n | awk '{ r[NR] = $1 } END { printf "%.2f", NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }') (rounds: ${ratios[$proto]% })"
done

echo
echo "open loop: HTTP/2, $rate requests/s for ${open_seconds} s, 4 connections"
for server in floor meshguard; do
  start "$server"
  printf '%-10s ' "$server"
  "$openloop" "https://127.0.0.1:$port/validate" "$work/certs/ca.crt" "$sni" "$review" "$rate" "$open_seconds" 4
  stop
done

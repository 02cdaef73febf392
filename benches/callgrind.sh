#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable where
# CPU time on a shared machine is not (run by hand, not by CI). Each server
# (the TLS floor, meshguard, and optionally another meshguard build) runs
# under callgrind with instrumentation off; after a warm-up it is switched on
# for exactly N requests of the reference review (h2load, one connection,
# HTTP/1.1 then HTTP/2), dumped, and the total divided by N. The top of each
# profile (self cost by function) is printed too.
#
#   benches/callgrind.sh [requests] [review.json]
#   OLD_BIN=/tmp/meshguard-old benches/callgrind.sh   # also the other build
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-2000}
review=${2:-benches/data/admissionreview-deployment.json}
top=${TOP:-12}
command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind) >/dev/null
command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq nghttp2-client) >/dev/null
bin=${MESHGUARD_BIN:-./target/release/meshguard}
[ -n "${MESHGUARD_BIN:-}" ] || cargo build --release --locked -q
cargo build --release -q --manifest-path "${FLOOR_DIR:-../shared/bench/floor}/Cargo.toml" --target-dir target/floor

work=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" certs --out-dir "$work/certs" >/dev/null
cat > "$work/namespaces.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, labels: {istio-injection: enabled}}
YAML

# measure name proto command...: prints "name proto instructions/request".
measure() {
  local name=$1 proto=$2
  shift 2
  local port=$((20000 + RANDOM % 20000)) out="$work/cg.$name.$proto"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$@" "127.0.0.1:$port" 2>"$work/valgrind.log" &
  pid=$!
  for _ in $(seq 300); do
    curl -skf -o /dev/null "https://127.0.0.1:$port/healthz" && break
    sleep 0.2
  done
  local args=(-c1 -m1 -d "$review" -H 'content-type: application/json')
  [ "$proto" = h1 ] && args+=(--h1)
  h2load -n 200 "${args[@]}" "https://127.0.0.1:$port/validate" >/dev/null 2>&1 || true
  callgrind_control -i on "$pid" >/dev/null 2>&1
  h2load -n "$n" "${args[@]}" "https://127.0.0.1:$port/validate" > "$work/h2load.txt"
  callgrind_control -d "$pid" >/dev/null 2>&1
  callgrind_control -i off "$pid" >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  grep -q "$n succeeded" "$work/h2load.txt" || { echo "$name $proto: not every request succeeded" >&2; cat "$work/h2load.txt" >&2; }
  local dump="$out.1" # the dump of `callgrind_control -d`
  callgrind_annotate --threshold=100 "$dump" > "$work/annotated" 2>/dev/null
  local total
  total=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' "$work/annotated")
  printf '%-10s %s %12.0f instructions/request\n' "$name" "$proto" "$(awk -v t="$total" -v n="$n" 'BEGIN { print t / n }')"
  awk -v top="$top" '/file:function/ {on = 1; next} on && NF && shown < top {print "    " $0; shown++}' "$work/annotated" |
    sed -E 's/ \[[^]]*\]$//' | cut -c1-150 > "$work/top.$name.$proto"
}

export MESHGUARD_LOG=warn

for proto in h1 h2; do
  measure floor "$proto" target/floor/release/floor "$work/certs/tls.crt" "$work/certs/tls.key"
  if [ -n "${OLD_BIN:-}" ]; then
    measure old "$proto" "$OLD_BIN" serve --metrics-listen 127.0.0.1:0 --namespaces "$work/namespaces.yaml" \
      --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" --listen
  fi
  measure meshguard "$proto" "$bin" serve --metrics-listen 127.0.0.1:0 --namespaces "$work/namespaces.yaml" \
    --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" --listen
done
echo
for f in "$work"/top.*; do
  echo "top of the profile (self instructions), ${f#*/top.}:"
  cat "$f"
done

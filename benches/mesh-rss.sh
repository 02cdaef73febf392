#!/usr/bin/env bash
# Peak RSS of `meshguard serve` holding the mesh index of a generated mesh
# (10,000 workloads, 10,000 Services, 2,000 Istio objects) served by a fake
# API (benches/fake-mesh-api.py), once the index has synced; the posture
# gauges are scraped once to include their cost. Goal: <= 100 MiB.
# Usage: benches/mesh-rss.sh   (MESHGUARD_BIN=path to compare another build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MESHGUARD_BIN:-target/release/meshguard}
[ -x "$bin" ] || cargo build --release --locked
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 benches/fake-mesh-api.py "$port" > "$work/api.log" &
until grep -q ready "$work/api.log"; do sleep 0.2; done
cat > "$work/kubeconfig" <<KUBE
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$port"}}]
users: [{name: u, user: {}}]
contexts: [{name: fake, context: {cluster: fake, user: u}}]
current-context: fake
KUBE
KUBECONFIG="$work/kubeconfig" "$bin" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --ca-out "$work/ca.pem" 2> "$work/serve.log" &
pid=$!
started=$(date +%s.%N)
until grep -q "mesh index synced" "$work/serve.log"; do
  kill -0 $pid || { cat "$work/serve.log"; exit 1; }
  sleep 0.2
done
synced=$(date +%s.%N)
metrics=$(grep -o 'metrics listening.*addr=[0-9.:]*' "$work/serve.log" | grep -o '[0-9.]*:[0-9]*$')
workloads=$(curl -s "http://$metrics/metrics" | awk '/^meshguard_mesh_workloads\{/ {s += $2} END {print s}')
echo "index synced in $(echo "$synced - $started" | bc) s; posture gauges count $workloads workloads"
grep -E 'VmHWM|VmRSS' /proc/$pid/status

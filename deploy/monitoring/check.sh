#!/usr/bin/env bash
# Checks the monitoring assets: rule syntax, rule unit tests, PrometheusRule
# in sync with alerts.yaml, dashboard JSON, kustomize build.
# Needs promtool (Debian/Ubuntu: apt-get install prometheus) and python3;
# kubectl is optional.
set -euo pipefail
cd "$(dirname "$0")"

promtool check rules alerts.yaml
promtool test rules alerts.test.yaml
python3 gen-prometheusrule.py --check
python3 -m json.tool grafana-dashboard.json >/dev/null && echo "grafana-dashboard.json: valid JSON"
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize . >/dev/null && echo "kustomization.yaml: renders"
else
  echo "kubectl not found: kustomize build skipped"
fi

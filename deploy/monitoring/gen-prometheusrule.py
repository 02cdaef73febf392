#!/usr/bin/env python3
"""Generate prometheusrule.yaml (Prometheus Operator) from alerts.yaml.

alerts.yaml is the source of truth: promtool checks and unit-tests it, and
this script wraps its `groups:` verbatim (comments and formatting kept) as
the `spec:` of a PrometheusRule, so the two can never say different things.

    python3 gen-prometheusrule.py           # rewrite prometheusrule.yaml
    python3 gen-prometheusrule.py --check   # exit 1 if it is out of date

--check compares the text, and, when PyYAML is installed, also that
spec.groups parses to exactly the groups of alerts.yaml.
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "alerts.yaml"
TARGET = HERE / "prometheusrule.yaml"

HEADER = """\
# GENERATED from alerts.yaml by gen-prometheusrule.py - do not edit by hand.
# Edit alerts.yaml, then run: python3 gen-prometheusrule.py
# spec.groups is exactly the groups of alerts.yaml; a check enforces it:
#   python3 gen-prometheusrule.py --check   (also run by check.sh)
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: meshguard
  namespace: meshguard-system
  labels:
    app.kubernetes.io/name: meshguard
    app.kubernetes.io/component: monitoring
spec:
"""


def render() -> str:
    lines = SOURCE.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    except StopIteration:
        sys.exit(f"{SOURCE.name}: no top-level 'groups:' line")
    body = ["  " + line if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def same_groups() -> bool:
    try:
        import yaml
    except ImportError:
        print("note: PyYAML not installed, compared text only", file=sys.stderr)
        return True
    alerts = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    rule = yaml.safe_load(TARGET.read_text(encoding="utf-8"))
    return alerts["groups"] == rule["spec"]["groups"]


def main() -> int:
    text = render()
    if sys.argv[1:] == ["--check"]:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text or not same_groups():
            print(
                f"{TARGET.name} is out of date with {SOURCE.name}: "
                "run python3 gen-prometheusrule.py",
                file=sys.stderr,
            )
            return 1
        print(f"{TARGET.name}: spec.groups equal to {SOURCE.name}")
        return 0
    if sys.argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

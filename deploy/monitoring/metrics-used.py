#!/usr/bin/env python3
"""List every meshguard metric that alerts.yaml and grafana-dashboard.json use.

    python3 metrics-used.py                 # one name per line
    python3 metrics-used.py --against FILE  # FILE: a scrape of /metrics
                                            # ("-" for stdin); exit 1 if a
                                            # used metric is not exposed

Example against a running server:
    curl -s localhost:8080/metrics | python3 metrics-used.py --against -

Names are sample names as exposed (counters with _total, the histogram's
_bucket series). Counters and gauges with labels only appear in /metrics once a sample
exists, so initialise every label value the alerts select on (at least
result="failure" of the reload counters) to 0 at start-up.
"""

import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
NAME = re.compile(r"\bmeshguard_[a-z0-9_]+\b")


def used() -> set:
    names = set()
    text = (HERE / "alerts.yaml").read_text(encoding="utf-8")
    for match in re.finditer(r"^\s+expr: (\|-\n(?:[ ]{10,}.*\n)+|.*)$", text, re.M):
        names.update(NAME.findall(match.group(1)))
    dashboard = json.loads((HERE / "grafana-dashboard.json").read_text(encoding="utf-8"))

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    names.update(NAME.findall(value))
                else:
                    walk(value)
                if key == "query" and isinstance(value, str):
                    names.update(NAME.findall(value))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    return names


def exposed(text: str) -> set:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def main() -> int:
    names = sorted(used())
    if sys.argv[1:2] != ["--against"]:
        print("\n".join(names))
        return 0
    source = sys.argv[2] if len(sys.argv) > 2 else "-"
    text = sys.stdin.read() if source == "-" else pathlib.Path(source).read_text(encoding="utf-8")
    have = exposed(text)
    missing = [n for n in names if n not in have]
    for name in missing:
        print(f"missing from /metrics: {name}", file=sys.stderr)
    print(f"{len(names) - len(missing)}/{len(names)} used metrics exposed")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

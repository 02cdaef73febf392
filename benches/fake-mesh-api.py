#!/usr/bin/env python3
"""A fake Kubernetes API serving a generated mesh, for benches/mesh-rss.sh.

100 namespaces, each with 100 Deployments and 100 Services and 20 Istio
objects (10,000 workloads, 10,000 Services, 2,000 Istio objects). Lists
answer in pages (`limit`, `continue`); watches stay open and silent. Everything else is 404.
Usage: fake-mesh-api.py PORT
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMESPACES, PER_NAMESPACE = 100, 100


def meta(name, ns):
    return {"name": name, "namespace": ns, "resourceVersion": "1",
            "creationTimestamp": "2026-01-01T00:00:00Z", "uid": f"{ns}-{name}"}


def items():
    out = {k: [] for k in ("namespaces", "deployments", "services", "peerauthentications",
                           "authorizationpolicies", "destinationrules", "virtualservices")}
    for n in range(NAMESPACES):
        ns = f"team-{n}"
        out["namespaces"].append({"metadata": {"name": ns, "resourceVersion": "1",
                                               "labels": {"istio-injection": "enabled"}}})
        for i in range(PER_NAMESPACE):
            app = f"svc-{i}"
            out["deployments"].append({"metadata": meta(app, ns), "spec": {
                "replicas": 2, "selector": {"matchLabels": {"app": app}},
                "template": {"metadata": {"labels": {"app": app, "version": "v1",
                                                     "sidecar.istio.io/inject": "true"}},
                             "spec": {"serviceAccountName": app, "containers": [
                                 {"name": "app", "image": f"registry.example.com/{ns}/{app}:1.0",
                                  "ports": [{"containerPort": 8080, "name": "http"}],
                                  "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}})
            out["services"].append({"metadata": meta(app, ns), "spec": {
                "selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        out["peerauthentications"].append({"metadata": meta("default", ns),
                                           "spec": {"mtls": {"mode": "STRICT"}}})
        for i in range(5):
            app = f"svc-{i}"
            out["authorizationpolicies"].append({"metadata": meta(app, ns), "spec": {
                "selector": {"matchLabels": {"app": app}},
                "rules": [{"from": [{"source": {"principals": [f"cluster.local/ns/{ns}/sa/svc-{i + 1}"]}}]}]}})
            out["destinationrules"].append({"metadata": meta(app, ns), "spec": {
                "host": app, "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}})
            out["virtualservices"].append({"metadata": meta(app, ns), "spec": {
                "hosts": [app], "http": [{"timeout": "5s", "route": [{"destination": {"host": app, "subset": "v1"}}]}]}})
        for i in range(9):  # pad to 20 Istio objects per namespace
            out["destinationrules"].append({"metadata": meta(f"extra-{i}", ns), "spec": {"host": f"svc-{i}"}})
    return out


PATHS = {
    "/api/v1/namespaces": ("namespaces", "v1", "Namespace"),
    "/apis/apps/v1/deployments": ("deployments", "apps/v1", "Deployment"),
    "/api/v1/services": ("services", "v1", "Service"),
    "/apis/security.istio.io/v1/peerauthentications": ("peerauthentications", "security.istio.io/v1", "PeerAuthentication"),
    "/apis/security.istio.io/v1/authorizationpolicies": ("authorizationpolicies", "security.istio.io/v1", "AuthorizationPolicy"),
    "/apis/networking.istio.io/v1/destinationrules": ("destinationrules", "networking.istio.io/v1", "DestinationRule"),
    "/apis/networking.istio.io/v1/virtualservices": ("virtualservices", "networking.istio.io/v1", "VirtualService"),
}
DATA = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/version":
            return self.reply(200, json.dumps({"major": "1", "minor": "30", "gitVersion": "v1.30.0"}))
        if path in PATHS and "watch=true" in query:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            time.sleep(3600)
            return
        if path in PATHS:
            # Pages as kube-apiserver gives them: `limit`, then `continue`.
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            key, api_version, kind = PATHS[path]
            start = int(params.get("continue", "0") or 0)
            limit = int(params.get("limit", "0") or 0) or len(DATA[key])
            page = DATA[key][start:start + limit]
            rest = start + limit < len(DATA[key])
            meta = {"resourceVersion": "1"}
            if rest:
                meta["continue"] = str(start + limit)
            return self.reply(200, json.dumps({"kind": f"{kind}List", "apiVersion": api_version,
                                               "metadata": meta, "items": page}))
        self.reply(404, json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                    "reason": "NotFound", "code": 404, "message": "not found"}))


def main():
    DATA.update(items())
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

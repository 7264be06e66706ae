#!/usr/bin/env python3
"""Record the request bodies real kubectl sends, for protobuf and patch fixtures.

Serves just enough legacy discovery on 127.0.0.1 for `kubectl create ...` to find its
resources, writes every POST, PATCH and DELETE body to OUTDIR/<n>-<resource>.bin (with the path and
Content-Type in a .txt beside it), and answers with a minimal object. GETs of the objects
in OBJECTS (a JSON file mapping URL paths to objects, optional third argument) return them,
so `kubectl set image`, `rollout restart`, `cordon`, `taint` and `apply` can be recorded
too. Stdlib only.

    python3 tools/capture-kubectl-bodies.py OUTDIR PORT &
    kubectl --server http://127.0.0.1:PORT --validate=false create configmap c --from-literal=a=b
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUT, PORT = sys.argv[1], int(sys.argv[2])
OBJECTS = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else {}

CORE = [
    ("configmaps", "ConfigMap", True),
    ("secrets", "Secret", True),
    ("namespaces", "Namespace", False),
    ("services", "Service", True),
    ("serviceaccounts", "ServiceAccount", True),
    ("pods", "Pod", True),
    ("serviceaccounts/token", "TokenRequest", True),
    ("nodes", "Node", False),
]
GROUPS = {
    "apps/v1": [("deployments", "Deployment", True)],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "rbac.authorization.k8s.io/v1": [("roles", "Role", True), ("clusterroles", "ClusterRole", False)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "authorization.k8s.io/v1": [("selfsubjectaccessreviews", "SelfSubjectAccessReview", False)],
}


def resource_list(gv, resources):
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": [
            {
                **({"group": "authentication.k8s.io", "version": "v1"} if kind == "TokenRequest" else {}),
                "name": name,
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for name, kind, namespaced in resources
        ],
    }


class Handler(BaseHTTPRequestHandler):
    count = 0

    def reply(self, code, body, ctype="application/json"):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in OBJECTS:
            return self.reply(200, OBJECTS[path])
        if path == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = []
            for gv in GROUPS:
                g, v = gv.split("/")
                ver = {"groupVersion": gv, "version": v}
                groups.append({"name": g, "versions": [ver], "preferredVersion": ver})
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if path == "/api/v1":
            return self.reply(200, resource_list("v1", CORE))
        for gv, res in GROUPS.items():
            if path == f"/apis/{gv}":
                return self.reply(200, resource_list(gv, res))
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"})

    def do_PATCH(self):
        self.do_POST()

    def do_DELETE(self):
        self.do_POST()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        Handler.count += 1
        resource = self.path.split("?")[0].rstrip("/").split("/")[-1]
        with open(f"{OUT}/{Handler.count:02d}-{resource}.bin", "wb") as f:
            f.write(body)
        with open(f"{OUT}/{Handler.count:02d}-{resource}.txt", "w") as f:
            f.write(f"{self.path}\n{self.headers.get('Content-Type')}\n")
        path = self.path.split("?")[0]
        if path in OBJECTS:
            return self.reply(200, OBJECTS[path])
        self.reply(201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

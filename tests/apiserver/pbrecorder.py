"""A tiny HTTP listener on 127.0.0.1 that kubectl talks to, recording the bodies it sends.

It answers just enough for kubectl's create/run/scale commands: the legacy discovery documents for the kinds
kubesvc serves (or will), a Deployment and its Scale for ``kubectl scale``, and 201 with the decoded object for
writes. Each write is recorded (method, path, Content-Type, body).

``python -m tests.apiserver.pbrecorder`` re-captures tests/apiserver/data/: for each case in ``CASES`` the
body kubectl sends (``<name>.pb``) and what ``--dry-run=client -o json`` prints for the same command
(``<name>.json``), plus ``cases.json`` (the commands, paths and content types).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"

# name -> kubectl arguments (namespace "default" from the empty kubeconfig)
CASES: dict[str, list[str]] = {
    "namespace": ["create", "namespace", "x"],
    "service-clusterip": ["create", "service", "clusterip", "s", "--tcp=80", "--tcp=8443:443"],
    "service-nodeport": ["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"],
    "service-loadbalancer": ["create", "service", "loadbalancer", "lb", "--tcp=5678:8080"],
    "service-externalname": ["create", "service", "externalname", "en", "--external-name=example.com"],
    "service-headless": ["create", "service", "clusterip", "hl", "--clusterip=None"],
    "deployment": ["create", "deployment", "d", "--image=nginx", "--replicas=2", "--port=80"],
    "deployment-zero": ["create", "deployment", "z", "--image=nginx", "--replicas=0", "--", "sh", "-c", "sleep 1"],
    "configmap": ["create", "configmap", "cm", "--from-literal=a=b", "--from-literal=empty="],
    "secret-generic": ["create", "secret", "generic", "sec", "--from-literal=k=v", "--from-literal=bin=\u00e9\u00e8",
                       "--type=Opaque"],
    "secret-docker-registry": ["create", "secret", "docker-registry", "reg", "--docker-username=u",
                               "--docker-password=p", "--docker-server=reg.example.com"],
    "ingress": ["create", "ingress", "ing", "--class=nginx", "--rule=foo.com/bar=svc1:8080,tls=my-cert",
                "--rule=bar.com/*=svc2:http", "--default-backend=defsvc:80", "--annotation=a=b"],
    "quota": ["create", "quota", "q", "--hard=cpu=1,memory=1G,pods=2,services=3", "--scopes=BestEffort"],
    "pdb": ["create", "pdb", "p", "--selector=app=x", "--min-available=50%"],
    "pdb-max": ["create", "pdb", "pm", "--selector=app=y", "--max-unavailable=1"],
    "priorityclass": ["create", "priorityclass", "pc", "--value=1000", "--description=high",
                      "--preemption-policy=Never", "--global-default=false"],
    "serviceaccount": ["create", "serviceaccount", "sa"],
    "role": ["create", "role", "r", "--verb=get,list", "--resource=pods,deployments.apps",
             "--resource-name=a"],
    "rolebinding": ["create", "rolebinding", "rb", "--role=r", "--user=u", "--serviceaccount=default:sa",
                    "--group=g"],
    "clusterrole": ["create", "clusterrole", "cr", "--verb=get", "--non-resource-url=/logs/*"],
    "clusterrole-aggregated": ["create", "clusterrole", "ca", "--aggregation-rule=rbac.example.com/aggregate=true"],
    "clusterrolebinding": ["create", "clusterrolebinding", "crb", "--clusterrole=cr", "--user=u"],
    "job": ["create", "job", "j", "--image=busybox", "--", "date"],
    "cronjob": ["create", "cronjob", "cj", "--image=busybox", "--schedule=*/1 * * * *", "--restart=OnFailure",
                "--", "date"],
    "run": ["run", "p", "--image=nginx", "--port=80", "--labels=a=b", "--env=X=1", "--restart=Never",
            "--image-pull-policy=IfNotPresent", "--", "nginx", "-g", "daemon off;"],
    "scale": ["scale", "deployment", "d", "--replicas=3", "--current-replicas=2"],
}
# kubectl scale has no --dry-run=client -o json of the Scale it sends: its JSON is written out by hand here.
SCALE_JSON = {"kind": "Scale", "apiVersion": "autoscaling/v1",
              "metadata": {"name": "d", "namespace": "default", "uid": "11111111-2222-3333-4444-555555555555",
                           "resourceVersion": "7", "creationTimestamp": "2024-01-02T03:04:05Z"},
              "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=d"}}

_RESOURCES: dict[str, list[tuple[str, str, bool, list[str]]]] = {
    # groupVersion -> (plural, Kind, namespaced, short names)
    "v1": [("pods", "Pod", True, ["po"]), ("services", "Service", True, ["svc"]),
           ("namespaces", "Namespace", False, ["ns"]), ("configmaps", "ConfigMap", True, ["cm"]),
           ("secrets", "Secret", True, []), ("serviceaccounts", "ServiceAccount", True, ["sa"]),
           ("resourcequotas", "ResourceQuota", True, ["quota"]), ("endpoints", "Endpoints", True, ["ep"])],
    "apps/v1": [("deployments", "Deployment", True, ["deploy"]), ("replicasets", "ReplicaSet", True, ["rs"])],
    "networking.k8s.io/v1": [("ingresses", "Ingress", True, ["ing"])],
    "batch/v1": [("jobs", "Job", True, []), ("cronjobs", "CronJob", True, ["cj"])],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"])],
    "scheduling.k8s.io/v1": [("priorityclasses", "PriorityClass", False, ["pc"])],
    "rbac.authorization.k8s.io/v1": [("roles", "Role", True, []), ("rolebindings", "RoleBinding", True, []),
                                     ("clusterroles", "ClusterRole", False, []),
                                     ("clusterrolebindings", "ClusterRoleBinding", False, [])],
    "autoscaling/v1": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ["hpa"])],
}
_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _resource_list(gv: str) -> dict[str, Any]:
    res: list[dict[str, Any]] = []
    for plural, kind, namespaced, short in _RESOURCES[gv]:
        res.append({"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                    "verbs": _VERBS, "shortNames": short})
        if kind == "Deployment":
            res.append({"name": "deployments/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
                        "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}


_DEPLOYMENT = {"kind": "Deployment", "apiVersion": "apps/v1",
               "metadata": {"name": "d", "namespace": "default", "uid": "11111111-2222-3333-4444-555555555555",
                            "resourceVersion": "7", "creationTimestamp": "2024-01-02T03:04:05Z"},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                        "template": {"metadata": {"labels": {"app": "d"}},
                                     "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
               "status": {"replicas": 2}}


@dataclass
class Recorded:
    method: str
    path: str
    content_type: str
    body: bytes


@dataclass
class Recorder:
    url: str = ""
    writes: list[Recorded] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> Recorder:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, code: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0]
                if path == "/api":
                    return self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
                if path == "/apis":
                    groups = []
                    for gv in _RESOURCES:
                        if "/" in gv:
                            g, v = gv.split("/")
                            ver = {"groupVersion": gv, "version": v}
                            groups.append({"name": g, "versions": [ver], "preferredVersion": ver})
                    return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
                gv = path.removeprefix("/api/").removeprefix("/apis/")
                if gv in _RESOURCES:
                    return self._send(200, _resource_list(gv))
                if path == "/version":
                    return self._send(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.4"})
                if path == "/apis/apps/v1/namespaces/default/deployments/d":
                    return self._send(200, _DEPLOYMENT)
                if path == "/apis/apps/v1/namespaces/default/deployments/d/scale":
                    scale = json.loads(json.dumps(SCALE_JSON))
                    scale["spec"]["replicas"] = 2
                    return self._send(200, scale)
                self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                 "code": 404, "message": "not found"})

            def _write(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                ctype = self.headers.get("Content-Type", "")
                rec.writes.append(Recorded(self.command, self.path, ctype, body))
                obj: Any = {}
                try:
                    if "protobuf" in ctype:
                        from kubesvc.apiserver import protobuf

                        obj = protobuf.decode(body)
                    else:
                        obj = json.loads(body or b"{}")
                except ValueError:
                    pass
                if isinstance(obj, dict):
                    obj.setdefault("metadata", {}).update(uid="u", resourceVersion="1")
                self._send(201 if self.command == "POST" else 200, obj)

            do_POST = do_PUT = do_PATCH = _write  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def kubectl(self, kubectl: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        kubeconfig = home / "kubeconfig"
        if not kubeconfig.exists():
            kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env.update(HOME=str(home), KUBECONFIG=str(kubeconfig))
        return subprocess.run([kubectl, f"--server={self.url}", f"--cache-dir={home / 'cache'}", *args],
                              capture_output=True, text=True, env=env, timeout=60)


def capture(kubectl: str, name: str, home: Path) -> tuple[Recorded, dict[str, Any] | None]:
    """The write kubectl sends for CASES[name], and its --dry-run=client -o json output (None for scale)."""
    args = CASES[name]
    with Recorder() as rec:
        rec.kubectl(kubectl, home, *args)
        writes = [w for w in rec.writes if w.method in ("POST", "PUT")]
        assert writes, f"kubectl {' '.join(args)} sent no POST/PUT ({[w.method for w in rec.writes]})"
        dry = None
        if name != "scale":
            # flags after the `--` of a command belong to the container: -o/--dry-run go before it
            cut = args.index("--") if "--" in args else len(args)
            p = rec.kubectl(kubectl, home, *args[:cut], "--dry-run=client", "-o", "json", *args[cut:])
            assert p.returncode == 0, p.stderr
            dry = json.loads(p.stdout)
    return writes[-1], dry


def main() -> int:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("kubectl is not installed", file=sys.stderr)
        return 1
    DATA.mkdir(exist_ok=True)
    index: dict[str, Any] = {}
    version = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            w, dry = capture(kubectl, name, Path(tmp))
            # kubectl 1.32 sends protobuf for its create generators, JSON for run and scale
            (DATA / (f"{name}.pb" if "protobuf" in w.content_type else f"{name}.sent.json")).write_bytes(w.body)
            (DATA / f"{name}.json").write_text(json.dumps(dry if dry is not None else SCALE_JSON, indent=2) + "\n")
            index[name] = {"kubectl": CASES[name], "method": w.method, "path": w.path.split("?")[0],
                           "contentType": w.content_type}
            print(name, w.method, w.path, w.content_type, len(w.body))
    (DATA / "cases.json").write_text(json.dumps({"kubectl": json.loads(version or "{}").get("clientVersion", {}).get("gitVersion"),
                                                 "cases": index}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

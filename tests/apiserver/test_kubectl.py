"""The real kubectl against `kubesvc apiserver`: every get/describe prints what `kubesvc` prints for the
same store (AGE masked), writes behave like the kubesvc CLI's, errors carry the same messages."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest
import yaml

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import KUBECTL, Api, mask, needs_kubectl
from tests.support.procs import wait_for

pytestmark = needs_kubectl

SVC = """\
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels: {{app: {app}}}
spec:
  selector: {{app: {app}}}
  ports:
  - name: http
    port: {port}
    targetPort: 8080
"""


def svc(name: str, app: str = "web", port: int = 80) -> str:
    return SVC.format(name=name, app=app, port=port)


def same(api: Api, *args: str) -> str:
    """Run `args` through kubectl and kubesvc; both must succeed and print the same text (AGE masked)."""
    k = api.kubectl(*args)
    s = api.cli(*args)
    assert (k.code, s.code) == (0, 0), (k, s)
    assert mask(k.out) == mask(s.out), f"kubectl:\n{k.out}\nkubesvc:\n{s.out}"
    assert k.err == s.err
    return k.out


@pytest.fixture
def services(api: Api, ns: str) -> str:
    """Three Services of different types (created through the kubesvc CLI) in a fresh namespace."""
    docs = [svc("web"), svc("api", app="api", port=8443),
            svc("edge", app="edge").replace("spec:\n", "spec:\n  type: NodePort\n"),
            svc("lb", app="lb").replace("spec:\n", "spec:\n  type: LoadBalancer\n"),
            svc("headless", app="web").replace("spec:\n", "spec:\n  clusterIP: None\n")]
    r = api.cli("create", "-n", ns, "-f", api.write(f"{ns}-svcs.yaml", "---\n".join(docs)))
    assert r.code == 0, r.err
    return ns


def test_get_svc_plain_wide_all_namespaces_and_selector(api: Api, services: str) -> None:
    out = same(api, "get", "svc", "-n", services)
    assert out.splitlines()[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert len(out.splitlines()) == 6
    assert "SELECTOR" in same(api, "get", "svc", "-n", services, "-o", "wide")
    assert services in same(api, "get", "svc", "-A")
    assert same(api, "get", "svc", "-n", services, "-l", "app=web", "-o", "name").split() == [
        "service/headless", "service/web"]
    same(api, "get", "svc", "-n", services, "-l", "app in (api,edge)")
    same(api, "get", "svc", "web", "edge", "-n", services)
    same(api, "get", "ns")


def test_get_svc_yaml_and_json_are_the_same_objects(api: Api, services: str) -> None:
    for fmt, load in (("yaml", yaml.safe_load), ("json", json.loads)):
        k, s = api.kubectl("get", "svc", "web", "-n", services, "-o", fmt), api.cli("get", "svc", "web", "-n", services, "-o", fmt)
        assert (k.code, s.code) == (0, 0)
        assert load(k.out) == load(s.out)
        assert load(k.out)["metadata"]["namespace"] == services


def test_get_svc_yaml_text_is_identical(api: Api, services: str) -> None:
    same(api, "get", "svc", "web", "-n", services, "-o", "yaml")
    same(api, "get", "svc", "web", "-n", services, "-o", "json")


def test_get_missing_service_same_error(api: Api, ns: str) -> None:
    k, s = api.kubectl("get", "svc", "nope", "-n", ns), api.cli("get", "svc", "nope", "-n", ns)
    assert (k.code, s.code) == (1, 1)
    assert k.err == s.err == 'Error from server (NotFound): services "nope" not found\n'
    k, s = api.kubectl("get", "svc", "-n", ns), api.cli("get", "svc", "-n", ns)
    assert k.err == s.err == f"No resources found in {ns} namespace.\n"


def test_get_svc_watch_sees_a_create_from_the_cli(api: Api, services: str) -> None:
    assert KUBECTL is not None
    p = subprocess.Popen([KUBECTL, f"--cache-dir={api.home / 'cache'}", "get", "svc", "-w", "-n", services],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=api.env())
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(p.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    try:
        wait_for(lambda: len(lines) >= 6, timeout=15, what="the initial listing")
        r = api.cli("create", "-n", services, "-f", api.write("late.yaml", svc("late", app="late")))
        assert r.code == 0, r.err
        row = wait_for(lambda: next((ln for ln in lines if ln.startswith("late ")), None), timeout=15,
                       what="the watched create")
        listed = api.cli("get", "svc", "late", "-n", services, "--no-headers").out
        assert mask(row) == mask(listed)
        api.cli("delete", "svc", "late", "-n", services)
        wait_for(lambda: sum(ln.startswith("late ") for ln in lines) >= 2, timeout=15, what="the watched delete")
    finally:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def test_create_valid_invalid_and_unknown_field(api: Api, ns: str) -> None:
    good = api.write("good.yaml", svc("good"))
    assert api.kubectl("create", "-n", ns, "-f", good).out == "service/good created\n"
    same(api, "get", "svc", "good", "-n", ns, "-o", "wide")
    # the same Service again: AlreadyExists through both
    k, s = api.kubectl("create", "-n", ns, "-f", good), api.cli("create", "-n", ns, "-f", good)
    assert k.code == s.code == 1 and k.err == s.err
    bad = api.write("bad.yaml", svc("bad", port=0).replace("targetPort: 8080", "targetPort: 0"))
    before = api.revision()
    k, s = api.kubectl("create", "-n", ns, "-f", bad), api.cli("create", "-n", ns, "-f", bad)
    assert k.code == s.code == 1
    assert k.err == s.err and k.err.startswith('The Service "bad" is invalid: \n* spec.ports[0].port: Invalid value: 0')
    unknown = api.write("unknown.yaml", svc("unk").replace("spec:\n", "spec:\n  bogus: 1\n"))
    k, s = api.kubectl("create", "-n", ns, "-f", unknown), api.cli("create", "-n", ns, "-f", unknown)
    assert k.code == s.code == 1
    assert k.err == s.err == ('Error from server (BadRequest): error when creating "unknown.yaml": Service in version '
                              '"v1" cannot be handled as a Service: strict decoding error: unknown field "spec.bogus"\n')
    assert api.revision() == before  # nothing stored by the refused creates
    k, s = (api.kubectl("create", "-n", ns, "-f", unknown, "--validate=warn", "--dry-run=server"),
            api.cli("create", "-n", ns, "-f", unknown, "--validate=warn", "--dry-run=server"))
    assert k.err == s.err == 'Warning: unknown field "spec.bogus"\n'
    assert k.out == s.out == "service/unk created (server dry run)\n"
    assert api.revision() == before


def test_apply_twice_then_changed(api: Api, ns: str) -> None:
    path = api.write("applied.yaml", svc("applied"))
    assert api.kubectl("apply", "-n", ns, "-f", path).out == "service/applied created\n"
    assert api.kubectl("apply", "-n", ns, "-f", path).out == "service/applied unchanged\n"
    assert api.cli("apply", "-n", ns, "-f", path).out == "service/applied unchanged\n"
    api.write("applied.yaml", svc("applied", port=81).replace("  selector: {app: web}\n", "  selector: {app: web2}\n"))
    assert api.kubectl("apply", "-n", ns, "-f", path).out == "service/applied configured\n"
    out = same(api, "get", "svc", "applied", "-n", ns, "-o", "wide")
    assert "81/TCP" in out and "app=web2" in out
    assert api.cli("apply", "-n", ns, "-f", path).out == "service/applied unchanged\n"
    same(api, "describe", "svc", "applied", "-n", ns)


def test_apply_server_side(api: Api, ns: str) -> None:
    path = api.write("ssa.yaml", svc("ssa"))
    r = api.kubectl("apply", "--server-side", "-n", ns, "-f", path)
    assert (r.code, r.out) == (0, "service/ssa serverside-applied\n"), r.err
    api.write("ssa.yaml", svc("ssa", port=9090))
    r = api.kubectl("apply", "--server-side", "-n", ns, "-f", path)
    assert (r.code, r.out) == (0, "service/ssa serverside-applied\n"), r.err
    assert "9090/TCP" in same(api, "get", "svc", "ssa", "-n", ns)
    # server-side apply over a client-side applied object (the kubectl-last-applied follow-up patch)
    csa = api.write("csa.yaml", svc("csa"))
    assert api.kubectl("apply", "-n", ns, "-f", csa).code == 0
    r = api.kubectl("apply", "--server-side", "-n", ns, "-f", csa)
    assert (r.code, r.out) == (0, "service/csa serverside-applied\n"), r.err


def test_delete(api: Api, services: str) -> None:
    r = api.kubectl("delete", "svc", "api", "-n", services)
    assert (r.code, r.out) == (0, 'service "api" deleted\n'), r.err
    assert api.cli("get", "svc", "api", "-n", services).err == 'Error from server (NotFound): services "api" not found\n'
    k, s = api.kubectl("delete", "svc", "api", "-n", services), api.cli("delete", "svc", "api", "-n", services)
    assert k.code == s.code == 1 and k.err == s.err
    same(api, "get", "svc", "-n", services)


POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: web}}}}
spec: {{containers: [{{name: c, image: nginx, ports: [{{containerPort: 8080}}]}}]}}
status: {{podIP: {ip}, phase: Running}}
"""


def test_describe_svc_and_get_ep(api: Api, services: str) -> None:
    pods = "---\n".join(POD.format(name=f"web-{i}", ip=f"127.0.0.{10 + i}") for i in range(4))
    r = api.cli("create", "-n", services, "-f", api.write("pods.yaml", pods))
    assert r.code == 0, r.err
    out = same(api, "describe", "svc", "web", "-n", services)
    assert "Endpoints:" in out and "127.0.0.10:8080" in out and "+ 1 more..." in out
    same(api, "describe", "svc", "lb", "-n", services)
    same(api, "describe", "svc", "edge", "-n", services)
    assert "127.0.0.10:8080" in same(api, "get", "ep", "-n", services)
    same(api, "get", "ep", "web", "-n", services)
    same(api, "get", "pods", "-n", services, "-o", "wide")


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, labels: {app: shop}}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec: {containers: [{name: c, image: nginx, ports: [{containerPort: 8080}]}]}
"""


def test_expose_deployment(api: Api, ns: str) -> None:
    r = api.cli("create", "-n", ns, "-f", api.write("dep.yaml", DEPLOYMENT))
    assert r.code == 0, r.err
    same(api, "get", "deploy", "-n", ns, "-o", "wide")
    k = api.kubectl("expose", "deployment", "shop", "--port", "80", "--type", "NodePort", "-n", ns)
    s = api.cli("expose", "deployment", "shop", "--port", "80", "--type", "NodePort", "--name", "shop2", "-n", ns)
    assert (k.code, k.out, s.out) == (0, "service/shop exposed\n", "service/shop2 exposed\n"), (k, s)
    a, b = (json.loads(api.cli("get", "svc", n, "-n", ns, "-o", "json").out) for n in ("shop", "shop2"))
    for obj in (a, b):
        for key in ("name", "uid", "resourceVersion", "creationTimestamp"):
            obj["metadata"].pop(key)
        for key in ("clusterIP", "clusterIPs"):
            obj["spec"].pop(key)
        obj["spec"]["ports"][0].pop("nodePort")
    assert a == b
    same(api, "get", "svc", "-n", ns, "-o", "wide")


INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site}
spec:
  ingressClassName: kubesvc
  tls: [{hosts: [a.example]}]
  rules:
  - host: a.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: b.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"""


def test_get_ing(api: Api, services: str) -> None:
    r = api.kubectl("create", "-n", services, "-f", api.write("ing.yaml", INGRESS))
    assert r.code == 0, r.err
    assert "a.example,b.example" in same(api, "get", "ing", "-n", services)
    same(api, "get", "ing", "-A")
    same(api, "describe", "ing", "site", "-n", services)

"""`kubesvc set image|env|selector` against the same objects as `kubectl set ...` through `kubesvc apiserver`:
same lines, same objects, same errors."""

from __future__ import annotations

import json

import pytest

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl


def _objects(api: Api, ns: str) -> str:
    for args in (["create", "deployment", "web", "--image=nginx", "--image=redis"],
                 ["create", "configmap", "cfg", "--from-literal=K1=v1", "--from-literal=k-2=v2"],
                 ["create", "secret", "generic", "sec", "--from-literal=S=x"],
                 ["create", "service", "clusterip", "web", "--tcp=80:80"]):
        r = api.cli(*args, "-n", ns)
        assert r.code == 0, r.err
    return ns


@pytest.fixture(scope="module")
def web_shared(api: Api) -> str:
    """For the dry runs, which change nothing: one namespace for the module."""
    assert api.cli("create", "namespace", "set-dry-runs").code == 0
    return _objects(api, "set-dry-runs")


@pytest.fixture
def web(api: Api, ns: str) -> str:
    return _objects(api, ns)


def same(api: Api, *args: str) -> str:
    k, s = api.kubectl(*args), api.cli(*args)
    assert (s.code, s.out, s.err) == (k.code, k.out, k.err.replace("kubectl", "kubesvc")), f"kubectl: {k}\nkubesvc: {s}"
    return s.out


@needs_kubectl
@pytest.mark.parametrize("args", [
    ["set", "image", "deploy/web", "nginx=nginx:1.25"],
    ["set", "image", "deployment", "web", "*=busybox", "-o", "yaml"],
    ["set", "image", "deploy/web", "nope=x"],
    ["set", "image", "deploy/web"],
    ["set", "image", "deploy", "web", "foo"],
    ["set", "image", "svc/web", "a=b"],
    ["set", "image", "pod/nope", "a=b"],
    ["set", "env", "deploy/web", "A=b", "C=d", "-o", "yaml"],
    ["set", "env", "deploy/web", "A=b", "-c", "redis"],
    ["set", "env", "deploy/web", "--from=configmap/cfg", "--list"],
    ["set", "env", "deploy/web", "--from=configmap/cfg", "--list", "--resolve"],
    ["set", "env", "deploy/web", "--from=secret/sec", "--prefix=P_", "-o", "json"],
    ["set", "env", "deploy/web", "bad name=1"],
    ["set", "env", "svc/web", "A=b"],
    ["set", "env", "deploy/web", "--list", "-c", "nope"],
    ["set", "selector", "svc/web", "app=web2"],
    ["set", "selector", "svc/web", "app=web,tier in (x)"],
    ["set", "selector", "svc/web"],
    ["set", "selector", "deploy/web", "app=x"],
    ["set", "selector", "svc/web", "a!=b"],
    ["set", "selector", "svc/web", "app=web", "--resource-version=1"],
    ["set", "selector", "svc/web", "app=web", "-o", "yaml"],
], ids=lambda a: " ".join(a[1:]))
def test_dry_run_same_as_kubectl(api: Api, web_shared: str, args: list[str]) -> None:
    web = web_shared
    if any(a.startswith("--from") for a in args):  # kubectl walks the ConfigMap's keys in Go's random map order
        k, s = api.kubectl(*args, "--dry-run=client", "-n", web), api.cli(*args, "--dry-run=client", "-n", web)
        assert (s.code, s.err) == (k.code, k.err)
        if "-o" in args:
            assert json.loads(s.out) == json.loads(k.out) or _env_sorted(json.loads(s.out)) == _env_sorted(json.loads(k.out))
        else:
            assert sorted(s.out.splitlines()) == sorted(k.out.splitlines())
        return
    same(api, *args, "--dry-run=client", "-n", web)


def _env_sorted(obj: dict) -> dict:
    for c in obj["spec"]["template"]["spec"]["containers"]:
        c["env"] = sorted(c.get("env") or [], key=lambda e: e["name"])
    return obj


@needs_kubectl
def test_changes_same_as_kubectl(api: Api, web: str) -> None:
    ns = ["-n", web]
    assert api.cli("set", "image", "deploy/web", "nginx=nginx:1.25", *ns).out == "deployment.apps/web image updated\n"
    same(api, "set", "image", "deploy/web", "nginx=nginx:1.25", *ns)  # nothing changes: nothing printed
    assert api.cli("set", "env", "deploy/web", "A=b", "C=d", "-c", "nginx", *ns).out == "deployment.apps/web env updated\n"
    assert same(api, "set", "env", "deploy/web", "--list", *ns) == "# Deployment web, container nginx\nA=b\nC=d\n# Deployment web, container redis\n"
    same(api, "set", "env", "deploy/web", "A=x", "--overwrite=false", *ns)
    assert api.cli("set", "env", "deploy/web", "C-", *ns).out == "deployment.apps/web env updated\n"
    same(api, "set", "env", "deploy/web", "Z-", *ns)
    r = api.cli("set", "env", "deploy/web", "--from=configmap/cfg", "-c", "redis", *ns)
    assert (r.out, r.err) == ("deployment.apps/web env updated\n", "Warning: key k-2 transferred to K_2\n")
    deploy = json.loads(api.kubectl("get", "deploy", "web", "-o", "json", *ns).out)
    nginx, redis = deploy["spec"]["template"]["spec"]["containers"]
    assert (nginx["image"], nginx["env"]) == ("nginx:1.25", [{"name": "A", "value": "b"}])
    assert redis["env"] == [{"name": "K1", "valueFrom": {"configMapKeyRef": {"key": "K1", "name": "cfg"}}},
                            {"name": "K_2", "valueFrom": {"configMapKeyRef": {"key": "k-2", "name": "cfg"}}}]
    assert api.cli("set", "selector", "svc/web", "app=web2", *ns).out == "service/web selector updated\n"
    assert api.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.selector}", *ns).out == '{"app":"web2"}'
    assert api.cli("set", "selector", "svc/web", "app=web2", *ns).out == "service/web selector updated\n"

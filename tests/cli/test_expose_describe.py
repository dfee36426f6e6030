"""expose from each stored kind (kubectl's generator itself is compared in tests/api/test_expose.py), describe end to end, init, version."""

from __future__ import annotations

import json

import pytest

KINDS = {
    "pod": ("examples/web.yaml", "pod", "web-1"),
    "rc": ("examples/rc.yaml", "rc", "echo"),
    "deployment": ("examples/deployment.yaml", "deployment", "api"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_expose_each_kind(cli, kind):
    path, word, name = KINDS[kind]
    assert cli("create", "-f", path).code == 0
    r = cli("expose", word, name, "--port=80", "--target-port=8080", "--name", f"{name}-svc")
    assert (r.code, r.out) == (0, f"service/{name}-svc exposed\n"), r
    svc = json.loads(cli("get", "svc", f"{name}-svc", "-o", "json").out)
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["clusterIP"].startswith("127.")


def test_expose_service_and_dry_run_yaml(cli):
    cli("create", "-f", "examples/deployment.yaml")
    r = cli("expose", "deployment", "api", "--dry-run=client", "-o", "yaml")
    assert r.code == 0
    assert r.out == (
        "apiVersion: v1\nkind: Service\nmetadata:\n  creationTimestamp: null\n  labels:\n    app: api\n  name: api\n"
        "spec:\n  ports:\n  - name: port-1\n    port: 8000\n    protocol: TCP\n    targetPort: 8000\n"
        "  - name: port-2\n    port: 9090\n    protocol: TCP\n    targetPort: 9090\n  selector:\n    app: api\n"
        "status:\n  loadBalancer: {}\n"
    )
    assert cli("expose", "deployment", "api").out == "service/api exposed\n"
    r = cli("expose", "svc", "api", "--name=api2", "--type=NodePort")
    assert r.out == "service/api2 exposed\n"
    r = cli("expose", "svc", "api")
    assert (r.code, r.err) == (1, 'Error from server (AlreadyExists): services "api" already exists\n')


def test_expose_errors(cli, manifest):
    cli("create", "-f", manifest("apiVersion: v1\nkind: Pod\nmetadata: {name: bare}\nspec:\n  containers: [{name: c, image: x}]\n"))
    r = cli("expose", "pod", "bare", "--port=80")
    assert (r.code, r.err) == (1, "error: couldn't retrieve selectors via --selector flag or introspection: the pod has no labels and cannot be exposed\n")
    cli("create", "service", "externalname", "ext", "--external-name=example.com")
    r = cli("expose", "pod", "nosuch")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): pods "nosuch" not found\n')
    r = cli("expose", "cm", "x")
    assert r.code == 1
    r = cli("expose", "pod", "bare", "--selector=app=x")
    assert (r.code, r.err) == (1, "error: couldn't find port via --port flag or introspection\n")


def test_describe_service_end_to_end(cli):
    cli("create", "-f", "examples/web.yaml")
    out = cli("describe", "svc", "web").out
    lines = out.splitlines()
    assert lines[0] == "Name:                     web"
    assert "Endpoints:                127.0.0.11:8080,127.0.0.12:8080" in lines
    assert "TargetPort:               http/TCP" in lines
    assert lines[-1] == "Events:                   <none>"
    both = cli("describe", "svc/web", "ep/web").out
    assert "\n\n\nName:         web\n" in both
    r = cli("describe", "svc", "nosuch")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): services "nosuch" not found\n')


def test_init_sets_ranges_before_first_use(cli):
    r = cli("init", "--service-cluster-ip-range", "10.96.0.0/12", "--service-node-port-range", "31000-31010")
    assert r.code == 0 and "service-cluster-ip-range: 10.96.0.0/12" in r.out
    cli("create", "service", "nodeport", "np", "--tcp=80")
    svc = json.loads(cli("get", "svc", "np", "-o", "json").out)
    assert svc["spec"]["clusterIP"].startswith("10.")
    assert 31000 <= svc["spec"]["ports"][0]["nodePort"] <= 31010
    r = cli("init", "--service-cluster-ip-range", "10.0.0.0/16")
    assert r.code == 1 and r.err.startswith("error: the store already holds allocated addresses")
    r = cli("init", "--pod-ip-range", "banana")
    assert r.code == 1 and "invalid CIDR" in r.err


def test_version(cli):
    r = cli("version")
    assert r.code == 0 and r.out.startswith("Client Version: v")
    assert json.loads(cli("version", "-o", "json").out)["clientVersion"]["gitVersion"].startswith("v")

"""The endpoints controller finds the Services a Pod write concerns through the store's selector index
(``list_selecting``) instead of reading every Service of the namespace. What it writes must be what a full resync
would: each Service's Endpoints and slices hold exactly the pods its selector selects, after any create, relabel
and delete; a pod relabelled away leaves, one relabelled in joins (through the real CLI)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from kubesvc.controllers.endpoints import compute_endpoints, is_managed
from kubesvc.controllers.endpointslices import SERVICE_NAME_LABEL
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.support.clirunner import CliRunner, shared_app

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["app", "tier", "app.kubernetes.io/name"]
VALUES = ["web", "db", ""]


def service(name: str, selector: dict | None, type_: str | None = None) -> dict:
    spec: dict = {"ports": [{"port": 80, "targetPort": 8080}]}
    if selector is not None:
        spec["selector"] = selector
    if type_:
        spec["type"] = type_
        spec["externalName"] = "example.invalid"
        spec.pop("ports")
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def pod(name: str, labels: dict, ip: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def labels(rng: random.Random, most: int) -> dict[str, str]:
    return {rng.choice(KEYS): rng.choice(VALUES) for _ in range(rng.randint(0, most))}


def slice_ips(store: Store, name: str) -> list[str]:
    return sorted(e["addresses"][0] for s in store.list_labelled("EndpointSlice", "default", SERVICE_NAME_LABEL, name)
                  for e in s.get("endpoints") or [])


def assert_as_full_resync(store: Store) -> int:
    """Every Service's Endpoints and slices equal what computing them from all pods gives; returns the number of
    (Service, pod) pairs selected, so the test knows it checked more than empty sets."""
    pods = store.list("Pod", "default")
    pairs = 0
    for svc in store.list("Service", "default"):
        name = svc["metadata"]["name"]
        have = store.get("Endpoints", "default", name)
        if not is_managed(svc):
            assert have is None, name
            continue
        want = compute_endpoints(svc, pods)
        assert have is not None and have.get("subsets") == want.get("subsets"), name
        ips = sorted(a["ip"] for ss in want.get("subsets") or [] for f in ("addresses", "notReadyAddresses")
                     for a in ss.get(f) or [])
        assert slice_ips(store, name) == ips, name
        pairs += len(ips)
    return pairs


def test_random_relabels_leave_what_a_full_resync_would(tmp_path):
    rng = random.Random(61)
    store = Store(str(tmp_path / "s.db"))
    try:
        reg = Registry(store)
        for i in range(40):
            roll = rng.random()
            if roll < 0.1:
                reg.create(service(f"s{i}", None))
            elif roll < 0.15:
                reg.create(service(f"s{i}", labels(rng, 2) or {"app": "web"}, "ExternalName"))
            else:
                reg.create(service(f"s{i}", labels(rng, 2) or {"app": "web"}))
        for i in range(30):
            reg.create(pod(f"p{i}", labels(rng, 3), f"10.1.0.{i + 1}"))
        assert assert_as_full_resync(store) > 30
        for step in range(60):
            name = f"p{rng.randrange(30)}"
            if step % 15 == 14:  # deleted and made again with other labels
                reg.delete("Pod", "default", name, grace_period=0)
                reg.create(pod(name, labels(rng, 3), f"10.1.1.{step}"))
            else:
                new = labels(rng, 3)
                reg.mutate("Pod", "default", name, lambda o, new=new: o["metadata"].__setitem__("labels", new))
        assert assert_as_full_resync(store) > 30
    finally:
        store.close()


@pytest.fixture
def cli(tmp_path):
    path = str(tmp_path / "store.db")
    app, runner = shared_app(), CliRunner()

    def run(*args: str, input: str | None = None) -> str:
        result = runner.invoke(app, ["--store", path, *args], input=input, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result.stdout

    run.path = path  # type: ignore[attr-defined]
    return run


def endpoint_pods(cli, name: str) -> list[str]:
    ep = json.loads(cli("get", "endpoints", name, "-o", "json"))
    return sorted(a["targetRef"]["name"] for ss in ep.get("subsets") or [] for f in ("addresses", "notReadyAddresses")
                  for a in ss.get(f) or [])


def test_relabel_moves_a_pod_between_services_endpoints(cli):
    manifests = [service("a", {"app": "a"}), service("b", {"app": "b"}), service("ab", {"app": "a", "tier": "x"}),
                 service("manual", None)]
    manifests += [service(f"filler{i}", {"app": f"f{i}"}) for i in range(50)]
    cli("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
    cli("create", "-f", "-", input=json.dumps(pod("p1", {"app": "a", "tier": "x"}, "10.1.0.1")))
    cli("create", "-f", "-", input=json.dumps(pod("p2", {"app": "a"}, "10.1.0.2")))
    assert (endpoint_pods(cli, "a"), endpoint_pods(cli, "ab"), endpoint_pods(cli, "b")) == (["p1", "p2"], ["p1"], [])

    cli("label", "pod", "p1", "app=b", "--overwrite")  # leaves a and ab, joins b
    assert (endpoint_pods(cli, "a"), endpoint_pods(cli, "ab"), endpoint_pods(cli, "b")) == (["p2"], [], ["p1"])
    cli("label", "pod", "p2", "tier=x")  # joins ab, stays in a
    assert (endpoint_pods(cli, "a"), endpoint_pods(cli, "ab"), endpoint_pods(cli, "b")) == (["p2"], ["p2"], ["p1"])
    cli("label", "pod", "p2", "tier-")  # one key of ab's selector gone: leaves ab only
    assert (endpoint_pods(cli, "a"), endpoint_pods(cli, "ab"), endpoint_pods(cli, "b")) == (["p2"], [], ["p1"])

    # a Service whose selector changes picks its pods up; the Endpoints of one without a selector are left alone
    cli("patch", "service", "b", "-p", json.dumps({"spec": {"selector": {"app": "a"}}}))
    assert endpoint_pods(cli, "b") == ["p2"]
    assert json.loads(cli("get", "endpoints", "-o", "json"))["items"] and "manual" not in cli("get", "endpoints", "-o", "name")

    # and as a separate process, as a user would
    env = dict(os.environ, KUBESVC_STORE=cli.path)
    env.pop("KUBESVC_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "kubesvc", "label", "pod", "p1", "app=a", "--overwrite"],
                       capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=60)
    assert p.returncode == 0, p.stderr
    assert (endpoint_pods(cli, "a"), endpoint_pods(cli, "b")) == (["p1", "p2"], ["p1", "p2"])

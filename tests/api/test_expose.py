"""expose / create service generators, compared with real kubectl output byte for byte.

kubectl runs offline: ``expose -f`` needs discovery, which is served from a pre-filled discovery
cache (``--cache-dir``) for a server that is never contacted. All kubectl runs happen once, in
parallel threads, in a module fixture; each case then compares its text with ours.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kubesvc.api.expose import ExposeOptions, create_service, expose, split_string_slice
from kubesvc.errors import ClientError

KUBECTL = shutil.which("kubectl")
SERVER = "http://127.0.0.1:1"

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "solo", "labels": {"run": "solo"}},
    "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 8080}]}]},
}
DEPLOY: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "a",
                        "image": "nginx",
                        "ports": [
                            {"containerPort": 80, "name": "http"},
                            {"containerPort": 443, "name": "https"},
                            {"containerPort": 53, "protocol": "UDP"},
                            {"containerPort": 53, "protocol": "TCP"},
                        ],
                    }
                ]
            },
        },
    },
}
RS = {**copy.deepcopy(DEPLOY), "kind": "ReplicaSet", "metadata": {"name": "web-rs"}}
RC: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ReplicationController",
    "metadata": {"name": "rc1", "labels": {"x": "1"}},
    "spec": {
        "selector": {"app": "rc1"},
        "template": {
            "metadata": {"labels": {"app": "rc1"}},
            "spec": {"containers": [{"name": "a", "image": "i", "ports": [{"containerPort": 9000, "protocol": "SCTP"}]}]},
        },
    },
}
SVC: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "front", "labels": {"app": "front"}},
    "spec": {
        "selector": {"app": "front"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353},
        ],
    },
}


def tweak(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of base with the dotted path set (``None`` deletes it)."""
    obj = copy.deepcopy(base)
    *parents, last = path.split(".")
    cur: Any = obj
    for p in parents:
        cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
    if value is None:
        cur.pop(last, None)
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return obj


LONG = tweak(POD, "metadata.name", "a" * 70)
MULTI_POD = tweak(
    POD,
    "spec.containers",
    [
        {"name": "a", "image": "x", "ports": [{"containerPort": 80}, {"containerPort": 81, "protocol": "UDP"}, {"containerPort": 80}]},
        {"name": "b", "image": "x", "ports": [{"containerPort": 82}, {"containerPort": 80, "protocol": "UDP"}]},
    ],
)
DNS_POD = tweak(POD, "spec.containers.0.ports", [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}])

# (id, object, flags). kubectl's flags are strings; ExposeOptions takes the same strings.
EXPOSE_CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("pod", POD, {}),
    ("pod-all-flags", POD, {"type": "LoadBalancer", "load-balancer-ip": "1.2.3.4", "external-ip": "5.6.7.8",
                            "cluster-ip": "None", "labels": "x=y", "protocol": "UDP"}),
    ("pod-lb-ip-without-lb", POD, {"load-balancer-ip": "1.2.3.4", "type": "NodePort"}),
    ("pod-port-list", POD, {"port": "80,443"}),
    ("pod-port-target-name", POD, {"port": "80", "target-port": "http"}),
    ("pod-target-number", POD, {"target-port": "+0090"}),
    ("pod-port-wraps-int32", POD, {"port": "4294967377"}),
    ("pod-port-bad", POD, {"port": "abc"}),
    ("pod-port-empty-item", POD, {"port": "80,"}),
    ("pod-port-huge", POD, {"port": "99999999999999999999"}),
    ("pod-name", POD, {"name": "other"}),
    ("pod-long-name", LONG, {}),
    ("pod-selector", POD, {"selector": "a=b,c=d"}),
    ("pod-selector-bad", POD, {"selector": "bad"}),
    ("pod-selector-empty-key", POD, {"selector": "=x"}),
    ("pod-labels-bad", POD, {"labels": "a=b=c"}),
    ("pod-affinity-clientip", POD, {"session-affinity": "ClientIP"}),
    ("pod-affinity-none", POD, {"session-affinity": "None"}),
    ("pod-affinity-bad", POD, {"session-affinity": "Foo"}),
    ("pod-cluster-ip", POD, {"cluster-ip": "10.0.0.10"}),
    ("pod-type-unchecked", POD, {"type": "Weird"}),
    ("pod-no-labels", tweak(POD, "metadata.labels", None), {}),
    ("pod-no-labels-selector-given", tweak(POD, "metadata.labels", None), {"selector": "a=b"}),
    ("pod-no-ports", tweak(POD, "spec.containers.0.ports", None), {}),
    ("pod-no-ports-headless", tweak(POD, "spec.containers.0.ports", None), {"cluster-ip": "None"}),
    ("pod-multi", MULTI_POD, {}),
    ("pod-multi-port-given", MULTI_POD, {"port": "80"}),
    ("pod-multi-protocol-flag", MULTI_POD, {"protocol": "sctp"}),
    ("pod-multi-unknown-port", MULTI_POD, {"port": "99"}),
    ("pod-dns-one-port-two-protocols", DNS_POD, {}),
    ("pod-udp", tweak(POD, "spec.containers.0.ports.0.protocol", "UDP"), {}),
    ("deploy", DEPLOY, {}),
    ("deploy-flags", DEPLOY, {"port": "8080", "target-port": "80", "type": "NodePort", "name": "web2"}),
    ("deploy-expressions", tweak(DEPLOY, "spec.selector.matchExpressions",
                                 [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                  {"key": "x", "operator": "Exists"}]), {}),
    ("deploy-no-match-labels", tweak(DEPLOY, "spec.selector", {"matchExpressions": [{"key": "x", "operator": "Exists"}]}), {}),
    ("deploy-no-selector", tweak(DEPLOY, "spec.selector", None), {}),
    ("deploy-no-selector-given", tweak(DEPLOY, "spec.selector", None), {"selector": "app=web"}),
    ("rs", RS, {}),
    ("rs-no-selector", tweak(RS, "spec.selector", None), {}),
    ("rs-labels-flag", RS, {"labels": "k=v,k2=v2"}),
    ("rc", RC, {}),
    ("rc-no-selector", tweak(RC, "spec.selector", None), {}),
    ("svc", SVC, {}),
    ("svc-port", SVC, {"port": "53"}),
    ("svc-one-port", tweak(SVC, "spec.ports", [{"port": 8443, "targetPort": 443}]), {"external-ip": "1.1.1.1"}),
    ("svc-no-selector", tweak(SVC, "spec.selector", None), {}),
    ("svc-empty-selector", tweak(SVC, "spec.selector", {}), {}),
    ("ingress", {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}}, {}),
    ("configmap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, {}),
]

_FLAG_TO_FIELD = {
    "port": "port", "target-port": "target_port", "protocol": "protocol", "type": "type", "name": "name",
    "selector": "selector", "labels": "labels", "session-affinity": "session_affinity",
    "cluster-ip": "cluster_ip", "external-ip": "external_ip", "load-balancer-ip": "load_balancer_ip",
}

# (id, kind, name, tcp flags, node_port, cluster_ip, external_name)
CREATE_CASES: list[tuple[str, str, str, list[str], int | None, str | None, str | None]] = [
    ("clusterip", "clusterip", "foo", ["80:8080"], None, None, None),
    ("clusterip-two", "clusterip", "foo", ["80:8080", "443:8443"], None, None, None),
    ("clusterip-csv", "clusterip", "foo", ["80:8080,443:8443"], None, None, None),
    ("clusterip-named-target", "clusterip", "foo", ["80:http"], None, None, None),
    ("clusterip-port-only", "clusterip", "foo", ["80"], None, None, None),
    ("clusterip-three-parts", "clusterip", "foo", ["80:81:82"], None, None, None),
    ("clusterip-headless", "clusterip", "headless", [], None, "None", None),
    ("clusterip-headless-port", "clusterip", "headless", ["80"], None, "None", None),
    ("clusterip-ip", "clusterip", "foo", ["80"], None, "10.0.0.5", None),
    ("clusterip-no-tcp", "clusterip", "foo", [], None, None, None),
    ("clusterip-port-zero", "clusterip", "foo", ["0"], None, None, None),
    ("clusterip-port-name", "clusterip", "foo", ["http"], None, None, None),
    ("clusterip-port-plus", "clusterip", "foo", ["+80"], None, None, None),
    ("clusterip-port-range", "clusterip", "foo", ["70000"], None, None, None),
    ("clusterip-target-zero", "clusterip", "foo", ["80:0"], None, None, None),
    ("clusterip-target-big", "clusterip", "foo", ["80:65536"], None, None, None),
    ("clusterip-target-upper", "clusterip", "foo", ["80:HTTP"], None, None, None),
    ("clusterip-target-long", "clusterip", "foo", ["80:abcdefghijklmnop"], None, None, None),
    ("clusterip-target-digits", "clusterip", "foo", ["80:99999999999999999999"], None, None, None),
    ("clusterip-target-hyphens", "clusterip", "foo", ["80:-a--b"], None, None, None),
    ("clusterip-target-empty", "clusterip", "foo", ["80:"], None, None, None),
    ("nodeport", "nodeport", "np", ["80:8080"], 30080, None, None),
    ("nodeport-two", "nodeport", "np", ["80:8080", "81"], 30080, None, None),
    ("nodeport-auto", "nodeport", "np", ["80:8080"], None, None, None),
    ("nodeport-no-tcp", "nodeport", "np", [], None, None, None),
    ("loadbalancer", "loadbalancer", "lb", ["80:8080"], None, None, None),
    ("externalname", "externalname", "ext", [], None, None, "example.com"),
    ("externalname-ports", "externalname", "ext", ["80"], None, None, "example.com"),
    ("externalname-bad", "externalname", "ext", [], None, None, "Bad_Name"),
    ("externalname-empty", "externalname", "ext", [], None, None, ""),
]


def _discovery_cache(root: Path) -> None:
    """A discovery cache for SERVER listing the kinds expose can meet."""
    d = root / "discovery" / "127.0.0.1_1"

    def res(plural: str, singular: str, kind: str, short: list[str]) -> dict[str, Any]:
        return {"name": plural, "singularName": singular, "namespaced": True, "kind": kind, "shortNames": short,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}

    groups = {
        "v1": [res("pods", "pod", "Pod", ["po"]), res("services", "service", "Service", ["svc"]),
               res("replicationcontrollers", "replicationcontroller", "ReplicationController", ["rc"]),
               res("configmaps", "configmap", "ConfigMap", ["cm"])],
        "apps/v1": [res("deployments", "deployment", "Deployment", ["deploy"]),
                    res("replicasets", "replicaset", "ReplicaSet", ["rs"])],
        "networking.k8s.io/v1": [res("ingresses", "ingress", "Ingress", ["ing"])],
    }
    group_list = {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
    for gv in groups:
        name, _, version = gv.rpartition("/")
        ref = {"groupVersion": gv, "version": version}
        group_list["groups"].append({"name": name, "versions": [ref], "preferredVersion": ref})
    d.mkdir(parents=True)
    (d / "servergroups.json").write_text(json.dumps(group_list))
    for gv, resources in groups.items():
        sub = d.joinpath(*gv.split("/"))
        sub.mkdir(parents=True)
        body = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
        (sub / "serverresources.json").write_text(json.dumps(body))


def _run(args: list[str]) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = args[0]  # no user kubeconfig
    p = subprocess.run([KUBECTL or "kubectl", *args[1:]], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env=env, timeout=60)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def kubectl_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    root = tmp_path_factory.mktemp("kubectl")
    _discovery_cache(root / "cache")
    base = [str(root), "--cache-dir", str(root / "cache"), "--server", SERVER]
    jobs: dict[str, list[str]] = {}
    for case_id, obj, flags in EXPOSE_CASES:
        f = root / f"{case_id}.json"
        f.write_text(json.dumps(obj))
        jobs["expose/" + case_id] = [*base, "expose", "-f", str(f), "--dry-run=client", "-o", "json",
                                     *[f"--{k}={v}" for k, v in flags.items()]]
    for case_id, kind, name, tcp, node_port, cluster_ip, external_name in CREATE_CASES:
        args = [*base, "create", "service", kind, name, "--dry-run=client", "-o", "json"]
        args += [f"--tcp={t}" for t in tcp]
        if node_port is not None:
            args.append(f"--node-port={node_port}")
        if cluster_ip is not None:
            args.append(f"--clusterip={cluster_ip}")
        if external_name is not None:
            args.append(f"--external-name={external_name}")
        jobs["create/" + case_id] = args
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = dict(zip(jobs, pool.map(_run, jobs.values()), strict=True))
    return results


def _ours(fn: Any) -> tuple[int, str, str]:
    try:
        return 0, json.dumps(fn(), indent=4) + "\n", ""
    except ClientError as e:
        return 1, "", f"error: {e.message}\n"


@pytest.mark.parametrize(("case_id", "obj", "flags"), EXPOSE_CASES, ids=[c[0] for c in EXPOSE_CASES])
def test_expose_matches_kubectl(kubectl_results: dict[str, tuple[int, str, str]], case_id: str,
                                obj: dict[str, Any], flags: dict[str, str]) -> None:
    opts = ExposeOptions(**{_FLAG_TO_FIELD[k]: v for k, v in flags.items()})
    assert _ours(lambda: expose(obj, opts)) == kubectl_results["expose/" + case_id]


@pytest.mark.parametrize(("case_id", "kind", "name", "tcp", "node_port", "cluster_ip", "external_name"),
                         CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_create_service_matches_kubectl(kubectl_results: dict[str, tuple[int, str, str]], case_id: str, kind: str,
                                        name: str, tcp: list[str], node_port: int | None, cluster_ip: str | None,
                                        external_name: str | None) -> None:
    values = [v for t in tcp for v in split_string_slice(t)]
    ours = _ours(lambda: create_service(kind, name, tcp=values, node_port=node_port, cluster_ip=cluster_ip,
                                        external_name=external_name))
    assert ours == kubectl_results["create/" + case_id]


# Spec §8.4 examples, kept as plain expectations (they run without kubectl).


def test_spec_example_expose_deployment() -> None:
    svc = expose(DEPLOY, ExposeOptions())
    assert svc["metadata"] == {"name": "web", "creationTimestamp": None, "labels": {"app": "web", "tier": "fe"}}
    assert svc["spec"] == {
        "ports": [
            {"name": "port-1", "protocol": "TCP", "port": 80, "targetPort": 80},
            {"name": "port-2", "protocol": "TCP", "port": 443, "targetPort": 443},
            {"name": "port-3-udp", "protocol": "UDP", "port": 53, "targetPort": 53},
            {"name": "port-3-tcp", "protocol": "TCP", "port": 53, "targetPort": 53},
        ],
        "selector": {"app": "web"},
    }
    assert svc["status"] == {"loadBalancer": {}}


def test_spec_example_create_nodeport() -> None:
    svc = create_service("nodeport", "np", tcp=["80:8080"], node_port=30080, cluster_ip=None, external_name=None)
    assert svc["spec"] == {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}],
        "selector": {"app": "np"},
        "type": "NodePort",
    }


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("Ingress", "cannot expose a Ingress.networking.k8s.io"),
        ("ConfigMap", "cannot expose a ConfigMap"),
    ],
)
def test_unsupported_kinds(kind: str, message: str) -> None:
    api_version = "networking.k8s.io/v1" if kind == "Ingress" else "v1"
    with pytest.raises(ClientError) as e:
        expose({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}, ExposeOptions())
    assert e.value.message == message

"""`kubesvc up --nodes N`: node namespaces, Node objects, a proxy per node, placement (docs/concepts/nodes.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubesvc.controllers.scheduler import pick_node
from kubesvc.dataplane import nodes


def node(name: str, labels: dict[str, str] | None = None, ready: str = "True") -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def pod(name: str, node_name: str = "", selector: dict[str, str] | None = None) -> dict:
    return {"metadata": {"name": name}, "spec": {"nodeName": node_name, "nodeSelector": selector or {}}, "status": {"phase": "Running"}}


def test_scheduler_honours_node_name_and_selector_and_spreads() -> None:
    """assign-pod-node.md "nodeName" and "nodeSelector"; otherwise the least loaded node (ties by name)."""
    ns = [node("a", {"disk": "ssd"}), node("b"), node("c", ready="False")]
    assert pick_node(pod("p", "b"), ns, []) == "b"
    assert pick_node(pod("p", selector={"disk": "ssd"}), ns, [pod("x", "a"), pod("y", "a")]) == "a"
    assert pick_node(pod("p", selector={"disk": "hdd"}), ns, []) is None
    assert pick_node(pod("p"), ns, []) == "a"
    assert pick_node(pod("p"), ns, [pod("x", "a")]) == "b"


def test_plan_addresses_are_local_only_ranges() -> None:
    made = nodes.plan("/tmp/x.db", 3)
    assert [n.name for n in made] == ["kubesvc-node", "kubesvc-node-2", "kubesvc-node-3"]
    assert [n.ip for n in made] == ["172.30.0.11", "172.30.0.12", "172.30.0.13"]
    assert [n.pod_cidr for n in made] == ["10.244.0.0/16", "10.245.0.0/16", "10.246.0.0/16"]


needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None,
                                reason="--nodes needs root, `ip netns` and nsenter")


def kubesvc(store: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, *args], capture_output=True, text=True, timeout=timeout)


@needs_root
def test_up_nodes_publishes_nodes_runs_a_proxy_per_node_and_down_removes_the_namespaces(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    kubesvc(store, "get", "svc")
    try:
        out = kubesvc(store, "up", "--nodes", "2", "--components", "proxy", "--timeout", "40")
        assert out.returncode == 0, out.stderr
        assert set(nodes.existing(store)) == {f"{nodes.prefix(store)}-{s}" for s in ("net", "n1", "n2")}
        got = json.loads(kubesvc(store, "get", "nodes", "-o", "json").stdout)["items"]
        by_name = {n["metadata"]["name"]: n for n in got}
        for n in nodes.plan(store, 2):
            assert by_name[n.name]["spec"]["podCIDR"] == n.pod_cidr
            assert {"type": "InternalIP", "address": n.ip} in by_name[n.name]["status"]["addresses"]
            # each node's proxy answers on its node IP, seen from outside the nodes (the fabric namespace)
            r = subprocess.run(["ip", "netns", "exec", nodes.fabric(store), "curl", "-s", "-m", "5", f"http://{n.ip}:10256/healthz"],
                               capture_output=True, text=True, timeout=30)
            assert "revision" in r.stdout, r
        down = kubesvc(store, "down")
        assert down.returncode == 0 and "nodes: removed 3 network namespace(s)" in down.stdout, down
        assert nodes.existing(store) == []
    finally:
        kubesvc(store, "down")
        nodes.teardown(store)

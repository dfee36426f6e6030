"""`kubesvc up --nodes N`: node namespaces, Node objects, a proxy per node, placement (docs/concepts/nodes.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubesvc.controllers.scheduler import pick_node
from kubesvc.dataplane import nodes
from kubesvc.dataplane.kubelet.netns import PodNetworks
from tests.dataplane.test_up_rootless import Rootless, rootless, user_store  # noqa: F401 (fixtures)
from tests.support.procs import wait_for


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
    # from /: `up` starts the components (and so the pods) in its cwd, and a pytest tmp dir is closed to nobody
    return subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, *args], capture_output=True, text=True, timeout=timeout,
                          cwd="/")


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
        # one node again: the second Node goes and the first gets its loopback InternalIP back (its pods' hostIP)
        out = kubesvc(store, "up", "--components", "proxy", "--timeout", "40")
        assert out.returncode == 0, out.stderr
        got = json.loads(kubesvc(store, "get", "nodes", "-o", "json").stdout)["items"]
        assert [n["metadata"]["name"] for n in got] == ["kubesvc-node"], got
        assert {"type": "InternalIP", "address": "127.0.0.1"} in got[0]["status"]["addresses"], got
    finally:
        kubesvc(store, "down")
        nodes.teardown(store)


def test_up_nodes_2_as_a_normal_user_says_it_needs_root(rootless: Rootless, user_store: Path) -> None:  # noqa: F811
    """The real CLI, run by the unprivileged user: a clear one-line error, nothing started, no namespace made."""
    r = rootless.run(user_store, "$KS get svc >/dev/null 2>&1 && $KS up --nodes 2")
    assert r.returncode == 1, r
    assert r.stderr.strip() == "error: --nodes 2 needs root (each node is a network namespace with a veth pair)", r.stderr
    assert "Traceback" not in r.stderr
    assert nodes.existing(str(user_store)) == []
    assert not list(Path(str(user_store) + ".d").glob("*.pid"))


# ------------------------------------------------------------------ two nodes, real pods, traffic across them
#
# One `up --nodes 2` per proxy mode, shared by the tests below (module scope): an agnhost netexec Deployment of two
# replicas (one per node: the scheduler spreads), Services over it. Clients run in the fabric namespace (the outside
# world as the nodes see it, 172.30.0.1) or in a node's namespace (the node itself, as a hostNetwork pod); every
# address is inside namespaces this test made.

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: netexec
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: ["netexec", "--http-port=8080"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
"""
SOLO = """\
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec:
  nodeName: kubesvc-node-2
  terminationGracePeriodSeconds: 1
  containers:
  - name: netexec
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: solo-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: solo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-internal}
spec:
  internalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


@dataclass
class Cluster:
    store: str
    mode: str
    nodes: list[nodes.NodeNet]
    pods: dict[str, str]  # node name -> the web pod running there

    def kubesvc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return kubesvc(self.store, *args)

    def node_port(self, svc: str) -> int:
        return int(self.kubesvc("get", "svc", svc, "-o", "jsonpath={.spec.ports[0].nodePort}").stdout)

    def curl(self, netns: str, url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", netns, "curl", "-sS", "-m", "5", url], capture_output=True, text=True, timeout=30)

    def get(self, netns: str, url: str) -> str:
        r = self.curl(netns, url)
        assert r.returncode == 0, (url, r.stderr)
        return r.stdout


def _wait_ready(c: Cluster, want: int) -> list[dict]:
    """Bounded: until ``want`` Pods are Ready (about a minute, then the test fails with what it saw)."""
    items: list[dict] = []
    for _ in range(80):
        items = json.loads(c.kubesvc("get", "pods", "-o", "json").stdout)["items"]
        ready = [p for p in items if any(x.get("type") == "Ready" and x.get("status") == "True"
                                         for x in (p.get("status") or {}).get("conditions") or [])]
        if len(ready) == want:
            return ready
        time.sleep(0.5)
    logs = {f.name: f.read_text(errors="replace")[-1500:] for f in Path(c.store + ".d").glob("kubelet*.log")}
    raise AssertionError(f"pods not ready: {[(p['metadata']['name'], p.get('status')) for p in items]}; {logs}")


def _wait_serving(c: Cluster) -> None:
    """Bounded: until every node's proxy answers on each NodePort that has an endpoint for it (both web Services on
    both nodes, solo-local on node 2). Pods Ready is not yet that: each Service's endpoints are published, then each
    node's proxy syncs them; once, under the whole suite in parallel, node 1 refused eTP Local's first request (its
    proxy had no local endpoint for it yet)."""
    fabric = nodes.fabric(c.store)
    one, two = c.nodes
    urls = [f"http://{n.ip}:{c.node_port(svc)}/hostname" for svc in ("web", "web-local") for n in (one, two)]
    urls.append(f"http://{two.ip}:{c.node_port('solo-local')}/hostname")

    def answers(url: str) -> bool:
        r = c.curl(fabric, url)
        assert r.returncode == 0, r.stderr
        return True

    for url in urls:
        wait_for(lambda url=url: answers(url), timeout=30, interval=0.5, what=f"{url} answering")


MODES = ["userspace", "nftables"]


@pytest.fixture(scope="module", params=MODES)
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None or shutil.which("curl") is None:
        pytest.skip("--nodes needs root, `ip netns`, nsenter (and curl for the clients)")
    mode = request.param
    if mode == "nftables" and shutil.which("nft") is None:
        pytest.skip("--proxy-mode nftables needs nft (make sysdeps installs nftables)")
    # the pods run as nobody, and read their program (agnhost) from the store's run directory: not under pytest's
    # 0700 tmp dir
    d = Path(tempfile.mkdtemp(prefix=f"kubesvc-nodes-{mode}-"))
    d.chmod(0o755)
    store = str(d / "s.db")
    uids: list[str] = []
    try:
        kubesvc(store, "get", "svc")
        up = kubesvc(store, "up", "--nodes", "2", "--components", "proxy,dns,kubelet", "--timeout", "60",
                     *(["--proxy-mode", "nftables", "--proxy-nft-table", "kubesvc"] if mode == "nftables" else []))
        assert up.returncode == 0, up.stderr
        c = Cluster(store, mode, nodes.plan(store, 2), {})
        for i, text in enumerate((WEB, SOLO)):  # solo after web: the spread then puts one web pod on each node
            (d / f"{i}.yaml").write_text(text)
            made = kubesvc(store, "apply", "-f", str(d / f"{i}.yaml"))
            assert made.returncode == 0, made.stderr
            ready = _wait_ready(c, 2 + i)
        uids = [p["metadata"]["uid"] for p in ready]
        c.pods = {p["spec"]["nodeName"]: p["metadata"]["name"] for p in ready if p["metadata"]["name"] != "solo"}
        assert set(c.pods) == {"kubesvc-node", "kubesvc-node-2"}, ready  # spread: one web pod per node
        _wait_serving(c)
        yield c
    finally:
        kubesvc(store, "down")
        nodes.teardown(store)
        for uid in uids:  # a pod namespace a killed kubelet left (its veth went with the node namespace)
            PodNetworks.drop(uid)
        shutil.rmtree(d, ignore_errors=True)


def test_node_port_on_every_node_ip_reaches_the_pods_on_both_nodes(cluster: Cluster) -> None:
    """externalTrafficPolicy: Cluster: each node's NodePort spreads over both nodes' pods (across namespaces)."""
    port = cluster.node_port("web")
    fabric = nodes.fabric(cluster.store)
    for n in cluster.nodes:
        seen: set[str] = set()
        for _ in range(12):  # round robin (nftables: random): both within a few requests
            seen.add(cluster.get(fabric, f"http://{n.ip}:{port}/hostname"))
            if len(seen) == 2:
                break
        assert seen == set(cluster.pods.values()), (n.ip, seen)


def test_external_traffic_policy_local_answers_with_the_node_s_own_pod(cluster: Cluster) -> None:
    """eTP Local: each node IP reaches only the pod on that node; nftables mode keeps the client's IP (the fabric's
    172.30.0.1) as kube-proxy does; the userspace proxy dials a pod from the node (documented: docs/concepts/nodes.md)."""
    port = cluster.node_port("web-local")
    fabric = nodes.fabric(cluster.store)
    for n in cluster.nodes:
        got = {cluster.get(fabric, f"http://{n.ip}:{port}/hostname") for _ in range(6)}
        assert got == {cluster.pods[n.name]}, (n.ip, got)
        client = cluster.get(fabric, f"http://{n.ip}:{port}/clientip").rpartition(":")[0]
        assert client == (nodes.CLIENT_IP if cluster.mode == "nftables" else "169.254.1.1"), (n.ip, client)


def test_external_traffic_policy_local_without_a_local_endpoint_fails_on_that_node(cluster: Cluster) -> None:
    """solo runs on node 2 only: node 2's NodePort answers, node 1's refuses (userspace) or drops (nftables)."""
    port = cluster.node_port("solo-local")
    fabric = nodes.fabric(cluster.store)
    one, two = cluster.nodes
    assert cluster.get(fabric, f"http://{two.ip}:{port}/hostname") == "solo"
    r = subprocess.run(["ip", "netns", "exec", fabric, "curl", "-sS", "-m", "2", f"http://{one.ip}:{port}/hostname"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and r.stdout == "", r


def test_internal_traffic_policy_local_from_each_node_reaches_its_own_pod(cluster: Cluster) -> None:
    """iTP Local: the cluster IP, from a node's own namespace (a hostNetwork client there: pods cannot reach cluster
    IPs, docs/concepts/nodes.md), goes to that node's pod only. nftables mode: the client dials the 127/8 cluster IP
    from 127.0.0.1, so after the DNAT to the pod IP that source leaves lo (route_localnet in the node namespace) and is
    masqueraded (nodes.py, nft.py)."""
    ip = cluster.kubesvc("get", "svc", "web-internal", "-o", "jsonpath={.spec.clusterIP}").stdout
    for n in cluster.nodes:
        got = {cluster.get(n.netns, f"http://{ip}/hostname") for _ in range(6)}
        assert got == {cluster.pods[n.name]}, (n.name, got)


def test_a_pod_on_node_2_resolves_a_service_through_the_cluster_dns(cluster: Cluster) -> None:
    """The kubelet's relay in node 2's namespace (169.254.1.1 in the pod) reaches the cluster DNS (dns-net on the
    bridge address); `kubesvc exec` runs getent inside the pod."""
    ip = cluster.kubesvc("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
    r = cluster.kubesvc("exec", cluster.pods["kubesvc-node-2"], "--", "getent", "hosts", "web.default.svc.cluster.local")
    assert r.returncode == 0, r
    assert r.stdout.split() == [ip, "web.default.svc.cluster.local"], r.stdout
    # and the fabric's DNS server answers clients outside the nodes
    if shutil.which("dig"):
        d = subprocess.run(["ip", "netns", "exec", nodes.fabric(cluster.store), "dig", "+short", "+time=2", "+tries=2",
                            f"@{nodes.CLIENT_IP}", "web.default.svc.cluster.local"], capture_output=True, text=True, timeout=30)
        assert d.stdout.strip() == ip, d


def test_each_pod_s_host_ip_is_its_node_s_internal_ip(cluster: Cluster) -> None:
    """status.hostIP (and hostIPs) is the InternalIP of the node the pod runs on, as the kubelet reports it: 172.30.0.11
    and .12 here, not the machine's loopback on every node."""
    ips = {n.name: n.ip for n in cluster.nodes}
    pods = json.loads(cluster.kubesvc("get", "pods", "-o", "json").stdout)["items"]
    got = {p["metadata"]["name"]: (p["spec"]["nodeName"], p["status"].get("hostIP"), p["status"].get("hostIPs")) for p in pods}
    assert len(got) == 3, got
    for node_name, host_ip, host_ips in got.values():
        assert host_ip == ips[node_name] and host_ips == [{"ip": ips[node_name]}], got

"""Traffic policies, the health-check node port, topology hints, loadBalancerSourceRanges and the headless label,
against a real `kubesvc proxy` on one node (``--hostname-override kubesvc-node``, the default). Endpoints "on
another node" are Pods whose ``spec.nodeName`` names another node: the proxy must leave them out where the policy
says so. Several real nodes (network namespaces) are covered by tests/dataplane/test_nodes.py."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.dataplane.conftest import Cluster, who
from tests.support.servers import backends_on_one_port

NODE = "kubesvc-node"


def node_pods(cluster: Cluster, app: str, where: dict[str, str]) -> dict[str, Any]:
    """One backend per name in ``where`` (name -> nodeName), all on one port, each a ready Pod on that node."""
    names = list(where)
    bs = backends_on_one_port(names, [cluster.subnet + str(10 + i) for i in range(len(names))], "count")
    cluster.backends += bs
    for b in bs:
        cluster.create({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{app}-{b.name}", "namespace": "default", "labels": {"app": app}},
            "spec": {"nodeName": where[b.name], "containers": [{"name": "c", "image": "echo", "ports": [{"containerPort": b.port}]}]},
            "status": {"phase": "Running", "podIP": b.host},
        })
    return {b.name: b for b in bs}


def seen(addr: tuple[str, int], n: int = 8) -> set[str]:
    return {who(addr) for _ in range(n)}


def refused(addr: tuple[str, int]) -> bool:
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex(addr) == errno.ECONNREFUSED


def health(cluster: Cluster, port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{cluster.node_ip}:{port}/", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_internal_traffic_policy_local_serves_the_cluster_ip_from_node_local_endpoints_only(cluster: Cluster) -> None:
    """service-traffic-policy.md "Service Internal Traffic Policy" / virtual-ips.md "Internal traffic policy": with
    `internalTrafficPolicy: Local` the cluster IP uses only endpoints on the client's node; no local endpoint: the
    traffic is dropped (here: refused). External traffic (NodePort, policy Cluster) still reaches every endpoint."""
    pods = node_pods(cluster, "itp", {"here": NODE, "there": "kubesvc-node-2"})
    port = next(iter(pods.values())).port
    svc = cluster.service("itp", 8080, port, selector={"app": "itp"}, type="NodePort", internalTrafficPolicy="Local")
    cluster.start_proxy()
    cip = (svc["spec"]["clusterIP"], 8080)
    nodeport = (cluster.node_ip, svc["spec"]["ports"][0]["nodePort"])
    assert seen(cip) == {"here"}
    assert seen(nodeport) == {"here", "there"}
    cluster.delete("Pod", "itp-here")
    cluster.synced()
    assert refused(cip)
    assert seen(nodeport) == {"there"}


def test_external_traffic_policy_local_and_the_health_check_node_port(cluster: Cluster) -> None:
    """service.md "Traffic policies" / virtual-ips.md "External traffic policy" and "Preserving the client source
    IP" (health check node port): `externalTrafficPolicy: Local` sends NodePort and LB traffic to node-local
    endpoints only (the cluster IP keeps every endpoint); the apiserver allocates `healthCheckNodePort`, where the
    node's proxy answers kube-proxy's JSON with 200 while a local endpoint exists and 503 otherwise."""
    pods = node_pods(cluster, "etp", {"here": NODE, "there": "kubesvc-node-2"})
    port = next(iter(pods.values())).port
    svc = cluster.service("etp", 8080, port, selector={"app": "etp"}, type="LoadBalancer", externalTrafficPolicy="Local")
    hc = svc["spec"]["healthCheckNodePort"]
    assert hc and hc != svc["spec"]["ports"][0]["nodePort"]
    svc = cluster.store.get("Service", "default", "etp")
    cluster.start_proxy()
    lb = (svc["status"]["loadBalancer"]["ingress"][0]["ip"], 8080)
    nodeport = (cluster.node_ip, svc["spec"]["ports"][0]["nodePort"])
    assert seen(nodeport) == {"here"}
    assert seen(lb) == {"here"}
    assert seen((svc["spec"]["clusterIP"], 8080)) == {"here", "there"}
    code, body = health(cluster, hc)
    assert code == 200
    assert body == ('{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "etp"\n\t},\n'
                    '\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n}')
    cluster.delete("Pod", "etp-here")
    cluster.synced()
    code, body = health(cluster, hc)
    assert code == 503
    assert json.loads(body) == {"service": {"namespace": "default", "name": "etp"}, "localEndpoints": 0, "serviceProxyHealthy": True}
    assert refused(nodeport) and refused(lb)
    assert seen((svc["spec"]["clusterIP"], 8080)) == {"there"}


def kubesvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubesvc", *args], capture_output=True, text=True, timeout=60)


def test_health_check_node_port_is_allocated_through_the_cli(tmp_path: Path) -> None:
    """virtual-ips.md "Traffic policies": a LoadBalancer with `externalTrafficPolicy: Local` gets a
    healthCheckNodePort from the NodePort range (it was refused with `spec.healthCheckNodePort: Required value`);
    switching to Cluster releases it, a requested one is kept."""
    manifest = tmp_path / "lb.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                                    "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": {"app": "x"},
                                             "ports": [{"port": 80}]}}))
    store = str(tmp_path / "s.db")
    out = kubesvc("--store", store, "create", "-f", str(manifest))
    assert out.returncode == 0, out.stderr
    hc = int(kubesvc("--store", store, "get", "svc", "lb", "-o", "jsonpath={.spec.healthCheckNodePort}").stdout)
    assert 30000 <= hc <= 32767
    kubesvc("--store", store, "patch", "svc", "lb", "-p", '{"spec":{"externalTrafficPolicy":"Cluster"}}')
    assert kubesvc("--store", store, "get", "svc", "lb", "-o", "jsonpath={.spec.healthCheckNodePort}").stdout == ""
    out = kubesvc("--store", store, "patch", "svc", "lb", "-p", '{"spec":{"externalTrafficPolicy":"Local","healthCheckNodePort":31999}}')
    assert out.returncode == 0, out.stderr
    assert kubesvc("--store", store, "get", "svc", "lb", "-o", "jsonpath={.spec.healthCheckNodePort}").stdout == "31999"


def test_load_balancer_source_ranges_refuse_clients_outside(cluster: Cluster) -> None:
    """service.md "loadBalancerSourceRanges" (and virtual-ips.md): only clients inside the ranges reach the LB
    address; others are refused (connection reset). The cluster IP and NodePort are not restricted."""
    pods = node_pods(cluster, "fw", {"a": NODE})
    inside, outside = cluster.subnet + "77", cluster.subnet + "78"
    svc = cluster.service("fw", 8080, pods["a"].port, selector={"app": "fw"}, type="LoadBalancer",
                          loadBalancerSourceRanges=[f"{inside}/32"])
    svc = cluster.store.get("Service", "default", "fw")
    cluster.start_proxy()
    lb = (svc["status"]["loadBalancer"]["ingress"][0]["ip"], 8080)

    def ask_from(source: str, addr: tuple[str, int]) -> bytes:
        with socket.socket() as s:
            s.settimeout(5)
            s.bind((source, 0))
            s.connect(addr)
            s.sendall(b"x")
            s.shutdown(socket.SHUT_WR)
            return s.recv(100)

    assert ask_from(inside, lb).startswith(b"a:")
    with pytest.raises(ConnectionResetError):
        ask_from(outside, lb)
    assert ask_from(outside, (svc["spec"]["clusterIP"], 8080)).startswith(b"a:")
    assert ask_from(outside, (cluster.node_ip, svc["spec"]["ports"][0]["nodePort"])).startswith(b"a:")


def test_headless_label_is_not_proxied(cluster: Cluster) -> None:
    """The `service.kubernetes.io/headless` label (well-known labels): kube-proxy's informers select it away,
    so such a Service gets no proxying even with a cluster IP."""
    pods = node_pods(cluster, "hl", {"a": NODE})
    port = pods["a"].port
    plain = cluster.service("plain", 8080, port, selector={"app": "hl"})
    labelled = cluster.create({"apiVersion": "v1", "kind": "Service",
                               "metadata": {"name": "hl", "namespace": "default", "labels": {"service.kubernetes.io/headless": ""}},
                               "spec": {"selector": {"app": "hl"}, "ports": [{"port": 8080, "targetPort": port}]}})
    cluster.start_proxy()
    assert seen((plain["spec"]["clusterIP"], 8080), 2) == {"a"}
    assert refused((labelled["spec"]["clusterIP"], 8080))


def test_topology_aware_hints_prefer_the_node_zone(cluster: Cluster) -> None:
    """topology-aware-routing.md ("Safeguards", kube-proxy's rules): with `service.kubernetes.io/topology-mode:
    Auto`, the proxy of a node in zone-a uses the endpoints hinted for zone-a, read from the EndpointSlices;
    without the annotation, or when an endpoint lacks a hint, every endpoint."""
    bs = backends_on_one_port(["za", "zb"], [cluster.subnet + "21", cluster.subnet + "22"], "count")
    cluster.backends += bs
    node = cluster.store.get("Node", "", NODE) or {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}}
    node["metadata"].setdefault("labels", {})["topology.kubernetes.io/zone"] = "zone-a"
    cluster.apply(node)
    svc = cluster.create({"apiVersion": "v1", "kind": "Service",
                          "metadata": {"name": "topo", "namespace": "default", "annotations": {"service.kubernetes.io/topology-mode": "Auto"}},
                          "spec": {"ports": [{"name": "p", "port": 8080, "targetPort": bs[0].port}]}})

    def slice_(hinted: bool) -> dict[str, Any]:
        eps = []
        for b, zone in zip(bs, ("zone-a", "zone-b"), strict=True):
            ep: dict[str, Any] = {"addresses": [b.host], "conditions": {"ready": True}, "zone": zone}
            if hinted or zone == "zone-a":
                ep["hints"] = {"forZones": [{"name": zone}]}
            eps.append(ep)
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "topo-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "topo"}},
                "addressType": "IPv4", "ports": [{"name": "p", "port": bs[0].port, "protocol": "TCP"}], "endpoints": eps}

    cluster.apply(slice_(hinted=True))
    cluster.start_proxy()
    cip = (svc["spec"]["clusterIP"], 8080)
    assert seen(cip) == {"za"}
    cluster.apply(slice_(hinted=False))  # zone-b's endpoint lost its hint: topology is not used
    cluster.synced()
    assert seen(cip) == {"za", "zb"}
    cluster.apply(slice_(hinted=True))
    svc = cluster.store.get("Service", "default", "topo")
    svc["metadata"]["annotations"] = {"service.kubernetes.io/topology-mode": "Disabled"}
    cluster.apply(svc)
    cluster.synced()
    assert seen(cip) == {"za", "zb"}

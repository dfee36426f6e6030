"""`kubesvc up --nodes N` (root): several nodes on one machine, each a network namespace.

Rules kept here:
- Everything is named from the store path (``ks<hash6>``), so ``down`` finds and removes it even after a crash,
  and two stores never share a namespace: ``ks<h>-net`` holds the bridge ``br0`` (172.30.0.1/16: the outside
  world as the nodes see it, where test clients run) and one veth ``n<i>`` per node; node ``i`` is the namespace
  ``ks<h>-n<i>`` with ``eth0`` = 172.30.0.(10+i)/16 (its InternalIP) and lo up.
- Pod CIDR of node ``i``: 10.(243+i).0.0/16 (node 1: 10.244.0.0/16, the single-node default), so the kubelet's
  netns plan (low 16 bits of the allocated pod IP) stays as it is; each node namespace routes every other
  node's pod CIDR via that node's IP and forwards (``net.ipv4.ip_forward=1``), so pod IPs are routable between
  nodes.
- Local only: no address or route is added to the host's own namespace; 172.30.0.0/16 and the pod CIDRs exist only
  on interfaces inside namespaces made here, so nothing is ever sent off this machine.
- ``setup`` is idempotent (it removes what a crashed run left, then builds); ``teardown`` removes every namespace
  with the prefix (veths go with their namespace) and never fails on what is already gone.
- Node names: ``kubesvc-node`` (node 1, the Node the store already has) and ``kubesvc-node-2`` .. ``-N``.
- ``localnet`` (``--proxy-mode nftables``): ``net.ipv4.conf.all.route_localnet=1`` in each node namespace (never the
  host's: the setting goes with the namespace). A client on a node dials a 127/8 cluster IP from 127.0.0.1; after the
  kernel DNATs it to a pod IP that source must leave lo (then the proxy's table masquerades it) and the answer, whose
  destination is 127.0.0.1 again once un-NATed, must be let in; as kube-proxy's iptables mode sets it for localhost
  NodePorts. The same table drops 127/8 destinations arriving on other interfaces, which route_localnet would let in.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from kubesvc.errors import ClientError

MAX_NODES = 8
CLIENT_IP = "172.30.0.1"
NETWORK = "172.30.0.0/16"
FIRST_NODE = "kubesvc-node"


@dataclass(frozen=True)
class NodeNet:
    index: int  # 1-based
    name: str  # the Node object's name
    netns: str
    ip: str
    pod_cidr: str


def prefix(store_path: str) -> str:
    return "ks" + hashlib.sha256(os.path.abspath(store_path).encode()).hexdigest()[:6]


def fabric(store_path: str) -> str:
    """The namespace holding the bridge (and where clients "outside" the nodes run)."""
    return f"{prefix(store_path)}-net"


def node_name(i: int) -> str:
    return FIRST_NODE if i == 1 else f"{FIRST_NODE}-{i}"


def plan(store_path: str, count: int) -> list[NodeNet]:
    p = prefix(store_path)
    return [NodeNet(i, node_name(i), f"{p}-n{i}", f"172.30.0.{10 + i}", f"10.{243 + i}.0.0/16") for i in range(1, count + 1)]


def check(count: int) -> None:
    if not 1 <= count <= MAX_NODES:
        raise ClientError(f"--nodes {count}: must be between 1 and {MAX_NODES}")
    if count == 1:
        return
    if os.geteuid() != 0:
        raise ClientError(f"--nodes {count} needs root (each node is a network namespace with a veth pair)")
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            raise ClientError(f"--nodes {count} needs `{tool}` (iproute2, util-linux)")


def _ip(*args: str, check: bool = True) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {r.stderr.strip()}")


def _sysctl(ns: str, setting: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", setting], capture_output=True, check=False)


def existing(store_path: str) -> list[str]:
    """The namespaces of this store that exist now."""
    p = prefix(store_path) + "-"
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(p))
    except OSError:
        return []


def setup(store_path: str, count: int, localnet: bool = False) -> list[NodeNet]:
    """Build the fabric and ``count`` node namespaces (after removing any left over). Raises OSError. ``localnet``:
    route_localnet in each node namespace (nftables mode)."""
    teardown(store_path)
    nodes = plan(store_path, count)
    net = fabric(store_path)
    try:
        _ip("netns", "add", net)
        _ip("-n", net, "link", "set", "lo", "up")
        _ip("-n", net, "link", "add", "br0", "type", "bridge")
        _ip("-n", net, "addr", "add", f"{CLIENT_IP}/16", "dev", "br0")
        _ip("-n", net, "link", "set", "br0", "up")
        for n in nodes:
            _ip("netns", "add", n.netns)
            _ip("-n", n.netns, "link", "set", "lo", "up")
            _ip("-n", net, "link", "add", f"n{n.index}", "type", "veth", "peer", "name", "eth0", "netns", n.netns)
            _ip("-n", net, "link", "set", f"n{n.index}", "master", "br0", "up")
            _ip("-n", n.netns, "addr", "add", f"{n.ip}/16", "dev", "eth0")
            _ip("-n", n.netns, "link", "set", "eth0", "up")
            _sysctl(n.netns, "net.ipv4.ip_forward=1")
            if localnet:
                _sysctl(n.netns, "net.ipv4.conf.all.route_localnet=1")
        for n in nodes:
            _ip("-n", net, "route", "replace", n.pod_cidr, "via", n.ip)
            for other in nodes:
                if other is not n:
                    _ip("-n", n.netns, "route", "replace", other.pod_cidr, "via", other.ip)
    except OSError:
        teardown(store_path)
        raise
    return nodes


def teardown(store_path: str) -> list[str]:
    """Remove every namespace of this store (node ones first, then the fabric). Returns what was removed."""
    gone = []
    for ns in sorted(existing(store_path), key=lambda n: n.endswith("-net")):
        _ip("netns", "del", ns, check=False)
        gone.append(ns)
    return gone


def wrap(n: NodeNet, argv: list[str]) -> list[str]:
    """Run ``argv`` in the node's network namespace only (``nsenter --net``: the mount namespace stays the host's,
    so the namespaces a kubelet makes for its pods are visible to everyone, and the store is the same file)."""
    return [shutil.which("nsenter") or "nsenter", f"--net=/run/netns/{n.netns}", *argv]


def publish(store_path: str, nodes: list[NodeNet]) -> None:
    """Create or update each node's Node object (InternalIP, podCIDR); drop the Nodes of a larger earlier run."""
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Store

    with Store(store_path) as store:
        reg = Registry(store)
        names = {n.name for n in nodes}
        for old in store.list("Node"):
            name = old["metadata"]["name"]
            if name.startswith(f"{FIRST_NODE}-") and name not in names:
                reg.delete("Node", "", name)
        for n in nodes:
            obj = node_object(n, store.get("Node", "", n.name))
            if store.get("Node", "", n.name) is None:
                reg.create({k: v for k, v in obj.items() if k != "status"})
            def relabel(o: dict[str, Any], obj: dict[str, Any] = obj) -> None:
                o.update(metadata={**o["metadata"], "labels": obj["metadata"]["labels"]}, spec=obj["spec"])

            def restatus(o: dict[str, Any], obj: dict[str, Any] = obj) -> None:
                o.update(status=obj["status"])

            reg.mutate("Node", "", n.name, relabel)
            reg.update_status("Node", "", n.name, restatus)


def unpublish(store_path: str) -> None:
    """One node again after ``--nodes N``: drop the other nodes' Node objects and give the first its loopback
    InternalIP back (the kubelet reports it as its pods' ``status.hostIP``); nothing is written when nothing changed."""
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Store

    with Store(store_path) as store:
        reg = Registry(store)
        for old in store.list("Node"):
            if old["metadata"]["name"].startswith(f"{FIRST_NODE}-"):
                reg.delete("Node", "", old["metadata"]["name"])
        first = store.get("Node", "", FIRST_NODE)
        addrs = ((first or {}).get("status") or {}).get("addresses") or []
        if not any(a.get("type") == "InternalIP" and a.get("address") == "127.0.0.1" for a in addrs) and first:
            def restatus(o: dict[str, Any]) -> None:
                st = o.setdefault("status", {})
                rest = [a for a in st.get("addresses") or [] if a.get("type") != "InternalIP"]
                st["addresses"] = [{"type": "InternalIP", "address": "127.0.0.1"}, *rest]

            reg.update_status("Node", "", FIRST_NODE, restatus)


def node_object(n: NodeNet, base: dict[str, Any] | None) -> dict[str, Any]:
    """The Node object of ``n``: ``base`` (the stored one, or None) with InternalIP = the node IP and podCIDR."""
    import copy

    obj: dict[str, Any] = copy.deepcopy(base) if base else {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n.name}}
    meta = obj.setdefault("metadata", {})
    meta.setdefault("labels", {}).update({"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux"})
    obj.setdefault("spec", {}).update({"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]})
    status = obj.setdefault("status", {})
    others = [a for a in status.get("addresses") or [] if a.get("type") not in ("InternalIP", "Hostname")]
    status["addresses"] = [{"type": "InternalIP", "address": n.ip}, {"type": "Hostname", "address": n.name}, *others]
    status.setdefault("conditions", [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                      "message": "kubelet is posting ready status"}])
    return obj

"""Service semantics checked with plain sockets and curl, each naming the upstream text it checks.

- Reject: Kubernetes e2e `test/e2e/network/service.go` "should be rejected when no endpoints exist" (a Service
  without ready endpoints refuses: kube-proxy's REJECT rule, TCP RST / ICMP port unreachable), on every address
  kube-proxy installs the rule for (cluster IP, NodePort, external IPs, load-balancer IPs; kubernetes#43415,
  #44547, #74394), and service comes back with the endpoints.
- Source IP: docs `reference/networking/virtual-ips.md` "Example" of the iptables mode ("packets are redirected
  to the backends without rewriting the client IP address") and `tutorials/services/source-ip.md`
  ("Source IP for Services with Type=ClusterIP" / "Type=NodePort": `externalTrafficPolicy: Local` keeps it).
"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess

import pytest

from tests.dataplane.conftest import Cluster


def tcp_connect_errno(addr: tuple[str, int]) -> int:
    """0 when connect() succeeds, else its errno."""
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(addr)
        return 0
    except OSError as e:
        return e.errno or -1
    finally:
        s.close()


def udp_ask(addr: tuple[str, int], data: bytes = b"hello", source: str = "127.0.0.1") -> bytes | int:
    """One datagram on a connected UDP socket: the answer, or the errno of the failed recv."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    try:
        s.bind((source, 0))
        s.connect(addr)
        s.send(data)
        return s.recv(65536)
    except OSError as e:
        return e.errno or -1
    finally:
        s.close()


def peer_seen(addr: tuple[str, int], source: str) -> str:
    """An HTTP request from ``source`` (port picked by the kernel) to a ``peer`` backend: the IP it saw."""
    with socket.socket() as s:
        s.settimeout(5)
        s.bind((source, 0))
        s.connect(addr)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode().strip()


def addresses(svc: dict, cluster: Cluster) -> list[tuple[str, int]]:
    port = svc["spec"]["ports"][0]
    out = [(svc["spec"]["clusterIP"], port["port"]), (cluster.node_ip, port["nodePort"])]
    out += [(ip, port["port"]) for ip in svc["spec"].get("externalIPs", [])]
    out += [(i["ip"], port["port"]) for i in (svc.get("status") or {}).get("loadBalancer", {}).get("ingress", [])]
    return out


# ------------------------------------------------------------------------------------------ reject


@pytest.mark.usefixtures("proxy_mode")
@pytest.mark.parametrize("proto", ["TCP", "UDP"])
def test_no_endpoints_is_refused_on_every_address_and_endpoints_restore_it(cluster: Cluster, backend, proto: str) -> None:  # type: ignore[no-untyped-def]
    """e2e service.go "should be rejected when no endpoints exist": ECONNREFUSED at connect (TCP) or on the
    connected socket's recv after ICMP port unreachable (UDP), on cluster IP, NodePort, external IP and LB IP."""
    b = backend("a", cluster.subnet + "1", 0, "count" if proto == "TCP" else "echo", proto)
    svc = cluster.service("empty", 8080, b.port, proto=proto, selector={"app": "later"}, type="LoadBalancer",
                          externalIPs=[cluster.subnet + "200"])
    cluster.start_proxy()
    addrs = addresses(svc, cluster)
    assert len(addrs) == 4

    def refused(addr: tuple[str, int]) -> bool:
        if proto == "TCP":
            return tcp_connect_errno(addr) == errno.ECONNREFUSED
        return udp_ask(addr) == errno.ECONNREFUSED

    for addr in addrs:
        assert refused(addr), addr
    # A ready endpoint appears: every address serves within the sync latency.
    cluster.pod("pod-a", b.host, {"app": "later"}, b.port)
    cluster.synced()
    for addr in addrs:
        if proto == "TCP":
            assert tcp_connect_errno(addr) == 0, addr
        else:
            assert udp_ask(addr) == b"a:hello", addr
    # And gone again: refused again.
    cluster.delete("Pod", "pod-a")
    cluster.synced()
    for addr in addrs:
        assert refused(addr), addr


@pytest.mark.usefixtures("proxy_mode")
def test_tcp_connection_open_when_endpoints_vanish_keeps_running(cluster: Cluster, backend) -> None:  # type: ignore[no-untyped-def]
    """Closing the refusing listener does not cut established connections (the REJECT rule matches new ones only)."""
    b = backend("a", cluster.subnet + "1", 0, "echo")
    svc = cluster.service("held", 8080, b.port, selector={"app": "held"})
    cluster.pod("pod-a", b.host, {"app": "held"}, b.port)
    cluster.start_proxy()
    vip = (svc["spec"]["clusterIP"], 8080)
    with socket.create_connection(vip, timeout=5) as held:
        held.sendall(b"one")
        assert held.recv(10) == b"one"
        cluster.delete("Pod", "pod-a")
        cluster.synced()
        assert tcp_connect_errno(vip) == errno.ECONNREFUSED
        held.sendall(b"two")
        assert held.recv(10) == b"two"


# ------------------------------------------------------------------------------------------ source IP


@pytest.mark.usefixtures("proxy_mode")
@pytest.mark.parametrize("policy", ["Cluster", "Local"])
def test_tcp_source_ip_preserved_on_cluster_ip_and_node_port(cluster: Cluster, backend, policy: str) -> None:  # type: ignore[no-untyped-def]
    """virtual-ips.md iptables "Example": the backend sees the client's IP; source-ip.md: for NodePort,
    `externalTrafficPolicy: Local` keeps it and `Cluster` may SNAT (kubesvc keeps it on this machine either way)."""
    b = backend("a", cluster.subnet + "1", 0, "peer")
    svc = cluster.service("peer", 8080, b.port, selector={"app": "peer"}, type="NodePort", externalTrafficPolicy=policy)
    cluster.pod("pod-a", b.host, {"app": "peer"}, b.port)
    cluster.start_proxy()
    client = cluster.subnet + "77"
    for addr in addresses(svc, cluster):
        assert peer_seen(addr, client) == client, addr
        assert peer_seen(addr, "127.0.0.1") == "127.0.0.1", addr


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_from_another_loopback_address_arrives_from_it(cluster: Cluster, backend) -> None:  # type: ignore[no-untyped-def]
    """virtual-ips.md iptables "Example" ("without rewriting the client IP address"), with curl --interface."""
    b = backend("a", cluster.subnet + "1", 0, "peer")
    svc = cluster.service("curl", 8080, b.port, selector={"app": "curl"})
    cluster.pod("pod-a", b.host, {"app": "curl"}, b.port)
    cluster.start_proxy()
    out = subprocess.run(["curl", "-sS", "--max-time", "5", "--interface", "127.153.250.9",
                          f"http://{svc['spec']['clusterIP']}:8080/"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "127.153.250.9"


@pytest.mark.usefixtures("proxy_mode")
def test_udp_source_ip_preserved_on_cluster_ip_and_node_port(cluster: Cluster, backend) -> None:  # type: ignore[no-untyped-def]
    """virtual-ips.md iptables "Example" for UDP: the endpoint sees the client's address, replies come back."""
    b = backend("a", cluster.subnet + "1", 0, "peer", "UDP")
    svc = cluster.service("udp-peer", 5353, b.port, proto="UDP", selector={"app": "udp-peer"}, type="NodePort")
    cluster.pod("pod-a", b.host, {"app": "udp-peer"}, b.port)
    cluster.start_proxy()
    client = cluster.subnet + "78"
    for addr in addresses(svc, cluster):
        assert udp_ask(addr, source=client) == client.encode(), addr
        assert udp_ask(addr) == b"127.0.0.1", addr


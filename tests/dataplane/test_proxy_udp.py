"""UDP through the proxy: echo, replies from the service address, one flow per client, idle timeout."""

from __future__ import annotations

import socket

from tests.dataplane.conftest import Cluster
from tests.support.procs import wait_for


def udp_ask(addr: tuple[str, int], data: bytes, sock: socket.socket | None = None) -> tuple[bytes, tuple[str, int]]:
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(5)
        s.sendto(data, addr)
        return s.recvfrom(65535)
    finally:
        if sock is None:
            s.close()


def test_udp_echo_through_the_proxy(cluster: Cluster) -> None:
    bs = cluster.three_backends(proto="UDP")
    svc = cluster.service("dns", 5353, bs[0].port, proto="UDP", selector={"app": "echo"})
    cluster.start_proxy("--udp-timeout", "300ms")
    vip = (svc["spec"]["clusterIP"], 5353)

    # One client socket = one flow = one backend; replies come from the service address.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        replies = [udp_ask(vip, b"q%d" % i, s) for i in range(5)]
    names = {r[0].split(b":")[0] for r in replies}
    assert len(names) == 1
    assert all(r[1] == vip for r in replies)
    assert [r[0].split(b":", 1)[1] for r in replies] == [b"q%d" % i for i in range(5)]

    # Fresh clients are balanced round robin.
    seen = {udp_ask(vip, b"hi")[0].split(b":")[0] for _ in range(3)}
    assert seen == {b"a", b"b", b"c"}

    # Large datagrams pass whole (kube-proxy's userspace mode cut them at 4 KiB).
    big = b"z" * 60000
    assert udp_ask(vip, big)[0].endswith(big)

    # Idle flows are dropped after --udp-timeout.
    wait_for(lambda: 'kubesvc_proxy_udp_flows{namespace="default",service="dns",port="p",protocol="UDP"} 0' in cluster.metrics(),
             timeout=5, interval=0.1, what="idle UDP flows swept")

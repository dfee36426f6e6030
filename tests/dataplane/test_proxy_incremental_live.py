"""A live proxy's incremental syncs, in both modes: an address two Services want moves between them as the first
(in namespace/name order) comes and goes, though only one of them changed in each write: the other one's listener
(userspace: the same socket re-targeted) or map element (nftables) follows."""

from __future__ import annotations

import socket

from tests.dataplane.conftest import Cluster, ask
from tests.support.servers import backends_on_one_port


def who(addr: tuple[str, int]) -> str:
    return ask(addr).decode().split("\n")[0]  # a "name" backend answers its name, then what it got


def refused(addr: tuple[str, int]) -> bool:
    try:
        socket.create_connection(addr, timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_shared_external_ip_follows_the_first_service(cluster: Cluster, proxy_mode: str) -> None:
    bs = backends_on_one_port(["a", "b"], [cluster.subnet + "1", cluster.subnet + "2"], "name", "TCP")
    cluster.backends += bs
    for b in bs:
        cluster.pod(f"pod-{b.name}", b.host, {"app": b.name}, b.port)
    ext = (cluster.subnet + "100", 8080)
    cluster.start_proxy()
    second = cluster.service("s2", 8080, bs[1].port, selector={"app": "b"}, externalIPs=[ext[0]])
    cluster.synced()
    assert who(ext) == "b"  # the only Service wanting it
    cluster.service("s1", 8080, bs[0].port, selector={"app": "a"}, externalIPs=[ext[0]])
    cluster.synced()
    assert who(ext) == "a"  # s1 sorts first: it takes the address; s2 did not change
    assert who((second["spec"]["clusterIP"], 8080)) == "b"
    cluster.delete("Service", "s1")
    cluster.synced()
    assert who(ext) == "b"  # back to s2, again without a write to it
    cluster.delete("Pod", "pod-b")  # s2 loses its endpoint: the address refuses (no socket / REJECT)
    cluster.synced()
    assert refused(ext)
    cluster.pod("pod-b", bs[1].host, {"app": "b"}, bs[1].port)
    cluster.synced()
    assert who(ext) == "b"

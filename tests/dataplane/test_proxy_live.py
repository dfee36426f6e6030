"""The proxy follows the store while it runs: Services and Pods added, changed, deleted, with a client
holding a connection open the whole time."""

from __future__ import annotations

import socket

from tests.dataplane.conftest import Cluster, who
from tests.support.procs import wait_for


def test_live_add_change_delete_while_a_connection_stays_open(cluster: Cluster) -> None:
    cluster.start_proxy()
    bs = cluster.three_backends(mode="echo", labels={"app": "echo"})
    svc = cluster.service("live", 8080, bs[0].port, selector={"app": "echo"})
    vip = (svc["spec"]["clusterIP"], 8080)
    cluster.synced()

    held = socket.create_connection(vip, timeout=5)  # stays open across every change below
    held.sendall(b"ping")
    assert held.recv(10) == b"ping"

    def answers() -> set[str]:
        out = set()
        for _ in range(6):
            with socket.create_connection(vip, timeout=5) as s:
                s.sendall(b"who")
                s.recv(10)
                out.add(s.getpeername()[0])
        return out

    # Pod deleted -> its endpoint leaves the rotation (backends are identified by accept counts).
    held_backend = next(b for b in bs if b.conns)
    gone = next(b for b in bs if b is not held_backend)
    cluster.delete("Pod", f"pod-{gone.name}")
    cluster.synced()
    before = gone.accepted
    answers()
    assert gone.accepted == before

    # Service changed (new port added) -> both ports served; the held connection still works.
    svc = cluster.reg.get("Service", "default", "live")
    svc["spec"]["ports"].append({"name": "q", "port": 8081, "targetPort": bs[0].port, "protocol": "TCP"})
    cluster.reg.replace(svc)
    cluster.synced()
    with socket.create_connection((svc["spec"]["clusterIP"], 8081), timeout=5) as s:
        s.sendall(b"x")
        assert s.recv(1) == b"x"
    held.sendall(b"still")
    assert held.recv(10) == b"still"

    # Service deleted -> the listener closes (connect refused) but the held connection survives.
    cluster.delete("Service", "live")
    cluster.synced()
    refused = False
    try:
        socket.create_connection(vip, timeout=2).close()
    except ConnectionRefusedError:
        refused = True
    assert refused
    held.sendall(b"alive")
    assert held.recv(10) == b"alive"
    held.close()


def test_service_created_while_running_is_served_quickly(cluster: Cluster) -> None:
    cluster.start_proxy()
    bs = cluster.three_backends()
    svc = cluster.service("late", 8080, bs[0].port, selector={"app": "echo"})
    assert wait_for(lambda: who((svc["spec"]["clusterIP"], 8080)) in {"a", "b", "c"}, timeout=5)


def test_endpoints_appear_for_a_service_that_had_none(cluster: Cluster) -> None:
    svc = cluster.service("later", 8080, 0 or 9, selector={"app": "echo"})
    cluster.start_proxy()
    bs = backends = cluster.three_backends()
    svc = cluster.reg.get("Service", "default", "later")
    svc["spec"]["ports"][0]["targetPort"] = bs[0].port
    cluster.reg.replace(svc)
    cluster.synced()
    assert {who((svc["spec"]["clusterIP"], 8080)) for _ in range(3)} == {"a", "b", "c"}
    del backends

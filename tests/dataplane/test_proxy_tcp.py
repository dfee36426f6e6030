"""`kubesvc proxy` over real loopback sockets: round robin, affinity, failover, reject, NodePort/LB, half-close."""

from __future__ import annotations

import socket
import time

import pytest

from tests.dataplane.conftest import Cluster, ask, who
from tests.support.procs import wait_for


def test_round_robin_across_three_backends(cluster: Cluster) -> None:
    bs = cluster.three_backends()
    svc = cluster.service("echo", 8080, bs[0].port, selector={"app": "echo"})
    cluster.start_proxy()
    vip = (svc["spec"]["clusterIP"], 8080)
    seen = [who(vip) for _ in range(9)]
    assert sorted(seen) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert seen[3:6] == seen[:3] and seen[6:] == seen[:3]  # strict rotation


def test_client_ip_affinity_sticks_then_times_out(cluster: Cluster) -> None:
    bs = cluster.three_backends()
    svc = cluster.service("sticky", 8080, bs[0].port, selector={"app": "echo"},
                          sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 1}})
    cluster.start_proxy()
    vip = (svc["spec"]["clusterIP"], 8080)
    first = who(vip)
    assert [who(vip) for _ in range(5)] == [first] * 5
    # Idle for more than timeoutSeconds: the next connection is balanced again (and lands elsewhere).
    time.sleep(1.1)
    assert who(vip) != first


def test_failover_when_a_backend_stops_mid_run(cluster: Cluster) -> None:
    bs = cluster.three_backends()
    svc = cluster.service("echo", 8080, bs[0].port, selector={"app": "echo"})
    cluster.start_proxy()
    vip = (svc["spec"]["clusterIP"], 8080)
    assert {who(vip) for _ in range(3)} == {"a", "b", "c"}
    bs[1].stop()  # b goes away without the store knowing: connects are refused and retried
    answers = [who(vip) for _ in range(12)]
    assert set(answers) == {"a", "c"}
    assert "kubesvc_proxy_connect_failures_total" in cluster.metrics()
    failures = [ln for ln in cluster.metrics().splitlines() if ln.startswith("kubesvc_proxy_connect_failures_total{")]
    assert int(failures[0].rsplit(" ", 1)[1]) >= 1


def test_endpoint_that_never_answers_times_out_and_the_next_one_serves(cluster: Cluster, backend) -> None:  # type: ignore[no-untyped-def]
    live = backend("x", cluster.subnet + "11", 0, "count")
    # A black hole: a listener with a full accept queue drops further SYNs, so connects to it time out.
    hole = socket.socket()
    fillers: list[socket.socket] = []
    try:
        hole.bind((cluster.subnet + "21", 0))
        hole.listen(0)
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(hole.getsockname())
            fillers.append(c)
        svc = cluster.service("hole", 9090, 9090)
        cluster.create({
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "hole", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": live.host}], "ports": [{"name": "p", "port": live.port}]},
                        {"addresses": [{"ip": cluster.subnet + "21"}], "ports": [{"name": "p", "port": hole.getsockname()[1]}]}],
        })
        cluster.start_proxy()
        vip = (svc["spec"]["clusterIP"], 9090)
        assert [ask(vip, b"abc").decode() for _ in range(4)] == ["x:3\n"] * 4
        # Each retry advances the rotation, so after the first pick every connection tries the hole first
        # (250 ms timeout) and then x: 3 or 4 timed-out connects, depending on where the rotation began.
        failures = [ln for ln in cluster.metrics().splitlines() if ln.startswith("kubesvc_proxy_connect_failures_total{")]
        assert int(failures[0].rsplit(" ", 1)[1]) in (3, 4)
    finally:
        for c in fillers:
            c.close()
        hole.close()


@pytest.mark.usefixtures("proxy_mode")
def test_service_without_endpoints_refuses_at_once(cluster: Cluster) -> None:
    """No ready endpoint: connect() is refused (no listener: kube-proxy's REJECT), not accepted then reset.
    The full matrix (every address, UDP, endpoints coming back) is in test_proxy_semantics.py."""
    svc = cluster.service("empty", 8080, 9999, selector={"app": "nothing"})
    cluster.start_proxy()
    try:
        socket.create_connection((svc["spec"]["clusterIP"], 8080), timeout=5).close()
        raise AssertionError("connect succeeded")
    except ConnectionRefusedError:
        pass
    status = cluster.http_get("healthz", "/healthz")
    assert '"revision"' in status


@pytest.mark.usefixtures("proxy_mode")
def test_nodeport_and_load_balancer_listeners(cluster: Cluster) -> None:
    bs = cluster.three_backends()
    svc = cluster.service("lb", 8080, bs[0].port, selector={"app": "echo"}, type="LoadBalancer")
    cluster.start_proxy()
    node_port = svc["spec"]["ports"][0]["nodePort"]
    lb_ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    for addr in [(svc["spec"]["clusterIP"], 8080), (cluster.node_ip, node_port), (lb_ip, 8080)]:
        assert who(addr) in {"a", "b", "c"}, addr


@pytest.mark.usefixtures("proxy_mode")
def test_external_ip_that_is_local_is_served(cluster: Cluster) -> None:
    bs = cluster.three_backends()
    ext = cluster.subnet + "200"
    cluster.service("ext", 8080, bs[0].port, selector={"app": "echo"}, externalIPs=[ext])
    cluster.start_proxy()
    assert who((ext, 8080)) in {"a", "b", "c"}


def test_selectorless_service_with_external_endpoints(cluster: Cluster, backend) -> None:  # type: ignore[no-untyped-def]
    b1 = backend("x", cluster.subnet + "11", 0, "count")
    b2 = backend("y", cluster.subnet + "12", 0, "count")
    svc = cluster.service("outside", 9090, 9090)
    cluster.create({
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "outside", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": b1.host}], "ports": [{"name": "p", "port": b1.port}]},
                    {"addresses": [{"ip": b2.host}], "ports": [{"name": "p", "port": b2.port}]}],
    })
    cluster.start_proxy()
    vip = (svc["spec"]["clusterIP"], 9090)
    assert sorted(who(vip) for _ in range(4)) == ["x", "x", "y", "y"]


def test_half_close_reaches_backend_and_reply_comes_back(cluster: Cluster) -> None:
    bs = cluster.three_backends(mode="count")
    svc = cluster.service("hc", 8080, bs[0].port, selector={"app": "echo"})
    cluster.start_proxy()
    payload = b"x" * 100_000
    reply = ask((svc["spec"]["clusterIP"], 8080), payload)  # sends, shutdown(SHUT_WR), reads the answer
    name, count = reply.decode().strip().split(":")
    assert name in {"a", "b", "c"} and int(count) == len(payload)


def test_slow_reader_is_back_pressured_not_buffered(cluster: Cluster) -> None:
    bs = cluster.three_backends(mode="echo")
    svc = cluster.service("slow", 8080, bs[0].port, selector={"app": "echo"})
    cluster.start_proxy()
    with socket.create_connection((svc["spec"]["clusterIP"], 8080), timeout=5) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.setblocking(False)
        sent = 0
        chunk = b"y" * 65536
        deadline = time.monotonic() + 10
        # Write without reading until the kernel refuses: the echo path is full everywhere.
        while time.monotonic() < deadline:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)
                try:
                    sent += s.send(chunk)
                except BlockingIOError:
                    break
        assert time.monotonic() < deadline, "the proxy kept accepting data from a client that never reads"
        assert sent < 64 * 1024 * 1024  # bounded: socket buffers plus the proxy's high-water marks
        # Now read everything back: nothing was lost.
        s.setblocking(True)
        s.shutdown(socket.SHUT_WR)
        got = 0
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            got += len(d)
    assert got == sent


def test_thousand_concurrent_connections_held_and_served(cluster: Cluster) -> None:
    bs = cluster.three_backends(mode="echo")
    svc = cluster.service("many", 8080, bs[0].port, selector={"app": "echo"})
    cluster.start_proxy()
    vip = (svc["spec"]["clusterIP"], 8080)
    socks = []
    try:
        for _ in range(1000):
            socks.append(socket.create_connection(vip, timeout=10))
        for i, s in enumerate(socks):
            s.sendall(b"%d\n" % i)
        for i, s in enumerate(socks):
            want = b"%d\n" % i
            got = b""
            while len(got) < len(want):
                d = s.recv(64)
                assert d, f"connection {i} closed early"
                got += d
            assert got == want
        m = cluster.metrics()
        assert 'kubesvc_proxy_connections_open{namespace="default",service="many",port="p",protocol="TCP"} 1000' in m
    finally:
        for s in socks:
            s.close()
    assert sum(b.accepted for b in bs) == 1000 and all(b.accepted > 300 for b in bs)


def test_healthz_and_metrics_endpoints(cluster: Cluster) -> None:
    cluster.start_proxy()
    assert '"lastUpdated"' in cluster.http_get("healthz", "/healthz")
    m = cluster.metrics()
    assert "kubeproxy_sync_proxy_rules_duration_seconds_count" in m


def test_an_address_that_cannot_be_bound_is_reported_and_others_serve(cluster: Cluster, backend) -> None:  # type: ignore[no-untyped-def]
    import random

    bs = cluster.three_backends()
    for _ in range(20):  # someone already holds a NodePort-range port on the node address
        try:
            squatter = backend("squat", cluster.node_ip, random.randint(30000, 32767), "echo")
            break
        except OSError:
            continue
    svc = cluster.service("np", 8080, bs[0].port, selector={"app": "echo"}, type="NodePort")
    svc["spec"]["ports"][0]["nodePort"] = squatter.port
    svc["metadata"].pop("resourceVersion")
    cluster.reg.replace(svc)
    cluster.start_proxy()
    assert cluster.fields["bindErrors"] == "1"
    assert "kubesvc_proxy_bind_errors 1" in cluster.metrics()
    assert who((svc["spec"]["clusterIP"], 8080)) in {"a", "b", "c"}  # the rest keeps serving
    # the log line reaches us through the proxy's stderr pipe, read by a thread: wait for it (bounded)
    wait_for(lambda: any("address already in use" in line and "default/np:p" in line for line in cluster.proxy.stderr),
             timeout=10, what="the bind error's log line")

"""`kubesvc proxy --workers N`: worker processes share every listening socket (SO_REUSEPORT), their counters
reach the primary's /metrics, ClientIP affinity holds across processes, and workers end with the primary."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from pathlib import Path

from tests.dataplane.conftest import Cluster, ask
from tests.support.procs import wait_for


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def worker_counters(pid: int) -> dict[str, int]:
    """The counters a worker process left for the primary (its directory is in its command line)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    opts = json.loads(argv[3])["options"]
    with open(os.path.join(opts["worker_dir"], f"{pid}.json")) as f:
        return {"total": sum(vals["total"] for _, vals in json.load(f))}


def connections_total(metrics: str, service: str = "web") -> int:
    pattern = r'^kubesvc_proxy_connections_total\{[^}]*service="' + service + r'"[^}]*\} (\d+)$'
    return sum(int(v) for v in re.findall(pattern, metrics, re.MULTILINE))


def test_workers_share_the_listener_and_report_to_the_primary(cluster: Cluster) -> None:
    cluster.three_backends("count", labels={"app": "web"})
    svc = cluster.service("web", 8080, cluster.backends[0].port, selector={"app": "web"})
    fields = cluster.start_proxy("--workers", "2")
    assert fields["workers"] == "2"
    assert cluster.proxy is not None
    primary = cluster.proxy.p.pid
    kids = children(primary)
    assert len(kids) == 1
    vip = (svc["spec"]["clusterIP"], 8080)
    for i in range(60):  # fresh source ports: the kernel's 4-tuple hash spreads them over both processes
        assert ask(vip, b"x" * i).decode().endswith(f":{i}\n")
    wait_for(lambda: worker_counters(kids[0])["total"] > 0, timeout=5, what="the worker accepted connections")
    wait_for(lambda: connections_total(cluster.metrics()) == 60, timeout=5, what="/metrics counts all 60 connections")
    assert worker_counters(kids[0])["total"] < 60  # the primary accepted some too

    # The primary killed outright: its worker follows (PR_SET_PDEATHSIG), the address is free again.
    os.kill(primary, signal.SIGKILL)
    cluster.proxy.p.wait(5)
    wait_for(lambda: not alive(kids[0]), timeout=5, what="worker gone with the primary")
    with socket.socket() as s:
        s.bind(vip)


def test_client_ip_affinity_holds_across_workers(cluster: Cluster) -> None:
    cluster.three_backends("count", labels={"app": "sticky"})
    svc = cluster.service("sticky", 8080, cluster.backends[0].port, selector={"app": "sticky"}, sessionAffinity="ClientIP")
    cluster.start_proxy("--workers", "2")
    vip = (svc["spec"]["clusterIP"], 8080)
    for client in range(1, 9):  # each client IP keeps one backend, whichever process accepts its connections
        src = f"{cluster.subnet}{100 + client}"
        seen = set()
        for _ in range(12):
            with socket.create_connection(vip, timeout=5, source_address=(src, 0)) as s:
                s.shutdown(socket.SHUT_WR)
                seen.add(s.recv(100).decode().split(":")[0])
        assert len(seen) == 1, f"client {src} reached {seen}"
    # Each client's 12 connections went to one process: the worker's share is a multiple of 12.
    assert cluster.proxy is not None
    kids = children(cluster.proxy.p.pid)
    wait_for(lambda: connections_total(cluster.metrics(), "sticky") == 96, timeout=5, what="/metrics counts all 96")
    assert worker_counters(kids[0])["total"] % 12 == 0
    cluster.proxy.stop()
    wait_for(lambda: not any(alive(k) for k in kids), timeout=5, what="workers stopped with the primary")


def test_workers_auto_is_one_per_cpu_and_bad_values_are_one_line_errors(cluster: Cluster, tmp_path: Path) -> None:
    import subprocess
    import sys

    cpus = len(os.sched_getaffinity(0))
    fields = cluster.start_proxy("--workers", "auto")
    assert fields.get("workers", "1") == str(min(cpus, 64))
    assert cluster.proxy is not None
    assert len(children(cluster.proxy.p.pid)) == min(cpus, 64) - 1
    for bad in ("0", "65", "many"):
        out = subprocess.run([sys.executable, "-m", "kubesvc", "--store", str(tmp_path / "bad.db"), "proxy", "--workers", bad],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode != 0
        assert out.stderr.strip() == f"error: --workers: {bad!r} is not a number from 1 to 64 or 'auto'"

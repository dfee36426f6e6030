"""`kubesvc port-forward` to a pod and through a Service's port mapping, several ports, many connections, a
closed pod port reported without ending the forward; loopback by default."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.cli.streams_bed import bed  # noqa: F401
from tests.support.live import stop_popen
from tests.support.procs import ROOT
from tests.workloads.fixtures import Bed


class Forward:
    def __init__(self, bed: Bed, *args: str) -> None:  # noqa: F811
        self.p = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", bed.store_path, "port-forward", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
        self.lines: list[str] = []

    def ports(self, n: int) -> list[tuple[str, int]]:
        assert self.p.stdout is not None
        out = []
        while len(out) < n:
            line = self.p.stdout.readline()
            assert line, self.stop()
            if line.startswith("Forwarding from "):
                addr, port = line.split()[2].rsplit(":", 1)
                out.append((addr, int(port)))
        return out

    def stop(self) -> str:
        return stop_popen(self.p)


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        return r.read().decode()


@pytest.mark.parametrize("target,remote", [("pod/web", "8080"), ("web", "8080"), ("svc/web", "80")])
def test_forward(bed: Bed, target: str, remote: str) -> None:  # noqa: F811
    f = Forward(bed, target, f":{remote}")
    try:
        ((addr, port),) = f.ports(1)
        assert addr == "127.0.0.1"
        assert _get(port) == "web\n"
    finally:
        f.stop()


def test_several_ports_many_connections_and_a_closed_port(bed: Bed) -> None:  # noqa: F811
    f = Forward(bed, "pod/web", "0:8080", ":8080", ":9")
    try:
        (_, a), (_, b), (_, closed) = f.ports(3)
        got: list[str] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            body = _get((a, b)[i % 2])
            with lock:
                got.append(body)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert got == ["web\n"] * 50
        with socket.create_connection(("127.0.0.1", closed), timeout=10) as s:
            s.settimeout(10)
            assert s.recv(10) == b""
        assert _get(a) == "web\n"  # still forwarding
    finally:
        err = f.stop()
    assert f"an error occurred forwarding {closed} -> 9: dial tcp" in err and "connection refused" in err


def test_errors(bed: Bed) -> None:  # noqa: F811
    r = subprocess.run([sys.executable, "-m", "kubesvc", "--store", bed.store_path, "port-forward", "svc/web", "81"],
                       capture_output=True, text=True, cwd=str(ROOT), timeout=30)
    assert r.returncode == 1 and "Service web does not have a service port 81" in r.stderr
    r = subprocess.run([sys.executable, "-m", "kubesvc", "--store", bed.store_path, "port-forward", "pod/web"],
                       capture_output=True, text=True, cwd=str(ROOT), timeout=30)
    assert r.returncode == 1 and "TYPE/NAME and list of ports are required for port-forward" in r.stderr

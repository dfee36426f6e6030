"""`kubesvc port-forward` to a pod and through a Service's port mapping, several ports, many connections, a
closed pod port reported without ending the forward; loopback by default."""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.cli.streams_bed import bed  # noqa: F401
from tests.support.procs import ROOT
from tests.workloads.fixtures import Bed


class Forward:
    def __init__(self, bed: Bed, *args: str) -> None:  # noqa: F811
        self.p = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", bed.store_path, "port-forward", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=lambda: self.err.extend(self.p.stderr or []), daemon=True)]
        for t in self.readers:
            t.start()

    def _read(self) -> None:
        for line in self.p.stdout or []:
            self.lines.put(line)
        self.lines.put("")

    def ports(self, n: int, timeout: float = 30) -> list[tuple[str, int]]:
        """The first ``n`` "Forwarding from" addresses; fails (and stops the forward) if the process ends or
        prints none within ``timeout`` seconds instead of hanging the test."""
        out = []
        while len(out) < n:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no 'Forwarding from' line in {timeout} s: {self.stop()}") from None
            assert line, self.stop()
            if line.startswith("Forwarding from "):
                addr, port = line.split()[2].rsplit(":", 1)
                out.append((addr, int(port)))
        return out

    def stop(self) -> str:
        """SIGTERM, bounded wait, then SIGKILL; returns what the forward wrote to stderr."""
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=10)
        for t in self.readers:
            t.join(timeout=10)
        return "".join(self.err)


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

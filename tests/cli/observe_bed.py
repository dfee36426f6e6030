"""The bed of the top/trace tests: a real `kubesvc proxy` on a private store, a Service `web` (ClientIP affinity) with
one live echo endpoint and one endpoint nothing listens on (its dials are refused), and a loopback client."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.dataplane.conftest import Cluster
from tests.support.procs import Proc
from tests.support.servers import Backend, backends_on_one_port


class Bed(Cluster):
    live: Backend
    dead: str
    web: dict

    @property
    def vip(self) -> tuple[str, int]:
        return self.web["spec"]["clusterIP"], self.web["spec"]["ports"][0]["port"]

    def talk(self, source: str = "127.0.0.1", data: bytes = b"hello") -> bytes:
        """One connection through the cluster IP from ``source``: send, half-close, read the echo."""
        with socket.socket() as s:
            s.settimeout(10)
            s.bind((source, 0))
            s.connect(self.vip)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out

    def hold(self, source: str = "127.0.0.1") -> socket.socket:
        """A connection left open (echoed once, so it is linked to its endpoint); the caller closes it."""
        s = socket.create_connection(self.vip, timeout=10, source_address=(source, 0))
        s.sendall(b"ping")
        assert s.recv(16) == b"ping"
        return s


@pytest.fixture
def bed(tmp_path: Path, kubesvc_proc: Callable[..., Proc], backend: Callable[..., Backend]) -> Iterator[Bed]:
    b = Bed(tmp_path, kubesvc_proc, backend)
    try:
        (b.live,) = backends_on_one_port(["live"], [b.subnet + "1"], "echo")
        b.backends.append(b.live)
        b.dead = f"{b.subnet}2:{b.live.port}"
        b.pod("pod-live", b.subnet + "1", {"app": "web"}, b.live.port)
        b.pod("pod-dead", b.subnet + "2", {"app": "web"}, b.live.port)
        b.web = b.service("web", 80, b.live.port, selector={"app": "web"}, sessionAffinity="ClientIP")
        b.start_proxy()
        b.synced()
        yield b
    finally:
        if b.proxy is not None:
            b.proxy.stop()
        b.close()

"""The proxy test bed: a store written through the real registry, a real `kubesvc proxy` subprocess on
its own NodePort address and ephemeral healthz/metrics ports, so tests run in parallel."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.support.procs import Proc, ready_fields, wait_for
from tests.support.servers import Backend, backends_on_one_port


def random_subnet() -> str:
    """127.A.B. with A in 150..199: clear of the service (127.96/12), LB (127.240/16) and pod ranges."""
    return f"127.{random.randint(150, 199)}.{random.randint(0, 255)}."


class Cluster:
    def __init__(self, tmp_path: Path, spawn: Callable[..., Proc], backend: Callable[..., Backend]) -> None:
        self.store_path = str(tmp_path / "store.db")
        self.store = Store(self.store_path)
        self.reg = Registry(self.store)
        self.spawn = spawn
        self.backend = backend
        self.subnet = random_subnet()
        self.node_ip = self.subnet + "254"
        self.proxy: Proc | None = None
        self.fields: dict[str, str] = {}
        self.backends: list[Backend] = []
        self.mode = "userspace"  # the proxy_mode fixture sets nftables
        self.nft_table = f"kubesvc-test-{random.randrange(16**8):08x}"  # per test: parallel tests never share a table

    # -- objects
    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.reg.create(obj).object

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.reg.apply(obj).object

    def delete(self, kind: str, name: str, ns: str = "default") -> None:
        self.reg.delete(kind, ns, name)

    def service(self, name: str, port: int, target: int | str, proto: str = "TCP", selector: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
        s: dict[str, Any] = {"ports": [{"name": "p", "port": port, "targetPort": target, "protocol": proto}], **spec}
        if selector is not None:
            s["selector"] = selector
        return self.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": s})

    def pod(self, name: str, ip: str, labels: dict[str, str], port: int, ready: bool = True) -> dict[str, Any]:
        status: dict[str, Any] = {"phase": "Running", "podIP": ip}
        if not ready:
            status["conditions"] = [{"type": "Ready", "status": "False"}]
        return self.create({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "echo", "ports": [{"containerPort": port}]}]},
            "status": status,
        })

    def three_backends(self, mode: str = "count", proto: str = "TCP", labels: dict[str, str] | None = None) -> list[Backend]:
        names = ["a", "b", "c"]
        bs = backends_on_one_port(names, [self.subnet + str(i) for i in (1, 2, 3)], mode, proto)
        self.backends += bs
        for b in bs:
            self.pod(f"pod-{b.name}", b.host, labels or {"app": "echo"}, b.port)
        return bs

    # -- proxy
    def start_proxy(self, *extra: str) -> dict[str, str]:
        self.proxy = self.spawn(
            self.store_path, "proxy", "--nodeport-addresses", f"{self.node_ip}/32",
            "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0",
            *(("--mode", "nftables", "--nft-table", self.nft_table) if self.mode == "nftables" else ()), *extra,
        )
        self.fields = ready_fields(self.proxy.wait_line("kubesvc proxy ready"))
        return self.fields

    def http_get(self, which: str, path: str) -> str:
        with urllib.request.urlopen(f"http://{self.fields[which]}{path}", timeout=5) as r:
            return r.read().decode()

    def synced(self) -> None:
        """Wait until the proxy has applied the store's current revision."""
        rev = self.store.revision()
        wait_for(lambda: json.loads(self.http_get("healthz", "/healthz"))["revision"] >= rev, timeout=10, what=f"proxy at revision {rev}")

    def metrics(self) -> str:
        return self.http_get("metrics", "/metrics")

    def close(self) -> None:
        for b in self.backends:
            b.stop()
        self.store.close()
        if self.mode == "nftables":  # even when the proxy died: no table outlives its test
            subprocess.run(["nft", "delete", "table", "inet", self.nft_table], capture_output=True, timeout=30)


def nft_usable() -> str | None:
    """Why nftables-mode tests cannot run here (None: they can)."""
    if os.geteuid() != 0:
        return "nftables mode needs root"
    if shutil.which("nft") is None:
        return "nftables mode needs the nft command (apt-get install nftables)"
    return None


@pytest.fixture(params=["userspace", "nftables"])
def proxy_mode(request: pytest.FixtureRequest) -> str:
    """Run a data-plane test against both proxy modes (nftables skipped without root or nft)."""
    if request.param == "nftables" and (why := nft_usable()):
        pytest.skip(why)
    return str(request.param)


@pytest.fixture
def cluster(tmp_path: Path, kubesvc_proc: Callable[..., Proc], backend: Callable[..., Backend], request: pytest.FixtureRequest) -> Iterator[Cluster]:
    c = Cluster(tmp_path, kubesvc_proc, backend)
    if "proxy_mode" in request.fixturenames:
        c.mode = request.getfixturevalue("proxy_mode")
    try:
        yield c
    finally:
        if c.proxy is not None:
            c.proxy.stop()
        c.close()


def ask(addr: tuple[str, int], data: bytes = b"hello", timeout: float = 5) -> bytes:
    """Connect, send, shut down the write side, read the whole answer (count mode answers after EOF)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            d = s.recv(65536)
            if not d:
                break
            chunks.append(d)
    return b"".join(chunks)


def who(addr: tuple[str, int]) -> str:
    return ask(addr).decode().split(":")[0]

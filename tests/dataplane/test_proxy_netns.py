"""The non-loopback address plan: a 10.96.0.0/12 service range inside a network namespace made here.

Runs as root only (CI does); skipped cleanly otherwise. Every address and socket lives inside the
namespace, which is deleted at the end, so nothing reaches a real network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.procs import ROOT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (ip netns)"
)

CLIENT = r"""
import socket, sys
addr = (sys.argv[1], int(sys.argv[2]))
seen = []
for _ in range(4):
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"hi"); s.shutdown(socket.SHUT_WR)
        seen.append(s.recv(100).decode().split(":")[0])
print(",".join(seen))
"""

BACKEND = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    data = b""
    while True:
        d = c.recv(100)
        if not d: break
        data += d
    c.sendall(sys.argv[2].encode() + b":" + data); c.close()
"""


@pytest.fixture
def netns() -> str:
    name = f"kubesvc-test-{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        pytest.skip("ip netns add failed (no permission to create namespaces here)")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        # The whole service range is local on the namespace's loopback (kube-ipvs0 without a dummy device).
        subprocess.run(["ip", "-n", name, "route", "add", "local", "10.96.0.0/12", "dev", "lo"], check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", "10.244.0.1/32", "dev", "lo"], check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", "10.244.0.2/32", "dev", "lo"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def ks(store: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, *args], input=input, capture_output=True, text=True, cwd=str(ROOT), timeout=60)


def test_proxy_in_a_namespace_with_a_10_96_service_range(netns: str, tmp_path: Path) -> None:
    store = str(tmp_path / "store.db")
    r = ks(store, "init", "--service-cluster-ip-range", "10.96.0.0/12")
    assert r.returncode == 0, r.stderr
    inns = ["ip", "netns", "exec", netns]
    procs: list[subprocess.Popen[str]] = []
    try:
        ports = []
        for ip, name in (("10.244.0.1", "a"), ("10.244.0.2", "b")):
            p = subprocess.Popen([*inns, sys.executable, "-c", BACKEND, ip, name], stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout is not None
            ports.append(int(p.stdout.readline()))
        # Both backends on one port number is not guaranteed: use a selector-less Service with two subsets.
        manifest = f"""
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  ports: [{{name: http, port: 80, targetPort: 80}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: web}}
subsets:
- addresses: [{{ip: 10.244.0.1}}]
  ports: [{{name: http, port: {ports[0]}}}]
- addresses: [{{ip: 10.244.0.2}}]
  ports: [{{name: http, port: {ports[1]}}}]
"""
        r = ks(store, "create", "-f", "-", input=manifest)
        assert r.returncode == 0, r.stderr
        cluster_ip = ks(store, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
        assert cluster_ip.startswith("10.")
        proxy = subprocess.Popen(
            [*inns, sys.executable, "-m", "kubesvc", "--store", store, "proxy",
             "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
        )
        procs.append(proxy)
        assert proxy.stdout is not None
        assert proxy.stdout.readline().startswith("kubesvc proxy ready")
        out = subprocess.run([*inns, sys.executable, "-c", CLIENT, cluster_ip, "80"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert sorted(out.stdout.strip().split(",")) == ["a", "a", "b", "b"]
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

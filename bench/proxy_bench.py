"""Proxy benchmark: kubesvc proxy vs HAProxy (mode tcp) vs direct, same run, loopback only.

Run: `make bench` or `.venv/bin/python bench/proxy_bench.py`. Needs iperf3 and haproxy for the side-by-side
rows (BENCH=1 scripts/sysdeps.sh installs them); rows whose tools are missing are skipped and said so.
Implemented rows: bulk TCP (iperf3, 1 and 8 streams, 5 s each); sync latency (create a Service with 1,000
already in the store -> first forwarded byte); resident memory with 10,000 Services.
Not yet: wrk kept-alive and new-connection rates, UDP request/response (see docs/performance.md).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubesvc.registry.generic import Registry  # noqa: E402
from kubesvc.store.db import Store  # noqa: E402
from tests.support.procs import Proc, ready_fields  # noqa: E402
from tests.support.servers import Backend  # noqa: E402


def svc(name: str, port: int, target: int, selector: dict[str, str] | None = None) -> dict:
    spec: dict = {"ports": [{"port": port, "targetPort": target}]}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def start_proxy(store: str) -> Proc:
    p = Proc(store, "proxy", "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0", "--nodeport-addresses", "127.201.0.1/32")
    p.wait_line("kubesvc proxy ready", timeout=120)
    return p


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def iperf(addr: tuple[str, int], streams: int) -> float:
    out = subprocess.run(["iperf3", "-c", addr[0], "-p", str(addr[1]), "-t", "5", "-P", str(streams), "-J"], capture_output=True, text=True, timeout=60)
    data = json.loads(out.stdout)
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def bulk(reg: Registry, store: str, tmp: str) -> None:
    if not shutil.which("iperf3"):
        print("bulk TCP: skipped (iperf3 not installed)")
        return
    server = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", "5201"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = haproxy = None
    try:
        time.sleep(0.3)
        s = reg.create(svc("iperf", 5201, 5201)).object
        reg.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "iperf", "namespace": "default"},
                    "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 5201}]}]})
        proxy = start_proxy(store)
        rows = {"direct": ("127.0.0.1", 5201), "kubesvc": (s["spec"]["clusterIP"], 5201)}
        if shutil.which("haproxy"):
            cfg = Path(tmp, "haproxy.cfg")
            cfg.write_text("defaults\n mode tcp\n timeout connect 5s\n timeout client 60s\n timeout server 60s\n"
                           "frontend f\n bind 127.0.0.2:5202\n default_backend b\nbackend b\n server s1 127.0.0.1:5201\n")
            haproxy = subprocess.Popen(["haproxy", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            rows["haproxy"] = ("127.0.0.2", 5202)
        for streams in (1, 8):
            res = {k: iperf(a, streams) for k, a in rows.items()}
            ratio = f" kubesvc/haproxy={res['kubesvc'] / res['haproxy']:.2f}x" if "haproxy" in res else ""
            print(f"bulk TCP iperf3 -P {streams}: " + " ".join(f"{k}={v:.1f}Gbit/s" for k, v in res.items()) + ratio)
    finally:
        for p in (server, haproxy):
            if p is not None:
                p.terminate()
                p.wait(10)
        if proxy is not None:
            proxy.stop()


def sync_latency(tmp: str) -> None:
    store = os.path.join(tmp, "sync.db")
    reg = Registry(Store(store))
    backend = Backend("b", "127.0.0.1", 0, "echo")
    try:
        for i in range(1000):
            reg.create(svc(f"s{i}", 8000 + i % 1000, backend.port))
        proxy = start_proxy(store)
        try:
            lat = []
            for n in range(5):
                name = f"probe{n}"
                t0 = time.monotonic()
                s = reg.create(svc(name, 7000, backend.port)).object
                reg.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": "default"},
                            "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": backend.port}]}]})
                addr = (s["spec"]["clusterIP"], 7000)
                while time.monotonic() - t0 < 10:
                    try:
                        with socket.create_connection(addr, timeout=1) as c:
                            c.sendall(b"x")
                            if c.recv(1) == b"x":
                                break
                    except OSError:
                        time.sleep(0.002)
                lat.append(time.monotonic() - t0)
            print("  latencies ms:", [round(x * 1000) for x in lat])
            lat.sort()
            print(f"sync latency (create Service+Endpoints -> first echoed byte, 1,000 Services in store): median={lat[2]*1000:.0f}ms max={lat[-1]*1000:.0f}ms")
        finally:
            proxy.stop()
    finally:
        backend.stop()


def memory(tmp: str) -> None:
    store = os.path.join(tmp, "mem.db")
    reg = Registry(Store(store))
    for i in range(10000):
        reg.create(svc(f"s{i}", 8000 + i % 1000, 9))
    proxy = start_proxy(store)
    try:
        print(f"resident memory with 10,000 Services (10,000 listeners): {rss_kb(proxy.p.pid) / 1024:.0f} MiB")
    finally:
        proxy.stop()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "bulk.db")
        bulk(Registry(Store(store)), store, tmp)
        sync_latency(tmp)
        memory(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())

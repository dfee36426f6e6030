"""Ingress benchmark: wrk through `kubesvc ingress` and through nginx as a reverse proxy (`proxy_pass` with upstream
keep-alive, the headers ingress-nginx sets), both to the same nginx backend, same run. Prints a Markdown table.

Rows: kept-alive requests with 50 connections and with 1 connection (req/s and p99), rounds alternating between
the two proxies (the best round of each counts). Both proxies: one process/worker, access log off.
Needs wrk and nginx (BENCH=1 scripts/sysdeps.sh). Everything binds 127.0.0.1 with free ports; runs are bounded.
Run: make bench   (or: .venv/bin/python bench/ingress_bench.py [seconds])
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import _peers  # noqa: E402
from _peers import Addr, Spawned, free_port, wait_tcp, wrk  # noqa: E402


def nginx_proxy(tmp: str, addr: Addr, backend: Addr) -> Spawned:
    prefix = Path(tmp, "nginx-proxy")
    prefix.mkdir(exist_ok=True)
    cfg = prefix / "nginx.conf"
    cfg.write_text(textwrap.dedent(f"""\
        worker_processes 1;
        daemon off;
        pid {prefix}/nginx.pid;
        error_log {prefix}/error.log;
        events {{ worker_connections 4096; }}
        http {{
          access_log off;
          client_body_temp_path {prefix}; proxy_temp_path {prefix}; fastcgi_temp_path {prefix};
          uwsgi_temp_path {prefix}; scgi_temp_path {prefix};
          keepalive_requests 1000000;
          upstream backend {{ server {backend[0]}:{backend[1]}; keepalive 320; keepalive_requests 1000000; }}
          server {{
            listen {addr[0]}:{addr[1]} backlog=4096;
            location / {{
              proxy_pass http://backend;
              proxy_http_version 1.1;
              proxy_set_header Connection "";
              proxy_set_header Host $http_host;
              proxy_set_header X-Request-ID $request_id;
              proxy_set_header X-Real-IP $remote_addr;
              proxy_set_header X-Forwarded-For $remote_addr;
              proxy_set_header X-Forwarded-Host $http_host;
              proxy_set_header X-Forwarded-Port $server_port;
              proxy_set_header X-Forwarded-Proto $scheme;
              proxy_set_header X-Scheme $scheme;
              proxy_set_header Proxy "";
            }}
          }}
        }}
        """))
    p = Spawned(["nginx", "-p", str(prefix), "-c", str(cfg)], "nginx proxy")
    wait_tcp(addr, p)
    return p


def kubesvc_ingress(tmp: str, addr: Addr, backend: Addr) -> subprocess.Popen[str]:
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Store

    store_path = os.path.join(tmp, "store.db")
    with Store(store_path) as store:
        reg = Registry(store)
        reg.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend[1]}]}})
        reg.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
                    "subsets": [{"addresses": [{"ip": backend[0]}], "ports": [{"name": "http", "port": backend[1]}]}]})
        reg.create({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"ingressClassName": "kubesvc", "rules": [{"http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    p = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", store_path, "ingress", "--http-address", f"{addr[0]}:{addr[1]}",
                          "--https-address", "", "--access-log", "off"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, start_new_session=True)
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("kubesvc ingress ready"):
            return p
    raise RuntimeError("kubesvc ingress exited before its ready line")


def stop(p: subprocess.Popen[str]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def main() -> int:
    missing = _peers.have("wrk", "nginx")
    if missing:
        print(f"ingress_bench: {', '.join(missing)} needed (BENCH=1 bash scripts/sysdeps.sh); skipped")
        return 0
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    tmp = tempfile.mkdtemp()
    started: list[Spawned] = []
    ks: subprocess.Popen[str] | None = None
    try:
        backend = ("127.0.0.1", free_port("127.0.0.1"))
        started.append(_peers.nginx(tmp, backend))
        ng_addr = ("127.0.0.1", free_port("127.0.0.1"))
        started.append(nginx_proxy(tmp, ng_addr, backend))
        ks_addr = ("127.0.0.1", free_port("127.0.0.1"))
        ks = kubesvc_ingress(tmp, ks_addr, backend)
        for addr in (ks_addr, ng_addr):
            wrk(addr, 50, 2)  # warm-up: pools fill, caches warm
        rows = []
        for conns in (50, 1):
            best = {"ks": (0.0, 0.0), "ng": (0.0, 0.0)}
            for _ in range(2):
                for name, addr in (("ks", ks_addr), ("ng", ng_addr)):
                    rps, p99 = wrk(addr, conns, seconds)
                    if rps > best[name][0]:
                        best[name] = (rps, p99)
            rows.append((conns, best["ks"], best["ng"]))
        print("wrk -t1 through each proxy to the same nginx backend (`return 200`), kept-alive connections; best of 2 rounds.\n")
        print("| workload | kubesvc ingress | nginx proxy_pass | ratio (kubesvc/nginx) |")
        print("|---|---|---|---|")
        for conns, (krps, kp99), (nrps, np99) in rows:
            print(f"| {conns} connection{'s' if conns > 1 else ''}, req/s | {krps:,.0f} | {nrps:,.0f} | {krps / nrps:.2f}x |")
            print(f"| {conns} connection{'s' if conns > 1 else ''}, p99 latency (ms) | {kp99:.2f} | {np99:.2f} | {kp99 / np99:.2f}x |")
        return 0
    finally:
        if ks is not None:
            stop(ks)
        for s in started:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

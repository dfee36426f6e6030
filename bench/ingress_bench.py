"""Ingress benchmark: wrk through `kubesvc ingress` and through nginx as a reverse proxy (`proxy_pass` with upstream
keep-alive, the headers ingress-nginx sets), both to the same nginx backend, same run. Prints a Markdown table.

Rows: kept-alive requests with 50 connections and with 1 connection (req/s and p99), rounds alternating between
the two proxies (the best round of each counts), and the CPU time each proxy process spends per request (stabler than
req/s on a shared 2-core machine, where wrk, the backend and the proxy compete for the cores). Both proxies: one process/worker, access log off.
Needs wrk and nginx (BENCH=1 scripts/sysdeps.sh). Everything binds 127.0.0.1 with free ports; runs are bounded.
Run: make bench   (or: .venv/bin/python bench/ingress_bench.py [seconds])
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS = 3
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
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("kubesvc ingress ready"):
            assert p.stderr is not None
            p.stderr.close()  # the access log is off; nothing else is worth a pipe
            return p
    raise RuntimeError(f"kubesvc ingress exited before its ready line: {p.stderr.read() if p.stderr else ''}")


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nginx_worker(master: Spawned) -> int:
    out = subprocess.run(["pgrep", "-P", str(master.p.pid)], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else master.p.pid


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
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
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
        pids = {"ks": ks.pid, "ng": nginx_worker(started[1])}
        rows = []
        cpu_us = {"ks": [], "ng": []}  # type: dict[str, list[float]]
        for conns in (50, 1):
            best = {"ks": (0.0, 0.0), "ng": (0.0, 0.0)}
            for _ in range(ROUNDS):
                for name, addr in (("ks", ks_addr), ("ng", ng_addr)):
                    c0 = cpu_seconds(pids[name])
                    rps, p99 = wrk(addr, conns, seconds)
                    if conns > 1:
                        cpu_us[name].append((cpu_seconds(pids[name]) - c0) / (rps * max(1, round(seconds))) * 1e6)
                    if rps > best[name][0]:
                        best[name] = (rps, p99)
            rows.append((conns, best["ks"], best["ng"]))
        print(f"wrk -t1 through each proxy to the same nginx backend (`return 200`), kept-alive connections; best of {ROUNDS} rounds.\n")
        print("| workload | kubesvc ingress | nginx proxy_pass | ratio (kubesvc/nginx) |")
        print("|---|---|---|---|")
        for conns, (krps, kp99), (nrps, np99) in rows:
            print(f"| {conns} connection{'s' if conns > 1 else ''}, req/s | {krps:,.0f} | {nrps:,.0f} | {krps / nrps:.2f}x |")
            print(f"| {conns} connection{'s' if conns > 1 else ''}, p99 latency (ms) | {kp99:.2f} | {np99:.2f} | {kp99 / np99:.2f}x |")
        k, n = min(cpu_us["ks"]), min(cpu_us["ng"])
        print(f"| CPU per request, 50 connections (us, user+sys, lowest round) | {k:.1f} | {n:.1f} | {k / n:.2f}x |")
        return 0
    finally:
        if ks is not None:
            stop(ks)
        for s in started:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

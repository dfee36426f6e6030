"""Ingress benchmark: wrk through `kubesvc ingress` and through nginx as a reverse proxy (`proxy_pass` with upstream
keep-alive, the headers ingress-nginx sets), both to the same nginx backend, same run. Prints a Markdown table.

Fairness: the two proxies always get the same number of processes: `kubesvc ingress --workers N` against nginx
`worker_processes N`, for N = 1 (nginx's default when the directive is absent, and the cheapest setup) and N = 2 (what
`worker_processes auto` gives on this 2-core machine, and what ingress-nginx runs: one worker per core).
Rows: kept-alive requests with 50 connections and with 1 connection (req/s and p99), the same with 50 connections
where every request has a new path and every answer a new header ("every head new": nothing the router's head
caches can replay, so each request and answer goes through the parser), and the CPU time the proxy's processes spend
per request (stabler than req/s on a shared machine, where wrk, the backend and the proxy compete for
the cores). Rounds alternate between the two proxies; the median round counts and the spread (lowest-highest of the
per-round kubesvc/nginx ratios) shows how noisy the machine was. Access logs off on both.
Needs wrk and nginx (BENCH=1 scripts/sysdeps.sh). Everything binds 127.0.0.1 with free ports; runs are bounded.
Run: make bench   (or: .venv/bin/python bench/ingress_bench.py [seconds [rounds [workers,... [rows,...]]]], rows among
`keepalive` (50 connections), `single` (1 connection) and `new` (every head new); all three by default)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS = 5
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import _peers  # noqa: E402
from _peers import Addr, Spawned, children, cpu_seconds, free_port, wait_tcp, wrk  # noqa: E402


def nginx_proxy(tmp: str, addr: Addr, backend: Addr, workers: int = 1) -> Spawned:
    prefix = Path(tmp, f"nginx-proxy-{workers}")
    prefix.mkdir(exist_ok=True)
    cfg = prefix / "nginx.conf"
    cfg.write_text(textwrap.dedent(f"""\
        worker_processes {workers};
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


def kubesvc_ingress(tmp: str, addr: Addr, backend: Addr, workers: int = 1) -> subprocess.Popen[str]:
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Store

    store_path = os.path.join(tmp, "store.db")
    with Store(store_path) as store:
        reg = Registry(store)
        for obj in ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend[1]}]}},
                    {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
                    "subsets": [{"addresses": [{"ip": backend[0]}], "ports": [{"name": "http", "port": backend[1]}]}]},
                    {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"ingressClassName": "kubesvc", "rules": [{"http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}):
            reg.apply(obj)  # apply: a second router (another --workers count) reuses the store
    p = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", store_path, "ingress", "--http-address", f"{addr[0]}:{addr[1]}",
                          "--https-address", "", "--access-log", "off", *(["--workers", str(workers)] if workers > 1 else [])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("kubesvc ingress ready"):
            assert p.stderr is not None
            p.stderr.close()  # the access log is off; nothing else is worth a pipe
            return p
    raise RuntimeError(f"kubesvc ingress exited before its ready line: {p.stderr.read() if p.stderr else ''}")


def stop(p: subprocess.Popen[str]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def median(xs: list[float]) -> float:
    ys = sorted(xs)
    n = len(ys)
    return ys[n // 2] if n % 2 else (ys[n // 2 - 1] + ys[n // 2]) / 2


def measure(addr: Addr, pids: list[int], conns: int, seconds: float, script: str = "") -> tuple[float, float, float]:
    """One wrk round against ``addr``: (requests/s, p99 ms, CPU us per request of the processes ``pids``)."""
    c0 = cpu_seconds(pids)
    rps, p99 = wrk(addr, conns, seconds, script=script)
    return rps, p99, (cpu_seconds(pids) - c0) / (rps * max(1, round(seconds))) * 1e6


ROWS = {"keepalive": (50, False), "single": (1, False), "new": (50, True)}


def compare(tmp: str, backend: Addr, workers: int, seconds: float, rounds: int, which: list[str]) -> list[str]:
    """Table rows for kubesvc --workers N against nginx worker_processes N."""
    ng_addr = ("127.0.0.1", free_port("127.0.0.1"))
    ng = nginx_proxy(tmp, ng_addr, backend, workers)
    ks: subprocess.Popen[str] | None = None
    try:
        ks_addr = ("127.0.0.1", free_port("127.0.0.1"))
        ks = kubesvc_ingress(tmp, ks_addr, backend, workers)
        for addr in (ks_addr, ng_addr):
            wrk(addr, 50, 2)  # warm-up: pools fill, caches warm
        pids = {"ks": [ks.pid, *children(ks.pid)], "ng": children(ng.p.pid)}
        script = Path(tmp, "unique.lua")
        script.write_text(_peers.UNIQUE_PATHS)
        rows = []
        for conns, unique in (ROWS[w] for w in which):
            lua = str(script) if unique else ""
            res: dict[str, list[tuple[float, float, float]]] = {"ks": [], "ng": []}  # (rps, p99, cpu us/request)
            for _ in range(rounds):
                for name, addr in (("ks", ks_addr), ("ng", ng_addr)):
                    res[name].append(measure(addr, pids[name], conns, seconds, lua))
            label = f"{workers}w, {conns} conn{'s' if conns > 1 else ''}" + (", every head new" if lua else "")
            for col, what, fmt in ((0, "req/s", "{:,.0f}"), (1, "p99 latency (ms)", "{:.2f}"), (2, "CPU per request (us)", "{:.1f}")):
                if conns == 1 and col == 2:
                    continue
                k = median([r[col] for r in res["ks"]])
                n = median([r[col] for r in res["ng"]])
                ratios = [a[col] / b[col] for a, b in zip(res["ks"], res["ng"], strict=False) if b[col]]
                rows.append(f"| {label}, {what} | {fmt.format(k)} | {fmt.format(n)} | {k / n:.2f}x | {min(ratios):.2f}-{max(ratios):.2f}x |")
        return rows
    finally:
        if ks is not None:
            stop(ks)
        ng.stop()


def arguments(name: str) -> tuple[float, int, list[int]] | None:
    """(seconds, rounds, worker counts) from the command line; None (said why) when wrk or nginx is missing."""
    missing = _peers.have("wrk", "nginx")
    if missing:
        print(f"{name}: {', '.join(missing)} needed (BENCH=1 bash scripts/sysdeps.sh); skipped")
        return None
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else ROUNDS
    return seconds, rounds, [int(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else [1, 2]


def main() -> int:
    args = arguments("ingress_bench")
    if args is None:
        return 0
    seconds, rounds, counts = args
    which = sys.argv[4].split(",") if len(sys.argv) > 4 else list(ROWS)
    if set(which) - set(ROWS):
        print(f"ingress_bench: rows are {', '.join(ROWS)}")
        return 2
    print_table(counts, lambda tmp, backend, n: compare(tmp, backend, n, seconds, rounds, which),
                f"wrk -t1 through each proxy to the same nginx backend (`return 200`, 1 worker), kept-alive connections; "
                f"median of {rounds} alternating rounds of {seconds:g} s. Nw = kubesvc --workers N vs nginx worker_processes N.",
                ["kubesvc ingress", "nginx proxy_pass", "ratio (kubesvc/nginx)", "per-round ratio spread"])
    return 0


def print_table(counts: list[int], rows_for: Callable[[str, Addr, int], list[str]], intro: str, columns: list[str]) -> None:
    """A Markdown table of ``rows_for(tmp, backend, n)`` for each worker count ``n``, run with a temporary directory
    and the nginx backend (``_peers.nginx``) on a free loopback port, both gone afterwards."""
    tmp = tempfile.mkdtemp()
    backend_proc: Spawned | None = None
    try:
        backend = ("127.0.0.1", free_port("127.0.0.1"))
        backend_proc = _peers.nginx(tmp, backend)
        rows = [row for n in counts for row in rows_for(tmp, backend, n)]
    finally:
        if backend_proc is not None:
            backend_proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(intro + "\n")
    print("| workload | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())

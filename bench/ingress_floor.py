"""The floor under the ingress router's general path: wrk's "every head new" row (each request a new path, each
answer a new head) through nginx as a reverse proxy, through `kubesvc ingress`, and through `bench/_relay.py`, asyncio
protocols on uvloop that relay bytes and do nothing else (one upstream connection per client, the proxies' extra
header block appended to each request). The relay is what any router built of Python protocols on uvloop's
transports costs before it parses, routes or checks anything: its row bounds what reworking the router's Python can
give (issue 17 item 3), and the kubesvc - relay difference is what the router's own work costs per request.

Same fairness as bench/ingress_bench.py: N processes each (`--workers N`, `worker_processes N`, N relays on one
SO_REUSEPORT port), the same nginx backend, rounds alternating between the three, medians, CPU per request of each
proxy's processes (user+sys). Everything binds 127.0.0.1 with free ports; runs are bounded.
Needs wrk and nginx (BENCH=1 scripts/sysdeps.sh).
Run: .venv/bin/python bench/ingress_floor.py [seconds [rounds [workers,... [rows]]]], rows among `new` (every head
new, the default) and `same` (wrk's one request over and over: the head caches' row)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _peers  # noqa: E402
import ingress_bench  # noqa: E402
from _peers import Addr, children, free_port, wrk  # noqa: E402


def relays(addr: Addr, backend: Addr, n: int) -> list[subprocess.Popen[str]]:
    """``n`` relay processes on ``addr`` (SO_REUSEPORT), each ready (bound) before the next starts."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for _ in range(n):
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "_relay.py"), str(addr[1]), str(backend[1])],
                                 stdout=subprocess.PIPE, text=True, start_new_session=True)
            procs.append(p)
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("bench/_relay.py exited before its ready line")
        return procs
    except BaseException:
        for p in procs:
            ingress_bench.stop(p)
        raise


def compare(tmp: str, backend: Addr, workers: int, seconds: float, rounds: int, which: list[str]) -> list[str]:
    addrs = {name: ("127.0.0.1", free_port("127.0.0.1")) for name in ("ng", "ks", "relay")}
    ng = ingress_bench.nginx_proxy(tmp, addrs["ng"], backend, workers)
    ks: subprocess.Popen[str] | None = None
    rl: list[subprocess.Popen[str]] = []
    try:
        ks = ingress_bench.kubesvc_ingress(tmp, addrs["ks"], backend, workers)
        rl = relays(addrs["relay"], backend, workers)
        pids = {"ng": children(ng.p.pid), "ks": [ks.pid, *children(ks.pid)], "relay": [p.pid for p in rl]}
        script = Path(tmp, "unique.lua")
        script.write_text(_peers.UNIQUE_PATHS)
        for addr in addrs.values():
            wrk(addr, 50, 2, script=str(script))  # warm-up
        rows = []
        for row in which:
            lua = str(script) if row == "new" else ""
            res: dict[str, list[tuple[float, float, float]]] = {name: [] for name in addrs}
            for _ in range(rounds):
                for name, addr in addrs.items():
                    res[name].append(ingress_bench.measure(addr, pids[name], 50, seconds, lua))
            med = {name: [ingress_bench.median([r[col] for r in rs]) for col in range(3)] for name, rs in res.items()}
            label = f"{workers}w, " + ("every head new" if row == "new" else "same request")
            for col, what, fmt in ((0, "req/s", "{:,.0f}"), (1, "p99 latency (ms)", "{:.2f}"), (2, "CPU per request (us)", "{:.1f}")):
                n, k, r = med["ng"][col], med["ks"][col], med["relay"][col]
                rows.append(f"| {label}, {what} | {fmt.format(n)} | {fmt.format(k)} | {fmt.format(r)} "
                            f"| {k / n:.2f}x | {r / n:.2f}x |")
        return rows
    finally:
        for p in rl:
            ingress_bench.stop(p)
        if ks is not None:
            ingress_bench.stop(ks)
        ng.stop()


def main() -> int:
    args = ingress_bench.arguments("ingress_floor")
    if args is None:
        return 0
    seconds, rounds, counts = args
    which = sys.argv[4].split(",") if len(sys.argv) > 4 else ["new"]
    if set(which) - {"new", "same"}:
        print("ingress_floor: rows are new (every head new) and same (wrk's one request, kept alive)")
        return 2
    ingress_bench.print_table(
        counts, lambda tmp, backend, n: compare(tmp, backend, n, seconds, rounds, which),
        f"wrk -t1, 50 kept-alive connections, through each to the same nginx backend; median of {rounds} alternating "
        f"rounds of {seconds:g} s. Nw = N processes each.",
        ["nginx proxy_pass", "kubesvc ingress", "relay floor (uvloop, Python protocols)", "kubesvc / nginx", "relay / nginx"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

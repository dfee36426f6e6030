"""nftables mode, the kernel path alone: what a new connection costs with no table, with kubesvc's table loaded,
and through a cluster IP that the table DNATs, beside the least a DNAT can cost. Root and nft only; loopback only.

Run: `.venv/bin/python bench/proxy_nft_bench.py [--reps 5] [--seconds 2] [--layouts none,kubesvc,kubesvc-rejecting,floor]
[--against REV]` (``--against``: also the table nft.py renders at git revision REV, layout ``kubesvc@REV``: an A/B of
a layout change in one run).
One nginx (one worker, `return 200 "ok"`, as bench/proxy_bench.py's) listens on two loopback addresses: the direct
target and the DNAT target. They are kept apart on purpose: on one address, a connection through the cluster IP and a
direct one reuse the same 4-tuple at nginx, and their TCP timestamps differ (Linux offsets a connection's timestamps
by a hash of the addresses the client dialled: the cluster IP or the backend), so nginx's TIME_WAIT socket of the one
rejects the other's SYN (PAWS, `TcpExtPAWSTimewait` in `nstat`) and wrk waits a 1 s SYN retransmit.

Layouts (each loaded alone, then measured; the order rotated per repetition):
- ``none``: no nftables table (conntrack off, unless another table turns it on: the run prints the tables it found;
  a table turns conntrack on in its namespace once a rule uses it, a ``ct`` match or a NAT statement, not by a nat
  chain alone);
- ``kubesvc``: the table `kubesvc proxy --mode nftables` renders for one Service (nft.render, as a sync applies it);
- ``kubesvc-rejecting``: the same beside a Service without endpoints (whose reject needs the filter chains);
- ``floor``: one nat-output rule `ip daddr VIP tcp dport P dnat to BACKEND`: the least a DNAT costs (direct: conntrack
  and NAT on, one rule that does not match).
Workload: wrk, 1 thread, 64 connections, `Connection: close` (one new connection per request), direct to the backend
under every layout and through the cluster IP where the layout DNATs it. Reported: req/s (median), its spread, p99,
and the CPU time per request of wrk and nginx together (user+sys; the kernel's conntrack and NAT work on loopback runs
in their context, so this is where a layout's cost shows, less disturbed by a shared machine than rates).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _peers as peers

from kubesvc.dataplane.proxy import nft
from kubesvc.dataplane.proxy import plan as planning

Addr = tuple[str, int]
TABLE = f"kubesvc-nftbench-{os.getpid()}"
VIP: Addr = ("127.100.77.10", 8080)


def nginx_two(tmp: str, a: Addr, b: Addr) -> peers.Spawned:
    d = Path(tmp, "nginx")
    d.mkdir(exist_ok=True)
    cfg = d / "nginx.conf"
    cfg.write_text(textwrap.dedent(f"""\
        worker_processes 1;
        daemon off;
        pid {d}/nginx.pid;
        error_log {d}/error.log;
        events {{ worker_connections 4096; }}
        http {{
          access_log off;
          client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
          server {{
            listen {a[0]}:{a[1]} backlog=4096;
            listen {b[0]}:{b[1]} backlog=4096;
            location / {{ return 200 "ok"; }}
          }}
        }}
        """))
    p = peers.Spawned(["nginx", "-p", str(d), "-c", str(cfg)], "nginx")
    peers.wait_tcp(a, p)
    peers.wait_tcp(b, p)
    return p


def kubesvc_table(be: Addr, render: Callable[..., nft.Ruleset] = nft.render, rejecting: bool = False) -> str:
    """``rejecting``: a second Service without endpoints beside it (its address rejects: the filter chains exist)."""
    s = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": VIP[0], "ports": [{"name": "p", "port": VIP[1]}]}}
    e = {"metadata": {"name": "web", "namespace": "default"},
         "subsets": [{"addresses": [{"ip": be[0]}], "ports": [{"name": "p", "port": be[1]}]}]}
    empty = {"metadata": {"name": "empty", "namespace": "default"}, "spec": {"clusterIP": "127.100.77.11", "ports": [{"name": "p", "port": 80}]}}
    return render(planning.build([s, *([empty] if rejecting else [])], [e]), TABLE, fresh=True).text


def layout_at(rev: str) -> Callable[[Addr], str | None]:
    """The kubesvc layout as nft.py renders it at git revision ``rev``."""
    import importlib.util

    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:kubesvc/dataplane/proxy/nft.py"], capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="nft-at-")) / "nft_at.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"nft_at_{rev}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return lambda be: kubesvc_table(be, mod.render)


LAYOUTS: dict[str, Callable[[Addr], str | None]] = {
    "none": lambda be: None,
    "kubesvc": kubesvc_table,
    "kubesvc-rejecting": lambda be: kubesvc_table(be, rejecting=True),
    "floor": lambda be: (f"add table inet {TABLE}\nadd chain inet {TABLE} o {{ type nat hook output priority -100; policy accept; }}\n"
                         f"add rule inet {TABLE} o ip daddr {VIP[0]} tcp dport {VIP[1]} dnat ip to {be[0]}:{be[1]}\n"),
}


def load(text: str | None) -> None:
    subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True, timeout=30)
    if text:
        r = subprocess.run(["nft", "-f", "-"], input=text, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"nft -f: {r.stderr.strip()}")


def nstat_paws() -> int:
    """TcpExtPAWSTimewait so far (SYNs a TIME_WAIT socket refused): 0 growth means no run waited on a retransmit."""
    r = subprocess.run(["nstat", "-a", "-z", "TcpExtPAWSTimewait"], capture_output=True, text=True, timeout=10)
    for line in r.stdout.splitlines():
        if line.startswith("TcpExtPAWSTimewait"):
            return int(line.split()[1])
    return -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--layouts", default=",".join(LAYOUTS), help=f"comma-separated from {', '.join(LAYOUTS)}")
    ap.add_argument("--against", default="", help="a git revision: also measure the table nft.py renders there (kubesvc@REV)")
    args = ap.parse_args()
    if args.against:
        LAYOUTS[f"kubesvc@{args.against}"] = layout_at(args.against)
        args.layouts += f",kubesvc@{args.against}"
    layouts = [x.strip() for x in args.layouts.split(",")]
    bad = [x for x in layouts if x not in LAYOUTS]
    if bad:
        ap.error(f"--layouts: unknown {', '.join(bad)} (choose from {', '.join(LAYOUTS)})")
    if os.geteuid() != 0 or peers.have("nft", "wrk", "nginx"):
        print("needs root, nft, wrk and nginx (BENCH=1 bash scripts/sysdeps.sh as root)")
        return 1
    direct: Addr = ("127.244.0.31", peers.free_port("127.244.0.31"))
    target: Addr = ("127.244.0.32", direct[1])  # the DNAT target: same nginx, its own address (see the docstring)
    combos = [(lay, via) for lay in layouts for via in ("direct", "cluster IP") if via == "direct" or lay.startswith(("kubesvc", "floor"))]
    samples: dict[tuple[str, str], list[tuple[float, float, float]]] = {c: [] for c in combos}
    load_avg = [os.getloadavg()[0]]
    others = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=30).stdout.split("\n")
    others = [t.strip() for t in others if t.strip()]
    paws0 = nstat_paws()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        ng = nginx_two(tmp, direct, target)
        try:
            ng_pids = [ng.p.pid, *peers.children(ng.p.pid)]
            for r in range(args.reps):
                for lay, via in combos[r % len(combos):] + combos[: r % len(combos)]:
                    load(LAYOUTS[lay](target))
                    c0 = peers.cpu_seconds(ng_pids) + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime \
                        + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
                    rate, p99 = peers.wrk(direct if via == "direct" else VIP, 64, args.seconds, close=True)
                    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = peers.cpu_seconds(ng_pids) + ru.ru_utime + ru.ru_stime - c0
                    samples[(lay, via)].append((rate, p99, cpu / (rate * max(1, round(args.seconds))) * 1e6))
                load_avg.append(os.getloadavg()[0])
        finally:
            ng.stop()
            load(None)
    paws = nstat_paws() - paws0 if paws0 >= 0 else -1
    base = statistics.median(s[0] for s in samples[combos[0]])
    print(f"\n{args.reps} repetitions of {args.seconds:g} s, load average {min(load_avg):.1f}-{max(load_avg):.1f}, "
          f"PAWS-refused SYNs during the run: {paws}, took {time.monotonic() - t0:.0f} s; other nftables tables at the start: "
          f"{', '.join(others) or 'none'}\n")
    print(f"| layout | path | req/s (median) | spread | vs {combos[0][0]}/{combos[0][1]} | p99 (ms) | wrk+nginx CPU per request (us) |")
    print("|---|---|---|---|---|---|---|")
    out = {}
    for (lay, via), vals in samples.items():
        rate = statistics.median(v[0] for v in vals)
        cpu = statistics.median(v[2] for v in vals)
        out[f"{lay} {via}"] = {"req_s": rate, "p99_ms": statistics.median(v[1] for v in vals), "cpu_us": cpu, "samples": vals}
        print(f"| {lay} | {via} | {rate:,.0f} | {min(v[0] for v in vals):,.0f}-{max(v[0] for v in vals):,.0f} | {rate / base:.2f}x | "
              f"{statistics.median(v[1] for v in vals):.1f} | {cpu:.1f} |")
    # the pairs that matter: through the cluster IP vs direct under the same table, per repetition
    for lay in layouts:
        if (lay, "cluster IP") in samples:
            ratios = sorted(a[0] / b[0] for a, b in zip(samples[(lay, "cluster IP")], samples[(lay, "direct")], strict=False))
            print(f"{lay}: cluster IP / direct (same table), per repetition: median {statistics.median(ratios):.2f}x, "
                  f"{', '.join(f'{x:.2f}' for x in ratios)}")
    res = ROOT / "bench" / "results" / "proxy_nft.json"
    res.parent.mkdir(exist_ok=True)
    res.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "args": vars(args), "load": load_avg, "paws": paws, "results": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

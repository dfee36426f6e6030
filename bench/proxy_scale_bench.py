"""Proxy scale benchmark: sync latency, memory and rule count with 1,000 and 10,000 Services, userspace beside nftables.

Run: `.venv/bin/python bench/proxy_scale_bench.py` (`--services 1000,10000`, `--modes userspace,nftables`,
`--probes 10`); the nftables rows need root and nft (skipped otherwise, and said so). Loopback only.

For each N: a fresh store gets N Services (no selector) and N Endpoints, all to one local echo backend, written through
the registry in transactions of 1,000 objects (set-up in seconds, not minutes). Then, for each mode, a proxy is started
and, once ready:
- sync latency: ``--probes`` times, a new Service and its Endpoints are committed in one transaction (as a Service
  whose selector matches running Pods is: the endpoints controller writes in the same transaction) and the clock
  runs until the first byte comes back through its cluster IP (connects refused meanwhile are retried every 2 ms);
  median and p90;
- the proxy's resident memory (VmRSS) and the time from start to its ready line;
- nftables: the ruleset size (`nft list table inet <table> | wc -l`), chains, the map element counts and the time
  of one full sync's `nft -f` (the whole table rewritten, as the periodic full resync does), the pure render of the
  plan (full from scratch; partial comparing every chain and element; incremental: the changed service ports only,
  as a sync renders), and the snapshot (a full read, and an incremental one after one Service changed).
Probes write through the registry after a warm-up decode (the first loads the JSON Schemas). Set-up time and the
load average go into each row. Printed as a Markdown table and written to bench/results/proxy_scale.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.support.procs import Proc
from tests.support.servers import Backend

BATCH = 1000
RESULTS: list[dict[str, Any]] = []


def service(name: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"port": port, "protocol": "TCP"}]}}


def endpoints(name: str, ip: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": "default"},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": port}]}]}


def bulk_create(reg: Registry, objs: list[dict[str, Any]], decoded: bool = False) -> list[dict[str, Any]]:
    """Create objects through the registry's write pipeline (allocation, controllers), many per transaction: the same
    path as ``Registry.create``, without one commit per object. ``decoded``: the objects are copies of one already
    schema-checked by ``decode`` (the check of 20,000 objects of two shapes would be most of the set-up)."""
    out = []
    for i in range(0, len(objs), BATCH):
        decoded_objs = objs[i:i + BATCH] if decoded else [reg.decode(copy.deepcopy(o), "strict")[0] for o in objs[i:i + BATCH]]
        with reg.store.write() as txn:
            out += [reg._create(txn, o, None) for o in decoded_objs]
    return out


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def first_byte(addr: tuple[str, int], t0: float, limit: float = 30.0) -> float:
    while time.monotonic() - t0 < limit:
        try:
            with socket.create_connection(addr, timeout=1) as c:
                c.sendall(b"x")
                if c.recv(1) == b"x":
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.002)
    return float("inf")


def p90(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.9 * (len(xs) - 1)))]


def nft_figures(store: str, table: str) -> dict[str, Any]:
    """Ruleset size, element counts, one full sync's nft -f, and the pure render (full, and partial with a cache)."""
    from kubesvc.dataplane.proxy import nft
    from kubesvc.dataplane.proxy.server import is_local_address, local_ipv4_addresses
    from kubesvc.dataplane.proxy.snapshot import PlanSource

    listing = subprocess.run(["nft", "list", "table", "inet", table], capture_output=True, text=True, timeout=120).stdout
    source = PlanSource(store, "kubesvc-node", ("127.201.0.1/32",), local_ipv4_addresses, is_local_address)
    try:
        t = time.perf_counter()
        _, plan = source.read()
        snapshot = time.perf_counter() - t
        with Store(store) as s:  # one Service changed: what an incremental read costs
            with s.write() as txn:
                obj = txn.get("Service", "default", "s0")
                assert obj is not None
                obj["metadata"].setdefault("annotations", {})["bench"] = str(time.time())
                txn.update(obj)
        t = time.perf_counter()
        _, plan2 = source.read()
        incremental = time.perf_counter() - t
    finally:
        source.close()
    t = time.perf_counter()
    full = nft.render(plan, table)
    render_full = time.perf_counter() - t
    t = time.perf_counter()
    nft.render(plan2, table, full, partial=True)  # compares every chain and element
    render_partial = time.perf_counter() - t
    t = time.perf_counter()
    nft.render(plan2, table, full, partial=True, changed=plan2.changed)  # the changed service ports only, as a sync does
    render_incremental = time.perf_counter() - t
    t = time.perf_counter()
    nft.apply(full)  # the same content as the table holds: what a periodic full resync costs
    apply_full = time.perf_counter() - t
    return {"ruleset_lines": listing.count("\n"), "chains": len(full.model.chains), "rules": full.rules,
            "elements": {m: len(e) for m, e in full.model.elements.items() if e},
            "full_sync_nft_s": apply_full, "transaction_lines": full.text.count("\n"),
            "snapshot_and_plan_s": snapshot, "snapshot_incremental_s": incremental, "render_full_s": render_full, "render_partial_s": render_partial,
            "render_incremental_s": render_incremental}


def run(n: int, modes: list[str], probes: int, tmp: str) -> None:
    store = os.path.join(tmp, f"scale{n}.db")
    reg = Registry(Store(store))
    backend = Backend("b", "127.0.0.1", 0, "echo")
    try:
        t = time.monotonic()
        svc_t = reg.decode(service("s", 8000), "strict")[0]
        ep_t = reg.decode(endpoints("s", "127.0.0.1", backend.port), "strict")[0]

        def named(template: dict[str, Any], name: str, port: int | None = None) -> dict[str, Any]:
            o = copy.deepcopy(template)
            o["metadata"]["name"] = name
            if port is not None:
                o["spec"]["ports"][0]["port"] = port
            return o

        bulk_create(reg, [named(svc_t, f"s{i}", 8000 + i % 1000) for i in range(n)], decoded=True)
        bulk_create(reg, [named(ep_t, f"s{i}") for i in range(n)], decoded=True)
        setup = time.monotonic() - t
        print(f"{n:,} Services + Endpoints created in {setup:.1f} s", flush=True)
        for mode in modes:
            table = f"kubesvc-scale-{os.getpid()}"
            extra = ["--mode", "nftables", "--nft-table", table] if mode == "nftables" else []
            t = time.monotonic()
            proxy = Proc(store, "proxy", "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0",
                         "--nodeport-addresses", "127.201.0.1/32", *extra)
            try:
                proxy.wait_line("kubesvc proxy ready", timeout=600)
                ready = time.monotonic() - t
                lat = []
                reg.decode(service("warm-up", 7000), "strict")  # the first decode loads the schemas: not the proxy's time
                for k in range(probes):
                    name = f"probe-{mode}-{k}"
                    t0 = time.monotonic()
                    s, _ = bulk_create(reg, [service(name, 7000), endpoints(name, "127.0.0.1", backend.port)])  # one write
                    lat.append(first_byte((s["spec"]["clusterIP"], 7000), t0))
                    time.sleep(0.05)
                row: dict[str, Any] = {"services": n, "mode": mode, "ready_s": ready, "sync_median_ms": statistics.median(lat) * 1000,
                                       "sync_p90_ms": p90(lat) * 1000, "sync_samples_ms": [round(x * 1000, 1) for x in lat],
                                       "rss_mib": rss_kb(proxy.p.pid) / 1024, "setup_s": setup,
                                       "load": os.getloadavg()[0]}
                if mode == "nftables":
                    row.update(nft_figures(store, table))
                RESULTS.append(row)
                print(json.dumps(row), flush=True)
            finally:
                proxy.stop()
                if mode == "nftables":
                    subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, timeout=120)
    finally:
        backend.stop()
        reg.store.close()


def table() -> str:
    out = ["| Services | mode | sync latency median / p90 (ms) | RSS (MiB) | start to ready (s) | ruleset lines | chains | "
           "map elements | full sync nft -f (s) | render full / partial / incremental (ms) | snapshot + plan full / incremental (ms) |",
           "|---" * 11 + "|"]
    for r in RESULTS:
        nftcols = ["—"] * 6
        if r["mode"] == "nftables":
            nftcols = [f"{r['ruleset_lines']:,}", f"{r['chains']:,}", f"{sum(r['elements'].values()):,}", f"{r['full_sync_nft_s']:.2f}",
                       f"{r['render_full_s'] * 1000:.0f} / {r['render_partial_s'] * 1000:.0f} / {r['render_incremental_s'] * 1000:.1f}",
                       f"{r['snapshot_and_plan_s'] * 1000:.0f} / {r['snapshot_incremental_s'] * 1000:.1f}"]
        out.append(f"| {r['services']:,} | {r['mode']} | {r['sync_median_ms']:.0f} / {r['sync_p90_ms']:.0f} | {r['rss_mib']:.0f} | "
                   f"{r['ready_s']:.1f} | " + " | ".join(nftcols) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", default="1000,10000")
    ap.add_argument("--modes", default="userspace,nftables")
    ap.add_argument("--probes", type=int, default=10)
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",")]
    if "nftables" in modes and (os.geteuid() != 0 or subprocess.run(["which", "nft"], capture_output=True).returncode != 0):
        print("nftables rows: skipped (needs root and nft; BENCH=1 bash scripts/sysdeps.sh as root)")
        modes.remove("nftables")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.services.split(",")):
            run(n, modes, args.probes, tmp)
    print("\n" + table())
    out = ROOT / "bench" / "results" / "proxy_scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "args": vars(args), "load": os.getloadavg(), "results": RESULTS}, indent=1))
    print(f"\n(written to {out.relative_to(ROOT)}; took {time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

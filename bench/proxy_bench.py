"""Proxy benchmark: kubesvc proxy vs HAProxy (default configuration, mode tcp) vs direct, same run, loopback only.

Run: `make bench` or `.venv/bin/python bench/proxy_bench.py` (`--workers 1,auto` = the `--workers` values of
the kubesvc proxies run side by side; `--workloads keepalive,newconn` runs a subset; `--reps`, `--seconds`
shorten or lengthen the runs). Needs iperf3, wrk, nginx and haproxy (`BENCH=1 bash
scripts/sysdeps.sh`); rows whose tools are missing are skipped and said so.

Workloads, each driven the same way through (a) `kubesvc proxy` (a Service's cluster IP, backends registered
as Pods with status.podIP), (b) HAProxy, (c) the backend directly; medians of ``--reps`` repetitions
(ratios: median of the per-repetition ratios), the targets interleaved within each repetition, in an
order rotated per repetition:
- bulk TCP: iperf3 1 and 8 streams against an iperf3 server (its control connection passes the proxy too);
- kept-alive: wrk, 1 thread, 64 connections, against nginx returning a 2-byte 200: req/s, p99 and each proxy's CPU
  time per request (all its processes, user+sys);
- new connections: the same wrk run with `Connection: close` (nginx closes after each answer, wrk reconnects),
  so every request costs one accepted connection and one dialled connection in the proxy;
- kept-alive with `kubesvc top` attached (workload ``observed``): the kept-alive row through one proxy, alternately
  without and with `kubesvc top --interval 250ms` running in a tmux pane (a real terminal: its Live view polls the
  proxy's snapshot socket 4 times a second and turns its per-connection counting on); the ratio is with/without;
- UDP: a Python client keeping 16 datagrams of 64 bytes in flight to a uvloop echo server (no HAProxy row:
  HAProxy does not proxy UDP; the ratio is against direct);
- sync latency (create Service+Endpoints with 1,000 Services stored -> first echoed byte) and resident
  memory with 10,000 Services.
Results are printed as a Markdown table and written to bench/results/proxy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _peers as peers

from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.support.procs import Proc
from tests.support.servers import Backend

Addr = tuple[str, int]
RESULTS: dict[str, dict] = {}


def svc(name: str, port: int, target: int, selector: dict[str, str] | None = None, proto: str = "TCP") -> dict:
    spec: dict = {"ports": [{"port": port, "targetPort": target, "protocol": proto}]}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def pod(name: str, ip: str, app: str, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": app, "ports": [{"containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def start_proxy(store: str, *extra: str) -> Proc:
    p = Proc(store, "proxy", "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0",
             "--nodeport-addresses", "127.201.0.1/32", *extra)
    p.wait_line("kubesvc proxy ready", timeout=120)
    return p


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree_rss_kb(pid: int) -> int:
    """RSS of a process plus its direct children (worker processes)."""
    total = rss_kb(pid)
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    return total + sum(rss_kb(int(k)) for k in kids)


# ------------------------------------------------------------------------------------------ traffic

def measure(name: str, unit: str, targets: dict[str, Addr], reps: int, run: Callable[[Addr], float | tuple[float, float]],
            cpu: dict[str, Callable[[], list[int]]] | None = None, seconds: float = 0.0) -> None:
    """Medians of ``reps`` rounds; every round runs each target once, in an order rotated per round (a
    shared machine's load bursts then hit every target alike, and none always runs first or last).
    ``cpu``: the processes of each proxy, whose CPU time (user+sys) per request is recorded too: a shared
    machine disturbs it far less than rates (wrk runs whole seconds: ``seconds`` is rounded as wrk does)."""
    samples: dict[str, list] = {k: [] for k in targets}
    cpu_us: dict[str, list[float]] = {k: [] for k in (cpu or {})}
    paws0 = paws_timewait()
    order = list(targets)
    for r in range(reps):
        for k in order[r % len(order):] + order[: r % len(order)]:
            pids = cpu[k]() if cpu and k in cpu else []
            c0 = peers.cpu_seconds(pids)
            got = run(targets[k])
            if pids:
                rate = got[0] if isinstance(got, tuple) else got
                cpu_us[k].append((peers.cpu_seconds(pids) - c0) / (rate * max(1, round(seconds))) * 1e6)
            samples[k].append(got)
    row: dict = {"unit": unit}
    for k, vals_us in cpu_us.items():
        row[f"{k}_cpu_us"] = statistics.median(vals_us)
    for k, vals in samples.items():
        if isinstance(vals[0], tuple):
            row[k] = statistics.median(v[0] for v in vals)
            row[f"{k}_p99_ms"] = statistics.median(v[1] for v in vals)
        else:
            row[k] = statistics.median(vals)
        row[f"{k}_samples"] = vals
    peer = "haproxy" if "haproxy" in row else "direct"
    row["ratio_vs"] = peer
    # Ratio = median over rounds of (kubesvc / peer in the same round): a load burst from another process on
    # a shared machine then shifts both sides of a ratio instead of one median.
    def val(v: float | tuple[float, float]) -> float:
        return v[0] if isinstance(v, tuple) else v

    pairs = {k: list(zip(samples[k], samples[peer], strict=False)) for k in targets if k.startswith("kubesvc")}
    row["ratios"] = {k: statistics.median(val(a) / val(b) for a, b in ab) for k, ab in pairs.items()}
    row["ratio_spread"] = {k: [round(val(a) / val(b), 2) for a, b in ab] for k, ab in pairs.items()}
    direct = {k: list(zip(samples[k], samples["direct"], strict=False)) for k in targets if k.startswith("kubesvc")}
    row["ratios_direct"] = {k: statistics.median(val(a) / val(b) for a, b in ab) for k, ab in direct.items()}
    row["ratio_direct_spread"] = {k: sorted(round(val(a) / val(b), 2) for a, b in ab) for k, ab in direct.items()}
    row["load_average"] = os.getloadavg()[0]
    row["paws_refused_syns"] = paws_timewait() - paws0 if paws0 >= 0 else None
    RESULTS[name] = row
    extra = ""
    if "kubesvc_p99_ms" in row:
        extra = "  p99 ms: " + " ".join(f"{k}={row[f'{k}_p99_ms']:.2f}" for k in targets)
    if cpu_us:
        extra += "  CPU us/request: " + " ".join(f"{k}={row[f'{k}_cpu_us']:.1f}" for k in cpu_us)
    ratios = " ".join(f"{k}/{peer}={v:.2f}x" for k, v in row["ratios"].items())
    if peer != "direct":
        ratios += " " + " ".join(f"{k}/direct={v:.2f}x {row['ratio_direct_spread'][k]}" for k, v in row["ratios_direct"].items())
    extra += f"  (load average {row['load_average']:.1f}; SYNs refused by TIME_WAIT sockets (PAWS): {row['paws_refused_syns']})"
    print(f"{name}: " + " ".join(f"{k}={row[k]:,.1f}" for k in targets) + f" {unit}  {ratios}{extra}", flush=True)


def paws_timewait() -> int:
    """TcpExtPAWSTimewait so far (-1: nstat missing): SYNs a TIME_WAIT socket refused, each a 1 s wait for the client."""
    import subprocess

    try:
        r = subprocess.run(["nstat", "-a", "-z", "TcpExtPAWSTimewait"], capture_output=True, text=True, timeout=10)
    except OSError:
        return -1
    for line in r.stdout.splitlines():
        if line.startswith("TcpExtPAWSTimewait"):
            return int(line.split()[1])
    return -1


WORKLOADS = ("bulk", "keepalive", "newconn", "udp", "observed")


def traffic(tmp: str, reps: int, seconds: float, worker_counts: list[str], workloads: tuple[str, ...] = WORKLOADS) -> None:
    missing = peers.have("iperf3", "wrk", "nginx", "haproxy")
    if missing:
        print(f"traffic rows: skipped ({', '.join(missing)} not installed; BENCH=1 bash scripts/sysdeps.sh)")
        return
    be_iperf = ("127.244.0.10", peers.free_port("127.244.0.10"))
    # Every target reaches nginx on an address of its own (one server, several listen addresses): on a shared one,
    # a connection through one target and a direct one reuse the same 4-tuple at nginx with different TCP timestamps
    # (Linux offsets them by a hash of the dialled address pair), nginx's TIME_WAIT socket refuses the SYN (PAWS)
    # and wrk waits a 1 s retransmit: the new-connection row measured that, not the proxies (docs/performance.md).
    be_webs = [(f"127.244.{k}.11", peers.free_port(f"127.244.{k}.11")) for k in range(2 + len(worker_counts))]
    be_web = be_webs[0]
    be_udp = ("127.244.0.12", peers.free_port("127.244.0.12"))
    started: list = []
    try:
        started.append(peers.iperf3_server(be_iperf))
        started.append(peers.nginx(tmp, *be_webs))
        started.append(peers.udp_echo(be_udp))
        ha_iperf = ("127.0.0.2", peers.free_port("127.0.0.2"))
        ha_web = ("127.0.0.2", peers.free_port("127.0.0.2"))
        ha = peers.haproxy(tmp, [(ha_iperf, be_iperf), (ha_web, be_webs[1])])
        started.append(ha)
        cpu: dict[str, Callable[[], list[int]]] = {"haproxy": lambda: [ha.p.pid]}
        iperf_t = {"direct": be_iperf, "haproxy": ha_iperf}
        web_t = {"direct": be_web, "haproxy": ha_web}
        udp_t = {"direct": be_udp}
        # One proxy per worker count, each with its own store and cluster IPs (set explicitly), all up at once.
        for n, workers in enumerate(worker_counts):
            store = os.path.join(tmp, f"traffic{workers}.db")
            reg = Registry(Store(store))
            nft_mode = workers == "nftables"
            if nft_mode and (os.geteuid() != 0 or peers.have("nft")):
                print("nftables row: skipped (needs root and nft; BENCH=1 bash scripts/sysdeps.sh as root)")
                continue
            name = "kubesvc nftables" if nft_mode else "kubesvc" if workers == "1" else f"kubesvc --workers {workers}"
            for i, (app, be, port, proto, targets) in enumerate((("iperf", be_iperf, 5201, "TCP", iperf_t), ("web", be_webs[2 + n], 8080, "TCP", web_t),
                                                                  ("echo", be_udp, 9000, "UDP", udp_t))):
                reg.create(pod(f"{app}-0", be[0], app, be[1]))
                obj = svc(app, port, be[1], {"app": app}, proto)
                obj["spec"]["clusterIP"] = f"127.100.{n}.{10 + i}"
                reg.create(obj)
                targets[name] = (obj["spec"]["clusterIP"], port)
            extra = ["--mode", "nftables", "--nft-table", f"kubesvc-bench-{os.getpid()}"] if nft_mode else \
                (["--workers", workers] if workers != "1" else [])
            proxy = start_proxy(store, *extra)  # an nftables-mode proxy removes its table when stopped
            started.append(proxy)
            cpu[name] = lambda proxy=proxy: [proxy.p.pid, *peers.children(proxy.p.pid)]  # type: ignore[misc]
            peers.wait_tcp(web_t[name])
        print(f"traffic: {reps} repetitions of {seconds:g} s, targets interleaved: {', '.join(web_t)}", flush=True)
        if "bulk" in workloads:
            measure("bulk TCP, iperf3 1 stream", "Gbit/s", iperf_t, reps, lambda a: peers.iperf3(a, 1, seconds))
            measure("bulk TCP, iperf3 8 streams", "Gbit/s", iperf_t, reps, lambda a: peers.iperf3(a, 8, seconds))
        if "keepalive" in workloads:
            measure("kept-alive HTTP via L4, wrk 64 conns", "req/s", web_t, reps, lambda a: peers.wrk(a, 64, seconds), cpu, seconds)
        if "newconn" in workloads:
            measure("new connection per request, wrk 64 conns", "req/s", web_t, reps, lambda a: peers.wrk(a, 64, seconds, close=True),
                    cpu, seconds)
        if "udp" in workloads:
            measure("UDP request/response, 16 in flight", "answers/s", udp_t, reps, lambda a: peers.udp_rate(a, seconds))
    finally:
        for p in reversed(started):
            p.stop()


# ------------------------------------------------------------------------------------------ control plane

def observed(tmp: str, reps: int, seconds: float) -> None:
    """Kept-alive req/s through one proxy without and with a live `kubesvc top` attached (in a tmux pane)."""
    import shlex
    import subprocess

    missing = peers.have("wrk", "nginx", "tmux")
    if missing:
        print(f"observed row: skipped ({', '.join(missing)} not installed)")
        return
    be = ("127.244.0.21", peers.free_port("127.244.0.21"))
    started: list = []
    sock = f"kubesvc-bench-{os.getpid()}"
    try:
        started.append(peers.nginx(tmp, be))
        store = os.path.join(tmp, "observed.db")
        reg = Registry(Store(store))
        reg.create(pod("web-0", be[0], "web", be[1]))
        obj = svc("web", 8080, be[1], {"app": "web"})
        obj["spec"]["clusterIP"] = "127.100.9.11"
        reg.create(obj)
        proxy = start_proxy(store)
        started.append(proxy)
        addr = ("127.100.9.11", 8080)
        peers.wait_tcp(addr)
        top = (f"unset COLUMNS LINES; cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m kubesvc --store {shlex.quote(store)} "
               "top --interval 250ms")
        samples: dict[str, list[tuple[float, float]]] = {"without top": [], "with top": []}
        order = list(samples)
        cpu_us: dict[str, list[float]] = {k: [] for k in samples}  # the proxy's CPU time per request: what top could cost it
        for r in range(reps):
            for k in order[r % 2:] + order[: r % 2]:
                if k == "with top":
                    subprocess.run(["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", top], check=True, timeout=30)
                    time.sleep(1.5)  # started and attached
                try:
                    c0 = peers.cpu_seconds([proxy.p.pid])
                    rate, p99 = peers.wrk(addr, 64, seconds)
                    cpu_us[k].append((peers.cpu_seconds([proxy.p.pid]) - c0) / (rate * max(1, round(seconds))) * 1e6)
                    samples[k].append((rate, p99))
                finally:
                    if k == "with top":
                        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, timeout=30)
        row: dict = {"unit": "req/s"}
        for k, vals in samples.items():
            row[k] = statistics.median(v[0] for v in vals)
            row[f"{k}_p99_ms"] = statistics.median(v[1] for v in vals)
            row[f"{k}_samples"] = vals
            row[f"{k}_cpu_us"] = statistics.median(cpu_us[k])
        row["with/without"] = statistics.median(a[0] / b[0] for a, b in zip(samples["with top"], samples["without top"], strict=False))
        RESULTS["kept-alive HTTP via L4, wrk 64 conns, kubesvc top attached"] = row
        print(f"kept-alive with `kubesvc top` attached: without={row['without top']:,.0f} with={row['with top']:,.0f} req/s "
              f"(p99 {row['without top_p99_ms']:.2f} / {row['with top_p99_ms']:.2f} ms; proxy CPU {row['without top_cpu_us']:.1f} / "
              f"{row['with top_cpu_us']:.1f} us/request)  with/without={row['with/without']:.2f}x", flush=True)
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, timeout=30)
        for p in reversed(started):
            p.stop()


def sync_latency(tmp: str, proxy_args: list[str]) -> None:
    store = os.path.join(tmp, "sync.db")
    reg = Registry(Store(store))
    backend = Backend("b", "127.0.0.1", 0, "echo")
    try:
        for i in range(1000):
            reg.create(svc(f"s{i}", 8000 + i % 1000, backend.port))
        proxy = start_proxy(store, *proxy_args)
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
            lat.sort()
            RESULTS["sync latency"] = {"unit": "ms", "median": lat[2] * 1000, "max": lat[-1] * 1000, "samples": [x * 1000 for x in lat]}
            print(f"sync latency (create Service+Endpoints -> first echoed byte, 1,000 Services in store): "
                  f"median={lat[2]*1000:.0f}ms max={lat[-1]*1000:.0f}ms  all={[round(x * 1000) for x in lat]}", flush=True)
        finally:
            proxy.stop()
    finally:
        backend.stop()


def memory(tmp: str, proxy_args: list[str]) -> None:
    store = os.path.join(tmp, "mem.db")
    reg = Registry(Store(store))
    for i in range(10000):
        reg.create(svc(f"s{i}", 8000 + i % 1000, 9))
    proxy = start_proxy(store, *proxy_args)
    try:
        mib = tree_rss_kb(proxy.p.pid) / 1024
        RESULTS["memory"] = {"unit": "MiB", "rss": mib}
        print(f"resident memory with 10,000 Services (10,000 listeners, all processes): {mib:.0f} MiB", flush=True)
    finally:
        proxy.stop()


def table() -> str:
    rows = [r for r in RESULTS.values() if "ratios" in r]
    if not rows:
        return ""
    procs = [k for k in rows[0] if k.startswith("kubesvc") and not k.endswith(("_samples", "_p99_ms", "_cpu_us"))]
    cols = ["direct", "haproxy", *procs]
    out = ["| workload | " + " | ".join(cols) + " | " + " | ".join(f"{k}/peer" for k in procs) + " | " + " | ".join(f"{k}/direct" for k in procs) + " |",
           "|---" * (1 + len(cols) + 2 * len(procs)) + "|"]
    for name, r in RESULTS.items():
        if "ratios" not in r:
            continue
        cells = []
        for k in cols:
            if k not in r:
                cells.append("—")
                continue
            v = f"{r[k]:,.1f}" if r["unit"] == "Gbit/s" else f"{r[k]:,.0f}"
            notes = []
            if f"{k}_p99_ms" in r:
                notes.append(f"p99 {r[f'{k}_p99_ms']:.1f} ms")
            if f"{k}_cpu_us" in r:
                notes.append(f"CPU {r[f'{k}_cpu_us']:.1f} us/req")
            if notes:
                v += f" ({', '.join(notes)})"
            cells.append(v)
        ratios = [f"{r['ratios'][k]:.2f}x vs {r['ratio_vs']}" if k in r["ratios"] else "—" for k in procs]
        ratios += [f"{r['ratios_direct'][k]:.2f}x" if k in r["ratios_direct"] else "—" for k in procs]
        out.append(f"| {name} ({r['unit']}) | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--workers", default="1,auto,nftables",
                    help="--workers values of the kubesvc proxies measured side by side (comma-separated; auto = one per CPU, as HAProxy's default nbthread; "
                         "nftables = a proxy in --mode nftables, root only: the kernel forwards)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=f"traffic rows to run (comma-separated from {', '.join(WORKLOADS)})")
    ap.add_argument("--only", choices=["traffic", "sync", "memory"], default=None)
    args = ap.parse_args()
    worker_counts = [w.strip() for w in args.workers.split(",")]
    workloads = tuple(w.strip() for w in args.workloads.split(","))
    bad = [w for w in workloads if w not in WORKLOADS]
    if bad:
        ap.error(f"--workloads: unknown {', '.join(bad)} (choose from {', '.join(WORKLOADS)})")
    proxy_args: list[str] = []  # sync latency and memory: the default single process
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "traffic"):
            traffic(tmp, args.reps, args.seconds, worker_counts, tuple(w for w in workloads if w != "observed"))
            if "observed" in workloads:
                observed(tmp, args.reps, args.seconds)
        if args.only in (None, "sync"):
            sync_latency(tmp, proxy_args)
        if args.only in (None, "memory"):
            memory(tmp, proxy_args)
    print("\n" + table())
    out = ROOT / "bench" / "results" / "proxy.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "args": vars(args), "results": RESULTS}, indent=1))
    print(f"\n(written to {out.relative_to(ROOT)}; took {time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

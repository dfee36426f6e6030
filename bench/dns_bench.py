"""DNS benchmark: dnsperf against `kubesvc dns` and against dnsmasq serving the same names from a hosts file,
same run, same query list (A queries for 200 cluster-IP Services). Prints a Markdown table with ratios.

Rows: queries/s with 100 queries in flight, the server's CPU time per query in that run, and the average latency
with one query in flight; ROUNDS rounds alternate between the two servers (medians, and the spread of the
per-round ratios).
Needs dnsperf and dnsmasq (BENCH=1 scripts/sysdeps.sh). Everything binds 127.0.0.1 with free ports.
Run: make bench   (or: .venv/bin/python bench/dns_bench.py)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from _peers import cpu_seconds  # noqa: E402

N_SERVICES = 200
ROUNDS = 3
QPS_SECONDS = 5
LATENCY_SECONDS = 3


def free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def dnsperf(port: int, queries: str, seconds: int, in_flight: int) -> tuple[float, float]:
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries, "-l", str(seconds),
                          "-q", str(in_flight), "-c", "1", "-t", "2"], capture_output=True, text=True, check=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    if lost and int(lost.group(1)):
        print(f"  note: {lost.group(1)} queries lost on port {port}", file=sys.stderr)
    return qps, lat * 1e6


def wait_ready(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"{prefix!r} never printed")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> int:
    if not shutil.which("dnsperf") or not shutil.which("dnsmasq"):
        print("dns_bench: dnsperf and dnsmasq are needed (BENCH=1 bash scripts/sysdeps.sh); skipped")
        return 0
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Store

    tmp = tempfile.mkdtemp()
    procs: list[subprocess.Popen[str]] = []
    try:
        store_path = os.path.join(tmp, "store.db")
        with Store(store_path) as store:
            reg = Registry(store)
            for i in range(N_SERVICES):
                reg.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}", "namespace": "default"},
                            "spec": {"selector": {"app": f"a{i}"}, "ports": [{"port": 80}]}})
            hosts = [(f"svc-{i}.default.svc.cluster.local", reg.get("Service", "default", f"svc-{i}")["spec"]["clusterIP"])
                     for i in range(N_SERVICES)]
        hosts_file = os.path.join(tmp, "hosts")
        with open(hosts_file, "w") as f:
            f.writelines(f"{ip} {name}\n" for name, ip in hosts)
        queries = os.path.join(tmp, "queries")
        with open(queries, "w") as f:
            f.writelines(f"{name} A\n" for name, _ in hosts)
        resolv = os.path.join(tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 127.53.0.1\n")

        ks = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", store_path, "dns", "--listen", "127.0.0.1:0",
                               "--resolv-conf", resolv], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        procs.append(ks)
        ks_port = int(re.search(r"udp=127\.0\.0\.1:(\d+)", wait_ready(ks, "kubesvc dns ready")).group(1))  # type: ignore[union-attr]
        dm_port = free_port()
        dm = subprocess.Popen(["dnsmasq", "--keep-in-foreground", "--log-facility=-", f"--port={dm_port}",
                               "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                               f"--addn-hosts={hosts_file}", "--cache-size=10000", "--user=" + (os.environ.get("USER") or "root"),
                               "--pid-file="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        procs.append(dm)
        time.sleep(0.5)  # dnsmasq prints nothing when ready; dnsperf's warm-up run below absorbs the rest
        for port in (ks_port, dm_port):
            dnsperf(port, queries, 1, 10)  # warm-up: kubesvc prepares replies, dnsmasq loads its cache
        cpu = {ks_port: [ks.pid], dm_port: [dm.pid]}
        samples: dict[int, list[tuple[float, float, float]]] = {ks_port: [], dm_port: []}  # (qps, cpu us/query, latency)
        for r in range(ROUNDS):  # alternating, the order swapped every round
            for port in ((ks_port, dm_port) if r % 2 == 0 else (dm_port, ks_port)):
                c0 = cpu_seconds(cpu[port])
                qps, _ = dnsperf(port, queries, QPS_SECONDS, 100)
                used = (cpu_seconds(cpu[port]) - c0) / (qps * QPS_SECONDS) * 1e6
                _, lat = dnsperf(port, queries, LATENCY_SECONDS, 1)
                samples[port].append((qps, used, lat))
        rows = []
        for col, name in ((0, "dnsperf, 100 in flight (queries/s)"), (1, "CPU per query at 100 in flight (us)"),
                          (2, "one query in flight, average latency (us)")):
            a = statistics.median(x[col] for x in samples[ks_port])
            b = statistics.median(x[col] for x in samples[dm_port])
            ratios = [x[col] / y[col] for x, y in zip(samples[ks_port], samples[dm_port], strict=False)]
            rows.append((name, a, b, a / b, min(ratios), max(ratios)))
        print(f"{N_SERVICES} Services, A queries for their names; dnsmasq serves the same names from a hosts file. "
              f"Medians of {ROUNDS} alternating rounds ({QPS_SECONDS} s at 100 in flight, {LATENCY_SECONDS} s at 1).\n")
        print("| workload | kubesvc dns | dnsmasq | ratio (kubesvc/dnsmasq) | per-round ratio spread |")
        print("|---|---|---|---|---|")
        for name, a, b, r, lo, hi in rows:
            print(f"| {name} | {a:,.1f} | {b:,.1f} | {r:.2f}x | {lo:.2f}-{hi:.2f}x |")
        return 0
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

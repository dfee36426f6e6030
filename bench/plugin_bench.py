"""The pytest plugin's fixture beside `kubesvc up`/`kubesvc down` (same run, same machine, same components).

Rows (median of 20 each, all five components unless said):
- `kubesvc up` / `kubesvc down` as a CI script runs them (a fresh store each time, every port 0), wall time of the
  command;
- the kubesvc_cluster fixture, function scope: the set-up and teardown phases of 20 tests in one pytest session
  (pytest's own report durations: the plane's start and stop, plus pytest's tmp dir), all components, and again
  with components=["apiserver", "proxy", "dns"] (the marker in docs/commands/pytest.md's example).

Run: .venv/bin/python bench/plugin_bench.py [N]   (also part of make bench)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
PORTS = ["--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0",
         "--apiserver-address", "127.0.0.1:0", "--ingress-http-address", "127.0.0.1:0", "--ingress-https-address", "127.0.0.1:0"]

INNER = '''
import pytest

@pytest.mark.parametrize("i", range({n}))
def test_all(kubesvc_cluster, i):
    assert kubesvc_cluster.ready

@pytest.mark.parametrize("i", range({n}))
@pytest.mark.kubesvc(components=["apiserver", "proxy", "dns"])
def test_three(kubesvc_cluster, i):
    assert kubesvc_cluster.ready
'''

RECORDER = '''
import json, os

def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        with open(os.environ["PLUGIN_BENCH_OUT"], "a") as f:
            f.write(json.dumps({"test": report.nodeid.split("::")[1].split("[")[0], "when": report.when,
                                "duration": report.duration}) + "\\n")
'''


def cli_up_down(work: str) -> tuple[list[float], list[float]]:
    ups, downs = [], []
    for i in range(N):
        store = os.path.join(work, f"cli{i}", "store.db")
        os.makedirs(os.path.dirname(store))
        env = dict(os.environ, KUBESVC_STORE=store)
        subprocess.run([sys.executable, "-m", "kubesvc", "init"], env=env, check=True, capture_output=True)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kubesvc", "up", *PORTS], env=env, check=True, capture_output=True)
        ups.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kubesvc", "down"], env=env, check=True, capture_output=True)
        downs.append(time.perf_counter() - t)
    return ups, downs


def fixture_phases(work: str) -> dict[tuple[str, str], list[float]]:
    d = os.path.join(work, "inner")
    os.makedirs(d)
    with open(os.path.join(d, "test_bench.py"), "w") as f:
        f.write(INNER.replace("{n}", str(N)))
    with open(os.path.join(d, "conftest.py"), "w") as f:
        f.write(RECORDER)
    out = os.path.join(work, "phases.jsonl")
    env = dict(os.environ, PLUGIN_BENCH_OUT=out)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", os.path.join(work, "bt"), d],
                   env=env, cwd=d, check=True, capture_output=True)
    got: dict[tuple[str, str], list[float]] = {}
    for line in open(out):
        r = json.loads(line)
        got.setdefault((r["test"], r["when"]), []).append(r["duration"])
    return got


def main() -> int:
    with tempfile.TemporaryDirectory() as work:
        ups, downs = cli_up_down(work)
        phases = fixture_phases(work)
    med = statistics.median
    print(f"load average at the end: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); median of {N}\n")
    print("| what | components | start | stop |")
    print("|---|---|---:|---:|")
    print(f"| `kubesvc up` / `kubesvc down` (CLI, ports 0) | all five | {med(ups):.2f} s | {med(downs):.2f} s |")
    print(f"| `kubesvc_cluster` set-up / teardown (function scope) | all five | {med(phases['test_all', 'setup']):.2f} s "
          f"| {med(phases['test_all', 'teardown']):.2f} s |")
    print(f"| `kubesvc_cluster` set-up / teardown (function scope) | apiserver, proxy, dns | "
          f"{med(phases['test_three', 'setup']):.2f} s | {med(phases['test_three', 'teardown']):.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

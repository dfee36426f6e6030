"""Control-plane benchmark: `create -f` of 1,000 Services and `get svc` with 1,000 and 10,000 Services,
next to `kubectl version --client` start-up as the reference (same run). Prints a Markdown table.

Run: make bench   (or: .venv/bin/python bench/cli_bench.py)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd: list[str], env: dict[str, str], repeat: int = 5) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def services_file(path: str, n: int, prefix: str) -> None:
    docs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{prefix}-{i}"},
             "spec": {"selector": {"app": f"{prefix}-{i}"}, "ports": [{"port": 80, "targetPort": 8080}]}} for i in range(n)]
    with open(path, "w") as fh:
        json.dump({"apiVersion": "v1", "kind": "List", "items": docs}, fh)


def main() -> int:
    tmp = tempfile.mkdtemp()
    try:
        env = dict(os.environ, KUBESVC_STORE=os.path.join(tmp, "store.db"))
        ks = [sys.executable, "-m", "kubesvc"]
        rows = []
        kubectl = shutil.which("kubectl")
        ref = timed([kubectl, "version", "--client"], env) if kubectl else float("nan")
        rows.append(("`kubectl version --client` (reference)", ref))
        rows.append(("`kubesvc version`", timed(ks + ["version"], env)))
        f1 = os.path.join(tmp, "a.json")
        services_file(f1, 1000, "a")
        t = time.perf_counter()
        subprocess.run(ks + ["create", "-f", f1], env=env, stdout=subprocess.DEVNULL, check=True)
        rows.append(("`kubesvc create -f` 1,000 Services", time.perf_counter() - t))
        rows.append(("`kubesvc get svc` with 1,000 Services", timed(ks + ["get", "svc"], env)))
        f2 = os.path.join(tmp, "b.json")
        services_file(f2, 9000, "b")
        subprocess.run(ks + ["create", "-f", f2], env=env, stdout=subprocess.DEVNULL, check=True)
        rows.append(("`kubesvc get svc` with 10,000 Services", timed(ks + ["get", "svc"], env)))
        rows.append(("`kubesvc get svc -o name` with 10,000 Services", timed(ks + ["get", "svc", "-o", "name"], env)))
        print("| measurement | seconds (median) | ratio to kubectl start-up |")
        print("|---|---|---|")
        for name, secs in rows:
            print(f"| {name} | {secs:.3f} | {secs / ref:.2f}x |")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

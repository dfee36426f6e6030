"""Control-plane benchmark: `create -f` of 1,000 Services and `get svc` with 1,000 and 10,000 Services,
next to `kubectl version --client` start-up as the reference (same run). Prints a Markdown table.

Run: make bench   (or: .venv/bin/python bench/cli_bench.py; `... cli_bench.py read` for the manifest-reading row alone)
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


def services_yaml(path: str, n: int) -> None:
    """n Services as people write them: one YAML document each, block style, two ports, labels, an annotation."""
    docs = [f"""apiVersion: v1
kind: Service
metadata:
  name: web-{i}
  labels:
    app: web-{i}
    tier: frontend
  annotations:
    example.com/owner: team-{i % 7}
spec:
  type: ClusterIP
  selector:
    app: web-{i}
  ports:
  - name: http
    port: 80
    targetPort: 8080
    protocol: TCP
  - name: https
    port: 443
    targetPort: 8443
    protocol: TCP
""" for i in range(n)]
    with open(path, "w") as fh:
        fh.write("---\n".join(docs))


def read_seconds(path: str, repeat: int = 5) -> tuple[float, float]:
    """`read_sources` on one file in this process (what `create/apply -f` pay before the first write):
    median wall and CPU seconds."""
    from kubesvc.api.manifests import read_sources

    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        read_sources([path])
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def read_row(tmp: str) -> tuple[str, float]:
    f = os.path.join(tmp, "services.yaml")
    services_yaml(f, 2000)
    wall, cpu = read_seconds(f)
    print(f"read_sources, 2,000 Services in {os.path.getsize(f):,} bytes of YAML: {wall:.3f} s wall, {cpu:.3f} s CPU",
          file=sys.stderr)
    return "`read_sources` of 2,000 Services, one YAML document each (in process)", wall


def main() -> int:
    if sys.argv[1:] == ["read"]:
        tmp = tempfile.mkdtemp()
        try:
            read_row(tmp)
            return 0
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
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
        rows.append(read_row(tmp))
        print("| measurement | seconds (median) | ratio to kubectl start-up |")
        print("|---|---|---|")
        for name, secs in rows:
            print(f"| {name} | {secs:.3f} | {secs / ref:.2f}x |")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

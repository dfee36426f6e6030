"""Pod writes against many Services: does a Pod create slow down with the number of Services stored?

Run: `.venv/bin/python bench/pod_write_bench.py` (`--services 1000,10000`, `--pods 30`). For each N a fresh store gets N
selector Services (``app: a<i>``, one port), written through the registry in transactions of 1,000 objects, then
``--pods`` Pods are created one write each through ``Registry.create`` (the write pipeline: decode, validation, pod IP,
the endpoints and EndpointSlice controllers inside the transaction, commit): half select one Service each (``app:
a<j>``, so that Service's Endpoints and slice are written too), half none (``app: none``). A relabel (``kubectl
label`` as ``Registry.mutate``) moves a pod from one Service to another. Medians and p90 in milliseconds; no network.
Also printed: ``on_pod_changed`` alone (the controller's lookup + sync, inside a write transaction rolled back).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubesvc.controllers import endpoints as ep_controller  # noqa: E402
from kubesvc.registry.generic import Registry  # noqa: E402
from kubesvc.store.db import Store  # noqa: E402

BATCH = 1000


def service(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}}


def pod(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 8080}]}]}}


class Aborted(Exception):
    pass


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"{statistics.median(xs) * 1000:.1f} / {xs[int(len(xs) * 0.9)] * 1000:.1f}"


def run(n: int, pods: int, tmp: str) -> dict[str, str]:
    path = os.path.join(tmp, f"pods{n}.db")
    reg = Registry(Store(path))
    try:
        t = time.monotonic()
        template = reg.decode(service("a", "a"), "strict")[0]
        objs = []
        for i in range(n):
            o = copy.deepcopy(template)
            o["metadata"]["name"] = o["spec"]["selector"]["app"] = f"a{i}"
            objs.append(o)
        for i in range(0, n, BATCH):
            with reg.store.write() as txn:
                for o in objs[i:i + BATCH]:
                    reg._create(txn, o, None)
        setup = time.monotonic() - t
        reg.create(pod("warm", "none"))  # the first decode loads the JSON Schemas
        matching, other, relabel, alone = [], [], [], []
        for j in range(pods):
            app = f"a{(j * 7919) % n}" if j % 2 == 0 else "none"
            t = time.monotonic()
            reg.create(pod(f"p{j}", app))
            (matching if j % 2 == 0 else other).append(time.monotonic() - t)
        for j in range(0, pods, 2):
            new_app = f"a{(j * 7919 + 1) % n}"

            def set_app(obj: dict[str, Any], app: str = new_app) -> None:
                obj["metadata"]["labels"]["app"] = app

            t = time.monotonic()
            reg.mutate("Pod", "default", f"p{j}", set_app)
            relabel.append(time.monotonic() - t)
        p = reg.store.get("Pod", "default", "p0")
        assert p is not None
        for _ in range(pods):
            t = time.monotonic()
            try:
                with reg.store.write() as txn:
                    ep_controller.on_pod_changed(txn, None, p)
                    raise Aborted
            except Aborted:
                pass
            alone.append(time.monotonic() - t)
        return {"services": f"{n:,}", "setup_s": f"{setup:.1f}", "create_matching": ms(matching),
                "create_none": ms(other), "relabel": ms(relabel), "on_pod_changed": ms(alone)}
    finally:
        reg.store.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", default="1000,10000")
    ap.add_argument("--pods", type=int, default=30)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.services.split(",")):
            rows.append(run(n, args.pods, tmp))
            print(rows[-1], flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f}; ms, median / p90 of {args.pods // 2} (on_pod_changed: {args.pods})\n")
    print("| Services | Pod create, selects one | Pod create, selects none | relabel (moves) | on_pod_changed | set-up s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['services']} | {r['create_matching']} | {r['create_none']} | {r['relabel']} | {r['on_pod_changed']} "
              f"| {r['setup_s']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

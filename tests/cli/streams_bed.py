"""A module-scoped test bed for `kubesvc logs`/`exec`/`port-forward`: a real store, a real `kubesvc kubelet`
running a web pod (examples/app/server.py), a chatty logger pod, a Service and a Deployment. Import with
``from tests.cli.streams_bed import bed  # noqa: F401``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.procs import Proc
from tests.workloads.fixtures import POD_PYTHON, SERVER, Bed, searchable

LOGGER = ("import sys, time\n"
          "for i in range(5):\n"
          "    print(f'line {i}', flush=True)\n"
          "print('to stderr', file=sys.stderr, flush=True)\n"
          "time.sleep(100000)\n")


def _pod(name: str, command: list[str], labels: dict[str, str], port: int | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "app", "image": "python", "command": command,
                         "env": [{"name": "GREETING", "value": "hello from " + name}]}
    if port:
        c["env"].append({"name": "PORT", "value": str(port)})
        c["ports"] = [{"containerPort": port, "name": "http"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": {"containers": [c]}}


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    tmp = tmp_path_factory.mktemp("cli-streams")
    procs: list[Proc] = []

    def spawn(store: str, *args: str) -> Proc:
        p = Proc(store, *args)
        procs.append(p)
        return p

    b = Bed(tmp, spawn)
    try:
        searchable(tmp)
        b.start_kubelet()
        b.create(_pod("web", [POD_PYTHON, SERVER], {"app": "web"}, 8080))
        b.create(_pod("logger", [POD_PYTHON, "-c", LOGGER], {"app": "logger"}))
        b.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                  "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        for name in ("web", "logger"):
            b.wait(lambda n=name: (b.pod(n) or {}).get("status", {}).get("phase") == "Running", timeout=30, what=name)
        b.wait(lambda: "to stderr" in b.ks("logs", "logger").stdout, timeout=30, what="logger output")
        yield b
    finally:
        try:
            b.stop()
        finally:
            for p in procs:
                p.stop()

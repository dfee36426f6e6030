"""The greeter against a real Service plane: `pytest examples/pytest` (the kubesvc plugin is loaded by pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.kubesvc(components=["apiserver", "proxy", "dns"], nodes=1)
def test_greeter_finds_its_backend_by_dns_name(kubesvc_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = kubesvc_cluster
    cluster.apply(HERE / "backend.yaml")
    cluster.wait_for("deployment/backend", "Available")
    cluster.wait_for("endpoints/backend")
    cluster.service_url("backend", "http")  # returns once the proxy serves the Service port

    assert cluster.resolve("backend") == [cluster.get("service/backend")["spec"]["clusterIP"]]
    host, port = cluster.dns_address
    app = subprocess.run([sys.executable, str(HERE / "app.py")], env={**os.environ, "CLUSTER_DNS": f"{host}:{port}"},
                         capture_output=True, text=True, timeout=30)
    assert app.returncode == 0, app.stderr
    assert app.stdout.startswith("hello from backend-"), app.stdout

    pods = cluster.kubectl("get", "pods", "-l", "app=backend", "-o", "json")["items"]
    assert app.stdout.split()[-1] in {p["metadata"]["name"] for p in pods}


@pytest.mark.kubesvc(components=["apiserver", "proxy", "dns"], nodes=1)
def test_greeter_fails_clearly_without_a_backend(kubesvc_cluster) -> None:  # type: ignore[no-untyped-def]
    host, port = kubesvc_cluster.dns_address
    app = subprocess.run([sys.executable, str(HERE / "app.py")], env={**os.environ, "CLUSTER_DNS": f"{host}:{port}"},
                         capture_output=True, text=True, timeout=30)
    assert app.returncode != 0
    assert "NXDOMAIN" in app.stderr or "does not exist" in app.stderr

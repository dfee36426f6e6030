"""Components never die quietly (issue 16 item 6): a supervised task that fails is logged with its cause, retried
with back-off, and /healthz answers 503 naming it until it recovers, while serving goes on.

The original bug: the proxy's store-following task died when writing its status file failed (the run directory
read-only, the disk full): new Services were never served again, nothing was logged, /healthz stayed 200. Here
the directory of the status file is made immutable (``chattr +i``, root) or read-only (``chmod``, others), for
real: the proxy's writes fail with EPERM/EACCES as they would on a read-only mount.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dataplane.conftest import Cluster, who
from tests.support.procs import wait_for


@pytest.fixture
def frozen_dir(tmp_path: Path) -> Iterator[tuple[Path, object]]:
    """A directory and a switch ``freeze(on)`` that makes it unwritable and back (always undone)."""
    d = tmp_path / "run"
    d.mkdir()
    root = os.geteuid() == 0
    if root and shutil.which("chattr") is None:
        pytest.skip("needs chattr as root")
    state = {"on": False}

    def freeze(on: bool) -> None:
        if root:
            r = subprocess.run(["chattr", "+i" if on else "-i", str(d)], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"chattr does not work here: {r.stderr.strip()}")
        else:
            d.chmod(0o555 if on else 0o755)
        state["on"] = on

    try:
        yield d, freeze
    finally:
        if state["on"]:
            freeze(False)


def healthz(cluster: Cluster) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://{cluster.fields['healthz']}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_status_file_write_failure_is_logged_503_and_new_services_still_served(cluster: Cluster, frozen_dir) -> None:  # type: ignore[no-untyped-def]
    """kube-proxy reference ``--healthz-bind-address`` (the health server answers 503 while the proxy is not
    in sync) and kubesvc's docs/concepts/proxy.md "Supervision": a failing task is logged with its cause, /healthz
    names it, and following the store goes on."""
    d, freeze = frozen_dir
    status_file = d / "proxy.status.json"
    bs = cluster.three_backends()
    cluster.service("before", 8080, bs[0].port, selector={"app": "echo"})
    cluster.start_proxy("--status-file", str(status_file))
    assert healthz(cluster)[0] == 200
    assert "default/before:p" in status_file.read_text()

    freeze(True)
    svc = cluster.service("after", 8081, bs[0].port, selector={"app": "echo"})
    # Still following the store: the new Service is served although its status cannot be written.
    assert wait_for(lambda: who((svc["spec"]["clusterIP"], 8081)) in {"a", "b", "c"}, timeout=10, what="new Service served")
    code, body = wait_for(lambda: (lambda h: h if h[0] == 503 else None)(healthz(cluster)), timeout=10, what="/healthz 503")
    assert any(r.startswith("status-file: ") and ("Operation not permitted" in r or "Permission denied" in r) for r in body["failing"]), body
    line = wait_for(lambda: next((ln for ln in cluster.proxy.stderr if "status-file failed; retrying" in ln), None),
                    timeout=10, what="the failure logged")
    assert "level=error" in line and "error=" in line and str(d) in line
    assert "default/after:p" not in status_file.read_text()
    # And it keeps following while the status file fails (the old follower died after its first failed write).
    third = cluster.service("third", 8082, bs[0].port, selector={"app": "echo"})
    assert wait_for(lambda: who((third["spec"]["clusterIP"], 8082)) in {"a", "b", "c"}, timeout=10, what="third Service served")

    freeze(False)
    wait_for(lambda: healthz(cluster)[0] == 200, timeout=15, what="/healthz 200 again")
    assert "default/after:p" in status_file.read_text()
    assert any("status-file recovered" in ln for ln in cluster.proxy.stderr)
    assert "failing" not in healthz(cluster)[1]


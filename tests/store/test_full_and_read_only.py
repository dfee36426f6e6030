"""A full disk and a read-only store: a clear error, exit 1, nothing written, and the store still reads.

Real conditions, not simulated ones: each test runs the CLI in a private mount namespace (`unshare -m`,
root only) on a small tmpfs or a read-only bind mount of the test's own directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

needs_root_mounts = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare for a private mount"
)


def _in_namespace(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESVC_")}
    env["KS"] = f"{sys.executable} -m kubesvc"
    return subprocess.run(["unshare", "-m", "bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=120)


@needs_root_mounts
def test_disk_full_is_a_clear_error_and_loses_nothing(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f"""
mount -t tmpfs -o size=320k tmpfs {mnt}
$KS --store {mnt}/s.db create configmap keep --from-literal=a=b
big=$(head -c 60000 /dev/zero | tr '\\0' x)
failed=""
for i in $(seq 1 30); do
  if ! $KS --store {mnt}/s.db create configmap c$i --from-literal=a=$big >/dev/null 2>err.txt; then failed=$i; break; fi
done
test -n "$failed" || {{ echo "the disk never filled" >&2; exit 9; }}
echo "FAILED_AT=$failed"
cat err.txt
$KS --store {mnt}/s.db get configmap keep -o name
"""
    p = _in_namespace(script, tmp_path)
    assert p.returncode == 0, p.stderr
    err = p.stdout.split("\n", 1)[1]
    assert "Error from server (ServiceUnavailable): cannot write to the store" in err
    assert "disk is full" in err and "nothing was written" in err
    assert "internal error" not in p.stdout + p.stderr and "Traceback" not in p.stdout + p.stderr
    assert "configmap/keep" in p.stdout


@needs_root_mounts
def test_read_only_store_reads_and_refuses_writes_clearly(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    store = d / "s.db"
    script = f"""
$KS --store {store} create configmap keep --from-literal=a=b
mount --bind {d} {d}
mount -o remount,ro,bind {d}
$KS --store {store} get configmap keep -o name
set +e
$KS --store {store} create configmap other --from-literal=a=b; echo "create=$?"
$KS --store {store} delete configmap keep; echo "delete=$?"
"""
    p = _in_namespace(script, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "configmap/keep" in p.stdout
    assert "create=1" in p.stdout and "delete=1" in p.stdout
    lines = [ln for ln in p.stderr.splitlines() if ln]
    assert len(lines) == 2, p.stderr
    for line in lines:
        assert line.startswith('Error from server (ServiceUnavailable): cannot write to the store "'), line
        assert "read-only" in line and "nothing was written" in line
    out = subprocess.run([sys.executable, "-m", "kubesvc", "--store", str(store), "get", "configmap", "-o", "name"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["configmap/keep"], out

"""A store deleted or replaced under `kubesvc up`'s components, and `down` with a read-only run directory."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from tests.dataplane.test_up import sh  # noqa: F401  (the fixture)
from tests.support.procs import wait_for

COMPONENTS = ("proxy", "dns", "apiserver", "kubelet", "ingress")
UP = ("$KS up --healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 --dns-listen 127.0.0.1:0"
      " --apiserver-address 127.0.0.1:0 --ingress-http-address 127.0.0.1:0 --ingress-https-address 127.0.0.1:0")


def pids(store: str, names: tuple[str, ...] = COMPONENTS) -> dict[str, int]:
    return {n: json.loads(Path(f"{store}.d/{n}.pid").read_text())["pid"] for n in names}


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def up_all(sh) -> dict[str, int]:  # type: ignore[no-untyped-def]
    assert sh("$KS create service clusterip web --tcp 8080:80").returncode == 0
    r = sh(UP)
    assert r.returncode == 0, r.stderr
    return pids(sh.store)


def test_a_deleted_store_stops_every_component_and_is_not_silently_recreated(sh) -> None:  # type: ignore[no-untyped-def]
    running = up_all(sh)
    Path(sh.store).unlink()
    wait_for(lambda: all(gone(p) for p in running.values()), timeout=30, what="every component to stop")
    for name in COMPONENTS:  # "replaced" when a component's new connection made an empty file there meanwhile
        assert re.search(r"msg=\"the store was (deleted|replaced) under this component; stopping\"",
                         Path(f"{sh.store}.d/{name}.log").read_text()), name

    st = sh("$KS status")
    assert st.returncode == 1
    assert re.search(rf"\nerror: the store {re.escape(sh.store)} was (deleted|replaced) after `kubesvc up`; its "
                     r"components stopped: run `kubesvc down`, then `kubesvc up`\n$", st.stdout), st.stdout
    assert "proxy: not running\n" in st.stdout

    get = sh("$KS get svc")
    assert get.returncode == 1
    assert re.fullmatch(rf"error: the store {re.escape(sh.store)} was (deleted|replaced) after `kubesvc up` and its "
                        r"components stopped; run `kubesvc down` first \(then commands use the store at that path, "
                        r"and create a new, empty one if there is none\)\n", get.stderr), get.stderr
    assert sh("$KS create service clusterip new --tcp 80").returncode == 1
    assert sh(UP).returncode == 1  # nor does up start over on it

    assert sh("$KS down").returncode == 0
    assert sh("$KS status").returncode == 3
    get = sh("$KS get svc")
    assert (get.returncode, get.stderr) == (0, "No resources found in default namespace.\n")


def test_a_replaced_store_stops_every_component(sh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    running = up_all(sh)
    other = tmp_path / "other.db"
    assert sh(f"$KS --store {other} create service clusterip other --tcp 9090:80").returncode == 0
    backup = tmp_path / "backup.db"
    with closing(sqlite3.connect(other)) as db:  # a self-contained copy (the WAL folded in), as a backup would be
        db.execute(f"VACUUM INTO '{backup}'")
    for suffix in ("-wal", "-shm"):  # a restored backup: `rm store.db-*; mv backup.db store.db`
        Path(sh.store + suffix).unlink(missing_ok=True)
    backup.replace(sh.store)
    wait_for(lambda: all(gone(p) for p in running.values()), timeout=30, what="every component to stop")

    st = sh("$KS status")
    assert st.returncode == 1
    assert f"error: the store {sh.store} was replaced after `kubesvc up`" in st.stdout
    assert "was replaced after `kubesvc up` and its components stopped" in sh("$KS get svc other").stderr
    assert sh("$KS down").returncode == 0
    assert sh("$KS get svc other").returncode == 0  # after down: the store now at that path
    assert sh(UP).returncode == 0
    assert sh("$KS status").returncode == 0


def test_status_reports_a_deleted_store_while_components_still_run(sh) -> None:  # type: ignore[no-untyped-def]
    running = up_all(sh)
    for p in running.values():  # freeze them, so that they cannot stop yet
        subprocess.run(["kill", "-STOP", str(p)], check=True)
    try:
        Path(sh.store).unlink()
        st = sh("$KS status")
        assert st.returncode == 1
        assert st.stdout.endswith(f"error: the store {sh.store} was deleted after `kubesvc up`; its components stop on "
                                  "their own: run `kubesvc down`, then `kubesvc up`\n")
        get = sh("$KS get svc")
        assert get.returncode == 1 and "and its components still run (proxy pid " in get.stderr
        assert not Path(sh.store).exists()
    finally:
        for p in running.values():
            subprocess.run(["kill", "-CONT", str(p)])
    assert sh("$KS down").returncode == 0


def test_down_stops_everything_with_a_read_only_run_directory(sh) -> None:  # type: ignore[no-untyped-def]
    """Root ignores mode bits; an immutable directory (chattr +i) refuses even root's unlink."""
    r = sh("$KS up --components proxy,dns --healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0"
           " --dns-listen 127.0.0.1:0")
    assert r.returncode == 0, r.stderr
    running = pids(sh.store, ("proxy", "dns"))
    run_dir = sh.store + ".d"
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", run_dir], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here (tests/dataplane/test_up_rootless.py covers chmod a-w)")
    try:
        down = sh("$KS down")
    finally:
        subprocess.run(["chattr", "-i", run_dir], check=True)
    assert down.returncode == 0, down.stderr
    assert down.stdout == f"proxy: stopped (pid {running['proxy']})\ndns: stopped (pid {running['dns']})\n"
    assert down.stderr.startswith(f"warning: {run_dir} is read-only: stale files left there (harmless): proxy.pid, dns.pid")
    assert all(gone(p) for p in running.values())
    st = sh("$KS status")
    assert (st.returncode, st.stdout) == (3, f"kubesvc is not running for {sh.store}\n")

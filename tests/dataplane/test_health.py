"""Components never die quietly (issue 16 item 6): the DNS server, the ingress router and the kubelet (and the
controllers in it) serve ``/healthz`` on loopback, 200 while every supervised task succeeds and 503 naming the
failing task and its reason while one does not: above all, while the component is not following the store.
``kubesvc status`` shows it. (The proxy's own case is tests/dataplane/test_supervision.py.)

How the store following is made to fail, for real and reversibly, without root: the store's ``objects`` table is
renamed away under the running component by another SQLite connection (and the revision moved on, so that every
component looks), as a damaged store or one rewritten by another kubesvc version would look; every sync then
fails with SQLite's own ``no such table: objects``. Renaming it back is the recovery. (Not ``meta``: a component
opening its store connection in that moment would take the store for a new one and create the schema.) The
controllers' own failure: a trigger makes the store refuse the Pods a ReplicaSet controller creates, while reads
(the node's pod sync) go on.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.support.procs import ROOT, Proc, ready_fields, wait_for


def get(addr: str, path: str = "/healthz") -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@contextmanager
def objects_moved_away(store: str) -> Iterator[None]:
    """The store's objects table renamed away and the revision moved on (one committed transaction of another
    connection); renamed back after."""
    conn = sqlite3.connect(store, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ALTER TABLE objects RENAME TO objects_moved_away")
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'")
        conn.execute("COMMIT")
        try:
            yield
        finally:
            conn.execute("ALTER TABLE objects_moved_away RENAME TO objects")
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> str:
    path = str(tmp_path / "store.db")
    Store(path).close()  # the schema and the default namespaces
    return path


@pytest.fixture
def start(store: str, tmp_path: Path) -> Iterator[Callable[..., tuple[Proc, dict[str, str]]]]:
    """start(component, *args) -> (process, ready fields); every process is stopped after the test."""
    procs: list[Proc] = []
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")  # DNS: never the host's resolvers (no query is forwarded anyway)
    extra = {"dns": ["--listen", "127.0.0.1:0", "--resolv-conf", str(resolv)],
             "ingress": ["--http-address", "127.0.0.1:0", "--https-address", "", "--access-log", "off"],
             "kubelet": []}

    def run(component: str, *args: str) -> tuple[Proc, dict[str, str]]:
        p = Proc(store, component, *extra[component], *args)
        procs.append(p)
        return p, ready_fields(p.wait_line(f"kubesvc {component} ready", timeout=60))

    try:
        yield run
    finally:
        for p in procs:
            p.stop()


def failing_then_recovered(proc: Proc, addr: str, store: str, paths: tuple[str, ...] = ("/healthz",)) -> None:
    """The shared check: 200; with the store broken, a log line naming the cause and a 503 naming the store task
    and the reason on every path; repaired, 200 again and the recovery logged."""
    ok = (200, {"component": proc.argv[5], "status": "ok"})
    for path in paths:  # (wait_for: a connection refused or timed out on a busy machine is asked again)
        wait_for(lambda p=path: get(addr, p) == ok, timeout=15, what=f"{path} 200")  # type: ignore[misc]
    with objects_moved_away(store):
        code, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(get(addr)), timeout=15, what="/healthz 503")
        assert body["status"] == "failing"
        assert "store: OperationalError: no such table: objects" in body["failing"], body
        for path in paths:
            assert get(addr, path)[0] == 503, path
        line = wait_for(lambda: next((ln for ln in proc.stderr if "store failed; retrying" in ln), None), timeout=10,
                        what="the failure logged")
        assert "level=error" in line and 'error="OperationalError: no such table: objects"' in line, line
        assert proc.p.poll() is None  # still running, still retrying
    wait_for(lambda: get(addr)[0] == 200, timeout=15, what="/healthz 200 again")
    assert get(addr)[1] == {"component": proc.argv[5], "status": "ok"}
    wait_for(lambda: any("store recovered" in ln for ln in proc.stderr), timeout=10, what="the recovery logged")


def test_dns_health_turns_503_while_not_following_the_store(store: str, start) -> None:  # type: ignore[no-untyped-def]
    """CoreDNS's /health and /ready paths (and /healthz) on --healthz-bind-address."""
    proc, ready = start("dns", "--healthz-bind-address", "127.0.0.1:0")
    failing_then_recovered(proc, ready["healthz"], store, ("/health", "/ready", "/healthz"))
    # and following again: a new Service gets its record
    with Store(store) as s:
        Registry(s).apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "after", "namespace": "default"},
                           "spec": {"ports": [{"port": 80}]}})
        ip = s.get("Service", "default", "after")["spec"]["clusterIP"]
    if shutil.which("dig"):
        host, port = ready["udp"].rsplit(":", 1)
        argv = ["dig", "+short", "+time=2", "+tries=1", "-p", port, f"@{host}", "after.default.svc.cluster.local"]
        wait_for(lambda: subprocess.run(argv, capture_output=True, text=True).stdout.strip() == ip, timeout=10, what="the new record")


def test_ingress_health_turns_503_while_not_following_the_store(store: str, start) -> None:  # type: ignore[no-untyped-def]
    proc, ready = start("ingress", "--healthz-bind-address", "127.0.0.1:0")
    failing_then_recovered(proc, ready["healthz"], store)


def test_kubelet_health_turns_503_while_not_following_the_store(store: str, start) -> None:  # type: ignore[no-untyped-def]
    proc, ready = start("kubelet", "--healthz-bind-address", "127.0.0.1:0")
    failing_then_recovered(proc, ready["healthz"], store)


def test_kubelet_health_names_the_controllers_when_they_fail(store: str, start) -> None:  # type: ignore[no-untyped-def]
    """The controllers are a supervised task of their own: their failure is named ("controllers: ..."), logged,
    retried, and does not stop the node's pod sync."""
    proc, ready = start("kubelet", "--healthz-bind-address", "127.0.0.1:0")
    addr = ready["healthz"]
    conn = sqlite3.connect(store, timeout=30, isolation_level=None)
    try:
        conn.execute("CREATE TRIGGER refuse_pods BEFORE INSERT ON objects WHEN NEW.kind = 'Pod' "
                     "BEGIN SELECT RAISE(ABORT, 'pods refused by the test'); END")
        try:
            with Store(store) as s:
                Registry(s).apply({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "default"},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "rs"}},
                             "template": {"metadata": {"labels": {"app": "rs"}},
                                          "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}]}}}})
            code, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(get(addr)), timeout=15, what="/healthz 503")
            assert any(f.startswith("controllers: ") and "pods refused by the test" in f for f in body["failing"]), body
            assert not any(f.startswith("store: ") for f in body["failing"]), body  # the pods' sync goes on
            line = wait_for(lambda: next((ln for ln in proc.stderr if "controllers failed; retrying" in ln), None), timeout=10,
                            what="the failure logged")
            assert "pods refused by the test" in line and "task=controllers" in line, line
        finally:
            conn.execute("DROP TRIGGER refuse_pods")
    finally:
        conn.close()
    wait_for(lambda: get(addr)[0] == 200, timeout=15, what="/healthz 200 again")
    assert any("controllers recovered" in ln for ln in proc.stderr)
    with Store(store) as s:
        assert wait_for(lambda: [p for p in s.list("Pod", "default") if p["metadata"]["name"].startswith("rs-")], timeout=10,
                        what="the ReplicaSet's pod")


def test_healthz_bind_address_given_taken_or_disabled(store: str, start) -> None:  # type: ignore[no-untyped-def]
    """Given and taken: a one-line error naming the flag. "" disables. Not given: the default (CoreDNS's 8181 for
    DNS), or, when it is taken, a free port named in a warning and in the ready line."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        r = subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, "kubelet", "--healthz-bind-address", addr],
                           capture_output=True, text=True, cwd=str(ROOT), timeout=60)
        assert r.returncode == 1
        assert f"error: cannot listen on {addr} (--healthz-bind-address): Address already in use" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr

    _, ready = start("ingress", "--healthz-bind-address", "")
    assert "healthz" not in ready

    with socket.socket() as default:
        default.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # ours, or another process's already: either way the DNS server cannot have it
            default.bind(("127.0.0.1", 8181))
            default.listen(1)
        except OSError:
            pass
        proc, ready = start("dns")
        assert ready["healthz"].startswith("127.0.0.1:") and ready["healthz"] != "127.0.0.1:8181"
        assert get(ready["healthz"], "/ready")[0] == 200
        assert any("--healthz-bind-address 127.0.0.1:8181: Address already in use; serving /healthz on "
                   f"{ready['healthz']}" in ln for ln in proc.stderr), proc.stderr

    bad = subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, "dns", "--healthz-bind-address", "localhost"],
                         capture_output=True, text=True, cwd=str(ROOT), timeout=60)
    assert bad.returncode == 1 and 'invalid --healthz-bind-address "localhost"' in bad.stderr, bad.stderr


def test_status_shows_each_components_health(tmp_path: Path) -> None:
    """`kubesvc status` asks each component's /healthz: "health: ok", or one "health: failing: TASK: REASON" line
    per failing task."""
    store = str(tmp_path / "store.db")
    env = dict(os.environ, KUBESVC_STORE=store)
    env.pop("KUBESVC_DEBUG", None)

    def ks(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kubesvc", *args], capture_output=True, text=True, env=env,
                              cwd=str(ROOT), timeout=120)

    try:
        r = ks("up", "--components", "dns,kubelet", "--dns-listen", "127.0.0.1:0")
        assert r.returncode == 0, r.stderr
        r = ks("status")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        for name in ("dns", "kubelet"):
            i = next(i for i, ln in enumerate(lines) if ln.startswith(f"{name}: running"))
            assert "healthz=127.0.0.1:" in lines[i] and "  health: ok" in lines[i + 1:i + 3], lines
        with objects_moved_away(store):
            def failing() -> str | None:
                out = ks("status").stdout
                return out if out.count("  health: failing: store: OperationalError: no such table: objects") == 2 else None

            out = wait_for(failing, timeout=20, interval=0.2, what="status naming the failure")
        assert "health: ok" not in out
        wait_for(lambda: ks("status").stdout.count("  health: ok") == 2, timeout=20, interval=0.2, what="healthy again")
    finally:
        ks("down")

"""Many writers at once never lose a write or hand out an address twice; a kill mid-write is harmless."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from kubesvc.store.db import Store

WRITER = textwrap.dedent("""
    import sys
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Store
    reg = Registry(Store(sys.argv[1]))
    worker, count = sys.argv[2], int(sys.argv[3])
    for i in range(count):
        reg.create({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": f"s-{worker}-{i}", "namespace": "default"},
                    "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}})
""")


def test_parallel_writers_8x50(tmp_path):
    path = str(tmp_path / "s.db")
    Store(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, path, str(w), "50"], stderr=subprocess.PIPE)
             for w in range(8)]
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        errs.append((p.returncode, err.decode()))
    assert all(code == 0 for code, _ in errs), errs
    s = Store(path)
    svcs = s.list("Service", "default")
    assert len(svcs) == 400
    assert len({o["spec"]["clusterIP"] for o in svcs}) == 400
    assert len({o["spec"]["ports"][0]["nodePort"] for o in svcs}) == 400
    assert len({o["metadata"]["resourceVersion"] for o in svcs}) == 400
    assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_parallel_cli_processes(tmp_path):
    path = str(tmp_path / "s.db")
    env = dict(os.environ, KUBESVC_STORE=path)
    procs = [subprocess.Popen([sys.executable, "-m", "kubesvc", "create", "service", "clusterip", f"svc-{i}", "--tcp=80"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(8)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len(Store(path).list("Service", "default")) == 8


def test_killed_mid_write_leaves_store_consistent(tmp_path):
    path = str(tmp_path / "s.db")
    Store(path).close()
    p = subprocess.Popen([sys.executable, "-c", WRITER, path, "k", "100000"], stderr=subprocess.PIPE)
    s = Store(path)
    deadline = time.monotonic() + 30
    while len(s.list("Service", "default")) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    s.close()
    s = Store(path)
    assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    svcs = s.list("Service", "default")
    assert len(svcs) >= 50
    # every stored service holds exactly its allocations, and no allocation is orphaned
    owners = {f"Service/default/{o['metadata']['name']}" for o in svcs}
    alloc_owners = {r[0] for r in s.conn.execute("SELECT DISTINCT owner FROM allocations")}
    assert alloc_owners == owners
    assert s.revision() == max(int(o["metadata"]["resourceVersion"]) for o in svcs + s.list("Namespace") + s.list("Endpoints"))
    # and it still takes writes
    from kubesvc.registry.generic import Registry

    Registry(s).create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "after", "namespace": "default"},
                        "spec": {"ports": [{"port": 80}]}})


def test_changes_since_a_compacted_revision_is_gone(tmp_path):
    import pytest

    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Gone

    s = Store(str(tmp_path / "s.db"))
    reg = Registry(s)
    start = s.revision()
    for i in range(3):
        reg.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}", "namespace": "default"}})
    assert [c.name for c in s.changes(start)] == ["c0", "c1", "c2"]
    floor = s.compact(keep=1)
    assert floor == s.revision() - 1
    with pytest.raises(Gone):
        s.changes(start)
    assert [c.name for c in s.changes(floor)] == ["c2"]
    reg.delete("ConfigMap", "default", "c2")
    assert [(c.type, c.name) for c in s.changes(floor + 1)] == [("DELETED", "c2")]

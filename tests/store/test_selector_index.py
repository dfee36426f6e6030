"""Services are found by the labels they select through an index (``Store.list_selecting``), so a Pod write does not
read every Service of its namespace (a scan made each Pod create O(Services): ~0.5 s at 10,000 Services). The index
(table ``selector_terms``) is kept by SQLite triggers in the writing transaction; a store made before it gets it, built
from the stored Services, when opened. Its answers must equal the old full scan's, on any labels and selectors."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kubesvc.controllers.endpoints import is_managed, selector_matches
from kubesvc.store.db import INDEXED_LABELS, SCHEMA_VERSION, Store, _list_selecting

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["app", "tier", "app.kubernetes.io/name", "x", "we'ird\"key", "ключ", "k.with.dots", ""]
VALUES = ["web", "db", "", "1", "a b", "ünï", "web ", "WEB"]
NAMESPACES = ["default", "other"]


def service(name: str, ns: str, selector: object, type_: str | None = None) -> dict:
    spec: dict = {"ports": [{"port": 80}]}
    if selector is not ...:
        spec["selector"] = selector
    if type_:
        spec["type"] = type_
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def random_labels(rng: random.Random, most: int) -> dict[str, str]:
    return {rng.choice(KEYS): rng.choice(VALUES) for _ in range(rng.randint(0, most))}


def random_selector(rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.1:
        return ...  # no selector at all
    if roll < 0.15:
        return {}
    if roll < 0.18:
        return None
    return random_labels(rng, 3) or {"app": "web"}


def old_scan(services: list[dict], labels: dict[str, str]) -> list[str]:
    """The endpoints controller's former lookup: every Service of the namespace, decoded, matched in Python."""
    return [s["metadata"]["name"] for s in services
            if (s.get("spec") or {}).get("selector") and selector_matches(s["spec"]["selector"], labels)]


def names(objs: list[dict]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "s.db"))
    yield s
    s.close()


def fill(store: Store, rng: random.Random, count: int) -> None:
    with store.write() as txn:
        for ns in NAMESPACES[1:]:
            if txn.get("Namespace", "", ns) is None:
                txn.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for i in range(count):
            txn.create(service(f"s{i}", rng.choice(NAMESPACES), random_selector(rng),
                               "ExternalName" if rng.random() < 0.05 else None))


def check_against_scan(store: Store, rng: random.Random, probes: int) -> int:
    """Random label sets (and every selector's own labels, plus one extra) answered alike by the index and the scan,
    in a read and inside a write transaction, and by the unindexed path; returns how many matched something."""
    sets = [random_labels(rng, 5) for _ in range(probes)]
    for s in store.list("Service"):
        sel = (s.get("spec") or {}).get("selector")
        if isinstance(sel, dict):
            sets.append(dict(sel))
            sets.append({**sel, "extra": "1"})
            if sel:
                short = dict(sel)
                short.pop(next(iter(short)))
                sets.append(short)  # one key short: selected only by selectors without that key
    hits = 0
    stored = {ns: store.list("Service", ns) for ns in NAMESPACES}
    for i, labels in enumerate(sets):
        for ns in NAMESPACES:
            want = old_scan(stored[ns], labels)
            got = names(store.list_selecting("Service", ns, labels))
            assert got == want, (ns, labels)
            if i % 5 == 0:  # the path of a store too old for the index that could not be upgraded (read-only)
                assert names(_list_selecting(store.conn, False, "Service", ns, labels)) == want, (ns, labels)
            hits += bool(want)
    with store.write() as txn:
        labels = sets[0]
        assert names(txn.list_selecting("Service", "default", labels)) == old_scan(stored["default"], labels)
    return hits


def test_index_answers_like_the_full_scan_on_random_sets(store):
    rng = random.Random(20261206)
    fill(store, rng, 400)
    assert check_against_scan(store, rng, 300) > 100  # the probes do find Services, not only empty answers
    # changes: selectors replaced, removed, emptied; Services deleted; a namespace's Services all deleted
    with store.write() as txn:
        for s in txn.list("Service"):
            roll = rng.random()
            m = s["metadata"]
            if roll < 0.3:
                s["spec"]["selector"] = random_selector(rng)
                if s["spec"]["selector"] is ...:
                    del s["spec"]["selector"]
                txn.update(s)
            elif roll < 0.45:
                txn.delete("Service", m["namespace"], m["name"])
    check_against_scan(store, rng, 200)
    with store.write() as txn:
        for s in txn.list("Service", "other"):
            txn.delete("Service", "other", s["metadata"]["name"])
    assert store.list_selecting("Service", "other", {"app": "web"}) == []
    assert store.conn.execute("SELECT count(*) FROM selector_terms WHERE namespace='other'").fetchone()[0] == 0
    check_against_scan(store, rng, 100)


def test_exact_rules(store):
    with store.write() as txn:
        txn.create(service("none", "default", ...))
        txn.create(service("empty", "default", {}))
        txn.create(service("web", "default", {"app": "web"}))
        txn.create(service("web-db", "default", {"app": "web", "tier": "db"}))
        txn.create(service("blank", "default", {"app": ""}))
        txn.create(service("ext", "default", {"app": "web"}, "ExternalName"))
    get = lambda labels: names(store.list_selecting("Service", "default", labels))  # noqa: E731
    assert get({}) == [] and get(None) == []  # a pod without labels: no selector selects it
    assert get({"app": "web"}) == ["ext", "web"]  # the store matches selectors; is_managed drops ExternalName
    assert get({"app": "web", "tier": "db", "zone": "a"}) == ["ext", "web", "web-db"]
    assert get({"tier": "db"}) == []  # every key must be there
    assert get({"app": "Web"}) == [] and get({"app": "web "}) == []  # values compare exactly
    assert get({"app": ""}) == ["blank"]  # an empty value selects the key present with an empty value only
    assert [n for n in get({"app": "web"}) if is_managed(store.get("Service", "default", n) or {})] == ["web"]
    with pytest.raises(ValueError):
        store.list_selecting("Pod", "default", {"app": "web"})


def test_the_lookup_uses_the_index(store):
    with store.write() as txn:
        for i in range(300):
            txn.create(service(f"s{i}", "default", {"app": f"a{i % 30}", "tier": "x"}))
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    assert len(store.list_selecting("Service", "default", {"app": "a3", "tier": "x"})) == 10
    store.conn.set_trace_callback(None)
    query = next(s for s in seen if "selector_terms" in s)
    plan = [str(r[-1]) for r in store.conn.execute("EXPLAIN QUERY PLAN " + query)]
    assert any("selector_terms_label" in p for p in plan), plan  # the labels drive: no scan of the namespace's terms
    assert not any(p.startswith("SCAN s") or p.startswith("SCAN objects") for p in plan), plan


def make_old(path: str, version: int) -> None:
    """Make a current store look like one written before the selector index (and, for 1, before the label index)."""
    conn = sqlite3.connect(path)
    try:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("DROP TABLE selector_terms")
        if version < 2:
            for index in INDEXED_LABELS.values():
                conn.execute(f"DROP INDEX {index}")
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_store_gets_the_index_when_opened(tmp_path, version):
    path = str(tmp_path / "s.db")
    rng = random.Random(version)
    with Store(path) as store:
        fill(store, rng, 150)
    make_old(path, version)
    with sqlite3.connect(path) as conn:  # written by the older version: Services the index has never seen
        conn.execute("UPDATE objects SET body = json_set(body, '$.spec.selector', json('{\"app\": \"late\"}'))"
                     " WHERE kind = 'Service' AND name = 's1'")
    conn.close()
    with Store(path) as store:
        assert store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        s1_ns = next(s["metadata"]["namespace"] for s in store.list("Service") if s["metadata"]["name"] == "s1")
        assert names(store.list_selecting("Service", s1_ns, {"app": "late"})) == ["s1"]
        check_against_scan(store, rng, 150)
        with store.write() as txn:  # and it is kept from then on
            txn.create(service("new", "default", {"app": "new"}))
        assert names(store.list_selecting("Service", "default", {"app": "new"})) == ["new"]
    with Store(path) as store:  # opened again: nothing rebuilt twice, no duplicate terms
        dup = store.conn.execute("SELECT count(*) FROM (SELECT 1 FROM selector_terms GROUP BY kind, namespace, name, key"
                                 " HAVING count(*) > 1)").fetchone()[0]
        assert dup == 0
        if version < 2:
            assert all(store.conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (i,)).fetchone()
                       for i in INDEXED_LABELS.values())


def test_writes_that_bypass_kubesvc_code_are_followed(store):
    """The triggers belong to the database: a writer that knows nothing of the index (an older kubesvc on the same
    file) keeps it right too."""
    with store.write() as txn:
        txn.create(service("a", "default", {"app": "a"}))
        txn.create(service("b", "default", {"app": "b"}))
    store.conn.execute("UPDATE objects SET body = json_set(body, '$.spec.selector.app', 'c') WHERE kind='Service' AND name='a'")
    store.conn.execute("DELETE FROM objects WHERE kind='Service' AND name='b'")
    assert names(store.list_selecting("Service", "default", {"app": "a"})) == []
    assert names(store.list_selecting("Service", "default", {"app": "b"})) == []
    assert names(store.list_selecting("Service", "default", {"app": "c"})) == ["a"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare for a private mount")
def test_an_older_read_only_store_still_answers(tmp_path):
    """It cannot be upgraded: it opens, reads, and list_selecting reads every Service instead of the missing index."""
    d = tmp_path / "ro"
    d.mkdir()
    path = str(d / "s.db")
    with Store(path) as store:
        with store.write() as txn:
            txn.create(service("web", "default", {"app": "web"}))
            txn.create(service("db", "default", {"app": "db"}))
    make_old(path, 2)
    probe = ("import sys; from kubesvc.store.db import Store; s = Store(sys.argv[1]);"
             " print(s._schema_version, [o['metadata']['name'] for o in s.list_selecting('Service', 'default', {'app': 'web'})])")
    script = f"""
mount --bind {d} {d}
mount -o remount,ro,bind {d}
{sys.executable} -c "{probe}" {path}
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESVC_")}
    p = subprocess.run(["unshare", "-m", "bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                       env=env, cwd=str(ROOT), timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[0] == "2 ['web']", p.stdout
    with sqlite3.connect(path) as conn:  # nothing was written to it
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    conn.close()

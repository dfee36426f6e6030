"""EndpointSlices are found by their Service's name through an index (``Store.list_labelled``), so creating a Service
or Endpoints does not read every slice of the namespace (a scan made each create O(slices): 10,000 mirrored Endpoints
took minutes, each batch slower than the last). A store made before the index gets it when opened."""

from __future__ import annotations

import sqlite3

import pytest

from kubesvc.registry.generic import Registry
from kubesvc.store.db import INDEXED_LABELS, SCHEMA_VERSION, Store

SERVICE_NAME = "kubernetes.io/service-name"
INDEX = INDEXED_LABELS[("EndpointSlice", SERVICE_NAME)]


def service(name: str, ns: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"ports": [{"port": 80}]}}


def endpoints(name: str, ip: str, ns: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 8080}]}]}


def slice_(name: str, svc: str | None, ns: str = "default") -> dict:
    labels = {SERVICE_NAME: svc} if svc is not None else {}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "endpoints": [], "ports": []}


def test_list_labelled_finds_a_services_slices_only(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    try:
        reg = Registry(store)
        reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
        for ns in ("default", "other"):
            for name in ("a", "b"):
                reg.create(service(name, ns))
                reg.create(endpoints(name, "10.0.0.1" if ns == "default" else "10.0.0.2", ns))
        with store.write() as txn:  # hand-written slices: another name sorting first, one without the label
            txn.create(slice_("0-hand", "a"))
            txn.create(slice_("z-unlabelled", None))
        got = store.list_labelled("EndpointSlice", "default", SERVICE_NAME, "a")
        names = [s["metadata"]["name"] for s in got]
        assert names[0] == "0-hand" and len(names) == 2 and names == sorted(names)
        mirrored = got[1]
        assert mirrored["metadata"]["labels"][SERVICE_NAME] == "a"
        assert [e["addresses"] for e in mirrored["endpoints"]] == [["10.0.0.1"]]
        other = store.list_labelled("EndpointSlice", "other", SERVICE_NAME, "a")
        assert [e["addresses"] for s in other for e in s["endpoints"]] == [["10.0.0.2"]]
        assert store.list_labelled("EndpointSlice", "default", SERVICE_NAME, "nope") == []
        with store.write() as txn:  # the same query inside a write transaction
            assert len(txn.list_labelled("EndpointSlice", "default", SERVICE_NAME, "b")) == 1
        with pytest.raises(ValueError):
            store.list_labelled("Pod", "default", "app", "x")  # no index there: refused rather than a scan
    finally:
        store.close()


def test_the_query_uses_the_index(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    try:
        with store.write() as txn:
            for i in range(200):
                txn.create(slice_(f"s{i}", f"svc{i % 20}"))
        seen: list[str] = []
        store.conn.set_trace_callback(seen.append)
        assert len(store.list_labelled("EndpointSlice", "default", SERVICE_NAME, "svc3")) == 10
        store.conn.set_trace_callback(None)
        query = next(s for s in seen if s.lstrip().upper().startswith("SELECT"))
        plan = " ".join(str(r[-1]) for r in store.conn.execute("EXPLAIN QUERY PLAN " + query))
        assert INDEX in plan, plan
    finally:
        store.close()


def test_a_store_made_before_the_index_gets_it_when_opened(tmp_path):
    path = str(tmp_path / "s.db")
    Store(path).close()
    conn = sqlite3.connect(path)  # make it look like a version-1 store
    conn.execute(f"DROP INDEX {INDEX}")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    Store(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (INDEX,)).fetchone() is not None
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    finally:
        conn.close()

"""Events expire like the apiserver's --event-ttl (1 h): writing a new Event deletes the ones last seen
before the TTL, through the change log (watchers see them go); recent ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubesvc.registry.generic import Registry
from kubesvc.store.db import EVENT_TTL_SECONDS, Store


def event(name: str, last: datetime) -> dict:
    stamp = last.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Service", "name": "x", "namespace": "default"}, "reason": "Test",
            "message": "m", "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": "Normal"}


def test_old_events_go_when_a_new_one_is_written(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    try:
        now = datetime.now(UTC)
        with store.write() as txn:
            txn.create(event("old", now - timedelta(seconds=EVENT_TTL_SECONDS + 60)))
            txn.create(event("recent", now - timedelta(seconds=EVENT_TTL_SECONDS - 60)))
        assert {e["metadata"]["name"] for e in store.list("Event", "default")} == {"recent"}  # "recent" expired "old"
        since = store.revision()
        with store.write() as txn:
            txn.create(event("older", now - timedelta(days=2)))  # itself written: only *earlier* ones are checked
        reg = Registry(store)
        reg.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb", "namespace": "default"},
                    "spec": {"type": "LoadBalancer", "selector": {"app": "lb"}, "ports": [{"port": 80}]}})
        names = {e["metadata"]["name"] for e in store.list("Event", "default")}
        assert "older" not in names and "recent" in names
        assert any(n.startswith("lb.") for n in names)  # the IPAllocated Event that expired "older"
        deleted = [c.name for c in store.changes(since) if c.type == "DELETED" and c.kind == "Event"]
        assert deleted == ["older"]
    finally:
        store.close()

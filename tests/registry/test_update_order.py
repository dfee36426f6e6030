"""The update pipeline's order of checks and its no-op rule, over a real SQLite store (registry.generic),
and the Scale rules of registry.scale."""

from __future__ import annotations

import copy

import pytest

from kubesvc.errors import ClientError, Conflict, Invalid
from kubesvc.registry import scale as scalelib
from kubesvc.registry.generic import Registry, unchanged
from kubesvc.store.db import Store


def deploy(name: str = "d", replicas: int = 2) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


@pytest.fixture
def reg(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    yield Registry(store)
    store.close()


def test_stale_resource_version_conflicts_before_validation(reg: Registry) -> None:
    live = reg.create(deploy()).object
    bad = copy.deepcopy(live)
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}  # immutable: Invalid if validation ran first
    bad["metadata"]["resourceVersion"] = str(int(live["metadata"]["resourceVersion"]) - 1)
    with pytest.raises(Conflict) as e:
        reg.replace(bad)
    assert str(e.value) == ('Operation cannot be fulfilled on deployments.apps "d": the object has been modified; '
                            "please apply your changes to the latest version and try again")
    bad["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    with pytest.raises(Invalid):
        reg.replace(bad)
    del bad["metadata"]["resourceVersion"]  # unconditional: validation speaks
    with pytest.raises(Invalid):
        reg.replace(bad)


def test_an_update_that_changes_nothing_writes_nothing(reg: Registry) -> None:
    live = reg.create(deploy()).object
    revision = reg.store.revision()
    for body in (copy.deepcopy(live), {k: v for k, v in copy.deepcopy(live).items() if k != "status"}):
        again = reg.replace(body).object
        assert again["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
        assert reg.store.revision() == revision
    changed = copy.deepcopy(live)
    changed["spec"]["replicas"] = 3
    stored = reg.replace(changed).object
    assert stored["metadata"]["resourceVersion"] != live["metadata"]["resourceVersion"]
    assert stored["metadata"]["generation"] == live["metadata"]["generation"] + 1
    assert reg.store.revision() == revision + 1


def test_unchanged_ignores_store_metadata_and_managed_fields_times() -> None:
    old = deploy()
    old["metadata"].update(resourceVersion="5", uid="u", creationTimestamp="2024-01-01T00:00:00Z",
                           managedFields=[{"manager": "kubectl", "operation": "Update", "time": "2024-01-01T00:00:00Z"}])
    new = copy.deepcopy(old)
    new["metadata"].update(resourceVersion="4", managedFields=[{"manager": "kubectl", "operation": "Update",
                                                               "time": "2025-01-01T00:00:00Z"}])
    del new["metadata"]["uid"]
    assert unchanged(new, old)
    new["metadata"]["managedFields"][0]["manager"] = "other"
    assert not unchanged(new, old)
    assert not unchanged({**old, "spec": {**old["spec"], "replicas": 9}}, old)


def test_scale_rules(reg: Registry) -> None:
    live = reg.create(deploy(replicas=2)).object
    sc = scalelib.get_scale(reg, "Deployment", "default", "d")
    assert sc == {"kind": "Scale", "apiVersion": "autoscaling/v1",
                  "metadata": {k: live["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
                  "spec": {"replicas": 2}, "status": {"replicas": 0, "selector": "app=d"}}
    stale = copy.deepcopy(sc)
    sc["spec"]["replicas"] = 4
    assert scalelib.update_scale(reg, "Deployment", "default", "d", sc)["spec"] == {"replicas": 4}
    stale["spec"]["replicas"] = -1  # stale and invalid: the Conflict wins
    with pytest.raises(Conflict):
        scalelib.update_scale(reg, "Deployment", "default", "d", stale)
    del stale["metadata"]["resourceVersion"]
    with pytest.raises(Invalid) as e:
        scalelib.update_scale(reg, "Deployment", "default", "d", stale)
    assert str(e.value) == 'Scale "d" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    dry = scalelib.update_scale(reg, "Deployment", "default", "d", {"spec": {"replicas": 0}}, dry_run=True)
    assert dry["spec"] == {} and reg.get("Deployment", "default", "d")["spec"]["replicas"] == 4
    with pytest.raises(ClientError, match="Expected replicas to be 1, was 4"):
        scalelib.scale(reg, "Deployment", "default", "d", 5, current=1)
    with pytest.raises(ClientError, match="Expected resource version to be 1, was"):
        scalelib.scale(reg, "Deployment", "default", "d", 5, resource_version="1")
    before = scalelib.scale(reg, "Deployment", "default", "d", 5, current=4)
    assert before["spec"]["replicas"] == 4 and reg.get("Deployment", "default", "d")["spec"]["replicas"] == 5


@pytest.mark.parametrize("selector,text", [
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchExpressions": [{"key": "z", "operator": "NotIn", "values": ["y", "x"]}, {"key": "a", "operator": "Exists"}]},
     "a,z notin (x,y)"),
    ({"matchLabels": {"k": "v"}, "matchExpressions": [{"key": "k", "operator": "In", "values": ["v", "w"]},
                                                      {"key": "gone", "operator": "DoesNotExist"}]}, "!gone,k=v,k in (v,w)"),
    ({}, ""),
])
def test_selector_string(selector: dict, text: str) -> None:
    assert scalelib.selector_string({"kind": "ReplicaSet", "spec": {"selector": selector}}) == text

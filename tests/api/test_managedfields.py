"""kubesvc.api.managedfields without a server: FieldsV1 encoding, Update ownership, Apply merge/prune/conflicts,
manager names from User-Agents."""

from __future__ import annotations

import copy

import pytest

from kubesvc.api import managedfields as mf

SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
       "spec": {"selector": {"app": "web"}, "type": "ClusterIP", "sessionAffinity": "None",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}
PORT = 'k:{"port":80,"protocol":"TCP"}'


def node(kind: str = "Service", version: str = "v1") -> mf.Node:
    return mf.schema_for(version, kind)


def test_create_entry_matches_the_apiservers_shape():
    (e,) = mf.on_create(copy.deepcopy(SVC), None, "kubectl-create", "2024-01-01T00:00:00Z")
    assert e == {"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {
                     "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                     "f:spec": {"f:ports": {".": {}, PORT: {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
                                "f:selector": {}, "f:sessionAffinity": {}, "f:type": {}}}}


def test_deployment_structs_go_always_has_are_not_members():
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"a": "b"}}, "strategy": {"type": "Recreate"},
                    "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    (e,) = mf.on_create(dep, None, "m", "t")
    spec = e["fieldsV1"]["f:spec"]
    assert spec["f:selector"] == {}  # LabelSelector is atomic
    assert spec["f:strategy"] == {"f:type": {}}
    assert spec["f:template"]["f:spec"]["f:containers"] == {'k:{"name":"c"}': {".": {}, "f:image": {}, "f:name": {}}}


def test_fieldsv1_round_trip_and_bad_input():
    paths = {("f:a",), ("f:a", "f:b"), ("f:c", 'v:"x"'), ("f:d", "i:0")}
    assert mf.decode_fields(mf.encode_fields(paths)) == paths
    with pytest.raises(ValueError):
        mf.decode_fields({"x:bad": {}})
    assert mf.decode_entries([{"manager": "m", "operation": "Delete"}]) is None
    assert mf.is_reset([]) and mf.is_reset([{}]) and not mf.is_reset(None)


def test_update_moves_ownership_and_drops_empty_entries():
    old = copy.deepcopy(SVC)
    entries = mf.decode_entries(mf.on_create(old, None, "creator", "t1"))
    new = copy.deepcopy(old)
    new["spec"]["sessionAffinity"] = "ClientIP"
    del new["metadata"]["labels"]
    out = mf.record_update(entries, old, new, node(), "patcher", "v1", "t2")
    by = {e.manager: e for e in out}
    assert by["patcher"].fields == {("f:spec", "f:sessionAffinity")}
    assert ("f:spec", "f:sessionAffinity") not in by["creator"].fields
    assert not any(p[:2] == ("f:metadata", "f:labels") for p in by["creator"].fields)
    # a write that changes nothing records nothing and keeps the times
    assert mf.record_update(out, new, new, node(), "other", "v1", "t3") == out


def test_update_of_untracked_object_stays_untracked():
    assert mf.on_update(copy.deepcopy(SVC), copy.deepcopy(SVC), None, "m", "t") == []


def test_apply_conflict_message_force_and_prune():
    live = copy.deepcopy(SVC)
    entries = mf.decode_entries(mf.on_create(live, None, "kubectl-create", "t1"))
    cfg = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"ports": [{"port": 80, "targetPort": 9090}]}}
    with pytest.raises(mf.ApplyConflict) as e:
        mf.apply(live, cfg, node(), entries, "ssa", "v1", "t2")
    assert e.value.code == 409
    assert e.value.message == ('Apply failed with 1 conflict: conflict with "kubectl-create" using v1: '
                               '.spec.ports[port=80,protocol="TCP"].targetPort')
    done = mf.apply(live, cfg, node(), entries, "ssa", "v1", "t2", force=True)
    assert done.object["spec"]["ports"][0]["targetPort"] == 9090
    by = {x.manager: x for x in done.entries}
    assert ("f:spec", "f:ports", PORT, "f:targetPort") in by["ssa"].fields
    assert ("f:spec", "f:ports", PORT, "f:targetPort") not in by["kubectl-create"].fields
    # the applier drops the port: the creator still owns the item, so it stays; its own field goes
    cfg2 = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"x": "y"}}}
    done2 = mf.apply(done.object, cfg2, node(), done.entries, "ssa", "v1", "t3")
    assert [p["port"] for p in done2.object["spec"]["ports"]] == [80]
    assert "targetPort" not in done2.object["spec"]["ports"][0]


def test_two_conflicts_plural_form():
    e1 = mf.Entry("b", "Apply", "v1", "t", {("f:data", "f:x")})
    e2 = mf.Entry("a", "Update", "v1", "t", {("f:data", "f:y")})
    err = mf.ApplyConflict([(e1, ("f:data", "f:x")), (e2, ("f:data", "f:y"))])
    assert err.message == ('Apply failed with 2 conflicts: conflicts with "a" using v1:\n- .data.y\n'
                           'conflicts with "b":\n- .data.x')


def test_before_first_apply_and_removal_of_dropped_keys():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    first = mf.apply(copy.deepcopy(cm), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                                         "data": {"a": "1"}}, node("ConfigMap"), [], "ssa", "v1", "t")
    by = {e.manager: e for e in first.entries}
    assert by["before-first-apply"].operation == "Update"
    assert by["ssa"].fields == {("f:data", "f:a")}
    again = mf.apply(first.object, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"z": "9"}},
                     node("ConfigMap"), first.entries, "ssa", "v1", "t2")
    assert again.object["data"] == {"a": "1", "b": "2", "z": "9"}  # a is co-owned by before-first-apply
    mine = mf.apply(again.object, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"y": "1"}},
                    node("ConfigMap"), again.entries, "ssa", "v1", "t3")
    assert "z" not in mine.object["data"]


def test_merge_keyed_lists_keeps_live_items():
    live = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}
    cfg = {"spec": {"containers": [{"name": "b", "image": "3"}, {"name": "c", "image": "4"}]}}
    merged = mf.merge(live, cfg, node("Pod"))
    assert [(c["name"], c["image"]) for c in merged["spec"]["containers"]] == [("a", "1"), ("b", "3"), ("c", "4")]


@pytest.mark.parametrize("ua,manager", [("kubectl/v1.32.4 (linux/amd64) kubernetes/abc", "kubectl"),
                                        ("OpenAPI-Generator/33.1.0/python", "OpenAPI-Generator"),
                                        ("a\x00b/1", "ab"), ("x" * 200, "x" * 128), ("", "")])
def test_manager_from_user_agent(ua, manager):
    assert mf.manager_from_user_agent(ua) == manager


def test_manager_validation():
    assert mf.manager_errors("ok") == []
    assert mf.manager_errors("x" * 129) == ["fieldManager: Too long: may not be more than 128 bytes"]
    assert "invalid character U+0009" in mf.manager_errors("a\tb")[0]

"""Create/update strategies: server-owned metadata, status, patchAllocatedValues, type changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesvc.api.defaults import apply_defaults
from kubesvc.api.strategy import (
    ip_family_errors,
    is_headless,
    needs_cluster_ip,
    needs_node_ports,
    prepare_for_create,
    prepare_for_status_update,
    prepare_for_update,
)
from kubesvc.api.validation import validate_update

Obj = dict[str, Any]


def stored(**spec: Any) -> Obj:
    """A Service as the store holds it after create and allocation."""
    base: Obj = {"type": "ClusterIP", "clusterIP": "10.96.0.20", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    base.update(spec)
    obj: Obj = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                             "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": base, "status": {"loadBalancer": {}}}
    prepare_for_create(obj)
    apply_defaults(obj)
    obj["metadata"].update(uid="u1", resourceVersion="7", creationTimestamp="2026-01-01T00:00:00Z")
    return obj


def update(old: Obj, **spec: Any) -> Obj:
    """A fresh manifest (no allocated values) PUT over ``old``, through the caller's pipeline."""
    new: Obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}}
    prepare_for_update(new, old)
    apply_defaults(new, old)
    return new


def test_create_drops_server_fields_and_resets_status() -> None:
    obj = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "s", "uid": "x", "resourceVersion": "3", "generation": 4, "managedFields": [],
                        "creationTimestamp": "2020-01-01T00:00:00Z"},
           "spec": {"clusterIP": "10.96.0.9"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}
    prepare_for_create(obj)
    assert obj["metadata"] == {"name": "s"}
    assert obj["status"] == {"loadBalancer": {}}
    assert obj["spec"]["clusterIPs"] == ["10.96.0.9"]


def test_generation_for_controllers() -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "spec": {"selector": {"matchLabels": {"a": "b"}},
                       "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    prepare_for_create(deploy)
    apply_defaults(deploy)
    assert deploy["metadata"]["generation"] == 1
    same = copy.deepcopy(deploy)
    del same["spec"]["strategy"]  # omitted on the wire, defaulted again: not a spec change
    prepare_for_update(same, deploy)
    assert same["metadata"]["generation"] == 1
    changed = copy.deepcopy(deploy)
    changed["spec"]["replicas"] = 3
    prepare_for_update(changed, deploy)
    assert changed["metadata"]["generation"] == 2


def test_reapply_same_manifest_keeps_allocated_values() -> None:
    old = stored(type="NodePort", ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}])
    new = update(old, type="NodePort")
    assert new["spec"] == old["spec"]
    assert new["status"] == old["status"]
    assert new["metadata"]["uid"] == "u1"
    assert new["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert validate_update(new, old) == []


def test_unnamed_port_matched_by_number() -> None:
    old = stored(type="NodePort", ports=[{"port": 80, "targetPort": 80, "nodePort": 30080}])
    new = update(old, type="NodePort", ports=[{"port": 80}])
    assert new["spec"]["ports"][0]["nodePort"] == 30080
    moved = update(old, type="NodePort", ports=[{"port": 81}])
    assert "nodePort" not in moved["spec"]["ports"][0]


def test_node_port_not_copied_when_used_elsewhere() -> None:
    old = stored(type="NodePort", ports=[{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30081}])
    new = update(old, type="NodePort", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30080}])
    assert [p.get("nodePort") for p in new["spec"]["ports"]] == [None, 30080]


def test_health_check_node_port_copied() -> None:
    old = stored(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=31000,
                 ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}])
    new = update(old, type="LoadBalancer", externalTrafficPolicy="Local")
    assert new["spec"]["healthCheckNodePort"] == 31000
    assert validate_update(new, old) == []


TYPE_CHANGES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("nodeport to clusterip", {"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]},
     {"type": "ClusterIP"}, {"externalTrafficPolicy": None, "clusterIP": "10.96.0.20"}),
    ("lb to clusterip", {"type": "LoadBalancer", "loadBalancerClass": "a.io/lb", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]},
     {"type": "ClusterIP"}, {"allocateLoadBalancerNodePorts": None, "loadBalancerClass": None, "externalTrafficPolicy": None}),
    ("clusterip to externalname", {}, {"type": "ExternalName", "externalName": "example.com"},
     {"clusterIP": None, "clusterIPs": None, "ipFamilies": None, "ipFamilyPolicy": None}),
    ("externalname to clusterip", {"type": "ExternalName", "externalName": "example.com", "clusterIP": ""},
     {"type": "ClusterIP"}, {"clusterIP": "", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}),
]


@pytest.mark.parametrize(("old_spec", "new_spec", "expected"), [c[1:] for c in TYPE_CHANGES], ids=[c[0] for c in TYPE_CHANGES])
def test_type_changes_read_modify_write(old_spec: dict[str, Any], new_spec: dict[str, Any], expected: dict[str, Any]) -> None:
    """kubectl edit/replace after get: the old values come back and the strategy drops them."""
    old = stored(**old_spec)
    new = copy.deepcopy(old)
    new["spec"].update(new_spec)
    prepare_for_update(new, old)
    apply_defaults(new, old)
    for key, value in expected.items():
        assert new["spec"].get(key) == value, key
    if new["spec"]["type"] != "NodePort" and new["spec"]["type"] != "LoadBalancer":
        assert all("nodePort" not in p for p in new["spec"].get("ports") or [])
    assert validate_update(new, old) == []


def test_leaving_lb_clears_lb_status() -> None:
    old = stored(type="LoadBalancer", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    old["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.50", "ipMode": "VIP"}]}}
    new = update(old, type="ClusterIP")
    assert new["status"] == {"loadBalancer": {}}


def test_changed_cluster_ip_is_rejected() -> None:
    old = stored()
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.99"  # only the singular field changed
    prepare_for_update(new, old)
    apply_defaults(new, old)
    assert [str(e) for e in validate_update(new, old)] == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.99"}: may not change once set'
    ]


def test_status_update_keeps_spec() -> None:
    old = stored(type="LoadBalancer", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    new["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.50"}]}}
    prepare_for_status_update(new, old)
    assert new["spec"] == old["spec"]
    assert new["status"] == {"loadBalancer": {"ingress": [{"ip": "127.0.0.50", "ipMode": "VIP"}]}}


def test_helpers() -> None:
    assert needs_cluster_ip(stored()) and not needs_node_ports(stored())
    assert needs_node_ports(stored(type="LoadBalancer"))
    assert not needs_cluster_ip({"spec": {"type": "ExternalName"}})
    assert is_headless({"spec": {"clusterIP": "None"}}) and is_headless(stored(clusterIP="None"))
    assert not is_headless(stored())


def test_ip_family_errors_single_stack_cluster() -> None:
    assert ip_family_errors(stored()) == []
    assert ip_family_errors(stored(clusterIP="None", selector={})) == []  # headless selectorless: [IPv4, IPv6] allowed
    assert [str(e) for e in ip_family_errors(stored(clusterIP="fd00::1"))] == [
        'spec.clusterIPs[0]: Invalid value: []string{"fd00::1"}: IPv6 is not configured on this cluster'
    ]
    assert [str(e) for e in ip_family_errors(stored(ipFamilyPolicy="RequireDualStack"))] == [
        'spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services'
    ]
    assert [str(e) for e in ip_family_errors(stored(clusterIP="", ipFamilies=["IPv6"]))] == [
        'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'
    ]

"""The endpoints controller runs inside every write that can change its result (spec §5.2)."""

from __future__ import annotations

import pytest

from kubesvc.controllers.endpoints import compute_endpoints
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store


def pod(name, ip, labels=None, ready=True, ports=None, phase="Running", ns="default"):
    status = {"podIP": ip, "phase": phase}
    if not ready:
        status["conditions"] = [{"type": "Ready", "status": "False"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels if labels is not None else {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": ports or [{"name": "http", "containerPort": 8080}]}]},
            "status": status}


def service(name="web", ports=None, **spec):
    s = {"selector": {"app": "web"}, "ports": ports or [{"name": "http", "port": 80, "targetPort": "http"}]}
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}}, "spec": s}


@pytest.fixture
def reg(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    yield Registry(store)
    store.close()


def ep(reg, name="web"):
    return reg.store.get("Endpoints", "default", name)


def test_endpoints_follow_pods_and_labels(reg):
    reg.create(service())
    assert ep(reg).get("subsets") is None
    reg.create(pod("p1", "127.0.0.11"))
    reg.create(pod("p2", "127.0.0.12", ready=False))
    e = ep(reg)
    assert e["subsets"] == [{
        "addresses": [{"ip": "127.0.0.11", "targetRef": {"kind": "Pod", "name": "p1", "namespace": "default",
                                                          "uid": reg.get("Pod", "default", "p1")["metadata"]["uid"]}}],
        "notReadyAddresses": [{"ip": "127.0.0.12", "targetRef": {"kind": "Pod", "name": "p2", "namespace": "default",
                                                                  "uid": reg.get("Pod", "default", "p2")["metadata"]["uid"]}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }]
    assert e["metadata"]["labels"] == {"app": "web", "endpointslice.kubernetes.io/skip-mirror": "true"}
    # relabel p1 away: it leaves the endpoints
    reg.mutate("Pod", "default", "p1", lambda o: o["metadata"].__setitem__("labels", {"app": "other"}))
    assert [a["ip"] for a in ep(reg)["subsets"][0].get("addresses", [])] == []
    # and back
    reg.mutate("Pod", "default", "p1", lambda o: o["metadata"].__setitem__("labels", {"app": "web"}))
    assert [a["ip"] for a in ep(reg)["subsets"][0]["addresses"]] == ["127.0.0.11"]
    reg.delete("Pod", "default", "p1")
    assert "addresses" not in ep(reg)["subsets"][0]
    reg.delete("Service", "default", "web")
    assert ep(reg) is None


def test_named_target_port_missing_on_a_pod_leaves_it_out_of_that_port():
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                         {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}])
    svc["metadata"]["uid"] = "u"
    p1 = pod("p1", "127.0.0.11", ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                       {"name": "metrics", "containerPort": 9100, "protocol": "TCP"}])
    p2 = pod("p2", "127.0.0.12", ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    e = compute_endpoints(svc, [p1, p2])
    assert [(sorted(a["ip"] for a in s["addresses"]), s["ports"]) for s in e["subsets"]] == [
        (["127.0.0.12"], [{"name": "http", "port": 8080, "protocol": "TCP"}]),
        (["127.0.0.11"], [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9100, "protocol": "TCP"}]),
    ] or [(sorted(a["ip"] for a in s["addresses"]), s["ports"]) for s in e["subsets"]] == [
        (["127.0.0.11"], [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9100, "protocol": "TCP"}]),
        (["127.0.0.12"], [{"name": "http", "port": 8080, "protocol": "TCP"}]),
    ]


def test_protocol_must_match_for_named_ports():
    svc = service(ports=[{"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"}])
    p = pod("p1", "127.0.0.11", ports=[{"name": "dns", "containerPort": 5353, "protocol": "TCP"}])
    assert compute_endpoints(svc, [p]).get("subsets") is None


def test_terminal_ipless_and_publish_not_ready():
    svc = service()
    pods = [pod("ok", "127.0.0.11"), pod("done", "127.0.0.12", phase="Succeeded"), pod("noip", ""),
            pod("notready", "127.0.0.14", ready=False)]
    e = compute_endpoints(svc, pods)
    assert [a["ip"] for a in e["subsets"][0]["addresses"]] == ["127.0.0.11"]
    assert [a["ip"] for a in e["subsets"][0]["notReadyAddresses"]] == ["127.0.0.14"]
    svc["spec"]["publishNotReadyAddresses"] = True
    e = compute_endpoints(svc, pods)
    assert [a["ip"] for a in e["subsets"][0]["addresses"]] == ["127.0.0.11", "127.0.0.14"]


def test_headless_label_and_hostname():
    svc = service(clusterIP="None")
    p = pod("p1", "127.0.0.11")
    p["spec"]["hostname"] = "web-0"
    p["spec"]["subdomain"] = "web"
    e = compute_endpoints(svc, [p])
    assert e["metadata"]["labels"] == {"app": "web", "service.kubernetes.io/headless": "", "endpointslice.kubernetes.io/skip-mirror": "true"}
    assert e["subsets"][0]["addresses"][0]["hostname"] == "web-0"


def test_selectorless_service_keeps_user_endpoints(reg):
    s = service()
    del s["spec"]["selector"]
    s["spec"]["ports"] = [{"port": 5432, "targetPort": 15432}]
    reg.create(s)
    reg.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
                "subsets": [{"addresses": [{"ip": "127.0.0.20"}], "ports": [{"port": 15432}]}]})
    reg.create(pod("p1", "127.0.0.11"))
    assert ep(reg)["subsets"] == [{"addresses": [{"ip": "127.0.0.20"}], "ports": [{"port": 15432, "protocol": "TCP"}]}]
    reg.delete("Service", "default", "web")
    assert ep(reg) is not None  # user-managed: left alone


def test_pod_ip_allocated_from_pod_range(reg):
    p = pod("p1", "")
    p["status"] = {}
    stored = reg.create(p).object
    assert stored["status"]["podIP"].startswith("127.244.")
    assert stored["status"]["phase"] == "Running"

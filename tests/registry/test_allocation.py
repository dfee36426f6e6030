"""Cluster IP, NodePort and load-balancer allocation inside the write transaction (spec §4)."""

from __future__ import annotations

import json

import pytest

from kubesvc.errors import Invalid
from kubesvc.registry.allocators import IPRange, PortRange
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store


def svc(name, **spec):
    base = {"ports": [{"port": 80}], "selector": {"app": name}}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": base}


@pytest.fixture
def reg(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    yield Registry(store)
    store.close()


def test_ip_range_bands_and_reserved():
    r = IPRange("10.96.0.0/24")
    assert r.static_size == 16
    assert r.nth(1) == "10.96.0.1" and r.nth(10) == "10.96.0.10"
    picked = {r.pick(lambda v: False) for _ in range(200)}
    assert all(int(ip.rsplit(".", 1)[1]) > 16 for ip in picked)  # the dynamic (upper) band first
    assert "10.96.0.0" not in picked and "10.96.0.255" not in picked
    taken = {f"10.96.0.{i}" for i in range(17, 255)}
    assert r.pick(lambda v: v in taken) in {f"10.96.0.{i}" for i in range(2, 17)} - {"10.96.0.10"}


def test_port_range_bands():
    p = PortRange(30000, 32767)
    assert p.static_size == 86
    assert all(p.pick(lambda v: False) >= 30086 for _ in range(100))


def test_requested_cluster_ip_taken_and_out_of_range(reg):
    reg.create(svc("a", clusterIP="127.96.5.5"))
    with pytest.raises(Invalid) as e:
        reg.create(svc("b", clusterIP="127.96.5.5"))
    assert e.value.cli_message() == ('The Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"127.96.5.5"}: '
                                     "failed to allocate IP 127.96.5.5: provided IP is already allocated")
    with pytest.raises(Invalid) as e:
        reg.create(svc("c", clusterIP="10.0.0.5"))
    assert str(e.value.causes[0]) == ('spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: failed to allocate IP 10.0.0.5: '
                                      "the provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is 127.96.0.0/12")
    assert reg.store.get("Service", "default", "b") is None


def test_ip_released_on_delete_and_reusable(reg):
    reg.create(svc("a", clusterIP="127.96.5.5"))
    reg.delete("Service", "default", "a")
    assert reg.create(svc("b", clusterIP="127.96.5.5")).object["spec"]["clusterIP"] == "127.96.5.5"


def test_node_ports_taken_out_of_range_shared_and_released(reg):
    a = reg.create(svc("a", type="NodePort", ports=[{"name": "d", "port": 53, "protocol": "UDP"},
                                                    {"name": "t", "port": 53, "protocol": "TCP"}])).object
    nps = {p["nodePort"] for p in a["spec"]["ports"]}
    assert len(nps) == 1 and 30086 <= nps.pop() <= 32767  # same port number -> same node port
    reg.create(svc("b", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    with pytest.raises(Invalid) as e:
        reg.create(svc("c", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert str(e.value.causes[0]) == "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    with pytest.raises(Invalid) as e:
        reg.create(svc("d", type="NodePort", ports=[{"port": 80, "nodePort": 8080}]))
    assert str(e.value.causes[0]) == ("spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. "
                                      "The range of valid ports is 30000-32767")
    # type change to ClusterIP releases the node port
    live = reg.get("Service", "default", "b")
    live["spec"]["type"] = "ClusterIP"
    reg.replace(live)
    assert "nodePort" not in reg.get("Service", "default", "b")["spec"]["ports"][0]
    reg.create(svc("e", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))


def test_load_balancer_ip_from_pool_and_requested(reg):
    lb = reg.create(svc("lb", type="LoadBalancer")).object
    ing = lb["status"]["loadBalancer"]["ingress"]
    assert ing[0]["ip"].startswith("127.240.") and ing[0]["ipMode"] == "VIP"
    assert lb["spec"]["ports"][0]["nodePort"] >= 30000
    lb2 = reg.create(svc("lb2", type="LoadBalancer", loadBalancerIP="127.240.9.9")).object
    assert lb2["status"]["loadBalancer"]["ingress"][0]["ip"] == "127.240.9.9"
    pending = reg.create(svc("lb3", type="LoadBalancer", loadBalancerIP="127.240.9.9")).object
    assert pending["status"]["loadBalancer"] == {}
    reg.delete("Service", "default", "lb2")
    assert not reg.store.conn.execute("SELECT 1 FROM allocations WHERE pool='lbip' AND value='127.240.9.9'").fetchone()


def test_headless_and_externalname_get_no_ip(reg):
    h = reg.create(svc("h", clusterIP="None")).object
    assert h["spec"]["clusterIP"] == "None"
    x = reg.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "default"},
                    "spec": {"type": "ExternalName", "externalName": "example.com"}}).object
    assert "clusterIP" not in x["spec"]
    assert reg.store.conn.execute("SELECT COUNT(*) FROM allocations").fetchone()[0] == 0


def test_reapply_without_cluster_ip_keeps_it(reg):
    first = reg.apply(svc("web", type="NodePort")).object
    again = svc("web", type="NodePort")
    again["spec"]["ports"][0]["targetPort"] = 8080
    second = reg.apply(again)
    assert second.action == "configured"
    assert second.object["spec"]["clusterIP"] == first["spec"]["clusterIP"]
    assert second.object["spec"]["ports"][0]["nodePort"] == first["spec"]["ports"][0]["nodePort"]


def test_cluster_ip_change_is_refused(reg):
    live = reg.create(svc("web")).object
    live["spec"]["clusterIP"] = "127.96.7.7"
    live["spec"]["clusterIPs"] = ["127.96.7.7"]
    with pytest.raises(Invalid) as e:
        reg.replace(live)
    assert "may not change once set" in str(e.value)


def test_stale_resource_version_conflicts(reg):
    live = reg.create(svc("web")).object
    stale = json.loads(json.dumps(live))
    live["metadata"]["labels"] = {"x": "1"}
    reg.replace(live)
    stale["metadata"]["labels"] = {"x": "2"}
    from kubesvc.errors import Conflict

    with pytest.raises(Conflict) as e:
        reg.replace(stale)
    assert e.value.message == ('Operation cannot be fulfilled on services "web": the object has been modified; '
                               "please apply your changes to the latest version and try again")


def test_load_balancer_events_are_recorded(reg):
    lb = reg.create(svc("lb", type="LoadBalancer")).object
    bad = reg.create(svc("bad", type="LoadBalancer", loadBalancerIP="10.1.2.3")).object
    events = {e["involvedObject"]["name"]: e for e in reg.list("Event", "default")}
    ip = lb["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert (events["lb"]["type"], events["lb"]["reason"], events["lb"]["message"]) == ("Normal", "IPAllocated", f'Assigned IP ["{ip}"]')
    assert events["lb"]["involvedObject"]["uid"] == lb["metadata"]["uid"]
    assert (events["bad"]["type"], events["bad"]["reason"]) == ("Warning", "AllocationFailed")
    assert bad["status"]["loadBalancer"] == {}
    # an update that changes nothing about the address records nothing new
    live = reg.get("Service", "default", "lb")
    live["metadata"]["labels"] = {"x": "y"}
    reg.replace(live)
    assert len(reg.list("Event", "default")) == 2

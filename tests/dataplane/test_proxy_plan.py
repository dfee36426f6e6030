"""Snapshot -> desired listeners, as tables: one valid Service, one field tweaked per case."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kubesvc.dataplane.proxy import plan


def svc(tweak: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "ClusterIP", "clusterIP": "127.96.0.5", "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
    }
    if tweak:
        tweak(s)
    return s


EPS = {
    "kind": "Endpoints",
    "metadata": {"name": "web", "namespace": "default"},
    "subsets": [
        {"addresses": [{"ip": "127.0.0.5"}, {"ip": "127.0.0.6"}], "notReadyAddresses": [{"ip": "127.0.0.7"}], "ports": [{"name": "http", "port": 8080}]},
    ],
}


def listeners(s: dict[str, Any], eps: list[dict[str, Any]] | None = None, **kw: Any) -> list[tuple[str, str, int]]:
    return sorted(plan.build([s], eps if eps is not None else [EPS], **kw).listeners)


def set_(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def f(s: dict[str, Any]) -> None:
        *head, last = path.split(".")
        d = s
        for k in head:
            d = d.setdefault(k, {})
        d[last] = value

    return f


@pytest.mark.parametrize(
    "tweak,expected",
    [
        (None, [("TCP", "127.96.0.5", 80)]),
        (set_("spec.clusterIP", "None"), []),
        (set_("spec.clusterIP", ""), []),
        (set_("spec.type", "ExternalName"), []),
        (set_("metadata.labels", {plan.PROXY_NAME_LABEL: "kube-dns"}), []),
        (set_("metadata.labels", {plan.PROXY_NAME_LABEL: ""}), []),
        (set_("spec.externalIPs", ["127.9.9.9", "203.0.113.9"]), [("TCP", "127.96.0.5", 80), ("TCP", "127.9.9.9", 80)]),
        (set_("status.loadBalancer", {"ingress": [{"ip": "127.240.0.3"}, {"hostname": "lb.example"}]}),
         [("TCP", "127.240.0.3", 80), ("TCP", "127.96.0.5", 80)]),
    ],
)
def test_listeners_per_service_shape(tweak: Any, expected: list[tuple[str, str, int]]) -> None:
    assert listeners(svc(tweak), is_local=lambda ip: ip.startswith("127.")) == sorted(expected)


def test_node_ports_listen_on_each_node_address() -> None:
    def tw(s: dict[str, Any]) -> None:
        s["spec"]["type"] = "NodePort"
        s["spec"]["ports"][0]["nodePort"] = 30080

    got = listeners(svc(tw), node_addresses=["127.0.0.1", "127.5.5.5"])
    assert got == [("TCP", "127.0.0.1", 30080), ("TCP", "127.5.5.5", 30080), ("TCP", "127.96.0.5", 80)]


def test_node_port_ignored_for_cluster_ip_type() -> None:
    got = listeners(svc(lambda s: s["spec"]["ports"][0].update(nodePort=30080)), node_addresses=["127.0.0.1"])
    assert got == [("TCP", "127.96.0.5", 80)]


def test_ready_endpoints_joined_by_port_name() -> None:
    p = plan.build([svc()], [EPS])
    assert p.ports[("default", "web", "http")].endpoints == (("127.0.0.5", 8080), ("127.0.0.6", 8080))


def test_endpoints_of_another_port_name_are_not_used() -> None:
    eps = copy.deepcopy(EPS)
    eps["subsets"][0]["ports"][0]["name"] = "metrics"
    assert plan.build([svc()], [eps]).ports[("default", "web", "http")].endpoints == ()


def test_udp_and_tcp_on_the_same_port_are_two_listeners() -> None:
    def tw(s: dict[str, Any]) -> None:
        s["spec"]["ports"] = [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]

    assert listeners(svc(tw)) == [("TCP", "127.96.0.5", 53), ("UDP", "127.96.0.5", 53)]


def test_sctp_is_reported_not_served() -> None:
    p = plan.build([svc(lambda s: s["spec"]["ports"][0].update(protocol="SCTP"))], [])
    assert p.listeners == {}
    assert p.problems == [(("default", "web", "http"), "SCTP is not supported by the proxy")]


def test_affinity_and_timeout_carried() -> None:
    def tw(s: dict[str, Any]) -> None:
        s["spec"]["sessionAffinity"] = "ClientIP"
        s["spec"]["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 7}}

    sp = plan.build([svc(tw)], []).ports[("default", "web", "http")]
    assert (sp.affinity, sp.affinity_seconds) == (True, 7)
    sp = plan.build([svc()], []).ports[("default", "web", "http")]
    assert (sp.affinity, sp.affinity_seconds) == (False, 10800)


def test_address_conflict_first_wins_other_reported() -> None:
    a = svc()
    b = svc(lambda s: s["metadata"].update(name="zz"))
    p = plan.build([b, a], [])
    assert p.listeners == {("TCP", "127.96.0.5", 80): ("default", "web", "http")}
    assert p.problems and "already served for default/web:http" in p.problems[0][1]


def test_diff_opens_new_and_closes_gone() -> None:
    p = plan.build([svc()], [])
    assert plan.diff([("TCP", "127.96.0.9", 80)], p) == ([("TCP", "127.96.0.5", 80)], [("TCP", "127.96.0.9", 80)])
    assert plan.diff([("TCP", "127.96.0.5", 80)], p) == ([], [])


@pytest.mark.parametrize(
    "cidrs,local,expected",
    [
        (["127.0.0.0/8"], ["127.0.0.1", "192.0.2.4"], ["127.0.0.1"]),
        (["127.7.8.9/32"], ["127.0.0.1"], ["127.7.8.9"]),
        (["192.0.2.0/24"], ["127.0.0.1", "192.0.2.4"], ["192.0.2.4"]),
        (["198.51.100.0/24"], ["127.0.0.1"], []),
    ],
)
def test_nodeport_addresses(cidrs: list[str], local: list[str], expected: list[str]) -> None:
    assert plan.node_addresses(cidrs, local) == expected

"""records.py as a table of the spec: one snapshot, (name, type) -> expected answer in zone-file text."""

from __future__ import annotations

from typing import Any

import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from kubesvc.dataplane.dns import config, records

NS = [{"metadata": {"name": n}} for n in ("default", "kube-system", "other")]


def svc(name: str, ns: str = "default", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def eps(name: str, subsets: list[dict[str, Any]], ns: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "subsets": subsets}


SNAPSHOT = {
    "Namespace": NS,
    "Service": [
        svc("web", clusterIP="127.96.1.1", clusterIPs=["127.96.1.1"],
            ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"},
                   {"name": "dns", "port": 53, "protocol": "UDP"}]),
        svc("db", clusterIP="None", ports=[{"name": "pg", "port": 5432}]),
        svc("empty", clusterIP="None"),
        svc("late", clusterIP="None", publishNotReadyAddresses=True),
        svc("ext", type="ExternalName", externalName="example.com"),
        svc("alias", type="ExternalName", externalName="web.default.svc.cluster.local"),
        svc("iplit", type="ExternalName", externalName="1.2.3.4"),
        svc("kube-dns", "kube-system", clusterIP="127.96.0.10", clusterIPs=["127.96.0.10"]),
    ],
    "Endpoints": [
        eps("web", [{"addresses": [{"ip": "127.0.0.5"}], "ports": [{"name": "http", "port": 8080}]}]),
        eps("db", [{"addresses": [{"ip": "127.0.0.6", "hostname": "db-0"}, {"ip": "127.0.0.7"}],
                    "notReadyAddresses": [{"ip": "127.0.0.8"}], "ports": [{"name": "pg", "port": 5433, "protocol": "TCP"}]}]),
        eps("empty", [{"notReadyAddresses": [{"ip": "127.0.0.9"}], "ports": [{"port": 1}]}]),
        eps("late", [{"notReadyAddresses": [{"ip": "127.0.0.9"}], "ports": [{"port": 1}]}]),
    ],
    "Pod": [{"metadata": {"name": "p", "namespace": "default"}, "status": {"podIP": "127.244.0.3"}}],
}
Z = "cluster.local."


def table(**opts: Any) -> records.Table:
    return records.build(SNAPSHOT, records.Options(reverse_cidrs=("127.96.0.0/12", "127.244.0.0/16"), **opts), 7)


def ask(t: records.Table, name: str, rdtype: str) -> tuple[str, list[str], list[str]]:
    a = t.lookup(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
    if a.forward:
        return "FORWARD", [], []

    def lines(section: tuple[records.RRSet, ...]) -> list[str]:
        return sorted(f"{o} {ttl} {dns.rdatatype.to_text(t)} {rd}" for o, t, ttl, rds in section for rd in rds)

    return dns.rcode.to_text(a.rcode), lines(a.answer), lines(a.additional)


CASES = [
    # cluster-IP service: A, SRV per named port (service port, service name), bare SRV per port, PTR
    ("web.default.svc.cluster.local", "A", "NOERROR", ["web.default.svc.cluster.local. 5 A 127.96.1.1"]),
    ("WEB.Default.svc.cluster.local", "A", "NOERROR", ["WEB.Default.svc.cluster.local. 5 A 127.96.1.1"]),
    ("_http._tcp.web.default.svc.cluster.local", "SRV", "NOERROR",
     ["_http._tcp.web.default.svc.cluster.local. 5 SRV 0 100 80 web.default.svc.cluster.local."]),
    ("_dns._udp.web.default.svc.cluster.local", "SRV", "NOERROR",
     ["_dns._udp.web.default.svc.cluster.local. 5 SRV 0 100 53 web.default.svc.cluster.local."]),
    ("_http._udp.web.default.svc.cluster.local", "SRV", "NXDOMAIN", []),
    ("web.default.svc.cluster.local", "SRV", "NOERROR",
     [f"web.default.svc.cluster.local. 5 SRV 0 33 {p} web.default.svc.cluster.local." for p in (53, 80, 81)]),
    ("1.1.96.127.in-addr.arpa", "PTR", "NOERROR", ["1.1.96.127.in-addr.arpa. 5 PTR web.default.svc.cluster.local."]),
    ("web.default.svc.cluster.local", "AAAA", "NOERROR", []),
    ("web.default.svc.cluster.local", "TXT", "NOERROR", []),
    ("127-0-0-5.web.default.svc.cluster.local", "A", "NOERROR", ["127-0-0-5.web.default.svc.cluster.local. 5 A 127.0.0.5"]),
    # headless: ready endpoints only, hostname or dashed IP, SRV per endpoint x named port with target port
    ("db.default.svc.cluster.local", "A", "NOERROR",
     ["db.default.svc.cluster.local. 5 A 127.0.0.6", "db.default.svc.cluster.local. 5 A 127.0.0.7"]),
    ("db-0.db.default.svc.cluster.local", "A", "NOERROR", ["db-0.db.default.svc.cluster.local. 5 A 127.0.0.6"]),
    ("127-0-0-7.db.default.svc.cluster.local", "A", "NOERROR", ["127-0-0-7.db.default.svc.cluster.local. 5 A 127.0.0.7"]),
    ("127-0-0-8.db.default.svc.cluster.local", "A", "NXDOMAIN", []),
    ("_pg._tcp.db.default.svc.cluster.local", "SRV", "NOERROR",
     ["_pg._tcp.db.default.svc.cluster.local. 5 SRV 0 50 5433 127-0-0-7.db.default.svc.cluster.local.",
      "_pg._tcp.db.default.svc.cluster.local. 5 SRV 0 50 5433 db-0.db.default.svc.cluster.local."]),
    ("6.0.0.127.in-addr.arpa", "PTR", "NOERROR", ["6.0.0.127.in-addr.arpa. 5 PTR db-0.db.default.svc.cluster.local."]),
    ("empty.default.svc.cluster.local", "A", "NXDOMAIN", []),
    ("late.default.svc.cluster.local", "A", "NOERROR", ["late.default.svc.cluster.local. 5 A 127.0.0.9"]),
    # ExternalName
    ("ext.default.svc.cluster.local", "CNAME", "NOERROR", ["ext.default.svc.cluster.local. 5 CNAME example.com."]),
    ("ext.default.svc.cluster.local", "TXT", "NOERROR", ["ext.default.svc.cluster.local. 5 CNAME example.com."]),
    ("ext.default.svc.cluster.local", "SRV", "NOERROR", []),
    ("alias.default.svc.cluster.local", "A", "NOERROR",
     ["alias.default.svc.cluster.local. 5 CNAME web.default.svc.cluster.local.", "web.default.svc.cluster.local. 5 A 127.96.1.1"]),
    ("iplit.default.svc.cluster.local", "A", "NXDOMAIN", []),
    # pods, dns-version, apex, empty non-terminals, unknown names
    ("127-244-0-3.default.pod.cluster.local", "A", "NOERROR", ["127-244-0-3.default.pod.cluster.local. 5 A 127.244.0.3"]),
    ("10-1-2-3.other.pod.cluster.local", "A", "NOERROR", ["10-1-2-3.other.pod.cluster.local. 5 A 10.1.2.3"]),
    ("10-1-2-3.nons.pod.cluster.local", "A", "NXDOMAIN", []),
    ("010-1-2-3.other.pod.cluster.local", "A", "NXDOMAIN", []),
    ("dns-version.cluster.local", "TXT", "NOERROR", ['dns-version.cluster.local. 28800 TXT "1.1.0"']),
    ("ns.dns.cluster.local", "A", "NOERROR", ["ns.dns.cluster.local. 5 A 127.96.0.10"]),
    ("cluster.local", "A", "NOERROR", []),
    ("svc.cluster.local", "A", "NOERROR", []),
    ("pod.cluster.local", "A", "NOERROR", []),
    ("default.svc.cluster.local", "A", "NOERROR", []),
    ("nons.svc.cluster.local", "A", "NXDOMAIN", []),
    ("nope.default.svc.cluster.local", "A", "NXDOMAIN", []),
    ("example.com.cluster.local", "A", "NXDOMAIN", []),
    ("a.b.c.web.default.svc.cluster.local", "A", "NXDOMAIN", []),
    # reverse names: unknown inside our ranges NXDOMAIN, outside forwarded; other zones forwarded
    ("9.9.96.127.in-addr.arpa", "PTR", "NXDOMAIN", []),
    ("1.1.168.192.in-addr.arpa", "PTR", "FORWARD", []),
    ("example.com", "A", "FORWARD", []),
]


@pytest.mark.parametrize("name,rdtype,rcode,answer", CASES, ids=[f"{c[0]}/{c[1]}" for c in CASES])
def test_record_catalogue(name: str, rdtype: str, rcode: str, answer: list[str]) -> None:
    got_rcode, got_answer, _ = ask(table(), name, rdtype)
    assert (got_rcode, got_answer) == (rcode, sorted(answer))


def test_srv_additional_carries_targets() -> None:
    _, _, extra = ask(table(), "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert extra == ["127-0-0-7.db.default.svc.cluster.local. 5 A 127.0.0.7", "db-0.db.default.svc.cluster.local. 5 A 127.0.0.6"]


def test_negative_answers_carry_soa_with_ttl() -> None:
    a = table(ttl=30).lookup(dns.name.from_text("nope.default.svc.cluster.local"), dns.rdatatype.A)
    (owner, rdtype, ttl, (soa,)), = a.authority
    assert (str(owner), ttl, str(soa)) == (Z, 30, "ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 30")


def test_ttl_option_and_pods_modes() -> None:
    assert ask(table(ttl=0), "web.default.svc.cluster.local", "A")[1] == ["web.default.svc.cluster.local. 0 A 127.96.1.1"]
    verified = table(pods="verified")
    assert ask(verified, "127-244-0-3.default.pod.cluster.local", "A")[0] == "NOERROR"
    assert ask(verified, "10-1-2-3.other.pod.cluster.local", "A")[0] == "NXDOMAIN"
    assert ask(table(pods="disabled"), "127-244-0-3.default.pod.cluster.local", "A")[0] == "NXDOMAIN"


def test_other_cluster_domain() -> None:
    t = records.build(SNAPSHOT, records.Options(zone="corp.internal"), 1)
    assert ask(t, "web.default.svc.corp.internal", "A")[1] == ["web.default.svc.corp.internal. 5 A 127.96.1.1"]
    assert ask(t, "web.default.svc.cluster.local", "A")[0] == "FORWARD"


def test_external_name_out_of_zone_is_chased_for_addresses_only() -> None:
    t = table()
    a = t.lookup(dns.name.from_text("ext.default.svc.cluster.local"), dns.rdatatype.A)
    assert str(a.chase) == "example.com."
    assert t.lookup(dns.name.from_text("ext.default.svc.cluster.local"), dns.rdatatype.TXT).chase is None


# ------------------------------------------------------------------------------------------ config


def test_configmap_stub_domains_and_upstreams() -> None:
    cm = {"data": {"stubDomains": '{"acme.local": ["127.0.0.1:5300", "name.example"], "cluster.local": ["1.1.1.1"]}',
                   "upstreamNameservers": '["127.0.0.2", "[::1]:54", "127.0.0.3", "127.0.0.4"]'}}
    fc = config.from_configmap(cm, "cluster.local")
    assert fc.stub_domains == ((dns.name.from_text("acme.local"), (("127.0.0.1", 5300),)),)
    assert fc.upstreams == (("127.0.0.2", 53), ("::1", 54), ("127.0.0.3", 53))
    assert fc.route(dns.name.from_text("x.ACME.local"), ()) == (("127.0.0.1", 5300),)
    assert fc.route(dns.name.from_text("example.com"), (("9.9.9.9", 53),)) == fc.upstreams
    assert len(fc.warnings) == 3  # a DNS name, the cluster domain, a 4th upstream


def test_configmap_bad_json_is_reported_and_ignored() -> None:
    fc = config.from_configmap({"data": {"stubDomains": "{not json", "upstreamNameservers": '["127.0.0.2"]'}}, "cluster.local")
    assert fc.stub_domains == () and fc.upstreams == (("127.0.0.2", 53),)
    assert fc.warnings[0].startswith("kube-dns ConfigMap: ignoring stubDomains: invalid JSON object")
    assert fc.route(dns.name.from_text("example.com"), (("127.0.0.9", 53),)) == (("127.0.0.2", 53),)
    assert config.from_configmap(None, "cluster.local").route(dns.name.from_text("a."), (("127.0.0.9", 53),)) == (("127.0.0.9", 53),)


def test_resolv_conf_servers(tmp_path: Any) -> None:
    p = tmp_path / "resolv.conf"
    p.write_text("# c\nsearch x\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver bogus\noptions edns0\n")
    assert config.resolv_conf_servers(str(p)) == (("127.0.0.53", 53), ("fe80::1", 53))
    assert config.resolv_conf_servers(str(tmp_path / "missing")) == ()


def test_pod_resolv_conf() -> None:
    assert config.pod_resolv_conf("127.96.0.10", "web", "cluster.local") == (
        "nameserver 127.96.0.10\nsearch web.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    )

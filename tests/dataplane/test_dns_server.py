"""`kubesvc dns` as a real subprocess with dig as the client: every record kind, live changes, stub domains,
upstreams, truncation and TCP fallback, an upstream that never answers, bind errors, resolv.conf printing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.message
import pytest

from tests.dataplane.dns_fixtures import (
    Cluster,
    Running,
    configmap,
    dig,
    dns_server,
    pod,
    service,
    upstream,
    write_resolv_conf,
)
from tests.support.procs import ROOT, wait_for

pytestmark = pytest.mark.skipif(subprocess.run(["which", "dig"], capture_output=True).returncode != 0,
                                reason="dig (dnsutils) not installed: run scripts/sysdeps.sh")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(str(tmp_path / "store.db"))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def server(cluster: Cluster, tmp_path: Path) -> Iterator[Running]:
    cluster.apply(
        pod("web-1", "127.0.0.21", {"app": "web"}),
        pod("web-2", "127.0.0.22", {"app": "web"}),
        pod("web-3", "127.0.0.23", {"app": "web"}, ready=False),
        pod("db-0", "127.0.0.31", {"app": "db"}, hostname="db-0", subdomain="db"),
        service("web", selector={"app": "web"}, ports=[{"name": "http", "port": 80, "targetPort": "http"}]),
        service("db", clusterIP="None", selector={"app": "db"}, ports=[{"name": "pg", "port": 5432, "targetPort": "http"}]),
        service("webh", clusterIP="None", selector={"app": "web"}, ports=[{"name": "http", "port": 80, "targetPort": "http"}]),
        service("ext", type="ExternalName", externalName="www.example.test"),
    )
    with dns_server(cluster.path, write_resolv_conf(tmp_path), "--upstream-timeout", "0.5") as s:
        yield s


def web_ip(cluster: Cluster) -> str:
    return str(cluster.reg.get("Service", "default", "web")["spec"]["clusterIP"])


def test_cluster_ip_service(server: Running, cluster: Cluster) -> None:
    d = dig(server.port, "web.default.svc.cluster.local", "A")
    assert d.status == "NOERROR" and {"qr", "aa"} <= d.flags and "ra" not in d.flags
    assert d.answer == [f"web.default.svc.cluster.local. 5 IN A {web_ip(cluster)}"]
    assert dig(server.port, "WeB.DEFAULT.svc.cluster.local").answer[0].startswith("WeB.DEFAULT.svc.cluster.local. 5 IN A")


def test_headless_service_and_endpoint_names(server: Running) -> None:
    d = dig(server.port, "webh.default.svc.cluster.local", "A")
    assert d.rdata("A") == ["127.0.0.21", "127.0.0.22"]  # not the unready web-3
    assert dig(server.port, "db-0.db.default.svc.cluster.local").answer == ["db-0.db.default.svc.cluster.local. 5 IN A 127.0.0.31"]
    assert dig(server.port, "127-0-0-21.webh.default.svc.cluster.local").rdata("A") == ["127.0.0.21"]


def test_srv_records_for_both_kinds(server: Running, cluster: Cluster) -> None:
    d = dig(server.port, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert d.answer == ["_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."]
    assert d.additional == [f"web.default.svc.cluster.local. 5 IN A {web_ip(cluster)}"]
    d = dig(server.port, "_http._tcp.webh.default.svc.cluster.local", "SRV")
    assert d.rdata("SRV") == ["0 50 8080 127-0-0-21.webh.default.svc.cluster.local.", "0 50 8080 127-0-0-22.webh.default.svc.cluster.local."]
    assert sorted(d.additional) == ["127-0-0-21.webh.default.svc.cluster.local. 5 IN A 127.0.0.21",
                                    "127-0-0-22.webh.default.svc.cluster.local. 5 IN A 127.0.0.22"]
    assert dig(server.port, "_pg._tcp.db.default.svc.cluster.local", "SRV").rdata() == ["0 100 8080 db-0.db.default.svc.cluster.local."]
    assert dig(server.port, "_nope._tcp.web.default.svc.cluster.local", "SRV").status == "NXDOMAIN"


def test_ptr_pod_version_and_negative_answers(server: Running, cluster: Cluster) -> None:
    assert dig(server.port, "-x", web_ip(cluster)).rdata("PTR") == ["web.default.svc.cluster.local."]
    assert dig(server.port, "-x", "127.0.0.31").rdata("PTR") == ["db-0.db.default.svc.cluster.local."]
    assert dig(server.port, "127-0-0-21.default.pod.cluster.local").rdata("A") == ["127.0.0.21"]
    assert dig(server.port, "dns-version.cluster.local", "TXT").answer == ['dns-version.cluster.local. 28800 IN TXT "1.1.0"']
    nx = dig(server.port, "nope.default.svc.cluster.local")
    assert nx.status == "NXDOMAIN" and nx.answer == [] and nx.authority[0].startswith("cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local.")
    nodata = dig(server.port, "web.default.svc.cluster.local", "AAAA")
    assert nodata.status == "NOERROR" and nodata.answer == [] and "SOA" in nodata.authority[0]
    assert dig(server.port, "default.svc.cluster.local").status == "NOERROR"
    assert dig(server.port, "example.com.cluster.local").status == "NXDOMAIN"


def test_external_name_cname_and_upstream_resolution(cluster: Cluster, tmp_path: Path) -> None:
    with upstream({("www.example.test.", "A"): ["192.0.2.7"]}) as up:
        cluster.apply(service("ext", type="ExternalName", externalName="www.example.test"),
                      configmap({"upstreamNameservers": json.dumps([up.addr])}))
        with dns_server(cluster.path, write_resolv_conf(tmp_path)) as s:
            d = dig(s.port, "ext.default.svc.cluster.local", "A")
            assert d.answer == ["ext.default.svc.cluster.local. 5 IN CNAME www.example.test.", "www.example.test. 300 IN A 192.0.2.7"]
            assert dig(s.port, "ext.default.svc.cluster.local", "CNAME").answer == ["ext.default.svc.cluster.local. 5 IN CNAME www.example.test."]


def test_name_that_changes_while_running(server: Running, cluster: Cluster) -> None:
    name = "late.default.svc.cluster.local"
    assert dig(server.port, name).status == "NXDOMAIN"
    cluster.apply(service("late", selector={"app": "web"}))
    ip = str(cluster.reg.get("Service", "default", "late")["spec"]["clusterIP"])
    wait_for(lambda: dig(server.port, name).rdata("A") == [ip], what="new service answered")
    cluster.apply(pod("web-4", "127.0.0.24", {"app": "web"}))
    wait_for(lambda: "127.0.0.24" in dig(server.port, "webh.default.svc.cluster.local").rdata("A"), what="new endpoint")
    cluster.delete("Service", "late")
    wait_for(lambda: dig(server.port, name).status == "NXDOMAIN", what="deleted service gone")


def test_stub_domains_and_upstream_servers(cluster: Cluster, tmp_path: Path) -> None:
    with upstream({("db.acme.test.", "A"): ["192.0.2.1"]}) as stub, upstream({("www.example.test.", "A"): ["192.0.2.2"]}) as up:
        with dns_server(cluster.path, write_resolv_conf(tmp_path), "--upstream-timeout", "0.5") as s:
            assert dig(s.port, "www.example.test").status == "SERVFAIL"  # only the dead resolv.conf server so far
            cluster.apply(configmap({"stubDomains": json.dumps({"acme.test": [stub.addr]}),
                                     "upstreamNameservers": json.dumps([up.addr])}))
            wait_for(lambda: dig(s.port, "www.example.test").rdata("A") == ["192.0.2.2"], what="upstream used")
            d = dig(s.port, "db.acme.test")
            assert d.rdata("A") == ["192.0.2.1"] and "ra" in d.flags and "aa" not in d.flags
            assert dig(s.port, "nope.acme.test").status == "NXDOMAIN"
            assert stub.udp_queries == 2 and up.udp_queries >= 1


def test_truncation_and_tcp_fallback(cluster: Cluster, tmp_path: Path) -> None:
    pods = [pod(f"big-{i}", f"127.0.1.{i}", {"app": "big"}) for i in range(1, 61)]
    with upstream({("large.example.test.", "TXT"): ['"t"']}, mode="truncate") as up:
        cluster.apply(*pods, service("big", clusterIP="None", selector={"app": "big"}),
                      configmap({"upstreamNameservers": json.dumps([up.addr])}))
        with dns_server(cluster.path, write_resolv_conf(tmp_path)) as s:
            udp_only = dig(s.port, "+noedns", "+ignore", "big.default.svc.cluster.local")
            assert "tc" in udp_only.flags and udp_only.answer == []
            full = dig(s.port, "+noedns", "big.default.svc.cluster.local")  # dig retries over TCP by itself
            assert len(full.rdata("A")) == 60 and "TCP" in full.text
            assert len(dig(s.port, "+tcp", "big.default.svc.cluster.local").rdata("A")) == 60
            # upstream truncates over UDP: kubesvc asks again over TCP
            assert dig(s.port, "large.example.test", "TXT").rdata() == ['"t"']
            assert up.udp_queries == 1 and up.tcp_queries == 1


def test_upstream_that_never_answers_gives_servfail(cluster: Cluster, tmp_path: Path) -> None:
    with upstream(mode="silent") as up:
        cluster.apply(configmap({"upstreamNameservers": json.dumps([up.addr])}))
        with dns_server(cluster.path, write_resolv_conf(tmp_path), "--upstream-timeout", "0.3") as s:
            d = dig(s.port, "+time=5", "www.example.test")
            assert d.status == "SERVFAIL" and up.udp_queries >= 1
            assert dig(s.port, "dns-version.cluster.local", "TXT").status == "NOERROR"  # still serving


def test_kube_dns_service_is_created(server: Running, cluster: Cluster) -> None:
    svc = cluster.reg.get("Service", "kube-system", "kube-dns")
    assert svc["spec"]["clusterIP"] == "127.96.0.10"
    assert svc["metadata"]["labels"]["service.kubernetes.io/service-proxy-name"] == "kubesvc-dns"
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]
    assert dig(server.port, "ns.dns.cluster.local").rdata("A") == ["127.96.0.10"]
    assert dig(server.port, "kube-dns.kube-system.svc.cluster.local").rdata("A") == ["127.96.0.10"]


def run_cli(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, *args], capture_output=True, text=True,
                          timeout=60, cwd=str(ROOT))


def test_print_resolv_conf(cluster: Cluster) -> None:
    p = run_cli(cluster.path, "dns", "--print-resolv-conf", "-n", "shop")
    assert (p.returncode, p.stdout) == (0, "nameserver 127.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")


def test_bind_failure_and_bad_flags_are_one_line(server: Running, cluster: Cluster, tmp_path: Path) -> None:
    p = run_cli(cluster.path, "dns", "--listen", f"127.0.0.1:{server.port}", "--resolv-conf", write_resolv_conf(tmp_path))
    assert p.returncode == 1 and p.stderr.startswith(f"error: cannot listen on 127.0.0.1:{server.port}/") and len(p.stderr.splitlines()) == 1
    for args, msg in [(["--listen", "nowhere"], 'error: invalid --listen "nowhere"'), (["--ttl", "9999"], "error: invalid --ttl"),
                      (["--allow-from", "10.0.0.0/33"], 'error: invalid --allow-from "10.0.0.0/33"'), (["--pods", "x"], "error: invalid --pods")]:
        p = run_cli(cluster.path, "dns", *args)
        assert p.returncode == 1 and p.stderr.startswith(msg) and len(p.stderr.splitlines()) == 1, p.stderr


def test_sigterm_stops_cleanly(cluster: Cluster, tmp_path: Path) -> None:
    with dns_server(cluster.path, write_resolv_conf(tmp_path)) as s:
        assert dig(s.port, "dns-version.cluster.local", "TXT").status == "NOERROR"
        assert s.proc.stop() == 0


def test_repeated_query_bytes_get_fresh_ids_and_follow_changes(server: Running, cluster: Cluster) -> None:
    """A resolver repeating a question sends the same bytes behind a new ID; the server remembers its reply by
    those bytes (Handler.udp_fast). Each answer must carry its own query's ID, and a change in the store must show
    through the remembered replies."""
    q = dns.message.make_query("webh.default.svc.cluster.local", "A")

    def ask(qid: int) -> bytes:
        q.id = qid
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(q.to_wire(), ("127.0.0.1", server.port))
            data = s.recv(4096)
        assert data[:2] == qid.to_bytes(2, "big")
        return data

    def addresses(reply: bytes) -> list[str]:
        return sorted(rd.address for rd in dns.message.from_wire(reply).answer[0])

    replies = [ask(qid) for qid in (1, 0xBEEF, 0xFFFF)]
    assert [r[2:] for r in replies[1:]] == [replies[0][2:]] * 2  # the same reply behind each ID
    assert addresses(replies[0]) == ["127.0.0.21", "127.0.0.22"]
    cluster.apply(pod("web-4", "127.0.0.24", {"app": "web"}))
    wait_for(lambda: "127.0.0.24" in addresses(ask(7)), what="the new endpoint in the same question's reply")

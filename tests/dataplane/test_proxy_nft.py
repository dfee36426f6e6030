"""`kubesvc proxy --mode nftables`: the rendered ruleset (pure), and real traffic DNATed by the kernel on loopback.

The real tests need root and the nft command (skipped otherwise); each uses its own table, removed even on failure.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubesvc.dataplane.proxy import nft
from kubesvc.dataplane.proxy import plan as planning
from tests.dataplane.conftest import Cluster, nft_usable, who

needs_nft = pytest.mark.skipif(nft_usable() is not None, reason=nft_usable() or "")


def svc(name: str, ip: str, ports: list[dict], **spec: object) -> dict:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"clusterIP": ip, "ports": ports, **spec}}


def eps(name: str, ips: list[str], port: int, pname: str = "p") -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "subsets": [{"addresses": [{"ip": i} for i in ips], "ports": [{"name": pname, "port": port}]}]}


def lines(text: str, *needles: str) -> list[str]:
    return [ln for ln in text.splitlines() if all(n in ln for n in needles)]


def table_exists(name: str) -> bool:
    return subprocess.run(["nft", "list", "table", "inet", name], capture_output=True).returncode == 0


# ------------------------------------------------------------------------------------------ render (pure)


def test_cluster_ip_goes_to_a_numgen_choice_over_every_endpoint() -> None:
    plan = planning.build([svc("web", "127.96.0.5", [{"name": "p", "port": 80}])], [eps("web", ["127.0.0.2", "127.0.0.3", "127.0.0.4"], 8080)])
    rs = nft.render(plan, "t")
    elem = lines(rs.text, "add element inet t service-ips ")
    assert len(elem) == 1 and "127.96.0.5 . tcp . 80 : goto service-" in elem[0]
    (svc_chain,) = [c for c in rs.model.chains if c.startswith("service-")]
    choice = lines(rs.text, f"add rule inet t {svc_chain} ")  # a cascade: endpoint i taken with probability 1/(N - i)
    assert [c.split(" ", 5)[5].rsplit("goto ", 1)[0] for c in choice] == ["numgen random mod 3 == 0 ", "numgen random mod 2 == 0 ", ""]
    assert len({c.split()[-1] for c in choice}) == 3 and all(c.split()[-1].startswith("endpoint-") for c in choice)
    assert "vmap {" not in rs.text  # no anonymous vmap per Service (the kernel names each by scanning every set)
    dnats = lines(rs.text, "dnat ip to")
    assert sorted(d.rsplit(" ", 1)[1] for d in dnats) == ["127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.4:8080"]
    assert not lines(rs.text, "mark-for-masquerade", "ip saddr 127.")  # loopback endpoints reach themselves without it
    assert lines(rs.text, "add chain inet t nat-output { type nat hook output priority -100;")


def test_no_endpoints_is_a_reject_on_every_address_and_no_dnat() -> None:
    s = svc("empty", "127.96.0.6", [{"name": "p", "port": 53, "protocol": "UDP", "nodePort": 30053}], type="NodePort")
    rs = nft.render(planning.build([s], [], ["127.0.0.1"]), "t")
    (elem,) = lines(rs.text, "add element inet t no-endpoint-services ")
    assert "127.96.0.6 . udp . 53 : goto reject-chain" in elem and "127.0.0.1 . udp . 30053 : goto reject-chain" in elem
    assert not lines(rs.text, "add element inet t service-ips ") and not lines(rs.text, "dnat ip")  # no DNAT statement


def test_affinity_is_a_dynamic_set_per_endpoint_with_the_timeout() -> None:
    s = svc("sticky", "127.96.0.7", [{"name": "p", "port": 80}], sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 42}})
    rs = nft.render(planning.build([s], [eps("sticky", ["127.0.0.2", "10.1.0.3"], 80)]), "t")
    sets = lines(rs.text, "add set inet t affinity-")
    assert len(sets) == 2 and all("flags dynamic,timeout; timeout 42s;" in x for x in sets)
    assert len(lines(rs.text, "update @affinity-", "{ ip saddr }")) == 2
    lookups = lines(rs.text, "ip saddr @affinity-", "goto endpoint-")
    assert len(lookups) == 2
    order = rs.text.splitlines()
    assert max(order.index(x) for x in lookups) < order.index(lines(rs.text, "numgen random mod 2 == 0 goto endpoint-")[0])  # affinity first
    assert lines(rs.text, "ip saddr 10.1.0.3 jump mark-for-masquerade")  # hairpin of a non-loopback endpoint


def test_external_addresses_local_policy_and_source_ranges() -> None:
    s = svc("lb", "127.96.0.8", [{"name": "p", "port": 80, "nodePort": 30080}], type="LoadBalancer",
            externalTrafficPolicy="Local", loadBalancerSourceRanges=["127.5.0.0/16"])
    s["status"] = {"loadBalancer": {"ingress": [{"ip": "127.240.0.8"}]}}
    e = eps("lb", ["127.0.0.2", "127.0.0.3"], 80)
    e["subsets"][0]["addresses"][1]["nodeName"] = "elsewhere"
    rs = nft.render(planning.build([s], [e], ["127.0.0.1"], lambda ip: ip.startswith("127."), node_name="kubesvc-node"), "t")
    (elem,) = lines(rs.text, "add element inet t service-ips ")
    assert "127.96.0.8 . tcp . 80 : goto service-" in elem
    assert "127.0.0.1 . tcp . 30080 : goto external-" in elem and "127.240.0.8 . tcp . 80 : goto external-" in elem
    ext_choice = [x for x in lines(rs.text, "add rule inet t external-") if "endpoint-" in x]
    assert len(ext_choice) == 1 and " goto endpoint-" in ext_choice[0] and "numgen" not in ext_choice[0]  # Local: the node-local one
    assert not lines(rs.text, "external-", "fib saddr type != local")  # Local keeps the client address
    assert lines(rs.text, "ip saddr != { 127.5.0.0/16 } drop")
    (fw,) = lines(rs.text, "add element inet t firewall-ips ")
    assert "127.240.0.8 . tcp . 80 : goto firewall-" in fw


def test_later_syncs_flush_and_delete_what_is_gone_fresh_replaces_the_table() -> None:
    a = svc("a", "127.96.0.9", [{"name": "p", "port": 80}])
    b = svc("b", "127.96.0.10", [{"name": "p", "port": 80}])
    first = nft.render(planning.build([a, b], [eps("a", ["127.0.0.2"], 80), eps("b", ["127.0.0.3"], 80)]), "t", fresh=True)
    assert first.text.startswith("add table inet t\ndelete table inet t\n")
    second = nft.render(planning.build([a], [eps("a", ["127.0.0.2"], 80)]), "t", previous=first)
    assert "delete table" not in second.text
    gone = sorted(first.chains - second.chains)
    assert len(gone) == 2 and all("/b/" in c for c in gone)
    assert [ln.split()[-1] for ln in lines(second.text, "delete chain")] == [*nft.REJECT_CHAINS, *gone]  # no port rejects: no filter chains
    assert not lines(second.text, "delete set")


# ------------------------------------------------------------------------------------------ real traffic


@needs_nft
def test_rendered_rulesets_are_accepted_by_nft() -> None:
    """Every shape above, checked by nft itself (-c: parse and validate in the kernel, apply nothing)."""
    s = svc("lb", "127.96.0.8", [{"name": "p", "port": 80, "nodePort": 30080}, {"name": "u", "port": 53, "protocol": "UDP"}],
            type="LoadBalancer", sessionAffinity="ClientIP", loadBalancerSourceRanges=["127.5.0.0/16", "fd00::/8"])
    s["status"] = {"loadBalancer": {"ingress": [{"ip": "127.240.0.8"}]}}
    e = eps("lb", ["127.0.0.2", "10.0.0.3"], 80)
    e["subsets"].append({"addresses": [], "ports": [{"name": "u", "port": 53}]})
    rs = nft.render(planning.build([s], [e], ["127.0.0.1"]), f"kubesvc-test-check-{os.getpid()}", fresh=True)
    r = subprocess.run(["nft", "-c", "-f", "-"], input=rs.text, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@needs_nft
def test_random_choice_spreads_over_every_endpoint_and_metrics_count_rules(cluster: Cluster) -> None:
    cluster.mode = "nftables"
    bs = cluster.three_backends()
    s = cluster.service("echo", 8080, bs[0].port, selector={"app": "echo"})
    fields = cluster.start_proxy()
    assert fields["mode"] == "nftables" and fields["nftTable"] == cluster.nft_table and fields["listeners"] == "0"
    vip = (s["spec"]["clusterIP"], 8080)
    seen = Counter(who(vip) for _ in range(60))
    assert set(seen) == {"a", "b", "c"}  # random, not a rotation: each of 3 is missed by 60 draws with p < 1e-10
    m = cluster.metrics()
    rules = int(next(ln for ln in m.splitlines() if ln.startswith("kubesvc_proxy_nftables_rules ")).split()[1])
    assert rules > 10 and "kubesvc_proxy_syncs_total 1" in m and "kubeproxy_sync_proxy_rules_last_duration_seconds" in m
    # a backend added and removed: the table follows (one transaction per sync)
    cluster.delete("Pod", "pod-b")
    cluster.synced()
    assert {who(vip) for _ in range(30)} == {"a", "c"}


@needs_nft
def test_client_ip_affinity_sticks_per_client_address(cluster: Cluster) -> None:
    cluster.mode = "nftables"
    bs = cluster.three_backends()
    s = cluster.service("sticky", 8080, bs[0].port, selector={"app": "echo"}, sessionAffinity="ClientIP")
    cluster.start_proxy()
    vip = (s["spec"]["clusterIP"], 8080)

    def who_from(src: str) -> str:
        with socket.socket() as c:
            c.settimeout(5)
            c.bind((src, 0))
            c.connect(vip)
            c.shutdown(socket.SHUT_WR)
            return c.recv(100).decode().split(":")[0]

    clients = [cluster.subnet + str(100 + i) for i in range(12)]
    pinned = {c: who_from(c) for c in clients}
    assert all(who_from(c) == pinned[c] for c in clients for _ in range(3))
    assert len(set(pinned.values())) > 1  # different clients spread (12 clients all on one of 3: p ~ 1e-5)
    # the affinity sets survive an unrelated sync
    cluster.service("other", 9090, 9090)
    cluster.synced()
    assert all(who_from(c) == pinned[c] for c in clients)


@needs_nft
def test_source_ranges_drop_other_clients_on_the_lb_address(cluster: Cluster) -> None:
    cluster.mode = "nftables"
    bs = cluster.three_backends()
    allowed = cluster.subnet + "50"
    s = cluster.service("fw", 8080, bs[0].port, selector={"app": "echo"}, type="LoadBalancer",
                        loadBalancerSourceRanges=[f"{allowed}/32"])
    cluster.start_proxy()
    lb = (s["status"]["loadBalancer"]["ingress"][0]["ip"], 8080)

    def connect_from(src: str) -> int:
        with socket.socket() as c:
            c.settimeout(2)
            c.bind((src, 0))
            try:
                c.connect(lb)
                return 0
            except OSError as e:
                return e.errno or -1

    assert connect_from(allowed) == 0
    assert connect_from(cluster.subnet + "51") != 0  # dropped (a local sender's connect fails at once: EPERM)
    assert who((s["spec"]["clusterIP"], 8080)) in {"a", "b", "c"}  # the cluster IP is not firewalled


def udp_client(vip: tuple[str, int]) -> socket.socket:
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(5)
    c.connect(vip)
    return c


def udp_who(c: socket.socket) -> str | int:
    """One datagram on the client's kept socket: the answering backend's name, or the errno of the failed recv."""
    try:
        c.send(b"x")
        return c.recv(100).decode().split(":")[0]
    except OSError as e:
        return e.errno or -1


@needs_nft
def test_udp_flows_to_a_removed_endpoint_are_cleared_and_a_kept_socket_moves_on(cluster: Cluster) -> None:
    """kube-proxy's conntrack cleanup: a UDP client that keeps its socket keeps its conntrack entry (every datagram
    renews it), so without a `conntrack -D` it would go on talking to a removed endpoint (here still running: only its
    Pod is deleted, so nothing but the flow's entry can send it there)."""
    if shutil.which("conntrack") is None:
        pytest.skip("needs the conntrack tool (scripts/sysdeps.sh installs it as root)")
    cluster.mode = "nftables"
    cluster.three_backends(proto="UDP")
    s = cluster.service("dns", 5353, cluster.backends[0].port, proto="UDP", selector={"app": "echo"})
    cluster.start_proxy()
    vip = (s["spec"]["clusterIP"], 5353)
    with udp_client(vip) as c, udp_client(vip) as bystander:
        first = udp_who(c)
        assert first in {"a", "b", "c"}
        assert all(udp_who(c) == first for _ in range(5))  # one flow, one endpoint
        other = udp_who(bystander)
        if other == first:  # a bystander on another endpoint: its flow must survive the cleanup
            bystander.close()
            for _ in range(30):
                bystander = udp_client(vip)
                other = udp_who(bystander)
                if other != first:
                    break
                bystander.close()
        assert other in {"a", "b", "c"} and other != first
        cluster.delete("Pod", f"pod-{first}")
        cluster.synced()  # the sync deleted the flow's entry: its next datagram is a new flow, DNATed anew
        moved = {udp_who(c) for _ in range(5)}
        assert len(moved) == 1 and moved <= {"a", "b", "c"} - {first}, moved
        assert udp_who(bystander) == other  # untouched: its endpoint is still there
        bystander.close()


@needs_nft
def test_udp_flow_that_met_the_reject_reaches_the_first_endpoint_when_it_comes(cluster: Cluster) -> None:
    """A UDP Service without endpoints rejects (ECONNREFUSED); on loopback the flow's conntrack entry is made before the
    reject, so without the cleanup the kept socket's next datagrams would skip the DNAT once an endpoint comes."""
    if shutil.which("conntrack") is None:
        pytest.skip("needs the conntrack tool (scripts/sysdeps.sh installs it as root)")
    cluster.mode = "nftables"
    cluster.three_backends(proto="UDP", labels={"app": "later"})  # no Service selects them yet
    s = cluster.service("late", 5353, cluster.backends[0].port, proto="UDP", selector={"app": "echo"})
    cluster.start_proxy()
    vip = (s["spec"]["clusterIP"], 5353)
    with udp_client(vip) as c:
        assert udp_who(c) == errno.ECONNREFUSED
        assert udp_who(c) == errno.ECONNREFUSED
        cluster.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-late", "namespace": "default", "labels": {"app": "echo"}},
                        "spec": {"containers": [{"name": "c", "image": "echo", "ports": [{"containerPort": cluster.backends[1].port}]}]},
                        "status": {"phase": "Running", "podIP": cluster.backends[1].host}})
        cluster.synced()
        assert udp_who(c) == "b"


def test_stale_udp_entries_are_those_not_answered_by_a_current_endpoint() -> None:
    listing = ("udp      17 29 src=127.0.0.1 dst=127.96.0.9 sport=40000 dport=53 src=127.0.0.2 dst=127.0.0.1 sport=5353 dport=40000 mark=0 use=1\n"
               "udp      17 29 src=127.0.0.1 dst=127.96.0.9 sport=40001 dport=53 src=127.0.0.3 dst=127.0.0.1 sport=5353 dport=40001 mark=0 use=1\n"
               "udp      17 27 src=127.0.0.1 dst=127.96.0.9 sport=40002 dport=53 [UNREPLIED] src=127.96.0.9 dst=127.0.0.1 sport=53 "
               "dport=40002 mark=0 use=1\n"
               "udp      17 29 src=127.0.0.1 dst=127.96.0.10 sport=40003 dport=53 src=127.0.0.4 dst=127.0.0.1 sport=5353 dport=40003 mark=0 use=1\n"
               "garbage\n")
    entries = nft.parse_conntrack(listing)
    assert len(entries) == 4 and entries[0] == (("127.0.0.1", "127.96.0.9", 40000, 53), ("127.0.0.2", 5353))
    stale = nft.stale_udp(entries, {("127.96.0.9", 53): frozenset({("127.0.0.2", 5353)})})  # 127.96.0.10 unchanged: not looked at
    assert stale == {("127.96.0.9", 53, "127.0.0.3", 5353), ("127.96.0.9", 53, "127.96.0.9", 53)}


def test_a_sync_names_the_udp_addresses_whose_endpoints_changed() -> None:
    u = svc("u", "127.96.0.11", [{"name": "p", "port": 53, "protocol": "UDP", "nodePort": 30053}], type="NodePort")
    t = svc("t", "127.96.0.12", [{"name": "p", "port": 80}])
    def build(u_eps: list[str], t_eps: list[str]) -> planning.Plan:
        return planning.build([u, t], [eps("u", u_eps, 5353), eps("t", t_eps, 8080)], ["127.0.0.1"])
    first = nft.render(build(["127.0.0.2", "127.0.0.3"], ["127.0.0.4"]), "t", fresh=True)
    both = frozenset({("127.0.0.2", 5353), ("127.0.0.3", 5353)})
    assert first.conntrack == {("127.96.0.11", 53): both, ("127.0.0.1", 30053): both}  # the first sync checks every UDP address
    assert nft.render(build(["127.0.0.2", "127.0.0.3"], ["127.0.0.5"]), "t", first, partial=True).conntrack == {}  # TCP only
    one = nft.render(build(["127.0.0.2"], ["127.0.0.4"]), "t", first, partial=True)
    assert one.conntrack == {("127.96.0.11", 53): frozenset({("127.0.0.2", 5353)}), ("127.0.0.1", 30053): frozenset({("127.0.0.2", 5353)})}
    assert nft.render(build([], ["127.0.0.4"]), "t", one, partial=True).conntrack == {("127.96.0.11", 53): frozenset(),
                                                                                       ("127.0.0.1", 30053): frozenset()}


@needs_nft
def test_table_removed_on_stop_and_a_killed_proxys_table_replaced_at_start(cluster: Cluster) -> None:
    cluster.mode = "nftables"
    bs = cluster.three_backends()
    s = cluster.service("echo", 8080, bs[0].port, selector={"app": "echo"})
    vip = (s["spec"]["clusterIP"], 8080)
    cluster.start_proxy()
    assert table_exists(cluster.nft_table)
    assert cluster.proxy is not None
    cluster.proxy.stop()
    assert not table_exists(cluster.nft_table)
    # killed: the table stays behind (nothing can remove it), and the next start replaces it
    cluster.start_proxy()
    os.kill(cluster.proxy.p.pid, signal.SIGKILL)
    cluster.proxy.stop()
    assert table_exists(cluster.nft_table)
    cluster.delete("Service", "echo")
    fresh = cluster.service("echo2", 8081, bs[0].port, selector={"app": "echo"})
    cluster.start_proxy()
    listing = subprocess.run(["nft", "list", "table", "inet", cluster.nft_table], capture_output=True, text=True).stdout
    assert "/echo/" not in listing and "/echo2/" in listing
    assert who((fresh["spec"]["clusterIP"], 8081)) in {"a", "b", "c"}
    with pytest.raises(OSError):  # the old Service's rules are gone with the old table
        socket.create_connection(vip, timeout=2).close()


@needs_nft
def test_up_proxy_mode_nftables_and_down_removes_a_killed_proxys_table(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    table = f"kubesvc-test-{os.getpid()}-up"
    kubesvc = ["python", "-m", "kubesvc", "--store", store]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    try:
        up = subprocess.run([*kubesvc, "up", "--components", "proxy", "--proxy-mode", "nftables", "--proxy-nft-table", table,
                             "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=60, env=env)
        assert up.returncode == 0, up.stderr
        assert f"nftTable={table}" in up.stdout and table_exists(table)
        pid = json.loads((tmp_path / "s.db.d" / "proxy.pid").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]:
            time.sleep(0.02)
        assert table_exists(table)
        down = subprocess.run([*kubesvc, "down"], capture_output=True, text=True, timeout=60, env=env)
        assert down.returncode == 0, down.stderr
        assert not table_exists(table)
    finally:
        subprocess.run([*kubesvc, "down"], capture_output=True, timeout=60, env=env)
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)


# ------------------------------------------------------------------------------------------ partial and full syncs


def listing(table: str) -> dict:
    """``nft -j list table`` normalised: no handles, no table name, set elements sorted (the kernel's order is its own),
    rules in order per chain; chains, sets and maps by name."""
    r = subprocess.run(["nft", "-j", "list", "table", "inet", table], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out: dict = {"chains": {}, "rules": {}, "sets": {}}
    for item in json.loads(r.stdout)["nftables"]:
        for kind, obj in item.items():
            if kind in ("metainfo", "table"):
                continue
            obj = {k: v for k, v in obj.items() if k not in ("handle", "table", "family")}
            if kind == "rule":
                out["rules"].setdefault(obj.pop("chain"), []).append(json.dumps(obj, sort_keys=True))
            elif kind in ("set", "map"):
                obj["elem"] = sorted(json.dumps(e, sort_keys=True) for e in obj.get("elem", []))
                out["sets"][obj["name"]] = obj
            else:
                out[kind + "s"][obj["name"]] = obj
    return out


SAMPLE_BACKENDS = {"a": ["127.0.0.2", "127.0.0.3"], "b": ["127.0.0.4", "10.9.0.5"], "c": ["127.0.0.6"]}


def sample_plan(services: dict[str, dict], backends: dict[str, list[str]]) -> planning.Plan:
    svcs = [svc(n, f"127.96.1.{10 + ord(n)}", [{"name": "p", "port": 80, "nodePort": 30000 + ord(n)}],
                **{k: v for k, v in spec.items() if k != "status"}) for n, spec in services.items()]
    for s, spec in zip(svcs, services.values(), strict=True):
        if "status" in spec:
            s["status"] = spec["status"]
    return planning.build(svcs, [eps(n, ips, 8080) for n, ips in backends.items() if n in services], ["127.0.0.1"])


@pytest.fixture
def two_tables() -> object:
    """(the table under test, a reference table): both removed even on failure."""
    names = (f"kubesvc-test-{os.getpid()}-sync", f"kubesvc-test-{os.getpid()}-ref")
    yield names
    for n in names:
        subprocess.run(["nft", "delete", "table", "inet", n], capture_output=True, timeout=30)


def assert_matches_fresh(plan: planning.Plan, table: str, ref: str, rs: nft.Ruleset) -> None:
    """The table equals what a fresh full render of ``plan`` makes in an empty table, and holds exactly the model."""
    nft.apply(nft.render(plan, ref, fresh=True))
    got, want = listing(table), listing(ref)
    assert got == want
    assert set(got["chains"]) == set(rs.model.chains) | rs.model.skeleton
    assert {n for n in got["sets"] if n.startswith("affinity-")} == set(rs.model.sets)
    for m, els in rs.model.elements.items():
        assert len(got["sets"][m]["elem"]) == len(els), m


@needs_nft
def test_partial_syncs_write_only_changes_and_leave_exactly_the_rendered_table(two_tables: tuple[str, str]) -> None:
    table, ref = two_tables
    services: dict[str, dict] = {"a": {"type": "NodePort"}, "b": {"sessionAffinity": "ClientIP"}}
    plan = sample_plan(services, SAMPLE_BACKENDS)
    rs = nft.render(plan, table, fresh=True)
    nft.apply(rs)
    assert_matches_fresh(plan, table, ref, rs)
    steps = [
        ("added", lambda: services.update(c={"type": "LoadBalancer"}), "/c/"),
        ("endpoints changed", lambda: SAMPLE_BACKENDS.update(a=["127.0.0.2", "127.0.0.7", "127.0.0.8"]), "/a/"),
        ("affinity timeout changed", lambda: services.update(b={"sessionAffinity": "ClientIP",
                                                                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 30}}}), "/b/"),
        ("to no endpoints", lambda: SAMPLE_BACKENDS.update(c=[]), "/c/"),  # the filter chains come (a port rejects)
        ("endpoints back", lambda: SAMPLE_BACKENDS.update(c=["127.0.0.6"]), "/c/"),  # and go
        ("source ranges", lambda: services.update(c={"type": "LoadBalancer", "loadBalancerSourceRanges": ["127.5.0.0/16"],  # the nat
                                                     "status": {"loadBalancer": {"ingress": [{"ip": "127.240.1.99"}]}}}), "/c/"),  # chains jump
        ("no source ranges", lambda: services.update(c={"type": "LoadBalancer",  # to firewall-check, then no longer
                                                        "status": {"loadBalancer": {"ingress": [{"ip": "127.240.1.99"}]}}}), "/c/"),
        ("to no endpoints again", lambda: SAMPLE_BACKENDS.update(c=[]), "/c/"),
        ("removed", lambda: services.pop("a"), "/a/"),
    ]
    backends0 = {k: list(v) for k, v in SAMPLE_BACKENDS.items()}
    try:
        for what, change, touched in steps:
            change()
            plan = sample_plan(services, SAMPLE_BACKENDS)
            nxt = nft.render(plan, table, rs, partial=True)
            assert not nxt.full and "flush map" not in nxt.text and "add table" not in nxt.text, what
            named = [ln for ln in nxt.text.splitlines() if "-default/" in ln]
            assert named and all(touched in ln for ln in named), (what, nxt.text)  # only the changed Service's objects
            nft.apply(nxt)
            assert_matches_fresh(plan, table, ref, nxt)
            assert nft.render(plan, table, nxt, partial=True).text == ""  # nothing changed: nothing to apply
            rs = nxt
    finally:
        SAMPLE_BACKENDS.clear()
        SAMPLE_BACKENDS.update(backends0)


@needs_nft
def test_a_full_resync_repairs_a_table_edited_behind_our_back(two_tables: tuple[str, str]) -> None:
    table, ref = two_tables
    plan = sample_plan({"a": {"type": "NodePort"}, "b": {"sessionAffinity": "ClientIP"}}, {"a": ["127.0.0.2"], "b": ["127.0.0.4", "10.9.0.5"]})
    rs = nft.render(plan, table, fresh=True)
    nft.apply(rs)
    svc_a = next(c for c in rs.model.chains if c.startswith("service-") and "/a/" in c)
    ep_b = next(c for c in rs.model.chains if c.startswith("endpoint-") and "/b/" in c)
    key = next(iter(rs.model.elements["service-ips"]))
    t = f"inet {table}"
    edits = (f"delete element {t} service-ips {{ {key} }}\n"
             f"add rule {t} {svc_a} meta l4proto tcp dnat ip to 127.0.0.99:1\n"
             f"flush chain {t} {ep_b}\n"
             f"add chain {t} service-GHOST000-default/ghost/tcp/-\n"
             f"add set {t} affinity-GHOST000-default/ghost/tcp/-__127.0.0.9/1 {{ type ipv4_addr; }}\n"
             f"add element {t} no-endpoint-services {{ 127.96.9.9 . tcp . 9 : goto reject-chain }}\n")
    nft.apply(nft.Ruleset(edits))
    assert listing(table) != (nft.apply(nft.render(plan, ref, fresh=True)), listing(ref))[1]
    assert nft.render(plan, table, rs, partial=True).text == ""  # a partial sync trusts its model: it sees nothing to do
    existing = nft.list_objects(table)
    assert "service-GHOST000-default/ghost/tcp/-" in existing and svc_a in existing
    full = nft.render(plan, table, rs, existing=existing)
    assert full.full
    nft.apply(full)
    subprocess.run(["nft", "delete", "table", "inet", ref], capture_output=True, timeout=30)
    assert_matches_fresh(plan, table, ref, full)


@needs_nft
def test_the_proxy_resyncs_the_whole_table_periodically(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBESVC_PROXY_NFT_FULL_SYNC_SECONDS", "1")
    cluster.mode = "nftables"
    bs = cluster.three_backends()
    s = cluster.service("echo", 8080, bs[0].port, selector={"app": "echo"})
    cluster.start_proxy()
    vip = (s["spec"]["clusterIP"], 8080)
    assert who(vip) in {"a", "b", "c"}
    key = f"{vip[0]} . tcp . 8080"
    r = subprocess.run(["nft", "delete", "element", "inet", cluster.nft_table, "service-ips", f"{{ {key} }}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with pytest.raises(OSError):  # behind our back: the cluster IP leads nowhere (nothing listens on it)
        socket.create_connection(vip, timeout=2).close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the store does not move: only the periodic full resync can bring it back
        try:
            assert who(vip) in {"a", "b", "c"}
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail("the periodic full resync did not restore the deleted map element")


# ------------------------------------------------------------------------------------------ refusals


def test_nftables_mode_without_nft_or_root_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubesvc.cli.app import build_app

    app = build_app()
    store = str(tmp_path / "s.db")
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
    monkeypatch.setenv("PATH", str(tmp_path))  # no nft on this PATH
    if os.geteuid() == 0:
        r = runner.invoke(app, ["--store", store, "proxy", "--mode", "nftables"])
        assert r.exit_code == 1
        assert "error: --mode nftables: the nft command was not found; install nftables" in r.stderr
        r = runner.invoke(app, ["--store", store, "up", "--proxy-mode", "nftables"])
        assert r.exit_code == 1 and "error: --proxy-mode nftables: the nft command was not found" in r.stderr
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    r = runner.invoke(app, ["--store", store, "proxy", "--mode", "nftables"])
    assert r.exit_code == 1
    assert "error: --mode nftables: programming nftables needs root (CAP_NET_ADMIN)" in r.stderr
    assert "Traceback" not in r.stderr
    for argv, msg in ((["proxy", "--mode", "kernel"], "error: --mode: unknown proxy mode 'kernel'; choose userspace or nftables"),
                      (["proxy", "--nft-table", "bad name"], "error: --nft-table: 'bad name' is not a table name")):
        r = runner.invoke(app, ["--store", store, *argv])
        assert r.exit_code == 1 and msg in r.stderr, r.output

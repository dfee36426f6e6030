"""The proxy's incremental snapshot (``snapshot.PlanSource`` + ``plan.Planner``) equals a full build at every step.

Random sequences of creates, updates and deletes go into a real store file: Services written as they are stored
(conflicting addresses, node ports, LB and external IPs, policies, topology, SCTP, headless, ExternalName, the
proxy-name label), hand-written EndpointSlices (relabelled to another Service, hints, not-ready endpoints), Endpoints
through the registry (mirrored to slices by the controller), this node's zone, unrelated kinds, and change-log
compaction. After each step the incrementally kept plan must equal ``plan.build`` over a full read of the same
store, as the proxy built it on every sync before (``list_with_revision`` -> merged Endpoints, hints, zone)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from kubesvc.controllers.endpointslices import list_with_revision
from kubesvc.dataplane.proxy import plan as planning
from kubesvc.dataplane.proxy.snapshot import PlanSource, wants_hints
from kubesvc.errors import NotFound
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store

NODE = "test-node"
NODEPORT_CIDRS = ("127.0.0.1/32", "127.0.0.2/32")
NAMESPACES = ("default", "other")
NAMES = [f"s{i}" for i in range(8)]
IPS = ["127.0.10.1", "127.0.10.2", "127.0.10.3", "10.9.0.1", "10.9.0.2"]  # 127/8: local; 10.9/16: not
CLUSTER_IPS = ["127.96.0.1", "127.96.0.2", "127.96.0.3", "127.96.0.4"]  # few: two Services often share one
LB_IPS = ["127.240.0.1", "127.240.0.2"]
EXT_IPS = ["127.50.0.1", "127.50.0.2", "203.0.113.7"]
ZONES = ["za", "zb"]


def is_local(ip: str) -> bool:
    return ip.startswith("127.")


def full_plan(store: Store) -> planning.Plan:
    """What the proxy's snapshot computed on every sync before it was incremental."""
    _, objs = list_with_revision(store, ("Service", "Endpoints"))
    hints = planning.zone_hints(store.list("EndpointSlice")) if any(wants_hints(s) for s in objs["Service"]) else None
    node = store.get("Node", "", NODE) or {}
    zone = ((node.get("metadata") or {}).get("labels") or {}).get("topology.kubernetes.io/zone", "")
    nodes = planning.node_addresses(NODEPORT_CIDRS, ["127.0.0.1"])
    return planning.build(objs["Service"], objs["Endpoints"], nodes, is_local, NODE, zone, hints)


def random_service(rng: random.Random, ns: str, name: str) -> dict[str, Any]:
    kind = rng.choice(["ClusterIP", "ClusterIP", "NodePort", "LoadBalancer", "ExternalName"])
    ports = []
    for i in range(rng.choice([1, 1, 2, 3])):
        p: dict[str, Any] = {"name": rng.choice(["", "http", "dns", f"p{i}"]), "port": rng.choice([80, 53, 8080 + i]),
                             "protocol": rng.choice(["TCP", "TCP", "UDP", "SCTP"])}
        if kind in ("NodePort", "LoadBalancer"):
            p["nodePort"] = rng.choice([30001, 30002, 30003])
        ports.append(p)
    spec: dict[str, Any] = {"type": kind, "ports": ports,
                            "clusterIP": rng.choice(CLUSTER_IPS + ["None"] if rng.random() < 0.1 else CLUSTER_IPS)}
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if rng.random() < 0.2:
        spec["externalIPs"] = rng.sample(EXT_IPS, rng.randint(1, 2))
    if rng.random() < 0.2:
        spec["sessionAffinity"] = "ClientIP"
        if rng.random() < 0.5:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": rng.choice([10, 60])}}
    if rng.random() < 0.2:
        spec["internalTrafficPolicy"] = "Local"
    if rng.random() < 0.2:
        spec["externalTrafficPolicy"] = "Local"
        spec["healthCheckNodePort"] = rng.choice([32001, 32002])
    if rng.random() < 0.15:
        spec["loadBalancerSourceRanges"] = ["10.0.0.0/8"]
    if rng.random() < 0.2:
        meta["annotations"] = {"service.kubernetes.io/topology-mode": rng.choice(["Auto", "", "disabled"])}
    elif rng.random() < 0.1:
        spec["trafficDistribution"] = "PreferClose"
    if rng.random() < 0.05:
        meta["labels"] = {rng.choice([planning.PROXY_NAME_LABEL, planning.HEADLESS_LABEL]): "x"}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}
    if kind == "LoadBalancer" and rng.random() < 0.7:
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in rng.sample(LB_IPS, rng.randint(1, 2))]}}
    return svc


def random_slice(rng: random.Random, ns: str, name: str) -> dict[str, Any]:
    eps = []
    for ip in rng.sample(IPS, rng.randint(0, 3)):
        ep: dict[str, Any] = {"addresses": [ip]}
        if rng.random() < 0.3:
            ep["conditions"] = {"ready": rng.random() < 0.5}
        if rng.random() < 0.5:
            ep["nodeName"] = rng.choice([NODE, "elsewhere"])
        if rng.random() < 0.6:
            ep["hints"] = {"forZones": [{"name": z} for z in rng.sample(ZONES, rng.randint(0, 2))]}
        eps.append(ep)
    ports = [{"name": rng.choice(["", "http", "dns", "p0", "p1"]), "port": rng.choice([8080, 9090]),
              "protocol": rng.choice(["TCP", "UDP"])} for _ in range(rng.randint(1, 2))]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": rng.choice(["IPv4"] * 5 + ["FQDN"]),
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": rng.choice(NAMES)}},
            "endpoints": eps, "ports": ports}


def put(store: Store, obj: dict[str, Any]) -> None:
    """Create or replace, as written (no defaulting or validation: the plan must cope with what a store holds)."""
    meta = obj["metadata"]
    with store.write() as txn:
        if txn.get(obj["kind"], meta.get("namespace", ""), meta["name"]) is None:
            txn.create(obj)
        else:
            txn.update(obj, check_version=False)


def drop(store: Store, kind: str, ns: str, name: str) -> None:
    with store.write() as txn:
        if txn.get(kind, ns, name) is not None:
            txn.delete(kind, ns, name)


def step(rng: random.Random, store: Store, reg: Registry) -> str:
    ns, name = rng.choice(NAMESPACES), rng.choice(NAMES)
    r = rng.random()
    if r < 0.35:
        put(store, random_service(rng, ns, name))
        return f"put Service {ns}/{name}"
    if r < 0.45:
        drop(store, "Service", ns, name)
        return f"delete Service {ns}/{name}"
    if r < 0.7:
        sl = f"{name}-hand{rng.randint(0, 2)}"
        put(store, random_slice(rng, ns, sl))
        return f"put EndpointSlice {ns}/{sl}"
    if r < 0.78:
        sl = f"{name}-hand{rng.randint(0, 2)}"
        drop(store, "EndpointSlice", ns, sl)
        return f"delete EndpointSlice {ns}/{sl}"
    if r < 0.88:  # through the registry: mirrored to slices for a selector-less Service
        ips = rng.sample(IPS[:3], rng.randint(1, 3))
        ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns},
              "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [{"name": rng.choice(["", "http"]), "port": 8080}]}]}
        try:
            reg.delete("Endpoints", ns, name)
        except NotFound:
            pass
        if rng.random() < 0.8:
            reg.create(ep)
        return f"Endpoints {ns}/{name} via the registry"
    if r < 0.92:
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "labels": {"topology.kubernetes.io/zone": rng.choice(ZONES)}}}
        put(store, node)
        return "Node zone"
    if r < 0.97:
        put(store, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": ns}, "data": {"k": str(r)}})
        return "ConfigMap (not followed)"
    store.compact(keep=rng.choice([1, 5]))
    return "compact the change log"


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_incremental_plan_equals_a_full_build_after_every_write(tmp_path, seed):
    rng = random.Random(seed)
    store = Store(str(tmp_path / "s.db"))
    reg = Registry(store)
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    source = PlanSource(str(tmp_path / "s.db"), NODE, NODEPORT_CIDRS, lambda: ["127.0.0.1"], is_local, full_seconds=1e9)
    try:
        history: list[str] = []
        conflicts = problems = 0
        for i in range(250):
            for _ in range(rng.choice([1, 1, 1, 2, 4])):  # a sync may see several writes
                history.append(step(rng, store, reg))
            rev, got = source.read()
            assert rev == store.revision()
            want = full_plan(store)
            if got != want:
                detail = {"ports only incremental": sorted(got.ports.keys() - want.ports.keys()),
                          "ports only full": sorted(want.ports.keys() - got.ports.keys()),
                          "ports differing": sorted(k for k in got.ports.keys() & want.ports.keys() if got.ports[k] != want.ports[k]),
                          "listeners differing": sorted(k for k in got.listeners.keys() | want.listeners.keys()
                                                        if got.listeners.get(k) != want.listeners.get(k)),
                          "problems": (got.problems, want.problems)}
                pytest.fail(f"seed {seed}, sync {i}: incremental plan differs after {history[-5:]}: {detail}")
            conflicts += sum("already served" in msg for _, msg in want.problems)
            problems += len(want.problems)
        # the sequences did reach the cases that couple Services, and most syncs were incremental
        assert conflicts > 0 and problems > conflicts
        assert source.incremental_reads > 150 and source.full_reads >= 2, (source.incremental_reads, source.full_reads)
    finally:
        source.close()
        store.close()


def test_changed_names_what_differs_from_the_previous_plan(tmp_path):
    """``Plan.changed`` (what a consumer may apply alone) covers every service port that differs from the previous
    plan, the conflict's other party included."""
    store = Store(str(tmp_path / "s.db"))
    source = PlanSource(str(tmp_path / "s.db"), NODE, NODEPORT_CIDRS, lambda: ["127.0.0.1"], is_local, full_seconds=1e9)
    try:
        reg = Registry(store)
        reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
        rng = random.Random(7)
        _, prev = source.read()
        assert prev.changed is None  # the first read is a full one
        for _ in range(200):
            step(rng, store, reg)
            _, plan = source.read()
            if plan.changed is None:
                prev = plan
                continue
            differ = {spn for spn in prev.ports.keys() | plan.ports.keys() if prev.ports.get(spn) != plan.ports.get(spn)}
            differ |= {spn for k in prev.listeners.keys() | plan.listeners.keys()
                       if prev.listeners.get(k) != plan.listeners.get(k)
                       for spn in (prev.listeners.get(k), plan.listeners.get(k)) if spn is not None}
            assert differ <= plan.changed, differ - plan.changed
            prev = plan
    finally:
        source.close()
        store.close()


def test_latest_changes_gives_the_newest_change_of_each_object(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    try:
        since = store.revision()
        put(store, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}, "data": {"v": "1"}})
        put(store, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "default"}, "data": {"v": "1"}})
        put(store, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}, "data": {"v": "2"}})
        drop(store, "ConfigMap", "default", "b")
        put(store, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}})
        rev, changes = store.latest_changes(since, ("ConfigMap",))
        assert rev == store.revision()
        assert [(c.type, c.name) for c in changes] == [("MODIFIED", "a"), ("DELETED", "b")]  # revision order, Secret left out
        assert changes[0].object["data"] == {"v": "2"}
        store.compact(keep=1)
        from kubesvc.store.db import Gone

        with pytest.raises(Gone):
            store.latest_changes(since, ("ConfigMap",))
    finally:
        store.close()


def test_an_address_that_becomes_local_is_seen_without_a_store_change(tmp_path):
    """``is_local`` answers are cached between syncs and asked again every few seconds: an external IP that became
    local is served from the next sync on (a full read), as a full build would."""
    store = Store(str(tmp_path / "s.db"))
    local = {"127.0.0.1"}
    now = [0.0]
    source = PlanSource(str(tmp_path / "s.db"), NODE, NODEPORT_CIDRS, lambda: ["127.0.0.1"], local.__contains__,
                        full_seconds=1e9, clock=lambda: now[0])
    try:
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
               "spec": {"clusterIP": "127.96.0.9", "externalIPs": ["10.20.0.1"], "ports": [{"port": 80}]}}
        put(store, svc)
        _, plan = source.read()
        assert ("TCP", "10.20.0.1", 80) not in plan.listeners
        local.add("10.20.0.1")
        now[0] += 1.0
        _, plan = source.read()  # within the re-check period: the cached answer
        assert ("TCP", "10.20.0.1", 80) not in plan.listeners and source.full_reads == 1
        now[0] += 5.0
        _, plan = source.read()
        assert ("TCP", "10.20.0.1", 80) in plan.listeners and source.full_reads == 2
    finally:
        source.close()
        store.close()

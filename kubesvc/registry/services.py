"""Service specifics of the registry: allocate and release addresses and ports inside the write txn.

Rules kept here (spec §4):
- Cluster IP: random free address in the dynamic band; a requested one must be in range and free.
  Errors sit on ``spec.clusterIPs`` with the apiserver's wording.
- NodePorts for NodePort and LoadBalancer (LB only with allocateLoadBalancerNodePorts, but requested
  ones are always honoured); ports with the same ``port`` number share one node port.
- healthCheckNodePort for LoadBalancer with externalTrafficPolicy Local.
- LoadBalancer address from the pool into ``status.loadBalancer.ingress`` (honouring
  ``spec.loadBalancerIP`` when it is in the pool and free), as MetalLB does.
- Whatever the Service no longer needs (type change, fewer ports, delete) is released in the same txn.
Pools: ``clusterip``, ``nodeport``, ``lbip``, ``podip``; owners are ``<Kind>/<ns>/<name>``.
"""

from __future__ import annotations

from typing import Any

from kubesvc.api.field import FieldError, GoRaw, invalid
from kubesvc.config import Settings
from kubesvc.errors import Invalid
from kubesvc.registry.allocators import IPRange, PortRange
from kubesvc.store.db import Txn


def owner_of(obj: dict[str, Any]) -> str:
    m = obj["metadata"]
    return f"{obj['kind']}/{m.get('namespace', '')}/{m['name']}"


def _needs_cluster_ip(spec: dict[str, Any]) -> bool:
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None"


def _needs_node_ports(spec: dict[str, Any]) -> bool:
    t = spec.get("type")
    return t == "NodePort" or (t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False)


def allocate(txn: Txn, svc: dict[str, Any], settings: Settings) -> None:
    """Allocate everything this Service needs and release what it no longer does. Raises Invalid."""
    owner = owner_of(svc)
    spec = svc.setdefault("spec", {})
    errs: list[FieldError] = []
    _cluster_ip(txn, spec, owner, settings, errs)
    _node_ports(txn, spec, owner, settings, errs)
    if errs:
        raise Invalid("Service", svc["metadata"]["name"], errs)
    _load_balancer(txn, svc, owner, settings)


def release(txn: Txn, svc: dict[str, Any]) -> None:
    txn.release_all(owner_of(svc))


def _cluster_ip(txn: Txn, spec: dict[str, Any], owner: str, settings: Settings, errs: list[FieldError]) -> None:
    held = txn.owned(owner, "clusterip")
    if not _needs_cluster_ip(spec):
        txn.release_all(owner, "clusterip")
        return
    rng = IPRange(settings.service_cluster_ip_range)
    requested = spec.get("clusterIP") or ""
    if requested:
        if held and held[0][1] == requested:
            return
        if not rng.contains(requested):
            errs.append(
                invalid(
                    "spec.clusterIPs",
                    GoRaw(f'[]string{{"{requested}"}}'),
                    f"failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. "
                    f"The range of valid IPs is {settings.service_cluster_ip_range}",
                )
            )
            return
        if not txn.allocate("clusterip", requested, owner):
            errs.append(
                invalid(
                    "spec.clusterIPs",
                    GoRaw(f'[]string{{"{requested}"}}'),
                    f"failed to allocate IP {requested}: provided IP is already allocated",
                )
            )
            return
        ip = requested
    else:
        ip = rng.pick(lambda v: txn.is_allocated("clusterip", v))
        txn.allocate("clusterip", ip, owner)
    for _, v in held:
        if v != ip:
            txn.release("clusterip", v, owner)
    spec["clusterIP"] = ip
    spec["clusterIPs"] = [ip]


def _node_ports(txn: Txn, spec: dict[str, Any], owner: str, settings: Settings, errs: list[FieldError]) -> None:
    held = {int(v) for _, v in txn.owned(owner, "nodeport")}
    prange = PortRange(*settings.node_port_range)
    t = spec.get("type")
    ports = spec.get("ports") or []
    wanted: set[int] = set()
    if t in ("NodePort", "LoadBalancer"):
        auto = _needs_node_ports(spec)
        by_number: dict[int, int] = {}
        for p in ports:  # requested node ports are shared with same-numbered ports
            if p.get("nodePort"):
                by_number.setdefault(p["port"], p["nodePort"])
        for i, p in enumerate(ports):
            np = p.get("nodePort") or by_number.get(p["port"], 0)
            if np:
                if np in wanted or np in held:
                    p["nodePort"] = np
                    wanted.add(np)
                    continue
                if not prange.contains(np):
                    errs.append(
                        invalid(
                            f"spec.ports[{i}].nodePort",
                            np,
                            f"provided port is not in the valid range. The range of valid ports is {prange.text()}",
                        )
                    )
                    continue
                if not txn.allocate("nodeport", str(np), owner):
                    errs.append(invalid(f"spec.ports[{i}].nodePort", np, "provided port is already allocated"))
                    continue
            elif auto:
                np = prange.pick(lambda v: txn.is_allocated("nodeport", str(v)))
                txn.allocate("nodeport", str(np), owner)
                by_number[p["port"]] = np
            else:
                continue
            p["nodePort"] = np
            wanted.add(np)
        if t == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local":
            hc = spec.get("healthCheckNodePort") or 0
            if hc and hc not in held and hc not in wanted:
                if not prange.contains(hc):
                    errs.append(
                        invalid(
                            "spec.healthCheckNodePort",
                            hc,
                            f"provided port is not in the valid range. The range of valid ports is {prange.text()}",
                        )
                    )
                elif not txn.allocate("nodeport", str(hc), owner):
                    errs.append(invalid("spec.healthCheckNodePort", hc, "provided port is already allocated"))
            elif not hc:
                hc = prange.pick(lambda v: txn.is_allocated("nodeport", str(v)))
                txn.allocate("nodeport", str(hc), owner)
            spec["healthCheckNodePort"] = hc
            wanted.add(hc)
    else:
        for p in ports:
            p.pop("nodePort", None)
    if t != "LoadBalancer" or spec.get("externalTrafficPolicy") != "Local":
        spec.pop("healthCheckNodePort", None)
    for v in held - wanted:
        txn.release("nodeport", str(v), owner)


def _load_balancer(txn: Txn, svc: dict[str, Any], owner: str, settings: Settings) -> None:
    spec = svc["spec"]
    status = svc.setdefault("status", {})
    held = [v for _, v in txn.owned(owner, "lbip")]
    if spec.get("type") != "LoadBalancer":
        txn.release_all(owner, "lbip")
        status["loadBalancer"] = {}
        return
    pool = IPRange(settings.load_balancer_ip_pool, banded=False)
    want = spec.get("loadBalancerIP") or ""
    ip = ""
    if want and want in held:
        ip = want
    elif want:
        if pool.contains(want) and txn.allocate("lbip", want, owner):
            ip = want
    elif held:
        ip = held[0]
    else:
        ip = pool.pick(lambda v: txn.is_allocated("lbip", v), what="load-balancer IP")
        txn.allocate("lbip", ip, owner)
    for v in held:
        if v != ip:
            txn.release("lbip", v, owner)
    if ip:
        status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}
    else:
        # Like MetalLB when it cannot assign: the Service stays <pending>.
        status["loadBalancer"] = {}


def allocate_pod_ip(txn: Txn, pod: dict[str, Any], settings: Settings) -> None:
    """Give a Pod an address from the pod range unless its manifest names one (status.podIP)."""
    status = pod.setdefault("status", {})
    owner = owner_of(pod)
    if status.get("podIP"):
        status.setdefault("podIPs", [{"ip": status["podIP"]}])
        return
    held = txn.owned(owner, "podip")
    if held:
        ip = held[0][1]
    else:
        ip = IPRange(settings.pod_ip_range, banded=False).pick(lambda v: txn.is_allocated("podip", v), what="pod IP")
        txn.allocate("podip", ip, owner)
    status["podIP"] = ip
    status["podIPs"] = [{"ip": ip}]

"""Per-kind create/update strategies: what the apiserver does to an object before validation.

Pipeline order (the caller's): ``prepare_for_create`` / ``prepare_for_update`` ->
``defaults.apply_defaults`` -> ``validation.validate`` / ``validate_update`` ->
``ip_family_errors`` + allocation (registry) -> store.

Rules kept here:
- Order independence: ``prepare_for_update`` applies the defaults itself first (the apiserver
  defaults at decode time, before its strategy compares old and new), so the caller's later
  ``apply_defaults`` is a no-op; ``prepare_for_create`` does not need them.
- Create: server-owned metadata is dropped (uid, resourceVersion, creationTimestamp,
  deletionTimestamp, deletionGracePeriodSeconds, generation, managedFields: the store sets them);
  ``generation: 1`` for the kinds whose upstream strategy sets it (Deployment, ReplicaSet,
  ReplicationController, Ingress, IngressClass, StatefulSet, DaemonSet, Job, CronJob, PDB, HPA;
  Services, Pods and Namespaces carry none in 1.32). Status starts as the status strategy's zero
  (the replica counts kubectl's columns read; a Node keeps the status it is created with and its
  old one on update, as nodeStrategy does). Status is reset for Services and Ingresses (``{loadBalancer: {}}``), controllers and
  Namespaces (``{}``); Pod status is kept (kubesvc lets a manifest carry ``status.podIP``).
  Services get ``clusterIPs = [clusterIP]`` when only the singular field is given.
- Update: uid (when omitted), creationTimestamp, deletionTimestamp and
  deletionGracePeriodSeconds come from the old object; generation is the old one, +1 when the
  spec changed; status is the old one (``prepare_for_status_update`` is the other way round).
- Service update (``service/storage/storage.go`` beginUpdate + ``strategy.go``), in this order:
  NormalizeClusterIPs; patchAllocatedValues (copy clusterIP/clusterIPs when both sides need one;
  nodePorts when both sides need them, matched by port name, or for an unnamed port by port
  number (a kubesvc refinement of upstream's name-only match), unless the old value is already
  used by another port; healthCheckNodePort when both need it); IP-family init;
  dropTypeDependentFields (only values the user did not also change are dropped); LB status
  cleared when leaving LoadBalancer.
"""

from __future__ import annotations

import copy
from typing import Any

from kubesvc.api import defaults, names
from kubesvc.api import field as f
from kubesvc.api.field import FieldError

Obj = dict[str, Any]

GENERATION_KINDS = frozenset({"Deployment", "ReplicaSet", "ReplicationController", "Ingress", "IngressClass",
                              "StatefulSet", "DaemonSet", "Job", "CronJob", "PodDisruptionBudget",
                              "HorizontalPodAutoscaler"})
CREATE_STATUS: dict[str, Obj] = {
    "Service": {"loadBalancer": {}},
    "Ingress": {"loadBalancer": {}},
    "Deployment": {},
    "ReplicaSet": {"replicas": 0},  # ReplicaSetStatus.replicas has no omitempty: always in the JSON
    "ReplicationController": {"replicas": 0},
    "Namespace": {},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "DaemonSet": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0},
    "Job": {},
    "CronJob": {},
    "PodDisruptionBudget": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0},
    "HorizontalPodAutoscaler": {"currentReplicas": 0, "desiredReplicas": 0},
    "ResourceQuota": {},
}
STATUS_KINDS = frozenset(CREATE_STATUS) | {"Pod", "Node"}
SERVER_OWNED_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
)
CONFIGURED_FAMILIES = ("IPv4",)


# --- helpers the registry's allocators use ----------------------------------------------------


def _spec(svc: Obj | None) -> Obj:
    return (svc or {}).get("spec") or {}


def _type(svc: Obj | None) -> str:
    return _spec(svc).get("type") or "ClusterIP"


def needs_cluster_ip(svc: Obj) -> bool:
    """Upstream needsClusterIP: every type but ExternalName holds a clusterIP ("None" counts)."""
    return _type(svc) != "ExternalName"


def is_headless(svc: Obj) -> bool:
    """clusterIPs == ["None"] (or clusterIP "None" before normalization)."""
    spec = _spec(svc)
    ips = spec.get("clusterIPs") or []
    if ips:
        return len(ips) == 1 and ips[0] == "None"
    return spec.get("clusterIP") == "None"


def needs_node_ports(svc: Obj) -> bool:
    """NodePort and LoadBalancer hold node ports. For LB with allocateLoadBalancerNodePorts
    false, only the ports the user asked for are allocated (the allocator's rule)."""
    return _type(svc) in ("NodePort", "LoadBalancer")


def needs_health_check_node_port(svc: Obj) -> bool:
    return _type(svc) == "LoadBalancer" and _spec(svc).get("externalTrafficPolicy") == "Local"


def _externally_accessible(svc: Obj) -> bool:
    if _type(svc) in ("NodePort", "LoadBalancer"):
        return True
    return _type(svc) == "ClusterIP" and bool(_spec(svc).get("externalIPs"))


# --- create -----------------------------------------------------------------------------------


def prepare_for_create(obj: Obj) -> None:
    """Strip server-owned metadata, reset status, set generation; Services: clusterIPs from clusterIP."""
    kind = obj.get("kind", "")
    meta = obj.setdefault("metadata", {})
    for key in SERVER_OWNED_META:
        meta.pop(key, None)
    if kind in GENERATION_KINDS:
        meta["generation"] = 1
    if kind in CREATE_STATUS:
        obj["status"] = copy.deepcopy(CREATE_STATUS[kind])
    if kind == "Service":
        defaults.normalize_cluster_ips(obj.setdefault("spec", {}), None)


# --- update -----------------------------------------------------------------------------------


def prepare_for_update(new: Obj, old: Obj) -> None:
    """Defaults, Service allocation patching and type-change cleanup, old status, metadata."""
    kind = new.get("kind", "")
    if kind == "Service":
        _prepare_service_update(new, old)
    else:
        defaults.apply_defaults(new, old)
    if kind in STATUS_KINDS and "status" in old:
        status = copy.deepcopy(old["status"])
        if kind == "Service" and _type(old) == "LoadBalancer" and _type(new) != "LoadBalancer":
            status["loadBalancer"] = {}
        new["status"] = status
    _carry_metadata(new, old)
    if kind in GENERATION_KINDS:
        generation = (old.get("metadata") or {}).get("generation") or 0
        if _spec(new) != _spec(old):
            generation += 1
        new["metadata"]["generation"] = generation


def prepare_for_status_update(new: Obj, old: Obj) -> None:
    """A write to the status subresource: the old spec and metadata stay; only status changes."""
    new["spec"] = copy.deepcopy(old.get("spec") or {})
    for key in ("labels", "annotations"):
        old_value = (old.get("metadata") or {}).get(key)
        meta = new.setdefault("metadata", {})
        if old_value is None:
            meta.pop(key, None)
        else:
            meta[key] = copy.deepcopy(old_value)
    _carry_metadata(new, old)
    if "generation" in (old.get("metadata") or {}):
        new["metadata"]["generation"] = old["metadata"]["generation"]
    defaults.apply_defaults(new, old)


def _carry_metadata(new: Obj, old: Obj) -> None:
    meta = new.setdefault("metadata", {})
    old_meta = old.get("metadata") or {}
    if not meta.get("uid") and old_meta.get("uid"):
        meta["uid"] = old_meta["uid"]
    for key in ("creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if old_meta.get(key) is not None:
            meta[key] = old_meta[key]


def _prepare_service_update(new: Obj, old: Obj) -> None:
    spec = new.setdefault("spec", {})
    old_spec = _spec(old)
    defaults.set_defaults_service(new)
    defaults.normalize_cluster_ips(spec, old_spec)
    patch_allocated_values(new, old)
    defaults.init_ip_family_fields(spec, old_spec)
    drop_type_dependent_fields(new, old)


def patch_allocated_values(new: Obj, old: Obj) -> None:
    """Copy allocated values the update left out, when both old and new still need them."""
    spec, old_spec = new.setdefault("spec", {}), _spec(old)
    if needs_cluster_ip(old) and needs_cluster_ip(new):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if needs_node_ports(old) and needs_node_ports(new):
        old_ports = [p for p in old_spec.get("ports") or [] if isinstance(p, dict)]
        new_ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        used = {p.get("nodePort") for p in old_ports if p.get("nodePort")} & {
            p.get("nodePort") for p in new_ports if p.get("nodePort")
        }
        for port in new_ports:
            if port.get("nodePort"):
                continue
            match = _matching_old_port(port, old_ports)
            value = (match or {}).get("nodePort") or 0
            if value and value not in used:
                port["nodePort"] = value
    if needs_health_check_node_port(old) and needs_health_check_node_port(new):
        if not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


def _matching_old_port(port: Obj, old_ports: list[Obj]) -> Obj | None:
    name = port.get("name") or ""
    for old_port in old_ports:
        if name:
            if (old_port.get("name") or "") == name:
                return old_port
        elif not old_port.get("name") and old_port.get("port") == port.get("port"):
            return old_port
    return None


def drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    """Wipe fields the new type no longer uses, when the user did not also change them."""
    spec, old_spec = new.setdefault("spec", {}), _spec(old)

    def same(key: str) -> bool:
        return (spec.get(key) or None) == (old_spec.get(key) or None)

    if needs_cluster_ip(old) and not needs_cluster_ip(new):
        if same("clusterIP") and same("clusterIPs"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if same("ipFamilies"):
            spec.pop("ipFamilies", None)
        if same("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if needs_node_ports(old) and not needs_node_ports(new):
        old_nps = {p.get("nodePort") for p in old_spec.get("ports") or [] if isinstance(p, dict) and p.get("nodePort")}
        new_nps = {p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("nodePort")}
        if new_nps <= old_nps:
            for port in spec.get("ports") or []:
                if isinstance(port, dict):
                    port.pop("nodePort", None)
    if needs_health_check_node_port(old) and not needs_health_check_node_port(new) and same("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if _type(old) == "LoadBalancer" and _type(new) != "LoadBalancer":
        new_alloc, old_alloc = spec.get("allocateLoadBalancerNodePorts"), old_spec.get("allocateLoadBalancerNodePorts")
        if new_alloc is not None and old_alloc is not None and new_alloc == old_alloc:
            spec.pop("allocateLoadBalancerNodePorts", None)
        if spec.get("loadBalancerClass") == old_spec.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    if _externally_accessible(old) and not _externally_accessible(new) and same("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)


# --- cluster configuration checks (allocation time) -------------------------------------------


def ip_family_errors(svc: Obj, configured: tuple[str, ...] = CONFIGURED_FAMILIES) -> list[FieldError]:
    """initIPFamilyFields' cluster checks on a defaulted Service; the registry calls this with
    allocation, since it depends on the configured ranges (kubesvc: IPv4 only)."""
    spec = _spec(svc)
    if _type(svc) == "ExternalName":
        return []
    errs: list[FieldError] = []
    cluster_ips = [ip for ip in spec.get("clusterIPs") or [] if ip != "None"]
    families = spec.get("ipFamilies") or []
    policy = spec.get("ipFamilyPolicy")
    if policy == "SingleStack":
        if len(cluster_ips) == 2:
            errs.append(
                f.invalid(
                    "spec.ipFamilyPolicy",
                    policy,
                    "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
                )
            )
        if len(families) == 2:
            errs.append(
                f.invalid(
                    "spec.ipFamilyPolicy",
                    policy,
                    "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
                )
            )
    for i, ip in enumerate(cluster_ips):
        family = names.ip_family(ip)
        if names.parse_ip(ip) is not None and family not in configured:
            shown = list(spec.get("clusterIPs") or [])
            errs.append(f.invalid(f"spec.clusterIPs[{i}]", shown, f"{family} is not configured on this cluster"))
    if errs:
        return errs
    if spec.get("clusterIP") == "None" and not spec.get("selector"):
        return []
    if policy == "RequireDualStack" and len(configured) < 2:
        errs.append(f.invalid("spec.ipFamilyPolicy", policy, "this cluster is not configured for dual-stack services"))
    for i, family in enumerate(families):
        if family not in configured:
            errs.append(f.invalid(f"spec.ipFamilies[{i}]", family, "not configured on this cluster"))
    return errs

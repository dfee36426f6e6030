"""The EndpointSlice controller and the EndpointSlice mirroring controller (K8s ``pkg/controller/endpointslice``,
``pkg/controller/endpointslicemirroring``), run inside the write transaction like the endpoints controller, and
the merged view of a Service's slices that the data plane reads.

Rules kept here:
- A Service with a selector (not ExternalName) owns slices managed by ``endpointslice-controller.k8s.io``: one
  group per (address type, port set); at most 100 endpoints per slice; named ``<service>-<5 random>`` from
  ``generateName``; labelled with the Service's labels plus ``kubernetes.io/service-name``,
  ``endpointslice.kubernetes.io/managed-by`` (and ``service.kubernetes.io/headless`` when headless); owned by
  the Service (controller ownerReference). With no endpoints at all, one placeholder slice per address type
  (no ports, no endpoints) stays, as upstream.
- Pods as upstream's ``podToEndpoint``: left out when Succeeded/Failed or without an IP of the slice's family;
  terminating pods stay in (``terminating: true``); ``serving`` = the pod is Ready, ``ready`` = serving and not
  terminating (always true with ``publishNotReadyAddresses``); targetRef, nodeName, hostname (when the pod's
  subdomain is the Service), zone from the Node's ``topology.kubernetes.io/zone`` label. Each Service port's
  targetPort is resolved per pod (a pod without a named port simply lacks that port in its group).
- Address types follow ``spec.ipFamilies`` (else the cluster IP's family, else IPv4).
- Reconcile keeps endpoints in the slice that already holds them, fills slices with room, then creates new ones;
  a slice is written only when its content changed; empty non-placeholder slices are deleted, but a slice about
  to be deleted is reused (renamed content, same address type) for one about to be created, as upstream.
- A Service without a selector: hand-written Endpoints of the same name are mirrored to slices managed by
  ``endpointslicemirroring-controller.k8s.io`` (owned by the Endpoints, its labels and annotations copied but
  the trigger time and last-applied; up to 1000 addresses per slice), unless the Endpoints carry
  ``endpointslice.kubernetes.io/skip-mirror: "true"`` (the endpoints controller sets it on the Endpoints it
  manages). Mirrored slices go when the Endpoints or the Service go, or when the Service gains a selector.
- Slices managed by anyone else (hand-written) are never touched: they feed the Service named by their
  ``kubernetes.io/service-name`` label like any other.
- ``merged_endpoints``: all slices labelled with a Service's name -> one Endpoints-shaped object per Service
  (one subset per slice; ``ready`` unset counts as ready; FQDN slices and ``port``-less ports are left out;
  an address already given for the same port set is not repeated), so the proxy, DNS and ingress keep one
  reader. ``list_with_revision`` is the one place the data plane swaps Endpoints for slices.
"""

from __future__ import annotations

import ipaddress
import json
import random
from typing import Any, Protocol

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
HEADLESS_LABEL = "service.kubernetes.io/headless"
ZONE_LABEL = "topology.kubernetes.io/zone"
CONTROLLER = "endpointslice-controller.k8s.io"
MIRRORING = "endpointslicemirroring-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100  # kube-controller-manager --max-endpoints-per-slice
MIRRORING_MAX_ENDPOINTS_PER_SLICE = 1000  # --mirroring-max-endpoints-per-subset
TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand

Obj = dict[str, Any]
Key = tuple[str, str]  # (addressType, ports as canonical JSON)


class TxnLike(Protocol):
    def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...
    def list_labelled(self, kind: str, namespace: str, label: str, value: str) -> list[Obj]: ...
    def list_selecting(self, kind: str, namespace: str, labels: dict[str, str] | None) -> list[Obj]: ...
    def list(self, kind: str, namespace: str | None = None) -> list[Obj]: ...
    def create(self, obj: Obj) -> Obj: ...
    def update(self, obj: Obj, *, check_version: bool = True) -> Obj: ...
    def delete(self, kind: str, namespace: str, name: str) -> Obj: ...


# ------------------------------------------------------------------------------------------ pure rules


def address_type(ip: str) -> str | None:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def service_address_types(service: Obj) -> list[str]:
    spec = service.get("spec") or {}
    families = [f for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    if families:
        return families
    fam = address_type(str(spec.get("clusterIP") or ""))
    return [fam] if fam else ["IPv4"]


def _pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if isinstance(p, dict) and p.get("ip")]
    if status.get("podIP") and status["podIP"] not in ips:
        ips.insert(0, str(status["podIP"]))
    return ips


def _ports_key(address_type_: str, ports: list[Obj]) -> Key:
    return address_type_, json.dumps(ports, sort_keys=True)


def _slice_key(sl: Obj) -> Key:
    return _ports_key(str(sl.get("addressType", "")), [p for p in sl.get("ports") or [] if isinstance(p, dict)])


def _endpoint_id(ep: Obj) -> str:
    ref = ep.get("targetRef") or {}
    return json.dumps([ep.get("addresses") or [], ref.get("uid", ""), ref.get("name", "")])


def desired_for_service(service: Obj, pods: list[Obj], zones: dict[str, str]) -> dict[Key, list[Obj]]:
    """(addressType, ports) -> endpoints the EndpointSlice controller wants for a selector Service."""
    from kubesvc.controllers.endpoints import _find_port, pod_is_ready, selector_matches

    meta, spec = service["metadata"], service.get("spec") or {}
    selector = spec.get("selector") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    types = service_address_types(service)
    out: dict[Key, list[Obj]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        pmeta, pspec = pod["metadata"], pod.get("spec") or {}
        if not selector_matches(selector, pmeta.get("labels")):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        ports: list[Obj] = []
        for sp in spec.get("ports") or []:
            proto = sp.get("protocol", "TCP")
            number = _find_port(pod, sp.get("targetPort", sp.get("port")), proto)
            if number is None:
                continue
            port: Obj = {"name": sp.get("name", ""), "port": number, "protocol": proto}
            if sp.get("appProtocol"):
                port["appProtocol"] = sp["appProtocol"]
            ports.append(port)
        serving = pod_is_ready(pod)
        terminating = bool(pmeta.get("deletionTimestamp"))
        ready = publish or (serving and not terminating)
        for fam in types:
            ip = next((i for i in _pod_ips(pod) if address_type(i) == fam), None)
            if ip is None:
                continue
            ep: Obj = {"addresses": [ip], "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
            if pspec.get("hostname") and pspec.get("subdomain") == meta["name"]:
                ep["hostname"] = pspec["hostname"]
            if pspec.get("nodeName"):
                ep["nodeName"] = pspec["nodeName"]
                if zones.get(pspec["nodeName"]):
                    ep["zone"] = zones[pspec["nodeName"]]
            ep["targetRef"] = {"kind": "Pod", "namespace": pmeta.get("namespace", "default"),
                               "name": pmeta["name"], "uid": pmeta.get("uid", "")}
            out.setdefault(_ports_key(fam, ports), []).append(ep)
    return out


def desired_for_endpoints(endpoints: Obj) -> dict[Key, list[Obj]]:
    """(addressType, ports) -> endpoints the mirroring controller wants for hand-written Endpoints."""
    out: dict[Key, list[Obj]] = {}
    for ss in endpoints.get("subsets") or []:
        if not isinstance(ss, dict):
            continue
        ports = []
        for p in ss.get("ports") or []:
            if isinstance(p, dict):
                port: Obj = {"name": p.get("name", ""), "port": p.get("port"), "protocol": p.get("protocol", "TCP")}
                if p.get("appProtocol"):
                    port["appProtocol"] = p["appProtocol"]
                ports.append(port)
        for ready, field in ((True, "addresses"), (False, "notReadyAddresses")):
            for a in ss.get(field) or []:
                if not isinstance(a, dict):
                    continue
                try:
                    ip = ipaddress.ip_address(str(a.get("ip", "")))
                except ValueError:
                    continue
                ep: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
                if a.get("hostname"):
                    ep["hostname"] = a["hostname"]
                if a.get("nodeName"):
                    ep["nodeName"] = a["nodeName"]
                if a.get("targetRef"):
                    ep["targetRef"] = a["targetRef"]
                fam = "IPv6" if ip.version == 6 else "IPv4"
                eps = out.setdefault(_ports_key(fam, ports), [])
                if all(_endpoint_id(e) != _endpoint_id(ep) for e in eps):
                    eps.append(ep)
    return out


def should_mirror(service: Obj | None, endpoints: Obj | None) -> bool:
    if service is None or endpoints is None:
        return False
    spec = service.get("spec") or {}
    if spec.get("selector") or spec.get("type") == "ExternalName":
        return False
    meta = endpoints.get("metadata") or {}
    if (meta.get("labels") or {}).get(SKIP_MIRROR_LABEL) == "true":
        return False
    return LEADER_ANNOTATION not in (meta.get("annotations") or {})


def merged_endpoints(slices: list[Obj]) -> list[Obj]:
    """All slices labelled with a Service's name -> one Endpoints-shaped object per (namespace, Service)."""
    merged: dict[tuple[str, str], Obj] = {}
    seen: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for sl in sorted(slices, key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"])):
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc or sl.get("addressType") not in ("IPv4", "IPv6"):
            continue
        key = (str(meta.get("namespace", "default")), str(svc))
        ep_obj = merged.setdefault(key, {"apiVersion": "v1", "kind": "Endpoints",
                                         "metadata": {"namespace": key[0], "name": key[1]}, "subsets": []})
        ports = [{k: v for k, v in p.items() if k in ("name", "port", "protocol", "appProtocol")}
                 for p in sl.get("ports") or [] if isinstance(p, dict) and p.get("port") is not None]
        ports_id = json.dumps(sorted((str(p.get("name") or ""), p["port"], str(p.get("protocol") or "TCP")) for p in ports))
        done = seen.setdefault(key, set())
        subset: Obj = {}
        for ep in sl.get("endpoints") or []:
            if not isinstance(ep, dict) or not ep.get("addresses"):
                continue
            ip = str(ep["addresses"][0])
            if (ip, ports_id) in done:
                continue
            done.add((ip, ports_id))
            addr: Obj = {"ip": ip}
            for field in ("hostname", "nodeName", "targetRef"):
                if ep.get(field):
                    addr[field] = ep[field]
            ready = (ep.get("conditions") or {}).get("ready") is not False
            subset.setdefault("addresses" if ready else "notReadyAddresses", []).append(addr)
        if ports:
            subset["ports"] = ports
        if subset:
            ep_obj["subsets"].append(subset)
    return list(merged.values())


def list_with_revision(store: Any, kinds: tuple[str, ...]) -> tuple[int, dict[str, list[Obj]]]:
    """``store.list_with_revision`` for the data plane: ``Endpoints`` is served from the EndpointSlices (the
    merged view of each Service's slices), read in the same consistent snapshot."""
    if "Endpoints" not in kinds:
        return store.list_with_revision(kinds)
    read = tuple("EndpointSlice" if k == "Endpoints" else k for k in kinds)
    rev, objs = store.list_with_revision(read)
    objs["Endpoints"] = merged_endpoints(objs.pop("EndpointSlice"))
    return rev, objs


# ------------------------------------------------------------------------------------------ reconcile


def _generate_name(txn: TxnLike, ns: str, base: str) -> str:
    prefix = f"{base}-"[:58]
    while True:
        name = prefix + "".join(random.choices(_ALPHANUMS, k=5))
        if txn.get("EndpointSlice", ns, name) is None:
            return name


def _managed(txn: TxnLike, ns: str, service: str, controller: str) -> list[Obj]:
    return [s for s in txn.list_labelled("EndpointSlice", ns, SERVICE_NAME_LABEL, service)  # indexed: not O(slices)
            if (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == controller]


def delete_managed(txn: TxnLike, ns: str, service: str, controller: str) -> None:
    for sl in _managed(txn, ns, service, controller):
        if txn.get("EndpointSlice", ns, sl["metadata"]["name"]) is not None:
            txn.delete("EndpointSlice", ns, sl["metadata"]["name"])


def _reconcile(txn: TxnLike, ns: str, base: str, controller: str, desired: dict[Key, list[Obj]], meta: Obj,
               max_per_slice: int) -> None:
    """Make the slices managed by ``controller`` for ``base`` hold ``desired``; ``meta`` (labels, annotations,
    ownerReferences) is what every such slice carries. A key wanting no endpoints is a placeholder: one empty
    slice."""
    existing: dict[Key, list[Obj]] = {}
    for sl in sorted(_managed(txn, ns, base, controller), key=lambda s: s["metadata"]["name"]):
        existing.setdefault(_slice_key(sl), []).append(sl)

    def write(sl: Obj | None, key: Key, eps: list[Obj]) -> None:
        body: Obj = {"addressType": key[0], "endpoints": eps, "ports": json.loads(key[1])}
        if sl is None:
            obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": _generate_name(txn, ns, base), "generateName": f"{base}-"[:58],
                                "namespace": ns, **meta}, **body}
            txn.create(obj)
            return
        m = sl["metadata"]
        same_meta = all((m.get(f) or type(v)()) == v for f, v in meta.items())
        if same_meta and all(sl.get(f) == v for f, v in body.items()):
            return
        m.update(meta)
        for f in ("labels", "annotations"):
            if not m.get(f):
                m.pop(f, None)
        sl.update(body)
        txn.update(sl, check_version=False)

    to_delete: list[Obj] = []
    to_create: list[tuple[Key, list[Obj]]] = []
    for key, eps in desired.items():
        slices = existing.pop(key, [])
        want = {_endpoint_id(ep): ep for ep in eps}
        placed: set[str] = set()
        kept: list[list[Obj]] = []
        for sl in slices:
            here = []
            for ep in sl.get("endpoints") or []:
                eid = _endpoint_id(ep)
                if eid in want and eid not in placed:
                    here.append(want[eid])
                    placed.add(eid)
            kept.append(here)
        rest = [ep for eid, ep in want.items() if eid not in placed]
        for here in kept:
            while rest and len(here) < max_per_slice:
                here.append(rest.pop(0))
        for sl, here in zip(slices, kept, strict=True):
            if here or (not eps and sl is slices[0]):
                write(sl, key, here)
            else:
                to_delete.append(sl)
        while rest:
            to_create.append((key, rest[:max_per_slice]))
            rest = rest[max_per_slice:]
        if not eps and not slices:
            to_create.append((key, []))
    for slices in existing.values():
        to_delete.extend(slices)
    for key, eps in to_create:  # as upstream, a slice about to be deleted is reused (same address type)
        reuse = next((sl for sl in to_delete if sl.get("addressType") == key[0]), None)
        if reuse is not None:
            to_delete.remove(reuse)
        write(reuse, key, eps)
    for sl in to_delete:
        txn.delete("EndpointSlice", ns, sl["metadata"]["name"])


def _owner(obj: Obj, kind: str) -> list[Obj]:
    m = obj["metadata"]
    return [{"apiVersion": "v1", "kind": kind, "name": m["name"], "uid": m.get("uid", ""),
             "controller": True, "blockOwnerDeletion": True}]


def _zones(txn: TxnLike) -> dict[str, str]:
    return {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(ZONE_LABEL, "") for n in txn.list("Node")}


def sync_service(txn: TxnLike, service: Obj, pods: list[Obj] | None = None) -> None:
    """Both controllers for one Service (created or changed): selector -> owned slices; none -> mirrored ones."""
    meta, spec = service["metadata"], service.get("spec") or {}
    ns, name = meta.get("namespace", "default"), meta["name"]
    if spec.get("type") == "ExternalName":
        delete_managed(txn, ns, name, CONTROLLER)
        delete_managed(txn, ns, name, MIRRORING)
        return
    if not spec.get("selector"):
        delete_managed(txn, ns, name, CONTROLLER)
        sync_mirror(txn, ns, name, service)
        return
    delete_managed(txn, ns, name, MIRRORING)
    if pods is None:
        pods = txn.list("Pod", ns)
    desired = desired_for_service(service, pods, _zones(txn))
    for fam in service_address_types(service):  # an address type without endpoints keeps a placeholder
        if not any(k[0] == fam for k in desired):
            desired.setdefault(_ports_key(fam, []), [])
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    if spec.get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL], labels[MANAGED_BY_LABEL] = name, CONTROLLER
    _reconcile(txn, ns, name, CONTROLLER, desired, {"labels": labels, "ownerReferences": _owner(service, "Service")},
               MAX_ENDPOINTS_PER_SLICE)


def sync_mirror(txn: TxnLike, ns: str, name: str, service: Obj | None = None) -> None:
    """The mirroring controller for the Endpoints/Service pair ``ns/name``."""
    if service is None:
        service = txn.get("Service", ns, name)
    endpoints = txn.get("Endpoints", ns, name)
    if endpoints is None or not should_mirror(service, endpoints):
        delete_managed(txn, ns, name, MIRRORING)
        return
    emeta = endpoints["metadata"]
    labels = {**(emeta.get("labels") or {}), SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MIRRORING}
    annotations = {k: v for k, v in (emeta.get("annotations") or {}).items() if k not in (TRIGGER_ANNOTATION, LAST_APPLIED)}
    _reconcile(txn, ns, name, MIRRORING, desired_for_endpoints(endpoints),
               {"labels": labels, "annotations": annotations, "ownerReferences": _owner(endpoints, "Endpoints")},
               MIRRORING_MAX_ENDPOINTS_PER_SLICE)


def on_service_deleted(txn: TxnLike, service: Obj) -> None:
    ns, name = service["metadata"].get("namespace", "default"), service["metadata"]["name"]
    delete_managed(txn, ns, name, CONTROLLER)
    delete_managed(txn, ns, name, MIRRORING)

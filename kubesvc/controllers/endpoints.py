"""The endpoints controller: Service selector -> Pods -> Endpoints (K8s endpoints_controller.go).

Rules kept here (spec §5.2):
- ExternalName Services and Services without a selector are left alone (users manage their Endpoints).
- Pods are skipped when Succeeded/Failed, without an IP, or terminating (unless publishNotReadyAddresses).
- Each Service port resolves its targetPort per pod: ints as given; names against the pod's container
  ports by name *and* protocol; a pod without the named port is left out of that port only.
- Ready pods go to ``addresses``; the rest to ``notReadyAddresses`` (all ready with publishNotReadyAddresses).
- Entries are repacked: addresses with the same port set share a subset; order is deterministic.
- Endpoints carry the Service's labels plus ``service.kubernetes.io/headless: ""`` when headless, and
  ``endpointslice.kubernetes.io/skip-mirror: "true"`` (the mirroring controller leaves them alone, as upstream).
- Every entry point also runs the EndpointSlice controllers (``kubesvc.controllers.endpointslices``) for the
  same Service in the same transaction: slices for selector Services, mirrored slices for selector-less ones.
``compute_endpoints`` is pure; ``sync`` applies it inside the caller's write transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

HEADLESS_LABEL = "service.kubernetes.io/headless"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


class TxnLike(Protocol):
    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    def list_labelled(self, kind: str, namespace: str, label: str, value: str) -> list[dict[str, Any]]: ...
    def list_selecting(self, kind: str, namespace: str, labels: dict[str, str] | None) -> list[dict[str, Any]]: ...
    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]: ...
    def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...
    def update(self, obj: dict[str, Any], *, check_version: bool = True) -> dict[str, Any]: ...
    def delete(self, kind: str, namespace: str, name: str) -> dict[str, Any]: ...


def selector_matches(selector: dict[str, str], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def is_managed(service: dict[str, Any]) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") != "ExternalName" and bool(spec.get("selector"))


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """Ready unless the status says otherwise: a phase other than Running, or Ready=False."""
    status = pod.get("status") or {}
    phase = status.get("phase", "Running")
    if phase != "Running":
        return False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return True


def _find_port(pod: dict[str, Any], target: Any, protocol: str) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and p.get("protocol", "TCP") == protocol:
                return int(p["containerPort"])
    return None


def compute_endpoints(service: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The Endpoints object the controller wants for this Service (subsets and labels)."""
    meta = service["metadata"]
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    svc_ports = spec.get("ports") or []
    # address key -> (address dict, ready, set of endpoint ports)
    entries: dict[tuple[str, bool], tuple[dict[str, Any], set[tuple[str, int, str, str]]]] = {}
    for pod in pods:
        pmeta = pod["metadata"]
        if not selector_matches(selector, pmeta.get("labels")):
            continue
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        ip = status.get("podIP")
        if not ip:
            continue
        if pmeta.get("deletionTimestamp") and not publish:
            continue
        pspec = pod.get("spec") or {}
        addr: dict[str, Any] = {"ip": ip}
        if pspec.get("hostname") and pspec.get("subdomain") == meta["name"]:
            addr["hostname"] = pspec["hostname"]
        if pspec.get("nodeName"):
            addr["nodeName"] = pspec["nodeName"]
        addr["targetRef"] = {
            "kind": "Pod",
            "name": pmeta["name"],
            "namespace": pmeta.get("namespace", "default"),
            "uid": pmeta.get("uid", ""),
        }
        ready = publish or pod_is_ready(pod)
        key = (ip, ready)
        slot = entries.setdefault(key, (addr, set()))
        if not svc_ports:
            continue
        for sp in svc_ports:
            proto = sp.get("protocol", "TCP")
            port = _find_port(pod, sp.get("targetPort", sp.get("port")), proto)
            if port is None:
                continue
            slot[1].add((sp.get("name", ""), port, proto, sp.get("appProtocol", "")))
    # Repack: group addresses by identical port sets.
    groups: dict[frozenset[tuple[str, int, str, str]], dict[str, list[dict[str, Any]]]] = {}
    for (_ip, ready), (addr, ports) in entries.items():
        if svc_ports and not ports:
            continue
        g = groups.setdefault(frozenset(ports), {"addresses": [], "notReadyAddresses": []})
        g["addresses" if ready else "notReadyAddresses"].append(addr)
    subsets: list[dict[str, Any]] = []
    order = {(p.get("name", ""), p.get("protocol", "TCP")): i for i, p in enumerate(svc_ports)}
    for ports_key in sorted(groups, key=lambda s: sorted((order.get((n, pr), 0), pt) for n, pt, pr, _ in s)):
        g = groups[ports_key]
        subset: dict[str, Any] = {}
        for field in ("addresses", "notReadyAddresses"):
            if g[field]:
                subset[field] = sorted(g[field], key=lambda a: _ip_sort_key(a["ip"]))
        if ports_key:
            plist = []
            for name, port, proto, app in sorted(ports_key, key=lambda p: (order.get((p[0], p[2]), 0), p[1])):
                ep: dict[str, Any] = {"port": port, "protocol": proto}
                if name:
                    ep = {"name": name, **ep}
                if app:
                    ep["appProtocol"] = app
                plist.append(ep)
            subset["ports"] = plist
        subsets.append(subset)
    labels = dict(meta.get("labels") or {})
    if spec.get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    labels[SKIP_MIRROR_LABEL] = "true"
    ep_meta: dict[str, Any] = {"name": meta["name"], "namespace": meta.get("namespace", "default")}
    if labels:
        ep_meta["labels"] = labels
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints", "metadata": ep_meta}
    if subsets:
        out["subsets"] = subsets
    return out


def _ip_sort_key(ip: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in ip.split("."))
    except ValueError:
        return (1 << 32,)


def sync(txn: TxnLike, service: dict[str, Any], pods: list[dict[str, Any]] | None = None) -> None:
    """Create or update the Service's Endpoints when the wanted content differs (write only on change), then
    its EndpointSlices."""
    from kubesvc.controllers import endpointslices

    ns = service["metadata"].get("namespace", "default")
    if is_managed(service) and pods is None:
        pods = txn.list("Pod", ns)
    endpointslices.sync_service(txn, service, pods)
    if not is_managed(service):
        return
    assert pods is not None
    want = compute_endpoints(service, pods)
    have = txn.get("Endpoints", ns, service["metadata"]["name"])
    if have is not None:
        if have.get("subsets") == want.get("subsets") and (have["metadata"].get("labels") or {}) == (
            want["metadata"].get("labels") or {}
        ):
            return
        have["subsets"] = want.get("subsets")
        if have["subsets"] is None:
            have.pop("subsets")
        if want["metadata"].get("labels"):
            have["metadata"]["labels"] = want["metadata"]["labels"]
        else:
            have["metadata"].pop("labels", None)
        have["metadata"].setdefault("annotations", {})[TRIGGER_ANNOTATION] = _trigger_time()
        txn.update(have, check_version=False)
    else:
        want["metadata"]["annotations"] = {TRIGGER_ANNOTATION: _trigger_time()}
        txn.create(want)


def _trigger_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def on_service_deleted(txn: TxnLike, service: dict[str, Any]) -> None:
    """The controller deletes the Endpoints it managed; user-written ones (no selector) stay. The Service's
    managed and mirrored EndpointSlices go."""
    from kubesvc.controllers import endpointslices

    endpointslices.on_service_deleted(txn, service)
    if not is_managed(service):
        return
    ns = service["metadata"].get("namespace", "default")
    if txn.get("Endpoints", ns, service["metadata"]["name"]) is not None:
        txn.delete("Endpoints", ns, service["metadata"]["name"])


def on_pod_changed(txn: TxnLike, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    """Re-sync every Service in the pod's namespace whose selector matches the old or new labels (by name). The
    store finds them through its selector index (``list_selecting``): a Pod write reads the Services that select
    it, not every Service of the namespace."""
    ref = new or old
    assert ref is not None
    ns = ref["metadata"].get("namespace", "default")
    label_sets = [(p.get("metadata") or {}).get("labels") or {} for p in (old, new) if p is not None]
    if len(label_sets) == 2 and label_sets[0] == label_sets[1]:
        label_sets.pop()
    services: dict[str, dict[str, Any]] = {}
    for labels in label_sets:
        for svc in txn.list_selecting("Service", ns, labels):
            services.setdefault(svc["metadata"]["name"], svc)
    pods: list[dict[str, Any]] | None = None
    for name in sorted(services):
        svc = services[name]
        if not is_managed(svc):
            continue
        if pods is None:
            pods = txn.list("Pod", ns)
        sync(txn, svc, pods)

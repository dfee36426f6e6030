"""Which pod a `logs`/`exec`/`port-forward` target names, as kubectl resolves it client-side: ``NAME`` or
``pod/NAME`` is that pod; ``TYPE/NAME`` of a workload or a Service is the best of the pods its selector
matches (Running and Ready first, then the newest); ``-l`` is every pod the selector matches."""

from __future__ import annotations

from typing import Any

from kubesvc.errors import ClientError

Obj = dict[str, Any]
_SELECTING = ("Deployment", "ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet", "Job", "Service")


def _ready(pod: Obj) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def best(pods: list[Obj]) -> list[Obj]:
    """kubectl's order: ready, then running, then newest first."""
    return sorted(pods, key=lambda p: (not _ready(p), (p.get("status") or {}).get("phase") != "Running",
                                       _neg((p.get("metadata") or {}).get("creationTimestamp", ""))))


def _neg(ts: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in ts)


def matching(reg: Any, ns: str, selector: str) -> list[Obj]:
    from kubesvc.api import selectors

    sel = selectors.parse(selector)
    return [p for p in reg.store.list("Pod", ns) if sel.matches((p.get("metadata") or {}).get("labels") or {})]


def resolve(reg: Any, ns: str, target: str) -> tuple[Obj, Obj | None]:
    """(the pod, the object named when it was not a pod: a Service for port-forward's port mapping)."""
    from kubesvc.api import selectors
    from kubesvc.api.kinds import resolve as resolve_kind

    if "/" not in target:
        return reg.get("Pod", ns, target), None
    word, name = target.split("/", 1)
    kind = resolve_kind(word).kind
    if kind == "Pod":
        return reg.get("Pod", ns, name), None
    if kind not in _SELECTING:
        raise ClientError(f"cannot attach to *v1.{kind}: selector for *v1.{kind} not implemented")
    obj = reg.get(kind, ns, name)
    spec = obj.get("spec") or {}
    sel = selectors.from_map(spec.get("selector")) if kind in ("Service", "ReplicationController") else \
        selectors.from_label_selector(spec.get("selector"))
    pods = [p for p in reg.store.list("Pod", ns) if sel.matches((p.get("metadata") or {}).get("labels") or {})]
    if not pods:
        raise ClientError(f"no pods found for {word}/{name}")
    return best(pods)[0], obj


def service_target_port(svc: Obj, pod: Obj, port: int) -> int:
    """kubectl's mapping of a Service port to the pod's port (targetPort by number or by container port name)."""
    for sp in (svc.get("spec") or {}).get("ports") or []:
        if int(sp.get("port", 0)) != port:
            continue
        target = sp.get("targetPort", port)
        if isinstance(target, int) or str(target).isdigit():
            return int(target)
        for c in (pod.get("spec") or {}).get("containers") or []:
            for cp in c.get("ports") or []:
                if cp.get("name") == target:
                    return int(cp["containerPort"])
        raise ClientError(f"Pod '{pod['metadata']['name']}' does not have a named port '{target}'")
    raise ClientError(f"Service {svc['metadata']['name']} does not have a service port {port}")

"""Strategies of the core group's kinds with more than the default: Service, Pod, Namespace
(``pkg/registry/core/{service,pod,namespace}``) and the owners of pods (ReplicationController).

Rules kept here:
- Service: validation adds the cluster's IP-family checks (``strategy.ip_family_errors``); cluster IP,
  node ports, health-check node port and LB address are allocated (and released) inside the write;
  the endpoints controller and the LB events run after each write.
- Pod: the status a manifest carries is kept (kubesvc registers pods nothing runs); a pod IP is
  allocated; the endpoints controller follows each pod write.
- Namespace: the built-in ones cannot be deleted; deleting one deletes its contents first; creating
  one creates its ``default`` ServiceAccount (the serviceaccounts controller's job, done in the write).
"""

from __future__ import annotations

import copy
import json
import random
from typing import TYPE_CHECKING, Any

from kubesvc.api.field import REQUIRED, FieldError
from kubesvc.api.kinds import KINDS
from kubesvc.errors import Forbidden, NotFound
from kubesvc.registry.kinds import Strategy

if TYPE_CHECKING:
    from kubesvc.config import Settings
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Txn

Obj = dict[str, Any]

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
LB_COMPONENT = "kubesvc-lb-controller"


def _allocated_later(errs: list[FieldError]) -> list[FieldError]:
    """Drop ``spec.healthCheckNodePort: Required value``: as upstream's BeginCreate/BeginUpdate, the allocation
    step (``services.allocate``, same transaction) picks that port for a LoadBalancer with
    ``externalTrafficPolicy: Local`` that does not name one. Every other check on it stays."""
    return [e for e in errs if not (e.field == "spec.healthCheckNodePort" and e.type == REQUIRED)]


class ServiceStrategy(Strategy):
    kinds = ("Service",)

    def validate(self, obj: Obj) -> list[FieldError]:
        from kubesvc.api import strategy

        return _allocated_later(super().validate(obj)) or strategy.ip_family_errors(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        from kubesvc.api import strategy

        return _allocated_later(super().validate_update(new, old)) or strategy.ip_family_errors(new)

    def allocate(self, txn: Txn, obj: Obj, settings: Settings, old: Obj | None) -> None:
        from kubesvc.registry import services

        services.allocate(txn, obj, settings)

    def after_delete(self, registry: Registry, txn: Txn, old: Obj) -> None:
        from kubesvc.registry import services

        services.release(txn, old)

    def after_write(self, registry: Registry, txn: Txn, old: Obj | None, new: Obj | None) -> None:
        from kubesvc.controllers import endpoints

        if new is None:
            assert old is not None
            endpoints.on_service_deleted(txn, old)
            return
        if old is not None and endpoints.is_managed(old) and not endpoints.is_managed(new):
            endpoints.on_service_deleted(txn, old)
        endpoints.sync(txn, new)
        _lb_event(txn, old, new)


class PodStrategy(Strategy):
    kinds = ("Pod",)

    def user_status(self, obj: Obj) -> Obj | None:
        return copy.deepcopy(obj.get("status"))

    def restore_status(self, obj: Obj, old: Obj | None, saved: Obj | None) -> None:
        if old is None:
            pod_status(obj, saved)
        elif saved is not None:
            obj["status"] = {**(old.get("status") or {}), **saved}

    def allocate(self, txn: Txn, obj: Obj, settings: Settings, old: Obj | None) -> None:
        from kubesvc.registry import services

        services.allocate_pod_ip(txn, obj, settings)

    def after_delete(self, registry: Registry, txn: Txn, old: Obj) -> None:
        from kubesvc.registry import services

        services.release(txn, old)

    def after_write(self, registry: Registry, txn: Txn, old: Obj | None, new: Obj | None) -> None:
        from kubesvc.controllers import endpoints

        endpoints.on_pod_changed(txn, old, new)

    def grace_period(self, registry: Registry, obj: Obj, requested: int | None) -> int:
        return pod_grace_period(registry.store.path, obj, requested)


def pod_grace_period(store_path: str, pod: Obj, requested: int | None) -> int:
    """Upstream's pod ``CheckGracefulDelete``: DeleteOptions.gracePeriodSeconds, else the pod's
    ``terminationGracePeriodSeconds`` (30); 0 for a pod not bound to a node or already Succeeded/Failed.
    kubesvc adds: 0 for a pod no kubelet runs (a registered backend) and for one whose node has no live
    agent (its lock is not held: nothing would finish the deletion; the next agent stops what was left)."""
    spec = pod.get("spec") or {}
    period = requested if requested is not None else spec.get("terminationGracePeriodSeconds")
    period = 30 if period is None else max(0, int(period))
    node = spec.get("nodeName")
    if period == 0 or not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    if not runs_locally(pod) or not agent_alive(store_path, node):
        return 0
    return period


def agent_alive(store_path: str, node: str) -> bool:
    """Whether ``kubesvc kubelet`` for ``node`` runs on this store: it holds ``<store>.d/kubelet[-node].lock``
    (the path ``dataplane/kubelet/server.py`` locks)."""
    import fcntl
    import os

    name = "kubelet.lock" if node == "kubesvc-node" else f"kubelet-{node}.lock"
    try:
        fd = os.open(os.path.join(os.path.abspath(store_path) + ".d", name), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops a lock we took
    return False


def pod_status(pod: Obj, user_status: Obj | None) -> None:
    """kubesvc has no kubelet for registered pods: keep what the manifest says, fill the rest as Running."""
    status = dict(user_status or {})
    if not user_status and runs_locally(pod):
        status["phase"] = "Pending"  # the node agent (kubesvc kubelet) runs it and owns its status
    status.setdefault("phase", "Running")
    if status["phase"] == "Running" and not any(c.get("type") == "Ready" for c in status.get("conditions") or []):
        status.setdefault("conditions", []).append({"type": "Ready", "status": "True"})
    status.setdefault("hostIP", "127.0.0.1")
    ready = status["phase"] == "Running" and all(
        c.get("status") == "True" for c in status.get("conditions") or [] if c.get("type") == "Ready"
    )
    if "containerStatuses" not in status:
        status["containerStatuses"] = [
            {"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "", "ready": ready,
             "restartCount": 0, "started": status["phase"] == "Running",
             "state": {"running": {}} if status["phase"] == "Running"
             else {"waiting": {"reason": "ContainerCreating" if runs_locally(pod) else "Registered"}}}
            for c in (pod.get("spec") or {}).get("containers") or []
        ]
    pod["status"] = status


def runs_locally(pod: Obj) -> bool:
    """Pods `kubesvc kubelet` runs (a command, controller-owned, or native images: kubesvc.api.images)."""
    from kubesvc.api import images

    return images.kubelet_runs(pod)


class NamespaceStrategy(Strategy):
    kinds = ("Namespace",)

    def before_delete(self, registry: Registry, txn: Txn, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if name in PROTECTED_NAMESPACES:
            raise Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted')
        for other in KINDS:
            if other.namespaced:
                for item in txn.list(other.kind, name):
                    registry._delete(txn, other.kind, name, item["metadata"]["name"], 0)  # pods at once (no grace)

    def after_write(self, registry: Registry, txn: Txn, old: Obj | None, new: Obj | None) -> None:
        if old is None and new is not None:
            ensure_default_service_account(txn, new["metadata"]["name"])


def ensure_default_service_account(txn: Txn, namespace: str) -> None:
    """The serviceaccounts controller's ``default`` ServiceAccount of a namespace (no token Secret: 1.24+)."""
    from kubesvc.api import machine

    if txn.get("ServiceAccount", namespace, "default") is None:
        txn.create(machine.default_service_account(namespace))


class ResourceQuotaStrategy(Strategy):
    """No quota controller runs: status.hard mirrors spec.hard (what the controller writes first); usage is
    not counted and nothing is enforced."""

    kinds = ("ResourceQuota",)

    def default(self, obj: Obj, old: Obj | None = None) -> None:
        super().default(obj, old)
        hard = (obj.get("spec") or {}).get("hard")
        current = obj.get("status")
        status: Obj = current if isinstance(current, dict) else {}
        if hard:
            status["hard"] = dict(hard)
        else:
            status.pop("hard", None)
        obj["status"] = status


class PodOwnerStrategy(Strategy):
    kinds = ("ReplicationController",)
    dependents = ("Pod",)


def require_namespace(txn: Txn, namespace: str) -> None:
    if txn.get("Namespace", "", namespace) is None:
        raise NotFound("namespaces", namespace)


# ------------------------------------------------------------------------------------------ events


def _lb_ips(svc: Obj | None) -> list[str]:
    if svc is None or (svc.get("spec") or {}).get("type") != "LoadBalancer":
        return []
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i.get("ip") or i.get("hostname", "") for i in ingress]


def record_event(txn: Txn, obj: Obj, type_: str, reason: str, message: str, component: str) -> None:
    """An Event about obj, written in the same transaction (what `describe` shows under Events)."""
    from kubesvc.store.db import now_rfc3339

    meta = obj["metadata"]
    stamp = now_rfc3339()
    suffix = "".join(random.choices("0123456789abcdef", k=16))
    txn.create({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": meta.get("namespace", "default")},
        "involvedObject": {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj["kind"], "name": meta["name"],
                           "namespace": meta.get("namespace", "default"), "uid": meta.get("uid", ""),
                           "resourceVersion": meta.get("resourceVersion", "")},
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": type_,
    })


def _lb_event(txn: Txn, old: Obj | None, new: Obj) -> None:
    """Like MetalLB: IPAllocated when the address changes, AllocationFailed when none could be given."""
    if (new.get("spec") or {}).get("type") != "LoadBalancer":
        return
    before, after = _lb_ips(old), _lb_ips(new)
    if after and after != before:
        record_event(txn, new, "Normal", "IPAllocated", f"Assigned IP {json.dumps(after)}", LB_COMPONENT)
    elif not after and (old is None or before or new["spec"].get("loadBalancerIP") != (old.get("spec") or {}).get("loadBalancerIP")):
        want = new["spec"].get("loadBalancerIP")
        why = (f"requested IP {want} is not in the pool or is already in use" if want else "no available IPs")
        record_event(txn, new, "Warning", "AllocationFailed",
                     f'Failed to allocate IP for "{new["metadata"].get("namespace", "default")}/{new["metadata"]["name"]}": {why}',
                     LB_COMPONENT)


STRATEGIES = (ServiceStrategy, PodStrategy, NamespaceStrategy, ResourceQuotaStrategy, PodOwnerStrategy)

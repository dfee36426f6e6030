"""What the apiserver does to an object, over the store: one named pipeline per write.

Create: decode (schema; strict/warn/ignore) -> namespace exists -> prepare_for_create -> defaults ->
validate -> allocate (Service addresses, Pod IP) -> persist -> controllers (endpoints), all inside one
write transaction, so parallel writers never hand out the same address and a failure leaves nothing.
Update: the same with prepare_for_update/validate_update and an optimistic resourceVersion check.
Dry runs execute the whole pipeline and roll the transaction back.
The CLI and (later) the API server call only this module for writes: they can never disagree.
"""

from __future__ import annotations

import builtins
import copy
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubesvc.api.kinds import BY_KIND, KINDS, Kind
from kubesvc.errors import BadRequest, Forbidden, Invalid, NotFound

if TYPE_CHECKING:
    from kubesvc.config import Settings
    from kubesvc.store.db import Store, Txn

# The write pipeline's modules (schema, defaults, validation, allocation, controllers) are imported on
# first write: `get` never pays for them (CLI start-up is a feature).

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass
class Result:
    object: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    action: str = "created"  # created | configured | unchanged | replaced


class _Rollback(Exception):
    def __init__(self, result: Any) -> None:
        self.result = result


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def settings(self) -> Settings:
        return self.store.settings()

    # ------------------------------------------------------------------------------ reads

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        k = BY_KIND[kind]
        obj = self.store.get(kind, namespace if k.namespaced else "", name)
        if obj is None:
            raise NotFound(k.resource, name)
        return obj

    def list(self, kind: str, namespace: str | None, selector: Any = None) -> list[dict[str, Any]]:
        k = BY_KIND[kind]
        objs = self.store.list(kind, namespace if k.namespaced else None)
        if selector is not None:
            objs = [o for o in objs if selector.matches(o["metadata"].get("labels") or {})]
        return objs

    # ------------------------------------------------------------------------------ decode

    def decode(self, obj: dict[str, Any], validate: str = "strict") -> tuple[dict[str, Any], builtins.list[str]]:
        """Schema check. Wrong types are always BadRequest; unknown fields per --validate."""
        from kubesvc.api import schema

        report = schema.check(obj)
        warnings: list[str] = []
        if report.decode_errors:
            raise BadRequest(schema.bad_request_message(obj, report) or report.decode_errors[0])
        if report.unknown:
            if validate == "strict":
                raise BadRequest(schema.bad_request_message(obj, report) or "unknown fields")
            if validate == "warn":
                warnings = [f'unknown field "{p}"' for p in report.unknown]
            obj = schema.drop_unknown(obj)
        return schema.zero_nulls(obj), warnings

    # ------------------------------------------------------------------------------ writes

    def _run(self, dry_run: bool, fn: Callable[[Txn], Any]) -> Any:
        if not dry_run:
            with self.store.write() as txn:
                return fn(txn)
        try:
            with self.store.write() as txn:
                raise _Rollback(fn(txn))
        except _Rollback as rb:
            return rb.result

    def create(self, obj: dict[str, Any], *, dry_run: bool = False, validate: str = "strict") -> Result:
        obj, warnings = self.decode(copy.deepcopy(obj), validate)
        stored = self._run(dry_run, lambda txn: self._create(txn, obj))
        return Result(stored, warnings, "created")

    def replace(self, obj: dict[str, Any], *, dry_run: bool = False, validate: str = "strict") -> Result:
        obj, warnings = self.decode(copy.deepcopy(obj), validate)

        def run(txn: Txn) -> dict[str, Any]:
            k = BY_KIND[obj["kind"]]
            meta = obj["metadata"]
            if k.namespaced:
                meta.setdefault("namespace", "default")
            old = txn.get(k.kind, meta.get("namespace", "") if k.namespaced else "", meta.get("name", ""))
            if old is None:
                raise NotFound(k.resource, meta.get("name", ""))
            return self._update(txn, obj, old)

        return Result(self._run(dry_run, run), warnings, "replaced")

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False, validate: str = "strict") -> Result:
        """Client-side apply: create with the last-applied annotation, or three-way merge onto live."""
        from kubesvc.api import apply as applylib

        obj, warnings = self.decode(copy.deepcopy(obj), validate)
        obj.setdefault("metadata", {}).setdefault("annotations", {})[applylib.LAST_APPLIED] = (
            applylib.last_applied_annotation(obj)
        )

        def run(txn: Txn) -> Result:
            k = BY_KIND[obj["kind"]]
            meta = obj["metadata"]
            if k.namespaced:
                meta.setdefault("namespace", "default")
            live = txn.get(k.kind, meta.get("namespace", "") if k.namespaced else "", meta.get("name", ""))
            if live is None:
                return Result(self._create(txn, obj), warnings, "created")
            raw = (live["metadata"].get("annotations") or {}).get(applylib.LAST_APPLIED)
            original = json.loads(raw) if raw else None
            if raw is None:
                warnings.append(
                    f"resource {k.resource}/{meta.get('name', '')} is missing the {applylib.LAST_APPLIED} annotation "
                    "which is required by kubectl apply. kubectl apply should only be used on resources created "
                    "declaratively by either kubectl create --save-config or kubectl apply. The missing annotation "
                    "will be patched automatically."
                )
            patch = applylib.three_way_patch(original, obj, live)
            if not patch:
                return Result(live, warnings, "unchanged")
            merged = applylib.apply_strategic_patch(copy.deepcopy(live), patch)
            return Result(self._update(txn, merged, live), warnings, "configured")

        result: Result = self._run(dry_run, run)
        return result

    def mutate(self, kind: str, namespace: str, name: str, fn: Callable[[dict[str, Any]], None], *, dry_run: bool = False) -> dict[str, Any]:
        """Read-modify-write of one object inside one transaction (label, annotate, scale)."""
        return self._read_modify_write(kind, namespace, name, fn, dry_run=dry_run, status_only=False)

    def update_status(self, kind: str, namespace: str, name: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Read-modify-write of ``status`` only (``prepare_for_status_update``): spec, labels and
        annotations stay as stored whatever ``fn`` does to them. Returns the stored object."""
        return self._read_modify_write(kind, namespace, name, fn, dry_run=False, status_only=True)

    def _read_modify_write(self, kind: str, namespace: str, name: str, fn: Callable[[dict[str, Any]], None], *,
                           dry_run: bool, status_only: bool) -> dict[str, Any]:
        from kubesvc.api import strategy

        def run(txn: Txn) -> dict[str, Any]:
            k = BY_KIND[kind]
            old = txn.get(kind, namespace if k.namespaced else "", name)
            if old is None:
                raise NotFound(k.resource, name)
            new = copy.deepcopy(old)
            fn(new)
            if status_only:
                strategy.prepare_for_status_update(new, old)
            if new == old:
                return old
            if not status_only:
                return self._update(txn, new, old)
            stored = txn.update(new, check_version=True)
            self._after_write(txn, BY_KIND[kind], old, stored)
            return stored

        result: dict[str, Any] = self._run(dry_run, run)
        return result

    def delete(self, kind: str, namespace: str, name: str, *, dry_run: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self._run(dry_run, lambda txn: self._delete(txn, kind, namespace, name))
        return result

    def bind_pod(self, namespace: str, name: str, node: str) -> dict[str, Any]:
        """The binding subresource: set ``spec.nodeName`` once (a no-op when already bound there)."""

        def run(txn: Txn) -> dict[str, Any]:
            old = txn.get("Pod", namespace, name)
            if old is None:
                raise NotFound("pods", name)
            current = (old.get("spec") or {}).get("nodeName")
            if current:
                if current != node:
                    raise BadRequest(f'pod {name} is already assigned to node "{current}"')
                return old
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["nodeName"] = node
            stored = txn.update(new, check_version=True)
            self._after_write(txn, BY_KIND["Pod"], old, stored)
            return stored

        result: dict[str, Any] = self._run(False, run)
        return result

    # ------------------------------------------------------------------------------ pipeline steps

    def _create(self, txn: Txn, obj: dict[str, Any]) -> dict[str, Any]:
        from kubesvc.api import defaults, strategy, validation
        from kubesvc.registry import services

        k = BY_KIND[obj["kind"]]
        meta = obj.setdefault("metadata", {})
        if k.namespaced:
            ns = meta.setdefault("namespace", "default")
            if txn.get("Namespace", "", ns) is None:
                raise NotFound("namespaces", ns)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        user_status = copy.deepcopy(obj.get("status")) if k.kind == "Pod" else None
        strategy.prepare_for_create(obj)
        defaults.apply_defaults(obj)
        errs = validation.validate(obj)
        if not errs and k.kind == "Service":
            errs = strategy.ip_family_errors(obj)
        if errs:
            raise Invalid(k.kind, meta.get("name", ""), errs)
        if k.kind == "Service":
            services.allocate(txn, obj, self.settings)
        elif k.kind == "Pod":
            _pod_status(obj, user_status)
            services.allocate_pod_ip(txn, obj, self.settings)
        stored = txn.create(obj)
        self._after_write(txn, k, None, stored)
        return stored

    def _update(self, txn: Txn, new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        from kubesvc.api import defaults, strategy, validation
        from kubesvc.registry import services

        k = BY_KIND[new["kind"]]
        if k.namespaced:
            new["metadata"].setdefault("namespace", old["metadata"].get("namespace", "default"))
        user_status = copy.deepcopy(new.get("status")) if k.kind == "Pod" else None
        strategy.prepare_for_update(new, old)
        defaults.apply_defaults(new, old)
        errs = validation.validate_update(new, old)
        if not errs and k.kind == "Service":
            errs = strategy.ip_family_errors(new)
        if errs:
            raise Invalid(k.kind, new["metadata"].get("name", ""), errs)
        if k.kind == "Service":
            services.allocate(txn, new, self.settings)
        elif k.kind == "Pod":
            if user_status is not None:
                new["status"] = {**(old.get("status") or {}), **user_status}
            services.allocate_pod_ip(txn, new, self.settings)
        stored = txn.update(new, check_version=True)
        self._after_write(txn, k, old, stored)
        return stored

    def _delete(self, txn: Txn, kind: str, namespace: str, name: str) -> dict[str, Any]:
        from kubesvc.registry import services

        k = BY_KIND[kind]
        if kind == "Namespace":
            if txn.get("Namespace", "", name) is None:
                raise NotFound("namespaces", name)
            if name in PROTECTED_NAMESPACES:
                raise Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted')
            for other in KINDS:
                if other.namespaced:
                    for obj in txn.list(other.kind, name):
                        self._delete(txn, other.kind, name, obj["metadata"]["name"])
        old = txn.delete(kind, namespace if k.namespaced else "", name)
        _delete_dependents(self, txn, old)  # ownerReferences cascade (end of module)
        if kind in ("Service", "Pod"):
            services.release(txn, old)
        self._after_write(txn, k, old, None)
        return old

    def _after_write(self, txn: Txn, k: Kind, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Controllers that run inside the write (the endpoints controller)."""
        from kubesvc.controllers import endpoints

        if k.kind == "Service":
            if new is None:
                assert old is not None
                endpoints.on_service_deleted(txn, old)
            else:
                if old is not None and endpoints.is_managed(old) and not endpoints.is_managed(new):
                    endpoints.on_service_deleted(txn, old)
                endpoints.sync(txn, new)
                _lb_event(txn, old, new)
        elif k.kind == "Pod":
            endpoints.on_pod_changed(txn, old, new)


def _pod_status(pod: dict[str, Any], user_status: dict[str, Any] | None) -> None:
    """kubesvc has no kubelet for registered pods: keep what the manifest says, fill the rest as Running."""
    status = dict(user_status or {})
    if not user_status and _runs_locally(pod):
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
             else {"waiting": {"reason": "ContainerCreating" if _runs_locally(pod) else "Registered"}}}
            for c in (pod.get("spec") or {}).get("containers") or []
        ]
    pod["status"] = status




# ------------------------------------------------------------------------------------------ events

LB_COMPONENT = "kubesvc-lb-controller"


def _lb_ips(svc: dict[str, Any] | None) -> list[str]:
    if svc is None or (svc.get("spec") or {}).get("type") != "LoadBalancer":
        return []
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i.get("ip") or i.get("hostname", "") for i in ingress]


def _record_event(txn: Txn, obj: dict[str, Any], type_: str, reason: str, message: str, component: str) -> None:
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


def _lb_event(txn: Txn, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Like MetalLB: IPAllocated when the address changes, AllocationFailed when none could be given."""
    if (new.get("spec") or {}).get("type") != "LoadBalancer":
        return
    before, after = _lb_ips(old), _lb_ips(new)
    if after and after != before:
        _record_event(txn, new, "Normal", "IPAllocated", f"Assigned IP {json.dumps(after)}", LB_COMPONENT)
    elif not after and (old is None or before or new["spec"].get("loadBalancerIP") != (old.get("spec") or {}).get("loadBalancerIP")):
        want = new["spec"].get("loadBalancerIP")
        why = (f"requested IP {want} is not in the pool or is already in use" if want else "no available IPs")
        _record_event(txn, new, "Warning", "AllocationFailed",
                      f'Failed to allocate IP for "{new["metadata"].get("namespace", "default")}/{new["metadata"]["name"]}": {why}',
                      LB_COMPONENT)



# ---------------------------------------------------------------------------------------------------
# Status subresource, pod binding and cascading delete (workloads helper: kubelet and controllers).
# Kept apart from the pipeline above: status writes skip spec validation (the apiserver's status
# strategy), and dependents named by ownerReferences go with their owner in the same transaction.


OWNER_KINDS = ("Deployment", "ReplicaSet", "ReplicationController")
DEPENDENT_KINDS = ("ReplicaSet", "Pod")


def _delete_dependents(registry: Registry, txn: Txn, owner: dict[str, Any]) -> None:
    """Foreground-free cascade (kubectl's default, background): dependents whose ownerReferences
    name the deleted owner's uid are deleted in the same transaction, recursively."""
    if owner.get("kind") not in OWNER_KINDS:
        return
    uid = owner["metadata"].get("uid")
    ns = owner["metadata"].get("namespace", "default")
    if not uid:
        return
    for kind in DEPENDENT_KINDS:
        for obj in txn.list(kind, ns):
            owned = any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])
            if owned and txn.get(kind, ns, obj["metadata"]["name"]) is not None:  # not gone in a nested cascade
                registry._delete(txn, kind, ns, obj["metadata"]["name"])




def _runs_locally(pod: dict[str, Any]) -> bool:
    """Pods with a command are run by `kubesvc kubelet` (kubesvc.dataplane.kubelet.spec.runs_locally)."""
    return any(c.get("command") or c.get("args") for c in (pod.get("spec") or {}).get("containers") or [])

"""The ``/scale`` subresource (autoscaling/v1 ``Scale``) of the workload kinds, as kube-apiserver's
``ScaleREST`` in ``pkg/registry/apps/{deployment,replicaset,statefulset}/storage`` and
``pkg/registry/core/replicationcontroller/storage``.

Rules kept here:
- Served for Deployment, ReplicaSet, StatefulSet (apps/v1) and ReplicationController (v1).
- A Scale carries the owner's name, namespace, uid, resourceVersion and creationTimestamp;
  ``spec.replicas`` is the owner's (omitted at 0: ``omitempty`` in autoscaling/v1), ``status.replicas``
  the owner's status count (always present, 0 included), ``status.selector`` the owner's selector as a
  label-selector string (``a=b,c in (x,y)``: requirements sorted by key, Go's ``labels.Selector.String``).
- An update validates the Scale (``spec.replicas: Invalid value: -1: must be greater than or equal to
  0``), then writes ``spec.replicas`` through the registry's update pipeline: a Scale's resourceVersion,
  when given, is the precondition of that write (409 Conflict with the owner's resource name), and a
  write that changes nothing keeps the resourceVersion.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from kubesvc.api.field import FieldError, invalid
from kubesvc.api.kinds import BY_KIND
from kubesvc.errors import BadRequest, Conflict, Invalid

if TYPE_CHECKING:
    from kubesvc.registry.generic import Registry

Obj = dict[str, Any]
SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController")
API_VERSION = "autoscaling/v1"


def selector_string(obj: Obj) -> str:
    """The owner's selector as ``labels.Selector.String()`` prints it."""
    sel = (obj.get("spec") or {}).get("selector") or {}
    if obj.get("kind") == "ReplicationController":  # a plain map (defaulted from the template's labels)
        return ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
    reqs: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        key, op, values = e.get("key", ""), e.get("operator", ""), sorted(e.get("values") or [])
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    reqs.sort(key=lambda r: r[0])  # a stable sort: one key's requirements keep their order
    return ",".join(text for _, text in reqs)


def to_scale(obj: Obj) -> Obj:
    """The Scale of a stored workload object."""
    meta = obj.get("metadata") or {}
    smeta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if meta.get(k)}
    replicas = int((obj.get("spec") or {}).get("replicas", 1))
    status: Obj = {"replicas": int((obj.get("status") or {}).get("replicas") or 0)}
    selector = selector_string(obj)
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": API_VERSION, "metadata": smeta,
            "spec": {"replicas": replicas} if replicas else {}, "status": status}


def check_scalable(kind: str) -> None:
    if kind not in SCALABLE:
        raise BadRequest(f"{BY_KIND[kind].plural} do not have a scale subresource")


def get_scale(registry: Registry, kind: str, namespace: str, name: str) -> Obj:
    check_scalable(kind)
    return to_scale(registry.get(kind, namespace, name))


def validate_scale(scale: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        errs.append(invalid("spec.replicas", replicas, "must be an integer"))
    elif replicas < 0:
        errs.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    return errs


def update_scale(registry: Registry, kind: str, namespace: str, name: str, scale: Obj, *,
                 dry_run: bool = False) -> Obj:
    """Write ``scale.spec.replicas`` to the owner; returns the Scale of the stored (or dry-run) owner.

    The checks run in the apiserver's order: the object exists, the Scale's resourceVersion matches
    (Conflict), then the Scale is validated (Invalid, kind ``Scale``)."""
    check_scalable(kind)
    k = BY_KIND[kind]
    given = str((scale.get("metadata") or {}).get("resourceVersion") or "")

    def fn(obj: Obj) -> None:
        if given and given != "0" and given != str(obj["metadata"].get("resourceVersion")):  # 0: unconditional
            raise Conflict(k.resource, name)
        errs = validate_scale(scale)
        if errs:
            raise Invalid("Scale", name, errs)
        obj.setdefault("spec", {})["replicas"] = int((scale.get("spec") or {}).get("replicas", 0))

    stored = registry.mutate(kind, namespace, name, fn, dry_run=dry_run)
    return to_scale(copy.deepcopy(stored))


def scale(registry: Registry, kind: str, namespace: str, name: str, replicas: int, *, current: int = -1,
          resource_version: str = "", dry_run: bool = False) -> Obj:
    """What ``kubectl scale`` does (kubectl's ``scale.ScaleWithPrecondition``): with a precondition
    (``current`` >= 0 or a ``resource_version``) read the Scale, check it (``Expected replicas to be 2,
    was 3``; ``Expected resource version to be 7, was 9``: client errors, nothing written) and write it
    back carrying its resourceVersion; else write ``spec.replicas`` alone. Returns the owner as it was
    read before the write (what kubectl prints with ``-o``)."""
    from kubesvc.errors import ClientError

    if kind not in SCALABLE:
        raise ClientError(f"cannot scale {BY_KIND[kind].plural}: only deployments, replicasets, statefulsets and "
                          "replicationcontrollers have a scale subresource")
    before = registry.get(kind, namespace, name)
    cur = to_scale(before)
    have = int(cur["spec"].get("replicas", 0))
    if current >= 0 and have != current:
        raise ClientError(f"Expected replicas to be {current}, was {have}")
    if resource_version and cur["metadata"].get("resourceVersion") != resource_version:
        raise ClientError(f"Expected resource version to be {resource_version}, was {cur['metadata'].get('resourceVersion')}")
    new = copy.deepcopy(cur)
    new["spec"]["replicas"] = replicas
    if current < 0 and not resource_version:
        new["metadata"].pop("resourceVersion", None)  # kubectl's merge patch: no precondition
    update_scale(registry, kind, namespace, name, new, dry_run=dry_run)
    return before

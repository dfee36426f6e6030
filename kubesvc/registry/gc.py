"""Owner references inside the delete's transaction: the three propagation policies and finalizers.

Rules kept here (the garbage collector of kube-controller-manager, run synchronously where it can be):
- Dependents of an owner: objects of any kind (events excepted) that name the owner's uid in
  ``ownerReferences``, in the owner's namespace (every namespace for a cluster-scoped owner). Owners of
  the kinds deleted most often (Pod, Event, Endpoints, EndpointSlice) are not searched in the
  transaction; the garbage collector's loop collects their dependents, as upstream's does for all.
- ``Background`` (default): the owner goes; each dependent whose other owners are all gone goes too
  (recursively, each with its own dependents); one with a live owner left only loses the reference.
- ``Orphan``: the dependents lose the reference to the owner and stay; then the owner goes.
- ``Foreground``: the owner gets ``deletionTimestamp`` and the ``foregroundDeletion`` finalizer and
  stays visible while dependents that block it (``blockOwnerDeletion: true``) exist; its dependents are
  deleted (foreground too), and once none blocks it the finalizer is dropped and the owner goes, in
  the same transaction when every dependent could go at once, else later, from the garbage collector's
  loop (``controllers/gc.py``) in the kubelet.
- Graceful deletion (Pods a live kubelet runs, ``PodStrategy.grace_period``): the object only gets
  ``deletionTimestamp`` and ``deletionGracePeriodSeconds``; deleting it again with a shorter period
  shortens both (as upstream's ``BeforeDelete``), with a longer or equal one changes nothing; grace 0
  removes it. The kubelet deletes it with grace 0 once its containers have stopped.
- Finalizers: deleting an object whose ``metadata.finalizers`` is not empty only sets its
  ``deletionTimestamp`` (and ``deletionGracePeriodSeconds`` 0); an update that empties the finalizers of
  such an object removes it.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kubesvc.api.kinds import BY_KIND

if TYPE_CHECKING:
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Txn

Obj = dict[str, Any]
FOREGROUND = "foregroundDeletion"
NEVER_DEPENDENT = frozenset({"Event", "Namespace"})
# Kinds deleted often (controllers, churn) and rarely owners: their dependents are left to the garbage
# collector's loop, so that a pod delete does not read every object of its namespace.
LOOP_ONLY_OWNERS = frozenset({"Pod", "Event", "Endpoints", "EndpointSlice"})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dependents(txn: Txn, owner: Obj, everything: bool = False) -> list[Obj]:
    uid = owner["metadata"].get("uid")
    if not uid or (owner["kind"] in LOOP_ONLY_OWNERS and not everything):
        return []
    k = BY_KIND[owner["kind"]]
    ns = owner["metadata"].get("namespace", "default") if k.namespaced else None
    out = []
    for kind in BY_KIND.values():
        if kind.kind in NEVER_DEPENDENT or (ns is not None and not kind.namespaced):
            continue
        for obj in txn.list(kind.kind, ns if kind.namespaced else None):
            if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or []):
                out.append(obj)
    return out


def _key(obj: Obj) -> tuple[str, str, str]:
    k = BY_KIND[obj["kind"]]
    return obj["kind"], obj["metadata"].get("namespace", "default") if k.namespaced else "", obj["metadata"]["name"]


def _live_owner(txn: Txn, dep: Obj, ref: Obj) -> bool:
    kind = ref.get("kind", "")
    if kind not in BY_KIND:
        return False
    ns = dep["metadata"].get("namespace", "default") if BY_KIND[kind].namespaced else ""
    owner = txn.get(kind, ns, ref.get("name", ""))
    return owner is not None and owner["metadata"].get("uid") == ref.get("uid")


def _write_refs(registry: Registry, txn: Txn, obj: Obj, refs: list[Obj]) -> Obj:
    new = copy.deepcopy(obj)
    if refs:
        new["metadata"]["ownerReferences"] = refs
    else:
        new["metadata"].pop("ownerReferences", None)
    stored = txn.update(new, check_version=True)
    registry._after_write(txn, BY_KIND[obj["kind"]], obj, stored)
    return stored


def background(registry: Registry, txn: Txn, owner: Obj) -> None:
    """After ``owner`` left the store: its orphaned dependents go, shared ones lose the reference."""
    uid = owner["metadata"].get("uid")
    for dep in dependents(txn, owner):
        current = txn.get(*_key(dep))
        if current is None or current["metadata"].get("uid") != dep["metadata"].get("uid"):
            continue  # gone in a nested cascade
        refs = current["metadata"].get("ownerReferences") or []
        others = [r for r in refs if r.get("uid") != uid]
        if any(_live_owner(txn, current, r) for r in others):
            _write_refs(registry, txn, current, others)
        else:
            registry._delete(txn, *_key(current))


def orphan(registry: Registry, txn: Txn, owner: Obj) -> None:
    uid = owner["metadata"].get("uid")
    for dep in dependents(txn, owner):
        _write_refs(registry, txn, dep, [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid])


def blocking(txn: Txn, owner: Obj) -> list[Obj]:
    uid = owner["metadata"].get("uid")
    return [d for d in dependents(txn, owner)
            if any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in d["metadata"].get("ownerReferences") or [])]


def foreground(registry: Registry, txn: Txn, owner: Obj) -> Obj:
    """Mark ``owner`` (finalizer, deletionTimestamp), delete its dependents, remove it when none blocks."""
    meta = owner["metadata"]
    if FOREGROUND not in (meta.get("finalizers") or []) or not meta.get("deletionTimestamp"):
        new = copy.deepcopy(owner)
        if FOREGROUND not in (meta.get("finalizers") or []):
            new["metadata"]["finalizers"] = [*(meta.get("finalizers") or []), FOREGROUND]
        new["metadata"].setdefault("deletionTimestamp", _now())
        new["metadata"].setdefault("deletionGracePeriodSeconds", 0)
        before, owner = owner, txn.update(new, check_version=True)
        registry._after_write(txn, BY_KIND[owner["kind"]], before, owner)
    for dep in dependents(txn, owner):
        current = txn.get(*_key(dep))
        if current is None or current["metadata"].get("deletionTimestamp"):
            continue
        uid = owner["metadata"].get("uid")
        refs = current["metadata"].get("ownerReferences") or []
        others = [r for r in refs if r.get("uid") != uid]
        if any(_live_owner(txn, current, r) for r in others):
            _write_refs(registry, txn, current, others)
        elif any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in refs):
            foreground(registry, txn, current)
        else:
            registry._delete(txn, *_key(current))
    return finish_foreground(registry, txn, owner)


def finish_foreground(registry: Registry, txn: Txn, owner: Obj) -> Obj:
    """Drop the finalizer and remove the owner once no dependent blocks it (else return it as stored)."""
    current = txn.get(*_key(owner))
    if current is None:
        return owner
    if blocking(txn, current):
        return current
    new = copy.deepcopy(current)
    rest = [f for f in new["metadata"].get("finalizers") or [] if f != FOREGROUND]
    if rest:
        new["metadata"]["finalizers"] = rest
        stored = txn.update(new, check_version=True)
        registry._after_write(txn, BY_KIND[owner["kind"]], current, stored)
        return stored
    new["metadata"].pop("finalizers", None)
    txn.update(new, check_version=True)
    return registry._delete(txn, *_key(new))


def mark_deleting(registry: Registry, txn: Txn, obj: Obj) -> Obj:
    """An object with finalizers is not removed: it gets its deletionTimestamp (once)."""
    if obj["metadata"].get("deletionTimestamp"):
        return obj
    new = copy.deepcopy(obj)
    new["metadata"]["deletionTimestamp"] = _now()
    new["metadata"]["deletionGracePeriodSeconds"] = 0
    stored = txn.update(new, check_version=True)
    registry._after_write(txn, BY_KIND[obj["kind"]], obj, stored)
    return stored


def mark_graceful(registry: Registry, txn: Txn, obj: Obj, period: int) -> Obj:
    """Graceful deletion: set (or shorten) ``deletionTimestamp`` = now + ``period`` and
    ``deletionGracePeriodSeconds`` = ``period``; the object stays until its finisher deletes it with grace 0."""
    from datetime import timedelta

    meta = obj["metadata"]
    current = meta.get("deletionGracePeriodSeconds")
    if meta.get("deletionTimestamp") and current is not None and int(current) <= period:
        return obj
    new = copy.deepcopy(obj)
    when = datetime.now(UTC) + timedelta(seconds=period)
    new["metadata"]["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    new["metadata"]["deletionGracePeriodSeconds"] = period
    stored = txn.update(new, check_version=True)
    registry._after_write(txn, BY_KIND[obj["kind"]], obj, stored)
    return stored

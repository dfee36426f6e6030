"""Owner references: adoption by controllers, and the garbage collector's loop (pkg/controller/garbagecollector).

Rules kept here:
- Adoption (``ClaimPods`` of ``controller_ref_manager.go``): a controller takes an active object in its
  namespace whose labels match its selector and that has no controller ownerReference; the
  controller reference is added (``controller: true, blockOwnerDeletion: true``). An owner being
  deleted adopts nothing. A pod it owns whose labels stop matching is released (the reference removed).
- The collector (one pass per ``GarbageCollector.sync``), over every namespaced kind that can carry
  ownerReferences:
  - a dependent whose owners are all gone (no object of that uid) is deleted (background);
  - a dependent with some owners gone keeps only the live ones;
  - an owner with the ``foregroundDeletion`` finalizer (``delete --cascade=foreground``) that has no
    dependent left with ``blockOwnerDeletion`` is removed; until then it stays, with its
    ``deletionTimestamp``, and its dependents are deleted (foreground, recursively).
  The registry's delete already removes the known dependents in its transaction (``registry.gc``):
  the loop catches everything else (custom owner references, anything created in a race).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from kubesvc.api import selectors
from kubesvc.api.kinds import BY_KIND
from kubesvc.controllers import replicas as rp
from kubesvc.errors import Conflict, KubesvcError, NotFound
from kubesvc.registry.generic import Registry

Obj = dict[str, Any]
Event = Callable[[Obj, str, str, str], None]
log = logging.getLogger("kubesvc.controllers")
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
# Kinds the collector never looks at as dependents: written by the system itself, never owned.
SKIP = frozenset({"Event", "Namespace", "Node", "APIService"})


def matches(owner: Obj, obj: Obj) -> bool:
    sel = (owner.get("spec") or {}).get("selector")
    if owner["kind"] == "ReplicationController":
        return bool(sel) and selectors.from_map(sel).matches(obj["metadata"].get("labels") or {})
    if not sel:
        return False
    s = selectors.from_label_selector(sel)
    return not s.empty and s.matches(obj["metadata"].get("labels") or {})


def claim(registry: Registry, owner: Obj, objs: list[Obj], kind: str = "Pod") -> list[Obj]:
    """The objects ``owner`` controls after adopting matching orphans and releasing non-matching ones."""
    out: list[Obj] = []
    ns = owner["metadata"].get("namespace", "default")
    being_deleted = bool(owner["metadata"].get("deletionTimestamp"))
    for obj in objs:
        if obj["metadata"].get("namespace", "default") != ns:
            continue
        ref = rp.controller_of(obj)
        if ref is not None and ref.get("uid") == rp.uid(owner):
            if matches(owner, obj) or being_deleted:
                out.append(obj)
            else:
                _edit_refs(registry, kind, obj, lambda refs: [r for r in refs if r.get("uid") != rp.uid(owner)])
            continue
        if ref is not None or being_deleted or not rp.is_active(obj) or not matches(owner, obj):
            continue
        adopted = _edit_refs(registry, kind, obj, lambda refs: [*refs, rp.owner_reference(owner)],
                             only_if_orphan=True)
        if adopted is not None and (rp.controller_of(adopted) or {}).get("uid") == rp.uid(owner):
            out.append(adopted)
    return out


def _edit_refs(registry: Registry, kind: str, obj: Obj, fn: Callable[[list[Obj]], list[Obj]],
               only_if_orphan: bool = False) -> Obj | None:
    ns, name = obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]

    def edit(o: Obj) -> None:
        if o["metadata"].get("uid") != obj["metadata"].get("uid"):
            return
        if only_if_orphan and rp.controller_of(o) is not None:
            return
        refs = fn(list(o["metadata"].get("ownerReferences") or []))
        if refs:
            o["metadata"]["ownerReferences"] = refs
        else:
            o["metadata"].pop("ownerReferences", None)

    try:
        stored = registry.mutate(kind, ns, name, edit)
    except (NotFound, Conflict):
        return None
    return stored


# ------------------------------------------------------------------------------ the collector


def dependent_kinds() -> list[str]:
    return [k.kind for k in BY_KIND.values() if k.kind not in SKIP]


class GarbageCollector:
    component = "garbage-collector"

    def __init__(self, registry: Registry, event: Event) -> None:
        self.registry = registry
        self.store = registry.store
        self.event = event

    def sync(self, now: Any = None) -> None:
        objs: list[Obj] = []
        for kind in dependent_kinds():
            try:
                objs += self.store.list(kind)
            except KubesvcError:
                continue
        live = {o["metadata"].get("uid") for o in objs}
        live |= {o["metadata"].get("uid") for k in SKIP if k in BY_KIND for o in self.store.list(k)}
        blocking: dict[str, int] = {}
        for o in objs:
            refs = o["metadata"].get("ownerReferences") or []
            if not refs:
                continue
            alive = [r for r in refs if r.get("uid") in live]
            for r in alive:
                if r.get("blockOwnerDeletion"):
                    blocking[r["uid"]] = blocking.get(r["uid"], 0) + 1
            if alive == refs:
                continue
            self._guard(self._collect, o, alive)
        for o in objs:
            meta = o["metadata"]
            if FOREGROUND in (meta.get("finalizers") or []) and meta.get("deletionTimestamp"):
                if not blocking.get(meta.get("uid", "")):
                    self._guard(self._finish_foreground, o)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except (NotFound, Conflict):
            pass
        except KubesvcError as e:
            log.warning("garbage collection failed", extra={"kv": {"object": args[0]["metadata"]["name"], "error": str(e)}})

    def _collect(self, obj: Obj, alive: list[Obj]) -> None:
        kind, meta = obj["kind"], obj["metadata"]
        ns = meta.get("namespace", "") if BY_KIND[kind].namespaced else ""
        if alive:
            uids = {r.get("uid") for r in alive}
            _edit_refs(self.registry, kind, obj, lambda refs: [r for r in refs if r.get("uid") in uids])
            return
        log.info("garbage collected", extra={"kv": {"kind": kind, "object": f"{ns}/{meta['name']}"}})
        self.registry.delete(kind, ns, meta["name"])

    def _finish_foreground(self, obj: Obj) -> None:
        kind, meta = obj["kind"], obj["metadata"]
        ns = meta.get("namespace", "") if BY_KIND[kind].namespaced else ""

        def drop(o: Obj) -> None:
            rest = [f for f in o["metadata"].get("finalizers") or [] if f != FOREGROUND]
            if rest:
                o["metadata"]["finalizers"] = rest
            else:
                o["metadata"].pop("finalizers", None)

        stored = self.registry.mutate(kind, ns, meta["name"], drop)
        if not stored["metadata"].get("finalizers"):
            self.registry.delete(kind, ns, meta["name"])


def without_refs_to(obj: Obj, uid: str) -> Obj:
    new = copy.deepcopy(obj)
    refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
    if refs:
        new["metadata"]["ownerReferences"] = refs
    else:
        new["metadata"].pop("ownerReferences", None)
    return new

"""What the apiserver does to an object, over the store: one named pipeline per write.

Create: decode (schema; strict/warn/ignore) -> namespace exists -> prepare_for_create -> defaults ->
validate -> allocate (Service addresses, Pod IP) -> persist -> controllers (endpoints), all inside one
write transaction, so parallel writers never hand out the same address and a failure leaves nothing.
Update: the resourceVersion check first (a stale one is a Conflict before any validation; "0" or none is
no precondition), then the same
with prepare_for_update/validate_update; an update that changes nothing writes nothing and keeps the
resourceVersion (``unchanged``: kubectl then prints ``(no change)``).
Dry runs execute the whole pipeline and roll the transaction back.
The CLI and (later) the API server call only this module for writes: they can never disagree.

Field ownership (``metadata.managedFields``, ``api.managedfields``) is the one hook every write passes:
after validation, before allocation, the writer (``manager=``: the request's fieldManager or its
User-Agent prefix, the CLI verb's kubectl name, else ``DEFAULT_MANAGER``) gets the fields it set or
changed; ``server_side_apply`` computes the merged object and its entries first and hands both to
the same pipeline. Status writes and bindings leave managedFields as they are.
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

from kubesvc.api.kinds import BY_KIND, Kind
from kubesvc.errors import BadRequest, Conflict, Invalid, NotFound

if TYPE_CHECKING:
    from kubesvc.config import Settings
    from kubesvc.store.db import Store, Txn

# The write pipeline's modules (schema, defaults, validation, allocation, controllers) are imported on
# first write: `get` never pays for them (CLI start-up is a feature).

@dataclass
class Result:
    object: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    action: str = "created"  # created | configured | unchanged | replaced


DEFAULT_MANAGER = "kubesvc"  # writes that name no manager (the built-in controllers)
CLIENT_SIDE_APPLY = "kubectl-client-side-apply"


def _now() -> str:
    from kubesvc.store.db import now_rfc3339

    return now_rfc3339()


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
                warnings = schema.unknown_field_warnings(report)
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

    def create(self, obj: dict[str, Any], *, dry_run: bool = False, validate: str = "strict",
               manager: str | None = None) -> Result:
        obj, warnings = self.decode(copy.deepcopy(obj), validate)
        stored = self._run(dry_run, lambda txn: self._create(txn, obj, manager))
        return Result(stored, warnings, "created")

    def replace(self, obj: dict[str, Any], *, dry_run: bool = False, validate: str = "strict",
                manager: str | None = None) -> Result:
        obj, warnings = self.decode(copy.deepcopy(obj), validate)

        def run(txn: Txn) -> dict[str, Any]:
            k = BY_KIND[obj["kind"]]
            meta = obj["metadata"]
            if k.namespaced:
                meta.setdefault("namespace", "default")
            old = txn.get(k.kind, meta.get("namespace", "") if k.namespaced else "", meta.get("name", ""))
            if old is None:
                raise NotFound(k.resource, meta.get("name", ""))
            return self._update(txn, obj, old, manager)

        return Result(self._run(dry_run, run), warnings, "replaced")

    def server_side_apply(self, obj: dict[str, Any], *, manager: str, force: bool = False, dry_run: bool = False,
                          validate: str = "strict") -> Result:
        """Server-side apply (``api.managedfields.apply``): create when missing, else merge ``obj`` into
        the live object with field ownership; ``ApplyConflict`` when another manager owns a changed field."""
        from kubesvc.api import managedfields as mf

        obj, warnings = self.decode(copy.deepcopy(obj), validate)
        meta = obj.get("metadata")
        if isinstance(meta, dict) and meta.get("managedFields") is not None:
            raise BadRequest("metadata.managedFields must be nil")

        def run(txn: Txn) -> Result:
            k = BY_KIND[obj["kind"]]
            meta = obj.setdefault("metadata", {})
            if k.namespaced:
                meta.setdefault("namespace", "default")
            live = txn.get(k.kind, meta.get("namespace", "") if k.namespaced else "", meta.get("name", ""))
            node = mf.schema_for(k.api_version, k.kind)
            now = _now()
            entries = mf.decode_entries((live or {}).get("metadata", {}).get("managedFields")) or []
            done = mf.apply(live, obj, node, entries, manager, k.api_version, now, force)
            managed = mf.encode_entries(done.entries)
            if live is None:
                return Result(self._create(txn, done.object, manager, managed), warnings, "created")
            if not done.changed and managed == live["metadata"].get("managedFields"):
                return Result(live, warnings, "unchanged")
            new = done.object
            new["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            return Result(self._update(txn, new, live, manager, managed), warnings, "configured")

        result: Result = self._run(dry_run, run)
        return result

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False, validate: str = "strict",
              manager: str | None = CLIENT_SIDE_APPLY) -> Result:
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
                return Result(self._create(txn, obj, manager), warnings, "created")
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
            return Result(self._update(txn, merged, live, manager), warnings, "configured")

        result: Result = self._run(dry_run, run)
        return result

    def mutate(self, kind: str, namespace: str, name: str, fn: Callable[[dict[str, Any]], None], *, dry_run: bool = False,
               manager: str | None = None) -> dict[str, Any]:
        """Read-modify-write of one object inside one transaction (label, annotate, scale)."""
        return self._read_modify_write(kind, namespace, name, fn, dry_run=dry_run, status_only=False, manager=manager)

    def update_status(self, kind: str, namespace: str, name: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Read-modify-write of ``status`` only (``prepare_for_status_update``): spec, labels and
        annotations stay as stored whatever ``fn`` does to them. Returns the stored object."""
        return self._read_modify_write(kind, namespace, name, fn, dry_run=False, status_only=True)

    def _read_modify_write(self, kind: str, namespace: str, name: str, fn: Callable[[dict[str, Any]], None], *,
                           dry_run: bool, status_only: bool, manager: str | None = None) -> dict[str, Any]:
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
                return self._update(txn, new, old, manager)
            stored = txn.update(new, check_version=True)
            self._after_write(txn, BY_KIND[kind], old, stored)
            return stored

        result: dict[str, Any] = self._run(dry_run, run)
        return result

    def delete(self, kind: str, namespace: str, name: str, *, dry_run: bool = False,
               propagation: str = "Background", grace_period: int | None = None, uid: str | None = None) -> dict[str, Any]:
        """Delete one object; its dependents (ownerReferences) go with it in the same transaction, or with
        ``propagation="Orphan"`` stay, with the reference to the deleted owner removed (as the garbage
        collector orphans them). ``Foreground`` keeps the owner (deletionTimestamp, ``foregroundDeletion``
        finalizer) until its blocking dependents are gone (``registry.gc``). An object with finalizers is
        only marked (deletionTimestamp). A Pod a live kubelet runs is deleted gracefully: marked with
        ``deletionTimestamp`` and ``deletionGracePeriodSeconds`` (``grace_period``, else its
        ``terminationGracePeriodSeconds``) until its kubelet, done stopping it, deletes it with grace 0
        (``registry.gc.mark_graceful``). ``uid``: the precondition (Conflict when the object is another)."""

        def run(txn: Txn) -> dict[str, Any]:
            from kubesvc.registry import gc

            k = BY_KIND[kind]
            current = txn.get(kind, namespace if k.namespaced else "", name)
            if current is None:
                raise NotFound(k.resource, name)
            if uid is not None and current["metadata"].get("uid") != uid:
                raise Conflict(k.resource, name)
            if propagation == "Orphan":
                gc.orphan(self, txn, current)
            elif propagation == "Foreground":
                return gc.foreground(self, txn, current)
            return self._delete(txn, kind, namespace, name, grace_period)

        result: dict[str, Any] = self._run(dry_run, run)
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
    # Each step asks the kind's strategy (kubesvc.registry.kinds): no per-kind branch lives here.

    def _create(self, txn: Txn, obj: dict[str, Any], manager: str | None = None,
                managed: builtins.list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """``managed``: entries computed already (server-side apply); else the creator's are recorded."""
        from kubesvc.registry import kinds

        k = BY_KIND[obj["kind"]]
        st = kinds.for_kind(k.kind)
        meta = obj.setdefault("metadata", {})
        requested = meta.get("managedFields")
        if k.namespaced:
            ns = meta.setdefault("namespace", "default")
            if txn.get("Namespace", "", ns) is None:
                raise NotFound("namespaces", ns)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        saved = st.user_status(obj)
        st.prepare_for_create(txn, obj)
        st.default(obj)
        errs = st.validate(obj)
        if errs:
            raise Invalid(k.kind, meta.get("name", ""), errs)
        st.restore_status(obj, None, saved)
        self._own(obj, None, requested, manager, managed)
        st.allocate(txn, obj, self.settings, None)
        stored = txn.create(obj)
        self._after_write(txn, k, None, stored)
        return stored

    def _update(self, txn: Txn, new: dict[str, Any], old: dict[str, Any], manager: str | None = None,
                managed: builtins.list[dict[str, Any]] | None = None) -> dict[str, Any]:
        from kubesvc.registry import kinds

        k = BY_KIND[new["kind"]]
        st = kinds.for_kind(k.kind)
        requested = new.setdefault("metadata", {}).get("managedFields")
        if k.namespaced:
            new["metadata"].setdefault("namespace", old["metadata"].get("namespace", "default"))
        given = new["metadata"].get("resourceVersion")
        if str(given) == "0":  # version 0 is no precondition: an unconditional update, as the apiserver's Store.Update
            del new["metadata"]["resourceVersion"]
            given = None
        if given and str(given) != str(old["metadata"].get("resourceVersion")):  # before validation, as GuaranteedUpdate
            raise Conflict(k.resource, new["metadata"].get("name", ""))
        saved = st.user_status(new)
        st.prepare_for_update(txn, new, old)
        st.default(new, old)
        errs = st.validate_update(new, old)
        if errs:
            raise Invalid(k.kind, new["metadata"].get("name", ""), errs)
        st.restore_status(new, old, saved)
        self._own(new, old, requested, manager, managed)
        st.allocate(txn, new, self.settings, old)
        if unchanged(new, old):  # nothing to write: the resourceVersion stays, no event, no hooks
            return old
        stored = txn.update(new, check_version=True)
        self._after_write(txn, k, old, stored)
        if stored["metadata"].get("deletionTimestamp") and old["metadata"].get("finalizers") \
                and not stored["metadata"].get("finalizers"):  # the last finalizer went: the object goes
            return self._delete(txn, k.kind, stored["metadata"].get("namespace", ""), stored["metadata"]["name"])
        return stored

    def _delete(self, txn: Txn, kind: str, namespace: str, name: str, grace_period: int | None = None) -> dict[str, Any]:
        from kubesvc.registry import kinds

        k = BY_KIND[kind]
        st = kinds.for_kind(kind)
        ns = namespace if k.namespaced else ""
        current = txn.get(kind, ns, name)
        if current is None:
            raise NotFound(k.resource, name)
        if current["metadata"].get("finalizers"):
            from kubesvc.registry import gc

            return gc.mark_deleting(self, txn, current)
        period = st.grace_period(self, current, grace_period)
        if period > 0:
            from kubesvc.registry import gc

            return gc.mark_graceful(self, txn, current, period)
        st.before_delete(self, txn, current)
        old = txn.delete(kind, ns, name)
        st.after_delete(self, txn, old)
        from kubesvc.registry import gc

        gc.background(self, txn, old)  # dependents of any kind (ownerReferences), as the garbage collector
        self._after_write(txn, k, old, None)
        return old

    @staticmethod
    def _own(obj: dict[str, Any], old: dict[str, Any] | None, requested: Any, manager: str | None,
             managed: builtins.list[dict[str, Any]] | None) -> None:
        """The field-ownership hook: ``metadata.managedFields`` of the object about to be stored."""
        from kubesvc.api import managedfields as mf

        if managed is None:
            who = manager or DEFAULT_MANAGER
            if old is None:
                managed = mf.on_create(obj, requested, who, _now())
            else:
                managed = mf.on_update(old, obj, requested, who, _now())
        if managed:
            obj["metadata"]["managedFields"] = managed
        else:
            obj["metadata"].pop("managedFields", None)

    def _after_write(self, txn: Txn, k: Kind, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """The kind's hooks that run inside the write (the endpoints controller, LB events...)."""
        from kubesvc.registry import kinds

        kinds.for_kind(k.kind).after_write(self, txn, old, new)


def unchanged(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether an update writes nothing new (the apiserver compares the encoded objects after
    prepare and defaulting): the metadata the store sets (resourceVersion, uid, creationTimestamp)
    and the times of managedFields entries are not compared."""

    def norm(obj: dict[str, Any]) -> dict[str, Any]:
        out = dict(obj)
        meta = dict(out.get("metadata") or {})
        for key in ("resourceVersion", "uid", "creationTimestamp"):
            meta.pop(key, None)
        if isinstance(meta.get("managedFields"), list):
            meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e
                                     for e in meta["managedFields"]]
        out["metadata"] = meta
        return out

    return norm(new) == norm(old)

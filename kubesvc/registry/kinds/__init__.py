"""Per-kind strategies of the registry's write pipeline, as kube-apiserver's ``pkg/registry/<group>/<kind>/strategy.go``.

Rules kept here:
- ``Strategy`` is the protocol and the default for plain kinds: the generic metadata and status rules
  (``api.strategy``), the kind's defaults (``api.defaults``) and validation (``api.validation``), no
  allocation and no hook. A kind with more to do has a subclass in a module of this package, named
  for its group (``core``, ``apps``...), listed in that module's ``STRATEGIES``.
- Adding a kind is adding its Kind row, its schema, its rules in ``api`` and, if it needs any of the
  hooks below, a class in a module here: modules are found by walking this package, nothing else
  names them.
- Hooks run inside the write transaction, in the pipeline's order (``registry.generic``):
  create: ``prepare_for_create`` -> ``default`` -> ``validate`` -> ``restore_status`` -> ``allocate`` -> store -> ``after_write``;
  update: ``prepare_for_update`` -> ``default`` -> ``validate_update`` -> ``restore_status`` -> ``allocate`` -> store -> ``after_write``;
  delete: ``before_delete`` -> store -> ``after_delete`` (release) -> dependents (``registry.gc``) -> ``after_write``.
- Modules are imported on first write: ``get`` never pays for them.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, ClassVar

from kubesvc.api.field import FieldError

if TYPE_CHECKING:
    from kubesvc.config import Settings
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Txn

Obj = dict[str, Any]


class Strategy:
    """The default strategy (plain kinds); subclasses override the hooks they need."""

    kinds: ClassVar[tuple[str, ...]] = ()
    # Kinds whose objects usually name an object of this kind in ownerReferences (documentation only:
    # ``registry.gc`` finds dependents of every kind).
    dependents: ClassVar[tuple[str, ...]] = ()

    def prepare_for_create(self, txn: Txn, obj: Obj) -> None:
        from kubesvc.api import strategy

        strategy.prepare_for_create(obj)

    def prepare_for_update(self, txn: Txn, new: Obj, old: Obj) -> None:
        from kubesvc.api import strategy

        strategy.prepare_for_update(new, old)

    def default(self, obj: Obj, old: Obj | None = None) -> None:
        from kubesvc.api import defaults

        defaults.apply_defaults(obj, old)

    def validate(self, obj: Obj) -> list[FieldError]:
        from kubesvc.api import validation

        return validation.validate(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        from kubesvc.api import validation

        return validation.validate_update(new, old)

    def allocate(self, txn: Txn, obj: Obj, settings: Settings, old: Obj | None) -> None:
        """Addresses and ports the object needs, after validation (errors raise Invalid)."""

    def grace_period(self, registry: Registry, obj: Obj, requested: int | None) -> int:
        """Seconds of graceful deletion (``CheckGracefulDelete``): 0 removes the object at once, more only
        marks it (``deletionTimestamp``) for whoever finishes it (Pod: the kubelet)."""
        return 0

    def before_delete(self, registry: Registry, txn: Txn, obj: Obj) -> None:
        """Refuse the delete (Forbidden) or take contents with it, before the object goes."""

    def after_delete(self, registry: Registry, txn: Txn, old: Obj) -> None:
        """Release what the object held. Its dependents (ownerReferences, any kind) are the registry's
        garbage collection's (``registry.gc``), after this hook."""

    def after_write(self, registry: Registry, txn: Txn, old: Obj | None, new: Obj | None) -> None:
        """Controllers that run inside the write (old None: created; new None: deleted)."""

    def user_status(self, obj: Obj) -> Obj | None:
        """The status a manifest carried, saved before ``prepare_*``, for kinds that keep it (Pod)."""
        return None

    def restore_status(self, obj: Obj, old: Obj | None, saved: Obj | None) -> None:
        """After validation, before allocation: put back what ``user_status`` saved."""


DEFAULT = Strategy()
_BY_KIND: dict[str, Strategy] = {}


def _load() -> None:
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for cls in getattr(module, "STRATEGIES", ()):
            instance = cls()
            for kind in cls.kinds:
                _BY_KIND[kind] = instance


def for_kind(kind: str) -> Strategy:
    """The strategy of ``kind`` (the default one for plain kinds)."""
    if not _BY_KIND:
        _load()
    return _BY_KIND.get(kind, DEFAULT)

"""``--dry-run=client`` for the -f verbs: what kubectl would send, computed without writing anything.

Rules kept here (kubectl ``create.go``, ``apply.go`` with ``DryRunClient``):
- The object printed is the manifest after client-side processing only: decoded against the schema (unknown
  fields per --validate), namespace filled by the resource builder. No server defaults, no allocated
  addresses, no uid or resourceVersion, no AlreadyExists.
- ``create`` never reads the store. ``apply`` reads the live object, as kubectl GETs it: absent, the object
  is "created" with its last-applied annotation; present, kubectl reports "configured" and prints the live
  object unchanged. A store that does not exist is read as empty and is never created.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubesvc.registry.generic import Registry, Result


def decode(obj: dict[str, Any], validate: str) -> tuple[dict[str, Any], list[str]]:
    """The schema check every write starts with; it reads no store."""
    from kubesvc.registry.generic import Registry

    return Registry.decode(None, copy.deepcopy(obj), validate)  # type: ignore[arg-type]


def create(obj: dict[str, Any], validate: str) -> Result:
    from kubesvc.registry.generic import Result

    decoded, warnings = decode(obj, validate)
    return Result(decoded, warnings, "created")


def apply(reg: Registry | None, obj: dict[str, Any], validate: str) -> Result:
    from kubesvc.api import apply as applylib
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.registry.generic import Result

    decoded, warnings = decode(obj, validate)
    k = BY_KIND[decoded["kind"]]
    meta = decoded.setdefault("metadata", {})
    live = None
    if reg is not None:
        live = reg.store.get(k.kind, meta.get("namespace", "") if k.namespaced else "", meta.get("name", ""))
    if live is not None:
        return Result(live, warnings, "configured")
    meta.setdefault("annotations", {})[applylib.LAST_APPLIED] = applylib.last_applied_annotation(decoded)
    return Result(decoded, warnings, "created")

"""Response bodies built from stored objects (pure): lists and server-side Tables.

Rules kept here:
- Table columns and cells come from ``kubesvc.api.tables`` (``columns(kind)``, ``row(obj, now)``): the
  very cells ``kubesvc get`` prints, so ``kubectl get`` against the API prints the same text.
- ``rows[].object`` is PartialObjectMetadata by default, the full object for ``includeObject=Object``
  and absent for ``includeObject=None``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubesvc.api import tables
from kubesvc.api.kinds import Kind

TABLE_ACCEPT = "as=Table"


def with_type(obj: dict[str, Any], k: Kind) -> dict[str, Any]:
    """Objects always leave with kind and apiVersion (kubectl fails on a reply without them)."""
    if obj.get("kind") != k.kind or obj.get("apiVersion") != k.api_version:
        obj = {"apiVersion": k.api_version, "kind": k.kind, **{x: y for x, y in obj.items() if x not in ("apiVersion", "kind")}}
    return obj


def list_body(k: Kind, items: list[dict[str, Any]], rev: int, cont: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rev)}
    if cont:
        meta["continue"] = cont
    return {"kind": f"{k.kind}List", "apiVersion": k.api_version, "metadata": meta,
            "items": [with_type(o, k) for o in items]}


_DESCRIPTIONS = {"Name": "Name must be unique within a namespace. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
                 "Age": "CreationTimestamp is a timestamp representing the server time when this object was created."}


def column_definitions(kind: str) -> list[dict[str, Any]]:
    return [{"name": c.name, "type": "string", "format": "name" if c.name == "Name" else "",
             "description": _DESCRIPTIONS.get(c.name, c.name), "priority": c.priority}
            for c in tables.columns(kind)]


def _row_object(obj: dict[str, Any], k: Kind, include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return with_type(obj, k)
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table(k: Kind, items: list[dict[str, Any]], rev: int | None, now: datetime, include: str = "Metadata",
          cont: str = "", columns: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if rev is not None:
        meta["resourceVersion"] = str(rev)
    if cont:
        meta["continue"] = cont
    rows = []
    for obj in items:
        typed = with_type(obj, k)
        row: dict[str, Any] = {"cells": tables.row(typed, now)}
        ro = _row_object(typed, k, include)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": column_definitions(k.kind) if columns else None, "rows": rows}

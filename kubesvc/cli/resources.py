"""Complete step shared by -f commands: manifests -> (object, source) with kinds and namespaces checked.

Rules (kubectl's resource builder): every object needs apiVersion and kind; kinds map or fail with the
mapping error; an object's namespace must agree with an explicit -n; objects without one take -n or
``default``; cluster-scoped kinds drop any namespace. Any of these errors fails the whole command
before anything is written (the store is unchanged).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubesvc.api import kinds
from kubesvc.api.manifests import read_sources
from kubesvc.errors import ClientError


@dataclass
class Item:
    obj: dict[str, Any]
    source: str
    kind: kinds.Kind

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")


def load(filenames: list[str] | None, recursive: bool, ns: str, explicit: bool, verb: str) -> list[Item]:
    if not filenames:
        raise ClientError("must specify one of -f and -k")
    manifests = read_sources(filenames, recursive)
    if not manifests:
        raise ClientError(f"no objects passed to {verb}")
    items: list[Item] = []
    for m in manifests:
        obj = m.obj
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not kind or not isinstance(kind, str):
            raise ClientError(f"unable to decode \"{m.source}\": Object 'Kind' is missing in '{_compact(obj)}'")
        if not api_version or not isinstance(api_version, str):
            raise ClientError(f"unable to decode \"{m.source}\": Object 'apiVersion' is missing in '{_compact(obj)}'")
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise ClientError(
                f"unable to decode \"{m.source}\": json: cannot unmarshal {type(meta).__name__} into Go struct field "
                f"Object.metadata of type map[string]interface {{}}"
            )
        name = meta.get("name") if isinstance(meta.get("name"), str) else ""
        k = kinds.for_object(api_version, kind, m.source, name or "", str(meta.get("namespace") or ""))
        if k.namespaced:
            obj_ns = meta.get("namespace")
            if obj_ns and not isinstance(obj_ns, str):
                raise ClientError(f'unable to decode "{m.source}": metadata.namespace must be a string')
            if obj_ns and explicit and obj_ns != ns:
                raise ClientError(
                    f'the namespace from the provided object "{obj_ns}" does not match the namespace "{ns}". '
                    f"You must pass '--namespace={obj_ns}' to perform this operation."
                )
            meta["namespace"] = obj_ns or ns
        else:
            meta.pop("namespace", None)
        items.append(Item(obj, m.source, k))
    return items


def _compact(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)[:500]

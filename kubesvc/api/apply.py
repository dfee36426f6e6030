"""Client-side apply: the last-applied annotation, the three-way strategic merge patch, and
applying a strategic merge patch (apimachinery ``strategicpatch``, kubectl ``apply/patcher.go``).

Rules kept here:
- The annotation holds the applied object as Go's ``json.Encoder`` writes it: compact, keys sorted,
  ``<>&`` escaped, a trailing newline, and ``metadata.annotations`` present (``{}`` when the only
  annotation was the last-applied one). The caller sets ``metadata.namespace`` first, as kubectl's
  builder does.
- ``three_way_patch(original, modified, current)`` = deletions (original -> modified: keys removed
  become ``null``, list elements removed become ``{"$patch": "delete", <key>}``) merged with the
  delta (current -> modified, deletions ignored). Fields only the server set (clusterIP, status,
  nodePort...) are never touched. Lists of maps merge by key (table below); other lists are
  replaced whole. ``$setElementOrder/<list>`` carries modified's order whenever the list changes.
- kubesvc keys ``ports`` by (port, protocol) and container ports by (containerPort, protocol) so
  that 53/TCP and 53/UDP are two elements (Kubernetes merges by the first field alone). A patch
  element names the protocol when it is not TCP or when the port number is shared; an element
  without a protocol that matches nothing exactly falls back to the first element with that
  number, so patches written by kubectl itself still apply.
- ``{}`` is returned when applying the patch would leave ``current`` unchanged (a bare
  ``$setElementOrder`` is not a change), so re-applying the same file reports ``unchanged``.
- ``apply_strategic_patch`` understands ``null`` (delete key), ``$patch: delete|replace`` in list
  elements and maps, ``$setElementOrder/``, ``$deleteFromPrimitiveList/`` and ``$retainKeys``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubesvc.errors import BadRequest

__all__ = [
    "LAST_APPLIED",
    "last_applied_annotation",
    "with_last_applied",
    "original_configuration",
    "three_way_patch",
    "apply_strategic_patch",
]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_PATCH = "$patch"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_RETAIN = "$retainKeys"


# ---------------------------------------------------------------------------------------------
# The last-applied annotation.


def _go_json(value: Any) -> str:
    """``encoding/json`` output: compact, sorted keys, HTML-safe escapes, raw non-ASCII."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text


def last_applied_annotation(obj: Mapping[str, Any]) -> str:
    """The annotation value kubectl stores for ``obj`` (the annotation itself left out)."""
    body = copy.deepcopy(dict(obj))
    meta = body.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    meta["annotations"] = annotations
    return _go_json(body) + "\n"


def with_last_applied(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` carrying its own last-applied annotation: kubectl's "modified" object."""
    out = copy.deepcopy(dict(obj))
    value = last_applied_annotation(out)
    out.setdefault("metadata", {}).setdefault("annotations", {})
    if out["metadata"]["annotations"] is None:
        out["metadata"]["annotations"] = {}
    out["metadata"]["annotations"][LAST_APPLIED] = value
    return out


def original_configuration(current: Mapping[str, Any]) -> dict[str, Any] | None:
    """The object recorded in ``current``'s annotation, or None when there is none."""
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(LAST_APPLIED)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise BadRequest(f"error decoding the {LAST_APPLIED} annotation: {e}") from None
    return value if isinstance(value, dict) else None


# ---------------------------------------------------------------------------------------------
# Which lists merge, and by what key.


@dataclass(frozen=True)
class _ListKey:
    fields: tuple[str, ...]
    defaults: tuple[Any, ...]

    def identity(self, elem: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(_norm(elem.get(f, d)) for f, d in zip(self.fields, self.defaults, strict=True))

    def primary(self, elem: Mapping[str, Any]) -> Any:
        return _norm(elem.get(self.fields[0]))

    def lacks_secondary(self, elem: Mapping[str, Any]) -> bool:
        return all(f not in elem for f in self.fields[1:])

    def key_dict(self, elem: Mapping[str, Any], ambiguous: bool) -> dict[str, Any]:
        """The fields naming ``elem`` in a patch: the primary key, plus the others when needed."""
        out = {self.fields[0]: elem.get(self.fields[0])}
        for f, d in zip(self.fields[1:], self.defaults[1:], strict=True):
            value = elem.get(f, d)
            if ambiguous or value != d:
                out[f] = value
        return out


def _norm(v: Any) -> Any:
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


_BY_NAME = _ListKey(("name",), (None,))
_SERVICE_PORTS = _ListKey(("port", "protocol"), (None, "TCP"))
_CONTAINER_PORTS = _ListKey(("containerPort", "protocol"), (None, "TCP"))
_POD_LISTS = {
    "containers": _BY_NAME,
    "initContainers": _BY_NAME,
    "ephemeralContainers": _BY_NAME,
    "volumes": _BY_NAME,
    "imagePullSecrets": _BY_NAME,
    "resourceClaims": _BY_NAME,
    "schedulingGates": _BY_NAME,
    "hostAliases": _ListKey(("ip",), (None,)),
}
_CONTAINER_LISTS = {
    "ports": _CONTAINER_PORTS,
    "env": _BY_NAME,
    "volumeMounts": _ListKey(("mountPath",), (None,)),
    "volumeDevices": _ListKey(("devicePath",), (None,)),
}
_POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_TEMPLATE_SPEC = ("spec", "template", "spec")


def _list_key(kind: str, path: tuple[str, ...]) -> _ListKey | None:
    """The merge key of the list at ``path`` (map keys from the root), None when replaced whole."""
    if not path:
        return None
    parent, name = path[:-1], path[-1]
    if kind == "Service" and path == ("spec", "ports"):
        return _SERVICE_PORTS
    if path == ("metadata", "ownerReferences"):
        return _ListKey(("uid",), (None,))
    if name == "conditions" and parent[:1] == ("status",):
        return _ListKey(("type",), (None,))
    pod = _POD_SPEC_PATHS.get(kind, _TEMPLATE_SPEC)
    if parent == pod and name in _POD_LISTS:
        return _POD_LISTS[name]
    if parent[:-1] == pod and parent[-1:] and parent[-1] in ("containers", "initContainers", "ephemeralContainers"):
        return _CONTAINER_LISTS.get(name)
    return None


# ---------------------------------------------------------------------------------------------
# Value helpers.


def _type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "list"
    return type(v).__name__


def _equal(a: Any, b: Any) -> bool:
    """Deep equality with JSON types (bool is not a number; 1 == 1.0)."""
    ta, tb = _type(a), _type(b)
    if ta != tb:
        return False
    if ta == "map":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if ta == "list":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _is_directive_key(k: str) -> bool:
    return k == _PATCH or k == _RETAIN or k.startswith(_ORDER) or k.startswith(_DELETE_PRIMITIVE)


def _clean(v: Any) -> Any:
    """A patch value entering the object as is: directives and nulls dropped, recursively."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if x is not None and not _is_directive_key(k)}
    if isinstance(v, list):
        return [_clean(x) for x in v if not (isinstance(x, dict) and x.get(_PATCH) == "delete")]
    return v


def _all_maps(*lists: list[Any]) -> bool:
    return all(isinstance(e, dict) for lst in lists for e in lst)


# ---------------------------------------------------------------------------------------------
# Diff (strategicpatch diffMaps / diffListsOfMaps).


@dataclass(frozen=True)
class _Diff:
    kind: str
    ignore_deletions: bool
    ignore_changes: bool


def _diff_maps(original: Mapping[str, Any], modified: Mapping[str, Any], path: tuple[str, ...], o: _Diff) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, mv in modified.items():
        if key not in original:
            if not o.ignore_changes:
                patch[key] = copy.deepcopy(mv)
            continue
        ov = original[key]
        if _type(ov) != _type(mv):
            if not o.ignore_changes:
                patch[key] = copy.deepcopy(mv)
            continue
        if isinstance(ov, dict):
            sub = _diff_maps(ov, mv, path + (key,), o)
            if sub:
                patch[key] = sub
        elif isinstance(ov, list):
            lk = _list_key(o.kind, path + (key,))
            if lk is not None and _all_maps(ov, mv):
                items, order = _diff_lists(ov, mv, lk, path + (key,), o)
                if items:
                    patch[key] = items
                if order:
                    patch[_ORDER + key] = order
            elif not o.ignore_changes and not _equal(ov, mv):
                patch[key] = copy.deepcopy(mv)
        elif not o.ignore_changes and not _equal(ov, mv):
            patch[key] = copy.deepcopy(mv)
    if not o.ignore_deletions:
        for key in original:
            if key not in modified:
                patch[key] = None
    return patch


def _ambiguous(lk: _ListKey, *lists: list[dict[str, Any]]) -> set[Any]:
    """Primary key values held by more than one distinct element (53/TCP and 53/UDP)."""
    seen: dict[Any, set[tuple[Any, ...]]] = {}
    for lst in lists:
        for e in lst:
            seen.setdefault(lk.primary(e), set()).add(lk.identity(e))
    return {p for p, ids in seen.items() if len(ids) > 1}


def _diff_lists(
    original: list[dict[str, Any]], modified: list[dict[str, Any]], lk: _ListKey, path: tuple[str, ...], o: _Diff
) -> tuple[list[Any], list[Any]]:
    shared = _ambiguous(lk, original, modified)
    by_identity: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in original:
        by_identity.setdefault(lk.identity(e), e)
    modified_ids = {lk.identity(e) for e in modified}
    items: list[Any] = []
    for me in modified:
        oe = by_identity.get(lk.identity(me))
        if oe is not None:
            sub = _diff_maps(oe, me, path, o)
            if sub:
                sub.update(lk.key_dict(me, lk.primary(me) in shared))
                items.append(sub)
        elif not o.ignore_changes:
            added = copy.deepcopy(me)
            if lk.primary(me) in shared:
                added.update(lk.key_dict(me, True))
            items.append(added)
    if not o.ignore_deletions:
        gone = [e for e in by_identity.values() if lk.identity(e) not in modified_ids]
        gone.sort(key=lambda e: str(e.get(lk.fields[0])))  # Go sorts by the key's %v text
        for e in gone:
            items.append({_PATCH: "delete", **lk.key_dict(e, lk.primary(e) in shared)})
    order_same = [lk.identity(e) for e in original] == [lk.identity(e) for e in modified]
    order: list[Any] = []
    if (not o.ignore_changes and (items or not order_same)) or (not o.ignore_deletions and items):
        order = [lk.key_dict(e, lk.primary(e) in shared) for e in modified]
    return items, order


def _merge_patches(a: dict[str, Any], b: dict[str, Any], path: tuple[str, ...], kind: str) -> dict[str, Any]:
    """Combine the deletions patch ``a`` with the delta patch ``b`` (they never conflict)."""
    out = dict(a)
    for k, bv in b.items():
        av = out.get(k)
        if k not in out or k.startswith(_ORDER):
            out[k] = bv
        elif isinstance(av, dict) and isinstance(bv, dict):
            out[k] = _merge_patches(av, bv, path + (k,), kind)
        elif isinstance(av, list) and isinstance(bv, list) and (lk := _list_key(kind, path + (k,))) is not None:
            out[k] = _merge_patch_lists(av, bv, lk, path + (k,), kind, out.get(_ORDER + k) or b.get(_ORDER + k))
        else:
            out[k] = bv
    return out


def _merge_patch_lists(
    a: list[Any], b: list[Any], lk: _ListKey, path: tuple[str, ...], kind: str, order: list[Any] | None
) -> list[Any]:
    directives = [e for e in a if _PATCH in e]
    merged = [e for e in a if _PATCH not in e]
    for be in b:
        i = next((n for n, e in enumerate(merged) if lk.identity(e) == lk.identity(be)), -1)
        if i >= 0:
            merged[i] = _merge_patches(merged[i], be, path, kind)
        else:
            merged.append(be)
    if order:
        rank = {lk.identity(e): n for n, e in enumerate(order)}
        merged.sort(key=lambda e: rank.get(lk.identity(e), len(rank)))
    return merged + directives


def three_way_patch(
    original: Mapping[str, Any] | None, modified: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, Any]:
    """The strategic merge patch ``kubectl apply`` sends; ``{}`` when nothing would change.

    ``original`` is the last-applied object (None when the live object has no annotation),
    ``modified`` the new file object carrying its own annotation (see ``with_last_applied``),
    ``current`` the live object.
    """
    kind = str(modified.get("kind") or current.get("kind") or "")
    delta = _diff_maps(current, modified, (), _Diff(kind, ignore_deletions=True, ignore_changes=False))
    deletions = _diff_maps(original or {}, modified, (), _Diff(kind, ignore_deletions=False, ignore_changes=True))
    patch = _merge_patches(deletions, delta, (), kind)
    if not patch or _equal(apply_strategic_patch(current, patch), dict(current)):
        return {}
    return patch


# ---------------------------------------------------------------------------------------------
# Apply (strategicpatch mergeMap / mergeSlice with MergeParallelList and IgnoreUnmatchedNulls).


def apply_strategic_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with the strategic merge ``patch`` applied (neither argument is changed)."""
    kind = str(current.get("kind") or patch.get("kind") or "")
    if not isinstance(patch, Mapping):
        raise BadRequest("the patch is not a JSON object")
    return _merge_map(copy.deepcopy(dict(current)), patch, (), kind)


def _merge_map(original: dict[str, Any], patch: Mapping[str, Any], path: tuple[str, ...], kind: str) -> dict[str, Any]:
    directive = patch.get(_PATCH)
    if directive is not None:
        if directive == "replace":
            return _clean({k: v for k, v in patch.items() if k != _PATCH})
        if directive == "delete":
            return {}
        raise BadRequest(f"Unknown patch type: {directive} in map: {json.dumps(patch, sort_keys=True)}")
    result = dict(original)
    retain = patch.get(_RETAIN)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    done: set[str] = set()
    for k, order in patch.items():
        if not k.startswith(_ORDER):
            continue
        name = k[len(_ORDER):]
        if not isinstance(order, list):
            raise BadRequest(f"invalid type for {k}: expected a list")
        lk = _list_key(kind, path + (name,))
        if name not in result and name not in patch:
            continue
        live = result.get(name)
        if not isinstance(live, list):
            live = []
        incoming = patch.get(name)
        if not isinstance(incoming, list):
            incoming = []
        result[name] = _merge_list(live, incoming, lk, path + (name,), kind, order)
        done.add(name)
    for k, pv in patch.items():
        if k.startswith(_DELETE_PRIMITIVE):
            name = k[len(_DELETE_PRIMITIVE):]
            if isinstance(result.get(name), list) and isinstance(pv, list):
                result[name] = [x for x in result[name] if not any(_equal(x, d) for d in pv)]
            continue
        if _is_directive_key(k) or k in done:
            continue
        if pv is None:
            result.pop(k, None)
            continue
        ov = result.get(k)
        if k not in result or _type(ov) != _type(pv):
            result[k] = _clean(pv)
        elif isinstance(ov, dict):
            result[k] = _merge_map(ov, pv, path + (k,), kind)
        elif isinstance(ov, list):
            result[k] = _merge_list(ov, pv, _list_key(kind, path + (k,)), path + (k,), kind, None)
        else:
            result[k] = pv
    return result


def _matches(items: list[dict[str, Any]], elem: Mapping[str, Any], lk: _ListKey, taken: set[int]) -> list[int]:
    """Indexes of the elements ``elem`` names: exact key matches, else (no protocol given) the
    elements with the same number."""
    ident = lk.identity(elem)
    found = [i for i, e in enumerate(items) if i not in taken and lk.identity(e) == ident]
    if not found and len(lk.fields) > 1 and lk.lacks_secondary(elem):
        primary = lk.primary(elem)
        found = [i for i, e in enumerate(items) if i not in taken and lk.primary(e) == primary]
    return found


def _find(items: list[dict[str, Any]], elem: Mapping[str, Any], lk: _ListKey, taken: set[int] | None = None) -> int:
    found = _matches(items, elem, lk, taken or set())
    return found[0] if found else -1


def _merge_list(
    live: list[Any], patch: list[Any], lk: _ListKey | None, path: tuple[str, ...], kind: str, order: list[Any] | None
) -> list[Any]:
    if lk is None or not _all_maps(live, patch):
        if order is not None and not patch:
            return live
        return _clean(patch)
    items = [copy.deepcopy(e) for e in live]
    regular: list[dict[str, Any]] = []
    replace = False
    for pe in patch:
        directive = pe.get(_PATCH)
        if directive is None:
            regular.append(pe)
        elif directive == "delete":
            doomed = set(_matches(items, pe, lk, set()))
            items = [e for i, e in enumerate(items) if i not in doomed]
        elif directive == "replace":
            replace = True
        else:
            raise BadRequest(f"Unknown patch type: {directive} in map: {json.dumps(pe, sort_keys=True)}")
    if replace:
        return [_clean(e) for e in regular]
    for pe in regular:
        i = _find(items, pe, lk)
        if i >= 0:
            items[i] = _merge_map(items[i], pe, path, kind)
        else:
            items.append(_clean(pe))
    # Order: the items the patch names follow the patch (or $setElementOrder); the others keep
    # their live positions as far as possible (strategicpatch normalizeElementOrder).
    entries = order if order is not None else regular
    taken: set[int] = set()
    named: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        i = _find(items, entry, lk, taken)
        if i >= 0:
            taken.add(i)
            named.append(items[i])
    server_only = [e for i, e in enumerate(items) if i not in taken]
    live_ids = [lk.identity(e) for e in live if isinstance(e, dict)]

    def live_index(e: Mapping[str, Any]) -> int:
        ident = lk.identity(e)
        return live_ids.index(ident) if ident in live_ids else -1

    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(named):
        if i >= len(server_only):
            out.append(named[j])
            j += 1
        elif j >= len(named):
            out.append(server_only[i])
            i += 1
        else:
            li, ri = live_index(server_only[i]), live_index(named[j])
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(named[j])
                j += 1
    return out

"""``metadata.managedFields``: who owns which field, and server-side apply, as kube-apiserver's field
manager (structured-merge-diff v4, ``k8s.io/apimachinery/pkg/util/managedfields``) keeps them.

Pure: objects and entries in, objects and entries out. The registry calls ``on_create``/``on_update``
inside its write pipeline and ``apply`` for server-side apply; nothing here knows about the store.

Rules kept here:
- A field set is a Python set of paths; a path is a tuple of FieldsV1 elements: ``f:<name>`` for a
  struct field or map key, ``k:{"port":80,"protocol":"TCP"}`` for an item of an associative list
  (keys sorted, compact JSON), ``v:<json>`` for an item of a set list, ``i:<n>`` for a list the
  schema does not key. FieldsV1 is the trie of those paths; ``.`` marks a node that is itself a
  member and has children. Every operation is linear in the size of the objects and sets.
- List semantics come from the kinds' JSON Schemas (``schemas/``) plus the table below, which copies
  upstream's Go tags (``listType``/``listMapKeys``, or ``patchStrategy: merge`` + ``patchMergeKey``,
  which the SMD schema converter reads the same way); every other list is atomic, and so are the
  structs and maps tagged ``structType``/``mapType=atomic`` (LabelSelector, Service ``spec.selector``...).
- Update (create, PUT, non-apply PATCH): the fields the write added or changed go to the writer's
  ``Update`` entry (time stamped) and leave every other entry; removed fields leave every entry; an
  entry left with nothing goes. Create compares against the kind's Go zero value, so structs Go
  always has (``metadata``, ``spec``, ``spec.template``...) are not members of their own.
- An update of an object without managedFields records nothing (upstream's skip-non-applied
  manager), and a request whose managedFields is ``[]`` or ``[{}]`` resets them; a request that
  carries other managedFields has them taken as the starting point (kubectl's CSA->SSA migration).
- Apply: the applied configuration is merged into the live object (structs and maps recursively,
  associative lists by key, set lists by value, anything else replaced); fields the applier applied
  last time and no longer applies are removed unless another manager owns them; fields another
  manager owns and this apply changes are conflicts (409, upstream's wording) unless forced, in
  which case they move to the applier. An object without managedFields first has all its fields
  given to ``before-first-apply`` (Update). For the manager ``kubectl``, conflicts on fields whose
  live value still equals the last-applied annotation are forced (the CSA->SSA upgrade), and the
  annotation, when present, is rewritten to the applied configuration.
- Never owned: apiVersion, kind, metadata name/namespace/uid/resourceVersion/generation/
  creationTimestamp/selfLink/managedFields, and ``status`` (reset by the main resource's strategy).
- Entries are sorted as the apiserver encodes them: operation, time, apiVersion, manager.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubesvc.errors import KubesvcError

Path = tuple[str, ...]
FieldSet = set[Path]
Obj = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
MAX_MANAGER_LENGTH = 128

# (Go struct, field) -> list-map keys (a tuple) or () for a set; lists not named here are atomic.
LIST_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ObjectMeta", "finalizers"): (),
    ("ObjectMeta", "ownerReferences"): ("uid",),
    ("ServiceSpec", "ports"): ("port", "protocol"),
    ("ServiceStatus", "conditions"): ("type",),
    ("PodSpec", "volumes"): ("name",),
    ("PodSpec", "initContainers"): ("name",),
    ("PodSpec", "containers"): ("name",),
    ("PodSpec", "ephemeralContainers"): ("name",),
    ("PodSpec", "imagePullSecrets"): ("name",),
    ("PodSpec", "hostAliases"): ("ip",),
    ("PodSpec", "topologySpreadConstraints"): ("topologyKey", "whenUnsatisfiable"),
    ("PodSpec", "schedulingGates"): ("name",),
    ("PodSpec", "resourceClaims"): ("name",),
    ("PodStatus", "conditions"): ("type",),
    ("PodStatus", "podIPs"): ("ip",),
    ("PodStatus", "hostIPs"): ("ip",),
    ("NamespaceStatus", "conditions"): ("type",),
    ("ReplicationControllerStatus", "conditions"): ("type",),
    ("NodeStatus", "conditions"): ("type",),
    ("NodeStatus", "addresses"): ("type",),
    ("NodeSpec", "podCIDRs"): (),
    ("DeploymentStatus", "conditions"): ("type",),
    ("ReplicaSetStatus", "conditions"): ("type",),
    ("StatefulSetStatus", "conditions"): ("type",),
    ("DaemonSetStatus", "conditions"): ("type",),
    ("JobStatus", "conditions"): ("type",),
    ("PodDisruptionBudgetStatus", "conditions"): ("type",),
    ("HorizontalPodAutoscalerStatus", "conditions"): ("type",),
}
for _c in ("Container", "EphemeralContainer"):
    LIST_KEYS[(_c, "ports")] = ("containerPort", "protocol")
    LIST_KEYS[(_c, "env")] = ("name",)
    LIST_KEYS[(_c, "volumeMounts")] = ("mountPath",)
    LIST_KEYS[(_c, "volumeDevices")] = ("devicePath",)
# Key fields the schema defaults (SMD fills a missing key from its default).
KEY_DEFAULTS = {"protocol": "TCP"}
ATOMIC_STRUCTS = frozenset({"LabelSelector", "NodeSelector", "NodeSelectorTerm", "ObjectReference",
                            "LocalObjectReference", "ConfigMapKeySelector", "SecretKeySelector",
                            "ObjectFieldSelector", "ResourceFieldSelector", "TypedLocalObjectReference"})
ATOMIC_MAPS = frozenset({("ServiceSpec", "selector"), ("ReplicationControllerSpec", "selector")})

_STRIPPED: frozenset[Path] = frozenset({("f:apiVersion",), ("f:kind",), ("f:metadata",)} | {
    ("f:metadata", f"f:{k}") for k in ("name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
                                       "generation", "managedFields", "resourceVersion")})
_IGNORED_ROOTS = frozenset({"f:status", "f:apiVersion", "f:kind"})

_TEMPLATE = {"metadata": {"creationTimestamp": None}, "spec": {"containers": None}}
# The Go zero value of each kind as the apiserver's converter writes it (non-pointer structs and
# non-omitempty fields present): what a create is compared with.
_ZERO: dict[str, Obj] = {
    "Pod": {"spec": {"containers": None}},
    "PodTemplate": {"template": _TEMPLATE},
    "Service": {"status": {"loadBalancer": {}}},
    "Ingress": {"status": {"loadBalancer": {}}},
    "Deployment": {"spec": {"selector": None, "template": _TEMPLATE, "strategy": {}}},
    "ReplicaSet": {"spec": {"selector": None, "template": _TEMPLATE}},
    "StatefulSet": {"spec": {"selector": None, "template": _TEMPLATE, "updateStrategy": {}}},
    "DaemonSet": {"spec": {"selector": None, "template": _TEMPLATE, "updateStrategy": {}}},
    "Job": {"spec": {"template": _TEMPLATE}},
    "CronJob": {"spec": {"jobTemplate": {"metadata": {"creationTimestamp": None}, "spec": {"template": _TEMPLATE}}}},
}


def zero_object(kind: str) -> Obj:
    out: Obj = {"metadata": {"creationTimestamp": None}, "spec": {}, "status": {}}
    for key, value in _ZERO.get(kind, {}).items():
        out[key] = {**out.get(key, {}), **copy.deepcopy(value)}
    return out


# --------------------------------------------------------------------------------------------- schema


class Node:
    """What the walkers need of a schema node: struct fields, map values, list items and semantics."""

    __slots__ = ("kind", "name", "fields", "item", "list_keys", "atomic")

    def __init__(self, kind: str, name: str = "") -> None:
        self.kind = kind  # struct | map | list | leaf
        self.name = name
        self.fields: dict[str, Node] = {}
        self.item: Node | None = None
        self.list_keys: tuple[str, ...] | None = None  # None: atomic list
        self.atomic = False


LEAF = Node("leaf")
_NODES: dict[tuple[str, str], Node] = {}


def schema_for(api_version: str, kind: str) -> Node:
    """The kind's schema tree (built once from ``schemas/`` through ``api.schema``)."""
    key = (api_version, kind)
    found = _NODES.get(key)
    if found is None:
        from kubesvc.api import schema

        try:
            root = schema._root(api_version, kind)
        except KeyError:
            found = Node("struct")
            found.atomic = False
        else:
            found = _convert(root, {}, schema)
        _NODES[key] = found
    return found


def _convert(src: Any, memo: dict[int, Node], schema: Any, parent: str = "", fname: str = "") -> Node:
    if src.kind == schema._STRUCT:
        found = memo.get(id(src))
        if found is not None:
            return found
        node = memo[id(src)] = Node("struct", src.name)
        node.atomic = src.name in ATOMIC_STRUCTS
        node.fields = {k: _convert(v, memo, schema, src.name, k) for k, v in src.fields.items()}
        return node
    if src.kind == schema._MAP:
        node = Node("map")
        node.atomic = (parent, fname) in ATOMIC_MAPS
        node.item = _convert(src.item, memo, schema) if src.item is not None else LEAF
        return node
    if src.kind == schema._ARRAY:
        node = Node("list")
        node.list_keys = LIST_KEYS.get((parent, fname))
        node.item = _convert(src.item, memo, schema) if src.item is not None else LEAF
        return node
    return LEAF


# ---------------------------------------------------------------------------------------- path elements


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _item_element(node: Node, item: Any, index: int) -> str:
    keys = node.list_keys
    if keys is None:
        return f"i:{index}"
    if not keys:
        return "v:" + _compact(item)
    if not isinstance(item, dict):
        return f"i:{index}"
    found = {}
    for k in keys:
        if k in item and item[k] is not None:
            found[k] = item[k]
        elif k in KEY_DEFAULTS:
            found[k] = KEY_DEFAULTS[k]
    return "k:" + _compact(found)


def _items(node: Node, value: Any) -> dict[str, Any]:
    return {_item_element(node, item, i): item for i, item in enumerate(value)} if isinstance(value, list) else {}


def _is_leaf(node: Node, value: Any) -> bool:
    if node.kind == "leaf" or node.atomic:
        return True
    if node.kind in ("struct", "map"):
        return not isinstance(value, dict)
    return node.list_keys is None or not isinstance(value, list)


def _child(node: Node, key: str) -> Node | None:
    """The node of ``key`` under a struct or map (None: a field the schema does not know)."""
    if node.kind == "map":
        return node.item
    return node.fields.get(key)


# ------------------------------------------------------------------------------------------- field sets


def field_set(obj: Any, node: Node) -> FieldSet:
    """SMD's ``ToFieldSet``: leaves, list items, map entries and empty structs are members."""
    out: FieldSet = set()
    _to_set(obj, node, (), out)
    return out


def _to_set(value: Any, node: Node, path: Path, out: FieldSet) -> None:
    if path and _is_leaf(node, value):
        out.add(path)
        return
    if node.kind in ("struct", "map") and isinstance(value, dict):
        is_map = node.kind == "map"
        for k, v in value.items():
            p = (*path, "f:" + k)
            child = _child(node, k)
            if child is None or is_map or v is None or (isinstance(v, dict) and not v):
                out.add(p)
            _to_set(v, child or LEAF, p, out)
    elif node.kind == "list" and isinstance(value, list):
        item_node = node.item or LEAF
        for pe, item in _items(node, value).items():
            p = (*path, pe)
            out.add(p)
            _to_set(item, item_node, p, out)


def _subtree(value: Any, node: Node, path: Path, out: FieldSet) -> None:
    """Every node of a subtree that appeared or went (the merge walker's Added/Removed)."""
    out.add(path)
    if _is_leaf(node, value):
        return
    if node.kind in ("struct", "map") and isinstance(value, dict):
        for k, v in value.items():
            _subtree(v, _child(node, k) or LEAF, (*path, "f:" + k), out)
    elif node.kind == "list" and isinstance(value, list):
        for pe, item in _items(node, value).items():
            _subtree(item, node.item or LEAF, (*path, pe), out)


@dataclass
class Comparison:
    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)


def compare(old: Any, new: Any, node: Node) -> Comparison:
    """SMD's ``TypedValue.Compare``: what a write added, changed (leaves) and removed."""
    c = Comparison()
    _compare(old, new, node, (), c)
    return c


def _compare(a: Any, b: Any, node: Node, path: Path, c: Comparison) -> None:
    if node.kind != "leaf" and not node.atomic:  # a Go nil slice or map compares as an empty one
        if a is None and isinstance(b, dict | list):
            a = type(b)()
        elif b is None and isinstance(a, dict | list):
            b = type(a)()
    if _is_leaf(node, a) or _is_leaf(node, b):
        if path and a != b:
            c.modified.add(path)
        return
    if node.kind in ("struct", "map"):
        a = a if isinstance(a, dict) else {}
        b = b if isinstance(b, dict) else {}
        for k, v in b.items():
            child = _child(node, k) or LEAF
            p = (*path, "f:" + k)
            if k in a:
                _compare(a[k], v, child, p, c)
            else:
                _subtree(v, child, p, c.added)
        for k, v in a.items():
            if k not in b:
                _subtree(v, _child(node, k) or LEAF, (*path, "f:" + k), c.removed)
        return
    item_node = node.item or LEAF
    ai, bi = _items(node, a), _items(node, b)
    for pe, v in bi.items():
        if pe in ai:
            _compare(ai[pe], v, item_node, (*path, pe), c)
        else:
            _subtree(v, item_node, (*path, pe), c.added)
    for pe, v in ai.items():
        if pe not in bi:
            _subtree(v, item_node, (*path, pe), c.removed)


def owned(paths: Iterable[Path]) -> FieldSet:
    """The paths a manager may own: no type/identity metadata, nothing under status."""
    return {p for p in paths if p not in _STRIPPED and p[0] not in _IGNORED_ROOTS
            and p[:2] != ("f:metadata", "f:managedFields")}


# --------------------------------------------------------------------------------------------- FieldsV1


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """The FieldsV1 trie of a set: a member with children carries ``.``, a member leaf is ``{}``."""
    root: dict[str, Any] = {}
    for p in paths:
        n = root
        for el in p:
            n = n.setdefault(el, {})
        n["."] = {}
    return _finish(root)


def _finish(n: dict[str, Any]) -> dict[str, Any]:
    if set(n) == {"."}:
        return {}
    return {k: (v if k == "." else _finish(v)) for k, v in sorted(n.items())}


def decode_fields(fields: Any) -> FieldSet:
    """A FieldsV1 object back to its set; ValueError when it is not one."""
    out: FieldSet = set()
    if not isinstance(fields, dict):
        raise ValueError("fieldsV1 must be an object")
    _decode(fields, (), out)
    return out


def _decode(n: dict[str, Any], path: Path, out: FieldSet) -> None:
    for k, v in n.items():
        if k == ".":
            if path:
                out.add(path)
            continue
        if not isinstance(v, dict) or k[:2] not in ("f:", "k:", "v:", "i:"):
            raise ValueError(f"invalid fieldsV1 element {k!r}")
        p = (*path, k)
        if not v:
            out.add(p)
        else:
            _decode(v, p, out)


# ---------------------------------------------------------------------------------------------- entries


@dataclass
class Entry:
    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: str | None
    fields: FieldSet
    subresource: str = ""

    @property
    def ident(self) -> tuple[str, str, str, str]:
        # appliers are one entry whatever the version they applied (upstream BuildManagerIdentifier)
        return (self.manager, self.operation, "" if self.operation == "Apply" else self.api_version, self.subresource)

    def label(self) -> str:
        """How a conflict names the manager (upstream printManager, identifiers carry no time)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        return f"{text} using {self.api_version}" if self.operation == "Update" else text


def decode_entries(raw: Any) -> list[Entry] | None:
    """The stored (or requested) entries; None when they cannot be read (then: ignored)."""
    if not isinstance(raw, list):
        return None
    out: list[Entry] = []
    try:
        for e in raw:
            if not isinstance(e, dict) or e.get("operation") not in ("Apply", "Update"):
                return None
            if e.get("fieldsType", "FieldsV1") != "FieldsV1":
                return None
            out.append(Entry(str(e.get("manager") or ""), e["operation"], str(e.get("apiVersion") or ""),
                             e.get("time"), decode_fields(e.get("fieldsV1") or {}), str(e.get("subresource") or "")))
    except ValueError:
        return None
    return out


def is_reset(raw: Any) -> bool:
    """``managedFields: []`` or ``[{}]`` in a request clears them (upstream isResetManagedFields)."""
    return isinstance(raw, list) and (len(raw) == 0 or (len(raw) == 1 and raw[0] in ({}, None)))


def encode_entries(entries: list[Entry]) -> list[dict[str, Any]]:
    def order(e: Entry) -> tuple[str, str, str, str]:
        return (e.operation, e.time or "", e.api_version, e.manager)

    out = []
    for e in sorted(entries, key=order):
        d: dict[str, Any] = {"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version}
        if e.time:
            d["time"] = e.time
        d["fieldsType"] = "FieldsV1"
        d["fieldsV1"] = encode_fields(e.fields)
        if e.subresource:
            d["subresource"] = e.subresource
        out.append(d)
    return out


def starting_entries(requested: Any, live: Any) -> list[Entry]:
    """upstream decodeLiveOrNew: a reset, the request's own entries when readable and not empty, else live's."""
    if is_reset(requested):
        return []
    mine = decode_entries(requested)
    if mine:
        return mine
    return decode_entries(live) or []


def record_update(entries: list[Entry], old: Any, new: Any, node: Node, manager: str, api_version: str, now: str,
                  subresource: str = "") -> list[Entry]:
    """The entries after ``manager`` wrote ``new`` over ``old`` (an Update operation)."""
    c = compare(old, new, node)
    changed = owned(c.added | c.modified)
    removed = owned(c.removed)
    ident = (manager, "Update", api_version, subresource)
    mine: Entry | None = None
    out: list[Entry] = []
    for e in entries:
        if changed or removed:
            e = Entry(e.manager, e.operation, e.api_version, e.time, e.fields - changed - removed, e.subresource)
        if e.ident == ident:
            mine = e
        out.append(e)
    if changed:
        if mine is None:
            mine = Entry(manager, "Update", api_version, now, set(), subresource)
            out.append(mine)
        mine.fields |= changed
        mine.time = now
    return [e for e in out if e.fields]


# ------------------------------------------------------------------------------------------------ apply


class ApplyConflict(KubesvcError):
    """Fields another manager owns that the apply would change (HTTP 409, upstream's wording)."""

    reason = "Conflict"
    code = 409

    def __init__(self, conflicts: list[tuple[Entry, Path]]) -> None:
        self.conflicts = conflicts
        super().__init__(self.text())

    def text(self) -> str:
        """upstream getConflictMessage."""
        if len(self.conflicts) == 1:
            e, p = self.conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {e.label()}: {path_string(p)}"
        by: dict[str, list[Path]] = {}
        for e, p in self.conflicts:
            by.setdefault(e.label(), []).append(p)
        lines = []
        for label in sorted(by):
            lines.append(f"conflicts with {label}:")
            lines.extend(f"- {path_string(p)}" for p in by[label])
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        return [{"type": "FieldManagerConflict", "message": f"conflict with {e.label()}", "field": path_string(p)}
                for e, p in self.conflicts]


def _go_value(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if isinstance(v, int | float) else _compact(v)


def path_string(path: Path) -> str:
    """fieldpath.Path.String: ``.spec.ports[port=80,protocol="TCP"].targetPort``."""
    parts = []
    for el in path:
        tag, body = el[:2], el[2:]
        if tag == "f:":
            parts.append("." + body)
        elif tag == "k:":
            keys = json.loads(body)
            parts.append("[" + ",".join(f"{k}={_go_value(v)}" for k, v in sorted(keys.items())) + "]")
        elif tag == "v:":
            parts.append(f"[={_go_value(json.loads(body))}]")
        else:
            parts.append(f"[{body}]")
    return "".join(parts)


def merge(live: Any, config: Any, node: Node) -> Any:
    """SMD's merge of an applied configuration into the live object."""
    if config is None:
        return copy.deepcopy(live)
    if _is_leaf(node, config) or _is_leaf(node, live) or live is None:
        return copy.deepcopy(config)
    if node.kind in ("struct", "map"):
        out = dict(live)
        for k, v in config.items():
            out[k] = merge(live.get(k), v, _child(node, k) or LEAF) if k in live else copy.deepcopy(v)
        return out
    item_node = node.item or LEAF
    lhs, rhs = list(_items(node, live).items()), list(_items(node, config).items())
    rkeys = {pe for pe, _ in rhs}
    lmap = dict(lhs)
    done: set[str] = set()
    result: list[Any] = []
    li = ri = 0
    while li < len(lhs) or ri < len(rhs):
        if li < len(lhs) and ri < len(rhs) and lhs[li][0] == rhs[ri][0]:
            result.append(merge(lhs[li][1], rhs[ri][1], item_node))
            done.add(rhs[ri][0])
            li, ri = li + 1, ri + 1
            continue
        if li < len(lhs):
            pe = lhs[li][0]
            if pe not in rkeys:
                result.append(copy.deepcopy(lhs[li][1]))
                li += 1
                continue
            if pe in done:
                li += 1
                continue
        if ri < len(rhs):
            pe, item = rhs[ri]
            result.append(merge(lmap[pe], item, item_node) if pe in lmap else copy.deepcopy(item))
            done.add(pe)
            ri += 1
        else:
            li += 1
    return result


def _delete(obj: Any, path: Path, node: Node) -> None:
    """Remove the node at ``path`` from ``obj`` (in place), if it is there."""
    cur, n = obj, node
    for el in path[:-1]:
        cur, n = _step(cur, n, el)
        if cur is None:
            return
    last = path[-1]
    if last.startswith("f:") and isinstance(cur, dict):
        cur.pop(last[2:], None)
    elif isinstance(cur, list):
        for i, item in enumerate(cur):
            if _item_element(n, item, i) == last:
                del cur[i]
                return


def _step(cur: Any, n: Node, el: str) -> tuple[Any, Node]:
    if el.startswith("f:"):
        if not isinstance(cur, dict):
            return None, LEAF
        return cur.get(el[2:]), _child(n, el[2:]) or LEAF
    if isinstance(cur, list):
        for i, item in enumerate(cur):
            if _item_element(n, item, i) == el:
                return item, n.item or LEAF
    return None, LEAF


def _get(obj: Any, path: Path, node: Node) -> Any:
    cur, n = obj, node
    for el in path:
        cur, n = _step(cur, n, el)
        if cur is None:
            return None
    return cur


def _prefixes(paths: Iterable[Path]) -> set[Path]:
    out: set[Path] = set()
    for p in paths:
        for i in range(1, len(p) + 1):
            out.add(p[:i])
    return out


def _is_key_field(p: Path) -> bool:
    """A key field of a list item (``port`` under ``k:{"port":80,...}``): it goes only with its item."""
    return len(p) > 1 and p[-2].startswith("k:") and p[-1].startswith("f:") and p[-1][2:] in json.loads(p[-2][2:])


def prune(merged: Any, dropped: FieldSet, keep: FieldSet, node: Node) -> None:
    """Remove (in place) what the applier dropped and nobody else owns; a struct field left empty
    by that goes too (SMD's EnsureNamedFieldsAreMembers), other untracked values stay."""
    kept = _prefixes(keep)
    for p in sorted(dropped, key=len):  # parents first: a list item is found by its key fields
        if p not in kept and not _is_key_field(p):
            _delete(merged, p, node)
    implied = {p[:i] for p in dropped for i in range(1, len(p)) if p[i - 1].startswith("f:")} - dropped - kept
    for p in sorted(implied, key=len, reverse=True):
        value = _get(merged, p, node)
        if value is not None and not value and isinstance(value, dict | list):
            _delete(merged, p, node)


def _strip_meta(obj: Obj) -> Obj:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def allowed_by_last_applied(live: Obj, node: Node) -> FieldSet:
    """Fields of the last-applied annotation whose live value is still the applied one: the
    conflicts ``kubectl`` may take over when a client-side-applied object is first server-side applied."""
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return set()
    try:
        last = json.loads(raw)
    except ValueError:
        return set()
    if not isinstance(last, dict):
        return set()
    c = compare(last, live, node)
    return owned(field_set(last, node)) - c.modified - c.removed


def last_applied_value(config: Obj) -> str:
    """upstream buildLastApplied: the applied object without the annotation, as Go's encoder writes it."""
    from kubesvc.api.apply import _go_json

    body = copy.deepcopy(config)
    meta = body.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED, None)
        if not meta["annotations"]:
            del meta["annotations"]
    return _go_json(body) + "\n"


@dataclass
class Applied:
    object: Obj
    entries: list[Entry]
    changed: bool


def apply(live: Obj | None, config: Obj, node: Node, entries: list[Entry], manager: str, api_version: str, now: str,
          force: bool = False) -> Applied:
    """Server-side apply of ``config`` by ``manager`` onto ``live`` (None: the object is created).
    Raises ApplyConflict. The result carries no managedFields: the caller stores ``entries``."""
    kind = str(config.get("kind", ""))
    base = _strip_meta(live) if live is not None else zero_object(kind)
    if not entries and live is not None:
        entries = record_update([], zero_object(kind), base, node, BEFORE_FIRST_APPLY, api_version, now)
    merged = merge(base, config, node) if live is not None else copy.deepcopy(config)
    new_set = owned(field_set(config, node))
    prev = next((e for e in entries if e.ident == (manager, "Apply", "", "")), None)
    others = [e for e in entries if e is not prev]
    if prev is not None and prev.fields - new_set:
        keep = set(new_set)
        for e in others:
            keep |= e.fields
        prune(merged, prev.fields - new_set, keep, node)
    c = compare(base, merged, node)
    changed = owned(c.added | c.modified)
    removed = owned(c.removed)
    conflicts = [(e, p) for e in others for p in sorted(e.fields & changed)]
    if conflicts and not force:
        allowed = allowed_by_last_applied(base, node) if manager == "kubectl" and live is not None else set()
        left = [(e, p) for e, p in conflicts if p not in allowed]
        if left:
            raise ApplyConflict(left)
    if manager == "kubectl" and live is not None and LAST_APPLIED in ((base.get("metadata") or {}).get("annotations") or {}):
        # upstream lastAppliedUpdater, outside the ownership computation: the annotation keeps its owner
        merged.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = last_applied_value(config)
    out = []
    for e in others:
        out.append(Entry(e.manager, e.operation, e.api_version, e.time, e.fields - changed - removed, e.subresource))
    differs = merged != base
    time = now if differs or prev is None else prev.time
    out.append(Entry(manager, "Apply", api_version, time, new_set))
    return Applied(merged, [e for e in out if e.fields], differs)


# ----------------------------------------------------------------------------------------- manager names


def manager_from_user_agent(user_agent: str) -> str:
    """upstream prefixFromUserAgent: the User-Agent before its first '/', printable characters, 128 bytes."""
    out = ""
    size = 0
    for ch in user_agent.split("/")[0]:
        if not _printable(ch):
            continue
        n = len(ch.encode("utf-8"))
        if size + n > MAX_MANAGER_LENGTH:
            break
        out += ch
        size += n
    return out


def _printable(ch: str) -> bool:
    """Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space."""
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def manager_errors(manager: str) -> list[str]:
    """upstream ValidateFieldManager, as field error details for ``fieldManager``."""
    errs = []
    if len(manager) > MAX_MANAGER_LENGTH:
        errs.append(f"fieldManager: Too long: may not be more than {MAX_MANAGER_LENGTH} bytes")
    for i, ch in enumerate(manager):
        if not _printable(ch):
            errs.append(f"fieldManager: Invalid value: {json.dumps(manager)}: invalid character U+{ord(ch):04X} (at position {i})")
    return errs


# ------------------------------------------------------------------------------------------ the hooks


def on_create(obj: Obj, requested: Any, manager: str, now: str) -> list[dict[str, Any]]:
    """managedFields of a created object (``requested``: what the request carried)."""
    node = schema_for(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    start = [] if is_reset(requested) else (decode_entries(requested) or [])
    return encode_entries(record_update(start, zero_object(str(obj.get("kind", ""))), _strip_meta(obj), node, manager,
                                        str(obj.get("apiVersion", "")), now))


def on_update(old: Obj, new: Obj, requested: Any, manager: str, now: str) -> list[dict[str, Any]]:
    """managedFields of an updated object: nothing recorded when there were none (skip-non-applied)."""
    start = starting_entries(requested, (old.get("metadata") or {}).get("managedFields"))
    if not start:
        return []
    node = schema_for(str(new.get("apiVersion", "")), str(new.get("kind", "")))
    return encode_entries(record_update(start, _strip_meta(old), _strip_meta(new), node, manager,
                                        str(new.get("apiVersion", "")), now))

"""Schema checks that speak the apiserver's JSON decoder.

The JSON Schemas in ``schemas/`` (draft 2020-12, one file per kind plus ``_defs.json`` and
``_pod.json``) are compiled once per kind into a small tree that is walked in document order.
They are package data (``kubesvc/schemas`` links to the top-level ``schemas/``, their source of truth) and
are read with ``importlib.resources``, so a wheel installed anywhere finds them.

Rules kept here:
- A struct is an object schema with ``properties``; its ``title`` is the Go type name. With
  ``additionalProperties: false`` every other key is an unknown field, reported as the strict
  decoder names it: ``spec.ports[0].nodeport`` (indices kept, names case-sensitive).
- A wrong JSON type is Go's ``UnmarshalTypeError``: ``json: cannot unmarshal <string|number|bool|
  object|array> into Go struct field <Struct>.<json path without indices> of type <Go type>``,
  where Struct is the struct holding the field and map keys are not part of the path. A number
  that does not fit an integer field shows its literal (``number 1.5``).
- ``null`` is accepted anywhere (Go leaves the zero value); an integral float is an integer
  (kubectl re-encodes ``80.0`` as ``80``).
- Custom unmarshalers keep Go's wording: IntOrString errors say ``int32``; Quantity gives
  ``ParseQuantity``'s errors; Time/MicroTime say ``string`` then ``time.Parse``'s errors; ``[]byte``
  gives ``illegal base64 data at input byte N``. Such an error stops Go's decoder and so wins over
  an earlier plain type error (``first_decode_error``).
- ``$ref`` is ``[file]#/$defs/Name``; refs are resolved here without importing jsonschema or
  referencing (the tests check every file with both), so a create pays a few ms, not 35.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from kubesvc.api.field import go_quote
from kubesvc.api.kinds import BY_KIND

SCHEMA_DIR: Traversable = files("kubesvc") / "schemas"

_STRUCT, _MAP, _ARRAY, _STRING, _BOOL, _INT, _FLOAT, _INTSTR, _QUANTITY, _TIME, _BYTES, _ANY = range(12)
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"


@dataclass
class SchemaReport:
    """What the decoder would say about one object, in document order."""

    unknown: list[str] = field(default_factory=list)
    decode_errors: list[str] = field(default_factory=list)
    fatal: int | None = None  # index of the first error that stops Go's decoder

    @property
    def clean(self) -> bool:
        return not self.unknown and not self.decode_errors

    @property
    def first_decode_error(self) -> str | None:
        """The error the apiserver reports: the first aborting one, else the first type error."""
        if self.fatal is not None:
            return self.decode_errors[self.fatal]
        return self.decode_errors[0] if self.decode_errors else None

    def _type(self, value: Any, struct: str, gopath: str, gotype: str) -> None:
        self.decode_errors.append(_type_error(_json_kind(value), struct, gopath, gotype))

    def _abort(self, message: str) -> None:
        if self.fatal is None:
            self.fatal = len(self.decode_errors)
        self.decode_errors.append(message)


class _Node:
    __slots__ = ("kind", "go", "name", "fields", "strict", "item", "layout")

    def __init__(self) -> None:
        self.kind = _ANY
        self.go = ""
        self.name = ""
        self.fields: dict[str, _Node] = {}
        self.strict = False
        self.item: _Node | None = None
        self.layout = ""


def schema_file(api_version: str, kind: str) -> Traversable:
    """``schemas/v1.Service.json``, ``schemas/apps.v1.Deployment.json``; KeyError for unknown kinds."""
    k = BY_KIND.get(kind)
    if k is None or k.api_version != api_version:
        raise KeyError(f"{api_version}/{kind}")
    return SCHEMA_DIR / f"{api_version.replace('/', '.')}.{kind}.json"


def check(obj: dict[str, Any]) -> SchemaReport:
    """Unknown fields and decode errors of one object, as the apiserver's strict decoder sees them."""
    root = _root(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    report = SchemaReport()
    _walk(root, obj, "", "", root.name, report)
    return report


def drop_unknown(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``obj`` without its unknown fields (``--validate=false``)."""
    root = _root(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    pruned: dict[str, Any] = _prune(root, obj)
    return pruned


def zero_nulls(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as Go's decoder leaves it: a ``null`` field is absent (nil pointer or zero value), a
    ``null`` list item or map value is the zero value of its type (``hosts: [null]`` is ``[""]``).
    Lone UTF-16 surrogates in strings become U+FFFD, as Go's decoder makes them. In place; returns obj."""
    root = _root(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    _zero(root, obj)
    return obj


_ZERO: dict[int, Any] = {_STRING: "", _BOOL: False, _INT: 0, _FLOAT: 0, _INTSTR: 0, _QUANTITY: "0"}


def _zero_of(node: _Node | None) -> Any:
    if node is None:
        return None
    if node.kind in (_STRUCT, _MAP):
        return {}
    if node.kind == _ARRAY:
        return []
    return _ZERO.get(node.kind)


def _clean_str(v: str) -> str:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in v)
    return v


def _zero(node: _Node | None, v: Any) -> None:
    kind = node.kind if node is not None else _ANY
    if type(v) is dict:
        fields = node.fields if node is not None and kind == _STRUCT else None
        item = node.item if node is not None and kind == _MAP else None
        for key in list(v):
            sub = v[key]
            clean = _clean_str(key)
            if clean is not key and clean != key:
                del v[key]
                v[clean] = sub
                key = clean
            child = fields.get(key) if fields is not None else item
            if sub is None:
                if fields is not None:
                    del v[key]
                elif item is not None:
                    zero = _zero_of(item)
                    if zero is not None:
                        v[key] = zero
            elif type(sub) is str:
                v[key] = _clean_str(sub)
            elif type(sub) in (dict, list):
                _zero(child, sub)
    elif type(v) is list:
        item = node.item if node is not None and kind == _ARRAY else None
        for i, x in enumerate(v):
            if x is None:
                zero = _zero_of(item)
                if zero is not None:
                    v[i] = zero
            elif type(x) is str:
                v[i] = _clean_str(x)
            elif type(x) in (dict, list):
                _zero(item, x)


def bad_request_message(obj: dict[str, Any], report: SchemaReport) -> str | None:
    """The BadRequest text for a report (decode errors win over unknown fields); None if clean."""
    kind = str(obj.get("kind", ""))
    version = str(obj.get("apiVersion", "")).rsplit("/", 1)[-1]
    head = f"{kind} in version {go_quote(version)} cannot be handled as a {kind}: "
    first = report.first_decode_error
    if first is not None:
        return head + first
    if report.unknown:
        return head + "strict decoding error: " + ", ".join(unknown_field_warnings(report))
    return None


def unknown_field_warnings(report: SchemaReport) -> list[str]:
    """``unknown field "spec.foo"`` per unknown field (also kubectl's ``--validate=warn`` text)."""
    return [f"unknown field {go_quote(p)}" for p in report.unknown]


# --- compiling -------------------------------------------------------------------------------

_ROOTS: dict[tuple[str, str], _Node] = {}
_DOCS: dict[str, dict[str, Any]] = {}
_MEMO: dict[str, _Node] = {}
_LOCK = threading.Lock()  # a half-built tree must never be walked by another thread


def _root(api_version: str, kind: str) -> _Node:
    key = (api_version, kind)
    node = _ROOTS.get(key)
    if node is None:
        path = schema_file(api_version, kind)
        with _LOCK:
            node = _ROOTS.get(key) or _compile({"$ref": f"{path.name}#"}, path.name)
            _ROOTS[key] = node
    return node


def _doc(name: str) -> dict[str, Any]:
    doc = _DOCS.get(name)
    if doc is None:
        doc = json.loads(SCHEMA_DIR.joinpath(name).read_text(encoding="utf-8"))
        _DOCS[name] = doc
    return doc


def _compile(schema: dict[str, Any], base: str) -> _Node:
    ref = schema.get("$ref")
    if ref is None:
        node = _Node()
        _fill(node, schema, base)
        return node
    file, _, pointer = ref.partition("#")
    file = file or base
    key = f"{file}#{pointer}"
    found = _MEMO.get(key)
    if found is None:
        target: Any = _doc(file)
        for part in filter(None, pointer.split("/")):
            target = target[part]
        found = _MEMO[key] = _Node()  # registered before filling: refs may recurse
        _fill(found, target, file)
    return found


def _fill(node: _Node, schema: dict[str, Any], base: str) -> None:
    title = schema.get("title", "")
    kind = schema.get("type")
    if title in ("Time", "MicroTime"):
        node.kind, node.go = _TIME, "string"
        node.layout = RFC3339 if title == "Time" else RFC3339_MICRO
    elif title == "IntOrString":
        node.kind, node.go = _INTSTR, "int32"
    elif title == "Quantity":
        node.kind, node.go = _QUANTITY, "resource.Quantity"
    elif schema.get("contentEncoding") == "base64":
        node.kind, node.go = _BYTES, "[]uint8"
    elif kind == "object" and "properties" in schema:
        node.kind, node.name, node.go = _STRUCT, title, f"v1.{title}"
        node.strict = schema.get("additionalProperties", True) is False
        node.fields = {k: _compile(v, base) for k, v in schema["properties"].items()}
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        node.kind = _MAP
        node.item = _compile(schema["additionalProperties"], base)
        node.go = schema.get("x-go-type") or f"map[string]{node.item.go}"
    elif kind == "array":
        node.kind = _ARRAY
        node.item = _compile(schema["items"], base)
        node.go = f"[]{node.item.go}"
    elif kind == "string":
        node.kind, node.go = _STRING, schema.get("x-go-type", "string")
    elif kind == "boolean":
        node.kind, node.go = _BOOL, "bool"
    elif kind == "integer":
        node.kind, node.go = _INT, schema.get("format", "int64")
    elif kind == "number":
        node.kind, node.go = _FLOAT, "float64"
    else:
        node.kind, node.go = _ANY, schema.get("x-go-type", "interface {}")


# --- walking ---------------------------------------------------------------------------------


def _walk(node: _Node, v: Any, path: str, gopath: str, struct: str, rep: SchemaReport) -> None:
    if v is None:
        return
    kind = node.kind
    t = type(v)
    if kind == _STRUCT:
        if t is not dict:
            rep._type(v, struct, gopath, node.go)
            return
        fields = node.fields
        name = node.name
        for key, sub in v.items():
            child = fields.get(key)
            if child is None:
                if node.strict:
                    rep.unknown.append(f"{path}.{key}" if path else key)
                continue
            if child.kind == _STRING and type(sub) is str:
                continue  # the common leaf, checked without a call
            _walk(child, sub, f"{path}.{key}" if path else key, f"{gopath}.{key}" if gopath else key, name, rep)
    elif kind == _STRING:
        if t is not str:
            rep._type(v, struct, gopath, node.go)
    elif kind == _INT:
        what = _int_problem(v, node.go)
        if what:
            rep.decode_errors.append(_type_error(what, struct, gopath, node.go))
    elif kind == _ARRAY:
        if t is not list:
            rep._type(v, struct, gopath, node.go)
            return
        item = node.item
        assert item is not None
        if item.kind == _STRING:
            for x in v:
                if type(x) is not str and x is not None:
                    rep._type(x, struct, gopath, item.go)
            return
        for i, x in enumerate(v):
            _walk(item, x, f"{path}[{i}]", gopath, struct, rep)
    elif kind == _MAP:
        if t is not dict:
            rep._type(v, struct, gopath, node.go)
            return
        item = node.item
        assert item is not None
        for key, x in v.items():
            if item.kind == _STRING and type(x) is str:
                continue
            _walk(item, x, f"{path}.{key}", gopath, struct, rep)
    elif kind == _BOOL:
        if t is not bool:
            rep._type(v, struct, gopath, "bool")
    elif kind == _INTSTR:
        what = None if t is str else _int_problem(v, "int32")
        if what:  # IntOrString.UnmarshalJSON's error stops the decoder
            rep._abort(_type_error(what, struct, gopath, "int32"))
    elif kind == _QUANTITY:
        text = v if t is str else json.dumps(v)
        problem = parse_quantity_error(text.strip())
        if problem:
            rep._abort(problem)
    elif kind == _TIME:
        if t is not str:
            rep._abort(f"json: cannot unmarshal {_json_kind(v)} into Go struct field {struct}.{gopath} of type string")
        else:
            problem = go_time_error(v, node.layout)
            if problem:
                rep._abort(problem)
    elif kind == _BYTES:
        if t is str:
            at = base64_error_at(v.encode("utf-8"))
            if at is not None:
                rep.decode_errors.append(f"illegal base64 data at input byte {at}")
        elif t is not list:
            rep._type(v, struct, gopath, "[]uint8")
    elif kind == _FLOAT and (t is bool or t not in (int, float)):
        rep._type(v, struct, gopath, "float64")


def _prune(node: _Node, v: Any) -> Any:
    kind = node.kind
    if kind == _STRUCT and type(v) is dict:
        out = {}
        for key, sub in v.items():
            child = node.fields.get(key)
            if child is not None:
                out[key] = _prune(child, sub)
            elif not node.strict:
                out[key] = copy.deepcopy(sub)
        return out
    if kind == _ARRAY and type(v) is list and node.item is not None:
        return [_prune(node.item, x) for x in v]
    if kind == _MAP and type(v) is dict and node.item is not None:
        return {k: _prune(node.item, x) for k, x in v.items()}
    return copy.deepcopy(v) if isinstance(v, (dict, list)) else v


def _type_error(what: str, struct: str, gopath: str, gotype: str) -> str:
    return f"json: cannot unmarshal {what} into Go struct field {struct}.{gopath} of type {gotype}"


def _int_problem(v: Any, gotype: str) -> str | None:
    """Go's UnmarshalTypeError value text when ``v`` does not decode into ``gotype``, else None."""
    t = type(v)
    if t is int or (t is float and v.is_integer()):
        lo, hi = _INT_RANGE.get(gotype, _INT_RANGE["int64"])
        return None if lo <= v <= hi else f"number {_number_text(v)}"
    if t is float:
        return f"number {_number_text(v)}"
    return _json_kind(v)


def _json_kind(v: Any) -> str:
    t = type(v)
    if t is str:
        return "string"
    if t is bool:
        return "bool"
    if t is int or t is float:
        return "number"
    if t is dict:
        return "object"
    if t is list:
        return "array"
    return "value"


def _number_text(v: Any) -> str:
    if type(v) is float and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return json.dumps(v)


# --- Go's custom unmarshalers ----------------------------------------------------------------

QUANTITY_FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
QUANTITY_SUFFIX = "unable to parse quantity's suffix"
_QUANTITY_SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"}
_DIGITS = frozenset("0123456789")


def parse_quantity_error(s: str) -> str | None:
    """``resource.ParseQuantity``'s error for ``s``, or None when it parses."""
    if not s:
        return QUANTITY_FORMAT_WRONG
    if s == "0":
        return None
    pos, end = 0, len(s)
    if s[0] in "+-":
        pos = 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end and s[pos] == ".":
        pos += 1
        while pos < end and s[pos] in _DIGITS:
            pos += 1
    start = pos
    while pos < end and s[pos] in "eEinumkKMGTP":
        pos += 1
    if pos < end:
        if s[pos] in "+-":
            pos += 1
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        if pos < end:
            return QUANTITY_FORMAT_WRONG
    suffix = s[start:]
    if suffix in _QUANTITY_SUFFIXES:
        return None
    if suffix[:1] in ("e", "E"):
        exp = suffix[1:]
        digits = exp[1:] if exp[:1] in ("+", "-") else exp
        if digits and all(c in _DIGITS for c in digits):
            return None
    return QUANTITY_SUFFIX


def go_time_error(value: str, layout: str = RFC3339) -> str | None:
    """``time.Parse(layout, value)``'s error for the RFC 3339 layouts metav1 uses, or None."""
    chunks = [("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05")]
    if layout == RFC3339_MICRO:
        chunks.append(("", ".000000"))
    chunks.append(("", "Z07:00"))

    def bad(rest: str, elem: str) -> str:
        return f"parsing time {go_quote(value)} as {go_quote(layout)}: cannot parse {go_quote(rest)} as {go_quote(elem)}"

    def out_of_range(what: str) -> str:
        return f"parsing time {go_quote(value)}: {what} out of range"

    v = value
    year = month = day = 0
    for prefix, std in chunks:
        if prefix:
            if not v.startswith(prefix):
                return bad(v, prefix)
            v = v[len(prefix):]
        hold = v
        if std == "2006":
            if len(v) < 4 or not all(c in _DIGITS for c in v[:4]):
                return bad(hold, std)
            year, v = int(v[:4]), v[4:]
        elif std == ".000000":
            if len(v) < 7 or v[0] not in ".," or not all(c in _DIGITS for c in v[1:7]):
                return bad(hold, std)
            v = v[7:]
        elif std == "Z07:00":
            if v[:1] == "Z":
                v = v[1:]
                continue
            if len(v) < 6 or v[3] != ":":
                return bad(hold, std)
            sign, hh, mm, v = v[0], v[1:3], v[4:6], v[6:]
            if not (_getnum(hh, True)[2] and _getnum(mm, True)[2]):
                return bad(hold, std)
            if int(mm) > 60:
                return out_of_range("time zone offset minute")
            if int(hh) > 24:
                return out_of_range("time zone offset hour")
            if sign not in "+-":
                return bad(hold, std)
        else:
            n, v, ok = _getnum(v, std != "15")
            if not ok:
                return bad(hold, std)
            limit = {"01": 12, "15": 23, "04": 59, "05": 59}.get(std)
            if std == "01" and n == 0 or limit is not None and n > limit:
                return out_of_range({"01": "month", "15": "hour", "04": "minute", "05": "second"}[std])
            if std == "01":
                month = n
            elif std == "02":
                day = n
            elif std == "05" and layout == RFC3339 and len(v) >= 2 and v[0] in ".," and v[1] in _DIGITS:
                i = 2
                while i < len(v) and v[i] in _DIGITS:
                    i += 1
                v = v[i:]  # a fraction the layout does not name is accepted
    if v:
        return f"parsing time {go_quote(value)}: extra text: {go_quote(v)}"
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    if day < 1 or day > days:
        return out_of_range("day")
    return None


def _getnum(s: str, fixed: bool) -> tuple[int, str, bool]:
    if not s or s[0] not in _DIGITS:
        return 0, s, False
    if len(s) < 2 or s[1] not in _DIGITS:
        if fixed:
            return 0, s, False
        return int(s[0]), s[1:], True
    return int(s[:2]), s[2:], True


_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def base64_error_at(src: bytes) -> int | None:
    """Where Go's ``base64.StdEncoding`` fails on ``src`` (CorruptInputError), or None."""
    si, n = 0, len(src)
    while si < n:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return si - j
            c = src[si]
            si += 1
            if c in _B64:
                j += 1
                continue
            if c in (10, 13):
                continue
            if c != 61:  # '='
                return si - 1
            if j in (0, 1):
                return si - 1
            if j == 2:
                while si < n and src[si] in (10, 13):
                    si += 1
                if si == n:
                    return n
                if src[si] != 61:
                    return si - 1
                si += 1
            while si < n and src[si] in (10, 13):
                si += 1
            if si < n:
                return si
            return None
    return None

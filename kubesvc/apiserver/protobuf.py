"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) -> the dict the JSON path gives.

The body is the magic ``k8s\\x00`` then a ``runtime.Unknown`` message (typeMeta=1 {apiVersion=1, kind=2}, raw=2,
contentEncoding=3, contentType=4); ``raw`` is the object's own message, read through the tables in
``pbtables`` (generated from Kubernetes' published generated.proto files and Go struct tags).

Rules kept here:
- The result is what Kubernetes' JSON of the same Go object is: JSON names from the Go tags, ``,inline`` members
  merged into their parent, zero scalars dropped where the tag says ``omitempty`` and kept where it does not
  (``containerPort``, ``port``), a Go pointer present on the wire kept even when zero (``replicas: 0``), a struct
  always present (``status: {}``), ``bytes`` as base64, ``Time`` as RFC 3339 (``null`` when empty), ``MicroTime``
  with microseconds, ``IntOrString`` as a number or string, ``Quantity`` as its string, ``FieldsV1`` and
  ``RawExtension`` as the JSON they carry.
- Hostile input is bounded: every length is checked against the buffer, varints stop at 10 bytes, nesting is
  bounded by the tables (no message type contains itself) and checked again at run time, groups are refused,
  unknown fields are skipped, strings must be UTF-8. Every failure is a ``ProtobufError`` whose text can go to
  the client as it is.
- A singular field seen twice keeps the last value (Kubernetes' generated code merges messages; kubectl never
  repeats a field).
"""

from __future__ import annotations

import base64
import datetime as _dt
import struct
from typing import Any

from kubesvc.apiserver import pbtables

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
MAX_DEPTH = 32  # message nesting; the tables need pbtables.MAX_DEPTH (+1 for the envelope)

_VARINT_TYPES = frozenset({"int32", "int64", "uint32", "uint64", "bool"})
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_U64 = (1 << 64) - 1
_GO_ZERO_SECONDS = -62135596800  # time.Time{}.Unix(): Go's zero time, JSON null


class ProtobufError(ValueError):
    """The body is not a protobuf object this server can read; the text is for the client."""


def _varint(buf: bytes, i: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= end:
            raise ProtobufError("unexpected end of data in a varint")
        b = buf[i]
        i += 1
        if shift == 63 and b > 1:
            raise ProtobufError("a varint overflows 64 bits")
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _length(buf: bytes, i: int, end: int) -> tuple[int, int]:
    n, i = _varint(buf, i, end)
    if n > end - i:
        raise ProtobufError(f"a length of {n} bytes runs past the end of its message ({end - i} bytes left)")
    return i + n, i  # (end of the value, start of the value)


def _skip(buf: bytes, i: int, end: int, wt: int) -> int:
    if wt == 0:
        return _varint(buf, i, end)[1]
    if wt == 2:
        return _length(buf, i, end)[0]
    if wt in (1, 5):
        n = 8 if wt == 1 else 4
        if end - i < n:
            raise ProtobufError("unexpected end of data in a fixed-size field")
        return i + n
    raise ProtobufError(f"wire type {wt} is not supported (groups and unknown wire types are refused)")


def _text(buf: bytes, start: int, end: int, where: str) -> str:
    try:
        return buf[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError(f"field {where} is not valid UTF-8") from None


def _scalar(kind: str, v: int) -> Any:
    if kind == "bool":
        return v != 0
    if kind == "int32":
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v >= 1 << 31 else v
    if kind == "int64":
        v &= _U64
        return v - (1 << 64) if v >= 1 << 63 else v
    if kind == "uint32":
        return v & 0xFFFFFFFF
    return v & _U64


def _zero(kind: str, ref: str, depth: int) -> Any:
    if kind == "string":
        return ""
    if kind == "bytes":
        return ""
    if kind == "bool":
        return False
    if kind == "message":
        return _message(b"", 0, 0, ref, depth + 1)
    return 0


def _fields(buf: bytes, i: int, end: int, name: str, table: dict[int, pbtables.Field],
            depth: int) -> dict[int, Any]:
    """Field number -> decoded value (a list for repeated fields, a dict for maps) of the known fields."""
    vals: dict[int, Any] = {}
    while i < end:
        key, i = _varint(buf, i, end)
        fn, wt = key >> 3, key & 7
        if fn == 0 or fn > 0x1FFFFFFF:
            raise ProtobufError(f"field number {fn} is not valid in {_short(name)}")
        spec = table.get(fn)
        if spec is None:
            i = _skip(buf, i, end, wt)
            continue
        jname, kind, flags, ref = spec
        where = f"{_short(name)}.{jname or ref.rsplit('.', 1)[-1]}"
        if kind in _VARINT_TYPES:
            if wt == 0:
                v, i = _varint(buf, i, end)
                value: Any = _scalar(kind, v)
            elif wt == 2 and "r" in flags:  # packed
                stop, j = _length(buf, i, end)
                packed = vals.setdefault(fn, [])
                while j < stop:
                    v, j = _varint(buf, j, stop)
                    packed.append(_scalar(kind, v))
                i = stop
                continue
            else:
                raise ProtobufError(f"field {where} has wire type {wt}, expected 0")
        elif kind in ("double", "float"):
            size = 8 if kind == "double" else 4
            if wt != (1 if size == 8 else 5):
                raise ProtobufError(f"field {where} has wire type {wt}, expected {1 if size == 8 else 5}")
            if end - i < size:
                raise ProtobufError("unexpected end of data in a fixed-size field")
            value = struct.unpack_from("<d" if size == 8 else "<f", buf, i)[0]
            if value != value or value in (float("inf"), float("-inf")):
                raise ProtobufError(f"field {where} is not a finite number")
            i += size
        else:
            if wt != 2:
                raise ProtobufError(f"field {where} has wire type {wt}, expected 2")
            stop, start = _length(buf, i, end)
            i = stop
            if kind == "string":
                value = _text(buf, start, stop, where)
            elif kind == "bytes":
                value = base64.b64encode(buf[start:stop]).decode("ascii")
            elif kind == "message":
                value = _message(buf, start, stop, ref, depth + 1)
            else:  # map entry: key=1 value=2
                k, v = _entry(buf, start, stop, ref, where, depth)
                vals.setdefault(fn, {})[k] = v
                continue
        if "r" in flags:
            vals.setdefault(fn, []).append(value)
        else:
            vals[fn] = value
    return vals


def _entry(buf: bytes, i: int, end: int, ref: str, where: str, depth: int) -> tuple[str, Any]:
    key = ""
    value: Any = None
    vkind = ref if ref in ("string", "bytes") else "message"
    while i < end:
        tag, i = _varint(buf, i, end)
        fn, wt = tag >> 3, tag & 7
        if fn in (1, 2):
            if wt != 2:
                raise ProtobufError(f"map entry of {where} has wire type {wt}, expected 2")
            stop, start = _length(buf, i, end)
            i = stop
            if fn == 1:
                key = _text(buf, start, stop, where)
            elif vkind == "string":
                value = _text(buf, start, stop, where)
            elif vkind == "bytes":
                value = base64.b64encode(buf[start:stop]).decode("ascii")
            else:
                value = _message(buf, start, stop, ref, depth + 1)
        else:
            i = _skip(buf, i, end, wt)
    if value is None:
        value = "" if vkind != "message" else _message(b"", 0, 0, ref, depth + 1)
    return key, value


def _message(buf: bytes, i: int, end: int, name: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ProtobufError(f"messages are nested more than {MAX_DEPTH} levels deep")
    special = pbtables.SPECIAL.get(name)
    if special is not None:
        return _special(special, buf, i, end, name)
    table = pbtables.MESSAGES[name]
    vals = _fields(buf, i, end, name, table, depth)
    out: dict[str, Any] = {}
    for fn, (jname, kind, flags, ref) in table.items():
        present = fn in vals
        if kind == "message" and "r" not in flags and "p" not in flags and not present:
            value = _zero(kind, ref, depth)  # a Go struct (not a pointer) is always there
            present = True
        elif present:
            value = vals[fn]
        if "i" in flags:
            if present and isinstance(value, dict):
                out.update(value)
            continue
        if not jname or jname == "-":
            continue
        if present:
            if "o" in flags and "p" not in flags and kind != "message" and not value:
                continue  # omitempty: "", 0, false, empty list or map
            if "o" in flags and kind == "message" and "r" in flags and not value:
                continue
            out[jname] = value
        elif "o" not in flags:
            out[jname] = None if ("r" in flags or "p" in flags or kind == "map") else _zero(kind, ref, depth)
    return out


def _special(what: str, buf: bytes, i: int, end: int, name: str) -> Any:
    if what in ("time", "microtime"):
        if i == end:
            return None  # Go's zero time: JSON null
        seconds = nanos = 0
        while i < end:
            tag, i = _varint(buf, i, end)
            if tag == 0x08:
                seconds, i = _varint(buf, i, end)
                seconds = _scalar("int64", seconds)
            elif tag == 0x10:
                nanos, i = _varint(buf, i, end)
                nanos = _scalar("int32", nanos)
            else:
                i = _skip(buf, i, end, tag & 7)
        micros = nanos // 1000 if what == "microtime" else 0  # Time keeps whole seconds, as Kubernetes does
        if seconds == _GO_ZERO_SECONDS and micros == 0:
            return None
        try:
            when = _EPOCH + _dt.timedelta(seconds=seconds, microseconds=micros)
        except OverflowError:
            raise ProtobufError(f"a {_short(name)} of {seconds} seconds is out of range") from None
        text = f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
        return text + (f".{when.microsecond:06d}Z" if what == "microtime" else "Z")
    vals: dict[int, Any] = {}
    while i < end:
        tag, i = _varint(buf, i, end)
        fn, wt = tag >> 3, tag & 7
        if wt == 0:
            vals[fn], i = _varint(buf, i, end)
        elif wt == 2:
            stop, start = _length(buf, i, end)
            vals[fn] = (start, stop)
            i = stop
        else:
            i = _skip(buf, i, end, wt)
    if what == "intorstring":  # type=1 (0 int, 1 string) intVal=2 strVal=3
        kind = _scalar("int64", vals.get(1, 0)) if isinstance(vals.get(1, 0), int) else -1
        if kind == 0:
            iv = vals.get(2, 0)
            return _scalar("int32", iv) if isinstance(iv, int) else 0
        if kind == 1:
            sv = vals.get(3)
            return _text(buf, sv[0], sv[1], "IntOrString.strVal") if isinstance(sv, tuple) else ""
        raise ProtobufError(f"an IntOrString has type {kind}, expected 0 (int) or 1 (string)")
    if what == "quantity":  # string=1
        sv = vals.get(1)
        return _text(buf, sv[0], sv[1], "Quantity") if isinstance(sv, tuple) and sv[1] > sv[0] else "0"
    if what == "duration":  # duration=1, nanoseconds
        dv = vals.get(1, 0)
        return go_duration(_scalar("int64", dv) if isinstance(dv, int) else 0)
    # rawjson: FieldsV1.Raw=1 / RawExtension.raw=1 hold JSON text
    rv = vals.get(1)
    if not isinstance(rv, tuple) or rv[1] == rv[0]:
        return None
    from kubesvc.api import untrusted

    try:
        return untrusted.loads(buf[rv[0]:rv[1]])
    except ValueError as e:
        raise ProtobufError(f"the {_short(name)} in the body is not JSON: {e}") from None


def go_duration(ns: int) -> str:
    """Go's time.Duration.String (metav1.Duration's JSON)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if u >= size:
                whole, frac = divmod(u, size)
                digits = f"{frac:0{len(str(size)) - 1}d}".rstrip("0") if size > 1 else ""
                return f"{sign}{whole}{'.' + digits if digits else ''}{unit}"
    secs, frac = divmod(u, 1_000_000_000)
    digits = f"{frac:09d}".rstrip("0")
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    text = f"{s}{'.' + digits if digits else ''}s"
    if h or m:
        text = f"{m}m" + text
    if h:
        text = f"{h}h" + text
    return sign + text


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def message_for(api_version: str, kind: str) -> str | None:
    """The protobuf message of a top-level (apiVersion, kind), or None when this server cannot read it."""
    found = pbtables.TOP.get((api_version, kind))
    if found is None and kind == "DeleteOptions":
        return pbtables.DELETE_OPTIONS
    return found


def decode(body: bytes) -> dict[str, Any]:
    """The object in a ``k8s\\x00`` + runtime.Unknown body, as Kubernetes' JSON of it would read."""
    buf = bytes(body)
    if not buf.startswith(MAGIC):
        raise ProtobufError("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
    i, end = len(MAGIC), len(buf)
    api_version = kind = encoding = ""
    raw: tuple[int, int] | None = None
    while i < end:
        tag, i = _varint(buf, i, end)
        fn, wt = tag >> 3, tag & 7
        if fn in (1, 2, 3, 4) and wt == 2:
            stop, start = _length(buf, i, end)
            i = stop
            if fn == 1:  # runtime.TypeMeta
                j = start
                while j < stop:
                    t2, j = _varint(buf, j, stop)
                    if t2 in (0x0A, 0x12):
                        s_end, s_start = _length(buf, j, stop)
                        text = _text(buf, s_start, s_end, "Unknown.typeMeta")
                        if t2 == 0x0A:
                            api_version = text
                        else:
                            kind = text
                        j = s_end
                    else:
                        j = _skip(buf, j, stop, t2 & 7)
            elif fn == 2:
                raw = (start, stop)
            elif fn == 3:
                encoding = _text(buf, start, stop, "Unknown.contentEncoding")
        elif fn == 0:
            raise ProtobufError("field number 0 is not valid in Unknown")
        else:
            i = _skip(buf, i, end, wt)
    if not kind:
        raise ProtobufError(f"Object 'Kind' is missing in 'runtime.TypeMeta{{APIVersion:\"{api_version}\", Kind:\"\"}}'")
    if encoding:
        raise ProtobufError(f"content encoding {encoding!r} is not supported")
    name = message_for(api_version, kind)
    if name is None:
        raise ProtobufError(f'no kind "{kind}" is registered for version "{api_version}" in scheme '
                            '"k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30"')
    start, stop = raw if raw is not None else (0, 0)
    obj = _message(buf, start, stop, name, 1)
    return {"kind": kind, "apiVersion": api_version, **obj}

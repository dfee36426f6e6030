"""Read YAML as kubectl reads it (sigs.k8s.io/yaml over go-yaml v2), bounded while it is composed.

Rules kept here:
- **YAML 1.1 scalars, as go-yaml v2 resolves them** (`gopkg.in/yaml.v2/resolve.go`): ``y/yes/on/true`` and
  ``n/no/off/false`` in their three spellings are bools; ``~``, ``null`` and the empty plain scalar are null;
  integers are Go's ``strconv.ParseInt(s, 0, 64)`` with ``_`` removed, so ``0755`` is 493, ``0x1F`` 31, ``0o17``
  15, ``0b101`` 5, and ``080`` (not octal) falls through to the float 80. Sexagesimal (``1:30``) and timestamps
  stay strings, as in kubectl. Quoted and block scalars are strings unless tagged.
- **Values become what kubectl's unstructured objects hold** (`sigs.k8s.io/yaml/yaml.go` ``YAMLToJSON``, then the
  JSON decoder): map keys become strings (``yes`` -> ``"true"``, ``0x10`` -> ``"16"``), a float with an integral
  value is an int (``8.0`` -> 8), NaN and infinities are refused (``json: unsupported value: NaN``), integers past
  int64 are floats, ``!!binary`` is decoded to text, ``<<`` merges mappings the way go-yaml v2 does (a merged key
  overwrites one written before it; in ``<<: [*a, *b]`` the first wins).
- **Bounded while composing, before any expansion.** One loop over the parser's events with its own stack (no
  recursion): depth is checked when a collection opens, and every value is counted as it arrives; an alias
  counts the values it stands for (its anchor's expanded size) before anything is copied. go-yaml v2's rule
  against excessive aliasing (`decode.go` ``allowedAliasRatio``: above 1,000 values, at most 99 % of them may come
  from aliases, falling to 10 % at 4,000,000) holds per document, and a source holds at most ``MAX_NODES`` values,
  so a few hundred bytes of "billion laughs" are refused after a few hundred events.
- **Duplicate keys are refused** in go-yaml's strict wording (``line 3: key "kind" already set in map``): kubectl's
  own client takes the last value silently, but its apiserver refuses the object under ``fieldValidation=Strict``.
- libyaml's C parser (``ruamel.yaml.clib``/``clibz``, through ``ruamel.yaml.cyaml``) when installed, else ruamel's
  pure parser: the same events, the same results. Its problem texts are go-yaml's (go-yaml is a port of libyaml).

Errors are ``YAMLLoadError`` with the text kubectl prints after ``error parsing <source>: `` (our own words
for the depth and value bounds, which kubectl does not have). docs/concepts/validation.md#reading-manifests.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
MAX_NODES = 2_000_000

_ALIAS_RATIO_LOW = 400_000
_ALIAS_RATIO_HIGH = 4_000_000

_CONVERT = "error converting YAML to JSON: "


class YAMLLoadError(ValueError):
    """Input that kubectl would refuse; ``str()`` is the message."""


# ------------------------------------------------------------------------------------------- scalars

_T = "tag:yaml.org,2002:"
_STR, _BINARY, _BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP, _MERGE = (
    _T + t for t in ("str", "binary", "bool", "int", "float", "null", "timestamp", "merge"))
_RESOLVABLE = {_STR, _BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP}  # go-yaml v2 resolvableTag (plus binary below)

# go-yaml v2 resolveMap: (short tag, value)
_MAP: dict[str, tuple[str, Any]] = {}
for _words, _val, _tag in (
    ("y Y yes Yes YES true True TRUE on On ON", True, "bool"),
    ("n N no No NO false False FALSE off Off OFF", False, "bool"),
    ("~ null Null NULL", None, "null"),
    (".nan .NaN .NAN", math.nan, "float"),
    (".inf .Inf .INF +.inf +.Inf +.INF", math.inf, "float"),
    ("-.inf -.Inf -.INF", -math.inf, "float"),
):
    for _w in _words.split():
        _MAP[_w] = (_tag, _val)
_MAP[""] = ("null", None)
# go-yaml v2 resolveTable: first characters that may start something other than a string
_HINTS = frozenset("+-0123456789yYnNtTfFoO~.")
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)\Z")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")  # go-yaml yamlStyleFloat
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?\Z")
_TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:[Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?(?:Z|[-+][0-9]{2}:[0-9]{2})"
    r"| [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?)?\Z")
_INT64 = 1 << 63


def _go_int(plain: str) -> int | float | None:
    """strconv.ParseInt(plain, 0, 64), then ParseUint: an int, a float for a uint64 past int64 (the JSON
    decoder reads it back as float64), or None."""
    if len(plain) > 70 or not _GO_INT.match(plain):  # 70 characters hold any 64-bit integer, even in binary
        return None
    body = plain.lstrip("+-")
    if len(body) > 1 and body[0] == "0":
        p = body[1]
        n = int(body[2:], 16 if p in "xX" else 8 if p in "oO" else 2) if p in "xXoObB" else int(body[1:], 8)
    else:
        n = int(body)
    if plain[0] == "-":
        n = -n
    if -_INT64 <= n < _INT64:
        return n
    if plain[0] != "+" and 0 <= n < 2 * _INT64:
        return float(n)
    return None


def _resolve(value: str) -> tuple[str, Any]:
    """An untagged (or !!int/!!float/!!bool/!!null/!!timestamp tagged) scalar: (short tag, value)."""
    if value[:1] not in _HINTS and value:
        return "str", value
    hit = _MAP.get(value)
    if hit is not None:
        return hit
    c = value[0]
    if c == ".":
        if _DOT_FLOAT.match(value):
            return "float", float(value)
    elif c not in "yYnNtTfFoO~":
        if _TIMESTAMP_RE.match(value):
            return "timestamp", value  # kept as text, as go-yaml v2 does for interface{} targets
        plain = value.replace("_", "")
        n = _go_int(plain)
        if n is not None:
            return "int", n
        if _YAML_FLOAT.match(plain):
            f = float(plain)
            if not math.isinf(f):  # ParseFloat's range error: the scalar stays a string
                return "float", f
    return "str", value


def _scalar(tag: str, value: str) -> Any:
    """An explicitly tagged scalar, as go-yaml v2's resolve() and its deferred tag check."""
    if tag == _STR:
        return value
    if tag == _BINARY:
        try:
            data = base64.b64decode(value)  # non-alphabet characters (line breaks) are skipped, as Go's decoder does
        except ValueError:
            data = b""
        return data.decode("utf-8", "replace")  # Go's JSON encoder replaces invalid UTF-8 the same way
    if tag not in _RESOLVABLE:
        return value  # unknown tags (`!foo`, `!!map` on a scalar) leave the text
    short, out = _resolve(value)
    want = tag[len(_T):]
    if short == want or (want == "float" and short == "int"):
        return float(out) if want == "float" else out
    raise YAMLLoadError(f"{_CONVERT}yaml: cannot decode !!{short} `{value}` as a !!{want}")


def json_number(f: float) -> int | float:
    """A float value as kubectl's unstructured object holds it (Go's JSON encoder, then decoder)."""
    if f != f or f in (math.inf, -math.inf):
        raise YAMLLoadError(f"{_CONVERT}json: unsupported value: {'NaN' if f != f else '+Inf' if f > 0 else '-Inf'}")
    if f.is_integer() and -1e21 < f < 1e21:  # Go writes these without an exponent, and reads them back as int64
        if -(2**53) <= f <= 2**53:
            return int(f)
        from decimal import Decimal

        n = int(Decimal(repr(f)))  # Go writes the shortest digits: 2**63 is written 9223372036854776000
        if -_INT64 <= n < _INT64:
            return n
    return f


def _go_float32_key(f: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 32), which sigs.k8s.io/yaml uses for a float map key."""
    if f != f:
        return ".nan"
    if f in (math.inf, -math.inf):
        return ".inf" if f > 0 else "-.inf"
    f32 = struct.unpack("f", struct.pack("f", f))[0]
    sign = "-" if math.copysign(1.0, f32) < 0 else ""
    if f32 == 0:
        return sign + "0"
    for prec in range(1, 10):  # the shortest decimal that reads back as the same float32
        s = f"{abs(f32):.{prec - 1}e}"
        if struct.unpack("f", struct.pack("f", float(s)))[0] == abs(f32):
            break
    mant, exp_text = s.split("e")
    digits = mant.replace(".", "").rstrip("0") or "0"
    exp = int(exp_text)
    if exp < -4 or exp >= 6:  # %e form, at least two exponent digits
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    dp = exp + 1
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _key(v: Any, line: int) -> str:
    """A map key as sigs.k8s.io/yaml's convertToJSONableObject writes it."""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return _go_float32_key(v)
    if v is None:
        raise YAMLLoadError(f"{_CONVERT}unsupported map key: null (line {line})")
    import json

    raise YAMLLoadError(f"{_CONVERT}yaml: invalid map key: {json.dumps(v)[:80]} (line {line})")


def _allowed_alias_ratio(count: int) -> float:
    if count <= _ALIAS_RATIO_LOW:
        return 0.99
    if count >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (count - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def _copy(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return {k: _copy(x) for k, x in v.items()}
    if t is list:
        return [_copy(x) for x in v]
    return v


# ------------------------------------------------------------------------------------------- events

_UNLOADED: Any = object()
CParser: Any = _UNLOADED  # libyaml's parser class (None without ruamel.yaml.clib), imported on first use


def libyaml() -> bool:
    """Whether manifests are parsed by libyaml's C parser."""
    global CParser
    if CParser is _UNLOADED:
        try:
            from ruamel.yaml.cyaml import CParser as parser  # ruamel.yaml.clib, or ruamel.yaml.clibz
        except ImportError:
            parser = None
        CParser = parser
    return CParser is not None


def _event_source(text: str) -> Callable[[], Any]:
    """The parser's next-event function: libyaml's when installed, else ruamel's pure one."""
    if libyaml():
        return CParser(text).get_event  # type: ignore[no-any-return]
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).parse(text).__next__


def _problem(exc: Exception) -> str:
    """go-yaml's (parser.fail) wording of a libyaml problem: scanner errors name the 1-based line of the
    problem, parser errors its 0-based line (go-yaml's own quirk, kept so messages read the same)."""
    problem = getattr(exc, "problem", None)
    if not problem:
        reason = getattr(exc, "reason", None)
        return str(reason) if reason else str(exc).splitlines()[0]
    scanner = type(exc).__name__ == "ScannerError"
    mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    line = 0
    if mark is not None and mark.line != 0:
        line = mark.line + (1 if scanner else 0)
    elif context is not None and context.line != 0:
        line = context.line
    return f"line {line}: {problem}" if line else str(problem)


_NOKEY: Any = object()
_MERGE_KEY: Any = object()


def _line(ev: Any) -> int:
    return int(ev.start_mark.line) + 1


def load_all(text: str) -> list[Any]:
    """Every document of ``text`` (None for an empty one), as JSON values. Raises YAMLLoadError.

    One loop over the parser's events. The open collection's state lives in locals (``c`` the container,
    ``key`` the key waiting for its value, ``explicit`` the keys written by hand once a merge happened, ...)
    and is pushed on ``stack`` when a collection opens inside it."""
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        DocumentEndEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
        StreamEndEvent,
    )

    next_event = _event_source(text)
    docs: list[Any] = []
    anchors: dict[str, tuple[Any, int, int]] = {}  # name -> (value, expanded size, height)
    open_anchors: set[str] = set()  # anchors of collections still open (an alias to one contains itself)
    total = 0  # values read from the source, an alias counted as the values it stands for
    doc_start = doc_alias = 0  # total when the document began; values of the document that came from aliases
    root: Any = None
    stack: list[tuple[Any, ...]] = []
    c: Any = None  # the open collection (None at the document's top)
    ismap = False
    key: Any = _NOKEY
    key_ev: Any = None
    anchor: str | None = None
    start = height = depth = 0
    explicit: set[str] | None = None
    try:
        while True:
            ev = next_event()
            t = type(ev)
            if t is ScalarEvent:
                total += 1
                if total > MAX_NODES:
                    raise YAMLLoadError(f"document is too large (more than {MAX_NODES} values)")
                value = ev.value
                tag = ev.ctag
                if tag is None:
                    if ev.implicit[0]:  # plain
                        if not value or value[0] in _HINTS:
                            v = _resolve(value)[1]
                        else:
                            v = value
                            if value == "<<" and ismap and key is _NOKEY:
                                key, key_ev = _MERGE_KEY, ev
                                continue
                    else:
                        v = value
                else:
                    tag = ev.tag
                    v = _scalar(tag, value)
                    if tag == _MERGE and value == "<<" and ismap and key is _NOKEY:
                        key, key_ev = _MERGE_KEY, ev
                        continue
                if ev.anchor is not None:
                    anchors[ev.anchor] = (v, 1, 0)
                if type(v) is float and not (ismap and key is _NOKEY):
                    v = json_number(v)
            elif t is MappingStartEvent or t is SequenceStartEvent:
                if depth >= MAX_DEPTH:
                    raise YAMLLoadError(f"document is nested too deeply (more than {MAX_DEPTH} levels)")
                total += 1
                if total > MAX_NODES:
                    raise YAMLLoadError(f"document is too large (more than {MAX_NODES} values)")
                stack.append((c, ismap, key, key_ev, anchor, start, height, explicit))
                ismap = t is MappingStartEvent
                c = {} if ismap else []
                key, key_ev, anchor, start, height, explicit = _NOKEY, None, ev.anchor, total, 0, None
                if anchor is not None:
                    open_anchors.add(anchor)
                depth += 1
                continue
            elif t is MappingEndEvent or t is SequenceEndEvent:
                v, done_anchor, done_start, done_height = c, anchor, start, height + 1
                c, ismap, key, key_ev, anchor, start, height, explicit = stack.pop()
                depth -= 1
                if height < done_height:
                    height = done_height
                if done_anchor is not None:
                    open_anchors.discard(done_anchor)
                    anchors[done_anchor] = (v, total - done_start + 1, done_height)
            elif t is AliasEvent:
                name = ev.anchor
                hit = anchors.get(name)
                if hit is None:
                    if name in open_anchors:
                        raise YAMLLoadError(f"{_CONVERT}yaml: anchor '{name}' value contains itself")
                    raise YAMLLoadError(f"{_CONVERT}yaml: unknown anchor '{name}' referenced")
                value, size, alias_height = hit
                # counted before anything is copied: this is what keeps a "billion laughs" cheap
                total += 1 + size
                doc_alias += size
                count = total - doc_start
                if doc_alias > 100 and count > 1000 and doc_alias / count > _allowed_alias_ratio(count):
                    raise YAMLLoadError(f"{_CONVERT}yaml: document contains excessive aliasing")
                if total > MAX_NODES:
                    raise YAMLLoadError(f"document is too large (more than {MAX_NODES} values)")
                if depth + alias_height > MAX_DEPTH:
                    raise YAMLLoadError(f"document is nested too deeply (more than {MAX_DEPTH} levels)")
                if ismap and key is _NOKEY:
                    v = value  # a key: made a string below, nothing shared
                elif type(value) is float:
                    v = json_number(value)
                else:
                    v = _copy(value)
            elif t is DocumentStartEvent:
                anchors.clear()
                open_anchors.clear()
                root = None
                doc_start, doc_alias = total, 0
                continue
            elif t is DocumentEndEvent:
                count = total - doc_start
                if doc_alias > 100 and count > 1000 and doc_alias / count > _allowed_alias_ratio(count):
                    raise YAMLLoadError(f"{_CONVERT}yaml: document contains excessive aliasing")
                docs.append(root)
                continue
            elif t is StreamEndEvent:
                break
            else:
                continue
            # place the finished value v in the open collection
            if ismap:
                if key is _NOKEY:
                    key, key_ev = (v if type(v) is str else _key(v, _line(ev))), ev
                    continue
                k, key = key, _NOKEY
                if k is _MERGE_KEY:
                    if explicit is None:
                        explicit = set(c)
                    _merge(c, v)
                elif explicit is None:
                    if k in c:
                        raise _duplicate(k, key_ev)
                    c[k] = v
                else:
                    if k in explicit:
                        raise _duplicate(k, key_ev)
                    explicit.add(k)
                    c[k] = v
            elif c is not None:
                c.append(v)
            else:
                root = v
    except YAMLError as exc:
        raise YAMLLoadError(f"{_CONVERT}yaml: {_problem(exc)}") from None
    return docs


def _duplicate(k: str, key_ev: Any) -> YAMLLoadError:
    return YAMLLoadError(f'{_CONVERT}yaml: unmarshal errors: line {_line(key_ev)}: key "{k}" already set in map')


def _merge(c: dict[str, Any], v: Any) -> None:
    """go-yaml v2's merge: a mapping's keys overwrite what is there; of a sequence of mappings the first wins."""
    if type(v) is dict:
        c.update(v)
    elif type(v) is list and all(type(m) is dict for m in v):
        for m in reversed(v):
            c.update(m)
    else:
        raise YAMLLoadError(f"{_CONVERT}yaml: map merge requires map or sequence of maps as the value")


def load(text: str) -> Any:
    """The single document of ``text`` (None when empty). More than one document is an error."""
    docs = load_all(text)
    if len(docs) > 1:
        raise YAMLLoadError(f"{_CONVERT}yaml: expected a single document in the stream")
    return docs[0] if docs else None

"""kubectl's JSONPath template language (``k8s.io/client-go/util/jsonpath``), on plain JSON values.

Rules kept here (parser.go and jsonpath.go, reproduced with their quirks):
- Text outside ``{...}`` is printed literally; each action's results are printed joined by one space;
  maps and lists print as compact JSON with sorted keys (Go's ``json.Marshal``), scalars as Go's
  ``fmt.Print`` would (``<nil>`` for null, ``1e+06`` for big floats).
- ``{range EXPR}...{end}`` repeats its body per result, with ``@`` bound to the item; ``{end}``
  outside a range is an error. ``$``/``@`` name the current value; ``..`` is recursive descent.
- Missing keys print nothing when ``allow_missing_keys`` (kubectl's default); otherwise
  ``<key> is not found``. Index errors are errors either way, with Go's wording.
- ``['key.with.dots']`` selects one literal key (upstream re-parses it as ``.key.with.dots``; kubesvc
  keeps the documented meaning). Quoted keys may use ``'`` or ``"``.
- Errors are ``JSONPathError`` with the Go message; callers wrap them in kubectl's sentences.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["JSONPath", "JSONPathError", "parse", "go_text", "go_sprint", "go_json"]


class JSONPathError(Exception):
    """A parse or evaluation error, with client-go's wording."""


# --------------------------------------------------------------------------------------- nodes


@dataclass
class Text:
    text: str


@dataclass
class ListNode:
    nodes: list[Node] = field(default_factory=list)


@dataclass
class FieldNode:
    name: str


@dataclass
class Wildcard:
    pass


@dataclass
class Recursive:
    pass


@dataclass
class ArrayNode:
    start: int | None
    end: int | None
    step: int | None
    end_derived: bool = False


@dataclass
class Union_:
    parts: list[ListNode]


@dataclass
class Filter:
    left: ListNode
    right: ListNode
    op: str


@dataclass
class Identifier:
    name: str


@dataclass
class Literal:
    value: Any


Node = Text | ListNode | FieldNode | Wildcard | Recursive | ArrayNode | Union_ | Filter | Identifier | Literal

_EOF = ""
_TERMINATORS = set(" \t\r\n.,[]$@{}")
_SLICE = re.compile(r"^(-?\d*)(:-?\d*)?(:-?\d*)?$")
_DICT_KEY = re.compile(r"""^\s*(?:'([^']*)'|"([^"]*)")\s*$""")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$", re.S)


# -------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.root = ListNode()

    # scanning primitives (mirroring text/template's lexer helpers)
    def next(self) -> str:
        if self.pos >= len(self.input):
            self.pos = len(self.input) + 1
            return _EOF
        ch = self.input[self.pos]
        self.pos += 1
        return ch

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else _EOF

    def backup(self) -> None:
        self.pos -= 1

    def consume(self) -> str:
        end = min(self.pos, len(self.input))
        value = self.input[self.start:end]
        self.start = end
        self.pos = end
        return value

    def parse(self) -> ListNode:
        self._parse_text()
        return self.root

    def _parse_text(self) -> None:
        while True:
            if self.input.startswith("{", self.pos):
                if self.pos > self.start:
                    self.root.nodes.append(Text(self.consume()))
                self.pos += 1
                self.consume()
                action = ListNode()
                self.root.nodes.append(action)
                self._parse_inside(action)
                continue
            if self.next() == _EOF:
                break
        self.pos = min(self.pos, len(self.input))
        if self.pos > self.start:
            self.root.nodes.append(Text(self.consume()))

    def _parse_inside(self, cur: ListNode) -> None:
        """Parse one action body up to its ``}`` (iteratively: one token per turn)."""
        while True:
            rest = self.input[self.pos:]
            if rest.startswith("}"):
                self.pos += 1
                self.consume()
                return
            if rest.startswith("[?("):
                self._parse_filter(cur)
                continue
            if rest.startswith(".."):
                if cur.nodes and isinstance(cur.nodes[-1], Recursive):
                    raise JSONPathError("invalid multiple recursive descent")
                self.pos += 2
                self.consume()
                cur.nodes.append(Recursive())
                if _is_alnum(self.peek()):
                    self._parse_field(cur)
                continue
            ch = self.next()
            if ch == _EOF or ch in "\r\n":
                raise JSONPathError("unclosed action")
            if ch == " ":
                self.consume()
            elif ch in "@$":
                self.consume()
            elif ch == "[":
                self._parse_array(cur)
            elif ch in "\"'":
                self._parse_quote(cur, ch)
            elif ch == ".":
                self._parse_field(cur)
            elif ch in "+-" or ch.isdigit():
                self.backup()
                self._parse_number(cur)
            elif _is_alnum(ch):
                self.backup()
                self._parse_identifier(cur)
            else:
                raise JSONPathError(f"unrecognized character in action: {_go_rune(ch)}")

    def _parse_field(self, cur: ListNode) -> None:
        self.consume()
        while True:
            ch = self.next()
            if ch == "\\":
                self.next()
                continue
            if ch == _EOF or ch in _TERMINATORS:
                if ch != _EOF:
                    self.backup()
                else:
                    self.pos = len(self.input)
                break
        value = self.consume()
        if value == "*":
            cur.nodes.append(Wildcard())
        else:
            cur.nodes.append(FieldNode(value.replace("\\", "")))

    def _parse_identifier(self, cur: ListNode) -> None:
        while True:
            ch = self.next()
            if ch == _EOF or ch in _TERMINATORS:
                if ch != _EOF:
                    self.backup()
                else:
                    self.pos = len(self.input)
                break
        value = self.consume()
        if value in ("true", "false"):
            cur.nodes.append(Literal(value == "true"))
        else:
            cur.nodes.append(Identifier(value))

    def _parse_number(self, cur: ListNode) -> None:
        if self.peek() in ("+", "-"):
            self.next()
        while True:
            ch = self.next()
            if ch != "." and not ch.isdigit():
                if ch != _EOF:
                    self.backup()
                else:
                    self.pos = len(self.input)
                break
        value = self.consume()
        try:
            cur.nodes.append(Literal(int(value)))
            return
        except ValueError:
            pass
        try:
            cur.nodes.append(Literal(float(value)))
        except ValueError:
            raise JSONPathError(f"cannot parse number {value}") from None

    def _parse_quote(self, cur: ListNode, end: str) -> None:
        while True:
            ch = self.next()
            if ch == _EOF or ch == "\n":
                raise JSONPathError("unterminated quoted string")
            if ch == "\\":
                nxt = self.next()
                if nxt == _EOF or nxt == "\n":
                    raise JSONPathError("unterminated quoted string")
                continue
            if ch == end:
                break
        value = self.consume()
        cur.nodes.append(Text(_unquote(value)))

    def _parse_array(self, cur: ListNode) -> None:
        while True:
            ch = self.next()
            if ch == _EOF or ch == "\n":
                raise JSONPathError("unterminated array")
            if ch == "]":
                break
        text = self.consume()[1:-1]
        cur.nodes.append(_array_node(text))

    def _parse_filter(self, cur: ListNode) -> None:
        self.pos += 3
        self.consume()
        begin = end = False
        pair = ""
        while True:
            ch = self.next()
            if ch == _EOF or ch == "\n":
                raise JSONPathError("unterminated filter")
            if ch in "\"'":
                if not begin:
                    begin, pair = True, ch
                    continue
                if self.input[self.pos - 2] != "\\" and ch == pair:
                    end = True
            elif ch == ")":
                if begin == end:
                    break
        if self.next() != "]":
            raise JSONPathError("unclosed array expect ]")
        text = self.consume()[:-2]
        match = _FILTER.match(text)
        if match is None:
            cur.nodes.append(Filter(_parse_action(text), ListNode(), "exists"))
        else:
            cur.nodes.append(Filter(_parse_action(match.group(1)), _parse_action(match.group(3)), match.group(2)))


def _array_node(text: str) -> Node:
    if text == "*":
        text = ":"
    parts = text.split(",")
    if len(parts) > 1:
        return Union_([_parse_action(f"[{p.strip()}]") for p in parts])
    key = _DICT_KEY.match(text)
    if key is not None:
        name = key.group(1) if key.group(1) is not None else key.group(2)
        return ListNode([FieldNode(name)])
    match = _SLICE.match(text)
    if match is None:
        raise JSONPathError(f"invalid array index {text}")
    raw = list(match.groups())
    params: list[int | None] = [None, None, None]
    derived = False
    for i in range(3):
        value = raw[i]
        if value:
            if i > 0:
                value = value[1:]
            if i > 0 and value == "":
                params[i] = None
            else:
                try:
                    params[i] = int(value)
                except ValueError:
                    raise JSONPathError(f"array index {value} is not a number") from None
        elif i == 1:
            params[1] = (params[0] or 0) + 1
            derived = True
    return ArrayNode(params[0], params[1], params[2], derived)


def _parse_action(text: str) -> ListNode:
    """Parse ``{text}`` and return the root list (what client-go's ``parseAction`` yields)."""
    return _Parser("{" + text + "}").parse()


def _is_alnum(ch: str) -> bool:
    return ch != _EOF and (ch == "_" or ch.isalnum())


def _go_rune(ch: str) -> str:
    return f"U+{ord(ch):04X} {ch!r}" if ch != "'" else "U+0027 '\\''"


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "0": "\0", "/": "/"}


def _unquote(quoted: str) -> str:
    body = quoted[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1] if i + 1 < len(body) else ""
        if esc in ("u", "U", "x"):
            width = {"u": 4, "U": 8, "x": 2}[esc]
            digits = body[i + 2:i + 2 + width]
            try:
                out.append(chr(int(digits, 16)))
            except ValueError:
                raise JSONPathError(f"unquote string {quoted} error invalid syntax") from None
            i += 2 + width
            continue
        if esc not in _ESCAPES:
            raise JSONPathError(f"unquote string {quoted} error invalid syntax")
        out.append(_ESCAPES[esc])
        i += 2
    return "".join(out)


def parse(template: str) -> ListNode:
    """Parse a template; raises JSONPathError (``unclosed action``, ...)."""
    return _Parser(template).parse()


# ----------------------------------------------------------------------------------- evaluation


_RANGE, _END = "range", "end"


class JSONPath:
    """A parsed template; ``execute(data)`` returns the text kubectl prints (no newline added)."""

    def __init__(self, template: str, allow_missing_keys: bool = True) -> None:
        self.template = template
        self.allow_missing_keys = allow_missing_keys
        self.root = parse(template)

    def find_results(self, data: Any) -> list[list[Any]]:
        """The groups of results, one per top-level node (ranges expanded)."""
        groups: list[list[Any]] = []
        nodes = self.root.nodes
        end = self._run(nodes, 0, data, groups, depth=0)
        if end < len(nodes):  # a stray {end} at the top level
            raise JSONPathError("not in range, nothing to end")
        return groups

    def _run(self, nodes: list[Node], i: int, data: Any, groups: list[list[Any]], depth: int) -> int:
        """Run nodes from i until a matching {end} (returns its index) or the end of the list."""
        while i < len(nodes):
            node = nodes[i]
            kind = _block_kind(node)
            if kind == _END:
                if depth == 0:
                    raise JSONPathError("not in range, nothing to end")
                return i
            if kind == _RANGE:
                assert isinstance(node, ListNode)
                items = self._eval_list([data], ListNode(node.nodes[1:]))
                body_end = _matching_end(nodes, i + 1)
                for item in items:
                    self._run(nodes, i + 1, item, groups, depth + 1)
                if not items:
                    self._run(nodes, i + 1, None, [], depth + 1)  # still validates the body
                i = body_end + 1
                continue
            groups.append(self._walk([data], node))
            i += 1
        return i

    def execute(self, data: Any) -> str:
        out: list[str] = []
        for group in self.find_results(data):
            texts = [go_json(v) if isinstance(v, (dict, list)) else go_text(v) for v in group]
            out.append(" ".join(texts))
        return "".join(out)

    # node evaluation ------------------------------------------------------------------------
    def _walk(self, values: list[Any], node: Node) -> list[Any]:
        if isinstance(node, ListNode):
            return self._eval_list(values, node)
        if isinstance(node, Text):
            return [node.text]
        if isinstance(node, Literal):
            return [node.value]
        if isinstance(node, FieldNode):
            return self._eval_field(values, node)
        if isinstance(node, ArrayNode):
            return _eval_array(values, node)
        if isinstance(node, Wildcard):
            return _eval_wildcard(values)
        if isinstance(node, Recursive):
            return _eval_recursive(values)
        if isinstance(node, Union_):
            out: list[Any] = []
            for part in node.parts:
                out.extend(self._eval_list(values, part))
            return out
        if isinstance(node, Filter):
            return self._eval_filter(values, node)
        if isinstance(node, Identifier):
            if node.name == _RANGE:
                return values
            if node.name == _END:
                raise JSONPathError("not in range, nothing to end")
            raise JSONPathError(f"unrecognized identifier {node.name}")
        raise JSONPathError(f"unexpected Node {node!r}")

    def _eval_list(self, values: list[Any], node: ListNode) -> list[Any]:
        cur = values
        for child in node.nodes:
            cur = self._walk(cur, child)
        return cur

    def _eval_field(self, values: list[Any], node: FieldNode) -> list[Any]:
        if not values:
            return []
        if node.name == "":
            return [v for v in values if v is not None]
        results = [v[node.name] for v in values if isinstance(v, dict) and node.name in v]
        if not results and not self.allow_missing_keys:
            raise JSONPathError(f"{node.name} is not found")
        return results

    def _eval_filter(self, values: list[Any], node: Filter) -> list[Any]:
        results: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                raise JSONPathError(f"{go_sprint(value)} is not array or slice and cannot be filtered")
            for item in value:
                try:
                    lefts = self._eval_list([item], node.left)
                except JSONPathError:
                    if node.op == "exists":
                        continue
                    raise
                if node.op == "exists":
                    if lefts:
                        results.append(item)
                    continue
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise JSONPathError("can only compare one element at a time")
                rights = self._eval_list([item], node.right)
                if not rights:
                    continue
                if len(rights) > 1:
                    raise JSONPathError("can only compare one element at a time")
                if _compare(lefts[0], rights[0], node.op):
                    results.append(item)
        return results


def _block_kind(node: Node) -> str | None:
    if isinstance(node, ListNode):
        for child in node.nodes:
            if isinstance(child, Identifier) and child.name in (_RANGE, _END):
                return child.name
            return None
    return None


def _matching_end(nodes: list[Node], i: int) -> int:
    depth = 0
    while i < len(nodes):
        kind = _block_kind(nodes[i])
        if kind == _RANGE:
            depth += 1
        elif kind == _END:
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return len(nodes)


def _eval_array(values: list[Any], node: ArrayNode) -> list[Any]:
    results: list[Any] = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, list):
            raise JSONPathError(f"{go_type(value)} is not array or slice")
        length = len(value)
        start = node.start if node.start is not None else 0
        if start < 0:
            start += length
        stop = node.end if node.end is not None else length
        if stop < 0 or (stop == 0 and node.end_derived):
            stop += length
        if stop == start:
            return results
        if start >= length or start < 0:
            raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
        if stop > length or stop < 0:
            raise JSONPathError(f"array index out of bounds: index {stop - 1}, length {length}")
        if start > stop:
            raise JSONPathError(f"starting index {start} is greater than ending index {stop}")
        step = 1
        if node.step is not None:
            if node.step <= 0:
                raise JSONPathError("step must be > 0")
            step = node.step
        results.extend(value[start:stop:step])
    return results


def _eval_wildcard(values: list[Any]) -> list[Any]:
    results: list[Any] = []
    for value in values:
        if isinstance(value, dict):
            results.extend(value.values())
        elif isinstance(value, list):
            results.extend(value)
    return results


def _eval_recursive(values: list[Any]) -> list[Any]:
    results: list[Any] = []
    for value in values:
        children: list[Any] = []
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, list):
            children = list(value)
        if children:
            results.append(value)
            results.extend(_eval_recursive(children))
    return results


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _compare(left: Any, right: Any, op: str) -> bool:
    """text/template's eq/ne/lt/le/gt/ge on two basic values."""
    lk, rk = _kind(left), _kind(right)
    if op not in ("==", "!=", "<", ">", "<=", ">="):
        raise JSONPathError(f"unrecognized filter operator {op}")
    if lk != rk or lk == "other":
        if lk == "other" or rk == "other":
            raise JSONPathError("invalid type for comparison" if op not in ("==", "!=") else "incompatible types for comparison")
        raise JSONPathError("incompatible types for comparison")
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if lk == "bool":
        raise JSONPathError("invalid type for comparison")
    if op == "<":
        return bool(left < right)
    if op == ">":
        return bool(left > right)
    if op == "<=":
        return bool(left <= right)
    return bool(left >= right)


# ------------------------------------------------------------------------------ Go formatting


def go_float(f: float) -> str:
    """Go's ``%v`` for a float64 (strconv 'g', shortest, exponent from 1e+06 and below 1e-04)."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digits, exp = Decimal(repr(f)).as_tuple()
    digit_list = list(digits)
    while len(digit_list) > 1 and digit_list[-1] == 0:
        digit_list.pop()
        assert isinstance(exp, int)
        exp += 1
    assert isinstance(exp, int)
    nd = len(digit_list)
    dp = nd + exp
    x = dp - 1
    text_digits = "".join(str(d) for d in digit_list)
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = text_digits[0] + ("." + text_digits[1:] if nd > 1 else "")
        return f"{neg}{mant}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{text_digits}"
    if dp >= nd:
        return f"{neg}{text_digits}{'0' * (dp - nd)}"
    return f"{neg}{text_digits[:dp]}.{text_digits[dp:]}"


def go_text(v: Any) -> str:
    """``fmt.Fprint`` of a scalar JSON value as client-go's ``evalToText`` prints it."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, (dict, list)):
        return go_sprint(v)
    return str(v)


def go_sprint(v: Any) -> str:
    """``fmt.Sprint`` of a JSON value: ``map[k:v]`` (keys sorted), ``[a b]``, ``<nil>``."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_sprint(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_sprint(x) for x in v) + "]"
    return go_text(v)


def go_type(v: Any) -> str:
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    return {"bool": "bool", "int": "int64", "float": "float64", "string": "string"}.get(_kind(v), "interface {}")


def go_json(v: Any) -> str:
    """Go's ``json.Marshal``: compact, map keys sorted, ``<``, ``>``, ``&`` escaped."""
    text = json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )

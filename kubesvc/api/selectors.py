"""Label selectors: parse, match, render (apimachinery ``pkg/labels``, kubectl's formatters).

Rules kept here:
- ``parse`` is apimachinery's ``labels.Parse``: the same lexer (special symbols ``= ! ( ) , > <``,
  keywords ``in``/``notin``), the same grammar and the same error texts, raised as ClientError
  (``unable to parse requirement: ...``, ``found 'x', expected: ...``). Requirements are kept
  sorted by key; ``in``/``notin`` values are a sorted set. The empty string selects everything.
- Keys must be qualified names, values label values (63 chars, ``[A-Za-z0-9]([-A-Za-z0-9_.]*...)``),
  with the apiserver's field-error wording (``<nil>: Invalid value: ...``, ``values[0][k]: ...``).
- ``from_label_selector`` is ``metav1.LabelSelectorAsSelector``: ``None`` selects nothing, ``{}``
  everything. ``from_map`` is ``labels.SelectorFromSet`` (Service/RC selectors); ``{}`` selects
  everything (callers skip selector-less Services themselves).
- ``format_label_selector`` is kubectl's ``FormatLabelSelector`` and ``format_map`` is
  ``labels.FormatLabels``: both print ``<none>`` when empty.
- ``parse_equality_map`` is kubectl expose's ``parseLabels`` for ``--selector`` and ``-l``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesvc.errors import ClientError

__all__ = [
    "Requirement",
    "Selector",
    "parse",
    "from_label_selector",
    "from_map",
    "format_label_selector",
    "format_map",
    "parse_equality_map",
    "EVERYTHING",
    "NOTHING",
]

# ---------------------------------------------------------------------------------------------
# Name validation (apimachinery util/validation), kept local: selectors need only these two.

# Name rules are apimachinery's validation package, shared with object validation.
from kubesvc.api.names import is_qualified_name, is_valid_label_value  # noqa: E402


def _go_quote(s: str) -> str:
    from kubesvc.api.field import go_quote

    return go_quote(s)


def _go_strings(vals: Iterable[str]) -> str:
    return "[]string{" + ", ".join(_go_quote(v) for v in vals) + "}"


# ---------------------------------------------------------------------------------------------
# Requirements and selectors.

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GT, LT = "exists", "!", "gt", "lt"
_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, EXISTS, DOES_NOT_EXIST, GT, LT)
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"


def _parse_int64(s: str) -> int | None:
    """Go's strconv.ParseInt(s, 10, 64), None on error."""
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        return None
    n = int(s)
    return n if -(2**63) <= n < 2**63 else None


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GT, LT):
            if self.key not in labels or len(self.values) != 1:
                return False
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GT else have < want
        return False

    def __str__(self) -> str:
        head = ("!" if self.operator == DOES_NOT_EXIST else "") + self.key
        if self.operator in (EXISTS, DOES_NOT_EXIST):
            return head
        sym = {IN: " in ", NOT_IN: " notin ", EQUALS: "=", DOUBLE_EQUALS: "==", NOT_EQUALS: "!=",
               GT: ">", LT: "<"}[self.operator]
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            vals = f"({vals})"
        return head + sym + vals


def new_requirement(key: str, operator: str, values: Iterable[str], path: str | None = None) -> Requirement:
    """``labels.NewRequirement``: validates and raises ClientError with the aggregate message.

    ``path`` is the field path option; ``None`` renders keys as ``key`` and values as
    ``values[i][key]`` (what LabelSelectorAsSelector produces).
    """
    vals = list(values)
    errs: list[str] = []

    def child(name: str) -> str:
        return f"{path}.{name}" if path else name

    key_errs = is_qualified_name(key)
    if key_errs:
        errs.append(f"{child('key')}: Invalid value: {_go_quote(key)}: {'; '.join(key_errs)}")
    vpath = child("values")
    if operator in (IN, NOT_IN):
        if not vals:
            errs.append(f"{vpath}: Invalid value: {_go_strings(vals)}: "
                        "for 'in', 'notin' operators, values set can't be empty")
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(f"{vpath}: Invalid value: {_go_strings(vals)}: "
                        "exact-match compatibility requires one single value")
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(f"{vpath}: Invalid value: {_go_strings(vals)}: "
                        "values set must be empty for exists and does not exist")
    elif operator in (GT, LT):
        if len(vals) != 1:
            errs.append(f"{vpath}: Invalid value: {_go_strings(vals)}: "
                        "for 'Gt', 'Lt' operators, exactly one value is required")
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(f"{vpath}[{i}]: Invalid value: {_go_quote(v)}: "
                            "for 'Gt', 'Lt' operators, the value must be an integer")
    else:
        supported = ", ".join(_go_quote(o) for o in sorted(_OPERATORS))
        errs.append(f"{child('operator')}: Unsupported value: {_go_quote(operator)}: supported values: {supported}")
    for i, v in enumerate(vals):
        v_errs = is_valid_label_value(v)
        if v_errs:
            errs.append(f"{vpath}[{i}][{key}]: Invalid value: {_go_quote(v)}: {'; '.join(v_errs)}")
    if errs:
        raise ClientError(_aggregate(errs))
    return Requirement(key, operator, tuple(vals))


def _aggregate(msgs: list[str]) -> str:
    """utilerrors.Aggregate's Error(): one message bare, several as ``[a, b]`` (deduplicated)."""
    seen: list[str] = []
    for m in msgs:
        if m not in seen:
            seen.append(m)
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements. ``nothing`` marks labels.Nothing() (matches no object)."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = field(default=False)

    @property
    def empty(self) -> bool:
        """True when the selector selects everything (``labels.Selector.Empty``)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        ls = labels or {}
        return all(r.matches(ls) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


def _sorted_by_key(reqs: list[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(reqs, key=lambda r: r.key))


# ---------------------------------------------------------------------------------------------
# Lexer and parser (apimachinery labels/selector.go).

_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _IDENT, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_STRING_TO_TOKEN = {
    ")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN, "<": _LT,
    "!=": _NEQ, "notin": _NOTIN, "(": _OPEN,
}
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")


def _lex(s: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    pos, n = 0, len(s)
    while True:
        while pos < n and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= n or s[pos] == "\x00":
            items.append((_EOS, ""))
            return items
        if s[pos] in _SPECIAL:
            buf, last = "", None
            while pos < n and s[pos] in _SPECIAL:
                buf += s[pos]
                tok = _STRING_TO_TOKEN.get(buf)
                if tok is not None:
                    last = (tok, buf)
                    pos += 1
                elif last is not None:
                    break
                else:
                    pos += 1
            items.append(last if last is not None else (_ERROR, f"error expected: keyword found '{buf}'"))
        else:
            start = pos
            while pos < n and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE and s[pos] != "\x00":
                pos += 1
            word = s[start:pos]
            items.append((_STRING_TO_TOKEN.get(word, _IDENT), word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def _tok(self, i: int, values: bool) -> tuple[int, str]:
        tok, lit = self.items[i]
        if values and tok in (_IN, _NOTIN):
            tok = _IDENT
        return tok, lit

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        return self._tok(self.pos, values)

    def consume(self, values: bool = True) -> tuple[int, str]:
        self.pos += 1
        return self._tok(self.pos - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_IDENT, _NOT):
                try:
                    reqs.append(self.requirement())
                except ClientError as e:
                    raise ClientError(f"unable to parse requirement: {e.message}") from None
                t, lit2 = self.consume()
                if t == _EOS:
                    return reqs
                if t == _COMMA:
                    t2, l2 = self.lookahead()
                    if t2 not in (_IDENT, _NOT):
                        raise ClientError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise ClientError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok == _EOS:
                return reqs
            else:
                raise ClientError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        operator = ""
        tok, lit = self.consume()
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok != _IDENT:
            raise ClientError(f"found '{lit}', expected: identifier")
        key_errs = is_qualified_name(lit)
        if key_errs:
            raise ClientError(f"<nil>: Invalid value: {_go_quote(lit)}: {'; '.join(key_errs)}")
        key = lit
        if self.lookahead()[0] in (_EOS, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        if operator in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, operator, [])
        tok, lit = self.consume(values=False)
        ops = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GT, _LT: LT, _NOTIN: NOT_IN, _NEQ: NOT_EQUALS}
        if tok not in ops:
            raise ClientError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        operator = ops[tok]
        vals = self.values() if operator in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, operator, sorted(vals))

    def values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _OPEN:
            raise ClientError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_IDENT, _COMMA):
            s = self.identifiers()
            if self.consume()[0] != _CLOSE:
                raise ClientError(f"found '{lit}', expected: ')'")
            return s
        if tok == _CLOSE:
            self.consume()
            return {""}
        raise ClientError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _IDENT:
                s.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return s
                raise ClientError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not s:
                    s.add("")
                tok2 = self.lookahead()[0]
                if tok2 == _CLOSE:
                    s.add("")
                    return s
                if tok2 == _COMMA:
                    self.consume()
                    s.add("")
                continue
            raise ClientError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok = self.lookahead()[0]
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _IDENT:
            return {lit}
        raise ClientError(f"found '{lit}', expected: identifier")


def parse(text: str) -> Selector:
    """``labels.Parse`` for ``-l``: raises ClientError with apimachinery's message."""
    return Selector(_sorted_by_key(_Parser(text).parse()))


# ---------------------------------------------------------------------------------------------
# Structured selectors and formatting.


def from_label_selector(sel: Mapping[str, Any] | None) -> Selector:
    """``metav1.LabelSelectorAsSelector``: None selects nothing; ``{}`` selects everything."""
    if sel is None:
        return NOTHING
    match_labels: Mapping[str, str] = sel.get("matchLabels") or {}
    exprs: list[Mapping[str, Any]] = sel.get("matchExpressions") or []
    if not match_labels and not exprs:
        return EVERYTHING
    reqs = [new_requirement(k, EQUALS, [v]) for k, v in match_labels.items()]
    ops = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}
    for expr in exprs:
        op = expr.get("operator", "")
        if op not in ops:
            raise ClientError(f"{_go_quote(str(op))} is not a valid label selector operator")
        reqs.append(new_requirement(str(expr.get("key", "")), ops[op], list(expr.get("values") or [])))
    return Selector(_sorted_by_key(reqs))


def from_map(d: Mapping[str, str] | None) -> Selector:
    """``labels.SelectorFromSet`` for equality maps (Service and RC selectors); empty -> everything."""
    if not d:
        return EVERYTHING
    return Selector(tuple(Requirement(k, EQUALS, (d[k],)) for k in sorted(d)))


def format_label_selector(sel: Mapping[str, Any] | None) -> str:
    """kubectl's ``FormatLabelSelector``: ``app=web,tier in (a,b)``; ``<none>`` when empty."""
    try:
        text = str(from_label_selector(sel))
    except ClientError:
        return "<error>"
    return text or "<none>"


def format_map(d: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` joined by commas; ``<none>`` when empty."""
    if not d:
        return "<none>"
    return ",".join(f"{k}={d[k]}" for k in sorted(d))


def parse_equality_map(text: str) -> dict[str, str]:
    """kubectl expose's ``parseLabels`` (``--selector``, ``-l``): ``k=v,k2=v2`` only."""
    if not text:
        raise ClientError("no label spec passed")
    out: dict[str, str] = {}
    for spec in text.split(","):
        parts = spec.split("=")
        if len(parts) != 2:
            raise ClientError(f"unexpected label spec: {spec}")
        if not parts[0]:
            raise ClientError("unexpected empty label key")
        out[parts[0]] = parts[1]
    return out

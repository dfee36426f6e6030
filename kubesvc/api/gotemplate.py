"""A practical subset of Go's ``text/template`` for ``-o go-template=...`` and ``-o go-template-file=...``.

Supported (as kubectl's ``GoTemplatePrinter`` runs them over the object decoded from JSON):
- Text and actions ``{{ ... }}``, trim markers ``{{-`` and ``-}}``, comments ``{{/* ... */}}``.
- Field chains ``.a.b``, ``$``, ``$x.a``, ``(pipeline).a``; a missing key is ``<no value>``; a field of a
  missing value is ``<no value>`` too, as kubectl prints it.
- ``if`` / ``else if`` / ``else`` / ``end``, ``range`` (lists, maps in key order, with ``else``,
  ``$i, $e :=``, ``break``, ``continue``), ``with`` (and ``else``), variables ``$x := ...`` and ``$x = ...``.
- Pipelines ``a | b`` (the previous value is the last argument), literals: strings (``"..."``, raw
  backquoted), numbers, ``true``, ``false``, ``nil``.
- Functions: ``and or not len index slice printf print println eq ne lt le gt ge`` and kubectl's own
  ``base64decode`` and ``exists``.
- Values print as Go's ``fmt`` prints them: integers as int64, other numbers as float64, maps ``map[k:v]``,
  lists ``[a b]``, a missing or null value ``<no value>``.
Not supported: ``define``/``template``/``block``, method calls, ``html``/``js``/``urlquery``, complex numbers.
Errors are ``TemplateError`` with Go's wording where it matters; callers wrap them in kubectl's sentences.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from kubesvc.api.jsonpath import go_float, go_sprint

__all__ = ["Template", "TemplateError", "to_go_values"]


class TemplateError(Exception):
    pass


class _Missing:
    """A missing map key (Go's invalid reflect.Value): prints ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


def to_go_values(obj: Any) -> Any:
    """The object as kubectl hands it to the template (unstructured: integers stay int64, others float64)."""
    return json.loads(json.dumps(obj))


# ------------------------------------------------------------------------------------------ lexing

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][-+]?\d+)?))
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)


@dataclass
class Tok:
    kind: str
    text: str


def _lex_action(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m:
            raise TemplateError(f"unexpected {text[i]!r} in command")
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(Tok(kind, m.group()))
        i = m.end()
        # a field chain right after a value: (x).a or $x.a
        if kind in ("rparen", "var") and i < len(text) and text[i] == ".":
            f = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+").match(text, i)
            if f:
                toks.append(Tok("chain", f.group()))
                i = f.end()
    return toks


# ------------------------------------------------------------------------------------------ nodes


@dataclass
class Pipeline:
    decl: list[str]
    assign: bool
    cmds: list[list[Any]]  # each command: list of operands (Tok or Pipeline for parentheses, with chains)


@dataclass
class Block:
    kind: str  # if | range | with
    pipe: Pipeline
    body: list[Any] = field(default_factory=list)
    orelse: list[Any] = field(default_factory=list)


@dataclass
class Action:
    pipe: Pipeline


@dataclass
class Control:
    kind: str  # break | continue


@dataclass
class Sub:
    """A parenthesised pipeline, with an optional field chain after it."""

    pipe: Pipeline
    chain: str = ""


def _parse_pipeline(toks: list[Tok]) -> Pipeline:
    decl: list[str] = []
    assign = False
    # $x := / $x = / $i, $e :=
    if toks and toks[0].kind == "var":
        j = 1
        names = [toks[0].text]
        if len(toks) > 2 and toks[1].kind == "comma" and toks[2].kind == "var":
            names.append(toks[2].text)
            j = 3
        if len(toks) > j and toks[j].kind in ("decl", "assign"):
            decl, assign = names, toks[j].kind == "assign"
            toks = toks[j + 1:]
    pos = 0

    def parse_cmds(end_paren: bool) -> list[list[Any]]:
        nonlocal pos
        cmds: list[list[Any]] = [[]]
        while pos < len(toks):
            t = toks[pos]
            pos += 1
            if t.kind == "pipe":
                if not cmds[-1]:
                    raise TemplateError("missing command")
                cmds.append([])
            elif t.kind == "lparen":
                inner = parse_cmds(True)
                sub = Sub(Pipeline([], False, inner))
                if pos < len(toks) and toks[pos].kind == "chain":
                    sub.chain = toks[pos].text
                    pos += 1
                cmds[-1].append(sub)
            elif t.kind == "rparen":
                if not end_paren:
                    raise TemplateError("unexpected right paren")
                return cmds
            elif t.kind == "chain":
                if not cmds[-1]:
                    raise TemplateError(f"unexpected {t.text}")
                last = cmds[-1][-1]
                if isinstance(last, Tok):
                    cmds[-1][-1] = Tok(last.kind, last.text + t.text)
                else:
                    last.chain += t.text
            elif t.kind in ("decl", "assign", "comma"):
                raise TemplateError(f"unexpected {t.text!r} in command")
            else:
                cmds[-1].append(t)
        if end_paren:
            raise TemplateError("unclosed left paren")
        return cmds

    cmds = parse_cmds(False)
    if not cmds[-1]:
        raise TemplateError("missing value for command" if len(cmds) == 1 else "missing command")
    return Pipeline(decl, assign, cmds)


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


def _parse(src: str) -> list[Any]:
    """The template as a tree of text, actions and blocks."""
    root: list[Any] = []
    stack: list[tuple[Any, list[Any]]] = [(None, root)]
    pos = 0
    pending_trim = False
    for m in _ACTION.finditer(src):
        text = src[pos:m.start()]
        if pending_trim:
            text = text.lstrip(" \t\r\n")
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        if text:
            stack[-1][1].append(text)
        pending_trim = bool(m.group(3))
        pos = m.end()
        body = m.group(2).strip()
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise TemplateError("unclosed comment")
            continue
        if "{{" in body:
            raise TemplateError("unclosed action")
        word = body.split(None, 1)[0] if body else ""
        rest = body[len(word):].strip()
        if word in ("if", "range", "with"):
            blk = Block(word, _parse_pipeline(_lex_action(rest)))
            stack[-1][1].append(blk)
            stack.append((blk, blk.body))
        elif word == "else":
            owner = stack[-1][0]
            if owner is None:
                raise TemplateError("unexpected {{else}}")
            blk = owner.blk if isinstance(owner, _ElseChain) else owner
            if stack[-1][1] is blk.orelse:
                raise TemplateError("expected end; found {{else}}")
            if rest.startswith(("if ", "with ")):  # else if ...: a nested block closed by the same end
                kind, _, cond = rest.partition(" ")
                inner = Block(kind, _parse_pipeline(_lex_action(cond)))
                blk.orelse.append(inner)
                stack[-1] = (owner, blk.orelse)
                stack.append((_ElseChain(inner), inner.body))  # type: ignore[arg-type]
            else:
                stack[-1] = (owner, blk.orelse)
        elif word == "end":
            if len(stack) == 1:
                raise TemplateError("unexpected {{end}}")
            while isinstance(stack[-1][0], _ElseChain):
                stack.pop()
            stack.pop()
        elif word in ("break", "continue"):
            stack[-1][1].append(Control(word))
        elif word in ("define", "template", "block"):
            raise TemplateError(f'"{word}" is not supported by kubesvc\'s go-template')
        elif not body:
            raise TemplateError("missing value for command")
        else:
            stack[-1][1].append(Action(_parse_pipeline(_lex_action(body))))
    if "{{" in src[pos:]:
        raise TemplateError("unclosed action")
    text = src[pos:]
    if pending_trim:
        text = text.lstrip(" \t\r\n")
    if text:
        stack[-1][1].append(text)
    if len(stack) > 1:
        raise TemplateError("unexpected EOF")
    return root


class _ElseChain:
    """Marks an ``else if`` block on the parse stack: the outer ``end`` closes it too."""

    def __init__(self, blk: Block) -> None:
        self.blk = blk


# ------------------------------------------------------------------------------------------ evaluation


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def truth(v: Any) -> bool:
    if v is MISSING or v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, dict)):
        return bool(v)
    return True


def _type(v: Any) -> str:
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "string"
    return "interface {}"


def text_of(v: Any) -> str:
    """fmt.Print of a value as text/template prints an action's result."""
    if v is MISSING or v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, (dict, list)):
        return go_sprint(v)
    return str(v)


def _field(v: Any, name: str) -> Any:
    if v is MISSING or v is None:
        return MISSING  # kubectl prints <no value> for .a.b when .a is missing
    if isinstance(v, dict):
        return v.get(name, MISSING) if v.get(name) is not None else MISSING
    raise TemplateError(f"can't evaluate field {name} in type {_type(v)}")


def _chain(v: Any, chain: str) -> Any:
    for name in chain.split(".")[1:]:
        if name:
            v = _field(v, name)
    return v


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def go_printf(fmt: str, args: list[Any]) -> str:
    out: list[str] = []
    pos = 0
    ai = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if ai >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[ai]
        ai += 1
        if a is MISSING:
            a = None
        if verb in "vs":
            s = text_of(a) if a is not None else "<nil>"
            if verb == "s" and not isinstance(a, (str, dict, list)) and a is not None:
                s = f"%!s({_type(a)}={text_of(a)})"
        elif verb == "q" and isinstance(a, str):
            s = json.dumps(a, ensure_ascii=False)
        elif verb in "dxXob" and isinstance(a, int) and not isinstance(a, bool):
            s = format(a, {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb])
        elif verb in "feEgG" and isinstance(a, (int, float)) and not isinstance(a, bool):
            p = int(prec) if prec is not None else (6 if verb in "feE" else None)
            s = format(float(a), f".{p}{verb}" if p is not None else verb) if verb not in "gG" or p is not None else go_float(float(a))
        elif verb == "t" and isinstance(a, bool):
            s = "true" if a else "false"
        else:
            s = f"%!{verb}({_type(a) if a is not None else '<nil>'}={text_of(a) if a is not None else ''})" if a is not None else f"%!{verb}(<nil>)"
        if width and width != "*":
            w = int(width)
            s = s.ljust(w) if "-" in flags else (s.rjust(w, "0") if "0" in flags and verb in "dfeg" else s.rjust(w))
        out.append(s)
    out.append(fmt[pos:])
    if ai < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{_type(a)}={text_of(a)}" for a in args[ai:]) + ")")
    return "".join(out)


def _compare(a: Any, b: Any, op: str) -> bool:
    a = None if a is MISSING else a
    b = None if b is MISSING else b
    if op in ("eq", "ne"):
        same = a == b and (isinstance(a, bool) == isinstance(b, bool))
        return same if op == "eq" else not same
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        pass
    elif isinstance(a, str) and isinstance(b, str):
        pass
    else:
        raise TemplateError("incompatible types for comparison")
    return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if v is MISSING or v is None:
            raise TemplateError("index of untyped nil")
        if isinstance(v, dict):
            if not isinstance(k, str):
                raise TemplateError(f"value has type {_type(k)}; should be string")
            v = v.get(k, MISSING)
        elif isinstance(v, (list, str)):
            if not isinstance(k, (int, float)) or isinstance(k, bool):
                raise TemplateError(f"cannot index slice/array with type {_type(k)}")
            i = int(k)
            if i < 0 or i >= len(v):
                raise TemplateError(f"error calling index: index out of range: {i}")
            v = v[i] if isinstance(v, list) else float(ord(v[i]))
        else:
            raise TemplateError(f"can't index item of type {_type(v)}")
    return v


def _len(v: Any) -> int:
    if isinstance(v, (str, list, dict)):
        return len(v)
    if v is MISSING or v is None:
        raise TemplateError("error calling len: len of nil pointer")
    raise TemplateError(f"error calling len: len of type {_type(v)}")


def _base64decode(v: Any) -> str:
    try:
        return base64.b64decode(str(v), validate=True).decode("utf-8", "replace")
    except ValueError as e:
        raise TemplateError(f"error calling base64decode: {e}") from None


def _exists(v: Any, *path: Any) -> bool:
    for p in path:
        if isinstance(v, dict) and p in v:
            v = v[p]
        elif isinstance(v, list) and isinstance(p, (int, float)) and 0 <= int(p) < len(v):
            v = v[int(p)]
        else:
            return False
    return True


def _print(*args: Any) -> str:
    # fmt.Sprint: spaces between operands when neither is a string
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += text_of(a) if a is not MISSING else "<nil>"
    return out


FUNCS: dict[str, Any] = {
    "len": _len, "index": _index, "printf": lambda f, *a: go_printf(str(f), list(a)), "print": _print,
    "println": lambda *a: " ".join(text_of(x) for x in a) + "\n",
    "eq": lambda a, *b: any(_compare(a, x, "eq") for x in b), "ne": lambda a, b: _compare(a, b, "ne"),
    "lt": lambda a, b: _compare(a, b, "lt"), "le": lambda a, b: _compare(a, b, "le"),
    "gt": lambda a, b: _compare(a, b, "gt"), "ge": lambda a, b: _compare(a, b, "ge"),
    "not": lambda a: not truth(a), "base64decode": _base64decode, "exists": _exists,
    "slice": lambda v, *i: v[int(i[0]) if i else 0:int(i[1]) if len(i) > 1 else None],
}


class Template:
    """A parsed template; ``execute(data)`` returns the text (data as ``to_go_values`` makes it)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tree = _parse(source)

    def execute(self, data: Any) -> str:
        out: list[str] = []
        self._run(self.tree, data, [{"$": data}], out)
        return "".join(out)

    def _run(self, nodes: list[Any], dot: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, Action):
                v = self._pipe(node.pipe, dot, scopes)
                if not node.pipe.decl:
                    out.append(text_of(v))
            elif isinstance(node, Control):
                raise _Break() if node.kind == "break" else _Continue()
            elif isinstance(node, Block):
                self._block(node, dot, scopes, out)

    def _block(self, b: Block, dot: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
        scopes = [*scopes, {}]
        if b.kind == "range":
            v = self._eval_cmds(b.pipe.cmds, dot, scopes)
            if v is MISSING or v is None:
                items: list[tuple[Any, Any]] = []
            elif isinstance(v, dict):
                items = [(k, v[k]) for k in sorted(v)]
            elif isinstance(v, list):
                items = list(enumerate(v))
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                items = [(i, i) for i in range(int(v))]
            else:
                raise TemplateError(f"range can't iterate over {text_of(v)}")
            if not items:
                self._run(b.orelse, dot, scopes, out)
                return
            for key, item in items:
                inner = [*scopes, {}]
                if len(b.pipe.decl) == 1:
                    inner[-1][b.pipe.decl[0]] = item
                elif len(b.pipe.decl) == 2:
                    inner[-1][b.pipe.decl[0]] = key
                    inner[-1][b.pipe.decl[1]] = item
                try:
                    self._run(b.body, item, inner, out)
                except _Break:
                    break
                except _Continue:
                    continue
            return
        v = self._pipe(b.pipe, dot, scopes)
        if truth(v):
            self._run(b.body, v if b.kind == "with" else dot, scopes, out)
        else:
            self._run(b.orelse, dot, scopes, out)

    def _pipe(self, p: Pipeline, dot: Any, scopes: list[dict[str, Any]]) -> Any:
        v = self._eval_cmds(p.cmds, dot, scopes)
        for name in p.decl:
            if p.assign:
                for s in reversed(scopes):
                    if name in s:
                        s[name] = v
                        break
                else:
                    raise TemplateError(f"undefined variable: {name}")
            else:
                scopes[-1][name] = v
        return v

    def _eval_cmds(self, cmds: list[list[Any]], dot: Any, scopes: list[dict[str, Any]]) -> Any:
        v: Any = None
        for n, cmd in enumerate(cmds):
            v = self._command(cmd, dot, scopes, v if n else None, n > 0)
        return v

    def _operand(self, op: Any, dot: Any, scopes: list[dict[str, Any]]) -> Any:
        if isinstance(op, Sub):
            return _chain(self._eval_cmds(op.pipe.cmds, dot, scopes), op.chain) if op.chain else \
                self._eval_cmds(op.pipe.cmds, dot, scopes)
        t: Tok = op
        if t.kind == "field":
            return dot if t.text == "." else _chain(dot, t.text)
        if t.kind == "var":
            name, _, rest = t.text.partition(".")
            for s in reversed(scopes):
                if name in s:
                    return _chain(s[name], "." + rest) if rest else s[name]
            raise TemplateError(f"undefined variable: {name}")
        if t.kind == "string":
            return json.loads(t.text)
        if t.kind == "raw":
            return t.text[1:-1]
        if t.kind == "char":
            return float(ord(json.loads('"' + t.text[1:-1] + '"')))
        if t.kind == "number":
            text = t.text.replace("_", "")
            try:
                return int(text, 0)
            except ValueError:
                return float(text)
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return t.text == "true"
            if t.text == "nil":
                raise TemplateError("nil is not a command")
            raise TemplateError(f'function "{t.text}" not defined')
        raise TemplateError(f"unexpected {t.text}")

    def _command(self, cmd: list[Any], dot: Any, scopes: list[dict[str, Any]], prev: Any, piped: bool) -> Any:
        head = cmd[0]
        if isinstance(head, Tok) and head.kind == "ident" and head.text not in ("true", "false", "nil"):
            name = head.text
            if name in ("and", "or"):
                v: Any = None
                ops = list(cmd[1:])
                vals: list[Any] = [lambda o=o: self._operand(o, dot, scopes) for o in ops]
                if piped:
                    vals.append(lambda: prev)
                if not vals:
                    raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
                for get in vals:
                    v = get()
                    if (name == "and" and not truth(v)) or (name == "or" and truth(v)):
                        return v
                return v
            fn = FUNCS.get(name)
            if fn is None:
                raise TemplateError(f'function "{name}" not defined')
            args = [self._operand(o, dot, scopes) for o in cmd[1:]]
            if piped:
                args.append(prev)
            try:
                return fn(*args)
            except TypeError:
                raise TemplateError(f"wrong number of args for {name}") from None
        if len(cmd) > 1 or piped:
            raise TemplateError(f"can't give argument to non-function {_describe(head)}")
        return self._operand(head, dot, scopes)


def _describe(op: Any) -> str:
    return op.text if isinstance(op, Tok) else "(...)"

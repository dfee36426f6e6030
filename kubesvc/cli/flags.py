"""Command lines read as kubectl (cobra/pflag) reads them, rewritten into what click reads the same way.

Rules kept here (spf13/pflag ``flag.go``: ``parseLongArg``, ``parseShortArg``, ``parseSingleShortArg``):
- ``--name=value`` and ``--name value``; ``-n value``, ``-nvalue`` and ``-n=value`` (click alone would read
  ``-n=x`` as the value ``=x``). ``-o=`` is the value ``=``, as in pflag.
- Boolean flags take no separate value but accept ``--flag=true|false`` and ``-A=false`` (Go's ParseBool
  spellings); shorthand booleans combine (``-Aw``).
- Everything after ``--`` is an argument, untouched.
- The global flags (``--store``, ``-n/--namespace``) work after the verb too: where the command does not
  declare them itself they move before the verb, where the root reads them.
- An unknown flag, a missing value or a bad boolean is a :class:`FlagError` worded as pflag words it
  (``unknown flag: --foo``, ``unknown shorthand flag: 'x' in -xyz``, ``flag needs an argument: 'n' in -n``);
  the funnel prints it as kubectl does, ``Error: ...`` then ``See 'kubesvc get --help' for usage.``.

The command tree is walked as far as the words name sub-commands (``create service clusterip``); options are
looked up on the command reached so far, then on the root for the global ones.
"""

from __future__ import annotations

from typing import Any

GLOBAL_FLAGS = ("--store", "--namespace", "-n")
HELP_FLAGS = ("-h", "--help")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class FlagError(Exception):
    """A command-line flag error, with the command path for the ``See '... --help'`` line."""

    def __init__(self, message: str, command_path: str) -> None:
        super().__init__(message)
        self.message = message
        self.command_path = command_path


class _Flag:
    """One click Option as pflag sees it: takes a value or is a boolean (``negated``: its --no- form)."""

    def __init__(self, option: Any, negated: bool = False) -> None:
        self.option = option
        self.negated = negated
        self.is_bool = bool(getattr(option, "is_flag", False) or getattr(option, "count", False))

    def label(self) -> str:
        """pflag's ``-A, --all-namespaces`` (or just ``--name``) for error messages."""
        opts = list(self.option.opts)
        shorts = [o for o in opts if not o.startswith("--")]
        longs = [o for o in opts if o.startswith("--")]
        return ", ".join(shorts[:1] + longs[:1]) or opts[0]

    def emit(self, value: str | None) -> list[str]:
        """click tokens for this flag with ``value`` (None: a boolean given without a value)."""
        opts = list(self.option.opts)
        longs = [o for o in opts if o.startswith("--")]
        if not self.is_bool:
            assert value is not None
            return [f"{longs[0]}={value}"] if longs else [opts[0], value]
        on = True if value is None else value in _TRUE
        if self.negated:
            on = not on
        if on:
            return [longs[0] if longs else opts[0]]
        secondary = list(getattr(self.option, "secondary_opts", None) or [])
        return secondary[:1]  # no --no- form: false is the default, so nothing to pass


def _table(command: Any) -> dict[str, _Flag]:
    table: dict[str, _Flag] = {}
    for p in getattr(command, "params", []):
        if getattr(p, "param_type_name", "") != "option":
            continue
        for o in p.opts:
            table[o] = _Flag(p)
        for o in getattr(p, "secondary_opts", None) or []:
            table[o] = _Flag(p, negated=True)
    return table


def normalize(root: Any, args: list[str], prog: str = "kubesvc") -> list[str]:
    """``args`` as pflag reads them, as click tokens (see the module's rules); raises FlagError."""
    root_table = _table(root)
    command = root
    path = [prog]
    table = root_table
    before: list[str] = []  # root-level tokens (read by the root) and hoisted global flags
    after: list[str] = []  # the verb and everything that follows
    at_root = True

    def lookup(name: str) -> tuple[_Flag | None, bool]:
        """(flag, hoist): the command's own flag, else a global flag read by the root."""
        if name in HELP_FLAGS:
            return None, False
        found = table.get(name)
        if found is not None:
            return found, False
        if not at_root and name in GLOBAL_FLAGS:
            return root_table[name], True
        raise FlagError(f"unknown flag: {name}", " ".join(path))

    def put(tokens: list[str], hoist: bool) -> None:
        (before if (at_root or hoist) else after).extend(tokens)

    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if tok == "--":
            put(args[i - 1:], False)
            break
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok.partition("=")
            if name in HELP_FLAGS:
                put([tok], False)
                continue
            flag, hoist = lookup(name)
            assert flag is not None
            if flag.is_bool:
                if eq and value not in _TRUE + _FALSE:
                    raise FlagError(_bad_bool(flag, value), " ".join(path))
                put(flag.emit(value if eq else None), hoist)
                continue
            if not eq:
                if i >= len(args):
                    raise FlagError(f"flag needs an argument: {name}", " ".join(path))
                value = args[i]
                i += 1
            put(flag.emit(value), hoist)
            continue
        if tok.startswith("-") and len(tok) > 1 and not tok.startswith("--"):
            shorthands = tok[1:]
            while shorthands:
                c = shorthands[0]
                if "-" + c in HELP_FLAGS:
                    put(["-" + c], False)
                    shorthands = shorthands[1:]
                    continue
                try:
                    flag, hoist = lookup("-" + c)
                except FlagError:
                    raise FlagError(f"unknown shorthand flag: '{c}' in -{shorthands}", " ".join(path)) from None
                assert flag is not None
                if flag.is_bool:
                    if len(shorthands) > 2 and shorthands[1] == "=":
                        value = shorthands[2:]
                        if value not in _TRUE + _FALSE:
                            raise FlagError(_bad_bool(flag, value), " ".join(path))
                        put(flag.emit(value), hoist)
                        shorthands = ""
                    else:
                        put(flag.emit(None), hoist)
                        shorthands = shorthands[1:]
                    continue
                if len(shorthands) > 2 and shorthands[1] == "=":
                    value = shorthands[2:]
                elif len(shorthands) > 1:
                    value = shorthands[1:]
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: '{c}' in -{shorthands}", " ".join(path))
                put(flag.emit(value), hoist)
                shorthands = ""
            continue
        # a word: a sub-command of the command reached so far, or an argument
        sub = getattr(command, "commands", {}).get(tok) if hasattr(command, "commands") else None
        if sub is not None:
            command = sub
            path.append(tok)
            table = _table(sub)
            at_root = False
        elif at_root:
            after.extend(args[i - 1:])  # an unknown verb: click reports it
            break
        after.append(tok)
    return before + after


def _bad_bool(flag: _Flag, value: str) -> str:
    return (f'invalid argument "{value}" for "{flag.label()}" flag: strconv.ParseBool: parsing "{value}": '
            "invalid syntax")

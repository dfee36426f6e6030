"""JSON from the wire, read with bounds: what a request body may cost before any rule looks at it.

Rules kept here:
- Nesting is bounded (``MAX_DEPTH`` levels) and checked without recursion, so no later step (deep copy,
  schema walk, patch) can exhaust Python's stack on a body that parsed.
- An integer literal is bounded in digits (Python refuses to convert more than 4,300 anyway); a longer one
  is a clear error, not a ValueError from deep inside the decoder.
- A lone UTF-16 surrogate escape (``"\\ud800"``) is accepted as Go's decoder accepts it; ``schema.zero_nulls``
  turns it into U+FFFD before anything is stored.
Every failure is a ``ValueError`` whose text can go to the client as it is.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 100
MAX_INT_DIGITS = 1000


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"a number has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _parse_constant(text: str) -> float:
    raise ValueError(f"{text} is not valid JSON")


def loads(data: bytes | str) -> Any:
    """The decoded JSON value; ValueError with a client-readable reason when it is not acceptable."""
    try:
        from orjson import loads as fast_loads

        value = fast_loads(data)
    except ImportError:  # pragma: no cover - orjson is a declared dependency
        value = _slow_loads(data)
    except ValueError as e:
        if "surrogate" not in str(e) and "infinity" not in str(e):
            raise ValueError(str(e)) from None
        value = _slow_loads(data)  # the stdlib decoder keeps lone surrogates and names huge numbers
    check_depth(value)
    return value


def _slow_loads(data: bytes | str) -> Any:
    try:
        return json.loads(data, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except RecursionError:
        raise ValueError(f"the document is nested too deeply (more than {MAX_DEPTH} levels)") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8: {e.reason}") from None


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """ValueError when ``value`` nests lists/objects more than ``limit`` levels deep (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            raise ValueError(f"the document is nested too deeply (more than {limit} levels)")
        if type(v) is dict:
            stack.extend((x, depth + 1) for x in v.values() if type(x) in (dict, list))
        elif type(v) is list:
            stack.extend((x, depth + 1) for x in v if type(x) in (dict, list))

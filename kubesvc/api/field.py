"""Field errors rendered in the apiserver's wording.

A FieldError prints as ``<field path>: <body>``, where the body is
``<Type string>[: <value>][: <detail>]`` (apimachinery ``util/validation/field/errors.go``).
Values are rendered the way Go's ``%#v``/``%v`` does for the types we meet: ints and bools
bare, strings Go-quoted, string slices as ``[]string{"a", "b"}``. ``GoRaw`` passes a
pre-rendered value (e.g. the ``core.ServicePort{...}`` struct) through untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

REQUIRED = "Required"
INVALID = "Invalid"
NOT_SUPPORTED = "NotSupported"
DUPLICATE = "Duplicate"
FORBIDDEN = "Forbidden"
TOO_LONG = "TooLong"
TOO_MANY = "TooMany"
NOT_FOUND = "NotFound"
INTERNAL = "Internal"

_TYPE_TEXT = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    NOT_FOUND: "Not found",
    INTERNAL: "Internal error",
}
# Types whose body never shows the value.
_NO_VALUE = {REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL}


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()


@dataclass(frozen=True)
class GoRaw:
    """A value already rendered in Go syntax."""

    text: str


def go_quote(s: str) -> str:
    """Go's %q for ordinary strings (JSON escaping is the same for printable text)."""
    return json.dumps(s, ensure_ascii=False)


def go_value(value: Any) -> str:
    if isinstance(value, GoRaw):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
        return "[]interface {}{" + ", ".join(go_value(v) for v in value) + "}"
    if isinstance(value, dict):
        inner = ", ".join(f"{go_quote(str(k))}:{go_value(v)}" for k, v in value.items())
        return "map[string]string{" + inner + "}"
    return str(value)


@dataclass(frozen=True)
class FieldError:
    type: str
    field: str
    value: Any = OMIT
    detail: str = ""

    def body(self) -> str:
        parts = [_TYPE_TEXT[self.type]]
        if self.type not in _NO_VALUE and self.value is not OMIT:
            parts.append(go_value(self.value))
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, field, OMIT, detail)


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(INVALID, field, value, detail)


def not_supported(field: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(go_quote(s) for s in sorted(supported))
    return FieldError(NOT_SUPPORTED, field, value, detail)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, field, value)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, field, OMIT, detail)


def too_long(field: str, max_len: int) -> FieldError:
    return FieldError(TOO_LONG, field, OMIT, f"may not be more than {max_len} bytes")


def too_many(field: str, count: int, max_items: int) -> FieldError:
    return FieldError(TOO_MANY, field, count, f"must have at most {max_items} items")

"""Patch bodies -> the patched object: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the
strategic merge patch (delegated to ``kubesvc.api.apply``, the same engine client-side apply uses).

Pure: dicts in, dicts out; failures raise ``ApiError`` (Status ready).

A patched object whose JSON types do not fit the kind is refused as the apiserver's patch handler does
(``staging/.../endpoints/handlers/patch.go``): 422 Invalid with no kind or name and one cause on the
field ``patch``:
- strategic merge patch: the value is the patch as Go prints a map (``map[metadata:map[labels:x]]``)
  and the detail is the unstructured converter's error (``runtime/converter.go``): ``cannot restore map
  from string``, ``cannot restore slice from map``, ``cannot restore struct from: string``,
  ``cannot convert string to int32``;
- merge and JSON patch: the value is the patched object's JSON and the detail the JSON decoder's
  ``json: cannot unmarshal string into Go struct field ...``.
"""

from __future__ import annotations

import copy
from typing import Any

from kubesvc.apiserver.status import ApiError

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY_YAML = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (MERGE, JSON_PATCH, STRATEGIC, APPLY_YAML)


def _invalid(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _invalid(f'JSON pointer "{path}" must start with "/"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise _invalid(f'invalid array index "{token}" in "{path}"')
    i = int(token)
    limit = len(container) if for_add else len(container) - 1
    if i > limit:
        raise _invalid(f'array index {i} out of bounds in "{path}"')
    return i


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, path, False)]
        else:
            raise _invalid(f'path "{path}" does not exist')
    return cur


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _invalid(f'path "{path}" does not exist')
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, False)]
    raise _invalid(f'path "{path}" does not exist')


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], path, True), value)
    else:
        raise _invalid(f'path "{path}" does not exist')
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise _invalid("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        if tokens[-1] not in parent:
            raise _invalid(f'path "{path}" does not exist')
        return doc, parent.pop(tokens[-1])
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, tokens[-1], path, False))
    raise _invalid(f'path "{path}" does not exist')


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 over a deep copy: add, remove, replace, move, copy, test (all or nothing)."""
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch must be a JSON array of operations")
    doc = copy.deepcopy(target)
    for n, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise ApiError(400, "BadRequest", f"json patch operation {n} must have string \"op\" and \"path\"")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise ApiError(400, "BadRequest", f'json patch operation {n} ("{kind}") has no "value"')
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc, _ = _remove(doc, path) if _pointer(path) else (doc, None)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise ApiError(400, "BadRequest", f'json patch operation {n} ("{kind}") has no "from"')
            if kind == "move":
                doc, value = _remove(doc, src)
            else:
                value = copy.deepcopy(_get(doc, src))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise _invalid(f'testing value {path} failed')
        else:
            raise ApiError(400, "BadRequest", f'unsupported json patch operation "{kind}"')
    return doc


def strategic_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    from kubesvc.api.apply import apply_strategic_patch

    if not isinstance(patch, dict):
        raise ApiError(400, "BadRequest", "strategic merge patch must be a JSON object")
    return apply_strategic_patch(target, patch)


def apply(target: dict[str, Any], patch_type: str, body: Any) -> dict[str, Any]:
    """``target`` patched per ``patch_type`` (apply-patch is handled by the caller)."""
    if patch_type == MERGE:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "merge patch must be a JSON object")
        out = merge_patch(target, body)
    elif patch_type == JSON_PATCH:
        out = json_patch(target, body)
    elif patch_type == STRATEGIC:
        out = strategic_patch(target, body)
    else:
        raise ApiError(415, "UnsupportedMediaType",
                       f'the body of the request was in an unknown format - accepted media types include: {", ".join(PATCH_TYPES)}')
    if not isinstance(out, dict):
        raise _invalid("the patched document is not a JSON object")
    _check_types(out, patch_type, body)
    return out


# ----------------------------------------------------------------------------- decode errors, worded as upstream


def _patch_invalid(value: str, detail: str) -> ApiError:
    """errors.NewInvalid(schema.GroupKind{}, "", field.ErrorList{field.Invalid(field.NewPath("patch"), value, detail)})."""
    from kubesvc.api.field import go_quote

    value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)  # lone surrogates, as Go's encoder
    body = f"Invalid value: {go_quote(value)}: {detail}"
    return ApiError(422, "Invalid", f' "" is invalid: patch: {body}',
                    {"name": "", "group": "", "kind": "", "causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]})


def _check_types(obj: dict[str, Any], patch_type: str, body: Any) -> None:
    from kubesvc.api import schema

    try:
        root = schema._root(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    except (KeyError, FileNotFoundError, OSError):
        return  # an unknown kind: the identity checks after the patch say so
    if patch_type == STRATEGIC:
        problem = converter_error(root, obj)
        if problem:
            raise _patch_invalid(go_print(body), problem)
        return
    first = schema.check(obj).first_decode_error
    if first:
        import json

        raise _patch_invalid(json.dumps(obj, separators=(",", ":"), ensure_ascii=False), first)


def go_print(value: Any) -> str:
    """``fmt.Sprintf("%+v", v)`` of a decoded JSON value (maps print with sorted keys)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}".replace("e+0", "e+").replace("e-0", "e-")
    return str(value)


def _go_kind(value: Any) -> str:
    """reflect.Kind of a value of an unstructured map."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "slice"
    return "map"


def _go_type(value: Any) -> str:
    """reflect.Type.String() of a value of an unstructured map."""
    return {"slice": "[]interface {}", "map": "map[string]interface {}"}.get(_go_kind(value), _go_kind(value))


def converter_error(node: Any, value: Any) -> str | None:
    """The first error of runtime.DefaultUnstructuredConverter.FromUnstructured for ``value`` into the
    Go type ``node`` (kubesvc.api.schema's compiled tree) describes; None when it converts."""
    from kubesvc.api import schema as sc

    if value is None:
        return None
    kind = node.kind
    if kind == sc._STRUCT:
        if not isinstance(value, dict):
            return f"cannot restore struct from: {_go_kind(value)}"
        for key, child in node.fields.items():
            if key in value:
                found = converter_error(child, value[key])
                if found:
                    return found
        return None
    if kind == sc._MAP:
        if not isinstance(value, dict):
            return f"cannot restore map from {_go_kind(value)}"
        for item in value.values():
            found = converter_error(node.item, item)
            if found:
                return found
        return None
    if kind == sc._ARRAY:
        if not isinstance(value, list):
            return f"cannot restore slice from {_go_kind(value)}"
        for item in value:
            found = converter_error(node.item, item)
            if found:
                return found
        return None
    if kind == sc._BYTES:
        if isinstance(value, str | list):
            return None
        return f"cannot restore slice from {_go_kind(value)}"
    want = {sc._STRING: "string", sc._BOOL: "bool", sc._FLOAT: "float64"}.get(kind)
    if kind == sc._INT:
        want = node.go or "int64"
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        if isinstance(value, float) and value.is_integer():
            return None
    elif want == "string" and isinstance(value, str):
        return None
    elif want == "bool" and isinstance(value, bool):
        return None
    elif want == "float64" and isinstance(value, int | float) and not isinstance(value, bool):
        return None
    if want is None:
        return None  # IntOrString, Quantity, Time, any: their own unmarshalers (the decoder's checks follow)
    return f"cannot convert {_go_type(value)} to {want}"

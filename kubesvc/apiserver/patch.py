"""Patch bodies -> the patched object: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the
strategic merge patch (delegated to ``kubesvc.api.apply``, the same engine client-side apply uses).

Pure: dicts in, dicts out; failures raise ``ApiError`` (Status ready).
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
    return out

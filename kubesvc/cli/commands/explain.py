"""`kubesvc explain RESOURCE[.field...]`: the fields of a kind, from the OpenAPI v3 document the API server serves
(built from schemas/), printed in kubectl explain's layout (its v3 ``plaintext`` template).

Rules kept here: fields sorted by name; ``<[]T>``, ``<map[string]T>``, ``<Object>`` and a referenced type's last
name segment as kubectl guesses them; ``-required-`` from the schema's ``required``; descriptions wrapped at
76 - indent columns, ``<no description>`` / ``<empty>`` when there is none; ``--recursive`` prints one line per
field, nested two spaces a level, stopping at a type already being printed (a cycle).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.errors import ClientError

_PREFIX = "#/components/schemas/"


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_PREFIX):
        return doc["components"]["schemas"].get(ref[len(_PREFIX):], schema)
    return schema


def type_guess(s: dict[str, Any], doc: dict[str, Any]) -> str:
    if "items" in s:
        return "[]" + type_guess(s["items"], doc)
    if isinstance(s.get("additionalProperties"), dict):
        return "map[string]" + type_guess(s["additionalProperties"], doc)
    if s.get("allOf") and not s.get("properties") and len(s["allOf"]) == 1:
        return type_guess(s["allOf"][0], doc)
    if "$ref" in s:
        target = _resolve(s, doc)
        if target is s or not target.get("type") or target.get("type") == "object":
            return s["$ref"].rsplit("/", 1)[-1].rsplit(".", 1)[-1] or "Object"
        return str(target["type"])
    t = s.get("type")
    return "Object" if not t or t == "object" else str(t)


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap (goutils.Wrap, as sprig's ``wrap``): existing newlines kept, long words unbroken."""
    out: list[str] = []
    for line in text.split("\n"):
        cur = ""
        for word in line.split(" "):
            if cur and len(cur) + 1 + len(word) > width:
                out.append(cur)
                cur = word
            else:
                cur = f"{cur} {word}" if cur else word
        out.append(cur)
    return out


def _block(text: str, width: int, indent: int) -> str:
    return "\n".join(" " * indent + line for line in _wrap(text, width))


def _description(s: dict[str, Any], doc: dict[str, Any]) -> str:
    r = _resolve(s, doc)
    out = r["description"] + "\n" if r.get("description") else ""
    for sub in r.get("allOf", []):
        out += _description(sub, doc)
    if isinstance(r.get("items"), dict):
        out += _description(r["items"], doc)
    if isinstance(r.get("additionalProperties"), dict):
        out += _description(r["additionalProperties"], doc)
    return out


def _field_list(s: dict[str, Any], doc: dict[str, Any], level: int, recursive: bool, seen: frozenset[str]) -> str:
    ref = s.get("$ref", "")
    if ref and ref in seen:
        return ""
    seen = seen | {ref} if ref else seen
    r = _resolve(s, doc)
    out = ""
    for name, sub in sorted((r.get("properties") or {}).items()):
        pad = level * 2
        out += " " * pad + f"{name}\t<{type_guess(sub, doc)}>"
        if name in (r.get("required") or []):
            out += " -required-"
        out += "\n"
        if recursive:
            out += _field_list(sub, doc, level + 1, recursive, seen)
        else:
            out += _block(sub.get("description") or "<no description>", 78 - pad, pad + 2) + "\n\n"
    for sub in r.get("allOf", []):
        out += _field_list(sub, doc, level, recursive, seen)
    if isinstance(r.get("items"), dict):
        out += _field_list(r["items"], doc, level, recursive, seen)
    if isinstance(r.get("additionalProperties"), dict):
        out += _field_list(r["additionalProperties"], doc, level, recursive, seen)
    return out


def _output(s: dict[str, Any], doc: dict[str, Any], path: list[str], recursive: bool) -> str | None:
    """kubectl's ``output`` template: follow ``path``, then DESCRIPTION and FIELDS; None when a field is missing."""
    r = _resolve(s, doc)
    if not path:
        text = "DESCRIPTION:\n" + _block(_description(s, doc) or "<empty>", 76, 4) + "\n"
        fields = _field_list(r, doc, 1, recursive, frozenset())
        return text + ("FIELDS:\n" + fields if fields else "")
    props = r.get("properties") or {}
    if path[0] in props:
        sub = props[path[0]]
        head = f"FIELD: {path[0]} <{type_guess(sub, doc)}>\n\n\n" if len(path) == 1 else ""
        rest = _output(sub, doc, path[1:], recursive)
        return None if rest is None else head + rest
    if isinstance(r.get("items"), dict):
        return _output(r["items"], doc, path, recursive)
    if isinstance(r.get("additionalProperties"), dict):
        return _output(r["additionalProperties"], doc, path, recursive)
    for sub in r.get("allOf", []):
        found = _output(sub, doc, path, recursive)
        if found:
            return found
    return None


def render(doc: dict[str, Any], group: str, version: str, kind: str, path: list[str], recursive: bool) -> str:
    """What kubectl explain prints for ``kind`` (and the field ``path``) from an OpenAPI v3 document (for a
    missing field, the head is printed before the error, as kubectl does)."""
    gvk = {"group": group, "kind": kind, "version": version}
    head = (f"GROUP:      {group}\n" if group else "") + f"KIND:       {kind}\nVERSION:    {version}\n\n"
    for schema in doc["components"]["schemas"].values():
        if gvk in (schema.get("x-kubernetes-group-version-kind") or []):
            body = _output(schema, doc, path, recursive)
            if body is None:  # kubectl has printed the head when it finds out
                common.out(head)
                raise ClientError(f'field "{path[-1]}" does not exist')
            return head + body + "\n"
    raise ClientError(f"GVK {group}/{version}, Kind={kind} not found in OpenAPI schema")


def explain(
    resource: Annotated[str, typer.Argument(help="TYPE[.FIELD...], e.g. svc.spec.ports or deployments.apps.spec.")],
    recursive: Annotated[bool, typer.Option("--recursive", help="Print every nested field, one line each.")] = False,
    api_version: Annotated[str | None, typer.Option("--api-version", help="The group/version of the kind, e.g. apps/v1.")] = None,
) -> None:
    """Describe the fields of a kind, as kubectl explain prints them (from schemas/; no store needed)."""
    from kubesvc.api.kinds import KINDS, resolve
    from kubesvc.apiserver import openapi

    words = resource.split(".")
    kind = None
    for n in range(len(words), 0, -1):  # the longest prefix naming a resource: deployments.apps.spec
        try:
            kind = resolve(".".join(words[:n]))
        except ClientError:
            continue
        words = words[n:]
        break
    if kind is None:  # kubectl explain prints the RESTMapper's error bare, without "error: "
        sys.stderr.write(f'the server doesn\'t have a resource type "{words[0]}"\n')
        raise common.Exit(1)
    if api_version and api_version != kind.api_version:
        match = next((k for k in KINDS if k.kind == kind.kind and k.api_version == api_version), None)
        if match is None:
            group, _, version = api_version.rpartition("/")
            gvr = f"{group}/{version}, Resource={kind.plural}"
            if any(k.api_version == api_version for k in KINDS):
                raise ClientError(f"GVR ({gvr}) not found in OpenAPI schema")
            raise ClientError(f'couldn\'t find resource for "{gvr}"')
        kind = match
    docs = openapi.build_v3(tuple(s for s in openapi.served() if s.kind.api_version == kind.api_version))
    doc = docs[openapi.url_part(kind.api_version)]
    common.out(render(doc, kind.group, kind.version, kind.kind, words, recursive))

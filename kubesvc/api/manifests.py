"""Read ``-f`` sources and dump objects as kubectl prints them.

Rules kept here (kubectl's resource builder, spec §9.2):
- ``-f`` takes files, directories (only .json/.yaml/.yml; subdirectories with -R; lexical order)
  and ``-`` (stdin, reported as ``STDIN``).
- A file holds several YAML documents; ``kind: List`` (any ``*List``) is flattened into items.
- YAML is read as kubectl reads it (YAML 1.1: ``yes`` is a bool, ``0755`` is 493) by ``yamlload``, with
  libyaml's C parser; JSON by the json module. See docs/concepts/validation.md#reading-manifests.
- Input is untrusted: size (``MAX_INPUT_BYTES``), nesting depth (``MAX_DEPTH``), values (``MAX_NODES``, aliases
  counted as what they expand to, before anything expands) are bounded, and every failure is a one-line
  ``ClientError`` naming the source. Nothing here touches the store.
- Dumps are kubectl's: YAML block style, keys sorted, list items not indented under their key.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kubesvc.errors import ClientError

MAX_INPUT_BYTES = 32 * 1024 * 1024
MANIFEST_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass
class Manifest:
    """One object read from a source, with where it came from (for error messages)."""

    obj: dict[str, Any]
    source: str


def expand_paths(paths: Iterable[str], recursive: bool) -> list[str]:
    out: list[str] = []
    for p in paths:
        if p == "-":
            out.append("-")
            continue
        if p.startswith(("http://", "https://")):
            raise ClientError(f'the URL "{p}" cannot be read: kubesvc reads local files and STDIN only')
        path = Path(p)
        if not path.exists():
            raise ClientError(f'the path "{p}" does not exist')
        if path.is_dir():
            out.extend(_walk(path, recursive))
        else:
            out.append(p)
    return out


def _walk(d: Path, recursive: bool) -> list[str]:
    files: list[str] = []
    for entry in sorted(os.listdir(d)):
        full = d / entry
        if full.is_dir():
            if recursive:
                files.extend(_walk(full, recursive))
        elif full.suffix in MANIFEST_SUFFIXES:
            files.append(str(full))
    return files


def read_sources(paths: Iterable[str], recursive: bool = False, stdin: BinaryIO | None = None) -> list[Manifest]:
    """All objects from ``-f`` arguments, in order. Raises ClientError on the first bad source."""
    manifests: list[Manifest] = []
    for p in expand_paths(paths, recursive):
        if p == "-":
            raw = (stdin or sys.stdin.buffer).read(MAX_INPUT_BYTES + 1)
            source = "STDIN"
        else:
            try:
                with open(p, "rb") as fh:
                    raw = fh.read(MAX_INPUT_BYTES + 1)
            except OSError as exc:
                raise ClientError(f'the path "{p}" cannot be read: {exc.strerror}') from None
            source = p
        for obj in parse_documents(raw, source):
            manifests.append(Manifest(obj, source))
    return manifests


def parse_documents(raw: bytes, source: str) -> list[dict[str, Any]]:
    """Bytes -> list of objects (documents split, Lists flattened, empty documents dropped)."""
    if len(raw) > MAX_INPUT_BYTES:
        raise ClientError(f"error parsing {source}: input is larger than {MAX_INPUT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError(f"error parsing {source}: input is not UTF-8 text") from None
    if "\x00" in text:
        raise ClientError(f"error parsing {source}: input contains binary data")
    docs = _load_all(text, source)
    objects: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ClientError(f"error parsing {source}: json: cannot unmarshal {_json_type(doc)} into Go value of type map[string]interface {{}}")
        objects.extend(_flatten(doc, source))
    return objects


def _json_type(v: Any) -> str:
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "value"


def _flatten(doc: dict[str, Any], source: str) -> list[dict[str, Any]]:
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        out: list[dict[str, Any]] = []
        for item in doc["items"]:
            if not isinstance(item, dict):
                raise ClientError(f"error parsing {source}: List items must be objects")
            out.extend(_flatten(item, source))
        return out
    return [doc]


def _check_shape(doc: Any, source: str) -> None:
    """Bound depth and value count of a JSON document (YAML is bounded while it is composed, in yamlload)."""
    from kubesvc.api.yamlload import MAX_DEPTH, MAX_NODES

    count = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ClientError(f"error parsing {source}: document is too large (more than {MAX_NODES} values)")
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise ClientError(f"error parsing {source}: document is nested too deeply (more than {MAX_DEPTH} levels)")
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN/Infinity; Go's does not


def _load_all(text: str, source: str) -> list[Any]:
    from kubesvc.api import yamlload  # imported on first read: `get` and CLI start-up never pay for it

    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text, parse_float=_json_float, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            pass  # may still be YAML (flow style); fall through for the YAML error text
        else:
            _check_shape(doc, source)
            return [doc]
    try:
        return yamlload.load_all(text)
    except yamlload.YAMLLoadError as exc:
        raise ClientError(f"error parsing {source}: {exc}") from None


def _json_float(text: str) -> int | float:
    from kubesvc.api.yamlload import json_number

    return json_number(float(text))


# ---------------------------------------------------------------------------------------- dumping


def to_json(obj: Any, sort_keys: bool = False) -> str:
    """kubectl's -o json: 4-space indent; keys sorted for unstructured objects (Go sorts map keys),
    in the object's own (struct) order for typed ones."""
    return json.dumps(obj, indent=4, ensure_ascii=False, sort_keys=sort_keys) + "\n"


# Go's yaml (v2, YAML 1.1) double-quotes a string whose plain form would read back as another type.
_YAML11_NON_STR = None


def _go_quotes(s: str) -> bool:
    global _YAML11_NON_STR
    if _YAML11_NON_STR is None:
        import re

        _YAML11_NON_STR = re.compile(
            r"""^(?:|~|null|Null|NULL
            |y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
            |[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+
            |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
            |[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)
            |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
            |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
            |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?
            )$""",
            re.X,
        )
    return bool(_YAML11_NON_STR.match(s))


def to_yaml(obj: Any) -> str:
    """kubectl's -o yaml: block style, keys sorted, sequences not indented under their key, strings
    quoted the way Go's yaml quotes them (double quotes for "80", "true", timestamps; literal blocks
    for multi-line text)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.representer import SafeRepresenter

    class _GoRepresenter(SafeRepresenter):
        pass

    def _str(rep: Any, data: str) -> Any:
        if "\n" in data:
            return rep.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        if _go_quotes(data):
            return rep.represent_scalar("tag:yaml.org,2002:str", data, style='"')
        return rep.represent_scalar("tag:yaml.org,2002:str", data)

    _GoRepresenter.add_representer(str, _str)
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = _GoRepresenter
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=2, offset=0)
    yaml.width = 4096
    yaml.sort_base_mapping_type_on_output = True  # type: ignore[attr-defined,assignment]
    buf = io.StringIO()
    yaml.dump(_sorted(obj), buf)
    return buf.getvalue()


def _sorted(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _sorted(node[k]) for k in sorted(node)}
    if isinstance(node, list):
        return [_sorted(v) for v in node]
    return node

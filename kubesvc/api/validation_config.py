"""ConfigMap, Secret, Namespace and Event validation.

Rules kept here (``pkg/apis/core/validation/validation.go``):
- ConfigMap/Secret keys match ``[-._a-zA-Z0-9]+``, at most 253 characters, not ``.``/``..`` nor
  starting with ``..``; errors at ``data[<key>]`` (``binaryData[<key>]``). A key may not be in
  both ``data`` and ``binaryData``.
- Total size at most 1 MiB (1048576 bytes): ConfigMap reports it at ``[]`` (sic, as the
  apiserver prints it), Secret at ``data``. Secret data values are base64 text; their decoded
  size counts. ``stringData`` is counted as if merged into ``data``.
- Secret ``type`` is immutable; an ``immutable: true`` ConfigMap/Secret keeps its data.
  ``kubernetes.io/tls`` needs ``tls.crt`` and ``tls.key``.
- Namespace: metadata only (DNS-1123 label name, no namespace); finalizers are qualified names
  or ``kubernetes``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kubesvc.api import field as f
from kubesvc.api import names
from kubesvc.api.field import FieldError
from kubesvc.api.validation_meta import (
    immutable,
    qualified_name,
    validate_object_meta,
    validate_object_meta_update,
)

MAX_SIZE = 1024 * 1024
IMMUTABLE_SET = "field is immutable when `immutable` is set"


def _key_errors(bag: dict[str, Any], prefix: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in bag:
        errs += [f.invalid(f"{prefix}[{key}]", key, m) for m in names.is_config_map_key(key)]
    return errs


def validate_config_map(cm: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(cm)
    data = cm.get("data") or {}
    binary = cm.get("binaryData") or {}
    total = 0
    for key, value in data.items():
        errs += [f.invalid(f"data[{key}]", key, m) for m in names.is_config_map_key(key)]
        if key in binary:
            errs.append(f.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(str(value or "").encode())
    errs += _key_errors(binary, "binaryData")
    total += sum(_decoded_len(v) for v in binary.values())
    if total > MAX_SIZE:
        errs.append(f.too_long("[]", MAX_SIZE))
    return errs


def _decoded_len(value: Any) -> int:
    text = str(value or "")
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return len(text.encode())


def validate_secret(secret: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(secret)
    data = dict(secret.get("data") or {})
    string_data = secret.get("stringData") or {}
    errs += _key_errors(data, "data")
    errs += _key_errors({k: v for k, v in string_data.items() if k not in data}, "data")
    total = sum(_decoded_len(v) for k, v in data.items() if k not in string_data)
    total += sum(len(str(v or "").encode()) for v in string_data.values())
    if total > MAX_SIZE:
        errs.append(f.too_long("data", MAX_SIZE))
    keys = set(data) | set(string_data)
    if secret.get("type") == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in keys:
                errs.append(f.required(f"data[{key}]"))
    return errs


def validate_config_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """ConfigMap and Secret updates: Secret type immutable; ``immutable: true`` freezes the data."""
    errs = validate_object_meta_update(new, old)
    if new.get("kind") == "Secret":
        errs += immutable("type", new.get("type") or "", old.get("type") or "")
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(f.forbidden("immutable", IMMUTABLE_SET))
        bags = ("data",) if new.get("kind") == "Secret" else ("data", "binaryData")
        for bag in bags:
            if (new.get(bag) or None) != (old.get(bag) or None):
                errs.append(f.forbidden(bag, IMMUTABLE_SET))
    validate_kind = validate_secret if new.get("kind") == "Secret" else validate_config_map
    return errs + validate_kind(new)


def validate_namespace(ns: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(ns)
    for finalizer in (ns.get("spec") or {}).get("finalizers") or []:
        errs += qualified_name(finalizer, "spec.finalizers")
        if "/" not in finalizer and finalizer != "kubernetes":
            detail = "name is neither a standard finalizer name nor is it fully qualified"
            errs.append(f.invalid("spec.finalizers", finalizer, detail))
    return errs


def validate_namespace_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new, old)


def validate_event(event: dict[str, Any]) -> list[FieldError]:
    """Events: metadata plus the involved object's namespace agreeing with the Event's."""
    errs = validate_object_meta(event)
    involved = event.get("involvedObject") or {}
    event_ns = (event.get("metadata") or {}).get("namespace") or ""
    involved_ns = involved.get("namespace") or ""
    if involved_ns and involved_ns != event_ns:
        errs.append(f.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    return errs

"""Object metadata rules (apimachinery ``api/validation/objectmeta.go``) and shared field checks.

Rules kept here:
- Name: ``metadata.name: Required value: name or generateName is required`` when both are empty;
  otherwise each name-rule message is one ``Invalid`` error (generateName is checked with a
  trailing dash allowed). The rule per kind is ``NAME_RULES`` (Service: DNS-1035 label; Namespace:
  DNS-1123 label; the rest: DNS-1123 subdomain).
- Namespace: ``Required value`` on namespaced kinds, a DNS-1123 label; ``Forbidden: not allowed on
  this type`` on cluster-scoped kinds.
- Labels: every error is reported at the map's path (``metadata.labels``) with the bad key or
  value as the value. Annotations: qualified-name keys (checked lower-cased), total size of keys
  plus values at most 262144 bytes.
- On update, name, namespace, uid, creationTimestamp, deletionTimestamp and
  deletionGracePeriodSeconds are immutable (``field is immutable``). resourceVersion is the store's
  business (unconditional updates), so it is not checked here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubesvc.api import field as f
from kubesvc.api import names
from kubesvc.api.field import FieldError, GoRaw
from kubesvc.api.kinds import BY_KIND

NameRule = Callable[[str], list[str]]

NAME_RULES: dict[str, NameRule] = {
    "Service": names.is_dns1035_label,
    "Namespace": names.is_dns1123_label,
}
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
IMMUTABLE = "field is immutable"


def name_rule(kind: str) -> NameRule:
    return NAME_RULES.get(kind, names.is_dns1123_subdomain)


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, value in (labels or {}).items():
        errs += [f.invalid(path, key, m) for m in names.is_qualified_name(key)]
        value = "" if value is None else str(value)
        errs += [f.invalid(path, value, m) for m in names.is_valid_label_value(value)]
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    total = 0
    for key, value in (annotations or {}).items():
        errs += [f.invalid(path, key, m) for m in names.is_qualified_name(key.lower())]
        total += len(key.encode()) + len(str(value or "").encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(f.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def validate_object_meta(obj: dict[str, Any], path: str = "metadata") -> list[FieldError]:
    """ValidateObjectMeta with the kind's name rule and scope."""
    kind = obj.get("kind", "")
    meta = obj.get("metadata") or {}
    rule = name_rule(kind)
    errs: list[FieldError] = []
    generate = meta.get("generateName") or ""
    if generate:
        errs += [f.invalid(f"{path}.generateName", generate, m) for m in rule(names.mask_trailing_dash(generate))]
    name = meta.get("name") or ""
    if not name:
        errs.append(f.required(f"{path}.name", "name or generateName is required"))
    else:
        errs += [f.invalid(f"{path}.name", name, m) for m in rule(name)]
    namespace = meta.get("namespace") or ""
    spec = BY_KIND.get(kind)
    if spec is None or spec.namespaced:
        if not namespace:
            errs.append(f.required(f"{path}.namespace"))
        else:
            errs += [f.invalid(f"{path}.namespace", namespace, m) for m in names.is_dns1123_label(namespace)]
    elif namespace:
        errs.append(f.forbidden(f"{path}.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        errs.append(f.invalid(f"{path}.generation", generation, "must be greater than or equal to 0"))
    errs += validate_labels(meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    return errs


def validate_object_meta_update(new: dict[str, Any], old: dict[str, Any], path: str = "metadata") -> list[FieldError]:
    """ValidateObjectMetaUpdate: the immutable fields, then labels and annotations of the new object."""
    nm = new.get("metadata") or {}
    om = old.get("metadata") or {}
    errs: list[FieldError] = []
    old_gen, new_gen = om.get("generation") or 0, nm.get("generation") or 0
    if new_gen < old_gen:
        errs.append(f.invalid(f"{path}.generation", new_gen, "must not be decremented"))
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if (nm.get(key) or None) != (om.get(key) or None):
            errs.append(f.invalid(f"{path}.{key}", _meta_value(nm.get(key)), IMMUTABLE))
    errs += validate_labels(nm.get("labels"), f"{path}.labels")
    errs += validate_annotations(nm.get("annotations"), f"{path}.annotations")
    return errs


def _meta_value(value: Any) -> Any:
    return "" if value is None else value


def immutable(path: str, new: Any, old: Any) -> list[FieldError]:
    """ValidateImmutableField."""
    return [] if new == old else [f.invalid(path, new, IMMUTABLE)]


def dns1123_label(value: str, path: str) -> list[FieldError]:
    return [f.invalid(path, value, m) for m in names.is_dns1123_label(value)]


def dns1123_subdomain(value: str, path: str) -> list[FieldError]:
    return [f.invalid(path, value, m) for m in names.is_dns1123_subdomain(value)]


def qualified_name(value: str, path: str) -> list[FieldError]:
    return [f.invalid(path, value, m) for m in names.is_qualified_name(value)]


def port_num_or_name(value: Any, path: str) -> list[FieldError]:
    """ValidatePortNumOrName for an int-or-string."""
    if isinstance(value, str):
        return [f.invalid(path, value, m) for m in names.is_valid_port_name(value)]
    return [f.invalid(path, value, m) for m in names.is_valid_port_num(value)]


def not_supported_in_order(path: str, value: Any, supported: list[str]) -> FieldError:
    """NotSupported with the list in Go's order (callers that do not sort, e.g. restartPolicy)."""
    detail = "supported values: " + ", ".join(f.go_quote(s) for s in supported)
    return FieldError(f.NOT_SUPPORTED, path, value, detail)


def go_string_map(value: Any) -> Any:
    """A map[string]string as Go's %#v prints it (keys sorted, nil when absent)."""
    if not value:
        return GoRaw("map[string]string(nil)") if value is None else GoRaw("map[string]string{}")
    return {k: str(value[k]) for k in sorted(value)}


def go_string_slice(value: Any) -> Any:
    if not value:
        return GoRaw("[]string(nil)") if value is None else GoRaw("[]string{}")
    return list(value)


def nonnegative(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [f.invalid(path, value, "must be greater than or equal to 0")]
    return []

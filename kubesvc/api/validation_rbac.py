"""Role, ClusterRole, RoleBinding and ClusterRoleBinding rules (``pkg/apis/rbac/validation``).

Rules kept here:
- Names are path segments (``may not be '.'``, ``may not contain '/'``...), not DNS names.
- A rule needs verbs; resource rules need apiGroups and resources; nonResourceURLs only in
  ClusterRoles and never with resources.
- Bindings: roleRef.apiGroup rbac.authorization.k8s.io; kind Role or ClusterRole (ClusterRoleBinding:
  ClusterRole); name required; roleRef is immutable (``cannot change roleRef``). Subjects: kind
  ServiceAccount, User or Group; name required; a ServiceAccount's apiGroup is "" and, in a
  ClusterRoleBinding, its namespace is required; User and Group use rbac.authorization.k8s.io.
"""

from __future__ import annotations

from typing import Any

from kubesvc.api import field as f
from kubesvc.api.field import FieldError
from kubesvc.api.validation_meta import (
    not_supported_in_order,
    validate_object_meta,
    validate_object_meta_update,
)

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"


def path_segment_errors(name: str) -> list[str]:
    """path.IsValidPathSegmentName."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def _meta(obj: Obj) -> list[FieldError]:
    errs = [e for e in validate_object_meta(obj) if e.field not in ("metadata.name", "metadata.generateName")
            or e.type == f.REQUIRED]
    name = (obj.get("metadata") or {}).get("name") or ""
    if name:
        errs[:0] = [f.invalid("metadata.name", name, m) for m in path_segment_errors(name)]
    return errs


def _rules(obj: Obj, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, rule in enumerate(obj.get("rules") or []):
        rule = rule or {}
        path = f"rules[{i}]"
        if not rule.get("verbs"):
            errs.append(f.required(f"{path}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            if namespaced:
                errs.append(f.invalid(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                errs.append(f.invalid(f"{path}.nonResourceURLs", urls,
                                      "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not rule.get("apiGroups"):
            errs.append(f.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            errs.append(f.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def validate_role(role: Obj) -> list[FieldError]:
    return _meta(role) + _rules(role, role.get("kind") == "Role")


def validate_role_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_role(new)[len(_meta(new)):]


def validate_binding(binding: Obj) -> list[FieldError]:
    errs = _meta(binding)
    cluster = binding.get("kind") == "ClusterRoleBinding"
    ref = binding.get("roleRef") or {}
    if ref.get("apiGroup") != GROUP:
        errs.append(not_supported_in_order("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kinds = ["ClusterRole"] if cluster else ["Role", "ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.append(not_supported_in_order("roleRef.kind", ref.get("kind") or "", kinds))
    name = ref.get("name") or ""
    if not name:
        errs.append(f.required("roleRef.name"))
    else:
        errs += [f.invalid("roleRef.name", name, m) for m in path_segment_errors(name)]
    for i, subject in enumerate(binding.get("subjects") or []):
        subject = subject or {}
        path = f"subjects[{i}]"
        if not subject.get("name"):
            errs.append(f.required(f"{path}.name"))
        kind = subject.get("kind") or ""
        group = subject.get("apiGroup") or ""
        if kind == "ServiceAccount":
            if group:
                errs.append(not_supported_in_order(f"{path}.apiGroup", group, [""]))
            if cluster and not subject.get("namespace"):
                errs.append(f.required(f"{path}.namespace"))
        elif kind in ("User", "Group"):
            if group != GROUP:
                errs.append(not_supported_in_order(f"{path}.apiGroup", group, [GROUP]))
        else:
            errs.append(not_supported_in_order(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return errs


def validate_binding_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    if new.get("roleRef") != old.get("roleRef"):
        errs.append(f.invalid("roleRef", new.get("roleRef"), "cannot change roleRef"))
    return errs + validate_binding(new)[len(_meta(new)):]

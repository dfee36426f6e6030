"""Ingress and IngressClass validation (``pkg/apis/networking/validation/validation.go``).

Rules kept here (dataplane spec §3.2):
- ``spec`` needs ``defaultBackend`` or ``rules``; each rule host is a DNS-1123 subdomain (or
  ``*.`` wildcard form), never an IP; ``http.paths`` required when ``http`` is present.
- ``pathType`` is required (``pathType must be specified``); Exact/Prefix paths are absolute and
  free of ``//``, ``/./``, ``/../``, ``%2f``, ``%2F`` and of a trailing ``/..`` or ``/.``;
  ImplementationSpecific paths, when set, are absolute.
- A backend is exactly one of service/resource; a service backend names a DNS-1035 Service and
  exactly one of port number (1..65535) or port name (IANA_SVC_NAME).
- TLS hosts like rule hosts; secretName and ingressClassName are DNS-1123 subdomains; on create
  the ``kubernetes.io/ingress.class`` annotation must agree with ``ingressClassName``.
- IngressClass: ``spec.controller`` required, a domain-prefixed path of at most 250 bytes,
  immutable on update; parameters need kind and name, scope Cluster or Namespace.
"""

from __future__ import annotations

from typing import Any

from kubesvc.api import field as f
from kubesvc.api import names
from kubesvc.api.field import FieldError, GoRaw
from kubesvc.api.validation_meta import (
    dns1123_subdomain,
    immutable,
    validate_object_meta,
    validate_object_meta_update,
)

PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
MAX_CONTROLLER_LEN = 250


def validate_ingress(ing: dict[str, Any], creating: bool = True) -> list[FieldError]:
    errs = validate_object_meta(ing)
    spec = ing.get("spec") or {}
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        rules_value = GoRaw("[]networking.IngressRule(nil)")
        errs.append(f.invalid("spec", rules_value, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        errs += _validate_backend(spec["defaultBackend"] or {}, "spec.defaultBackend")
    for i, rule in enumerate(rules):
        rule = rule or {}
        path = f"spec.rules[{i}]"
        host = rule.get("host") or ""
        if host:
            if names.parse_ip(host) is not None:
                errs.append(f.invalid(f"{path}.host", host, "must be a DNS name, not an IP address"))
            errs += _host_errors(host, f"{path}.host")
        http = rule.get("http")
        if http is not None:
            paths = (http or {}).get("paths") or []
            if not paths:
                errs.append(f.required(f"{path}.http.paths"))
            for j, p in enumerate(paths):
                errs += _validate_path(p or {}, f"{path}.http.paths[{j}]")
    for i, tls in enumerate(spec.get("tls") or []):
        tls = tls or {}
        for j, host in enumerate(tls.get("hosts") or []):
            errs += _host_errors(host, f"spec.tls[{i}].hosts[{j}]")
        if tls.get("secretName"):
            errs += dns1123_subdomain(tls["secretName"], f"spec.tls[{i}].secretName")
    class_name = spec.get("ingressClassName")
    if class_name:
        errs += dns1123_subdomain(class_name, "spec.ingressClassName")
    annotation = ((ing.get("metadata") or {}).get("annotations") or {}).get(CLASS_ANNOTATION)
    if creating and class_name is not None and annotation is not None and annotation != class_name:
        detail = "must match `ingressClassName` when both are specified"
        errs.append(f.invalid(f"annotations.{CLASS_ANNOTATION}", annotation, detail))
    return errs


def _host_errors(host: str, path: str) -> list[FieldError]:
    if "*" in host:
        return [f.invalid(path, host, m) for m in names.is_wildcard_dns1123_subdomain(host)]
    return [f.invalid(path, host, m) for m in names.is_dns1123_subdomain(host)]


def _validate_path(p: dict[str, Any], path: str) -> list[FieldError]:
    path_type = p.get("pathType")
    if path_type is None:
        return [f.required(f"{path}.pathType", "pathType must be specified")]
    value = p.get("path") or ""
    errs: list[FieldError] = []
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(f.invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            for seq in INVALID_PATH_SEQUENCES:
                if seq in value:
                    errs.append(f.invalid(f"{path}.path", value, f"must not contain '{seq}'"))
            for suffix in INVALID_PATH_SUFFIXES:
                if value.endswith(suffix):
                    errs.append(f.invalid(f"{path}.path", value, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(f.invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        errs.append(f.not_supported(f"{path}.pathType", path_type, PATH_TYPES))
    return errs + _validate_backend(p.get("backend") or {}, f"{path}.backend")


def _validate_backend(backend: dict[str, Any], path: str) -> list[FieldError]:
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [f.invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        return _validate_resource_ref(resource or {}, f"{path}.resource")
    if service is None:
        return [f.invalid(path, "", "resource or service backend is required")]
    errs: list[FieldError] = []
    name = service.get("name") or ""
    if not name:
        errs.append(f.required(f"{path}.service.name"))
    else:
        errs += [f.invalid(f"{path}.service.name", name, m) for m in names.is_dns1035_label(name)]
    port = service.get("port") or {}
    port_name, number = port.get("name") or "", port.get("number") or 0
    if port_name and number:
        errs.append(f.invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errs += [f.invalid(f"{path}.service.port.name", port_name, m) for m in names.is_valid_port_name(port_name)]
    elif number:
        errs += [f.invalid(f"{path}.service.port.number", number, m) for m in names.is_valid_port_num(number)]
    else:
        errs.append(f.required(path, "port name or number is required"))
    return errs


def _path_segment_errors(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _validate_resource_ref(ref: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if ref.get("apiGroup") is not None:
        errs += dns1123_subdomain(ref["apiGroup"], f"{path}.apiGroup")
    for key in ("kind", "name"):
        value = ref.get(key) or ""
        if not value:
            errs.append(f.required(f"{path}.{key}", f"{key} is required"))
        else:
            errs += [f.invalid(f"{path}.{key}", value, m) for m in _path_segment_errors(value)]
    return errs


def validate_ingress_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_ingress(new, creating=False)


def validate_ingress_class(ic: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(ic)
    spec = ic.get("spec") or {}
    controller = spec.get("controller") or ""
    if len(controller) > MAX_CONTROLLER_LEN:
        errs.append(f.too_long("spec.controller", MAX_CONTROLLER_LEN))
    if not controller:
        errs.append(f.required("spec.controller"))
    else:
        errs += [f.invalid("spec.controller", v, m) for v, m in names.is_domain_prefixed_path_errors(controller)]
    params = spec.get("parameters")
    if params is not None:
        errs += _validate_class_parameters(params or {}, "spec.parameters")
    return errs


def _validate_class_parameters(params: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if params.get("apiGroup") is not None:
        errs += dns1123_subdomain(params["apiGroup"], f"{path}.apiGroup")
    for key in ("kind", "name"):
        value = params.get(key) or ""
        if not value:
            errs.append(f.required(f"{path}.{key}", f"{key} is required"))
        else:
            errs += [f.invalid(f"{path}.{key}", value, m) for m in _path_segment_errors(value)]
    scope = params.get("scope")
    if scope is not None:
        if scope not in ("Cluster", "Namespace"):
            errs.append(f.not_supported(f"{path}.scope", scope, ["Cluster", "Namespace"]))
        elif scope == "Namespace" and not params.get("namespace"):
            errs.append(f.required(f"{path}.namespace", "`parameters.scope` is set to 'Namespace'"))
        elif scope == "Cluster" and params.get("namespace"):
            errs.append(f.forbidden(f"{path}.namespace", "`parameters.scope` is set to 'Cluster'"))
    return errs


def validate_ingress_class_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    errs += immutable(
        "spec.controller", (new.get("spec") or {}).get("controller", ""), (old.get("spec") or {}).get("controller", "")
    )
    return errs + validate_ingress_class(new)

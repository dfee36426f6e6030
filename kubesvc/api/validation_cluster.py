"""Rules of the smaller kinds (``pkg/apis/{core,policy,scheduling,autoscaling,discovery}/validation``): Node,
ServiceAccount, ResourceQuota, LimitRange, PodDisruptionBudget, PriorityClass, HorizontalPodAutoscaler
(autoscaling/v2) and EndpointSlice.

Rules kept here:
- Node: taint effects one of NoSchedule, PreferNoSchedule, NoExecute, taint keys qualified names;
  podCIDRs valid CIDRs.
- ResourceQuota: hard/used names qualified, values ``must be greater than or equal to 0``; scopes
  from the upstream list.
- LimitRange: each item's type is Pod, Container or PersistentVolumeClaim; quantities >= 0;
  ``min value X is greater than max value Y``, default and defaultRequest between min and max.
- PodDisruptionBudget: minAvailable and maxUnavailable not both set; each >= 0 and a percentage at
  most 100%; selector rules; unhealthyPodEvictionPolicy IfHealthyBudget or AlwaysAllow.
- PriorityClass: ``system-`` names are reserved; preemptionPolicy PreemptLowerPriority or Never;
  value and preemptionPolicy are immutable.
- HorizontalPodAutoscaler: scaleTargetRef kind and name required; minReplicas and maxReplicas >= 1;
  maxReplicas >= minReplicas; metric types from the list.
- EndpointSlice: addressType IPv4, IPv6 or FQDN (immutable); 1 to 100 addresses per endpoint,
  valid for the address type; port protocols TCP, UDP, SCTP; ports and names unique.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from kubesvc.api import field as f
from kubesvc.api import names
from kubesvc.api.field import FieldError
from kubesvc.api.validation_meta import (
    IMMUTABLE,
    nonnegative,
    not_supported_in_order,
    qualified_name,
    validate_object_meta,
    validate_object_meta_update,
)
from kubesvc.api.validation_workloads import _validate_label_selector

Obj = dict[str, Any]

_SUFFIX: dict[str, int | Decimal] = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "n": Decimal("1e-9"),
           "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[a-zA-Z]*)$")
QUOTA_SCOPES = ["Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass", "CrossNamespacePodAffinity"]
METRIC_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]


def quantity(value: Any) -> Decimal | None:
    """A resource.Quantity's value (None when it does not parse; the schema has said why)."""
    m = _QUANTITY.match(str(value).strip())
    if not m:
        return None
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return None
    suffix = m.group(2)
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number * Decimal(10) ** int(suffix[1:])
    if suffix not in _SUFFIX:
        return None
    return number * Decimal(_SUFFIX[suffix])


def _resource_list(values: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, value in (values or {}).items():
        errs += qualified_name(key, f"{path}[{key}]")
        q = quantity(value)
        if q is not None and q < 0:
            errs.append(f.invalid(f"{path}[{key}]", str(value), "must be greater than or equal to 0"))
    return errs


# --- Node, ServiceAccount -------------------------------------------------------------------


def validate_node(node: Obj) -> list[FieldError]:
    errs = validate_object_meta(node)
    spec = node.get("spec") or {}
    for i, taint in enumerate(spec.get("taints") or []):
        taint = taint or {}
        errs += qualified_name(taint.get("key") or "", f"spec.taints[{i}].key")
        effect = taint.get("effect") or ""
        if not effect:
            errs.append(f.required(f"spec.taints[{i}].effect"))
        elif effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(not_supported_in_order(f"spec.taints[{i}].effect", effect,
                                               ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
    for i, cidr in enumerate(spec.get("podCIDRs") or []):
        if names.parse_cidr(str(cidr)) is None:
            errs.append(f.invalid(f"spec.podCIDRs[{i}]", cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    return errs


def validate_node_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_node(new)[len(validate_object_meta(new)):]


def validate_service_account(sa: Obj) -> list[FieldError]:
    errs = validate_object_meta(sa)
    for i, ref in enumerate(sa.get("secrets") or []):
        name = (ref or {}).get("name") or ""
        if name:
            errs += [f.invalid(f"secrets[{i}].name", name, m) for m in names.is_dns1123_subdomain(name)]
    return errs


def validate_service_account_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_service_account(new)[len(validate_object_meta(new)):]


# --- ResourceQuota, LimitRange ----------------------------------------------------------------


def validate_resource_quota(rq: Obj) -> list[FieldError]:
    errs = validate_object_meta(rq)
    spec = rq.get("spec") or {}
    errs += _resource_list(spec.get("hard"), "spec.hard")
    errs += _resource_list((rq.get("status") or {}).get("hard"), "status.hard")
    errs += _resource_list((rq.get("status") or {}).get("used"), "status.used")
    for i, scope in enumerate(spec.get("scopes") or []):
        if scope not in QUOTA_SCOPES:
            errs.append(not_supported_in_order(f"spec.scopes[{i}]", scope, QUOTA_SCOPES))
    return errs


def validate_resource_quota_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_resource_quota(new)[len(validate_object_meta(new)):]


def validate_limit_range(lr: Obj) -> list[FieldError]:
    errs = validate_object_meta(lr)
    for i, item in enumerate((lr.get("spec") or {}).get("limits") or []):
        item = item or {}
        path = f"spec.limits[{i}]"
        kind = item.get("type") or ""
        if kind not in ("Pod", "Container", "PersistentVolumeClaim"):
            errs.append(not_supported_in_order(f"{path}.type", kind, ["Pod", "Container", "PersistentVolumeClaim"]))
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            errs += _resource_list(item.get(key), f"{path}.{key}")
        lows, highs = item.get("min") or {}, item.get("max") or {}
        for res, low in lows.items():
            lo, hi = quantity(low), quantity(highs.get(res)) if res in highs else None
            if lo is not None and hi is not None and lo > hi:
                errs.append(f.invalid(f"{path}.min[{res}]", str(low), f"min value {low} is greater than max value {highs[res]}"))
        for key in ("default", "defaultRequest"):
            for res, value in (item.get(key) or {}).items():
                q = quantity(value)
                if q is None:
                    continue
                if res in highs and (hi := quantity(highs[res])) is not None and q > hi:
                    errs.append(f.invalid(f"{path}.{key}[{res}]", str(value),
                                          f"{key} value {value} is greater than max value {highs[res]}"))
                if res in lows and (lo := quantity(lows[res])) is not None and q < lo:
                    errs.append(f.invalid(f"{path}.{key}[{res}]", str(value),
                                          f"min value {lows[res]} is greater than {key} value {value}"))
    return errs


def validate_limit_range_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_limit_range(new)[len(validate_object_meta(new)):]


# --- PodDisruptionBudget, PriorityClass, HPA --------------------------------------------------


def _int_or_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]+%", value):
            return [f.invalid(path, value, "a valid percent string must be a numeric string followed by an ending '%' "
                                           "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")]
        if int(value[:-1]) > 100:
            return [f.invalid(path, value, "must not be greater than 100%")]
        return []
    return nonnegative(value, path)


def validate_pdb(pdb: Obj) -> list[FieldError]:
    errs = validate_object_meta(pdb)
    spec = pdb.get("spec") or {}
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(f.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        if spec.get(key) is not None:
            errs += _int_or_percent(spec[key], f"spec.{key}")
    if spec.get("selector") is not None:
        errs += _validate_label_selector(spec["selector"], "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("IfHealthyBudget", "AlwaysAllow"):
        errs.append(not_supported_in_order("spec.unhealthyPodEvictionPolicy", policy, ["IfHealthyBudget", "AlwaysAllow"]))
    return errs


def validate_pdb_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_pdb(new)[len(validate_object_meta(new)):]


def validate_priority_class(pc: Obj) -> list[FieldError]:
    errs = validate_object_meta(pc)
    name = (pc.get("metadata") or {}).get("name") or ""
    if name.startswith("system-"):
        errs.append(f.invalid("metadata.name", name, "priority class names with 'system-' prefix are reserved"))
    policy = pc.get("preemptionPolicy")
    if policy is not None and policy not in ("PreemptLowerPriority", "Never"):
        errs.append(not_supported_in_order("preemptionPolicy", policy, ["Never", "PreemptLowerPriority"]))
    return errs


def validate_priority_class_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    if new.get("value") != old.get("value"):
        errs.append(f.forbidden("value", "may not be changed in an update."))
    if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
        errs.append(f.invalid("preemptionPolicy", new.get("preemptionPolicy"), IMMUTABLE))
    return errs + validate_priority_class(new)[len(validate_object_meta(new)):]


def validate_hpa(hpa: Obj) -> list[FieldError]:
    errs = validate_object_meta(hpa)
    spec = hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    if not ref.get("kind"):
        errs.append(f.required("spec.scaleTargetRef.kind"))
    if not ref.get("name"):
        errs.append(f.required("spec.scaleTargetRef.name"))
    low = spec.get("minReplicas")
    if isinstance(low, int) and low < 1:
        errs.append(f.invalid("spec.minReplicas", low, "must be greater than or equal to 1"))
    high = spec.get("maxReplicas") or 0
    if high < 1:
        errs.append(f.invalid("spec.maxReplicas", high, "must be greater than or equal to 1"))
    if isinstance(low, int) and high < low:
        errs.append(f.invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    for i, metric in enumerate(spec.get("metrics") or []):
        mtype = (metric or {}).get("type") or ""
        if not mtype:
            errs.append(f.required(f"spec.metrics[{i}].type", "must specify a metric source type"))
        elif mtype not in METRIC_TYPES:
            errs.append(not_supported_in_order(f"spec.metrics[{i}].type", mtype, METRIC_TYPES))
    return errs


def validate_hpa_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_hpa(new)[len(validate_object_meta(new)):]


# --- EndpointSlice ----------------------------------------------------------------------------


def validate_endpoint_slice(es: Obj) -> list[FieldError]:
    errs = validate_object_meta(es)
    family = es.get("addressType") or ""
    if not family:
        errs.append(f.required("addressType"))
    elif family not in ("IPv4", "IPv6", "FQDN"):
        errs.append(not_supported_in_order("addressType", family, ["IPv4", "IPv6", "FQDN"]))
    for i, ep in enumerate(es.get("endpoints") or []):
        addresses = (ep or {}).get("addresses") or []
        path = f"endpoints[{i}].addresses"
        if not addresses:
            errs.append(f.required(path, "must contain at least 1 address"))
        elif len(addresses) > 100:
            errs.append(f.too_many(path, len(addresses), 100))
        for j, address in enumerate(addresses):
            ip = names.parse_ip(str(address))
            if family in ("IPv4", "IPv6") and (ip is None or names.ip_family(str(address)) != family):
                errs.append(f.invalid(f"{path}[{j}]", address, f"must be a valid {family} address"))
            elif family == "FQDN":
                errs += [f.invalid(f"{path}[{j}]", address, m) for m in names.is_dns1123_subdomain(str(address))]
    seen: set[str] = set()
    for i, port in enumerate(es.get("ports") or []):
        port = port or {}
        name = port.get("name") or ""
        if name in seen:
            errs.append(f.duplicate(f"ports[{i}].name", name))
        seen.add(name)
        if name:
            errs += [f.invalid(f"ports[{i}].name", name, m) for m in names.is_dns1123_label(name)]
        protocol = port.get("protocol") or ""
        if protocol not in ("TCP", "UDP", "SCTP"):
            errs.append(f.not_supported(f"ports[{i}].protocol", protocol, ["SCTP", "TCP", "UDP"]))
        if port.get("port") is not None:
            errs += [f.invalid(f"ports[{i}].port", port["port"], m) for m in names.is_valid_port_num(port["port"])]
    return errs


def validate_endpoint_slice_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    if new.get("addressType") != old.get("addressType"):
        errs.append(f.invalid("addressType", new.get("addressType"), IMMUTABLE))
    return errs + validate_endpoint_slice(new)[len(validate_object_meta(new)):]

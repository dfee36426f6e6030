"""Pod, ReplicationController, ReplicaSet and Deployment validation (the parts kubesvc uses).

Rules kept here (``pkg/apis/core/validation`` and ``pkg/apis/apps/validation``):
- Pod spec: ``containers`` required; container names DNS-1123 labels, unique; image required;
  ports (IANA_SVC_NAME names, unique; containerPort 1..65535; protocol TCP/UDP/SCTP);
  imagePullPolicy, restartPolicy and dnsPolicy from their lists (in Go's unsorted order);
  hostname/subdomain DNS-1123 labels. Volumes, probes, resources and security contexts are not
  checked. ``status.podIPs[i]`` (or ``status.podIP``) must be valid IPs.
- Pod update: only images, activeDeadlineSeconds and tolerations may change (the upstream diff
  text after the message is not reproduced).
- Controllers: replicas >= 0; selector required (RC: non-empty map; RS/Deployment: non-empty
  LabelSelector) and it must match the template labels; template restartPolicy must be Always;
  the template's pod spec is checked under ``spec.template.spec``. RS/Deployment selectors are
  immutable on update (apps/v1).
"""

from __future__ import annotations

from typing import Any

from kubesvc.api import field as f
from kubesvc.api import names
from kubesvc.api.field import FieldError, GoRaw
from kubesvc.api.validation_meta import (
    dns1123_label,
    go_string_map,
    nonnegative,
    not_supported_in_order,
    qualified_name,
    validate_annotations,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

PROTOCOLS = ["SCTP", "TCP", "UDP"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


# --- pods ---------------------------------------------------------------------------------


def validate_pod_spec(spec: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    containers = spec.get("containers") or []
    if not containers:
        errs.append(f.required(f"{path}.containers"))
    seen: set[str] = set()
    for i, ctr in enumerate(containers):
        ctr = ctr or {}
        cpath = f"{path}.containers[{i}]"
        errs += _validate_container(ctr, cpath)
        name = ctr.get("name") or ""
        if name in seen:
            errs.append(f.duplicate(f"{cpath}.name", name))
        seen.add(name)
    for i, ctr in enumerate(spec.get("initContainers") or []):
        ctr = ctr or {}
        cpath = f"{path}.initContainers[{i}]"
        errs += _validate_container(ctr, cpath)
        name = ctr.get("name") or ""
        if name in seen:
            errs.append(f.duplicate(f"{cpath}.name", name))
        seen.add(name)
    errs += _one_of(spec.get("restartPolicy") or "", f"{path}.restartPolicy", RESTART_POLICIES)
    errs += _one_of(spec.get("dnsPolicy") or "", f"{path}.dnsPolicy", DNS_POLICIES)
    errs += validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    if spec.get("serviceAccountName"):
        errs += [
            f.invalid(f"{path}.serviceAccountName", spec["serviceAccountName"], m)
            for m in names.is_dns1123_subdomain(spec["serviceAccountName"])
        ]
    if spec.get("nodeName"):
        node = spec["nodeName"]
        errs += [f.invalid(f"{path}.nodeName", node, m) for m in names.is_dns1123_subdomain(node)]
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= 2147483647:
        errs.append(f.invalid(f"{path}.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive"))
    if spec.get("hostname"):
        errs += dns1123_label(spec["hostname"], f"{path}.hostname")
    if spec.get("subdomain"):
        errs += dns1123_label(spec["subdomain"], f"{path}.subdomain")
    return errs


def _one_of(value: str, path: str, supported: list[str]) -> list[FieldError]:
    if not value:
        return [f.required(path)]
    if value not in supported:
        return [not_supported_in_order(path, value, supported)]
    return []


def _validate_container(ctr: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = ctr.get("name") or ""
    if not name:
        errs.append(f.required(f"{path}.name"))
    else:
        errs += dns1123_label(name, f"{path}.name")
    if not ctr.get("image"):
        errs.append(f.required(f"{path}.image"))
    policy = ctr.get("terminationMessagePolicy")
    if policy and policy not in ("File", "FallbackToLogsOnError"):
        errs.append(f.invalid(f"{path}.terminationMessagePolicy", policy, "must be 'File' or 'FallbackToLogsOnError'"))
    errs += _validate_container_ports(ctr.get("ports") or [], f"{path}.ports")
    errs += _one_of(ctr.get("imagePullPolicy") or "", f"{path}.imagePullPolicy", PULL_POLICIES)
    return errs


def _validate_container_ports(ports: list[Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, port in enumerate(ports):
        port = port or {}
        ipath = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            msgs = names.is_valid_port_name(name)
            if msgs:
                errs += [f.invalid(f"{ipath}.name", name, m) for m in msgs]
            elif name in seen:
                errs.append(f.duplicate(f"{ipath}.name", name))
            else:
                seen.add(name)
        number = port.get("containerPort") or 0
        if not number:
            errs.append(f.required(f"{ipath}.containerPort"))
        else:
            errs += [f.invalid(f"{ipath}.containerPort", number, m) for m in names.is_valid_port_num(number)]
        host_port = port.get("hostPort") or 0
        if host_port:
            errs += [f.invalid(f"{ipath}.hostPort", host_port, m) for m in names.is_valid_port_num(host_port)]
        protocol = port.get("protocol") or ""
        if not protocol:
            errs.append(f.required(f"{ipath}.protocol"))
        elif protocol not in PROTOCOLS:
            errs.append(f.not_supported(f"{ipath}.protocol", protocol, PROTOCOLS))
    return errs


def validate_pod(pod: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(pod)
    errs += validate_pod_spec(pod.get("spec") or {}, "spec")
    status = pod.get("status") or {}
    pod_ips = [p.get("ip", "") for p in (status.get("podIPs") or []) if isinstance(p, dict)]
    if not pod_ips and status.get("podIP"):
        pod_ips = [status["podIP"]]
    for i, ip in enumerate(pod_ips):
        if names.parse_ip(ip) is None:
            errs.append(f.invalid(f"status.podIPs[{i}]", ip, names.IP_MSG))
    return errs


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    errs += validate_pod_spec(new.get("spec") or {}, "spec")
    if _mutable_pod_spec(new.get("spec") or {}) != _mutable_pod_spec(old.get("spec") or {}):
        errs.append(f.forbidden("spec", POD_UPDATE_FORBIDDEN))
    return errs


def _mutable_pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The pod spec with the fields an update may change blanked out."""
    out = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
    for key in ("containers", "initContainers"):
        if key in out:
            out[key] = [{k: v for k, v in (c or {}).items() if k != "image"} for c in out[key] or []]
    return out


# --- controllers ----------------------------------------------------------------------------


def selector_matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions) against a label map."""
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _validate_label_selector(selector: dict[str, Any], path: str) -> list[FieldError]:
    errs = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        epath = f"{path}.matchExpressions[{i}]"
        op, values = expr.get("operator") or "", expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(f.required(f"{epath}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    f.forbidden(f"{epath}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
                )
        else:
            errs.append(f.invalid(f"{epath}.operator", op, "not a valid selector operator"))
        errs += qualified_name(expr.get("key") or "", f"{epath}.key")
        for j, value in enumerate(values):
            errs += [f.invalid(f"{epath}.values[{j}]", value, m) for m in names.is_valid_label_value(str(value))]
    return errs


def _validate_template(template: Any, matches: bool | None, kind: str, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForRC / ...ForReplicaSet. ``matches`` None = empty selector."""
    if template is None:
        return [f.required(path)]
    meta = template.get("metadata") or {}
    errs: list[FieldError] = []
    if matches is False:
        shown = go_string_map(meta.get("labels"))
        errs.append(f.invalid(f"{path}.metadata.labels", shown, "`selector` does not match template `labels`"))
    errs += validate_labels(meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    spec = template.get("spec") or {}
    errs += validate_pod_spec(spec, f"{path}.spec")
    restart = spec.get("restartPolicy") or ""
    if restart != "Always":
        errs.append(not_supported_in_order(f"{path}.spec.restartPolicy", restart, ["Always"]))
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            f.forbidden(f"{path}.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported")
        )
    return errs


def validate_replication_controller(rc: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(rc)
    spec = rc.get("spec") or {}
    errs += nonnegative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    selector = spec.get("selector") or {}
    if not selector:
        errs.append(f.required("spec.selector"))
    errs += nonnegative(spec.get("replicas", 0), "spec.replicas")
    template = spec.get("template")
    matches = None
    if selector and template is not None:
        labels = (template.get("metadata") or {}).get("labels") or {}
        matches = all(labels.get(k) == v for k, v in selector.items())
    errs += _validate_template(template, matches, "ReplicationController", "spec.template")
    return errs


def _go_selector(selector: Any) -> GoRaw:
    if selector is None:
        return GoRaw("null")
    labels = selector.get("matchLabels")
    shown = "map[string]string(nil)" if not labels else f.go_value(go_string_map(labels))
    return GoRaw(f"v1.LabelSelector{{MatchLabels:{shown}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}")


def _validate_apps_spec(spec: dict[str, Any], kind: str) -> list[FieldError]:
    """The shared part of ValidateReplicaSetSpec and ValidateDeploymentSpec."""
    errs: list[FieldError] = []
    errs += nonnegative(spec.get("replicas", 0), "spec.replicas")
    if kind == "ReplicaSet":
        errs += nonnegative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    selector = spec.get("selector")
    matches = None
    if selector is None:
        errs.append(f.required("spec.selector"))
    else:
        errs += _validate_label_selector(selector, "spec.selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errs.append(f.invalid("spec.selector", _go_selector(selector), "empty selector is invalid for deployment"))
        else:
            template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            matches = selector_matches(selector, template_labels)
    errs += _validate_template(spec.get("template") or {}, matches, kind, "spec.template")
    return errs


def validate_replica_set(rs: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(rs) + _validate_apps_spec(rs.get("spec") or {}, "ReplicaSet")


def validate_deployment(deploy: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(deploy)
    spec = deploy.get("spec") or {}
    errs += _validate_apps_spec(spec, "Deployment")
    strategy = spec.get("strategy") or {}
    stype = strategy.get("type") or ""
    if stype == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errs.append(
                f.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
            )
    elif stype == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if rolling is None:
            errs.append(f.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
        elif _is_zero(rolling.get("maxUnavailable")) and _is_zero(rolling.get("maxSurge")):
            errs.append(
                f.invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    rolling.get("maxUnavailable"),
                    "may not be 0 when `maxSurge` is 0",
                )
            )
    else:
        errs.append(not_supported_in_order("spec.strategy.type", stype, ["Recreate", "RollingUpdate"]))
    min_ready = spec.get("minReadySeconds", 0) or 0
    errs += nonnegative(min_ready, "spec.minReadySeconds")
    if spec.get("revisionHistoryLimit") is not None:
        errs += nonnegative(spec["revisionHistoryLimit"], "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        errs += nonnegative(deadline, "spec.progressDeadlineSeconds")
        if deadline <= min_ready:
            errs.append(f.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return errs


def _is_zero(value: Any) -> bool:
    return value in (0, "0", "0%")


def validate_controller_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """RC, RS and Deployment updates: metadata; apps/v1 selectors are immutable."""
    errs = validate_object_meta_update(new, old)
    if new.get("kind") in ("ReplicaSet", "Deployment"):
        new_sel = (new.get("spec") or {}).get("selector")
        old_sel = (old.get("spec") or {}).get("selector")
        if new_sel != old_sel:
            errs.append(f.invalid("spec.selector", _go_selector(new_sel), "field is immutable"))
    return errs

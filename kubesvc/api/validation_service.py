"""Service and Endpoints semantic validation (``ValidateService``, ``ValidateServiceUpdate``,
``ValidateEndpoints`` in ``pkg/apis/core/validation/validation.go``).

Rules kept here:
- The checks run in the apiserver's order (spec §3.2 rows 1-45) and every error of the object is
  returned together; nothing here knows the cluster's ranges (allocation is the registry's job).
- "Headless" means ``clusterIPs == ["None"]`` (the strategy has already mirrored clusterIP there).
- kubesvc decision: loopback addresses are accepted in ``spec.externalIPs`` and Endpoints
  addresses (``names.non_special_ip_errors``); unspecified and link-local ones are still rejected.
- Update-only rules (§3.3) come first, then the whole ValidateService on the new object.
"""

from __future__ import annotations

from typing import Any

from kubesvc.api import field as f
from kubesvc.api import names
from kubesvc.api.field import FieldError, GoRaw
from kubesvc.api.validation_meta import (
    dns1123_label,
    dns1123_subdomain,
    go_string_slice,
    port_num_or_name,
    qualified_name,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
AFFINITIES = ["ClientIP", "None"]
TRAFFIC_POLICIES = ["Cluster", "Local"]
IP_FAMILIES = ["IPv4", "IPv6"]
IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
LB_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
MAX_AFFINITY_SECONDS = 86400
ONLY_LB = "may only be used when `type` is 'LoadBalancer'"


def is_headless(svc: dict[str, Any]) -> bool:
    ips = (svc.get("spec") or {}).get("clusterIPs") or []
    return len(ips) == 1 and ips[0] == "None"


def externally_accessible(spec: dict[str, Any]) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def needs_health_check(spec: dict[str, Any]) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def go_service_port(port: Any, protocol: Any) -> GoRaw:
    """The (protocol, port) key struct the duplicate-port error prints."""
    return GoRaw(
        f'core.ServicePort{{Name:"", Protocol:{f.go_quote(str(protocol or ""))}, AppProtocol:(*string)(nil), '
        f"Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}"
    )


def validate_service(svc: dict[str, Any]) -> list[FieldError]:
    spec = svc.get("spec") or {}
    meta = svc.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    svc_type = spec.get("type") or ""
    headless = is_headless(svc)
    ports = spec.get("ports") or []
    cluster_ips = spec.get("clusterIPs") or []
    errs = validate_object_meta(svc)

    if not ports and not headless and svc_type != "ExternalName":
        errs.append(f.required("spec.ports"))
    if svc_type in ("LoadBalancer", "NodePort") and headless:
        detail = f"may not be set to 'None' for {svc_type} services"
        errs.append(f.invalid("spec.clusterIPs[0]", cluster_ips[0], detail))
    elif svc_type == "ExternalName":
        if cluster_ips:
            errs.append(f.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(f.forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(f.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = spec.get("externalName") or ""
        cname = cname[:-1] if cname.endswith(".") else cname
        if cname:
            errs += dns1123_subdomain(cname, "spec.externalName")
        else:
            errs.append(f.required("spec.externalName"))

    seen_names: set[str] = set()
    for i, port in enumerate(ports):
        errs += _validate_service_port(port or {}, len(ports) > 1, seen_names, f"spec.ports[{i}]")

    if spec.get("selector") is not None:
        errs += validate_labels(spec.get("selector"), "spec.selector")

    affinity = spec.get("sessionAffinity") or ""
    if not affinity:
        errs.append(f.required("spec.sessionAffinity"))
    elif affinity not in AFFINITIES:
        errs.append(f.not_supported("spec.sessionAffinity", affinity, AFFINITIES))
    if affinity == "ClientIP":
        errs += _validate_client_ip_affinity(spec.get("sessionAffinityConfig"))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(f.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))

    errs += validate_cluster_ips_related_fields(svc)

    for i, ip in enumerate(spec.get("externalIPs") or []):
        path = f"spec.externalIPs[{i}]"
        if names.parse_ip(ip) is None:
            errs.append(f.invalid(path, ip, names.IP_MSG))
        else:
            errs += [f.invalid(path, ip, m) for m in names.non_special_ip_errors(ip)]

    if not svc_type:
        errs.append(f.required("spec.type"))
    elif svc_type not in SERVICE_TYPES:
        errs.append(f.not_supported("spec.type", svc_type, SERVICE_TYPES))

    if svc_type == "ClusterIP":
        for i, port in enumerate(ports):
            if (port or {}).get("nodePort"):
                errs.append(f.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
    node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        port = port or {}
        node_port = port.get("nodePort") or 0
        if not node_port:
            continue
        key = (port.get("protocol") or "", node_port)
        if key in node_ports:
            errs.append(f.duplicate(f"spec.ports[{i}].nodePort", node_port))
        node_ports.add(key)
    port_keys: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        port = port or {}
        key = (port.get("protocol") or "", port.get("port") or 0)
        if key in port_keys:
            errs.append(f.duplicate(f"spec.ports[{i}]", go_service_port(key[1], key[0])))
        port_keys.add(key)

    ranges = spec.get("loadBalancerSourceRanges") or []
    if ranges:
        path = "spec.LoadBalancerSourceRanges"  # sic: the apiserver's capital L
        if svc_type != "LoadBalancer":
            errs.append(f.forbidden(path, ONLY_LB))
        for i, value in enumerate(ranges):
            value = str(value).strip()
            if names.parse_cidr(value) is None:
                errs.append(f.invalid(f"{path}[{i}]", value, names.CIDR_MSG))
    elif LB_SOURCE_RANGES_ANNOTATION in annotations:
        path = f"metadata.annotations[{LB_SOURCE_RANGES_ANNOTATION}]"
        if svc_type != "LoadBalancer":
            errs.append(f.forbidden(path, ONLY_LB))
        value = str(annotations[LB_SOURCE_RANGES_ANNOTATION] or "").strip()
        if value:
            for cidr in value.split(","):
                cidr = cidr.strip()
                if names.parse_cidr(cidr) is None:
                    errs.append(f.invalid(path, cidr, names.CIDR_MSG))

    if spec.get("allocateLoadBalancerNodePorts") is not None and svc_type != "LoadBalancer":
        errs.append(f.forbidden("spec.allocateLoadBalancerNodePorts", ONLY_LB))
    if svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(f.required("allocateLoadBalancerNodePorts"))  # sic: no "spec." upstream

    errs += _validate_load_balancer_class(spec, None)
    errs += _validate_external_traffic_policy(spec)
    errs += _validate_internal_traffic_policy(spec)
    distribution = spec.get("trafficDistribution")
    if distribution is not None and distribution != "PreferClose":
        errs.append(f.not_supported("spec.trafficDistribution", distribution, ["PreferClose"]))
    return errs


def _validate_service_port(port: dict[str, Any], require_name: bool, seen: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(f.required(f"{path}.name"))
    elif name:
        errs += dns1123_label(name, f"{path}.name")
        if name in seen:
            errs.append(f.duplicate(f"{path}.name", name))
        else:
            seen.add(name)
    number = port.get("port", 0)
    errs += [f.invalid(f"{path}.port", number, m) for m in names.is_valid_port_num(number)]
    protocol = port.get("protocol") or ""
    if not protocol:
        errs.append(f.required(f"{path}.protocol"))
    elif protocol not in PROTOCOLS:
        errs.append(f.not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    errs += port_num_or_name(port.get("targetPort", 0), f"{path}.targetPort")
    if port.get("appProtocol") is not None:
        errs += qualified_name(port["appProtocol"], f"{path}.appProtocol")
    return errs


def _validate_client_ip_affinity(config: Any) -> list[FieldError]:
    path = "spec.sessionAffinityConfig"
    detail = "when session affinity type is ClientIP"
    if config is None:
        return [f.required(path, detail)]
    if config.get("clientIP") is None:
        return [f.required(f"{path}.clientIP", detail)]
    timeout = config["clientIP"].get("timeoutSeconds")
    if timeout is None:
        return [f.required(f"{path}.clientIP.timeoutSeconds", detail)]
    if timeout <= 0 or timeout > MAX_AFFINITY_SECONDS:
        return [
            f.invalid(
                f"{path}.clientIP.timeoutSeconds", timeout, f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"
            )
        ]
    return []


def validate_cluster_ips_related_fields(svc: dict[str, Any]) -> list[FieldError]:
    """ValidateServiceClusterIPsRelatedFields (rows 21-29); skipped for ExternalName."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    cluster_ip = spec.get("clusterIP") or ""
    cluster_ips = list(spec.get("clusterIPs") or [])
    families = list(spec.get("ipFamilies") or [])
    if cluster_ip:
        if not cluster_ips:
            errs.append(f.required("spec.clusterIPs"))
        elif cluster_ips[0] != cluster_ip:
            errs.append(f.invalid("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`"))
    elif cluster_ips:
        errs.append(f.invalid("spec.clusterIPs", cluster_ips, "must be empty when `clusterIP` is not specified"))

    seen: set[str] = set()
    for i, family in enumerate(families):
        if family not in IP_FAMILIES:
            errs.append(f.not_supported(f"spec.ipFamilies[{i}]", family, IP_FAMILIES))
        if family in seen:
            errs.append(f.duplicate(f"spec.ipFamilies[{i}]", family))
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        errs.append(f.not_supported("spec.ipFamilyPolicy", policy, IP_FAMILY_POLICIES))

    has_invalid = False
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            if len(cluster_ips) > 1:
                has_invalid = True
                errs.append(f.invalid("spec.clusterIPs", cluster_ips, "'None' must be the first and only value"))
            continue
        if names.parse_ip(ip) is None:
            has_invalid = True
            errs.append(f.invalid(f"spec.clusterIPs[{i}]", ip, names.IP_MSG))
    if len(cluster_ips) > 2:
        errs.append(f.invalid("spec.clusterIPs", cluster_ips, "may only hold up to 2 values"))
    if has_invalid:
        return errs
    if len(cluster_ips) > 1 and (len(cluster_ips) > 2 or len({names.ip_family(ip) for ip in cluster_ips}) != 2):
        errs.append(f.invalid("spec.clusterIPs", cluster_ips, "may specify no more than one IP for each IP family"))
    if not is_headless(svc) and cluster_ips and families:
        for i, ip in enumerate(cluster_ips[: len(families)]):
            family = names.ip_family(ip)
            if families[i] in IP_FAMILIES and family != families[i]:
                errs.append(
                    f.invalid(
                        f"spec.clusterIPs[{i}]", ip, f"expected an {families[i]} value as indicated by `ipFamilies[{i}]`"
                    )
                )
    return errs


def _validate_load_balancer_class(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[FieldError]:
    """validateLoadBalancerClassField: the update rule when ``old_spec`` is given, else the create rules."""
    errs: list[FieldError] = []
    lb_class = spec.get("loadBalancerClass")
    is_lb = spec.get("type") == "LoadBalancer"
    if old_spec is not None:
        if old_spec.get("type") == "LoadBalancer" and is_lb and old_spec.get("loadBalancerClass") != lb_class:
            errs.append(f.invalid("spec.loadBalancerClass", lb_class, "may not change once set"))
        return errs
    if is_lb:
        if lb_class is not None:
            errs += qualified_name(lb_class, "spec.loadBalancerClass")
    elif lb_class is not None:
        errs.append(f.forbidden("spec.loadBalancerClass", ONLY_LB))
    return errs


def _validate_external_traffic_policy(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    policy = spec.get("externalTrafficPolicy") or ""
    if not externally_accessible(spec):
        if policy:
            errs.append(
                f.invalid("spec.externalTrafficPolicy", policy, "may only be set for externally-accessible services")
            )
    elif not policy:
        errs.append(f.required("spec.externalTrafficPolicy"))
    elif policy not in TRAFFIC_POLICIES:
        errs.append(f.not_supported("spec.externalTrafficPolicy", policy, TRAFFIC_POLICIES))
    hc = spec.get("healthCheckNodePort") or 0
    if not needs_health_check(spec):
        if hc:
            errs.append(
                f.invalid(
                    "spec.healthCheckNodePort",
                    hc,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                )
            )
    elif not hc:
        errs.append(f.required("spec.healthCheckNodePort"))
    else:
        errs += [f.invalid("spec.healthCheckNodePort", hc, m) for m in names.is_valid_port_num(hc)]
    return errs


def _validate_internal_traffic_policy(spec: dict[str, Any]) -> list[FieldError]:
    policy = spec.get("internalTrafficPolicy")
    if policy is None:
        if spec.get("type") in ("ClusterIP", "NodePort", "LoadBalancer"):
            return [f.required("spec.internalTrafficPolicy")]
        return []
    if policy not in TRAFFIC_POLICIES:
        return [f.not_supported("spec.internalTrafficPolicy", policy, TRAFFIC_POLICIES)]
    return []


def validate_service_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """ValidateServiceUpdate: metadata, clusterIPs/ipFamilies, loadBalancerClass, healthCheckNodePort."""
    errs = validate_object_meta_update(new, old)
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    if "ExternalName" not in (ns.get("type"), os_.get("type")):
        errs += _upgrade_downgrade_cluster_ips(new, old)
        errs += _upgrade_downgrade_ip_families(new, old)
    errs += _validate_load_balancer_class(ns, os_)
    if needs_health_check(os_) and needs_health_check(ns):
        if (ns.get("healthCheckNodePort") or 0) != (os_.get("healthCheckNodePort") or 0):
            errs.append(f.forbidden("spec.healthCheckNodePort", "field is immutable"))
    return errs + validate_service(new)


def _upgrade_downgrade_cluster_ips(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    if is_headless(new) and is_headless(old):
        return []
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    new_ips = ns.get("clusterIPs") or []
    old_ips = os_.get("clusterIPs") or []
    value = go_string_slice(ns.get("clusterIPs"))
    errs: list[FieldError] = []
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                errs.append(f.invalid(f"spec.clusterIPs[{i}]", value, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errs.append(f.invalid("spec.clusterIPs[0]", value, "primary clusterIP can not be unset"))
        if old_ips and new_ips and new_ips[0] != old_ips[0]:
            errs.append(f.invalid("spec.clusterIPs[0]", value, "may not change once set"))
        if len(new_ips) == 1 and ns.get("ipFamilyPolicy") != "SingleStack":
            errs.append(
                f.invalid(
                    "spec.ipFamilyPolicy",
                    ns.get("ipFamilyPolicy"),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                )
            )
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(f.invalid("spec.clusterIPs[0]", value, "may not change once set"))
    return errs


def _upgrade_downgrade_ip_families(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    if is_headless(new) or is_headless(old):
        return []  # changing to/from headless, or headless on both sides: families may change
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    new_f = ns.get("ipFamilies") or []
    old_f = os_.get("ipFamilies") or []
    value = _go_families(ns.get("ipFamilies"))
    ips_value = go_string_slice(ns.get("clusterIPs"))
    errs: list[FieldError] = []
    if len(old_f) == len(new_f):
        for i, family in enumerate(old_f):
            if family != new_f[i]:
                errs.append(f.invalid("spec.ipFamilies[0]", value, "may not change once set"))
    elif len(old_f) > len(new_f):
        if not ns.get("clusterIPs"):
            errs.append(f.invalid("spec.ipFamilies[0]", value, "primary ipFamily can not be unset"))
        if new_f and new_f[0] != old_f[0]:
            errs.append(f.invalid("spec.ipFamilies[0]", ips_value, "may not change once set"))
        if len(new_f) == 1 and ns.get("ipFamilyPolicy") != "SingleStack":
            errs.append(
                f.invalid(
                    "spec.ipFamilyPolicy",
                    ns.get("ipFamilyPolicy"),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                )
            )
    elif old_f and new_f and new_f[0] != old_f[0]:
        errs.append(f.invalid("spec.ipFamilies[0]", ips_value, "may not change once set"))
    return errs


def _go_families(families: Any) -> GoRaw:
    """[]core.IPFamily as Go's %#v prints it."""
    if families is None:
        return GoRaw("[]core.IPFamily(nil)")
    return GoRaw("[]core.IPFamily{" + ", ".join(f.go_quote(x) for x in families) + "}")


def validate_endpoints(ep: dict[str, Any]) -> list[FieldError]:
    """ValidateEndpoints (§5.1): subsets need addresses; IPs valid and not special (loopback allowed)."""
    errs = validate_object_meta(ep)
    for i, subset in enumerate(ep.get("subsets") or []):
        subset = subset or {}
        path = f"subsets[{i}]"
        if not subset.get("addresses") and not subset.get("notReadyAddresses"):
            errs.append(f.required(path, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(subset.get(key) or []):
                errs += _validate_endpoint_address(address or {}, f"{path}.{key}[{j}]")
        ports = subset.get("ports") or []
        for j, port in enumerate(ports):
            errs += _validate_endpoint_port(port or {}, len(ports) > 1, f"{path}.ports[{j}]")
    return errs


def _validate_endpoint_address(address: dict[str, Any], path: str) -> list[FieldError]:
    ip = address.get("ip") or ""
    errs: list[FieldError] = []
    if names.parse_ip(ip) is None:
        errs.append(f.invalid(f"{path}.ip", ip, names.IP_MSG))
    if address.get("hostname"):
        errs += dns1123_label(address["hostname"], f"{path}.hostname")
    if address.get("nodeName") is not None:
        node = address["nodeName"]
        errs += [f.invalid(f"{path}.nodeName", node, m) for m in names.is_dns1123_subdomain(node)]
    errs += [f.invalid(f"{path}.ip", ip, m) for m in names.non_special_ip_errors(ip)]
    return errs


def _validate_endpoint_port(port: dict[str, Any], require_name: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(f.required(f"{path}.name"))
    elif name:
        errs += dns1123_label(name, f"{path}.name")
    number = port.get("port", 0)
    errs += [f.invalid(f"{path}.port", number, m) for m in names.is_valid_port_num(number)]
    protocol = port.get("protocol") or ""
    if not protocol:
        errs.append(f.required(f"{path}.protocol"))
    elif protocol not in PROTOCOLS:
        errs.append(f.not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    if port.get("appProtocol") is not None:
        errs += qualified_name(port["appProtocol"], f"{path}.appProtocol")
    return errs


def validate_endpoints_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_endpoints(new)

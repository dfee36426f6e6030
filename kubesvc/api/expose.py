"""Service generators: ``kubectl expose`` and ``kubectl create service <type>`` (spec §8).

Rules kept here (kubectl v1.32 ``pkg/cmd/expose``, ``pkg/polymorphichelpers``,
``pkg/cmd/create/create_service.go``):
- Pure functions from an object (or flags) to the Service dict kubectl generates, field for field
  and in Go's field order, including ``metadata.creationTimestamp: null`` and
  ``status: {loadBalancer: {}}`` (the caller strips those before storing).
- Flags are strings exactly as typed; ``""`` means "not given", as for kubectl's flags.
- Checks run in kubectl's order and fail with kubectl's texts as ClientError (printed
  ``error: <msg>``): kind, selector introspection, port introspection, then the generator.
- Go quirks are kept on purpose: ``--port`` goes through ``strconv.Atoi`` and is truncated to int32;
  ``--protocol`` and ``--type`` are not checked client-side; a container port used with several
  protocols expands to ``port-<i>-<proto>`` entries, duplicates included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubesvc.api.names import is_dns1123_subdomain, is_valid_port_name
from kubesvc.api.selectors import parse_equality_map
from kubesvc.errors import ClientError

__all__ = ["ExposeOptions", "expose", "create_service", "split_string_slice"]

DNS1035_LABEL_MAX_LENGTH = 63

# (kind, group) pairs polymorphichelpers.CanBeExposed accepts.
_EXPOSABLE = {
    ("ReplicationController", ""),
    ("Service", ""),
    ("Pod", ""),
    ("Deployment", "apps"),
    ("ReplicaSet", "apps"),
    ("Deployment", "extensions"),
    ("ReplicaSet", "extensions"),
}

_SERVICE_TYPES = {
    "clusterip": "ClusterIP",
    "nodeport": "NodePort",
    "loadbalancer": "LoadBalancer",
    "externalname": "ExternalName",
}


@dataclass
class ExposeOptions:
    """``kubectl expose`` flags, as strings the way the user typed them ("" = not given)."""

    port: str = ""
    target_port: str = ""
    protocol: str = ""
    type: str = ""
    name: str = ""
    selector: str = ""
    labels: str = ""
    session_affinity: str = ""
    cluster_ip: str = ""
    external_ip: str = ""
    load_balancer_ip: str = ""


# ---------------------------------------------------------------------------------------------
# Go number parsing.


def _go_quote(s: str) -> str:
    from kubesvc.api.field import go_quote

    return go_quote(s)


def _num_error(func: str, s: str, reason: str) -> ClientError:
    return ClientError(f"strconv.{func}: parsing {_go_quote(s)}: {reason}")


def _atoi(s: str) -> int:
    """Go's ``strconv.Atoi`` on a 64-bit platform."""
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        raise _num_error("Atoi", s, "invalid syntax")
    n = int(s)
    if not -(2**63) <= n < 2**63:
        raise _num_error("Atoi", s, "value out of range")
    return n


def _parse_uint16(s: str) -> int:
    """Go's ``strconv.ParseUint(s, 10, 16)``."""
    if not re.fullmatch(r"[0-9]+", s):
        raise _num_error("ParseUint", s, "invalid syntax")
    n = int(s)
    if n > 0xFFFF:
        raise _num_error("ParseUint", s, "value out of range")
    return n


def _int32(n: int) -> int:
    """Go's ``int32(n)`` conversion (wraps)."""
    return (n + 2**31) % 2**32 - 2**31


def _int_or_string(s: str) -> int | str:
    """``intstr.Parse``: a number when Atoi accepts it (truncated to int32), else the string."""
    try:
        return _int32(_atoi(s))
    except ClientError:
        return s


# ---------------------------------------------------------------------------------------------
# Introspection (polymorphichelpers).


def _group(obj: Mapping[str, Any]) -> str:
    api_version = str(obj.get("apiVersion") or "")
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = _dict(obj.get("spec"))
    if obj.get("kind") == "Pod":
        return spec
    return _dict(_dict(spec.get("template")).get("spec"))


def _make_labels(labels: Mapping[str, Any] | None) -> str:
    """``MakeLabels``: ``k=v`` pairs joined by commas (Go map order; parsed back into a map)."""
    return ",".join(f"{k}={v}" for k, v in (labels or {}).items())


def _go_requirements(exprs: list[Any]) -> str:
    """``%+v`` of ``[]metav1.LabelSelectorRequirement``."""
    items = []
    for e in exprs:
        e = _dict(e)
        values = " ".join(str(v) for v in (e.get("values") or []))
        items.append(f"{{Key:{e.get('key', '')} Operator:{e.get('operator', '')} Values:[{values}]}}")
    return "[" + " ".join(items) + "]"


def _map_based_selector(obj: Mapping[str, Any]) -> str:
    kind, group = obj.get("kind"), _group(obj)
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    if kind == "ReplicationController":
        return _make_labels(spec.get("selector"))
    if kind == "Pod":
        if not meta.get("labels"):
            raise ClientError("the pod has no labels and cannot be exposed")
        return _make_labels(meta.get("labels"))
    if kind == "Service":
        if spec.get("selector") is None:
            raise ClientError("the service has no pod selector set")
        return _make_labels(spec.get("selector"))
    noun = {"Deployment": "deployment", "ReplicaSet": "replicaset"}[str(kind)]
    selector = spec.get("selector")
    if group == "extensions":
        if selector is not None:
            selector = _dict(selector)
            if selector.get("matchExpressions"):
                raise _expressions_error(selector["matchExpressions"])
            labels = selector.get("matchLabels")
        else:
            labels = _dict(_dict(spec.get("template")).get("metadata")).get("labels")
        if not labels:
            what = "deployment" if kind == "Deployment" else "replica set"
            raise ClientError(f"the {what} has no labels or selectors and cannot be exposed")
        return _make_labels(labels)
    selector = _dict(selector)
    if not selector.get("matchLabels"):
        raise ClientError(f"invalid {noun}: no selectors, therefore cannot be exposed")
    if selector.get("matchExpressions"):
        raise _expressions_error(selector["matchExpressions"])
    return _make_labels(selector["matchLabels"])


def _expressions_error(exprs: list[Any]) -> ClientError:
    return ClientError(f'couldn\'t convert expressions - "{_go_requirements(exprs)}" to map-based selector format')


def _as_int32(v: Any) -> int:
    return _int32(v) if isinstance(v, int) and not isinstance(v, bool) else 0


def _port_entries(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(port number as text, protocol defaulted to TCP) for each container port or service port."""
    out: list[tuple[str, str]] = []
    if obj.get("kind") == "Service":
        for p in _dict(obj.get("spec")).get("ports") or []:
            p = _dict(p)
            out.append((str(_as_int32(p.get("port"))), str(p.get("protocol") or "TCP")))
        return out
    for c in _pod_spec(obj).get("containers") or []:
        for p in _dict(c).get("ports") or []:
            p = _dict(p)
            out.append((str(_as_int32(p.get("containerPort"))), str(p.get("protocol") or "TCP")))
    return out


def _ports_for_object(obj: Mapping[str, Any]) -> list[str]:
    """Port numbers in order of first appearance, de-duplicated."""
    seen: dict[str, None] = {}
    for port, _ in _port_entries(obj):
        seen.setdefault(port, None)
    return list(seen)


def _protocols_for_object(obj: Mapping[str, Any]) -> dict[str, list[str]]:
    """``MultiProtocolsForObject``: port -> every protocol it is declared with (duplicates kept)."""
    result: dict[str, list[str]] = {}
    for port, proto in _port_entries(obj):
        result.setdefault(port, []).append(proto)
    return result


# ---------------------------------------------------------------------------------------------
# Generators.


def _service(
    name: str,
    labels: Mapping[str, str] | None,
    spec: dict[str, Any],
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": None}
    if labels:
        metadata["labels"] = {k: labels[k] for k in sorted(labels)}
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def _port(name: str, protocol: str, port: int, target: int | str, node_port: int = 0) -> dict[str, Any]:
    """A ServicePort in Go field order; targetPort (a struct in Go) is always written."""
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if protocol:
        out["protocol"] = protocol
    out["port"] = port
    out["targetPort"] = target
    if node_port:
        out["nodePort"] = node_port
    return out


def _target(opts: ExposeOptions, port: int) -> int | str:
    """``--target-port`` for every port, else the port itself."""
    return _int_or_string(opts.target_port) if opts.target_port else port


def expose(obj: Mapping[str, Any], opts: ExposeOptions) -> dict[str, Any]:
    """The Service ``kubectl expose`` generates for ``obj`` (``--dry-run=client -o json``)."""
    kind, group = str(obj.get("kind") or ""), _group(obj)
    if (kind, group) not in _EXPOSABLE:
        raise ClientError(f"cannot expose a {kind}.{group}" if group else f"cannot expose a {kind}")

    default_name = str(_dict(obj.get("metadata")).get("name") or "")
    default_name = default_name.encode()[:DNS1035_LABEL_MAX_LENGTH].decode(errors="ignore")

    selector_text = opts.selector
    if not selector_text:
        try:
            selector_text = _map_based_selector(obj)
        except ClientError as e:
            raise ClientError(f"couldn't retrieve selectors via --selector flag or introspection: {e.message}") from None

    port_text, ports_text = opts.port, ""
    if not port_text:
        found = _ports_for_object(obj)
        if not found and opts.cluster_ip != "None":
            raise ClientError("couldn't find port via --port flag or introspection")
        if len(found) == 1:
            port_text = found[0]
        elif len(found) > 1:
            ports_text = ",".join(found)

    protocols = _protocols_for_object(obj)

    labels_text = opts.labels or _make_labels(_dict(obj.get("metadata")).get("labels"))

    # createService
    if not selector_text:
        raise ClientError("selector must be specified")
    selector = parse_equality_map(selector_text)
    labels = parse_equality_map(labels_text) if labels_text else None
    name = opts.name or default_name
    if not name:
        raise ClientError("name must be specified")

    ports: list[dict[str, Any]] = []
    port_string = ports_text or port_text
    if port_string:
        parts = port_string.split(",")
        for i, text in enumerate(parts):
            number = _int32(_atoi(text))
            port_name = f"port-{i + 1}" if len(parts) > 1 else ""
            protocol = opts.protocol
            if not protocol and not protocols:
                protocol = "TCP"
            elif not protocol:
                protocol = "TCP"
                declared = protocols.get(text)
                if declared is not None:
                    if len(declared) == 1:
                        protocol = declared[0]
                    else:
                        for p in declared:
                            ports.append(_port(f"port-{i + 1}-{p.lower()}", p, number, _target(opts, number)))
                        continue
            ports.append(_port(port_name, protocol, number, _target(opts, number)))

    spec: dict[str, Any] = {}
    if ports:
        spec["ports"] = ports
    spec["selector"] = {k: selector[k] for k in sorted(selector)}
    cluster_ip = opts.cluster_ip
    service_type = opts.type
    if opts.session_affinity and opts.session_affinity not in ("None", "ClientIP"):
        raise ClientError(f"unknown session affinity: {opts.session_affinity}")
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    if service_type:
        spec["type"] = service_type
    if opts.external_ip:
        spec["externalIPs"] = [opts.external_ip]
    if opts.session_affinity:
        spec["sessionAffinity"] = opts.session_affinity
    if service_type == "LoadBalancer" and opts.load_balancer_ip:
        spec["loadBalancerIP"] = opts.load_balancer_ip
    return _service(name, labels, spec)


def split_string_slice(value: str) -> list[str]:
    """pflag's StringSlice parsing of one ``--tcp`` value: a CSV record (``80:8080,443:8443``)."""
    import csv

    if value == "":
        return []
    try:
        return next(csv.reader([value], strict=True))
    except (csv.Error, StopIteration) as e:
        raise ClientError(f"invalid argument {_go_quote(value)}: {e}") from None


def _parse_tcp(spec: str) -> tuple[int, int | str]:
    """create_service.go ``parsePorts``: ``<port>[:<targetPort>]``."""
    parts = spec.split(":")
    port = _parse_uint16(parts[0])
    if len(parts) == 1:
        return port, port
    target_text = parts[1]
    try:
        number = _atoi(target_text)
    except ClientError:
        errs = is_valid_port_name(target_text)
        if errs:
            raise ClientError(",".join(errs)) from None
        return port, target_text
    if not 1 <= number <= 65535:
        raise ClientError("must be between 1 and 65535, inclusive")
    return port, number


def create_service(
    kind: str,
    name: str,
    *,
    tcp: list[str],
    node_port: int | None = None,
    cluster_ip: str | None = None,
    external_name: str | None = None,
) -> dict[str, Any]:
    """``kubectl create service clusterip|nodeport|loadbalancer|externalname NAME`` (client side).

    ``tcp`` holds the ``--tcp`` values already split (see ``split_string_slice``); ``node_port``
    is given only for nodeport, ``cluster_ip`` only for clusterip, ``external_name`` for externalname.
    """
    service_type = _SERVICE_TYPES.get(kind)
    if service_type is None:
        raise ClientError(f"unknown service type: {kind}")
    if service_type == "ExternalName" and external_name is None:
        raise ClientError('required flag(s) "external-name" not set')
    # Validate
    if cluster_ip == "None" and service_type != "ClusterIP":
        raise ClientError("ClusterIP=None can only be used with ClusterIP service type")
    if cluster_ip != "None" and not tcp and service_type != "ExternalName":
        raise ClientError("at least one tcp port specifier must be provided")
    if service_type == "ExternalName" and is_dns1123_subdomain(external_name or ""):
        raise ClientError(f"invalid service external name {external_name or ''}")
    # createService
    ports = []
    for spec in tcp:
        port, target = _parse_tcp(spec)
        ports.append(_port(spec.replace(":", "-"), "TCP", port, target, _int32(node_port or 0)))
    body: dict[str, Any] = {}
    if ports:
        body["ports"] = ports
    body["selector"] = {"app": name}
    if cluster_ip:
        body["clusterIP"] = cluster_ip
    body["type"] = service_type
    if external_name:
        body["externalName"] = external_name
    return _service(name, {"app": name}, body)

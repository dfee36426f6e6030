"""Describers: one object (plus related objects and its events) in, kubectl's describe text out.

Rules kept here (kubectl ``pkg/describe/describe.go`` v0.32, spec §7):
- Lines are ``Label:\\tvalue`` through Go's tabwriter with min width 0, padding 2; a line with no
  tab (``Subsets:``, ``Events:``) ends an alignment block, which is why blocks differ in width.
- Labels print ``k=v`` sorted, one per line; annotations ``k: v`` sorted, hiding
  ``kubectl.kubernetes.io/last-applied-configuration``; a value longer than 140 (with key) or
  holding a newline prints as ``k:`` plus indented lines cut at 138 characters and ``...``.
- The Service ``Endpoints:`` line reads the Service's EndpointSlices (label ``kubernetes.io/service-name``)
  as kubectl does (``ready`` unset counts as ready; the first address of each endpoint): ``<none>`` when
  there is none, empty when nothing is ready for that port, 3 items then `` + N more...``. Without slices
  given (``slices=None``) it reads the Endpoints object, one slice per subset.
- EndpointSlice: ``describeEndpointSliceV1`` (AddressType, a Name/Port/Protocol table or ``Ports: <unset>``,
  per endpoint its addresses, Ready condition, Hostname, TargetRef, NodeName and Zone with ``<unset>``).
- Events: ``Events:  <none>``, or a ``Type Reason Age From Message`` table ordered by last
  timestamp; Age becomes ``<last> (xN over <first>)`` for repeated events. ``events=None`` omits
  the section (``--show-events=false``).
- Pure: ``lookup(kind, namespace, name)`` supplies related objects; no store, no Console.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from kubesvc.api.jsonpath import go_text
from kubesvc.api.tables import (
    _d,
    _int,
    _list,
    age,
    format_labels,
    join_host_port,
    load_balancer_addresses,
    parse_time,
)
from kubesvc.cli.printers import tabwrite

Lookup = Callable[[str, str, str], "dict[str, Any] | None"]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_ANNOTATION_LEN = 140


class _Writer:
    """kubectl's PrefixWriter: two spaces per level, text collected for one tabwriter pass."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, level: int, text: str) -> None:
        self.parts.append("  " * level + text)

    def text(self) -> str:
        return tabwrite("".join(self.parts), minwidth=0, padding=2)


def join_descriptions(texts: Iterable[str]) -> str:
    """Several describe outputs, separated by two blank lines as kubectl prints them."""
    return "\n\n".join(t if t.endswith("\n") else t + "\n" for t in texts)


# -------------------------------------------------------------------------------------- helpers


def _object_header(w: _Writer, meta: dict[str, Any]) -> None:
    """The four lines most describers open with: Name, Namespace, Labels, Annotations."""
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _labels(w: _Writer, title: str, labels: Any, initial_indent: str = "") -> None:
    w.write(0, f"{initial_indent}{title}:\t")
    if not isinstance(labels, dict) or not labels:
        w.write(0, "<none>\n")
        return
    for i, key in enumerate(sorted(labels)):
        if i:
            w.write(0, f"{initial_indent}\t")
        w.write(0, f"{key}={labels[key]}\n")


def _annotations(w: _Writer, title: str, annotations: Any) -> None:
    w.write(0, f"{title}:\t")
    items = annotations if isinstance(annotations, dict) else {}
    keys = sorted(k for k in items if k != LAST_APPLIED)
    if not keys:
        w.write(0, "<none>\n")
        return
    for i, key in enumerate(keys):
        if i:
            w.write(0, "\t")
        value = str(items[key])
        if value.endswith("\n"):
            value = value[:-1]
        if len(value) + len(key) + 2 > MAX_ANNOTATION_LEN or "\n" in value:
            w.write(0, f"{key}:\n")
            for line in value.split("\n"):
                cut = line[: MAX_ANNOTATION_LEN - 2] + "..." if len(line) > MAX_ANNOTATION_LEN - 2 else line
                w.write(0, f"\t  {cut}\n")
        else:
            w.write(0, f"{key}: {value}\n")


def _rfc1123z(timestamp: Any) -> str:
    """Go's ``time.RFC1123Z`` in local time (``Mon, 02 Jan 2006 15:04:05 -0700``)."""
    parsed = parse_time(timestamp)
    if parsed is None:
        return "Mon, 01 Jan 0001 00:00:00 +0000"
    return parsed.astimezone().strftime("%a, %d %b %Y %H:%M:%S %z")


def _events(w: _Writer, events: Sequence[dict[str, Any]] | None, now: datetime) -> None:
    if events is None:
        return
    if not events:
        w.write(0, "Events:\t<none>\n")
        return
    epoch = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(events, key=lambda e: parse_time(e.get("lastTimestamp")) or epoch)
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")
    for e in ordered:
        first = age(e.get("eventTime"), now) if parse_time(e.get("eventTime")) else age(e.get("firstTimestamp"), now)
        series = e.get("series")
        count = _int(e.get("count"))
        if isinstance(series, dict):
            interval = f"{age(series.get('lastObservedTime'), now)} (x{_int(series.get('count'))} over {first})"
        elif count > 1:
            interval = f"{age(e.get('lastTimestamp'), now)} (x{count} over {first})"
        else:
            interval = first
        source = _d(e, "source", "component") or e.get("reportingComponent") or ""
        w.write(1, f"{e.get('type', '')}\t{e.get('reason', '')}\t{interval}\t{source}\t{str(e.get('message', '')).strip()}\n")


def _endpoints_as_slices(endpoints: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One Endpoints object -> EndpointSlice-like dicts: one per subset (one empty when none)."""
    if endpoints is None:
        return []
    slices = []
    for ss in _list(endpoints.get("subsets")):
        if not isinstance(ss, dict):
            continue
        eps = [{"ip": str(a.get("ip", "")), "ready": True} for a in _list(ss.get("addresses")) if isinstance(a, dict)]
        eps += [{"ip": str(a.get("ip", "")), "ready": False} for a in _list(ss.get("notReadyAddresses")) if isinstance(a, dict)]
        slices.append({"ports": [p for p in _list(ss.get("ports")) if isinstance(p, dict)], "endpoints": eps})
    return slices or [{"ports": [], "endpoints": []}]


def _slices_for_format(slices: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored EndpointSlices -> the shape ``format_endpoint_slices`` reads (first address, ready unset = ready)."""
    out = []
    for sl in slices:
        eps = [{"ip": str(_list(ep.get("addresses"))[0]), "ready": _d(ep, "conditions", "ready") is not False}
               for ep in _list(sl.get("endpoints")) if isinstance(ep, dict) and _list(ep.get("addresses"))]
        out.append({"ports": [p for p in _list(sl.get("ports")) if isinstance(p, dict)], "endpoints": eps})
    return out


def format_endpoint_slices(slices: list[dict[str, Any]], port_names: set[str] | None) -> str:
    """``formatEndpointSlices``: ready ``ip:port`` for matching port names, 3 then `` + N more...``."""
    if not slices:
        return "<none>"
    items: list[str] = []
    limit, more, count = 3, False, 0
    for sl in slices:
        if not sl["ports"]:
            for ep in sl["endpoints"]:
                if len(items) == limit:
                    more = True
                if not ep["ready"]:
                    continue
                if not more:
                    items.append(ep["ip"])
                count += 1
            continue
        for port in sl["ports"]:
            if port_names is None or str(port.get("name") or "") in port_names:
                for ep in sl["endpoints"]:
                    if len(items) == limit:
                        more = True
                    if not ep["ready"]:
                        continue
                    if not more:
                        items.append(join_host_port(ep["ip"], port.get("port")))
                    count += 1
    text = ",".join(items)
    return f"{text} + {count - limit} more..." if more else text


# -------------------------------------------------------------------------------------- service


def describe_service(svc: dict[str, Any], endpoints: dict[str, Any] | None,
                     events: Sequence[dict[str, Any]] | None, now: datetime,
                     endpoint_slices: Sequence[dict[str, Any]] | None = None) -> str:
    meta, spec, status = _meta(svc), svc.get("spec") or {}, svc.get("status") or {}
    slices = _endpoints_as_slices(endpoints) if endpoint_slices is None else _slices_for_format(endpoint_slices)
    w = _Writer()
    _object_header(w, meta)
    w.write(0, f"Selector:\t{format_labels(spec.get('selector'))}\n")
    w.write(0, f"Type:\t{spec.get('type', '')}\n")
    if spec.get("ipFamilyPolicy"):
        w.write(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}\n")
    families = _list(spec.get("ipFamilies"))
    w.write(0, f"IP Families:\t{','.join(map(str, families)) if families else '<none>'}\n")
    w.write(0, f"IP:\t{spec.get('clusterIP', '')}\n")
    cluster_ips = _list(spec.get("clusterIPs"))
    w.write(0, f"IPs:\t{','.join(map(str, cluster_ips)) if cluster_ips else '<none>'}\n")
    if _list(spec.get("externalIPs")):
        w.write(0, f"External IPs:\t{','.join(map(str, spec['externalIPs']))}\n")
    if spec.get("loadBalancerIP"):
        w.write(0, f"Desired LoadBalancer IP:\t{spec['loadBalancerIP']}\n")
    if spec.get("externalName"):
        w.write(0, f"External Name:\t{spec['externalName']}\n")
    ingress = [i for i in _list(_d(status, "loadBalancer", "ingress")) if isinstance(i, dict)]
    if ingress:
        entries = []
        for ing in ingress:
            if ing.get("ip"):
                entries.append(str(ing["ip"]) + (f" ({ing['ipMode']})" if ing.get("ipMode") else ""))
            else:
                entries.append(str(ing.get("hostname", "")))
        w.write(0, f"LoadBalancer Ingress:\t{', '.join(entries)}\n")
    for port in _list(spec.get("ports")):
        if not isinstance(port, dict):
            continue
        name = port.get("name") or "<unset>"
        proto = port.get("protocol") or "TCP"
        w.write(0, f"Port:\t{name}\t{port.get('port')}/{proto}\n")
        target = port.get("targetPort", port.get("port"))
        w.write(0, f"TargetPort:\t{target}/{proto}\n")
        if _int(port.get("nodePort")):
            w.write(0, f"NodePort:\t{name}\t{port['nodePort']}/{proto}\n")
        w.write(0, f"Endpoints:\t{format_endpoint_slices(slices, {str(port.get('name') or '')})}\n")
    w.write(0, f"Session Affinity:\t{spec.get('sessionAffinity', '')}\n")
    if spec.get("externalTrafficPolicy"):
        w.write(0, f"External Traffic Policy:\t{spec['externalTrafficPolicy']}\n")
    if spec.get("internalTrafficPolicy"):
        w.write(0, f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}\n")
    if _int(spec.get("healthCheckNodePort")):
        w.write(0, f"HealthCheck NodePort:\t{spec['healthCheckNodePort']}\n")
    if _list(spec.get("loadBalancerSourceRanges")):
        w.write(0, f"LoadBalancer Source Ranges:\t{','.join(map(str, spec['loadBalancerSourceRanges']))}\n")
    if spec.get("trafficDistribution"):
        w.write(0, f"Traffic Distribution:\t{spec['trafficDistribution']}\n")
    _events(w, events, now)
    return w.text()


def describe_endpoints(ep: dict[str, Any], events: Sequence[dict[str, Any]] | None, now: datetime) -> str:
    meta = _meta(ep)
    w = _Writer()
    _object_header(w, meta)
    w.write(0, "Subsets:\n")
    for ss in _list(ep.get("subsets")):
        if not isinstance(ss, dict):
            continue
        ready = ",".join(str(a.get("ip", "")) for a in _list(ss.get("addresses")) if isinstance(a, dict))
        not_ready = ",".join(str(a.get("ip", "")) for a in _list(ss.get("notReadyAddresses")) if isinstance(a, dict))
        w.write(1, f"Addresses:\t{ready or '<none>'}\n")
        w.write(1, f"NotReadyAddresses:\t{not_ready or '<none>'}\n")
        ports = [p for p in _list(ss.get("ports")) if isinstance(p, dict)]
        if ports:
            w.write(1, "Ports:\n")
            w.write(2, "Name\tPort\tProtocol\n")
            w.write(2, "----\t----\t--------\n")
            for p in ports:
                w.write(2, f"{p.get('name') or '<unset>'}\t{p.get('port')}\t{p.get('protocol') or 'TCP'}\n")
        w.write(0, "\n")
    _events(w, events, now)
    return w.text()


def describe_endpoint_slice(es: dict[str, Any], events: Sequence[dict[str, Any]] | None, now: datetime) -> str:
    meta = _meta(es)
    w = _Writer()
    _object_header(w, meta)
    w.write(0, f"AddressType:\t{es.get('addressType', '')}\n")
    ports = [p for p in _list(es.get("ports")) if isinstance(p, dict)]
    if not ports:
        w.write(0, "Ports: <unset>\n")
    else:
        w.write(0, "Ports:\n")
        w.write(1, "Name\tPort\tProtocol\n")
        w.write(1, "----\t----\t--------\n")
        for p in ports:
            number = "<unset>" if p.get("port") is None else str(p["port"])
            w.write(1, f"{p.get('name') or '<unset>'}\t{number}\t{p.get('protocol') or 'TCP'}\n")
    endpoints = [e for e in _list(es.get("endpoints")) if isinstance(e, dict)]
    if not endpoints:
        w.write(0, "Endpoints: <none>\n")
    else:
        w.write(0, "Endpoints:\n")
        for ep in endpoints:
            w.write(1, f"- Addresses:\t{', '.join(map(str, _list(ep.get('addresses')))) or '<none>'}\n")
            w.write(2, "Conditions:\n")
            ready = _d(ep, "conditions", "ready")
            w.write(3, f"Ready:\t{'<unset>' if ready is None else str(bool(ready)).lower()}\n")
            w.write(2, f"Hostname:\t{ep['hostname'] if ep.get('hostname') is not None else '<unset>'}\n")
            ref = ep.get("targetRef")
            if isinstance(ref, dict):
                w.write(2, f"TargetRef:\t{ref.get('kind', '')}/{ref.get('name', '')}\n")
            w.write(2, f"NodeName:\t{ep['nodeName'] if ep.get('nodeName') is not None else '<unset>'}\n")
            w.write(2, f"Zone:\t{ep['zone'] if ep.get('zone') is not None else '<unset>'}\n")
    _events(w, events, now)
    return w.text()


# -------------------------------------------------------------------------------------- ingress


def _ingress_backend(ns: str, backend: Any, lookup: Lookup) -> str:
    if not isinstance(backend, dict):
        return ""
    service = backend.get("service")
    if isinstance(service, dict):
        port = service.get("port") or {}
        number = _int(port.get("number"))
        label = f"{service.get('name', '')}:{number if number else port.get('name', '')}"
        svc = lookup("Service", ns, str(service.get("name", "")))
        if svc is None:
            return f'{label} (<error: services "{service.get("name", "")}" not found>)'
        sp_name = ""
        for sp in _list(_d(svc, "spec", "ports")):
            if not isinstance(sp, dict):
                continue
            if number and number == _int(sp.get("port")):
                sp_name = str(sp.get("name") or "")
            elif port.get("name") and port.get("name") == sp.get("name"):
                sp_name = str(sp.get("name") or "")
        slices = _endpoints_as_slices(lookup("Endpoints", ns, str(service.get("name", ""))))
        return f"{label} ({format_endpoint_slices(slices, {sp_name})})"
    resource = backend.get("resource")
    if isinstance(resource, dict):
        group = resource.get("apiGroup") or "<none>"
        return f"APIGroup: {group}, Kind: {resource.get('kind', '')}, Name: {resource.get('name', '')}"
    return ""


def describe_ingress(ing: dict[str, Any], lookup: Lookup, events: Sequence[dict[str, Any]] | None,
                     now: datetime) -> str:
    meta, spec = _meta(ing), ing.get("spec") or {}
    ns = str(meta.get("namespace", ""))
    w = _Writer()
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    _labels(w, "Labels", meta.get("labels"))
    w.write(0, f"Namespace:\t{ns}\n")
    w.write(0, f"Address:\t{load_balancer_addresses(ing.get('status'))}\n")
    w.write(0, f"Ingress Class:\t{spec.get('ingressClassName') or '<none>'}\n")
    default = "<default>"
    if isinstance(spec.get("defaultBackend"), dict):
        default = _ingress_backend(ns, spec["defaultBackend"], lookup)
    w.write(0, f"Default backend:\t{default}\n")
    tls = [t for t in _list(spec.get("tls")) if isinstance(t, dict)]
    if tls:
        w.write(0, "TLS:\n")
        for t in tls:
            hosts = ",".join(map(str, _list(t.get("hosts"))))
            if t.get("secretName"):
                w.write(1, f"{t['secretName']} terminates {hosts}\n")
            else:
                w.write(1, f"SNI routes {hosts}\n")
    w.write(0, "Rules:\n  Host\tPath\tBackends\n")
    w.write(1, "----\t----\t--------\n")
    count = 0
    for rule in _list(spec.get("rules")):
        if not isinstance(rule, dict) or not isinstance(rule.get("http"), dict):
            continue
        count += 1
        w.write(1, f"{rule.get('host') or '*'}\t\n")
        for path in _list(rule["http"].get("paths")):
            if isinstance(path, dict):
                w.write(2, f"\t{path.get('path', '')} \t{_ingress_backend(ns, path.get('backend'), lookup)}\n")
    if count == 0:
        w.write(1, f"*\t*\t{default}\n")
    _annotations(w, "Annotations", meta.get("annotations"))
    _events(w, events, now)
    return w.text()


def describe_ingressclass(ic: dict[str, Any], events: Sequence[dict[str, Any]] | None, now: datetime) -> str:
    meta, spec = _meta(ic), ic.get("spec") or {}
    w = _Writer()
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Controller:\t{spec.get('controller', '')}\n")
    params = spec.get("parameters")
    if isinstance(params, dict):
        w.write(0, "Parameters:\n")
        if params.get("apiGroup"):
            w.write(1, f"APIGroup:\t{params['apiGroup']}\n")
        w.write(1, f"Kind:\t{params.get('kind', '')}\n")
        w.write(1, f"Name:\t{params.get('name', '')}\n")
    _events(w, events, now)
    return w.text()


# ------------------------------------------------------------------------------------------ pods


def describe_namespace(ns: dict[str, Any]) -> str:
    meta = _meta(ns)
    w = _Writer()
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    phase = _d(ns, "status", "phase") or ("Terminating" if meta.get("deletionTimestamp") else "Active")
    w.write(0, f"Status:\t{phase}\n")
    w.write(0, "\nNo resource quota.\n")
    w.write(0, "\nNo LimitRange resource.\n")
    return w.text()


def describe_configmap(cm: dict[str, Any], events: Sequence[dict[str, Any]] | None, now: datetime) -> str:
    meta = _meta(cm)
    w = _Writer()
    _object_header(w, meta)
    w.write(0, "\nData\n====\n")
    data = cm.get("data")
    if not isinstance(data, dict):
        data = {}
    for k in sorted(data):
        w.write(0, f"{k}:\n----\n")
        w.write(0, f"{data[k]}\n")
        w.write(0, "\n")
    w.write(0, "\nBinaryData\n====\n")
    binary = cm.get("binaryData")
    if not isinstance(binary, dict):
        binary = {}
    for k in sorted(binary):
        w.write(0, f"{k}: {len(_b64decode(binary[k]))} bytes\n")
    w.write(0, "\n")
    _events(w, events, now)
    return w.text()


def _b64decode(value: Any) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(str(value), validate=False)
    except (binascii.Error, ValueError):
        return str(value).encode()


def describe_secret(secret: dict[str, Any]) -> str:
    meta = _meta(secret)
    w = _Writer()
    _object_header(w, meta)
    stype = secret.get("type") or "Opaque"
    w.write(0, f"\nType:\t{stype}\n")
    w.write(0, "\nData\n====\n")
    data = dict(secret.get("data") or {}) if isinstance(secret.get("data"), dict) else {}
    for k in sorted(data):
        raw = _b64decode(data[k])
        if k == "token" and stype == "kubernetes.io/service-account-token":
            w.write(0, f"{k}:\t{raw.decode(errors='replace')}\n")
        else:
            w.write(0, f"{k}:\t{len(raw)} bytes\n")
    return w.text()


# ------------------------------------------------------------------------------------- generic


def _camel_split(word: str) -> list[str]:
    """``github.com/fatih/camelcase.Split``."""
    runs: list[list[str]] = []
    last = None
    for ch in word:
        cls = "l" if ch.islower() else "u" if ch.isupper() else "d" if ch.isdigit() else "o"
        if cls == last:
            runs[-1].append(ch)
        else:
            runs.append([ch])
        last = cls
    for i in range(len(runs) - 1):
        if runs[i][0].isupper() and runs[i + 1][0].islower():
            runs[i + 1].insert(0, runs[i].pop())
    return ["".join(r) for r in runs if r]


def smart_label(field: str) -> str:
    """``smartLabelFor``: ``apiVersion`` -> ``API Version``; other names with symbols untouched."""
    if any(not (ch.isalpha() or ch == "-") for ch in field):
        return field
    parts = []
    for part in _camel_split(field):
        if part == "_":
            continue
        parts.append(part.upper() if part.upper() in ("API", "URL", "UID", "OSB", "GUID") else part[:1].upper() + part[1:])
    return " ".join(parts)


_GENERIC_SKIP = {".metadata.managedFields", ".metadata.name", ".metadata.namespace", ".metadata.labels",
                 ".metadata.annotations"}


def _unstructured(w: _Writer, level: int, content: dict[str, Any], prefix: str) -> None:
    for key in sorted(content):
        value = content[key]
        path = f"{prefix}.{key}"
        if path in _GENERIC_SKIP:
            continue
        if isinstance(value, dict):
            w.write(level, f"{smart_label(key)}:\n")
            _unstructured(w, level + 1, value, path)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(key)}:\n")
            for child in value:
                if isinstance(child, dict):
                    _unstructured(w, level + 1, child, path)
                else:
                    w.write(level + 1, f"{go_text(child)}\n")
        else:
            w.write(level, f"{smart_label(key)}:\t{go_text(value)}\n")


def describe_generic(obj: dict[str, Any], events: Sequence[dict[str, Any]] | None, now: datetime) -> str:
    meta = _meta(obj)
    w = _Writer()
    _object_header(w, meta)
    _unstructured(w, 0, obj, "")
    _events(w, events, now)
    return w.text()


# -------------------------------------------------------------------------------------- entry


def describe(
    obj: dict[str, Any],
    *,
    lookup: Lookup,
    events: Sequence[dict[str, Any]] | None,
    now: datetime,
    pods: Sequence[dict[str, Any]] = (),
    endpoint_slices: Sequence[dict[str, Any]] | None = None,
) -> str:
    """kubectl describe for one object. ``pods`` (same namespace) feed RS/RC ``Pods Status``;
    ``endpoint_slices`` (a Service's, by label) feed its ``Endpoints:`` lines."""
    from kubesvc.cli.describe_workloads import describe_deployment, describe_pod, describe_replicaset

    kind = str(obj.get("kind", ""))
    meta = _meta(obj)
    if kind == "Service":
        ep = lookup("Endpoints", str(meta.get("namespace", "")), str(meta.get("name", "")))
        return describe_service(obj, ep, events, now, endpoint_slices)
    if kind == "Endpoints":
        return describe_endpoints(obj, events, now)
    if kind == "EndpointSlice":
        return describe_endpoint_slice(obj, events, now)
    if kind == "Ingress":
        return describe_ingress(obj, lookup, events, now)
    if kind == "IngressClass":
        return describe_ingressclass(obj, events, now)
    if kind == "Pod":
        return describe_pod(obj, events, now)
    if kind in ("ReplicaSet", "ReplicationController"):
        return describe_replicaset(obj, pods, events, now)
    if kind == "Deployment":
        return describe_deployment(obj, events, now)
    if kind == "Namespace":
        return describe_namespace(obj)
    if kind == "ConfigMap":
        return describe_configmap(obj, events, now)
    if kind == "Secret":
        return describe_secret(obj)
    return describe_generic(obj, events, now)

"""Describers: one object (plus related objects and its events) in, kubectl's describe text out.

Rules kept here (kubectl ``pkg/describe/describe.go`` v0.32, spec §7):
- Lines are ``Label:\\tvalue`` through Go's tabwriter with min width 0, padding 2; a line with no
  tab (``Subsets:``, ``Events:``) ends an alignment block, which is why blocks differ in width.
- Labels print ``k=v`` sorted, one per line; annotations ``k: v`` sorted, hiding
  ``kubectl.kubernetes.io/last-applied-configuration``; a value longer than 140 (with key) or
  holding a newline prints as ``k:`` plus indented lines cut at 138 characters and ``...``.
- The Service ``Endpoints:`` line reads the Endpoints object as one slice per subset: ``<none>``
  when the Endpoints object is missing, empty when nothing is ready for that port, 3 items then
  `` + N more...``.
- Events: ``Events:  <none>``, or a ``Type Reason Age From Message`` table ordered by last
  timestamp; Age becomes ``<last> (xN over <first>)`` for repeated events. ``events=None`` omits
  the section (``--show-events=false``).
- Pure: ``lookup(kind, namespace, name)`` supplies related objects; no store, no Console.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

from kubesvc.api.jsonpath import go_text
from kubesvc.api.tables import (
    _d,
    _int,
    _list,
    age,
    format_label_selector,
    format_labels,
    join_host_port,
    load_balancer_addresses,
    parse_time,
    selector_string,
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


def _object_header(w: "_Writer", meta: dict[str, Any]) -> None:
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
    epoch = datetime.min.replace(tzinfo=timezone.utc)
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
                     events: Sequence[dict[str, Any]] | None, now: datetime) -> str:
    meta, spec, status = _meta(svc), svc.get("spec") or {}, svc.get("status") or {}
    slices = _endpoints_as_slices(endpoints)
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


def _probe(probe: dict[str, Any]) -> str:
    attrs = (
        f"delay={_int(probe.get('initialDelaySeconds'))}s timeout={_int(probe.get('timeoutSeconds'), 1)}s "
        f"period={_int(probe.get('periodSeconds'), 10)}s #success={_int(probe.get('successThreshold'), 1)} "
        f"#failure={_int(probe.get('failureThreshold'), 3)}"
    )
    if isinstance(probe.get("exec"), dict):
        return f"exec [{' '.join(map(str, _list(probe['exec'].get('command'))))}] {attrs}"
    if isinstance(probe.get("httpGet"), dict):
        g = probe["httpGet"]
        scheme = str(g.get("scheme") or "HTTP").lower()
        port = g.get("port", "")
        host = join_host_port(str(g.get("host", "")), port) if str(port) != "" else str(g.get("host", ""))
        return f"http-get {scheme}://{host}{g.get('path', '')} {attrs}"
    if isinstance(probe.get("tcpSocket"), dict):
        t = probe["tcpSocket"]
        return f"tcp-socket {t.get('host', '')}:{t.get('port', '')} {attrs}"
    if isinstance(probe.get("grpc"), dict):
        g = probe["grpc"]
        return f"grpc <pod>:{g.get('port', '')} {g.get('service', '')} {attrs}"
    return f"unknown {attrs}"


def _container_state(w: _Writer, title: str, state: Any) -> None:
    state = state if isinstance(state, dict) else {}
    if isinstance(state.get("running"), dict):
        w.write(2, f"{title}:\tRunning\n")
        w.write(3, f"Started:\t{_rfc1123z(state['running'].get('startedAt'))}\n")
    elif isinstance(state.get("waiting"), dict):
        w.write(2, f"{title}:\tWaiting\n")
        if state["waiting"].get("reason"):
            w.write(3, f"Reason:\t{state['waiting']['reason']}\n")
    elif isinstance(state.get("terminated"), dict):
        t = state["terminated"]
        w.write(2, f"{title}:\tTerminated\n")
        if t.get("reason"):
            w.write(3, f"Reason:\t{t['reason']}\n")
        if t.get("message"):
            w.write(3, f"Message:\t{t['message']}\n")
        w.write(3, f"Exit Code:\t{_int(t.get('exitCode'))}\n")
        if _int(t.get("signal")) > 0:
            w.write(3, f"Signal:\t{t['signal']}\n")
        w.write(3, f"Started:\t{_rfc1123z(t.get('startedAt'))}\n")
        w.write(3, f"Finished:\t{_rfc1123z(t.get('finishedAt'))}\n")
    else:
        w.write(2, f"{title}:\tWaiting\n")


def _containers(w: _Writer, label: str, containers: list[Any], statuses: list[Any], space: str) -> None:
    by_name = {s.get("name"): s for s in statuses if isinstance(s, dict)}
    w.write(0, f"{space}{label}:{'' if containers else ' <none>'}\n")
    for c in containers:
        if not isinstance(c, dict):
            continue
        status = by_name.get(c.get("name"))
        w.write(1, f"{' ' if space else ''}{c.get('name', '')}:\n")
        if status is not None:
            w.write(2, f"Container ID:\t{status.get('containerID', '')}\n")
        w.write(2, f"Image:\t{c.get('image', '')}\n")
        if status is not None:
            w.write(2, f"Image ID:\t{status.get('imageID', '')}\n")
        ports = [p for p in _list(c.get("ports")) if isinstance(p, dict)]
        port_text = ", ".join(f"{_int(p.get('containerPort'))}/{p.get('protocol') or 'TCP'}" for p in ports)
        host_text = ", ".join(f"{_int(p.get('hostPort'))}/{p.get('protocol') or 'TCP'}" for p in ports)
        w.write(2, f"Ports:\t{port_text}\n" if "," in port_text else f"Port:\t{port_text or '<none>'}\n")
        w.write(2, f"Host Ports:\t{host_text}\n" if "," in host_text else f"Host Port:\t{host_text or '<none>'}\n")
        for title, key in (("Command", "command"), ("Args", "args")):
            if _list(c.get(key)):
                w.write(2, f"{title}:\n")
                for item in c[key]:
                    for line in str(item).split("\n"):
                        w.write(3, f"{line}\n")
        if status is not None:
            _container_state(w, "State", status.get("state"))
            if isinstance(_d(status, "lastState", "terminated"), dict):
                _container_state(w, "Last State", status.get("lastState"))
            w.write(2, f"Ready:\t{'True' if status.get('ready') else 'False'}\n")
            w.write(2, f"Restart Count:\t{_int(status.get('restartCount'))}\n")
        resources = c.get("resources") if isinstance(c.get("resources"), dict) else {}
        for title in ("limits", "requests"):
            values = resources.get(title)
            if isinstance(values, dict) and values:
                w.write(2, f"{title.capitalize()}:\n")
                for name in sorted(values):
                    w.write(3, f"{name}:\t{values[name]}\n")
        for title, key in (("Liveness", "livenessProbe"), ("Readiness", "readinessProbe"), ("Startup", "startupProbe")):
            if isinstance(c.get(key), dict):
                w.write(2, f"{title}:\t{_probe(c[key])}\n")
        env_from = [e for e in _list(c.get("envFrom")) if isinstance(e, dict)]
        if env_from:
            w.write(2, "Environment Variables from:\n")
            for e in env_from:
                ref, src = (e.get("configMapRef"), "ConfigMap") if isinstance(e.get("configMapRef"), dict) else (e.get("secretRef"), "Secret")
                ref = ref if isinstance(ref, dict) else {}
                optional = "true" if ref.get("optional") else "false"
                if e.get("prefix"):
                    w.write(3, f"{ref.get('name', '')}\t{src} with prefix '{e['prefix']}'\tOptional: {optional}\n")
                else:
                    w.write(3, f"{ref.get('name', '')}\t{src}\tOptional: {optional}\n")
        env = [e for e in _list(c.get("env")) if isinstance(e, dict)]
        w.write(2, f"Environment:{'' if env else chr(9) + '<none>'}\n")
        for e in env:
            vf = e.get("valueFrom")
            if not isinstance(vf, dict):
                for i, line in enumerate(str(e.get("value", "")).split("\n")):
                    w.write(3, f"{e.get('name', '')}:\t{line}\n" if i == 0 else f"\t{line}\n")
            elif isinstance(vf.get("fieldRef"), dict):
                f = vf["fieldRef"]
                w.write(3, f"{e.get('name', '')}:\t ({f.get('apiVersion', 'v1')}:{f.get('fieldPath', '')})\n")
            elif isinstance(vf.get("resourceFieldRef"), dict):
                w.write(3, f"{e.get('name', '')}:\t ({vf['resourceFieldRef'].get('resource', '')})\n")
            elif isinstance(vf.get("secretKeyRef"), dict):
                r = vf["secretKeyRef"]
                w.write(3, f"{e.get('name', '')}:\t<set to the key '{r.get('key', '')}' in secret '{r.get('name', '')}'>\tOptional: {'true' if r.get('optional') else 'false'}\n")
            elif isinstance(vf.get("configMapKeyRef"), dict):
                r = vf["configMapKeyRef"]
                w.write(3, f"{e.get('name', '')}:\t<set to the key '{r.get('key', '')}' of config map '{r.get('name', '')}'>\tOptional: {'true' if r.get('optional') else 'false'}\n")
        mounts = sorted((m for m in _list(c.get("volumeMounts")) if isinstance(m, dict)), key=lambda m: str(m.get("mountPath", "")))
        w.write(2, f"Mounts:{'' if mounts else chr(9) + '<none>'}\n")
        for m in mounts:
            flags = ["ro" if m.get("readOnly") else "rw"]
            if m.get("subPath"):
                flags.append(f'path="{m["subPath"]}"')
            w.write(3, f"{m.get('mountPath', '')} from {m.get('name', '')} ({','.join(flags)})\n")


def _volumes(w: _Writer, volumes: list[Any], space: str) -> None:
    vols = [v for v in volumes if isinstance(v, dict)]
    if not vols:
        w.write(0, f"{space}Volumes:\t<none>\n")
        return
    w.write(0, f"{space}Volumes:\n")
    for v in vols:
        w.write(1, f"{' ' if space else ''}{v.get('name', '')}:\n")
        if isinstance(v.get("emptyDir"), dict):
            e = v["emptyDir"]
            w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
            w.write(2, f"Medium:\t{e.get('medium', '')}\n")
            w.write(2, f"SizeLimit:\t{e.get('sizeLimit') or '<unset>'}\n")
        elif isinstance(v.get("configMap"), dict):
            w.write(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
            w.write(2, f"Name:\t{v['configMap'].get('name', '')}\n")
            w.write(2, f"Optional:\t{'true' if v['configMap'].get('optional') else 'false'}\n")
        elif isinstance(v.get("secret"), dict):
            w.write(2, "Type:\tSecret (a volume populated by a Secret)\n")
            w.write(2, f"SecretName:\t{v['secret'].get('secretName', '')}\n")
            w.write(2, f"Optional:\t{'true' if v['secret'].get('optional') else 'false'}\n")
        elif isinstance(v.get("hostPath"), dict):
            w.write(2, "Type:\tHostPath (bare host directory volume)\n")
            w.write(2, f"Path:\t{v['hostPath'].get('path', '')}\n")
            w.write(2, f"HostPathType:\t{v['hostPath'].get('type') or '<none>'}\n")
        elif isinstance(v.get("persistentVolumeClaim"), dict):
            p = v["persistentVolumeClaim"]
            w.write(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n")
            w.write(2, f"ClaimName:\t{p.get('claimName', '')}\n")
            w.write(2, f"ReadOnly:\t{'true' if p.get('readOnly') else 'false'}\n")
        else:
            w.write(1, "<unknown>\n")


def _tolerations(w: _Writer, title: str, tolerations: list[Any]) -> None:
    w.write(0, f"{title}:\t")
    tols = sorted((t for t in tolerations if isinstance(t, dict)), key=lambda t: str(t.get("key", "")))
    if not tols:
        w.write(0, "<none>\n")
        return
    for i, t in enumerate(tols):
        if i:
            w.write(0, "\t")
        text = str(t.get("key", ""))
        if t.get("value"):
            text += f"={t['value']}"
        if t.get("effect"):
            text += f":{t['effect']}"
        if t.get("operator") == "Exists" and not t.get("value"):
            text += " op=Exists" if (t.get("key") or t.get("effect")) else "op=Exists"
        if t.get("tolerationSeconds") is not None:
            text += f" for {t['tolerationSeconds']}s"
        w.write(0, text + "\n")


def _qos(pod: dict[str, Any]) -> str:
    containers = [c for c in _list(_d(pod, "spec", "containers")) + _list(_d(pod, "spec", "initContainers")) if isinstance(c, dict)]
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
        limits = res.get("limits") if isinstance(res.get("limits"), dict) else {}
        requests = res.get("requests") if isinstance(res.get("requests"), dict) else {}
        if limits or requests:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in limits or str(requests.get(r, limits.get(r))) != str(limits.get(r)):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _controlled_by(obj: dict[str, Any]) -> str:
    for ref in _list(_meta(obj).get("ownerReferences")):
        if isinstance(ref, dict) and ref.get("controller"):
            return f"{ref.get('kind', '')}/{ref.get('name', '')}"
    return ""


def describe_pod(pod: dict[str, Any], events: Sequence[dict[str, Any]] | None, now: datetime) -> str:
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    w = _Writer()
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    if spec.get("priority") is not None:
        w.write(0, f"Priority:\t{spec['priority']}\n")
    if spec.get("priorityClassName"):
        w.write(0, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    if spec.get("runtimeClassName"):
        w.write(0, f"Runtime Class Name:\t{spec['runtimeClassName']}\n")
    if spec.get("serviceAccountName"):
        w.write(0, f"Service Account:\t{spec['serviceAccountName']}\n")
    node = spec.get("nodeName")
    w.write(0, f"Node:\t{node}/{status.get('hostIP', '')}\n" if node else "Node:\t<none>\n")
    if status.get("startTime"):
        w.write(0, f"Start Time:\t{_rfc1123z(status['startTime'])}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    phase = status.get("phase", "")
    if meta.get("deletionTimestamp") and phase not in ("Failed", "Succeeded"):
        w.write(0, f"Status:\tTerminating (lasts {age(meta['deletionTimestamp'], now)})\n")
        w.write(0, f"Termination Grace Period:\t{_int(meta.get('deletionGracePeriodSeconds'))}s\n")
    else:
        w.write(0, f"Status:\t{phase}\n")
    if status.get("reason"):
        w.write(0, f"Reason:\t{status['reason']}\n")
    if status.get("message"):
        w.write(0, f"Message:\t{status['message']}\n")
    w.write(0, f"IP:\t{status.get('podIP', '')}\n")
    pod_ips = [p for p in _list(status.get("podIPs")) if isinstance(p, dict)]
    if not pod_ips:
        w.write(0, "IPs:\t<none>\n")
    else:
        w.write(0, "IPs:\n")
        for p in pod_ips:
            w.write(1, f"IP:\t{p.get('ip', '')}\n")
    if _controlled_by(pod):
        w.write(0, f"Controlled By:\t{_controlled_by(pod)}\n")
    if status.get("nominatedNodeName"):
        w.write(0, f"NominatedNodeName:\t{status['nominatedNodeName']}\n")
    if _list(spec.get("initContainers")):
        _containers(w, "Init Containers", spec["initContainers"], _list(status.get("initContainerStatuses")), "")
    _containers(w, "Containers", _list(spec.get("containers")), _list(status.get("containerStatuses")), "")
    conditions = [c for c in _list(status.get("conditions")) if isinstance(c, dict)]
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\n")
        for c in conditions:
            w.write(1, f"{c.get('type', '')} \t{c.get('status', '')} \n")
    _volumes(w, _list(spec.get("volumes")), "")
    w.write(0, f"QoS Class:\t{_qos(pod)}\n")
    _labels(w, "Node-Selectors", spec.get("nodeSelector"))
    _tolerations(w, "Tolerations", _list(spec.get("tolerations")))
    _events(w, events, now)
    return w.text()


# ------------------------------------------------------------------------------------ workloads


def _pod_template(w: _Writer, template: Any) -> None:
    w.write(0, "Pod Template:\n")
    if not isinstance(template, dict):
        w.write(1, "<unset>")
        return
    tmeta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    tspec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    _labels(w, "  Labels", tmeta.get("labels"))
    if isinstance(tmeta.get("annotations"), dict) and tmeta["annotations"]:
        _annotations(w, "  Annotations", tmeta["annotations"])
    if tspec.get("serviceAccountName"):
        w.write(1, f"Service Account:\t{tspec['serviceAccountName']}\n")
    if _list(tspec.get("initContainers")):
        _containers(w, "Init Containers", tspec["initContainers"], [], "  ")
    _containers(w, "Containers", _list(tspec.get("containers")), [], "  ")
    _volumes(w, _list(tspec.get("volumes")), "  ")
    if tspec.get("priorityClassName"):
        w.write(1, f"Priority Class Name:\t{tspec['priorityClassName']}\n")
    _labels(w, "  Node-Selectors", tspec.get("nodeSelector"))
    _tolerations(w, "  Tolerations", _list(tspec.get("tolerations")))


def _pods_status(owner: dict[str, Any], pods: Sequence[dict[str, Any]]) -> str:
    uid = _meta(owner).get("uid")
    counts = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for pod in pods:
        refs = [r for r in _list(_meta(pod).get("ownerReferences")) if isinstance(r, dict) and r.get("controller")]
        if not refs or refs[0].get("uid") != uid:
            continue
        phase = _d(pod, "status", "phase")
        if phase in counts:
            counts[phase] += 1
    return (f"{counts['Running']} Running / {counts['Pending']} Waiting / {counts['Succeeded']} Succeeded / "
            f"{counts['Failed']} Failed")


def _conditions_table(w: _Writer, obj: dict[str, Any]) -> None:
    conditions = [c for c in _list(_d(obj, "status", "conditions")) if isinstance(c, dict)]
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
        w.write(1, "----\t------\t------\n")
        for c in conditions:
            w.write(1, f"{c.get('type', '')} \t{c.get('status', '')}\t{c.get('reason', '')}\n")


def describe_replicaset(rs: dict[str, Any], pods: Sequence[dict[str, Any]],
                        events: Sequence[dict[str, Any]] | None, now: datetime) -> str:
    meta, spec, status = _meta(rs), rs.get("spec") or {}, rs.get("status") or {}
    rc = rs.get("kind") == "ReplicationController"
    w = _Writer()
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    selector = format_labels(spec.get("selector")) if rc else format_label_selector(spec.get("selector"))
    w.write(0, f"Selector:\t{selector}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    if not rc and _controlled_by(rs):
        w.write(0, f"Controlled By:\t{_controlled_by(rs)}\n")
    w.write(0, f"Replicas:\t{_int(status.get('replicas'))} current / {_int(spec.get('replicas'), 1)} desired\n")
    w.write(0, f"Pods Status:\t{_pods_status(rs, pods)}\n")
    _pod_template(w, spec.get("template"))
    _conditions_table(w, rs)
    _events(w, events, now)
    return w.text()


def describe_deployment(d: dict[str, Any], events: Sequence[dict[str, Any]] | None, now: datetime) -> str:
    meta, spec, status = _meta(d), d.get("spec") or {}, d.get("status") or {}
    w = _Writer()
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w.write(0, f"CreationTimestamp:\t{_rfc1123z(meta.get('creationTimestamp'))}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Selector:\t{selector_string(spec.get('selector'))}\n")
    w.write(0, (
        f"Replicas:\t{_int(spec.get('replicas'), 1)} desired | {_int(status.get('updatedReplicas'))} updated | "
        f"{_int(status.get('replicas'))} total | {_int(status.get('availableReplicas'))} available | "
        f"{_int(status.get('unavailableReplicas'))} unavailable\n"
    ))
    strategy = spec.get("strategy") if isinstance(spec.get("strategy"), dict) else {}
    w.write(0, f"StrategyType:\t{strategy.get('type', '')}\n")
    w.write(0, f"MinReadySeconds:\t{_int(spec.get('minReadySeconds'))}\n")
    ru = strategy.get("rollingUpdate")
    if isinstance(ru, dict):
        w.write(0, f"RollingUpdateStrategy:\t{ru.get('maxUnavailable', '')} max unavailable, {ru.get('maxSurge', '')} max surge\n")
    _pod_template(w, spec.get("template"))
    _conditions_table(w, d)
    _events(w, events, now)
    return w.text()


# ------------------------------------------------------------------------------- small kinds


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
    data = cm.get("data") if isinstance(cm.get("data"), dict) else {}
    for k in sorted(data):
        w.write(0, f"{k}:\n----\n")
        w.write(0, f"{data[k]}\n")
        w.write(0, "\n")
    w.write(0, "\nBinaryData\n====\n")
    binary = cm.get("binaryData") if isinstance(cm.get("binaryData"), dict) else {}
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
) -> str:
    """kubectl describe for one object. ``pods`` (same namespace) feed RS/RC ``Pods Status``."""
    kind = str(obj.get("kind", ""))
    meta = _meta(obj)
    if kind == "Service":
        ep = lookup("Endpoints", str(meta.get("namespace", "")), str(meta.get("name", "")))
        return describe_service(obj, ep, events, now)
    if kind == "Endpoints":
        return describe_endpoints(obj, events, now)
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

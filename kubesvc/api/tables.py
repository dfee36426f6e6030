"""Table columns and cells per kind, as the apiserver's printers fill them (``as=Table``).

Rules kept here (K8s ``pkg/printers/internalversion/printers.go``, spec §6):
- Cells are computed in *wide* mode, always: every column is returned and priority-1 columns are
  hidden by the client unless ``-o wide``. So the 16-character LB address clipping never happens.
- AGE is ``duration.HumanDuration(now - creationTimestamp)`` (§6.5); a missing time is ``<unknown>``.
- Service EXTERNAL-IP / PORT(S), Endpoints' 3-item truncation, Pod READY/STATUS/RESTARTS and the
  Ingress HOSTS/ADDRESS/PORTS cells follow the Go functions of the same name, including quirks.
- Pure: objects (plain dicts) in, strings out. No clock: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

UNKNOWN = "<unknown>"


# ------------------------------------------------------------------------------------------ time


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration`` on a duration in seconds."""
    secs = int(seconds)  # truncates toward zero, like int(d.Seconds())
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(timestamp: str | None) -> datetime | None:
    """RFC 3339 (``2024-01-02T03:04:05Z``, optional fraction) -> aware datetime; None if unusable."""
    if not timestamp or not isinstance(timestamp, str):
        return None
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year <= 1:
        return None  # Go's zero time
    return parsed


def age(timestamp: str | None, now: datetime) -> str:
    """``translateTimestampSince``: HumanDuration since the timestamp, ``<unknown>`` when missing."""
    parsed = parse_time(timestamp)
    if parsed is None:
        return UNKNOWN
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return human_duration((now - parsed).total_seconds())


# -------------------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    """A table column as the server describes it; priority 1 columns show only with -o wide."""

    name: str
    priority: int = 0

    @property
    def header(self) -> str:
        return self.name.upper()


def _cols(*names: str, wide: tuple[str, ...] = ()) -> list[Column]:
    return [Column(n, 0) for n in names] + [Column(n, 1) for n in wide]


_COLUMNS: dict[str, list[Column]] = {
    "Pod": _cols("Name", "Ready", "Status", "Restarts", "Age",
                 wide=("IP", "Node", "Nominated Node", "Readiness Gates")),
    "Service": _cols("Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", wide=("Selector",)),
    "Endpoints": _cols("Name", "Endpoints", "Age"),
    "ReplicationController": _cols("Name", "Desired", "Current", "Ready", "Age",
                                   wide=("Containers", "Images", "Selector")),
    "ReplicaSet": _cols("Name", "Desired", "Current", "Ready", "Age", wide=("Containers", "Images", "Selector")),
    "Deployment": _cols("Name", "Ready", "Up-to-date", "Available", "Age",
                        wide=("Containers", "Images", "Selector")),
    "Namespace": _cols("Name", "Status", "Age"),
    "ConfigMap": _cols("Name", "Data", "Age"),
    "Secret": _cols("Name", "Type", "Data", "Age"),
    "Ingress": _cols("Name", "Class", "Hosts", "Address", "Ports", "Age"),
    "IngressClass": _cols("Name", "Controller", "Parameters", "Age"),
    # printers.go interleaves wide columns for events; the order below is the server's.
    "Event": [
        Column("Last Seen"), Column("Type"), Column("Reason"), Column("Object"),
        Column("Subobject", 1), Column("Source", 1), Column("Message"),
        Column("First Seen", 1), Column("Count", 1), Column("Name", 1),
    ],
}

_DEFAULT_COLUMNS = _cols("Name", "Age")


def columns(kind: str) -> list[Column]:
    """Every column of ``kind`` (wide ones with priority 1), in the server's order."""
    return list(_COLUMNS.get(kind, _DEFAULT_COLUMNS))


def name_column(kind: str) -> int:
    """Index of the column holding the object's name (prefixed ``kind/`` with several types)."""
    for i, col in enumerate(columns(kind)):
        if col.name == "Name":
            return i
    return 0


# ------------------------------------------------------------------------------------- helpers


def _d(obj: Any, *path: str) -> Any:
    """Walk dicts; None when any step is missing or not a dict."""
    cur = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return default


def format_labels(labels: Any) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` joined by commas, ``<none>`` when empty."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: Any) -> str:
    """``labels.Selector.String()`` of a LabelSelector (``""`` for an empty selector)."""
    if not isinstance(selector, dict):
        return ""
    reqs: list[tuple[str, str]] = []
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, dict):
        for k, v in match_labels.items():
            reqs.append((k, f"{k}={v}"))
    for expr in _list(selector.get("matchExpressions")):
        if not isinstance(expr, dict):
            continue
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = sorted(str(v) for v in _list(expr.get("values")))
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def format_label_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: the selector string, ``<none>`` when nil or empty."""
    if selector is None:
        return "<none>"
    text = selector_string(selector)
    return text or "<none>"


def join_host_port(host: str, port: Any) -> str:
    """``net.JoinHostPort``: IPv6 literals get brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def load_balancer_addresses(status: Any) -> str:
    """The sorted, de-duplicated set of LB ingress ``ip`` (else ``hostname``), comma-joined."""
    result: set[str] = set()
    for ing in _list(_d(status, "loadBalancer", "ingress")):
        if not isinstance(ing, dict):
            continue
        if ing.get("ip"):
            result.add(str(ing["ip"]))
        elif ing.get("hostname"):
            result.add(str(ing["hostname"]))
    return ",".join(sorted(result))


# ------------------------------------------------------------------------------------- services


def service_external_ip(svc: dict[str, Any]) -> str:
    """``getServiceExternalIP`` (wide mode)."""
    spec = svc.get("spec") or {}
    svc_type = spec.get("type") or "ClusterIP"
    external_ips = [str(ip) for ip in _list(spec.get("externalIPs"))]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if svc_type == "LoadBalancer":
        lb_ips = load_balancer_addresses(svc.get("status"))
        if external_ips:
            results = lb_ips.split(",") if lb_ips else []
            return ",".join(results + external_ips)
        return lb_ips or "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName", ""))
    return UNKNOWN


def service_ports(ports: Any) -> str:
    """``makePortString``: ``80/TCP`` or ``80:30080/TCP`` joined by commas."""
    pieces = []
    for port in _list(ports):
        if not isinstance(port, dict):
            continue
        proto = port.get("protocol") or "TCP"
        node_port = _int(port.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{port.get('port')}:{node_port}/{proto}")
        else:
            pieces.append(f"{port.get('port')}/{proto}")
    return ",".join(pieces)


def _row_service(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    cluster_ips = _list(spec.get("clusterIPs"))
    internal_ip = str(cluster_ips[0]) if cluster_ips else "<none>"
    if not cluster_ips and spec.get("clusterIP") and (spec.get("type") or "ClusterIP") != "ExternalName":
        internal_ip = str(spec["clusterIP"])  # an object from before dual-stack defaulting
    ports = service_ports(spec.get("ports")) or "<none>"
    return [
        _name(obj), str(spec.get("type") or "ClusterIP"), internal_ip, service_external_ip(obj), ports,
        age(_d(obj, "metadata", "creationTimestamp"), now), format_labels(spec.get("selector")),
    ]


def format_endpoints(endpoints: dict[str, Any], port_names: set[str] | None = None) -> str:
    """``formatEndpoints``: ready ``ip:port`` pairs, at most 3, then `` + N more...``."""
    subsets = _list(endpoints.get("subsets"))
    if not subsets:
        return "<none>"
    items: list[str] = []
    limit = 3
    more = False
    count = 0
    for ss in subsets:
        if not isinstance(ss, dict):
            continue
        addresses = [a for a in _list(ss.get("addresses")) if isinstance(a, dict)]
        ports = [p for p in _list(ss.get("ports")) if isinstance(p, dict)]
        if not ports:
            count += len(addresses)
            for addr in addresses:
                if len(items) == limit:
                    more = True
                    break
                items.append(str(addr.get("ip", "")))
            continue
        for port in ports:
            if port_names is None or str(port.get("name") or "") in port_names:
                count += len(addresses)
                for addr in addresses:
                    if len(items) == limit:
                        more = True
                        break
                    items.append(join_host_port(str(addr.get("ip", "")), port.get("port")))
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text


def _row_endpoints(obj: dict[str, Any], now: datetime) -> list[str]:
    return [_name(obj), format_endpoints(obj), age(_d(obj, "metadata", "creationTimestamp"), now)]


# ------------------------------------------------------------------------------------------ pods


def _is_restartable_init(container: Any) -> bool:
    return isinstance(container, dict) and container.get("restartPolicy") == "Always"


def _finished_at(status: dict[str, Any]) -> datetime | None:
    return parse_time(_d(status, "lastState", "terminated", "finishedAt"))


def pod_cells(pod: dict[str, Any], now: datetime) -> tuple[str, str, str]:
    """``printPod``'s READY, STATUS and RESTARTS cells."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = _list(spec.get("containers"))
    init_specs = {c.get("name"): c for c in _list(spec.get("initContainers")) if isinstance(c, dict)}
    total = len(containers) + sum(1 for c in init_specs.values() if _is_restartable_init(c))
    ready = 0
    restarts = 0
    restartable_restarts = 0
    last_restart: datetime | None = None
    last_restartable: datetime | None = None
    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    for cond in _list(status.get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = [s for s in _list(status.get("initContainerStatuses")) if isinstance(s, dict)]
    for i, cs in enumerate(init_statuses):
        restarts += _int(cs.get("restartCount"))
        finished = _finished_at(cs)
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished
        restartable = _is_restartable_init(init_specs.get(cs.get("name")))
        if restartable:
            restartable_restarts += _int(cs.get("restartCount"))
            if finished is not None and (last_restartable is None or finished > last_restartable):
                last_restartable = finished
        terminated = _d(cs, "state", "terminated")
        waiting = _d(cs, "state", "waiting")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if restartable and cs.get("started") is True:
            if cs.get("ready"):
                ready += 1
            continue
        if isinstance(terminated, dict):
            if not terminated.get("reason"):
                if _int(terminated.get("signal")):
                    reason = f"Init:Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
            else:
                reason = f"Init:{terminated['reason']}"
        elif isinstance(waiting, dict) and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    initialized = any(
        isinstance(c, dict) and c.get("type") == "Initialized" and c.get("status") == "True"
        for c in _list(status.get("conditions"))
    )
    if not initializing or initialized:
        restarts = restartable_restarts
        last_restart = last_restartable
        has_running = False
        statuses = [s for s in _list(status.get("containerStatuses")) if isinstance(s, dict)]
        for cs in reversed(statuses):
            restarts += _int(cs.get("restartCount"))
            finished = _finished_at(cs)
            if finished is not None and (last_restart is None or finished > last_restart):
                last_restart = finished
            waiting = _d(cs, "state", "waiting")
            terminated = _d(cs, "state", "terminated")
            running = _d(cs, "state", "running")
            if isinstance(waiting, dict) and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(terminated, dict) and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif isinstance(terminated, dict):
                if _int(terminated.get("signal")):
                    reason = f"Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif cs.get("ready") and isinstance(running, dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
                for c in _list(status.get("conditions"))
            )
            reason = "Running" if pod_ready else "NotReady"

    deleting = bool(_d(pod, "metadata", "deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Failed", "Succeeded"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts != 0 and last_restart is not None:
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        restarts_text = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    return f"{ready}/{total}", reason, restarts_text


def _row_pod(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ready, reason, restarts = pod_cells(obj, now)
    pod_ips = _list(status.get("podIPs"))
    pod_ip = str(pod_ips[0].get("ip", "")) if pod_ips and isinstance(pod_ips[0], dict) else ""
    gates = _list(spec.get("readinessGates"))
    readiness = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            ctype = gate.get("conditionType") if isinstance(gate, dict) else None
            for cond in _list(status.get("conditions")):
                if isinstance(cond, dict) and cond.get("type") == ctype:
                    if cond.get("status") == "True":
                        true_count += 1
                    break
        readiness = f"{true_count}/{len(gates)}"
    return [
        _name(obj), ready, reason, restarts, age(_d(obj, "metadata", "creationTimestamp"), now),
        pod_ip or "<none>", str(spec.get("nodeName") or "<none>"),
        str(status.get("nominatedNodeName") or "<none>"), readiness,
    ]


# ------------------------------------------------------------------------------------ workloads


def _containers_images(template_spec: Any) -> tuple[str, str]:
    containers = [c for c in _list(_d(template_spec, "containers")) if isinstance(c, dict)]
    return ",".join(str(c.get("name", "")) for c in containers), ",".join(str(c.get("image", "")) for c in containers)


def _replicas(spec: dict[str, Any]) -> int:
    return _int(spec.get("replicas"), 1) if "replicas" in spec else 1


def _row_rc(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = _containers_images(_d(spec, "template", "spec"))
    selector = format_labels(spec.get("selector"))
    if obj.get("kind") == "ReplicaSet":
        selector = format_label_selector(spec.get("selector"))
    return [
        _name(obj), str(_replicas(spec)), str(_int(status.get("replicas"))), str(_int(status.get("readyReplicas"))),
        age(_d(obj, "metadata", "creationTimestamp"), now), names, images, selector,
    ]


def _row_rs(obj: dict[str, Any], now: datetime) -> list[str]:
    return _row_rc({**obj, "kind": "ReplicaSet"}, now)


def _row_deployment(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = _containers_images(_d(spec, "template", "spec"))
    return [
        _name(obj), f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}", str(_int(status.get("updatedReplicas"))),
        str(_int(status.get("availableReplicas"))), age(_d(obj, "metadata", "creationTimestamp"), now),
        names, images, selector_string(spec.get("selector")),
    ]


# ---------------------------------------------------------------------------------------- others


def _row_namespace(obj: dict[str, Any], now: datetime) -> list[str]:
    phase = _d(obj, "status", "phase")
    if not phase:
        phase = "Terminating" if _d(obj, "metadata", "deletionTimestamp") else "Active"
    return [_name(obj), str(phase), age(_d(obj, "metadata", "creationTimestamp"), now)]


def _row_configmap(obj: dict[str, Any], now: datetime) -> list[str]:
    data = obj.get("data")
    if not isinstance(data, dict):
        data = {}
    binary = obj.get("binaryData")
    if not isinstance(binary, dict):
        binary = {}
    return [_name(obj), str(len(data) + len(binary)), age(_d(obj, "metadata", "creationTimestamp"), now)]


def _row_secret(obj: dict[str, Any], now: datetime) -> list[str]:
    keys: set[str] = set()
    for field in ("data", "stringData"):
        if isinstance(obj.get(field), dict):
            keys.update(obj[field])
    return [_name(obj), str(obj.get("type") or "Opaque"), str(len(keys)), age(_d(obj, "metadata", "creationTimestamp"), now)]


def format_hosts(rules: Any) -> str:
    """``formatHosts``: rule hosts, at most 3 then `` + N more...`` (N counts every rule); ``*``."""
    rule_list = _list(rules)
    items: list[str] = []
    more = False
    for rule in rule_list:
        if len(items) == 3:
            more = True
        host = rule.get("host") if isinstance(rule, dict) else None
        if not more and host:
            items.append(str(host))
    if not items:
        return "*"
    text = ",".join(items)
    if more:
        return f"{text} + {len(rule_list) - 3} more..."
    return text


def _row_ingress(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    return [
        _name(obj), str(spec.get("ingressClassName") or "<none>"), format_hosts(spec.get("rules")),
        load_balancer_addresses(obj.get("status")), "80, 443" if _list(spec.get("tls")) else "80",
        age(_d(obj, "metadata", "creationTimestamp"), now),
    ]


def _row_ingressclass(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    params = spec.get("parameters")
    text = "<none>"
    if isinstance(params, dict):
        text = str(params.get("kind", ""))
        if params.get("apiGroup"):
            text += "." + str(params["apiGroup"])
        text += "/" + str(params.get("name", ""))
    return [_name(obj), str(spec.get("controller", "")), text, age(_d(obj, "metadata", "creationTimestamp"), now)]


def _row_event(obj: dict[str, Any], now: datetime) -> list[str]:
    first = age(obj.get("firstTimestamp"), now)
    if parse_time(obj.get("firstTimestamp")) is None:
        first = age(obj.get("eventTime"), now)
    last = age(obj.get("lastTimestamp"), now) if parse_time(obj.get("lastTimestamp")) else first
    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = age(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    involved = obj.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [
        last, str(obj.get("type", "")), str(obj.get("reason", "")), target, str(involved.get("fieldPath", "")),
        event_source(obj), str(obj.get("message", "")).strip(), first, str(count), _name(obj),
    ]


def event_source(event: dict[str, Any]) -> str:
    """``formatEventSource``: ``component, host`` with the reporting fields as fallbacks."""
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    if not component:
        return ""
    return f"{component}, {host}" if host else str(component)


def _row_default(obj: dict[str, Any], now: datetime) -> list[str]:
    return [_name(obj), age(_d(obj, "metadata", "creationTimestamp"), now)]


def _name(obj: dict[str, Any]) -> str:
    return str(_d(obj, "metadata", "name") or "")


_ROWS: dict[str, Callable[[dict[str, Any], datetime], list[str]]] = {
    "Service": _row_service,
    "Endpoints": _row_endpoints,
    "Pod": _row_pod,
    "ReplicationController": _row_rc,
    "ReplicaSet": _row_rs,
    "Deployment": _row_deployment,
    "Namespace": _row_namespace,
    "ConfigMap": _row_configmap,
    "Secret": _row_secret,
    "Ingress": _row_ingress,
    "IngressClass": _row_ingressclass,
    "Event": _row_event,
}


def row(obj: dict[str, Any], now: datetime) -> list[str]:
    """Every cell (wide ones included) of ``obj``'s row, in ``columns(obj['kind'])`` order."""
    return _ROWS.get(str(obj.get("kind", "")), _row_default)(obj, now)


# ------------------------------------------------------------------------ kinds served since issue 13
# Columns and cells from printers.go (printNode, printStatefulSet, printDaemonSet, printJob, printCronJob,
# printPodDisruptionBudget, printResourceQuota, printLimitRange, printPriorityClass,
# printHorizontalPodAutoscaler, printRole(Binding), printServiceAccount, printPodTemplate, printEndpointSlice).

_COLUMNS.update({
    "Node": _cols("Name", "Status", "Roles", "Age", "Version",
                  wide=("Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime")),
    "ServiceAccount": _cols("Name", "Secrets", "Age"),
    "ResourceQuota": _cols("Name", "Request", "Limit", "Age"),
    "LimitRange": _cols("Name", "Created At"),
    "PodTemplate": _cols("Name", "Containers", "Images", "Pod Labels"),
    "StatefulSet": _cols("Name", "Ready", "Age", wide=("Containers", "Images")),
    "DaemonSet": _cols("Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
                       wide=("Containers", "Images", "Selector")),
    "Job": _cols("Name", "Status", "Completions", "Duration", "Age", wide=("Containers", "Images", "Selector")),
    "CronJob": _cols("Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age",
                     wide=("Containers", "Images", "Selector")),
    "PodDisruptionBudget": _cols("Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"),
    "PriorityClass": _cols("Name", "Value", "Global-Default", "Age", "PreemptionPolicy"),
    "HorizontalPodAutoscaler": _cols("Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"),
    "Role": _cols("Name", "Created At"),
    "ClusterRole": _cols("Name", "Created At"),
    "RoleBinding": _cols("Name", "Role", "Age", wide=("Users", "Groups", "ServiceAccounts")),
    "ClusterRoleBinding": _cols("Name", "Role", "Age", wide=("Users", "Groups", "ServiceAccounts")),
    "EndpointSlice": _cols("Name", "AddressType", "Ports", "Endpoints", "Age"),
    "APIService": _cols("Name", "Service", "Available", "Age"),
})


def _age(obj: dict[str, Any], now: datetime) -> str:
    return age(_d(obj, "metadata", "creationTimestamp"), now)


def _created_at(obj: dict[str, Any]) -> str:
    parsed = parse_time(_d(obj, "metadata", "creationTimestamp"))
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else "0001-01-01T00:00:00Z"


def _bool_ptr(value: Any) -> str:
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def node_status(node: dict[str, Any]) -> str:
    """printNode's STATUS: Ready/NotReady/Unknown, then SchedulingDisabled when cordoned."""
    conditions = {c.get("type"): c.get("status") for c in _list(_d(node, "status", "conditions")) if isinstance(c, dict)}
    ready = conditions.get("Ready")
    parts = ["Ready" if ready == "True" else "NotReady" if ready is not None else "Unknown"]
    if _d(node, "spec", "unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: dict[str, Any]) -> str:
    roles = set()
    for key, value in (_d(node, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: dict[str, Any], kind: str) -> str:
    for a in _list(_d(node, "status", "addresses")):
        if isinstance(a, dict) and a.get("type") == kind:
            return str(a.get("address", ""))
    return "<none>"


def _row_node(obj: dict[str, Any], now: datetime) -> list[str]:
    info = _d(obj, "status", "nodeInfo") or {}
    os_image = str(info.get("osImage") or "<unknown>")
    kernel = str(info.get("kernelVersion") or "<unknown>")
    runtime = str(info.get("containerRuntimeVersion") or "<unknown>")
    return [_name(obj), node_status(obj), node_roles(obj), _age(obj, now), str(info.get("kubeletVersion", "")),
            _node_address(obj, "InternalIP"), _node_address(obj, "ExternalIP"), os_image, kernel, runtime]


def _row_service_account(obj: dict[str, Any], now: datetime) -> list[str]:
    return [_name(obj), str(len(_list(obj.get("secrets")))), _age(obj, now)]


def _row_resource_quota(obj: dict[str, Any], now: datetime) -> list[str]:
    hard = _d(obj, "status", "hard") or {}
    used = _d(obj, "status", "used") or {}
    request: list[str] = []
    limit: list[str] = []
    for res in sorted(hard):
        cell = f"{res}: {used.get(res, '0')}/{hard[res]}"
        (limit if res.split(".")[0] == "limits" and "." in res else request).append(cell)
    return [_name(obj), ", ".join(request), ", ".join(limit), _age(obj, now)]


def _row_created_at(obj: dict[str, Any], now: datetime) -> list[str]:
    return [_name(obj), _created_at(obj)]


def _row_pod_template(obj: dict[str, Any], now: datetime) -> list[str]:
    names, images = _containers_images(_d(obj, "template", "spec"))
    return [_name(obj), names, images, format_labels(_d(obj, "template", "metadata", "labels"))]


def _row_stateful_set(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    names, images = _containers_images(_d(spec, "template", "spec"))
    ready = _int(_d(obj, "status", "readyReplicas"))
    return [_name(obj), f"{ready}/{_replicas(spec)}", _age(obj, now), names, images]


def _row_daemon_set(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = _containers_images(_d(spec, "template", "spec"))
    counts = [str(_int(status.get(k))) for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                                 "updatedNumberScheduled", "numberAvailable")]
    return [_name(obj), *counts, format_labels(_d(spec, "template", "spec", "nodeSelector")), _age(obj, now),
            names, images, format_label_selector(spec.get("selector"))]


def job_status(job: dict[str, Any]) -> str:
    true = {c.get("type") for c in _list(_d(job, "status", "conditions")) if isinstance(c, dict) and c.get("status") == "True"}
    if "Complete" in true:
        return "Complete"
    if "Failed" in true:
        return "Failed"
    if _d(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    if "SuccessCriteriaMet" in true:
        return "SuccessCriteriaMet"
    if "Suspended" in true:
        return "Suspended"
    if "FailureTarget" in true:
        return "FailureTarget"
    return "Running"


def _row_job(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec['completions'])}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {_int(spec['parallelism'])}"
    else:
        completions = f"{succeeded}/1"
    start, done = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = ""
    if start is not None:
        end = done or (now if now.tzinfo else now.replace(tzinfo=UTC))
        duration = human_duration((end - start).total_seconds())
    names, images = _containers_images(_d(spec, "template", "spec"))
    return [_name(obj), job_status(obj), completions, duration, _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))]


def _row_cron_job(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    last = age(status.get("lastScheduleTime"), now) if status.get("lastScheduleTime") else "<none>"
    names, images = _containers_images(_d(spec, "jobTemplate", "spec", "template", "spec"))
    return [_name(obj), str(spec.get("schedule", "")), str(spec.get("timeZone") or "<none>"),
            _bool_ptr(spec.get("suspend")), str(len(_list(status.get("active")))), last, _age(obj, now),
            names, images, format_label_selector(_d(spec, "jobTemplate", "spec", "selector"))]


def _row_pdb(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    low, high = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [_name(obj), "N/A" if low is None else str(low), "N/A" if high is None else str(high),
            str(_int(_d(obj, "status", "disruptionsAllowed"))), _age(obj, now)]


def _row_priority_class(obj: dict[str, Any], now: datetime) -> list[str]:
    return [_name(obj), str(_int(obj.get("value"))), "true" if obj.get("globalDefault") else "false", _age(obj, now),
            str(obj.get("preemptionPolicy") or "")]


def _row_api_service(obj: dict[str, Any], now: datetime) -> list[str]:
    # kube-aggregator's apiservice ConvertToTable: Local or namespace/name; the Available condition.
    svc = _d(obj, "spec", "service")
    service = f"{svc.get('namespace', '')}/{svc.get('name', '')}" if isinstance(svc, dict) else "Local"
    available = "Unknown"
    for cond in _list(_d(obj, "status", "conditions")):
        if isinstance(cond, dict) and cond.get("type") == "Available":
            status = str(cond.get("status") or "")
            reason = str(cond.get("reason") or "")
            available = f"{status} ({reason})" if status != "True" and reason else status
    return [_name(obj), service, available, _age(obj, now)]


def _hpa_metrics(hpa: dict[str, Any]) -> str:
    specs = [m for m in _list(_d(hpa, "spec", "metrics")) if isinstance(m, dict)]
    if not specs:
        return "<none>"
    current = [m for m in _list(_d(hpa, "status", "currentMetrics")) if isinstance(m, dict)]
    cells = []
    for i, metric in enumerate(specs):
        kind = str(metric.get("type", ""))
        src = metric.get(kind[:1].lower() + kind[1:]) or {}
        target = src.get("target") or {}
        now_src = (current[i].get(kind[:1].lower() + kind[1:]) or {}) if i < len(current) else {}
        now_val = now_src.get("current") or {}
        if target.get("averageUtilization") is not None:
            have = f"{now_val['averageUtilization']}%" if now_val.get("averageUtilization") is not None else "<unknown>"
            want = f"{target['averageUtilization']}%"
        else:
            key = "averageValue" if target.get("averageValue") is not None else "value"
            have = str(now_val.get(key)) if now_val.get(key) is not None else "<unknown>"
            want = str(target.get(key, "<unset>"))
        prefix = f"{src['name']}: " if kind in ("Resource", "ContainerResource") and src.get("name") else ""
        cells.append(f"{prefix}{have}/{want}")
    if len(cells) > 2:
        return ", ".join(cells[:2]) + f" + {len(cells) - 2} more..."
    return ", ".join(cells)


def _row_hpa(obj: dict[str, Any], now: datetime) -> list[str]:
    spec = obj.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    low = spec.get("minReplicas")
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", _hpa_metrics(obj),
            "<unset>" if low is None else str(low), str(_int(spec.get("maxReplicas"))),
            str(_int(_d(obj, "status", "currentReplicas"))), _age(obj, now)]


def _row_binding(obj: dict[str, Any], now: datetime) -> list[str]:
    ref = obj.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in _list(obj.get("subjects")):
        if not isinstance(s, dict):
            continue
        if s.get("kind") == "User":
            users.append(str(s.get("name", "")))
        elif s.get("kind") == "Group":
            groups.append(str(s.get("name", "")))
        elif s.get("kind") == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}:{s.get('name', '')}")
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(obj, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


def _list_with_more(items: list[str]) -> str:
    """printers.go ``listWithMoreString`` (max 3): ``a,b,c + N more...``, ``<unset>`` when empty."""
    text = ",".join(items[:3])
    if len(items) > 3:
        return f"{text} + {len(items) - 3} more..."
    return text or "<unset>"


def _row_endpoint_slice(obj: dict[str, Any], now: datetime) -> list[str]:
    """printEndpointSlice: formatDiscoveryPorts (a port without number shows its name, else ``*``) and
    formatDiscoveryEndpoints (every address of every endpoint, ready or not)."""
    ports = [str(p["port"]) if p.get("port") is not None else (str(p["name"]) if p.get("name") is not None else "*")
             for p in _list(obj.get("ports")) if isinstance(p, dict)]
    addresses = [str(a) for ep in _list(obj.get("endpoints")) if isinstance(ep, dict) for a in _list(ep.get("addresses"))]
    return [_name(obj), str(obj.get("addressType", "")), _list_with_more(ports), _list_with_more(addresses), _age(obj, now)]


_ROWS.update({
    "Node": _row_node,
    "ServiceAccount": _row_service_account,
    "ResourceQuota": _row_resource_quota,
    "LimitRange": _row_created_at,
    "PodTemplate": _row_pod_template,
    "StatefulSet": _row_stateful_set,
    "DaemonSet": _row_daemon_set,
    "Job": _row_job,
    "CronJob": _row_cron_job,
    "PodDisruptionBudget": _row_pdb,
    "PriorityClass": _row_priority_class,
    "HorizontalPodAutoscaler": _row_hpa,
    "Role": _row_created_at,
    "ClusterRole": _row_created_at,
    "RoleBinding": _row_binding,
    "ClusterRoleBinding": _row_binding,
    "EndpointSlice": _row_endpoint_slice,
    "APIService": _row_api_service,
})

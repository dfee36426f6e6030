"""Describers for workloads: Pod, ReplicaSet/ReplicationController, Deployment (kubectl's
``describePod``, ``describeReplicaSet``, ``describeDeployment``), on the shared helpers of
``kubesvc.cli.describe`` (same tabwriter rules, labels, annotations and Events block).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kubesvc.api.tables import (
    _d,
    _int,
    _list,
    age,
    format_label_selector,
    format_labels,
    join_host_port,
    selector_string,
)
from kubesvc.cli.describe import _annotations, _events, _labels, _meta, _rfc1123z, _Writer


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
        resources = c.get("resources")
        if not isinstance(resources, dict):
            resources = {}
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
                w.write(3, f"{e.get('name', '')}:\t<set to the key '{r.get('key', '')}' in secret '{r.get('name', '')}'>"
                           f"\tOptional: {'true' if r.get('optional') else 'false'}\n")
            elif isinstance(vf.get("configMapKeyRef"), dict):
                r = vf["configMapKeyRef"]
                w.write(3, f"{e.get('name', '')}:\t<set to the key '{r.get('key', '')}' of config map '{r.get('name', '')}'>"
                           f"\tOptional: {'true' if r.get('optional') else 'false'}\n")
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
        res = c.get("resources")
        if not isinstance(res, dict):
            res = {}
        limits = res.get("limits")
        if not isinstance(limits, dict):
            limits = {}
        requests = res.get("requests")
        if not isinstance(requests, dict):
            requests = {}
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
    tmeta = template.get("metadata")
    if not isinstance(tmeta, dict):
        tmeta = {}
    tspec = template.get("spec")
    if not isinstance(tspec, dict):
        tspec = {}
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
    strategy = spec.get("strategy")
    if not isinstance(strategy, dict):
        strategy = {}
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

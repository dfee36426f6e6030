"""Pure rules for turning a Pod's container spec into a process: argv, environment, working directory.

Rules kept here (Kubernetes pkg/kubelet/kubelet_pods.go makeEnvironmentVariables, third_party expansion):
- A Pod runs here when ``claims`` says so (a command, controller-owned, or native images); images are
  never pulled: ``kubelet/images.py`` says how each known image runs, others need a command.
- Environment, in order (later wins): PATH/LANG from the node agent, HOSTNAME, POD_IP, POD_NAME,
  POD_NAMESPACE, Service variables (envvars.go: ``<SVC>_SERVICE_HOST``, ``_SERVICE_PORT``,
  ``_SERVICE_PORT_<NAME>``, ``<SVC>_PORT``, ``<SVC>_PORT_<P>_<PROTO>`` and its ``_PROTO``/``_PORT``/``_ADDR``)
  of the pod's namespace unless enableServiceLinks is false, and of ``default/kubernetes`` always,
  then ``envFrom`` sources, then ``env`` entries in order; each ``env`` value is expanded
  against the variables defined so far.
- ``valueFrom.fieldRef``: metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'],
  metadata.annotations['k'], spec.nodeName, spec.serviceAccountName, status.podIP, status.podIPs,
  status.hostIP, status.hostIPs; ``configMapKeyRef``/``secretKeyRef`` (``optional`` honoured);
  ``resourceFieldRef`` (limits/requests of cpu, memory, ephemeral-storage, with ``divisor``).
- ``$(VAR)`` expansion: defined names are replaced, undefined ones stay as written, ``$$`` is a literal
  ``$`` (so ``$$(VAR)`` yields ``$(VAR)``), a lone ``$`` stays.
"""

from __future__ import annotations

import base64
import math
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

from kubesvc.api import images

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], "Obj | None"]  # (kind, namespace, name) -> object


class ConfigError(Exception):
    """The container cannot start as written (CreateContainerConfigError)."""


def runs_locally(pod: Obj) -> bool:
    """A command, controller-owned, or only images kubesvc runs natively (``kubesvc.api.images``)."""
    return images.kubelet_runs(pod)


def claims(pod: Obj, node_name: str) -> bool:
    """Whether the node agent named ``node_name`` runs this Pod. A bare Pod without a command whose images
    run natively is taken while Pending (the registry's default for it) or once bound here. A Pod bound to no
    node whose author gave it another phase (Running, with its podIP) is a registered backend and is left alone,
    also once a ReplicationController/ReplicaSet has adopted it: an agent binds every Pod it runs, so such a Pod
    was never any agent's."""
    pspec = pod.get("spec") or {}
    if pspec.get("nodeName") not in (None, "", node_name) or not images.kubelet_runs(pod):
        return False
    if not pspec.get("nodeName") and (pod.get("status") or {}).get("phase", "Pending") != "Pending":
        return False
    if images.has_command(pod) or images.controller_owned(pod) or pspec.get("nodeName") == node_name:
        return True
    return (pod.get("status") or {}).get("phase", "Pending") == "Pending"


def expand(text: str, env: dict[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append(text[i:])
                break
            name = text[i + 2 : close]
            out.append(env[name] if name in env else text[i : close + 1])
            i = close + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_ref(pod: Obj, path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", "default"),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.podIPs": ",".join(p.get("ip", "") for p in status.get("podIPs") or []),
        "status.hostIPs": ",".join(p.get("ip", "") for p in status.get("hostIPs") or []),
    }
    if path in simple:
        return str(simple[path])
    m = _SUBSCRIPT.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise ConfigError(f'unsupported fieldRef "{path}"')


def _key_ref(ref: Obj, kind: str, namespace: str, lookup: Lookup) -> str | None:
    obj = lookup(kind, namespace, ref.get("name", ""))
    key = ref.get("key", "")
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        data.update(obj.get("stringData") or {})
    else:
        data = dict(obj.get("data") or {})
    if key not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f'couldn\'t find key {key} in {kind} {namespace}/{ref.get("name", "")}')
    return str(data[key])


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_links(services: list[Obj]) -> dict[str, str]:
    """The variables kubelet's envvars.FromServices makes for each Service with a cluster IP."""
    out: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        if not ip or ip == "None" or not ports:
            continue
        prefix = _env_name(svc["metadata"]["name"])
        out[f"{prefix}_SERVICE_HOST"] = ip
        out[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                out[f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p.get("port"))
        host = f"[{ip}]" if ":" in ip else ip
        for i, p in enumerate(ports):
            proto = str(p.get("protocol") or "TCP")
            url = f"{proto.lower()}://{host}:{p.get('port')}"
            if i == 0:
                out[f"{prefix}_PORT"] = url
            pp = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
            out[pp] = url
            out[f"{pp}_PROTO"] = proto.lower()
            out[f"{pp}_PORT"] = str(p.get("port"))
            out[f"{pp}_ADDR"] = ip
    return out


def service_env_sources(pod: Obj, namespace_services: list[Obj], master: Obj | None) -> list[Obj]:
    """The Services whose variables a pod gets (kubelet getServiceEnvVarMap): those of its namespace when
    enableServiceLinks is not false, and always ``default/kubernetes`` (a same-named Service of the pod's
    namespace wins)."""
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen: dict[str, Obj] = {}
    if master is not None:
        chosen["kubernetes"] = master
    if links:
        for svc in namespace_services:
            chosen[svc["metadata"]["name"]] = svc
    return list(chosen.values())


_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def quantity(text: Any) -> float:
    m = _QUANTITY.match(str(text).strip())
    if not m:
        raise ConfigError(f'invalid quantity "{text}"')
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]


def node_allocatable() -> dict[str, float]:
    """What a container without a limit may use: this machine's CPUs and memory (the kubelet's allocatable)."""
    mem = 0.0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = float(line.split()[1]) * 1024
    except OSError:
        pass
    disk = shutil.disk_usage("/")
    return {"cpu": float(os.cpu_count() or 1), "memory": mem, "ephemeral-storage": float(disk.total)}


def resource_ref(pod: Obj, container: Obj, ref: Obj) -> str:
    """``valueFrom.resourceFieldRef`` (kubelet's resource.ExtractContainerResourceValue): the request or
    limit in units of ``divisor`` (default 1) rounded up; a missing limit is the node's allocatable (CPUs,
    MemTotal, the root filesystem's size), a missing request is the limit when set (defaulting), else 0."""
    name = ref.get("containerName") or container.get("name", "")
    target = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name), None)
    if target is None:
        raise ConfigError(f'resourceFieldRef: container "{name}" not found in the pod')
    field = str(ref.get("resource", ""))
    kind, _, res = field.partition(".")
    if kind not in ("limits", "requests") or res not in ("cpu", "memory", "ephemeral-storage"):
        raise ConfigError(f'unsupported container resource : "{field}"')
    resources = target.get("resources") or {}
    limit = (resources.get("limits") or {}).get(res)
    request = (resources.get("requests") or {}).get(res)
    if kind == "limits":
        value = quantity(limit) if limit is not None else node_allocatable()[res]
    else:
        value = quantity(request) if request is not None else (quantity(limit) if limit is not None else 0.0)
    divisor = quantity(ref.get("divisor") or "1")
    if divisor <= 0:
        raise ConfigError(f'resourceFieldRef "{field}": divisor must be positive')
    return str(max(0, math.ceil(value / divisor - 1e-9)))


def container_env(pod: Obj, container: Obj, lookup: Lookup, services: list[Obj],
                  base: dict[str, str] | None = None, master: Obj | None = None) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace", "default")
    env: dict[str, str] = {}
    host = os.environ if base is None else base
    for key in ("PATH", "LANG", "LC_ALL", "TZ"):
        if key in host:
            env[key] = host[key]
    env["HOSTNAME"] = (pod.get("spec") or {}).get("hostname") or meta.get("name", "")
    env["POD_IP"] = field_ref(pod, "status.podIP")
    env["POD_NAME"] = meta.get("name", "")
    env["POD_NAMESPACE"] = ns
    env.update(service_links(service_env_sources(pod, services, master)))
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = src.get(key)
            if not ref:
                continue
            obj = lookup(kind, ns, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
            data = obj.get("data") or {}
            for k, v in data.items():
                env[prefix + k] = base64.b64decode(v).decode(errors="replace") if kind == "Secret" else str(v)
    for item in container.get("env") or []:
        name = item.get("name", "")
        if "valueFrom" in item:
            vf = item["valueFrom"] or {}
            value: str | None
            if "fieldRef" in vf:
                value = field_ref(pod, (vf["fieldRef"] or {}).get("fieldPath", ""))
            elif "configMapKeyRef" in vf:
                value = _key_ref(vf["configMapKeyRef"] or {}, "ConfigMap", ns, lookup)
            elif "secretKeyRef" in vf:
                value = _key_ref(vf["secretKeyRef"] or {}, "Secret", ns, lookup)
            elif "resourceFieldRef" in vf:
                value = resource_ref(pod, container, vf["resourceFieldRef"] or {})
            else:
                raise ConfigError(f'env "{name}": unsupported valueFrom')
            if value is None:
                continue
            env[name] = value
        else:
            env[name] = expand(str(item.get("value", "")), env)
    return env


def container_argv(container: Obj, env: dict[str, str]) -> list[str]:
    argv = [expand(str(a), env) for a in (container.get("command") or []) + (container.get("args") or [])]
    if not argv:
        raise ConfigError(f'container "{container.get("name", "")}" has no command: kubesvc runs only containers with a command')
    return argv


def working_dir(container: Obj, default: str) -> str:
    wd = container.get("workingDir") or default
    if not os.path.isdir(wd):
        raise ConfigError(f'workingDir "{wd}" does not exist')
    return wd


def backoff_delay(crashes: int, base: float, cap: float) -> float:
    """The wait before restart number ``crashes`` (1-based): the first restart is immediate, then
    base, 2*base, ... up to cap (kubelet: 10 s doubling to 300 s)."""
    if crashes <= 1:
        return 0.0
    return float(min(cap, base * (2 ** (crashes - 2))))


def should_restart(policy: str, exit_code: int) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True

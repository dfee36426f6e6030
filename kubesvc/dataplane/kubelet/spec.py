"""Pure rules for turning a Pod's container spec into a process: argv, environment, working directory.

Rules kept here (Kubernetes pkg/kubelet/kubelet_pods.go makeEnvironmentVariables, third_party expansion):
- A Pod runs here when one of its containers has ``command`` or ``args``; ``image`` is recorded, never pulled.
- argv = command + args; a container with args and no command runs the args as the argv.
- Environment, in order (later wins): PATH/LANG from the node agent, HOSTNAME, POD_IP, POD_NAME,
  POD_NAMESPACE, Service link variables (``<SVC>_SERVICE_HOST``/``_PORT``) unless enableServiceLinks
  is false, then ``envFrom`` sources, then ``env`` entries in order; each ``env`` value is expanded
  against the variables defined so far.
- ``valueFrom.fieldRef``: metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'],
  metadata.annotations['k'], spec.nodeName, spec.serviceAccountName, status.podIP, status.podIPs,
  status.hostIP, status.hostIPs; ``configMapKeyRef``/``secretKeyRef`` (``optional`` honoured).
- ``$(VAR)`` expansion: defined names are replaced, undefined ones stay as written, ``$$`` is a literal
  ``$`` (so ``$$(VAR)`` yields ``$(VAR)``), a lone ``$`` stays.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], "Obj | None"]  # (kind, namespace, name) -> object


class ConfigError(Exception):
    """The container cannot start as written (CreateContainerConfigError)."""


def runs_locally(pod: Obj) -> bool:
    return any(c.get("command") or c.get("args") for c in (pod.get("spec") or {}).get("containers") or [])


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


def service_links(services: list[Obj]) -> dict[str, str]:
    out: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        prefix = svc["metadata"]["name"].upper().replace("-", "_")
        ports = spec.get("ports") or []
        out[f"{prefix}_SERVICE_HOST"] = ip
        if ports:
            out[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                out[f"{prefix}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p.get("port"))
    return out


def container_env(pod: Obj, container: Obj, lookup: Lookup, services: list[Obj],
                  base: dict[str, str] | None = None) -> dict[str, str]:
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
    if (pod.get("spec") or {}).get("enableServiceLinks", True) is not False:
        env.update(service_links(services))
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
                value = "0"
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

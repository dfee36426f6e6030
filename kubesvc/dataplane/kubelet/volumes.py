"""A pod's volumes, materialised under its directory, and how a container sees them.

Rules kept here (pkg/volume: configmap, secret, downwardapi, projected, emptydir, hostpath):
- Each volume is ``<pod dir>/volumes/<name>``, written before each container start (so a changed
  ConfigMap shows on restart): ``configMap`` and ``secret`` write every key (``data``, ``binaryData``)
  or only ``items`` (``key`` -> ``path``, ``mode``), ``defaultMode`` otherwise; a missing object or key
  is an error unless ``optional``. ``downwardAPI`` writes ``fieldRef`` values (labels and annotations as
  ``key="value"`` lines, sorted) and ``resourceFieldRef`` values; ``projected`` merges configMap, secret
  and downwardAPI sources (``serviceAccountToken`` is not issued: no token here). ``emptyDir`` is an empty
  directory (mode 0777, as Kubernetes makes it) kept across container restarts; ``hostPath`` is the host's
  path itself.
- Modes: configMap and downwardAPI files 0644, secret files 0400, unless ``defaultMode``/``mode`` say
  otherwise; files and directories are owned by the pod's user (when the agent is root), so a secret is
  readable by its pod and no other user.
- A container sees a volume at its ``mountPath`` only with a mount namespace (``--isolation netns``);
  in every mode it gets ``KUBESVC_VOLUME_<NAME>`` (name upper-cased, ``-`` and ``.`` as ``_``) holding the
  directory (with ``subPath`` applied).
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubesvc.dataplane.kubelet.spec import ConfigError, field_ref, resource_ref

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], "Obj | None"]


@dataclass(frozen=True)
class Mount:
    source: str  # host path
    target: str  # mountPath
    read_only: bool


def env_name(volume: str) -> str:
    return "KUBESVC_VOLUME_" + "".join(ch if ch.isalnum() else "_" for ch in volume).upper()


def _mode(value: Any, default: int, where: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        raise ConfigError(f"{where}: mode must be between 0 and 0777 (511)")
    return value


def _safe_rel(path: str, where: str) -> str:
    parts = Path(path).parts
    if not path or os.path.isabs(path) or ".." in parts:
        raise ConfigError(f'{where}: path "{path}" must be relative and may not contain ".."')
    return path


def _object_files(kind: str, src: Obj, ns: str, lookup: Lookup, where: str, default_mode: int) -> dict[str, tuple[bytes, int]]:
    name = src.get("secretName" if kind == "Secret" and "secretName" in src else "name", "")
    obj = lookup(kind, ns, name)
    if obj is None:
        if src.get("optional"):
            return {}
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "Secret":
        for k, v in (obj.get("data") or {}).items():
            data[k] = base64.b64decode(v)
        for k, v in (obj.get("stringData") or {}).items():
            data[k] = str(v).encode()
    else:
        for k, v in (obj.get("data") or {}).items():
            data[k] = str(v).encode()
        for k, v in (obj.get("binaryData") or {}).items():
            data[k] = base64.b64decode(v)
    files: dict[str, tuple[bytes, int]] = {}
    items = src.get("items")
    if items:
        for it in items:
            key = it.get("key", "")
            if key not in data:
                if src.get("optional"):
                    continue
                raise ConfigError(f'{where}: configuration key "{key}" not found in {kind} {ns}/{name}')
            files[_safe_rel(str(it.get("path", "")), where)] = (data[key], _mode(it.get("mode"), default_mode, where))
    else:
        for k, v in data.items():
            files[_safe_rel(k, where)] = (v, default_mode)
    return files


def _downward_files(items: list[Obj], pod: Obj, where: str, default_mode: int) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    meta = pod.get("metadata") or {}
    for it in items or []:
        path = _safe_rel(str(it.get("path", "")), where)
        if "fieldRef" in it:
            fp = (it["fieldRef"] or {}).get("fieldPath", "")
            if fp in ("metadata.labels", "metadata.annotations"):
                values = meta.get(fp.split(".")[1]) or {}
                text = "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
            else:
                text = field_ref(pod, fp)
        elif "resourceFieldRef" in it:
            ref = it["resourceFieldRef"] or {}
            containers = (pod.get("spec") or {}).get("containers") or [{}]
            container = next((c for c in containers if c.get("name") == ref.get("containerName")), containers[0])
            text = resource_ref(pod, container, ref)
        else:
            raise ConfigError(f"{where}: an item needs fieldRef or resourceFieldRef")
        files[path] = (text.encode(), _mode(it.get("mode"), default_mode, where))
    return files


def volume_files(vol: Obj, pod: Obj, lookup: Lookup) -> dict[str, tuple[bytes, int]] | None:
    """The files of a configMap/secret/downwardAPI/projected volume (None for other types)."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    where = f'volume "{vol.get("name", "")}"'
    if "configMap" in vol:
        src = vol["configMap"] or {}
        return _object_files("ConfigMap", src, ns, lookup, where, _mode(src.get("defaultMode"), 0o644, where))
    if "secret" in vol:
        src = vol["secret"] or {}
        return _object_files("Secret", src, ns, lookup, where, _mode(src.get("defaultMode"), 0o400, where))
    if "downwardAPI" in vol:
        src = vol["downwardAPI"] or {}
        return _downward_files(src.get("items") or [], pod, where, _mode(src.get("defaultMode"), 0o644, where))
    if "projected" in vol:
        src = vol["projected"] or {}
        files: dict[str, tuple[bytes, int]] = {}
        for s in src.get("sources") or []:
            if "configMap" in s:
                files.update(_object_files("ConfigMap", s["configMap"] or {}, ns, lookup, where,
                                           _mode(src.get("defaultMode"), 0o644, where)))
            elif "secret" in s:
                files.update(_object_files("Secret", s["secret"] or {}, ns, lookup, where,
                                           _mode(src.get("defaultMode"), 0o400, where)))
            elif "downwardAPI" in s:
                files.update(_downward_files((s["downwardAPI"] or {}).get("items") or [], pod, where,
                                             _mode(src.get("defaultMode"), 0o644, where)))
        return files
    return None


def _write(root: Path, files: dict[str, tuple[bytes, int]], uid: int, gid: int, chown: bool) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for rel, (data, mode) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        if chown:
            os.chown(path, uid, gid)
    private = any((m & 0o044) == 0 for _, m in files.values())
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o700 if private else 0o755)
        if chown:
            os.chown(dirpath, uid, gid)


def materialise(pod: Obj, lookup: Lookup, pod_dir: Path, uid: int, gid: int) -> dict[str, str]:
    """Write the pod's volumes; returns volume name -> host directory."""
    out: dict[str, str] = {}
    base = pod_dir / "volumes"
    chown = os.geteuid() == 0
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o711)
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        name = str(vol.get("name", ""))
        if not name or "/" in name or name in (".", ".."):
            raise ConfigError(f'volume name "{name}" is not valid')
        root = base / name
        if "emptyDir" in vol:
            if not root.is_dir():
                root.mkdir()
            os.chmod(root, 0o777)
            if chown:
                os.chown(root, uid, gid)
        elif "hostPath" in vol:
            path = str((vol["hostPath"] or {}).get("path", ""))
            htype = (vol["hostPath"] or {}).get("type") or ""
            if htype == "DirectoryOrCreate":
                os.makedirs(path, exist_ok=True)
            if not os.path.exists(path):
                raise ConfigError(f'volume "{name}": hostPath "{path}" does not exist')
            out[name] = path
            continue
        else:
            files = volume_files(vol, pod, lookup)
            if files is None:
                kinds = [k for k in vol if k != "name"]
                raise ConfigError(f'volume "{name}": {", ".join(kinds) or "this"} volumes are not supported by kubesvc '
                                  "(configMap, secret, downwardAPI, projected, emptyDir and hostPath are)")
            _write(root, files, uid, gid, chown)
        out[name] = str(root)
    return out


def container_mounts(container: Obj, dirs: dict[str, str]) -> tuple[list[Mount], dict[str, str]]:
    """The container's mounts and its KUBESVC_VOLUME_<NAME> variables."""
    mounts: list[Mount] = []
    env: dict[str, str] = {}
    cname = container.get("name", "")
    for vm in container.get("volumeMounts") or []:
        name = vm.get("name", "")
        if name not in dirs:
            raise ConfigError(f'container "{cname}": volumeMount "{name}" names no volume of the pod')
        src = dirs[name]
        sub = vm.get("subPath")
        if sub:
            src = os.path.join(src, _safe_rel(str(sub), f'volumeMount "{name}"'))
            if not os.path.exists(src):
                os.makedirs(src, exist_ok=True)
        target = str(vm.get("mountPath", ""))
        if not os.path.isabs(target):
            raise ConfigError(f'container "{cname}": mountPath "{target}" must be absolute')
        mounts.append(Mount(src, target, bool(vm.get("readOnly"))))
        env[env_name(name)] = src
    return mounts, env

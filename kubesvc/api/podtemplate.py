"""Edits of an object's pod template for `kubesvc set image|env` (kubectl's set_image.go, set_env.go and
its env helpers), pure: objects in, objects changed in place, kubectl's messages out.

Rules kept here:
- the pod spec of a Pod, of a workload's ``spec.template``, of a CronJob's ``spec.jobTemplate.spec.template``;
  any other kind: ``<resource>/<name> the object is not a pod or does not have a pod template: *v1.<Kind>``.
- set image: ``CONTAINER=IMAGE`` pairs over containers and init containers, ``*`` for every one; a name
  no container has: ``unable to find container named "x"``.
- set env: ``KEY=VALUE`` replaces in place or appends, ``KEY-`` removes; ``--from`` adds one variable per key
  of a ConfigMap or Secret (keys sorted, names made valid as kubectl does, with its warning);
  ``--overwrite=false`` refuses a different existing value.
"""

from __future__ import annotations

import re
from typing import Any

from kubesvc.api.kinds import BY_KIND
from kubesvc.errors import ClientError

Obj = dict[str, Any]
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_INVALID_ENV_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def pod_spec(obj: Obj) -> Obj:
    """The pod spec inside ``obj`` (a reference into it), or kubectl's error for kinds without one."""
    kind = obj.get("kind", "")
    spec = obj.get("spec")
    if kind == "Pod":
        return obj.setdefault("spec", {})
    if isinstance(spec, dict):
        if kind == "CronJob":
            jt = spec.get("jobTemplate")
            if isinstance(jt, dict) and isinstance(jt.get("spec"), dict):
                t = jt["spec"].get("template")
                if isinstance(t, dict):
                    return t.setdefault("spec", {})
        elif isinstance(spec.get("template"), dict) and kind != "Service":
            return spec["template"].setdefault("spec", {})
    k = BY_KIND.get(kind)
    resource = k.resource if k else kind.lower() + "s"
    raise ClientError(f"{resource}/{obj['metadata']['name']} the object is not a pod or does not have a pod template: "
                      f"*v1.{kind}")


def _all_containers(spec: Obj) -> list[Obj]:
    return [c for key in ("initContainers", "containers") for c in (spec.get(key) or []) if isinstance(c, dict)]


def parse_image_pairs(words: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for w in words:
        name, _, image = w.partition("=")
        pairs[name] = image
    if not pairs:
        raise ClientError("at least one image update is required")
    return pairs


def set_images(obj: Obj, pairs: dict[str, str]) -> None:
    """Set each named container's image (``*``: all of them)."""
    containers = _all_containers(pod_spec(obj))
    for name, image in pairs.items():
        found = False
        for c in containers:
            if name == "*" or c.get("name") == name:
                c["image"] = image
                found = True
        if not found:
            raise ClientError(f'unable to find container named "{name}"')


def parse_env_args(words: list[str]) -> tuple[list[Obj], list[str]]:
    """``KEY=VALUE`` and ``KEY-`` words -> (vars to set, names to remove), with kubectl's key check."""
    sets: list[Obj] = []
    removes: list[str] = []
    for w in words:
        if "=" in w:
            k, _, v = w.partition("=")
            _check_name(k)
            sets.append({"name": k, "value": v})
        elif w.endswith("-"):
            removes.append(w[:-1])
        else:
            raise ClientError(f'environment variables must be of the form key=value and can only contain letters, numbers, '
                              f'and underscores: "{w}"')
    return sets, removes


def _check_name(k: str) -> None:
    if not _ENV_NAME.match(k):
        raise ClientError(
            f'"{k}" is not a valid key name: a valid environment variable name must consist of alphabetic characters, '
            "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
            "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")


def env_from_source(source: Obj, prefix: str, keys: list[str] | None, warnings: list[str]) -> list[Obj]:
    """One ``valueFrom`` variable per key of a ConfigMap or Secret (``--from``, ``--prefix``, ``--keys``)."""
    kind = source["kind"]
    name = source["metadata"]["name"]
    data = dict(source.get("data") or {})
    if kind == "ConfigMap":
        data.update(source.get("binaryData") or {})
    ref_key = "configMapKeyRef" if kind == "ConfigMap" else "secretKeyRef"
    out: list[Obj] = []
    for key in sorted(data):
        if keys and key not in keys:
            continue
        env_name = _INVALID_ENV_CHARS.sub("_", key).upper()
        if env_name != key:
            warnings.append(f"key {key} transferred to {env_name}")
        out.append({"name": prefix + env_name, "valueFrom": {ref_key: {"key": key, "name": name}}})
    return out


def matching_containers(obj: Obj, pattern: str) -> list[Obj]:
    """Containers (and init containers) whose name matches the shell pattern ``-c`` (default ``*``)."""
    import fnmatch

    return [c for c in _all_containers(pod_spec(obj)) if fnmatch.fnmatchcase(c.get("name", ""), pattern)]


def update_env(obj: Obj, containers: list[Obj], sets: list[Obj], removes: list[str], overwrite: bool) -> None:
    """Apply ``sets`` and ``removes`` to each container's env, as kubectl's updateEnv."""
    kind = BY_KIND[obj["kind"]].plural if obj.get("kind") in BY_KIND else obj.get("kind", "")
    for c in containers:
        env: list[Obj] = [e for e in (c.get("env") or []) if isinstance(e, dict)]
        for new in sets:
            idx = next((i for i, e in enumerate(env) if e.get("name") == new["name"]), -1)
            if idx >= 0:
                old = env[idx]
                if not overwrite and old != new:
                    raise ClientError(f"{kind}/{obj['metadata']['name']} '{new['name']}' already has a value "
                                      f"({old.get('value', '')}), and --overwrite is false")
                env[idx] = dict(new)
            else:
                env.append(dict(new))
        env = [e for e in env if e.get("name") not in removes]
        if env:
            c["env"] = env
        else:
            c.pop("env", None)


def list_env(obj: Obj, containers: list[Obj], resolve: Any = None) -> str:
    """``set env --list``: a ``# Kind name, container c`` header then ``KEY=VALUE`` lines; references as
    comments unless ``resolve(kind, name, key)`` gives their value."""
    lines: list[str] = []
    for c in containers:
        lines.append(f"# {obj['kind']} {obj['metadata']['name']}, container {c.get('name', '')}")
        for src in c.get("envFrom") or []:
            if isinstance(src, dict):
                for key, what in (("configMapRef", "configmap"), ("secretRef", "secret")):
                    if isinstance(src.get(key), dict):
                        lines.append(f"# environment variables from {what} {src[key].get('name', '')}")
        for e in c.get("env") or []:
            if not isinstance(e, dict):
                continue
            vf = e.get("valueFrom")
            if not isinstance(vf, dict):
                lines.append(f"{e.get('name', '')}={e.get('value', '')}")
                continue
            text = None
            for key, what in (("configMapKeyRef", "configmap"), ("secretKeyRef", "secret")):
                ref = vf.get(key)
                if isinstance(ref, dict):
                    if resolve is not None:
                        text = resolve(what, ref.get("name", ""), ref.get("key", ""))
                        if text is not None:
                            text = f"{e.get('name', '')}={text}"
                    if text is None:
                        text = f"# {e.get('name', '')} from {what} {ref.get('name', '')}, key {ref.get('key', '')}"
            if text is None and isinstance(vf.get("fieldRef"), dict):
                text = f"# {e.get('name', '')} from field path {vf['fieldRef'].get('fieldPath', '')}"
            if text is None and isinstance(vf.get("resourceFieldRef"), dict):
                text = f"# {e.get('name', '')} from resource {vf['resourceFieldRef'].get('resource', '')}"
            lines.append(text or f"# {e.get('name', '')} from an unknown source")
    return "".join(line + "\n" for line in lines)

"""Who a container runs as: the kubelet never runs pods as root unless told to.

Rules kept here (securityContext as in pkg/kubelet/kuberuntime/security_context.go):
- ``runAsUser``, ``runAsGroup`` and ``runAsNonRoot`` come from the container's ``securityContext``,
  else the pod's; ``supplementalGroups`` from the pod's.
- A kubelet running as root runs a container as ``runAsUser`` when given, else as root only with
  ``--run-as-root``, else as ``nobody`` (65534). The group is ``runAsGroup``, else the user's primary
  group in /etc/passwd, else 65534 (``nogroup``); supplementary groups are exactly
  ``supplementalGroups`` (root's own groups are dropped).
- ``runAsNonRoot: true`` refuses a container that would run as uid 0, with the kubelet's messages:
  ``container has runAsNonRoot and image will run as root`` (uid 0 by default) and ``container's
  runAsUser breaks non-root policy`` (``runAsUser: 0``).
- A kubelet not running as root runs containers as itself; a ``runAsUser``/``runAsGroup`` it cannot
  take is a configuration error rather than silently ignored.
- ``PATH`` for a container of another user keeps only the directories that user can search (then the
  usual system directories), so ``python3`` finds an interpreter the user may execute (root's
  ``~/.pyenv`` is not one).
"""

from __future__ import annotations

import functools
import os
import pwd
import stat
from dataclasses import dataclass
from typing import Any

from kubesvc.dataplane.kubelet.spec import ConfigError

Obj = dict[str, Any]
NOBODY = 65534
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    switch: bool = False  # True: the kubelet changes to uid/gid before exec

    def popen_kwargs(self) -> dict[str, Any]:
        """Subprocess arguments that change to this user in the child before exec (a ``preexec_fn``:
        the event loop, uvloop, takes no ``user``/``group``)."""
        if not self.switch:
            return {}
        return {"preexec_fn": functools.partial(_become, self.uid, self.gid, self.groups)}

    def setpriv_argv(self, setpriv: str, caps: bool = False) -> list[str]:
        """The same change of user as a command prefix (for ``ip netns exec``, which needs root); ``caps``
        keeps CAP_NET_BIND_SERVICE (ambient), which container runtimes grant by default."""
        if not self.switch:
            return []
        groups = ["--groups", ",".join(map(str, self.groups))] if self.groups else ["--clear-groups"]
        extra = ["--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service"] if caps else []
        return [setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", *groups, *extra, "--"]


def _become(uid: int, gid: int, groups: tuple[int, ...]) -> None:
    """In the child, before exec: supplementary groups, then group, then user (the order that works)."""
    os.setgroups(list(groups))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def _id(value: Any, field: str, container: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ConfigError(f'container "{container}": securityContext.{field} must be an integer between 0 and {MAX_ID}')
    return value


def _pick(pod: Obj, container: Obj, key: str) -> Any:
    csc = container.get("securityContext") or {}
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    if not isinstance(csc, dict) or not isinstance(psc, dict):
        raise ConfigError(f'container "{container.get("name", "")}": securityContext must be an object')
    return csc[key] if csc.get(key) is not None else psc.get(key)


def _primary_gid(uid: int) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return NOBODY


def resolve(pod: Obj, container: Obj, *, run_as_root: bool, euid: int | None = None, egid: int | None = None) -> Identity:
    name = container.get("name", "")
    euid = os.geteuid() if euid is None else euid
    egid = os.getegid() if egid is None else egid
    run_as_user = _id(_pick(pod, container, "runAsUser"), "runAsUser", name)
    run_as_group = _id(_pick(pod, container, "runAsGroup"), "runAsGroup", name)
    non_root = _pick(pod, container, "runAsNonRoot") is True
    meta = pod.get("metadata") or {}
    where = f'(pod: "{meta.get("name", "")}_{meta.get("namespace", "default")}({meta.get("uid", "")})", container: {name})'
    if euid != 0:
        if run_as_user is not None and run_as_user != euid:
            raise ConfigError(f"runAsUser {run_as_user} is not possible: the kubelet runs as uid {euid}, not root, "
                              "and runs containers as itself")
        if run_as_group is not None and run_as_group != egid:
            raise ConfigError(f"runAsGroup {run_as_group} is not possible: the kubelet runs as gid {egid}, not root, "
                              "and runs containers as itself")
        return Identity(euid, egid)
    uid = run_as_user if run_as_user is not None else (0 if run_as_root else NOBODY)
    if non_root and uid == 0:
        if run_as_user is not None:
            raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
        raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
    if uid == 0 and run_as_group is None:
        return Identity(0, 0)  # as the kubelet itself: nothing to change
    gid = run_as_group if run_as_group is not None else _primary_gid(uid)
    extra = (pod.get("spec") or {}).get("securityContext") or {}
    groups = extra.get("supplementalGroups") or []
    if not isinstance(groups, list):
        raise ConfigError("securityContext.supplementalGroups must be a list of group ids")
    gids = tuple(g for g in (_id(g, "supplementalGroups", name) for g in groups) if g is not None)
    return Identity(uid, gid, gids, switch=True)


def can_search(path: str, ident: Identity) -> bool:
    """Whether ``ident`` may reach ``path`` (search permission on it and every parent directory)."""
    if ident.uid == 0:
        return True
    groups = {ident.gid, *ident.groups}
    p = os.path.abspath(path)
    parts = [p]
    while p != "/":
        p = os.path.dirname(p)
        parts.append(p)
    for d in parts:
        try:
            st = os.stat(d)
        except OSError:
            return False
        if st.st_uid == ident.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def container_path(path: str, ident: Identity) -> str:
    """PATH for a container running as ``ident``: the directories it can search, then the system ones."""
    if not ident.switch or ident.uid == 0:
        return path
    keep = [d for d in path.split(os.pathsep) if d and can_search(d, ident) and not _foreign_venv(d, ident)]
    keep += [d for d in SYSTEM_PATH if d not in keep]
    return os.pathsep.join(keep)


def _foreign_venv(d: str, ident: Identity) -> bool:
    """A virtualenv's bin whose interpreter ``ident`` cannot run (it links into root's home, say): its python3
    would shadow the system one and fail with "Permission denied" (`make test` puts .venv/bin first on PATH)."""
    if not os.path.exists(os.path.join(os.path.dirname(os.path.abspath(d)), "pyvenv.cfg")):
        return False
    real = os.path.realpath(os.path.join(d, "python3"))
    if not os.path.exists(real):
        return False
    return not (can_search(os.path.dirname(real), ident) and _may_execute(real, ident))


def _may_execute(path: str, ident: Identity) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_uid == ident.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in {ident.gid, *ident.groups}:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)

"""Running a command inside a running container (``kubectl exec``, ``kubesvc exec``).

Rules kept here:
- A pod here is a local process, so "inside the container" means the context the kubelet started it
  in: the same environment, working directory, user (``identity.resolve``'s answer, applied the same
  way) and, with ``--isolation netns``, the same network namespace (the same ``ip netns exec``/
  ``setpriv`` prefix). The kubelet writes that context into the container's record
  (``process.json``, private to the kubelet's user) when it starts the container; exec reads it
  back, so exec runs exactly what the kubelet decided even when the kubelet is another process.
- Exec needs the container to run now (the record's process is alive): else the kubelet's
  ``container not found ("NAME")``.
- Whoever execs must be able to take that identity: the kubelet's own user, or root.
- With a TTY the command gets a new session whose controlling terminal is a fresh pty.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import termios
from dataclasses import dataclass, field
from typing import Any

from kubesvc.dataplane.kubelet import identity, logs, tracking
from kubesvc.errors import BadRequest

Obj = dict[str, Any]


def record(ident: identity.Identity | None, env: dict[str, str], cwd: str, wrap: list[str], popen_switch: bool) -> Obj:
    """The exec context kept in a container's record (see module rules)."""
    assert ident is not None
    return {"env": env, "cwd": os.path.abspath(cwd), "wrap": list(wrap), "uid": ident.uid, "gid": ident.gid,
            "groups": list(ident.groups), "switch": popen_switch}


@dataclass(frozen=True)
class Target:
    pod: str
    container: str
    env: dict[str, str]
    cwd: str
    wrap: list[str] = field(default_factory=list)
    uid: int = -1
    gid: int = -1
    groups: tuple[int, ...] = ()
    switch: bool = False

    def argv(self, command: list[str]) -> list[str]:
        return [*self.wrap, *command]

    def popen_kwargs(self, tty: int | None = None) -> dict[str, Any]:
        """subprocess/asyncio keyword arguments: env, cwd, a new session, and in the child the pty whose
        terminal end is the descriptor ``tty`` as its controlling terminal, and the change of user."""
        uid, gid, groups, switch = self.uid, self.gid, self.groups, self.switch

        def child() -> None:
            with contextlib.suppress(OSError):  # already a session leader (the loop's own setsid ran first)
                os.setsid()
            if tty is not None:
                fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
            if switch:
                os.setgroups(list(groups))
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)

        return {"env": self.env, "cwd": self.cwd, "preexec_fn": child}


def target(store_path: str, pod: Obj, container: str | None) -> Target:
    name = logs.pick_container(pod, container)
    rec = tracking.read(tracking.record_path(logs.pod_dir(store_path, pod) / name))
    if rec is None or not tracking.live(rec) or not isinstance(rec.get("exec"), dict):
        raise BadRequest(f'container not found ("{name}")')
    ctx = rec["exec"]
    t = Target(pod["metadata"]["name"], name, {str(k): str(v) for k, v in (ctx.get("env") or {}).items()},
               str(ctx.get("cwd") or "/"), [str(a) for a in ctx.get("wrap") or []], int(ctx.get("uid", -1)),
               int(ctx.get("gid", -1)), tuple(int(g) for g in ctx.get("groups") or []), bool(ctx.get("switch")))
    euid = os.geteuid()
    if euid != 0 and ((t.switch and t.uid != euid) or t.wrap):
        raise BadRequest(f'cannot exec in container "{name}": it runs as uid {t.uid}'
                         f"{' in its own network namespace' if t.wrap else ''}, which needs root (this process runs "
                         f"as uid {euid})")
    return t


def set_winsize(fd: int, width: int, height: int) -> None:
    """Resize a pty (the TTY resize channel); nonsense sizes are ignored."""
    if 0 < width < 65536 and 0 < height < 65536:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def exit_code(returncode: int) -> int:
    """A shell's exit status for a process's return code (128+N for a signal)."""
    return 128 - returncode if returncode < 0 else returncode

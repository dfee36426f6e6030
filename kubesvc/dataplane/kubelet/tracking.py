"""Which processes are this node's containers: a record per running container, checked before any signal.

Rules kept here (the node's answer to "no crash orphans a pod"):
- Each container runs as the leader of its own session and process group (its pid is the group id).
  When it starts, ``<pod dir>/<container>/process.json`` records its pid, its start time (field 22 of
  ``/proc/<pid>/stat``, clock ticks since boot) and the boot id; the file is written atomically, mode
  0600, in the kubelet's private pods directory, and removed once the container is seen to exit.
- A pid is a container of ours only while the record's boot id and start time still match
  ``/proc``: a recycled pid is never signalled. Signals go to the whole group only after that check
  (and, for the stragglers left after the leader exited, only while some member still holds the
  group id, so the id cannot have been reused).
- A kubelet that starts again (after ``kill -9``) adopts every recorded container that still runs:
  it keeps the process, watches it through a pidfd (``/proc`` polling where there is none) and stops
  it like its own children. An adopted process is not the kubelet's child, so its exit status is read
  from ``/proc`` while it is a zombie; when its parent reaped it first, the status is unknown
  (reported as ``ContainerStatusUnknown``, exit code 137, as the kubelet does for a lost container).
- ``sweep``: stop every recorded container still running (SIGTERM to the group, a grace period, then
  SIGKILL) and drop the records: ``kubesvc down`` uses it for pods a crashed kubelet left behind, and
  the kubelet for recorded containers of pods that are gone from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORD = "process.json"
UNKNOWN_EXIT = 137  # what the kubelet reports for a container it lost track of


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """Start time of a live (non-zombie) process, or None."""
    f = _stat(pid)
    if f is None or f[0] in ("Z", "X"):
        return None
    return f[19]


def is_ours(pid: int, start: str | None) -> bool:
    return bool(pid > 1 and start) and start_time(pid) == start


def zombie_status(pid: int, start: str | None) -> int | None:
    """The wait status of an exited process not yet reaped by its parent (field 52), else None."""
    f = _stat(pid)
    if f is None or f[0] != "Z" or f[19] != start or len(f) < 50:
        return None
    try:
        return int(f[49])
    except ValueError:
        return None


def signal_group(pid: int, start: str | None, sig: int) -> bool:
    """Signal the container's process group if ``pid`` is still the process recorded. True if sent."""
    if not is_ours(pid, start):
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        f = _stat(int(entry.name))
        if f is not None and f[0] not in ("Z", "X") and f[2] == str(pgid):
            out.append(int(entry.name))
    return out


def kill_leftovers(pgid: int) -> None:
    """SIGKILL what is left of a container's group after its leader exited. A group id stays reserved
    while any member lives, so the group is signalled only when members were just seen."""
    if pgid > 1 and group_members(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


# ------------------------------------------------------------------------------------- records


def record_path(container_dir: Path) -> Path:
    return container_dir / RECORD


def write(path: Path, rec: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(rec, f)
    os.replace(tmp, path)


def read(path: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("pid"), int):
        return None
    return rec


def remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def live(rec: dict[str, Any] | None) -> bool:
    """The recorded container still runs (same boot, same pid, same start time)."""
    return rec is not None and rec.get("boot") == boot_id() and is_ours(int(rec["pid"]), rec.get("start"))


def records(pods_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(record path, record) of every container record under the pods directory."""
    if not pods_dir.is_dir():
        return
    for path in sorted(pods_dir.glob(f"*/*/{RECORD}")):
        rec = read(path)
        if rec is not None:
            yield path, rec


def sweep(pods_dir: Path, timeout: float = 10.0, only: set[Path] | None = None) -> list[dict[str, Any]]:
    """Stop every live recorded container (or those whose record is in ``only``): SIGTERM to each
    group, wait up to its grace period (at most ``timeout``), SIGKILL. Returns the live ones found."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for path, rec in records(pods_dir):
        if only is not None and path not in only:
            continue
        if live(rec):
            found.append((path, rec))
            signal_group(int(rec["pid"]), rec.get("start"), signal.SIGTERM)
        remove(path)
    if found:
        grace = min(timeout, max(float(r.get("grace", 30) or 0) for _, r in found))
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(is_ours(int(r["pid"]), r.get("start")) for _, r in found):
            time.sleep(0.05)
        for _, r in found:
            pid = int(r["pid"])
            signal_group(pid, r.get("start"), signal.SIGKILL)
            kill_leftovers(pid)
        _drop_namespaces({path.parent.parent.name.rsplit("_", 1)[-1] for path, _ in found})
    return [r for _, r in found]


def _drop_namespaces(pod_uids: set[str]) -> None:
    """The network namespaces (``--isolation netns``) of pods whose containers a sweep stopped."""
    from kubesvc.dataplane.kubelet import netns

    for uid in pod_uids:
        if os.path.exists(f"/run/netns/{netns.PodNetworks.names(uid)[0]}"):
            netns.PodNetworks.drop(uid)


# ------------------------------------------------------------------------------------- adoption


class Adopted:
    """A recorded container that runs but is not our child: the parts of ``asyncio.subprocess.Process``
    the pod worker uses (pid, returncode, wait)."""

    def __init__(self, pid: int, start: str) -> None:
        self.pid, self.start = pid, start
        self.returncode: int | None = None
        self.status_known = True

    async def wait(self) -> int:
        if self.returncode is not None:
            return self.returncode
        status = await self._wait_exit()
        if status is None:
            self.status_known = False
            self.returncode = UNKNOWN_EXIT
        elif os.WIFSIGNALED(status):
            self.returncode = -os.WTERMSIG(status)
        else:
            self.returncode = os.WEXITSTATUS(status)
        return self.returncode

    async def _wait_exit(self) -> int | None:
        fd = -1
        with contextlib.suppress(OSError, AttributeError):
            fd = os.pidfd_open(self.pid)
        try:
            if fd >= 0 and is_ours(self.pid, self.start):  # the pidfd is this very process
                loop = asyncio.get_running_loop()
                done = loop.create_future()

                def on_exit() -> None:
                    if not done.done():
                        done.set_result(None)

                loop.add_reader(fd, on_exit)
                try:
                    await done
                finally:
                    loop.remove_reader(fd)
            else:
                while is_ours(self.pid, self.start):
                    await asyncio.sleep(0.1)
            return zombie_status(self.pid, self.start)
        finally:
            if fd >= 0:
                os.close(fd)

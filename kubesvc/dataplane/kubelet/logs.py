"""Where container output lives, and reading it back (``kubesvc logs``).

Rules kept here: each container instance writes stdout and stderr, interleaved as written, to
``<store>.d/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log``, beside the store; ``logs`` shows
the current instance, ``--previous`` the one before; ``-f`` follows the current file until the pod
or the container instance goes away (or the reader is interrupted). The directory goes when the
node agent stops the pod for good (the pod was deleted).
- The API server's ``pods/log`` and ``kubesvc logs`` share ``Options`` (kubectl's flags): ``tail`` lines,
  ``limit_bytes`` (the output stops there, following included), ``since`` (a time) and ``timestamps``.
  Containers write straight to their file (so a kubelet restart never cuts their output), hence lines
  carry no time of their own: ``timestamps`` prefixes each line already written with the file's last
  write time and each followed line with the time it was read; ``since`` keeps a file only when it was
  written at or after that time (whole files, not lines); lines followed are always new.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubesvc.errors import BadRequest

Obj = dict[str, Any]


def pods_dir(store_path: str) -> Path:
    return Path(os.path.abspath(store_path) + ".d") / "pods"


def pod_dir(store_path: str, pod: Obj) -> Path:
    m = pod["metadata"]
    return pods_dir(store_path) / f"{m.get('namespace', 'default')}_{m['name']}_{m.get('uid', '')}"


def log_path(store_path: str, pod: Obj, container: str, restart: int) -> Path:
    return pod_dir(store_path, pod) / container / f"{restart}.log"


def pick_container(pod: Obj, container: str | None) -> str:
    names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    name = pod["metadata"]["name"]
    if container:
        if container not in names:
            raise BadRequest(f"container {container} is not valid for pod {name}")
        return container
    if len(names) == 1:
        return names[0]
    raise BadRequest(f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]")


def instances(store_path: str, pod: Obj, container: str) -> list[int]:
    d = pod_dir(store_path, pod) / container
    if not d.is_dir():
        return []
    return sorted(int(p.stem) for p in d.glob("*.log") if p.stem.isdigit())


def read(store_path: str, pod: Obj, container: str | None, *, previous: bool = False, tail: int = -1) -> tuple[str, Path]:
    name = pick_container(pod, container)
    runs = instances(store_path, pod, name)
    pod_name = pod["metadata"]["name"]
    if previous:
        if len(runs) < 2:
            raise BadRequest(f'previous terminated container "{name}" in pod "{pod_name}" not found')
        n = runs[-2]
    else:
        if not runs:
            raise BadRequest(f'container "{name}" in pod "{pod_name}" is waiting to start: kubesvc has not run it '
                             "(is `kubesvc kubelet` running, and does the container have a command?)")
        n = runs[-1]
    path = pod_dir(store_path, pod) / name / f"{n}.log"
    data = path.read_text(errors="replace")
    if tail >= 0:
        lines = data.splitlines(keepends=True)
        data = "".join(lines[-tail:]) if tail else ""
    return data, path


def follow(path: Path, start: int, still_current: Callable[[], bool], interval: float = 0.2) -> Iterator[str]:
    """Yield text appended to ``path`` after byte offset ``start`` while ``still_current()`` holds."""
    pos = start
    idle = 0.0
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            return
        if chunk:
            pos += len(chunk)
            idle = 0.0
            yield chunk.decode(errors="replace")
            continue
        idle += interval
        if idle >= 1.0:
            idle = 0.0
            if not still_current():
                return
        time.sleep(interval)


@dataclass(frozen=True)
class Options:
    container: str | None = None
    previous: bool = False
    tail: int = -1
    limit_bytes: int = 0  # 0: no limit
    since: float | None = None  # a Unix time
    timestamps: bool = False
    follow: bool = False


def rfc3339nano(t: float) -> str:
    d = datetime.fromtimestamp(t, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(round((t % 1) * 1e9)) % 1_000_000_000:09d}Z"


def stamp(data: bytes, t: float) -> bytes:
    """Each line of ``data`` prefixed with the time ``t`` (kubectl's ``--timestamps`` layout)."""
    prefix = rfc3339nano(t).encode() + b" "
    lines = data.splitlines(keepends=True)
    return b"".join(prefix + line for line in lines)


def snapshot(store_path: str, pod: Obj, opts: Options) -> tuple[bytes, Path, int]:
    """What is in the chosen instance's file now, with ``opts`` applied: (bytes, file, end offset)."""
    _, path = read(store_path, pod, opts.container, previous=opts.previous, tail=0)
    with open(path, "rb") as f:
        data = f.read()
        end = f.tell()
        mtime = os.fstat(f.fileno()).st_mtime
    if opts.since is not None and mtime < opts.since:
        data = b""
    if opts.tail >= 0:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-opts.tail:]) if opts.tail else b""
    if opts.timestamps:
        data = stamp(data, mtime)
    if opts.limit_bytes > 0:
        data = data[: opts.limit_bytes]
    return data, path, end


def parse_since_time(text: str) -> float:
    """An RFC 3339 time (``--since-time``) as a Unix time."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise BadRequest(f'invalid sinceTime "{text}": expected an RFC 3339 time such as 2024-01-02T15:04:05Z') from None


def follow_bytes(path: Path, start: int) -> tuple[bytes, int]:
    """New bytes after ``start`` (and the new offset); empty when the file is gone or unchanged."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            chunk = f.read(1 << 20)
    except FileNotFoundError:
        return b"", start
    return chunk, start + len(chunk)

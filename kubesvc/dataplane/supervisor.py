"""`kubesvc up/down/status`: run the data-plane components as background processes beside the store.

Rules kept here:
- A component is one ``kubesvc <verb>`` foreground command that prints a ready line
  (``kubesvc <verb> ready key=value ...``, see ``runtime.ready_line``). ``COMPONENTS`` lists them; adding
  the DNS server or the ingress router is one ``Component(...)`` line.
- Everything lives in the run directory ``<store>.d/``: ``<name>.pid`` (JSON: pid, start time, argv),
  ``<name>.out`` (stdout of the current run: the ready line), ``<name>.log`` (stderr, appended across runs)
  and ``<name>.status.json`` (what it serves, for components that keep one).
- Each component runs in its own session and process group (``start_new_session``), so it outlives ``up``
  and ``down`` can signal the whole group. A pid counts as ours only while its start time matches the pid
  file (no signalling a recycled pid).
- ``up`` and ``down`` hold an exclusive lock on ``<store>.d/lock``: two concurrent ``up`` start one data plane.
- ``up`` returns once every component printed its ready line (or failed: then it stops what it started,
  prints the log tail and returns 1). A second ``up`` says it already runs and returns 0. ``down`` sends
  SIGTERM, waits, then SIGKILL; with nothing running it says so and returns 0. ``status`` returns 0 when
  everything runs and 3 when something does not (LSB convention).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from kubesvc.dataplane.runtime import parse_ready_line

Out = Callable[[str], None]


@dataclass(frozen=True)
class Component:
    name: str
    argv: Callable[[dict[str, Any], "RunDir"], list[str]]  # the kubesvc arguments after --store
    keeps_status: bool = False  # writes <name>.status.json (given as --status-file)


def _proxy_argv(flags: dict[str, Any], run: "RunDir") -> list[str]:
    return [
        "proxy",
        "--nodeport-addresses", ",".join(flags.get("nodeport_addresses") or ["127.0.0.0/8"]),
        "--healthz-bind-address", flags.get("healthz_bind_address", "127.0.0.1:10256"),
        "--metrics-bind-address", flags.get("metrics_bind_address", "127.0.0.1:10249"),
        "--udp-timeout", str(flags.get("udp_timeout", "10s")),
        "-v", str(flags.get("verbosity", 0)),
        "--workers", str(flags.get("proxy_workers", "1")),
        "--status-file", str(run.status_file("proxy")),
    ]


def _dns_argv(flags: dict[str, Any], run: "RunDir") -> list[str]:
    argv = ["dns"]
    if flags.get("dns_listen"):
        argv += ["--listen", flags["dns_listen"]]
    return argv


def _apiserver_argv(flags: dict[str, Any], run: "RunDir") -> list[str]:
    host, _, port = (flags.get("apiserver_address") or "127.0.0.1:6443").rpartition(":")
    return ["apiserver", "--bind-address", host, "--port", port]


def _kubelet_argv(flags: dict[str, Any], run: "RunDir") -> list[str]:
    return ["kubelet", "--isolation", flags.get("isolation") or "loopback"]


def _ingress_argv(flags: dict[str, Any], run: "RunDir") -> list[str]:
    return ["ingress", "--http-address", flags.get("ingress_http_address", "127.0.0.1:80"),
            "--https-address", flags.get("ingress_https_address", "127.0.0.1:443"),
            "--access-log", str(run.path / "ingress-access.log")]


COMPONENTS: list[Component] = [
    Component("proxy", _proxy_argv, keeps_status=True),
    Component("dns", _dns_argv),
    Component("apiserver", _apiserver_argv),
    Component("kubelet", _kubelet_argv),
    Component("ingress", _ingress_argv),
]
DEFAULT_COMPONENTS = tuple(c.name for c in COMPONENTS)


def enabled(run: "RunDir") -> list[Component]:
    """The components the last `up` asked for (all, before any `up`)."""
    try:
        names = json.loads((run.path / "components.json").read_text())
    except (OSError, ValueError):
        names = list(DEFAULT_COMPONENTS)
    return [c for c in COMPONENTS if c.name in names]


class RunDir:
    def __init__(self, store_path: str) -> None:
        self.store = os.path.abspath(store_path)
        self.path = Path(self.store + ".d")

    def pid_file(self, name: str) -> Path:
        return self.path / f"{name}.pid"

    def out_file(self, name: str) -> Path:
        return self.path / f"{name}.out"

    def log_file(self, name: str) -> Path:
        return self.path / f"{name}.log"

    def status_file(self, name: str) -> Path:
        return self.path / f"{name}.status.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------- processes


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); None when gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def _alive(pid: int, start: str | None) -> bool:
    if os.path.isdir("/proc"):
        now = _start_time(pid)
        return now is not None and (start is None or now == start)
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


@dataclass
class Running:
    component: Component
    pid: int
    ready: dict[str, str]


def _read_pid(run: RunDir, comp: Component) -> dict[str, Any] | None:
    try:
        return json.loads(run.pid_file(comp.name).read_text())
    except (OSError, ValueError):
        return None


def running(run: RunDir) -> dict[str, Running]:
    out: dict[str, Running] = {}
    for comp in COMPONENTS:
        info = _read_pid(run, comp)
        if info and _alive(int(info["pid"]), info.get("start")):
            out[comp.name] = Running(comp, int(info["pid"]), _ready_fields(run, comp) or {})
    return out


def _ready_fields(run: RunDir, comp: Component) -> dict[str, str] | None:
    try:
        text = run.out_file(comp.name).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = parse_ready_line(comp.name, line)
        if fields is not None:
            return fields
    return None


def _log_tail(run: RunDir, comp: Component, lines: int = 15) -> str:
    try:
        text = run.log_file(comp.name).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _spawn(run: RunDir, comp: Component, flags: dict[str, Any]) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "kubesvc", "--store", run.store, *comp.argv(flags, run)]
    for f in (run.out_file(comp.name), run.status_file(comp.name)):
        f.unlink(missing_ok=True)
    with open(run.out_file(comp.name), "wb") as out, open(run.log_file(comp.name), "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log, env=env, start_new_session=True, close_fds=True)
    record = {"pid": proc.pid, "start": _start_time(proc.pid), "argv": argv}
    tmp = run.pid_file(comp.name).with_suffix(".pid.tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(run.pid_file(comp.name))
    return proc


def _stop(run: RunDir, comp: Component, pid: int, start: str | None, timeout: float) -> bool:
    """SIGTERM the component's process group, wait, then SIGKILL. True when it had to be killed."""
    killed = False
    if _alive(pid, start):
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while _alive(pid, start) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.02)
        if _alive(pid, start):
            killed = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + 5
            while _alive(pid, start) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.02)
    for f in (run.pid_file(comp.name), run.status_file(comp.name)):
        f.unlink(missing_ok=True)
    return killed


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait_ready(run: RunDir, started: dict[str, subprocess.Popen[bytes]], timeout: float) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Wait for each component's ready line. Returns (ready fields by name, failure text by name)."""
    ready: dict[str, dict[str, str]] = {}
    failed: dict[str, str] = {}
    by_name = {c.name: c for c in COMPONENTS}
    deadline = time.monotonic() + timeout
    while len(ready) + len(failed) < len(started):
        for name, proc in started.items():
            if name in ready or name in failed:
                continue
            fields = _ready_fields(run, by_name[name])
            if fields is not None:
                ready[name] = fields
            elif proc.poll() is not None:
                failed[name] = f"{name} exited with code {proc.returncode} before it was ready"
            elif time.monotonic() > deadline:
                failed[name] = f"{name} was not ready after {timeout:g}s"
        time.sleep(0.01)
    return ready, failed


def _describe(name: str, pid: int, fields: dict[str, str]) -> str:
    extra = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{name}: running (pid {pid}){' ' + extra if extra else ''}\n"


# ------------------------------------------------------------------------------------- commands


def up(store_path: str, flags: dict[str, Any], *, foreground: bool, timeout: float, out: Out) -> int:
    run = RunDir(store_path)
    wanted = [c for c in COMPONENTS if c.name in flags.get("components", DEFAULT_COMPONENTS)]
    with run.locked():
        already = running(run)
        if all(c.name in already for c in wanted):
            out(f"kubesvc is already running for {run.store}\n")
            for r in already.values():
                out(_describe(r.component.name, r.pid, r.ready))
            return 0
        for r in already.values():
            out(f"{r.component.name}: already running (pid {r.pid})\n")
        (run.path / "components.json").write_text(json.dumps(sorted({c.name for c in wanted} | set(already))))
        started = {c.name: _spawn(run, c, flags) for c in wanted if c.name not in already}
        ready, failed = _wait_ready(run, started, timeout)
        if failed:
            by_name = {c.name: c for c in COMPONENTS}
            for name, proc in started.items():
                rec = _read_pid(run, by_name[name])
                _stop(run, by_name[name], proc.pid, rec.get("start") if rec else None, timeout=5)
                proc.poll()
            for name, why in failed.items():
                tail = _log_tail(run, by_name[name])
                sys.stderr.write(f"error: {why}; log {run.log_file(name)}:\n{tail}\n")
            return 1
        for name, proc in started.items():
            out(_describe(name, proc.pid, ready[name]))
        out(f"logs: {run.path}/\n")
    if not foreground:
        return 0
    return _stay(run, started, out)


def _stay(run: RunDir, started: dict[str, subprocess.Popen[bytes]], out: Out) -> int:
    """--foreground: wait for Ctrl-C/SIGTERM or a component's exit, then stop everything."""
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        while not stopping:
            dead = [n for n, p in started.items() if p.poll() is not None]
            if dead:
                sys.stderr.write(f"error: {', '.join(dead)} exited; stopping\n")
                code = 1
                break
            time.sleep(0.05)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        with run.locked():
            by_name = {c.name: c for c in COMPONENTS}
            for name, proc in started.items():
                rec = _read_pid(run, by_name[name])
                if rec is None or rec.get("pid") != proc.pid:
                    continue  # someone else (down) already stopped it
                _stop(run, by_name[name], proc.pid, rec.get("start"), timeout=10)
                proc.poll()
    out("stopped\n")
    return code


def down(store_path: str, *, timeout: float, out: Out) -> int:
    run = RunDir(store_path)
    if not run.path.exists():
        out(f"kubesvc is not running for {run.store}\n")
        return 0
    with run.locked():
        stopped = 0
        for comp in COMPONENTS:
            rec = _read_pid(run, comp)
            if rec is None:
                continue
            pid, start = int(rec["pid"]), rec.get("start")
            if not _alive(pid, start):
                _stop(run, comp, pid, start, timeout)  # stale pid file: clean up
                continue
            killed = _stop(run, comp, pid, start, timeout)
            out(f"{comp.name}: stopped (pid {pid}){' after SIGKILL' if killed else ''}\n")
            stopped += 1
        if not stopped:
            out(f"kubesvc is not running for {run.store}\n")
    return 0


def status(store_path: str, *, out: Out) -> int:
    run = RunDir(store_path)
    now = running(run)
    if not now:
        out(f"kubesvc is not running for {run.store}\n")
        return 3
    for comp in enabled(run):
        r = now.get(comp.name)
        if r is None:
            out(f"{comp.name}: not running\n")
            continue
        out(_describe(comp.name, r.pid, r.ready))
        if comp.keeps_status:
            out(_status_details(run.status_file(comp.name)))
    out(f"logs: {run.path}/\n")
    return 0 if all(c.name in now for c in enabled(run)) else 3


def _status_details(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    lines = []
    for p in info.get("servicePorts", []):
        addrs = ", ".join(p["addresses"]) or "(not listening)"
        lines.append(f"  {p['service']}  {addrs}  endpoints={p['endpoints']}\n")
    for e in info.get("errors", []):
        lines.append(f"  error: {e['service']}: {e['error']}\n")
    return "".join(lines)

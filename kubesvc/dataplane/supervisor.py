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
  ``down`` also works when that directory is read-only (it locks a read-only descriptor, or goes unlocked, and
  leaves stale pid files that no one mistakes for live ones).
- Listen addresses (``LISTENS``) are checked before anything starts. An address given by flag that cannot be
  bound is a one-line error naming the flag; a default one falls back to its unprivileged port (DNS 1053,
  ingress 8080/8443), then to a free port, and says so in one line, kept in ``notes.json`` for ``status``.
- ``up`` records the store file's identity (device, inode) in ``store.json`` and hands it to each component,
  which stops once the file is deleted or replaced (``runtime.StoreGuard``); ``status`` reports it and exits 1,
  and CLI commands refuse that store until ``down`` (``check_store_unchanged``).
- ``up`` returns once every component printed its ready line (or failed: then it stops what it started,
  prints the log tail and returns 1). A second ``up`` says it already runs and returns 0. ``down`` sends
  SIGTERM, waits, then SIGKILL; with nothing running it says so and returns 0. ``status`` returns 0 when
  everything runs and 3 when something does not (LSB convention).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubesvc.dataplane import runtime
from kubesvc.dataplane.runtime import parse_ready_line
from kubesvc.errors import ClientError

Out = Callable[[str], None]


@dataclass(frozen=True)
class Component:
    name: str
    argv: Callable[[dict[str, Any], RunDir], list[str]]  # the kubesvc arguments after --store
    keeps_status: bool = False  # writes <name>.status.json (given as --status-file)
    netns: str | None = None  # --nodes: the node's network namespace (``nodes.wrap``)


def _proxy_argv(flags: dict[str, Any], run: RunDir) -> list[str]:
    return [
        "proxy",
        "--nodeport-addresses", ",".join(flags.get("nodeport_addresses") or ["127.0.0.0/8"]),
        "--healthz-bind-address", flags.get("healthz_bind_address", "127.0.0.1:10256"),
        "--metrics-bind-address", flags.get("metrics_bind_address", "127.0.0.1:10249"),
        "--udp-timeout", str(flags.get("udp_timeout", "10s")),
        "-v", str(flags.get("verbosity", 0)),
        "--workers", str(flags.get("proxy_workers", "1")),
        "--status-file", str(run.status_file("proxy")),
        *(["--mode", "nftables", "--nft-table", str(flags.get("proxy_nft_table") or "kubesvc")]
          if flags.get("proxy_mode") == "nftables" else []),
    ]


def _dns_argv(flags: dict[str, Any], run: RunDir) -> list[str]:
    argv = ["dns"]
    if flags.get("dns_listen"):
        argv += ["--listen", flags["dns_listen"]]
    return argv


def _apiserver_argv(flags: dict[str, Any], run: RunDir) -> list[str]:
    host, _, port = (flags.get("apiserver_address") or "127.0.0.1:6443").rpartition(":")
    # HTTPS with the store's credentials (<store>.d/pki/); the kubeconfig for it lands beside them, mode 0600
    return ["apiserver", "--bind-address", host, "--port", port, "--write-kubeconfig", str(run.path / "kubeconfig")]


def _kubelet_argv(flags: dict[str, Any], run: RunDir) -> list[str]:
    root = ["--run-as-root"] if flags.get("kubelet_run_as_root") else []
    # netns pods reach the cluster DNS through the kubelet's relay: tell it where `up` put the DNS server
    # (port 0 is chosen by the DNS server itself, too late for this command line: the kubelet keeps its default)
    listen = flags.get("dns_listen") or ""
    wanted = listen and not listen.endswith(":0") and "dns" in (flags.get("components") or ["dns"])
    dns = ["--cluster-dns", listen] if wanted else []
    return ["kubelet", "--isolation", flags.get("isolation") or "loopback", *root, *dns]


def _ingress_argv(flags: dict[str, Any], run: RunDir) -> list[str]:
    return ["ingress", "--http-address", flags.get("ingress_http_address", "127.0.0.1:80"),
            "--https-address", flags.get("ingress_https_address", "127.0.0.1:443"),
            "--access-log", str(run.path / "ingress-access.log")]


@dataclass(frozen=True)
class Listen:
    """One address a component listens on, as `up` chooses it."""

    component: str
    key: str  # in the flags
    flag: str  # up's flag that sets it
    default_port: int
    fallback_port: int | None  # tried when the default port needs root or is taken; then a free port
    udp: bool = False  # DNS: the same port on UDP and TCP


LISTENS = [
    Listen("proxy", "healthz_bind_address", "--healthz-bind-address", 10256, None),
    Listen("proxy", "metrics_bind_address", "--metrics-bind-address", 10249, None),
    Listen("dns", "dns_listen", "--dns-listen", 53, 1053, udp=True),
    Listen("apiserver", "apiserver_address", "--apiserver-address", 6443, None),
    Listen("ingress", "ingress_http_address", "--ingress-http-address", 80, 8080),
    Listen("ingress", "ingress_https_address", "--ingress-https-address", 443, 8443),
]


COMPONENTS: list[Component] = [
    Component("proxy", _proxy_argv, keeps_status=True),
    Component("dns", _dns_argv),
    Component("apiserver", _apiserver_argv),
    Component("kubelet", _kubelet_argv),
    Component("ingress", _ingress_argv),
]
DEFAULT_COMPONENTS = tuple(c.name for c in COMPONENTS)
PER_NODE = ("proxy", "kubelet")  # with --nodes N: one of each per node, in the node's network namespace


def _fabric_dns(run: RunDir) -> Component:
    """``--nodes N``: a second DNS server, ``dns-net``, in the fabric namespace on the bridge address 172.30.0.1:53
    (the same store, so the same answers), for the nodes' kubelets to relay their pods' queries to, and for clients
    in the fabric. The host's DNS server stays where it is, on loopback."""
    from kubesvc.dataplane import nodes

    def argv(flags: dict[str, Any], run: RunDir) -> list[str]:
        return ["dns", "--listen", f"{nodes.CLIENT_IP}:53", "--allow-from", nodes.NETWORK]

    return Component("dns-net", argv, netns=nodes.fabric(run.store))


def _per_node(base: Component, n: Any) -> Component:
    """``base`` for node ``n`` (``nodes.NodeNet``): node 1 keeps the name, node i is ``<name>-i``."""
    from kubesvc.dataplane import nodes
    name = base.name if n.index == 1 else f"{base.name}-{n.index}"

    def argv(flags: dict[str, Any], run: RunDir) -> list[str]:
        if base.name == "proxy":
            flags = {**flags, "nodeport_addresses": [f"{n.ip}/32", "127.0.0.0/8"],
                     "healthz_bind_address": f"{n.ip}:10256", "metrics_bind_address": f"{n.ip}:10249"}
            out = base.argv(flags, run)
            out[out.index("--status-file") + 1] = str(run.status_file(name))
            return [*out, "--hostname-override", n.name]
        # the node's pods reach the cluster DNS through this kubelet's relay, and from the node namespace the
        # DNS server that answers is the fabric's (``dns-net``): the host's loopback is out of reach
        dns = ["--cluster-dns", f"{nodes.CLIENT_IP}:53"] if "dns" in (flags.get("components") or ["dns"]) else []
        flags = {**flags, "isolation": "netns", "dns_listen": ""}
        extra = ["--node-name", n.name, "--pod-cidr", n.pod_cidr, *dns]
        return [*base.argv(flags, run), *extra, *([] if n.index == 1 else ["--no-controllers"])]

    return Component(name, argv, keeps_status=base.keeps_status, netns=n.netns)


def all_components(run: RunDir) -> list[Component]:
    """COMPONENTS, with the proxy and kubelet once per node when `up --nodes N` (N > 1) made nodes."""
    from kubesvc.dataplane import nodes

    rec = run.read_json("nodes.json")
    count = int(rec.get("count", 1)) if isinstance(rec, dict) else 1
    if count <= 1:
        return list(COMPONENTS)
    out: list[Component] = []
    for c in COMPONENTS:
        out += [_per_node(c, n) for n in nodes.plan(run.store, count)] if c.name in PER_NODE else [c]
        if c.name == "dns":
            out.append(_fabric_dns(run))
    return out


def enabled(run: RunDir) -> list[Component]:
    """The components the last `up` asked for (all, before any `up`)."""
    try:
        names = json.loads((run.path / "components.json").read_text())
    except (OSError, ValueError):
        names = list(DEFAULT_COMPONENTS)
    return [c for c in all_components(run) if c.name in names]


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
    def locked(self, *, read_only_ok: bool = False) -> Iterator[None]:
        """The run directory's lock. With ``read_only_ok`` (``down``), a directory that cannot be written is locked
        through a read-only descriptor of the lock file, or not at all when there is none."""
        fd: int | None = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if not read_only_ok:
                raise ClientError(f"cannot write the run directory {self.path}: {e.strerror or e}") from None
            try:
                fd = os.open(self.path / "lock", os.O_RDONLY)
            except OSError:
                fd = None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                os.close(fd)  # releases the flock

    def writable(self) -> bool:
        return os.access(self.path, os.W_OK)

    def write_json(self, name: str, value: Any) -> None:
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(value))
        tmp.replace(self.path / name)

    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    def remove(self, *paths: Path) -> bool:
        """Remove files; False when one could not be (a read-only directory). A pid file left behind is stale:
        ``_alive`` compares the process start time, so it never names a live process."""
        ok = True
        for f in paths:
            try:
                f.unlink(missing_ok=True)
            except OSError:
                ok = False
        return ok


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
    for comp in all_components(run):
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
        fields = parse_ready_line(comp.name.split("-")[0], line)  # proxy-2: a node's proxy
        if fields is not None:
            return fields
    return None


def _log_tail(run: RunDir, comp: Component, lines: int = 15) -> str:
    try:
        text = run.log_file(comp.name).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _spawn(run: RunDir, comp: Component, flags: dict[str, Any], guard: str | None = None) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "kubesvc", "--store", run.store, *comp.argv(flags, run)]
    if comp.netns:  # --nodes: in the node's network namespace only (the mount namespace stays the host's)
        argv = [shutil.which("nsenter") or "nsenter", f"--net=/run/netns/{comp.netns}", *argv]
    for f in (run.out_file(comp.name), run.status_file(comp.name)):
        f.unlink(missing_ok=True)
    with open(run.out_file(comp.name), "wb") as out, open(run.log_file(comp.name), "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if guard:
            env[runtime.STORE_GUARD_ENV] = guard
        # cwd: the caller's unless flags say (the pytest plugin gives "/": pods without workingDir start there, and a
        # test's cwd under /tmp/pytest-of-<user> (0700) is closed to the kubelet's default pod user, nobody)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log, env=env, start_new_session=True, close_fds=True,
                                cwd=flags.get("cwd") or None)
    record = {"pid": proc.pid, "start": _start_time(proc.pid), "argv": argv}
    tmp = run.pid_file(comp.name).with_suffix(".pid.tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(run.pid_file(comp.name))
    return proc


def _terminate(pid: int) -> None:
    """SIGTERM the component's process group (or the process alone when the group is gone)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _stop(run: RunDir, comp: Component, pid: int, start: str | None, timeout: float, *, signalled: bool = False) -> bool:
    """SIGTERM the component's process group (unless ``signalled`` already), wait, then SIGKILL. True when it had to
    be killed."""
    killed = False
    table = _nft_table(run, comp)
    if _alive(pid, start):
        if not signalled:
            _terminate(pid)
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
    if table:  # an nftables-mode proxy removes its table when it stops; one that was killed cannot
        from kubesvc.dataplane.proxy import nft

        try:
            nft.delete_table(table)
        except nft.NftError:
            pass
    run.remove(run.pid_file(comp.name), run.status_file(comp.name))
    return killed


def _nft_table(run: RunDir, comp: Component) -> str | None:
    """The nftables table a proxy in this network namespace said it owns (its status file), if any."""
    if not comp.keeps_status or comp.netns:
        return None
    try:
        data = json.loads(run.status_file(comp.name).read_text())
    except (OSError, ValueError):
        return None
    table = data.get("nftTable") if isinstance(data, dict) else None
    return table if isinstance(table, str) and table else None


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait_ready(run: RunDir, started: dict[str, subprocess.Popen[bytes]], timeout: float) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Wait for each component's ready line. Returns (ready fields by name, failure text by name)."""
    ready: dict[str, dict[str, str]] = {}
    failed: dict[str, str] = {}
    by_name = {c.name: c for c in all_components(run)}
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


# ------------------------------------------------------------------------------------- addresses


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _try_bind(host: str, port: int, udp: bool) -> tuple[int, None] | tuple[None, OSError]:
    """Bind what the component will bind, then let go: TCP with SO_REUSEADDR as asyncio's servers do; for DNS, UDP
    and TCP on the same port (the kernel's UDP pick for port 0). Returns the port bound, or the error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for attempt in range(20):
        socks: list[socket.socket] = []
        try:
            bound = port
            if udp:
                socks.append(socket.socket(family, socket.SOCK_DGRAM))
                socks[-1].bind((host, port))
                bound = socks[-1].getsockname()[1]
            socks.append(socket.socket(family, socket.SOCK_STREAM))
            socks[-1].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            socks[-1].bind((host, bound))
            socks[-1].listen(1)
            return socks[-1].getsockname()[1], None
        except OSError as e:
            if udp and port == 0 and len(socks) == 2 and attempt < 19:
                continue  # the kernel's UDP pick is taken on TCP: pick again
            return None, e
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError("unreachable")


def _default_host(run: RunDir, listen: Listen) -> str:
    if listen.component != "dns":
        return "127.0.0.1"
    from kubesvc.dataplane.dns.server import kube_dns_ip
    from kubesvc.store.db import Store

    with Store(run.store) as store:
        return kube_dns_ip(store)


def _cannot_listen(listen: Listen, host: str, port: int, e: OSError) -> ClientError:
    code = runtime.bind_errno(e)
    if runtime.needs_root(port, code) and listen.fallback_port:
        hint = f"choose another {listen.flag}, e.g. {_fmt(host, listen.fallback_port)} (port 0 picks a free one)"
    else:
        hint = f"choose another {listen.flag} (port 0 picks a free one)"
    return ClientError(f"cannot listen on {_fmt(host, port)} ({listen.flag}): {runtime.bind_reason(e, port)}; {hint}")


def plan_listens(run: RunDir, flags: dict[str, Any], names: set[str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Fill in the listen address of each component in ``names``: an address given by flag must bind (else a
    ClientError naming the flag); a default one falls back (``Listen.fallback_port``, then a free port) when it
    needs root or is taken. Returns the flags to start with and one line per fallback, by component."""
    flags = dict(flags)
    notes: dict[str, list[str]] = {}
    for listen in LISTENS:
        given = flags.get(listen.key)
        if listen.component not in names or given == "":  # not started, or disabled (ingress)
            continue
        if given:
            host, port = _split(given)
            _, err = _try_bind(host, port, listen.udp)
            if err is not None:
                raise _cannot_listen(listen, host, port, err)
            continue
        host = _default_host(run, listen)
        first: OSError | None = None
        for port in (listen.default_port, listen.fallback_port, 0):  # type: ignore[assignment]  # fallback_port may be None
            if port is None:
                continue
            bound, err = _try_bind(host, port, listen.udp)
            if err is None:
                break
            if runtime.bind_errno(err) not in (errno.EACCES, errno.EPERM, errno.EADDRINUSE):
                raise _cannot_listen(listen, host, port, err)
            first = first or err
        else:
            assert first is not None
            raise _cannot_listen(listen, host, listen.default_port, first)
        assert bound is not None
        if first is None:  # the default binds
            flags[listen.key] = "" if listen.component == "dns" else _fmt(host, port)  # dns: its own default
            continue
        flags[listen.key] = _fmt(host, bound)
        default = _fmt(host, listen.default_port)
        if runtime.needs_root(listen.default_port, runtime.bind_errno(first)):
            why = f"needs root (net.ipv4.ip_unprivileged_port_start={runtime.unprivileged_port_start()})"
        elif runtime.bind_errno(first) == errno.EADDRINUSE:
            why = "is in use"
        else:
            why = f"cannot be bound ({runtime.bind_reason(first, listen.default_port)})"
        notes.setdefault(listen.component, []).append(f"{listen.component}: {default} {why}; listening on {_fmt(host, bound)}")
    return flags, notes


def _notes(run: RunDir) -> dict[str, list[str]]:
    got = run.read_json("notes.json")
    return got if isinstance(got, dict) else {}


def store_problem(run: RunDir) -> str | None:
    """What happened to the store since `up` recorded it, as one line; None when it is still that file."""
    rec = run.read_json("store.json")
    if not isinstance(rec, dict) or "dev" not in rec:
        return None
    change = runtime.store_change(run.store, (int(rec["dev"]), int(rec["ino"])))
    if change is None:
        return None
    return f"the store {run.store} was {change} after `kubesvc up`"


def check_store_unchanged(store_path: str) -> None:
    """For a command about to open the store: refuse when `kubesvc up` ran for a store at ``store_path`` that was
    deleted or replaced since, and no `kubesvc down` followed. Opening would create a new, empty store (or use
    another one) while the components stop or serve the old one: a split brain."""
    run = RunDir(store_path)
    problem = store_problem(run)
    if problem is None:
        return
    live = ", ".join(f"{n} pid {r.pid}" for n, r in running(run).items())
    state = f"its components still run ({live})" if live else "its components stopped"
    raise ClientError(f"{problem} and {state}; run `kubesvc down` first (then commands use the store at that "
                      "path, and create a new, empty one if there is none)")


def _describe(name: str, pid: int, fields: dict[str, str]) -> str:
    extra = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{name}: running (pid {pid}){' ' + extra if extra else ''}\n"


# ------------------------------------------------------------------------------------- commands


def up(store_path: str, flags: dict[str, Any], *, foreground: bool, timeout: float, out: Out) -> int:
    run = RunDir(store_path)
    count = int(flags.get("nodes") or 1)
    with run.locked():
        already = running(run)
        if not already:
            _make_nodes(run, count, localnet=flags.get("proxy_mode") == "nftables")
        wanted = [c for c in all_components(run) if c.name.split("-")[0] in flags.get("components", DEFAULT_COMPONENTS)]
        problem = store_problem(run)
        if problem and already:
            raise ClientError(f"{problem} and its components still run ({', '.join(already)}); "
                              "run `kubesvc down` first")
        notes = {} if problem else _notes(run)
        if all(c.name in already for c in wanted):
            out(f"kubesvc is already running for {run.store}\n")
            for r in already.values():
                out(_describe(r.component.name, r.pid, r.ready) + _note_lines(notes, r.component.name))
            return 0
        for r in already.values():
            out(f"{r.component.name}: already running (pid {r.pid})\n")
        to_start = [c for c in wanted if c.name not in already]
        flags, new_notes = plan_listens(run, flags, {c.name for c in to_start})
        notes = {**{n: v for n, v in notes.items() if n in already}, **new_notes}
        identity = runtime.store_identity(run.store)
        if identity is None:
            raise ClientError(f"the store {run.store} does not exist")
        try:
            run.write_json("components.json", sorted({c.name for c in wanted} | set(already)))
            run.write_json("notes.json", notes)
            run.write_json("store.json", {"store": run.store, "dev": identity[0], "ino": identity[1]})
        except OSError as e:
            raise ClientError(f"cannot write the run directory {run.path}: {e.strerror or e}") from None
        guard = runtime.store_guard_env(run.store, identity)
        started = {c.name: _spawn(run, c, flags, guard) for c in to_start}
        ready, failed = _wait_ready(run, started, timeout)
        if failed:
            by_name = {c.name: c for c in all_components(run)}
            for name, proc in started.items():
                rec = _read_pid(run, by_name[name])
                _stop(run, by_name[name], proc.pid, rec.get("start") if rec else None, timeout=5)
                proc.poll()
            for name, why in failed.items():
                tail = _log_tail(run, by_name[name])
                sys.stderr.write(f"error: {why}; log {run.log_file(name)}:\n{tail}\n")
            return 1
        for name, proc in started.items():
            out(_describe(name, proc.pid, ready[name]) + _note_lines(notes, name))
        out(f"logs: {run.path}/\n")
        kubeconfig = ready.get("apiserver", {}).get("kubeconfig")
        if kubeconfig:
            out(f"kubeconfig: {kubeconfig} (kubectl --kubeconfig {kubeconfig} get svc, or export KUBECONFIG={kubeconfig})\n")
    if not foreground:
        return 0
    return _stay(run, started, out)


def _make_nodes(run: RunDir, count: int, localnet: bool = False) -> None:
    """``--nodes N`` (N > 1): the node namespaces (``nodes.setup``) and their Node objects, kept in nodes.json;
    one node: no namespace, and neither nodes.json nor the other Nodes left from an earlier run."""
    from kubesvc.dataplane import nodes

    nodes.check(count)
    if count == 1:
        if run.path.exists():
            run.remove(run.path / "nodes.json")
        nodes.unpublish(run.store)  # after an earlier `--nodes N`: one node again (writes only if something changed)
        return
    try:
        made = nodes.setup(run.store, count, localnet=localnet)
    except OSError as e:
        raise ClientError(f"--nodes {count}: cannot set up the node network namespaces: {e}") from None
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_json("nodes.json", {"count": count, "nodes": [{"name": n.name, "netns": n.netns, "ip": n.ip, "podCIDR": n.pod_cidr}
                                                              for n in made]})
    nodes.publish(run.store, made)


def _note_lines(notes: dict[str, list[str]], name: str) -> str:
    return "".join(f"{line}\n" for line in notes.get(name, []))


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
            by_name = {c.name: c for c in all_components(run)}
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
    with run.locked(read_only_ok=True):
        stopped = 0
        comps = all_components(run)
        records = {c.name: _read_pid(run, c) for c in comps}
        live = {n for n, r in records.items() if r is not None and _alive(int(r["pid"]), r.get("start"))}
        for name in live:  # every component at once: they stop in parallel, `down` waits for the slowest only
            _terminate(int(records[name]["pid"]))  # type: ignore[index]
        for comp in comps:
            rec = records[comp.name]
            if rec is None:
                continue
            pid, start = int(rec["pid"]), rec.get("start")
            if comp.name not in live:
                _stop(run, comp, pid, start, timeout)  # stale pid file: clean up
                continue
            killed = _stop(run, comp, pid, start, timeout, signalled=True)
            out(f"{comp.name}: stopped (pid {pid}){' after SIGKILL' if killed else ''}\n")
            stopped += 1
        from kubesvc.dataplane.kubelet import tracking  # containers a killed kubelet left running

        orphans = tracking.sweep(run.path / "pods", timeout)
        if orphans:
            out(f"pods: stopped {len(orphans)} container process(es) a killed kubelet left running\n")
            stopped += 1
        if not stopped:
            out(f"kubesvc is not running for {run.store}\n")
        from kubesvc.dataplane import nodes

        gone = nodes.teardown(run.store) if os.geteuid() == 0 else []
        if gone:
            out(f"nodes: removed {len(gone)} network namespace(s): {', '.join(gone)}\n")
            stopped += 1
        left = [f for f in (*(run.pid_file(c.name) for c in comps), run.path / "store.json", run.path / "notes.json",
                            run.path / "nodes.json")
                if f.exists()]
        if not run.remove(*left):
            sys.stderr.write(f"warning: {run.path} is read-only: stale files left there (harmless): "
                             f"{', '.join(f.name for f in left if f.exists())}\n")
    return 0


def status(store_path: str, *, out: Out) -> int:
    run = RunDir(store_path)
    now = running(run)
    problem = store_problem(run)
    if not now and not problem:
        out(f"kubesvc is not running for {run.store}\n")
        return 3
    notes = _notes(run)
    for comp in enabled(run):
        r = now.get(comp.name)
        if r is None:
            out(f"{comp.name}: not running\n")
            continue
        out(_describe(comp.name, r.pid, r.ready) + _note_lines(notes, comp.name))
        if comp.keeps_status:
            out(_status_details(run.status_file(comp.name)))
        if r.ready.get("healthz") and not comp.netns:  # a node's namespace is out of reach from here
            out(_health_line(r.ready["healthz"]))
    out(f"logs: {run.path}/\n")
    if problem:
        why = "its components stop on their own" if now else "its components stopped"
        out(f"error: {problem}; {why}: run `kubesvc down`, then `kubesvc up`\n")
        return 1
    return 0 if all(c.name in now for c in enabled(run)) else 3


def _health_line(addr: str) -> str:
    """``  health: ok`` or ``  health: failing: store: OperationalError: ...`` (one line per failing task), from
    the component's /healthz."""
    import urllib.error
    import urllib.request

    url = f"http://{addr}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            code, body = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        code, body = e.code, e.read()
    except OSError as e:
        return f"  health: {url} does not answer ({getattr(e, 'reason', None) or e})\n"
    try:
        failing = json.loads(body).get("failing") or []
    except (ValueError, AttributeError):
        failing = []
    if code == 200:
        return "  health: ok\n"
    if not failing:
        return f"  health: not ready ({url} answers {code})\n"
    return "".join(f"  health: failing: {why}\n" for why in failing)


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
        hint = ""
        if "privileged port" in e["error"]:
            hint = f" (net.ipv4.ip_unprivileged_port_start={runtime.unprivileged_port_start()})"
        lines.append(f"  error: {e['service']}: {e['error']}{hint}\n")
    return "".join(lines)

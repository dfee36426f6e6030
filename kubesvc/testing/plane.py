"""``Plane``: a private kubesvc data plane for a test (a store in its own directory, every component on a free
port), with the helpers a test needs. The pytest plugin (``kubesvc.testing.pytest_plugin``) hands one out as the
``kubesvc_cluster`` fixture; it works without pytest too::

    with Plane(tmpdir, components=["apiserver", "proxy", "dns", "kubelet"]) as plane:
        plane.apply({"apiVersion": "v1", "kind": "Service", ...})
        print(plane.service_url("web", 8080))

Rules kept here:
- Starting is ``supervisor.up`` in this process, with every listen address given as port 0 (nothing falls back,
  nothing clashes with another plane, another xdist worker or a `kubesvc up` on the same machine); the addresses are
  read from the components' ready lines. Stopping is ``supervisor.down`` (SIGTERM, then SIGKILL; the kubelet's pods
  with it).
- A plane registered with a ``Watchdog`` is stopped even when this process dies without running its teardown
  (SIGKILL, ``os._exit``, a crash in C): the watchdog process sees its pipe close and runs ``down``.
- Helpers run the CLIs as subprocesses (``kubesvc`` with ``KUBESVC_STORE``; ``kubectl`` with the plane's kubeconfig)
  and raise ``CommandError`` (the command, exit code and stderr) when one fails, unless ``check=False``.
- Nothing here imports pytest.
"""

from __future__ import annotations

import json as jsonlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

COMPONENTS = ("proxy", "dns", "apiserver", "kubelet", "ingress")
MAX_NODES = 8  # kubesvc.dataplane.nodes.MAX_NODES (not imported here: loading the plugin stays cheap)


class PlaneError(Exception):
    """The plane could not start, or a helper could not do what it was asked (with the reason)."""


class CommandError(PlaneError):
    """A kubesvc or kubectl command exited non-zero."""

    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__(f"`{' '.join(result.args)}` exited {result.returncode}: {result.stderr.strip() or result.stdout.strip()}")


@dataclass
class Result:
    """What a command printed: ``stdout``, ``stderr``, ``returncode``; ``json()`` parses stdout."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return jsonlib.loads(self.stdout)


def wants_json(args: Sequence[str]) -> bool:
    """``-o json`` in any of kubectl's spellings."""
    for i, a in enumerate(args):
        if a in ("-o", "--output") and i + 1 < len(args) and args[i + 1] == "json":
            return True
        if a in ("-ojson", "-o=json", "--output=json"):
            return True
    return False


def _split_manifest(manifest: Any) -> str:
    """YAML/JSON text for ``apply -f -`` from a dict, a list of dicts, a path or text."""
    if isinstance(manifest, dict):
        return jsonlib.dumps(manifest)
    if isinstance(manifest, (list, tuple)):
        return jsonlib.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifest)})
    if isinstance(manifest, os.PathLike):
        return Path(manifest).read_text()
    if isinstance(manifest, str):
        if "\n" not in manifest and ":" not in manifest:  # no YAML mapping can lack both: a path
            try:
                return Path(manifest).read_text()
            except OSError as e:
                raise PlaneError(f"apply: cannot read {manifest}: {e.strerror or e}") from None
        return manifest
    raise PlaneError(f"apply: want a dict, a list of dicts, a path or YAML text, not {type(manifest).__name__}")


@dataclass
class Plane:
    """A kubesvc data plane on a private store in ``directory``; ``start()``/``stop()`` or ``with``."""

    directory: Path
    components: Sequence[str] = COMPONENTS
    timeout: float = 20.0
    watchdog: Any = None  # a Watchdog, or None
    nodes: int = 1  # more than 1: `up --nodes N` (root, iproute2): a proxy and a kubelet per node, each in a netns
    ready: dict[str, dict[str, str]] = field(default_factory=dict)  # ready-line fields by component
    pids: dict[str, int] = field(default_factory=dict)  # component -> pid, as started
    started_in: float = 0.0  # seconds `start` took
    _forwards: list[Forward] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        unknown = [c for c in self.components if c not in COMPONENTS]
        if unknown or not self.components:
            raise PlaneError(f"unknown component {', '.join(unknown) or '(none)'}; choose from {','.join(COMPONENTS)}")
        self.components = [c for c in COMPONENTS if c in self.components]

    # ------------------------------------------------------------------------------------------ life

    @property
    def store(self) -> str:
        return str(self.directory / "store.db")

    @property
    def run_dir(self) -> Path:
        return Path(self.store + ".d")

    def start(self) -> Plane:
        from kubesvc.dataplane import supervisor
        from kubesvc.store.db import Store

        t0 = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        Store.open(self.store).close()  # the schema, before the components race to make it
        flags: dict[str, Any] = {
            "components": list(self.components),
            "healthz_bind_address": "127.0.0.1:0",
            "metrics_bind_address": "127.0.0.1:0",
            # a port picked here, not 0: `up` hands the DNS address to the kubelet too (--cluster-dns), which wants
            # the real one; the window between this pick and the DNS server's bind is a few milliseconds
            "dns_listen": f"127.0.0.1:{_free_udp_tcp_port()}",
            "apiserver_address": "127.0.0.1:0",
            "ingress_http_address": "127.0.0.1:0",
            "ingress_https_address": "127.0.0.1:0",
            "cwd": "/",  # not the test's cwd: pods without workingDir start here, as in most images
            "nodes": self.nodes,
        }
        for listen in supervisor.LISTENS:  # any other listener a component has (or gains): a free port too
            if listen.component in self.components:
                flags.setdefault(listen.key, "127.0.0.1:0")
        if self.nodes > 1:
            from kubesvc.dataplane import nodes
            from kubesvc.errors import ClientError

            try:
                nodes.check(self.nodes)
            except ClientError as e:
                raise PlaneError(str(e)) from None
        if self.watchdog is not None:
            self.watchdog.watch(self.store)  # before anything runs: a crash from here on is cleaned up
        said: list[str] = []
        try:
            code = supervisor.up(self.store, flags, foreground=False, timeout=self.timeout, out=said.append)
        except BaseException:
            self.stop()
            raise
        if code:
            tails = "\n".join(f"--- {c}.log:\n{self._log_tail(c)}" for c in self.components)
            self.stop()
            raise PlaneError(f"kubesvc could not start {','.join(self.components)} on {self.store}:\n{''.join(said)}{tails}")
        for name, r in supervisor.running(supervisor.RunDir(self.store)).items():
            self.ready[name] = r.ready
            self.pids[name] = r.pid
        self.started_in = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop every component (and the pods the kubelet runs) and every port-forward; idempotent."""
        from kubesvc.dataplane import supervisor

        for fwd in self._forwards:
            fwd.close()
        self._forwards.clear()
        if self.run_dir.exists():
            supervisor.down(self.store, timeout=10, out=lambda _s: None)
        if self.watchdog is not None:
            self.watchdog.unwatch(self.store)

    def release(self) -> None:
        """Leave the plane running past this process (``--kubesvc-keep``): the watchdog forgets it."""
        if self.watchdog is not None:
            self.watchdog.unwatch(self.store)

    def __enter__(self) -> Plane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _log_tail(self, name: str, lines: int = 10) -> str:
        try:
            return "\n".join((self.run_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def processes(self) -> list[int]:
        """Every live process of this plane now: the components, their descendants and the kubelet's containers."""
        from kubesvc.dataplane import supervisor
        from kubesvc.dataplane.kubelet import tracking

        roots = {r.pid for r in supervisor.running(supervisor.RunDir(self.store)).values()}
        roots |= {int(rec["pid"]) for _, rec in tracking.records(self.run_dir / "pods") if tracking.live(rec)}
        roots |= {f.proc.pid for f in self._forwards if f.proc.poll() is None}
        return sorted(roots | descendants(roots))

    # ------------------------------------------------------------------------------------------ where

    @property
    def kubeconfig(self) -> str:
        """A kubeconfig (mode 0600) with the API server's address and the store's client certificate."""
        if "apiserver" not in self.ready:
            raise PlaneError("this plane runs no apiserver: ask for it (components=[..., 'apiserver'])")
        return self.ready["apiserver"]["kubeconfig"]

    @property
    def apiserver_url(self) -> str:
        return self._field("apiserver", "url")

    @property
    def dns_address(self) -> tuple[str, int]:
        """(host, port) of the cluster DNS (UDP and TCP)."""
        host, _, port = self._field("dns", "udp").rpartition(":")
        return host, int(port)

    @property
    def ingress_url(self) -> str:
        return f"http://{self._field('ingress', 'http')}"

    @property
    def ingress_https_url(self) -> str:
        return f"https://{self._field('ingress', 'https')}"

    def _field(self, component: str, key: str) -> str:
        if component not in self.ready:
            raise PlaneError(f"this plane runs no {component}: ask for it (components=[..., {component!r}])")
        return self.ready[component][key]

    # ------------------------------------------------------------------------------------------ commands

    def _run(self, argv: list[str], env: dict[str, str], check: bool, input: str | None, timeout: float) -> Result:
        try:
            p = subprocess.run(argv, input=input, capture_output=True, text=True, env=env, timeout=timeout,
                               stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise PlaneError(f"`{' '.join(argv)}` did not finish in {timeout:g}s") from e
        result = Result(list(argv), p.returncode, p.stdout, p.stderr)
        if check and p.returncode:
            raise CommandError(result)
        return result

    def kubesvc(self, *args: str, check: bool = True, input: str | None = None, json: bool = False, timeout: float = 60) -> Any:
        """``kubesvc ARGS`` on this plane's store. Parsed JSON when ``-o json`` is among the args (or ``json=True``
        adds it), else a ``Result``. Non-zero exit: ``CommandError`` unless ``check=False``."""
        argv = [str(a) for a in args] + (["-o", "json"] if json and not wants_json(args) else [])
        env = dict(os.environ, KUBESVC_STORE=self.store)
        result = self._run([sys.executable, "-m", "kubesvc", *argv], env, check, input, timeout)
        return result.json() if wants_json(argv) and result.returncode == 0 else result

    def kubectl(self, *args: str, check: bool = True, input: str | None = None, json: bool = False, timeout: float = 60) -> Any:
        """``kubectl --kubeconfig <plane's> ARGS`` against the plane's API server (``$KUBECTL`` or ``kubectl`` on
        PATH). Returns as ``kubesvc``. Without a kubectl binary: ``PlaneError``."""
        binary = os.environ.get("KUBECTL") or shutil.which("kubectl")
        if not binary:
            raise PlaneError("kubectl is not installed (set $KUBECTL or put it on PATH); plane.kubesvc(...) takes the same arguments")
        argv = [str(a) for a in args] + (["-o", "json"] if json and not wants_json(args) else [])
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        result = self._run([binary, "--kubeconfig", self.kubeconfig, *argv], env, check, input, timeout)
        return result.json() if wants_json(argv) and result.returncode == 0 else result

    def apply(self, manifest: Any, *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Apply a dict, a list of dicts, a path or YAML text (``kubesvc apply -f -``); returns the objects as
        stored."""
        ns = ["-n", namespace] if namespace else []
        text = self._run([sys.executable, "-m", "kubesvc", "apply", "-f", "-", *ns, "-o", "json"],
                         dict(os.environ, KUBESVC_STORE=self.store), True, _split_manifest(manifest), 60).stdout
        out: list[dict[str, Any]] = []
        for got in _json_documents(text):  # one document per object, as kubectl prints them
            out += list(got["items"]) if got.get("kind") == "List" else [got]
        return out

    def get(self, target: str, *, namespace: str = "default") -> dict[str, Any]:
        """One object (``kind/name``) as stored."""
        return dict(self.kubesvc("get", target, "-n", namespace, "-o", "json"))

    def logs(self, pod: str, *, container: str | None = None, namespace: str = "default") -> str:
        """What the pod's container printed (stdout and stderr)."""
        c = ["-c", container] if container else []
        return str(self.kubesvc("logs", pod, "-n", namespace, *c).stdout)

    def wait_for(self, target: str, condition: str | None = None, *, namespace: str = "default", selector: str | None = None,
                 timeout: float = 60) -> None:
        """Wait for ``target`` (``deployment/web``, ``pod/x``, ``pods`` with ``selector=``) to meet ``condition``:
        a condition type (``"Available"``, ``"Ready"``), ``"delete"``, ``"create"`` or ``"jsonpath=..."`` as
        `kubesvc wait --for` takes it. ``endpoints/NAME`` (or ``service/NAME``) with no condition waits until the
        Service has a ready endpoint address. Raises ``PlaneError`` after ``timeout`` seconds."""
        kind, _, name = target.partition("/")
        if condition is None and kind in ("endpoints", "ep", "service", "svc") and name:
            self._wait_endpoints(name, namespace, timeout)
            return
        if condition is None:
            raise PlaneError(f"wait_for({target!r}): give a condition (e.g. 'Ready', 'Available', 'delete')")
        how = condition if condition in ("delete", "create") or condition.startswith(("jsonpath=", "condition=")) else f"condition={condition}"
        sel = ["-l", selector] if selector else []
        r = self.kubesvc("wait", target, f"--for={how}", "-n", namespace, *sel, f"--timeout={timeout:g}s",
                         check=False, timeout=timeout + 30)
        if r.returncode:
            raise PlaneError(f"wait_for({target!r}, {condition!r}): {r.stderr.strip() or r.stdout.strip()}")

    def _wait_endpoints(self, name: str, namespace: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            r = self.kubesvc("get", "endpoints", name, "-n", namespace, "-o", "json", check=False)
            if isinstance(r, dict) and any(s.get("addresses") for s in r.get("subsets") or []):
                return
            if time.monotonic() > deadline:
                raise PlaneError(f"endpoints {namespace}/{name} have no ready address after {timeout:g}s")
            time.sleep(0.1)

    # ------------------------------------------------------------------------------------------ reaching services

    def service_url(self, name: str, port: int | str | None = None, *, namespace: str = "default", scheme: str = "http",
                    timeout: float = 30) -> str:
        """A URL that reaches the Service port from this machine, once the proxy serves it: the cluster IP and port
        when the proxy could bind it; else (a port below net.ipv4.ip_unprivileged_port_start, without root) its
        NodePort; else a relay on 127.0.0.1 to one endpoint, kept until the plane stops."""
        if "proxy" not in self.ready:
            raise PlaneError("service_url needs the proxy: ask for it (components=[..., 'proxy'])")
        svc = self.get(f"service/{name}", namespace=namespace)
        sp = _pick_port(svc, port)
        spn = f"{namespace}/{name}:{sp['name']}" if sp.get("name") else f"{namespace}/{name}"
        proto = sp.get("protocol", "TCP")
        cluster = f"{(svc.get('spec') or {}).get('clusterIP')}:{sp['port']}/{proto} (cluster)"
        node = f":{sp.get('nodePort')}/{proto} (nodePort)" if sp.get("nodePort") else None
        deadline = time.monotonic() + timeout
        while True:
            served, failed = self._served(spn)
            if cluster in served:
                return f"{scheme}://{cluster.split('/')[0]}"
            node_addr = next((a for a in served if node and a.endswith(node) and not a.startswith("0.0.0.0")), None)
            if failed and node_addr:  # the cluster port could not be bound (e.g. below 1024 without root)
                return f"{scheme}://{node_addr.split('/')[0]}"
            if failed and (not node or time.monotonic() > deadline):
                fwd = self._forward(f"service/{name}", sp["port"], namespace, 0, timeout)  # lives until the plane stops
                return f"{scheme}://127.0.0.1:{fwd.port}"
            if time.monotonic() > deadline:
                raise PlaneError(f"the proxy does not serve {spn} after {timeout:g}s (is the proxy among the components?)")
            time.sleep(0.05)

    def _served(self, spn: str) -> tuple[list[str], bool]:
        """What the proxy's status file says of a Service port: the addresses it listens on, and whether it reported
        an error for it (a listener it could not bind)."""
        try:
            status = jsonlib.loads((self.run_dir / "proxy.status.json").read_text())
        except (OSError, ValueError):
            return [], False
        served = [a for e in status.get("servicePorts", []) if e.get("service") == spn for a in e.get("addresses") or []]
        return served, any(e.get("service") == spn for e in status.get("errors", []))

    def resolve(self, name: str, rdtype: str = "A", *, namespace: str = "default") -> list[str]:
        """Ask the plane's DNS (``dnspython``), with a pod's search path (``<ns>.svc.<zone>``, ``svc.<zone>``,
        ``<zone>``): ``resolve("web")`` is ``web.default.svc.cluster.local``. Returns the answers as text (``[]``
        for NXDOMAIN or no answer)."""
        import dns.exception
        import dns.name
        import dns.resolver

        host, port = self.dns_address
        zone = self.ready["dns"].get("zone", "cluster.local")
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [host]
        r.port = port
        r.search = [dns.name.from_text(s) for s in (f"{namespace}.svc.{zone}", f"svc.{zone}", zone)]
        r.ndots = 5
        try:
            answer = r.resolve(name, rdtype, search=True, lifetime=5)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as e:
            raise PlaneError(f"resolve({name!r}, {rdtype!r}) at {host}:{port}: {e}") from None
        return [rr.to_text() for rr in answer]

    @contextmanager
    def port_forward(self, target: str, port: int | str, *, local_port: int = 0, namespace: str = "default",
                     timeout: float = 30) -> Iterator[Forward]:
        """``with plane.port_forward("deployment/web", 8080) as fwd: get(fwd.url)``: `kubesvc port-forward TARGET
        LOCAL:PORT` (``pod/x``, ``svc/x`` with a Service port, ``deployment/x``...; ``local_port`` 0 = a free one) while
        the block runs; ``fwd.port``, ``fwd.address``, ``fwd.url``."""
        fwd = self._forward(target, port, namespace, local_port, timeout)
        try:
            yield fwd
        finally:
            fwd.close()
            if fwd in self._forwards:
                self._forwards.remove(fwd)

    def _forward(self, target: str, port: int | str, namespace: str, local_port: int, timeout: float) -> Forward:
        argv = [sys.executable, "-m", "kubesvc", "port-forward", target, f"{local_port}:{port}", "-n", namespace]
        fwd = Forward(argv, dict(os.environ, KUBESVC_STORE=self.store), timeout)
        self._forwards.append(fwd)
        return fwd


def _free_udp_tcp_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (the DNS server binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise PlaneError("no port is free on 127.0.0.1 for both UDP and TCP")


def _json_documents(text: str) -> Iterator[Any]:
    decoder = jsonlib.JSONDecoder()
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return
        doc, i = decoder.raw_decode(text, i)
        yield doc


def _pick_port(svc: dict[str, Any], port: int | str | None) -> dict[str, Any]:
    ports = (svc.get("spec") or {}).get("ports") or []
    name = svc["metadata"]["name"]
    if port is None:
        if len(ports) != 1:
            raise PlaneError(f"service {name} has {len(ports)} ports: say which ({', '.join(str(p['port']) for p in ports)})")
        return dict(ports[0])
    for p in ports:
        if p.get("port") == port or p.get("name") == port or (isinstance(port, str) and port.isdigit() and p.get("port") == int(port)):
            return dict(p)
    raise PlaneError(f"service {name} has no port {port!r} (it has {', '.join(str(p['port']) for p in ports) or 'none'})")


def descendants(roots: set[int]) -> set[int]:
    """Every live descendant of ``roots`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


class Forward:
    """A running `kubesvc port-forward`: ``port`` (local), ``address``, ``url``; ``close()`` stops it. It gets SIGTERM
    when the process that started it dies (PR_SET_PDEATHSIG), so it never outlives the test run."""

    def __init__(self, argv: list[str], env: dict[str, str], timeout: float) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, text=True, preexec_fn=_die_with_parent)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._ready = threading.Event()
        self.port = 0
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True).start()
        if not self._ready.wait(timeout) or not self.port:
            self.close()
            raise PlaneError(f"`kubesvc {' '.join(argv[3:])}`: {' '.join(self.errors).strip() or f'not forwarding after {timeout:g}s'}")

    def _read(self, stream: IO[str], into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            if not self.port and line.startswith("Forwarding from "):
                self.port = int(line.split()[2].rpartition(":")[2])
                self._ready.set()
        self._ready.set()  # it ended

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Forward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass

"""The workloads test bed: a real store, the real registry, a real `kubesvc kubelet` subprocess.

Every process a test's pods start is accounted for: the kubelet is stopped (SIGTERM, which stops
its pods), then every container process group the tests saw (containerID ``process://<pid>``) that
still runs with this bed's store in its environment is killed, so nothing outlives the test.

Run as root, the kubelet runs pods as ``nobody``: they run ``POD_PYTHON`` (the system Python, which
``nobody`` may execute, unlike root's ``~/.pyenv``) and share files with the test through ``bed.share``
(owned by the pod user), not through pytest's private ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.support.procs import ROOT, Proc, wait_for

SERVER = str(ROOT / "examples" / "app" / "server.py")
MARK = "KUBESVC_TEST_BED"
ROOT_USER = os.geteuid() == 0
NOBODY = 65534
_SYSTEM_PYTHON = "/usr/bin/python3"
# The interpreter pods run; without one nobody can execute, a root bed runs its pods as root.
POD_PYTHON = _SYSTEM_PYTHON if ROOT_USER and os.access(_SYSTEM_PYTHON, os.X_OK) else sys.executable
BED_ARGS = ["--run-as-root"] if ROOT_USER and POD_PYTHON == sys.executable else []
POD_UID = NOBODY if ROOT_USER and not BED_ARGS else os.geteuid()


class Bed:
    def __init__(self, tmp_path: Path, spawn: Callable[..., Proc]) -> None:
        self.tmp = tmp_path
        self.store_path = str(tmp_path / "store.db")
        self.store = Store(self.store_path)
        self.reg = Registry(self.store)
        self.spawn = spawn
        self.kubelet: Proc | None = None
        self.pids: set[int] = set()
        self.share = Path(tempfile.mkdtemp(prefix="kubesvc-bed-"))
        if ROOT_USER:
            os.chown(self.share, POD_UID, POD_UID)
            searchable(tmp_path)

    # -- processes
    def start_kubelet(self, *args: str) -> Proc:
        self.kubelet = self.spawn(self.store_path, "kubelet", "--restart-backoff", "0.2",
                                  "--max-restart-backoff", "1", "--workdir", str(ROOT), *BED_ARGS, *args)
        self.kubelet.wait_line("kubesvc kubelet ready", timeout=20)
        return self.kubelet

    def kill_kubelet(self) -> None:
        """``kill -9`` of the kubelet: its pods are left running, as after a crash."""
        assert self.kubelet is not None
        self.note_pids()
        self.kubelet.p.kill()
        self.kubelet.p.wait(10)

    def copies(self, pod_name: str) -> list[int]:
        """Pids of the live processes of this bed's pod ``pod_name`` (by their environment)."""
        want = (f"{MARK}={self.store_path}".encode(), f"POD_NAME={pod_name}".encode())
        out = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and alive(int(entry.name)):
                try:
                    env = Path(f"/proc/{entry.name}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if all(w in env for w in want):
                    out.append(int(entry.name))
        self.pids.update(out)
        return sorted(out)

    def stop(self) -> None:
        try:
            self.note_pids()
        finally:
            if self.kubelet is not None:
                self.kubelet.stop(timeout=15)
            for pid in self.pids:
                if _ours(pid, self.store_path):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            shutil.rmtree(self.share, ignore_errors=True)

    def note_pids(self) -> None:
        for pod in self.store.list("Pod"):
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                cid = cs.get("containerID") or ""
                if cid.startswith("process://"):
                    self.pids.add(int(cid[len("process://"):]))

    # -- objects
    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.reg.create(self.marked(obj)).object

    def marked(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Every container gets ``KUBESVC_TEST_BED=<store>`` so stray processes can be recognised."""
        spec = obj.get("spec") or {}
        pod_spec = spec.get("template", {}).get("spec") if obj["kind"] != "Pod" else spec
        for c in (pod_spec or {}).get("containers") or []:
            c.setdefault("env", []).append({"name": MARK, "value": self.store_path})
        return obj

    def pods(self, **labels: str) -> list[dict[str, Any]]:
        out = [p for p in self.store.list("Pod", "default")
               if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]
        self.note_pids_of(out)
        return out

    def note_pids_of(self, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                cid = cs.get("containerID") or ""
                if cid.startswith("process://"):
                    self.pids.add(int(cid[len("process://"):]))

    def pod(self, name: str) -> dict[str, Any] | None:
        p = self.store.get("Pod", "default", name)
        if p is not None:
            self.note_pids_of([p])
        return p

    def endpoints(self, name: str) -> tuple[list[str], list[str]]:
        """(ready IPs, not-ready IPs) of the Service's Endpoints."""
        ep = self.store.get("Endpoints", "default", name) or {}
        ready, unready = [], []
        for s in ep.get("subsets") or []:
            ready += [a["ip"] for a in s.get("addresses") or []]
            unready += [a["ip"] for a in s.get("notReadyAddresses") or []]
        return sorted(ready), sorted(unready)

    def ks(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env.pop("KUBESVC_DEBUG", None)
        return subprocess.run([sys.executable, "-m", "kubesvc", "--store", self.store_path, *args],
                              capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=timeout,
                              check=False)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """As ``ks``, in-process (tests/support/clirunner.py: a ``python -m kubesvc`` costs ~0.2 s of CPU). Not for
        what must be a process of its own: ``up`` (its components outlive the call), a command under a signal."""
        from tests.support.clirunner import CliRunner, shared_app

        argv = ["--store", self.store_path, *args]
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            r = CliRunner().invoke(shared_app(), argv, env={"KUBESVC_DEBUG": None}, catch_exceptions=False)
        finally:
            os.chdir(cwd)
        return subprocess.CompletedProcess(["kubesvc", *argv], r.exit_code, r.stdout, r.stderr)

    def wait(self, cond: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
        return wait_for(cond, timeout=timeout, interval=0.05, what=what)


def searchable(path: Path) -> None:
    """Let the pod user reach the store's directory (pods' volumes and runtime files live under it): o+x on
    it and on pytest's private temp directories above it (search only, not listing)."""
    for p in [path, *path.parents]:
        if str(p) in ("/", tempfile.gettempdir()):
            break
        os.chmod(p, os.stat(p).st_mode | 0o011)


def _ours(pid: int, store_path: str) -> bool:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{MARK}={store_path}".encode() in env


def container_pid(pod: dict[str, Any], name: str | None = None) -> int:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if name in (None, cs["name"]) and (cs.get("containerID") or "").startswith("process://"):
            return int(cs["containerID"][len("process://"):])
    return 0


def running_ready(pod: dict[str, Any] | None) -> bool:
    if pod is None:
        return False
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def server_container(name: str = "server", port: int = 8080, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": "example/app:1", "command": [POD_PYTHON, SERVER],
                         "env": [{"name": "PORT", "value": str(port)}],
                         "ports": [{"name": "http", "containerPort": port}]}
    c.update(extra)
    return c


"""One Pod on this node: its containers as process groups, their probes, restarts and status.

Rules kept here (the kubelet's pod worker, pkg/kubelet/kuberuntime):
- Each container runs as its own process group (new session); when its main process exits, what
  is left of the group is killed, as a container's processes die with it.
- Restart per ``restartPolicy`` with back-off (first restart at once, then base doubling up to cap;
  reset after the container ran 2*cap); while waiting the state is ``CrashLoopBackOff``.
- Stop: SIGTERM to every container's group, ``terminationGracePeriodSeconds`` (a probe's own value for
  liveness kills), then SIGKILL. Liveness or startup failure kills the container, then the restart
  policy decides. Readiness only moves the Ready condition.
- Every state change marks the pod dirty; one writer coalesces them into status writes.
- Events: Started, Killing, Unhealthy, BackOff, Failed (container config or start errors).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kubesvc.dataplane.kubelet import probes, spec
from kubesvc.dataplane.kubelet.status import ContainerView

if TYPE_CHECKING:
    from kubesvc.dataplane.kubelet.node import Node

Obj = dict[str, Any]
log = logging.getLogger("kubesvc.kubelet")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Container:
    spec: Obj
    view: ContainerView
    proc: asyncio.subprocess.Process | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."
    killing: str = ""  # why the agent is killing it (liveness, startup), for the event trail
    probe_tasks: list[asyncio.Task[None]] = field(default_factory=list)


class PodWorker:
    def __init__(self, node: Node, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        meta = pod["metadata"]
        self.namespace, self.name, self.uid = meta.get("namespace", "default"), meta["name"], meta.get("uid", "")
        self.start_time = now_rfc3339()
        self.pod_ip = (pod.get("status") or {}).get("podIP", "")
        self.stopping = False
        self.node_stopped = False
        self.stop_event = asyncio.Event()
        self.dirty = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        prev = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        self.containers: list[Container] = []
        for c in (pod.get("spec") or {}).get("containers") or []:
            view = ContainerView(name=c.get("name", ""), image=c.get("image", ""))
            view.restart_count = int((prev.get(view.name) or {}).get("restartCount") or 0)
            self.containers.append(Container(c, view))

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.pod_ip = await self.node.prepare_network(self)
        self.mark()
        self.tasks.append(asyncio.create_task(self._status_writer(), name=f"status {self.name}"))
        for c in self.containers:
            self.tasks.append(asyncio.create_task(self._container_loop(c), name=f"{self.name}/{c.view.name}"))

    async def stop(self, reason: str = "deleted") -> None:
        """Graceful stop of every container, then cancel the loops. ``reason``: deleted | node-stopped."""
        if self.stopping:
            return
        self.stopping = True
        self.stop_event.set()
        grace = float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30) or 0)
        for c in self.containers:
            for t in c.probe_tasks:
                t.cancel()
        running = [c for c in self.containers if c.proc is not None and c.proc.returncode is None]
        for c in running:
            self.node.event(self.pod, "Normal", "Killing", f"Stopping container {c.view.name}")
        await asyncio.gather(*(self._terminate(c, grace) for c in running))
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if reason == "node-stopped":
            self.node_stopped = True
            for c in self.containers:
                c.view.ready = False
            self.node.write_status(self)
        await self.node.release_network(self)

    def mark(self) -> None:
        self.dirty.set()

    async def _status_writer(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            self.node.write_status(self)
            await asyncio.sleep(0.02)  # coalesce bursts of changes into one write

    # ------------------------------------------------------------------ one container

    async def _container_loop(self, c: Container) -> None:
        policy = (self.pod.get("spec") or {}).get("restartPolicy", "Always")
        crashes = 0
        v = c.view
        while not self.stopping:
            try:
                c.env = self.node.container_env(self, c.spec)
                argv = spec.container_argv(c.spec, c.env)
                c.cwd = spec.working_dir(c.spec, self.node.opts.default_workdir)
            except spec.ConfigError as e:
                v.state, v.reason, v.message = "waiting", "CreateContainerConfigError", str(e)
                self.node.event(self.pod, "Warning", "Failed", f"Error: {e}")
                self.mark()
                if await self._sleep(max(1.0, self.node.opts.backoff_base)):
                    return
                continue
            path = self.node.log_path(self, v.name, v.restart_count)
            path.parent.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            try:
                with open(path, "ab") as out:  # noqa: ASYNC230 (a local file: opening it does not block)
                    c.proc = await asyncio.create_subprocess_exec(
                        *self.node.wrap_argv(self, argv), env=c.env, cwd=c.cwd, stdin=asyncio.subprocess.DEVNULL,
                        stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
            except OSError as e:
                c.proc = None
                v.state, v.reason, v.message, v.exit_code = "terminated", "StartError", str(e), 128
                v.started_at = v.finished_at = now_rfc3339()
                self.node.event(self.pod, "Warning", "Failed", f"Error: failed to start container \"{v.name}\": {e}")
            else:
                v.state, v.reason, v.message, v.pid = "running", "", "", c.proc.pid
                v.started_at, v.ever_ran = now_rfc3339(), True
                v.started = "startupProbe" not in c.spec
                v.ready = v.started and "readinessProbe" not in c.spec
                self.node.event(self.pod, "Normal", "Started", f"Started container {v.name}")
                self.mark()
                self._start_probes(c)
                rc = await c.proc.wait()
                killpg(c.proc.pid, signal.SIGKILL)  # the rest of the container's process group
                for t in c.probe_tasks:
                    t.cancel()
                c.probe_tasks.clear()
                v.ready = False
                v.state, v.finished_at = "terminated", now_rfc3339()
                v.exit_code, v.signal = (128 - rc, -rc) if rc < 0 else (rc, 0)
                v.reason, v.message = ("Completed" if rc == 0 else "Error"), ""
            self.mark()
            if self.stopping or not spec.should_restart(policy, v.exit_code):
                return
            if time.monotonic() - started > 2 * self.node.opts.backoff_cap:
                crashes = 0
            crashes += 1
            v.last_terminated = v.terminated_dict()
            v.restart_count += 1
            delay = spec.backoff_delay(crashes, self.node.opts.backoff_base, self.node.opts.backoff_cap)
            if delay > 0:
                v.state, v.reason = "waiting", "CrashLoopBackOff"
                v.message = f"back-off {delay:g}s restarting failed container={v.name} pod={self.name}_{self.namespace}({self.uid})"
                self.node.event(self.pod, "Warning", "BackOff", "Back-off restarting failed container "
                                f"{v.name} in pod {self.name}_{self.namespace}({self.uid})")
                self.mark()
                if await self._sleep(delay):
                    return

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless the pod is stopped first; True when stopping."""
        try:
            await asyncio.wait_for(self.stop_event.wait(), seconds)
        except TimeoutError:
            pass
        return self.stopping

    async def _terminate(self, c: Container, grace: float) -> None:
        proc = c.proc
        if proc is None or proc.returncode is not None:
            return
        killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    # ------------------------------------------------------------------ probes

    def _start_probes(self, c: Container) -> None:
        for kind in ("startup", "liveness", "readiness"):
            probe = c.spec.get(f"{kind}Probe")
            if probe:
                c.probe_tasks.append(asyncio.create_task(self._probe_loop(c, kind, probe), name=f"{kind} {c.view.name}"))

    async def _probe_loop(self, c: Container, kind: str, probe: Obj) -> None:
        delay, period, _ = probes.timing(probe)
        tally = probes.Tally.for_probe(probe, kind)
        v = c.view
        await asyncio.sleep(delay)
        while kind != "startup" and not v.started:
            await asyncio.sleep(0.1)
        while True:
            ok, msg = await probes.run_probe(probe, c.spec, self.pod_ip, c.env, c.cwd)
            if not ok:
                self.node.event(self.pod, "Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {msg}")
            flipped = tally.record(ok)
            if flipped and kind == "readiness":
                v.ready = tally.result
                self.mark()
            elif kind == "startup" and tally.result and not v.started and tally.successes >= tally.success_threshold:
                v.started = True
                v.ready = "readinessProbe" not in c.spec
                self.mark()
                return
            elif kind == "startup" and not ok and tally.failures >= tally.failure_threshold:
                await self._kill_for_probe(c, probe, f"Container {v.name} failed startup probe, will be restarted")
                return
            elif flipped and kind == "liveness" and not tally.result:
                await self._kill_for_probe(c, probe, f"Container {v.name} failed liveness probe, will be restarted")
                return
            await asyncio.sleep(period)

    async def _kill_for_probe(self, c: Container, probe: Obj, message: str) -> None:
        self.node.event(self.pod, "Normal", "Killing", message)
        grace = probe.get("terminationGracePeriodSeconds")
        if grace is None:
            grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        c.view.ready = False
        self.mark()
        task = asyncio.current_task()
        if task in c.probe_tasks:
            c.probe_tasks.remove(task)  # the container loop cancels the others, not this one
        await self._terminate(c, float(grace or 0))

"""One Pod on this node: its containers as process groups, their probes, restarts and status.

Rules kept here (the kubelet's pod worker, pkg/kubelet/kuberuntime):
- Each container runs as its own process group (new session); when its main process exits, what
  is left of the group is killed, as a container's processes die with it.
- Restart per ``restartPolicy`` with back-off (first restart at once, then base doubling up to cap;
  reset after the container ran 2*cap); while waiting the state is ``CrashLoopBackOff``.
- Stop: SIGTERM to every container's group, ``terminationGracePeriodSeconds`` (a probe's own value for
  liveness kills), then SIGKILL. A pod deleted gracefully (``deletionTimestamp``) gets its
  ``deletionGracePeriodSeconds``: each container's ``lifecycle.preStop`` hook first (``hooks``), SIGTERM
  with the rest (at least 2 s), then SIGKILL. Liveness or startup failure kills the container, then the restart
  policy decides. Readiness only moves the Ready condition.
- Every state change marks the pod dirty; one writer coalesces them into status writes.
- Events: Started, Killing, Unhealthy, BackOff, Failed (container config or start errors, and images
  kubesvc cannot run: the container waits in ``ImageNotRunnable`` saying why and what to do, never Ready,
  and is tried again after each back-off base period).
- Stdin: a container with ``stdin: true`` reads a FIFO that ``pods/attach`` writes (``execs.StdinPipe``:
  never at end of input, or with ``stdinOnce`` until the first attach session's stdin ends); others read
  /dev/null.
- TTY: a container with ``tty: true`` runs on a pseudo-terminal the kubelet keeps the master end of
  (``execs.Tty``): its output goes through it into the log, attach input and resizes come through its socket.
- Who: each container runs as the user ``identity.resolve`` picks (never root unless told to); its exec
  probes run as that user too.
- Tracking: each running container has a record (``tracking``); signals are sent only after checking
  the record's start time. A worker started by a restarted kubelet adopts the containers whose records
  still match a live process instead of starting them again (no second copies).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesvc.api import images as known
from kubesvc.dataplane.kubelet import execs, hooks, identity, images, probes, spec, tracking, volumes
from kubesvc.dataplane.kubelet.status import ContainerView

if TYPE_CHECKING:
    from kubesvc.dataplane.kubelet.node import Node

Obj = dict[str, Any]
log = logging.getLogger("kubesvc.kubelet")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    spec: Obj
    view: ContainerView
    proc: asyncio.subprocess.Process | tracking.Adopted | None = None
    start: str | None = None  # the process's start time (/proc/PID/stat), checked before any signal
    identity: identity.Identity | None = None
    wrap: list[str] = field(default_factory=list)  # argv prefix (netns, change of user)
    user_kw: dict[str, Any] = field(default_factory=dict)  # Popen's user/group/extra_groups
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."
    killing: str = ""  # why the agent is killing it (liveness, startup), for the event trail
    stdin: execs.StdinPipe | None = None  # ``stdin: true``: the FIFO attach writes (execs)
    tty: execs.Tty | None = None  # ``tty: true``: the terminal the kubelet keeps the master end of (execs)
    probe_tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close_io(self) -> None:
        """Let go of the stdin FIFO and the terminal the kubelet holds for this container, if any."""
        if self.stdin is not None:
            await self.stdin.close()
            self.stdin = None
        if self.tty is not None:
            await self.tty.close()
            self.tty = None


class PodWorker:
    def __init__(self, node: Node, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        meta = pod["metadata"]
        self.namespace, self.name, self.uid = meta.get("namespace", "default"), meta["name"], meta.get("uid", "")
        self.start_time = (pod.get("status") or {}).get("startTime") or now_rfc3339()
        self.pod_ip = (pod.get("status") or {}).get("podIP", "")
        self.stopping = False
        self.terminating = False  # graceful deletion under way (node._terminate)
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

    def adopt(self) -> int:
        """Take over the containers a previous kubelet started that still run. Returns how many."""
        prev = {c.get("name"): c for c in (self.pod.get("status") or {}).get("containerStatuses") or []}
        adopted = 0
        for c in self.containers:
            rec = tracking.read(self.node.record_path(self, c.view.name))
            if not tracking.live(rec):
                continue
            assert rec is not None
            v = c.view
            c.proc, c.start = tracking.Adopted(int(rec["pid"]), str(rec["start"])), str(rec["start"])
            try:
                self._configure(c)
            except (spec.ConfigError, images.NotRunnable, OSError):
                pass
            old = prev.get(v.name) or {}
            v.state, v.reason, v.message, v.pid = "running", "", "", c.proc.pid
            v.restart_count = max(v.restart_count, int(rec.get("restartCount") or 0))
            v.started_at = str(rec.get("startedAt") or now_rfc3339())
            v.ever_ran = True
            v.started = "startupProbe" not in c.spec or bool(old.get("started"))
            v.ready = v.started and ("readinessProbe" not in c.spec or bool(old.get("ready")))
            adopted += 1
        return adopted

    async def start(self) -> None:
        adopted = any(isinstance(c.proc, tracking.Adopted) for c in self.containers)
        self.pod_ip = await self.node.prepare_network(self, adopted=adopted)
        self.mark()
        self.tasks.append(asyncio.create_task(self._status_writer(), name=f"status {self.name}"))
        for c in self.containers:
            self.tasks.append(asyncio.create_task(self._container_loop(c), name=f"{self.name}/{c.view.name}"))

    async def stop(self, reason: str = "deleted", grace: float | None = None) -> None:
        """Graceful stop of every container, then cancel the loops. ``reason``: deleted | node-stopped |
        terminating (graceful deletion: each container's preStop hook first, all within ``grace``; ``hooks``)."""
        if self.stopping:
            return
        self.stopping = True
        self.stop_event.set()
        if grace is None:
            grace = float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30) or 0)
        for c in self.containers:
            for t in c.probe_tasks:
                t.cancel()
        running = [c for c in self.containers if c.proc is not None and c.proc.returncode is None]
        for c in running:
            self.node.event(self.pod, "Normal", "Killing", f"Stopping container {c.view.name}")
        if reason == "terminating":
            await asyncio.gather(*(self._terminate_hooked(c, grace) for c in running))
        else:
            await asyncio.gather(*(self._terminate(c, grace) for c in running))
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for c in running:
            if c.proc is not None:
                tracking.kill_leftovers(c.proc.pid)  # just exited: its group id cannot be someone else's yet
        for c in self.containers:
            tracking.remove(self.node.record_path(self, c.view.name))
            await c.close_io()
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

    def _configure(self, c: Container) -> list[str]:
        """Environment, argv, working directory, volumes and user of the container's next run (ConfigError,
        or images.NotRunnable, if it cannot run)."""
        c.identity = identity.resolve(self.pod, c.spec, run_as_root=self.node.opts.run_as_root)
        c.env = self.node.container_env(self, c.spec)
        if "PATH" in c.env:
            c.env["PATH"] = identity.container_path(c.env["PATH"], c.identity)
        dirs = self.node.pod_volumes(self, c.identity)
        mounts, vol_env = volumes.container_mounts(c.spec, dirs)
        for k, v in vol_env.items():
            c.env.setdefault(k, v)
        if self.node.netns is None and vol_env and not all(identity.can_search(d, c.identity) for d in vol_env.values()):
            raise spec.ConfigError(f"the pod's volumes under {self.node.pod_dir(self)} are not reachable by uid "
                                   f"{c.identity.uid}, the user the container runs as: every parent directory of the "
                                   "store must be searchable by it (chmod o+x), or use --isolation netns")
        if known.family(str(c.spec.get("image") or "")):
            c.env.setdefault("KUBESVC_BIND_ADDRESS", self.node.bind_address(self))
        expanded = dict(c.spec)
        for key in ("command", "args"):
            if c.spec.get(key):
                expanded[key] = [spec.expand(str(a), c.env) for a in c.spec[key]]
        argv = images.plan(expanded, c.env, self.node.image_context(self, c.identity))
        c.cwd = spec.working_dir(c.spec, self.node.opts.default_workdir)
        if not identity.can_search(c.cwd, c.identity):
            raise spec.ConfigError(f'workingDir "{c.cwd}" is not accessible to uid {c.identity.uid}, the user the '
                                   "container runs as (see securityContext.runAsUser and kubesvc kubelet --run-as-root)")
        c.wrap = self.node.wrap_argv(self, c.identity, mounts, low_ports=images.low_ports(c.spec))
        c.user_kw = self.node.user_kwargs(c.identity, wrapped=bool(c.wrap))
        return argv

    async def _container_loop(self, c: Container) -> None:
        policy = (self.pod.get("spec") or {}).get("restartPolicy", "Always")
        crashes = 0
        v = c.view
        record = self.node.record_path(self, v.name)
        adopted = isinstance(c.proc, tracking.Adopted)
        while not self.stopping:
            started = time.monotonic()
            if adopted:
                adopted = False
                self.mark()
                self._start_probes(c)
                await self._watch(c, record)
            else:
                try:
                    argv = self._configure(c)
                except (spec.ConfigError, images.NotRunnable, OSError) as e:
                    # OSError: the pod's files (volumes, runtime files) could not be written
                    reason = images.NOT_RUNNABLE if isinstance(e, images.NotRunnable) else "CreateContainerConfigError"
                    v.state, v.reason, v.message, v.ready = "waiting", reason, str(e), False
                    self.node.event(self.pod, "Warning", "Failed",
                                    f"Error: {reason}: {e}" if reason == images.NOT_RUNNABLE else f"Error: {e}")
                    self.mark()
                    if await self._sleep(max(1.0, self.node.opts.backoff_base)):
                        return
                    continue
                assert c.identity is not None
                path = self.node.log_path(self, v.name, v.restart_count)
                try:
                    if c.spec.get("tty"):
                        c.tty = await execs.Tty.make(path.parent, path, c.identity.uid)
                        kw = {**c.user_kw, "preexec_fn": c.tty.preexec(c.user_kw.get("preexec_fn"))}
                        c.proc = await self.node.spawn(c.wrap + argv, path, env=c.env, cwd=c.cwd, tty=c.tty.child, **kw)
                        c.tty.started()
                    else:
                        if c.spec.get("stdin"):
                            c.stdin = execs.StdinPipe.make(path.parent, bool(c.spec.get("stdinOnce")))
                        c.proc = await self.node.spawn(c.wrap + argv, path, env=c.env, cwd=c.cwd,
                                                       stdin=c.stdin.child if c.stdin else None, **c.user_kw)
                    if c.stdin is not None:
                        c.stdin.started()
                        await c.stdin.hold(c.proc.pid)
                except OSError as e:
                    await c.close_io()
                    c.proc = None
                    hint = ""
                    if isinstance(e, PermissionError) and c.identity.uid != 0:
                        hint = (f" (the container runs as uid {c.identity.uid}; see securityContext.runAsUser "
                                "and kubesvc kubelet --run-as-root)")
                    v.state, v.reason, v.message, v.exit_code = "terminated", "StartError", f"{e}{hint}", 128
                    v.started_at = v.finished_at = now_rfc3339()
                    self.node.event(self.pod, "Warning", "Failed",
                                    f"Error: failed to start container \"{v.name}\": {e}{hint}")
                else:
                    c.start = tracking.start_time(c.proc.pid)
                    v.state, v.reason, v.message, v.pid = "running", "", "", c.proc.pid
                    v.started_at, v.ever_ran = now_rfc3339(), True
                    if c.start is not None:
                        tracking.write(record, {
                            "pid": c.proc.pid, "start": c.start, "boot": tracking.boot_id(), "container": v.name,
                            "restartCount": v.restart_count, "startedAt": v.started_at, "uid": c.identity.uid,
                            "grace": (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30),
                            "exec": execs.record(c.identity, c.env, c.cwd, c.wrap, bool(c.user_kw),
                                                 c.stdin.record() if c.stdin else None,
                                                 c.tty.record() if c.tty else None)})
                    v.started = "startupProbe" not in c.spec
                    v.ready = v.started and "readinessProbe" not in c.spec
                    self.node.event(self.pod, "Normal", "Started", f"Started container {v.name}")
                    self.mark()
                    self._start_probes(c)
                    await self._watch(c, record)
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

    async def _watch(self, c: Container, record: Path) -> None:
        """Wait for the running container to exit, then record how it ended."""
        assert c.proc is not None
        v = c.view
        rc = await c.proc.wait()
        tracking.kill_leftovers(c.proc.pid)  # the rest of the container's process group
        tracking.remove(record)
        await c.close_io()
        for t in c.probe_tasks:
            t.cancel()
        c.probe_tasks.clear()
        v.ready = False
        v.state, v.finished_at = "terminated", now_rfc3339()
        v.exit_code, v.signal = (128 - rc, -rc) if rc < 0 else (rc, 0)
        v.reason, v.message = ("Completed" if rc == 0 else "Error"), ""
        if isinstance(c.proc, tracking.Adopted) and not c.proc.status_known:
            v.reason = "ContainerStatusUnknown"
            v.message = ("The container exited while a previous kubelet ran it; its exit status could not be read")

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless the pod is stopped first; True when stopping."""
        try:
            await asyncio.wait_for(self.stop_event.wait(), seconds)
        except TimeoutError:
            pass
        return self.stopping

    async def _terminate_hooked(self, c: Container, grace: float) -> None:
        """preStop (within ``grace``), then SIGTERM with what is left of it (at least 2 s), then SIGKILL."""
        hook = (c.spec.get("lifecycle") or {}).get("preStop")
        began = time.monotonic()
        if hook and grace > 0:
            who = f'for Container "{c.view.name}" in Pod "{self.name}_{self.namespace}({self.uid})"'
            failed = await hooks.pre_stop(hook, c.spec, self.pod_ip, c.env, c.cwd, c.wrap, c.user_kw, grace, who)
            if failed:
                self.node.event(self.pod, "Warning", "FailedPreStopHook", failed)
        await self._terminate(c, max(hooks.MINIMUM_GRACE, grace - (time.monotonic() - began)))

    async def _terminate(self, c: Container, grace: float) -> None:
        proc = c.proc
        if proc is None or proc.returncode is not None:
            return
        tracking.signal_group(proc.pid, c.start, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._exited(c)), grace)
        except TimeoutError:
            tracking.signal_group(proc.pid, c.start, signal.SIGKILL)
            await self._exited(c)

    async def _exited(self, c: Container) -> None:
        """Until the container's process is gone (an adopted one may have no one else waiting)."""
        assert c.proc is not None
        if isinstance(c.proc, tracking.Adopted):
            while tracking.is_ours(c.proc.pid, c.start):
                await asyncio.sleep(0.05)
        else:
            await c.proc.wait()

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
            ok, msg = await probes.run_probe(probe, c.spec, self.pod_ip, c.env, c.cwd, c.wrap, c.user_kw)
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

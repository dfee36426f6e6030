"""`kubesvc ingress --workers N`: N processes serving the same listening sockets (SO_REUSEPORT).

Rules kept here (the same design as ``kubesvc proxy --workers``, written again: ``dataplane.ingress`` and
``dataplane.proxy`` stay independent):
- The primary binds first (with SO_REUSEPORT), then starts ``N - 1`` workers that bind the addresses the
  primary actually got (port 0 resolved) with SO_REUSEPORT too; the kernel spreads new connections over all N.
- Every process follows the store itself (its own follower, route table, pool and access-log writer); only the
  primary creates the IngressClass and the default certificate (before the workers start) and writes status.
- The primary prints its ready line only after every worker printed ``kubesvc ingress-worker ready``; a worker
  that does not is a one-line start error. A worker that dies later is restarted (at most one per second).
- Workers stop with the primary: SIGTERM on a clean stop (each drains its own requests), PR_SET_PDEATHSIG
  when the primary is killed, and a ``getppid()`` check in each sweep as the fallback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

log = logging.getLogger("kubesvc.ingress")

READY_PREFIX = b"kubesvc ingress-worker ready"
START_SECONDS = 30.0
RESTART_SECONDS = 1.0


class Workers:
    """The primary's worker processes: start, wait for ready, restart the dead, stop."""

    def __init__(self, opts: Any, count: int) -> None:
        self.opts = opts  # IngressOptions with the bound addresses filled in
        self.count = count
        self.procs: dict[int, subprocess.Popen[bytes]] = {}  # slot -> process
        self.restart_at = 0.0
        self.stopping = False

    def argv(self) -> list[str]:
        opts = dataclasses.asdict(self.opts)
        opts.update(workers=self.count, worker_of=os.getpid(), update_status=False)
        return [sys.executable, "-c", "from kubesvc.dataplane.ingress.workers import worker_main; worker_main()", json.dumps(opts)]

    def spawn(self, slot: int, wait_ready: bool) -> subprocess.Popen[bytes]:
        """A worker; its ready line comes on a pipe when ``wait_ready``, else it goes nowhere (a restart is not
        awaited, and a closed pipe would break the worker's ready write)."""
        out = subprocess.PIPE if wait_ready else subprocess.DEVNULL
        proc = subprocess.Popen(self.argv(), stdout=out, stdin=subprocess.DEVNULL)
        self.procs[slot] = proc
        return proc

    async def start(self) -> None:
        from kubesvc.errors import ClientError

        procs = [self.spawn(slot, True) for slot in range(1, self.count)]
        loop = asyncio.get_running_loop()
        for proc in procs:
            assert proc.stdout is not None
            try:
                line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), START_SECONDS)
            except TimeoutError:
                line = b""
            proc.stdout.close()
            if not line.startswith(READY_PREFIX):
                self.stop(0.5)
                raise ClientError(f"ingress worker {proc.pid} failed to start (exit code {proc.poll()}; see the lines above)")

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]

    def supervise(self) -> None:
        """Restart workers that exited (called from the primary's sweep)."""
        if self.stopping:
            return
        for slot, proc in list(self.procs.items()):
            code = proc.poll()
            if code is not None and time.monotonic() >= self.restart_at:
                log.warning("ingress worker exited; restarting", extra={"kv": {"pid": proc.pid, "code": code}})
                self.restart_at = time.monotonic() + RESTART_SECONDS
                self.spawn(slot, False)  # not awaited: the sweep must not block

    def terminate(self) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()

    def stop(self, grace: float) -> None:
        """SIGTERM every worker, wait up to ``grace`` seconds in all, SIGKILL the rest."""
        self.terminate()
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()


def die_with_parent(parent: int) -> bool:
    """Linux: SIGTERM this process when its parent dies (even by SIGKILL). False when the parent is gone already."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # the getppid() check in the sweep still notices
    return os.getppid() == parent


def worker_main() -> None:
    """Entry point of a worker process: its options come as JSON in argv[1]."""
    from kubesvc.dataplane.ingress import server
    from kubesvc.dataplane.ingress.http import HTTPConfig
    from kubesvc.errors import ClientError

    raw = json.loads(sys.argv[1])
    raw["http"] = HTTPConfig(**raw["http"])
    opts = server.IngressOptions(**raw)
    if not die_with_parent(opts.worker_of):
        sys.exit(0)
    try:
        code = server.run(opts)
    except ClientError as e:
        sys.stderr.write(f"error: ingress worker: {e}\n")
        code = 1
    sys.exit(code)

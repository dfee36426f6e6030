"""`kubesvc ingress --workers N`: N processes serving the same listening sockets (SO_REUSEPORT).

Rules kept here (the same design as ``kubesvc proxy --workers``; the process supervision is
``runtime.WorkerProcesses``, shared by both):
- The primary binds first (with SO_REUSEPORT), then starts ``N - 1`` workers that bind the addresses the
  primary actually got (port 0 resolved) with SO_REUSEPORT too; the kernel spreads new connections over all N.
- Every process follows the store itself (its own follower, route table, pool and access-log writer); only the
  primary creates the IngressClass and the default certificate (before the workers start) and writes status.
- The primary prints its ready line only after every worker printed ``kubesvc ingress-worker ready``; a worker
  that does not is a one-line start error. A worker that dies later is logged (exit code or signal) and restarted,
  with a back-off while it keeps dying young.
- Workers stop with the primary: SIGTERM on a clean stop (each drains its own requests), PR_SET_PDEATHSIG
  when the primary is killed, and a ``getppid()`` check in each sweep as the fallback.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from typing import Any

from kubesvc.dataplane import runtime

log = logging.getLogger("kubesvc.ingress")

READY_PREFIX = b"kubesvc ingress-worker ready"
START_SECONDS = 30.0


class Workers(runtime.WorkerProcesses):
    """The primary's worker processes (``runtime.WorkerProcesses``, shared with the proxy): start, wait for ready,
    restart the dead with back-off, stop."""

    def __init__(self, opts: Any, count: int) -> None:
        self.opts = opts  # IngressOptions with the bound addresses filled in
        super().__init__("ingress worker", self.worker_argv, count, READY_PREFIX, START_SECONDS, log)

    def worker_argv(self) -> list[str]:
        opts = dataclasses.asdict(self.opts)
        opts.update(workers=self.count, worker_of=os.getpid(), update_status=False)
        return [sys.executable, "-c", "from kubesvc.dataplane.ingress.workers import worker_main; worker_main()", json.dumps(opts)]


die_with_parent = runtime.die_with_parent


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

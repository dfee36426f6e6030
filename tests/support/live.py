"""A live `kubesvc apiserver` plus a kubelet bed for module fixtures, and stopping a client subprocess for sure."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.apiserver.fixtures import Api, start_api
from tests.support.procs import Proc
from tests.workloads.fixtures import Bed, searchable


@contextmanager
def live_bed(tmp: Path) -> Iterator[tuple[Api, Bed]]:
    """Start the apiserver and a kubelet; the caller creates its objects inside the ``with``. On leaving, even on
    failure, the bed is stopped and then every process it spawned and the apiserver."""
    procs: list[Proc] = []
    api = start_api(tmp)
    procs.append(api.proc)

    def spawn(store: str, *args: str) -> Proc:
        p = Proc(store, *args)
        procs.append(p)
        return p

    bed = Bed(tmp, spawn)
    try:
        searchable(tmp)
        bed.start_kubelet()
        yield api, bed
    finally:
        try:
            bed.stop()
        finally:
            for p in procs:
                p.stop()


def stop_popen(p: subprocess.Popen[str], timeout: float = 10) -> str:
    """SIGTERM, bounded wait, then SIGKILL; returns the process's stderr."""
    p.terminate()
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate(timeout=timeout)
    return err

"""Spawn ``python -m kubesvc`` as a real subprocess, wait for its ready line, stop it for sure.

``Proc.stop()``: SIGTERM, bounded wait, then SIGKILL; always called by the fixtures that start one.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    def __init__(self, store: str, *args: str, env: dict[str, str] | None = None) -> None:
        e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        e.pop("KUBESVC_DEBUG", None)
        self.argv = [sys.executable, "-m", "kubesvc", "--store", store, *args]
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=e)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump_out(self) -> None:
        assert self.p.stdout is not None
        for raw in self.p.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.p.stderr is not None
        for raw in self.p.stderr:
            self.stderr.append(raw.decode(errors="replace").rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line starting {prefix!r} within {timeout}s; stderr: {self.stderr[-10:]}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                time.sleep(0.1)
                raise RuntimeError(f"process exited ({self.p.poll()}) before {prefix!r}; stderr: {self.stderr[-10:]}")
            if line.startswith(prefix):
                return line

    def stop(self, timeout: float = 10) -> int:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        return self.p.returncode


def ready_fields(line: str) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in line.split() if "=" in tok)


def wait_for(cond, timeout: float = 10, interval: float = 0.01, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll cond() until it returns a truthy value; raise after timeout. Returns that value."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except (OSError, AssertionError) as e:
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"{what} not met within {timeout}s (last error: {last_exc!r})")

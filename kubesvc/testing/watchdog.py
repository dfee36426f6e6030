"""The watchdog: stops the planes of a test process that died without its teardown.

Rules kept here:
- One watchdog process per test process (each xdist worker its own), started with the first plane, in its own
  session (a Ctrl-C in the terminal reaches pytest, not the watchdog). It reads lines on stdin: ``+STORE`` (a plane
  starts on STORE), ``-STORE`` (it was stopped, or is kept on purpose).
- At EOF (the test process closed the pipe: it exited, however it exited) it runs ``kubesvc down`` for every
  store still registered (saying so in ``<store>.d/watchdog.log``), then exits. A clean exit of the test process has unregistered everything: nothing to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import IO


class Watchdog:
    """The test process's end of the pipe."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def _pipe(self) -> IO[bytes]:
        if self.proc is None:
            self.proc = subprocess.Popen([sys.executable, "-m", "kubesvc.testing.watchdog"], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                         close_fds=True)
        assert self.proc.stdin is not None
        return self.proc.stdin

    def watch(self, store: str) -> None:
        self._say(f"+{store}\n")

    def unwatch(self, store: str) -> None:
        if self.proc is not None:
            self._say(f"-{store}\n")

    def _say(self, line: str) -> None:
        pipe = self._pipe()
        try:
            pipe.write(line.encode())
            pipe.flush()
        except BrokenPipeError:  # it died (killed by hand): start another that knows nothing yet
            self.proc = None
            if line.startswith("+"):
                self._say(line)

    def close(self) -> None:
        """Everything was stopped or released: let the watchdog go."""
        if self.proc is None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stores: list[str] = []
    for raw in sys.stdin.buffer:
        line = raw.decode(errors="replace").rstrip("\n")
        if line.startswith("+") and line[1:] not in stores:
            stores.append(line[1:])
        elif line.startswith("-") and line[1:] in stores:
            stores.remove(line[1:])
    if not stores:
        return 0
    from kubesvc.dataplane import supervisor

    for store in stores:
        if os.path.exists(store + ".d"):
            try:
                with open(store + ".d/watchdog.log", "a") as log:  # what the plugin's tests look for
                    log.write("the test process ended without stopping this plane: kubesvc down\n")
                supervisor.down(store, timeout=10, out=lambda _s: None)
            except Exception:  # noqa: BLE001  (the next store still gets its down)
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

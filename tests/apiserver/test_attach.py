"""`kubectl attach -i` against a live `kubesvc apiserver` and kubelet: a container with `stdin: true` reads what
the client sends (through the FIFO the kubelet gave it as stdin, named in its record), keeps its stdin across
sessions, and with `stdinOnce: true` reads end of input once the first session's stdin ends; a container
without `stdin: true` reads /dev/null and the stdin sent to attach it is dropped, as a runtime drops it. A container
with `tty: true` runs on a terminal the kubelet keeps: `kubectl attach -it` (given a terminal by `script`) types into
it and its size follows the client's; a resize sent on the wire (channel 4) reaches it too."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import stat
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.apiserver.fixtures import KUBECTL, Api
from tests.support.live import live_bed
from tests.support.websocket import ws_connect
from tests.workloads.fixtures import POD_PYTHON, Bed

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

UPPER = "import sys\nfor line in sys.stdin:\n    print(line.upper(), end='', flush=True)\nprint('EOF', flush=True)\n"
NO_STDIN = ("import sys, time\nprint('stdin:', repr(sys.stdin.read()), flush=True)\n"
            "while True:\n    print('tick', flush=True)\n    time.sleep(0.2)\n")

TTY = ("import os, sys\nfor line in sys.stdin:\n    c, r = os.get_terminal_size()\n"
       "    print(line.strip().upper(), sys.stdin.isatty(), f'{c}x{r}', flush=True)\n")


def pod(name: str, code: str, restart: str = "Always", **extra: Any) -> dict[str, Any]:
    c = {"name": "app", "image": "python", "command": [POD_PYTHON, "-c", code], **extra}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": restart, "containers": [c]}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Bed]]:
    with live_bed(tmp_path_factory.mktemp("attach")) as (api, bed):
        bed.create(pod("echo", UPPER, stdin=True))
        bed.create(pod("once", UPPER, "Never", stdin=True, stdinOnce=True))
        bed.create(pod("nostdin", NO_STDIN))
        bed.create(pod("tty", TTY, stdin=True, tty=True))
        for name in ("echo", "once", "nostdin", "tty"):
            bed.wait(lambda n=name: (bed.pod(n) or {}).get("status", {}).get("phase") == "Running", timeout=30, what=name)
        yield api, bed


class Session:
    """An interactive `kubectl attach -i` whose stdout lines are read as they come."""

    def __init__(self, api: Api, *args: str) -> None:
        assert KUBECTL is not None
        self.p = subprocess.Popen([KUBECTL, f"--cache-dir={api.home / 'cache'}", "attach", "-i", *args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=api.env(), cwd=str(api.home))
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put("")

    def send(self, text: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(text)
        self.p.stdin.flush()

    def readline(self) -> str:
        return self.lines.get(timeout=60)  # a guard against a hang, not a timed assertion

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)


def record(bed: Bed, name: str) -> dict[str, Any]:
    from kubesvc.dataplane.kubelet import logs as podlogs

    p = bed.pod(name)
    assert p is not None
    return json.loads((podlogs.pod_dir(bed.store_path, p) / "app" / "process.json").read_text())


def test_stdin_fifo_is_private_and_named_in_the_record(cluster: tuple[Api, Bed]) -> None:
    _, bed = cluster
    st = record(bed, "echo")["exec"]["stdin"]
    assert st["once"] is False and st["path"].endswith("/app/stdin")
    mode = os.stat(st["path"])
    assert stat.S_ISFIFO(mode.st_mode) and stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == os.geteuid()
    assert stat.S_IMODE(os.stat(os.path.dirname(st["path"])).st_mode) == 0o700
    once = record(bed, "once")["exec"]["stdin"]
    assert once["once"] is True and once["holder"] > 0
    assert "stdin" not in record(bed, "nostdin")["exec"]


def test_attach_stdin_reaches_the_container_and_survives_detach(cluster: tuple[Api, Bed]) -> None:
    api, _ = cluster
    for word in ("hello", "again"):  # a second session: the first one's detach did not end the input
        s = Session(api, "echo", "-c", "app")
        try:
            s.send(word + "\n")
            assert s.readline() == word.upper() + "\n"
        finally:
            s.close()
    r = api.kubectl("logs", "echo")
    assert r.out == "HELLO\nAGAIN\n"  # neither session ended the container's input


def test_stdin_once_ends_input_when_the_first_session_detaches(cluster: tuple[Api, Bed]) -> None:
    api, bed = cluster
    fifo = record(bed, "once")["exec"]["stdin"]["path"]
    r = api.kubectl("attach", "-i", "once", "-c", "app", input="first\nsecond\n", timeout=60)
    # kubectl's stdin ends after the two lines: the container reads end of input, exits, and attach ends
    assert r.code == 0, r.err
    assert r.out == "FIRST\nSECOND\nEOF\n"
    assert "If you don't see a command prompt, try pressing enter." in r.err
    bed.wait(lambda: ((bed.pod("once") or {}).get("status", {}).get("containerStatuses") or [{}])[0]
             .get("state", {}).get("terminated", {}).get("reason") == "Completed", timeout=30, what="once completed")
    assert not os.path.exists(fifo)


def test_attach_stdin_to_a_container_without_stdin_is_dropped(cluster: tuple[Api, Bed]) -> None:
    api, _ = cluster
    s = Session(api, "nostdin")
    try:
        s.send("dropped\n")
        assert s.readline() == "tick\n"  # the session is served: output streams, the stdin goes nowhere
    finally:
        s.close()
    r = api.kubectl("logs", "nostdin")
    assert r.out.startswith("stdin: ''\n") and "dropped" not in r.out.lower()


def test_tty_socket_is_private_and_named_in_the_record(cluster: tuple[Api, Bed]) -> None:
    _, bed = cluster
    ctx = record(bed, "tty")["exec"]
    assert "stdin" not in ctx  # the terminal is its stdin
    path = ctx["tty"]["socket"]
    mode = os.stat(path)
    assert path.endswith("/app/tty") and stat.S_ISSOCK(mode.st_mode) and stat.S_IMODE(mode.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


class Terminal:
    """`kubectl attach -it` on a terminal of its own: `script` runs it on a pty of the given size."""

    def __init__(self, api: Api, cols: int, rows: int, *args: str) -> None:
        assert KUBECTL is not None
        cmd = shlex.join([KUBECTL, f"--cache-dir={api.home / 'cache'}", "attach", "-it", *args])
        self.p = subprocess.Popen(["script", "-qc", f"stty cols {cols} rows {rows}; exec {cmd}", "/dev/null"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env=api.env(), cwd=str(api.home), start_new_session=True)
        self.out = b""
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        while data := self.p.stdout.read1(65536):
            with self.cond:
                self.out += data
                self.cond.notify_all()

    def send(self, data: bytes) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def wait_for(self, text: bytes, timeout: float = 60) -> bool:
        with self.cond:  # the timeout guards against a hang, it is not a timed assertion
            return self.cond.wait_for(lambda: text in self.out, timeout)

    def close(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)  # script and the kubectl it runs (their own session)
        self.p.wait(10)


def test_attach_tty_types_into_the_terminal_and_follows_the_client_size(cluster: tuple[Api, Bed]) -> None:
    api, _ = cluster
    t = Terminal(api, 91, 27, "tty", "-c", "app")
    try:
        assert t.wait_for(b"If you don't see a command prompt, try pressing enter."), t.out
        t.send(b"hello\r")  # kubectl's terminal is raw: the return goes through as typed, the pod's terminal reads a line
        assert t.wait_for(b"HELLO True "), t.out  # isatty(stdin) inside the container
        assert t.wait_for(b"hello\r\n"), t.out  # the pod's terminal echoes what was typed, as a terminal does
        for _ in range(20):  # kubectl sends its size as the session starts, beside stdin: by the next lines it has come
            t.send(b"again\r")
            if t.wait_for(b"AGAIN True 91x27", timeout=3):
                break
        assert b"AGAIN True 91x27" in t.out, t.out
    finally:
        t.close()
    r = api.kubectl("logs", "tty")
    assert "HELLO True" in r.out and "AGAIN True 91x27" in r.out  # the terminal's output is the container's log


def test_attach_tty_resize_on_the_wire(cluster: tuple[Api, Bed]) -> None:
    api, _ = cluster
    q = "container=app&stdin=true&stdout=true&tty=true"
    with ws_connect(api, f"/api/v1/namespaces/default/pods/tty/attach?{q}", ["v5.channel.k8s.io"]) as ws:
        out, channels = b"", set()

        def until(text: bytes) -> None:
            nonlocal out
            while text not in out:
                msg = ws.recv(timeout=60)  # a guard against a hang, not a timed assertion
                assert isinstance(msg, bytes)
                channels.add(msg[0])
                out += msg[1:]

        ws.send(b"\x04" + json.dumps({"Width": 123, "Height": 45}).encode())
        ws.send(b"\x00wire\r")
        until(b"WIRE True")
        ws.send(b"\x04" + json.dumps({"Width": 60, "Height": 20}).encode())
        ws.send(b"\x00small\r")
        until(b"SMALL True")
        assert b"WIRE True 123x45\r\n" in out and b"SMALL True 60x20\r\n" in out
        assert channels == {1}  # a terminal's output comes on stdout alone

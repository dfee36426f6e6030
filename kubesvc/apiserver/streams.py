"""Streaming subresources: ``pods/log``, ``pods/exec``, ``pods/attach``, ``pods/portforward``, ``pods/proxy`` and
``services/proxy``, as kubectl v1.32 speaks them.

Rules kept here (docs/concepts/apiserver.md, "Streaming: logs, exec, attach, port-forward, proxy"):
- Routing, checks and the store lookups run in a handler thread (``route``), like any request, after the
  transport's checks (Host, Origin, credential); the answer is an ``Action`` the transport hands the
  connection to. An upgrade is never served to a request the transport would refuse.
- exec/attach: WebSocket only (``v5.channel.k8s.io``, then v4, v3, v2, ``channel.k8s.io``), which kubectl
  1.32 tries first (``KUBECTL_REMOTE_COMMAND_WEBSOCKETS`` is on by default since 1.30); a SPDY upgrade is
  refused with a Status. Each message's first byte is its channel: 0 stdin, 1 stdout, 2 stderr, 3 error
  (v4+: a ``metav1.Status``, a non-zero exit as ``NonZeroExitCode`` with an ``ExitCode`` cause; before v4
  plain text), 4 resize (``{"Width":..,"Height":..}``), 255 close (v5: ``[255, 0]`` ends stdin).
- The API server runs the command itself (``kubelet.execs``): in the context the kubelet recorded for the
  running container (env, working directory, user, network namespace), so it needs no kubelet endpoint and
  works while any kubelet (or none, for an adopted container) runs. The process group is killed when the
  client goes away. ``attach`` streams the container's output from its log (stdout and stderr arrive
  interleaved on stdout: the log keeps them together). With ``stdin=true`` the client's channel 0 is written
  to the container's stdin FIFO named in its record (``kubelet.execs``: containers with ``stdin: true``);
  the session's stdin ends with a v5 close of channel 0 or with the WebSocket, and for a ``stdinOnce``
  container that ends the container's input (the first session only). A container without ``stdin: true``
  reads /dev/null, and stdin sent to attach it is read and dropped, as a runtime drops it. A ``tty: true``
  container runs on a terminal the kubelet keeps (``kubelet.execs.Tty``): with ``tty=true`` the session connects
  to its socket (named in the record) and sends channel 0 there as terminal input and channel 4's sizes as
  resizes; output (stderr merged, the terminal's echo included) comes from the log on channel 1. Without a
  reachable terminal (an adopted container: the master end went with the kubelet that started it) the
  session is output-only.
- port-forward: SPDY/3.1 streams (``spdy.py``), tunnelled in WebSocket binary messages (subprotocol
  ``SPDY/3.1+portforward.k8s.io``, kubectl 1.32's default) or after ``Upgrade: SPDY/3.1`` (its fallback).
  Each connection is a pair of streams (``streamType`` error and data, same ``requestID``, ``port``); the
  data stream is relayed to ``podIP:port``; a refused dial is written on the error stream.
  The kubelet's own WebSocket channel protocol is served beside it (``v4.channel.k8s.io``, binary, and
  ``v4.base64.channel.k8s.io``, text: ASCII channel digit then base64), which the Python client speaks: the
  ports come from the query (``ports``, as the API server takes them, or the kubelet's ``port``; repeated or
  comma-separated); port i has data channel 2i and error channel 2i+1, and the server's first message on
  each carries the port as 2 bytes little-endian. One connection per port is dialled at once; a refused dial
  is written on the error channel. The WebSocket closes when every port's connection has ended (as the
  kubelet's handler returns), or when the client goes.
- proxy: ``pods/NAME[:PORT]/proxy/PATH`` and ``services/[https:]NAME[:PORT]/proxy/PATH`` relay one HTTP
  request to the pod or to a ready endpoint of the service (``Connection: close``, the credential removed)
  and the answer back unchanged; the client connection then closes.
- Long-running requests (exec, attach, port-forward, proxy, followed logs) count against ``max_watches``, not
  the in-flight limit, as kube-apiserver counts them apart.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import random
import re
import signal
import ssl
import subprocess
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from kubesvc.apiserver import spdy
from kubesvc.apiserver.status import ApiError, bad_request, not_found_path, status
from kubesvc.dataplane.kubelet import execs, tracking
from kubesvc.dataplane.kubelet import logs as podlogs
from kubesvc.errors import BadRequest, NotFound

log = logging.getLogger("kubesvc.apiserver")
Obj = dict[str, Any]

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
PORTFORWARD_TUNNEL = "SPDY/3.1+portforward.k8s.io"
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
PORTFORWARD_CHANNELS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
WS_MAX_MESSAGE = 1 << 24  # a SPDY frame's largest size
_LONG = re.compile(r"^/api/v1/namespaces/[^/]+/(pods|services)/[^/]+/(exec|attach|portforward|log|proxy)(/.*)?$")
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
        "authorization", "host", "content-length", "expect"}
FOLLOW_POLL = 0.1


def long_running(method: str, path: str, follow: bool) -> bool:
    m = _LONG.match(path)
    if m is None:
        return False
    return m.group(2) != "log" or follow


class Action:
    """A request the transport hands its connection to. ``serve`` returns whether the connection may carry
    another request."""

    async def serve(self, io: StreamIO) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class StreamIO:
    """What the transport lends a streaming handler."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    method: str
    target: str
    version: str
    items: list[tuple[str, str]]  # the request's header fields, as sent
    server: Any  # server.ApiServer: head_bytes, run_sync, limits, registry per thread
    raw: bytes = b""  # the request head as read

    def header(self, name: str) -> str:
        low = name.lower()
        for k, v in reversed(self.items):
            if k.lower() == low:
                return v
        return ""

    async def drain(self) -> None:
        async with asyncio.timeout(self.server.limits.idle_timeout):
            await self.writer.drain()

    async def send_status(self, code: int, reason: str, message: str) -> bool:
        body = json.dumps(status(code, reason, message)).encode()
        self.writer.write(self.server._head_bytes(code, "application/json", [], True, len(body), False) + body)
        with contextlib.suppress(ConnectionError, TimeoutError, ssl.SSLError):
            await self.drain()
        return False


def upgrade_kind(headers: dict[str, str]) -> str:
    """"websocket", "spdy" or "" from the request's Connection/Upgrade fields."""
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if "upgrade" not in tokens:
        return ""
    up = headers.get("upgrade", "").strip().lower()
    if up == "websocket":
        return "websocket"
    if up.startswith("spdy/3.1"):
        return "spdy"
    return ""


# ------------------------------------------------------------------------------------------------ routing


def route(req: Any, ctx: Any, kind: str, namespace: str, raw_name: str, sub: str, rest: list[str]) -> Any:
    """Runs in a handler thread. Returns a ``handlers.Response``: plain for a finished log, else one whose
    ``stream`` is an ``Action``."""
    from kubesvc.apiserver.handlers import Response

    if sub == "proxy":
        return Response(200, stream=_proxy_target(req, ctx, kind, namespace, raw_name))
    if kind != "Pod" or rest:
        raise not_found_path()
    name = unquote(raw_name)
    reg = ctx.registry
    pod = reg.get("Pod", namespace, name)
    store_path = reg.store.path
    if sub == "log":
        if req.method not in ("GET", "HEAD"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        opts = log_options(req)
        data, path, end = podlogs.snapshot(store_path, pod, opts)
        if not opts.follow or opts.previous or (opts.limit_bytes and len(data) >= opts.limit_bytes):
            return Response(200, data, "text/plain")
        return Response(200, stream=LogFollow(store_path, pod, opts, data, path, end))
    if sub in ("exec", "attach"):
        if req.method not in ("GET", "POST"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        command = req.query.get("command") or []
        stdin, stdout, stderr, tty = (req.flag(k) for k in ("stdin", "stdout", "stderr", "tty"))
        if sub == "exec" and not command:
            raise bad_request("you must specify at least one command for the container")
        if not (stdin or stdout or stderr):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise bad_request(f"cannot {sub} into a container in a completed pod; current phase is {phase}")
        container = req.param("container") or None
        # every check before the protocol's: kubectl falls back to SPDY on any refused WebSocket upgrade and
        # shows the second answer, so both must carry the real reason
        if sub == "exec":
            target = execs.target(store_path, pod, container)
            _need_upgrade(req, "websocket", sub)
            return Response(101, stream=Exec(target, list(command), stdin, stdout, stderr and not tty, tty))
        cname = podlogs.pick_container(pod, container)
        _, path = podlogs.read(store_path, pod, cname)
        term = execs.attach_tty(store_path, pod, cname) if tty else None
        fifo = execs.attach_stdin(store_path, pod, cname) if stdin and term is None else None
        for what, where in (("FIFO", fifo.path if fifo else None), ("terminal", term)):
            if where is not None and not os.access(where, os.W_OK) and os.path.exists(where):
                raise bad_request(f'cannot attach to the stdin of container "{cname}": its {what} {where} belongs to '
                                  f"the kubelet's user (this process runs as uid {os.geteuid()})")
        _need_upgrade(req, "websocket", sub)
        return Response(101, stream=Attach(store_path, pod, cname, path, stdout, stderr and not tty, stdin, fifo,
                                           term))
    if sub == "portforward":
        if req.method not in ("GET", "POST"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        kind_ = _need_upgrade(req, "", sub)
        ports = portforward_ports(req.query.get("ports", []) + req.query.get("port", []))
        st = pod.get("status") or {}
        if st.get("phase") != "Running" or not st.get("podIP"):
            raise bad_request(f"unable to forward port because pod is not running. Current status={st.get('phase', 'Pending')}")
        return Response(101, stream=PortForward(kind_, str(st["podIP"]), name, pod["metadata"].get("uid", ""),
                                                ports))
    raise not_found_path()


def portforward_ports(values: list[str]) -> list[int]:
    """The ports of a channel-protocol port-forward (kubelet's extractPorts wording); SPDY clients send none."""
    ports: list[int] = []
    for value in values:
        if not value:
            raise bad_request('query parameter "port" cannot be empty')
        for part in value.split(","):
            if not part.strip().isdigit() or int(part) > 65535:
                raise bad_request(f'unable to parse "{value}" as a port: strconv.ParseUint: parsing "{part}": '
                                  + ("value out of range" if part.strip().isdigit() else "invalid syntax"))
            if int(part) < 1:
                raise bad_request(f'port "{value}" must be > 0')
            ports.append(int(part))
    return ports


def _need_upgrade(req: Any, want: str, sub: str) -> str:
    got = upgrade_kind(req.headers)
    if not got:
        raise bad_request("Upgrade request required")
    if want and got != want:
        raise bad_request(f"kubesvc serves {sub} over WebSocket ({', '.join(EXEC_PROTOCOLS)}), not SPDY")
    if got == "spdy" and req.headers.get("x-stream-protocol-version", "").strip() != PORTFORWARD_PROTOCOL:
        raise bad_request(f"unable to upgrade: the only stream protocol served is {PORTFORWARD_PROTOCOL}")
    return got


def log_options(req: Any) -> podlogs.Options:
    def number(name: str, minimum: int) -> int | None:
        text = req.param(name)
        if not text:
            return None
        try:
            value = int(text)
        except ValueError:
            raise bad_request(f'invalid {name} "{text}": must be an integer') from None
        if value < minimum:
            raise bad_request(f"{name}: Invalid value: {value}: must be greater than or equal to {minimum}")
        return value

    since: float | None = None
    seconds = number("sinceSeconds", 1)
    if seconds is not None:
        since = time.time() - seconds
    if req.param("sinceTime"):
        if since is not None:
            raise bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
        since = podlogs.parse_since_time(req.param("sinceTime"))
    tail = number("tailLines", 0)
    return podlogs.Options(container=req.param("container") or None, previous=req.flag("previous"),
                           tail=-1 if tail is None else tail, limit_bytes=number("limitBytes", 1) or 0, since=since,
                           timestamps=req.flag("timestamps"), follow=req.flag("follow"))


# ------------------------------------------------------------------------------------------------ logs


@dataclass
class LogFollow(Action):
    store_path: str
    pod: Obj
    opts: podlogs.Options
    first: bytes
    path: Any
    offset: int

    async def serve(self, io: StreamIO) -> bool:
        chunked = io.version == "HTTP/1.1"
        io.writer.write(io.server._head_bytes(200, "text/plain", [], True, None, chunked))
        sent = 0
        limit = self.opts.limit_bytes

        async def send(data: bytes) -> bool:
            nonlocal sent
            if limit:
                data = data[: limit - sent]
            if data:
                sent += len(data)
                io.writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                await io.drain()
            return not limit or sent < limit

        async def more(data: bytes) -> bool:
            return await send(podlogs.stamp(data, time.time()) if self.opts.timestamps else data)

        gone = asyncio.Event()
        monitor = asyncio.get_running_loop().create_task(_watch_gone(io.reader, gone))
        try:
            if await send(self.first):
                container = podlogs.pick_container(self.pod, self.opts.container)
                await _follow(self.store_path, self.pod, container, self.path, self.offset, more, gone, io)
            if chunked and not gone.is_set():
                io.writer.write(b"0\r\n\r\n")
                await io.drain()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass
        finally:
            monitor.cancel()
        return False


async def _watch_gone(reader: asyncio.StreamReader, gone: asyncio.Event) -> None:
    try:
        while await reader.read(65536):
            pass  # a log or attach client has nothing more to say; what it sends is dropped
    except (ConnectionError, ssl.SSLError):
        pass
    gone.set()


async def _follow(store_path: str, pod: Obj, container: str, path: Any, offset: int, send: Any,
                  gone: asyncio.Event, io: StreamIO) -> None:
    """Send what is appended to ``path`` until the container instance ends, the pod goes or the client does."""
    uid = pod["metadata"].get("uid")
    ns, name = pod["metadata"].get("namespace", "default"), pod["metadata"]["name"]
    record = tracking.record_path(podlogs.pod_dir(store_path, pod) / container)
    last_check = time.monotonic()
    misses = 0

    def current() -> bool:
        p = io.server._registry().store.get("Pod", ns, name)
        if p is None or p["metadata"].get("uid") != uid or not path.exists():
            return False
        return tracking.live(tracking.read(record))

    while not gone.is_set():
        chunk, offset = podlogs.follow_bytes(path, offset)
        if chunk:
            if not await send(chunk):
                return
            continue
        if time.monotonic() - last_check >= 1.0:
            last_check = time.monotonic()
            if await io.server._run_sync(current):
                misses = 0
            else:
                misses += 1
                if misses >= 2:  # twice, a second apart: the instance has ended (and its output is all read)
                    chunk, offset = podlogs.follow_bytes(path, offset)
                    if chunk:
                        await send(chunk)
                    return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FOLLOW_POLL):
                await gone.wait()


# ------------------------------------------------------------------------------------------------ websocket


class WebSocket:
    """The ``websockets`` library's sans-I/O server protocol over the transport's streams."""

    def __init__(self, io: StreamIO, proto: Any) -> None:
        self.io, self.proto = io, proto
        self.pending: deque[bytes] = deque()
        self.partial: bytearray | None = None
        self.closed = False

    @classmethod
    async def accept(cls, io: StreamIO, protocols: tuple[str, ...]) -> WebSocket | None:
        from websockets.http11 import Request as WsRequest
        from websockets.server import ServerProtocol

        offered = [p.strip() for v in (val for k, val in io.items if k.lower() == "sec-websocket-protocol")
                   for p in v.split(",") if p.strip()]
        chosen = next((p for p in protocols if p in offered), None)
        if chosen is None:
            await io.send_status(400, "BadRequest", "no supported WebSocket subprotocol was offered; kubesvc serves "
                                 + ", ".join(protocols))
            return None

        # The subprotocol is chosen here and named in the answer here: the library refuses names that are not
        # RFC 7230 tokens, and SPDY/3.1+portforward.k8s.io is none.
        raw = b"\r\n".join(line for line in io.raw.split(b"\r\n")
                            if not line.lower().startswith(b"sec-websocket-protocol:"))
        proto = ServerProtocol(max_size=WS_MAX_MESSAGE)
        proto.receive_data(raw)  # the head the transport read (and checked): the handshake request
        requests = [ev for ev in proto.events_received() if isinstance(ev, WsRequest)]
        if not requests:
            await io.send_status(400, "BadRequest", "malformed WebSocket handshake")
            return None
        response = proto.accept(requests[0])
        if response.status_code == 101:
            response.headers["Sec-WebSocket-Protocol"] = chosen
        proto.send_response(response)
        ws = cls(io, proto)
        await ws.flush()
        if response.status_code != 101:
            return None
        ws.subprotocol = chosen
        return ws

    subprotocol = ""

    async def flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                self.io.writer.write(data)
        await self.io.drain()

    async def recv(self) -> bytes | None:
        from websockets.frames import Opcode

        while not self.pending:
            if self.closed:
                return None
            data = await self.io.reader.read(65536)
            if not data:
                self.proto.receive_eof()
                self.closed = True
                with contextlib.suppress(ConnectionError, TimeoutError, ssl.SSLError):
                    await self.flush()
                return None
            self.proto.receive_data(data)
            for ev in self.proto.events_received():
                if ev.opcode in (Opcode.BINARY, Opcode.TEXT):
                    if ev.fin:
                        self.pending.append(bytes(ev.data))
                    else:
                        self.partial = bytearray(ev.data)
                elif ev.opcode == Opcode.CONT and self.partial is not None:
                    self.partial += ev.data
                    if ev.fin:
                        self.pending.append(bytes(self.partial))
                        self.partial = None
                elif ev.opcode == Opcode.CLOSE:
                    self.closed = True
            if self.proto.close_expected() or self.proto.state.name in ("CLOSING", "CLOSED"):
                self.closed = True
            await self.flush()
        return self.pending.popleft()

    async def send(self, data: bytes) -> None:
        if self.proto.state.name != "OPEN":
            raise ConnectionResetError("the WebSocket is closed")
        self.proto.send_binary(data)
        await self.flush()

    async def send_text(self, text: str) -> None:
        if self.proto.state.name != "OPEN":
            raise ConnectionResetError("the WebSocket is closed")
        self.proto.send_text(text.encode())
        await self.flush()

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(Exception):
            if self.proto.state.name == "OPEN":
                self.proto.send_close(code)
                await self.flush()


# ------------------------------------------------------------------------------------------------ exec


def exit_status(command: list[str], code: int) -> Obj:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], "
                       f"exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure(message: str) -> Obj:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
            "details": {"causes": [{"message": message}]}}


class _Channels:
    """Sending on numbered channels of an accepted WebSocket, in the chosen protocol's dialect."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.version = 5 if ws.subprotocol.startswith("v5") else 4 if ws.subprotocol.startswith("v4") else 3

    async def out(self, channel: int, data: bytes) -> None:
        await self.ws.send(bytes([channel]) + data)

    async def status(self, st: Obj) -> None:
        if self.version >= 4:
            await self.out(ERROR, json.dumps(st).encode())
        elif st.get("status") != "Success":
            await self.out(ERROR, str(st.get("message", "")).encode())


@dataclass
class Exec(Action):
    target: execs.Target
    command: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    async def serve(self, io: StreamIO) -> bool:
        ws = await WebSocket.accept(io, EXEC_PROTOCOLS)
        if ws is None:
            return False
        ch = _Channels(ws)
        loop = asyncio.get_running_loop()
        master = slave = -1
        proc: asyncio.subprocess.Process | None = None
        tasks: list[asyncio.Task[Any]] = []
        try:
            if self.tty:
                master, slave = os.openpty()
            kw = self.target.popen_kwargs(slave if self.tty else None)
            if self.tty:
                std: dict[str, Any] = {"stdin": slave, "stdout": slave, "stderr": slave}
            else:
                pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
                std = {"stdin": pipe if self.stdin else null, "stdout": pipe if self.stdout else null,
                       "stderr": pipe if self.stderr else null}
            try:
                argv = self.target.argv(self.command)
                proc = await asyncio.create_subprocess_exec(argv[0], *argv[1:], **std, **kw)
            except (OSError, subprocess.SubprocessError) as e:
                msg = (f'exec: "{self.command[0]}": executable file not found in $PATH' if isinstance(e, FileNotFoundError)
                       else f"failed to exec in container: {getattr(e, 'strerror', None) or e}")
                await ch.status(failure(msg))
                await ws.close()
                return False
            finally:
                if slave >= 0:
                    os.close(slave)
            outputs: list[asyncio.Task[Any]] = []
            if self.tty:
                outputs.append(loop.create_task(_pump_fd(master, ch, STDOUT)))
            else:
                if proc.stdout is not None:
                    outputs.append(loop.create_task(_pump_stream(proc.stdout, ch, STDOUT)))
                if proc.stderr is not None:
                    outputs.append(loop.create_task(_pump_stream(proc.stderr, ch, STDERR)))
            tasks += outputs
            inputs = loop.create_task(self._input(ws, proc, master))
            tasks.append(inputs)
            waiter = loop.create_task(proc.wait())
            done, _ = await asyncio.wait({waiter, inputs}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:  # the client went away first
                _kill(proc)
                return False
            if outputs:
                await asyncio.wait(outputs, timeout=2.0)  # the rest of the output, unless a child holds the pty
            await ch.status(exit_status(self.command, execs.exit_code(proc.returncode or 0)))
            await ws.close()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            if proc is not None:
                _kill(proc)
        finally:
            for t in tasks:
                t.cancel()
            if proc is not None and proc.returncode is None:
                _kill(proc)
            if master >= 0:
                with contextlib.suppress(OSError):
                    loop.remove_reader(master)
                os.close(master)
        return False

    async def _input(self, ws: WebSocket, proc: asyncio.subprocess.Process, master: int) -> None:
        while True:
            msg = await ws.recv()
            if msg is None:
                return
            if not msg:
                continue
            channel, data = msg[0], msg[1:]
            if channel == STDIN and self.stdin and data:
                if master >= 0:
                    with contextlib.suppress(OSError):  # EIO: the terminal's last holder has gone
                        await execs.write_all(master, data)
                elif proc.stdin is not None and not proc.stdin.is_closing():
                    proc.stdin.write(data)
                    with contextlib.suppress(ConnectionError):
                        await proc.stdin.drain()
            elif channel == RESIZE and master >= 0:
                with contextlib.suppress(ValueError, TypeError, OSError, KeyError):
                    size = json.loads(data)
                    execs.set_winsize(master, int(size["Width"]), int(size["Height"]))
            elif channel == CLOSE and data[:1] == bytes([STDIN]):
                if master >= 0:
                    with contextlib.suppress(OSError):
                        await execs.write_all(master, b"\x04")  # end of input on a terminal
                elif proc.stdin is not None:
                    proc.stdin.close()


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _pump_stream(stream: asyncio.StreamReader, ch: _Channels, channel: int) -> None:
    while data := await stream.read(65536):
        await ch.out(channel, data)


async def _pump_fd(fd: int, ch: _Channels, channel: int) -> None:
    os.set_blocking(fd, False)
    while True:
        await execs.fd_ready(fd)
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            continue
        except OSError:  # EIO: every holder of the terminal has gone
            return
        if not data:
            return
        await ch.out(channel, data)


@dataclass
class Attach(Action):
    store_path: str
    pod: Obj
    container: str
    path: Any
    stdout: bool
    stderr: bool
    stdin: bool
    fifo: execs.AttachStdin | None = None  # the container's stdin, when it has one and the client sends it
    term: str | None = None  # the tty socket of a ``tty: true`` container, when the client asks for a terminal

    async def serve(self, io: StreamIO) -> bool:
        ws = await WebSocket.accept(io, EXEC_PROTOCOLS)
        if ws is None:
            return False
        if self.term is not None:
            return await self._serve_tty(io, ws, self.term)
        ch = _Channels(ws)
        gone = asyncio.Event()
        fd = -1
        if self.fifo is not None:
            with contextlib.suppress(OSError):
                fd = self.fifo.open()

        def end_stdin() -> None:
            nonlocal fd
            if fd >= 0:
                os.close(fd)
                fd = -1
                assert self.fifo is not None
                self.fifo.close_once()

        async def take_input() -> None:
            try:
                while (msg := await ws.recv()) is not None:
                    if not msg or fd < 0:
                        continue  # no stdin for this session: read and dropped
                    if msg[0] == STDIN and msg[1:]:
                        try:
                            await execs.write_all(fd, msg[1:])
                        except OSError:  # EPIPE: the container has exited
                            end_stdin()
                    elif msg[0] == CLOSE and msg[1:2] == bytes([STDIN]):
                        end_stdin()
            finally:
                end_stdin()
                gone.set()

        try:
            await self._relay(io, ws, ch, gone, take_input())
        finally:
            end_stdin()
        return False

    async def _serve_tty(self, io: StreamIO, ws: WebSocket, term: str) -> bool:
        ch = _Channels(ws)
        gone = asyncio.Event()
        writer: asyncio.StreamWriter | None = None
        stdin = self.stdin and _container_stdin(self.pod, self.container)  # a terminal's input only with ``stdin: true``
        with contextlib.suppress(OSError):
            short, dfd = execs.short_path(term)
            try:
                _, writer = await asyncio.open_unix_connection(short)
            finally:
                os.close(dfd)

        async def take_input() -> None:
            nonlocal writer
            try:
                while (msg := await ws.recv()) is not None:
                    if not msg or writer is None:
                        continue  # output-only: no terminal to write to
                    frame = b""
                    if msg[0] == STDIN and msg[1:] and stdin:
                        frame = execs.tty_frame(execs.TTY_INPUT, msg[1:])
                    elif msg[0] == RESIZE:
                        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                            size = json.loads(msg[1:])
                            frame = execs.resize_frame(int(size["Width"]), int(size["Height"]))
                    if frame:
                        try:
                            writer.write(frame)
                            await writer.drain()
                        except (ConnectionError, OSError):  # the container (and its terminal) has gone
                            writer.close()
                            writer = None
            finally:
                gone.set()

        try:
            await self._relay(io, ws, ch, gone, take_input())
        finally:
            if writer is not None:
                writer.close()
        return False

    async def _relay(self, io: StreamIO, ws: WebSocket, ch: _Channels, gone: asyncio.Event,
                     take_input: Coroutine[Any, Any, None]) -> None:
        """Read the client's messages with ``take_input`` (which sets ``gone`` when the client goes) while the
        container's log goes out on stdout (stderr when only that was asked; never both: the log merges them),
        then end with a Success status unless the client has gone."""

        async def send(data: bytes) -> bool:
            if self.stdout or self.stderr:
                await ch.out(STDOUT if self.stdout else STDERR, data)
            return True

        reader = asyncio.get_running_loop().create_task(take_input)
        try:
            size = self.path.stat().st_size
            await _follow(self.store_path, self.pod, self.container, self.path, size, send, gone, io)
            if not gone.is_set():
                await ch.status({"metadata": {}, "status": "Success"})
                await ws.close()
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            pass
        finally:
            reader.cancel()


def _container_stdin(pod: Obj, container: str) -> bool:
    spec: Obj = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == container), {})
    return bool(spec.get("stdin"))


# ------------------------------------------------------------------------------------------------ port-forward


@dataclass
class _Pair:
    request_id: str
    port: int = 0
    error_id: int = 0
    data_id: int = 0
    buffered: list[bytes] = field(default_factory=list)
    client_fin: bool = False
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None


class _Transport:
    def __init__(self, io: StreamIO, ws: WebSocket | None) -> None:
        self.io, self.ws = io, ws

    async def recv(self) -> bytes | None:
        if self.ws is not None:
            return await self.ws.recv()
        data = await self.io.reader.read(65536)
        return data or None

    async def send(self, data: bytes) -> None:
        if self.ws is not None:
            await self.ws.send(data)
        else:
            self.io.writer.write(data)
            await self.io.drain()


@dataclass
class PortForward(Action):
    upgrade: str  # "websocket" (SPDY tunnelled, or the channel protocol) or "spdy"
    pod_ip: str
    pod_name: str
    pod_uid: str
    ports: list[int] = field(default_factory=list)  # from the query: the channel protocol's

    async def serve(self, io: StreamIO) -> bool:
        ws: WebSocket | None = None
        if self.upgrade == "websocket":
            offered = {p.strip() for k, v in io.items if k.lower() == "sec-websocket-protocol" for p in v.split(",")}
            if PORTFORWARD_TUNNEL not in offered and offered & set(PORTFORWARD_CHANNELS) and not self.ports:
                return await io.send_status(400, "BadRequest", 'query parameter "port" is required')
            ws = await WebSocket.accept(io, (PORTFORWARD_TUNNEL, *PORTFORWARD_CHANNELS))
            if ws is None:
                return False
            if ws.subprotocol in PORTFORWARD_CHANNELS:
                await self._serve_channels(ws)
                return False
        else:
            io.writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                            b"X-Stream-Protocol-Version: " + PORTFORWARD_PROTOCOL.encode() + b"\r\n\r\n")
            await io.drain()
        t = _Transport(io, ws)
        conn = spdy.Connection()
        pairs: dict[str, _Pair] = {}
        by_stream: dict[int, _Pair] = {}
        try:
            while True:
                data = await t.recv()
                if data is None:
                    return False
                for f in conn.receive(data):
                    if f.kind == "data":
                        pair = by_stream.get(f.stream_id)
                        if pair is None or f.stream_id != pair.data_id:
                            continue
                        if pair.writer is not None:
                            if f.data:
                                pair.writer.write(f.data)
                                with contextlib.suppress(ConnectionError):
                                    await pair.writer.drain()
                            if f.fin and pair.writer.can_write_eof():
                                with contextlib.suppress(OSError):
                                    pair.writer.write_eof()
                        else:
                            pair.buffered.append(f.data)
                        pair.client_fin = pair.client_fin or f.fin
                    elif f.type == spdy.SYN_STREAM:
                        await self._syn(t, conn, f, pairs, by_stream)
                    elif f.type == spdy.RST_STREAM:
                        pair = by_stream.get(f.stream_id)
                        if pair is not None and pair.task is not None and f.stream_id == pair.data_id:
                            pair.task.cancel()
                    elif f.type == spdy.PING:
                        await t.send(conn.ping(f.ping_id))
                    elif f.type == spdy.GOAWAY:
                        return False
        except spdy.ProtocolError as e:
            log.info("port-forward: %s", e)
            return False
        except (ConnectionError, TimeoutError, ssl.SSLError):
            return False
        finally:
            for pair in pairs.values():
                if pair.task is not None:
                    pair.task.cancel()
            if ws is not None:
                await ws.close()

    async def _serve_channels(self, ws: WebSocket) -> None:
        """The kubelet's WebSocket port-forward (``portforward/websocket.go``): two channels per port."""
        b64 = "base64" in ws.subprotocol
        lock = asyncio.Lock()  # one message at a time: the pumps and the error writes share the socket

        async def send(channel: int, data: bytes) -> None:
            async with lock:
                if b64:
                    await ws.send_text(chr(ord("0") + channel) + base64.b64encode(data).decode())
                else:
                    await ws.send(bytes([channel]) + data)

        writers: list[asyncio.StreamWriter | None] = [None] * len(self.ports)
        buffered: list[list[bytes]] = [[] for _ in self.ports]
        connected = [asyncio.Event() for _ in self.ports]

        async def forward(i: int, port: int) -> None:
            try:
                reader, writer = await asyncio.open_connection(self.pod_ip, port)
            except OSError as e:
                why = os.strerror(e.errno) if e.errno else str(e)
                await send(2 * i + 1, (f"error forwarding port {port} to pod {self.pod_name}, uid {self.pod_uid}: "
                                       f"dial tcp {self.pod_ip}:{port}: connect: {why.lower()}").encode())
                return
            finally:
                connected[i].set()
            writers[i] = writer
            try:
                for chunk in buffered[i]:
                    writer.write(chunk)
                buffered[i].clear()
                while data := await reader.read(65536):
                    await send(2 * i, data)
            except (ConnectionError, OSError):
                pass
            finally:
                writers[i] = None
                writer.close()

        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        reading: asyncio.Task[bytes | None] | None = None
        all_done: asyncio.Task[Any] | None = None
        try:
            for i, port in enumerate(self.ports):
                head = port.to_bytes(2, "little")
                await send(2 * i, head)
                await send(2 * i + 1, head)
            tasks = [loop.create_task(forward(i, port)) for i, port in enumerate(self.ports)]
            all_done = loop.create_task(asyncio.wait(tasks))
            while True:
                reading = loop.create_task(ws.recv())
                await asyncio.wait({reading, all_done}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    break  # every port's connection has ended: the handler returns, the socket closes
                message = reading.result()
                reading = None
                if message is None:
                    break
                if b64:
                    if not message or not 0 <= message[0] - ord("0") < 2 * len(self.ports):
                        continue
                    channel, payload = message[0] - ord("0"), base64.b64decode(message[1:])
                else:
                    if not message:
                        continue
                    channel, payload = message[0], message[1:]
                if channel % 2 or channel // 2 >= len(self.ports) or not payload:
                    continue  # error channels are the server's to write
                i = channel // 2
                w = writers[i]
                if w is not None:
                    w.write(payload)
                    with contextlib.suppress(ConnectionError):
                        await w.drain()
                elif not connected[i].is_set():
                    buffered[i].append(payload)
        except (ConnectionError, TimeoutError, ssl.SSLError, ValueError):
            pass
        finally:
            if reading is not None:
                reading.cancel()
            if all_done is not None:
                all_done.cancel()
            for task in tasks:
                task.cancel()
            await ws.close()

    async def _syn(self, t: _Transport, conn: spdy.Connection, f: spdy.Frame, pairs: dict[str, _Pair],
                   by_stream: dict[int, _Pair]) -> None:
        h = {k: v[0] for k, v in f.headers.items() if v}
        stype, port_text = h.get("streamtype", ""), h.get("port", "")
        rid = h.get("requestid", port_text)  # clients before requestID paired streams by port
        if stype not in ("error", "data") or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            await t.send(conn.rst(f.stream_id, spdy.PROTOCOL_ERROR))
            return
        await t.send(conn.syn_reply(f.stream_id))
        pair = pairs.setdefault(rid, _Pair(rid))
        pair.port = int(port_text)
        if stype == "error":
            pair.error_id = f.stream_id
        else:
            pair.data_id = f.stream_id
        by_stream[f.stream_id] = pair
        if pair.error_id and pair.data_id and pair.task is None:
            pair.task = asyncio.get_running_loop().create_task(self._forward(t, conn, pair))

            def done(_t: Any, p: _Pair = pair) -> None:
                pairs.pop(p.request_id, None)
                by_stream.pop(p.error_id, None)
                by_stream.pop(p.data_id, None)

            pair.task.add_done_callback(done)

    async def _forward(self, t: _Transport, conn: spdy.Connection, pair: _Pair) -> None:
        try:
            try:
                reader, writer = await asyncio.open_connection(self.pod_ip, pair.port)
            except OSError as e:
                why = os.strerror(e.errno) if e.errno else str(e)
                msg = (f"error forwarding port {pair.port} to pod {self.pod_name}, uid {self.pod_uid}: "
                       f"dial tcp {self.pod_ip}:{pair.port}: connect: {why.lower()}")
                await t.send(conn.data(pair.error_id, msg.encode(), fin=True))
                await t.send(conn.data(pair.data_id, b"", fin=True))
                return
            pair.writer = writer
            for chunk in pair.buffered:
                writer.write(chunk)
            pair.buffered.clear()
            if pair.client_fin and writer.can_write_eof():
                writer.write_eof()
            try:
                while data := await reader.read(65536):
                    await t.send(conn.data(pair.data_id, data))
            except (ConnectionError, OSError):
                pass
            await t.send(conn.data(pair.data_id, b"", fin=True))
            await t.send(conn.data(pair.error_id, b"", fin=True))
            writer.close()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass
        finally:
            if pair.writer is not None:
                pair.writer.close()


# ------------------------------------------------------------------------------------------------ proxy


@dataclass
class Proxy(Action):
    scheme: str
    host: str
    port: int
    path: str
    what: str  # for messages: 'service "web"' or 'pod "x"'

    async def serve(self, io: StreamIO) -> bool:
        body: bytes = getattr(self, "body", b"")
        lines = [f"{io.method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in io.items if k.lower() not in _HOP]
        if body or io.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body
        ctx = None
        if self.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # as kube-apiserver's proxy: the backend's certificate is not verified
        lim = io.server.limits
        try:
            async with asyncio.timeout(lim.header_timeout):
                r, w = await asyncio.open_connection(self.host, self.port, ssl=ctx)
        except (OSError, TimeoutError) as e:
            errno = getattr(e, "errno", None)
            why = os.strerror(errno).lower() if errno else "i/o timeout"
            return await io.send_status(503, "ServiceUnavailable", f"error trying to reach {self.what}: dial tcp "
                                        f"{self.host}:{self.port}: connect: {why}")
        try:
            w.write(request)
            await w.drain()
            first = True
            while True:
                async with asyncio.timeout(lim.idle_timeout):
                    data = await r.read(65536)
                if not data:
                    break
                first = False
                io.writer.write(data)
                await io.drain()
            if first:
                return await io.send_status(502, "BadGateway", f"error trying to reach {self.what}: the backend closed "
                                            "the connection without an answer")
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            pass
        finally:
            w.close()
        return False


def _proxy_target(req: Any, ctx: Any, kind: str, namespace: str, raw_name: str) -> Proxy:
    spec_text = unquote(raw_name)
    parts = spec_text.split(":")
    scheme = ""
    if len(parts) == 3:
        scheme, name, port = parts
    elif len(parts) == 2:
        name, port = parts
    elif len(parts) == 1:
        name, port = parts[0], ""
    else:
        raise bad_request(f'invalid {kind.lower()} name "{spec_text}": expected [scheme:]name[:port]')
    if scheme not in ("", "http", "https"):
        raise bad_request(f'invalid scheme "{scheme}": http or https')
    marker = f"/{raw_name}/proxy"
    at = req.path.find(marker)
    path = req.path[at + len(marker):] if at >= 0 else ""
    if not path.startswith("/"):
        path = "/" + path
    qs = "&".join(f"{k}={v}" for k, vals in req.query.items() for v in vals)
    if qs:
        from urllib.parse import urlencode

        qs = urlencode([(k, v) for k, vals in req.query.items() for v in vals])
        path += "?" + qs
    reg = ctx.registry
    if kind == "Pod":
        pod = reg.get("Pod", namespace, name)
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            raise ApiError(503, "ServiceUnavailable", f'pod "{name}" has no IP address (is it running?)')
        number = _pod_port(pod, port)
        p = Proxy(scheme or "http", str(ip), number, path, f'pod "{name}"')
    else:
        svc = reg.get("Service", namespace, name)
        ip, number = _service_endpoint(reg, svc, namespace, name, port)
        p = Proxy(scheme or "http", ip, number, path, f'service "{name}"')
    p.body = req.body  # type: ignore[attr-defined]
    return p


def _pod_port(pod: Obj, port: str) -> int:
    ports = [p for c in (pod.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []]
    if not port:
        return 80 if not ports else int(ports[0].get("containerPort", 80))
    if port.isdigit():
        return int(port)
    for p in ports:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise bad_request(f'no port named "{port}" in pod "{pod["metadata"]["name"]}"')


def _service_endpoint(reg: Any, svc: Obj, namespace: str, name: str, port: str) -> tuple[str, int]:
    sports = (svc.get("spec") or {}).get("ports") or []
    chosen = None
    if not port:
        if len(sports) != 1:
            raise bad_request(f'service "{name}" has {len(sports)} ports: name one, e.g. {name}:{(sports or [{}])[0].get("name", "PORT")}')
        chosen = sports[0]
    else:
        for sp in sports:
            if sp.get("name") == port or str(sp.get("port")) == port:
                chosen = sp
                break
        if chosen is None:
            raise ApiError(503, "ServiceUnavailable", f'no service port "{port}" found for service "{name}"')
    try:
        ep = reg.get("Endpoints", namespace, name)
    except NotFound:
        ep = {}
    choices = []
    for subset in ep.get("subsets") or []:
        eports = subset.get("ports") or []
        match = [p for p in eports if (p.get("name") or "") == (chosen.get("name") or "")] or (eports if len(eports) == 1 else [])
        if not match:
            continue
        for a in subset.get("addresses") or []:
            choices.append((str(a["ip"]), int(match[0]["port"])))
    if not choices:
        raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
    return random.choice(choices)


__all__ = ["Action", "StreamIO", "route", "long_running", "upgrade_kind", "BadRequest"]

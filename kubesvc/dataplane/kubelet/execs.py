"""Running a command inside a running container (``kubectl exec``, ``kubesvc exec``).

Rules kept here:
- A pod here is a local process, so "inside the container" means the context the kubelet started it
  in: the same environment, working directory, user (``identity.resolve``'s answer, applied the same
  way) and, with ``--isolation netns``, the same network namespace (the same ``ip netns exec``/
  ``setpriv`` prefix). The kubelet writes that context into the container's record
  (``process.json``, private to the kubelet's user) when it starts the container; exec reads it
  back, so exec runs exactly what the kubelet decided even when the kubelet is another process.
- Exec needs the container to run now (the record's process is alive): else the kubelet's
  ``container not found ("NAME")``.
- Whoever execs must be able to take that identity: the kubelet's own user, or root.
- With a TTY the command gets a new session whose controlling terminal is a fresh pty.
- Attach stdin (a container with ``stdin: true``): its stdin is a FIFO, ``<pod dir>/<container>/stdin``
  (mode 0600 in the container's 0700 directory, both the kubelet's user's, like the record: whoever may read
  the exec context may write the container's stdin; the container gets the descriptor already open, so its
  own user needs no access to the path). The record names it (``stdin``: path, once, holder) and
  ``pods/attach`` writes the client's stdin into it. Without ``stdinOnce`` the container's own descriptor is
  opened read-write, so it never sees end of input, whoever attaches and detaches (even with no kubelet
  running). With ``stdinOnce`` the container reads a read-only descriptor and a holder process
  (``tail --pid=PID -f /dev/null``, which ends with the container) keeps the write side open until the first
  attach session's stdin ends: that session then stops the holder and removes the FIFO, so the container
  reads end of input and later sessions' stdin is dropped, as a runtime closes a stdinOnce container's stdin.
- Attach TTY (a container with ``tty: true``, as a runtime starts it): the kubelet starts it on a pseudo-terminal
  (``Tty``): its stdin, stdout and stderr are the pty's terminal end, it leads a new session with that terminal
  as its controlling terminal (then changes user, as ``identity`` says), and the kubelet keeps the master end:
  it copies what the container writes (stdout and stderr merged, the terminal's echo included) into the
  container's log file, and serves a unix socket, ``<container dir>/tty`` (mode 0600 in the 0700 directory, named
  in the record as ``tty.socket``), that ``pods/attach`` connects to: frames of one kind byte, a 4-byte big-endian
  length and the payload, kind 0 input bytes written to the master, kind 4 a resize (2+2 bytes width, height:
  TIOCSWINSZ on the master). Such a container reads its terminal whether or not it has ``stdin: true`` (without
  it, attach sends it no input). ``stdinOnce`` is not applied to a terminal: its input never ends. The master
  end lives in the kubelet: a kubelet that dies hangs the terminal up (the container gets SIGHUP, as a login
  session does); one that survives and is adopted has no terminal the new kubelet can reach, so attach to it is
  output-only (its output no longer reaches the log either).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import stat
import struct
import termios
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubesvc.dataplane.kubelet import identity, logs, tracking
from kubesvc.errors import BadRequest

Obj = dict[str, Any]


STDIN_FIFO = "stdin"
TTY_SOCKET = "tty"
TTY_INPUT, TTY_RESIZE = 0, 4  # frame kinds on the tty socket (the attach channels' numbers)


def record(ident: identity.Identity | None, env: dict[str, str], cwd: str, wrap: list[str], popen_switch: bool,
           stdin: Obj | None = None, tty: Obj | None = None) -> Obj:
    """The exec context kept in a container's record (see module rules)."""
    assert ident is not None
    rec = {"env": env, "cwd": os.path.abspath(cwd), "wrap": list(wrap), "uid": ident.uid, "gid": ident.gid,
           "groups": list(ident.groups), "switch": popen_switch}
    if stdin is not None:
        rec["stdin"] = stdin
    if tty is not None:
        rec["tty"] = tty
    return rec


def short_path(path: Path | str) -> tuple[str, int]:
    """A unix socket's path through ``/proc/self/fd`` (sun_path holds 108 bytes, a store's paths may be longer),
    and the directory descriptor to close after bind/connect."""
    path = Path(path)
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{path.name}", fd


def tty_frame(kind: int, payload: bytes) -> bytes:
    return struct.pack("!BI", kind, len(payload)) + payload


def resize_frame(width: int, height: int) -> bytes:
    return tty_frame(TTY_RESIZE, struct.pack("!HH", max(0, min(width, 65535)), max(0, min(height, 65535))))


async def fd_ready(fd: int, write: bool = False) -> None:
    """Wait until ``fd`` is readable (or writable, with ``write``), through the running loop."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, wake)
    try:
        await ready
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking descriptor, waiting while the reader has not taken the rest."""
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:
            await fd_ready(fd, write=True)


@dataclass
class Tty:
    """A ``tty: true`` container's terminal on the kubelet's side (see module rules): ``child`` is the terminal
    end the container gets (stdin, stdout, stderr), ``master`` the end the kubelet reads into ``log`` and
    writes attach input to."""

    master: int
    child: int
    socket_path: Path
    log: int
    server: asyncio.AbstractServer | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    conns: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    async def make(cls, container_dir: Path, log_file: Path, uid: int = -1) -> Tty:
        container_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        master, child = os.openpty()
        os.set_inheritable(master, False)
        if uid >= 0 and os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.fchown(child, uid, -1)  # the container's own terminal, as a login's is
        t = cls(master, child, container_dir / TTY_SOCKET, log)
        try:
            with contextlib.suppress(FileNotFoundError):
                t.socket_path.unlink()  # a previous instance's
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            short, dfd = short_path(t.socket_path)
            try:
                sock.bind(short)
            finally:
                os.close(dfd)
            os.chmod(t.socket_path, 0o600)
            t.server = await asyncio.start_unix_server(t._serve, sock=sock)
        except BaseException:
            await t.close()
            raise
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, t._output)
        return t

    def preexec(self, then: Callable[[], None] | None) -> Callable[[], None]:
        """The child's set-up: a new session whose controlling terminal is ours, then ``then`` (the change of user)."""
        child = self.child

        def run() -> None:
            with contextlib.suppress(OSError):  # already a session leader (the loop's own setsid ran first)
                os.setsid()
            fcntl.ioctl(child, termios.TIOCSCTTY, 0)
            if then is not None:
                then()

        return run

    def _output(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every holder of the terminal end has gone
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
            self.done.set()
            return
        with contextlib.suppress(OSError):
            os.write(self.log, data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.conns.add(task)
        try:
            while True:
                kind, n = struct.unpack("!BI", await reader.readexactly(5))
                payload = await reader.readexactly(n)
                if self.master < 0:
                    return
                if kind == TTY_INPUT and payload:
                    await write_all(self.master, payload)
                elif kind == TTY_RESIZE and len(payload) == 4:
                    width, height = struct.unpack("!HH", payload)
                    set_winsize(self.master, width, height)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            if task is not None:
                self.conns.discard(task)
            writer.close()

    def started(self) -> None:
        """The container has its terminal end: the kubelet keeps only the master."""
        if self.child >= 0:
            os.close(self.child)
            self.child = -1

    def record(self) -> Obj:
        return {"socket": str(self.socket_path)}

    async def close(self) -> None:
        """The container has exited (or never started): the rest of its output into the log, then drop it all."""
        self.started()
        if self.server is not None:
            self.server.close()
            self.server = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        for t in list(self.conns):
            t.cancel()
        if self.master >= 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):  # unless a leftover process still holds the terminal
                    await self.done.wait()
            with contextlib.suppress(OSError, ValueError):
                asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            self.master = -1
        if self.log >= 0:
            os.close(self.log)
            self.log = -1


@dataclass
class StdinPipe:
    """A container's stdin FIFO on the kubelet's side: ``child`` is the descriptor the container gets,
    ``keeper`` the write side the holder keeps (stdinOnce only)."""

    path: Path
    once: bool
    child: int
    keeper: int = -1
    holder: asyncio.subprocess.Process | None = None
    holder_start: str | None = None

    @classmethod
    def make(cls, container_dir: Path, once: bool) -> StdinPipe:
        container_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = container_dir / STDIN_FIFO
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a previous instance's: each run gets a fresh stdin
        os.mkfifo(path, 0o600)
        os.chmod(path, 0o600)  # whatever the umask
        rw = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        if not once:
            return cls(path, once, rw)
        ro = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        os.set_blocking(ro, True)
        return cls(path, once, ro, keeper=rw)

    async def hold(self, pid: int) -> None:
        """stdinOnce: hand the write side to a holder that lives as long as the container ``pid``."""
        if self.keeper < 0:
            return
        try:
            self.holder = await asyncio.create_subprocess_exec(
                "tail", f"--pid={pid}", "-f", "/dev/null", stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, pass_fds=(self.keeper,),
                start_new_session=True)
        except OSError:
            return  # no tail: the kubelet keeps the write side itself (no end of input until the container exits)
        self.holder_start = tracking.start_time(self.holder.pid)
        os.close(self.keeper)
        self.keeper = -1

    def started(self) -> None:
        """The container has its descriptor: the kubelet keeps none of its own (but the holder's)."""
        if self.child >= 0:
            os.close(self.child)
            self.child = -1

    def record(self) -> Obj:
        rec: Obj = {"path": str(self.path), "once": self.once}
        if self.holder is not None and self.holder_start:
            rec.update(holder=self.holder.pid, holderStart=self.holder_start)
        return rec

    async def close(self) -> None:
        """The container has exited (or never started): drop the holder, the descriptors and the FIFO."""
        self.started()
        if self.keeper >= 0:
            os.close(self.keeper)
            self.keeper = -1
        if self.holder is not None:
            if self.holder.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.holder.kill()
            await self.holder.wait()
            self.holder = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass(frozen=True)
class AttachStdin:
    """What ``pods/attach`` needs to write a running container's stdin (from its record)."""

    path: str
    once: bool
    holder: int = 0
    holder_start: str = ""

    def open(self) -> int:
        """A non-blocking write descriptor, or -1 when the stdin is gone (stdinOnce already closed, or the
        container just exited)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, OSError) as e:
            if isinstance(e, PermissionError):
                raise
            return -1  # ENOENT: closed by a stdinOnce session; ENXIO: no reader any more
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            return -1
        return fd

    def close_once(self) -> None:
        """End a stdinOnce container's input: no later session gets its stdin, and the holder lets go."""
        if not self.once:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if self.holder and tracking.is_ours(self.holder, self.holder_start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.holder, signal.SIGKILL)


def _live_exec_part(store_path: str, pod: Obj, container: str, key: str) -> Obj | None:
    """``exec[key]`` of the record of a running container whose spec sets ``key`` (``stdin``/``tty``), else None."""
    spec: Obj = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == container), {})
    if not spec.get(key):
        return None
    rec = tracking.read(tracking.record_path(logs.pod_dir(store_path, pod) / container))
    ctx = (rec or {}).get("exec")
    if not tracking.live(rec) or not isinstance(ctx, dict) or not isinstance(ctx.get(key), dict):
        return None
    part: Obj = ctx[key]
    return part


def attach_stdin(store_path: str, pod: Obj, container: str) -> AttachStdin | None:
    """The stdin of a running container whose spec asks for one (``stdin: true``), else None: a runtime
    drops the stdin of an attach to a container that has none."""
    st = _live_exec_part(store_path, pod, container, "stdin")
    if st is None:
        return None
    return AttachStdin(str(st.get("path") or ""), bool(st.get("once")), int(st.get("holder") or 0),
                       str(st.get("holderStart") or ""))


def attach_tty(store_path: str, pod: Obj, container: str) -> str | None:
    """The tty socket of a running ``tty: true`` container, else None (no terminal, or an adopted container's,
    whose master end its kubelet took with it)."""
    tty = _live_exec_part(store_path, pod, container, "tty")
    if tty is None:
        return None
    path = str(tty.get("socket") or "")
    return path if path and os.path.exists(path) else None


@dataclass(frozen=True)
class Target:
    pod: str
    container: str
    env: dict[str, str]
    cwd: str
    wrap: list[str] = field(default_factory=list)
    uid: int = -1
    gid: int = -1
    groups: tuple[int, ...] = ()
    switch: bool = False

    def argv(self, command: list[str]) -> list[str]:
        return [*self.wrap, *command]

    def popen_kwargs(self, tty: int | None = None) -> dict[str, Any]:
        """subprocess/asyncio keyword arguments: env, cwd, a new session, and in the child the pty whose
        terminal end is the descriptor ``tty`` as its controlling terminal, and the change of user."""
        uid, gid, groups, switch = self.uid, self.gid, self.groups, self.switch

        def child() -> None:
            with contextlib.suppress(OSError):  # already a session leader (the loop's own setsid ran first)
                os.setsid()
            if tty is not None:
                fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
            if switch:
                os.setgroups(list(groups))
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)

        return {"env": self.env, "cwd": self.cwd, "preexec_fn": child}


def target(store_path: str, pod: Obj, container: str | None) -> Target:
    name = logs.pick_container(pod, container)
    rec = tracking.read(tracking.record_path(logs.pod_dir(store_path, pod) / name))
    if rec is None or not tracking.live(rec) or not isinstance(rec.get("exec"), dict):
        raise BadRequest(f'container not found ("{name}")')
    ctx = rec["exec"]
    t = Target(pod["metadata"]["name"], name, {str(k): str(v) for k, v in (ctx.get("env") or {}).items()},
               str(ctx.get("cwd") or "/"), [str(a) for a in ctx.get("wrap") or []], int(ctx.get("uid", -1)),
               int(ctx.get("gid", -1)), tuple(int(g) for g in ctx.get("groups") or []), bool(ctx.get("switch")))
    euid = os.geteuid()
    if euid != 0 and ((t.switch and t.uid != euid) or t.wrap):
        raise BadRequest(f'cannot exec in container "{name}": it runs as uid {t.uid}'
                         f"{' in its own network namespace' if t.wrap else ''}, which needs root (this process runs "
                         f"as uid {euid})")
    return t


def set_winsize(fd: int, width: int, height: int) -> None:
    """Resize a pty (the TTY resize channel); nonsense sizes are ignored."""
    if 0 < width < 65536 and 0 < height < 65536:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def exit_code(returncode: int) -> int:
    """A shell's exit status for a process's return code (128+N for a signal)."""
    return 128 - returncode if returncode < 0 else returncode

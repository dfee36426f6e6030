"""Flow control of a client connection (the third of ``ClientConn``'s parts, as uvicorn's ``FlowControl``): why
reading is paused, the write side's pause (a slow client pauses the upstream it reads from), the connection's one
deadline (kind and time, checked by the router's sweep), gathered writes, lingering close, close and abort.

Rules kept here (see ``http`` for the whole list):
- Reading pauses for named reasons (``pipeline``: a request is held while one is answered; ``buffer`` and ``connect``:
  a body is buffered while no upstream is attached; ``upstream``: the upstream's socket buffer is full) and resumes
  when the last reason goes.
- While the client's socket buffer is full, the upstream it reads from is paused and its read deadline lifted
  (a slow client is not a slow upstream); the send deadline (``send_timeout``) runs instead.
- Writes made while one upstream chunk is parsed are gathered (``obuf``) and go out as one ``write``.
"""

from __future__ import annotations

from typing import Any

from kubesvc.dataplane.ingress.exchange import LINGER, Exchange, HTTPConfig, Shared
from kubesvc.dataplane.ingress.lane import ClientRoot
from kubesvc.dataplane.ingress.upstream import Clock, UpstreamConn


class FlowControl(ClientRoot):
    """The connection state every part shares, and the flow-control methods. Not used alone: see ``ClientConn``."""

    shared: Shared
    cfg: HTTPConfig
    transport: Any
    cur: Exchange | None
    pauses: set[str]
    deadline: float
    deadline_kind: str
    closing: bool
    write_paused: bool
    tunnel_up: UpstreamConn | None
    read_timeout: float
    lingering: bool
    obuf: list[bytes] | None

    # ------------------------------------------------------------------------------ asyncio write side
    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.cur
        if ex is not None and ex.up is not None:
            ex.up.pause_reading()
            ex.up.deadline = 0.0  # a slow client is not a slow upstream
        if self.tunnel_up is not None:
            self.tunnel_up.pause_reading()
        self._deadline("send", self.cfg.send_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.cur
        if ex is not None and ex.up is not None:
            ex.up.resume_reading()
            if ex.body_done:
                ex.up.deadline = Clock.now + self.read_timeout
        if self.tunnel_up is not None:
            self.tunnel_up.resume_reading()
        if self.deadline_kind == "send":
            self._deadline("", 0)

    # ------------------------------------------------------------------------------ flow control
    def pause(self, why: str) -> None:
        if not self.pauses and self.transport is not None and not self.closing:
            self.transport.pause_reading()
        self.pauses.add(why)

    def resume(self, why: str) -> None:
        if why in self.pauses:
            self.pauses.discard(why)
            if not self.pauses and self.transport is not None and not self.closing:
                self.transport.resume_reading()

    def _deadline(self, kind: str, seconds: float) -> None:
        self.deadline_kind = kind
        self.deadline = Clock.now + seconds if seconds else 0.0

    # ------------------------------------------------------------------------------ writing and closing
    def linger(self) -> None:
        """Answered before the request body was read: stop writing, read and drop what the client still
        sends for up to LINGER seconds, so the answer is not lost to a reset (nginx's lingering close)."""
        self.lingering = True
        self.pauses.clear()
        self.flush()
        t = self.transport
        if t is None or self.closing:
            return
        t.resume_reading()
        if t.can_write_eof():
            t.write_eof()
        self._deadline("linger", LINGER)

    def send(self, data: bytes) -> None:
        """Write to the client; while an upstream chunk is being parsed, writes are gathered (``obuf``) and
        go out as one ``write`` when the parse returns: head and body of a small answer share one syscall."""
        if self.obuf is not None:
            self.obuf.append(data)
        elif self.transport is not None:
            self.transport.write(data)

    def flush(self) -> None:
        buf, self.obuf = self.obuf, None
        if buf and self.transport is not None and not self.transport.is_closing():
            self.transport.write(buf[0] if len(buf) == 1 else b"".join(buf))

    def close(self) -> None:
        self.flush()
        if not self.closing:
            self.closing = True
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        self.closing = True
        self.obuf = None
        ex = self.cur
        if ex is not None and ex.up is not None:
            ex.up.abort()
            ex.up = None
        if self.transport is not None:
            self.transport.abort()

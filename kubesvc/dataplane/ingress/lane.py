"""The compiled module ``_heads`` (C, optional), and the fast lane: plain exchanges forwarded by compiled code
(``_heads.ClientBase``/``UpstreamBase``).

Rules kept here:
- ``BUILT`` is the compiled module, or None where kubesvc was installed without a C compiler; ``ENABLED`` says the
  router uses it (it is built and ``KUBESVC_INGRESS_COMPILED`` is not ``0``): the compiled head readers
  (``http.REQUEST_HEAD``, ``upstream.ANSWER_HEAD``) and the lane. This is the only place that imports it.
- ``http.ClientConn`` and ``upstream.UpstreamConn`` are built on ``ClientRoot`` and ``UpstreamRoot``. Where the
  compiled module was built (and ``KUBESVC_INGRESS_COMPILED`` is not ``0``) those are the compiled bases, whose
  ``data_received`` takes a plain exchange itself and hands everything else to the Python
  ``general_data_received``; elsewhere they are ``asyncio.Protocol`` and ``data_received`` is the Python one.
- A plain exchange: a bodyless request alone in its chunk, of the shape ``_heads.request`` reads, between requests on
  a connection with nothing pending, that routes upstream (the router's own answers are Python's) to an endpoint
  with an idle pooled connection (a fresh dial is Python's) and that llhttp accepts; its answer, on that
  connection, a plain head (``_heads.answer``'s shape) with its whole Content-Length body in one chunk, which
  llhttp accepts. HEAD requests take the lane on the way up only. Everything the Python path checks is checked, in
  the same order, and the same bytes go out (tests/dataplane/test_ingress_heads.py runs a router with the lane and one
  without side by side).
- While a fast exchange is in flight its state is in C, not in a Python ``Exchange``: ``ClientConn.cur`` (a
  property of the compiled base) makes the ``Exchange`` the Python path would have made (``Cycle.materialize``) the
  moment Python code reads it: a timeout, a lost connection, a pipelined request, a paused write, the access log,
  the ``kubesvc top`` feed, a graceful stop's ``busy``. From then on the exchange is Python's.
- The lane finishes an exchange itself only in the common case: kept alive, no access log, no ``kubesvc top``
  watching, nothing pending, no pause; otherwise ``Cycle.finish`` does it on the made ``Exchange``.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

BUILT: Any = None
if not TYPE_CHECKING:
    try:
        from kubesvc.dataplane.ingress import _heads as BUILT
    except ImportError:  # built without a C compiler: the Python path writes the same bytes
        pass
ENABLED = BUILT is not None and os.environ.get("KUBESVC_INGRESS_COMPILED", "1") != "0"

if TYPE_CHECKING:
    class ClientRoot(asyncio.Protocol):
        def lane_setup(self, *args: Any) -> None: ...
        def in_lane(self) -> bool: ...

    class UpstreamRoot(asyncio.Protocol):
        pass
elif ENABLED:
    class ClientRoot(BUILT.ClientBase, asyncio.Protocol):
        __slots__ = ()

    class UpstreamRoot(BUILT.UpstreamBase, asyncio.Protocol):
        __slots__ = ()
else:
    ClientRoot = UpstreamRoot = asyncio.Protocol

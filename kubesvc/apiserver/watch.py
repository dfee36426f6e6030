"""``watch=true``: a chunked stream of JSON events driven by the store's change log.

Rules kept here (kubectl-wire.md §5.3):
- ``resourceVersion`` N: every change with revision > N. Empty or ``"0"``: first a synthetic ADDED
  per matching object (a consistent snapshot), then the changes after the snapshot's revision.
- A compacted N is answered with one ERROR event carrying a 410 ``Expired`` Status, then the end.
- An N beyond the store's revision waits up to ``BLOCK_TIMEOUT`` (3 s, the apiserver's blockTimeout) for
  the store to reach it, then ends with one ERROR event carrying the apiserver's 504 ``Timeout`` Status
  "Too large resource version: N, current: M" (cause ``ResourceVersionTooLarge``, retry after 1 s).
- Events are filtered by namespace, label and field selectors on the object they carry (DELETED
  carries the last state). With ``as=Table`` in Accept each object is a one-row Table.
- BOOKMARK events (only with ``allowWatchBookmarks=true``) every ``bookmark_interval`` seconds carry
  the revision the watch has caught up to.
- The stream ends at ``timeoutSeconds``, at server shutdown, or when the client goes away.
- Idle watches cost nothing: they hold no thread and make no query. One ``Hub`` per server probes the
  store (``PRAGMA data_version``, on the loop, only while some watch is open), reads each batch of new
  changes once, keeps the last ``RING`` of them and wakes every watch; a watch behind the ring reads
  the change log itself (and gets 410 Expired if that was compacted).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kubesvc.apiserver import views
from kubesvc.apiserver.discovery import Resource
from kubesvc.apiserver.handlers import Context, Request, Response, bad_request, now, request_filter, snapshot
from kubesvc.apiserver.status import from_error, status
from kubesvc.store.db import Change, Gone, Store

log = logging.getLogger("kubesvc.apiserver")

POLL_INTERVAL = 0.02  # seconds between two store probes while any watch is open (one probe per server)
RING = 1024  # recent changes kept for watches to read without a query
BLOCK_TIMEOUT = 3.0  # kube-apiserver's watch cache blockTimeout
INLINE_RENDER = 16  # more events than this in one batch are rendered on a worker thread, off the loop

RunSync = Callable[..., Awaitable[Any]]


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _expired(message: str) -> bytes:
    return _line({"type": "ERROR", "object": status(410, "Expired", message)})


def too_large(rv: int, current: int) -> dict[str, Any]:
    """storage.NewTooLargeResourceVersionError as the apiserver words it."""
    return status(504, "Timeout", f"Timeout: Too large resource version: {rv}, current: {current}",
                  {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                   "retryAfterSeconds": 1})


def _read_log(store_path: str, since: int) -> tuple[int, list[Change]]:
    """(a revision every change up to which is in the list, the changes after ``since``); raises Gone."""
    with Store(store_path) as s:
        rev = s.revision()
        rows = s.changes(since)
    return max(rev, rows[-1].revision if rows else rev), rows


class Hub:
    """One per server: follows the store's change log for every open watch."""

    def __init__(self, store_path: str, run_sync: RunSync, poll_interval: float = POLL_INTERVAL, keep: int = RING) -> None:
        self.store_path = store_path
        self.run_sync = run_sync
        self.poll_interval = poll_interval
        self.keep = keep
        self.rev = -1  # every change up to here has been read
        self.base = -1  # the ring holds every change in (base, rev]
        self.ring: list[Change] = []
        self.watchers: set[WatchStream] = set()
        self.closed = False
        self.generation = 0  # bumped when following the store failed: the watches of before end with an ERROR
        self.error: BaseException | None = None
        self.probes = 0  # data_version probes (one per poll interval while any watch is open)
        self.fetches = 0  # change-log reads, by the hub or by watches behind the ring
        self.wakeups = 0  # watch wake-ups after new changes
        self._store: Store | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def attach(self, w: WatchStream) -> None:
        self.watchers.add(w)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        await self._ready.wait()

    def detach(self, w: WatchStream) -> None:
        self.watchers.discard(w)

    def close(self) -> None:
        self.closed = True
        for w in list(self.watchers):
            w.wake()
        if self._store is not None and (self._task is None or self._task.done()):
            self._store.close()
            self._store = None

    def since(self, cur: int) -> list[Change]:
        return self.ring[bisect.bisect_right(self.ring, cur, key=lambda c: c.revision):]

    async def read_log(self, since: int) -> tuple[int, list[Change]]:
        self.fetches += 1
        return await self.run_sync(_read_log, self.store_path, since)

    def _wake_all(self) -> None:
        self.wakeups += len(self.watchers)
        for w in list(self.watchers):
            w.wake()

    async def _run(self) -> None:
        try:
            if self._store is None:
                self._store = await self.run_sync(Store, self.store_path)
            store = self._store
            seen = store.data_version()  # before the read: a commit in between is seen by the next probe
            await self._reset()  # after a pause with no watch, start afresh: watches behind read the log
            self._ready.set()
            while self.watchers and not self.closed:
                await asyncio.sleep(self.poll_interval)
                self.probes += 1
                dv = store.data_version()
                if dv != seen:
                    seen = dv
                    await self._fetch()
        except Exception as e:  # noqa: BLE001 - the watches end with an ERROR event; the next watch starts afresh
            log.exception("watch hub failed")
            self.error = e
            self.generation += 1
            self._wake_all()
            if self._store is not None:
                self._store.close()
                self._store = None
        finally:
            self._ready.set()  # releases the watches waiting in attach ...
            if not self.closed:
                self._ready.clear()  # ... while a later attach waits for the next start
            if self.closed and self._store is not None:
                self._store.close()
                self._store = None

    async def _reset(self) -> None:
        store = self._store
        assert store is not None
        self.rev = self.base = await self.run_sync(store.revision)
        self.ring = []

    def _fetch_sync(self) -> tuple[int, list[Change]]:
        store = self._store
        assert store is not None
        rev = store.revision()
        rows = store.changes(self.rev)
        return max(rev, rows[-1].revision if rows else rev), rows

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            rev, rows = await self.run_sync(self._fetch_sync)
        except Gone:  # compacted past the hub: watches behind the new base read the log and get 410
            await self._reset()
            self._wake_all()
            return
        if rows:
            self.ring.extend(rows)
            if len(self.ring) > self.keep:
                drop = len(self.ring) - self.keep
                self.base = self.ring[drop - 1].revision
                del self.ring[:drop]
        if rev > self.rev:
            self.rev = rev
            self._wake_all()


class WatchStream:
    """What the handler prepared on a worker thread (the first events, the cursor); ``run`` streams the
    rest from the event loop."""

    def __init__(self, res: Resource, flt: Any, render: Callable[[str, dict[str, Any]], bytes], initial: list[bytes],
                 cur: int, future: int | None, timeout: float, bookmarks: bool, bookmark_interval: float) -> None:
        self.res, self.flt, self.render = res, flt, render
        self.initial, self.cur, self.future = initial, cur, future
        self.deadline = time.monotonic() + max(0.0, timeout)
        self.bookmarks, self.bookmark_interval = bookmarks, bookmark_interval
        self._wake: asyncio.Event | None = None

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        if seconds > 0:
            try:
                async with asyncio.timeout(seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
        self._wake.clear()

    async def _lines(self, hub: Hub, changes: list[Change]) -> list[bytes]:
        kind = self.res.kind.kind
        matching = [c for c in changes if c.kind == kind and self.flt.matches(c.object)]
        if len(matching) <= INLINE_RENDER:
            return [self.render(c.type, c.object) for c in matching]
        return await hub.run_sync(lambda: [self.render(c.type, c.object) for c in matching])

    async def run(self, hub: Hub, send: Callable[[bytes], Awaitable[None]], gone: asyncio.Event) -> None:
        self._wake = asyncio.Event()
        for line in self.initial:
            await send(line)
        self.initial = []
        k = self.res.kind
        generation = hub.generation
        await hub.attach(self)

        def failed() -> bool:
            return hub.generation != generation

        try:
            if self.future is not None:
                limit = min(time.monotonic() + BLOCK_TIMEOUT, self.deadline)
                while hub.rev < self.future:
                    left = limit - time.monotonic()
                    if gone.is_set() or hub.closed or failed():
                        break
                    if left <= 0:
                        await send(_line({"type": "ERROR", "object": too_large(self.future, hub.rev)}))
                        return
                    await self._sleep(left)
            last_bookmark = time.monotonic()
            while not gone.is_set() and not hub.closed and not failed():
                if self.cur < hub.base:
                    try:
                        new_cur, batch = await hub.read_log(self.cur)
                    except Gone as e:
                        await send(_expired(e.message))
                        return
                    except Exception as e:  # noqa: BLE001 - a store that cannot be read: the stream says so and ends
                        log.warning("watch could not read the change log: %s", e)
                        await send(_line({"type": "ERROR", "object": from_error(e)}))
                        return
                else:
                    batch, new_cur = hub.since(self.cur), max(self.cur, hub.rev)
                for line in await self._lines(hub, batch):
                    await send(line)
                self.cur = new_cur
                t = time.monotonic()
                if t >= self.deadline:
                    return
                if self.bookmarks and t - last_bookmark >= self.bookmark_interval:
                    last_bookmark = t
                    await send(_line({"type": "BOOKMARK", "object": {"kind": k.kind, "apiVersion": k.api_version,
                                                                     "metadata": {"resourceVersion": str(self.cur)}}}))
                if self.cur < hub.rev:
                    continue
                wait = self.deadline - t
                if self.bookmarks:
                    wait = min(wait, last_bookmark + self.bookmark_interval - t)
                await self._sleep(wait)
            if failed() and not gone.is_set() and not hub.closed:
                await send(_line({"type": "ERROR", "object": from_error(hub.error or RuntimeError("the watch failed"))}))
        finally:
            hub.detach(self)


def watch(req: Request, ctx: Context, res: Resource, namespace: str | None) -> Response:
    """Runs on a worker thread: parse, check the starting revision, read the first events; the returned
    Response carries a WatchStream the server runs on its loop."""
    if res.derived:
        from kubesvc.apiserver.status import ApiError

        raise ApiError(405, "MethodNotAllowed", f"kubesvc does not serve watch on {res.kind.resource}")
    k = res.kind
    flt = request_filter(req, k, namespace)
    rv_text = req.param("resourceVersion")
    timeout_text = req.param("timeoutSeconds")
    try:
        timeout = float(timeout_text) if timeout_text else ctx.watch_timeout
        since = int(rv_text) if rv_text not in ("", "0") else None
        if since is not None and since < 0 or not timeout == timeout:  # negative, NaN
            raise ValueError
    except (ValueError, OverflowError):
        raise bad_request(f'invalid watch parameters: resourceVersion="{rv_text}" timeoutSeconds="{timeout_text}"') from None
    timeout = min(max(timeout, 0.0), 10 * ctx.watch_timeout)
    as_table = req.wants_table
    include = req.param("includeObject", "Metadata")
    bookmarks = req.flag("allowWatchBookmarks")

    def render(type_: str, obj: dict[str, Any]) -> bytes:
        if as_table:
            body = views.table(k, [obj], None, now(), include)
            body["metadata"]["resourceVersion"] = obj["metadata"].get("resourceVersion", "")
        else:
            body = views.with_type(obj, k)
        return _line({"type": type_, "object": body})

    store = ctx.registry.store
    future = None
    if since is None:
        cur, objs = snapshot(ctx, res, flt)
        initial = [render("ADDED", obj) for obj in objs]
    else:
        rev = store.revision()
        try:
            rows = store.changes(since)
        except Gone as e:
            return Response(200, stream=iter([_expired(e.message)]))
        if since > max(rev, rows[-1].revision if rows else rev):
            future, cur, initial = since, since, []
        else:
            cur = max(rev, rows[-1].revision if rows else rev)
            initial = [render(c.type, c.object) for c in rows if c.kind == k.kind and flt.matches(c.object)]
    return Response(200, stream=WatchStream(res, flt, render, initial, cur, future, timeout, bookmarks,
                                            ctx.bookmark_interval))

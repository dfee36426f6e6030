"""``watch=true``: a chunked stream of JSON events driven by the store's revision log.

Rules kept here (kubectl-wire.md §5.3):
- ``resourceVersion`` N: every change with revision > N. Empty or ``"0"``: first a synthetic ADDED
  per matching object (a consistent snapshot), then the changes after the snapshot's revision.
- A compacted N is answered with one ERROR event carrying a 410 ``Expired`` Status, then the end.
- Events are filtered by namespace, label and field selectors on the object they carry (DELETED
  carries the last state). With ``as=Table`` in Accept each object is a one-row Table.
- BOOKMARK events (only with ``allowWatchBookmarks=true``) every ``bookmark_interval`` seconds carry
  the revision the watch has caught up to.
- The stream ends at ``timeoutSeconds``, at server shutdown, or when the client goes away; the
  store is polled through ``wait_for_change`` (a cheap ``PRAGMA data_version`` probe).
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

from kubesvc.apiserver import views
from kubesvc.apiserver.discovery import Resource
from kubesvc.apiserver.handlers import Context, Request, Response, bad_request, now, request_filter, snapshot
from kubesvc.apiserver.status import status
from kubesvc.store.db import Gone


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def watch(req: Request, ctx: Context, res: Resource, namespace: str | None) -> Response:
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
    except ValueError:
        raise bad_request(f'invalid watch parameters: resourceVersion="{rv_text}" timeoutSeconds="{timeout_text}"') from None
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

    def expired(message: str) -> bytes:
        return _line({"type": "ERROR", "object": status(410, "Expired", message)})

    def events() -> Iterator[bytes]:
        store = ctx.registry.store
        cur = since
        if cur is None:
            cur, objs = snapshot(ctx, res, flt)
            for obj in objs:
                yield render("ADDED", obj)
        deadline = time.monotonic() + max(0.0, timeout)
        last_bookmark = time.monotonic()
        while not ctx.stop.is_set() and ctx.alive():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            rev = store.wait_for_change(cur, min(0.25, left), interval=0.02)
            try:
                changes = store.changes(cur, (k.kind,)) if rev > cur else []
            except Gone as e:
                yield expired(e.message)
                return
            for ch in changes:
                if flt.matches(ch.object):
                    yield render(ch.type, ch.object)
            cur = max(rev, changes[-1].revision if changes else cur)
            if bookmarks and time.monotonic() - last_bookmark >= ctx.bookmark_interval:
                last_bookmark = time.monotonic()
                yield _line({"type": "BOOKMARK", "object": {"kind": k.kind, "apiVersion": k.api_version,
                                                             "metadata": {"resourceVersion": str(cur)}}})

    if since is not None:
        try:
            ctx.registry.store.changes(since, (k.kind,))
        except Gone as e:
            return Response(200, stream=iter([expired(e.message)]))
    return Response(200, stream=events())

"""`kubesvc trace`: one line per connection (and ingress request) as it happens, from the proxy and the ingress router.

Each line says where the client came in (cluster IP, NodePort, LB, external IP, or the ingress rule), which endpoint
was chosen and why (round robin turn, affinity hit, failover after a refused or timed-out dial); a second line when
the connection closes gives its bytes and duration. ``-o json`` prints the events as the components send them.
"""

from __future__ import annotations

import ipaddress
import json
import select
import sys
import time
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import NamespaceOpt, StoreOpt
from kubesvc.errors import ClientError


def _target(target: str | None, to: str | None, namespace: str | None, store: str | None) -> dict[str, str]:
    if (target is None) == (to is None):
        raise ClientError("trace needs a Service (svc/NAME) or --to IP:PORT, not both" if target and to
                          else "you must specify a Service to trace (svc/NAME) or --to IP:PORT")
    if to is not None:
        host, sep, port = to.rpartition(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
            ok = sep and port.isdigit() and 0 < int(port) < 65536
        except ValueError:
            ok = False
        if not ok:
            raise ClientError(f'--to: "{to}" is not IP:PORT (e.g. 127.96.0.12:80)')
        return {"to": to}
    assert target is not None
    kind, slash, name = target.partition("/")
    if not slash:
        kind, name = "svc", target
    if kind.lower() not in ("svc", "service", "services") or not name:
        raise ClientError(f'trace follows Services: "{target}" is not one (use svc/NAME)')
    ns, _ = common.namespace(namespace)
    common.registry(store).get("Service", ns, name)  # NotFound: 'services "x" not found'
    return {"service": f"{ns}/{name}"}


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def _size(n: int) -> str:
    for suffix, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {suffix}"
    return f"{n} B"


def _frontend(fe: dict[str, Any]) -> str:
    if fe.get("kind") == "ingress":
        return f'ingress rule "{fe.get("rule", "")}"'
    return f"{fe.get('address', '?')} ({fe.get('kind', '?')})"


def text_line(ev: dict[str, Any]) -> str:
    svc = f"{ev.get('service', '')}{':' + ev['port'] if ev.get('port') else ''}"
    head = f"{_clock(ev.get('time', time.time()))}  {ev['event']:<7} {svc}  {ev.get('client', '')} -> {_frontend(ev.get('frontend') or {})}"
    if ev["event"] == "open":
        why = ev.get("reason", "")
        failed = ev.get("failed") or []
        if failed:
            why += " after " + ", ".join(f"{f['endpoint']} {f['error']}" for f in failed)
        return f"{head} => {ev.get('endpoint', '')}  {why}"
    if ev["event"] == "close":
        return (f"{head} => {ev.get('endpoint', '')}  in {_size(ev.get('bytesIn', 0))}  out {_size(ev.get('bytesOut', 0))}"
                f"  {ev.get('duration', 0) * 1000:.1f} ms")
    if ev["event"] == "request":
        return f"{head} => {ev.get('endpoint') or '-'}  {ev.get('status', '')}"
    return f"{head}  {json.dumps(ev)}"


def trace(
    target: Annotated[str | None, typer.Argument(help="The Service to follow: svc/NAME (or NAME).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Follow connections to this address instead: a Service address (cluster IP, NodePort, LB) or an endpoint, IP:PORT.")] = None,
    namespace: NamespaceOpt = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="json: one JSON object per event (for scripts).")] = None,
    count: Annotated[int, typer.Option("--count", help="Stop after this many events (0: until Ctrl-C).")] = 0,
    store: StoreOpt = None,
) -> None:
    """Print each new connection to a Service as it happens: client, frontend, chosen endpoint and why; bytes and
    duration when it closes. Follows the proxy (and the ingress router's requests) of this store until Ctrl-C."""
    from kubesvc.dataplane import observe

    if output not in (None, "json"):
        raise ClientError(f'unable to match a printer suitable for the output format "{output}", allowed formats are: json')
    if count < 0:
        raise ClientError("--count must be 0 or more")
    want = _target(target, to, namespace, store)
    path = common.store_path(store)
    clients = []
    for comp, pid, sock in observe.sockets(path):
        if comp not in ("proxy", "ingress"):
            continue
        try:
            c = observe.Client(sock)
            c.request({"op": "trace", **want})
            first = c.readline()
            if first is None:
                c.close()
                continue
        except (observe.ObserveError, OSError):
            continue
        clients.append((comp, pid, c))
    if not clients:
        raise ClientError(f"no proxy or ingress router is running for the store {path} (kubesvc up, or kubesvc proxy)")
    what = want.get("service") or want.get("to")
    print(f"Tracing {what} on " + ", ".join(f"{comp} pid {pid}" for comp, pid, _ in clients) + " (Ctrl-C to stop)", file=sys.stderr, flush=True)
    seen = 0
    try:
        while clients:
            ready, _, _ = select.select([c for _, _, c in clients], [], [], 1.0)
            for entry in [e for e in clients if e[2] in ready]:
                comp, pid, c = entry
                try:
                    events = list(c.lines())
                except observe.ObserveError:
                    events = []
                    c.close()
                    clients.remove(entry)
                    print(f"{comp} pid {pid} stopped (or dropped this trace: it fell behind)", file=sys.stderr, flush=True)
                for ev in events:
                    if ev.get("event") == "attached":
                        continue
                    sys.stdout.write((json.dumps(ev, separators=(",", ":")) if output == "json" else text_line(ev)) + "\n")
                    sys.stdout.flush()
                    seen += 1
                    if count and seen >= count:
                        return
    except KeyboardInterrupt:
        pass
    finally:
        for _, _, c in clients:
            c.close()

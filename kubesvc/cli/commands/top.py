"""`kubesvc top`: a live view of Services, their endpoints and the traffic each gets, from the components themselves.

The static half (type, cluster IP, NodePorts, LB addresses, endpoints and their readiness) is read from the store;
the traffic half comes from every running component's socket (``dataplane/observe.py``): the proxy's counters,
open connections and affinity entries, and what it, the DNS server and the ingress router count while someone is
attached. Rates are differences between snapshots over the last ``RATE_WINDOW`` seconds.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections import deque
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import NamespaceOpt, SelectorOpt, StoreOpt
from kubesvc.errors import ClientError

RATE_WINDOW = 3.0


# ------------------------------------------------------------------------------------------- components


class Components:
    """Connections to every component socket of a store (re-discovered at each poll: components come and go)."""

    def __init__(self, store_path: str) -> None:
        self.store_path = store_path
        self.clients: dict[str, Any] = {}  # path -> observe.Client
        self.last: dict[str, dict[str, Any]] = {}  # path -> last snapshot

    def poll(self) -> list[dict[str, Any]]:
        from kubesvc.dataplane import observe

        live = {path: (comp, pid) for comp, pid, path in observe.sockets(self.store_path)}
        for path in [p for p in self.clients if p not in live]:
            self.clients.pop(path).close()
            self.last.pop(path, None)
        for path in live:
            if path not in self.clients:
                try:
                    self.clients[path] = observe.Client(path)
                except observe.ObserveError:
                    continue
        out = []
        for path, client in list(self.clients.items()):
            try:
                snap = client.snapshot()
            except (observe.ObserveError, OSError, ValueError):
                client.close()
                del self.clients[path]
                continue
            self.last[path] = snap
            out.append(snap)
        return out

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.clients.clear()


class Rates:
    """Per-second rates of monotonic counters from the snapshots seen in the last ``RATE_WINDOW`` seconds."""

    def __init__(self) -> None:
        self.seen: dict[Any, deque[tuple[float, float]]] = {}

    def feed(self, key: Any, t: float, value: float) -> None:
        d = self.seen.setdefault(key, deque())
        d.append((t, value))
        while len(d) > 2 and t - d[0][0] > RATE_WINDOW:
            d.popleft()

    def rate(self, key: Any) -> float | None:
        d = self.seen.get(key)
        if not d or len(d) < 2 or d[-1][0] <= d[0][0]:
            return None
        return max(0.0, (d[-1][1] - d[0][1]) / (d[-1][0] - d[0][0]))


# ------------------------------------------------------------------------------------------- the model


def _ports_of(svc: dict[str, Any]) -> list[dict[str, Any]]:
    return list((svc.get("spec") or {}).get("ports") or [])


def _endpoint_sets(eps: dict[str, Any] | None, pname: str) -> tuple[list[str], list[str]]:
    ready: list[str] = []
    not_ready: list[str] = []
    for sub in (eps or {}).get("subsets") or []:
        port = next((p for p in sub.get("ports") or [] if (p.get("name") or "") == pname), None)
        if port is None:
            continue
        for a in sub.get("addresses") or []:
            ready.append(f"{a['ip']}:{port['port']}")
        for a in sub.get("notReadyAddresses") or []:
            not_ready.append(f"{a['ip']}:{port['port']}")
    return ready, not_ready


def build_model(services: list[dict[str, Any]], endpoints: dict[tuple[str, str], dict[str, Any]], snaps: list[dict[str, Any]],
                rates: Rates) -> dict[str, Any]:
    """Pure: the store's objects and the components' snapshots -> rows for the printer."""
    proxy_ports: dict[tuple[str, str], list[dict[str, Any]]] = {}
    dns: dict[str, list[int]] = {}
    rules: dict[str, dict[str, int]] = {}
    comps: dict[str, int] = {}
    since = [s.get("since", 0.0) for s in snaps if s.get("since")]
    for s in snaps:
        comps[s.get("component", "?")] = comps.get(s.get("component", "?"), 0) + 1
        t = float(s.get("time", time.time()))
        for sp in s.get("servicePorts") or []:
            proxy_ports.setdefault((sp["service"], sp["port"]), []).append(sp)
            for ep in sp.get("endpoints") or []:
                for field in ("opened", "bytesIn", "bytesOut"):
                    rates.feed((s["pid"], sp["service"], sp["port"], ep["address"], field), t, ep.get(field, 0))
            c = sp.get("counters") or {}
            for field in ("total", "bytes_in", "bytes_out"):
                rates.feed((s["pid"], sp["service"], sp["port"], "", field), t, c.get(field, 0))
        for name, row in (s.get("names") or {}).items():
            rates.feed((s["pid"], "dns", name), t, row["queries"])
            d = dns.setdefault(name, [0, 0])
            d[0] += row["queries"]
            d[1] += row["nxdomain"]
        for rule, row in (s.get("rules") or {}).items():
            rates.feed((s["pid"], "rule", rule), t, row["requests"])
            r = rules.setdefault(rule, {})
            for k, v in row.items():
                r[k] = r.get(k, 0) + v
    pids = {s["pid"] for s in snaps}

    def rate(*key: Any) -> float | None:
        vals = [rates.rate((pid, *key)) for pid in pids]
        vals2 = [v for v in vals if v is not None]
        return sum(vals2) if vals2 else None

    rows = []
    failovers = []
    for svc in services:
        md, spec = svc["metadata"], svc.get("spec") or {}
        ns, name = md.get("namespace", ""), md["name"]
        svc_name = f"{ns}/{name}"
        eps_obj = endpoints.get((ns, name))
        lb = [i.get("ip") or i.get("hostname") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
        for p in _ports_of(svc) or [{}]:
            pname = p.get("name") or ""
            ready, not_ready = _endpoint_sets(eps_obj, pname)
            sps = proxy_ports.get((svc_name, pname), [])
            ext = [f"node:{p['nodePort']}" for _ in [0] if p.get("nodePort")]
            ext += [a["address"] for sp in sps[:1] for a in sp.get("addresses") or [] if a["kind"] in ("nodePort", "loadBalancer", "externalIP")
                    and a["address"] not in ext]
            ext += [f"{ip}:{p.get('port')}" for ip in lb if f"{ip}:{p.get('port')}" not in ext]
            ext += [f"{ip}:{p.get('port')}" for ip in spec.get("externalIPs") or [] if f"{ip}:{p.get('port')}" not in ext]
            if p.get("nodePort") and any(a.startswith("node:") for a in ext) and len(ext) > 1:
                ext = [a for a in ext if not a.startswith("node:")]
            counters: dict[str, int] = {}
            for sp in sps:
                for k, v in (sp.get("counters") or {}).items():
                    counters[k] = counters.get(k, 0) + v
            per_ep: dict[str, dict[str, Any]] = {}
            recent: dict[str, int] = {}
            recent_total = 0
            affinity: dict[str, list[tuple[str, int]]] = {}
            for sp in sps:
                for ep in sp.get("endpoints") or []:
                    e = per_ep.setdefault(ep["address"], {"active": 0, "opened": 0, "refused": 0, "timedOut": 0, "serving": False})
                    for k in ("active", "opened", "refused", "timedOut"):
                        e[k] += ep.get(k, 0)
                    e["serving"] = e["serving"] or ep.get("serving", False)
                for k, v in (sp.get("recent") or {}).items():
                    recent[k] = recent.get(k, 0) + v
                recent_total += sp.get("recentTotal", 0)
                for a in sp.get("affinityEntries") or []:
                    affinity.setdefault(a["endpoint"], []).append((a["client"], a["remaining"]))
                fo = sp.get("lastFailover")
                if fo:
                    failovers.append({"service": svc_name, "port": pname or str(p.get("port", "")), **fo})
            addrs = list(dict.fromkeys(ready + not_ready + sorted(per_ep)))
            ep_rows = []
            for a in addrs:
                e = per_ep.get(a, {})
                bi, bo = rate(svc_name, pname, a, "bytesIn"), rate(svc_name, pname, a, "bytesOut")
                ep_rows.append({
                    "address": a, "ready": a in ready, "active": e.get("active", 0),
                    "newPerSecond": rate(svc_name, pname, a, "opened"),
                    "bytesPerSecond": None if bi is None and bo is None else (bi or 0) + (bo or 0),
                    "share": (recent.get(a, 0) / recent_total) if recent_total else None, "recent": recent.get(a, 0),
                    "affinity": sorted(affinity.get(a, []), key=lambda x: -x[1]),
                    "refused": e.get("refused", 0), "timedOut": e.get("timedOut", 0),
                })
            bi, bo = rate(svc_name, pname, "", "bytes_in"), rate(svc_name, pname, "", "bytes_out")
            rows.append({
                "service": svc_name, "port": f"{p.get('port', '')}/{p.get('protocol', 'TCP')}" if p else "<none>", "portName": pname,
                "type": spec.get("type", "ClusterIP"), "clusterIP": spec.get("clusterIP") or "<none>",
                "external": ext, "ready": len(ready), "endpointCount": len(set(ready + not_ready)),
                "active": counters.get("open", 0), "connections": counters.get("total", 0),
                "newPerSecond": rate(svc_name, pname, "", "total"),
                "bytesPerSecond": None if bi is None and bo is None else (bi or 0) + (bo or 0),
                "failures": counters.get("connect_failures", 0), "proxied": bool(sps), "recentTotal": recent_total,
                "endpoints": ep_rows,
            })
    dns_rows = [{"name": n, "queries": q, "perSecond": rate("dns", n), "nxdomain": (nx / q) if q else 0.0}
                for n, (q, nx) in sorted(dns.items(), key=lambda kv: -kv[1][0])]
    rule_rows = [{"rule": r, "requests": row.get("requests", 0), "perSecond": rate("rule", r),
                  **{c: row.get(c, 0) for c in ("2xx", "3xx", "4xx", "5xx")}} for r, row in sorted(rules.items())]
    return {"services": rows, "failovers": failovers, "dns": dns_rows, "ingress": rule_rows, "components": comps,
            "since": min(since) if since else None}


# ------------------------------------------------------------------------------------------- printing


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    for suffix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= size:
            return f"{v / size:.1f}{suffix}{unit}"
    return f"{v:.1f}{unit}" if v % 1 else f"{int(v)}{unit}"


def _ago(t: float) -> str:
    return f"{max(0, int(time.time() - t))}s ago"


def render(model: dict[str, Any], store_path: str, color: bool, live: bool) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    def style(name: str) -> str:
        return name if color else ""

    comps = model["components"]
    head = f"kubesvc top  store {store_path}  " + "  ".join(f"{c}: {n} process{'es' if n > 1 else ''}" for c, n in sorted(comps.items()))
    if not comps:
        head += "  (no component running: kubesvc up)"
    if model["since"]:
        head += f"  counting since {time.strftime('%H:%M:%S', time.localtime(model['since']))}"
    if live:
        head += "  (q quits)"
    parts: list[Any] = [Text(head, style=style("bold"))]

    t = Table(box=None, pad_edge=False, header_style=style("bold"), show_edge=False)
    for col in ("SERVICE / ENDPOINT", "PORT", "TYPE", "CLUSTER-IP", "EXTERNAL", "READY", "ACTIVE", "NEW/S", "BYTES/S", "SHARE", "AFFINITY",
                "FAILED DIALS"):
        t.add_column(col, no_wrap=True)
    for r in model["services"]:
        t.add_row(Text(r["service"], style=style("bold cyan")), r["port"], r["type"], r["clusterIP"], ",".join(r["external"]) or "<none>",
                  f"{r['ready']}/{r['endpointCount']}", str(r["active"]), _num(r["newPerSecond"]),
                  _num(r["bytesPerSecond"], "B"), f"of {r['recentTotal']}" if r["recentTotal"] else "", "",
                  Text(str(r["failures"]), style=style("red") if r["failures"] else ""))
        for e in r["endpoints"]:
            aff = ""
            if e["affinity"]:
                client, left = e["affinity"][0]
                aff = f"{client} {left}s" + (f" +{len(e['affinity']) - 1}" if len(e["affinity"]) > 1 else "")
            fails = ", ".join(f"{n} {what}" for n, what in ((e["refused"], "refused"), (e["timedOut"], "timed out")) if n)
            t.add_row(f"  {e['address']}", "", "", "", "", Text("yes" if e["ready"] else "no", style=style("green" if e["ready"] else "red")),
                      str(e["active"]), _num(e["newPerSecond"]), _num(e["bytesPerSecond"], "B"),
                      f"{e['share'] * 100:.0f}% ({e['recent']})" if e["share"] is not None else "-", aff, Text(fails, style=style("red")))
    if not model["services"]:
        t.add_row("No Services found.", *[""] * 11)
    parts += [Text(""), t]
    if model["failovers"]:
        parts.append(Text(""))
        for f in model["failovers"]:
            parts.append(Text(f"last failover {f['service']}:{f['port']}  {_ago(f['time'])}  client {f['client']}  {f['from']} {f['error']} -> {f['to']}",
                              style=style("yellow")))
    if model["dns"]:
        d = Table(box=None, pad_edge=False, header_style=style("bold"), show_edge=False)
        for col in ("DNS NAME", "Q/S", "QUERIES", "NXDOMAIN"):
            d.add_column(col, no_wrap=True)
        for r in model["dns"][:20]:
            d.add_row(r["name"], _num(r["perSecond"]), str(r["queries"]), f"{r['nxdomain'] * 100:.0f}%")
        parts += [Text(""), d]
    if model["ingress"]:
        g = Table(box=None, pad_edge=False, header_style=style("bold"), show_edge=False)
        for col in ("INGRESS RULE", "REQ/S", "REQUESTS", "2xx", "3xx", "4xx", "5xx"):
            g.add_column(col, no_wrap=True)
        for r in model["ingress"]:
            g.add_row(r["rule"], _num(r["perSecond"]), str(r["requests"]), str(r["2xx"]), str(r["3xx"]), str(r["4xx"]),
                      Text(str(r["5xx"]), style=style("red") if r["5xx"] else ""))
        parts += [Text(""), g]
    return Group(*parts)


# ------------------------------------------------------------------------------------------- the command


class View:
    def __init__(self, store: str | None, namespace: str | None, all_namespaces: bool, selector: str | None, name: str | None) -> None:
        self.path = common.store_path(store)
        if not os.path.exists(self.path):
            raise ClientError(f"the store {self.path} does not exist (kubesvc init, or --store)")
        self.reg = common.registry(store)
        ns, _ = common.namespace(namespace)
        self.ns = None if all_namespaces else ns
        self.name = name
        self.selector = None
        if selector:
            from kubesvc.api import selectors

            self.selector = selectors.parse(selector)
        if name:
            self.reg.get("Service", ns, name)  # NotFound: 'services "x" not found'
        self.components = Components(self.path)
        self.rates = Rates()

    def model(self) -> dict[str, Any]:
        from kubesvc.controllers.endpointslices import merged_endpoints

        services = self.reg.list("Service", self.ns, self.selector)
        if self.name:
            services = [s for s in services if s["metadata"]["name"] == self.name]
        services.sort(key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"]))
        eps = {(e["metadata"].get("namespace", ""), e["metadata"]["name"]): e for e in merged_endpoints(self.reg.list("EndpointSlice", self.ns))}
        m = build_model(services, eps, self.components.poll(), self.rates)
        if self.ns is not None or self.name or self.selector is not None:
            names = {s["metadata"]["name"] for s in services}
            ns = self.ns

            def dns_ok(n: str) -> bool:
                labels = n.rstrip(".").split(".")
                if "svc" not in labels:
                    return False
                i = labels.index("svc")
                return i >= 2 and (ns is None or labels[i - 1] == ns) and (not (self.name or self.selector) or labels[i - 2] in names)

            m["dns"] = [r for r in m["dns"] if dns_ok(r["name"])]
            m["ingress"] = [r for r in m["ingress"] if (ns is None or r["rule"].startswith(f"{ns}/"))
                            and (not (self.name or self.selector) or r["rule"].rsplit(" -> ", 1)[-1].split(":")[0] in names)]
        return m


def _keys(fd: int, timeout: float) -> str:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return ""
    return os.read(fd, 64).decode(errors="replace")


def top(
    name: Annotated[str | None, typer.Argument(help="Only this Service.")] = None,
    namespace: NamespaceOpt = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Services of every namespace.")] = False,
    selector: SelectorOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot (rates over --interval) and exit; the default when stdout is not a terminal.")] = False,
    interval: Annotated[str, typer.Option("--interval", help="Time between refreshes (e.g. 250ms, 1s); --once measures rates over it.")] = "500ms",
    output: Annotated[str | None, typer.Option("--output", "-o", help="json: the model as JSON (implies --once).")] = None,
    store: StoreOpt = None,
) -> None:
    """Show Services, their endpoints and the traffic each gets, live (q or Ctrl-C quits).

    Per service port: type, cluster IP, NodePort/LB addresses, connections; per endpoint: readiness, active connections,
    new connections/s, bytes/s, share of the last connections, ClientIP affinity entries, failed dials and the last
    failover; DNS queries/s per name with the NXDOMAIN rate; ingress requests/s per rule by status class. Counts
    start when top attaches.
    """
    import json

    if output not in (None, "json"):
        raise ClientError(f'unable to match a printer suitable for the output format "{output}", allowed formats are: json')
    if name is not None and "/" in name:
        kind, _, name = name.partition("/")
        if kind.lower() not in ("svc", "service", "services"):
            raise ClientError(f'top shows Services: "{kind}/{name}" is not one (use svc/NAME or NAME)')
    period = common.parse_duration(interval, "--interval")
    if period <= 0:
        raise ClientError("--interval must be positive")
    view = View(store, namespace, all_namespaces, selector, name)
    tty = sys.stdout.isatty()
    color = tty and not os.environ.get("NO_COLOR")
    from rich.console import Console

    try:
        if once or output or not tty:
            view.model()
            time.sleep(period)
            m = view.model()
            if output == "json":
                common.out(json.dumps(m, indent=2))
                return
            console = Console(force_terminal=color, no_color=not color, color_system="auto" if color else None,
                              width=max(120, Console().width if tty else 200), highlight=False)
            console.print(render(m, view.path, color, live=False))
            return
        _live(view, period, color)
    finally:
        view.components.close()


def _live(view: View, period: float, color: bool) -> None:
    import termios
    import tty as ttymod

    from rich.console import Console
    from rich.live import Live

    console = Console(no_color=not color, color_system="auto" if color else None, highlight=False)
    fd = sys.stdin.fileno() if sys.stdin.isatty() else None
    saved = termios.tcgetattr(fd) if fd is not None else None
    try:
        if fd is not None:
            ttymod.setcbreak(fd)
        with Live(render(view.model(), view.path, color, True), console=console, auto_refresh=False, screen=True,
                  redirect_stdout=False, redirect_stderr=False) as live:
            while True:
                if fd is not None:
                    keys = _keys(fd, period)
                else:
                    time.sleep(period)
                    keys = ""
                if "q" in keys.lower():
                    break
                live.update(render(view.model(), view.path, color, True), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        if fd is not None and saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

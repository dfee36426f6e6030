"""Ingress objects -> route table; ``RouteTable.match(host, path)``. Pure: no sockets, no store.

Rules kept here (dataplane spec §3.3, §3.4):
- Ownership: an Ingress is ours when its ``spec.ingressClassName`` (or the ``kubernetes.io/ingress.class``
  annotation) names an IngressClass whose ``spec.controller`` is ``kubesvc.io/ingress``, or when it names no
  class and one of our IngressClasses carries ``ingressclass.kubernetes.io/is-default-class: "true"`` (new
  Ingresses are stamped with the default class at admission, ``registry.kinds.networking``; this covers
  older ones). Backends come from the merged view of each Service's EndpointSlices.
- Hosts compare without ``:port``, lower-cased, trailing dot dropped. Precedence: exact host, then
  ``*.`` wildcard (exactly one label: ``*.foo.com`` matches ``bar.foo.com``, not ``foo.com`` nor
  ``a.bar.foo.com``), then the rules without host. Once a host group is chosen, only its paths are
  considered; no path -> that group's default backend, else the global default backend, else 404.
- Paths are case-sensitive. ``Exact``: whole path equal, trailing slash significant. ``Prefix``: element-wise
  (a trailing slash ignored on either side; ``/`` matches everything). ``ImplementationSpecific``: a plain
  string prefix, as nginx's prefix locations do (``/foo`` matches ``/foobar``).
- Longest matching rule path wins (Prefix paths measured without a trailing slash); on equal length
  Exact beats Prefix, Prefix beats ImplementationSpecific. YAML order is irrelevant.
- Several Ingresses merge their rules per host; on the same host + path + pathType the oldest Ingress
  (creationTimestamp, then namespace/name) wins; its TLS section wins the same way.
- Default backends: a group's default is the ``defaultBackend`` of the oldest Ingress that contributes
  rules to it; the global default is the oldest rule-less Ingress's ``defaultBackend``, else the oldest
  ``defaultBackend`` of any owned Ingress.
- Hosts listed in an owned Ingress's ``spec.tls[].hosts`` (an entry without hosts covers that Ingress's
  rule hosts) are TLS hosts: plain-HTTP requests for them are redirected (308), unless the Ingress sets
  ``nginx.ingress.kubernetes.io/ssl-redirect: "false"``.
- Per-Ingress annotation ``nginx.ingress.kubernetes.io/proxy-body-size`` (``0`` = unlimited, suffixes
  k/m/g) overrides the server-wide request body limit for that Ingress's routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CONTROLLER = "kubesvc.io/ingress"
CLASS_NAME = "kubesvc"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
SSL_REDIRECT_ANNOTATION = "nginx.ingress.kubernetes.io/ssl-redirect"
BODY_SIZE_ANNOTATION = "nginx.ingress.kubernetes.io/proxy-body-size"

# tie-break rank on equal length: lower wins
_RANK = {"Exact": 0, "Prefix": 1, "ImplementationSpecific": 2}

Obj = dict[str, Any]


@dataclass(frozen=True)
class BackendRef:
    """A Service port an Ingress points at: (namespace, service, port number or port name)."""

    namespace: str
    service: str
    port: int | str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True)
class Route:
    """What a match yields: the backend plus the per-Ingress settings the proxy needs."""

    backend: BackendRef
    ingress: str  # namespace/name, for logs
    path: str  # the rule path ("" for a default backend)
    path_type: str
    body_limit: int | None = None  # None: the server-wide limit
    ssl_redirect: bool = True
    host: str = ""  # the rule's host ("" for a catch-all rule or a default backend), for `kubesvc top`/`trace`


@dataclass
class HostRoutes:
    exact: dict[str, Route] = field(default_factory=dict)
    prefix: dict[str, Route] = field(default_factory=dict)  # normalized path -> route
    implementation: list[tuple[str, Route]] = field(default_factory=list)  # longest first
    default: Route | None = None
    depth: int = field(default=-1, compare=False, repr=False)  # most segments of a prefix path; -1: not counted yet

    def best(self, path: str) -> Route | None:
        best: Route | None = None
        best_len = -1
        if self.exact:
            r = self.exact.get(path)
            if r is not None:
                best, best_len = r, len(path)
        if self.prefix:
            d = self.depth
            if d < 0:
                d = self.depth = max(0 if k == "/" else k.count("/") for k in self.prefix)
            if d == 0:  # only "/": nothing deeper can match, so start there
                p = "/"
            else:
                p = path.rstrip("/") or "/"
                cut = 0
                for _ in range(d):  # no prefix path is deeper than d segments: start at the path's first d
                    cut = p.find("/", cut + 1)
                    if cut < 0:
                        break
                else:
                    p = p[:cut]
            while True:
                r = self.prefix.get(p)
                if r is not None:
                    if len(p) > best_len:
                        best, best_len = r, len(p)
                    break
                if p == "/":
                    break
                cut = p.rfind("/")
                p = p[:cut] if cut > 0 else "/"
        for rule_path, r in self.implementation:
            if len(rule_path) <= best_len:
                break
            if path.startswith(rule_path):
                best, best_len = r, len(rule_path)
                break
        return best


@dataclass
class TLSEntry:
    secret: tuple[str, str] | None  # (namespace, secretName); None: the default certificate
    ssl_redirect: bool


@dataclass
class RouteTable:
    exact: dict[str, HostRoutes] = field(default_factory=dict)
    wildcard: dict[str, HostRoutes] = field(default_factory=dict)  # "foo.com" for "*.foo.com"
    catch_all: HostRoutes = field(default_factory=HostRoutes)
    default: Route | None = None
    tls_exact: dict[str, TLSEntry] = field(default_factory=dict)
    tls_wildcard: dict[str, TLSEntry] = field(default_factory=dict)
    ingresses: list[Obj] = field(default_factory=list)  # the owned ones, oldest first
    backends: dict[str, BackendRef] = field(default_factory=dict)

    def group(self, host: str) -> HostRoutes:
        g = self.exact.get(host)
        if g is not None:
            return g
        dot = host.find(".")
        if dot > 0:
            g = self.wildcard.get(host[dot + 1 :])
            if g is not None:
                return g
        return self.catch_all

    def match(self, host: str, path: str) -> Route | None:
        """``host`` already normalized (see ``normalize_host``); ``path`` without the query string."""
        g = self.group(host)
        return g.best(path) or g.default or self.default

    def tls_for(self, host: str) -> TLSEntry | None:
        e = self.tls_exact.get(host)
        if e is not None:
            return e
        dot = host.find(".")
        if dot > 0:
            return self.tls_wildcard.get(host[dot + 1 :])
        return None


def normalize_host(raw: str) -> str:
    """Host header -> DNS name: no port, lower case, no trailing dot. IPv6 literals keep their brackets."""
    h = raw.strip()
    if h.startswith("["):
        end = h.find("]")
        return h[: end + 1].lower() if end > 0 else h.lower()
    colon = h.rfind(":")
    if colon >= 0:
        h = h[:colon]
    return h.rstrip(".").lower()


def parse_size(text: str) -> int | None:
    """nginx size syntax: ``1m``, ``512k``, ``0`` (unlimited -> 0). None when unparsable."""
    t = str(text).strip().lower()
    mult = 1
    if t and t[-1] in "kmg":
        mult = {"k": 1024, "m": 1024**2, "g": 1024**3}[t[-1]]
        t = t[:-1]
    if not t.isdigit():
        return None
    return int(t) * mult


# ------------------------------------------------------------------------------------------ ownership


def our_classes(classes: Iterable[Obj], controller: str = CONTROLLER) -> tuple[set[str], bool]:
    """Names of the IngressClasses handled by ``controller``, and whether one of them is the default."""
    names: set[str] = set()
    default = False
    for ic in classes:
        if (ic.get("spec") or {}).get("controller") != controller:
            continue
        meta = ic.get("metadata") or {}
        names.add(meta.get("name", ""))
        if (meta.get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
            default = True
    return names, default


def ingress_class(ing: Obj) -> str | None:
    cls = (ing.get("spec") or {}).get("ingressClassName")
    if cls:
        return str(cls)
    ann = ((ing.get("metadata") or {}).get("annotations") or {}).get(CLASS_ANNOTATION)
    return str(ann) if ann else None


def owned(ing: Obj, names: set[str], default: bool) -> bool:
    cls = ingress_class(ing)
    return cls in names if cls is not None else default


def age_key(ing: Obj) -> tuple[str, str, str]:
    meta = ing.get("metadata") or {}
    return (meta.get("creationTimestamp") or "", meta.get("namespace") or "", meta.get("name") or "")


# ------------------------------------------------------------------------------------------ build


def _backend_ref(ns: str, backend: Obj | None) -> BackendRef | None:
    svc = (backend or {}).get("service")
    if not svc or not svc.get("name"):
        return None  # resource backends are not served
    port = svc.get("port") or {}
    ref: int | str | None = port.get("number") if port.get("number") is not None else port.get("name")
    if ref is None:
        return None
    return BackendRef(ns, svc["name"], ref)


def build(ingresses: Iterable[Obj], classes: Iterable[Obj], controller: str = CONTROLLER) -> RouteTable:
    names, default_class = our_classes(classes, controller)
    mine = sorted((i for i in ingresses if owned(i, names, default_class)), key=age_key)
    t = RouteTable(ingresses=mine)
    rule_less_default: Route | None = None
    any_default: Route | None = None
    impl: dict[int, dict[str, Route]] = {}  # id(group) -> {path: route}; sorted at the end
    groups: dict[int, HostRoutes] = {}
    for ing in mine:
        meta = ing.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        ann = meta.get("annotations") or {}
        ing_name = f"{ns}/{meta.get('name', '')}"
        redirect = str(ann.get(SSL_REDIRECT_ANNOTATION, "true")).lower() != "false"
        limit = parse_size(ann[BODY_SIZE_ANNOTATION]) if BODY_SIZE_ANNOTATION in ann else None
        spec = ing.get("spec") or {}
        rules = spec.get("rules") or []

        def route(ref: BackendRef, path: str, path_type: str, ing_name: str = ing_name, limit: int | None = limit,
                  redirect: bool = redirect, host: str = "") -> Route:
            t.backends[ref.key] = ref
            return Route(ref, ing_name, path, path_type, limit, redirect, host)

        ing_default: Route | None = None
        dref = _backend_ref(ns, spec.get("defaultBackend"))
        if dref is not None:
            ing_default = route(dref, "", "")
            if any_default is None:
                any_default = ing_default
            if not rules and rule_less_default is None:
                rule_less_default = ing_default
        hosts: list[str] = []
        for rule in rules:
            rule = rule or {}
            host = normalize_host(rule.get("host") or "")
            hosts.append(host)
            if not host:
                g = t.catch_all
            elif host.startswith("*."):
                g = t.wildcard.setdefault(host[2:], HostRoutes())
            else:
                g = t.exact.setdefault(host, HostRoutes())
            groups[id(g)] = g
            if g.default is None and ing_default is not None:
                g.default = ing_default
            for p in ((rule.get("http") or {}).get("paths") or []):
                p = p or {}
                ref = _backend_ref(ns, p.get("backend"))
                if ref is None:
                    continue
                kind = p.get("pathType") or "ImplementationSpecific"
                path = p.get("path") or "/"
                if kind == "Exact":
                    g.exact.setdefault(path, route(ref, path, kind, host=host))
                elif kind == "Prefix":
                    g.prefix.setdefault(path.rstrip("/") or "/", route(ref, path, kind, host=host))
                else:
                    impl.setdefault(id(g), {}).setdefault(path, route(ref, path, kind, host=host))
        for entry in spec.get("tls") or []:
            entry = entry or {}
            secret = (ns, entry["secretName"]) if entry.get("secretName") else None
            covered = [normalize_host(h) for h in entry.get("hosts") or []] or [h for h in hosts if h]
            for h in covered:
                if h.startswith("*."):
                    t.tls_wildcard.setdefault(h[2:], TLSEntry(secret, redirect))
                elif h:
                    t.tls_exact.setdefault(h, TLSEntry(secret, redirect))
    for gid, paths in impl.items():
        groups[gid].implementation = sorted(paths.items(), key=lambda kv: -len(kv[0]))
    t.default = rule_less_default or any_default
    return t


# ------------------------------------------------------------------------------------------ backends


def service_endpoints(ref: BackendRef, services: dict[tuple[str, str], Obj], endpoints: dict[tuple[str, str], Obj]) -> list[tuple[str, int]] | None:
    """Ready (ip, port) pairs behind a Service port; None when the Service or its port does not exist."""
    svc = services.get((ref.namespace, ref.service))
    if svc is None:
        return None
    ports = (svc.get("spec") or {}).get("ports") or []
    if isinstance(ref.port, int):
        sp = next((p for p in ports if p.get("port") == ref.port), None)
    else:
        sp = next((p for p in ports if p.get("name") == ref.port), None)
    if sp is None:
        return None
    want = sp.get("name") or ""
    out: list[tuple[str, int]] = []
    ep = endpoints.get((ref.namespace, ref.service)) or {}
    for subset in ep.get("subsets") or []:
        sub_ports = subset.get("ports") or []
        port = next((p.get("port") for p in sub_ports if (p.get("name") or "") == want), None)
        if port is None and len(sub_ports) == 1 and not want:
            port = sub_ports[0].get("port")
        if port is None:
            continue
        for a in subset.get("addresses") or []:
            if a.get("ip"):
                out.append((a["ip"], int(port)))
    return out


def resolve_backends(table: RouteTable, services: Iterable[Obj], endpoints: Iterable[Obj]) -> dict[str, list[tuple[str, int]] | None]:
    svc_map = {((s["metadata"].get("namespace") or ""), s["metadata"]["name"]): s for s in services}
    ep_map = {((e["metadata"].get("namespace") or ""), e["metadata"]["name"]): e for e in endpoints}
    return {key: service_endpoints(ref, svc_map, ep_map) for key, ref in table.backends.items()}


def normalize_path(raw: str) -> str | None:
    """Request target -> path used for matching: no query/fragment, %-decoded, ``//`` merged, dot segments
    resolved (nginx does the same before choosing a location). None when it climbs above the root."""
    q = raw.find("?")
    p = raw if q < 0 else raw[:q]
    h = p.find("#")
    if h >= 0:
        p = p[:h]
    if "%" in p:
        from urllib.parse import unquote

        p = unquote(p)
    if "//" in p:
        while "//" in p:
            p = p.replace("//", "/")
    if "/." in p:
        out: list[str] = []
        segs = p.split("/")
        for s in segs[1:]:
            if s == "..":
                if not out:
                    return None
                out.pop()
            elif s != ".":
                out.append(s)
        trail = segs[-1] in (".", "..")
        p = "/" + "/".join(out) + ("/" if trail and out else "")
    if not p.startswith("/"):
        return None
    return p

"""Ingress matching as a table (dataplane spec §3.3): every row of the docs' table, hosts, merging, ownership."""

from __future__ import annotations

from typing import Any

import pytest

from kubesvc.dataplane.ingress import routes

CLASSES = [{"metadata": {"name": "kubesvc"}, "spec": {"controller": routes.CONTROLLER}},
           {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}]


def ing(name: str, rules: list[tuple[str | None, list[tuple[str, str, str]]]] | None = None, default: str | None = None,
        created: str = "2026-01-01T00:00:00Z", cls: str | None = "kubesvc", tls: list[dict[str, Any]] | None = None,
        annotations: dict[str, str] | None = None, ns: str = "default") -> dict[str, Any]:
    def backend(svc: str) -> dict[str, Any]:
        return {"service": {"name": svc, "port": {"number": 80}}}

    spec: dict[str, Any] = {}
    if cls:
        spec["ingressClassName"] = cls
    if default:
        spec["defaultBackend"] = backend(default)
    if rules:
        spec["rules"] = [{**({"host": h} if h else {}), "http": {"paths": [{"path": p, "pathType": t, "backend": backend(s)} for p, t, s in paths]}}
                         for h, paths in rules]
    if tls:
        spec["tls"] = tls
    return {"kind": "Ingress", "metadata": {"name": name, "namespace": ns, "creationTimestamp": created, "annotations": annotations or {}},
            "spec": spec}


def who(table: routes.RouteTable, host: str, path: str) -> str | None:
    r = table.match(routes.normalize_host(host), path)
    return r.backend.service if r else None


# (pathType, rule paths, request path, expected service or None): the docs table, one rule service per path
DOCS_TABLE = [
    ("Prefix", ["/"], "/anything/at/all", "p0"),
    ("Exact", ["/foo"], "/foo", "p0"),
    ("Exact", ["/foo"], "/bar", None),
    ("Exact", ["/foo"], "/foo/", None),
    ("Exact", ["/foo/"], "/foo", None),
    ("Prefix", ["/foo"], "/foo", "p0"),
    ("Prefix", ["/foo"], "/foo/", "p0"),
    ("Prefix", ["/foo/"], "/foo", "p0"),
    ("Prefix", ["/foo/"], "/foo/", "p0"),
    ("Prefix", ["/aaa/bb"], "/aaa/bbb", None),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb", "p0"),
    ("Prefix", ["/aaa/bbb/"], "/aaa/bbb", "p0"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb/", "p0"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb/ccc", "p0"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbbxyz", None),
    ("Prefix", ["/", "/aaa"], "/aaa/ccc", "p1"),
    ("Prefix", ["/", "/aaa", "/aaa/bbb"], "/aaa/bbb", "p2"),
    ("Prefix", ["/", "/aaa", "/aaa/bbb"], "/ccc", "p0"),
    ("Prefix", ["/aaa"], "/ccc", None),
]


def row_id(row: tuple[Any, ...]) -> str:
    return f"{row[0]}:{','.join(row[1])}->{row[2]}"


@pytest.mark.parametrize("kind,paths,request_path,expected", DOCS_TABLE, ids=[row_id(r) for r in DOCS_TABLE])
def test_docs_table(kind: str, paths: list[str], request_path: str, expected: str | None) -> None:
    # YAML order must not matter: try the rules forwards and backwards
    for order in (paths, list(reversed(paths))):
        rules = [("foo.test", [(p, kind, f"p{paths.index(p)}") for p in order])]
        t = routes.build([ing("i", rules)], CLASSES)
        assert who(t, "foo.test", request_path) == expected


def test_no_match_goes_to_the_default_backend() -> None:
    t = routes.build([ing("i", [("foo.test", [("/aaa", "Prefix", "aaa")])], default="dflt")], CLASSES)
    assert who(t, "foo.test", "/ccc") == "dflt"
    assert who(t, "other.test", "/ccc") == "dflt"


def test_mixed_exact_beats_prefix_on_equal_length() -> None:
    for order in ([("/foo", "Prefix", "prefix"), ("/foo", "Exact", "exact")], [("/foo", "Exact", "exact"), ("/foo", "Prefix", "prefix")]):
        t = routes.build([ing("i", [("foo.test", order)])], CLASSES)
        assert who(t, "foo.test", "/foo") == "exact"
        assert who(t, "foo.test", "/foo/bar") == "prefix"


def test_longest_match_wins_over_exact_of_shorter_path() -> None:
    t = routes.build([ing("i", [("h.test", [("/a", "Exact", "exact"), ("/a/b", "Prefix", "long")])])], CLASSES)
    assert who(t, "h.test", "/a/b/c") == "long"
    assert who(t, "h.test", "/a") == "exact"


def test_prefix_walk_starts_at_the_deepest_rule_depth() -> None:
    # the walk starts at the path's first N segments, N the deepest Prefix rule (HostRoutes.depth): deeper
    # request paths, paths shorter than N, trailing slashes and a lone "/" rule all still find the longest match
    t = routes.build([ing("i", [("h.test", [("/", "Prefix", "root"), ("/a", "Prefix", "a"), ("/a/b/c", "Prefix", "abc"),
                                             ("/x/y", "Prefix", "xy")])])], CLASSES)
    cases = {"/a/b/c/d/e/f": "abc", "/a/b/c/": "abc", "/a/b/cd": "a", "/a/b": "a", "/a": "a", "/ab": "root",
             "/x/y/z/w": "xy", "/x/yz/w": "root", "/": "root", "/q/r/s/t": "root"}
    assert {p: who(t, "h.test", p) for p in cases} == cases
    only_root = routes.build([ing("i", [("h.test", [("/", "Prefix", "root"), ("/e", "Exact", "e")])])], CLASSES)
    assert [who(only_root, "h.test", p) for p in ("/u/1/2/3", "/e", "/e/")] == ["root", "e", "root"]


def test_paths_are_case_sensitive() -> None:
    t = routes.build([ing("i", [("h.test", [("/foo", "Prefix", "foo")])])], CLASSES)
    assert who(t, "h.test", "/FOO") is None


def test_implementation_specific_is_a_string_prefix() -> None:
    t = routes.build([ing("i", [("h.test", [("/foo", "ImplementationSpecific", "impl"), ("/foo/bar", "Prefix", "pre")])])], CLASSES)
    assert who(t, "h.test", "/foobar") == "impl"
    assert who(t, "h.test", "/foo/bar/x") == "pre"
    assert who(t, "h.test", "/fo") is None


@pytest.mark.parametrize("rule_host,host,match", [
    ("foo.bar.com", "foo.bar.com", True),
    ("*.foo.com", "bar.foo.com", True),
    ("*.foo.com", "baz.bar.foo.com", False),
    ("*.foo.com", "foo.com", False),
    (None, "anything.test", True),
    (None, "", True),
])
def test_docs_hosts(rule_host: str | None, host: str, match: bool) -> None:
    t = routes.build([ing("i", [(rule_host, [("/", "Prefix", "svc")])])], CLASSES)
    assert (who(t, host, "/") == "svc") is match


def test_host_header_port_and_case_are_ignored() -> None:
    t = routes.build([ing("i", [("foo.bar.com", [("/", "Prefix", "svc")])])], CLASSES)
    assert who(t, "FOO.bar.com:8080", "/") == "svc"
    assert who(t, "foo.bar.com.", "/") == "svc"


def test_host_precedence_exact_then_wildcard_then_catch_all() -> None:
    t = routes.build([ing("i", [(None, [("/", "Prefix", "any")]), ("*.foo.com", [("/", "Prefix", "wild")]),
                                ("a.foo.com", [("/", "Prefix", "exact")])])], CLASSES)
    assert who(t, "a.foo.com", "/") == "exact"
    assert who(t, "b.foo.com", "/") == "wild"
    assert who(t, "x.test", "/") == "any"


def test_chosen_host_without_matching_path_does_not_fall_to_catch_all() -> None:
    t = routes.build([ing("i", [(None, [("/", "Prefix", "any")]), ("h.test", [("/api", "Prefix", "api")])])], CLASSES)
    assert who(t, "h.test", "/other") is None


def test_rules_merge_across_ingresses_and_oldest_wins() -> None:
    old = ing("old", [("h.test", [("/a", "Prefix", "old-a"), ("/same", "Prefix", "old-same")])], created="2026-01-01T00:00:00Z")
    new = ing("new", [("h.test", [("/b", "Prefix", "new-b"), ("/same", "Prefix", "new-same")])], created="2026-01-02T00:00:00Z")
    for order in ([old, new], [new, old]):
        t = routes.build(order, CLASSES)
        assert (who(t, "h.test", "/a"), who(t, "h.test", "/b"), who(t, "h.test", "/same")) == ("old-a", "new-b", "old-same")


def test_class_ownership() -> None:
    ours = ing("ours", [("a.test", [("/", "Prefix", "a")])])
    theirs = ing("theirs", [("b.test", [("/", "Prefix", "b")])], cls="nginx")
    none = ing("none", [("c.test", [("/", "Prefix", "c")])], cls=None)
    annotated = ing("ann", [("d.test", [("/", "Prefix", "d")])], cls=None, annotations={routes.CLASS_ANNOTATION: "kubesvc"})
    t = routes.build([ours, theirs, none, annotated], CLASSES)
    assert [who(t, h, "/") for h in ("a.test", "b.test", "c.test", "d.test")] == ["a", None, None, "d"]
    default_classes = [{"metadata": {"name": "kubesvc", "annotations": {routes.DEFAULT_CLASS_ANNOTATION: "true"}},
                        "spec": {"controller": routes.CONTROLLER}}]
    t = routes.build([ours, theirs, none], default_classes)
    assert [who(t, h, "/") for h in ("a.test", "b.test", "c.test")] == ["a", None, "c"]


def test_tls_hosts_and_secrets() -> None:
    t = routes.build([ing("i", [("a.test", [("/", "Prefix", "a")]), ("b.test", [("/", "Prefix", "b")])],
                          tls=[{"hosts": ["a.test"], "secretName": "a-cert"}, {"hosts": ["*.w.test"]}])], CLASSES)
    a = t.tls_for("a.test")
    assert a is not None and a.secret == ("default", "a-cert")
    w = t.tls_for("x.w.test")
    assert w is not None and w.secret is None
    assert t.tls_for("b.test") is None and t.tls_for("y.x.w.test") is None


@pytest.mark.parametrize("raw,path", [
    ("/a?b=c", "/a"), ("/a%2Fb", "/a/b"), ("/a//b", "/a/b"), ("/a/./b", "/a/b"), ("/a/b/../c", "/a/c"), ("/..", None),
    ("/a/..", "/"), ("x", None),
])
def test_normalize_path(raw: str, path: str | None) -> None:
    assert routes.normalize_path(raw) == path


def test_service_endpoints_by_port_number_and_name() -> None:
    svc = {"metadata": {"name": "s", "namespace": "default"},
           "spec": {"ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}]}}
    ep = {"metadata": {"name": "s", "namespace": "default"},
          "subsets": [{"addresses": [{"ip": "127.0.0.5"}], "notReadyAddresses": [{"ip": "127.0.0.6"}],
                       "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}]}]}
    services, eps = {("default", "s"): svc}, {("default", "s"): ep}
    assert routes.service_endpoints(routes.BackendRef("default", "s", 80), services, eps) == [("127.0.0.5", 8080)]
    assert routes.service_endpoints(routes.BackendRef("default", "s", "admin"), services, eps) == [("127.0.0.5", 9090)]
    assert routes.service_endpoints(routes.BackendRef("default", "s", 81), services, eps) is None
    assert routes.service_endpoints(routes.BackendRef("default", "missing", 80), services, eps) is None


def test_a_host_with_only_prefix_root_routes_every_path_as_a_full_match_would() -> None:
    """``Shared.route_hit`` answers a host whose only rule is Prefix ``/`` without matching (nor caching) the path,
    when the path normalizes to itself; every other path, and every other host, goes through ``Shared.lookup``. Both
    give the same entry for every path, including those that do not normalize (400) or climb above the root."""
    from kubesvc.dataplane.ingress.exchange import HTTPConfig, Shared

    table = routes.build([ing("root", [("root.test", [("/", "Prefix", "svc-root")]),
                                       ("deep.test", [("/", "Prefix", "svc-root"), ("/a", "Prefix", "svc-a")])],
                              tls=[{"hosts": ["root.test"], "secretName": "s"}])], CLASSES)
    shared = Shared(HTTPConfig(), None)
    shared.install(table, {key: [("127.0.0.1", 1)] for key in table.backends})
    paths = [b"/", b"/u/1", b"/u/1?q=/../x", b"/a", b"/a/b", b"/x/../..", b"/..", b"/%2e%2e/x", b"/%2E", b"//a", b"/./a",
             b"/a#f", b"/a/.", b"*", b"x", b"/\xff", b"/a\\b"]
    seen = 0
    for host in (b"root.test", b"deep.test", b"other.test", b"ROOT.test:80", b""):
        for url in paths:
            q = url.find(b"?")
            path = url if q < 0 else url[:q]
            fresh = Shared(HTTPConfig(), None)
            fresh.install(table, {key: [("127.0.0.1", 1)] for key in table.backends})
            want = fresh.lookup(host, path)
            got = shared.route_hit(host, url)
            assert got[:2] == want[:2] and got[2] is shared.upstreams.get(want[0].backend.key if want[0] else "") and got[3] == want[3], (host, url)
            seen += got[0] is not None
    assert seen > 30
    assert (b"root.test", b"/u/1") not in shared.route_cache  # the shortcut: no entry per path
    assert (b"deep.test", b"/u/1") in shared.route_cache

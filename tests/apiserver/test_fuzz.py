"""API fuzz: thousands of generated requests against a live `kubesvc apiserver`, none answered 500.

Bodies start from a valid object of each kind and have random subtrees replaced by random JSON (null,
huge and negative numbers, odd strings, wrong containers, deep nesting), or are raw bytes; they go out
as create, replace, and the three patch types. Every answer must be a parseable JSON body below 500 with
no traceback, and the server must stay up. Derandomized so CI is repeatable; set KUBESVC_FUZZ_RANDOM=1
to explore with fresh seeds.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api

EXAMPLES = int(os.environ.get("KUBESVC_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("KUBESVC_FUZZ_RANDOM"),
                suppress_health_check=list(HealthCheck), database=None)

SEEDS: dict[str, tuple[str, dict[str, Any]]] = {
    "services": ("api/v1", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"app": "web"}},
                            "spec": {"selector": {"app": "web"}, "type": "NodePort", "sessionAffinity": "ClientIP",
                                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}),
    "pods": ("api/v1", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"],
                                                 "ports": [{"containerPort": 80, "name": "http"}],
                                                 "env": [{"name": "A", "value": "b"}],
                                                 "readinessProbe": {"tcpSocket": {"port": 80}}}]}}),
    "deployments": ("apis/apps/v1", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                                     "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}},
                                              "template": {"metadata": {"labels": {"app": "d"}},
                                                           "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    "ingresses": ("apis/networking.k8s.io/v1", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
        "spec": {"tls": [{"hosts": ["a.test"], "secretName": "t"}],
                 "rules": [{"host": "a.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                     "service": {"name": "s", "port": {"number": 80}}}}]}}]}}),
    "configmaps": ("api/v1", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}),
    "endpoints": ("api/v1", {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
                             "subsets": [{"addresses": [{"ip": "127.0.0.5"}], "ports": [{"port": 80}]}]}),
}

_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\ud800", "a" * 300, "-1", "0x10", "80", "TCP", "None", "ClusterIP", "999999999999",
                     "../../etc", "*", "a.test", "127.0.0.1", "::1", "1.2.3.4/33", "\x00", "%s%n", "𝕜"]),
)
_number = st.one_of(st.integers(), st.sampled_from([0, -1, 65536, 2**31, 2**63, -(2**63) - 1, 10**30]),
                     st.floats(allow_nan=False, allow_infinity=False))
_scalar = st.one_of(st.none(), st.booleans(), _number, _text)
_json = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(_text, inner, max_size=4)), max_leaves=12)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def _mutated(draw: st.DrawFn, seed: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p and p[0] not in ("apiVersion", "kind")]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = obj
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = draw(_json)
    if draw(st.booleans()):
        key = draw(_text)
        if isinstance(obj.get("spec"), dict):
            obj["spec"][key] = draw(_json)
    return obj


_deep = st.integers(50, 3000).map(lambda n: b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"},"data":'
                                  + b"[" * n + b"]" * n + b"}")
_raw = st.one_of(st.binary(max_size=64), _deep,
                 st.sampled_from([b"null", b"[]", b"1e400", b'{"a":' + b"9" * 5000 + b"}", b'"\\ud800"', b"{",
                                  b'{"metadata":{"name":"x"}}', b'{"kind":"Pod"}', b"\xff\xfe"]))


class Client:
    """One kept-alive connection, reopened when the server closes it (as it may after an error)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.conn: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: bytes, ctype: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self.api.http_connection(timeout=20)
            try:
                self.conn.request(method, path, body=body, headers={"Content-Type": ctype})
                r = self.conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _check(code: int, data: bytes, what: str) -> None:
    assert code < 500, f"{what}: {code} {data[:500]!r}"
    assert b"Traceback" not in data, what
    body = json.loads(data)
    assert isinstance(body, dict), what
    if code >= 400:
        assert body.get("kind") == "Status" and body.get("code") == code, f"{what}: {data[:300]!r}"


def _fuzz_kind(api: Api, ns: str, plural: str) -> None:
    prefix, seed = SEEDS[plural]
    base = f"/{prefix}/namespaces/{ns}/{plural}"
    seed = copy.deepcopy(seed)
    client = Client(api)
    code, data = client.send("POST", base, json.dumps(seed).encode(), "application/json")
    assert code == 201, data
    name = seed["metadata"]["name"]

    @FUZZ
    @given(obj=_mutated(seed), raw=_raw, how=st.sampled_from(["create", "replace", "merge", "strategic", "json", "raw"]))
    def run(obj: dict[str, Any], raw: bytes, how: str) -> None:
        body = json.dumps(obj, ensure_ascii=True).encode()
        if how == "create":
            if isinstance(obj.get("metadata"), dict):
                obj["metadata"].pop("name", None)
                obj["metadata"]["generateName"] = "f-"
                body = json.dumps(obj).encode()
            reply = client.send("POST", base, body, "application/json")
        elif how == "replace":
            reply = client.send("PUT", f"{base}/{name}", body, "application/json")
        elif how == "merge":
            reply = client.send("PATCH", f"{base}/{name}", body, "application/merge-patch+json")
        elif how == "strategic":
            reply = client.send("PATCH", f"{base}/{name}", body, "application/strategic-merge-patch+json")
        elif how == "json":
            ops = [{"op": "replace", "path": "/" + "/".join(str(p) for p in path), "value": obj.get("spec")}
                   for path in (("spec",), ("metadata", "labels"), ("spec", "ports", 0))]
            reply = client.send("PATCH", f"{base}/{name}", json.dumps(ops).encode(), "application/json-patch+json")
        else:
            reply = client.send("POST", base, raw, "application/json")
        _check(*reply, f"{how} {plural}")

    try:
        run()
        code, data = client.send("GET", f"{base}?limit=500", b"", "application/json")
        assert code == 200, data
        json.loads(data)
    finally:
        client.close()


def test_fuzz_services(api: Api, ns: str) -> None:
    _fuzz_kind(api, ns, "services")


def test_fuzz_pods(api: Api, ns: str) -> None:
    _fuzz_kind(api, ns, "pods")


def test_fuzz_deployments(api: Api, ns: str) -> None:
    _fuzz_kind(api, ns, "deployments")


def test_fuzz_ingresses(api: Api, ns: str) -> None:
    _fuzz_kind(api, ns, "ingresses")


def test_fuzz_configmaps_and_endpoints(api: Api, ns: str) -> None:
    _fuzz_kind(api, ns, "configmaps")
    _fuzz_kind(api, ns, "endpoints")


def test_unknown_field_names_cannot_split_the_response(api: Api, ns: str) -> None:
    """A field name with CR/LF or non-ASCII goes into the Warning header escaped: one header line, framing intact."""
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "split"},
           "data": {"a": "b"}, "\r\nX-Injected: 1\r\n\r\n": 1, "é𝕜\x00": 2}
    conn = api.http_connection(timeout=10)
    try:
        for _ in range(2):  # the second request proves the connection's framing survived the first
            conn.request("POST", f"/api/v1/namespaces/{ns}/configmaps?dryRun=All", body=json.dumps(obj).encode(),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            body = json.loads(r.read())
            assert r.status == 201, body
            assert r.getheader("X-Injected") is None
            warnings = r.headers.get_all("Warning") or []
            assert len(warnings) == 2, warnings
            for w in warnings:
                assert w.isascii() and not any(ord(c) < 0x20 for c in w), w
            assert '\\\\r\\\\nX-Injected: 1' in warnings[0], warnings
    finally:
        conn.close()


def test_a_lone_surrogate_echoed_in_an_error_is_still_json(api: Api, ns: str) -> None:
    """An unknown field named by a lone surrogate comes back in the strict-decoding error: escaped, not a 500."""
    body = (b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"sur"},"\\ud800x":1}')
    conn = api.http_connection(timeout=10)
    try:
        conn.request("POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict", body=body,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        reply = json.loads(r.read())
        assert r.status == 400, reply
        assert reply["kind"] == "Status" and "unknown field" in reply["message"], reply
    finally:
        conn.close()

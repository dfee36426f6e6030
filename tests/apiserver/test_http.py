"""The HTTP surface directly: discovery, OpenAPI, Tables, bad requests (a Status each, nothing stored),
dry runs, patches, watch streams and bookmarks, authentication and the loopback rule."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, start_api
from tests.support.procs import Proc

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _svc(name: str, ns: str, **spec: object) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                       "spec": {"ports": [{"port": 80}], **spec}}).encode()


def test_version_discovery_and_openapi(api: Api) -> None:
    code, _, v = api.request("GET", "/version/")
    assert code == 200 and (v["major"], v["minor"]) == ("1", "32") and v["gitVersion"].startswith("v1.32.")
    _, _, apis = api.request("GET", "/apis")
    assert {g["name"] for g in apis["groups"]} >= {"apps", "networking.k8s.io", "discovery.k8s.io"}
    _, _, core = api.request("GET", "/api/v1")
    svc = next(r for r in core["resources"] if r["name"] == "services")
    assert svc["shortNames"] == ["svc"] and svc["categories"] == ["all"] and "watch" in svc["verbs"]
    _, _, net = api.request("GET", "/apis/networking.k8s.io/v1")
    assert next(r for r in net["resources"] if r["name"] == "ingresses")["shortNames"] == ["ing"]
    _, _, root = api.request("GET", "/openapi/v3")
    url = root["paths"]["api/v1"]["serverRelativeURL"]
    _, _, doc = api.request("GET", url)
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Service"
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert api.request("GET", "/openapi/v2")[0] == 200  # served since the OpenAPI change; details in test_openapi.py


def test_table_has_the_cli_columns(api: Api, ns: str) -> None:
    assert api.request("POST", f"/api/v1/namespaces/{ns}/services", _svc("t", ns))[0] == 201
    code, _, table = api.request("GET", f"/api/v1/namespaces/{ns}/services", headers={"Accept": TABLE})
    assert code == 200 and table["kind"] == "Table"
    assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), ("Age", 0), ("Selector", 1)]
    row = table["rows"][0]
    assert row["cells"][:2] == ["t", "ClusterIP"] and row["object"]["metadata"]["namespace"] == ns
    _, _, full = api.request("GET", f"/api/v1/namespaces/{ns}/services?includeObject=Object", headers={"Accept": TABLE})
    assert full["rows"][0]["object"]["kind"] == "Service"
    _, _, page = api.request("GET", f"/api/v1/namespaces/{ns}/services?limit=1")
    assert page["kind"] == "ServiceList" and len(page["items"]) == 1


BAD = [
    ("malformed JSON", "POST", "/api/v1/namespaces/{ns}/services", b'{"kind": ', 400, "BadRequest"),
    ("not an object", "POST", "/api/v1/namespaces/{ns}/services", b"[1, 2]", 400, "BadRequest"),
    ("wrong kind for the URL", "POST", "/api/v1/namespaces/{ns}/services",
     b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}', 400, "BadRequest"),
    ("wrong group for the URL", "POST", "/api/v1/namespaces/{ns}/services",
     b'{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"}}', 400, "BadRequest"),
    ("namespace mismatch", "POST", "/api/v1/namespaces/{ns}/services", b"OTHERNS", 400, "BadRequest"),
    ("unknown resource", "GET", "/api/v1/namespaces/{ns}/widgets", None, 404, "NotFound"),
    ("unknown group", "GET", "/apis/example.com/v1/widgets", None, 404, "NotFound"),
    ("traversal in a name", "GET", "/api/v1/namespaces/{ns}/services/..", None, 400, "BadRequest"),
    ("encoded slash in a name", "DELETE", "/api/v1/namespaces/{ns}/services/a%2F..%2Fb", None, 400, "BadRequest"),
    ("traversal in a namespace", "GET", "/api/v1/namespaces/%2E%2E/services", None, 400, "BadRequest"),
    ("name mismatch on PUT", "PUT", "/api/v1/namespaces/{ns}/services/other", b"SVC", 400, "BadRequest"),
    ("bad dryRun", "POST", "/api/v1/namespaces/{ns}/services?dryRun=Yes", b"SVC", 400, "BadRequest"),
    ("bad fieldValidation", "POST", "/api/v1/namespaces/{ns}/services?fieldValidation=Loud", b"SVC", 400, "BadRequest"),
    ("bad label selector", "GET", "/api/v1/namespaces/{ns}/services?labelSelector=a%20in", None, 400, "BadRequest"),
    ("unsupported field selector", "GET", "/api/v1/namespaces/{ns}/services?fieldSelector=spec.type%3DX", None, 400, "BadRequest"),
]


@pytest.mark.parametrize("what,method,path,body,code,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_a_status_and_change_nothing(api: Api, ns: str, what: str, method: str, path: str,
                                                      body: bytes | None, code: int, reason: str) -> None:
    if body == b"OTHERNS":
        body = _svc("x", "kube-system")
    elif body == b"SVC":
        body = _svc("x", ns)
    before = api.revision()
    got, headers, status = api.request(method, path.format(ns=ns), body, {"Content-Type": "application/json"})
    assert (got, status["kind"], status["reason"], status["code"]) == (code, "Status", reason, code), status
    assert headers["Content-Type"] == "application/json"
    assert api.revision() == before


def test_body_too_large(api: Api, ns: str) -> None:
    before = api.revision()
    conn = api.http_connection()
    conn.putrequest("POST", f"/api/v1/namespaces/{ns}/services")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(4 * 1024 * 1024))
    conn.endheaders()  # the server answers from the headers alone; the body is never read
    resp = conn.getresponse()
    status = json.loads(resp.read())
    conn.close()
    assert (resp.status, status["reason"]) == (413, "RequestEntityTooLarge")
    assert api.revision() == before


def test_dry_run_and_field_validation_warn(api: Api, ns: str) -> None:
    body = json.loads(_svc("dry", ns))
    body["spec"]["bogus"] = True
    before = api.revision()
    code, headers, obj = api.request("POST", f"/api/v1/namespaces/{ns}/services?dryRun=All&fieldValidation=Warn",
                                     json.dumps(body).encode())
    assert code == 201 and obj["spec"]["clusterIP"] and "bogus" not in obj["spec"]
    assert headers["Warning"] == '299 - "unknown field \\"spec.bogus\\""'
    assert api.revision() == before
    code, _, status = api.request("POST", f"/api/v1/namespaces/{ns}/services?fieldValidation=Strict",
                                  json.dumps(body).encode())
    assert code == 400 and "strict decoding error" in status["message"]


def test_merge_patch_json_patch_and_unsupported_type(api: Api, ns: str) -> None:
    assert api.request("POST", f"/api/v1/namespaces/{ns}/services", _svc("p", ns))[0] == 201
    path = f"/api/v1/namespaces/{ns}/services/p"
    code, _, obj = api.request("PATCH", path, b'{"metadata":{"labels":{"a":"1","b":"2"}}}',
                               {"Content-Type": "application/merge-patch+json"})
    assert code == 200 and obj["metadata"]["labels"] == {"a": "1", "b": "2"}
    code, _, obj = api.request("PATCH", path, b'{"metadata":{"labels":{"a":null}}}',
                               {"Content-Type": "application/merge-patch+json"})
    assert obj["metadata"]["labels"] == {"b": "2"}
    code, _, obj = api.request("PATCH", path, b'[{"op":"test","path":"/metadata/labels/b","value":"2"},'
                                              b'{"op":"add","path":"/spec/ports/-","value":{"name":"x","port":81}},'
                                              b'{"op":"add","path":"/spec/ports/0/name","value":"y"}]',
                               {"Content-Type": "application/json-patch+json"})
    assert code == 200 and [p["port"] for p in obj["spec"]["ports"]] == [80, 81]
    before = api.revision()
    code, _, status = api.request("PATCH", path, b'[{"op":"test","path":"/metadata/labels/b","value":"9"}]',
                                  {"Content-Type": "application/json-patch+json"})
    assert code == 422 and status["kind"] == "Status"
    code, _, status = api.request("PATCH", path, b"{}", {"Content-Type": "text/plain"})
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    code, _, status = api.request("PATCH", path, b'{"spec":{"ports":[{"port":0}]}}',
                                  {"Content-Type": "application/merge-patch+json"})
    assert (code, status["reason"]) == (422, "Invalid")
    assert api.revision() == before


def _watch_lines(api: Api, path: str, count: int, timeout: float = 10) -> list[dict]:
    with api.connect(timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {urlsplit(api.url).netloc}\r\nConnection: close\r\n\r\n".encode())
        f = s.makefile("rb")
        assert b" 200 " in f.readline()
        while f.readline() not in (b"\r\n", b""):
            pass
        events = []
        deadline = time.monotonic() + timeout
        while len(events) < count and time.monotonic() < deadline:
            size = int(f.readline().strip() or b"0", 16)
            if size == 0:
                break
            events.append(json.loads(f.read(size)))
            f.readline()
        return events


def test_watch_from_a_revision_and_bookmarks(api: Api, ns: str) -> None:
    rv = api.revision()
    assert api.request("POST", f"/api/v1/namespaces/{ns}/services", _svc("w1", ns))[0] == 201
    events = _watch_lines(api, f"/api/v1/namespaces/{ns}/services?watch=True&resourceVersion={rv}&timeoutSeconds=1", 5)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w1")]
    events = _watch_lines(api, f"/api/v1/services?watch=1&resourceVersion={rv}&fieldSelector=metadata.name%3Dw1"
                               f"&timeoutSeconds=1", 5)
    assert [e["type"] for e in events] == ["ADDED"]
    events = _watch_lines(api, f"/api/v1/namespaces/{ns}/services?watch=true&resourceVersion={rv}"
                               f"&timeoutSeconds=1", 5)
    assert events[0]["object"]["kind"] == "Service"
    events = _watch_lines(api, f"/api/v1/namespaces/{ns}/services?watch=true&resourceVersion={rv}"
                               f"&allowWatchBookmarks=true&timeoutSeconds=2", 2)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) >= int(events[0]["object"]["metadata"]["resourceVersion"])
    # an initial list as a Table stream (what `kubectl get -w` reads)
    events = _watch_lines(api, f"/api/v1/namespaces/{ns}/services?watch=true&timeoutSeconds=1", 1)
    assert events and events[0]["type"] == "ADDED"


def test_token_auth_and_loopback_rule(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    api = start_api(tmp_path, "--token-file", str(token))
    try:
        assert api.request("GET", "/api/v1/namespaces", cert=False)[0] == 401
        code, _, body = api.request("GET", "/api/v1/namespaces", headers={"Authorization": "Bearer s3cret"}, cert=False)
        assert code == 200 and body["kind"] == "NamespaceList"
        assert api.request("GET", "/version", headers={"Authorization": "Bearer nope"}, cert=False)[0] == 401
        assert api.proc.stop() == 0  # SIGTERM: a clean exit
    finally:
        api.proc.stop()
    p = Proc(str(tmp_path / "other.db"), "apiserver", "--bind-address", "0.0.0.0", "--port", "0", "--insecure-plain-http")
    try:
        assert p.p.wait(20) == 1
    finally:
        p.stop()
    assert any("refusing to serve plain HTTP on non-loopback address 0.0.0.0" in ln for ln in p.stderr)


def test_watch_from_a_compacted_revision_is_gone(api: Api, ns: str) -> None:
    from kubesvc.store.db import Store

    old = api.revision()
    assert api.request("POST", f"/api/v1/namespaces/{ns}/services", _svc("gone1", ns))[0] == 201
    assert api.request("POST", f"/api/v1/namespaces/{ns}/services", _svc("gone2", ns))[0] == 201
    with Store(api.store) as s:
        assert s.compact(keep=1) > old
    events = _watch_lines(api, f"/api/v1/namespaces/{ns}/services?watch=true&resourceVersion={old}&timeoutSeconds=1", 2)
    assert [e["type"] for e in events] == ["ERROR"]
    assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")

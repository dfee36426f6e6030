"""OpenAPI v2/v3 served from schemas/: the real kubectl explains fields from them, validates through them and
computes apply patches from them; the documents' structure, caching headers and the v2 protobuf (decoded here by
a small reader of the protobuf wire format, not by our encoder)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from kubesvc.apiserver import openapi
from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl


def fields(text: str) -> list[str]:
    """The FIELDS lines of kubectl explain, as ``name <type>[ -required-]`` with their indentation kept."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\s*)(\S+)\t<([^>]*)>( -required-)?$", line)
        if m:
            out.append(f"{m[1]}{m[2]} <{m[3]}>{m[4] or ''}")
    return out


# ------------------------------------------------------------------------------------------ kubectl explain


@needs_kubectl
def test_explain_service_spec_ports(api: Api) -> None:
    r = api.kubectl("explain", "service.spec.ports")
    assert r.code == 0, r.err
    assert r.out.startswith("KIND:       Service\nVERSION:    v1\n\nFIELD: ports <[]ServicePort>\n")
    assert fields(r.out) == [
        "  appProtocol <string>",
        "  name <string>",
        "  nodePort <integer>",
        "  port <integer> -required-",
        "  protocol <string>",
        "  targetPort <IntOrString>",
    ]
    assert r.err == ""


@needs_kubectl
def test_explain_svc_with_api_version(api: Api) -> None:
    r = api.kubectl("explain", "svc", "--api-version=v1")
    assert r.code == 0, r.err
    assert r.out.startswith("KIND:       Service\nVERSION:    v1\n\nDESCRIPTION:\n")
    assert fields(r.out) == [
        "  apiVersion <string>", "  kind <string>", "  metadata <ObjectMeta>", "  spec <ServiceSpec>",
        "  status <ServiceStatus>",
    ]
    spec = fields(api.kubectl("explain", "svc.spec").out)
    for line in ("  ports <[]ServicePort>", "  selector <map[string]string>", "  clusterIPs <[]string>",
                 "  sessionAffinityConfig <SessionAffinityConfig>", "  allocateLoadBalancerNodePorts <boolean>"):
        assert line in spec


@needs_kubectl
def test_explain_deployment_template_recursive(api: Api) -> None:
    r = api.kubectl("explain", "deployment.spec.template", "--recursive")
    assert r.code == 0, r.err
    assert r.out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\nFIELD: template <PodTemplateSpec>\n")
    lines = fields(r.out)
    for line in ("  metadata <ObjectMeta>", "    labels <map[string]string>", "    creationTimestamp <string>",
                 "  spec <PodSpec>", "    containers <[]Container> -required-", "      name <string> -required-",
                 "      ports <[]ContainerPort>", "        containerPort <integer> -required-",
                 "      resources <ResourceRequirements>", "        limits <map[string]Quantity>",
                 "      env <[]EnvVar>", "    volumes <[]Volume>"):
        assert line in lines, line
    # A field's children follow it, one level deeper.
    i = lines.index("      ports <[]ContainerPort>")
    assert lines[i + 1].startswith("        ")


@needs_kubectl
def test_explain_unknown_field_and_other_groups(api: Api) -> None:
    r = api.kubectl("explain", "svc.spec.nope")
    assert r.code != 0
    assert 'field "nope" does not exist' in r.err
    ing = api.kubectl("explain", "ingress.spec.rules.http.paths")
    assert ing.code == 0, ing.err
    assert "  backend <IngressBackend> -required-" in fields(ing.out)
    assert "  pathType <string> -required-" in fields(ing.out)


@needs_kubectl
def test_explain_through_openapi_v2_protobuf(api: Api) -> None:
    r = api.kubectl("explain", "svc.spec.ports", "--output", "plaintext-openapiv2")
    assert r.code == 0, r.err
    assert "RESOURCE: ports <[]Object>" in r.out
    assert "   port\t<integer> -required-" in r.out
    assert "   targetPort\t<string>" in r.out


@needs_kubectl
@pytest.mark.parametrize("args", [
    ("service.spec.ports",), ("svc", "--api-version=v1"), ("deployment.spec.template", "--recursive"),
    ("deployments.apps.spec",), ("pods.spec.containers.resources",), ("ing",), ("svc.spec.nope",),
    ("svc", "--api-version=apps/v1"), ("svc", "--api-version=foo/v9"), ("nosuchthing",),
])
def test_kubesvc_explain_prints_what_kubectl_prints(api: Api, args: tuple[str, ...]) -> None:
    k = api.kubectl("explain", *args)
    s = api.cli("explain", *args)
    assert (s.code, s.out, s.err) == (k.code, k.out, k.err)


def test_kubesvc_explain_without_a_store(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from kubesvc.cli.app import build_app

    r = CliRunner().invoke(build_app(), ["--store", str(tmp_path / "none.db"), "explain", "svc.spec.ports"])
    assert r.exit_code == 0, r.output
    assert fields(r.output)[3] == "  port <integer> -required-"
    assert not (tmp_path / "none.db").exists()


# ------------------------------------------------------------------------------------------ kubectl validation and apply


@needs_kubectl
def test_validate_strict_refuses_unknown_field(api: Api, ns: str) -> None:
    bad = api.write("bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec:\n  ports:\n  - port: 80\n    nodeport: 3\n")
    for verb in (("apply", "--validate=strict"), ("create", "--validate=true")):
        r = api.kubectl(*verb, "-n", ns, "-f", bad)
        assert r.code == 1
        assert r.err == ('Error from server (BadRequest): error when creating "bad.yaml": Service in version "v1" cannot be '
                         'handled as a Service: strict decoding error: unknown field "spec.ports[0].nodeport"\n')
    good = api.write("good.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: good}\nspec:\n  ports:\n  - port: 80\n")
    r = api.kubectl("create", "--validate=true", "-n", ns, "-f", good)
    assert (r.code, r.out, r.err) == (0, "service/good created\n", "")


DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  strategy: {type: Recreate}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: nginx
        command: [sleep, "3600"]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
"""


@needs_kubectl
def test_apply_patch_computed_from_openapi_v3(api: Api, ns: str) -> None:
    """kubectl computes the strategic merge patch from our v3 schemas (merge keys, retainKeys), silently."""
    path = api.write("dep.yaml", DEPLOY)
    assert api.kubectl("apply", "-n", ns, "-f", path).code == 0
    api.write("dep.yaml", DEPLOY.replace('{name: B, value: "2"}', '{name: C, value: "3"}').replace("Recreate", "RollingUpdate"))
    r = api.kubectl("apply", "-n", ns, "-f", path, "-v=8")
    assert r.code == 0
    assert "deployment.apps/web configured" in r.out
    assert "/openapi/v3/apis/apps/v1?hash=" in r.err
    assert "/openapi/v2" not in r.err  # v3 sufficed: no fallback
    assert "warning" not in r.err.lower()
    body = next(line for line in r.err.splitlines() if '"Request Body"' in line and "$setElementOrder/env" in line)
    assert '$retainKeys' in body and '$patch' in body
    got = api.kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].env}")
    assert json.loads(got.out) == [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]


# ------------------------------------------------------------------------------------------ documents over HTTP


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_v3_index_and_documents(api: Api) -> None:
    code, _, index = api.request("GET", "/openapi/v3")
    assert code == 200
    assert {"api/v1", "apis/apps/v1", "apis/networking.k8s.io/v1"} <= set(index["paths"])
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    assert re.fullmatch(r"/openapi/v3/api/v1\?hash=[0-9A-F]{128}", url)
    code, headers, doc = api.request("GET", url)
    assert code == 200
    assert headers["Cache-Control"] == "public, immutable"
    schemas = doc["components"]["schemas"]
    svc = schemas["io.k8s.api.core.v1.Service"]
    assert svc["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Service", "version": "v1"}]
    assert svc["properties"]["metadata"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    ports = schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert (ports["x-kubernetes-patch-merge-key"], ports["x-kubernetes-patch-strategy"]) == ("port", "merge")
    assert ports["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert (containers["x-kubernetes-patch-merge-key"], containers["x-kubernetes-patch-strategy"]) == ("name", "merge")
    assert schemas["io.k8s.api.core.v1.PodSpec"]["required"] == ["containers"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    # Every reference resolves inside the same document.
    names = {"#/components/schemas/" + n for n in schemas}
    assert _refs(doc) <= names
    # Every kind users create has a PATCH operation with its GVK and the fieldValidation parameter.
    op = doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Service", "version": "v1"}
    assert "fieldValidation" in [p["name"] for p in op["parameters"]]
    assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]
    assert "get" in doc["paths"]["/api/v1/namespaces"] and "post" in doc["paths"]["/api/v1/namespaces"]
    apps = api.request("GET", index["paths"]["apis/apps/v1"]["serverRelativeURL"])[2]
    dep = apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert "io.k8s.api.core.v1.PodTemplateSpec" in apps["components"]["schemas"]
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}" in apps["paths"]


def test_v3_etag_and_stale_hash(api: Api) -> None:
    index = api.request("GET", "/openapi/v3")[2]
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    code, headers, _ = api.request("GET", url)
    etag = headers["ETag"]
    assert etag == '"' + url.rsplit("=", 1)[1] + '"'
    assert api.request("GET", url, headers={"If-None-Match": etag})[0] == 304
    assert api.request("GET", "/openapi/v3/api/v1", headers={"If-None-Match": etag})[0] == 304
    conn = api.http_connection()
    try:
        conn.request("GET", "/openapi/v3/api/v1?hash=0123", headers={"Host": "127.0.0.1"})
        r = conn.getresponse()
        r.read()
        assert (r.status, r.getheader("Location")) == (301, url)
    finally:
        conn.close()
    assert api.request("GET", "/openapi/v3/apis/nope/v1")[0] == 404


def test_v2_json_and_protobuf_over_http(api: Api) -> None:
    code, headers, doc = api.request("GET", "/openapi/v2", headers={"Accept": "application/json"})
    assert code == 200 and headers["Content-Type"] == "application/json"
    assert doc["swagger"] == "2.0"
    assert doc["definitions"]["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"] == {
        "$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
    conn = api.http_connection()
    try:
        conn.request("GET", "/openapi/v2", headers={"Accept": openapi.V2_PROTOBUF.replace(".v2.v1.0", ".v2@v1.0") + ", application/json"})
        r = conn.getresponse()
        raw = r.read()
        assert r.status == 200
        assert r.getheader("Content-Type") == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        etag = r.getheader("ETag")
    finally:
        conn.close()
    assert decode_document(raw)["definitions"] == normalise_v2(doc)["definitions"]
    assert api.request("GET", "/openapi/v2", headers={"Accept": openapi.V2_PROTOBUF, "If-None-Match": etag})[0] == 304


# ------------------------------------------------------------------------------------------ caching, pure


def test_hash_changes_with_the_kind_set_and_documents_are_cached() -> None:
    served = openapi.served()
    full = openapi.build_v3(served)
    fewer = openapi.build_v3(tuple(s for s in served if s.kind.kind != "ConfigMap"))
    body = {part: json.dumps(d, separators=(",", ":")) for part, d in full.items()}
    body_fewer = {part: json.dumps(d, separators=(",", ":")) for part, d in fewer.items()}
    assert body["api/v1"] != body_fewer["api/v1"]
    assert body["apis/apps/v1"] == body_fewer["apis/apps/v1"]
    assert openapi.built() is openapi.built()
    digest, payload = openapi.v3_document("api/v1") or ("", b"")
    assert digest == openapi._digest(payload) and len(digest) == 128


def test_kind_without_schema_file_gets_paths_but_no_strategic_patch() -> None:
    from kubesvc.api.kinds import Kind

    fake = openapi.Served(Kind("Widget", "example.com", "v1", "widgets", "widget", ()), ("get", "list", "patch", "create"))
    doc = openapi.build_v3((fake,))["apis/example.com/v1"]
    op = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in op["requestBody"]["content"]
    assert "fieldValidation" in [p["name"] for p in op["parameters"]]
    assert not any(n.endswith(".Widget") for n in doc["components"]["schemas"])


# ------------------------------------------------------------------------------------------ a protobuf reader


def _fields(buf: bytes) -> list[tuple[int, Any]]:
    """Wire format -> [(field number, int | bytes)] (varint, 64-bit, length-delimited, 32-bit)."""
    out: list[tuple[int, Any]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(buf):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            n = varint()
            out.append((number, buf[i:i + n]))
            i += n
        elif wire == 1:
            out.append((number, buf[i:i + 8]))
            i += 8
        elif wire == 5:
            out.append((number, buf[i:i + 4]))
            i += 4
        else:
            raise AssertionError(f"wire type {wire}")
    assert i == len(buf)
    return out


def _named(buf: bytes) -> tuple[str, bytes]:
    f = dict(_fields(buf))
    return f[1].decode(), f.get(2, b"")


def decode_schema(buf: bytes) -> dict[str, Any]:
    """openapi_v2.Schema (gnostic OpenAPIv2.proto) -> the JSON shape, for the fields our documents use."""
    out: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number == 1:
            out["$ref"] = value.decode()
        elif number == 2:
            out["format"] = value.decode()
        elif number == 4:
            out["description"] = value.decode()
        elif number == 19:
            out.setdefault("required", []).append(value.decode())
        elif number == 21:
            inner = dict(_fields(value))
            out["additionalProperties"] = decode_schema(inner[1]) if 1 in inner else bool(inner[2])
        elif number == 22:
            types = [v.decode() for _, v in _fields(value)]
            out["type"] = types[0] if len(types) == 1 else types
        elif number == 23:
            out["items"] = decode_schema(dict(_fields(value))[1])
        elif number == 24:
            out.setdefault("allOf", []).append(decode_schema(value))
        elif number == 25:
            out["properties"] = {n: decode_schema(v) for n, v in (_named(p) for _, p in _fields(value))}
        elif number == 31:
            name, any_ = _named(value)
            out[name] = json.loads(dict(_fields(any_))[2].decode())  # Any.yaml: our YAML is JSON text
        else:
            raise AssertionError(f"unexpected Schema field {number}")
    return out


def decode_document(buf: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = {"paths": {}, "definitions": {}}
    for number, value in _fields(buf):
        if number == 1:
            doc["swagger"] = value.decode()
        elif number == 2:
            doc["info"] = {("title", "version")[n - 1]: v.decode() for n, v in _fields(value)}
        elif number == 8:
            for _, item in _fields(value):
                name, path_item = _named(item)
                doc["paths"][name] = sorted({n for n, _ in _fields(path_item)})
        elif number == 9:
            for _, named in _fields(value):
                name, schema = _named(named)
                doc["definitions"][name] = decode_schema(schema)
    return doc


def normalise_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """What proto3 keeps of the JSON: empty strings and false dropped, uniqueItems not in our reader; vendor
    extensions travel as text, whole."""
    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: v if k.startswith("x-") else clean(v) for k, v in node.items()
                    if v not in ("", False) and k != "uniqueItems"}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node
    return clean(doc)


def test_v2_protobuf_round_trip() -> None:
    v2 = openapi.build_v2(openapi.build_v3(openapi.served()))
    decoded = decode_document(openapi.encode_v2(v2))
    assert decoded["swagger"] == "2.0"
    assert decoded["info"] == {"title": "Kubernetes (kubesvc)", "version": "v1.32.0"}
    assert decoded["definitions"] == normalise_v2(v2)["definitions"]
    assert decoded["definitions"]["io.k8s.api.core.v1.Service"]["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "Service", "version": "v1"}]
    # PathItem fields: get=2 put=3 post=4 delete=5 patch=8 parameters=9
    assert decoded["paths"]["/api/v1/namespaces/{namespace}/services/{name}"] == [2, 3, 5, 8, 9]
    assert set(decoded["paths"]) == set(v2["paths"])


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63 - 1])
def test_varint(value: int) -> None:
    assert _fields(bytes([1 << 3]) + openapi._varint(value)) == [(1, value)]

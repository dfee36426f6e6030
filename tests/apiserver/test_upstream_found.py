"""Behaviours that Kubernetes' own suites (test/cmd, the Python client's e2e_test) found wrong in
`kubesvc apiserver`; each case here is our own, see docs/upstream-tests.md for the runs themselves."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api


def _raw(api: Api, method: str, path: str, body: dict) -> tuple[int, bytes]:
    req = urllib.request.Request(api.url + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10, context=api.ssl_context()) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_already_exists_body_is_the_apiservers_bytes(api: Api, ns: str) -> None:
    # the Python client's create_from_yaml puts the body in its error text and e2e_test compares it exactly:
    # no "group":"" for a core kind, and a newline after the document as Go's json.Encoder writes
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mock-2"},
           "spec": {"selector": {"app": "m"}, "ports": [{"port": 99}]}}
    assert _raw(api, "POST", f"/api/v1/namespaces/{ns}/services", svc)[0] == 201
    code, body = _raw(api, "POST", f"/api/v1/namespaces/{ns}/services", svc)
    assert code == 409
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                    b'"message":"services \\"mock-2\\" already exists","reason":"AlreadyExists",'
                    b'"details":{"name":"mock-2","kind":"services"},"code":409}\n')
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "triple-nginx"},
           "spec": {"selector": {"matchLabels": {"app": "t"}},
                    "template": {"metadata": {"labels": {"app": "t"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    assert _raw(api, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", dep)[0] == 201
    code, body = _raw(api, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", dep)
    assert code == 409
    assert body.endswith(b'"details":{"name":"triple-nginx","group":"apps","kind":"deployments"},"code":409}\n')


def test_not_found_and_invalid_details_omit_empty_fields(api: Api, ns: str) -> None:
    code, _, body = api.request("GET", f"/api/v1/namespaces/{ns}/configmaps/nope")
    assert code == 404 and body["details"] == {"name": "nope", "kind": "configmaps"}
    code, _, body = api.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "Bad_Name"}}).encode())
    assert code == 422
    assert "group" not in body["details"] and body["details"]["kind"] == "ConfigMap"
    assert all(c.get("field") != "" for c in body["details"]["causes"])


def test_python_client_failtocreate_text(api: Api, ns: str) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes import client, config, utils

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(api.kubeconfig), client_configuration=cfg)
    k8s = client.ApiClient(cfg)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "twice"}, "data": {"a": "b"}}
    utils.create_from_dict(k8s, cm, namespace=ns)
    with pytest.raises(utils.FailToCreateError) as e:
        utils.create_from_dict(k8s, cm, namespace=ns)
    assert str(e.value) == ('Error from server (Conflict): {"kind":"Status","apiVersion":"v1","metadata":{},'
                            '"status":"Failure","message":"configmaps \\"twice\\" already exists",'
                            '"reason":"AlreadyExists","details":{"name":"twice","kind":"configmaps"},"code":409}\n')
    assert kubernetes is not None


def test_secret_string_data_is_merged_into_data_and_never_stored(api: Api, ns: str) -> None:
    # test/cmd run_secrets_test: stringData overrides data's key of the same name (base64 of its text)
    # and is not kept; kubectl create, the API's dry run and kubesvc's own create all see the same
    manifest = json.dumps({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "secret-string-data"},
                           "data": {"k1": "djE=", "k2": ""}, "stringData": {"k2": "v2", "k3": "é"}})
    code, _, body = api.request("POST", f"/api/v1/namespaces/{ns}/secrets?dryRun=All", manifest.encode())
    assert code == 201, body
    assert body["data"] == {"k1": "djE=", "k2": "djI=", "k3": "w6k="} and "stringData" not in body
    r = api.kubectl("create", "-n", ns, "-f", "-", input=manifest)
    assert r.code == 0, r.err
    r = api.kubectl("get", "-n", ns, "secret/secret-string-data", "-o", "go-template={{.data}} {{.stringData}}")
    assert r.out == "map[k1:djE= k2:djI= k3:w6k=] <no value>"
    # an update carrying stringData merges the same way (kubectl apply patches the stored object)
    r = api.kubectl("patch", "-n", ns, "secret/secret-string-data", "-p", '{"stringData":{"k1":"new"}}')
    assert r.code == 0, r.err
    code, _, body = api.request("GET", f"/api/v1/namespaces/{ns}/secrets/secret-string-data")
    assert body["data"]["k1"] == "bmV3" and "stringData" not in body
    other = manifest.replace("secret-string-data", "by-kubesvc")
    r = api.ks("create", "-n", ns, "-f", api.write("s.json", other))
    assert r.code == 0, r.err
    r = api.ks("get", "-n", ns, "secret", "by-kubesvc", "-o", "json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["data"]["k2"] == "djI=" and "stringData" not in got

"""Input a user can type that once gave "internal error": each now gets the apiserver's answer.

`null` decodes as Go decodes it (a null field is absent, a null list item or map value is its type's zero
value), then validation speaks; a lone surrogate becomes U+FFFD as Go's decoder makes it.
"""

from __future__ import annotations

import json

import pytest

from kubesvc.store.db import Store

NULL_SPECS = {
    "Service": ("v1", "The Service \"x\" is invalid: spec.ports: Required value"),
    "Pod": ("v1", "The Pod \"x\" is invalid: spec.containers: Required value"),
    "Deployment": ("apps/v1", "spec.selector: Required value"),
}


@pytest.mark.parametrize("kind", sorted(NULL_SPECS))
def test_null_spec_is_an_empty_spec(cli, store_path, kind):
    api_version, expected = NULL_SPECS[kind]
    r = cli("create", "-f", "-", input=f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\nspec: null\n")
    assert r.code == 1, r
    assert "internal error" not in r.err and "Traceback" not in r.err
    assert expected in r.err, r.err
    assert Store(store_path).get(kind, "default", "x") is None


def test_null_list_item_is_the_zero_value(cli):
    manifest = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: i}
spec:
  tls: [{hosts: [null]}]
  defaultBackend: {service: {name: web, port: {number: 80}}}
"""
    r = cli("create", "-f", "-", input=manifest)
    assert r.code == 1, r
    assert 'spec.tls[0].hosts[0]: Invalid value: "": a lowercase RFC 1123 subdomain' in r.err, r.err


def test_null_map_values_and_fields_are_stored_as_go_leaves_them(cli, store_path):
    manifest = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "labels": {"app": None}, "annotations": None},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "name": None}], "clusterIP": None},
    }
    r = cli("create", "-f", "-", input=json.dumps(manifest))
    assert r.code == 0, r
    svc = Store(store_path).get("Service", "default", "web")
    assert svc["metadata"]["labels"] == {"app": ""}
    assert "annotations" not in svc["metadata"]
    assert svc["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert svc["spec"]["clusterIP"]  # allocated, as for an absent field


def test_lone_surrogate_becomes_the_replacement_character(ks, store_path):
    body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"a\\ud800b"}}'
    r = ks("create", "-f", "-", input=body)
    assert r.code == 0, r
    assert Store(store_path).get("ConfigMap", "default", "c")["data"] == {"k": "a\ufffdb"}
    r = ks("get", "configmap", "c", "-o", "json")
    assert r.code == 0 and json.loads(r.out)["data"]["k"] == "a\ufffdb"

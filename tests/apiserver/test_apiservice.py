"""APIService (apiregistration.k8s.io/v1): stored only, cluster-scoped, the aggregator's validation and table,
an Available condition set at each write (no availability controller, no proxying)."""

from __future__ import annotations

import json

import pytest

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api

WARDLE = """apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1alpha1.wardle.k8s.io
spec:
  insecureSkipTLSVerify: true
  group: wardle.k8s.io
  groupPriorityMinimum: 1000
  versionPriority: 15
  service:
    name: api
    namespace: wardle
  version: v1alpha1
"""


def test_kubectl_create_get_table_and_conflict(api: Api) -> None:
    path = api.write("apiservice.yaml", WARDLE)
    r = api.kubectl("create", "-f", path)
    assert r.code == 0, r.err
    assert r.out.strip() == "apiservice.apiregistration.k8s.io/v1alpha1.wardle.k8s.io created"
    try:
        again = api.kubectl("create", "-f", path)
        assert again.code == 1
        assert 'apiservices.apiregistration.k8s.io "v1alpha1.wardle.k8s.io" already exists' in again.err
        local = api.kubectl("create", "-f", "-", input=(
            "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.local.example.com}\n"
            "spec: {group: local.example.com, version: v1, groupPriorityMinimum: 100, versionPriority: 10}\n"))
        assert local.code == 0, local.err
        table = api.kubectl("get", "apiservices")
        assert table.code == 0, table.err
        lines = [line.split() for line in table.out.splitlines()]
        assert lines[0] == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
        assert lines[1][:3] == ["v1.local.example.com", "Local", "True"]
        assert lines[2][:4] == ["v1alpha1.wardle.k8s.io", "wardle/api", "False", "(ServiceNotFound)"]
        got = json.loads(api.kubectl("get", "apiservice", "v1alpha1.wardle.k8s.io", "-o", "json").out)
        assert got["spec"]["service"] == {"name": "api", "namespace": "wardle", "port": 443}  # defaulted
        assert "namespace" not in got["metadata"]
        cond = got["status"]["conditions"][0]
        assert (cond["type"], cond["status"], cond["reason"]) == ("Available", "False", "ServiceNotFound")
        # the Service appears: the next write sees it (nothing answers discovery for the group here)
        svc = api.kubectl("create", "namespace", "wardle")
        assert svc.code == 0, svc.err
        svc = api.kubectl("create", "service", "clusterip", "api", "--tcp=443:443", "-n", "wardle")
        assert svc.code == 0, svc.err
        assert api.kubectl("label", "apiservice", "v1alpha1.wardle.k8s.io", "touched=yes").code == 0
        got = json.loads(api.kubectl("get", "apiservice", "v1alpha1.wardle.k8s.io", "-o", "json").out)
        assert got["status"]["conditions"][0]["reason"] == "FailedDiscoveryCheck"
        names = api.kubectl("api-resources", "--api-group=apiregistration.k8s.io", "-o", "name")
        assert names.out.split() == ["apiservices.apiregistration.k8s.io"]
    finally:
        api.kubectl("delete", "apiservice", "v1alpha1.wardle.k8s.io", "v1.local.example.com", "--ignore-not-found")
        api.kubectl("delete", "namespace", "wardle", "--ignore-not-found")


def test_validation_is_the_aggregators(api: Api) -> None:
    r = api.kubectl("create", "-f", "-", input=(
        "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.bad}\n"
        "spec: {group: good.example.com, version: v2, groupPriorityMinimum: 0, versionPriority: 2000,"
        " caBundle: Zm9v, insecureSkipTLSVerify: true}\n"))
    assert r.code == 1
    assert r.err.splitlines() == [
        'The APIService "v1.bad" is invalid: ',
        '* metadata.name: Invalid value: "v1.bad": must be v2.good.example.com',
        "* spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
        "* spec.versionPriority: Invalid value: 2000: must be positive and less than 1000",
        '* spec.caBundle: Invalid value: "3 bytes": local APIServices may not have a caBundle',
        "* spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have insecureSkipTLSVerify",
    ]
    r = api.kubectl("create", "-f", "-", input=(
        "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.svc.example.com}\n"
        "spec: {group: svc.example.com, version: v1, groupPriorityMinimum: 1, versionPriority: 1, caBundle: Zm9v,"
        " insecureSkipTLSVerify: true, service: {port: 70000}}\n"))
    assert r.code == 1
    assert "* spec.service.namespace: Required value" in r.err
    assert "* spec.service.name: Required value" in r.err
    assert "* spec.service.port: Invalid value: 70000: must be between 1 and 65535, inclusive" in r.err
    assert "* spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present" in r.err
    assert "v1.bad" not in api.kubectl("get", "apiservices", "-o", "name").out


def test_python_client_create_from_yaml_conflict(api: Api) -> None:
    # kubernetes-client/python e2e_test's test_create_apiservice_from_yaml_with_conflict, on our own manifest
    pytest.importorskip("kubernetes")
    from kubernetes import client, config, utils

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(api.kubeconfig), client_configuration=cfg)
    k8s = client.ApiClient(cfg)
    path = str(api.home / api.write("apiservice-py.yaml", WARDLE))
    utils.create_from_yaml(k8s, path)
    reg = client.ApiregistrationV1Api(k8s)
    try:
        svc = reg.read_api_service(name="v1alpha1.wardle.k8s.io")
        assert (svc.spec.group, svc.spec.version) == ("wardle.k8s.io", "v1alpha1")
        with pytest.raises(utils.FailToCreateError) as e:
            utils.create_from_yaml(k8s, path)
        assert str(e.value) == (
            'Error from server (Conflict): {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"apiservices.apiregistration.k8s.io \\"v1alpha1.wardle.k8s.io\\" already exists",'
            '"reason":"AlreadyExists","details":{"name":"v1alpha1.wardle.k8s.io",'
            '"group":"apiregistration.k8s.io","kind":"apiservices"},"code":409}\n')
    finally:
        reg.delete_api_service(name="v1alpha1.wardle.k8s.io", body={})

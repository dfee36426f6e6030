"""Behaviours that upstream test/cmd's core.sh functions (run_pod_tests, run_rc_tests, run_service_tests,
run_namespace_tests) found wrong in `kubesvc apiserver`; each case is our own, see docs/upstream-tests.md
for the runs themselves."""

from __future__ import annotations

import json

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl

ENV_POD = """apiVersion: v1
kind: Pod
metadata:
  name: env-test-pod
spec:
  containers:
  - name: c
    image: busybox
    env:
    - name: FROM_FIELD
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: FROM_FIELD_V1
      valueFrom:
        fieldRef:
          apiVersion: v1
          fieldPath: metadata.namespace
  volumes:
  - name: info
    downwardAPI:
      items:
      - path: labels
        fieldRef:
          fieldPath: metadata.labels
  - name: all
    projected:
      sources:
      - downwardAPI:
          items:
          - path: name
            fieldRef:
              fieldPath: metadata.name
"""


@needs_kubectl
def test_field_ref_api_version_defaults_to_v1(api: Api, ns: str) -> None:
    # run_pod_tests: `kubectl describe pod` of a pod whose env comes from fieldRef without apiVersion
    # prints "env-test-pod (v1:metadata.name)": the apiserver stores fieldRef.apiVersion v1
    r = api.kubectl("create", "-n", ns, "-f", api.write("env-pod.yaml", ENV_POD))
    assert r.code == 0, r.err
    pod = json.loads(api.kubectl("get", "-n", ns, "pod", "env-test-pod", "-o", "json").out)
    env = pod["spec"]["containers"][0]["env"]
    assert [e["valueFrom"]["fieldRef"] for e in env] == [
        {"apiVersion": "v1", "fieldPath": "metadata.name"}, {"apiVersion": "v1", "fieldPath": "metadata.namespace"}]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["info"]["downwardAPI"]["items"][0]["fieldRef"] == {"apiVersion": "v1", "fieldPath": "metadata.labels"}
    projected = volumes["all"]["projected"]["sources"][0]["downwardAPI"]["items"][0]
    assert projected["fieldRef"] == {"apiVersion": "v1", "fieldPath": "metadata.name"}
    described = api.kubectl("describe", "-n", ns, "pod", "env-test-pod")
    assert described.code == 0, described.err
    assert "FROM_FIELD:     env-test-pod (v1:metadata.name)" in described.out
    # the same stored object through kubesvc's own CLI
    own = json.loads(api.ks("get", "-n", ns, "pod", "env-test-pod", "-o", "json").out)
    assert own["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


@needs_kubectl
def test_field_ref_default_in_a_pod_template(api: Api, ns: str) -> None:
    # every pod template gets the pod defaults (an RC here), so its pods inherit apiVersion v1
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "envs"},
          "spec": {"replicas": 0, "template": {"metadata": {"labels": {"app": "envs"}}, "spec": {"containers": [
              {"name": "c", "image": "busybox",
               "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}}}
    r = api.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(rc))
    assert r.code == 0, r.err
    got = api.kubectl("get", "-n", ns, "rc", "envs", "-o",
                      "jsonpath={.spec.template.spec.containers[0].env[0].valueFrom.fieldRef.apiVersion}")
    assert got.out == "v1"


def _node(annotations: dict[str, str] | None = None, rv: str | None = None) -> str:
    meta: dict = {"name": "node-v1-test"}
    if annotations is not None:
        meta["annotations"] = annotations
    if rv is not None:
        meta["resourceVersion"] = rv
    return json.dumps({"kind": "Node", "apiVersion": "v1", "metadata": meta})


@needs_kubectl
def test_replace_with_resource_version_zero_is_unconditional(api: Api) -> None:
    # run_pod_tests replaces a Node with "resourceVersion": "0": the apiserver reads version 0 as no
    # precondition (an unconditional update), while any other stale version is a Conflict
    try:
        assert api.kubectl("create", "-f", "-", input=_node()).code == 0
        dry = api.kubectl("replace", "--dry-run=server", "-f", "-", input=_node({"a": "b"}, "0"))
        assert dry.code == 0, dry.err
        assert api.kubectl("get", "node", "node-v1-test", "-o", "jsonpath={.metadata.annotations.a}").out == ""
        r = api.kubectl("replace", "-f", "-", input=_node({"a": "b"}, "0"))
        assert r.code == 0, r.err
        assert api.kubectl("get", "node", "node-v1-test", "-o", "jsonpath={.metadata.annotations.a}").out == "b"
        stale = api.kubectl("replace", "-f", "-", input=_node({"a": "c"}, "1"))
        assert stale.code != 0 and "the object has been modified" in stale.err
        # kubesvc's own replace reads the same
        own = api.ks("replace", "-f", "-", input=_node({"a": "d"}, "0"))
        assert own.code == 0, own.err
        assert api.kubectl("get", "node", "node-v1-test", "-o", "jsonpath={.metadata.annotations.a}").out == "d"
    finally:
        api.kubectl("delete", "node", "node-v1-test")


def test_put_and_scale_with_resource_version_zero(api: Api, ns: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "zero"}, "data": {"k": "1"}}
    code, _, _ = api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", json.dumps(cm).encode())
    assert code == 201
    cm["metadata"]["resourceVersion"] = "0"
    cm["data"]["k"] = "2"
    code, _, body = api.request("PUT", f"/api/v1/namespaces/{ns}/configmaps/zero", json.dumps(cm).encode())
    assert code == 200, body
    assert body["data"] == {"k": "2"} and body["metadata"]["resourceVersion"] not in ("", "0")
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "zero"},
          "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "zero"}},
                                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    code, _, _ = api.request("POST", f"/api/v1/namespaces/{ns}/replicationcontrollers", json.dumps(rc).encode())
    assert code == 201
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "zero", "namespace": ns,
                                                                          "resourceVersion": "0"},
             "spec": {"replicas": 2}}
    code, _, body = api.request("PUT", f"/api/v1/namespaces/{ns}/replicationcontrollers/zero/scale",
                                json.dumps(scale).encode())
    assert code == 200, body
    assert body["spec"]["replicas"] == 2
    scale["metadata"]["resourceVersion"] = "1"
    code, _, body = api.request("PUT", f"/api/v1/namespaces/{ns}/replicationcontrollers/zero/scale",
                                json.dumps(scale).encode())
    assert code == 409, body

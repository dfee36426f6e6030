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

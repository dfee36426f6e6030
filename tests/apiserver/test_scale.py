"""The /scale subresource, kubectl scale and autoscale, the order of an update's checks, patch decode errors
and the workloads' status shapes, against a live `kubesvc apiserver` with the real kubectl (and the Python
client where it reads a status). The assertions of upstream's test/cmd (apps.sh run_rs_tests,
run_stateful_set_tests, run_deployment_tests; core.sh run_pod_tests) are repeated here word for word."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl

pytestmark = needs_kubectl

RS = """\
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: frontend, labels: {app: guestbook, tier: frontend}}
spec:
  replicas: 3
  selector:
    matchLabels: {tier: frontend}
    matchExpressions: [{key: tier, operator: In, values: [frontend, web]}, {key: env, operator: DoesNotExist}]
  template:
    metadata: {labels: {app: guestbook, tier: frontend}}
    spec: {containers: [{name: php-redis, image: gcr.io/google_samples/gb-frontend:v3}]}
"""
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx-deployment, labels: {app: nginx}}
spec:
  replicas: 3
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec: {containers: [{name: nginx, image: nginx:1.14.2}]}
"""
STS = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: nginx}
spec:
  replicas: 0
  serviceName: nginx
  selector: {matchLabels: {app: nginx-statefulset}}
  template:
    metadata: {labels: {app: nginx-statefulset}}
    spec: {containers: [{name: nginx, image: registry.k8s.io/nginx-slim:0.7}]}
"""
RC = """\
apiVersion: v1
kind: ReplicationController
metadata: {name: frontend-rc}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: rc, tier: web}}
    spec: {containers: [{name: c, image: nginx}]}
"""


def create(api: Api, ns: str, text: str) -> None:
    r = api.kubectl("-n", ns, "create", "-f", "-", input=text)
    assert r.code == 0, r.err


def field(api: Api, ns: str, what: str, template: str) -> str:
    r = api.kubectl("-n", ns, "get", *what.split(), "-o", f"go-template={template}")
    assert r.code == 0, r.err
    return r.out


def rv(api: Api, ns: str, what: str) -> str:
    return field(api, ns, what, "{{.metadata.resourceVersion}}")


def raw(api: Api, method: str, path: str, body: Any = None, ctype: str | None = "application/json") -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = {} if ctype is None else {"Content-Type": ctype}
    if ctype is None:  # no Content-Type at all, as kubectl's scale PUT (urllib would add form-urlencoded)
        conn = api.http_connection()
        try:
            conn.putrequest(method, path)
            conn.putheader("Content-Length", str(len(data or b"")))
            conn.endheaders(data)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()
    code, _, out = api.request(method, path, data, headers=headers)
    return code, out


# --------------------------------------------------------------------------------------------- discovery


def test_discovery_lists_the_scale_subresources(api: Api) -> None:
    for gv, plural in (("apis/apps/v1", "deployments"), ("apis/apps/v1", "replicasets"), ("apis/apps/v1", "statefulsets"),
                       ("api/v1", "replicationcontrollers")):
        code, _, doc = api.request("GET", f"/{gv}")
        assert code == 200
        entry = next(r for r in doc["resources"] if r["name"] == f"{plural}/scale")
        assert entry == {"name": f"{plural}/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
                         "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
    code, _, doc = api.request("GET", "/apis/apps/v1")
    assert not any(r["name"] == "daemonsets/scale" for r in doc["resources"])
    code, _, groups = api.request("GET", "/apis")
    autoscaling = next(g for g in groups["groups"] if g["name"] == "autoscaling")
    assert [v["version"] for v in autoscaling["versions"]] == ["v2", "v1"] and autoscaling["preferredVersion"]["version"] == "v2"
    out = api.kubectl("api-versions").out.split()
    assert "autoscaling/v1" in out and "autoscaling/v2" in out
    hpa_rows = [line for line in api.kubectl("api-resources").out.splitlines() if line.startswith("horizontalpodautoscalers")]
    assert len(hpa_rows) == 1 and "autoscaling/v2" in hpa_rows[0]


# ------------------------------------------------------------------------------------------- the Scale


def test_scale_object_shape(api: Api, ns: str) -> None:
    create(api, ns, RS)
    code, scale = raw(api, "GET", f"/apis/apps/v1/namespaces/{ns}/replicasets/frontend/scale")
    assert code == 200
    meta = scale["metadata"]
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert set(meta) == {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}
    assert meta["resourceVersion"] == rv(api, ns, "rs frontend")
    assert scale["spec"] == {"replicas": 3}
    # status.replicas is always there (nothing runs pods here); the selector is labels.Selector.String()
    assert scale["status"] == {"replicas": 0, "selector": "!env,tier=frontend,tier in (frontend,web)"}
    create(api, ns, RC)
    code, scale = raw(api, "GET", f"/api/v1/namespaces/{ns}/replicationcontrollers/frontend-rc/scale")
    assert code == 200 and scale["status"] == {"replicas": 0, "selector": "app=rc,tier=web"}
    create(api, ns, STS)
    code, scale = raw(api, "GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets/nginx/scale")
    assert code == 200 and scale["spec"] == {} and scale["status"]["replicas"] == 0  # replicas 0: omitempty
    code, st = raw(api, "GET", f"/api/v1/namespaces/{ns}/pods/nope/scale")
    assert code == 404 and st["reason"] == "NotFound"
    code, st = raw(api, "GET", f"/apis/apps/v1/namespaces/{ns}/deployments/nope/scale")
    assert code == 404 and st["message"] == 'deployments.apps "nope" not found'


def test_put_and_patch_scale(api: Api, ns: str) -> None:
    create(api, ns, DEPLOY)
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/nginx-deployment/scale"
    _, scale = raw(api, "GET", path)
    old_rv = scale["metadata"]["resourceVersion"]
    # kubectl scale --current-replicas PUTs the Scale it read, with no Content-Type
    scale["spec"]["replicas"] = 5
    code, out = raw(api, "PUT", path, scale, ctype=None)
    assert code == 200, out
    assert out["spec"] == {"replicas": 5} and out["metadata"]["resourceVersion"] != old_rv
    assert field(api, ns, "deploy nginx-deployment", "{{.spec.replicas}} {{.metadata.generation}}") == "5 2"
    # a stale resourceVersion is a Conflict naming the owner's resource
    code, st = raw(api, "PUT", path, scale)
    assert code == 409 and st["reason"] == "Conflict"
    assert st["message"] == ('Operation cannot be fulfilled on deployments.apps "nginx-deployment": the object has been modified; '
                             "please apply your changes to the latest version and try again")
    # validation
    code, st = raw(api, "PUT", path, {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "nginx-deployment"},
                                      "spec": {"replicas": -1}})
    assert code == 422 and st["message"] == 'Scale "nginx-deployment" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    assert st["details"]["causes"] == [{"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal to 0",
                                        "field": "spec.replicas"}]
    code, st = raw(api, "PUT", path, {"metadata": {"name": "nginx-deployment"}, "spec": {"replicas": "x"}})
    assert code == 400 and st["message"].endswith("json: cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32")
    code, st = raw(api, "PUT", path, {"kind": "Deployment", "metadata": {"name": "nginx-deployment"}, "spec": {"replicas": 1}})
    assert code == 400 and "does not match the expected kind (Scale)" in st["message"]
    code, st = raw(api, "PUT", path, {"metadata": {"name": "other"}, "spec": {"replicas": 1}})
    assert code == 400 and "does not match the name on the URL" in st["message"]
    # PATCH: merge (kubectl scale without a precondition), strategic, JSON patch; dryRun stores nothing
    code, out = raw(api, "PATCH", path, {"spec": {"replicas": 2}}, "application/merge-patch+json")
    assert code == 200 and out["spec"]["replicas"] == 2
    code, out = raw(api, "PATCH", path, {"spec": {"replicas": 4}}, "application/strategic-merge-patch+json")
    assert code == 200 and out["spec"]["replicas"] == 4
    code, out = raw(api, "PATCH", path, [{"op": "replace", "path": "/spec/replicas", "value": 6}], "application/json-patch+json")
    assert code == 200 and out["spec"]["replicas"] == 6
    before = rv(api, ns, "deploy nginx-deployment")
    code, out = raw(api, "PATCH", path + "?dryRun=All", {"spec": {"replicas": 9}}, "application/merge-patch+json")
    assert code == 200 and out["spec"]["replicas"] == 9
    assert field(api, ns, "deploy nginx-deployment", "{{.spec.replicas}}") == "6" and rv(api, ns, "deploy nginx-deployment") == before
    # the same size again writes nothing
    code, out = raw(api, "PATCH", path, {"spec": {"replicas": 6}}, "application/merge-patch+json")
    assert code == 200 and out["metadata"]["resourceVersion"] == before
    code, st = raw(api, "PATCH", path, {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}}, "application/merge-patch+json")
    assert code == 409
    code, st = raw(api, "DELETE", path)
    assert code == 405


# ---------------------------------------------------------------------------------------- kubectl scale


def test_kubectl_scale_replicaset_as_test_cmd(api: Api, ns: str) -> None:
    """apps.sh run_rs_tests: 'Scale replica set frontend with current-replicas and replicas'."""
    create(api, ns, RS)
    assert field(api, ns, "rs frontend", "{{.spec.replicas}}") == "3"
    for mode in ("client", "server"):
        r = api.kubectl("-n", ns, "scale", f"--dry-run={mode}", "--current-replicas=3", "--replicas=2", "replicasets", "frontend")
        assert r.code == 0, r.err
        assert r.out == f"replicaset.apps/frontend scaled ({'server ' if mode == 'server' else ''}dry run)\n"
    assert field(api, ns, "rs frontend", "{{.spec.replicas}}") == "3"
    r = api.kubectl("-n", ns, "scale", "--current-replicas=3", "--replicas=2", "replicasets", "frontend")
    assert (r.code, r.out) == (0, "replicaset.apps/frontend scaled\n"), r.err
    assert field(api, ns, "rs frontend", "{{.spec.replicas}}") == "2"
    # kubesvc's own CLI: the same words
    assert api.cli("-n", ns, "scale", "--current-replicas=2", "--replicas=1", "rs", "frontend").out == "replicaset.apps/frontend scaled\n"
    assert field(api, ns, "rs frontend", "{{.spec.replicas}}") == "1"


def test_kubectl_scale_preconditions_write_nothing(api: Api, ns: str) -> None:
    create(api, ns, DEPLOY)
    before = rv(api, ns, "deploy nginx-deployment")
    for tool in (api.kubectl, api.cli):
        r = tool("-n", ns, "scale", "deploy/nginx-deployment", "--current-replicas=2", "--replicas=5")
        assert (r.code, r.out, r.err) == (1, "", "error: Expected replicas to be 2, was 3\n")
        r = tool("-n", ns, "scale", "deploy/nginx-deployment", "--resource-version=1", "--replicas=5")
        assert (r.code, r.out, r.err) == (1, "", f"error: Expected resource version to be 1, was {before}\n")
        r = tool("-n", ns, "scale", "deploy/nginx-deployment", "--replicas=-1")
        assert (r.code, r.err) == (1, "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0\n")
        r = tool("-n", ns, "scale", "deploy/nope", "--replicas=1")
        assert (r.code, r.err) == (1, 'error: no objects passed to scale deployments.apps "nope" not found\n')
    assert rv(api, ns, "deploy nginx-deployment") == before
    r = api.kubectl("-n", ns, "scale", "deploy/nginx-deployment", f"--resource-version={before}", "--current-replicas=3", "--replicas=4")
    assert (r.code, r.out) == (0, "deployment.apps/nginx-deployment scaled\n"), r.err
    r = api.kubectl("-n", ns, "scale", "deploy/nginx-deployment", "--replicas=7", "--dry-run=server", "-o", "jsonpath={.spec.replicas}")
    assert (r.code, r.out) == (0, "4"), r.err  # kubectl prints the object as it read it
    assert field(api, ns, "deploy nginx-deployment", "{{.spec.replicas}}") == "4"
    r = api.cli("-n", ns, "scale", "deploy/nginx-deployment", "--replicas=7", "--dry-run=server")
    assert r.out == "deployment.apps/nginx-deployment scaled (server dry run)\n"
    assert field(api, ns, "deploy nginx-deployment", "{{.spec.replicas}}") == "4"


def test_kubectl_scale_statefulset_and_rc(api: Api, ns: str) -> None:
    """apps.sh run_stateful_set_tests: 'Scale statefulset test with current-replicas and replicas'."""
    create(api, ns, STS)
    assert field(api, ns, "statefulset nginx", "{{.spec.replicas}}") == "0"
    r = api.kubectl("-n", ns, "scale", "--current-replicas=0", "--replicas=1", "statefulset", "nginx")
    assert (r.code, r.out) == (0, "statefulset.apps/nginx scaled\n"), r.err
    assert field(api, ns, "statefulset nginx", "{{.spec.replicas}} {{.metadata.generation}}") == "1 2"
    create(api, ns, RC)
    r = api.kubectl("-n", ns, "scale", "rc", "frontend-rc", "--replicas=3", "--current-replicas=2")
    assert (r.code, r.out) == (0, "replicationcontroller/frontend-rc scaled\n"), r.err
    assert field(api, ns, "rc frontend-rc", "{{.spec.replicas}}") == "3"
    assert api.kubectl("-n", ns, "run", "p", "--image=nginx").code == 0
    r = api.kubectl("-n", ns, "scale", "pod", "p", "--replicas=3")
    assert r.code == 1 and "the server could not find the requested resource" in r.err


def test_kubectl_scale_all_and_selector(api: Api, ns: str) -> None:
    """apps.sh run_rs_tests: scale --all and -l, with dry runs first."""
    for i, labels in ((1, "run: hello"), (2, "run: hello"), (3, "run: world")):
        create(api, ns, DEPLOY.replace("nginx-deployment", f"scale-{i}").replace("metadata: {name: scale", f"metadata: {{labels: {{{labels}}}, name: scale")
               .replace(", labels: {app: nginx}}", "}").replace("replicas: 3", "replicas: 1"))

    def replicas() -> list[str]:  # one kubectl get for the three (a List, in the order asked)
        return field(api, ns, "deploy scale-1 scale-2 scale-3", "{{range .items}}{{.spec.replicas}} {{end}}").split()

    for mode in ("client", "server"):
        assert api.kubectl("-n", ns, "scale", "deploy", "--replicas=3", "--all", f"--dry-run={mode}").code == 0
    assert replicas() == ["1", "1", "1"]
    assert api.kubectl("-n", ns, "scale", "deploy", "--replicas=2", "-l", "run=hello").code == 0
    assert replicas() == ["2", "2", "1"]
    assert api.kubectl("-n", ns, "scale", "deploy", "--replicas=3", "--all").code == 0
    assert replicas() == ["3", "3", "3"]


# ------------------------------------------------------------------------------------- kubectl autoscale

HPA_FIELDS = "{{.spec.minReplicas}} {{.spec.maxReplicas}} {{(index .spec.metrics 0).resource.target.averageUtilization}}"


def test_kubectl_autoscale_as_test_cmd(api: Api, ns: str) -> None:
    """apps.sh run_deployment_tests 'Auto scale deployment' and run_rs_tests 'Auto scale replica set'."""
    create(api, ns, DEPLOY)
    for mode in ("client", "server"):
        r = api.kubectl("-n", ns, "autoscale", "deployment", "nginx-deployment", f"--dry-run={mode}", "--min=2", "--max=3")
        assert r.code == 0, r.err
    assert api.kubectl("-n", ns, "get", "hpa", "-o", "name").out == ""
    r = api.kubectl("-n", ns, "autoscale", "deployment", "nginx-deployment", "--min=2", "--max=3")
    assert (r.code, r.out) == (0, "horizontalpodautoscaler.autoscaling/nginx-deployment autoscaled\n"), r.err
    assert field(api, ns, "hpa nginx-deployment", HPA_FIELDS) == "2 3 80"
    # the v1 object kubectl posted reads back in v1
    code, hpa = raw(api, "GET", f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers/nginx-deployment")
    assert code == 200 and hpa["apiVersion"] == "autoscaling/v1"
    assert hpa["spec"] == {"scaleTargetRef": {"kind": "Deployment", "name": "nginx-deployment", "apiVersion": "apps/v1"},
                           "minReplicas": 2, "maxReplicas": 3, "targetCPUUtilizationPercentage": 80}
    assert hpa["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    assert api.kubectl("-n", ns, "delete", "hpa", "nginx-deployment").code == 0

    create(api, ns, RS)
    path = api.write(f"{ns}-rs.yaml", RS)
    r = api.kubectl("-n", ns, "autoscale", "-f", path, "--max=2", "--cpu-percent=70")
    assert r.code == 0, r.err
    assert field(api, ns, "hpa frontend", HPA_FIELDS) == "1 2 70"
    assert api.kubectl("-n", ns, "delete", "hpa", "frontend").code == 0
    assert api.kubectl("-n", ns, "autoscale", "rs", "frontend", "--min=2", "--max=3").code == 0
    assert field(api, ns, "hpa frontend", HPA_FIELDS) == "2 3 80"
    assert api.kubectl("-n", ns, "autoscale", "rs", "frontend").code != 0  # without --max


def test_kubesvc_autoscale_matches_kubectl(api: Api, ns: str) -> None:
    create(api, ns, DEPLOY)
    for args, code in ((["deploy", "nginx-deployment", "--max=1", "--min=3"], 1), (["pod", "p", "--max=3"], 1),
                       (["deploy", "nope", "--max=3"], 1), (["deploy/nginx-deployment", "--max=3", "--dry-run=client", "-o", "yaml"], 0),
                       (["deploy", "nginx-deployment", "--max=4", "--name=web", "--dry-run=server"], 0)):
        k = api.kubectl("-n", ns, "autoscale", *args)
        s = api.cli("-n", ns, "autoscale", *args)
        assert (k.code, k.out, k.err) == (s.code, s.out, s.err) and k.code == code, (args, k, s)
    assert api.cli("-n", ns, "autoscale", "deploy", "nginx-deployment").err == 'error: required flag(s) "max" not set\n'
    r = api.cli("-n", ns, "autoscale", "deploy", "nginx-deployment", "--max=5", "--cpu-percent=60")
    assert r.out == "horizontalpodautoscaler.autoscaling/nginx-deployment autoscaled\n"
    assert field(api, ns, "hpa nginx-deployment", HPA_FIELDS) == "1 5 60"
    r = api.kubectl("-n", ns, "autoscale", "deploy", "nginx-deployment", "--max=5")
    assert r.err == 'Error from server (AlreadyExists): horizontalpodautoscalers.autoscaling "nginx-deployment" already exists\n'


def test_hpa_v1_round_trip_keeps_v2_fields(api: Api, ns: str) -> None:
    """A v1 client's read-modify-write keeps the metrics and behavior v1 cannot say (annotations, as upstream)."""
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "maxReplicas": 4,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]}}
    create(api, ns, json.dumps(hpa))
    v1path = f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers/h"
    _, got = raw(api, "GET", v1path)
    assert got["spec"]["targetCPUUtilizationPercentage"] == 50 and "metrics" not in got["spec"]
    got["spec"]["maxReplicas"] = 6
    code, out = raw(api, "PUT", v1path, got)
    assert code == 200, out
    code, out = raw(api, "PATCH", v1path, {"spec": {"minReplicas": 2}}, "application/merge-patch+json")
    assert code == 200 and out["apiVersion"] == "autoscaling/v1", out
    stored = json.loads(api.kubectl("-n", ns, "get", "hpa", "h", "-o", "json").out)
    assert stored["spec"]["maxReplicas"] == 6 and stored["spec"]["minReplicas"] == 2
    assert stored["spec"]["metrics"] == hpa["spec"]["metrics"]
    assert not (stored["metadata"].get("annotations") or {})
    _, lst = raw(api, "GET", f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers")
    assert lst["apiVersion"] == "autoscaling/v1" and [i["spec"]["maxReplicas"] for i in lst["items"]] == [6]


# ---------------------------------------------------------------------------------- the order of checks


def test_stale_resource_version_is_a_conflict_before_validation(api: Api, ns: str) -> None:
    create(api, ns, DEPLOY)
    live = json.loads(api.kubectl("-n", ns, "get", "deploy", "nginx-deployment", "-o", "json").out)
    live["metadata"]["resourceVersion"] = "1"
    live["spec"]["selector"] = {"matchLabels": {"app": "other"}}  # immutable, and not matching the template
    r = api.kubectl("-n", ns, "replace", "-f", "-", input=json.dumps(live))
    assert r.code == 1 and "Error from server (Conflict)" in r.err and "the object has been modified" in r.err, r.err
    del live["metadata"]["resourceVersion"]
    r = api.kubectl("-n", ns, "replace", "-f", "-", input=json.dumps(live))
    assert r.code == 1 and "Error from server (Invalid)" in r.err or "is invalid" in r.err, r.err


def test_noop_patch_keeps_the_resource_version(api: Api, ns: str) -> None:
    """core.sh run_pod_tests: 'Patch exits with error message "patched (no change)" and exit code 0 when no-op occurs'."""
    create(api, ns, DEPLOY)
    before = rv(api, ns, "deploy nginx-deployment")
    revision = api.revision()
    for args in (["-p", '{"metadata":{"labels":{"app":"nginx"}}}'], ["--type=merge", "-p", '{"spec":{"replicas":3}}'],
                 ["--type=json", "-p", '[{"op":"replace","path":"/spec/replicas","value":3}]']):
        r = api.kubectl("-n", ns, "patch", "deploy", "nginx-deployment", *args)
        assert (r.code, r.out) == (0, "deployment.apps/nginx-deployment patched (no change)\n"), r.err
    live = api.kubectl("-n", ns, "get", "deploy", "nginx-deployment", "-o", "json").out
    r = api.kubectl("-n", ns, "replace", "-f", "-", input=live)
    assert r.code == 0, r.err
    assert rv(api, ns, "deploy nginx-deployment") == before and api.revision() == revision
    r = api.kubectl("-n", ns, "patch", "deploy", "nginx-deployment", "-p", '{"spec":{"replicas":4}}')
    assert (r.code, r.out) == (0, "deployment.apps/nginx-deployment patched\n")
    assert rv(api, ns, "deploy nginx-deployment") != before


@pytest.mark.parametrize("patch,value,detail", [
    ('{"metadata":{"labels":"invalid"}}', "map[metadata:map[labels:invalid]]", "cannot restore map from string"),
    ('{"metadata":{"labels":["a"]}}', "map[metadata:map[labels:[a]]]", "cannot restore map from slice"),
    ('{"spec":{"containers":{"name":"x"}}}', "map[spec:map[containers:map[name:x]]]", "cannot restore slice from map"),
    ('{"spec":"x"}', "map[spec:x]", "cannot restore struct from: string"),
    ('{"spec":{"activeDeadlineSeconds":"x"}}', "map[spec:map[activeDeadlineSeconds:x]]", "cannot convert string to int64"),
    ('{"spec":{"hostNetwork":1}}', "map[spec:map[hostNetwork:1]]", "cannot convert int64 to bool"),
])
def test_strategic_patch_decode_errors_use_the_apiservers_words(api: Api, ns: str, patch: str, value: str, detail: str) -> None:
    """core.sh run_pod_tests: 'Patch fails with type restore error and exit code 1'."""
    assert api.kubectl("-n", ns, "run", "valid-pod", "--image=nginx").code == 0
    before = rv(api, ns, "pod valid-pod")
    r = api.kubectl("-n", ns, "patch", "pod", "valid-pod", "-p", patch)
    assert r.code == 1 and r.err == f'The request is invalid: patch: Invalid value: "{value}": {detail}\n', r.err
    code, st = raw(api, "PATCH", f"/api/v1/namespaces/{ns}/pods/valid-pod", json.loads(patch), "application/strategic-merge-patch+json")
    assert code == 422 and st["reason"] == "Invalid" and st["details"]["causes"][0]["field"] == "patch"
    assert st["message"] == f' "" is invalid: patch: Invalid value: "{value}": {detail}'
    assert rv(api, ns, "pod valid-pod") == before


def test_merge_patch_decode_error(api: Api, ns: str) -> None:
    assert api.kubectl("-n", ns, "run", "valid-pod", "--image=nginx").code == 0
    code, st = raw(api, "PATCH", f"/api/v1/namespaces/{ns}/pods/valid-pod", {"metadata": {"labels": "x"}}, "application/merge-patch+json")
    assert code == 422 and st["details"]["causes"][0]["field"] == "patch"
    assert st["message"].endswith(": json: cannot unmarshal string into Go struct field ObjectMeta.metadata.labels of type map[string]string")
    assert '\\"labels\\":\\"x\\"' in st["message"]  # the value is the patched object's JSON


# -------------------------------------------------------------------------------------------- status shapes


def test_workload_status_shapes(api: Api, ns: str) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes import client, config

    create(api, ns, RS)
    create(api, ns, RC)
    create(api, ns, STS)
    for what, want in (("rs frontend", {"replicas": 0}), ("rc frontend-rc", {"replicas": 0}),
                       ("statefulset nginx", {"replicas": 0, "availableReplicas": 0})):
        status = json.loads(api.kubectl("-n", ns, "get", *what.split(), "-o", "json").out)["status"]
        assert {k: status[k] for k in want} == want, (what, status)
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(api.kubeconfig), client_configuration=cfg)
    apps = client.AppsV1Api(client.ApiClient(cfg))
    assert apps.read_namespaced_replica_set("frontend", ns).status.replicas == 0
    assert apps.read_namespaced_stateful_set("nginx", ns).status.replicas == 0
    assert apps.read_namespaced_replica_set_scale("frontend", ns).status.replicas == 0
    assert client.CoreV1Api(client.ApiClient(cfg)).read_namespaced_replication_controller("frontend-rc", ns).status.replicas == 0
    scaled = apps.patch_namespaced_replica_set_scale("frontend", ns, {"spec": {"replicas": 1}})
    assert scaled.spec.replicas == 1 and kubernetes

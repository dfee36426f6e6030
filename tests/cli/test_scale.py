"""`kubesvc scale` and `kubesvc autoscale` through the real CLI (CliRunner and a subprocess) on a real store:
kubectl's outputs, preconditions and messages (the same lines tests/apiserver/test_scale.py compares with the
real kubectl)."""

from __future__ import annotations

import json

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
"""
STS = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 0
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: nginx}]}
"""


def replicas(cli, what: str) -> str:
    return cli("get", *what.split(), "-o", "jsonpath={.spec.replicas}").out


def rv(cli, what: str) -> str:
    return cli("get", *what.split(), "-o", "jsonpath={.metadata.resourceVersion}").out


def test_scale_outputs_and_preconditions(cli, ks, manifest) -> None:
    assert cli("apply", "-f", manifest(DEPLOY)).code == 0
    r = ks("scale", "deploy/web", "--replicas=3")
    assert (r.code, r.out, r.err) == (0, "deployment.apps/web scaled\n", "")
    before = rv(cli, "deploy web")
    for args, err in ((["--current-replicas=2", "--replicas=5"], "error: Expected replicas to be 2, was 3\n"),
                      (["--resource-version=1", "--replicas=5"], f"error: Expected resource version to be 1, was {before}\n"),
                      (["--replicas=-1"], "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0\n")):
        r = cli("scale", "deploy", "web", *args)
        assert (r.code, r.out, r.err) == (1, "", err), args
    assert rv(cli, "deploy web") == before and replicas(cli, "deploy web") == "3"
    r = cli("scale", "deploy", "web", "--current-replicas=3", f"--resource-version={before}", "--replicas=4")
    assert (r.code, r.out) == (0, "deployment.apps/web scaled\n"), r.err
    assert replicas(cli, "deploy web") == "4"
    for mode, suffix in (("client", " (dry run)"), ("server", " (server dry run)")):
        r = cli("scale", "deploy", "web", "--replicas=9", f"--dry-run={mode}")
        assert (r.code, r.out) == (0, f"deployment.apps/web scaled{suffix}\n"), r.err
    assert replicas(cli, "deploy web") == "4"
    r = cli("scale", "deploy", "web", "--replicas=6", "-o", "json")  # the object as read, as kubectl prints it
    assert json.loads(r.out)["spec"]["replicas"] == 4 and replicas(cli, "deploy web") == "6"
    r = cli("scale", "deploy", "nope", "--replicas=1")
    assert (r.code, r.err) == (1, 'error: no objects passed to scale deployments.apps "nope" not found\n')


def test_scale_statefulset_and_refused_kinds(cli, manifest) -> None:
    assert cli("apply", "-f", manifest(STS)).code == 0
    r = cli("scale", "--current-replicas=0", "--replicas=1", "statefulset", "db")
    assert (r.code, r.out) == (0, "statefulset.apps/db scaled\n"), r.err
    assert replicas(cli, "sts db") == "1"
    assert cli("create", "configmap", "cm").code == 0
    r = cli("scale", "configmap", "cm", "--replicas=1")
    assert r.code == 1 and r.err.startswith("error: cannot scale configmaps")


def test_autoscale(cli, ks, manifest) -> None:
    path = manifest(DEPLOY)
    assert cli("apply", "-f", path).code == 0
    assert ks("autoscale", "deploy", "web").err == 'error: required flag(s) "max" not set\n'
    assert cli("autoscale", "deploy", "web", "--max=1", "--min=3").err == (
        "error: --max=MAXPODS must be larger or equal to --min=MINPODS, max: 1, min: 3\n")
    assert cli("autoscale", "deploy", "web", "--max=0").err == "error: --max=MAXPODS is required and must be at least 1, max: 0\n"
    assert cli("run", "p", "--image=nginx").code == 0
    assert cli("autoscale", "pod", "p", "--max=3").err == (
        "error: cannot autoscale a Pod: could not find scale subresource for /v1, Resource=pods in discovery information\n")
    r = cli("autoscale", "deploy/web", "--max=3", "--dry-run=client", "-o", "json")
    assert json.loads(r.out) == {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1",
                                 "metadata": {"name": "web", "creationTimestamp": None},
                                 "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "maxReplicas": 3},
                                 "status": {"currentReplicas": 0, "desiredReplicas": 0}}
    assert cli("autoscale", "deploy/web", "--max=3", "--dry-run=server").out == "horizontalpodautoscaler.autoscaling/web autoscaled (server dry run)\n"
    assert cli("get", "hpa", "-o", "name").out == ""
    r = ks("autoscale", "deploy", "web", "--min=2", "--max=3")
    assert (r.code, r.out) == (0, "horizontalpodautoscaler.autoscaling/web autoscaled\n"), r.err
    t = "{{.spec.minReplicas}} {{.spec.maxReplicas}} {{(index .spec.metrics 0).resource.target.averageUtilization}}"
    assert cli("get", "hpa", "web", "-o", f"go-template={t}").out == "2 3 80"
    r = cli("autoscale", "-f", path, "--max=2", "--cpu-percent=70", "--name=web2", "-o", "json")
    out = json.loads(r.out)
    assert out["apiVersion"] == "autoscaling/v1" and out["spec"]["targetCPUUtilizationPercentage"] == 70 and out["spec"]["minReplicas"] == 1
    assert cli("get", "hpa", "web2", "-o", f"go-template={t}").out == "1 2 70"
    assert cli("autoscale", "deploy", "web", "--max=3").err == (
        'Error from server (AlreadyExists): horizontalpodautoscalers.autoscaling "web" already exists\n')


RC = """\
apiVersion: v1
kind: ReplicationController
metadata: {name: frontend}
spec:
  replicas: 3
  template:
    metadata: {labels: {app: guestbook}}
    spec: {containers: [{name: c, image: nginx}]}
"""


def test_scale_rcs_as_core_sh(cli, ks, manifest) -> None:
    """core.sh run_rc_tests: with current-replicas, (wrong) current-replicas, replicas only, from a file, several."""
    path = manifest(RC, "rc.yaml")
    assert cli("create", "-f", path).code == 0
    assert cli("create", "-f", manifest(RC.replace("frontend", "redis-master"), "rc2.yaml")).code == 0
    assert cli("scale", "--current-replicas=3", "--replicas=2", "replicationcontrollers", "frontend").code == 0
    assert replicas(cli, "rc frontend") == "2"
    assert cli("scale", "--current-replicas=3", "--replicas=2", "replicationcontrollers", "frontend").code == 1
    assert replicas(cli, "rc frontend") == "2"
    assert cli("scale", "--replicas=3", "replicationcontrollers", "frontend").code == 0
    assert replicas(cli, "rc frontend") == "3"
    r = ks("scale", "--replicas=2", "-f", path)
    assert (r.code, r.out) == (0, "replicationcontroller/frontend scaled\n"), r.err
    assert replicas(cli, "rc frontend") == "2"
    r = cli("scale", "rc/frontend", "rc/redis-master", "--replicas=4")
    assert r.out == "replicationcontroller/frontend scaled\nreplicationcontroller/redis-master scaled\n"
    assert (replicas(cli, "rc frontend"), replicas(cli, "rc redis-master")) == ("4", "4")

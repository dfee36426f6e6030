"""StatefulSet, DaemonSet, Job, CronJob and PodTemplate through kubesvc's own CLI (CliRunner and a subprocess):
accepted, defaulted as the apiserver does, refused with its messages, listed with kubectl's columns."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Run, cli, ks, store_path  # noqa: F401  (fixtures)

POD = {"containers": [{"name": "c", "image": "busybox:1.36"}]}


def sts(name="web", **spec):
    base = {"selector": {"matchLabels": {"app": name}}, "serviceName": name,
            "template": {"metadata": {"labels": {"app": name}}, "spec": POD}}
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": base}


def ds(name="agent", **spec):
    base = {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": POD}}
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name}, "spec": base}


def job(name="pi", restart="Never", **spec):
    base = {"template": {"spec": {**POD, "restartPolicy": restart}}}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": base}


def cronjob(name="hello", schedule="*/5 * * * *", **spec):
    base = {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {**POD, "restartPolicy": "OnFailure"}}}}}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name}, "spec": base}


def create(run, obj) -> Run:
    return run("create", "-f", "-", input=json.dumps(obj))


def get_json(run, *args):
    r = run("get", *args, "-o", "json")
    assert r.code == 0, r
    return json.loads(r.out)


@pytest.mark.parametrize("runner", ["cli", "ks"])
def test_statefulset_created_defaulted_listed(runner, request):
    run = request.getfixturevalue(runner)
    r = create(run, sts())
    assert (r.code, r.out) == (0, "statefulset.apps/web created\n"), r
    spec = get_json(run, "sts", "web")["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10 and spec["replicas"] == 1
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    out = run("get", "statefulsets", "-o", "wide").out.splitlines()
    assert out[0].split() == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    assert out[1].split()[:2] == ["web", "0/1"] and out[1].split()[3:] == ["c", "busybox:1.36"]
    assert get_json(run, "sts", "web")["status"]["replicas"] == 0


def test_statefulset_validation_messages(cli):
    r = create(cli, sts(selector={"matchLabels": {"app": "other"}}))
    assert r.code == 1
    assert ('The StatefulSet "web" is invalid: spec.template.metadata.labels: Invalid value: '
            'map[string]string{"app":"web"}: `selector` does not match template `labels`') in r.err
    r = create(cli, sts(podManagementPolicy="Sometimes"))
    assert "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'" in r.err
    r = create(cli, sts(selector=None))
    assert "spec.selector: Required value" in r.err
    r = create(cli, sts(updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}}))
    assert "spec.updateStrategy.rollingUpdate: Invalid value" in r.err and "only allowed for updateStrategy 'RollingUpdate'" in r.err
    assert create(cli, sts()).code == 0
    changed = sts(serviceName="other")
    r = cli("apply", "-f", "-", input=json.dumps(changed))
    assert r.code == 1
    assert ("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
            "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden") in r.err


def test_daemonset_defaults_columns_and_immutable_selector(cli):
    assert create(cli, ds()).code == 0
    spec = get_json(cli, "ds", "agent")["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10
    lines = cli("get", "ds", "-o", "wide").out.splitlines()
    assert lines[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
                                "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert lines[1].split()[:7] == ["agent", "0", "0", "0", "0", "0", "<none>"]
    moved = ds(selector={"matchLabels": {"app": "agent", "tier": "x"}},
               template={"metadata": {"labels": {"app": "agent", "tier": "x"}}, "spec": POD})
    r = cli("apply", "-f", "-", input=json.dumps(moved))
    assert r.code == 1 and "spec.selector: Invalid value" in r.err and "field is immutable" in r.err
    r = create(cli, ds(name="bad", updateStrategy={"type": "Whenever"}))
    assert 'spec.updateStrategy.type: Unsupported value: "Whenever": supported values: "OnDelete", "RollingUpdate"' in r.err
    r = create(cli, ds(name="empty", selector={}))
    assert "empty selector is invalid for daemonset" in r.err


@pytest.mark.parametrize("runner", ["cli", "ks"])
def test_job_selector_generated_and_defaults(runner, request):
    run = request.getfixturevalue(runner)
    r = create(run, job())
    assert (r.code, r.out) == (0, "job.batch/pi created\n"), r
    obj = get_json(run, "job", "pi")
    uid, spec = obj["metadata"]["uid"], obj["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels == {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
                      "controller-uid": uid, "job-name": "pi"}
    assert obj["metadata"]["labels"] == labels
    assert {k: spec[k] for k in ("completions", "parallelism", "backoffLimit", "completionMode", "suspend",
                                 "podReplacementPolicy", "manualSelector")} == {
        "completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed", "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": False}
    lines = run("get", "jobs", "-o", "wide").out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert lines[1].split()[:3] == ["pi", "Running", "0/1"]
    assert lines[1].split()[-1] == f"batch.kubernetes.io/controller-uid={uid}"


def test_job_validation_messages(cli):
    r = create(cli, job(restart=""))
    assert r.code == 1
    assert ('The Job "pi" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": '
            'supported values: "OnFailure", "Never"') in r.err
    r = create(cli, job(parallelism=-1))
    assert "spec.parallelism: Invalid value: -1: must be greater than or equal to 0" in r.err
    r = create(cli, job(completionMode="Indexed", parallelism=2))  # completions defaults only when both are absent
    assert "spec.completions: Required value: when completion mode is Indexed" in r.err
    r = create(cli, job(completionMode="Sometimes"))
    assert 'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"' in r.err
    r = create(cli, job(manualSelector=True))
    assert "spec.selector: Required value" in r.err
    assert create(cli, job()).code == 0
    live = get_json(cli, "job", "pi")
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.37"
    r = cli("apply", "-f", "-", input=json.dumps(live))
    assert r.code == 1 and "spec.template: Invalid value" in r.err and "field is immutable" in r.err


def test_cronjob_defaults_columns_and_schedule_messages(cli, ks):
    assert create(ks, cronjob()).code == 0
    spec = get_json(cli, "cj", "hello")["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]  # the Job's own defaults wait for the Job
    lines = cli("get", "cronjobs").out.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert lines[1].split()[:8] == ["hello", "*/5", "*", "*", "*", "*", "<none>", "False"]
    r = create(cli, cronjob(name="bad", schedule="every minute"))
    assert 'spec.schedule: Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]' in r.err
    r = create(cli, cronjob(name="bad", schedule="99 * * * *"))
    assert "end of range (99) above maximum (59): 99" in r.err
    r = create(cli, cronjob(name="bad", concurrencyPolicy="Sometimes"))
    assert 'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"' in r.err
    r = create(cli, cronjob(name="x" * 53))
    assert "must be no more than 52 characters" in r.err
    r = create(cli, cronjob(name="bad", schedule=""))
    assert "spec.schedule: Required value" in r.err


def test_podtemplate_columns_and_delete(cli):
    pt = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "pt"},
          "template": {"metadata": {"labels": {"a": "b"}}, "spec": POD}}
    assert create(cli, pt).code == 0
    lines = cli("get", "podtemplates").out.splitlines()
    assert lines[0].split() == ["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"]
    assert lines[1].split() == ["pt", "c", "busybox:1.36", "a=b"]
    assert get_json(cli, "podtemplate", "pt")["template"]["spec"]["restartPolicy"] == "Always"
    r = cli("delete", "podtemplate", "pt")
    assert (r.code, r.out) == (0, 'podtemplate "pt" deleted\n')


def test_deleting_a_cronjob_takes_its_jobs(cli):
    assert create(cli, cronjob()).code == 0
    owner = get_json(cli, "cj", "hello")
    child = job(name="hello-1")
    child["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello",
                                             "uid": owner["metadata"]["uid"], "controller": True}]
    assert create(cli, child).code == 0
    assert cli("delete", "cj", "hello").code == 0
    assert cli("get", "jobs").err.strip() == "No resources found in default namespace."

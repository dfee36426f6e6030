"""Jobs and CronJobs with real processes (the kubelet), and the CronJob controller on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesvc.api import cron
from kubesvc.controllers.cronjob import CronJobController
from kubesvc.controllers.jobs import format_indexes
from tests.workloads.fixtures import POD_PYTHON, Bed


def job(name: str, code: str, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                                                   "containers": [{"name": "work", "image": "python:3",
                                                                   "command": [POD_PYTHON, "-c", code]}]}}}}


def conditions(bed: Bed, name: str) -> dict[str, dict[str, Any]]:
    j = bed.store.get("Job", "default", name) or {}
    return {c["type"]: c for c in (j.get("status") or {}).get("conditions") or []}


def job_pods(bed: Bed, name: str) -> list[dict[str, Any]]:
    return bed.pods(**{"batch.kubernetes.io/job-name": name})


def test_completions_with_parallelism(bed: Bed) -> None:
    bed.start_kubelet()
    since = bed.store.revision()
    bed.create(job("sum", "import time; time.sleep(0.3)", completions=3, parallelism=2))
    bed.wait(lambda: "Complete" in conditions(bed, "sum"), timeout=30, what="Complete")
    c = conditions(bed, "sum")
    assert (c["Complete"]["reason"], c["SuccessCriteriaMet"]["status"]) == ("CompletionsReached", "True")
    st = bed.store.get("Job", "default", "sum")["status"]
    assert st["succeeded"] == 3 and "failed" not in st and "active" not in st and st["completionTime"]
    pods = job_pods(bed, "sum")
    assert len(pods) == 3 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    # never more than parallelism pods running at once: replay the change log
    active: set[str] = set()
    most = 0
    for ch in bed.store.changes(since, kinds=("Pod",)):
        if ch.type == "DELETED" or (ch.object.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            active.discard(ch.name)
        else:
            active.add(ch.name)
        most = max(most, len(active))
    assert most == 2
    r = bed.ks("get", "jobs", "sum")
    assert r.stdout.split("\n")[1].split()[:3] == ["sum", "Complete", "3/3"], r.stdout


def test_backoff_limit_exceeded(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(job("fail", "import sys; sys.exit(3)", backoffLimit=1))
    bed.wait(lambda: "Failed" in conditions(bed, "fail"), timeout=30, what="Failed")
    c = conditions(bed, "fail")["Failed"]
    assert (c["reason"], c["message"]) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert conditions(bed, "fail")["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    pods = job_pods(bed, "fail")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Failed" for p in pods)
    codes = {p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods}
    assert codes == {3}
    assert bed.store.get("Job", "default", "fail")["status"]["failed"] == 2
    r = bed.ks("get", "events", "--field-selector", "involvedObject.name=fail")
    assert "BackoffLimitExceeded" in r.stdout, r.stdout


def test_pod_failure_policy_fails_on_exit_code(bed: Bed) -> None:
    bed.start_kubelet()
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    bed.create(job("fatal", "import sys; sys.exit(42)", backoffLimit=6, podFailurePolicy=policy))
    bed.wait(lambda: "Failed" in conditions(bed, "fatal"), timeout=30, what="Failed")
    c = conditions(bed, "fatal")["Failed"]
    assert c["reason"] == "PodFailurePolicy" and "exit code 42" in c["message"]
    assert len(job_pods(bed, "fatal")) == 1  # no retry


def test_indexed_job_sees_its_index(bed: Bed) -> None:
    bed.start_kubelet()
    code = "import os; print('index', os.environ['JOB_COMPLETION_INDEX'])"
    bed.create(job("idx", code, completions=3, parallelism=3, completionMode="Indexed"))
    bed.wait(lambda: "Complete" in conditions(bed, "idx"), timeout=30, what="Complete")
    assert bed.store.get("Job", "default", "idx")["status"]["completedIndexes"] == "0-2"
    seen = set()
    for p in job_pods(bed, "idx"):
        i = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["name"].startswith(f"idx-{i}-") and p["spec"]["hostname"] == f"idx-{i}"
        out = bed.ks("logs", p["metadata"]["name"]).stdout
        assert out == f"index {i}\n", out
        seen.add(i)
    assert seen == {"0", "1", "2"}


def test_active_deadline_and_ttl(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(job("slow", "import time; time.sleep(60)", activeDeadlineSeconds=1, ttlSecondsAfterFinished=1))
    bed.wait(lambda: "Failed" in conditions(bed, "slow"), timeout=30, what="Failed")
    assert conditions(bed, "slow")["Failed"]["reason"] == "DeadlineExceeded"
    # ttlSecondsAfterFinished: the Job and its pods go afterwards
    bed.wait(lambda: bed.store.get("Job", "default", "slow") is None and not job_pods(bed, "slow"),
             timeout=30, what="Job removed after its TTL")


def test_on_failure_restarts_count_toward_backoff(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(job("flaky", "import sys; sys.exit(1)", restart="OnFailure", backoffLimit=1))
    bed.wait(lambda: "Failed" in conditions(bed, "flaky"), timeout=30, what="Failed")
    assert conditions(bed, "flaky")["Failed"]["reason"] == "BackoffLimitExceeded"
    assert len(bed.store.list("Pod", "default")) <= 1  # restarted in place, then deleted


# ------------------------------------------------------------------------------ CronJob (injected clock)


def cronjob(name: str, schedule: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, "timeZone": "Etc/UTC", **spec,
                     "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                         {"name": "c", "image": "busybox", "command": ["true"]}]}}}}}}


def finish(bed: Bed, name: str, state: str, at: datetime) -> None:
    """What the Job controller writes when a Job ends (the CronJob controller only reads it)."""
    t = at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def fn(o: dict[str, Any]) -> None:
        o["status"] = {"startTime": t, "conditions": [{"type": state, "status": "True", "lastTransitionTime": t}]}
        if state == "Complete":
            o["status"]["completionTime"] = t

    bed.reg.update_status("Job", "default", name, fn)


def jobs_of(bed: Bed, cj: str) -> list[str]:
    return sorted(j["metadata"]["name"] for j in bed.store.list("Job", "default")
                  if any(r.get("name") == cj for r in j["metadata"].get("ownerReferences") or []))


def test_cronjob_every_minute_history_and_status(bed: Bed) -> None:
    events: list[tuple[str, str]] = []
    ctrl = CronJobController(bed.reg, lambda obj, t, reason, msg: events.append((reason, msg)))
    created = bed.create(cronjob("tick", "* * * * *", successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1))
    t0 = datetime.strptime(created["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    ctrl.sync(t0)  # creation time itself: no schedule is due yet (t0 + 1s may cross a minute)
    assert jobs_of(bed, "tick") == []
    names = []
    for minute in range(1, 5):
        now = t0.replace(second=0) + timedelta(minutes=minute, seconds=5)
        ctrl.sync(now)
        due = now.replace(second=0)
        name = f"tick-{int(due.timestamp()) // 60}"
        names.append(name)
        assert name in jobs_of(bed, "tick")
        j = bed.store.get("Job", "default", name)
        assert j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
        st = bed.store.get("CronJob", "default", "tick")["status"]
        assert st["lastScheduleTime"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert [a["name"] for a in st["active"]] == [name]
        finish(bed, name, "Complete", now)
    ctrl.sync(now + timedelta(seconds=10))
    # history: the two latest successful Jobs stay
    assert jobs_of(bed, "tick") == sorted(names[-2:])
    st = bed.store.get("CronJob", "default", "tick")["status"]
    assert "active" not in st and st["lastSuccessfulTime"] == now.strftime("%Y-%m-%dT%H:%M:%SZ")
    reasons = [r for r, _ in events]
    assert reasons.count("SuccessfulCreate") == 4 and reasons.count("SawCompletedJob") == 4
    assert ("SuccessfulDelete", f"Deleted job {names[0]}") in events


@pytest.mark.parametrize("policy", ["Allow", "Forbid", "Replace"])
def test_cronjob_concurrency_policy(bed: Bed, policy: str) -> None:
    ctrl = CronJobController(bed.reg, lambda *a: None)
    created = bed.create(cronjob("c", "*/5 * * * *", concurrencyPolicy=policy))
    t0 = datetime.strptime(created["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    first = (t0.replace(second=0) + timedelta(minutes=5 - t0.minute % 5))
    ctrl.sync(first + timedelta(seconds=1))
    ctrl.sync(first + timedelta(minutes=5, seconds=1))  # the first Job still runs
    names = [f"c-{int(first.timestamp()) // 60}", f"c-{int(first.timestamp()) // 60 + 5}"]
    want = {"Allow": names, "Forbid": names[:1], "Replace": names[1:]}[policy]
    assert jobs_of(bed, "c") == want


def test_cronjob_suspend_and_starting_deadline(bed: Bed) -> None:
    ctrl = CronJobController(bed.reg, lambda *a: None)
    created = bed.create(cronjob("s", "@hourly", suspend=True, startingDeadlineSeconds=60))
    t0 = datetime.strptime(created["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    hour = t0.replace(minute=0, second=0) + timedelta(hours=1)
    ctrl.sync(hour + timedelta(seconds=1))
    assert jobs_of(bed, "s") == []  # suspended
    bed.reg.mutate("CronJob", "default", "s", lambda o: o["spec"].__setitem__("suspend", False))
    ctrl.sync(hour + timedelta(minutes=5))  # resumed too late for that hour's run
    assert jobs_of(bed, "s") == []
    ctrl.sync(hour + timedelta(hours=1, seconds=30))  # the next one is within the deadline
    assert jobs_of(bed, "s") == [f"s-{int((hour + timedelta(hours=1)).timestamp()) // 60}"]


def test_cronjob_jobs_run_through_the_kubelet(bed: Bed) -> None:
    """A Job the CronJob created is run by the kubelet's Job controller; the CronJob sees it complete."""
    bed.start_kubelet()
    cj = cronjob("real", "* * * * *")
    cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] = [POD_PYTHON, "-c", "pass"]
    created = bed.create(cj)
    t0 = datetime.strptime(created["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    ctrl = CronJobController(bed.reg, lambda *a: None)
    due = t0.replace(second=0) + timedelta(minutes=1)
    ctrl.sync(due + timedelta(seconds=1))
    name = f"real-{int(due.timestamp()) // 60}"
    bed.wait(lambda: "Complete" in conditions(bed, name), timeout=30, what="the CronJob's Job completes")
    ctrl.sync(due + timedelta(seconds=2))
    st = bed.store.get("CronJob", "default", "real")["status"]
    assert "active" not in st and st["lastSuccessfulTime"]


# ------------------------------------------------------------------------------ pure rules


def test_cron_parser() -> None:
    t = datetime(2025, 1, 31, 23, 59, 30, tzinfo=UTC)
    assert cron.parse("@hourly").next_after(t) == datetime(2025, 2, 1, 0, 0, tzinfo=UTC)
    assert cron.parse("*/15 9-17 * * mon-fri").next_after(t) == datetime(2025, 2, 3, 9, 0, tzinfo=UTC)
    assert cron.parse("0 0 29 2 *").next_after(t) == datetime(2028, 2, 29, 0, 0, tzinfo=UTC)
    assert cron.parse("0 12 13 * 5").next_after(t) == datetime(2025, 2, 7, 12, 0, tzinfo=UTC)  # dom OR dow
    assert cron.parse("5 4 * * 7").next_after(t) == datetime(2025, 2, 2, 4, 5, tzinfo=UTC)  # 7 is Sunday
    assert cron.parse("0 0 1 JAN ?").next_after(t) == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    for bad, msg in [("* * * *", "expected exactly 5 fields, found 4"), ("61 * * * *", "above maximum (59)"),
                     ("@sometimes", "unrecognized descriptor"), ("TZ=UTC * * * * *", "use timeZone field"),
                     ("*/0 * * * *", "invalid step"), ("5-1 * * * *", "beyond end of range")]:
        with pytest.raises(cron.CronError, match=None) as e:
            cron.parse(bad)
        assert msg in str(e.value), (bad, str(e.value))
    last, n = cron.unmet(cron.parse("* * * * *"), t, t + timedelta(hours=3))
    assert last == datetime(2025, 2, 1, 2, 59, tzinfo=UTC) and n > 100
    assert format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"

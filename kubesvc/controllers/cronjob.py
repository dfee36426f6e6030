"""The CronJob controller (pkg/controller/cronjob, v2), one pass per ``sync(now)``; ``now`` is injectable.

Rules kept here:
- The schedule (``api/cron.py``) in ``spec.timeZone`` (the host's local zone when unset, as
  kube-controller-manager's). The next run is the most recent schedule time after
  ``status.lastScheduleTime`` (else the creation time) that is not after now; more than 100 missed
  times is a Warning ``TooManyMissedTimes``. A time older than ``startingDeadlineSeconds`` is missed
  (Warning ``MissSchedule``). ``suspend`` creates nothing.
- ``concurrencyPolicy``: ``Allow`` runs alongside active Jobs; ``Forbid`` skips while one is active
  (Normal ``JobAlreadyActive``... upstream only logs it; we record the Event); ``Replace`` deletes the
  active Jobs (``SuccessfulDelete``) first.
- A Job is ``<cronjob>-<minutes since the epoch of the scheduled time>`` from ``jobTemplate`` (its labels
  and annotations, plus ``batch.kubernetes.io/cronjob-scheduled-timestamp``), owned by the CronJob.
- Status: ``active`` (references to its unfinished Jobs), ``lastScheduleTime``, ``lastSuccessfulTime``
  (the latest completionTime of its finished-successfully Jobs). Finished Jobs beyond
  ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` are deleted, oldest first.
- Events (``cronjob-controller``): SuccessfulCreate "Created job <job>", SawCompletedJob
  "Saw completed job: <job>, status: Complete|Failed", SuccessfulDelete "Deleted job <job>".
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta, tzinfo
from typing import Any

from kubesvc.api import cron
from kubesvc.controllers import replicas as rp
from kubesvc.controllers.base import WorkloadController
from kubesvc.controllers.jobs import finished, parse_ts, ts
from kubesvc.errors import AlreadyExists, KubesvcError, NotFound

Obj = dict[str, Any]
log = logging.getLogger("kubesvc.controllers")
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def zone_of(cj: Obj) -> tzinfo | None:
    name = (cj.get("spec") or {}).get("timeZone")
    if not name:
        return datetime.now().astimezone().tzinfo
    from zoneinfo import ZoneInfo

    return ZoneInfo(str(name))


def job_name(cj: Obj, scheduled: datetime) -> str:
    return f"{cj['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def new_job(cj: Obj, scheduled: datetime) -> Obj:
    template = copy.deepcopy((cj.get("spec") or {}).get("jobTemplate") or {})
    tmeta = template.get("metadata") or {}
    meta: Obj = {"name": job_name(cj, scheduled), "namespace": cj["metadata"].get("namespace", "default"),
                 "ownerReferences": [rp.owner_reference(cj)]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    meta["annotations"] = {**(tmeta.get("annotations") or {}), SCHEDULED: ts(scheduled)}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template.get("spec") or {}}


def ref(job: Obj) -> Obj:
    m = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": m["name"], "namespace": m.get("namespace", "default"),
            "uid": m.get("uid", ""), "resourceVersion": m.get("resourceVersion", "")}


class CronJobController(WorkloadController):
    component, kind, log_key = "cronjob-controller", "CronJob", "cronjob"
    lists = ("Job",)
    errors = (KubesvcError, cron.CronError, ValueError)

    def sync_one(self, cj: Obj, all_jobs: list[Obj], now: datetime) -> None:
        meta, spec = cj["metadata"], cj.get("spec") or {}
        ns, name = meta.get("namespace", "default"), meta["name"]
        if meta.get("deletionTimestamp"):
            return
        jobs = [j for j in all_jobs if j["metadata"].get("namespace", "default") == ns and rp.owned(j, cj)]
        status = cj.get("status") or {}
        new_status: Obj = {k: v for k, v in status.items() if k in ("lastScheduleTime", "lastSuccessfulTime")}
        seen_active = {a.get("uid") for a in status.get("active") or []}
        active = []
        for j in jobs:
            state = finished(j)
            if state is None:
                active.append(j)
                continue
            if j["metadata"].get("uid") in seen_active:
                self.event(cj, "Normal", "SawCompletedJob", f"Saw completed job: {j['metadata']['name']}, status: {state}")
            if state == "Complete":
                done = (j.get("status") or {}).get("completionTime")
                if done and (not new_status.get("lastSuccessfulTime") or done > new_status["lastSuccessfulTime"]):
                    new_status["lastSuccessfulTime"] = done
        # history
        for state, limit_key in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(limit_key)
            if limit is None:
                continue
            old = sorted((j for j in jobs if finished(j) == state), key=_start_of)
            for j in old[: max(0, len(old) - int(limit))]:
                self._delete_job(cj, j)
        # schedule
        if not spec.get("suspend"):
            schedule = cron.parse(spec.get("schedule", ""))
            zone = zone_of(cj)
            earliest = parse_ts(status["lastScheduleTime"]) if status.get("lastScheduleTime") else parse_ts(meta["creationTimestamp"])
            deadline = spec.get("startingDeadlineSeconds")
            if deadline is not None:
                earliest = max(earliest, now - timedelta(seconds=int(deadline)))
            scheduled, missed = cron.unmet(schedule, earliest, now, zone)
            if missed > 100:
                self.event(cj, "Warning", "TooManyMissedTimes",
                           "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
            if scheduled is not None and deadline is not None and scheduled < now - timedelta(seconds=int(deadline)):
                self.event(cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {ts(scheduled)}")
                scheduled = None
            if scheduled is not None:
                active = self._run(cj, scheduled, active, now, new_status)
        new_status["active"] = [ref(j) for j in sorted(active, key=lambda j: j["metadata"]["name"])]
        if not new_status["active"]:
            del new_status["active"]
        if new_status != status:
            self.registry.update_status("CronJob", ns, name, lambda o: o.__setitem__("status", new_status))

    def _run(self, cj: Obj, scheduled: datetime, active: list[Obj], now: datetime, new_status: Obj) -> list[Obj]:
        policy = (cj.get("spec") or {}).get("concurrencyPolicy", "Allow")
        name = job_name(cj, scheduled)
        if any(j["metadata"]["name"] == name for j in active):
            return active
        if policy == "Forbid" and active:
            log.info("job already active", extra={"kv": {"cronjob": cj["metadata"]["name"], "scheduled": ts(scheduled)}})
            return active
        if policy == "Replace":
            for j in active:
                self._delete_job(cj, j)
            active = []
        try:
            job = self.registry.create(new_job(cj, scheduled)).object
        except AlreadyExists:
            new_status["lastScheduleTime"] = ts(scheduled)
            return active
        self.event(cj, "Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}")
        new_status["lastScheduleTime"] = ts(scheduled)
        return [*active, job]

    def _delete_job(self, cj: Obj, job: Obj) -> None:
        m = job["metadata"]
        try:
            self.registry.delete("Job", m.get("namespace", "default"), m["name"])
        except NotFound:
            return
        self.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {m['name']}")


def _start_of(job: Obj) -> str:
    return str((job.get("status") or {}).get("startTime") or job["metadata"].get("creationTimestamp", ""))


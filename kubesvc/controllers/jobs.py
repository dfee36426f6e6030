"""The Job controller (pkg/controller/job), one pass per ``sync``.

Rules kept here:
- A Job's pods are those whose controller ownerReference is the Job (matching orphans adopted).
  Pods are ``<job>-<random5>`` (Indexed: ``<job>-<index>-<random5>`` with the
  ``batch.kubernetes.io/job-completion-index`` annotation and label, hostname ``<job>-<index>`` and
  ``JOB_COMPLETION_INDEX`` in every container's environment).
- Active pods are kept at ``min(parallelism, completions - succeeded)`` (no completions: parallelism
  until one succeeds); Indexed: one pod per index neither succeeded nor running, up to parallelism.
  Surplus active pods are deleted. ``suspend`` deletes the active pods and starts none.
- Failures: each Failed pod counts one (``restartPolicy: Never``); with ``OnFailure`` the kubelet
  restarts containers in place and each restart counts one. ``podFailurePolicy`` rules with
  ``onExitCodes`` (In/NotIn, per container or any) decide per failed pod: ``FailJob`` (reason
  ``PodFailurePolicy``), ``Ignore`` (not counted), ``Count``. More failures than ``backoffLimit`` fail
  the Job (``BackoffLimitExceeded``, "Job has reached the specified backoff limit");
  ``activeDeadlineSeconds`` since ``startTime`` fails it (``DeadlineExceeded``, "Job was active longer
  than specified deadline"). A failing Job deletes its active pods. The back-off delay between
  re-creations upstream waits (10 s doubling) is not applied.
- Conditions as 1.32 writes them: ``FailureTarget`` then ``Failed``, ``SuccessCriteriaMet`` then
  ``Complete`` (reason ``CompletionsReached``, message "Reached expected number of succeeded pods");
  ``completionTime`` on success.
- Status: startTime (first pass that runs it), active, ready, terminating 0, succeeded, failed,
  completedIndexes (Indexed, "1,3-5" form), uncountedTerminatedPods {}; zero counts omitted.
- ``ttlSecondsAfterFinished``: a finished Job is deleted (background cascade) that long after its
  Complete/Failed condition's lastTransitionTime.
- Events (``job-controller``): SuccessfulCreate "Created pod: <pod>", SuccessfulDelete "Deleted pod: <pod>",
  Completed "Job completed", warnings BackoffLimitExceeded / DeadlineExceeded / PodFailurePolicy.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from kubesvc.controllers import gc
from kubesvc.controllers import replicas as rp
from kubesvc.controllers.base import WorkloadController

Obj = dict[str, Any]
log = logging.getLogger("kubesvc.controllers")
INDEX = "batch.kubernetes.io/job-completion-index"


def ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def finished(job: Obj) -> str | None:
    """'Complete' or 'Failed' once the Job has that condition True, else None."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def format_indexes(idx: set[int]) -> str:
    out: list[str] = []
    run: list[int] = []
    for i in sorted(idx):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def pod_index(pod: Obj) -> int | None:
    v = (pod["metadata"].get("annotations") or {}).get(INDEX)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def exit_codes(pod: Obj) -> list[tuple[str, int]]:
    out = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if term is not None:
            out.append((str(cs.get("name", "")), int(term.get("exitCode", 0))))
    return out


def failure_action(job: Obj, pod: Obj) -> tuple[str, str]:
    """(action, message) of the Job's podFailurePolicy for a failed pod: FailJob | Ignore | Count."""
    for n, rule in enumerate(((job.get("spec") or {}).get("podFailurePolicy") or {}).get("rules") or []):
        codes = rule.get("onExitCodes")
        if not codes:
            continue
        values = {int(v) for v in codes.get("values") or []}
        wanted = codes.get("containerName")
        for cname, code in exit_codes(pod):
            if wanted and cname != wanted:
                continue
            hit = (code in values) if codes.get("operator", "In") == "In" else (code not in values and code != 0)
            if hit:
                msg = (f"Container {cname} for pod {pod['metadata'].get('namespace', 'default')}/{pod['metadata']['name']} "
                       f"failed with exit code {code} matching {rule.get('action')} rule at index {n}")
                return str(rule.get("action", "Count")), msg
    return "Count", ""


def new_pod(job: Obj, index: int | None) -> Obj:
    name = job["metadata"]["name"]
    pod = rp.pod_from_template(job, f"{name}-{index}-{rp.random_suffix()}" if index is not None else None)
    if index is not None:
        pod["metadata"]["generateName"] = f"{name}-{index}-"
        pod["metadata"].setdefault("annotations", {})[INDEX] = str(index)
        pod["metadata"].setdefault("labels", {})[INDEX] = str(index)
        pod["spec"]["hostname"] = f"{name}-{index}"
        for group in ("initContainers", "containers"):
            for c in pod["spec"].get(group) or []:
                env = [e for e in c.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
                env.insert(0, {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                    "apiVersion": "v1", "fieldPath": f"metadata.annotations['{INDEX}']"}}})
                c["env"] = env
    return pod


class JobController(WorkloadController):
    component, kind, log_key = "job-controller", "Job", "job"

    def sync_one(self, job: Obj, all_pods: list[Obj], now: datetime) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        ns, name = meta.get("namespace", "default"), meta["name"]
        done = finished(job)
        if done:
            self._ttl(job, now)
            return
        pods = gc.claim(self.registry, job, all_pods)
        if meta.get("deletionTimestamp"):
            return
        status = dict(job.get("status") or {})
        active = [p for p in pods if rp.is_active(p)]
        succeeded_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        failed_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        fail_reason = fail_message = ""
        failures = 0
        for p in failed_pods:
            action, msg = failure_action(job, p)
            if action == "FailJob" and not fail_reason:
                fail_reason, fail_message = "PodFailurePolicy", msg
            if action != "Ignore":
                failures += 1
        if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
            failures += sum(int(cs.get("restartCount", 0)) for p in active
                            for cs in (p.get("status") or {}).get("containerStatuses") or [])
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        done_idx = {i for p in succeeded_pods if (i := pod_index(p)) is not None and (completions is None or i < completions)}
        succeeded = len(done_idx) if indexed else len(succeeded_pods)
        start = status.get("startTime")
        if not start and not spec.get("suspend"):
            start = ts(now)
        if not fail_reason and failures > int(spec.get("backoffLimit", 6)):
            fail_reason, fail_message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline = spec.get("activeDeadlineSeconds")
        if not fail_reason and deadline is not None and start and now >= parse_ts(start) + timedelta(seconds=int(deadline)):
            fail_reason, fail_message = "DeadlineExceeded", "Job was active longer than specified deadline"
        complete = False
        if not fail_reason:
            if completions is not None:
                complete = succeeded >= int(completions)
            else:
                complete = bool(succeeded_pods) and not active
        acted = False
        if fail_reason or complete or spec.get("suspend"):
            for p in active:
                acted |= self._delete(job, p)
            active = []
        else:
            acted = self._manage(job, active, done_idx, succeeded, indexed, completions, parallelism)
        new: Obj = {}
        if start:
            new["startTime"] = start
        if fail_reason or complete:
            conds = list(status.get("conditions") or [])
            if fail_reason:
                conds += [_cond("FailureTarget", fail_reason, fail_message, now), _cond("Failed", fail_reason, fail_message, now)]
                self.event(job, "Warning", fail_reason, fail_message)
            else:
                msg = "Reached expected number of succeeded pods"
                conds += [_cond("SuccessCriteriaMet", "CompletionsReached", msg, now), _cond("Complete", "CompletionsReached", msg, now)]
                new["completionTime"] = ts(now)
                self.event(job, "Normal", "Completed", "Job completed")
            new["conditions"] = conds
        elif status.get("conditions"):
            new["conditions"] = status["conditions"]
        new["active"] = len(active) if not acted else status.get("active", 0)
        new["ready"] = sum(1 for p in active if rp.is_ready(p))
        new["terminating"] = 0
        new["succeeded"] = succeeded
        new["failed"] = len(failed_pods)
        if indexed:
            new["completedIndexes"] = format_indexes(done_idx)
        new["uncountedTerminatedPods"] = {}
        new = {k: v for k, v in new.items() if v or k in ("ready", "terminating", "uncountedTerminatedPods")}
        if acted and not (fail_reason or complete):
            new["active"] = len([p for p in self.store.list("Pod", ns) if rp.owned(p, job) and rp.is_active(p)])
            new = {k: v for k, v in new.items() if v or k in ("ready", "terminating", "uncountedTerminatedPods")}
        if new != status:
            self.registry.update_status("Job", ns, name, lambda o: o.__setitem__("status", new))

    def _manage(self, job: Obj, active: list[Obj], done_idx: set[int], succeeded: int, indexed: bool,
                completions: Any, parallelism: int) -> bool:
        acted = False
        if indexed and completions is not None:
            # duplicates of an index, or indexes already done: delete
            seen: set[int] = set()
            for p in active:
                i = pod_index(p)
                if i is None or i in seen or i in done_idx or i >= int(completions):
                    acted |= self._delete(job, p)
                else:
                    seen.add(i)
            missing = [i for i in range(int(completions)) if i not in done_idx and i not in seen]
            room = parallelism - len(seen)
            for i in missing[: max(0, room)]:
                acted |= self._create(job, partial(new_pod, job, i))
            return acted
        want = parallelism if completions is None else min(parallelism, int(completions) - succeeded)
        want = max(0, want)
        if completions is None and succeeded:
            want = 0
        if len(active) < want:
            for _ in range(want - len(active)):
                acted |= self._create(job, partial(new_pod, job, None))
        elif len(active) > want:
            for p in rp.least_useful_first(active)[: len(active) - want]:
                acted |= self._delete(job, p)
        return acted

    def _ttl(self, job: Obj, now: datetime) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        when = next((c.get("lastTransitionTime") for c in (job.get("status") or {}).get("conditions") or []
                     if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"), None)
        if when and now >= parse_ts(when) + timedelta(seconds=int(ttl)):
            meta = job["metadata"]
            log.info("job expired", extra={"kv": {"job": meta["name"]}})
            self.registry.delete("Job", meta.get("namespace", "default"), meta["name"])


def _cond(kind: str, reason: str, message: str, now: datetime) -> Obj:
    t = ts(now)
    return {"type": kind, "status": "True", "lastProbeTime": t, "lastTransitionTime": t, "reason": reason, "message": message}

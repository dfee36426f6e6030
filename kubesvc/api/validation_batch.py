"""Job and CronJob rules (``pkg/apis/batch/validation/validation.go``).

Rules kept here:
- Job: parallelism, completions, activeDeadlineSeconds, backoffLimit, ttlSecondsAfterFinished >= 0;
  selector required (the strategy generates it unless ``manualSelector``) and matching the template
  labels; template restartPolicy ``OnFailure`` or ``Never`` (a defaulted ``Always`` is refused);
  completionMode ``NonIndexed`` or ``Indexed`` (Indexed needs completions). Update: selector,
  completionMode and (unless the Job is suspended) template are immutable.
- CronJob: name at most 52 characters; schedule required and a standard 5-field cron line (or a
  ``@`` descriptor), with robfig/cron's messages; timeZone is not validated against a zone database;
  concurrencyPolicy one of Allow, Forbid, Replace; startingDeadlineSeconds and history limits >= 0;
  the job template's pod restartPolicy as for a Job.
"""

from __future__ import annotations

import re
from typing import Any

from kubesvc.api import field as f
from kubesvc.api.field import FieldError
from kubesvc.api.validation_meta import (
    IMMUTABLE,
    nonnegative,
    not_supported_in_order,
    validate_annotations,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from kubesvc.api.validation_workloads import _go_selector, _validate_label_selector, selector_matches, validate_pod_spec

Obj = dict[str, Any]

CRONJOB_NAME_MAX = 52
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
          {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())})


def _template_spec(template: Any, selector: Any, path: str, check_selector: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    template = template or {}
    meta = template.get("metadata") or {}
    if check_selector and selector and (selector.get("matchLabels") or selector.get("matchExpressions")):
        if not selector_matches(selector, meta.get("labels") or {}):
            errs.append(f.invalid(f"{path}.metadata.labels", meta.get("labels") or {},
                                  "`selector` does not match template `labels`"))
    errs += validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    spec = template.get("spec") or {}
    errs += validate_pod_spec(spec, f"{path}.spec")
    restart = spec.get("restartPolicy") or ""
    if restart not in ("OnFailure", "Never"):
        errs.append(not_supported_in_order(f"{path}.spec.restartPolicy", restart, ["OnFailure", "Never"]))
    return errs


def validate_job_spec(spec: Obj, path: str, template_only: bool = False) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        errs += nonnegative(spec.get(key, 0), f"{path}.{key}")
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported_in_order(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(f.required(f"{path}.completions", "when completion mode is Indexed"))
    selector = spec.get("selector")
    if selector is None and not template_only:
        errs.append(f.required(f"{path}.selector"))
    elif selector is not None:
        errs += _validate_label_selector(selector, f"{path}.selector")
    errs += _template_spec(spec.get("template"), selector, f"{path}.template", check_selector=True)
    return errs


def validate_job(job: Obj) -> list[FieldError]:
    return validate_object_meta(job) + validate_job_spec(job.get("spec") or {}, "spec")


def validate_job_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if spec.get("selector") != old_spec.get("selector"):
        errs.append(f.invalid("spec.selector", _go_selector(spec.get("selector")), IMMUTABLE))
    if spec.get("completionMode") != old_spec.get("completionMode"):
        errs.append(f.invalid("spec.completionMode", spec.get("completionMode"), IMMUTABLE))
    if not old_spec.get("suspend") and spec.get("template") != old_spec.get("template"):
        errs.append(f.invalid("spec.template", spec.get("template"), IMMUTABLE))
    return errs + validate_job_spec(spec, "spec")


def schedule_error(schedule: str) -> str | None:
    """robfig/cron ParseStandard's error for a schedule line, None when it parses."""
    text = schedule.strip()
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        return None  # refused separately by upstream (timeZone field); accepted here
    if text.startswith("@"):
        if text in DESCRIPTORS or re.fullmatch(r"@every \S+", text):
            return None
        return f"unrecognized descriptor: {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for (lo, hi), names, value in zip(_FIELDS, _NAMES, fields, strict=True):
        for part in value.split(","):
            problem = _range_error(part, lo, hi, names)
            if problem:
                return problem
    return None


def _range_error(expr: str, lo: int, hi: int, names: dict[str, int]) -> str | None:
    range_part, _, step = expr.partition("/")
    if step and not step.isdigit():
        return f"failed to parse int from {step}: strconv.Atoi: parsing {f.go_quote(step)}: invalid syntax"
    if range_part in ("*", "?"):
        return None
    low_text, _, high_text = range_part.partition("-")
    values = []
    for text in (low_text, high_text) if high_text else (low_text,):
        if text.lower() in names:
            values.append(names[text.lower()])
        elif text.isdigit():
            values.append(int(text))
        else:
            return f"failed to parse int from {text}: strconv.Atoi: parsing {f.go_quote(text)}: invalid syntax"
    if values[0] < lo:
        return f"beginning of range ({values[0]}) below minimum ({lo}): {expr}"
    if values[-1] > hi:
        return f"end of range ({values[-1]}) above maximum ({hi}): {expr}"
    if values[0] > values[-1]:
        return f"beginning of range ({values[0]}) beyond end of range ({values[-1]}): {expr}"
    return None


def validate_cron_job(cj: Obj) -> list[FieldError]:
    errs = validate_object_meta(cj)
    name = (cj.get("metadata") or {}).get("name") or ""
    if len(name) > CRONJOB_NAME_MAX:
        errs.append(f.invalid("metadata.name", name, f"must be no more than {CRONJOB_NAME_MAX} characters"))
    spec = cj.get("spec") or {}
    schedule = spec.get("schedule") or ""
    if not schedule:
        errs.append(f.required("spec.schedule"))
    else:
        problem = schedule_error(schedule)
        if problem:
            errs.append(f.invalid("spec.schedule", schedule, problem))
    policy = spec.get("concurrencyPolicy") or ""
    if not policy:
        errs.append(f.required("spec.concurrencyPolicy"))
    elif policy not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported_in_order("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"]))
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs += nonnegative(spec.get(key, 0), f"spec.{key}")
    template = spec.get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    errs += validate_labels(tmeta.get("labels"), "spec.jobTemplate.metadata.labels")
    errs += validate_annotations(tmeta.get("annotations"), "spec.jobTemplate.metadata.annotations")
    errs += validate_job_spec(template.get("spec") or {}, "spec.jobTemplate.spec", template_only=True)
    return errs


def validate_cron_job_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_cron_job(new)[len(validate_object_meta(new)):]

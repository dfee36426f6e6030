"""StatefulSet, DaemonSet and PodTemplate rules (``pkg/apis/apps/validation``, ``pkg/apis/core/validation``).

Rules kept here:
- StatefulSet: podManagementPolicy required, ``must be 'OrderedReady' or 'Parallel'``; updateStrategy
  type required, ``must be 'RollingUpdate' or 'OnDelete'``, rollingUpdate ``only allowed for updateStrategy
  'RollingUpdate'``, partition >= 0; replicas, minReadySeconds, revisionHistoryLimit >= 0; selector
  required and non-empty (``empty selector is invalid for statefulset``) and matching the template
  labels; template restartPolicy Always, no activeDeadlineSeconds. Update: only replicas, ordinals,
  template, updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds may change.
- DaemonSet: the same selector and template rules (``... for daemonset``); updateStrategy.type
  required, one of OnDelete, RollingUpdate; maxUnavailable and maxSurge not both 0. Update: the
  selector is immutable.
- PodTemplate: metadata and the template's pod spec (any restartPolicy).
"""

from __future__ import annotations

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
from kubesvc.api.validation_workloads import (
    _go_selector,
    _is_zero,
    _validate_label_selector,
    _validate_template,
    selector_matches,
    validate_pod_spec,
)

Obj = dict[str, Any]

STATEFULSET_UPDATE_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def selector_and_template(spec: Obj, kind: str) -> list[FieldError]:
    """Selector required and non-empty, template labels matching it, template rules of a pod controller."""
    errs: list[FieldError] = []
    selector = spec.get("selector")
    matches = None
    if selector is None:
        errs.append(f.required("spec.selector"))
    else:
        errs += _validate_label_selector(selector, "spec.selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errs.append(f.invalid("spec.selector", _go_selector(selector), f"empty selector is invalid for {kind.lower()}"))
        else:
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            matches = selector_matches(selector, labels)
    errs += _validate_template(spec.get("template") or {}, matches, kind, "spec.template")
    return errs


def validate_stateful_set(sts: Obj) -> list[FieldError]:
    errs = validate_object_meta(sts)
    spec = sts.get("spec") or {}
    policy = spec.get("podManagementPolicy") or ""
    if not policy:
        errs.append(f.required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(f.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.get("updateStrategy") or {}
    stype = strategy.get("type") or ""
    if not stype:
        errs.append(f.required("spec.updateStrategy"))
    elif stype == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            errs.append(f.invalid("spec.updateStrategy.rollingUpdate", strategy["rollingUpdate"],
                                  "only allowed for updateStrategy 'RollingUpdate'"))
    elif stype == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        errs += nonnegative(rolling.get("partition", 0), "spec.updateStrategy.rollingUpdate.partition")
    else:
        errs.append(f.invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    for key in ("replicas", "minReadySeconds", "revisionHistoryLimit"):
        errs += nonnegative(spec.get(key, 0), f"spec.{key}")
    ordinals = spec.get("ordinals") or {}
    errs += nonnegative(ordinals.get("start", 0), "spec.ordinals.start")
    retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for key in ("whenDeleted", "whenScaled"):
        value = retention.get(key)
        if value is not None and value not in ("Retain", "Delete"):
            errs.append(not_supported_in_order(f"spec.persistentVolumeClaimRetentionPolicy.{key}", value,
                                               ["Retain", "Delete"]))
    errs += selector_and_template(spec, "StatefulSet")
    return errs


def validate_stateful_set_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    mutable = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
               "minReadySeconds")
    ns = {k: v for k, v in (new.get("spec") or {}).items() if k not in mutable}
    os_ = {k: v for k, v in (old.get("spec") or {}).items() if k not in mutable}
    if ns != os_:
        errs.append(f.forbidden("spec", STATEFULSET_UPDATE_FORBIDDEN))
    return errs + validate_stateful_set(new)[len(validate_object_meta(new)):]


def validate_daemon_set(ds: Obj) -> list[FieldError]:
    errs = validate_object_meta(ds)
    spec = ds.get("spec") or {}
    errs += selector_and_template(spec, "DaemonSet")
    errs += nonnegative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    errs += nonnegative(spec.get("revisionHistoryLimit", 0), "spec.revisionHistoryLimit")
    strategy = spec.get("updateStrategy") or {}
    stype = strategy.get("type") or ""
    if not stype:
        errs.append(f.required("spec.updateStrategy.type"))
    elif stype not in ("OnDelete", "RollingUpdate"):
        errs.append(not_supported_in_order("spec.updateStrategy.type", stype, ["OnDelete", "RollingUpdate"]))
    elif stype == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        if _is_zero(rolling.get("maxUnavailable", 0)) and _is_zero(rolling.get("maxSurge", 0)):
            errs.append(f.invalid("spec.updateStrategy.rollingUpdate.maxUnavailable", rolling.get("maxUnavailable", 0),
                                  "may not be 0 when `maxSurge` is 0"))
    return errs


def validate_daemon_set_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    new_sel, old_sel = (new.get("spec") or {}).get("selector"), (old.get("spec") or {}).get("selector")
    if new_sel != old_sel:
        errs.append(f.invalid("spec.selector", _go_selector(new_sel), IMMUTABLE))
    return errs + validate_daemon_set(new)[len(validate_object_meta(new)):]


def validate_pod_template(pt: Obj) -> list[FieldError]:
    errs = validate_object_meta(pt)
    template = pt.get("template")
    if template is None:
        return errs + [f.required("template")]
    meta = template.get("metadata") or {}
    errs += validate_labels(meta.get("labels"), "template.labels")
    errs += validate_annotations(meta.get("annotations"), "template.annotations")
    errs += validate_pod_spec(template.get("spec") or {}, "template.spec")
    return errs


def validate_pod_template_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_pod_template(new)[len(validate_object_meta(new)):]

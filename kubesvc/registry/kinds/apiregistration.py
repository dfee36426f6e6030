"""Strategy of apiregistration.k8s.io APIService (kube-aggregator's ``pkg/registry/apiservice`` and
``pkg/apis/apiregistration/validation``), stored only: kubesvc does not proxy aggregated APIs.

Rules kept here:
- Validation as the aggregator's ValidateAPIService: the name is ``<version>.<group>`` (``v1.`` for the
  legacy group, the only version allowed an empty group), ``spec.group`` a DNS-1123 subdomain,
  ``spec.version`` a required DNS-1035 label, ``groupPriorityMinimum`` in 1..20000 and ``versionPriority``
  in 1..1000; without ``spec.service`` (a local
  APIService) ``caBundle`` and ``insecureSkipTLSVerify`` must be unset; with one, its namespace and name are
  required, its port (defaulted to 443) in 1..65535, and ``insecureSkipTLSVerify`` may not be true when ``caBundle`` is present.
- Status is the server's: a manifest's status is dropped. As no availability controller runs, the
  ``Available`` condition is set at each write: ``True`` (reason ``Local``) for a local APIService,
  ``False`` with reason ``ServiceNotFound`` when the named Service is not stored, and ``False`` with reason
  ``FailedDiscoveryCheck`` otherwise (nothing answers discovery for the group here).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kubesvc.api import field as f
from kubesvc.api import names
from kubesvc.api.field import FieldError
from kubesvc.registry.kinds import Strategy

if TYPE_CHECKING:
    from kubesvc.store.db import Txn

Obj = dict[str, Any]


def validate_api_service(obj: Obj) -> list[FieldError]:
    from kubesvc.api.validation_meta import validate_object_meta

    errs = validate_object_meta(obj)
    spec: Obj = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    name = str((obj.get("metadata") or {}).get("name") or "")
    group = str(spec.get("group") or "")
    version = str(spec.get("version") or "")
    expected = f"{version}.{group}"
    if name and name != expected:
        errs.append(f.invalid("metadata.name", name, f"must be {expected}"))
    if not group and version != "v1":
        errs.append(f.required("spec.group", "only v1 may have an empty group and it better be legacy kube"))
    if group:
        errs += [f.invalid("spec.group", group, m) for m in names.is_dns1123_subdomain(group)]
    if not version:
        errs.append(f.required("spec.version", ""))
    else:
        errs += [f.invalid("spec.version", version, m) for m in names.is_dns1035_label(version)]
    gpm = spec.get("groupPriorityMinimum", 0)
    if not isinstance(gpm, int) or not 0 < gpm <= 20000:
        errs.append(f.invalid("spec.groupPriorityMinimum", gpm, "must be positive and less than 20000"))
    vp = spec.get("versionPriority", 0)
    if not isinstance(vp, int) or not 0 < vp <= 1000:
        errs.append(f.invalid("spec.versionPriority", vp, "must be positive and less than 1000"))
    service = spec.get("service")
    ca_bundle = _decoded_len(spec.get("caBundle"))
    insecure = bool(spec.get("insecureSkipTLSVerify"))
    if not isinstance(service, dict):
        if ca_bundle:
            errs.append(f.invalid("spec.caBundle", f"{ca_bundle} bytes", "local APIServices may not have a caBundle"))
        if insecure:
            errs.append(f.invalid("spec.insecureSkipTLSVerify", insecure, "local APIServices may not have insecureSkipTLSVerify"))
        return errs
    if not service.get("namespace"):
        errs.append(f.required("spec.service.namespace", ""))
    if not service.get("name"):
        errs.append(f.required("spec.service.name", ""))
    port = service.get("port", 443)
    errs += [f.invalid("spec.service.port", port, m) for m in names.is_valid_port_num(port)]
    if insecure and ca_bundle:
        errs.append(f.invalid("spec.insecureSkipTLSVerify", insecure, "may not be true if caBundle is present"))
    return errs


def _decoded_len(value: Any) -> int:
    if not value:
        return 0
    try:
        return len(base64.b64decode(str(value)))
    except ValueError:
        return len(str(value))


def available_condition(txn: Txn, obj: Obj, old: Obj | None) -> Obj:
    spec: Obj = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    service = spec.get("service")
    if not isinstance(service, dict):
        status, reason, message = "True", "Local", "Local APIServices are always available"
    else:
        ns, name = str(service.get("namespace") or ""), str(service.get("name") or "")
        if txn.get("Service", ns, name) is None:
            status, reason, message = "False", "ServiceNotFound", f'service/{name} in "{ns}" is not present'
        else:
            status, reason = "False", "FailedDiscoveryCheck"
            message = f"kubesvc does not proxy aggregated APIs: nothing answers discovery for {obj['metadata']['name']}"
    previous = next((c for c in ((old or {}).get("status") or {}).get("conditions") or []
                     if isinstance(c, dict) and c.get("type") == "Available"), None)
    when = (previous or {}).get("lastTransitionTime") if (previous or {}).get("status") == status else None
    return {"type": "Available", "status": status,
            "lastTransitionTime": when or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reason": reason, "message": message}


class APIServiceStrategy(Strategy):
    kinds = ("APIService",)

    def default(self, obj: Obj, old: Obj | None = None) -> None:
        super().default(obj, old)
        service = (obj.get("spec") or {}).get("service") if isinstance(obj.get("spec"), dict) else None
        if isinstance(service, dict) and service.get("port") is None:
            service["port"] = 443  # SetDefaults_ServiceReference

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_api_service(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        from kubesvc.api.validation_meta import validate_object_meta_update

        return validate_object_meta_update(new, old) + validate_api_service(new)[len(_meta_errors(new)):]

    def allocate(self, txn: Txn, obj: Obj, settings: Any, old: Obj | None) -> None:
        obj["status"] = {"conditions": [available_condition(txn, obj, old)]}


def _meta_errors(obj: Obj) -> list[FieldError]:
    from kubesvc.api.validation_meta import validate_object_meta

    return validate_object_meta(obj)


STRATEGIES = (APIServiceStrategy,)

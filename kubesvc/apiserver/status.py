"""Errors -> ``kind: Status`` objects (k8s-service-api.md §3.1/3.4, kubectl-wire.md §5.4).

Rules kept here:
- ``details.kind`` is the plural resource for NotFound/AlreadyExists/Conflict and the Kind for
  Invalid; Invalid causes carry ``FieldValue<Type>`` reasons, the field path and the error body,
  which is what kubectl builds its ``The Service "x" is invalid: ...`` lines from.
- Every Status is ``application/json``; the HTTP status line code equals ``code``.
"""

from __future__ import annotations

from typing import Any

from kubesvc.errors import AlreadyExists, Conflict, Invalid, KubesvcError, NotFound

_CAUSE_REASON = {
    "Required": "FieldValueRequired",
    "Invalid": "FieldValueInvalid",
    "NotSupported": "FieldValueNotSupported",
    "Duplicate": "FieldValueDuplicate",
    "Forbidden": "FieldValueForbidden",
    "TooLong": "FieldValueTooLong",
    "TooMany": "FieldValueTooMany",
    "NotFound": "FieldValueNotFound",
    "Internal": "InternalError",
}

HTTP_REASON = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 409: "Conflict", 410: "Gone", 413: "Request Entity Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Entity", 500: "Internal Server Error",
}


class ApiError(Exception):
    """An error raised by the HTTP layer itself (routing, decoding, auth), already a Status."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": message, "reason": reason}
    if details:
        out["details"] = _omit_empty(details)
    out["code"] = code
    return out


def _omit_empty(details: dict[str, Any]) -> dict[str, Any]:
    """StatusDetails and StatusCause fields are all omitempty upstream: no ``"group":""`` for core kinds."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        if key == "causes" and isinstance(value, list):
            value = [{k: v for k, v in c.items() if v not in ("", None)} if isinstance(c, dict) else c for c in value]
        if value in ("", None, []):
            continue
        out[key] = value
    return out


def success(details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        out["details"] = details
    return out


def _split_resource(resource: str) -> tuple[str, str]:
    """``deployments.apps`` -> (``deployments``, ``apps``); ``services`` -> (``services``, ``"``)."""
    plural, _, group = resource.partition(".")
    return plural, group


def from_error(err: BaseException) -> dict[str, Any]:
    """Any error -> (code, Status). Unknown exceptions become a 500 InternalError without a traceback."""
    if isinstance(err, ApiError):
        return status(err.code, err.reason, err.message, err.details)
    if isinstance(err, Invalid):
        from kubesvc.api.kinds import BY_KIND

        k = BY_KIND.get(err.kind)
        causes = [{"reason": _CAUSE_REASON.get(c.type, "FieldValueInvalid"), "message": c.body(), "field": c.field}
                  for c in err.causes]
        invalid = {"name": err.name, "group": k.group if k else "", "kind": err.kind, "causes": causes}
        return status(422, "Invalid", err.status_message(), invalid)
    if isinstance(err, (NotFound, AlreadyExists, Conflict)):
        plural, group = _split_resource(err.resource)
        details: dict[str, Any] = {"name": err.name, "group": group, "kind": plural}
        return status(err.code, err.reason, err.message, details)
    if isinstance(err, KubesvcError) and err.code and err.code >= 400:
        return status(err.code, err.reason, err.message)
    if isinstance(err, KubesvcError):  # a ClientError reaching the server: the request was bad
        return status(400, "BadRequest", err.message)
    return status(500, "InternalError", f"Internal error occurred: {type(err).__name__}: {err}")


def not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)

"""List filters from query parameters: label selectors, field selectors, namespaces (pure).

Rules kept here:
- ``labelSelector`` is parsed by ``kubesvc.api.selectors`` (the CLI's parser); a parse error is a 400.
- ``fieldSelector`` terms are ``k=v``, ``k==v`` or ``k!=v`` joined by commas (``\\,`` escapes a comma).
  Every kind supports ``metadata.name`` and ``metadata.namespace``; a few kinds add the fields the real
  apiserver indexes (events: ``involvedObject.*``, ``reason``, ``type``...). Any other field is the
  apiserver's 400 ``field label not supported: <f>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubesvc.apiserver.status import bad_request
from kubesvc.errors import KubesvcError

_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"),
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "ReplicaSet": ("status.replicas",),
    "ReplicationController": ("status.replicas",),
}


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negate: bool


def _split_terms(text: str) -> list[str]:
    out, cur, i = [], "", 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur += text[i + 1]
            i += 2
            continue
        if c == ",":
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    return [t for t in out if t]


def parse_fields(text: str | None, kind: str) -> list[FieldTerm]:
    if not text:
        return []
    allowed = ("metadata.name", "metadata.namespace", *_EXTRA_FIELDS.get(kind, ()))
    terms = []
    for raw in _split_terms(text):
        if "!=" in raw:
            f, _, v = raw.partition("!=")
            neg = True
        elif "==" in raw:
            f, _, v = raw.partition("==")
            neg = False
        elif "=" in raw:
            f, _, v = raw.partition("=")
            neg = False
        else:
            raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{raw}\'')
        f = f.strip()
        if f not in allowed:
            raise bad_request(f'field label not supported: {f}')
        terms.append(FieldTerm(f, v.strip(), neg))
    return terms


def field_value(obj: dict[str, Any], path: str) -> str:
    if path == "source":
        return str((obj.get("source") or {}).get("component") or "")
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def parse_labels(text: str | None) -> Any:
    if not text:
        return None
    from kubesvc.api import selectors

    try:
        return selectors.parse(text)
    except KubesvcError as e:
        raise bad_request(f"unable to parse requirement: {e.message}" if "unable to parse" not in e.message
                          else e.message) from None


@dataclass
class Filter:
    namespace: str | None  # None: every namespace
    labels: Any
    fields: list[FieldTerm]

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        if self.labels is not None and not self.labels.matches(meta.get("labels") or {}):
            return False
        for t in self.fields:
            if (field_value(obj, t.field) == t.value) == t.negate:
                return False
        return True

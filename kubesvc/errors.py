"""The small error family. Each error knows its apiserver reason, HTTP code and message.

Rule: library code raises these; only ``kubesvc.cli.main`` prints them (kubectl wording) and picks
the exit code. ``ClientError`` is a client-side failure (kubectl prints ``error: <text>``); the
others are what the apiserver would answer (kubectl prints ``Error from server (<Reason>): ...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubesvc.api.field import FieldError


class KubesvcError(Exception):
    reason = "InternalError"
    code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientError(KubesvcError):
    """A failure before anything reaches the store: printed as ``error: <message>``."""

    reason = "ClientError"
    code = 0


class NotFound(KubesvcError):
    reason = "NotFound"
    code = 404

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f'{resource} "{name}" not found')
        self.resource = resource
        self.name = name


class AlreadyExists(KubesvcError):
    reason = "AlreadyExists"
    code = 409

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f'{resource} "{name}" already exists')
        self.resource = resource
        self.name = name


class Conflict(KubesvcError):
    reason = "Conflict"
    code = 409

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(
            f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
        self.resource = resource
        self.name = name


class Forbidden(KubesvcError):
    reason = "Forbidden"
    code = 403


class BadRequest(KubesvcError):
    reason = "BadRequest"
    code = 400


class StoreUnavailable(KubesvcError):
    """The store cannot take a write (disk full, read-only file or directory, I/O error); nothing was written."""

    reason = "ServiceUnavailable"
    code = 503


class InternalError(KubesvcError):
    reason = "InternalError"
    code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(f"Internal error occurred: {detail}")
        self.detail = detail


class Invalid(KubesvcError):
    """An object failed validation; carries every FieldError found, in the apiserver's order."""

    reason = "Invalid"
    code = 422

    def __init__(self, kind: str, name: str, causes: list[FieldError]) -> None:
        seen: set[str] = set()
        unique: list[FieldError] = []
        for cause in causes:
            text = str(cause)
            if text not in seen:
                seen.add(text)
                unique.append(cause)
        self.kind = kind
        self.name = name
        self.causes = unique
        super().__init__(self.status_message())

    def status_message(self) -> str:
        """The Status message: ``Service "x" is invalid: e`` or ``... is invalid: [e1, e2]``."""
        texts = [str(c) for c in self.causes]
        body = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        return f'{self.kind} "{self.name}" is invalid: {body}'

    def cli_message(self) -> str:
        """kubectl's layout for a lone object: one cause inline, several as a bullet list."""
        head = f'The {self.kind} "{self.name}" is invalid: '
        if len(self.causes) == 1:
            return head + str(self.causes[0])
        return head + "\n" + "\n".join(f"* {c}" for c in self.causes)

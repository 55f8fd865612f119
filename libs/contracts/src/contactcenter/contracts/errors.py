"""Typed errors that domain and application code raise; adapters map them to gRPC codes.

Pure: no I/O or gRPC imports, so domain code can raise them. The gRPC mapping lives in
`contactcenter.grpckit.errors`:

| error                  | gRPC status          |
|------------------------|----------------------|
| ValidationFailed       | INVALID_ARGUMENT (+ BadRequest field violations) |
| NotFound               | NOT_FOUND            |
| FailedPrecondition     | FAILED_PRECONDITION  |
| IllegalTransition      | FAILED_PRECONDITION (names the current state) |
| ConcurrencyConflict    | ABORTED              |
| AlreadyExists          | ALREADY_EXISTS       |
| PermissionDenied       | PERMISSION_DENIED    |
| Unauthenticated        | UNAUTHENTICATED      |

The message of a DomainError is sent to the client, so it must not contain secrets or data of
another tenant. Every error also carries a stable machine-readable `reason` (sent as
`google.rpc.ErrorInfo.reason`) and string `metadata` clients can branch on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, NamedTuple


class FieldViolation(NamedTuple):
    """One bad field: a path such as `page.page_size` or `identities[0].value`, and why."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error we can name."""

    reason: ClassVar[str] = "DOMAIN_ERROR"

    @property
    def message(self) -> str:
        return str(self)

    def metadata(self) -> dict[str, str]:
        """Structured facts about the error for clients (google.rpc.ErrorInfo.metadata)."""
        return {}


class ValidationFailed(DomainError):
    """Bad input; each violation names the field (gRPC INVALID_ARGUMENT with field violations)."""

    reason = "VALIDATION_FAILED"

    def __init__(
        self,
        field_violations: Iterable[FieldViolation | tuple[str, str]],
        message: str | None = None,
    ) -> None:
        self.field_violations = [FieldViolation(f, d) for f, d in field_violations]
        if not self.field_violations:
            raise ValueError("ValidationFailed needs at least one field violation")
        super().__init__(
            message or "; ".join(f"{v.field}: {v.description}" for v in self.field_violations)
        )


class _ResourceError(DomainError):
    """An error about one resource, optionally named (sent as google.rpc.ResourceInfo)."""

    def __init__(
        self,
        message: str,
        *,
        resource_type: str | None = None,
        resource_name: str | None = None,
    ) -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        super().__init__(message)

    def metadata(self) -> dict[str, str]:
        facts = {"resource_type": self.resource_type, "resource_name": self.resource_name}
        return {k: v for k, v in facts.items() if v is not None}


class NotFound(_ResourceError):
    """gRPC NOT_FOUND. Also what another tenant's resource looks like: never reveal it exists."""

    reason = "NOT_FOUND"


class AlreadyExists(_ResourceError):
    """gRPC ALREADY_EXISTS."""

    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The system is not in a state the operation requires (gRPC FAILED_PRECONDITION)."""

    reason = "FAILED_PRECONDITION"

    def __init__(self, message: str, current_state: str | None = None) -> None:
        self.current_state = current_state
        super().__init__(message)

    def metadata(self) -> dict[str, str]:
        return {} if self.current_state is None else {"current_state": self.current_state}


class IllegalTransition(FailedPrecondition):
    """A command not allowed in the aggregate's current state, e.g. accepting a completed
    interaction (gRPC FAILED_PRECONDITION; the current state is sent to the client)."""

    reason = "ILLEGAL_TRANSITION"


class ConcurrencyConflict(DomainError):
    """An append raced another writer of the same stream (gRPC ABORTED: the client may retry)."""

    reason = "CONCURRENCY_CONFLICT"

    def __init__(
        self, stream_id: str, expected_version: int, actual_version: int | None = None
    ) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        actual = "another version" if actual_version is None else f"version {actual_version}"
        super().__init__(f"stream {stream_id!r} is at {actual}, expected {expected_version}")

    def metadata(self) -> dict[str, str]:
        facts = {"stream_id": self.stream_id, "expected_version": str(self.expected_version)}
        if self.actual_version is not None:
            facts["actual_version"] = str(self.actual_version)
        return facts


class PermissionDenied(DomainError):
    """The caller is known but may not do this (gRPC PERMISSION_DENIED)."""

    reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    """No valid credentials (gRPC UNAUTHENTICATED)."""

    reason = "UNAUTHENTICATED"

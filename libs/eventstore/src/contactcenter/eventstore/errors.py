"""Typed errors of the event store, migrations and consumer tracking."""

from __future__ import annotations

from contactcenter.contracts.errors import ValidationFailed


class IdempotencyKeyReused(ValidationFailed):
    """A request_id already recorded for a different command (gRPC INVALID_ARGUMENT)."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(
            [("request_id", f"request_id {request_id!r} was already used for a different command")]
        )


class MigrationError(RuntimeError):
    """A migration could not be applied; the service must not start on this schema."""


class MigrationChecksumMismatch(MigrationError):
    """An already applied migration file was edited afterwards."""

    def __init__(self, namespace: str, name: str, applied: str, current: str) -> None:
        self.namespace = namespace
        self.name = name
        self.applied_checksum = applied
        self.current_checksum = current
        super().__init__(
            f"migration {namespace}/{name} changed after it was applied "
            f"(checksum {applied[:12]}... now {current[:12]}...); add a new migration instead"
        )

"""The values the event store takes and gives, and the checks shared by its implementations."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final
from uuid import UUID

from contactcenter.contracts.errors import ValidationFailed
from contactcenter.contracts.events import DomainEvent, EventRegistry
from contactcenter.eventstore.errors import IdempotencyKeyReused

#: `expected_version` that skips the concurrency check (append after whatever is there).
ANY: Final = -1
#: `expected_version` of a stream that must not exist yet.
NO_STREAM: Final = 0

#: Envelope fields that a retried command regenerates; they do not identify the command.
_VOLATILE_FIELDS = frozenset({"event_id", "occurred_at", "correlation_id", "causation_id"})


@dataclass(frozen=True, order=True, slots=True)
class GlobalPosition:
    """A checkpoint in the whole store; compares as the pair (transaction_id, position)."""

    transaction_id: int
    position: int

    START: ClassVar[GlobalPosition]

    def __str__(self) -> str:
        return f"{self.transaction_id}:{self.position}"

    @classmethod
    def parse(cls, text: str) -> GlobalPosition:
        """The inverse of `str()`, for checkpoints kept as text."""
        xid, _, position = text.partition(":")
        return cls(int(xid), int(position))


GlobalPosition.START = GlobalPosition(0, 0)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: the event's JSON plus where and when it was recorded."""

    position: int
    transaction_id: int
    stream_id: str
    version: int
    event_id: UUID
    event_type: str
    tenant_id: str
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: UUID
    causation_id: UUID | None
    data: dict[str, Any]
    metadata: dict[str, str]

    @property
    def global_position(self) -> GlobalPosition:
        return GlobalPosition(self.transaction_id, self.position)

    def decode(self, registry: EventRegistry) -> DomainEvent:
        """The event as its (current, upcast) model."""
        return registry.decode(self.event_type, self.data)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append stored. `last_version` is the next append's `expected_version`.

    `replayed` is true when a request_id was seen before: nothing was appended and this is the
    first append's result, with the `result` the command handler recorded then.
    """

    stream_id: str
    first_version: int
    last_version: int
    event_ids: tuple[UUID, ...]
    result: dict[str, Any] | None = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    stream_id: str
    version: int
    schema_version: int
    state: dict[str, Any]


def check_append(stream_id: str, events: Sequence[DomainEvent], expected_version: int) -> str:
    """Validate an append before touching storage; returns the events' one tenant."""
    if not events:
        raise ValueError("an append needs at least one event")
    if expected_version < ANY:
        raise ValueError(f"expected_version must be >= 0 or ANY, got {expected_version}")
    tenants = {e.tenant_id for e in events}
    if len(tenants) != 1:
        raise ValidationFailed(
            [("events.tenant_id", f"one append must not mix tenants, got {sorted(tenants)}")]
        )
    (tenant_id,) = tenants
    # Stream ids are `<category>/<tenant>/<entity>`: a stream belongs to one tenant.
    parts = stream_id.split("/", 2)
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise ValidationFailed(
            [("stream_id", f"expected '<category>/<tenant>/<entity>', got {stream_id!r}")]
        )
    if parts[1] != tenant_id:
        raise ValidationFailed(
            [("stream_id", f"stream {stream_id!r} does not belong to tenant {tenant_id!r}")]
        )
    return tenant_id


def request_fingerprint(
    stream_id: str, events: Sequence[DomainEvent], command: Mapping[str, Any] | None
) -> str:
    """What identifies a command for idempotency: the command itself when the caller gives it,
    else the stream and the events' content without the fields a retry regenerates."""
    if command is not None:
        subject: Any = {"command": command}
    else:
        subject = {
            "stream_id": stream_id,
            "events": [
                {
                    "type": e.event_type,
                    "data": {k: v for k, v in e.payload().items() if k not in _VOLATILE_FIELDS},
                }
                for e in events
            ],
        }
    canonical = json.dumps(subject, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_fingerprint(request_id: str, stored: str, given: str | None) -> None:
    if given is not None and given != stored:
        raise IdempotencyKeyReused(request_id)


def to_json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def from_json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value

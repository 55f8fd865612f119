"""CloudEvents 1.0 in Kafka binary content mode: attributes in `ce_*` headers, data as the value.

Any Kafka client reads our events without our code: the headers are plain UTF-8 strings, the key
is the tenant id, the value is the event's JSON object. This module is pure (no I/O, no Kafka
client) so the event store and tests can use it without a broker.

Wire layout of one record (`encode`):

    key      tenant id (UTF-8)
    value    the event's JSON object (UTF-8)
    headers  content-type: application/json
             ce_specversion: 1.0
             ce_id, ce_source, ce_type, ce_subject, ce_time (RFC 3339, UTC), ce_tenantid
             ce_<extension> for each extra extension attribute
             traceparent / tracestate (W3C trace context) when known
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from contactcenter.contracts.events import WIRE_NAME, DomainEvent, EventRegistry

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

CE_PREFIX = "ce_"
H_CONTENT_TYPE = "content-type"
H_SPECVERSION = "ce_specversion"
H_ID = "ce_id"
H_SOURCE = "ce_source"
H_TYPE = "ce_type"
H_SUBJECT = "ce_subject"
H_TIME = "ce_time"
H_TENANT = "ce_tenantid"
H_TRACEPARENT = "traceparent"
H_TRACESTATE = "tracestate"

# Attribute names the envelope maps itself; an extension may not shadow them.
_RESERVED = frozenset(
    {"id", "type", "source", "subject", "time", "specversion", "tenantid"}
    | {"datacontenttype", "dataschema", "data"}
)
# CloudEvents 1.0: attribute names are lower-case ASCII letters and digits.
_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")
# RFC 3339 date-time; `datetime.fromisoformat` alone would also take dates and naive times.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")
# W3C trace context `traceparent`: version-traceid-parentid-flags, lower-case hex.
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


class InvalidCloudEvent(ValueError):
    """A record (or envelope) that is not a valid CloudEvent of ours; names what is wrong.

    `attribute` is the header / attribute at fault (`ce_type`, `data`, `key`, ...), or None.
    """

    def __init__(self, attribute: str | None, reason: str) -> None:
        self.attribute = attribute
        self.reason = reason
        super().__init__(f"{attribute}: {reason}" if attribute else reason)


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What goes onto Kafka for one event: exactly these key, value and headers."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventEnvelope:
    """One domain event as a CloudEvent, independent of where it was stored.

    `data` is the event's JSON object; `subject` is the stream id of its aggregate.
    """

    id: UUID
    type: str
    source: str
    subject: str
    time: datetime
    tenant_id: str
    data: dict[str, Any]
    traceparent: str | None = None
    tracestate: str | None = None
    extensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, UUID):
            raise InvalidCloudEvent("id", f"must be a UUID, got {type(self.id).__name__}")
        if not isinstance(self.type, str) or not WIRE_NAME.match(self.type):
            raise InvalidCloudEvent(
                "type", f"must be a wire name '<context>.<EventName>.v<N>', got {self.type!r}"
            )
        _require_text("source", self.source)
        if any(c.isspace() for c in self.source):
            raise InvalidCloudEvent("source", f"must be a URI reference, got {self.source!r}")
        _require_text("subject", self.subject)
        _require_text("tenant_id", self.tenant_id)
        if not isinstance(self.time, datetime) or self.time.utcoffset() is None:
            raise InvalidCloudEvent("time", "must be a timezone-aware datetime")
        if not isinstance(self.data, dict):
            raise InvalidCloudEvent(
                "data", f"must be a JSON object, got {type(self.data).__name__}"
            )
        # The data names the tenant and event id too; a mismatch would leak an event across
        # tenants or make de-duplication by id unsound.
        if "tenant_id" in self.data and self.data["tenant_id"] != self.tenant_id:
            raise InvalidCloudEvent(
                "data",
                f"tenant_id {self.data['tenant_id']!r} differs from the envelope's "
                f"tenant {self.tenant_id!r}",
            )
        if "event_id" in self.data and str(self.data["event_id"]) != str(self.id):
            raise InvalidCloudEvent(
                "data", f"event_id {self.data['event_id']!r} differs from the envelope id {self.id}"
            )
        if self.traceparent is not None and not _TRACEPARENT.match(self.traceparent):
            raise InvalidCloudEvent("traceparent", f"not a W3C traceparent: {self.traceparent!r}")
        if self.tracestate is not None and not isinstance(self.tracestate, str):
            raise InvalidCloudEvent("tracestate", "must be a string")
        for name, value in self.extensions.items():
            if not isinstance(name, str) or not _ATTRIBUTE_NAME.match(name):
                raise InvalidCloudEvent(
                    f"{CE_PREFIX}{name}",
                    "extension names are 1-20 lower-case ASCII letters or digits",
                )
            if name in _RESERVED:
                raise InvalidCloudEvent(f"{CE_PREFIX}{name}", "is not an extension attribute")
            if not isinstance(value, str):
                raise InvalidCloudEvent(f"{CE_PREFIX}{name}", "extension values must be strings")

    def to_event(self, registry: EventRegistry) -> DomainEvent:
        """The domain event this envelope carries (upcast to the current version if retired).

        Raises `UnknownEventType` or pydantic's `ValidationError`; both are deterministic, so a
        subscriber sends such a message to the DLQ without retrying.
        """
        return registry.decode(self.type, self.data)


def envelope_from_event(
    event: DomainEvent,
    source: str,
    subject: str,
    *,
    traceparent: str | None = None,
    tracestate: str | None = None,
    extensions: Mapping[str, str] | None = None,
) -> EventEnvelope:
    """The envelope of a domain event: id, type, time and tenant come from the event itself."""
    return EventEnvelope(
        id=event.event_id,
        type=event.event_type,
        source=source,
        subject=subject,
        time=event.occurred_at,
        tenant_id=event.tenant_id,
        data=event.payload(),
        traceparent=traceparent,
        tracestate=tracestate,
        extensions=dict(extensions or {}),
    )


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a `Z`, e.g. `2024-05-01T09:30:00.000000Z`."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode(envelope: EventEnvelope) -> KafkaRecord:
    """The Kafka record of an envelope. Header order is fixed (content-type first, as a
    FastStream publish writes it) so a record published through FastStream is byte-identical."""
    try:
        value = json.dumps(
            envelope.data, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidCloudEvent("data", f"not JSON-serialisable: {exc}") from exc

    headers: list[tuple[str, bytes]] = [
        (H_CONTENT_TYPE, CONTENT_TYPE.encode()),
        (H_SPECVERSION, SPEC_VERSION.encode()),
        (H_ID, str(envelope.id).encode()),
        (H_SOURCE, envelope.source.encode()),
        (H_TYPE, envelope.type.encode()),
        (H_SUBJECT, envelope.subject.encode()),
        (H_TIME, format_time(envelope.time).encode()),
        (H_TENANT, envelope.tenant_id.encode()),
    ]
    headers += [(f"{CE_PREFIX}{k}", v.encode()) for k, v in sorted(envelope.extensions.items())]
    if envelope.traceparent is not None:
        headers.append((H_TRACEPARENT, envelope.traceparent.encode()))
    if envelope.tracestate is not None:
        headers.append((H_TRACESTATE, envelope.tracestate.encode()))
    return KafkaRecord(key=envelope.tenant_id.encode(), value=value, headers=headers)


def decode(
    headers: Sequence[tuple[str, bytes | None]],
    value: bytes | None,
    *,
    key: bytes | None = None,
) -> EventEnvelope:
    """Validate a record's headers and value into an envelope; raise `InvalidCloudEvent`.

    Headers that are not CloudEvents attributes (e.g. FastStream's `correlation_id`) are ignored.
    When `key` is given it must be the tenant id: a record keyed by another tenant would land
    on another tenant's partition and break per-tenant ordering.
    """
    attributes: dict[str, str] = {}
    for name, raw in headers:
        if not (name.startswith(CE_PREFIX) or name in _OTHER_HEADERS):
            continue
        if name in attributes:
            raise InvalidCloudEvent(name, "header appears more than once")
        if raw is None:
            raise InvalidCloudEvent(name, "header has no value")
        try:
            attributes[name] = raw.decode()
        except UnicodeDecodeError:
            raise InvalidCloudEvent(name, "header is not valid UTF-8") from None

    specversion = _required(attributes, H_SPECVERSION)
    if specversion != SPEC_VERSION:
        raise InvalidCloudEvent(H_SPECVERSION, f"must be {SPEC_VERSION!r}, got {specversion!r}")

    raw_id = _required(attributes, H_ID)
    try:
        event_id = UUID(raw_id)
    except ValueError:
        raise InvalidCloudEvent(H_ID, f"not a UUID: {raw_id!r}") from None

    event_type = _required(attributes, H_TYPE)
    if not WIRE_NAME.match(event_type):
        raise InvalidCloudEvent(
            H_TYPE, f"not a wire name '<context>.<EventName>.v<N>': {event_type!r}"
        )

    raw_time = _required(attributes, H_TIME)
    if not _RFC3339.match(raw_time):
        raise InvalidCloudEvent(H_TIME, f"not an RFC 3339 timestamp: {raw_time!r}")
    try:
        time = datetime.fromisoformat(raw_time.upper())
    except ValueError:
        raise InvalidCloudEvent(H_TIME, f"not an RFC 3339 timestamp: {raw_time!r}") from None

    tenant_id = _required(attributes, H_TENANT)
    if key is not None and key != tenant_id.encode():
        raise InvalidCloudEvent(
            "key", f"record key {key!r} is not the tenant id {tenant_id!r} of {H_TENANT}"
        )

    content_type = attributes.get(H_CONTENT_TYPE)
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() != CONTENT_TYPE:
        raise InvalidCloudEvent(H_CONTENT_TYPE, f"must be {CONTENT_TYPE}, got {content_type!r}")

    data = _parse_data(value)

    extensions = {
        name.removeprefix(CE_PREFIX): text
        for name, text in attributes.items()
        if name.startswith(CE_PREFIX) and name not in _CORE_HEADERS
    }
    return EventEnvelope(
        id=event_id,
        type=event_type,
        source=_required(attributes, H_SOURCE),
        subject=_required(attributes, H_SUBJECT),
        time=time,
        tenant_id=tenant_id,
        data=data,
        traceparent=attributes.get(H_TRACEPARENT),
        tracestate=attributes.get(H_TRACESTATE),
        extensions=extensions,
    )


_CORE_HEADERS = frozenset({H_SPECVERSION, H_ID, H_SOURCE, H_TYPE, H_SUBJECT, H_TIME, H_TENANT})
_OTHER_HEADERS = frozenset({H_CONTENT_TYPE, H_TRACEPARENT, H_TRACESTATE})


def _required(attributes: Mapping[str, str], name: str) -> str:
    value = attributes.get(name)
    if value is None:
        raise InvalidCloudEvent(name, "required header is missing")
    if not value.strip():
        raise InvalidCloudEvent(name, "required header is empty")
    return value


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCloudEvent(name, "must be a non-empty string")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _parse_data(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise InvalidCloudEvent("data", "record has no value")
    try:
        # Decode first: json.loads(bytes) would also guess UTF-16/32; the value must be UTF-8.
        text = value.decode()
    except UnicodeDecodeError:
        raise InvalidCloudEvent("data", "value is not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidCloudEvent("data", f"value is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidCloudEvent("data", f"value must be a JSON object, got {type(data).__name__}")
    return data


__all__ = [
    "CONTENT_TYPE",
    "SPEC_VERSION",
    "EventEnvelope",
    "InvalidCloudEvent",
    "KafkaRecord",
    "decode",
    "encode",
    "envelope_from_event",
    "format_time",
]

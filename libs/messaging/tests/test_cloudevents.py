"""encode/decode of CloudEvents in Kafka binary mode: no broker needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest

from contactcenter.contracts.events import DomainEvent, EventRegistry, UnknownEventType
from contactcenter.messaging.cloudevents import (
    EventEnvelope,
    InvalidCloudEvent,
    KafkaRecord,
    decode,
    encode,
    envelope_from_event,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class ThingHappened(DomainEvent):
    event_type = "testing.ThingHappened.v1"
    thing_id: str
    count: int


@pytest.fixture
def registry() -> EventRegistry:
    r = EventRegistry()
    r.register(ThingHappened)
    return r


def make_envelope(**overrides: Any) -> EventEnvelope:
    event_id = uuid4()
    fields: dict[str, Any] = {
        "id": event_id,
        "type": "testing.ThingHappened.v1",
        "source": "/contactcenter/testing",
        "subject": "thing/t-1/th-1",
        "time": datetime(2024, 5, 1, 9, 30, 0, 123456, tzinfo=UTC),
        "tenant_id": "t-1",
        "data": {"event_id": str(event_id), "tenant_id": "t-1", "thing_id": "th-1", "count": 3},
    }
    fields.update(overrides)
    return EventEnvelope(**fields)


def test_encode_lays_out_binary_mode_record() -> None:
    envelope = make_envelope(traceparent=TRACEPARENT, tracestate="vendor=1")
    record = encode(envelope)

    assert record.key == b"t-1"
    assert json.loads(record.value) == envelope.data
    assert record.headers == [
        ("content-type", b"application/json"),
        ("ce_specversion", b"1.0"),
        ("ce_id", str(envelope.id).encode()),
        ("ce_source", b"/contactcenter/testing"),
        ("ce_type", b"testing.ThingHappened.v1"),
        ("ce_subject", b"thing/t-1/th-1"),
        ("ce_time", b"2024-05-01T09:30:00.123456Z"),
        ("ce_tenantid", b"t-1"),
        ("traceparent", TRACEPARENT.encode()),
        ("tracestate", b"vendor=1"),
    ]


def test_round_trip_keeps_every_attribute() -> None:
    envelope = make_envelope(
        traceparent=TRACEPARENT,
        tracestate="a=b",
        extensions={"partitionkey": "t-1", "region": "eu1"},
        data={"tenant_id": "t-1", "nested": {"list": [1, 2.5, None, "é"]}},
    )
    record = encode(envelope)
    assert decode(record.headers, record.value, key=record.key) == envelope


def test_time_is_written_in_utc_and_read_back_as_the_same_instant() -> None:
    local = datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    record = encode(make_envelope(time=local))
    assert dict(record.headers)["ce_time"] == b"2024-05-01T09:30:00.000000Z"
    decoded = decode(record.headers, record.value)
    assert decoded.time == local
    assert decoded.time.utcoffset() == timedelta(0)


def test_event_round_trip_through_envelope(registry: EventRegistry) -> None:
    event = ThingHappened(tenant_id="t-9", thing_id="x", count=7)
    envelope = envelope_from_event(event, "/contactcenter/testing", "thing/t-9/x")

    assert envelope.id == event.event_id
    assert envelope.type == "testing.ThingHappened.v1"
    assert envelope.time == event.occurred_at
    assert envelope.tenant_id == "t-9"
    record = encode(envelope)
    assert decode(record.headers, record.value, key=b"t-9").to_event(registry) == event


def test_to_event_of_unknown_type_raises(registry: EventRegistry) -> None:
    envelope = make_envelope(type="testing.Unknown.v1", data={"tenant_id": "t-1"})
    with pytest.raises(UnknownEventType):
        envelope.to_event(registry)


def test_decode_ignores_foreign_headers_and_accepts_nanoseconds() -> None:
    record = encode(make_envelope())
    headers = [
        ("correlation_id", b"abc"),
        *[(k, v) for k, v in record.headers if k != "ce_time"],
        ("ce_time", b"2024-05-01T09:30:00.123456789z"),
        ("x-binary", b"\xff\xfe"),
    ]
    decoded = decode(headers, record.value)
    assert decoded.time == datetime(2024, 5, 1, 9, 30, 0, 123456, tzinfo=UTC)
    assert decoded.extensions == {}


def test_content_type_is_optional_and_may_carry_parameters() -> None:
    record = encode(make_envelope())
    without = [(k, v) for k, v in record.headers if k != "content-type"]
    assert decode(without, record.value).tenant_id == "t-1"
    with_charset = [("content-type", b"application/json; charset=utf-8"), *without]
    assert decode(with_charset, record.value).tenant_id == "t-1"


def _without(record: KafkaRecord, name: str) -> list[tuple[str, bytes | None]]:
    return [(k, v) for k, v in record.headers if k != name]


def _replace(record: KafkaRecord, name: str, value: bytes | None) -> list[tuple[str, bytes | None]]:
    return [(k, value if k == name else v) for k, v in record.headers]


@pytest.mark.parametrize(
    "header",
    ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_tenantid"],
)
def test_missing_required_header_is_named(header: str) -> None:
    record = encode(make_envelope())
    with pytest.raises(InvalidCloudEvent, match=f"^{header}: required header is missing") as info:
        decode(_without(record, header), record.value)
    assert info.value.attribute == header


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("ce_specversion", b"0.3", "must be '1.0'"),
        ("ce_id", b"not-a-uuid", "not a UUID"),
        ("ce_type", b"com.example.thing", "not a wire name"),
        ("ce_type", b"", "required header is empty"),
        ("ce_time", b"2024-05-01", "not an RFC 3339 timestamp"),
        ("ce_time", b"2024-05-01T09:30:00", "not an RFC 3339 timestamp"),
        ("ce_time", b"2024-13-01T09:30:00Z", "not an RFC 3339 timestamp"),
        ("ce_tenantid", b" ", "required header is empty"),
        ("ce_source", b"", "required header is empty"),
        ("ce_id", b"\xff\xfe", "not valid UTF-8"),
        ("ce_id", None, "has no value"),
        ("content-type", b"text/plain", "must be application/json"),
        ("traceparent", b"garbage", "not a W3C traceparent"),
    ],
)
def test_invalid_header_is_named(header: str, value: bytes | None, message: str) -> None:
    record = encode(make_envelope(traceparent=TRACEPARENT))
    with pytest.raises(InvalidCloudEvent, match=message) as info:
        decode(_replace(record, header, value), record.value)
    assert info.value.attribute == header


def test_duplicate_attribute_header_is_rejected() -> None:
    record = encode(make_envelope())
    with pytest.raises(InvalidCloudEvent, match="more than once") as info:
        decode([*record.headers, ("ce_type", b"testing.Other.v1")], record.value)
    assert info.value.attribute == "ce_type"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"{not json", "value is not JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'"text"', "must be a JSON object, got str"),
        (b'{"count": NaN}', "value is not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (None, "record has no value"),
        (b"", "value is not JSON"),
    ],
)
def test_invalid_data_is_rejected(value: bytes | None, message: str) -> None:
    record = encode(make_envelope())
    with pytest.raises(InvalidCloudEvent, match=message) as info:
        decode(record.headers, value)
    assert info.value.attribute == "data"


def test_key_must_be_the_tenant() -> None:
    record = encode(make_envelope())
    with pytest.raises(InvalidCloudEvent, match="not the tenant id") as info:
        decode(record.headers, record.value, key=b"t-other")
    assert info.value.attribute == "key"


def test_data_naming_another_tenant_or_event_is_rejected() -> None:
    record = encode(make_envelope())
    other_tenant = json.dumps({"tenant_id": "t-2"}).encode()
    with pytest.raises(InvalidCloudEvent, match="tenant_id 't-2' differs"):
        decode(record.headers, other_tenant)
    other_event = json.dumps({"event_id": str(uuid4())}).encode()
    with pytest.raises(InvalidCloudEvent, match=r"event_id .* differs"):
        decode(record.headers, other_event)


@pytest.mark.parametrize(
    ("overrides", "attribute"),
    [
        ({"time": datetime(2024, 5, 1, 9, 30)}, "time"),
        ({"type": "Thing"}, "type"),
        ({"tenant_id": ""}, "tenant_id"),
        ({"source": "not a uri"}, "source"),
        ({"subject": ""}, "subject"),
        ({"id": "abc"}, "id"),
        ({"extensions": {"Bad_Name": "x"}}, "ce_Bad_Name"),
        ({"extensions": {"tenantid": "x"}}, "ce_tenantid"),
        ({"data": {"count": float("nan")}}, None),
    ],
)
def test_envelope_rejects_invalid_attributes(
    overrides: dict[str, Any], attribute: str | None
) -> None:
    with pytest.raises(InvalidCloudEvent) as info:
        encode(make_envelope(**overrides))
    assert info.value.attribute == (attribute or "data")


def test_envelope_is_frozen() -> None:
    envelope = make_envelope()
    with pytest.raises(AttributeError):
        envelope.tenant_id = "t-2"  # type: ignore[misc]
    assert isinstance(envelope.id, UUID)

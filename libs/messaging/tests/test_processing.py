"""Retry / dead-letter rules of `EnvelopeProcessor`, with an in-memory sink: no broker needed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.messaging.processing import (
    DeadLetterPublishFailed,
    EnvelopeProcessor,
    RetryPolicy,
)
from contactcenter.messaging.settings import KafkaSettings

FAST = RetryPolicy(max_attempts=3, backoff_s=0.001, backoff_max_s=0.004)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp: int = 1_700_000_000_000


@dataclass
class Sink:
    fail_times: int = 0
    sent: list[tuple[str, bytes | None, bytes | None, dict[str, bytes]]] = field(
        default_factory=list
    )

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("DLQ down")
        self.sent.append((topic, key, value, dict(headers)))


def envelope(seq: int, tenant: str = "t-1") -> EventEnvelope:
    return EventEnvelope(
        id=uuid4(),
        type="testing.ThingHappened.v1",
        source="/contactcenter/testing",
        subject=f"thing/{tenant}/{seq}",
        time=datetime.now(UTC),
        tenant_id=tenant,
        data={"tenant_id": tenant, "seq": seq},
    )


def record(offset: int, env: EventEnvelope | None = None) -> Record:
    if env is None:
        return Record("t", 0, offset, b"t-1", b"{bad", [("ce_type", b"x")])
    r = encode(env)
    return Record("t", 0, offset, r.key, r.value, r.headers)


class Boom(Exception):
    pass


async def test_transient_failure_is_retried_and_succeeds_once() -> None:
    sink = Sink()
    calls: list[int] = []

    async def handler(e: EventEnvelope) -> None:
        calls.append(e.data["seq"])
        if len(calls) < 3:
            raise Boom("not yet")

    await EnvelopeProcessor(group_id="g", dead_letters=sink, retry=FAST).process(
        record(0, envelope(1)), handler
    )
    assert calls == [1, 1, 1]
    assert sink.sent == []


async def test_permanent_failure_goes_to_dlq_after_max_attempts() -> None:
    sink = Sink()
    calls = 0

    async def handler(e: EventEnvelope) -> None:
        nonlocal calls
        calls += 1
        raise Boom("always")

    rec = record(41, envelope(1))
    await EnvelopeProcessor(group_id="g", dead_letters=sink, retry=FAST).process(rec, handler)
    assert calls == 3
    [(topic, key, value, headers)] = sink.sent
    assert (topic, key, value) == ("t.dlq", rec.key, rec.value)
    assert headers["dlq_error"] == b"always"
    assert headers["dlq_error_type"].endswith(b"test_processing.Boom")
    assert headers["dlq_attempts"] == b"3"
    assert headers["dlq_original_offset"] == b"41"
    assert headers["dlq_reason"] == b"handler-failed"
    assert headers["ce_type"] == b"testing.ThingHappened.v1"  # original headers kept


async def test_non_retryable_error_is_not_retried() -> None:
    sink = Sink()
    calls = 0

    async def handler(e: EventEnvelope) -> None:
        nonlocal calls
        calls += 1
        raise KeyError("unknown")

    policy = RetryPolicy(max_attempts=5, backoff_s=0.001, non_retryable=(KeyError,))
    await EnvelopeProcessor(group_id="g", dead_letters=sink, retry=policy).process(
        record(0, envelope(1)), handler
    )
    assert calls == 1
    assert sink.sent[0][3]["dlq_attempts"] == b"1"


async def test_invalid_record_is_dead_lettered_without_calling_the_handler() -> None:
    sink = Sink()

    async def handler(e: EventEnvelope) -> None:
        raise AssertionError("must not be called")

    await EnvelopeProcessor(group_id="g", dead_letters=sink, retry=FAST).process(record(0), handler)
    headers = sink.sent[0][3]
    assert headers["dlq_reason"] == b"invalid-cloudevent"
    assert headers["dlq_attempts"] == b"0"
    assert headers["dlq_error_type"] == b"contactcenter.messaging.cloudevents.InvalidCloudEvent"


async def test_unwritable_dlq_raises_so_the_record_is_not_committed() -> None:
    async def handler(e: EventEnvelope) -> None:
        raise Boom

    processor = EnvelopeProcessor(group_id="g", dead_letters=Sink(fail_times=1), retry=FAST)
    with pytest.raises(DeadLetterPublishFailed) as info:
        await processor.process(record(7, envelope(1)), handler)
    assert info.value.record.offset == 7


async def test_batch_failure_is_isolated_to_the_poison_envelope() -> None:
    sink = Sink()
    applied: list[int] = []
    batch_calls = 0

    async def handler(batch: list[EventEnvelope]) -> None:
        nonlocal batch_calls
        batch_calls += 1
        if any(e.data["seq"] == 3 for e in batch):
            raise Boom("poison 3")
        applied.extend(e.data["seq"] for e in batch)  # "commits" only on success

    records = [record(i, envelope(i)) for i in range(6)]
    records.insert(2, record(99))  # undecodable
    await EnvelopeProcessor(group_id="g", dead_letters=sink, retry=FAST).process_batch(
        records, handler
    )
    assert applied == [0, 1, 2, 4, 5]
    assert [s[3]["dlq_reason"] for s in sink.sent] == [b"invalid-cloudevent", b"handler-failed"]
    assert batch_calls == 3 + 5 + 3  # batch attempts, single passes, poison retries


async def test_outage_errors_wait_instead_of_dead_lettering() -> None:
    sink = Sink()
    calls = 0

    async def handler(e: EventEnvelope) -> None:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise ConnectionRefusedError("db down")

    policy = RetryPolicy(
        max_attempts=2, backoff_s=0.001, backoff_max_s=0.001, outage_errors=(ConnectionError,)
    )
    await EnvelopeProcessor(group_id="g", dead_letters=sink, retry=policy).process(
        record(0, envelope(1)), handler
    )
    assert calls == 6
    assert sink.sent == []


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=6, backoff_s=0.1, backoff_max_s=0.5)
    assert [policy.delay(a) for a in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_policy_from_settings() -> None:
    settings = KafkaSettings(max_attempts=4, retry_backoff_ms=20, retry_backoff_max_ms=80)
    policy = RetryPolicy.from_settings(settings)
    assert (policy.max_attempts, policy.backoff_s, policy.backoff_max_s) == (4, 0.02, 0.08)


def test_settings_reject_heartbeat_not_below_session_timeout() -> None:
    with pytest.raises(ValueError, match="heartbeat_interval_ms"):
        KafkaSettings(session_timeout_ms=3000, heartbeat_interval_ms=3000)
    assert KafkaSettings(bootstrap_servers="a:1, b:2").servers == ["a:1", "b:2"]

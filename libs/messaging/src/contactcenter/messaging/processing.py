"""Decode, bounded retries and dead-lettering of consumed records, independent of the framework.

`subscriber.py` wires this into FastStream subscribers (what services use) and into a plain
aiokafka loop. The rules, for each record of a partition, in offset order:

1. A record that is not a valid CloudEvent of ours goes to `<topic>.dlq` at once (no retry).
2. Otherwise the handler runs; an exception is retried with exponential backoff up to
   `RetryPolicy.max_attempts` attempts in all, except the deterministic ones in
   `RetryPolicy.non_retryable` (unknown event type, validation error), which are not retried.
3. A record whose handler still fails goes to the DLQ: original key, value and headers, plus
   `dlq_*` headers naming the error. Then processing goes on with the next record.
4. Only if the DLQ itself cannot be written is `DeadLetterPublishFailed` raised: the caller must
   then not commit past the record, but rewind to it (nothing is ever skipped silently).

A batch handler gets the decoded envelopes of a batch together; if it still fails after its
retries, the batch is replayed one envelope at a time (each with its own retries) so that only
the poison envelopes go to the DLQ. Handlers must therefore be idempotent per call (apply a
batch in one transaction, de-duplicate by event id): delivery is at least once anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from contactcenter.contracts.events import UnknownEventType
from contactcenter.messaging.admin import dlq_topic
from contactcenter.messaging.cloudevents import (
    EventEnvelope,
    InvalidCloudEvent,
    decode,
    format_time,
)
from contactcenter.messaging.settings import KafkaSettings

log = logging.getLogger("contactcenter.messaging")

EnvelopeHandler = Callable[[EventEnvelope], Awaitable[None]]
BatchHandler = Callable[[list[EventEnvelope]], Awaitable[None]]

DLQ_HEADER_PREFIX = "dlq_"
DLQ_ERROR = "dlq_error"
DLQ_ERROR_TYPE = "dlq_error_type"
DLQ_REASON = "dlq_reason"
DLQ_ORIGINAL_TOPIC = "dlq_original_topic"
DLQ_ORIGINAL_PARTITION = "dlq_original_partition"
DLQ_ORIGINAL_OFFSET = "dlq_original_offset"
DLQ_ORIGINAL_TIMESTAMP = "dlq_original_timestamp"
DLQ_CONSUMER_GROUP = "dlq_consumer_group"
DLQ_ATTEMPTS = "dlq_attempts"
DLQ_FAILED_AT = "dlq_failed_at"

REASON_INVALID = "invalid-cloudevent"
REASON_HANDLER = "handler-failed"

_MAX_ERROR_CHARS = 2000


class ConsumedRecord(Protocol):
    """What we read of a consumed record (aiokafka's `ConsumerRecord` has it all)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class DeadLetterSink(Protocol):
    """Writes one dead letter and returns once the broker acknowledged it."""

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> None: ...


class DeadLetterPublishFailed(Exception):
    """The DLQ could not be written: do not commit past `record`; rewind and redeliver it."""

    def __init__(self, record: ConsumedRecord, cause: BaseException) -> None:
        self.record = record
        super().__init__(
            f"cannot dead-letter {record.topic}[{record.partition}]@{record.offset}: {cause!r}"
        )


def _default_non_retryable() -> tuple[type[BaseException], ...]:
    return (InvalidCloudEvent, UnknownEventType, ValidationError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff (`backoff_s`, doubling, capped).

    `non_retryable`: deterministic errors, dead-lettered after the first attempt.
    `outage_errors`: opt-in errors that mean "a dependency is down", not "this message is bad"
    (e.g. a lost database connection); they are retried without bound at `backoff_max_s` and
    never dead-lettered, so an outage blocks the partition instead of emptying it into the DLQ.
    """

    max_attempts: int = 3
    backoff_s: float = 0.1
    backoff_max_s: float = 2.0
    non_retryable: tuple[type[BaseException], ...] = field(default_factory=_default_non_retryable)
    outage_errors: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            raise ValueError("need 0 <= backoff_s <= backoff_max_s")

    @classmethod
    def from_settings(cls, settings: KafkaSettings) -> RetryPolicy:
        return cls(
            max_attempts=settings.max_attempts,
            backoff_s=settings.retry_backoff_ms / 1000,
            backoff_max_s=settings.retry_backoff_max_ms / 1000,
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1)))


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Failure:
    error: Exception
    attempts: int


class EnvelopeProcessor:
    """Applies the rules above to records of one consumer group."""

    def __init__(
        self,
        *,
        group_id: str,
        dead_letters: DeadLetterSink,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.group_id = group_id
        self.dead_letters = dead_letters
        self.retry = retry or RetryPolicy()

    async def process(self, record: ConsumedRecord, handler: EnvelopeHandler) -> None:
        """Handle one record; never raises except `DeadLetterPublishFailed` (and cancellation)."""
        envelope = await self._decode_or_dead_letter(record)
        if envelope is None:
            return
        failure = await self._attempt(handler, envelope, record)
        if failure is not None:
            await self.dead_letter(record, failure.error, REASON_HANDLER, failure.attempts)

    async def process_batch(self, records: Sequence[ConsumedRecord], handler: BatchHandler) -> None:
        """Handle a batch (in record order); same guarantees as `process`."""
        decoded: list[tuple[ConsumedRecord, EventEnvelope]] = []
        for record in records:
            envelope = await self._decode_or_dead_letter(record)
            if envelope is not None:
                decoded.append((record, envelope))
        if not decoded:
            return
        failure = await self._attempt(handler, [e for _, e in decoded], decoded[0][0])
        if failure is None:
            return
        if len(decoded) == 1:
            await self.dead_letter(decoded[0][0], failure.error, REASON_HANDLER, failure.attempts)
            return
        log.warning(
            "batch of %d failed after %d attempts (%r); replaying it one event at a time",
            len(decoded),
            failure.attempts,
            failure.error,
            extra=_record_extra(decoded[0][0], self.group_id),
        )
        for record, envelope in decoded:
            single = await self._attempt(handler, [envelope], record)
            if single is not None:
                await self.dead_letter(record, single.error, REASON_HANDLER, single.attempts)

    async def _decode_or_dead_letter(self, record: ConsumedRecord) -> EventEnvelope | None:
        try:
            return decode(record.headers, record.value, key=record.key)
        except InvalidCloudEvent as exc:
            await self.dead_letter(record, exc, REASON_INVALID, attempts=0)
            return None

    async def _attempt(
        self, handler: Callable[[T], Awaitable[None]], arg: T, record: ConsumedRecord
    ) -> _Failure | None:
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                await handler(arg)
                return None
            except Exception as exc:
                if policy.outage_errors and isinstance(exc, policy.outage_errors):
                    # A dependency is down: wait for it; this attempt does not count.
                    attempt -= 1
                    log.warning(
                        "handler waits for an outage to end: %r",
                        exc,
                        extra=_record_extra(record, self.group_id),
                    )
                    await asyncio.sleep(policy.backoff_max_s)
                    continue
                if attempt >= policy.max_attempts or isinstance(exc, policy.non_retryable):
                    return _Failure(exc, attempt)
                delay = policy.delay(attempt)
                log.info(
                    "handler attempt %d/%d failed (%r); retrying in %.3f s",
                    attempt,
                    policy.max_attempts,
                    exc,
                    delay,
                    extra=_record_extra(record, self.group_id),
                )
                await asyncio.sleep(delay)

    async def dead_letter(
        self, record: ConsumedRecord, error: BaseException, reason: str, attempts: int
    ) -> None:
        """Write `record` unchanged to `<topic>.dlq`, with the error in `dlq_*` headers."""
        topic = dlq_topic(record.topic)
        headers = dead_letter_headers(record, error, reason, attempts, self.group_id)
        log.error(
            "dead-lettering %s[%d]@%d to %s: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            topic,
            type(error).__name__,
            error,
            extra=_record_extra(record, self.group_id),
        )
        try:
            await self.dead_letters.send(topic, key=record.key, value=record.value, headers=headers)
        except Exception as exc:
            raise DeadLetterPublishFailed(record, exc) from exc


def dead_letter_headers(
    record: ConsumedRecord,
    error: BaseException,
    reason: str,
    attempts: int,
    group_id: str,
) -> list[tuple[str, bytes]]:
    """The original headers (minus any `dlq_*` of an earlier round) plus the error's."""
    error_type = type(error)
    message = str(error) or repr(error)
    extra = {
        DLQ_ERROR: message[:_MAX_ERROR_CHARS],
        DLQ_ERROR_TYPE: f"{error_type.__module__}.{error_type.__qualname__}",
        DLQ_REASON: reason,
        DLQ_ORIGINAL_TOPIC: record.topic,
        DLQ_ORIGINAL_PARTITION: str(record.partition),
        DLQ_ORIGINAL_OFFSET: str(record.offset),
        DLQ_ORIGINAL_TIMESTAMP: str(record.timestamp),
        DLQ_CONSUMER_GROUP: group_id,
        DLQ_ATTEMPTS: str(attempts),
        DLQ_FAILED_AT: format_time(datetime.now(UTC)),
    }
    original = [(k, v) for k, v in record.headers if not k.startswith(DLQ_HEADER_PREFIX)]
    return original + [(k, v.encode()) for k, v in extra.items()]


def _record_extra(record: ConsumedRecord, group_id: str) -> dict[str, Any]:
    return {
        "kafka_topic": record.topic,
        "kafka_partition": record.partition,
        "kafka_offset": record.offset,
        "kafka_group": group_id,
    }

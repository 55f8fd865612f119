"""Subscribing to CloudEvents with bounded retries and a DLQ (rules in `processing.py`).

FastStream is what services use (`subscribe_envelopes`, `subscribe_envelope_batches`): each
declares an ordinary FastStream subscriber (so it is in the service's AsyncAPI document) for a
topic and consumer group with `AckPolicy.MANUAL`, and commits only after a record (or batch) is
handled or dead-lettered. Records are handled one at a time in offset order, so the order per
partition (= per tenant) is preserved.

`EnvelopeConsumer` is the same logic over a plain `AIOKafkaConsumer` loop, for code that owns
its consumer (exact per-partition commits and rewinds; one batch call per partition).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber, DefaultSubscriber
from faststream.middlewares import AckPolicy
from pydantic import PlainValidator

from contactcenter.messaging.broker import kafka_producer
from contactcenter.messaging.processing import (
    BatchHandler,
    ConsumedRecord,
    DeadLetterPublishFailed,
    DeadLetterSink,
    EnvelopeHandler,
    EnvelopeProcessor,
    RetryPolicy,
)
from contactcenter.messaging.settings import KafkaSettings

log = logging.getLogger("contactcenter.messaging")

_DESCRIPTION = (
    "CloudEvents 1.0 in Kafka binary content mode: attributes in ce_* headers, key = tenant id, "
    "value = the event's JSON. Undecodable records, and records whose handler still fails after "
    "bounded retries, go to `{dlq}` with the error in dlq_* headers."
)


class BrokerDeadLetters:
    """Dead letters through the FastStream broker's own producer, acknowledged by the broker.

    Original headers are arbitrary bytes (possibly not UTF-8, possibly repeated) while
    FastStream's publish API takes `dict[str, str]`; so the record goes out through the
    broker's underlying aiokafka producer, byte for byte. Under FastStream's in-memory
    `TestKafkaBroker` there is no such producer and FastStream's publish is used instead.
    """

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        producer = kafka_producer(self._broker)
        if producer is not None:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
            return
        await self._broker.publish(
            value or b"",
            topic=topic,
            key=key,
            headers={k: (v or b"").decode(errors="replace") for k, v in headers},
        )


class AIOKafkaDeadLetters:
    """Dead letters through a plain (started) `AIOKafkaProducer`."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)


def _processor(
    broker: KafkaBroker,
    group_id: str,
    settings: KafkaSettings,
    retry: RetryPolicy | None,
    dead_letters: DeadLetterSink | None,
) -> EnvelopeProcessor:
    return EnvelopeProcessor(
        group_id=group_id,
        dead_letters=dead_letters or BrokerDeadLetters(broker),
        retry=retry or RetryPolicy.from_settings(settings),
    )


def _subscriber_options(
    topic: str,
    group_id: str,
    settings: KafkaSettings,
    listener: ConsumerRebalanceListener | None,
    title: str | None,
    description: str | None,
) -> dict[str, Any]:
    """What single and batch subscribers share: manual commits, our tolerant parser, the
    consumer tuning from `settings`, and the AsyncAPI description."""
    return {
        "group_id": group_id,
        "ack_policy": AckPolicy.MANUAL,
        "parser": _parse_tolerantly,
        "decoder": _message_itself,
        "listener": listener,
        "title": title,
        "description": description or _DESCRIPTION.format(dlq=f"{topic}.dlq"),
        "auto_offset_reset": settings.auto_offset_reset,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
    }


def subscribe_envelopes(
    broker: KafkaBroker,
    topic: str,
    handler: EnvelopeHandler,
    *,
    group_id: str,
    settings: KafkaSettings,
    retry: RetryPolicy | None = None,
    listener: ConsumerRebalanceListener | None = None,
    dead_letters: DeadLetterSink | None = None,
    schema: Any | None = None,
    title: str | None = None,
    description: str | None = None,
) -> DefaultSubscriber:
    """Declare a FastStream subscriber that calls `handler` with each decoded envelope.

    Call before `broker.start()`. The topic and `<topic>.dlq` must exist (`ensure_topics`).
    `listener` receives partition assignments/revocations (the routing service rebuilds and
    drops tenant state there). `dead_letters` replaces the default sink (the broker's producer).
    `schema` is the payload type shown in AsyncAPI (e.g. a union of the topic's event models;
    default: a JSON object); it is documentation only, the handler gets `EventEnvelope`s.
    """
    processor = _processor(broker, group_id, settings, retry, dead_letters)
    subscriber: DefaultSubscriber = broker.subscriber(
        Topic(topic, declare=False),
        **_subscriber_options(topic, group_id, settings, listener, title, description),
    )

    async def consume(message: KafkaMessage) -> None:
        record: ConsumedRecord = message.raw_message  # type: ignore[assignment]
        try:
            await processor.process(record, handler)
        except Exception as exc:
            await _rewind(message, exc, processor.retry)
            return
        await _commit(message)

    _document(consume, handler, schema if schema is not None else dict[str, Any])
    subscriber(consume)
    return subscriber


class _PromptBatchSubscriber(BatchSubscriber):
    """FastStream's batch subscriber, without its pause after an empty poll.

    FastStream's `get_msg` waits up to `batch_timeout_ms` for records and, when none came,
    sleeps `batch_timeout_ms` more: a record that arrives during that sleep waits for it (up to
    100 ms with our defaults; measured as most of the routing offer path's latency). The wait
    in `getmany` already paces an idle consumer, so the sleep buys nothing.
    """

    __slots__ = ()

    async def get_msg(self, consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
        messages = await consumer.getmany(
            timeout_ms=self.batch_timeout_ms, max_records=self.max_records
        )
        return tuple(record for records in messages.values() for record in records)


def subscribe_envelope_batches(
    broker: KafkaBroker,
    topic: str,
    handler: BatchHandler,
    *,
    group_id: str,
    settings: KafkaSettings,
    retry: RetryPolicy | None = None,
    listener: ConsumerRebalanceListener | None = None,
    dead_letters: DeadLetterSink | None = None,
    schema: Any | None = None,
    max_records: int | None = None,
    title: str | None = None,
    description: str | None = None,
) -> BatchSubscriber:
    """Like `subscribe_envelopes`, but `handler` gets up to `max_records` envelopes at a time
    (in offset order per partition; a batch may span partitions). One commit per batch."""
    processor = _processor(broker, group_id, settings, retry, dead_letters)
    subscriber: BatchSubscriber = broker.subscriber(
        Topic(topic, declare=False),
        batch=True,
        max_records=max_records or settings.max_batch_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        **_subscriber_options(topic, group_id, settings, listener, title, description),
    )
    subscriber.__class__ = _PromptBatchSubscriber
    commits = CommitsBehind()

    async def consume_batch(message: KafkaMessage) -> None:
        records: Sequence[ConsumedRecord] = message.raw_message
        try:
            await processor.process_batch(records, handler)
        except Exception as exc:
            await _rewind(message, exc, processor.retry)
            return
        if isinstance(message.consumer, AIOKafkaConsumer):
            commits.submit(message.consumer, records)
        else:  # FastStream's in-memory test broker
            await _commit(message)

    # One Kafka message is one event, batch or not: document the message, not the batch.
    _document(consume_batch, handler, schema if schema is not None else dict[str, Any])
    subscriber(consume_batch)
    return subscriber


class EnvelopeConsumer:
    """The same processing over a plain aiokafka consumer that the caller creates and starts
    (subscribed with a `group_id` and `enable_auto_commit=False`) and stops.

    Partitions of one `getmany` are handled one after another, each in offset order; offsets
    are committed per partition exactly up to what was handled.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        processor: EnvelopeProcessor,
        *,
        handler: EnvelopeHandler | None = None,
        batch_handler: BatchHandler | None = None,
        max_records: int = 500,
        poll_timeout_ms: int = 100,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler or batch_handler")
        self._consumer = consumer
        self._processor = processor
        self._handler = handler
        self._batch_handler = batch_handler
        self._max_records = max_records
        self._poll_timeout_ms = poll_timeout_ms

    async def run(self) -> None:
        """Consume until cancelled or the consumer is stopped."""
        while True:
            try:
                await self.poll_once()
            except ConsumerStoppedError:
                return
            except KafkaError as exc:
                log.warning("Kafka error while consuming (%r); retrying", exc)
                await asyncio.sleep(self._processor.retry.backoff_max_s)

    async def poll_once(self) -> int:
        """One fetch, handled and committed; returns the number of records handled."""
        fetched = await self._consumer.getmany(
            timeout_ms=self._poll_timeout_ms, max_records=self._max_records
        )
        commits: dict[Any, int] = {}
        handled = 0
        for tp, records in fetched.items():
            done = await self._handle_partition(records)
            handled += done
            if done:
                commits[tp] = records[done - 1].offset + 1
            if done < len(records):
                # The DLQ is unavailable: rewind to the first record not handled.
                self._consumer.seek(tp, records[done].offset)
        if commits:
            try:
                await self._consumer.commit(commits)
            except KafkaError as exc:  # rebalanced meanwhile: the new owner redelivers
                log.warning("commit failed (%r); records will be redelivered", exc)
        if handled < sum(len(r) for r in fetched.values()):
            await asyncio.sleep(self._processor.retry.backoff_max_s)
        return handled

    async def _handle_partition(self, records: Sequence[ConsumedRecord]) -> int:
        """How many leading records were handled (all, unless the DLQ failed)."""
        if self._batch_handler is not None:
            try:
                await self._processor.process_batch(records, self._batch_handler)
            except DeadLetterPublishFailed as exc:
                log.error("%s; the partition's batch will be redelivered", exc)
                return 0
            return len(records)
        assert self._handler is not None
        for done, record in enumerate(records):
            try:
                await self._processor.process(record, self._handler)
            except DeadLetterPublishFailed as exc:
                log.error("%s; it will be redelivered", exc)
                return done
        return len(records)


class CommitsBehind:
    """Offset commits off the consumer's path: the next batch is handled while the offsets of
    the last one go to the broker. A commit is a broker round trip (2 ms median on the local
    broker), and a contact queued meanwhile waited for it.

    Only offsets of handled records are committed, in order, one request at a time (offsets
    handled meanwhile go together in the next). A commit lost to a crash or a rebalance
    means redelivery, which every consumer recognises (event ids, stream heads)."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, int] = {}
        self._sending: asyncio.Task[None] | None = None

    def submit(self, consumer: AIOKafkaConsumer, records: Sequence[ConsumedRecord]) -> None:
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._pending[tp] = max(self._pending.get(tp, 0), record.offset + 1)
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send(consumer))

    async def _send(self, consumer: AIOKafkaConsumer) -> None:
        while self._pending:
            offsets, self._pending = self._pending, {}
            try:
                await consumer.commit(offsets)
            except Exception as exc:  # rebalanced or stopped meanwhile: redelivered
                log.warning("commit failed (%r); records will be redelivered", exc)


async def _commit(message: Any) -> None:
    try:
        await message.ack()
    except KafkaError as exc:  # e.g. rebalanced meanwhile: the new owner redelivers
        log.warning("commit failed (%r); records will be redelivered", exc)


async def _rewind(message: Any, exc: Exception, retry: RetryPolicy) -> None:
    """Seek back to the message so it is redelivered: never commit past an unhandled record."""
    log.error("cannot finish message (%r); it will be redelivered", exc, exc_info=exc)
    await message.nack()
    await asyncio.sleep(retry.backoff_max_s)


async def _parse_tolerantly(record: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's parser decodes every header as UTF-8; a foreign producer's binary (or null)
    header would fail the message before our handler runs, leaving it uncommitted but skipped.
    Parse a printable copy instead, keeping the original record for decoding and the DLQ."""
    try:
        return await original(record)
    except (UnicodeDecodeError, AttributeError):
        printable = (
            tuple(_printable(r) for r in record)
            if isinstance(record, tuple)
            else _printable(record)
        )
        message = await original(printable)
        message.raw_message = record
        return message


def _printable(record: Any) -> Any:
    headers = [(k, (v or b"").decode(errors="replace").encode()) for k, v in record.headers]
    return dataclasses.replace(record, headers=headers)


async def _message_itself(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """The handler's one argument is the FastStream message itself: its raw records (decoding
    is ours, and an undecodable body must reach our handler and the DLQ rather than fail inside
    FastStream) and its ack/nack. Declared as a second, context-injected parameter, the message
    would be resolved in a worker thread (fast_depends runs a sync `CustomField.use` through
    `anyio.to_thread`): a thread hop on every delivery, on every consumer's path."""
    return message


def _document(wrapper: Callable[..., Any], handler: Callable[..., Any], payload: Any) -> None:
    """Make the FastStream handler describe the service's handler in AsyncAPI: its name, and
    `payload` as the message schema. The body is passed through unvalidated (identity
    validator): `json_schema_input_type` only feeds the document."""
    name = getattr(handler, "__name__", None)
    if name and name != "<lambda>":
        wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__annotations__ = {
        "message": Annotated[Any, PlainValidator(_identity, json_schema_input_type=payload)],
        "return": None,
    }


def _identity(value: Any) -> Any:
    return value

"""`ccctl tail`: read a topic's CloudEvents and print one readable line per event.

No consumer group is joined (partitions are assigned directly), so tailing never moves any
service's offsets. A record that is not a valid CloudEvent is printed as such, never skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from contactcenter.messaging.cloudevents import InvalidCloudEvent, decode

#: Envelope fields every event repeats: not worth a column on a one-line summary.
_ENVELOPE = frozenset(
    {"event_id", "tenant_id", "occurred_at", "correlation_id", "causation_id", "schema_version"}
)
#: Shown first when present, in this order.
_FIRST = (
    "interaction_id",
    "offer_id",
    "agent_id",
    "queue_id",
    "channel",
    "state",
    "presence",
    "reason",
    "profile_id",
)
MAX_FIELDS = 8
MAX_VALUE = 40


def _short(value: Any) -> str | None:
    if value is None or value == "" or value == [] or value == {}:
        return None
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def summarize(data: Mapping[str, Any]) -> str:
    keys = [k for k in _FIRST if k in data] + sorted(
        k for k in data if k not in _FIRST and k not in _ENVELOPE
    )
    parts = []
    for key in keys:
        text = _short(data[key])
        if text is not None:
            parts.append(f"{key}={text}")
        if len(parts) == MAX_FIELDS:
            break
    return " ".join(parts)


def format_record(
    headers: list[tuple[str, bytes | None]], value: bytes | None, key: bytes | None
) -> tuple[str | None, str]:
    """(tenant, line) for one record."""
    try:
        e = decode(headers, value, key=key)
    except InvalidCloudEvent as exc:
        tenant = key.decode(errors="replace") if key else None
        return tenant, f"!! not a valid CloudEvent ({exc}); {len(value or b'')} bytes"
    when = e.time.strftime("%H:%M:%S.%f")[:-3]
    # `interactions.InteractionQueued.v1` -> `InteractionQueued`
    name = e.type.split(".")[1] if e.type.count(".") >= 2 else e.type
    return e.tenant_id, f"{when} {e.tenant_id} {name:<24} {summarize(e.data)}"


async def run_tail(
    *,
    bootstrap: str,
    topic: str,
    tenant: str | None,
    from_beginning: bool,
    count: int,
    idle_timeout: float,
    connect_timeout: float,
    emit: Callable[[str], None],
) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=int(max(connect_timeout, 1) * 1000),
        fetch_max_wait_ms=100,
    )
    try:
        await asyncio.wait_for(consumer.start(), connect_timeout + 1)
    except (KafkaConnectionError, TimeoutError, OSError) as exc:
        await consumer.stop()
        raise ConnectionError(str(exc) or type(exc).__name__) from exc
    printed = 0
    try:
        partitions = None
        deadline = time.monotonic() + connect_timeout
        while partitions is None:
            await consumer.topics()  # refreshes metadata
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                if time.monotonic() > deadline:
                    raise LookupError(f"topic {topic} does not exist (yet)")
                await asyncio.sleep(0.2)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        quiet_since = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            got = False
            for records in batches.values():
                for r in records:
                    got = True
                    record_tenant, line = format_record(list(r.headers or ()), r.value, r.key)
                    if tenant is not None and record_tenant != tenant:
                        continue
                    emit(line)
                    printed += 1
                    if count and printed >= count:
                        return printed
            if got:
                quiet_since = time.monotonic()
            elif idle_timeout and time.monotonic() - quiet_since > idle_timeout:
                return printed
    except KafkaError as exc:
        raise ConnectionError(str(exc)) from exc
    finally:
        await consumer.stop()

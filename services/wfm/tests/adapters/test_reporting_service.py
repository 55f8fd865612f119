"""The reporting adapter against the real reporting service: contacts published as the
interactions service publishes them are counted by reporting's projection and read back by
WFM as plain interval records (the forecast's input)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer

from contactcenter.grpckit import DEV_ONLY_SIGNING_KEY
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.reporting.config import ReportingSettings
from contactcenter.reporting.main import create_app
from contactcenter.testing.services import service_test_settings, serving, temporary_database
from contactcenter.wfm.adapters.reporting import ReportingIntervalHistory

if TYPE_CHECKING:
    from contactcenter.testing.fixtures import TestInfra


async def _publish(
    producer: AIOKafkaProducer, tenant: str, event_type: str, data: dict[str, object], at: datetime
) -> None:
    envelope = EventEnvelope(
        id=uuid.uuid4(),
        type=event_type,
        source="/contactcenter/interactions",
        subject=f"interaction/{tenant}/{data['interaction_id']}",
        time=at,
        tenant_id=tenant,
        data=data,
    )
    record = encode(envelope)
    await producer.send_and_wait(
        "cc.interactions.events.v1", value=record.value, key=record.key, headers=record.headers
    )


async def test_wfm_reads_the_interval_history_that_reporting_built(
    infra: TestInfra, tenant_id: str
) -> None:
    async with temporary_database(infra.database_url, "test_wfm_reporting") as url:
        settings = ReportingSettings(
            **service_test_settings(url, infra.kafka_bootstrap), http_port=0
        )
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
        await producer.start()
        try:
            async with serving(create_app(settings)) as channel:
                base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
                for n in range(3):
                    iid = f"i-{n}"
                    at = base + timedelta(minutes=n)
                    queued = {"interaction_id": iid, "queue_id": "sales", "channel": "chat"}
                    await _publish(
                        producer,
                        tenant_id,
                        "interactions.InteractionQueued.v1",
                        {**queued, "reason": "initial"},
                        at,
                    )
                    await _publish(
                        producer,
                        tenant_id,
                        "interactions.InteractionConnected.v1",
                        {
                            "interaction_id": iid,
                            "agent_id": "a",
                            "queue_wait_ms": 5_000,
                            "first_answer": True,
                        },
                        at + timedelta(seconds=5),
                    )
                adapter = ReportingIntervalHistory(channel, DEV_ONLY_SIGNING_KEY)
                deadline = time.monotonic() + 30
                while True:
                    records = await adapter.history(
                        tenant_id,
                        ["sales"],
                        base - timedelta(hours=1),
                        base + timedelta(hours=1),
                        30,
                    )
                    offered = sum(r.offered for r in records)
                    if offered == 3 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
        finally:
            await producer.stop()
    assert offered == 3
    filled = [r for r in records if r.offered]
    assert {(r.queue_id, r.channel) for r in filled} == {("sales", "chat")}
    assert all(r.interval_start.tzinfo is not None for r in filled)
    # Another tenant's history is not this one's.
    assert all(r.queue_id == "sales" for r in records)

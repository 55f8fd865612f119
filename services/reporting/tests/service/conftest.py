"""The reporting service in-process against the real PostgreSQL and broker (one per session;
every test works in a tenant of its own)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest_asyncio
from aiokafka import AIOKafkaProducer

from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.messaging.ordering import STREAM_VERSION
from contactcenter.reporting.config import ReportingSettings
from contactcenter.reporting.main import ReportingApp, create_app
from contactcenter.reporting.v1 import reporting_pb2_grpc as pb_grpc
from contactcenter.testing.fixtures import TestInfra
from contactcenter.testing.services import service_test_settings, serving, temporary_database

T = TypeVar("T")


@dataclass
class Service:
    app: ReportingApp
    stub: pb_grpc.ReportingServiceStub
    producer: AIOKafkaProducer
    database_url: str

    def md(self, tenant_id: str, role: Role = Role.SUPERVISOR) -> Any:
        return metadata_for(issue_token(tenant_id, [role], "test"))

    async def publish(
        self,
        tenant_id: str,
        event_type: str,
        data: dict[str, Any],
        *,
        at: datetime | None = None,
        event_id: uuid.UUID | None = None,
        stream: tuple[str, int] | None = None,
    ) -> uuid.UUID:
        """Publish as a relay would; `stream` = (stream id, version in it), as the outbox
        relay stamps them."""
        context = event_type.split(".", 1)[0]
        event_id = event_id or uuid.uuid4()
        envelope = EventEnvelope(
            id=event_id,
            type=event_type,
            source=f"/contactcenter/{context}",
            subject=stream[0] if stream else f"{context}/{tenant_id}/x",
            time=at or datetime.now(UTC),
            tenant_id=tenant_id,
            data=data,
            extensions={STREAM_VERSION: str(stream[1])} if stream else {},
        )
        record = encode(envelope)
        await self.producer.send_and_wait(
            f"cc.{context}.events.v1", value=record.value, key=record.key, headers=record.headers
        )
        return event_id


# Module-scoped: its consumer groups must have left before other suites' instances of the same
# services join them (a member kept alive for the session takes half of their partitions).
@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(infra: TestInfra) -> AsyncIterator[Service]:
    async with temporary_database(infra.database_url, "test_reporting") as url:
        settings = ReportingSettings(
            **service_test_settings(url, infra.kafka_bootstrap), http_port=0
        )
        app = create_app(settings)
        async with serving(app) as channel:
            producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
            await producer.start()
            try:
                yield Service(app, pb_grpc.ReportingServiceStub(channel), producer, url)
            finally:
                await producer.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def eventually() -> Callable[..., Awaitable[Any]]:
    async def probe(check: Callable[[], Awaitable[T]], within_s: float = 20.0) -> T:
        deadline = time.monotonic() + within_s
        while True:
            try:
                return await check()
            except (AssertionError, ValueError):  # ValueError: `(one,) = items` not there yet
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    return probe

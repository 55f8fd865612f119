"""The interactions service running in-process against the real PostgreSQL and broker.

One service (and one database) per test module: every test works in a tenant of its
own (`tenant_id`), which is also what isolation means in production. Tests run in the
session's event loop (`pytestmark = pytest.mark.asyncio(loop_scope="session")`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.events import utc_now
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.main import InteractionsApp, create_app
from contactcenter.interactions.v1 import interactions_pb2 as pb
from contactcenter.interactions.v1 import interactions_pb2_grpc as pb_grpc
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.testing.fixtures import TestInfra
from contactcenter.testing.services import service_test_settings, serving, temporary_database


@dataclass
class Service:
    app: InteractionsApp
    channel: grpc.aio.Channel
    stub: pb_grpc.InteractionsServiceStub
    database_url: str
    kafka_bootstrap: str

    def metadata(
        self,
        tenant_id: str,
        roles: Iterable[Role | str] = (Role.SERVICE,),
        subject: str = "test-gateway",
    ) -> tuple[tuple[str, str]]:
        return metadata_for(issue_token(tenant_id, roles, subject))


# Module-scoped: its consumer groups must have left before other suites' instances of the
# same service join them (a member kept alive for the session takes half of their partitions).
@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(infra: TestInfra) -> AsyncIterator[Service]:
    async with temporary_database(infra.database_url, "test_interactions") as url:
        settings = InteractionsSettings(
            **service_test_settings(url, infra.kafka_bootstrap), poll_interval_s=0.2
        )
        app = create_app(settings)
        async with serving(app) as channel:
            yield Service(
                app=app,
                channel=channel,
                stub=pb_grpc.InteractionsServiceStub(channel),
                database_url=url,
                kafka_bootstrap=infra.kafka_bootstrap,
            )


@pytest.fixture
def request_id() -> str:
    return str(uuid.uuid4())


# --- helpers (tests cannot import this module: they get these through fixtures) -------------------


T = TypeVar("T")


class Api:
    """Calls the service as one tenant: `await api.call("Hold", interaction_id=iid)` fills in
    a fresh request_id (unless given) and the tenant's token."""

    def __init__(self, service: Service, tenant_id: str) -> None:
        self.service = service
        self.tenant_id = tenant_id
        self.stub = service.stub

    def md(
        self, roles: Iterable[Role | str] = (Role.SERVICE,), subject: str = "test-gateway"
    ) -> tuple[tuple[str, str]]:
        return self.service.metadata(self.tenant_id, roles, subject)

    async def call(
        self,
        rpc: str,
        *,
        metadata: Any = None,
        deadline_s: float = 10,
        **fields: Any,
    ) -> Any:
        request_type = getattr(pb, f"{rpc}Request")
        if "request_id" in request_type.DESCRIPTOR.fields_by_name and "request_id" not in fields:
            fields["request_id"] = str(uuid.uuid4())
        request = request_type(**fields)
        return await getattr(self.stub, rpc)(
            request, metadata=metadata or self.md(), timeout=deadline_s
        )

    async def create(self, **fields: Any) -> pb.CommandResult:
        fields.setdefault("channel", common_pb2.CHANNEL_VOICE)
        response = await self.call("CreateInteraction", **fields)
        return response.result

    async def get(self, interaction_id: str, **kwargs: Any) -> pb.Interaction:
        return (
            await self.call("GetInteraction", interaction_id=interaction_id, **kwargs)
        ).interaction

    async def version(self, interaction_id: str) -> int:
        """The stream's version in the store (what was really appended)."""
        stream = self.service.app.application.stream_of(self.tenant_id, interaction_id)  # type: ignore[union-attr]
        assert self.service.app.context is not None
        return await self.service.app.context.store.stream_version(stream)


@pytest.fixture
def api(service: Service, tenant_id: str) -> Api:
    return Api(service, tenant_id)


async def _eventually(
    probe: Callable[[], Awaitable[T]], *, within_s: float = 20.0, interval: float = 0.05
) -> T:
    """Retry `probe` until it returns without AssertionError (the read models and Kafka are
    eventually consistent)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await probe()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(interval)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    return _eventually


def _status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    status = rpc_status.from_call(error)
    assert status is not None, error
    return status


def _detail(error: grpc.aio.AioRpcError, kind: type[Message]) -> Any:
    for packed in _status(error).details:
        if packed.Is(kind.DESCRIPTOR):
            message = kind()
            packed.Unpack(message)
            return message
    raise AssertionError(f"no {kind.__name__} in {error}")


class Errors:
    @staticmethod
    def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
        bad = _detail(error, error_details_pb2.BadRequest)
        return {v.field: v.description for v in bad.field_violations}

    @staticmethod
    def info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
        return _detail(error, error_details_pb2.ErrorInfo)  # type: ignore[no-any-return]


@pytest.fixture
def errors() -> type[Errors]:
    return Errors


class Publisher:
    """Publishes other services' events as they would (CloudEvents, key = tenant)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(
        self,
        topic: str,
        tenant_id: str,
        event_type: str,
        data: dict[str, Any],
        *,
        event_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        event_id = event_id or uuid.uuid4()
        envelope = EventEnvelope(
            id=event_id,
            type=event_type,
            source="/contactcenter/test",
            subject=str(data.get("interaction_id") or data.get("thread_id") or "test"),
            time=utc_now(),
            tenant_id=tenant_id,
            data={"event_id": str(event_id), "tenant_id": tenant_id, **data},
        )
        record = encode(envelope)
        await self._producer.send_and_wait(
            topic, value=record.value, key=record.key, headers=record.headers
        )
        return event_id


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def publisher(service: Service) -> AsyncIterator[Publisher]:
    producer = AIOKafkaProducer(bootstrap_servers=service.kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        yield Publisher(producer)
    finally:
        await producer.stop()

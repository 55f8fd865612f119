"""The profiles service running in-process against the real PostgreSQL and broker.

One service (and one database) per test module: every test works in a tenant of its own
(`tenant_id`). Tests run in the session's event loop
(`pytestmark = pytest.mark.asyncio(loop_scope="session")`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from contactcenter.contracts.events import utc_now
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.main import ProfilesApp, create_app
from contactcenter.profiles.v1 import profiles_pb2 as pb
from contactcenter.profiles.v1 import profiles_pb2_grpc as pb_grpc
from contactcenter.testing.fixtures import TestInfra
from contactcenter.testing.services import service_test_settings, serving, temporary_database

T = TypeVar("T")


@dataclass
class Service:
    app: ProfilesApp
    channel: grpc.aio.Channel
    stub: pb_grpc.ProfilesServiceStub
    database_url: str
    kafka_bootstrap: str


# Module-scoped: its consumer groups must have left before other suites' instances of the
# same service join them (a member kept alive for the session takes half of their partitions).
@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(infra: TestInfra) -> AsyncIterator[Service]:
    async with temporary_database(infra.database_url, "test_profiles") as url:
        settings = ProfilesSettings(
            **service_test_settings(url, infra.kafka_bootstrap), tenant_settings_ttl_s=0
        )
        app = create_app(settings)
        async with serving(app) as channel:
            yield Service(
                app=app,
                channel=channel,
                stub=pb_grpc.ProfilesServiceStub(channel),
                database_url=url,
                kafka_bootstrap=infra.kafka_bootstrap,
            )


class Api:
    """Calls the service as one tenant: `await api.call("GetProfile", profile_id=...)` fills in
    a fresh request_id (unless given), a purpose and the tenant's token."""

    def __init__(self, service: Service, tenant_id: str) -> None:
        self.service = service
        self.tenant_id = tenant_id
        self.stub = service.stub

    def md(
        self, roles: Iterable[Role | str] = (Role.SERVICE,), subject: str = "test-client"
    ) -> tuple[tuple[str, str]]:
        return metadata_for(issue_token(self.tenant_id, roles, subject))

    async def call(
        self, rpc: str, *, roles: Iterable[Role | str] = (Role.SERVICE,), **fields: Any
    ) -> Any:
        request_type = getattr(pb, f"{rpc}Request")
        names = request_type.DESCRIPTOR.fields_by_name
        if "request_id" in names and "request_id" not in fields:
            fields["request_id"] = str(uuid.uuid4())
        if "purpose" in names and "purpose" not in fields:
            fields["purpose"] = "test"
        return await getattr(self.stub, rpc)(
            request_type(**fields), metadata=self.md(roles), timeout=10
        )

    async def resolve(self, kind: int, value: str, **fields: Any) -> pb.ResolveIdentityResponse:
        return await self.call(  # type: ignore[no-any-return]
            "ResolveIdentity", identity=pb.Identity(kind=kind, value=value), **fields
        )

    async def get(self, profile_id: str, **kwargs: Any) -> pb.Profile:
        return (await self.call("GetProfile", profile_id=profile_id, **kwargs)).profile

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.service.database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()


@pytest.fixture
def api(service: Service, tenant_id: str) -> Api:
    return Api(service, tenant_id)


async def _eventually(
    probe: Callable[[], Awaitable[T]], *, within_s: float = 20.0, interval: float = 0.05
) -> T:
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


class Errors:
    @staticmethod
    def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
        status = rpc_status.from_call(error)
        assert status is not None, error
        for packed in status.details:
            if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                packed.Unpack(bad)
                return {v.field: v.description for v in bad.field_violations}
        raise AssertionError(f"no BadRequest in {error}")


@pytest.fixture
def errors() -> type[Errors]:
    return Errors


class Publisher:
    """Publishes the interactions service's events as it would (CloudEvents, key = tenant)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def interaction(
        self, tenant_id: str, name: str, interaction_id: str, **data: Any
    ) -> uuid.UUID:
        event_id = uuid.uuid4()
        envelope = EventEnvelope(
            id=event_id,
            type=f"interactions.{name}.v1",
            source="/contactcenter/interactions",
            subject=f"interaction/{tenant_id}/{interaction_id}",
            time=data.pop("at", None) or utc_now(),
            tenant_id=tenant_id,
            data={
                "event_id": str(event_id),
                "tenant_id": tenant_id,
                "interaction_id": interaction_id,
                **data,
            },
        )
        record = encode(envelope)
        await self._producer.send_and_wait(
            "cc.interactions.events.v1", value=record.value, key=record.key, headers=record.headers
        )
        return event_id


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def publisher(service: Service) -> AsyncIterator[Publisher]:
    producer = AIOKafkaProducer(bootstrap_servers=service.kafka_bootstrap)
    await producer.start()
    try:
        yield Publisher(producer)
    finally:
        await producer.stop()

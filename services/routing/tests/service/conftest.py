"""The routing gRPC API in-process, on the real PostgreSQL event store (a fresh database per
test). Test modules are imported with `--import-mode=importlib`: helpers come as fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from contactcenter.eventstore import PgPool, PostgresEventStore, apply_migrations, create_pool
from contactcenter.grpckit import GrpcServerSettings, Role, create_server, issue_token, metadata_for
from contactcenter.routing.adapters.grpc import RoutingServicer, registration
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.v1 import routing_pb2_grpc as pb_grpc

SCHEMA = "routing"


@dataclass
class Routing:
    """A running API: its application (to feed contacts as the consumer would) and a stub."""

    app: RoutingApplication
    stub: pb_grpc.RoutingServiceStub
    store: PostgresEventStore

    @staticmethod
    def md(
        tenant_id: str, roles: Iterable[Role | str] = (Role.ADMIN,), subject: str = "admin-1"
    ) -> tuple[tuple[str, str]]:
        return metadata_for(issue_token(tenant_id, roles, subject))

    @staticmethod
    def agent(tenant_id: str, agent_id: str) -> tuple[tuple[str, str]]:
        return metadata_for(issue_token(tenant_id, (Role.AGENT,), agent_id))

    @staticmethod
    def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
        status = rpc_status.from_call(error)
        assert status is not None
        for detail in status.details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                return {v.field: v.description for v in bad.field_violations}
        return {}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[PgPool]:
    await apply_migrations(database_url, SCHEMA)
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def routing(pool: PgPool) -> AsyncIterator[Routing]:
    store = PostgresEventStore(pool, SCHEMA)
    app = RoutingApplication(store)
    server = create_server(GrpcServerSettings(), [registration(RoutingServicer(app))])
    await server.start()
    await server.health.mark_ready("database")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            yield Routing(app=app, stub=pb_grpc.RoutingServiceStub(channel), store=store)
    finally:
        await server.stop(0)
        await store.aclose()

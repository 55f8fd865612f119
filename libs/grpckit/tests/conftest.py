"""A real grpc.aio server on 127.0.0.1 (port 0) and a real client channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

import grpc
import pytest

from contactcenter.grpckit import (
    GrpcServer,
    GrpcServerSettings,
    HealthState,
    ServiceRegistration,
    create_server,
)
from contactcenter.grpckit.diagnostics import diagnostics_registration
from contactcenter.platform.v1 import platform_pb2_grpc

MakeServer = Callable[..., Awaitable[GrpcServer]]


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    servers: list[GrpcServer] = []

    async def make(
        services: Sequence[ServiceRegistration] | None = None,
        *,
        settings: GrpcServerSettings | None = None,
        health_state: HealthState | None = None,
        error_codes: Mapping[type[BaseException], grpc.StatusCode] | None = None,
    ) -> GrpcServer:
        server = create_server(
            settings or GrpcServerSettings(host="127.0.0.1", port=0),
            [diagnostics_registration()] if services is None else services,
            health_state=health_state,
            error_codes=error_codes,
        )
        servers.append(server)
        await server.start()
        return server

    yield make
    for server in servers:
        await server.stop(0)


@pytest.fixture
async def server(make_server: MakeServer) -> GrpcServer:
    return await make_server()


@pytest.fixture
async def channel(server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield channel


@pytest.fixture
def diagnostics(
    channel: grpc.aio.Channel,
) -> platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub:
    return platform_pb2_grpc.PlatformDiagnosticsServiceStub(channel)

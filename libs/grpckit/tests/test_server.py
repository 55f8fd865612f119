"""A real server: health, reflection, tenant scoping, streaming, lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from contactcenter.grpckit import (
    GrpcServer,
    GrpcServerSettings,
    HealthState,
    Role,
    ServiceRegistration,
    create_server,
    current_caller_or_none,
    issue_token,
    metadata_for,
)
from contactcenter.grpckit.diagnostics import diagnostics_registration
from contactcenter.platform.v1 import platform_pb2, platform_pb2_grpc

DIAGNOSTICS = "contactcenter.platform.v1.PlatformDiagnosticsService"
MakeServer = Callable[..., Awaitable[GrpcServer]]


def auth(
    tenant_id: str = "tenant-a", roles: Sequence[Role] = (Role.AGENT,)
) -> tuple[tuple[str, str]]:
    return metadata_for(issue_token(tenant_id, roles, subject=f"user-of-{tenant_id}"))


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


async def test_health_is_not_serving_until_every_requirement_is_ready(
    make_server: MakeServer,
) -> None:
    state = HealthState()
    server: GrpcServer = await make_server(health_state=state)
    async with grpc.aio.insecure_channel(server.address) as channel:
        # No token needed for health.
        assert await health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (
            await health_status(channel, DIAGNOSTICS) == health_pb2.HealthCheckResponse.NOT_SERVING
        )

        await state.mark_ready("database")
        await state.mark_ready("broker")
        assert state.not_ready == {"projections"}
        assert await health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING

        await state.mark_ready("projections")
        assert await health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        assert await health_status(channel, DIAGNOSTICS) == health_pb2.HealthCheckResponse.SERVING

        await state.mark_not_ready("broker")  # e.g. the broker connection dropped
        assert await health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING

        with pytest.raises(ValueError, match="unknown health requirement"):
            await state.mark_ready("databse")


async def test_health_goes_not_serving_when_the_server_stops(make_server: MakeServer) -> None:
    state = HealthState(requirements=())
    server: GrpcServer = await make_server(health_state=state)
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.create_task(server.stop(grace=1))
        second = await asyncio.wait_for(watch.read(), timeout=5)
        assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        await stopping


async def test_reflection_lists_every_service(server: GrpcServer) -> None:
    def list_services() -> tuple[list[str], str]:
        with grpc.insecure_channel(server.address) as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            services = list(database.get_services())
            pool = descriptor_pool.DescriptorPool(database)
            echo = pool.FindServiceByName(DIAGNOSTICS).methods_by_name["Echo"]
            return services, echo.input_type.full_name

    # The reflection client is synchronous: keep it off the event loop the server runs on.
    services, echo_input = await asyncio.to_thread(list_services)
    assert set(services) == {
        DIAGNOSTICS,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    assert echo_input == "contactcenter.platform.v1.EchoRequest"


async def test_port_zero_reports_the_actual_port(server: GrpcServer) -> None:
    assert server.port > 0
    assert server.address == f"127.0.0.1:{server.port}"


async def test_echo_sees_the_tenant_of_the_token(
    diagnostics: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    request = platform_pb2.EchoRequest(request_id="r-1", message="hello")
    for tenant in ("tenant-a", "tenant-b"):
        response = await diagnostics.Echo(
            request, metadata=auth(tenant, [Role.SUPERVISOR, Role.AGENT]), timeout=5
        )
        assert response.tenant_id == tenant
        assert response.subject == f"user-of-{tenant}"
        assert list(response.roles) == ["agent", "supervisor"]
        assert (response.request_id, response.message) == ("r-1", "hello")
    # The caller was bound inside the RPC's own task, never in ours.
    assert current_caller_or_none() is None


async def test_concurrent_calls_of_different_tenants_do_not_mix(
    diagnostics: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    tenants = [f"tenant-{i}" for i in range(20)]
    responses = await asyncio.gather(
        *(
            diagnostics.Echo(
                platform_pb2.EchoRequest(request_id=t, message=t), metadata=auth(t), timeout=5
            )
            for t in tenants
        )
    )
    assert [r.tenant_id for r in responses] == tenants


async def test_server_streaming_is_authenticated_and_scoped(
    diagnostics: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    call = diagnostics.Tick(
        platform_pb2.TickRequest(count=3, interval_ms=1), metadata=auth("tenant-s"), timeout=5
    )
    ticks = [(t.sequence, t.tenant_id) async for t in call]
    assert ticks == [(1, "tenant-s"), (2, "tenant-s"), (3, "tenant-s")]

    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in diagnostics.Tick(platform_pb2.TickRequest(count=1), timeout=5):
            pass
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED

    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in diagnostics.Tick(
            platform_pb2.TickRequest(count=5000), metadata=auth(), timeout=5
        ):
            pass
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_service_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        create_server(
            GrpcServerSettings(), [diagnostics_registration(), diagnostics_registration()]
        )


async def test_method_roles_must_name_real_methods() -> None:
    registration = diagnostics_registration()
    typo = ServiceRegistration(
        descriptor=registration.descriptor,
        servicer=registration.servicer,
        add_to_server=registration.add_to_server,
        method_roles={"Ecko": {Role.ADMIN}},
    )
    with pytest.raises(ValueError, match="Ecko"):
        create_server(GrpcServerSettings(), [typo])


async def test_a_taken_port_fails_loudly(server: GrpcServer) -> None:
    with pytest.raises(RuntimeError):
        create_server(GrpcServerSettings(port=server.port), [diagnostics_registration()])


async def test_processes_that_ask_for_it_share_a_port() -> None:
    first = create_server(GrpcServerSettings(reuse_port=True), [diagnostics_registration()])
    second = create_server(
        GrpcServerSettings(port=first.port, reuse_port=True), [diagnostics_registration()]
    )
    assert second.port == first.port
    async with first, second:
        for server in (first, second):  # the kernel picks either for a connection
            for requirement in ("database", "broker", "projections"):
                await server.health.mark_ready(requirement)
        async with grpc.aio.insecure_channel(first.address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

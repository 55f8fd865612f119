"""Deadlines: the handler runs under the client's deadline and is cancelled when it expires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from contactcenter.grpckit import GrpcServer, Role, issue_token, metadata_for, time_remaining
from contactcenter.grpckit.diagnostics import DiagnosticsServicer, diagnostics_registration
from contactcenter.platform.v1 import platform_pb2, platform_pb2_grpc

MakeServer = Callable[..., Awaitable[GrpcServer]]
AUTH = metadata_for(issue_token("tenant-a", [Role.AGENT], "agent-1"))


class ObservedSleep(DiagnosticsServicer):
    """Records what the handler saw: the remaining time, and whether it was cancelled."""

    def __init__(self) -> None:
        self.remaining: list[float | None] = []
        self.cancelled = asyncio.Event()
        self.finished = asyncio.Event()

    async def Sleep(
        self, request: platform_pb2.SleepRequest, context: grpc.aio.ServicerContext
    ) -> platform_pb2.SleepResponse:
        self.remaining.append(time_remaining())
        try:
            response = await super().Sleep(request, context)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.finished.set()
        return response


@pytest.fixture
async def observed(
    make_server: MakeServer,
) -> AsyncIterator[tuple[ObservedSleep, platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub]]:
    servicer = ObservedSleep()
    server = await make_server([diagnostics_registration(servicer)])
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield servicer, platform_pb2_grpc.PlatformDiagnosticsServiceStub(channel)


async def test_expired_deadline_cancels_the_handler(
    observed: tuple[ObservedSleep, platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub],
) -> None:
    servicer, stub = observed
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Sleep(platform_pb2.SleepRequest(duration_ms=10_000), metadata=AUTH, timeout=0.3)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5
    await asyncio.wait_for(servicer.cancelled.wait(), timeout=5)
    assert not servicer.finished.is_set()
    remaining = servicer.remaining[0]
    # gRPC rounds the timeout up when it encodes it (grpc-timeout header units): allow that.
    assert remaining is not None and 0 < remaining <= 0.3 + 0.005


async def test_handler_finishes_within_the_deadline(
    observed: tuple[ObservedSleep, platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub],
) -> None:
    servicer, stub = observed
    response = await stub.Sleep(platform_pb2.SleepRequest(duration_ms=20), metadata=AUTH, timeout=5)
    assert response.slept_ms >= 20
    assert servicer.finished.is_set() and not servicer.cancelled.is_set()


async def test_no_deadline_means_no_remaining_time(
    observed: tuple[ObservedSleep, platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub],
) -> None:
    servicer, stub = observed
    await stub.Sleep(platform_pb2.SleepRequest(duration_ms=1), metadata=AUTH)
    assert servicer.remaining == [None]


async def test_streams_are_cancelled_at_the_deadline(
    diagnostics: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for tick in diagnostics.Tick(
            platform_pb2.TickRequest(count=100, interval_ms=100), metadata=AUTH, timeout=0.35
        ):
            received.append(tick.sequence)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert 1 <= len(received) < 100


async def test_sleep_refuses_absurd_durations(
    diagnostics: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await diagnostics.Sleep(
            platform_pb2.SleepRequest(duration_ms=3_600_000), metadata=AUTH, timeout=5
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT

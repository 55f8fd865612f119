"""ServerTracingInterceptor: one SERVER span per call (unary and streaming), continuing the
caller's trace, with the call's gRPC status, also for calls that authentication refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from contactcenter.grpckit import GrpcServerSettings, create_server, issue_token, metadata_for
from contactcenter.grpckit.diagnostics import diagnostics_registration
from contactcenter.observability import inject_carrier
from contactcenter.platform.v1 import platform_pb2, platform_pb2_grpc
from contactcenter.servicekit.tracing import ServerTracingInterceptor

SERVICE = "/contactcenter.platform.v1.PlatformDiagnosticsService"

Traced = tuple[
    platform_pb2_grpc.PlatformDiagnosticsServiceStub, InMemorySpanExporter, TracerProvider
]


@pytest_asyncio.fixture
async def traced() -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = create_server(
        GrpcServerSettings(port=0),
        [diagnostics_registration()],
        interceptors=[ServerTracingInterceptor(tracer_provider=provider)],
    )
    async with server, grpc.aio.insecure_channel(server.address) as channel:
        yield platform_pb2_grpc.PlatformDiagnosticsServiceStub(channel), exporter, provider


def _server_span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    spans = [s for s in exporter.get_finished_spans() if s.name == f"{SERVICE}/{name}"]
    assert len(spans) == 1, [s.name for s in exporter.get_finished_spans()]
    assert spans[0].kind is SpanKind.SERVER
    return spans[0]


async def test_a_call_continues_the_callers_trace(traced: Traced) -> None:
    stub, exporter, provider = traced
    token = metadata_for(issue_token("tenant-a", ["agent"], "agent-1"))
    with provider.get_tracer("client").start_as_current_span("client") as client:
        carrier = tuple(inject_carrier().items())
        await stub.Echo(
            platform_pb2.EchoRequest(request_id="r1", message="hi"), metadata=token + carrier
        )
    span = _server_span(exporter, "Echo")
    assert span.context.trace_id == client.get_span_context().trace_id
    assert span.parent is not None and span.parent.span_id == client.get_span_context().span_id
    assert span.attributes is not None
    assert span.attributes["rpc.method"] == "Echo"
    assert span.attributes["rpc.grpc.status_code"] == 0
    assert span.status.status_code is not StatusCode.ERROR
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing leaks into the caller


async def test_a_refused_call_is_traced_with_its_status(traced: Traced) -> None:
    stub, exporter, _ = traced
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Echo(platform_pb2.EchoRequest(request_id="r2", message="hi"))
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    span = _server_span(exporter, "Echo")
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert span.status.status_code is StatusCode.ERROR


async def test_streams_are_traced_to_their_end(traced: Traced) -> None:
    stub, exporter, _ = traced
    token = metadata_for(issue_token("tenant-a", ["agent"], "agent-1"))
    ticks = [t.sequence async for t in stub.Tick(platform_pb2.TickRequest(count=3), metadata=token)]
    assert ticks == [1, 2, 3]
    assert _server_span(exporter, "Tick").status.status_code is not StatusCode.ERROR
    exporter.clear()
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        async for _ in stub.Tick(platform_pb2.TickRequest(count=100_000), metadata=token):
            pass
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    span = _server_span(exporter, "Tick")
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert span.status.status_code is StatusCode.ERROR

"""A service built on ServiceApp, end to end on the real PostgreSQL and broker: health, and ONE
trace that spans the gRPC call, the event append, the Kafka publish and the consumer."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contactcenter.contracts.events import DomainEvent
from contactcenter.contracts.streams import stream_id
from contactcenter.contracts.topics import topic_for
from contactcenter.eventstore import PgConnection
from contactcenter.grpckit import current_caller, issue_token, metadata_for
from contactcenter.grpckit.diagnostics import DiagnosticsServicer, diagnostics_registration
from contactcenter.messaging.cloudevents import EventEnvelope
from contactcenter.observability import setup_telemetry
from contactcenter.platform.v1 import platform_pb2, platform_pb2_grpc
from contactcenter.servicekit import ServiceApp, ServiceContext, ServiceDefinition, ServiceSettings


class EchoRecorded(DomainEvent):
    event_type = "interactions.TraceProbeEchoed.v1"
    message: str


class AppendingEcho(DiagnosticsServicer):
    """Echo that appends an event, as every command handler does."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def Echo(
        self, request: platform_pb2.EchoRequest, context: grpc.aio.ServicerContext
    ) -> platform_pb2.EchoResponse:
        tenant = current_caller().tenant_id
        event = EchoRecorded(tenant_id=tenant, message=request.message)
        await self._ctx.store.append(
            stream_id("echo", tenant, request.request_id), [event], expected_version=0
        )
        return await super().Echo(request, context)


class SeenEchoes:
    def __init__(self, schema: str) -> None:
        self.name = f"echo-seen-{uuid.uuid4().hex[:6]}"
        self.topics: Sequence[str] = [topic_for("interactions").name]
        self.seen: list[EventEnvelope] = []

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        if envelope.type == EchoRecorded.event_type:
            self.seen.append(envelope)


@pytest.fixture
async def service(
    database_url: str, kafka_bootstrap: str
) -> AsyncIterator[tuple[ServiceApp, SeenEchoes, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    setup_telemetry("trace-test", span_exporter=exporter, configure_logs=False)
    schema = f"svc_{uuid.uuid4().hex[:8]}"
    seen = SeenEchoes(schema)
    definition = ServiceDefinition(
        name="interactions",
        grpc_services=lambda ctx: [diagnostics_registration(AppendingEcho(ctx))],
        projections=lambda ctx: [seen],
        consumes=[topic_for("interactions").name],
    )
    settings = ServiceSettings(
        database_url=database_url,
        db_schema=schema,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=3000,
        kafka_heartbeat_interval_ms=1000,
    )
    app = ServiceApp(definition, settings)
    await app.start()
    yield app, seen, exporter
    await app.stop()


async def test_one_trace_spans_grpc_append_publish_and_consumer(
    service: tuple[ServiceApp, SeenEchoes, InMemorySpanExporter], tenant_id: str
) -> None:
    app, seen, exporter = service
    assert app.grpc is not None
    token = issue_token(tenant_id, ["agent"], "agent-1")
    async with grpc.aio.insecure_channel(app.grpc.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        stub = platform_pb2_grpc.PlatformDiagnosticsServiceStub(channel)
        request_id = uuid.uuid4().hex
        response = await stub.Echo(
            platform_pb2.EchoRequest(request_id=request_id, message="hello"),
            metadata=metadata_for(token),
        )
        assert response.tenant_id == tenant_id

    deadline = time.monotonic() + 30
    while not any(e.tenant_id == tenant_id for e in seen.seen) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    envelope = next(e for e in seen.seen if e.tenant_id == tenant_id)
    assert envelope.data["message"] == "hello"

    spans = exporter.get_finished_spans()
    server = _one(spans, lambda s: s.name.endswith("PlatformDiagnosticsService/Echo"))
    trace_id = server.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    append = _one(in_trace, lambda s: s.name == "eventstore.append")
    publish = _one(in_trace, lambda s: s.name.endswith("publish"))
    process = _one(in_trace, lambda s: s.name == f"{seen.name} process")
    # One chain: gRPC server -> append -> Kafka publish -> consumer.
    assert append.parent is not None and append.parent.span_id == server.context.span_id
    assert publish.parent is not None and publish.parent.span_id == append.context.span_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id


def _one(spans: Sequence[ReadableSpan], match: object) -> ReadableSpan:
    found = [s for s in spans if match(s)]  # type: ignore[operator]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]

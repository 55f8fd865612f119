"""The gRPC server span: lean while nothing records spans, the caller's trace continues."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry import trace

from contactcenter.observability import setup_telemetry
from contactcenter.servicekit import tracing
from contactcenter.servicekit.tracing import ServerTracingInterceptor

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@pytest.fixture
async def address() -> AsyncIterator[tuple[str, list[trace.SpanContext]]]:
    setup_telemetry("trace-test", configure_logs=False)  # the process's SDK provider
    seen: list[trace.SpanContext] = []

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen.append(trace.get_current_span().get_span_context())
        return request

    async def stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        seen.append(trace.get_current_span().get_span_context())
        yield request
        yield request

    server = grpc.aio.server(interceptors=[ServerTracingInterceptor()])
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Svc",
                {
                    "Call": grpc.unary_unary_rpc_method_handler(call),
                    "Stream": grpc.unary_stream_rpc_method_handler(stream),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", seen
    await server.stop(0)


@pytest.mark.parametrize("recorded", [False, True])
async def test_handlers_run_in_a_server_span_of_the_callers_trace(
    address: tuple[str, list[trace.SpanContext]],
    recorded: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing, "spans_recorded", lambda: recorded)
    target, seen = address
    metadata = (("traceparent", CALLER),)
    async with grpc.aio.insecure_channel(target) as channel:
        for _ in range(2):  # the second call uses the wrapped handler built by the first
            assert await channel.unary_unary("/test.Svc/Call")(b"x", metadata=metadata) == b"x"
        replies = [
            r async for r in channel.unary_stream("/test.Svc/Stream")(b"y", metadata=metadata)
        ]
        assert replies == [b"y", b"y"]
        await channel.unary_unary("/test.Svc/Call")(b"z")  # no caller trace: a new one
    assert len(seen) == 4
    for span in seen[:3]:
        assert format(span.trace_id, "032x") == TRACE_ID
        assert format(span.span_id, "016x") != CALLER.split("-")[2]
        assert span.trace_flags.sampled
    assert seen[3].is_valid and format(seen[3].trace_id, "032x") != TRACE_ID

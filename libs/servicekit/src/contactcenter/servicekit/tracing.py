"""The gRPC server span of every RPC: OpenTelemetry's aio server instrumentation, lean while
nothing records spans.

While spans are recorded (an exporter is configured) every RPC goes through the
instrumentation unchanged (attributes, status, the wrapped servicer context). Otherwise an
RPC only continues the caller's trace: the context from its metadata (`traceparent`) becomes
the parent of a non-recording SERVER span, so what the handler does (appends, and the relay's
publishes after them) carries the caller's trace id, as with the full instrumentation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind

from contactcenter.observability.lean import spans_recorded

Behavior = Callable[[Any, Any], Any]


class ServerTracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self._full = aio_server_interceptor()  # type: ignore[no-untyped-call]
        self._tracer = self._full._tracer
        self._filter = self._full._filter  # OTEL_PYTHON_GRPC_EXCLUDED_SERVICES
        # Lean wrappers by method, for the handler object they wrap (grpc gives the same one
        # for every call of a method, so they are built once).
        self._lean: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if spans_recorded():
            return await self._full.intercept_service(continuation, handler_call_details)
        if self._filter is not None and not self._filter(handler_call_details):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._lean.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap_lean(handler, method)
        self._lean[method] = (handler, wrapped)
        return wrapped

    def _wrap_lean(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        tracer = self._tracer
        if handler.request_streaming and handler.response_streaming:
            kind = "stream_stream"
        elif handler.request_streaming:
            kind = "stream_unary"
        elif handler.response_streaming:
            kind = "unary_stream"
        else:
            kind = "unary_unary"
        behavior: Behavior = getattr(handler, kind)

        def parent(context: grpc.aio.ServicerContext) -> Any:
            metadata = context.invocation_metadata()
            return extract({m.key: m.value for m in metadata}) if metadata else None

        if handler.response_streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with tracer.start_as_current_span(
                    method, context=parent(context), kind=SpanKind.SERVER
                ):
                    async for response in behavior(request, context):
                        yield response

            return handler._replace(**{kind: stream})

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with tracer.start_as_current_span(
                method, context=parent(context), kind=SpanKind.SERVER
            ):
                return await behavior(request, context)

        return handler._replace(**{kind: unary})

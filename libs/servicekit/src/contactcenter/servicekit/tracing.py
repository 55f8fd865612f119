"""A SERVER span for every RPC, continuing the caller's trace from the gRPC metadata.

What OpenTelemetry's generic `aio_server_interceptor` does, at a fraction of its cost per call
(it wraps every servicer context in a proxy, re-wraps every handler on every call, and parses
the peer address and all metadata into attributes): measured on ResolveIdentity, 0.12 ms of
CPU per call for the generic one. Here a method's wrapped handler is built once, the span gets
the semantic-convention RPC attributes (`rpc.system`, `rpc.service`, `rpc.method`,
`rpc.grpc.status_code`), and only the trace context headers are read from the metadata.

Runs outermost (before authentication), so that refused calls are traced too; the status code
of a call that ends with an error is read from the servicer context.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

Behavior = Callable[[Any, Any], Any]

_TRACE_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})


def _remote_context(metadata: Any) -> Any:
    carrier = {k: v for k, v in metadata or () if k in _TRACE_HEADERS and isinstance(v, str)}
    return propagate.extract(carrier) if carrier else None


def _finish(span: trace.Span, context: grpc.aio.ServicerContext, error: BaseException) -> None:
    """Record how a call that raised ended: the status it aborted with, CANCELLED (the client
    went away or its deadline passed), or UNKNOWN for an unexpected exception."""
    code = context.code()
    if isinstance(error, asyncio.CancelledError):
        code = grpc.StatusCode.CANCELLED
    elif not isinstance(code, grpc.StatusCode) or code is grpc.StatusCode.OK:
        code = grpc.StatusCode.UNKNOWN
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    span.set_status(Status(StatusCode.ERROR, code.name))
    if not isinstance(error, grpc.aio.AbortError | asyncio.CancelledError):
        span.record_exception(error)


class ServerTracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        service, _, name = method.lstrip("/").partition("/")
        attributes = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": name,
            "rpc.grpc.status_code": grpc.StatusCode.OK.value[0],
        }
        if handler.response_streaming:
            kind = "stream_stream" if handler.request_streaming else "unary_stream"
            behavior = self._streaming(getattr(handler, kind), method, attributes)
        else:
            kind = "stream_unary" if handler.request_streaming else "unary_unary"
            behavior = self._unary(getattr(handler, kind), method, attributes)
        return handler._replace(**{kind: behavior})

    def _unary(self, behavior: Behavior, method: str, attributes: dict[str, Any]) -> Behavior:
        tracer = self._tracer

        async def serve(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with tracer.start_as_current_span(
                method,
                context=_remote_context(context.invocation_metadata()),
                kind=SpanKind.SERVER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    response = behavior(request, context)
                    if inspect.isawaitable(response):
                        response = await response
                    return response
                except BaseException as error:
                    _finish(span, context, error)
                    raise

        return serve

    def _streaming(self, behavior: Behavior, method: str, attributes: dict[str, Any]) -> Behavior:
        tracer = self._tracer

        async def serve(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            with tracer.start_as_current_span(
                method,
                context=_remote_context(context.invocation_metadata()),
                kind=SpanKind.SERVER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    responses = behavior(request, context)
                    if inspect.isawaitable(responses):
                        await responses  # a handler that writes with context.write()
                    elif hasattr(responses, "__aiter__"):
                        async for response in responses:
                            yield response
                    else:
                        for response in responses:
                            yield response
                except BaseException as error:
                    _finish(span, context, error)
                    raise

        return serve

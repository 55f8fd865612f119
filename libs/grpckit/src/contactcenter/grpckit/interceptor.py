"""The server interceptor every service gets: authentication, roles, deadline, error mapping.

For each RPC of a registered service, before the handler runs:
1. the bearer token is verified (UNAUTHENTICATED otherwise) and the caller's roles are checked
   against the method's allowed roles (PERMISSION_DENIED otherwise);
2. the caller and the client's deadline are bound to the RPC's context (`current_caller()`,
   `time_remaining()`);
3. every Timestamp and Duration of the request must be one protobuf can convert, and no
   string may hold a NUL character (INVALID_ARGUMENT naming the field otherwise; see
   validation.py).
Whatever the handler raises is mapped to a status code with rich details (see errors.py).

Deadlines: grpc.aio cancels the handler's task when the client's deadline expires and the client
gets DEADLINE_EXCEEDED; the handler sees asyncio.CancelledError, which is never mapped here.

Health and reflection are public: no token is needed to probe a server.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection

from contactcenter.contracts.errors import PermissionDenied
from contactcenter.grpckit.auth import TokenVerifier, bearer_token
from contactcenter.grpckit.context import Caller, Role, bind_rpc
from contactcenter.grpckit.errors import status_for
from contactcenter.grpckit.validation import require_valid_fields

logger = logging.getLogger(__name__)

PUBLIC_SERVICES = frozenset({health.SERVICE_NAME, reflection.SERVICE_NAME})

Behavior = Callable[[Any, Any], Any]


def _check_request(request: Any) -> None:
    """What every request must satisfy whatever its service (see validation.py)."""
    if isinstance(request, Message):  # not a client stream's iterator
        require_valid_fields(request)


def service_of(method: str) -> str:
    """`/pkg.Service/Method` -> `pkg.Service`."""
    return method.lstrip("/").split("/", 1)[0]


class PlatformInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates, authorises and maps errors for every non-public RPC.

    `method_roles` maps full method names (`/pkg.Service/Method`) to the roles allowed to call
    them; a method missing from it is refused (fail closed).
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        method_roles: Mapping[str, frozenset[Role]],
        error_codes: Mapping[type[BaseException], grpc.StatusCode] | None = None,
    ) -> None:
        self._verifier = verifier
        self._method_roles = dict(method_roles)
        self._error_codes = dict(error_codes or {})
        # Wrapped handlers by method, for the handler object they wrap: grpc hands out the
        # same handler for every call of a method, so each is wrapped once, not per call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None:
            return None
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = handler if service_of(method) in PUBLIC_SERVICES else self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _admit(self, method: str, context: grpc.aio.ServicerContext) -> Caller:
        """The authenticated, authorised caller, or Unauthenticated / PermissionDenied."""
        caller = self._verifier.verify(bearer_token(context.invocation_metadata()))
        allowed = self._method_roles.get(method)
        if allowed is None:
            logger.warning("%s is served but was not registered with create_server", method)
        if allowed is None or not caller.has_any_role(allowed):
            raise PermissionDenied(f"the caller's roles do not allow {method}")
        return caller

    async def _abort(
        self, context: grpc.aio.ServicerContext, error: Exception, method: str
    ) -> None:
        status = status_for(error, self._error_codes, method=method)
        await context.abort(status.code, status.details, status.trailing_metadata)

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if handler.response_streaming:
            kind = "stream_stream" if handler.request_streaming else "unary_stream"
            return handler._replace(**{kind: self._streaming(getattr(handler, kind), method)})
        kind = "stream_unary" if handler.request_streaming else "unary_unary"
        return handler._replace(**{kind: self._unary(getattr(handler, kind), method)})

    def _unary(self, behavior: Behavior, method: str) -> Behavior:
        async def serve(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                bind_rpc(self._admit(method, context), context.time_remaining())
                _check_request(request)
                response = behavior(request, context)
                if inspect.isawaitable(response):
                    response = await response
                return response
            except grpc.aio.AbortError:
                raise  # the handler already chose a status with context.abort()
            except Exception as error:
                await self._abort(context, error, method)

        return serve

    def _streaming(self, behavior: Behavior, method: str) -> Behavior:
        async def serve(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                bind_rpc(self._admit(method, context), context.time_remaining())
                _check_request(request)
                responses = behavior(request, context)
                if inspect.isawaitable(responses):
                    await responses  # a handler that writes with context.write()
                elif hasattr(responses, "__aiter__"):
                    async for response in responses:
                        yield response
                else:
                    for response in responses:
                        yield response
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await self._abort(context, error, method)

        return serve

"""`contactcenter.platform.v1.PlatformDiagnosticsService`: Echo and Sleep, for checking a real
server end to end (authentication, tenant scoping, error mapping, deadlines)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import grpc

from contactcenter.contracts.errors import ValidationFailed
from contactcenter.grpckit.context import ALL_ROLES, Role, current_caller
from contactcenter.grpckit.server import ServiceRegistration
from contactcenter.grpckit.validation import require_fields
from contactcenter.platform.v1 import platform_pb2, platform_pb2_grpc

MAX_SLEEP_MS = 60_000
MAX_TICKS = 1_000


class DiagnosticsServicer(platform_pb2_grpc.PlatformDiagnosticsServiceServicer):
    async def Echo(
        self, request: platform_pb2.EchoRequest, context: grpc.aio.ServicerContext
    ) -> platform_pb2.EchoResponse:
        require_fields(request, "request_id", "message")
        caller = current_caller()
        return platform_pb2.EchoResponse(
            request_id=request.request_id,
            message=request.message,
            tenant_id=caller.tenant_id,
            subject=caller.subject,
            roles=sorted(caller.roles),
        )

    async def Sleep(
        self, request: platform_pb2.SleepRequest, context: grpc.aio.ServicerContext
    ) -> platform_pb2.SleepResponse:
        if request.duration_ms > MAX_SLEEP_MS:
            raise ValidationFailed([("duration_ms", f"must be at most {MAX_SLEEP_MS}")])
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(request.duration_ms / 1000)
        return platform_pb2.SleepResponse(slept_ms=round((loop.time() - started) * 1000))

    async def Tick(
        self, request: platform_pb2.TickRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[platform_pb2.TickResponse]:
        violations = []
        if request.count > MAX_TICKS:
            violations.append(("count", f"must be at most {MAX_TICKS}"))
        if request.interval_ms > MAX_SLEEP_MS:
            violations.append(("interval_ms", f"must be at most {MAX_SLEEP_MS}"))
        if violations:
            raise ValidationFailed(violations)
        tenant_id = current_caller().tenant_id
        for sequence in range(1, request.count + 1):
            await asyncio.sleep(request.interval_ms / 1000)
            yield platform_pb2.TickResponse(sequence=sequence, tenant_id=tenant_id)


def diagnostics_registration(
    servicer: platform_pb2_grpc.PlatformDiagnosticsServiceServicer | None = None,
    *,
    roles: Iterable[Role] = ALL_ROLES,
) -> ServiceRegistration:
    """Serve the diagnostics service (any authenticated caller by default)."""
    return ServiceRegistration(
        descriptor=platform_pb2.DESCRIPTOR.services_by_name["PlatformDiagnosticsService"],
        servicer=servicer or DiagnosticsServicer(),
        add_to_server=platform_pb2_grpc.add_PlatformDiagnosticsServiceServicer_to_server,
        default_roles=frozenset(roles),
    )

"""A service's grpc.aio server: its services, health, reflection, auth and error mapping.

server = create_server(settings.grpc, [
    ServiceRegistration(
        descriptor=routing_pb2.DESCRIPTOR.services_by_name["RoutingService"],
        servicer=RoutingServicer(...),
        add_to_server=routing_pb2_grpc.add_RoutingServiceServicer_to_server,
        method_roles={"UpsertQueue": {Role.SUPERVISOR, Role.ADMIN}},
    ),
])
await server.start()                      # NOT_SERVING until the app says it is ready
await server.health.mark_ready("database")
...
await server.stop()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from contactcenter.grpckit.auth import REQUIRED_ROLES_ATTRIBUTE, TokenVerifier
from contactcenter.grpckit.context import ALL_ROLES, Role
from contactcenter.grpckit.health import HealthState
from contactcenter.grpckit.interceptor import PlatformInterceptor
from contactcenter.grpckit.settings import GrpcServerSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceRegistration:
    """One gRPC service to serve, and who may call each of its methods.

    Allowed roles of a method: `method_roles[name]` if given, else the servicer method's
    `@requires_roles(...)`, else `default_roles` (any authenticated caller unless narrowed).
    """

    descriptor: ServiceDescriptor
    servicer: object
    add_to_server: Callable[[Any, Any], None]  # the generated add_<Service>Servicer_to_server
    method_roles: Mapping[str, Iterable[Role]] = field(default_factory=dict)
    default_roles: frozenset[Role] = ALL_ROLES

    @property
    def name(self) -> str:
        return self.descriptor.full_name

    def allowed_roles(self) -> dict[str, frozenset[Role]]:
        """Full method name (`/pkg.Service/Method`) -> roles allowed to call it."""
        methods = {m.name for m in self.descriptor.methods}
        unknown = set(self.method_roles) - methods
        if unknown:
            raise ValueError(f"{self.name} has no method(s) {', '.join(sorted(unknown))}")
        allowed = {}
        for name in sorted(methods):
            if name in self.method_roles:
                roles = frozenset(Role(r) for r in self.method_roles[name])
            else:
                implementation = getattr(type(self.servicer), name, None)
                roles = getattr(implementation, REQUIRED_ROLES_ATTRIBUTE, self.default_roles)
            if not roles:
                raise ValueError(f"{self.name}.{name}: no role may call it")
            allowed[f"/{self.name}/{name}"] = roles
        return allowed


class GrpcServer:
    """A created (bound, not yet started) server. Also an async context manager."""

    def __init__(
        self,
        server: grpc.aio.Server,
        *,
        host: str,
        port: int,
        health: HealthState,
        service_names: Sequence[str],
        grace_period_seconds: float,
    ) -> None:
        self._server = server
        self.host = host
        self.port = port
        self.health = health
        self.service_names = tuple(service_names)
        self._grace = grace_period_seconds

    @property
    def address(self) -> str:
        """`host:port` to dial, with the actual port when the settings asked for port 0."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "[::1]" if host == "[::]" else host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        # Publish NOT_SERVING (unless already ready) before the first probe can arrive.
        await self.health.add_services(self.service_names)
        await self._server.start()
        logger.info("gRPC server listening on %s:%d", self.host, self.port)

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, then let in-flight RPCs finish for `grace` seconds."""
        await self.health.shutdown()
        await self._server.stop(self._grace if grace is None else grace)

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()

    async def __aenter__(self) -> GrpcServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def create_server(
    settings: GrpcServerSettings,
    services: Sequence[ServiceRegistration],
    *,
    health_state: HealthState | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    error_codes: Mapping[type[BaseException], grpc.StatusCode] | None = None,
) -> GrpcServer:
    """Build and bind a grpc.aio server (call it from a running event loop).

    `interceptors` run before (outside) the platform interceptor, in order: the place for tracing
    and metrics interceptors, so they also see requests that authentication refuses.
    `error_codes` maps further exception types (e.g. a library's own errors) to status codes.
    """
    method_roles: dict[str, frozenset[Role]] = {}
    for registration in services:
        method_roles.update(registration.allowed_roles())
    names = [r.name for r in services]
    if len(set(names)) != len(names):
        raise ValueError(f"a service is registered twice: {names}")

    if settings.auth.uses_dev_key:
        logger.warning("gRPC auth accepts the DEVELOPMENT signing key: never do this in production")

    options = [
        # Fail loudly when the port is taken instead of silently sharing it with another process
        # (unless the settings ask for several processes serving one port).
        ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    interceptor = PlatformInterceptor(TokenVerifier(settings.auth), method_roles, error_codes)
    server = grpc.aio.server(
        interceptors=[*interceptors, interceptor],
        options=options,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    for registration in services:
        registration.add_to_server(registration.servicer, server)

    state = health_state or HealthState()
    health_pb2_grpc.add_HealthServicer_to_server(state.servicer, server)
    if settings.reflection:
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )

    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    return GrpcServer(
        server,
        host=settings.host,
        port=port,
        health=state,
        service_names=names,
        grace_period_seconds=settings.grace_period_seconds,
    )

"""The server's `grpc.health.v1` status, driven by what the application says is ready.

The server reports NOT_SERVING until every requirement (by default its database, broker and
projections) has been marked ready, and again as soon as one is marked not ready or the server
begins to stop. The same status is published for the whole server ("") and for each registered
service, so both `grpcurl ... grpc.health.v1.Health/Check` and Kubernetes' gRPC probes work.
"""

from __future__ import annotations

from collections.abc import Iterable

from grpc_health.v1 import health, health_pb2

DEFAULT_REQUIREMENTS = ("database", "broker", "projections")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthState:
    """Readiness of one server. Mark requirements ready as the application starts:

    await state.mark_ready("database")
    """

    def __init__(self, requirements: Iterable[str] = DEFAULT_REQUIREMENTS) -> None:
        self._requirements = frozenset(requirements)
        self._ready: set[str] = set()
        self._services: set[str] = {health.OVERALL_HEALTH}
        self._stopping = False
        self.servicer = health.aio.HealthServicer()

    @property
    def requirements(self) -> frozenset[str]:
        return self._requirements

    @property
    def not_ready(self) -> frozenset[str]:
        return self._requirements - self._ready

    @property
    def serving(self) -> bool:
        return not self._stopping and not self.not_ready

    async def mark_ready(self, requirement: str) -> None:
        await self.set_ready(requirement, True)

    async def mark_not_ready(self, requirement: str) -> None:
        await self.set_ready(requirement, False)

    async def set_ready(self, requirement: str, ready: bool) -> None:
        if requirement not in self._requirements:
            raise ValueError(
                f"unknown health requirement {requirement!r}; "
                f"known: {', '.join(sorted(self._requirements))}"
            )
        if ready:
            self._ready.add(requirement)
        else:
            self._ready.discard(requirement)
        await self.publish()

    async def add_services(self, names: Iterable[str]) -> None:
        """Also report the status under these service names (done by create_server/start)."""
        self._services.update(names)
        await self.publish()

    async def publish(self) -> None:
        """Push the current status to the health service (and its Watch streams)."""
        status = SERVING if self.serving else NOT_SERVING
        for name in sorted(self._services):
            await self.servicer.set(name, status)

    async def shutdown(self) -> None:
        """NOT_SERVING for good: load balancers drain the server before it stops."""
        self._stopping = True
        await self.servicer.enter_graceful_shutdown()

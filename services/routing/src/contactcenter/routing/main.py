"""`create_app(settings)`: the routing service, ready to `start()` or `run()`.

Nothing happens at import time or in `create_app`; `start()` sets everything up (servicekit:
telemetry, database and migrations, broker and topics, the outbox relay that publishes
`cc.routing.events.v1`, gRPC, the consumer of `cc.interactions.events.v1`), then this
service's timer loop, presence leases and snapshotter (a child process).
"""

from __future__ import annotations

from collections.abc import Sequence

from contactcenter.eventbus import Projection
from contactcenter.grpckit import ServiceRegistration
from contactcenter.routing.adapters.grpc import RoutingServicer, registration
from contactcenter.routing.adapters.inbound import INTERACTIONS_TOPIC, InteractionEvents
from contactcenter.routing.adapters.leases import LeaseSweeper, PresenceLeases
from contactcenter.routing.application import OfferFanout, RoutingApplication, StoreOfferFeed
from contactcenter.routing.application.timers import TimerLoop
from contactcenter.routing.config import RoutingSettings
from contactcenter.routing.domain import EVENT_TYPES
from contactcenter.routing.snapshotter import SnapshotterProcess
from contactcenter.servicekit import (
    Loop,
    ServiceApp,
    ServiceContext,
    ServiceDefinition,
    migrations_dir,
)

SERVICE_NAME = "routing"


class RoutingApp(ServiceApp):
    """The servicekit app plus the routing application and its timer loop."""

    def __init__(self, settings: RoutingSettings) -> None:
        self.routing_settings = settings
        self.application: RoutingApplication | None = None
        self.leases: PresenceLeases | None = None
        super().__init__(
            ServiceDefinition(
                name=SERVICE_NAME,
                migrations=migrations_dir(__file__),
                grpc_services=self._grpc_services,
                projections=self._projections,
                background=self._background,
                event_models=EVENT_TYPES,
                consumes=(INTERACTIONS_TOPIC,),
            ),
            settings,
        )

    def _build(self, ctx: ServiceContext) -> RoutingApplication:
        if self.application is None:
            s = self.routing_settings
            self.application = RoutingApplication(
                ctx.store,
                fanout=OfferFanout(max_pending=s.agent_stream_buffer),
                explain_capacity=s.explain_capacity,
            )
        return self.application

    def _leases(self, ctx: ServiceContext) -> PresenceLeases | None:
        ttl = self.routing_settings.presence_lease_s
        if self.leases is None and ttl > 0:
            self.leases = PresenceLeases(ctx.pool, ctx.schema, ttl)
        return self.leases

    def _grpc_services(self, ctx: ServiceContext) -> Sequence[ServiceRegistration]:
        return [registration(RoutingServicer(self._build(ctx), self._leases(ctx)))]

    def _projections(self, ctx: ServiceContext) -> Sequence[Projection]:
        partitions = self.routing_settings.kafka_partitions
        return [InteractionEvents(self._build(ctx), partition_count=partitions)]

    def _background(self, ctx: ServiceContext) -> Sequence[tuple[str, Loop]]:
        s = self.routing_settings
        loops: list[tuple[str, Loop]] = [
            ("routing-timers", TimerLoop(self._build(ctx), max_sleep_s=s.timer_max_sleep_s).run)
        ]
        feed = StoreOfferFeed(ctx.store, self._build(ctx).fanout)
        loops.append(("routing-offer-feed", feed.run))
        leases = self._leases(ctx)
        if leases is not None:
            sweeper = LeaseSweeper(self._build(ctx), leases, interval_s=s.lease_sweep_interval_s)
            loops.append(("routing-presence-leases", sweeper.run))
        if s.snapshot_every > 0:
            snapshotter = SnapshotterProcess(
                database_url=ctx.settings.database_url,
                schema=ctx.schema,
                every=s.snapshot_every,
                explain_capacity=s.explain_capacity,
                poll_s=s.snapshot_poll_s,
                log_level=ctx.settings.log_level,
            )
            loops.append(("routing-snapshotter", snapshotter.run))
        return loops

    async def stop(self) -> None:
        if self.application is not None:
            # AgentStreams end first, so the gRPC server's graceful stop does not wait on them.
            self.application.fanout.close()
        await super().stop()


def definition() -> ServiceDefinition:
    """What servicekit runs (and renders the AsyncAPI document from)."""
    return RoutingApp(RoutingSettings()).definition


def create_app(settings: RoutingSettings | None = None) -> RoutingApp:
    """The service (not started). Settings default to the environment (`CC_ROUTING_*`)."""
    return RoutingApp(settings if settings is not None else RoutingSettings())

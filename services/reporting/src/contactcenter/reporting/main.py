"""`create_app(settings)`: the reporting service, ready to `start()` or `run()`.

servicekit sets up telemetry, the database (migrations), the event store of reporting's own
configuration and its outbox relay, the topics and gRPC; this service adds the live projection
(its own Kafka consumer of every stream, see projections/live.py) and the HTTP server of the
wallboard and /metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from contactcenter.eventbus.consumer import ConsumedDeadLetters, waiting_out_database_outages
from contactcenter.grpckit import ServiceRegistration, TokenVerifier
from contactcenter.messaging.processing import EnvelopeProcessor, RetryPolicy
from contactcenter.messaging.subscriber import BrokerDeadLetters
from contactcenter.reporting.adapters.grpc import ReportingServicer, registration
from contactcenter.reporting.adapters.http import HttpServer, create_http_app
from contactcenter.reporting.adapters.inbound import TOPICS
from contactcenter.reporting.application.config import ReportingConfig
from contactcenter.reporting.application.feed import WallboardFeed
from contactcenter.reporting.config import ReportingSettings
from contactcenter.reporting.domain.events import EVENT_TYPES
from contactcenter.reporting.projections.live import CONSUMER, LiveProjection, consume
from contactcenter.servicekit import (
    Loop,
    ServiceApp,
    ServiceContext,
    ServiceDefinition,
    migrations_dir,
)

_log = logging.getLogger(__name__)

SERVICE_NAME = "reporting"


def reporting_migrations() -> Path:
    return migrations_dir(__file__)


def definition(app: ReportingApp | None = None) -> ServiceDefinition:
    return ServiceDefinition(
        name=SERVICE_NAME,
        migrations=reporting_migrations(),
        grpc_services=app._grpc_services if app else lambda _: (),
        background=app._background if app else lambda _: (),
        event_models=EVENT_TYPES,
        consumes=TOPICS,
        extra_topics=TOPICS,
    )


class ReportingApp(ServiceApp):
    def __init__(self, settings: ReportingSettings) -> None:
        self.reporting_settings = settings
        self.feed = WallboardFeed()
        self.closing = asyncio.Event()
        self.projection: LiveProjection | None = None
        self.http: HttpServer | None = None
        super().__init__(definition(self), settings)

    def _build(self, ctx: ServiceContext) -> LiveProjection:
        if self.projection is None:
            self.projection = LiveProjection(ctx.pool, ctx.schema, self.feed)
        return self.projection

    def _grpc_services(self, ctx: ServiceContext) -> Sequence[ServiceRegistration]:
        servicer = ReportingServicer(
            self._build(ctx),
            self.feed,
            ReportingConfig(ctx.store),
            ctx.pool,
            ctx.schema,
            self.closing,
        )
        return [registration(servicer)]

    def _background(self, ctx: ServiceContext) -> Sequence[tuple[str, Loop]]:
        projection = self._build(ctx)
        s = self.reporting_settings
        kafka = s.kafka(client_id=SERVICE_NAME)
        processor = EnvelopeProcessor(
            group_id=s.projection_group_id,
            dead_letters=ConsumedDeadLetters(
                BrokerDeadLetters(ctx.broker), ctx.pool, ctx.schema, CONSUMER
            ),
            retry=waiting_out_database_outages(RetryPolicy.from_settings(kafka)),
        )

        async def run(stop: asyncio.Event) -> None:
            await consume(
                projection,
                processor,
                bootstrap_servers=s.kafka_bootstrap_servers,
                group_id=s.projection_group_id,
                stop=stop,
                fetch_max_wait_ms=s.projection_fetch_max_wait_ms,
                session_timeout_ms=s.kafka_session_timeout_ms,
                heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
                max_records=s.projection_max_records,
            )

        return [("live-projection", run)]

    async def start(self) -> None:
        await super().start()
        assert self.projection is not None
        await asyncio.wait_for(self.projection.loaded.wait(), self.settings.startup_timeout_s)
        s = self.reporting_settings
        self.http = HttpServer(
            create_http_app(self.projection, self.feed, TokenVerifier(s.auth), self.closing),
            s.http_host,
            s.http_port,
        )
        await self.http.start()
        _log.info("reporting wallboard on http://%s:%s/", s.http_host, self.http.port)

    async def stop(self) -> None:
        self.closing.set()
        self.feed.close_all()
        if self.http is not None:
            await self.http.stop()
        await super().stop()


def create_app(settings: ReportingSettings | None = None) -> ReportingApp:
    return ReportingApp(settings if settings is not None else ReportingSettings())

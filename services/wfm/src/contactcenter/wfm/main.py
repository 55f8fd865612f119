"""`create_app(settings)`: the WFM service, ready to `start()` or `run()`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import grpc

from contactcenter.eventbus import Projection
from contactcenter.grpckit import DEV_ONLY_SIGNING_KEY, ServiceRegistration
from contactcenter.servicekit import (
    Loop,
    ServiceApp,
    ServiceContext,
    ServiceDefinition,
    migrations_dir,
)
from contactcenter.wfm.adapters.grpc import WfmServicer, registration
from contactcenter.wfm.adapters.inbound import ROUTING_TOPIC, AgentStateLog
from contactcenter.wfm.adapters.reporting import ReportingIntervalHistory
from contactcenter.wfm.application import WfmApplication
from contactcenter.wfm.config import WfmSettings
from contactcenter.wfm.domain import EVENT_TYPES

SERVICE_NAME = "wfm"


def definition(
    grpc_services: Callable[[ServiceContext], Sequence[ServiceRegistration]] = lambda _: (),
    projections: Callable[[ServiceContext], Sequence[Projection]] = lambda _: (),
    background: Callable[[ServiceContext], Sequence[tuple[str, Loop]]] = lambda _: (),
) -> ServiceDefinition:
    return ServiceDefinition(
        name=SERVICE_NAME,
        migrations=migrations_dir(__file__),
        grpc_services=grpc_services,
        projections=projections,
        background=background,
        event_models=EVENT_TYPES,
        consumes=(ROUTING_TOPIC,),
    )


class WfmApp(ServiceApp):
    def __init__(self, settings: WfmSettings) -> None:
        self.wfm_settings = settings
        self.application: WfmApplication | None = None
        self._reporting: grpc.aio.Channel | None = None
        super().__init__(
            definition(self._grpc_services, self._projections, self._background), settings
        )

    def _build(self, ctx: ServiceContext) -> WfmApplication:
        if self.application is None:
            s = self.wfm_settings
            self._reporting = grpc.aio.insecure_channel(s.reporting_address)
            key = (
                s.auth.signing_key.get_secret_value()
                if s.auth.signing_key
                else DEV_ONLY_SIGNING_KEY
            )
            self.application = WfmApplication(
                ctx.store,
                ctx.pool,
                ctx.schema,
                ReportingIntervalHistory(self._reporting, key),
                adherence_threshold=timedelta(seconds=s.adherence_threshold_s),
            )
        return self.application

    def _grpc_services(self, ctx: ServiceContext) -> Sequence[ServiceRegistration]:
        app = self._build(ctx)
        return [registration(WfmServicer(app, self.wfm_settings.adherence_check_interval_s))]

    def _projections(self, ctx: ServiceContext) -> Sequence[Projection]:
        app = self._build(ctx)
        return [AgentStateLog(ctx.schema, app.changed.set)]

    def _background(self, ctx: ServiceContext) -> Sequence[tuple[str, Loop]]:
        app = self._build(ctx)
        interval = self.wfm_settings.adherence_check_interval_s
        return [("adherence-exceptions", lambda stop: app.run_exceptions(stop, interval))]

    async def stop(self) -> None:
        await super().stop()
        if self._reporting is not None:
            await self._reporting.close()


def create_app(settings: WfmSettings | None = None) -> WfmApp:
    return WfmApp(settings if settings is not None else WfmSettings())

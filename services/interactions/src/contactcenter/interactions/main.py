"""`create_app(settings)`: the interactions service, ready to `start()` or `run()`.

Nothing happens at import time or in `create_app`; `start()` sets everything up (servicekit:
telemetry, database and migrations, broker and topics, the process manager's consumers, the
outbox relay, gRPC), then this service's own background work: the append notifications and
the list read model's tailer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from contactcenter.eventbus import Projection
from contactcenter.grpckit import ServiceRegistration
from contactcenter.interactions.adapters.grpc import InteractionsServicer, registration
from contactcenter.interactions.adapters.inbound import (
    EMAIL_TOPIC,
    ROUTING_TOPIC,
    EmailReactions,
    RoutingReactions,
)
from contactcenter.interactions.application import (
    AppendSignals,
    InteractionsApplication,
    ProcessManager,
)
from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.domain import EVENT_TYPES, RepeatPolicy
from contactcenter.interactions.projections import InteractionList, InteractionListProjection
from contactcenter.servicekit import ServiceApp, ServiceContext, ServiceDefinition

_log = logging.getLogger(__name__)

SERVICE_NAME = "interactions"


def migrations_dir() -> Path:
    """`services/interactions/migrations` (next to the package when installed from a wheel)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parents[2] / "migrations"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no migrations directory next to {here}")


def definition(
    grpc_services: Callable[[ServiceContext], Sequence[ServiceRegistration]] = lambda _: (),
    projections: Callable[[ServiceContext], Sequence[Projection]] = lambda _: (),
) -> ServiceDefinition:
    """What servicekit runs (and renders the AsyncAPI document from)."""
    return ServiceDefinition(
        name=SERVICE_NAME,
        migrations=migrations_dir(),
        grpc_services=grpc_services,
        projections=projections,
        event_models=EVENT_TYPES,
        consumes=(ROUTING_TOPIC, EMAIL_TOPIC),
    )


class InteractionsApp(ServiceApp):
    """The servicekit app plus this service's background tasks."""

    def __init__(self, settings: InteractionsSettings) -> None:
        self.interactions_settings = settings
        self.application: InteractionsApplication | None = None
        self.list_projection: InteractionListProjection | None = None
        self.listing: InteractionList | None = None
        self.signals = AppendSignals()
        self._background_stop = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []
        super().__init__(definition(self._grpc_services, self._projections), settings)

    def _build(self, ctx: ServiceContext) -> InteractionsApplication:
        if self.application is None:
            s = self.interactions_settings
            self.listing = InteractionList(ctx.pool, ctx.schema)
            self.application = InteractionsApplication(
                ctx.store,
                signals=self.signals,
                previous_contacts=self.listing,
                repeat_policy=RepeatPolicy(
                    window_days=s.repeat_window_days,
                    handled_only=s.repeat_handled_only,
                    same_intent_only=s.repeat_same_intent_only,
                ),
                cache_size=s.state_cache_size,
                poll_interval_s=s.poll_interval_s,
            )
            self.list_projection = InteractionListProjection(
                ctx.pool,
                ctx.store,
                ctx.schema,
                signals=self.signals,
                batch_size=s.list_projection_batch_size,
                poll_interval_s=s.poll_interval_s,
                min_interval_s=s.list_min_interval_s,
            )
        return self.application

    def _grpc_services(self, ctx: ServiceContext) -> Sequence[ServiceRegistration]:
        app = self._build(ctx)
        assert self.listing is not None
        s = self.interactions_settings
        servicer = InteractionsServicer(
            app,
            self.listing,
            default_page_size=s.list_default_page_size,
            max_page_size=s.list_max_page_size,
        )
        return [registration(servicer)]

    def _projections(self, ctx: ServiceContext) -> Sequence[Projection]:
        process_manager = ProcessManager(self._build(ctx))
        return [RoutingReactions(process_manager), EmailReactions(process_manager, ctx.schema)]

    async def start(self) -> None:
        await super().start()
        assert self.context is not None and self.list_projection is not None
        self._background_stop.clear()
        store = self.context.store
        self._background = [
            asyncio.create_task(
                self._supervised(lambda stop: self.signals.run(store, stop)),
                name="append-notifications",
            ),
            asyncio.create_task(
                self._supervised(self.list_projection.run), name="interaction-list"
            ),
        ]

    async def _supervised(self, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """Run a background loop until stopped; a crash (a bug) is logged and it restarts
        (it resumes from its checkpoint)."""
        stop = self._background_stop
        while not stop.is_set():
            try:
                await run(stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                name = asyncio.current_task().get_name()  # type: ignore[union-attr]
                _log.exception("%s failed; restarting in 1 s", name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def stop(self) -> None:
        if self.application is not None:
            self.application.closing.set()
            self.application.wake_watchers()
        self._background_stop.set()
        for task in self._background:
            try:
                await asyncio.wait_for(task, 10)
            except (TimeoutError, Exception) as exc:  # resumes from its checkpoint
                _log.warning("%s did not stop cleanly: %r", task.get_name(), exc)
        for task in self._background:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._background = []
        await super().stop()


def create_app(settings: InteractionsSettings | None = None) -> InteractionsApp:
    """The service (not started). Settings default to the environment (`CC_INTERACTIONS_*`)."""
    return InteractionsApp(settings if settings is not None else InteractionsSettings())

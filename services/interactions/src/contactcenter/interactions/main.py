"""`create_app(settings)`: the interactions service, ready to `start()` or `run()`.

Nothing happens at import time or in `create_app`; `start()` sets everything up (servicekit:
telemetry, database and migrations, broker and topics, the process manager's consumers, the
outbox relay, gRPC), then this service's own background work: the append notifications and
the list read model's tailer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from contactcenter.eventbus import Projection
from contactcenter.grpckit import ServiceRegistration
from contactcenter.interactions.adapters.email_texts import GrpcEmailTexts
from contactcenter.interactions.adapters.grpc import InteractionsServicer, registration
from contactcenter.interactions.adapters.inbound import (
    EMAIL_TOPIC,
    PROFILES_TOPIC,
    ROUTING_TOPIC,
    EmailReactions,
    ProfileErasures,
    RoutingReactions,
)
from contactcenter.interactions.adapters.profiles import ProfileMerges
from contactcenter.interactions.application import (
    AppendSignals,
    InteractionsApplication,
    ProcessManager,
)
from contactcenter.interactions.application.privacy import Privacy
from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.domain import EVENT_TYPES, RepeatPolicy
from contactcenter.interactions.domain.personal import PersonalFields
from contactcenter.interactions.projections import InteractionList, InteractionListProjection
from contactcenter.privacy import KeyRing, SubjectKeys
from contactcenter.servicekit import (
    Loop,
    ServiceApp,
    ServiceContext,
    ServiceDefinition,
    migrations_dir,
)

_log = logging.getLogger(__name__)

SERVICE_NAME = "interactions"


def definition(
    grpc_services: Callable[[ServiceContext], Sequence[ServiceRegistration]] = lambda _: (),
    projections: Callable[[ServiceContext], Sequence[Projection]] = lambda _: (),
    background: Callable[[ServiceContext], Sequence[tuple[str, Loop]]] = lambda _: (),
) -> ServiceDefinition:
    """What servicekit runs (and renders the AsyncAPI document from)."""
    return ServiceDefinition(
        name=SERVICE_NAME,
        migrations=migrations_dir(__file__),
        grpc_services=grpc_services,
        projections=projections,
        background=background,
        event_models=EVENT_TYPES,
        consumes=(ROUTING_TOPIC, EMAIL_TOPIC, PROFILES_TOPIC),
    )


class InteractionsApp(ServiceApp):
    """The servicekit app plus this service's background tasks."""

    def __init__(self, settings: InteractionsSettings) -> None:
        self.interactions_settings = settings
        self.application: InteractionsApplication | None = None
        self.list_projection: InteractionListProjection | None = None
        self.listing: InteractionList | None = None
        self.keys: SubjectKeys | None = None
        self.privacy: Privacy | None = None
        self.email_texts: GrpcEmailTexts | None = None
        self.signals = AppendSignals()
        super().__init__(
            definition(self._grpc_services, self._projections, self._background), settings
        )

    def _build(self, ctx: ServiceContext) -> InteractionsApplication:
        if self.application is None:
            s = self.interactions_settings
            self.listing = InteractionList(ctx.pool, ctx.schema)
            if s.uses_dev_master_key:
                _log.warning("interactions: the public development master key is in use")
            keyring = KeyRing(
                s.master_key_bytes(),
                s.retired_master_keys_bytes(),
                context="interactions",
                subject_kind="interaction",
            )
            self.keys = SubjectKeys(ctx.pool, ctx.schema, keyring)
            self.privacy = Privacy(self.keys, PersonalFields(s.personal_attributes))
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
                privacy=self.privacy,
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
        assert self.privacy is not None
        return [
            RoutingReactions(process_manager),
            EmailReactions(process_manager, ctx.schema, self._email_texts()),
            ProfileErasures(self.privacy),
            ProfileMerges(ctx.schema),
        ]

    def _background(self, ctx: ServiceContext) -> Sequence[tuple[str, Loop]]:
        self._build(ctx)
        assert self.list_projection is not None
        signals = self.signals
        return [
            ("append-notifications", lambda stop: signals.run(ctx.store, stop)),
            ("interaction-list", self.list_projection.run),
        ]

    def _email_texts(self) -> GrpcEmailTexts | None:
        s = self.interactions_settings
        if self.email_texts is None and s.email_grpc_address:
            self.email_texts = GrpcEmailTexts(s.email_grpc_address, s.service_signing_key)
        return self.email_texts

    async def stop(self) -> None:
        if self.application is not None:
            # Watch streams end first, so the gRPC server's graceful stop does not wait on them.
            self.application.closing.set()
            self.application.wake_watchers()
        await super().stop()
        if self.email_texts is not None:
            await self.email_texts.close()
            self.email_texts = None


def create_app(settings: InteractionsSettings | None = None) -> InteractionsApp:
    """The service (not started). Settings default to the environment (`CC_INTERACTIONS_*`)."""
    return InteractionsApp(settings if settings is not None else InteractionsSettings())

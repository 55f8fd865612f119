"""`create_app(settings)`: the profiles service, ready to `start()` or `run()`.

Nothing happens at import time or in `create_app`; servicekit's `start()` sets everything up
(telemetry, database and migrations, broker and topics, the history projection, the outbox
relay, gRPC).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from contactcenter.eventbus import Projection
from contactcenter.grpckit import ServiceRegistration
from contactcenter.profiles.adapters.crypto import KeyRing
from contactcenter.profiles.adapters.grpc import ProfilesServicer, registration
from contactcenter.profiles.adapters.tables import Tables
from contactcenter.profiles.application import ProfilesApplication
from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.domain import EVENT_TYPES
from contactcenter.profiles.projections import INTERACTIONS_TOPIC, HistoryProjection
from contactcenter.servicekit import (
    Loop,
    ServiceApp,
    ServiceContext,
    ServiceDefinition,
    migrations_dir,
)

_log = logging.getLogger(__name__)

SERVICE_NAME = "profiles"


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
        consumes=(INTERACTIONS_TOPIC,),
    )


class ProfilesApp(ServiceApp):
    def __init__(self, settings: ProfilesSettings) -> None:
        self.profiles_settings = settings
        self.application: ProfilesApplication | None = None
        self.tables: Tables | None = None
        super().__init__(
            definition(self._grpc_services, self._projections, self._background), settings
        )

    def _grpc_services(self, ctx: ServiceContext) -> Sequence[ServiceRegistration]:
        s = self.profiles_settings
        if s.uses_dev_master_key:
            _log.warning("profiles use the DEVELOPMENT master key: never do this in production")
        self.tables = Tables(ctx.pool, ctx.schema, identity_cache_entries=s.identity_cache_entries)
        self.application = ProfilesApplication(
            ctx.store,
            self.tables,
            KeyRing(s.master_key_bytes(), s.retired_master_keys_bytes()),
            settings_ttl_s=s.tenant_settings_ttl_s,
        )
        return [registration(ProfilesServicer(self.application))]

    def _background(self, ctx: ServiceContext) -> Sequence[tuple[str, Loop]]:
        """The identity cache, live while it listens for identity changes (identity_cache.py)."""
        tables = self.tables
        if tables is None or not self.profiles_settings.identity_cache_entries:
            return ()  # never live: every lookup reads PostgreSQL
        url = ctx.settings.database_url
        return [("identity-cache", lambda stop: tables.identity_cache.listen(url, stop))]

    def _projections(self, ctx: ServiceContext) -> Sequence[Projection]:
        return [HistoryProjection(ctx.schema)]


def create_app(settings: ProfilesSettings | None = None) -> ProfilesApp:
    """The service (not started). Settings default to the environment (`CC_PROFILES_*`)."""
    return ProfilesApp(settings if settings is not None else ProfilesSettings())

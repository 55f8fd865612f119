"""`create_app(settings)`: the email service, ready to `start()` or `run()`.

On start (servicekit: telemetry, database and migrations, broker and topic, outbox relay,
gRPC) it adds the SMTP listener and its background loops: the processor of the durable work
queue, the IMAP pollers, the reply sender and the mailbox registry refresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from contactcenter.email.adapters.blobs import PostgresBlobStore
from contactcenter.email.adapters.contacts import INTERACTIONS_TOPIC, ThreadContacts
from contactcenter.email.adapters.grpc import EmailServicer, registration
from contactcenter.email.adapters.imap import ImapPoller
from contactcenter.email.adapters.intake import IntakeWriter
from contactcenter.email.adapters.peers import GrpcProfileResolver, InteractionsClient
from contactcenter.email.adapters.smtp import SmtpHandler, SmtpListener
from contactcenter.email.adapters.smtp_workers import SmtpWorkers, inbox_channel
from contactcenter.email.application.erasure import PROFILES_TOPIC, EmailErasures
from contactcenter.email.application.mailboxes import Mailboxes
from contactcenter.email.application.processing import Processor
from contactcenter.email.application.quarantine import Quarantine
from contactcenter.email.application.replies import Replies, RetryPolicy, SmtpRelay
from contactcenter.email.application.tenants import TenantSettings
from contactcenter.email.config import EmailSettings
from contactcenter.email.domain import EVENT_TYPES
from contactcenter.eventbus import Projection
from contactcenter.grpckit import ServiceRegistration
from contactcenter.privacy import KeyRing, SubjectKeys
from contactcenter.servicekit import (
    Loop,
    ServiceApp,
    ServiceContext,
    ServiceDefinition,
    migrations_dir,
)

_log = logging.getLogger(__name__)

SERVICE_NAME = "email"


def definition(app: EmailApp | None = None) -> ServiceDefinition:
    return ServiceDefinition(
        name=SERVICE_NAME,
        migrations=migrations_dir(__file__),
        grpc_services=app._grpc_services if app else lambda _: (),
        background=app._background if app else lambda _: (),
        projections=app._projections
        if app
        else lambda ctx: [EmailErasures(ctx.schema), ThreadContacts(ctx.schema)],
        event_models=EVENT_TYPES,
        consumes=(PROFILES_TOPIC, INTERACTIONS_TOPIC),
    )


class EmailApp(ServiceApp):
    def __init__(self, settings: EmailSettings) -> None:
        self.email_settings = settings
        self.mailboxes: Mailboxes | None = None
        self.tenants: TenantSettings | None = None
        self.writer: IntakeWriter | None = None
        self.processor: Processor | None = None
        self.replies: Replies | None = None
        self.quarantine: Quarantine | None = None
        self.imap: ImapPoller | None = None
        self.smtp: SmtpListener | None = None
        self.blobs: PostgresBlobStore | None = None
        self.keys: SubjectKeys | None = None
        self._profiles: GrpcProfileResolver | None = None
        self._interactions: InteractionsClient | None = None
        self._smtp_workers: SmtpWorkers | None = None
        #: Where SMTP listens (this process, or its SMTP workers); 0 before start.
        self.smtp_port = 0
        self._workers_started = asyncio.Event()
        super().__init__(definition(self), settings)

    def _build(self, ctx: ServiceContext) -> None:
        if self.mailboxes is not None:
            return
        s = self.email_settings
        self.blobs = PostgresBlobStore(ctx.pool, ctx.schema)
        self.keys = SubjectKeys(
            ctx.pool,
            ctx.schema,
            KeyRing(
                s.master_key_bytes(),
                s.retired_master_keys_bytes(),
                context="email",
                subject_kind="email_message",
            ),
        )
        self.mailboxes = Mailboxes(ctx.pool, ctx.schema, ctx.store)
        self.tenants = TenantSettings(ctx.pool, ctx.schema, ctx.store, s.limits_for)
        if s.profiles_grpc_address:
            self._profiles = GrpcProfileResolver(s.profiles_grpc_address, s.service_signing_key)
        if s.interactions_grpc_address:
            self._interactions = InteractionsClient(
                s.interactions_grpc_address, s.service_signing_key
            )
        self.processor = Processor(
            ctx.pool,
            ctx.schema,
            ctx.store,
            self.blobs,
            self.mailboxes,
            resolver=self._profiles,
            limits_for=self.tenants.limits_for,
            own_domains=frozenset({s.message_id_domain.lower()}),
            batch_size=s.process_batch_size,
            profile_wait_s=s.profile_wait_s,
            poll_interval_s=s.poll_interval_s,
            parse_workers=s.parse_workers,
            keys=self.keys,
        )
        self.writer = IntakeWriter(
            ctx.pool, ctx.schema, self.blobs, on_committed=self.processor.wake
        )
        relay = None
        if s.relay_host:
            relay = SmtpRelay(
                host=s.relay_host,
                port=s.relay_port,
                use_tls=s.relay_use_tls,
                start_tls=s.relay_start_tls,
                username=s.relay_username,
                password=s.relay_password.get_secret_value() if s.relay_password else None,
            )
        self.replies = Replies(
            ctx.pool,
            ctx.schema,
            ctx.store,
            self.mailboxes,
            relay=relay,
            recorder=self._interactions,
            message_id_domain=s.message_id_domain,
            retry=RetryPolicy(s.reply_max_attempts, s.reply_base_delay_s, s.reply_max_delay_s),
            keys=self.keys,
        )
        self.quarantine = Quarantine(ctx.pool, ctx.schema, ctx.store, self.processor.wake)
        self.imap = ImapPoller(
            ctx.pool,
            ctx.schema,
            self.writer,
            self.mailboxes,
            poll_interval_s=s.imap_poll_interval_s,
            timeout_s=s.imap_timeout_s,
            on_stored=self.processor.wake,
            tenants=self.tenants,
        )

    def _projections(self, ctx: ServiceContext) -> Sequence[Projection]:
        self._build(ctx)
        assert self.processor is not None
        erasures = EmailErasures(
            ctx.schema, self.keys, forget_profiles=self.processor.forget_profiles
        )
        return [erasures, ThreadContacts(ctx.schema)]

    def _grpc_services(self, ctx: ServiceContext) -> Sequence[ServiceRegistration]:
        self._build(ctx)
        assert self.mailboxes and self.writer and self.replies and self.quarantine
        servicer = EmailServicer(
            ctx.pool,
            ctx.schema,
            self.mailboxes,
            self.writer,
            self.replies,
            self.quarantine,
            max_ingest_bytes=self.email_settings.smtp_max_message_bytes,
            tenants=self.tenants,
        )
        return [registration(servicer)]

    def _background(self, ctx: ServiceContext) -> Sequence[tuple[str, Loop]]:
        self._build(ctx)
        assert self.mailboxes and self.processor and self.replies and self.imap and self.tenants
        processor = self.processor

        async def inbox_wakeups(stop: asyncio.Event) -> None:
            """Commits of other processes (SMTP workers, replicas) wake the processor."""

            def wake(*_: object) -> None:
                processor.wake()

            channel = inbox_channel(ctx.schema)
            async with ctx.pool.acquire() as conn:
                await conn.add_listener(channel, wake)
                try:
                    await stop.wait()
                finally:
                    await conn.remove_listener(channel, wake)

        loops: list[tuple[str, Loop]] = [
            ("inbox-wakeups", inbox_wakeups),
            ("mailbox-registry", self.mailboxes.run_refresh),
            ("tenant-limits", self.tenants.run_refresh),
            ("reply-sender", self.replies.run),
        ]
        if self.email_settings.processing_enabled:
            loops.append(("email-processor", self.processor.run))
        if self.email_settings.smtp_workers > 0:

            async def supervise(stop: asyncio.Event) -> None:
                await self._workers_started.wait()  # they start after the background loops
                if self._smtp_workers is not None:
                    await self._smtp_workers.supervise(stop)

            loops.append(("smtp-workers", supervise))
        if self.email_settings.imap_enabled:
            loops.append(("imap-poller", self.imap.run))
        return loops

    async def start(self) -> None:
        await super().start()
        assert self.mailboxes is not None and self.writer is not None
        assert self.tenants is not None
        await self.mailboxes.refresh()
        await self.tenants.refresh()
        s = self.email_settings
        if s.smtp_enabled:
            self.smtp = SmtpListener(
                SmtpHandler(self.mailboxes, self.writer, self.tenants),
                host=s.smtp_host,
                port=s.smtp_port,
                hostname=s.smtp_hostname,
                max_message_bytes=s.smtp_max_message_bytes,
                reuse_port=s.smtp_workers > 0,
            )
            await self.smtp.start()
            self.smtp_port = self.smtp.port
            if s.smtp_workers > 0:
                assert self.context is not None
                self._smtp_workers = SmtpWorkers(
                    s.smtp_workers,
                    {
                        "database_url": s.database_url,
                        "smtp_host": s.smtp_host,
                        "smtp_hostname": s.smtp_hostname,
                        "smtp_max_message_bytes": s.smtp_max_message_bytes,
                        "log_level": s.log_level,
                        "limits": s.limits.model_dump(),
                        "tenant_limits": {t: v.model_dump() for t, v in s.tenant_limits.items()},
                    },
                    self.context.schema,
                )
                # The workers take over the port: this event loop is left to processing.
                self.smtp_port = self.smtp.port
                await self._smtp_workers.start(self.smtp_port)
                self._workers_started.set()
                await self.smtp.stop()
                self.smtp = None

    async def stop(self) -> None:
        self._workers_started.set()  # a supervisor still waiting for them ends
        if self._smtp_workers is not None:
            await self._smtp_workers.stop()
            self._smtp_workers = None
        if self.smtp is not None:
            await self.smtp.stop()
            self.smtp = None
        await super().stop()
        if self.processor is not None:
            self.processor.close()
        for client in (self._profiles, self._interactions):
            if client is not None:
                await client.close()


def create_app(settings: EmailSettings | None = None) -> EmailApp:
    """The service (not started). Settings default to the environment (`CC_EMAIL_*`)."""
    return EmailApp(settings if settings is not None else EmailSettings())

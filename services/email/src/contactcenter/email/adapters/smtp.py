"""The SMTP listener (aiosmtpd, in the service's event loop).

RCPT is accepted only for a registered mailbox address or its `local+<token>@domain`
variant (550 otherwise). DATA is answered 250 only after the raw bytes and their work-queue
rows are committed (a 250 means durable); a storage failure answers 451 so the sender
retries. Messages over the hard size cap are refused by aiosmtpd with 552.

Tenant limits (ConfigureTenant): RCPT to a mailbox whose tenant received its
`max_inbound_per_minute` in the last minute is answered 452 (the sender retries later); DATA
larger than the `max_message_bytes` of every recipient's tenant is answered 552 (a message that
fits some of them is kept, and quarantined as oversized for the others).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from contactcenter.email.adapters.intake import Delivery, Intake, IntakeWriter
from contactcenter.email.application.mailboxes import Mailboxes
from contactcenter.email.application.tenants import TenantSettings
from contactcenter.email.domain import base_address

_log = logging.getLogger(__name__)


def _text(value: str | None) -> str:
    """Envelope text as PostgreSQL stores it (no NUL, no undecodable bytes)."""
    return (value or "").replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


class SmtpHandler:
    def __init__(
        self, mailboxes: Mailboxes, writer: IntakeWriter, tenants: TenantSettings | None = None
    ) -> None:
        self._mailboxes = mailboxes
        self._writer = writer
        self._tenants = tenants

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        entry = self._mailboxes.lookup(base_address(address))
        if entry is None:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        if self._tenants is not None:
            try:
                room = await self._tenants.inbound_room(entry.tenant_id)
            except Exception as exc:
                _log.warning("could not count the inbound rate (answered 451): %r", exc)
                return "451 4.3.0 temporary failure, try again later"
            if room == 0:
                return f"452 4.7.0 <{address}>: too many messages this minute, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw or "").encode("utf-8", "surrogateescape")
        deliveries: dict[str, Delivery] = {}
        for rcpt in envelope.rcpt_tos:
            entry = self._mailboxes.lookup(base_address(rcpt))
            if entry is not None:
                deliveries.setdefault(entry.address, Delivery(entry.tenant_id, entry.address))
        if not deliveries:
            return "554 5.5.1 no valid recipients"
        if self._tenants is not None:
            limits = [
                self._tenants.tenant_limits(d.tenant_id).max_message_bytes
                for d in deliveries.values()
            ]
            if len(raw) > max(limits):
                return f"552 5.3.4 message size exceeds the limit of {max(limits)} bytes"
        try:
            sha = await self._writer.submit(
                Intake(
                    raw=raw,
                    deliveries=list(deliveries.values()),
                    source="smtp",
                    envelope_from=_text(envelope.mail_from if envelope.mail_from != "<>" else ""),
                    envelope_to=[_text(r.lower()) for r in envelope.rcpt_tos],
                )
            )
        except Exception as exc:
            _log.warning("could not store a message (answered 451): %r", exc)
            return "451 4.3.0 temporary storage failure, try again later"
        return f"250 2.0.0 OK stored as {sha[:20]}"


class SmtpListener:
    def __init__(
        self,
        handler: SmtpHandler,
        *,
        host: str,
        port: int,
        hostname: str,
        max_message_bytes: int,
        reuse_port: bool = False,
    ) -> None:
        self._reuse_port = reuse_port
        self._handler = handler
        self._host = host
        self._port = port
        self._hostname = hostname
        self._limit = max_message_bytes
        self._server: asyncio.base_events.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        sockets: Any = self._server.sockets
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            return SMTP(
                self._handler,
                data_size_limit=self._limit,
                decode_data=False,
                hostname=self._hostname,
                ident="contactcenter-email",
                enable_SMTPUTF8=True,
            )

        try:
            self._server = await loop.create_server(
                factory, self._host, self._port, reuse_port=self._reuse_port or None
            )
        except OSError as exc:
            if self._port == 0:
                raise
            # Like `make run` does for gRPC: a busy well-known port gives way to a free one.
            _log.warning("SMTP port %d is busy (%s); listening on a free port", self._port, exc)
            self._server = await loop.create_server(
                factory, self._host, 0, reuse_port=self._reuse_port or None
            )
        _log.warning("SMTP listener on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

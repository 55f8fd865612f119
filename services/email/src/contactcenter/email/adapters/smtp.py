"""The SMTP listener (aiosmtpd, in the service's event loop).

RCPT is accepted only for a registered mailbox address or its `local+<token>@domain`
variant (550 otherwise). DATA is answered 250 only after the raw bytes and their work-queue
rows are committed (a 250 means durable); a storage failure answers 451 so the sender
retries. Messages over the hard size cap are refused with 552.

DATA is read by `FastDataSMTP` in large chunks rather than aiosmtpd's line at a time (with
its 1 KB stream limit, which pauses and resumes the socket every 2 KB): the same answers
(552 over the size cap, 500 for a line over 1,000 characters, dot-unstuffing of RFC 5321
4.5.2) for a fraction of the CPU.

Tenant limits (ConfigureTenant): RCPT to a mailbox whose tenant received its
`max_inbound_per_minute` in the last minute is answered 452 (the sender retries later); DATA
larger than the `max_message_bytes` of every recipient's tenant is answered 552 (a message that
fits some of them is kept, and quarantined as oversized for the others).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from contactcenter.email.adapters.intake import Delivery, Intake, IntakeWriter
from contactcenter.email.application.mailboxes import Mailboxes
from contactcenter.email.application.tenants import TenantSettings
from contactcenter.email.domain import base_address

_log = logging.getLogger(__name__)


def _text(value: str | None) -> str:
    """Envelope text as PostgreSQL stores it (no NUL, no undecodable bytes)."""
    return (value or "").replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


#: How much of DATA one read may take: the stream limit while DATA is read.
DATA_CHUNK_BYTES = 256 * 1024
_END = b".\r\n"


def unstuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2: the leading dot of every line that starts with one is removed."""
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\r\n.", b"\r\n")


def longest_line(data: bytes) -> int:
    """The length of the longest line of `data`, its CRLF included (as aiosmtpd counts)."""
    return max(map(len, data.split(b"\r\n"))) + 2 if data else 0


#: `<local@domain>` with a dot-atom local part and a plain host name (what nearly every MTA
#: sends) and the parameters after it: parsed here, everything else by aiosmtpd.
_PLAIN_PATH = re.compile(
    r"<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)>"
    r"[ \t]*((?:[!-'*-~][ -~]*)?)",
)


class FastDataSMTP(SMTP):
    """aiosmtpd's SMTP with a DATA phase that reads large chunks up to the `CRLF.CRLF`
    terminator. Behaviour is aiosmtpd's: the content handed to `handle_DATA`, 552 when over
    `data_size_limit`, 500 for a line longer than `line_length_limit`, the data discarded
    (and the stream drained to the terminator) in both cases. The path of MAIL FROM and RCPT
    TO in its plain form (`<local@domain>`) is parsed by a regular expression, not by the
    standard library's RFC 5322 header parser (the same address, a tenth of the CPU)."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _PLAIN_PATH.fullmatch(arg)
        if match is None:
            return super()._getaddr(arg)
        address, rest = match.group(1), match.group(2)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = self._reader
        # The stream limit is the command line's (1 KB) outside DATA; a larger one now lets a
        # read take what the socket has and keeps the transport from pausing every 2 KB.
        saved_limit = reader._limit
        reader._limit = max(saved_limit, DATA_CHUNK_BYTES)
        limit = self.data_size_limit
        buf = bytearray()
        received = 0  # bytes of DATA before the terminator's line, counted as aiosmtpd does
        state = "nominal"
        try:
            while True:
                try:
                    chunk = await reader.readuntil(_END)
                except asyncio.LimitOverrunError as exc:
                    chunk = await reader.readexactly(exc.consumed)
                except asyncio.IncompleteReadError:
                    self._writer.close()
                    return
                except asyncio.CancelledError:
                    _log.info("connection lost during DATA")
                    self._writer.close()
                    raise
                buf += chunk
                received += len(chunk)
                if received == len(_END) and buf == _END:
                    break  # an empty message
                if buf.endswith(b"\r\n" + _END):
                    break
                if state == "nominal" and limit and received > limit + len(_END):
                    # Over the cap: the rest is drained, not kept. aiosmtpd reports a line
                    # too long met before the cap rather than the size.
                    too_long = longest_line(bytes(buf[:limit])) > self.line_length_limit
                    state = "too_long" if too_long else "too_much"
                if state != "nominal":
                    del buf[: max(0, len(buf) - 4)]  # kept: what a terminator may start with
        finally:
            reader._limit = saved_limit
        if state == "nominal":
            content = bytes(buf[: -len(_END)])
            if limit and len(content) > limit:
                state = (
                    "too_long"
                    if longest_line(content[:limit]) > self.line_length_limit
                    else "too_much"
                )
            elif longest_line(content) > self.line_length_limit:
                state = "too_long"
        if state != "nominal":
            if state == "too_long":
                await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            else:
                await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        original = unstuff(content)
        self.envelope.content = original
        self.envelope.original_content = original
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


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
            return FastDataSMTP(
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

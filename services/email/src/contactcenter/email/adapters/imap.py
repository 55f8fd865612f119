"""The IMAP poller (aioimaplib): one task per mailbox registered with an IMAP account.

It keeps its place per mailbox as (UIDVALIDITY, last UID) in `imap_state`, moved in the same
transaction that stores what it fetched, so a restart or a dropped connection neither misses
nor duplicates a message (a changed UIDVALIDITY refetches the folder; Message-ID dedupe then
drops what was already received). Credentials never reach a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

import aioimaplib

from contactcenter.email.adapters.intake import Delivery, ImapCheckpoint, Intake, IntakeWriter
from contactcenter.email.application.mailboxes import ImapMailbox, Mailboxes
from contactcenter.email.application.tenants import TenantSettings
from contactcenter.eventstore import PgPool

_log = logging.getLogger(__name__)

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH = re.compile(rb"^\d+ FETCH ")
_UID = re.compile(rb"UID (\d+)")


class ImapError(Exception):
    pass


def parse_fetch(lines: list[Any]) -> list[tuple[int, bytes]]:
    """(uid, raw message) pairs from an aioimaplib `UID FETCH ... (UID RFC822)` response."""
    out: list[tuple[int, bytes]] = []
    uid: int | None = None
    body: bytes | None = None
    for line in lines:
        if isinstance(line, bytearray):
            body = bytes(line)
            continue
        if not isinstance(line, bytes):
            continue
        if _FETCH.match(line):
            if uid is not None and body is not None:
                out.append((uid, body))
            uid, body = None, None
        m = _UID.search(line)
        if m and uid is None:
            uid = int(m.group(1))
    if uid is not None and body is not None:
        out.append((uid, body))
    return out


class ImapPoller:
    def __init__(
        self,
        pool: PgPool,
        schema: str,
        writer: IntakeWriter,
        mailboxes: Mailboxes,
        *,
        poll_interval_s: float = 10.0,
        fetch_batch: int = 50,
        timeout_s: float = 60.0,
        on_stored: Any = None,
        tenants: TenantSettings | None = None,
    ) -> None:
        self._tenants = tenants
        self._pool = pool
        self._writer = writer
        self._mailboxes = mailboxes
        self._interval = poll_interval_s
        self._batch = fetch_batch
        self._timeout = timeout_s
        self._on_stored = on_stored
        self._tasks: dict[str, tuple[ImapMailbox, asyncio.Task[None]]] = {}
        s = '"' + schema.replace('"', '""') + '"'
        self._sql_state = f"select uidvalidity, last_uid from {s}.imap_state where address = $1"

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self._sync(stop)
                self._mailboxes.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._mailboxes.changed.wait(), 5.0)
        finally:
            for _, task in self._tasks.values():
                task.cancel()
            for _, task in self._tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._tasks.clear()

    async def _sync(self, stop: asyncio.Event) -> None:
        wanted = {m.address: m for m in await self._mailboxes.imap_mailboxes()}
        for address in list(self._tasks):
            mailbox, task = self._tasks[address]
            if wanted.get(address) != mailbox or task.done():
                task.cancel()
                del self._tasks[address]
        for address, mailbox in wanted.items():
            if address not in self._tasks:
                task = asyncio.create_task(self._poll(mailbox, stop), name=f"imap:{address}")
                self._tasks[address] = (mailbox, task)

    async def _poll(self, mailbox: ImapMailbox, stop: asyncio.Event) -> None:
        delay = 1.0
        while not stop.is_set():
            try:
                await self._session(mailbox, stop)
                delay = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Never the credentials: the mailbox address and the kind of failure only.
                _log.warning(
                    "IMAP poller of %s: %s; reconnecting in %.0f s",
                    mailbox.address,
                    type(exc).__name__,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 60.0)

    async def _session(self, mailbox: ImapMailbox, stop: asyncio.Event) -> None:
        s = mailbox.imap
        client: aioimaplib.IMAP4
        if s.use_tls:
            client = aioimaplib.IMAP4_SSL(host=s.host, port=s.port, timeout=self._timeout)
        else:
            client = aioimaplib.IMAP4(host=s.host, port=s.port, timeout=self._timeout)
        await client.wait_hello_from_server()
        try:
            login = await client.login(s.username, s.password.get_secret_value())
            if login.result != "OK":
                raise ImapError("login refused")
            selected = await client.select(s.folder)
            if selected.result != "OK":
                raise ImapError("select refused")
            uidvalidity = 0
            for line in selected.lines:
                m = (
                    _UIDVALIDITY.search(bytes(line))
                    if isinstance(line, bytes | bytearray)
                    else None
                )
                if m:
                    uidvalidity = int(m.group(1))
            while not stop.is_set():
                await self._fetch_new(client, mailbox, uidvalidity)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._interval)
                noop = await client.noop()
                if noop.result != "OK":
                    raise ImapError("noop refused")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), 5)

    async def _fetch_new(
        self, client: aioimaplib.IMAP4, mailbox: ImapMailbox, uidvalidity: int
    ) -> None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_state, mailbox.address)
        last = 0
        if row is not None and row["uidvalidity"] == uidvalidity:
            last = row["last_uid"]
        found = await client.uid_search(f"UID {last + 1}:*", charset=None)
        if found.result != "OK":
            raise ImapError("search refused")
        uids = sorted(
            {int(u) for line in found.lines[:-1] for u in bytes(line).split() if u.isdigit()}
        )
        uids = [u for u in uids if u > last]
        for start in range(0, len(uids), self._batch):
            chunk = uids[start : start + self._batch]
            fetched = await client.uid("fetch", ",".join(map(str, chunk)), "(UID RFC822)")
            if fetched.result != "OK":
                raise ImapError("fetch refused")
            messages = sorted(parse_fetch(fetched.lines))
            if not messages:
                continue
            intakes = [
                Intake(
                    raw=raw,
                    deliveries=[Delivery(mailbox.tenant_id, mailbox.address)],
                    source="imap",
                    envelope_to=[mailbox.address],
                    checkpoint=ImapCheckpoint(mailbox.address, uidvalidity, uid),
                )
                for uid, raw in messages
            ]
            # One transaction: the messages, their work-queue rows and the new checkpoint.
            async with self._pool.acquire() as conn, conn.transaction():
                if self._tenants is not None:
                    # Over the tenant's inbound rate: kept, and quarantined as rate_limited.
                    room = await self._tenants.inbound_room(mailbox.tenant_id, conn)
                    if room is not None:
                        for intake in intakes[room:]:
                            intake.hold_reason = "rate_limited"
                await self._writer.write_in(conn, intakes)
            if self._on_stored is not None:
                self._on_stored()

"""Mailboxes: registration (with the routing of their email and, optionally, an IMAP
account), routing changes (event-sourced, stream `email_mailbox/<tenant>/<address>`), and
the address registry the SMTP listener and the processor read.

IMAP passwords are stored only in the `mailboxes` table: no event, log line or API answer
carries them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from contactcenter.contracts.errors import AlreadyExists, NotFound
from contactcenter.contracts.events import registry
from contactcenter.contracts.streams import stream_id
from contactcenter.email.domain import (
    MailboxRegistered,
    MailboxState,
    Routing,
    check_address,
    check_routing,
    decide_routing,
    fold,
)
from contactcenter.eventstore import NO_STREAM, PgPool, PostgresEventStore

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImapSettings:
    host: str
    port: int
    username: str
    password: SecretStr
    use_tls: bool = True
    folder: str = "INBOX"

    def __repr__(self) -> str:  # never the password
        return f"ImapSettings({self.username}@{self.host}:{self.port}/{self.folder})"


@dataclass(frozen=True, slots=True)
class MailboxEntry:
    tenant_id: str
    address: str
    display_name: str | None
    routing: Routing


@dataclass(frozen=True, slots=True)
class ImapMailbox:
    tenant_id: str
    address: str
    imap: ImapSettings


def _view(state: MailboxState, create_time: str | None = None) -> dict[str, Any]:
    imap = None
    if state.imap_host:
        imap = {
            "host": state.imap_host,
            "port": state.imap_port,
            "username": state.imap_username,
            "use_tls": state.imap_use_tls,
            "folder": state.imap_folder,
        }
    return {
        "address": state.address,
        "display_name": state.display_name,
        "routing": state.routing.model_dump(mode="json"),
        "imap": imap,
        "create_time": create_time,
    }


class Mailboxes:
    def __init__(self, pool: PgPool, schema: str, store: PostgresEventStore) -> None:
        self._pool = pool
        self._store = store
        self._by_address: dict[str, MailboxEntry] = {}
        self.changed = asyncio.Event()
        s = '"' + schema.replace('"', '""') + '"'
        self._sql_owner = f"select tenant_id from {s}.mailboxes where address = $1"
        self._sql_insert = (
            f"insert into {s}.mailboxes (address, tenant_id, view, imap_password)"
            " values ($1, $2, $3::text::jsonb, $4)"
        )
        self._sql_update = (
            f"update {s}.mailboxes set view = $3::text::jsonb where address = $1 and tenant_id = $2"
        )
        self._sql_get = (
            f"select view::text as view, created_at from {s}.mailboxes"
            " where address = $1 and tenant_id = $2"
        )
        self._sql_list = (
            f"select view::text as view, created_at from {s}.mailboxes where tenant_id = $1"
            " and address > $2 order by address limit $3"
        )
        self._sql_all = f"select address, tenant_id, view::text as view from {s}.mailboxes"
        self._sql_imap = (
            f"select address, tenant_id, view::text as view, imap_password from {s}.mailboxes"
            " where view->'imap' is not null and view->>'imap' <> 'null'"
        )

    # --- registry (SMTP RCPT, processing) ----------------------------------------------------

    def lookup(self, address: str) -> MailboxEntry | None:
        return self._by_address.get(address.strip().lower())

    async def refresh(self) -> None:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_all)
        fresh = {}
        for r in rows:
            v = json.loads(r["view"])
            fresh[r["address"]] = MailboxEntry(
                r["tenant_id"], r["address"], v.get("display_name"), Routing(**v["routing"])
            )
        if fresh != self._by_address:
            self._by_address = fresh
            self.changed.set()

    async def run_refresh(self, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        """Other replicas register mailboxes too: re-read the registry now and then."""
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception as exc:
                _log.warning("mailbox registry refresh failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def imap_mailboxes(self) -> list[ImapMailbox]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_imap)
        out = []
        for r in rows:
            imap = json.loads(r["view"]).get("imap")
            if not imap:
                continue
            out.append(
                ImapMailbox(
                    r["tenant_id"],
                    r["address"],
                    ImapSettings(
                        host=imap["host"],
                        port=int(imap["port"]),
                        username=imap["username"],
                        password=SecretStr(r["imap_password"] or ""),
                        use_tls=bool(imap["use_tls"]),
                        folder=imap["folder"] or "INBOX",
                    ),
                )
            )
        return out

    # --- commands ----------------------------------------------------------------------------

    def _stream(self, tenant_id: str, address: str) -> str:
        return stream_id("email_mailbox", tenant_id, address)

    async def register(
        self,
        tenant_id: str,
        request_id: str,
        address: str,
        display_name: str | None,
        routing: Routing,
        imap: ImapSettings | None,
    ) -> Mapping[str, Any]:
        address = check_address(address)
        check_routing(routing)
        prior = await self._store.lookup_request(tenant_id, request_id)
        if prior is not None:
            return await self.get(tenant_id, address)
        event = MailboxRegistered(
            tenant_id=tenant_id,
            address=address,
            display_name=display_name or None,
            routing=routing,
            imap_host=imap.host if imap else None,
            imap_port=imap.port if imap else None,
            imap_username=imap.username if imap else None,
            imap_use_tls=imap.use_tls if imap else True,
            imap_folder=imap.folder if imap else "INBOX",
        )
        state = fold([event])
        assert state is not None
        async with self._pool.acquire() as conn, conn.transaction():
            owner = await conn.fetchval(self._sql_owner, address)
            if owner is not None:
                raise AlreadyExists(
                    f"mailbox {address} exists", resource_type="mailbox", resource_name=address
                )
            await self._store.append_in(
                conn,
                self._stream(tenant_id, address),
                [event],
                expected_version=NO_STREAM,
                request_id=request_id,
                command={"rpc": "RegisterMailbox", "address": address},
            )
            await conn.execute(
                self._sql_insert,
                address,
                tenant_id,
                json.dumps(_view(state)),
                imap.password.get_secret_value() if imap else None,
            )
        self._store.appended()
        self._by_address[address] = MailboxEntry(tenant_id, address, state.display_name, routing)
        self.changed.set()
        return await self.get(tenant_id, address)

    async def set_routing(
        self, tenant_id: str, request_id: str, address: str, routing: Routing
    ) -> Mapping[str, Any]:
        address = check_address(address)
        stream = self._stream(tenant_id, address)
        recorded = await self._store.read_stream(stream)
        state = fold(registry.decode(r.event_type, r.data) for r in recorded)
        if state is None:
            raise NotFound(
                f"mailbox {address} not found", resource_type="mailbox", resource_name=address
            )
        events = decide_routing(state, tenant_id, routing)
        if events:
            new_state = fold([*(registry.decode(r.event_type, r.data) for r in recorded), *events])
            assert new_state is not None
            async with self._pool.acquire() as conn, conn.transaction():
                result = await self._store.append_in(
                    conn,
                    stream,
                    events,
                    expected_version=len(recorded),
                    request_id=request_id,
                    command={"rpc": "SetMailboxRouting", "address": address},
                )
                if not result.replayed:
                    await conn.execute(
                        self._sql_update, address, tenant_id, json.dumps(_view(new_state))
                    )
            self._store.appended()
            self._by_address[address] = MailboxEntry(
                tenant_id, address, new_state.display_name, routing
            )
        return await self.get(tenant_id, address)

    async def get(self, tenant_id: str, address: str) -> Mapping[str, Any]:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_get, address.strip().lower(), tenant_id)
        if row is None:
            raise NotFound(
                f"mailbox {address} not found", resource_type="mailbox", resource_name=address
            )
        view: dict[str, Any] = json.loads(row["view"])
        view["create_time"] = row["created_at"]
        return view

    async def list(self, tenant_id: str, after: str, limit: int) -> list[Mapping[str, Any]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_list, tenant_id, after, limit)
        out = []
        for r in rows:
            v = json.loads(r["view"])
            v["create_time"] = r["created_at"]
            out.append(v)
        return out

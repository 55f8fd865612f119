"""Per-tenant intake limits: set with ConfigureTenant (an event in the store and the
`tenant_limits` row, one transaction), read by SMTP, IMAP and processing from memory.

Each process keeps every tenant's limits in memory and re-reads them every few seconds (other
replicas and the SMTP worker processes configure and read too), like the mailbox registry. A
tenant without settings has the service's configured limits (`limits`, `tenant_limits`).

The inbound rate is counted in the database (inbox rows of the tenant received in the last
minute), so every SMTP worker and replica sees the same count; only tenants with a rate limit
pay for the query.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence

from contactcenter.contracts.events import DomainEvent, registry
from contactcenter.contracts.streams import stream_id
from contactcenter.email.adapters.mime import Limits
from contactcenter.email.domain import TenantLimits, TenantLimitsSet, decide_limits, limits_of
from contactcenter.eventstore import PgConnection, PgPool, PostgresEventStore

_log = logging.getLogger(__name__)

#: The window of `max_inbound_per_minute`.
RATE_WINDOW_S = 60


class TenantSettings:
    def __init__(
        self,
        pool: PgPool,
        schema: str,
        store: PostgresEventStore | None,
        defaults: Callable[[str], Limits],
    ) -> None:
        self._pool = pool
        self._store = store
        self._defaults = defaults
        self._limits: dict[str, TenantLimits] = {}
        s = '"' + schema.replace('"', '""') + '"'
        self._sql_all = (
            "select tenant_id, max_message_bytes, max_attachment_bytes, max_attachments,"
            f" max_inbound_per_minute from {s}.tenant_limits"
        )
        self._sql_upsert = (
            f"insert into {s}.tenant_limits as o (tenant_id, max_message_bytes,"
            " max_attachment_bytes, max_attachments, max_inbound_per_minute, version)"
            " values ($1, $2, $3, $4, $5, $6) on conflict (tenant_id) do update set"
            " max_message_bytes = excluded.max_message_bytes,"
            " max_attachment_bytes = excluded.max_attachment_bytes,"
            " max_attachments = excluded.max_attachments,"
            " max_inbound_per_minute = excluded.max_inbound_per_minute,"
            " version = excluded.version, updated_at = now() where o.version < excluded.version"
        )
        self._sql_rate = (
            f"select count(*) from {s}.inbox where tenant_id = $1"
            f" and received_at > now() - interval '{RATE_WINDOW_S} seconds'"
        )

    # --- reads (SMTP, IMAP, processing) ------------------------------------------------------

    def default_limits(self, tenant_id: str) -> TenantLimits:
        """The service's configured limits for the tenant (no rate limit)."""
        d = self._defaults(tenant_id)
        return TenantLimits(d.max_message_bytes, d.max_attachment_bytes, d.max_attachments, 0)

    def tenant_limits(self, tenant_id: str) -> TenantLimits:
        return self._limits.get(tenant_id) or self.default_limits(tenant_id)

    def limits_for(self, tenant_id: str) -> Limits:
        """What parsing checks (the zip-bomb limits stay the service's)."""
        base = self._defaults(tenant_id)
        stored = self._limits.get(tenant_id)
        if stored is None:
            return base
        return dataclasses.replace(
            base,
            max_message_bytes=stored.max_message_bytes,
            max_attachment_bytes=stored.max_attachment_bytes,
            max_attachments=stored.max_attachments,
        )

    async def inbound_room(self, tenant_id: str, conn: PgConnection | None = None) -> int | None:
        """How many more messages the tenant may receive this minute (None: no limit)."""
        rate = self.tenant_limits(tenant_id).max_inbound_per_minute
        if rate <= 0:
            return None
        if conn is None:
            async with self._pool.acquire() as own:
                received: int = await own.fetchval(self._sql_rate, tenant_id)
        else:
            received = await conn.fetchval(self._sql_rate, tenant_id)
        return max(0, rate - received)

    async def refresh(self) -> None:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_all)
        self._limits = {
            r["tenant_id"]: TenantLimits(
                r["max_message_bytes"],
                r["max_attachment_bytes"],
                r["max_attachments"],
                r["max_inbound_per_minute"],
            )
            for r in rows
        }

    async def run_refresh(self, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception as exc:
                _log.warning("tenant limits refresh failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    # --- ConfigureTenant ---------------------------------------------------------------------

    async def configure(
        self, tenant_id: str, request_id: str, wanted: TenantLimits
    ) -> TenantLimits:
        """Set the tenant's limits; a retried request_id changes nothing and answers the
        limits as they are."""
        assert self._store is not None
        stream = stream_id("email_tenant", tenant_id, "limits")
        prior = await self._store.lookup_request(tenant_id, request_id)
        if prior is None:
            recorded = await self._store.read_stream(stream)
            current = None
            for r in recorded:
                decoded = registry.decode(r.event_type, r.data)
                if isinstance(decoded, TenantLimitsSet):
                    current = limits_of(decoded)
            events: Sequence[DomainEvent] = decide_limits(tenant_id, current, wanted)
            if events:
                async with self._pool.acquire() as conn, conn.transaction():
                    result = await self._store.append_in(
                        conn,
                        stream,
                        list(events),
                        expected_version=len(recorded),
                        request_id=request_id,
                        command={"rpc": "ConfigureTenant"},
                    )
                    if result.replayed:
                        return self.tenant_limits(tenant_id)
                    await conn.execute(
                        self._sql_upsert,
                        tenant_id,
                        wanted.max_message_bytes,
                        wanted.max_attachment_bytes,
                        wanted.max_attachments,
                        wanted.max_inbound_per_minute,
                        result.last_version,
                    )
                self._store.appended()
        await self.refresh()
        return self.tenant_limits(tenant_id)

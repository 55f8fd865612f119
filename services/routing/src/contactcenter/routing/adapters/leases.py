"""Presence leases in PostgreSQL (the service's own table, see migrations/0001).

Shared by every replica, so a heartbeat that reaches any of them keeps the agent's lease, and
the instance that owns the tenant expires it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contactcenter.contracts.errors import DomainError
from contactcenter.eventstore import PgPool
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.domain import Presence, SetAgentState

_log = logging.getLogger(__name__)

#: The reason code of a logout by lease expiry.
HEARTBEAT_LOST: Final = "heartbeat_lost"


@dataclass(frozen=True, slots=True)
class ExpiredLease:
    tenant_id: str
    agent_id: str
    expires_at: datetime


class PresenceLeases:
    def __init__(self, pool: PgPool, schema: str, ttl_s: float) -> None:
        self._pool = pool
        self.ttl_s = ttl_s
        t = f"{schema}.presence_leases"
        self._sql_renew = (
            f"insert into {t} (tenant_id, agent_id, expires_at) "
            "values ($1, $2, now() + make_interval(secs => $3)) "
            "on conflict (tenant_id, agent_id) do update set expires_at = excluded.expires_at"
        )
        self._sql_release = f"delete from {t} where tenant_id = $1 and agent_id = $2"
        self._sql_expired = (
            f"select tenant_id, agent_id, expires_at from {t} where expires_at < now() "
            "order by expires_at limit $1"
        )
        self._sql_extend_all = (
            f"update {t} set expires_at = now() + make_interval(secs => $1) "
            "where expires_at < now() + make_interval(secs => $1)"
        )
        # Only the lease that was seen expired: a renewal in between keeps the agent.
        self._sql_forget = (
            f"delete from {t} where tenant_id = $1 and agent_id = $2 and expires_at = $3"
        )

    async def renew(self, tenant_id: str, agent_id: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(self._sql_renew, tenant_id, agent_id, self.ttl_s)

    async def release(self, tenant_id: str, agent_id: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(self._sql_release, tenant_id, agent_id)

    async def expired(self, limit: int = 500) -> list[ExpiredLease]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_expired, limit)
        return [ExpiredLease(r["tenant_id"], r["agent_id"], r["expires_at"]) for r in rows]

    async def extend_all(self) -> int:
        """Give every lease at least one whole period from now; returns how many."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(self._sql_extend_all, self.ttl_s)
        return int(status.split()[-1])

    async def forget(self, lease: ExpiredLease) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(self._sql_forget, lease.tenant_id, lease.agent_id, lease.expires_at)


class LeaseSweeper:
    """The background loop that logs off the agents whose lease ran out (owned tenants only:
    the owner decides, the others leave the lease to it)."""

    def __init__(
        self, application: RoutingApplication, leases: PresenceLeases, *, interval_s: float
    ) -> None:
        self._app = application
        self._leases = leases
        self._interval_s = interval_s

    async def run(self, stop: asyncio.Event) -> None:
        # While this instance was starting, the desktops whose tenants it owns had nobody to
        # renew their leases with (and their gRPC channels reconnect with a backoff of
        # seconds): every lease gets one whole period from now to come back, rather than
        # logging agents off in the first seconds after a restart.
        try:
            extended = await self._leases.extend_all()
            if extended:
                _log.info("%d presence leases extended at start-up", extended)
        except Exception:
            _log.exception("extending the presence leases at start-up failed")
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                _log.exception("presence lease sweep failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await stop.wait()

    async def sweep(self) -> int:
        """Log off every owned agent whose lease expired; returns how many were logged off."""
        logged_off = 0
        for lease in await self._leases.expired():
            if not self._app.owns(lease.tenant_id):
                continue
            agent_id = lease.agent_id
            view = await self._app.query(lease.tenant_id, lambda e, a=agent_id: e.agent(a))
            if view is not None and view.presence is not Presence.OFFLINE:
                command = SetAgentState(
                    agent_id=agent_id, presence=Presence.OFFLINE, reason_code=HEARTBEAT_LOST
                )
                try:
                    await self._app.execute(
                        lease.tenant_id,
                        command,
                        request_id=f"lease:{agent_id}:{lease.expires_at.isoformat()}",
                    )
                    logged_off += 1
                    _log.info(
                        "agent %s of tenant %s logged off: no heartbeat", agent_id, lease.tenant_id
                    )
                except DomainError as error:
                    _log.warning("lease of agent %s not expired: %s", agent_id, error)
                    continue
            await self._leases.forget(lease)
        return logged_off

"""The timer loop: fires every loaded tenant's due timers (offer expiry, wrap-up end, policy
steps, maximum waits) at the engine's `next_timer_at()`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from contactcenter.contracts.events import utc_now
from contactcenter.routing.application.service import RoutingApplication

_log = logging.getLogger(__name__)


class TimerLoop:
    def __init__(
        self,
        application: RoutingApplication,
        *,
        clock: Callable[[], datetime] = utc_now,
        max_sleep_s: float = 1.0,
    ) -> None:
        self._app = application
        self._clock = clock
        self._max_sleep_s = max_sleep_s

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: sleep until the earliest timer (or a command changed them), fire."""
        changed = self._app.timers_changed
        while not stop.is_set():
            changed.clear()
            await self.fire_due()
            delay = self._max_sleep_s
            earliest = self._earliest()
            if earliest is not None:
                delay = max(0.0, min(delay, (earliest - self._clock()).total_seconds()))
            if delay > 0:
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changed.wait())]
                try:
                    await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waits:
                        waiter.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await waiter

    async def fire_due(self) -> int:
        """Advance every tenant whose next timer is due; returns how many were advanced."""
        now = self._clock()
        fired = 0
        for tenant_id in self._app.loaded_tenants():
            due = self._app.next_timer_at(tenant_id)
            if due is None or due > now:
                continue
            try:
                await self._app.advance(tenant_id, now)
                fired += 1
            except Exception:
                # One tenant's failure (a lost database connection) never stops the others;
                # its engine was dropped and is rebuilt, timers included, on next use.
                _log.exception("timers of tenant %s failed", tenant_id)
        return fired

    def _earliest(self) -> datetime | None:
        times = [
            due
            for tenant_id in self._app.loaded_tenants()
            if (due := self._app.next_timer_at(tenant_id)) is not None
        ]
        return min(times, default=None)

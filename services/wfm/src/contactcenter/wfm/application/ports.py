"""What the application needs from outside: interval history (reporting)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from contactcenter.wfm.domain.forecast import IntervalActual


class IntervalHistory(Protocol):
    async def history(
        self,
        tenant_id: str,
        queue_ids: Sequence[str],
        start: datetime,
        end: datetime,
        interval_minutes: int,
    ) -> list[IntervalActual]:
        """Reporting's interval records of the queues over [start, end), oldest first."""
        ...

"""What the application needs from the outside, as protocols (implemented in projections/)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from contactcenter.interactions.domain import PreviousContact


class PreviousContacts(Protocol):
    """Earlier contacts of a customer profile (the FCR lookup)."""

    async def previous_contacts(
        self, tenant_id: str, profile_id: str, *, since: datetime, until: datetime
    ) -> Sequence[PreviousContact]:
        """Contacts of `profile_id` created in [since, until), newest first."""
        ...

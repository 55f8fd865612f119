"""First-contact resolution (FCR): is a new contact a repeat of an earlier one?

A contact is a *repeat* when the same customer profile made another contact within the last
`window_days` days before it: the customer's issue was evidently not resolved the first time.
It is marked a repeat of the most recent such contact (`InteractionMarkedRepeat`), so FCR is
"contacts not followed by a repeat within the window" and repeat chains can be followed back.

The window is measured between creation times and is inclusive: a contact exactly
`window_days` days after the earlier one is a repeat, one millisecond later it is not. Only
contacts created strictly before the new one count (simultaneous contacts are not repeats of
each other). By default only *handled* earlier contacts count (one that an agent connected to,
or that was completed, e.g. self-service): a caller who abandoned and calls back is retrying,
not repeating. A policy can also require the same intent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from contactcenter.interactions.domain.commands import MarkRepeat

DEFAULT_WINDOW_DAYS: Final = 7
MAX_WINDOW_DAYS: Final = 365


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviousContact:
    """An earlier contact of the same customer profile (from a projection of this service)."""

    interaction_id: str
    created_at: datetime
    #: An agent connected to it, or it was completed (not abandoned or failed).
    handled: bool = True
    intent: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RepeatPolicy:
    """A tenant's FCR rule. `window_days` 0 turns repeat detection off."""

    window_days: int = DEFAULT_WINDOW_DAYS
    handled_only: bool = True
    same_intent_only: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.window_days <= MAX_WINDOW_DAYS:
            raise ValueError(f"window_days must be between 0 and {MAX_WINDOW_DAYS}")

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)


def find_repeat_of(
    *,
    interaction_id: str,
    created_at: datetime,
    previous: Iterable[PreviousContact],
    policy: RepeatPolicy,
    intent: str | None = None,
) -> PreviousContact | None:
    """The earlier contact that the contact (`interaction_id`, created at `created_at`)
    repeats, or None. The most recent qualifying one wins; ties go to the larger id so the
    answer does not depend on the order of `previous`."""
    if policy.window_days == 0:
        return None
    contacts = tuple(previous)
    if created_at.utcoffset() is None or any(c.created_at.utcoffset() is None for c in contacts):
        raise ValueError("find_repeat_of needs timezone-aware datetimes")
    best: PreviousContact | None = None
    for contact in contacts:
        if contact.interaction_id == interaction_id:
            continue
        elapsed = created_at - contact.created_at
        if not timedelta(0) < elapsed <= policy.window:
            continue
        if policy.handled_only and not contact.handled:
            continue
        if policy.same_intent_only and (intent is None or contact.intent != intent):
            continue
        if best is None or (contact.created_at, contact.interaction_id) > (
            best.created_at,
            best.interaction_id,
        ):
            best = contact
    return best


def repeat_command(
    *,
    interaction_id: str,
    created_at: datetime,
    previous: Iterable[PreviousContact],
    policy: RepeatPolicy,
    intent: str | None = None,
) -> MarkRepeat | None:
    """The MarkRepeat command to send when the contact is a repeat, else None."""
    match = find_repeat_of(
        interaction_id=interaction_id,
        created_at=created_at,
        previous=previous,
        policy=policy,
        intent=intent,
    )
    if match is None:
        return None
    return MarkRepeat(
        repeat_of_interaction_id=match.interaction_id,
        previous_created_at=match.created_at,
        window_days=policy.window_days,
    )

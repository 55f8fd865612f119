"""First-contact resolution: the repeat-contact policy at the edges of its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contactcenter.interactions.domain import (
    InteractionState,
    MarkRepeat,
    PreviousContact,
    RepeatPolicy,
    find_repeat_of,
    repeat_command,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
WEEK = RepeatPolicy(window_days=7)


def contact(iid: str, ago: timedelta, *, handled: bool = True, intent: str | None = None) -> Any:
    return PreviousContact(interaction_id=iid, created_at=NOW - ago, handled=handled, intent=intent)


def repeat_of(*previous: PreviousContact, policy: RepeatPolicy = WEEK, **kw: Any) -> str | None:
    found = find_repeat_of(
        interaction_id="i-new", created_at=NOW, previous=previous, policy=policy, **kw
    )
    return None if found is None else found.interaction_id


@pytest.mark.parametrize(
    ("ago", "is_repeat"),
    [
        (timedelta(days=7), True),  # exactly on the edge: inclusive
        (timedelta(days=7) - MS, True),
        (timedelta(days=7) + MS, False),
        (timedelta(days=30), False),
        (MS, True),
        (timedelta(0), False),  # simultaneous contacts do not repeat each other
        (-timedelta(hours=1), False),  # a later contact is not an earlier one
    ],
    ids=["7d", "7d-1ms", "7d+1ms", "30d", "1ms", "same-instant", "future"],
)
def test_window_edges(ago: timedelta, is_repeat: bool) -> None:
    assert (repeat_of(contact("i-old", ago)) == "i-old") is is_repeat


def test_the_most_recent_earlier_contact_wins_whatever_the_order() -> None:
    a = contact("i-a", timedelta(days=6))
    b = contact("i-b", timedelta(days=1))
    c = contact("i-c", timedelta(days=3))
    assert repeat_of(a, b, c) == repeat_of(c, b, a) == "i-b"
    # same instant: the larger id, so the answer is deterministic
    d = contact("i-d", timedelta(days=1))
    assert repeat_of(b, d) == repeat_of(d, b) == "i-d"


def test_the_contact_itself_is_ignored() -> None:
    itself = PreviousContact(interaction_id="i-new", created_at=NOW - timedelta(hours=1))
    assert repeat_of(itself) is None


def test_only_handled_contacts_count_by_default() -> None:
    abandoned = contact("i-abandoned", timedelta(hours=1), handled=False)
    handled = contact("i-handled", timedelta(days=2))
    assert repeat_of(abandoned) is None
    assert repeat_of(abandoned, handled) == "i-handled"
    everything = RepeatPolicy(window_days=7, handled_only=False)
    assert repeat_of(abandoned, handled, policy=everything) == "i-abandoned"


def test_same_intent_policy() -> None:
    billing = contact("i-billing", timedelta(days=1), intent="billing")
    tech = contact("i-tech", timedelta(hours=2), intent="tech")
    policy = RepeatPolicy(window_days=7, same_intent_only=True)
    assert repeat_of(billing, tech, policy=policy, intent="billing") == "i-billing"
    assert repeat_of(billing, tech, policy=policy, intent="sales") is None
    assert repeat_of(billing, tech, policy=policy) is None  # an unknown intent matches nothing
    assert repeat_of(billing, tech, intent="sales") == "i-tech"  # the default ignores intent


def test_window_zero_turns_detection_off() -> None:
    off = RepeatPolicy(window_days=0)
    assert repeat_of(contact("i-old", MS), policy=off) is None


@pytest.mark.parametrize("days", [-1, 366])
def test_window_bounds(days: int) -> None:
    with pytest.raises(ValueError, match="window_days"):
        RepeatPolicy(window_days=days)


def test_one_day_window() -> None:
    day = RepeatPolicy(window_days=1)
    assert repeat_of(contact("i-old", timedelta(hours=24)), policy=day) == "i-old"
    assert repeat_of(contact("i-old", timedelta(hours=24) + MS), policy=day) is None


def test_naive_times_are_refused() -> None:
    naive = PreviousContact(interaction_id="i-old", created_at=datetime(2026, 3, 9))
    with pytest.raises(ValueError, match="timezone-aware"):
        find_repeat_of(interaction_id="i-new", created_at=NOW, previous=[naive], policy=WEEK)


def test_the_policy_gives_the_command_that_marks_the_interaction(reach: Any) -> None:
    story = reach(InteractionState.QUEUED)
    created = story.interaction.created_at
    earlier = PreviousContact(interaction_id="i-0", created_at=created - timedelta(days=3))
    command = repeat_command(
        interaction_id="i-1", created_at=created, previous=[earlier], policy=WEEK
    )
    assert command == MarkRepeat(
        repeat_of_interaction_id="i-0", previous_created_at=earlier.created_at, window_days=7
    )
    event = story.when(command)[0]
    assert event.event_type == "interactions.InteractionMarkedRepeat.v1"
    assert story.interaction.repeat is not None
    assert story.interaction.repeat.repeat_of_interaction_id == "i-0"
    assert (
        repeat_command(interaction_id="i-1", created_at=created, previous=[], policy=WEEK) is None
    )

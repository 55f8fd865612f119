"""`evolve` gives `decide`'s events and the interaction that folding them gives."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contactcenter.interactions.domain import (
    AddNote,
    Channel,
    CreateInteraction,
    End,
    EndedBy,
    Hold,
    Interaction,
    InteractionState,
    Offer,
    evolve,
)
from contactcenter.interactions.domain.events import InteractionOffered


@pytest.mark.parametrize(
    ("start", "command"),
    [
        (InteractionState.CONNECTED, Hold(agent_id="a-1")),
        (InteractionState.CONNECTED, End(ended_by=EndedBy.AGENT)),
        (InteractionState.QUEUED, End(ended_by=EndedBy.SYSTEM)),
        (InteractionState.COMPLETED, AddNote(note_id="n-1", author_id="s-1", text="late note")),
    ],
)
def test_evolve_matches_the_fold(reach, start, command) -> None:
    story = reach(start)
    story.clock += timedelta(seconds=7)
    events, after = evolve(story.interaction, command, story.context())
    assert events
    assert after == Interaction.from_events([*story.history, *events])


def test_evolve_on_creation_and_without_events(reach, story) -> None:
    create = CreateInteraction(interaction_id="i-9", channel=Channel.CHAT)
    events, created = evolve(None, create, story.context())
    assert created == Interaction.from_events(events)

    offered = reach(InteractionState.OFFERED)
    last = offered.history[-1]
    assert isinstance(last, InteractionOffered)
    again = Offer(offer_id=last.offer_id, agent_id=last.agent_id)
    nothing, unchanged = evolve(offered.interaction, again, offered.context())
    assert nothing == [] and unchanged == offered.interaction

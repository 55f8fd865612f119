"""An acting agent named on a command must be on the interaction, in every state."""

from __future__ import annotations

import pytest

from contactcenter.contracts.errors import FailedPrecondition
from contactcenter.interactions.domain import End, EndedBy, InteractionState


@pytest.mark.parametrize("start", [InteractionState.CREATED, InteractionState.QUEUED])
def test_an_agent_not_on_the_interaction_cannot_end_it(reach, start) -> None:
    story = reach(start)
    with pytest.raises(FailedPrecondition) as refused:
        story.when(End(ended_by=EndedBy.AGENT, agent_id="a-9"))
    assert refused.value.current_state == start.value
    # Without an acting agent (the system, a supervisor) it closes.
    story.when(End(ended_by=EndedBy.SYSTEM))
    assert story.interaction.state is InteractionState.COMPLETED


def test_the_agent_on_the_interaction_ends_it(reach) -> None:
    story = reach(InteractionState.CONNECTED)
    story.when(End(ended_by=EndedBy.AGENT, agent_id=story.AGENT), after=30)
    assert story.interaction.state is InteractionState.WRAP_UP

"""Given events / when command / then events, for the pure interactions domain.

Test modules are imported with `--import-mode=importlib`, so they cannot import this file:
they get the harness through the `story` and `reach` fixtures and share the constants below
as attributes of `Story` (e.g. `Story.AGENT`).

`Story` keeps an interaction's history and a fake clock; `story.when(command, after=s)` moves
the clock by `s` seconds, decides, and appends the new events to the history (a refused
command raises and appends nothing). `reach(state)` gives a story whose history puts the
interaction in `state` by the usual path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from contactcenter.interactions.domain import (
    Abandon,
    Assign,
    Channel,
    Command,
    CommandContext,
    Complete,
    Connect,
    CreateInteraction,
    End,
    EndedBy,
    Fail,
    Hold,
    Interaction,
    InteractionEvent,
    InteractionState,
    Offer,
    QueueTarget,
    SkillRequirement,
    decide,
)
from contactcenter.interactions.domain.events import WrapUpEnded

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
TENANT = "t-acme"
IID = "i-1"
AGENT = "a-1"
OTHER_AGENT = "a-2"
QUEUE = "q-support"
OFFER = "o-1"


class Story:
    T0 = T0
    TENANT = TENANT
    IID = IID
    AGENT = AGENT
    OTHER_AGENT = OTHER_AGENT
    QUEUE = QUEUE
    OFFER = OFFER

    def __init__(self) -> None:
        self.history: list[InteractionEvent] = []
        self.clock = T0

    @property
    def state(self) -> Interaction | None:
        return Interaction.from_events(self.history) if self.history else None

    @property
    def interaction(self) -> Interaction:
        state = self.state
        assert state is not None
        return state

    def context(self, tenant_id: str = TENANT) -> CommandContext:
        return CommandContext(tenant_id=tenant_id, now=self.clock)

    def when(self, command: Command, after: float = 0) -> list[InteractionEvent]:
        self.clock += timedelta(seconds=after)
        events = decide(self.state, command, self.context())
        self.history.extend(events)
        return events

    def given_event(self, factory: Callable[..., InteractionEvent], **fields: object) -> None:
        """Append an event directly (a fact recorded earlier), at the story's clock."""
        self.history.append(
            factory(tenant_id=TENANT, interaction_id=IID, occurred_at=self.clock, **fields)
        )


def create(channel: Channel = Channel.VOICE, *, queue: bool = False) -> CreateInteraction:
    return CreateInteraction(
        interaction_id=IID,
        channel=channel,
        customer_profile_id="p-1",
        customer_address="+14155550100",
        entry_point="+18005550199",
        language="en",
        intent="billing",
        attributes={"ivr_path": "1-2"},
        external_ref="sip-call-1@gw",
        queue=(
            QueueTarget(
                queue_id=QUEUE,
                priority=10,
                required_skills=(SkillRequirement(skill="billing", min_proficiency=3),),
            )
            if queue
            else None
        ),
    )


#: How each state is reached: the commands, each with the seconds since the previous one.
PATHS: dict[InteractionState, list[tuple[float, Command]]] = {}
PATHS[InteractionState.CREATED] = [(0, create())]
PATHS[InteractionState.QUEUED] = [(0, create(queue=True))]
PATHS[InteractionState.OFFERED] = [
    *PATHS[InteractionState.QUEUED],
    (20, Offer(offer_id=OFFER, agent_id=AGENT, queue_id=QUEUE)),
]
PATHS[InteractionState.ASSIGNED] = [
    *PATHS[InteractionState.OFFERED],
    (4, Assign(agent_id=AGENT, offer_id=OFFER)),
]
PATHS[InteractionState.CONNECTED] = [
    *PATHS[InteractionState.ASSIGNED],
    (1, Connect(agent_id=AGENT)),
]
PATHS[InteractionState.ON_HOLD] = [
    *PATHS[InteractionState.CONNECTED],
    (60, Hold(agent_id=AGENT)),
]
PATHS[InteractionState.WRAP_UP] = [
    *PATHS[InteractionState.CONNECTED],
    (120, End(ended_by=EndedBy.CUSTOMER, reason="customer_hangup")),
]
PATHS[InteractionState.COMPLETED] = [
    *PATHS[InteractionState.WRAP_UP],
    (30, Complete(disposition_codes=("resolved",), agent_id=AGENT)),
]
PATHS[InteractionState.ABANDONED] = [
    *PATHS[InteractionState.QUEUED],
    (45, Abandon(reason="customer_hangup")),
]
PATHS[InteractionState.FAILED] = [
    *PATHS[InteractionState.QUEUED],
    (5, Fail(failure_code="media_setup_failed")),
]


def reach(state: InteractionState, channel: Channel = Channel.VOICE) -> Story:
    story = Story()
    if state is InteractionState.ENDED:
        # Only ever seen between two events of one append (WrapUpEnded, then Completed):
        # given the first as a recorded fact.
        story = reach(InteractionState.WRAP_UP, channel)
        story.clock += timedelta(seconds=30)
        story.given_event(WrapUpEnded, agent_id=AGENT, wrap_up_ms=30_000)
        assert story.interaction.state is InteractionState.ENDED
        return story
    for after, command in PATHS[state]:
        if isinstance(command, CreateInteraction) and channel is not Channel.VOICE:
            command = CreateInteraction(
                interaction_id=command.interaction_id,
                channel=channel,
                queue=command.queue,
                customer_profile_id=command.customer_profile_id,
            )
        story.when(command, after=after)
    assert story.interaction.state is state
    return story


@pytest.fixture
def story() -> Story:
    return Story()


@pytest.fixture(name="reach")
def reach_fixture() -> Callable[..., Story]:
    return reach

"""Given events / when command / then events, for the pure routing engine.

Test modules are imported with `--import-mode=importlib`, so they cannot import this file:
they get the harness through the `desk` fixture (and `Desk` constants such as `Desk.T0`).

`Desk` wraps one tenant's engine and a fake clock. `desk.when(command, after=s)` moves the
clock by `s` seconds, executes, records the events (timer events that fired on the way too)
and returns them; a refused command raises after the timer events were recorded, as an
adapter would append them. Shorthands configure queues and agents with test defaults
(wrap-up 0, offer timeout 15 s) and queue contacts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from contactcenter.routing.domain import (
    AcceptOffer,
    Channel,
    Command,
    CommandContext,
    ConfigureAgent,
    ConfigurePolicy,
    ConfigureQueue,
    Presence,
    QueueContact,
    RoutingEngine,
    RoutingEvent,
    SetAgentState,
    StepSpec,
    Tick,
)
from contactcenter.routing.domain.events import OfferIssued

E = TypeVar("E", bound=RoutingEvent)

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
TENANT = "t-acme"


class Desk:
    T0 = T0
    TENANT = TENANT

    def __init__(self) -> None:
        self.engine = RoutingEngine(TENANT)
        self.clock = T0
        self.history: list[RoutingEvent] = []

    def context(self) -> CommandContext:
        return CommandContext(now=self.clock)

    def when(self, command: Command, after: float = 0) -> list[RoutingEvent]:
        self.clock += timedelta(seconds=after)
        outcome = self.engine.execute(command, self.context())
        self.history.extend(outcome.events)
        outcome.raise_error()
        return outcome.events

    def tick(self, after: float) -> list[RoutingEvent]:
        return self.when(Tick(), after=after)

    def at(self, seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    # --- shorthands ------------------------------------------------------------------------------

    def queue(self, queue_id: str = "q1", **fields: Any) -> list[RoutingEvent]:
        fields.setdefault("wrap_up_s", 0)
        fields.setdefault("offer_timeout_s", 15)
        return self.when(ConfigureQueue(queue_id=queue_id, **fields))

    def policy(self, policy_id: str, *steps: StepSpec) -> list[RoutingEvent]:
        return self.when(ConfigurePolicy(policy_id=policy_id, steps=steps))

    def agent(
        self,
        agent_id: str,
        *,
        queues: Iterable[str] = ("q1",),
        available: bool = True,
        after: float = 0,
        **fields: Any,
    ) -> list[RoutingEvent]:
        events = self.when(
            ConfigureAgent(agent_id=agent_id, queues=tuple(queues), **fields), after=after
        )
        if available:
            events += self.available(agent_id)
        return events

    def available(self, agent_id: str, after: float = 0) -> list[RoutingEvent]:
        return self.when(SetAgentState(agent_id=agent_id, presence=Presence.AVAILABLE), after)

    def away(self, agent_id: str, after: float = 0, reason: str = "break") -> list[RoutingEvent]:
        return self.when(
            SetAgentState(agent_id=agent_id, presence=Presence.AWAY, reason_code=reason), after
        )

    def contact(
        self,
        interaction_id: str,
        queue_id: str = "q1",
        channel: Channel = Channel.VOICE,
        after: float = 0,
        **fields: Any,
    ) -> list[RoutingEvent]:
        return self.when(
            QueueContact(
                interaction_id=interaction_id, queue_id=queue_id, channel=channel, **fields
            ),
            after=after,
        )

    def offer_of(self, interaction_id: str) -> OfferIssued:
        """The latest offer of the interaction."""
        for event in reversed(self.history):
            if isinstance(event, OfferIssued) and event.interaction_id == interaction_id:
                return event
        raise AssertionError(f"no offer for {interaction_id}")

    def accept(self, interaction_id: str, after: float = 0) -> list[RoutingEvent]:
        offer = self.offer_of(interaction_id)
        return self.when(AcceptOffer(offer_id=offer.offer_id, agent_id=offer.agent_id), after)

    def offered_to(self, events: Iterable[RoutingEvent]) -> dict[str, str]:
        """interaction -> agent for the offers among `events`."""
        return {e.interaction_id: e.agent_id for e in events if isinstance(e, OfferIssued)}


def of(events: Iterable[RoutingEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def kinds(events: Iterable[RoutingEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


@pytest.fixture
def desk() -> Desk:
    return Desk()


@pytest.fixture(name="of")
def of_fixture() -> Any:
    return of


@pytest.fixture(name="kinds")
def kinds_fixture() -> Any:
    return kinds

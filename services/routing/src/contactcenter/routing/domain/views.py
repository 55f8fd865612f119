"""Read-only views of the routing state, for queries (gRPC snapshots, agent desktops, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contactcenter.routing.domain.state import (
    Agent,
    Contact,
    ContactStatus,
    Queue,
    RoutingState,
    WorkStatus,
)
from contactcenter.routing.domain.values import AgentState, Channel, Presence, from_ms


@dataclass(frozen=True, slots=True)
class WorkView:
    interaction_id: str
    queue_id: str
    channel: Channel
    cost: int
    status: WorkStatus
    since: datetime
    offer_id: str | None
    wrap_up_until: datetime | None


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    state: AgentState
    presence: Presence
    reason_code: str | None
    load: int
    capacity: int
    #: Channels the agent has room for now (empty unless AVAILABLE).
    ready_channels: frozenset[Channel]
    idle_since: datetime
    contacts_today: int
    work: tuple[WorkView, ...]
    skills: dict[str, int]
    languages: tuple[str, ...]
    queues: tuple[str, ...]
    groups: tuple[str, ...]
    channels: frozenset[Channel]
    interruptible_channels: frozenset[Channel]
    channel_costs: dict[Channel, int]
    #: Contacts waiting for this agent in particular.
    preferred_waiting: int

    def fits(self, channel: Channel) -> bool:
        return channel in self.ready_channels


@dataclass(frozen=True, slots=True)
class ContactView:
    interaction_id: str
    queue_id: str
    channel: Channel
    status: ContactStatus
    priority: int
    step: int
    #: Requirements at the current step: (skill, minimum proficiency), and the language.
    requirements: tuple[tuple[str, int], ...]
    language: str | None
    first_enqueued_at: datetime
    entered_queue_at: datetime
    preferred_agent_id: str | None
    in_preferred_phase: bool
    returned_to_front: bool
    declined_by: frozenset[str]
    offer_id: str | None
    agent_id: str | None
    overflow_hops: int


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    queue_id: str
    config_version: int
    waiting: int
    offered: int
    #: Waiting per policy step (index = step); contacts in their preferred phase apart.
    waiting_by_step: tuple[int, ...]
    waiting_for_preferred: int
    #: The longest time in this queue of a waiting contact (0 when none).
    longest_wait_ms: int
    #: Agents serving the queue, and those with room for each channel now.
    agents: int
    ready_agents: dict[Channel, int]
    answered: int
    answered_within_sl: int
    abandoned: int
    exited: int
    overflowed_in: int
    overflowed_out: int

    @property
    def service_level(self) -> float | None:
        """Answered within the threshold over answered (None before the first answer)."""
        return self.answered_within_sl / self.answered if self.answered else None


def agent_view(agent: Agent, now: int) -> AgentView:
    config = agent.config
    return AgentView(
        agent_id=agent.id,
        state=agent.state,
        presence=agent.presence,
        reason_code=agent.reason_code,
        load=agent.load,
        capacity=agent.capacity,
        ready_channels=frozenset(Channel(c) for c in agent.ready),
        idle_since=from_ms(agent.idle_since),
        contacts_today=agent.contacts_today(now),
        work=tuple(
            WorkView(
                interaction_id=item.interaction_id,
                queue_id=item.queue_id,
                channel=Channel(item.channel),
                cost=item.cost,
                status=item.status,
                since=from_ms(item.since),
                offer_id=item.offer_id,
                wrap_up_until=None if item.wrap_up_until is None else from_ms(item.wrap_up_until),
            )
            for item in agent.items.values()
        ),
        skills=dict(agent.skills),
        languages=config.languages if config else (),
        queues=config.queues if config else (),
        groups=config.groups if config else (),
        channels=frozenset(Channel(c) for c in agent.channels),
        interruptible_channels=frozenset(Channel(c) for c in agent.interruptible),
        channel_costs={Channel(c): cost for c, cost in agent.costs.items()},
        preferred_waiting=len(agent.preferred) if agent.preferred else 0,
    )


def contact_view(contact: Contact) -> ContactView:
    offer = contact.offer
    return ContactView(
        interaction_id=contact.iid,
        queue_id=contact.queue.id,
        channel=Channel(contact.channel),
        status=contact.status,
        priority=contact.priority,
        step=contact.step,
        requirements=contact.reqs,
        language=contact.lang,
        first_enqueued_at=from_ms(contact.first),
        entered_queue_at=from_ms(contact.entered),
        preferred_agent_id=contact.preferred_id,
        in_preferred_phase=contact.in_preferred,
        returned_to_front=contact.returned,
        declined_by=frozenset(contact.declined or ()),
        offer_id=None if offer is None else offer.offer_id,
        agent_id=None if offer is None else offer.agent.id,
        overflow_hops=contact.hops,
    )


def queue_snapshot(state: RoutingState, queue: Queue) -> QueueSnapshot:
    by_step = [0] * len(queue.buckets)
    preferred = offered = 0
    longest = 0
    for contact in queue.contacts.values():
        if contact.status is ContactStatus.OFFERED:
            offered += 1
            continue
        longest = max(longest, state.now - contact.entered)
        if contact.in_preferred:
            preferred += 1
        else:
            by_step[contact.step] += 1
    members = sum(1 for agent in state.agents.values() if queue.id in agent.queue_set)
    return QueueSnapshot(
        queue_id=queue.id,
        config_version=queue.config.config_version,
        waiting=sum(by_step) + preferred,
        offered=offered,
        waiting_by_step=tuple(by_step),
        waiting_for_preferred=preferred,
        longest_wait_ms=longest,
        agents=members,
        ready_agents={
            channel: len(state.ready_q.get((queue.id, channel.value), ())) for channel in Channel
        },
        answered=queue.answered,
        answered_within_sl=queue.answered_in_sl,
        abandoned=queue.abandoned,
        exited=queue.exited,
        overflowed_in=queue.overflowed_in,
        overflowed_out=queue.overflowed_out,
    )

"""Queue, agent and policy administration: whole-configuration events with versions,
idempotent upserts, field-named validation, and re-matching when configuration changes."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from contactcenter.contracts.errors import ValidationFailed
from contactcenter.routing.domain import (
    Channel,
    ConfigureAgent,
    ConfigureQueue,
    MaxWaitAction,
    OfferCancelReason,
    QueueContact,
    RoutingEvent,
    SelectionStrategy,
    SkillRequirement,
    Trigger,
)
from contactcenter.routing.domain.events import (
    AgentConfigured,
    OfferCancelled,
    OfferIssued,
    QueueConfigured,
)

E = TypeVar("E", bound=RoutingEvent)


def of(events: list[RoutingEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def fields_of(error: ValidationFailed) -> list[str]:
    return sorted(v.field for v in error.field_violations)


def test_a_queue_configuration_is_recorded_whole(desk: Any) -> None:
    (configured,) = desk.when(
        ConfigureQueue(
            queue_id="billing",
            name="Billing",
            channels=(Channel.VOICE, Channel.CHAT),
            required_skills={"billing": 3, "any": 0},
            language="en",
            sl_target_percent=80,
            sl_threshold_s=20,
            strategy=SelectionStrategy.MOST_SKILLED,
        )
    )
    assert isinstance(configured, QueueConfigured)
    assert configured.config_version == 1
    assert configured.channels == (Channel.VOICE, Channel.CHAT)
    # Requirements are sorted; 0 ("any level") is recorded as 1.
    assert configured.required_skills == (
        SkillRequirement(skill="any", min_proficiency=1),
        SkillRequirement(skill="billing", min_proficiency=3),
    )
    again = desk.when(
        ConfigureQueue(
            queue_id="billing",
            name="Billing",
            channels=(Channel.VOICE, Channel.CHAT),
            required_skills={"billing": 3, "any": 0},
            language="en",
            strategy=SelectionStrategy.MOST_SKILLED,
        )
    )
    assert again == []  # the same configuration: nothing to record
    (changed,) = desk.when(ConfigureQueue(queue_id="billing", sl_threshold_s=30))
    assert changed.config_version == 2


def test_an_agent_configuration_is_recorded_whole(desk: Any) -> None:
    (configured,) = desk.when(
        ConfigureAgent(
            agent_id="a1",
            skills={"billing": 4},
            languages=("en", "fr"),
            queues=("q1",),
            channels=(Channel.CHAT, Channel.VOICE),
            channel_costs={Channel.CHAT: 15},
            time_zone="Europe/Paris",
        )
    )
    assert isinstance(configured, AgentConfigured)
    assert configured.channel_costs == {Channel.CHAT: 15, Channel.VOICE: 60}
    assert configured.interruptible_channels == (Channel.EMAIL,)
    assert desk.engine.agent("a1").state.value == "offline"


def test_queue_validation_names_every_bad_field(desk: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        desk.when(
            ConfigureQueue(
                queue_id="bad id",
                channels=(),
                required_skills={"billing": 6},
                language="english!",
                sl_target_percent=0,
                sl_threshold_s=0,
                priority=101,
                max_wait_s=0,
                max_wait_action=MaxWaitAction.OVERFLOW,
                offer_timeout_s=0,
                wrap_up_s=-1,
            )
        )
    assert fields_of(refused.value) == [
        "channels",
        "language",
        "max_wait_s",
        "offer_timeout_s",
        "overflow_queue_id",
        "priority",
        "queue_id",
        "required_skills[billing]",
        "sl_target_percent",
        "sl_threshold_s",
        "wrap_up_s",
    ]


def test_agent_validation_names_every_bad_field(desk: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        desk.when(
            ConfigureAgent(
                agent_id="",
                skills={"billing": 0},
                languages=("??",),
                queues=("q1", "q1"),
                channels=(Channel.VOICE,),
                capacity=0,
                interruptible_channels=(Channel.VOICE,),
                time_zone="Mars/Olympus",
            )
        )
    assert fields_of(refused.value) == [
        "agent_id",
        "capacity",
        "interruptible_channels[0]",
        "languages[0]",
        "queues",
        "skills[billing]",
        "time_zone",
    ]


def test_contact_validation(desk: Any) -> None:
    desk.queue("q1")
    with pytest.raises(ValidationFailed) as refused:
        desk.when(
            QueueContact(
                interaction_id="i/1",
                queue_id="q1",
                channel=Channel.VOICE,
                priority=-1,
                required_skills={"x": 9},
            )
        )
    assert fields_of(refused.value) == ["interaction_id", "priority", "required_skills[x]"]


def test_adding_an_agent_to_a_queue_lets_it_take_the_waiting_contacts(desk: Any) -> None:
    desk.queue("q1")
    desk.queue("q2")
    desk.agent("a1", queues=("q2",))
    desk.contact("i1", "q1")
    events = desk.agent("a1", queues=("q1", "q2"), available=False, after=5)
    offer = of(events, OfferIssued)[0]
    assert offer.interaction_id == "i1"
    assert offer.decision.trigger is Trigger.CONFIGURATION_CHANGED


def test_relaxing_a_queue_lets_waiting_agents_take_its_contacts(desk: Any) -> None:
    desk.queue("q1", required_skills={"billing": 4})
    desk.agent("a1", skills={"billing": 2})
    desk.contact("i1")
    events = desk.queue("q1", required_skills={"billing": 2})
    assert desk.offered_to(events) == {"i1": "a1"}


def test_reconfiguring_an_agent_withdraws_its_open_offers(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1", skills={"billing": 2})
    desk.contact("i1")
    events = desk.agent("a1", skills={"billing": 3}, available=False)
    assert [type(e).__name__ for e in events][:2] == ["OfferCancelled", "AgentConfigured"]
    assert of(events, OfferCancelled)[0].reason is OfferCancelReason.AGENT_RECONFIGURED
    # Still the best (only) agent: offered again.
    assert desk.offered_to(events) == {"i1": "a1"}

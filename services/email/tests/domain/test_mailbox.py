"""The mailbox aggregate: given events, when a command, then events (or an error)."""

from __future__ import annotations

import pytest

from contactcenter.contracts.errors import FailedPrecondition, ValidationFailed
from contactcenter.email.domain import (
    MailboxRegistered,
    MailboxRoutingSet,
    Routing,
    SkillRequirement,
    check_address,
    decide_routing,
    fold,
)

T = "t-1"
REGISTERED = MailboxRegistered(
    tenant_id=T, address="support@acme.example", routing=Routing(queue_id="q-general")
)


def test_given_registered_when_routing_changes_then_routing_set() -> None:
    routing = Routing(
        queue_id="q-billing",
        priority=5,
        required_skills=(SkillRequirement(skill="billing", min_proficiency=3),),
        language="de-CH",
    )
    (event,) = decide_routing(fold([REGISTERED]), T, routing)
    assert isinstance(event, MailboxRoutingSet) and event.routing == routing
    state = fold([REGISTERED, event])
    assert state is not None and state.routing == routing and state.version == 2


def test_the_same_routing_again_changes_nothing() -> None:
    assert decide_routing(fold([REGISTERED]), T, Routing(queue_id="q-general")) == []


def test_routing_of_an_unregistered_mailbox_is_refused() -> None:
    with pytest.raises(FailedPrecondition):
        decide_routing(None, T, Routing(queue_id="q"))


@pytest.mark.parametrize(
    ("routing", "field"),
    [
        (Routing(priority=5000), "routing.priority"),
        (Routing(language="not a tag"), "routing.language"),
        (Routing(queue_id="q" * 200), "routing.queue_id"),
    ],
)
def test_bad_routing_names_the_field(routing: Routing, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decide_routing(fold([REGISTERED]), T, routing)
    assert [v.field for v in caught.value.field_violations] == [field]


@pytest.mark.parametrize("address", ["", "no-at-sign", "a+tag@acme.example", "a@b"])
def test_bad_addresses(address: str) -> None:
    with pytest.raises(ValidationFailed):
        check_address(address)


def test_address_is_normalised() -> None:
    assert check_address("  Support@ACME.Example ") == "support@acme.example"

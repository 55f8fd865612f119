"""The events are a public contract: stable wire names, registered, frozen, self-contained."""

from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError

from contactcenter.contracts.events import DomainEvent, registry
from contactcenter.contracts.topics import topic_for_event_type
from contactcenter.routing.domain import EVENT_TYPES, RoutingEvent, events, stream_id_for
from contactcenter.routing.domain.events import OfferIssued


def test_every_routing_event_is_registered_under_its_wire_name() -> None:
    declared = {
        cls
        for _, cls in inspect.getmembers(events, inspect.isclass)
        if issubclass(cls, RoutingEvent) and "event_type" in cls.__dict__
    }
    assert declared == set(EVENT_TYPES)
    for cls in EVENT_TYPES:
        assert cls.event_type == f"routing.{cls.__name__}.v1"
        assert registry.model_for(cls.event_type) is cls
        assert topic_for_event_type(cls.event_type).name == "cc.routing.events.v1"


def test_events_are_frozen_and_strict() -> None:
    assert issubclass(OfferIssued, DomainEvent)
    assert OfferIssued.model_config.get("frozen") is True
    with pytest.raises(ValidationError):
        OfferIssued.model_validate({"tenant_id": "t", "unexpected": 1})


def test_the_offer_carries_what_the_interactions_process_manager_needs() -> None:
    fields = OfferIssued.model_fields
    for name in ("interaction_id", "offer_id", "agent_id", "queue_id", "expires_at"):
        assert name in fields and fields[name].is_required()
    assert "decision" in fields


def test_one_stream_per_tenant() -> None:
    assert stream_id_for("t-acme") == "routing/t-acme/engine"

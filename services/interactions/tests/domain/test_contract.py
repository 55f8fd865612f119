"""The wire contract of the domain: event names, JSON round trips, the topic, parity with the
gRPC contract, and the purity of the domain package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest

from contactcenter.contracts.events import WIRE_NAME, registry
from contactcenter.contracts.topics import topic_for_event_type
from contactcenter.interactions import domain
from contactcenter.interactions.domain import (
    EVENT_TYPES,
    AppendMessage,
    AppendTranscript,
    Author,
    AuthorRole,
    Channel,
    Conference,
    InteractionState,
    LeaveConference,
    LinkProfile,
    MarkRepeat,
    MessageDirection,
    RecordSatisfaction,
    Transfer,
    TransferMode,
)
from contactcenter.interactions.domain.events import InteractionEvent
from contactcenter.interactions.v1 import interactions_pb2 as pb

DOMAIN_DIR = Path(domain.__file__).parent


def test_every_event_is_registered_under_its_wire_name() -> None:
    assert len(EVENT_TYPES) == len({e.event_type for e in EVENT_TYPES}) == 22
    for event_type in EVENT_TYPES:
        name = event_type.event_type
        assert WIRE_NAME.match(name)
        assert name == f"interactions.{event_type.__name__}.v1"
        assert registry.model_for(name) is event_type
        assert topic_for_event_type(name).name == "cc.interactions.events.v1"
    registered = {n for n in registry.event_types() if n.startswith("interactions.")}
    assert registered == {e.event_type for e in EVENT_TYPES}


def test_every_event_subclass_is_listed() -> None:
    def subclasses(cls: type) -> set[type]:
        found = set(cls.__subclasses__())
        for sub in list(found):
            found |= subclasses(sub)
        return found

    assert subclasses(InteractionEvent) == set(EVENT_TYPES)


def _full_history(reach: Any) -> list[InteractionEvent]:
    """A history that holds every event type at least once."""
    story = reach(InteractionState.CONNECTED)
    story.when(
        AppendMessage(
            message_id="m-1",
            author=Author(role=AuthorRole.CUSTOMER, id="p-1"),
            direction=MessageDirection.INBOUND,
            body="hi",
        )
    )
    story.when(AppendTranscript(segment_id="s", speaker_role=AuthorRole.CUSTOMER, text="hi"))
    story.when(Conference(agent_id="a-3"), after=1)
    story.when(LeaveConference(agent_id="a-3"), after=1)
    story.when(Transfer(mode=TransferMode.CONSULTED, to_agent_id="a-2"), after=1)
    story.when(Transfer(mode=TransferMode.BLIND), after=1)
    story.when(LinkProfile(profile_id="p-2"))
    story.when(
        MarkRepeat(repeat_of_interaction_id="i-0", previous_created_at=story.T0, window_days=3)
    )
    history = list(story.history)
    for state in (InteractionState.ON_HOLD, InteractionState.COMPLETED):
        history += reach(state).history
    resumed = reach(InteractionState.ON_HOLD)
    from contactcenter.interactions.domain import AddNote, Resume, WithdrawOffer
    from contactcenter.interactions.domain.values import OfferWithdrawalReason

    resumed.when(Resume(), after=1)
    resumed.when(AddNote(note_id="n", author_id="a-1", text="note"))
    history += resumed.history
    offered = reach(InteractionState.OFFERED)
    offered.when(WithdrawOffer(offer_id="o-1", reason=OfferWithdrawalReason.TIMED_OUT))
    history += offered.history
    done = reach(InteractionState.COMPLETED)
    done.when(RecordSatisfaction(score=3))
    history += done.history
    history += reach(InteractionState.ABANDONED).history + reach(InteractionState.FAILED).history
    return history


def test_events_round_trip_through_json_and_the_registry(reach: Any) -> None:
    history = _full_history(reach)
    assert {type(e) for e in history} == set(EVENT_TYPES)
    for event in history:
        payload = event.payload()
        assert payload["interaction_id"] == "i-1"
        assert payload["tenant_id"] == "t-acme"
        decoded = registry.decode(event.event_type, payload)
        assert decoded == event
        # enum values travel as their lower-case strings
        for value in payload.values():
            assert not repr(value).startswith("<")


def test_events_are_frozen(reach: Any) -> None:
    event = reach(InteractionState.CREATED).history[0]
    with pytest.raises(Exception, match="frozen"):
        event.channel = Channel.SMS


# --- parity with the gRPC contract ---------------------------------------------------------------


def test_every_state_has_a_proto_enum_value_and_back() -> None:
    names = {v.name for v in pb.InteractionState.DESCRIPTOR.values} - {
        "INTERACTION_STATE_UNSPECIFIED"
    }
    assert names == {f"INTERACTION_STATE_{s.name}" for s in InteractionState}


@pytest.mark.parametrize(
    ("domain_enum", "proto_enum", "prefix"),
    [
        ("Direction", "InteractionDirection", "INTERACTION_DIRECTION_"),
        ("QueueReason", "QueueReason", "QUEUE_REASON_"),
        ("TransferMode", "TransferMode", "TRANSFER_MODE_"),
        ("EndedBy", "EndedBy", "ENDED_BY_"),
        ("AuthorRole", "AuthorRole", "AUTHOR_ROLE_"),
        ("MessageDirection", "MessageDirection", "MESSAGE_DIRECTION_"),
        ("OfferWithdrawalReason", "OfferWithdrawalReason", "OFFER_WITHDRAWAL_REASON_"),
        ("ProfileLinkReason", "ProfileLinkReason", "PROFILE_LINK_REASON_"),
    ],
)
def test_enums_match_the_proto(domain_enum: str, proto_enum: str, prefix: str) -> None:
    members = getattr(domain, domain_enum)
    proto_names = {v.name for v in getattr(pb, proto_enum).DESCRIPTOR.values}
    assert proto_names - {f"{prefix}UNSPECIFIED"} == {f"{prefix}{m.name}" for m in members}


def test_channels_match_the_common_proto() -> None:
    from contactcenter.common.v1 import common_pb2

    proto_names = {v.name for v in common_pb2.Channel.DESCRIPTOR.values}
    assert proto_names - {"CHANNEL_UNSPECIFIED"} == {f"CHANNEL_{c.name}" for c in Channel}


def test_every_event_has_a_proto_message_and_a_payload_case() -> None:
    payload = pb.InteractionEvent.DESCRIPTOR.oneofs_by_name["payload"]
    message_names = {field.message_type.name for field in payload.fields}
    assert message_names == {e.__name__ for e in EVENT_TYPES}


def test_every_rpc_of_the_issue_exists() -> None:
    service = pb.DESCRIPTOR.services_by_name["InteractionsService"]
    methods = {m.name: m for m in service.methods}
    assert set(methods) >= {
        "CreateInteraction",
        "Enqueue",
        "Connect",
        "Hold",
        "Resume",
        "Transfer",
        "End",
        "Complete",
        "Abandon",
        "AppendMessage",
        "AddNote",
        "RecordSatisfaction",
        "GetInteraction",
        "ListInteractions",
        "WatchInteraction",
    }
    assert methods["WatchInteraction"].server_streaming
    for method in methods.values():
        fields = method.input_type.fields_by_name
        assert "tenant_id" not in fields
        if not method.name.startswith(("Get", "List", "Watch")):
            request_id = fields["request_id"]
            assert request_id.number == 1 and request_id.type == request_id.TYPE_STRING


# --- purity --------------------------------------------------------------------------------------

ALLOWED_IMPORTS = ("pydantic", "contactcenter.contracts", "contactcenter.interactions.domain")


def test_the_domain_imports_only_the_stdlib_pydantic_and_contracts() -> None:
    stdlib = sys.stdlib_module_names
    for path in DOMAIN_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in stdlib or module.startswith(ALLOWED_IMPORTS), (path.name, module)


def test_the_domain_never_reads_the_clock() -> None:
    for path in DOMAIN_DIR.glob("*.py"):
        source = path.read_text()
        for forbidden in ("datetime.now", "utcnow", "time.time", "utc_now", "monotonic"):
            assert forbidden not in source, (path.name, forbidden)

"""Each stream's events in their order: given the heads, when envelopes come, then verdicts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contactcenter.messaging.cloudevents import EventEnvelope, decode, encode
from contactcenter.messaging.ordering import (
    STREAM_VERSION,
    StreamHeads,
    Verdict,
    stream_keys,
    stream_version,
)


def _event(subject: str, version: int | None, source: str = "/interactions") -> EventEnvelope:
    return EventEnvelope(
        id=uuid.uuid4(),
        type="interactions.InteractionQueued.v1",
        source=source,
        subject=subject,
        time=datetime.now(UTC),
        tenant_id="t1",
        data={},
        extensions={} if version is None else {STREAM_VERSION: str(version)},
    )


def test_a_stream_applies_from_version_one_in_order() -> None:
    heads = StreamHeads()
    verdicts = [heads.judge(_event("c1", v)) for v in (1, 2, 3)]
    assert verdicts == [Verdict.NEXT] * 3
    assert heads.take_moved() == {("/interactions", "c1"): 3}
    assert heads.take_moved() == {}


def test_an_event_before_its_predecessors_is_held_back_until_they_come() -> None:
    heads = StreamHeads({("/interactions", "c1"): 1})
    # the broker lost version 2; version 3 (the abandon) arrives first
    assert heads.judge(_event("c1", 3)) is Verdict.GAP
    assert heads.head(("/interactions", "c1")) == 1
    assert heads.take_moved() == {}
    # the republication brings the stream again, in order
    assert [heads.judge(_event("c1", v)) for v in (1, 2, 3)] == [
        Verdict.REPEAT,
        Verdict.NEXT,
        Verdict.NEXT,
    ]
    assert heads.take_moved() == {("/interactions", "c1"): 3}


def test_an_unknown_stream_starting_past_version_one_is_a_gap() -> None:
    heads = StreamHeads()
    assert heads.judge(_event("c2", 3)) is Verdict.GAP


def test_streams_are_told_apart_by_source_and_subject() -> None:
    heads = StreamHeads({("/interactions", "s"): 5})
    assert heads.judge(_event("s", 1, source="/routing")) is Verdict.NEXT
    assert heads.judge(_event("s", 6)) is Verdict.NEXT
    assert heads.take_moved() == {("/routing", "s"): 1, ("/interactions", "s"): 6}


def test_an_event_without_a_version_is_not_held() -> None:
    heads = StreamHeads()
    assert heads.judge(_event("c1", None)) is Verdict.NEXT
    bad = _event("c1", None)
    object.__setattr__(bad, "extensions", {STREAM_VERSION: "two"})
    assert stream_version(bad) is None
    assert heads.judge(bad) is Verdict.NEXT
    assert heads.take_moved() == {}


def test_a_dead_lettered_event_lets_its_stream_go_on() -> None:
    heads = StreamHeads({("/interactions", "c1"): 1})
    heads.skip_past(_event("c1", 2))
    assert heads.judge(_event("c1", 3)) is Verdict.NEXT
    heads.skip_past(_event("c1", 2))  # never backwards
    assert heads.head(("/interactions", "c1")) == 3


def test_the_version_travels_in_a_cloudevents_header() -> None:
    record = encode(_event("c1", 7))
    assert (f"ce_{STREAM_VERSION}", b"7") in record.headers
    envelope = decode(record.headers, record.value, key=record.key)
    assert stream_version(envelope) == (("/interactions", "c1"), 7)
    assert stream_keys([envelope, _event("c9", None)]) == {("/interactions", "c1")}

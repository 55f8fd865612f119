"""Each stream's events applied in their order, whatever order the broker delivers them in.

The outbox relay stamps every event with its version in its stream (the CloudEvents extension
attribute `streamversion`; the stream is the event's `source` and `subject`). A broker keeps a
key's records in order, but one that lost its logs does not keep a consumer's place: a consumer
may go on fetching at its old offset in the new log, or read the first records published after
the loss before the relay publishes the lost ones again. Either way it meets an event whose
predecessors it never applied. Such an event is held back (not applied, not recorded): the
republication brings the whole stream again, in order, and it is applied then.

Pure: the caller loads the heads it needs and stores the ones that moved, in the transaction
that applies the events.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from contactcenter.messaging.cloudevents import EventEnvelope

#: The extension attribute (header `ce_streamversion`) with the event's version in its stream.
STREAM_VERSION = "streamversion"

#: A stream: the producing service (CloudEvents `source`) and the stream id (`subject`, which
#: names its tenant: `<category>/<tenant>/<id>`, so tenants never share a head).
StreamKey = tuple[str, str]


class Verdict(enum.Enum):
    NEXT = "next"  # continues its stream (or carries no version): apply it
    REPEAT = "repeat"  # its stream is already at or past it: applied before
    GAP = "gap"  # an earlier event of its stream was not applied yet: hold it back


def stream_version(envelope: EventEnvelope) -> tuple[StreamKey, int] | None:
    """The stream and version an envelope carries, or None (a producer that does not say)."""
    text = envelope.extensions.get(STREAM_VERSION)
    if text is None or not text.isdecimal():
        return None
    return (envelope.source, envelope.subject), int(text)


def stream_keys(envelopes: Iterable[EventEnvelope]) -> set[StreamKey]:
    """The streams of the envelopes that carry a version (the heads to load for them)."""
    return {found[0] for e in envelopes if (found := stream_version(e)) is not None}


class StreamHeads:
    """The last version applied of each stream, and the verdict on what comes next.

    A stream not in `heads` has applied nothing: its next event is version 1.
    """

    def __init__(self, heads: Mapping[StreamKey, int] | None = None) -> None:
        self._heads: dict[StreamKey, int] = dict(heads or {})
        #: Heads that moved since the last `take_moved` (to store with the applied events).
        self._moved: dict[StreamKey, int] = {}

    def judge(self, envelope: EventEnvelope) -> Verdict:
        """The verdict on `envelope`; a NEXT one moves its stream's head."""
        found = stream_version(envelope)
        if found is None:
            return Verdict.NEXT
        key, version = found
        head = self._heads.get(key, 0)
        if version <= head:
            return Verdict.REPEAT
        if version > head + 1:
            return Verdict.GAP
        self._heads[key] = self._moved[key] = version
        return Verdict.NEXT

    def skip_past(self, envelope: EventEnvelope) -> None:
        """Count `envelope` as applied (it was dead-lettered): its stream goes on after it."""
        found = stream_version(envelope)
        if found is not None and found[1] > self._heads.get(found[0], 0):
            self._heads[found[0]] = self._moved[found[0]] = found[1]

    def head(self, key: StreamKey) -> int:
        return self._heads.get(key, 0)

    def take_moved(self) -> dict[StreamKey, int]:
        moved, self._moved = self._moved, {}
        return moved

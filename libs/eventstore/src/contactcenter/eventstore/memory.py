"""The in-memory twin of the event store, for domain and application tests."""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from contactcenter.contracts.errors import AlreadyExists, ConcurrencyConflict
from contactcenter.contracts.events import DomainEvent
from contactcenter.eventstore.model import (
    ANY,
    AppendResult,
    GlobalPosition,
    RecordedEvent,
    Snapshot,
    check_append,
    check_fingerprint,
    from_json,
    request_fingerprint,
    to_json,
)
from contactcenter.eventstore.store import Wakeup
from contactcenter.eventstore.tracing import traced_append


@dataclass(frozen=True, slots=True)
class _Stored:
    """A recorded event with its JSON kept as text, so readers always get fresh dicts."""

    event: RecordedEvent
    data_json: str
    metadata_json: str

    def copy(self) -> RecordedEvent:
        return dataclasses.replace(
            self.event, data=json.loads(self.data_json), metadata=json.loads(self.metadata_json)
        )


class InMemoryEventStore:
    """`EventStore` in process memory. Appends never await, so each one is atomic."""

    def __init__(self) -> None:
        self._all: list[_Stored] = []
        self._streams: dict[str, list[_Stored]] = {}
        self._event_ids: set[UUID] = set()
        # (tenant, request_id) -> (fingerprint, first result, its `result` as JSON)
        self._requests: dict[tuple[str, str], tuple[str, AppendResult, str | None]] = {}
        self._snapshots: dict[str, tuple[Snapshot, str]] = {}
        self._wakeups: set[Wakeup] = set()
        self._transactions = 0

    @traced_append
    async def append(
        self,
        stream_id: str,
        events: Sequence[DomainEvent],
        /,
        *,
        expected_version: int,
        request_id: str | None = None,
        result: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        command: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        tenant_id = check_append(stream_id, events, expected_version)
        fingerprint = None
        if request_id is not None:
            fingerprint = request_fingerprint(stream_id, events, command)
            prior = self._requests.get((tenant_id, request_id))
            if prior is not None:
                check_fingerprint(request_id, prior[0], fingerprint)
                return _replay(prior)
        stream = self._streams.get(stream_id, [])
        current = len(stream)
        if expected_version != ANY and current != expected_version:
            raise ConcurrencyConflict(stream_id, expected_version, current)
        ids = {e.event_id for e in events}
        if len(ids) != len(events) or not ids.isdisjoint(self._event_ids):
            raise AlreadyExists("an event of this append is already stored")
        result_json = to_json(result)
        metadata_json = json.dumps(dict(metadata or {}))
        self._transactions += 1
        now = datetime.now(UTC)
        stored = [
            _Stored(
                RecordedEvent(
                    position=len(self._all) + i + 1,
                    transaction_id=self._transactions,
                    stream_id=stream_id,
                    version=current + i + 1,
                    event_id=e.event_id,
                    event_type=e.event_type,
                    tenant_id=tenant_id,
                    occurred_at=e.occurred_at,
                    recorded_at=now,
                    correlation_id=e.correlation_id,
                    causation_id=e.causation_id,
                    data={},  # filled from the JSON on each read
                    metadata={},
                ),
                json.dumps(e.payload()),
                metadata_json,
            )
            for i, e in enumerate(events)
        ]
        self._all.extend(stored)
        self._streams.setdefault(stream_id, []).extend(stored)
        self._event_ids.update(ids)
        appended = AppendResult(
            stream_id=stream_id,
            first_version=current + 1,
            last_version=current + len(events),
            event_ids=tuple(e.event_id for e in events),
            result=from_json(result_json),
        )
        if request_id is not None:
            assert fingerprint is not None
            self._requests[(tenant_id, request_id)] = (fingerprint, appended, result_json)
        for wakeup in self._wakeups:
            wakeup.set()
        return appended

    async def lookup_request(
        self, tenant_id: str, request_id: str, *, command: Mapping[str, Any] | None = None
    ) -> AppendResult | None:
        prior = self._requests.get((tenant_id, request_id))
        if prior is None:
            return None
        if command is not None:
            check_fingerprint(request_id, prior[0], request_fingerprint("", (), command))
        return _replay(prior)

    async def read_stream(self, stream_id: str, *, from_version: int = 1) -> list[RecordedEvent]:
        stream = self._streams.get(stream_id, [])
        return [s.copy() for s in stream[max(from_version, 1) - 1 :]]

    async def stream_version(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, []))

    async def list_streams(self, prefix: str) -> list[str]:
        return sorted(s for s, events in self._streams.items() if events and s.startswith(prefix))

    async def read_all(
        self, after: GlobalPosition = GlobalPosition.START, limit: int = 1000
    ) -> list[RecordedEvent]:
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        # Transactions and positions both grow with each append, so list order is global order.
        start = bisect.bisect_right(self._all, after, key=lambda s: s.event.global_position)
        return [s.copy() for s in self._all[start : start + limit]]

    async def held_back(self, after: GlobalPosition) -> bool:
        """Never: an append here is visible as soon as it returns."""
        return False

    async def head(self) -> GlobalPosition:
        return self._all[-1].event.global_position if self._all else GlobalPosition.START

    async def save_snapshot(
        self, stream_id: str, version: int, state: Mapping[str, Any], schema_version: int
    ) -> None:
        if version < 1:
            raise ValueError(f"a snapshot needs a version >= 1, got {version}")
        old = self._snapshots.get(stream_id)
        if old is not None:
            kept = old[0]
            if kept.version > version and kept.schema_version == schema_version:
                return
        state_json = to_json(state)
        assert state_json is not None
        self._snapshots[stream_id] = (Snapshot(stream_id, version, schema_version, {}), state_json)

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        found = self._snapshots.get(stream_id)
        if found is None:
            return None
        snapshot, state_json = found
        state = from_json(state_json)
        assert state is not None
        return Snapshot(stream_id, snapshot.version, snapshot.schema_version, state)

    @asynccontextmanager
    async def listener(self, *, own_appends: bool = True) -> AsyncIterator[Wakeup]:
        """No other instance shares this store: `own_appends=False` is never woken."""
        wakeup = Wakeup()
        if own_appends:
            self._wakeups.add(wakeup)
        try:
            yield wakeup
        finally:
            self._wakeups.discard(wakeup)

    async def aclose(self) -> None:
        """Nothing runs in the background here."""


def _replay(prior: tuple[str, AppendResult, str | None]) -> AppendResult:
    _, first, result_json = prior
    return dataclasses.replace(first, result=from_json(result_json), replayed=True)

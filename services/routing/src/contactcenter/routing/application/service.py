"""The routing application: every tenant's engine, kept in memory and in step with its stream.

Each tenant's events live in one stream, `routing/<tenant>/engine`. The engine of a tenant is
rebuilt on first use from its latest snapshot (made apart, see `snapshots.py`) plus the
events after it; every command then runs under the tenant's lock:

1. `engine.execute(command, context)` decides (and fires the timers due first);
2. the outcome's events are appended with `expected_version` = the engine's version before;
   on a ConcurrencyConflict (another replica wrote) the engine is rebuilt and the command
   decided once more; a second conflict goes to the caller (gRPC ABORTED);
3. offers are pushed to the agents' streams;
4. `outcome.raise_error()`: a refused command still records the timer events it fired.

An outcome without events (a refusal, a no-op) is checked against the stream's version, so a
stale engine never refuses on state another replica already changed.

If an append fails for any other reason the engine, already ahead of the store, is dropped and
rebuilt on next use. A `request_id` makes a command idempotent: a retry returns the first
result and decides nothing again.

Shards: a tenant's events on Kafka are keyed by tenant, so each tenant lives on one partition
of `cc.interactions.events.v1`. An instance owns the tenants of the partitions its consumer
group assigns it (`assign`): it rebuilds their engines at once, so their timers (offer expiry,
wrap-up, policy steps, maximum waits) run without waiting for a command, and forgets them on
revocation (`revoke`). Without an assignment (one instance, or tests) it owns every tenant.
A command for a tenant owned elsewhere (a gRPC call that reached this replica) is still
correct: the engine is loaded, and the stream's optimistic concurrency rejects a stale one.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from aiokafka.partitioner import murmur2

from contactcenter.contracts.errors import ConcurrencyConflict
from contactcenter.contracts.events import registry, utc_now
from contactcenter.eventstore import EventStore
from contactcenter.routing.application.fanout import OfferFanout
from contactcenter.routing.application.snapshots import rebuild_engine, routing_event
from contactcenter.routing.domain import Command, CommandContext, Outcome, RoutingEngine, Tick
from contactcenter.routing.domain.events import (
    STREAM_CATEGORY,
    OfferIssued,
    stream_id_for,
)

T = TypeVar("T")
_log = logging.getLogger(__name__)
#: Computes what a command returns to its caller (stored with a request_id for retries).
Summary = Callable[[RoutingEngine, Outcome], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Executed:
    """What a command did. `result` is the summary; `replayed`: a retried request_id, nothing
    was decided again (and `outcome` is None)."""

    result: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome | None = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """A tenant's state rebuilt from its events alone, compared with the live state.

    `reproduced`: equal fingerprints, so the rebuilt engine decides as the live one, bit for
    bit. `decisions_differing`: offers still explainable whose explanation differs."""

    events: int
    decisions: int
    live_fingerprint: str
    replayed_fingerprint: str
    decisions_differing: int

    @property
    def reproduced(self) -> bool:
        return self.live_fingerprint == self.replayed_fingerprint and not self.decisions_differing


#: Called as a replay goes: (events applied, events to apply).
ReplayProgress = Callable[[int, int], Awaitable[None]]


class RoutingApplication:
    def __init__(
        self,
        store: EventStore,
        *,
        fanout: OfferFanout | None = None,
        clock: Callable[[], datetime] = utc_now,
        explain_capacity: int = 10_000,
    ) -> None:
        self.store = store
        self.fanout = fanout if fanout is not None else OfferFanout()
        self._clock = clock
        self._explain_capacity = explain_capacity
        self._engines: dict[str, RoutingEngine] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: Set whenever a command may have moved a tenant's next timer (the timer loop waits).
        self.timers_changed = asyncio.Event()
        #: The partitions this instance owns and the topic's partition count (None: all).
        self._owned: frozenset[int] | None = None
        self._partition_count = 1

    # --- commands ----------------------------------------------------------------------------

    async def execute(
        self,
        tenant_id: str,
        command: Command,
        *,
        request_id: str | None = None,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        summary: Summary | None = None,
        look_up_request: bool = True,
    ) -> Executed:
        """Decide `command` for the tenant and record what it did (see the module doc).

        `look_up_request=False` skips the look-up of `request_id` before deciding, for callers
        that rarely repeat one (the consumer of interaction events drops redeliveries by their
        stream heads first): the append still refuses a repeat, and the engine that decided it
        again is then rebuilt. One database round trip less on the offer path."""
        fingerprint = _command_fingerprint(command) if request_id else None
        async with self._lock(tenant_id):
            if request_id and look_up_request:
                prior = await self.store.lookup_request(tenant_id, request_id, command=fingerprint)
                if prior is not None:
                    return Executed(result=dict(prior.result or {}), replayed=True)
            for attempt in (1, 2):
                engine = await self._engine(tenant_id)
                before = engine.version
                context = CommandContext(
                    now=self._clock(), correlation_id=correlation_id, causation_id=causation_id
                )
                outcome = engine.execute(command, context)
                result = dict(summary(engine, outcome)) if summary and not outcome.error else {}
                try:
                    replayed = await self._append(
                        tenant_id,
                        outcome,
                        before,
                        request_id=None if outcome.error else request_id,
                        command=fingerprint,
                        result=result,
                    )
                except ConcurrencyConflict:
                    self._engines.pop(tenant_id, None)
                    if attempt == 2:
                        raise
                    continue
                except BaseException:
                    self._engines.pop(tenant_id, None)
                    raise
                if replayed is not None:
                    # Another replica handled the same request_id meanwhile: ours is void.
                    self._engines.pop(tenant_id, None)
                    return Executed(result=dict(replayed.result or {}), replayed=True)
                self.fanout.publish(tenant_id, outcome.events)
                self.timers_changed.set()
                outcome.raise_error()
                return Executed(result=result, outcome=outcome)
        raise AssertionError("unreachable")  # pragma: no cover

    async def advance(self, tenant_id: str, now: datetime | None = None) -> Outcome:
        """Fire the tenant's timers due by `now` (default: the clock)."""
        async with self._lock(tenant_id):
            for attempt in (1, 2):
                engine = await self._engine(tenant_id)
                before = engine.version
                outcome = engine.execute(Tick(), CommandContext(now=now or self._clock()))
                try:
                    await self._append(tenant_id, outcome, before)
                except ConcurrencyConflict:
                    self._engines.pop(tenant_id, None)
                    if attempt == 2:
                        raise
                    continue
                except BaseException:
                    self._engines.pop(tenant_id, None)
                    raise
                self.fanout.publish(tenant_id, outcome.events)
                return outcome
        raise AssertionError("unreachable")  # pragma: no cover

    # --- queries -----------------------------------------------------------------------------

    async def query(self, tenant_id: str, read: Callable[[RoutingEngine], T]) -> T:
        """Run `read` on the tenant's engine, between decisions."""
        async with self._lock(tenant_id):
            return read(await self._engine(tenant_id))

    async def replay(
        self, tenant_id: str, *, progress: ReplayProgress | None = None, every: int = 1_000
    ) -> ReplayReport:
        """Rebuild the tenant's engine from every event of its stream (no snapshot) and
        compare it with the live engine at the same version. The stream is folded outside the
        tenant's lock (decisions go on meanwhile); only the tail written since, and the
        comparison, run under it."""
        stream = stream_id_for(tenant_id)
        rebuilt = RoutingEngine(tenant_id, explain_capacity=self._explain_capacity)
        records = await self.store.read_stream(stream)
        decisions = 0
        total = len(records)
        for applied, record in enumerate(records, 1):
            event = routing_event(record.decode(registry))
            rebuilt.apply(event)
            decisions += isinstance(event, OfferIssued)
            if applied % every == 0:
                if progress is not None:
                    await progress(applied, total)
                await asyncio.sleep(0)
        async with self._lock(tenant_id):
            for record in await self.store.read_stream(stream, from_version=rebuilt.version + 1):
                event = routing_event(record.decode(registry))
                rebuilt.apply(event)
                decisions += isinstance(event, OfferIssued)
            live = await self._engine(tenant_id)
            if live.version != rebuilt.version:
                # Another replica wrote meanwhile: compare with this replica's own rebuild
                # (its snapshot and the events after it), as a restart would load it.
                self._engines.pop(tenant_id, None)
                live = await self._engine(tenant_id)
            differing = sum(
                1
                for offer_id in live.explained
                if live.explain(offer_id) != rebuilt.explain(offer_id)
                or live.offer_status(offer_id) != rebuilt.offer_status(offer_id)
            )
            report = ReplayReport(
                events=rebuilt.version,
                decisions=decisions,
                live_fingerprint=live.fingerprint(),
                replayed_fingerprint=rebuilt.fingerprint(),
                decisions_differing=differing,
            )
        if progress is not None:
            await progress(report.events, report.events)
        return report

    def loaded_tenants(self) -> list[str]:
        """The tenants whose engines this instance keeps and whose timers it runs."""
        return [t for t in self._engines if self.owns(t)]

    def next_timer_at(self, tenant_id: str) -> datetime | None:
        """When the tenant's loaded engine next needs a tick (None: not loaded, or no timer)."""
        engine = self._engines.get(tenant_id)
        return None if engine is None else engine.next_timer_at()

    def drop(self, tenant_id: str) -> None:
        """Forget a tenant's engine (its partition was revoked); rebuilt on next use."""
        self._engines.pop(tenant_id, None)

    # --- shards ------------------------------------------------------------------------------

    def partition_of(self, tenant_id: str) -> int:
        """The partition a tenant's events are on: Kafka's default partitioner of the key."""
        return (murmur2(tenant_id.encode()) & 0x7FFFFFFF) % self._partition_count

    def owns(self, tenant_id: str) -> bool:
        return self._owned is None or self.partition_of(tenant_id) in self._owned

    async def known_tenants(self) -> list[str]:
        """Every tenant with a routing stream."""
        streams = await self.store.list_streams(f"{STREAM_CATEGORY}/")
        return [sid.split("/")[1] for sid in streams]

    async def assign(self, partitions: Collection[int], partition_count: int) -> list[str]:
        """Own these partitions (the rebalance's whole assignment): forget the engines of
        tenants no longer owned, rebuild those of the owned ones. Returns the owned tenants."""
        self._partition_count = partition_count
        self._owned = frozenset(partitions)
        gc.unfreeze()  # the engines dropped here may hold cycles: collectable again
        for tenant_id in list(self._engines):
            if not self.owns(tenant_id):
                self.drop(tenant_id)
        owned = [t for t in await self.known_tenants() if self.owns(t)]
        for tenant_id in owned:
            async with self._lock(tenant_id):
                await self._engine(tenant_id)
        self.timers_changed.set()
        # The rebuilt engines stay: out of the collector's way (see servicekit's serve).
        gc.freeze()
        return owned

    def revoke(self, partitions: Collection[int]) -> list[str]:
        """Give up these partitions: their tenants' engines are dropped. Returns those tenants."""
        revoked = frozenset(partitions)
        self._owned = (self._owned or frozenset()) - revoked
        gc.unfreeze()  # as in `assign`: what is dropped must be collectable
        dropped = [t for t in self._engines if self.partition_of(t) in revoked]
        for tenant_id in dropped:
            self.drop(tenant_id)
        return dropped

    # --- internals ---------------------------------------------------------------------------

    def _lock(self, tenant_id: str) -> asyncio.Lock:
        lock = self._locks.get(tenant_id)
        if lock is None:
            lock = self._locks[tenant_id] = asyncio.Lock()
        return lock

    async def _engine(self, tenant_id: str) -> RoutingEngine:
        engine = self._engines.get(tenant_id)
        if engine is None:
            engine = await rebuild_engine(
                self.store, tenant_id, explain_capacity=self._explain_capacity
            )
            self._engines[tenant_id] = engine
            self.timers_changed.set()
        return engine

    async def _append(
        self,
        tenant_id: str,
        outcome: Outcome,
        expected_version: int,
        *,
        request_id: str | None = None,
        command: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> Any:
        """Append the outcome's events; the first result when `request_id` was seen before."""
        if not outcome.events:
            # Nothing to append, so nothing would notice a stale engine (one whose stream
            # another replica moved): a refusal or a no-op must come from the current state.
            actual = await self.store.stream_version(stream_id_for(tenant_id))
            if actual != expected_version:
                raise ConcurrencyConflict(stream_id_for(tenant_id), expected_version, actual)
            return None
        appended = await self.store.append(
            stream_id_for(tenant_id),
            outcome.events,
            expected_version=expected_version,
            request_id=request_id,
            result=result if request_id else None,
            command=command if request_id else None,
        )
        return appended if appended.replayed else None


def _command_fingerprint(command: Command) -> dict[str, Any]:
    """The command as JSON-able data: what identifies a request for idempotency."""
    return {"type": type(command).__name__, "fields": _plain(command)}


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value

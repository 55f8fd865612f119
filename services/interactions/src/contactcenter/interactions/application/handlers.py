"""Command handlers and reads of the interactions service.

A command is handled as: load the interaction (the fold of its stream, or the cached fold),
`decide`, append the events with `expected_version` (optimistic concurrency) and the
client's `request_id`, whose `CommandResult` the store records in the same statement. A
retried request therefore appends nothing and gets the first answer:

- usually the append itself recognises the request_id (one round trip: the store checks the
  request record before inserting) and returns the result recorded the first time;
- when the retry is refused or changes nothing on today's state (e.g. a retried Hold of an
  interaction now on hold), the handler looks the request up before answering.

The state of recently used interactions is cached in memory. A cached state is never trusted
for a refusal: a stale entry (another replica appended) either fails the append with a
concurrency conflict or is refreshed (delta read) before an error is reported. After a
conflict on a fresh state the command is decided once more on the new state (decisions are
pure, so deciding again is always safe), then ABORTED is returned.

Every stream is `interaction/<tenant>/<id>`: another tenant's interaction is simply not there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from contactcenter.contracts.errors import (
    ConcurrencyConflict,
    DomainError,
    NotFound,
    ValidationFailed,
)
from contactcenter.contracts.events import registry, utc_now
from contactcenter.contracts.streams import stream_id
from contactcenter.eventstore import NO_STREAM, AppendResult, EventStore, RecordedEvent
from contactcenter.interactions.application.ports import PreviousContacts
from contactcenter.interactions.application.privacy import Privacy
from contactcenter.interactions.application.signals import AppendSignals
from contactcenter.interactions.domain import (
    STREAM_CATEGORY,
    Command,
    CommandContext,
    Interaction,
    InteractionEvent,
    InteractionState,
    RepeatPolicy,
    evolve,
    repeat_command,
)
from contactcenter.observability import inject_carrier

_log = logging.getLogger(__name__)

#: Decisions after a concurrency conflict on a fresh state before ABORTED is returned.
CONFLICT_RETRIES: Final = 1

#: What to decide: a command, several (decided in turn, appended together), or a function of
#: the current state (None: the interaction does not exist) giving them.
Decision = Command | Sequence[Command] | Callable[[Interaction | None], Command | Sequence[Command]]
#: Ids a command produced or found (e.g. `message_id`), from the state after it and its events.
Extras = Callable[[Interaction, Sequence[InteractionEvent]], Mapping[str, str]]


class ServiceClosing(Exception):
    """The service is stopping: long-lived reads end (clients resume elsewhere)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandOutcome:
    interaction_id: str
    state: InteractionState
    version: int
    #: Ids the command produced or found (`message_id`, `note_id`, `segment_id`).
    extras: Mapping[str, str] = field(default_factory=dict)
    #: The request_id was handled before: nothing was appended; this is the first answer.
    replayed: bool = False
    #: The events this call appended (empty when replayed or when nothing changed).
    events: tuple[InteractionEvent, ...] = ()
    #: The interaction after the command (None when replayed).
    interaction: Interaction | None = None


@dataclass(frozen=True, slots=True)
class WatchSnapshot:
    interaction: Interaction


@dataclass(frozen=True, slots=True)
class WatchEvent:
    event: InteractionEvent
    #: The interaction's version after the event.
    version: int
    #: The state after the event.
    state: InteractionState


class _StateCache:
    """A small LRU of folded interactions by stream id."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, Interaction] = OrderedDict()

    def get(self, key: str) -> Interaction | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, state: Interaction) -> None:
        """Keep `state` unless a later version of it is cached already (two commands of this
        process on one interaction may finish in either order)."""
        if self._size == 0:
            return
        cached = self._items.get(key)
        if cached is not None and cached.version > state.version:
            return
        self._items[key] = state
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)


def decode(record: RecordedEvent) -> InteractionEvent:
    event = registry.decode(record.event_type, record.data)
    if not isinstance(event, InteractionEvent):
        raise TypeError(f"{record.event_type} in {record.stream_id} is not an interactions event")
    return event


def fold(state: Interaction | None, records: Sequence[RecordedEvent]) -> Interaction | None:
    """`state` (None: nothing yet) after the stored `records` of its stream."""
    if not records:
        return state
    return fold_events(state, [decode(r) for r in records])


def fold_events(state: Interaction | None, events: Sequence[InteractionEvent]) -> Interaction:
    """`state` (None: nothing yet) after `events` (at least one)."""
    if state is None:
        return Interaction.from_events(events)
    for event in events:
        state = state.apply(event)
    return state


class InteractionsApplication:
    def __init__(
        self,
        store: EventStore,
        *,
        signals: AppendSignals | None = None,
        previous_contacts: PreviousContacts | None = None,
        repeat_policy: RepeatPolicy | None = None,
        cache_size: int = 20_000,
        poll_interval_s: float = 0.5,
        clock: Callable[[], datetime] = utc_now,
        privacy: Privacy | None = None,
    ) -> None:
        self.store = store
        #: Seals personal data before it is stored; opens it for readers (None: stored clear).
        self.privacy = privacy
        self.signals = signals or AppendSignals()
        self._previous = previous_contacts
        self._policy = repeat_policy or RepeatPolicy()
        self._cache = _StateCache(cache_size)
        self._poll_interval_s = poll_interval_s
        self._clock = clock
        #: Set when the service stops: watches end.
        self.closing = asyncio.Event()

    @staticmethod
    def stream_of(tenant_id: str, interaction_id: str) -> str:
        return stream_id(STREAM_CATEGORY, tenant_id, interaction_id)

    # --- commands --------------------------------------------------------------------------------

    async def execute(
        self,
        tenant_id: str,
        interaction_id: str,
        decision: Decision,
        *,
        request_id: str | None,
        fingerprint: Mapping[str, Any] | None = None,
        extras: Extras | None = None,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        new: bool = False,
    ) -> CommandOutcome:
        """Decide `decision` on the interaction and append what it produces, once per
        `request_id` (`fingerprint` identifies the request: the same request_id with another
        fingerprint is refused with INVALID_ARGUMENT). `new`: the id was just generated, so
        the stream is not read first (if it exists after all, the append conflicts and the
        command is decided again on what is there)."""
        stream = self.stream_of(tenant_id, interaction_id)
        if request_id and fingerprint is None:
            fingerprint = fingerprint_of(decision)
        verify = False
        conflicts = 0
        while True:
            if new and not verify:
                state, fresh = None, True
            else:
                state, fresh = await self._load(stream, verify=verify)
            context = CommandContext(
                tenant_id=tenant_id,
                now=self._clock(),
                correlation_id=correlation_id,
                causation_id=causation_id,
            )
            try:
                events, after = await self._decide(state, decision, context)
            except ValidationFailed:
                raise
            except DomainError:
                if not fresh:  # refused on a cached state: decide on the stored one
                    verify = True
                    continue
                prior = await self._prior(tenant_id, request_id, fingerprint)
                if prior is not None:
                    return prior
                raise
            if not events:
                if not fresh:
                    verify = True
                    continue
                prior = await self._prior(tenant_id, request_id, fingerprint)
                if prior is not None:
                    return prior
                assert after is not None  # creating always produces events
                return CommandOutcome(
                    interaction_id=after.interaction_id,
                    state=after.state,
                    version=after.version,
                    extras=dict(extras(after, ())) if extras else {},
                    interaction=after,
                )
            assert after is not None
            found = dict(extras(after, events)) if extras else {}
            stored, stored_after = events, after
            if self.privacy is not None:
                stored = await self.privacy.seal(tenant_id, state, events)
                if any(x is not y for x, y in zip(stored, events, strict=True)):
                    stored_after = fold_events(state, stored)
            result = {
                "interaction_id": after.interaction_id,
                "state": after.state.value,
                "version": after.version,
                **found,
            }
            try:
                appended = await self.store.append(
                    stream,
                    stored,
                    expected_version=state.version if state is not None else NO_STREAM,
                    request_id=request_id or None,
                    result=result,
                    metadata=inject_carrier(),
                    command=fingerprint if request_id else None,
                )
            except ConcurrencyConflict:
                self._cache.discard(stream)
                if fresh:
                    conflicts += 1
                    if conflicts > CONFLICT_RETRIES:
                        raise
                verify = True
                continue
            if appended.replayed:
                return _replayed(appended)
            self._cache.put(stream, stored_after)
            self.signals.appended(stream)
            return CommandOutcome(
                interaction_id=after.interaction_id,
                state=after.state,
                version=after.version,
                extras=found,
                events=tuple(events),
                interaction=after,
            )

    async def _decide(
        self, state: Interaction | None, decision: Decision, context: CommandContext
    ) -> tuple[list[InteractionEvent], Interaction | None]:
        chosen = decision(state) if callable(decision) else decision
        commands: Sequence[Command] = chosen if isinstance(chosen, list | tuple) else (chosen,)
        events: list[InteractionEvent] = []
        current = state
        for command in commands:
            produced, current = evolve(current, command, context)
            events.extend(produced)
        if events and current is not None:
            repeat = await self._repeat_command(state, current)
            if repeat is not None:
                produced, current = evolve(current, repeat, context)
                events.extend(produced)
        return events, current

    async def _repeat_command(
        self, before: Interaction | None, after: Interaction
    ) -> Command | None:
        """First-contact resolution: when the interaction gets its customer profile (at
        creation or later), it is marked a repeat of that customer's latest earlier contact
        within the window, in the same append."""
        profile = after.customer_profile_id
        if (
            self._previous is None
            or self._policy.window_days == 0
            or not profile
            or after.repeat is not None
            or (before is not None and before.customer_profile_id == profile)
        ):
            return None
        contacts = await self._previous.previous_contacts(
            after.tenant_id,
            profile,
            since=after.created_at - self._policy.window,
            until=after.created_at,
        )
        return repeat_command(
            interaction_id=after.interaction_id,
            created_at=after.created_at,
            previous=contacts,
            policy=self._policy,
            intent=after.intent,
        )

    async def _prior(
        self, tenant_id: str, request_id: str | None, fingerprint: Mapping[str, Any] | None
    ) -> CommandOutcome | None:
        if not request_id:
            return None
        prior = await self.store.lookup_request(tenant_id, request_id, command=fingerprint)
        return None if prior is None else _replayed(prior)

    async def _load(self, stream: str, *, verify: bool) -> tuple[Interaction | None, bool]:
        """The interaction of `stream` and whether it was read from the store just now."""
        cached = self._cache.get(stream)
        if cached is not None and not verify:
            return cached, False
        start = cached.version + 1 if cached is not None else 1
        records = await self.store.read_stream(stream, from_version=start)
        if records and records[0].version != start:  # cannot happen; be safe anyway
            cached, records = None, await self.store.read_stream(stream)
        state = fold(cached, records)
        if state is not None:
            self._cache.put(stream, state)
        return state, True

    # --- reads -----------------------------------------------------------------------------------

    async def get(self, tenant_id: str, interaction_id: str) -> Interaction:
        """The interaction, its personal data opened (or marked erased) for the reader."""
        state, _ = await self._load(self.stream_of(tenant_id, interaction_id), verify=True)
        if state is None:
            raise NotFound("interaction not found", resource_type="interaction")
        return await self.open(tenant_id, state)

    async def open(self, tenant_id: str, state: Interaction) -> Interaction:
        return state if self.privacy is None else await self.privacy.open(tenant_id, state)

    async def open_all(self, tenant_id: str, states: Sequence[Interaction]) -> list[Interaction]:
        if self.privacy is None:
            return list(states)
        return await self.privacy.open_all(tenant_id, states)

    async def _open_event(self, tenant_id: str, event: InteractionEvent) -> InteractionEvent:
        if self.privacy is None:
            return event
        return await self.privacy.open_event(tenant_id, event)

    async def watch(
        self, tenant_id: str, interaction_id: str, after_version: int = 0
    ) -> AsyncIterator[WatchSnapshot | WatchEvent]:
        """A snapshot (after_version 0) or the events after `after_version`, then every new
        event, until the interaction is in a final state. Raises ServiceClosing when the
        service stops first."""
        stream = self.stream_of(tenant_id, interaction_id)
        with self.signals.watch(stream) as woken:
            records = await self.store.read_stream(stream)
            if not records:
                raise NotFound("interaction not found", resource_type="interaction")
            last = records[-1].version
            if after_version > last:
                raise ValidationFailed(
                    [("after_version", f"is beyond the interaction's version {last}")]
                )
            state = fold(None, records[:after_version]) if after_version else None
            if state is None:
                state = fold(None, records)
                assert state is not None
                yield WatchSnapshot(await self.open(tenant_id, state))
            else:
                for record in records[after_version:]:
                    event = decode(record)
                    state = state.apply(event)
                    yield WatchEvent(
                        await self._open_event(tenant_id, event), record.version, state.state
                    )
            while not state.is_final:
                if self.closing.is_set():
                    raise ServiceClosing("the service is stopping; resume with after_version")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), self._poll_interval_s)
                woken.clear()
                for record in await self.store.read_stream(stream, from_version=last + 1):
                    event = decode(record)
                    state = state.apply(event)
                    last = record.version
                    yield WatchEvent(
                        await self._open_event(tenant_id, event), record.version, state.state
                    )

    def wake_watchers(self) -> None:
        """Let every watch notice `closing`."""
        self.signals.something_appended()


#: Fields the command handlers fill with fresh ids: a retry has other values there.
_GENERATED_IDS: Final = frozenset({"interaction_id", "message_id", "note_id", "segment_id"})


def fingerprint_of(decision: Decision) -> dict[str, Any]:
    """What identifies a request by default: its commands without the ids generated for it
    (the store would otherwise compare the events, which differ when a retry meets a state
    that moved on, e.g. a second hold counts 2)."""
    if callable(decision):
        raise TypeError("a decision given as a function needs an explicit fingerprint")
    commands = decision if isinstance(decision, list | tuple) else (decision,)
    described = []
    for command in commands:
        values = {
            f.name: dict(v) if isinstance(v := getattr(command, f.name), Mapping) else v
            for f in dataclasses.fields(command)
            if f.name not in _GENERATED_IDS
        }
        described.append([type(command).__name__, values])
    return {"commands": json.dumps(described, sort_keys=True, default=str)}


def _replayed(appended: AppendResult) -> CommandOutcome:
    result = dict(appended.result or {})
    interaction_id = str(result.pop("interaction_id"))
    state = InteractionState(result.pop("state"))
    version = int(result.pop("version"))
    return CommandOutcome(
        interaction_id=interaction_id,
        state=state,
        version=version,
        extras={k: str(v) for k, v in result.items()},
        replayed=True,
    )

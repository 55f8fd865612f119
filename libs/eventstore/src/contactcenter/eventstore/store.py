"""The event store port. `PostgresEventStore` and `InMemoryEventStore` implement it and pass
one shared contract test suite."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from contactcenter.contracts.events import DomainEvent
from contactcenter.eventstore.model import AppendResult, GlobalPosition, RecordedEvent, Snapshot


class AppendListener(Protocol):
    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 (a poll interval, not a scope)
        """Until something was appended since the last wait (True) or `timeout` s pass (False).

        A wake-up is a hint to read again, not a promise that new events are readable yet;
        tailing readers keep a timeout as their polling fallback.
        """
        ...


class EventStore(Protocol):
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
        """Append `events` (one tenant, stream `<category>/<tenant>/<entity>`) atomically.

        `expected_version`: the stream version the caller decided on (0 / NO_STREAM: a new
        stream), or ANY. Raises `ConcurrencyConflict` (nothing stored) when the stream moved.
        With `request_id`, a retry of the same command appends nothing and returns the first
        AppendResult (`replayed=True`, with the `result` recorded then); the same request_id for
        a different command raises `IdempotencyKeyReused`. The command is identified by
        `command` when given (pass it consistently), else by the stream and events' content.
        `metadata` (e.g. `traceparent`) is stored with every event of the append.
        """
        ...

    async def lookup_request(
        self, tenant_id: str, request_id: str, *, command: Mapping[str, Any] | None = None
    ) -> AppendResult | None:
        """The first result of a request already handled (`replayed=True`), else None.

        Lets a command handler short-circuit before doing any work. With `command`, raises
        `IdempotencyKeyReused` when the request_id was used for a different command.
        """
        ...

    async def read_stream(
        self, stream_id: str, *, from_version: int = 1
    ) -> list[RecordedEvent]: ...

    async def stream_version(self, stream_id: str) -> int:
        """The version of the stream's last event; 0 for a stream without events."""
        ...

    async def list_streams(self, prefix: str) -> list[str]:
        """The ids of the streams (with at least one event) that start with `prefix`, sorted."""
        ...

    async def read_all(
        self, after: GlobalPosition = GlobalPosition.START, limit: int = 1000
    ) -> list[RecordedEvent]:
        """Up to `limit` events after the checkpoint `after`, in global order.

        Pass the last event's `global_position` as the next `after`. A reader tailing this
        way never skips an event that a concurrent writer commits late, and sees each stream
        in version order.
        """
        ...

    async def held_back(self, after: GlobalPosition) -> bool:
        """Whether events after `after` are committed but not yet readable by `read_all`: they
        wait behind an older transaction that is still running."""
        ...

    async def head(self) -> GlobalPosition:
        """The position of the newest event a tailing reader can see (START when none): a
        reader that only wants what happens from now on starts `read_all` there."""
        ...

    async def save_snapshot(
        self, stream_id: str, version: int, state: Mapping[str, Any], schema_version: int
    ) -> None:
        """Keep `state` as of `version`; an older snapshot never replaces a newer one of the
        same schema_version."""
        ...

    async def load_snapshot(self, stream_id: str) -> Snapshot | None: ...

    def listener(self, *, own_appends: bool = True) -> AbstractAsyncContextManager[AppendListener]:
        """`async with store.listener() as appends: await appends.wait(1.0)`.

        `own_appends=False`: woken only by the appends of other store instances (other
        processes), for a reader that learns of its own process's appends otherwise.
        """
        ...

    async def aclose(self) -> None:
        """Finish background work (a pending NOTIFY); call before closing the pool."""
        ...


class Wakeup:
    """An `AppendListener` fed by a callback (a NOTIFY, or the in-memory store)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 (a poll interval, not a scope)
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True


class TailPacer:
    """How long a tailing reader that found nothing new waits before it reads again.

    Events committed while an older transaction is still running stay invisible to `read_all`
    until that transaction ends (in PostgreSQL: any transaction of the cluster, in any
    database), and it may notify nobody when it does: a checkpoint, a lease, another
    service's write. While events are held back like this the reader polls soon, backing off
    from `first_s` to `max_s`, instead of sleeping its whole idle interval: that sleep was the
    latency tail of every relay and tailing projection.
    """

    def __init__(
        self,
        store: EventStore,
        idle_s: float,
        *,
        first_s: float = 0.001,
        max_s: float = 0.05,
    ) -> None:
        self._store = store
        self._idle_s = idle_s
        self._first_s = first_s
        self._max_s = max_s
        self._next_s = first_s

    async def timeout_after(self, after: GlobalPosition) -> float:
        """The wait before the next read, for a reader that has read everything up to `after`."""
        try:
            held = await self._store.held_back(after)
        except Exception:  # only a hint (the database may be restarting): poll at leisure
            held = False
        if held:
            timeout = self._next_s
            self._next_s = min(self._next_s * 2, self._max_s)
            return min(timeout, self._idle_s)
        self._next_s = self._first_s
        return self._idle_s

    async def wait(self, appends: AppendListener, after: GlobalPosition) -> bool:
        """Until an append is announced (True) or the pacing timeout passes (False)."""
        return await appends.wait(await self.timeout_after(after))

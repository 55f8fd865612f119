"""In-process wake-ups for readers that follow the event store (WatchInteraction, the list
projection): immediate for appends made by this process, through the store's NOTIFY for
appends of other replicas, and a polling fallback in the readers themselves.

A wake-up is only a hint to read again; readers never trust it for content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from contactcenter.eventstore import EventStore

_log = logging.getLogger(__name__)


class AppendSignals:
    def __init__(self) -> None:
        self._by_stream: dict[str, set[asyncio.Event]] = {}
        self._everything: set[asyncio.Event] = set()

    def appended(self, stream_id: str) -> None:
        """This process appended to `stream_id`."""
        for event in self._by_stream.get(stream_id, ()):
            event.set()
        for event in self._everything:
            event.set()

    def something_appended(self) -> None:
        """Some process appended to some stream."""
        for events in self._by_stream.values():
            for event in events:
                event.set()
        for event in self._everything:
            event.set()

    @contextlib.contextmanager
    def watch(self, stream_id: str | None = None) -> Iterator[asyncio.Event]:
        """An event set on each append to `stream_id` (None: to any stream) while inside.
        Clear it before reading, so that an append during the read is not missed."""
        event = asyncio.Event()
        group = (
            self._everything if stream_id is None else self._by_stream.setdefault(stream_id, set())
        )
        group.add(event)
        try:
            yield event
        finally:
            group.discard(event)
            if stream_id is not None and not group:
                self._by_stream.pop(stream_id, None)

    @property
    def watchers(self) -> int:
        return sum(len(g) for g in self._by_stream.values()) + len(self._everything)

    async def run(self, store: EventStore, stop: asyncio.Event) -> None:
        """Relay the store's notifications (appends of any replica) until `stop` is set."""
        while not stop.is_set():
            try:
                async with store.listener() as appends:
                    while not stop.is_set():
                        if await appends.wait(1.0):
                            self.something_appended()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the readers poll meanwhile
                _log.warning("append notifications interrupted (%r); reconnecting", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

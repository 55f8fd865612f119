"""Appends continue the caller's trace: each append is a span, and the span's context is stored
in the events' metadata (`traceparent`), so the relay's publish and every consumer join it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Concatenate, TypeVar

from opentelemetry import propagate, trace

from contactcenter.contracts.events import DomainEvent

_tracer = trace.get_tracer("contactcenter.eventstore")

S = TypeVar("S")
R = TypeVar("R")
Append = Callable[Concatenate[S, str, Sequence[DomainEvent], ...], Awaitable[R]]


def trace_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """`metadata` plus the current trace context, unless the caller already put one there."""
    carrier = dict(metadata or {})
    if "traceparent" not in carrier:
        propagate.inject(carrier)
    return carrier


def traced_append(append: Append[S, R]) -> Append[S, R]:
    """Wrap an event store's `append` in a span and record the trace context it runs in."""

    @functools.wraps(append)
    async def traced(
        self: S,
        stream_id: str,
        events: Sequence[DomainEvent],
        *args: Any,
        metadata: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> R:
        with _tracer.start_as_current_span(
            "eventstore.append",
            attributes={"contactcenter.stream_id": stream_id, "contactcenter.events": len(events)},
        ):
            return await append(
                self, stream_id, events, *args, metadata=trace_metadata(metadata), **kwargs
            )

    return traced

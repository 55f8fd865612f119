"""Appends continue the caller's trace: each append is a span, and the span's context is stored
in the events' metadata (`traceparent`), so the relay's publish and every consumer join it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from opentelemetry import propagate, trace

from contactcenter.contracts.events import DomainEvent

_tracer = trace.get_tracer("contactcenter.eventstore")

S = TypeVar("S")
R = TypeVar("R")
P = ParamSpec("P")
#: `append(self, stream_id, events, /, *, ...)`; the ParamSpec keeps the keyword parameters'
#: types, so a decorated store still satisfies the EventStore protocol.
Append = Callable[Concatenate[S, str, Sequence[DomainEvent], P], Coroutine[Any, Any, R]]


def trace_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """`metadata` plus the current trace context, unless the caller already put one there."""
    carrier = dict(metadata or {})
    if "traceparent" not in carrier:
        propagate.inject(carrier)
    return carrier


def traced_append(append: Append[S, P, R]) -> Append[S, P, R]:
    """Wrap an event store's `append` in a span and record the trace context it runs in."""

    @functools.wraps(append)
    async def traced(
        self: S,
        stream_id: str,
        events: Sequence[DomainEvent],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        span = _tracer.start_span(
            "eventstore.append",
            attributes={"contactcenter.stream_id": stream_id, "contactcenter.events": len(events)},
        )
        if not span.is_recording():
            # Nothing receives it (a lean tracer): the span only lends its context to the
            # stored metadata, so it is not made current (nothing else would see it).
            metadata = cast("Mapping[str, str] | None", kwargs.get("metadata"))
            if metadata is None or "traceparent" not in metadata:
                carrier = dict(metadata or {})
                propagate.inject(carrier, context=trace.set_span_in_context(span))
                kwargs["metadata"] = carrier
            return await append(self, stream_id, events, *args, **kwargs)
        with trace.use_span(span, end_on_exit=True):
            metadata = cast("Mapping[str, str] | None", kwargs.get("metadata"))
            kwargs["metadata"] = trace_metadata(metadata)
            result = await append(self, stream_id, events, *args, **kwargs)
        return result

    return traced

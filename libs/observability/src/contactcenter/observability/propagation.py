"""W3C trace context across process hops: gRPC metadata, Kafka headers, stored event metadata."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate


def inject_carrier(ctx: otel_context.Context | None = None) -> dict[str, str]:
    """`{"traceparent": ..., "tracestate": ...}` for the given (default: current) context."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return carrier


def current_traceparent() -> str | None:
    return inject_carrier().get("traceparent")


def context_from_carrier(
    carrier: Mapping[str, str] | Iterable[tuple[str, bytes | str]],
) -> otel_context.Context:
    """The remote context in a mapping (event metadata) or header pairs (Kafka, gRPC)."""
    if isinstance(carrier, Mapping):
        flat = {k.lower(): v for k, v in carrier.items()}
    else:
        flat = {k.lower(): v.decode("latin-1") if isinstance(v, bytes) else v for k, v in carrier}
    return propagate.extract(flat)

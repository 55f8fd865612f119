"""A tracer provider that records spans only while something receives them.

Without an exporter (no `OTEL_EXPORTER_OTLP_ENDPOINT`, no test exporter) the SDK still builds
every span in full (attributes, events, timestamps, the span processor calls) and then drops
it: a few tens of microseconds each, and a command's path has several (gRPC server span,
append, one publish per event). While the provider has no span processor, `LeanTracerProvider`'s
tracers hand out non-recording spans instead, with exactly the ids and sampling flags the SDK
would give them, so trace context still propagates across gRPC calls, the event store and
Kafka hops unchanged. Once a span processor is added, spans are recorded as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.util import types


def _receives_spans(processor: object) -> bool:
    """Whether `processor` (the provider's active multi-processor) has any processor;
    unknown kinds of processors count as receiving."""
    processors = getattr(processor, "_span_processors", None)
    return processors is None or bool(processors)


class LeanTracer(Tracer):
    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: trace_api.SpanKind = trace_api.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        if _receives_spans(self.span_processor):
            return super().start_span(
                name,
                context,
                kind,
                attributes,
                links,
                start_time,
                record_exception,
                set_status_on_exception,
            )
        # The SDK's own choice of ids and flags (see Tracer.start_span), without the span.
        parent = trace_api.get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:
            trace_id = self.id_generator.generate_trace_id()
            random_trace_id = self.id_generator.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random_trace_id = parent.trace_flags.random_trace_id
        sampled = self.sampler.should_sample(context, trace_id, name, kind, attributes, links or ())
        flags = (
            trace_api.TraceFlags.SAMPLED
            if sampled.decision is Decision.RECORD_AND_SAMPLE
            else trace_api.TraceFlags.DEFAULT
        )
        if random_trace_id:
            flags |= trace_api.TraceFlags.RANDOM_TRACE_ID
        return trace_api.NonRecordingSpan(
            trace_api.SpanContext(
                trace_id,
                self.id_generator.generate_span_id(),
                is_remote=False,
                trace_flags=trace_api.TraceFlags(flags),
                trace_state=sampled.trace_state,
            )
        )


class LeanTracerProvider(TracerProvider):
    """A `TracerProvider` whose tracers skip building spans nobody receives."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace_api.Tracer:
        tracer = super().get_tracer(*args, **kwargs)
        if type(tracer) is Tracer:
            tracer.__class__ = LeanTracer
        return tracer


def spans_recorded() -> bool:
    """Whether spans started now may be recorded: False only while the global provider is a
    `LeanTracerProvider` without span processors (instrumentation can then skip the work
    whose only use is a recorded span: attributes, wrappers)."""
    provider = trace_api.get_tracer_provider()
    if not isinstance(provider, LeanTracerProvider):
        return True
    return _receives_spans(getattr(provider, "_active_span_processor", None))

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from contactcenter.observability import context_from_carrier, inject_carrier
from contactcenter.observability.lean import LeanTracerProvider

REMOTE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_without_a_processor_spans_are_not_built_but_context_flows() -> None:
    tracer = LeanTracerProvider().get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        carrier = inject_carrier()
        with tracer.start_as_current_span("child") as child:
            pass
    assert not root.is_recording()
    ids, child_ids = root.get_span_context(), child.get_span_context()
    assert ids.is_valid and ids.trace_flags.sampled
    assert child_ids.trace_id == ids.trace_id and child_ids.span_id != ids.span_id
    flags = f"{int(ids.trace_flags):02x}"
    assert carrier["traceparent"] == f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{flags}"
    # The flags the SDK itself gives a root span.
    with TracerProvider().get_tracer("t").start_as_current_span("sdk") as sdk:
        pass
    assert ids.trace_flags == sdk.get_span_context().trace_flags

    # A remote parent: its trace continues under a new span id, sampled as the parent was.
    with tracer.start_as_current_span("hop", context=context_from_carrier({"traceparent": REMOTE})):
        hop = inject_carrier()["traceparent"]
    assert hop.startswith("00-0af7651916cd43dd8448eb211c80319c-") and hop.endswith("-01")
    assert "b7ad6b7169203331" not in hop
    unsampled = REMOTE[:-2] + "00"
    parent = context_from_carrier({"traceparent": unsampled})
    with tracer.start_as_current_span("hop", context=parent):
        assert inject_carrier()["traceparent"].endswith("-00")


def test_the_sampler_still_decides() -> None:
    tracer = LeanTracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        pass
    assert not root.get_span_context().trace_flags.sampled


def test_spans_are_recorded_once_a_processor_is_added() -> None:
    provider = LeanTracerProvider()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("before"):
        pass
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with (
        tracer.start_as_current_span("parent") as parent,
        tracer.start_as_current_span("child", attributes={"a": 1}),
    ):
        pass
    assert parent.is_recording() is False  # ended
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["child", "parent"]
    child = spans[0]
    assert child.attributes == {"a": 1}
    assert child.parent is not None and child.parent.span_id == spans[1].context.span_id
    assert isinstance(provider.get_tracer("t"), trace.Tracer)

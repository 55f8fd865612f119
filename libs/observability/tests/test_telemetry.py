from __future__ import annotations

import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contactcenter.observability import (
    context_from_carrier,
    inject_carrier,
    setup_telemetry,
)
from contactcenter.observability.logs import JsonFormatter


def test_logs_carry_trace_and_span_ids() -> None:
    exporter = InMemorySpanExporter()
    telemetry = setup_telemetry("test-svc", span_exporter=exporter, configure_logs=False)
    formatter = JsonFormatter("test-svc")
    with telemetry.tracer("t").start_as_current_span("work") as span:
        record = logging.makeLogRecord(
            {"msg": "hello %s", "args": ("world",), "levelname": "INFO", "tenant_id": "t1"}
        )
        line = json.loads(formatter.format(record))
    ids = span.get_span_context()
    assert line["msg"] == "hello world"
    assert line["service"] == "test-svc"
    assert line["tenant_id"] == "t1"
    assert line["trace_id"] == format(ids.trace_id, "032x")
    assert line["span_id"] == format(ids.span_id, "016x")


def test_context_survives_a_hop_through_headers() -> None:
    exporter = InMemorySpanExporter()
    telemetry = setup_telemetry("test-svc", span_exporter=exporter, configure_logs=False)
    tracer = telemetry.tracer("t")
    with tracer.start_as_current_span("producer") as producer:
        carrier = inject_carrier()
    assert carrier["traceparent"].startswith("00-")
    headers = [(k, v.encode()) for k, v in carrier.items()]
    with tracer.start_as_current_span("consumer", context=context_from_carrier(headers)) as c:
        pass
    assert c.get_span_context().trace_id == producer.get_span_context().trace_id
    consumer_span = next(s for s in exporter.get_finished_spans() if s.name == "consumer")
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer.get_span_context().span_id
    assert trace.get_tracer_provider() is not None

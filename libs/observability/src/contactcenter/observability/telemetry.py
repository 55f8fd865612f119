"""Process-wide OpenTelemetry set-up. OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set."""

from __future__ import annotations

import os
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from contactcenter.observability.lean import LeanTracerProvider
from contactcenter.observability.logs import configure_logging


@dataclass
class Telemetry:
    service_name: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def tracer(self, name: str) -> trace.Tracer:
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> metrics.Meter:
        return self.meter_provider.get_meter(name)

    def shutdown(self) -> None:
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup_telemetry(
    service_name: str,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    log_level: str | None = None,
    configure_logs: bool = True,
) -> Telemetry:
    """Install tracer and meter providers (global) and JSON logs with trace ids.

    Exporters: the ones given (tests pass in-memory ones), else OTLP/gRPC when
    `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else none (spans still propagate across hops).
    """
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.namespace": "contactcenter",
            "service.instance.id": f"{os.uname().nodename}-{os.getpid()}",
        }
    )
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")

    # The global providers can be set only once per process: a second call (tests, or a
    # process hosting two components) adds its exporter to the installed provider.
    installed = trace.get_tracer_provider()
    first = not isinstance(installed, TracerProvider)
    # Lean: while no exporter is added, spans are not built (trace context still flows).
    tracer_provider = LeanTracerProvider(resource=resource) if first else installed
    assert isinstance(tracer_provider, TracerProvider)
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    elif endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))

    readers: list[MetricReader] = []
    if metric_reader is not None:
        readers.append(metric_reader)
    elif endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)

    if first:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    if configure_logs:
        configure_logging(service_name, log_level or os.environ.get("LOG_LEVEL", "INFO"))
    return Telemetry(service_name, tracer_provider, meter_provider)

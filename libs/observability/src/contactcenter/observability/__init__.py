"""One `setup_telemetry(service_name)` per process: traces, metrics, structured logs."""

from contactcenter.observability.propagation import (
    context_from_carrier,
    current_traceparent,
    inject_carrier,
)
from contactcenter.observability.telemetry import Telemetry, setup_telemetry

__all__ = [
    "Telemetry",
    "context_from_carrier",
    "current_traceparent",
    "inject_carrier",
    "setup_telemetry",
]

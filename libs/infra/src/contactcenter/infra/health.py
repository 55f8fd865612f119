"""Waiting for a service's gRPC health to say SERVING."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from contactcenter.infra.errors import InfraError

if TYPE_CHECKING:
    from contactcenter.infra.services import RunningService


def grpc_serving(address: str, service: str = "", timeout: float = 1.0) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def wait_serving(service: RunningService, timeout: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        if not service.process.alive():
            raise InfraError(
                f"service {service.spec.name} exited with {service.process.popen.returncode} "
                f"while starting; last lines of {service.process.log_path}:\n"
                f"{service.process.log_tail()}"
            )
        if grpc_serving(service.grpc_address):
            return
        if time.monotonic() > deadline:
            raise InfraError(
                f"service {service.spec.name} was not SERVING on {service.grpc_address} within "
                f"{timeout:.0f}s; last lines of {service.process.log_path}:\n"
                f"{service.process.log_tail()}"
            )
        stop.wait(0.25)

"""Docker HEALTHCHECK: exit 0 when the service's gRPC health (grpc.health.v1, overall) is
SERVING, 1 otherwise. Kubernetes uses its native gRPC probes instead."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

MANIFEST = Path(os.environ.get("CC_SERVICE_MANIFEST", Path(__file__).with_name("service.json")))


def check(address: str, timeout_s: float = 2.0) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            print(f"{address}: {exc.code().name}", file=sys.stderr)
            return False
    serving: bool = reply.status == health_pb2.HealthCheckResponse.SERVING
    if not serving:
        print(f"{address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
    return serving


def main() -> int:
    spec = json.loads(MANIFEST.read_text())
    port = os.environ.get(f"{spec['env_prefix']}GRPC_PORT") or str(spec["grpc_port"])
    return 0 if check(f"127.0.0.1:{port}") else 1


if __name__ == "__main__":
    sys.exit(main())

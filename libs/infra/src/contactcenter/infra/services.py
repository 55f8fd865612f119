"""The services of the workspace, as `make run` finds and starts them.

A service declares itself in its `pyproject.toml`:

    [tool.contactcenter.service]
    name = "interactions"          # also its PostgreSQL schema and its env prefix CC_INTERACTIONS_
    module = "contactcenter.interactions"   # run as `python -m <module>`
    grpc_port = 50051              # default local port (a free one is taken when it is busy)
    http_port = 8080               # optional (e.g. the wallboard page)
    order = 10                     # start order (lower first)
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from contactcenter.infra.errors import InfraError
from contactcenter.infra.process import ManagedProcess, free_port, port_is_free, tcp_accepts

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    grpc_port: int
    http_port: int | None
    order: int

    @property
    def env_prefix(self) -> str:
        return f"CC_{self.name.upper().replace('-', '_')}_"


def discover_services(root: Path) -> list[ServiceSpec]:
    specs = []
    for pyproject in sorted((root / "services").glob("*/pyproject.toml")):
        table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("contactcenter", {})
        service = table.get("service")
        if not service:
            continue
        try:
            specs.append(
                ServiceSpec(
                    name=service["name"],
                    module=service["module"],
                    grpc_port=int(service["grpc_port"]),
                    http_port=int(service["http_port"]) if "http_port" in service else None,
                    order=int(service.get("order", 100)),
                )
            )
        except (KeyError, ValueError) as exc:
            raise InfraError(f"{pyproject}: bad [tool.contactcenter.service] table: {exc}") from exc
    return sorted(specs, key=lambda s: (s.order, s.name))


def reserve_port(preferred: int, taken: set[int]) -> int:
    """`preferred` when free, else a free port; never one of `taken` (the result is added)."""
    return _port(preferred, taken)


def _port(preferred: int, taken: set[int]) -> int:
    # gRPC listens with SO_REUSEPORT (and on an IPv6 socket), so a test bind can succeed on a
    # port that a running server answers on: ask the port too.
    port = preferred
    while port in taken or not port_is_free(HOST, port) or tcp_accepts(HOST, port):
        port = free_port(HOST)
    taken.add(port)
    return port


@dataclass
class RunningService:
    spec: ServiceSpec
    process: ManagedProcess
    grpc_address: str
    http_url: str | None


def start_service(
    spec: ServiceSpec,
    *,
    database_url: str,
    kafka_bootstrap: str,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    grpc_port: int | None = None,
    http_port: int | None = None,
    taken_ports: set[int] | None = None,
) -> RunningService:
    """Start one service; `grpc_port`/`http_port` pin its ports (a restart on the same ones),
    else its preferred ports when free, or free ones. `taken_ports`: ports already given to
    services that may not listen yet (updated)."""
    taken = taken_ports if taken_ports is not None else set()
    grpc_port = grpc_port or _port(spec.grpc_port, taken)
    if not spec.http_port:
        http_port = None
    elif http_port is None:
        http_port = _port(spec.http_port, taken)
    p = spec.env_prefix
    env = {
        **os.environ,
        f"{p}DATABASE_URL": database_url,
        f"{p}KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        f"{p}GRPC_HOST": HOST,
        f"{p}GRPC_PORT": str(grpc_port),
        **({f"{p}HTTP_PORT": str(http_port)} if http_port else {}),
        **(extra_env or {}),
    }
    process = ManagedProcess(
        spec.name, [sys.executable, "-m", spec.module], log_dir / f"{spec.name}.log", env=env
    )
    return RunningService(
        spec=spec,
        process=process,
        grpc_address=f"{HOST}:{grpc_port}",
        http_url=f"http://{HOST}:{http_port}/" if http_port else None,
    )

"""The whole system for end-to-end tests: every service of `services/` started as its own
process the way `make run` starts it (the infra launcher's `discover_services` and
`start_service`), on free ports, each with a database of its own on the test PostgreSQL server,
all on the test broker; stopped at the end.

    with running_system(infra.database_url, infra.kafka_bootstrap, log_dir) as system:
        system.address("routing")  # host:port of its gRPC server

(`tests-e2e/conftest.py` makes it the session fixture `system`.)"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra.health import grpc_serving, wait_serving
from contactcenter.infra.paths import project_root
from contactcenter.infra.process import free_port
from contactcenter.infra.services import (
    HOST,
    RunningService,
    discover_services,
    start_service,
)
from contactcenter.testing.services import create_database, drop_database

HEALTH_TIMEOUT_S = 120.0
ALL_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SERVICE)


@dataclass
class System:
    services: dict[str, RunningService]
    kafka_bootstrap: str
    smtp_port: int
    #: Where the email service relays outgoing mail (replies): nothing listens there until a
    #: test starts its own SMTP peer on it (e.g. an aiosmtpd Controller).
    relay_port: int = 0

    def address(self, name: str) -> str:
        return self.services[name].grpc_address

    def alive(self, name: str) -> bool:
        return self.services[name].process.alive()

    def serving(self, name: str) -> bool:
        return grpc_serving(self.address(name), timeout=5.0)

    def log_tail(self, name: str, lines: int = 40) -> str:
        return self.services[name].process.log_tail(lines)


def token_metadata(
    tenant_id: str, subject: str = "e2e", roles: tuple[Role, ...] = ALL_ROLES
) -> tuple[tuple[str, str]]:
    """Call metadata with a development-key bearer token of `tenant_id`."""
    return metadata_for(issue_token(tenant_id, roles, subject))


def new_tenant(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextmanager
def running_system(server_url: str, kafka_bootstrap: str, log_dir: Path) -> Iterator[System]:
    specs = discover_services(project_root())
    databases: list[str] = []
    running: dict[str, RunningService] = {}
    peers: dict[str, str] = {}
    smtp_port = free_port(HOST)
    relay_port = free_port(HOST)
    stop = threading.Event()
    try:
        # Ports first, so that every service knows every peer's address from the start, and
        # all start at once (each still waits for its own database and broker).
        specs = [
            dataclasses.replace(
                spec,
                grpc_port=free_port(HOST),
                http_port=free_port(HOST) if spec.http_port else None,
            )
            for spec in specs
        ]
        for spec in specs:
            key = spec.name.upper().replace("-", "_")
            peers[f"CC_PEER_{key}_GRPC"] = f"{HOST}:{spec.grpc_port}"
        for spec in specs:
            name = f"e2e_{spec.name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            url = asyncio.run(create_database(server_url, name))
            databases.append(name)
            p = spec.env_prefix
            env = {
                **peers,
                f"{p}KAFKA_SESSION_TIMEOUT_MS": "3000",
                f"{p}KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            }
            if spec.name == "email":
                env[f"{p}SMTP_PORT"] = str(smtp_port)
                env[f"{p}RELAY_HOST"] = HOST
                env[f"{p}RELAY_PORT"] = str(relay_port)
                # A reply sent while no peer listens is retried soon, not minutes later.
                env[f"{p}REPLY_BASE_DELAY_S"] = "1"
                env[f"{p}REPLY_MAX_DELAY_S"] = "5"
            if spec.name == "wfm" and "CC_PEER_REPORTING_GRPC" in peers:
                env[f"{p}REPORTING_ADDRESS"] = peers["CC_PEER_REPORTING_GRPC"]
            running[spec.name] = start_service(
                spec,
                database_url=url,
                kafka_bootstrap=kafka_bootstrap,
                log_dir=log_dir,
                extra_env=env,
            )
        for service in running.values():
            wait_serving(service, HEALTH_TIMEOUT_S, stop)
        yield System(
            services=running,
            kafka_bootstrap=kafka_bootstrap,
            smtp_port=smtp_port,
            relay_port=relay_port,
        )
    finally:
        for service in running.values():  # all stop together, each within its grace
            if service.process.alive():
                service.process.send_signal(signal.SIGTERM)
        for service in reversed(list(running.values())):
            service.process.stop()
        for name in databases:
            asyncio.run(drop_database(server_url, name))

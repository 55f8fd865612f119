"""A service under test, in-process: its own database on the test server, the test broker, a
free port, and a client channel; everything stopped and dropped afterwards.

    async with temporary_database(infra.database_url, "test_interactions") as url:
        app = create_app(InteractionsSettings(**service_test_settings(url, infra.kafka_bootstrap)))
        async with serving(app) as channel:
            ...
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import grpc

from contactcenter.infra.postgres import database_url_for
from contactcenter.servicekit import ServiceApp


def service_test_settings(database_url: str, kafka_bootstrap: str) -> dict[str, Any]:
    """What every service under test is configured with (Tansu joins groups in ~2 s with these
    timeouts instead of 10+)."""
    return {
        "database_url": database_url,
        "kafka_bootstrap_servers": kafka_bootstrap,
        "grpc_port": 0,
        "kafka_session_timeout_ms": 3000,
        "kafka_heartbeat_interval_ms": 1000,
    }


async def create_database(server_url: str, name: str) -> str:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url_for(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def temporary_database(server_url: str, prefix: str = "test") -> AsyncIterator[str]:
    """A new empty database on the server; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = await create_database(server_url, name)
    try:
        yield url
    finally:
        await drop_database(server_url, name)


@asynccontextmanager
async def serving(app: ServiceApp) -> AsyncIterator[grpc.aio.Channel]:
    """Start the app, give a channel to its gRPC server, stop both afterwards."""
    await app.start()
    try:
        assert app.grpc is not None
        async with grpc.aio.insecure_channel(app.grpc.address) as channel:
            yield channel
    finally:
        await app.stop()

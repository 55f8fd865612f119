"""A projection process for test_consumer.py: counts events per tenant into a table.

With `--crash-after-commit` it dies (os._exit) right after the first batch's database
transaction committed and before Kafka offsets are committed: the worst moment for a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Sequence

import asyncpg

from contactcenter.eventbus import consumer as consumer_module
from contactcenter.eventbus import subscribe_projection
from contactcenter.eventstore import PgConnection
from contactcenter.messaging.broker import create_broker
from contactcenter.messaging.cloudevents import EventEnvelope
from contactcenter.messaging.settings import KafkaSettings


class CountPerTenant:
    def __init__(self, name: str, topic: str, schema: str) -> None:
        self.name = name
        self.topics: Sequence[str] = [topic]
        self._schema = schema

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        await conn.execute(
            f'insert into "{self._schema}".counts (tenant_id, n) values ($1, 1) '
            "on conflict (tenant_id) do update set n = counts.n + 1",
            envelope.tenant_id,
        )


async def main(args: argparse.Namespace) -> None:
    if args.crash_after_commit:
        real_apply = consumer_module.apply_in_order

        async def apply_then_crash(*a: object, **kw: object) -> None:
            await real_apply(*a, **kw)  # type: ignore[arg-type]
            os._exit(9)

        consumer_module.apply_in_order = apply_then_crash  # type: ignore[assignment]

    pool = await asyncpg.create_pool(args.database_url, min_size=1, max_size=4)
    assert pool is not None
    settings = KafkaSettings(
        bootstrap_servers=args.bootstrap,
        client_id=args.name,
        fetch_max_wait_ms=5,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
        max_batch_records=50,
    )
    broker = create_broker(settings)
    subscribe_projection(
        broker, pool, args.schema, CountPerTenant(args.name, args.topic, args.schema), settings
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await broker.start()
    await stop.wait()
    await broker.stop()
    await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("database-url", "schema", "bootstrap", "topic", "name"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--crash-after-commit", action="store_true")
    asyncio.run(main(parser.parse_args()))

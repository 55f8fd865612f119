"""SMTP intake in worker processes: the same listener (SO_REUSEPORT on the service's SMTP
port, the kernel spreads connections) and the same keep-first writer, each in a process of its
own, so receiving mail uses more than the one core of the service's event loop. A worker
announces its commits with a NOTIFY on `<schema>_inbox`; the processor listens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from multiprocessing.process import BaseProcess
from typing import Any

from contactcenter.email.adapters.blobs import PostgresBlobStore
from contactcenter.email.adapters.intake import IntakeWriter
from contactcenter.email.adapters.smtp import SmtpHandler, SmtpListener
from contactcenter.email.application.mailboxes import Mailboxes
from contactcenter.email.application.tenants import TenantSettings
from contactcenter.eventstore import PostgresEventStore, create_pool

_log = logging.getLogger(__name__)


def inbox_channel(schema: str) -> str:
    return f"{schema}_inbox"[:63]


async def _serve(settings: dict[str, Any], schema: str, port: int, ready: Any) -> None:
    """`settings`: database_url, smtp_host, smtp_hostname, smtp_max_message_bytes, log_level,
    limits and tenant_limits (the configured defaults, as dicts) (plain values: nothing secret
    crosses to the worker but the database URL)."""
    from contactcenter.observability import setup_telemetry

    setup_telemetry("email-smtp", log_level=settings["log_level"])
    pool = await create_pool(settings["database_url"], min_size=1, max_size=4)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    mailboxes = Mailboxes(pool, schema, PostgresEventStore(pool, schema, notify=False))
    await mailboxes.refresh()
    from contactcenter.email.config import LimitSettings

    default = LimitSettings(**settings["limits"])
    per_tenant = {t: LimitSettings(**v) for t, v in settings["tenant_limits"].items()}
    tenants = TenantSettings(
        pool, schema, None, lambda tenant: per_tenant.get(tenant, default).limits()
    )
    await tenants.refresh()
    channel = inbox_channel(schema)
    pending = False

    async def announce() -> None:
        nonlocal pending
        while pending:
            pending = False
            async with pool.acquire() as conn:
                await conn.execute("select pg_notify($1, '')", channel)

    notifier: asyncio.Task[None] | None = None

    def committed() -> None:
        nonlocal pending, notifier
        pending = True
        if notifier is None or notifier.done():
            notifier = asyncio.create_task(announce())

    writer = IntakeWriter(pool, schema, PostgresBlobStore(pool, schema), on_committed=committed)
    listener = SmtpListener(
        SmtpHandler(mailboxes, writer, tenants),
        host=settings["smtp_host"],
        port=port,
        hostname=settings["smtp_hostname"],
        max_message_bytes=settings["smtp_max_message_bytes"],
        reuse_port=True,
    )
    await listener.start()
    ready.set()
    refresh = asyncio.create_task(mailboxes.run_refresh(stop, 1.0))
    refresh_limits = asyncio.create_task(tenants.run_refresh(stop, 1.0))
    try:
        await stop.wait()
    finally:
        await listener.stop()
        await refresh
        await refresh_limits
        await pool.close()


def _main(settings: dict[str, Any], schema: str, port: int, ready: Any) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, schema, port, ready))


class SmtpWorkers:
    """Starts the worker processes, waits until each listens, and restarts one that dies."""

    def __init__(self, count: int, settings: dict[str, Any], schema: str) -> None:
        self._count = count
        self._settings = settings
        self._schema = schema
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._port = 0
        self._stopping = False

    def _spawn(self) -> tuple[BaseProcess, Any]:
        ready = self._context.Event()
        process = self._context.Process(
            target=_main, args=(self._settings, self._schema, self._port, ready), daemon=True
        )
        process.start()
        return process, ready

    async def start(self, port: int, timeout_s: float = 60.0) -> None:
        self._port = port
        started = [self._spawn() for _ in range(self._count)]
        for process, ready in started:
            self._processes.append(process)
            if not await asyncio.to_thread(ready.wait, timeout_s):
                raise RuntimeError("an SMTP worker process did not start listening")
        _log.warning("%d SMTP worker processes on port %d", self._count, port)

    async def supervise(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for i, process in enumerate(self._processes):
                if not process.is_alive() and not (stop.is_set() or self._stopping):
                    _log.warning(
                        "SMTP worker %s exited (%s); starting another",
                        process.pid,
                        process.exitcode,
                    )
                    self._processes[i], _ = self._spawn()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def stop(self) -> None:
        self._stopping = True
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()
        self._processes = []

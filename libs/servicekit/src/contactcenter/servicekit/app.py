"""`ServiceApp`: start a service's parts in order, stop them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, Union

import asyncpg
import grpc
import uvloop
from faststream.kafka import KafkaBroker

from contactcenter.contracts.events import DomainEvent
from contactcenter.contracts.topics import topic_for
from contactcenter.eventbus import OutboxRelay, Projection, subscribe_projection
from contactcenter.eventstore import (
    PG_OUTAGE_ERRORS,
    PostgresEventStore,
    apply_migrations,
    create_pool,
    prune_applied,
)
from contactcenter.grpckit import GrpcServer, HealthState, ServiceRegistration, create_server
from contactcenter.messaging.admin import ensure_topics
from contactcenter.messaging.asyncapi import render_asyncapi
from contactcenter.messaging.broker import create_broker
from contactcenter.messaging.cloudevents import EventEnvelope
from contactcenter.messaging.publisher import EnvelopePublisher
from contactcenter.messaging.settings import KafkaSettings
from contactcenter.messaging.subscriber import subscribe_envelope_batches
from contactcenter.observability import Telemetry, setup_telemetry
from contactcenter.servicekit.settings import ServiceSettings
from contactcenter.servicekit.tracing import ServerTracingInterceptor

#: A call that met a database outage (a PostgreSQL restart) may be tried again: UNAVAILABLE, the
#: code gRPC clients retry, not INTERNAL.
OUTAGE_STATUS: dict[type[BaseException], grpc.StatusCode] = {
    error: grpc.StatusCode.UNAVAILABLE for error in PG_OUTAGE_ERRORS
}

_T = TypeVar("_T")
_log = logging.getLogger(__name__)


#: A background loop: runs until `stop` is set; it resumes from its own checkpoint.
Loop = Callable[[asyncio.Event], Awaitable[None]]

#: How long a crashed background loop waits before it runs again.
RESTART_DELAY_S = 1.0


@dataclass
class ServiceContext:
    """What a service's adapters are built from once the infrastructure is up."""

    name: str
    settings: ServiceSettings
    schema: str
    pool: asyncpg.Pool
    store: PostgresEventStore
    broker: KafkaBroker
    health: HealthState
    telemetry: Telemetry


@dataclass
class ServiceDefinition:
    """What a service supplies: its name (= topic context), migrations, gRPC services and
    projections, each built from the context."""

    name: str
    migrations: Path | None = None
    grpc_services: Callable[[ServiceContext], Sequence[ServiceRegistration]] = lambda _: ()
    projections: Callable[[ServiceContext], Sequence[Projection]] = lambda _: ()
    #: Whether the service owns an event topic of its own (`cc.<name>.events.v1`).
    publishes: bool = True
    #: The event models it publishes (the payload schema of its AsyncAPI document).
    event_models: Sequence[type[DomainEvent]] = field(default_factory=tuple)
    #: The topics its projections and process managers consume; declared here so that the
    #: AsyncAPI document can be rendered without infrastructure (checked at start-up).
    consumes: Sequence[str] = field(default_factory=tuple)
    extra_topics: Sequence[str] = field(default_factory=tuple)
    #: Long-running loops of the service (a projection tailing its own store, a timer wheel),
    #: by name; each runs until the given event is set, supervised like the outbox relay.
    background: Callable[[ServiceContext], Sequence[tuple[str, Loop]]] = lambda _: ()

    @property
    def topic(self) -> str:
        return topic_for(self.name).name

    def asyncapi(self) -> str:
        """The service's AsyncAPI document (checked in beside the service, kept current by a
        test): its event topic with the payload schema of its events, and what it consumes."""
        broker = create_broker(KafkaSettings(bootstrap_servers="kafka:9092", client_id=self.name))
        if self.publishes:
            schema: Any = dict[str, Any]
            if self.event_models:
                schema = Union[tuple(self.event_models)]  # noqa: UP007 (a runtime union)
            EnvelopePublisher(broker, self.topic, title=f"{self.topic}:publish", schema=schema)
        settings = KafkaSettings(bootstrap_servers="kafka:9092")
        for topic in self.consumes:
            subscribe_envelope_batches(
                broker, topic, _document_only, group_id=self.name, settings=settings
            )
        return render_asyncapi(
            broker, title=f"contactcenter {self.name}", description=self.description
        )

    @property
    def description(self) -> str:
        return f"Events of the {self.name} service (CloudEvents 1.0, Kafka binary mode)."


async def _document_only(batch: list[EventEnvelope]) -> None:
    raise RuntimeError("a subscriber declared for the AsyncAPI document only")


class ServiceApp:
    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self.definition = definition
        self.settings = settings
        self.health = HealthState()
        self.context: ServiceContext | None = None
        self.grpc: GrpcServer | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._broker: KafkaBroker | None = None
        self._telemetry: Telemetry | None = None

    @property
    def schema(self) -> str:
        return self.settings.db_schema or self.definition.name.replace("-", "_")

    async def start(self) -> None:
        d, s = self.definition, self.settings
        self._telemetry = setup_telemetry(d.name, log_level=s.log_level)
        # gRPC first: orchestrators and `make run` can ask its health (NOT_SERVING) at once.
        self._pool = await self._connect_database()
        await apply_migrations(
            self._pool, self.schema, [d.migrations] if d.migrations is not None else []
        )
        store = PostgresEventStore(self._pool, self.schema, group_commit=s.db_group_commit)
        kafka = s.kafka(client_id=d.name)
        self._broker = create_broker(kafka)
        self.context = ServiceContext(
            name=d.name,
            settings=s,
            schema=self.schema,
            pool=self._pool,
            store=store,
            broker=self._broker,
            health=self.health,
            telemetry=self._telemetry,
        )
        self.grpc = create_server(
            s.grpc(),
            list(d.grpc_services(self.context)),
            health_state=self.health,
            interceptors=[ServerTracingInterceptor()],
            error_codes=OUTAGE_STATUS,
        )
        await self.grpc.start()
        await self.health.mark_ready("database")

        projections = list(d.projections(self.context))
        undeclared = {t for p in projections for t in p.topics} - set(d.consumes)
        if undeclared:
            raise ValueError(f"{d.name}: add {sorted(undeclared)} to ServiceDefinition.consumes")
        for projection in projections:
            subscribe_projection(self._broker, self._pool, self.schema, projection, kafka)
        await asyncio.wait_for(
            ensure_topics(
                s.kafka_bootstrap_servers, self._topics(projections), partitions=s.kafka_partitions
            ),
            s.startup_timeout_s,
        )
        await self._broker.start()
        await self.health.mark_ready("broker")
        loops = list(d.background(self.context))
        if d.publishes:
            relay = OutboxRelay(
                pool=self._pool,
                store=store,
                broker=self._broker,
                source=f"/contactcenter/{d.name}",
                bootstrap_servers=s.kafka_bootstrap_servers,
                partitions=s.kafka_partitions,
            )
            loops.insert(0, ("outbox-relay", relay.run))
        if projections:
            loops.append(("prune-applied", self._prune_applied))
        self._loops = [
            asyncio.create_task(self._supervised(name, loop), name=name) for name, loop in loops
        ]
        await self.health.mark_ready("projections")
        _log.info("%s serving gRPC on %s", d.name, self.grpc.address)

    def _topics(self, projections: Sequence[Projection]) -> list[str]:
        topics = set(self.definition.extra_topics)
        if self.definition.publishes:
            topics.add(self.definition.topic)
        for projection in projections:
            topics.update(projection.topics)
        return sorted(topics | {f"{t}.dlq" for t in topics})

    async def _connect_database(self) -> asyncpg.Pool:
        s = self.settings
        deadline = asyncio.get_running_loop().time() + s.startup_timeout_s
        while True:
            try:
                return await create_pool(
                    s.database_url, min_size=s.db_pool_min_size, max_size=s.db_pool_max_size
                )
            except (OSError, asyncpg.PostgresError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"database not reachable: {exc}") from exc
                _log.warning("waiting for the database: %s", exc)
                await asyncio.sleep(1.0)

    async def _prune_applied(self, stop: asyncio.Event) -> None:
        """Delete the ids of events applied longer ago than the retention, every
        `prune_applied_every_s` (the first time at start-up)."""
        assert self._pool is not None
        retention = timedelta(seconds=self.settings.applied_retention_s)
        while not stop.is_set():
            deleted = await prune_applied(self._pool, self.schema, retention=retention)
            if deleted:
                _log.info("pruned %d ids of events applied before %s ago", deleted, retention)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.prune_applied_every_s)

    async def _supervised(self, name: str, loop: Loop) -> None:
        await run_supervised(name, loop, self._stop)

    async def stop(self) -> None:
        self._stop.set()
        if self.grpc is not None:
            await self.grpc.stop()
        for task in self._loops:
            try:
                await asyncio.wait_for(task, 10)  # cancelled after that; resumes from checkpoint
            except (TimeoutError, asyncio.CancelledError, Exception) as exc:
                # A loop cancelled while closing a client can surface its CancelledError
                # here; only a cancellation of stop() itself goes on up.
                current = asyncio.current_task()
                if isinstance(exc, asyncio.CancelledError) and current and current.cancelling():
                    raise
                _log.warning("%s did not stop cleanly: %r", task.get_name(), exc)
        self._loops = []
        if self._broker is not None:
            await self._broker.stop()
        if self.context is not None:
            await self.context.store.aclose()
        if self._pool is not None:
            await self._pool.close()
        if self._telemetry is not None:
            self._telemetry.shutdown()

    async def serve(self) -> None:
        """Start, run until SIGINT/SIGTERM, stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGUSR1, log_tasks)
        try:
            await self.start()
            # What start-up made (modules, clients, loaded state) lives as long as the process:
            # out of the collector's generations, a full collection no longer walks it all
            # (tens of milliseconds that a request or an offer would wait for).
            gc.freeze()
            await self._stop.wait()
        finally:
            await self.stop()

    def run(self) -> None:
        """Serve in this process, plus `settings.workers - 1` more processes of the same
        command on the same port, stopped with this one."""
        workers = start_workers(self.settings)
        try:
            self.run_coroutine(self.serve())
        finally:
            stop_workers(workers)

    def run_coroutine(self, main: Coroutine[Any, Any, None]) -> None:
        """Run the service's main coroutine to completion on the configured event loop."""
        if self.settings.event_loop == "uvloop":
            run_on_uvloop(main)
        else:
            asyncio.run(main)


async def run_supervised(
    name: str, loop: Loop, stop: asyncio.Event, *, restart_delay_s: float = RESTART_DELAY_S
) -> None:
    """Run a loop until `stop` is set; a crash is logged and the loop runs again (it resumes
    from its checkpoint) instead of leaving the service half alive."""
    while not stop.is_set():
        try:
            await loop(stop)
        except asyncio.CancelledError:
            # A cancellation raised from inside the loop (aiokafka cancels the futures of
            # records it gave up on, and gather passes that on) is a failure like any other;
            # only the cancellation of this task ends it. (It ended the outbox relay for good
            # after the broker had been paused.)
            current = asyncio.current_task()
            if current is None or current.cancelling():
                raise
            _log.exception(
                "%s was cancelled from inside; restarting in %.0f s", name, restart_delay_s
            )
        except Exception:
            _log.exception("%s failed; restarting in %.0f s", name, restart_delay_s)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(restart_delay_s):
                    await stop.wait()


def log_tasks() -> None:
    """Log where every asyncio task of the process waits (`kill -USR1 <pid>`): what a stuck
    loop awaits, which a thread dump (py-spy) cannot show."""
    tasks = asyncio.all_tasks()
    lines = [f"{len(tasks)} asyncio tasks:"]
    for task in sorted(tasks, key=lambda t: t.get_name()):
        lines.append(f"  {task.get_name()}: {' -> '.join(_awaiting(task.get_coro())) or '?'}")
    _log.warning("\n".join(lines))


def _awaiting(awaitable: Any) -> list[str]:
    """The chain of coroutines (and async generators) a task is suspended in, outermost
    first."""
    chain = []
    while awaitable is not None:
        frame = next(
            (
                getattr(awaitable, a)
                for a in ("cr_frame", "ag_frame", "gi_frame")
                if hasattr(awaitable, a)
            ),
            None,
        )
        if frame is not None:
            chain.append(
                f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})"
            )
        awaitable = next(
            (
                getattr(awaitable, a)
                for a in ("cr_await", "ag_await", "gi_yieldfrom")
                if hasattr(awaitable, a)
            ),
            None,
        )
    return chain


def run_on_uvloop(main: Coroutine[Any, Any, _T]) -> _T:
    """`uvloop.run(main)` without libuv's io_uring (unless `UV_USE_IO_URING` says otherwise).

    libuv sets up an io_uring with a kernel submission-polling thread (`iou-sqp-<pid>`, counted
    in the process's CPU) for file operations that no service makes through the loop; the thread
    busy-polls after each submission and showed as a large share of the profiles service's CPU
    under load (bench/profiles.py). libuv reads the variable once per process, at its first
    loop.
    """
    os.environ.setdefault("UV_USE_IO_URING", "0")
    return uvloop.run(main)


#: How long stopping workers waits for them before killing them.
WORKER_STOP_S = 20.0


def start_workers(settings: ServiceSettings) -> list[subprocess.Popen[bytes]]:
    """Start `settings.workers - 1` copies of this process's command (each with one worker,
    sharing the gRPC port); none when one worker is asked for."""
    if settings.workers == 1:
        return []
    if settings.grpc_port == 0:
        raise ValueError("workers > 1 need a fixed gRPC port (grpc_port)")
    prefix = str(settings.model_config.get("env_prefix", ""))
    env = {**os.environ, f"{prefix}WORKERS": "1", f"{prefix}GRPC_REUSE_PORT": "true"}
    command = [sys.executable, *sys.orig_argv[1:]]
    _log.info(
        "starting %d more worker processes on port %d", settings.workers - 1, settings.grpc_port
    )
    return [subprocess.Popen(command, env=env) for _ in range(settings.workers - 1)]


def stop_workers(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(WORKER_STOP_S)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

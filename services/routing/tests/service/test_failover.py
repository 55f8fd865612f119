"""Sharding and failover with two real routing processes on one consumer group.

Each instance owns the tenants of the partitions the group gives it. One is killed with
SIGKILL while contacts arrive and offers are being accepted; the survivor takes over its
tenants (rebuilt from their streams). No contact is lost, none is assigned twice, and the time
until the killed instance's tenants are served again is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from contactcenter.contracts.events import registry, utc_now
from contactcenter.contracts.topics import topic_for
from contactcenter.eventstore import PostgresEventStore, create_pool
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra.process import free_port
from contactcenter.messaging.cloudevents import EventEnvelope, decode, encode
from contactcenter.routing.adapters.inbound import INTERACTION_QUEUED, INTERACTIONS_TOPIC
from contactcenter.routing.domain.events import ContactAssigned, stream_id_for
from contactcenter.routing.v1 import routing_pb2 as pb
from contactcenter.routing.v1 import routing_pb2_grpc as pb_grpc
from contactcenter.testing.services import temporary_database

if TYPE_CHECKING:
    from contactcenter.testing.fixtures import TestInfra

ROUTING_TOPIC = topic_for("routing").name
CONTACTS_PER_TENANT = 15
AGENTS_PER_TENANT = CONTACTS_PER_TENANT + 5
RETRIED = {
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.NOT_FOUND,  # an instance that has not seen the offer's stream yet
}


class Instance:
    """`python -m contactcenter.routing` in its own process, logging JSON to a file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = log_dir / f"{name}.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "contactcenter.routing"],
            env={**env, "CC_ROUTING_GRPC_PORT": str(self.port)},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = pb_grpc.RoutingServiceStub(self.channel)
        self.alive = True

    async def serving(self) -> None:
        health = health_pb2_grpc.HealthStub(self.channel)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.log.read_text()}"
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            assert time.monotonic() < deadline, f"{self.name} never served:\n{self.log.read_text()}"
            await asyncio.sleep(0.1)

    def assigned_partitions(self) -> list[int] | None:
        """The partitions of the instance's latest assignment (None: none yet)."""
        latest = None
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and "assigned_partitions" in entry:
                    latest = list(entry["assigned_partitions"])
        return latest

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.alive = False

    async def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        await self.channel.close()
        self._log_file.close()


def _tenant_per_partition(prefix: str, partitions: int) -> dict[int, str]:
    tenants: dict[int, str] = {}
    n = 0
    while len(tenants) < partitions:
        tenant = f"{prefix}-{n}"
        tenants.setdefault((murmur2(tenant.encode()) & 0x7FFFFFFF) % partitions, tenant)
        n += 1
    return tenants


async def _call(instances: list[Instance], rpc: str, request: Any, metadata: Any) -> Any:
    """Like a client behind a load balancer: any live instance, retried when it is not ready."""
    for attempt in range(100):
        instance = random.choice([i for i in instances if i.alive])
        try:
            return await getattr(instance.stub, rpc)(request, metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED or attempt == 99:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


async def _configure(instances: list[Instance], tenant: str) -> None:
    admin = metadata_for(issue_token(tenant, (Role.ADMIN,), "admin"))
    queue = pb.Queue(queue_id="q", offer_timeout_s=120, wrap_up_s=0)
    await _call(
        instances,
        "UpsertQueue",
        pb.UpsertQueueRequest(request_id=f"{tenant}:q", queue=queue),
        admin,
    )
    for n in range(AGENTS_PER_TENANT):
        agent_id = f"a-{n}"
        upsert = pb.UpsertAgentRequest(
            request_id=f"{tenant}:{agent_id}", agent=pb.Agent(agent_id=agent_id, queues=["q"])
        )
        await _call(instances, "UpsertAgent", upsert, admin)
        available = pb.SetAgentStateRequest(
            request_id=f"{tenant}:{agent_id}:on", presence=pb.PRESENCE_AVAILABLE
        )
        await _call(
            instances,
            "SetAgentState",
            available,
            metadata_for(issue_token(tenant, (Role.AGENT,), agent_id)),
        )


async def _queue_contact(producer: AIOKafkaProducer, tenant: str, interaction_id: str) -> None:
    event_id = uuid.uuid4()
    envelope = EventEnvelope(
        id=event_id,
        type=INTERACTION_QUEUED,
        source="/contactcenter/interactions",
        subject=f"interaction/{tenant}/{interaction_id}",
        time=utc_now(),
        tenant_id=tenant,
        data={
            "event_id": str(event_id),
            "tenant_id": tenant,
            "interaction_id": interaction_id,
            "queue_id": "q",
            "channel": "voice",
        },
    )
    record = encode(envelope)
    await producer.send_and_wait(
        INTERACTIONS_TOPIC, value=record.value, key=record.key, headers=record.headers
    )


async def test_a_killed_instances_tenants_move_to_the_survivor_with_nothing_lost_or_doubled(
    infra: TestInfra, tmp_path: Path
) -> None:
    async with temporary_database(infra.database_url, "test_routing_failover") as url:
        env = {
            **os.environ,
            "CC_ROUTING_DATABASE_URL": url,
            "CC_ROUTING_KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
            "CC_ROUTING_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "CC_ROUTING_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "CC_ROUTING_TIMER_MAX_SLEEP_S": "0.2",
        }
        instances = [Instance(name, env, tmp_path) for name in ("routing-a", "routing-b")]
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
        offers = AIOKafkaConsumer(
            bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
        )
        await producer.start()
        await offers.start()
        try:
            await asyncio.gather(*(i.serving() for i in instances))
            partitions = len(await producer.partitions_for(INTERACTIONS_TOPIC))
            tenants = _tenant_per_partition(f"fo-{uuid.uuid4().hex[:8]}", partitions)
            for tenant in tenants.values():
                await _configure(instances, tenant)

            # Both instances must own partitions before one of them dies.
            deadline = time.monotonic() + 60
            while not all(i.assigned_partitions() for i in instances):
                assert time.monotonic() < deadline, "the group never gave both instances work"
                await asyncio.sleep(0.1)
            victim, survivor = instances
            victim_partitions = victim.assigned_partitions() or []
            victim_tenants = {tenants[p] for p in victim_partitions}
            assert victim_tenants and victim_tenants != set(tenants.values())

            routing_partitions = [
                TopicPartition(ROUTING_TOPIC, p)
                for p in await producer.partitions_for(ROUTING_TOPIC)
            ]
            offers.assign(routing_partitions)
            await offers.seek_to_end(*routing_partitions)

            assigned: dict[str, set[str]] = defaultdict(set)
            #: Contacts queued after the kill, and when each tenant's first of them was offered:
            #: its consumer was working again.
            queued_after_kill: set[str] = set()
            first_offer_after_kill: dict[str, float] = {}
            killed_at: list[float] = []
            accepts: set[asyncio.Task[Any]] = set()

            async def accept(tenant: str, offer_id: str, agent_id: str) -> None:
                await asyncio.sleep(random.uniform(0, 0.3))  # an agent takes a moment
                request = pb.AcceptOfferRequest(request_id=f"accept:{offer_id}", offer_id=offer_id)
                agent = metadata_for(issue_token(tenant, (Role.AGENT,), agent_id))
                await _call(instances, "AcceptOffer", request, agent)

            async def follow_routing_events() -> None:
                seen: set[uuid.UUID] = set()
                while True:
                    batches = await offers.getmany(timeout_ms=100)
                    for records in batches.values():
                        for record in records:
                            envelope = decode(record.headers, record.value)
                            if envelope.tenant_id not in tenants.values() or envelope.id in seen:
                                continue  # another test's tenant, or the relay's re-send
                            seen.add(envelope.id)
                            data = envelope.data
                            if envelope.type == "routing.OfferIssued.v1":
                                key = f"{envelope.tenant_id}/{data['interaction_id']}"
                                if key in queued_after_kill:
                                    first_offer_after_kill.setdefault(
                                        envelope.tenant_id, time.monotonic()
                                    )
                                task = asyncio.create_task(
                                    accept(envelope.tenant_id, data["offer_id"], data["agent_id"])
                                )
                                accepts.add(task)
                                task.add_done_callback(accepts.discard)
                            elif envelope.type == ContactAssigned.event_type:
                                key = f"{envelope.tenant_id}/{data['interaction_id']}"
                                assigned[key].add(data["agent_id"])

            follower = asyncio.create_task(follow_routing_events())
            expected = set()
            try:
                for n in range(CONTACTS_PER_TENANT):
                    for tenant in tenants.values():
                        await _queue_contact(producer, tenant, f"i-{n}")
                        expected.add(f"{tenant}/i-{n}")
                        if killed_at:
                            queued_after_kill.add(f"{tenant}/i-{n}")
                    if n == CONTACTS_PER_TENANT // 3:
                        victim.kill()
                        killed_at.append(time.monotonic())
                    await asyncio.sleep(0.15)

                deadline = time.monotonic() + 90
                while set(assigned) != expected:
                    assert time.monotonic() < deadline, (
                        f"never assigned: {sorted(expected - set(assigned))}\n"
                        f"survivor log:\n{survivor.log.read_text()[-4000:]}"
                    )
                    assert not follower.done(), follower.exception()
                    await asyncio.sleep(0.1)
            finally:
                follower.cancel()
                for task in [follower, *accepts]:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                        await task

            # Nothing assigned twice, no agent holding two calls: on Kafka ...
            assert all(len(agents) == 1 for agents in assigned.values()), assigned
            per_agent: dict[tuple[str, str], int] = defaultdict(int)
            for key, agents in assigned.items():
                per_agent[(key.split("/")[0], next(iter(agents)))] += 1
            assert max(per_agent.values()) == 1
            # ... and in the event store, the source of truth.
            pool = await create_pool(url, min_size=1, max_size=2)
            try:
                store = PostgresEventStore(pool, "routing")
                for tenant in tenants.values():
                    records = await store.read_stream(stream_id_for(tenant))
                    events = [r.decode(registry) for r in records]
                    assignments = [e for e in events if isinstance(e, ContactAssigned)]
                    ids = [e.interaction_id for e in assignments]
                    assert sorted(ids) == sorted(f"i-{n}" for n in range(CONTACTS_PER_TENANT))
                await store.aclose()
            finally:
                await pool.close()

            recovery = max(first_offer_after_kill[t] for t in victim_tenants) - killed_at[0]
            taken_over = survivor.assigned_partitions() or []
            assert set(victim_partitions) <= set(taken_over)
            print(
                f"\nfailover: {len(victim_tenants)} tenants of the killed instance offered "
                f"contacts again from the survivor {recovery:.2f} s after SIGKILL "
                "(session timeout 3 s); "
                f"{len(expected)} contacts, each assigned once"
            )
        finally:
            await offers.stop()
            await producer.stop()
            for instance in instances:
                await instance.close()

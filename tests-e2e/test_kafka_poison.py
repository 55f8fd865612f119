"""Malformed Kafka messages, as any producer on the bus could write them, on every topic a
service consumes (read from the services' AsyncAPI documents): not a CloudEvent, bad JSON, an
event type nobody knows, a record keyed by another tenant than its CloudEvent says, a huge
value. Each goes to `<topic>.dlq`, once per consumer group of the topic (every consuming
service dead-letters it, the error in its `dlq_*` headers), and every consumer goes on with
the good events that follow on the same partition: a contact then goes its whole way (queued,
offered to an agent, counted by reporting, in the customer's history, emails turned into
contacts), which needs each of those consumers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contactcenter.common.v1 import common_pb2 as cpb
from contactcenter.contracts.events import utc_now
from contactcenter.email.v1 import email_pb2 as epb
from contactcenter.email.v1 import email_pb2_grpc as egrpc
from contactcenter.grpckit import Role
from contactcenter.infra.paths import project_root
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as igrpc
from contactcenter.messaging.admin import topic_partitions
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.profiles.v1 import profiles_pb2 as ppb
from contactcenter.profiles.v1 import profiles_pb2_grpc as pgrpc
from contactcenter.reporting.v1 import reporting_pb2 as rppb
from contactcenter.reporting.v1 import reporting_pb2_grpc as rpgrpc
from contactcenter.routing.v1 import routing_pb2 as rpb
from contactcenter.routing.v1 import routing_pb2_grpc as rgrpc
from contactcenter.testing.system import System, new_tenant, token_metadata

pytestmark = pytest.mark.slow

MARKER = "e2e_poison"  # a header of ours (not a CloudEvents attribute): which poison it is
HUGE_BYTES = 900_000  # under the broker's default 1 MiB record limit


def consumed_topics() -> dict[str, set[str]]:
    """topic -> the services that consume it, from their checked-in AsyncAPI documents."""
    consumers: dict[str, set[str]] = defaultdict(set)
    for document in sorted((project_root() / "services").glob("*/asyncapi.json")):
        spec = json.loads(document.read_text())
        for operation in spec.get("operations", {}).values():
            if operation.get("action") == "receive":
                channel = operation["channel"]["$ref"].rsplit("/", 1)[-1]
                topic = spec["channels"][channel].get("address") or channel.split(":")[0]
                consumers[topic].add(document.parent.name)
    return dict(consumers)


def _record(tenant: str, topic: str, type_: str, data: dict[str, Any]) -> Any:
    context = topic.split(".")[1]
    event_id = uuid.uuid4()
    return encode(
        EventEnvelope(
            id=event_id,
            type=type_,
            source=f"/contactcenter/{context}",
            subject=f"e2e/{tenant}/{event_id}",
            time=utc_now(),
            tenant_id=tenant,
            data={"event_id": str(event_id), "tenant_id": tenant, **data},
        )
    )


def poisons(tenant: str, topic: str, run: str) -> dict[str, tuple[bytes, bytes, list[Any]]]:
    """name -> (key, value, headers) of each malformed record for `topic`."""
    context = topic.split(".")[1]
    good = _record(tenant, topic, f"{context}.E2eProbe.v1", {})
    made: dict[str, tuple[bytes, bytes, list[Any]]] = {
        "not-a-cloudevent": (tenant.encode(), b"hello, I am not an event", []),
        "bad-json": (good.key, b'{"event_id": "x", broken', list(good.headers)),
        "json-not-an-object": (good.key, b'["a", "list"]', list(good.headers)),
        "type-not-a-wire-name": (
            good.key,
            good.value,
            [(k, b"com.example.whatever") if k == "ce_type" else (k, v) for k, v in good.headers],
        ),
        "wrong-tenant-key": (b"another-tenant", good.value, list(good.headers)),
        # Close to the broker's record limit, and not JSON at its end.
        "huge": (good.key, b'{"junk": "' + b"x" * HUGE_BYTES, list(good.headers)),
    }
    return {
        name: (key, value, [*headers, (MARKER, f"{run}:{name}".encode())])
        for name, (key, value, headers) in made.items()
    }


def skipped(tenant: str, topic: str) -> tuple[bytes, bytes, list[Any]]:
    """A well-formed CloudEvent of a type no consumer knows (a newer producer's, say): the
    services' readers skip event types they do not handle, by their documented contract
    (tolerant readers, so producers can add event types), so it is not dead-lettered; the
    consumers must still go on after it."""
    context = topic.split(".")[1]
    record = _record(tenant, topic, f"{context}.NoSuchEvent.v1", {"some": "thing"})
    return record.key, record.value, list(record.headers)


async def _produce(bootstrap: str, records: list[tuple[str, bytes, bytes, list[Any]]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=2 * 1024 * 1024
    )
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def _ends(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Where each partition of `topics` ends now (partitions asked by name: Tansu's answer
    for every topic at once can leave some out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        partitions = await topic_partitions(admin, topics)
    finally:
        await admin.close()
    assert set(partitions) == set(topics), f"topics without partitions: {partitions}"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _dead_letters(
    bootstrap: str,
    partitions: list[TopicPartition],
    run: str,
    needed: dict[tuple[str, str], int],
    within_s: float,
) -> tuple[dict[tuple[str, str], set[str]], dict[str, tuple[int, int | None]]]:
    """(dlq topic, poison) -> consumer groups that dead-lettered it (those of this run), and
    where the reading got in each partition (position, the broker's high watermark).

    Every partition is read from offset 0, sought explicitly: no offset the broker reports
    (earliest, latest) is trusted, as Tansu's can be wrong for a partition of a long-lived
    broker; this run's records are told apart by their marker."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, 0)
    try:
        deadline = time.monotonic() + within_s
        # Until each poison has its dead letters: a service may run several consumer groups
        # on one topic, so a total count could be reached while one poison has none.
        while time.monotonic() < deadline and any(len(found[k]) < n for k, n in needed.items()):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    headers = dict(record.headers)
                    marker = headers.get(MARKER, b"").decode()
                    if not marker.startswith(f"{run}:"):
                        continue
                    group = headers.get("dlq_consumer_group", b"?").decode()
                    assert headers.get("dlq_error"), f"dead letter without its error: {headers}"
                    found[(record.topic, marker.split(":", 1)[1])].add(group)
        reached = {
            f"{tp.topic}[{tp.partition}]": (await consumer.position(tp), consumer.highwater(tp))
            for tp in partitions
        }
    finally:
        await consumer.stop()
    return found, reached


def _eventually(what: str, probe: Callable[[], object], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except grpc.RpcError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _good_traffic(system: System, tenant: str) -> None:
    """A contact's whole way, which needs every consumer of every topic to go on."""
    md = token_metadata(tenant, "admin", (Role.SUPERVISOR, Role.ADMIN, Role.SERVICE))
    rid = lambda: str(uuid.uuid4())  # noqa: E731
    routing = rgrpc.RoutingServiceStub(grpc.insecure_channel(system.address("routing")))
    interactions = igrpc.InteractionsServiceStub(
        grpc.insecure_channel(system.address("interactions"))
    )
    profiles = pgrpc.ProfilesServiceStub(grpc.insecure_channel(system.address("profiles")))
    email = egrpc.EmailServiceStub(grpc.insecure_channel(system.address("email")))
    reporting = rpgrpc.ReportingServiceStub(grpc.insecure_channel(system.address("reporting")))
    queue, agent = "support", "agent-1"
    routing.UpsertQueue(
        rpb.UpsertQueueRequest(
            request_id=rid(), queue=rpb.Queue(queue_id=queue, name="Support", offer_timeout_s=600)
        ),
        metadata=md,
    )
    routing.UpsertAgent(
        rpb.UpsertAgentRequest(request_id=rid(), agent=rpb.Agent(agent_id=agent, queues=[queue])),
        metadata=md,
    )
    routing.SetAgentState(
        rpb.SetAgentStateRequest(request_id=rid(), agent_id=agent, presence=rpb.PRESENCE_AVAILABLE),
        metadata=md,
    )
    # reporting's own topic: its configuration events.
    reporting.ConfigureQueueReporting(
        rppb.ConfigureQueueReportingRequest(
            request_id=rid(),
            queue_id=queue,
            service_level_variant=rppb.SERVICE_LEVEL_VARIANT_ANSWERED_ONLY,
            service_level_threshold_s=42,
            service_level_target_percent=80,
        ),
        metadata=md,
    )
    profile_id = profiles.ResolveIdentity(
        ppb.ResolveIdentityRequest(
            request_id=rid(),
            identity=ppb.Identity(kind=ppb.IDENTITY_KIND_EMAIL, value="caller@customer.example"),
        ),
        metadata=md,
    ).profile_id
    created = interactions.CreateInteraction(
        ipb.CreateInteractionRequest(
            request_id=rid(),
            channel=cpb.CHANNEL_VOICE,
            direction=ipb.INTERACTION_DIRECTION_INBOUND,
            customer_profile_id=profile_id,
            queue=ipb.QueueTarget(queue_id=queue),
        ),
        metadata=md,
    )
    interaction_id = created.result.interaction_id

    # routing consumed the interactions topic: the agent is offered the contact.
    stream = routing.AgentStream(
        rpb.AgentStreamRequest(), metadata=token_metadata(tenant, agent, (Role.AGENT,)), timeout=60
    )
    offer = next(stream).offer
    stream.cancel()
    assert offer.interaction_id == interaction_id
    # interactions consumed the routing topic: the contact is offered there too.
    _eventually(
        "the interaction to be OFFERED (interactions consumes routing)",
        lambda: (
            interactions.GetInteraction(
                ipb.GetInteractionRequest(interaction_id=interaction_id), metadata=md
            ).interaction.state
            == ipb.INTERACTION_STATE_OFFERED
        ),
    )
    # profiles consumed the interactions topic: the contact is in the customer's history.
    _eventually(
        "the contact in the customer's history (profiles consumes interactions)",
        lambda: any(
            e.interaction_id == interaction_id
            for e in profiles.History(
                ppb.HistoryRequest(profile_id=profile_id, purpose="support"), metadata=md
            ).entries
        ),
    )

    # reporting consumed all three of its topics: its configuration, the offer, the agent.
    def reported() -> bool:
        stats = reporting.QueueStats(rppb.QueueStatsRequest(queue_ids=[queue]), metadata=md)
        agents = reporting.AgentStats(rppb.AgentStatsRequest(agent_ids=[agent]), metadata=md)
        return bool(
            stats.queues
            and stats.queues[0].service_level_variant == rppb.SERVICE_LEVEL_VARIANT_ANSWERED_ONLY
            and stats.queues[0].totals
            and stats.queues[0].totals[0].offered >= 1
            and agents.agents
        )

    _eventually("reporting to count the contact and the agent", reported)
    # interactions consumed the email topic: an email becomes a contact.
    mailbox = f"support-{tenant}@poison.example"
    email.RegisterMailbox(
        epb.RegisterMailboxRequest(
            request_id=rid(), address=mailbox, routing=epb.MailboxRouting(queue_id=queue)
        ),
        metadata=md,
    )
    raw = (
        f"From: Caller <caller@customer.example>\r\nTo: {mailbox}\r\nSubject: hello\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@customer.example>\r\n\r\nplease call back\r\n"
    ).encode()
    email.IngestMessage(
        epb.IngestMessageRequest(request_id=rid(), mailbox_address=mailbox, raw=raw), metadata=md
    )
    _eventually(
        "the email to become a contact (interactions consumes email)",
        lambda: (
            interactions.ListInteractions(
                ipb.ListInteractionsRequest(channels=[cpb.CHANNEL_EMAIL]), metadata=md
            ).interactions
        ),
    )


def test_malformed_messages_go_to_the_dlq_and_consumers_go_on(system: System) -> None:
    topics = consumed_topics()
    assert {"cc.interactions.events.v1", "cc.routing.events.v1", "cc.email.events.v1"} <= set(
        topics
    ), topics
    tenant = new_tenant("poison")
    run = uuid.uuid4().hex[:12]
    records = [
        (topic, key, value, headers)
        for topic in sorted(topics)
        for key, value, headers in [*poisons(tenant, topic, run).values(), skipped(tenant, topic)]
    ]
    dead_letter_queues = [f"{topic}.dlq" for topic in sorted(topics)]
    since = asyncio.run(_ends(system.kafka_bootstrap, dead_letter_queues))
    asyncio.run(_produce(system.kafka_bootstrap, records))
    _good_traffic(system, tenant)

    kinds = list(poisons(tenant, "cc.x.events.v1", run))
    needed = {
        (f"{topic}.dlq", kind): len(consumers)
        for topic, consumers in topics.items()
        for kind in kinds
    }
    found, reached = asyncio.run(
        _dead_letters(
            system.kafka_bootstrap,
            sorted(since),
            run,
            needed,
            within_s=60,
        )
    )
    problems = []
    for topic, consumers in sorted(topics.items()):
        for kind in kinds:
            groups = found.get((f"{topic}.dlq", kind), set())
            if len(groups) < len(consumers):
                problems.append(
                    f"{kind} on {topic}: dead-lettered by {sorted(groups) or 'nobody'}, "
                    f"but {sorted(consumers)} consume it"
                )
    if problems:  # what the DLQs received meanwhile, partition by partition
        now = asyncio.run(_ends(system.kafka_bootstrap, dead_letter_queues))
        grown = {f"{tp.topic}[{tp.partition}]": now[tp] - since.get(tp, 0) for tp in sorted(now)}
        problems.append(f"records added to the DLQs since the poisons: {grown}")
        problems.append(f"read up to (position, high watermark): {reached}")
    assert not problems, "\n".join(problems)
    for name in system.services:
        assert system.alive(name), f"{name} died:\n{system.log_tail(name)}"

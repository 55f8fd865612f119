"""The process manager (routing and email events from Kafka) and what subscribers see on
`cc.interactions.events.v1`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.events import utc_now
from contactcenter.interactions.v1 import interactions_pb2 as pb
from contactcenter.messaging.cloudevents import decode

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROUTING = "cc.routing.events.v1"
EMAIL = "cc.email.events.v1"
INTERACTIONS = "cc.interactions.events.v1"
QUEUE = "q-sales"
AGENT = "agent-3"


async def _state(api, iid: str, state: int) -> pb.Interaction:
    got = await api.get(iid)
    assert got.state == state, pb.InteractionState.Name(got.state)
    return got


async def test_routing_events_drive_offers_and_redelivery_changes_nothing(
    api, publisher, eventually, service
) -> None:
    iid = (await api.create(queue=pb.QueueTarget(queue_id=QUEUE))).interaction_id
    offer = {
        "interaction_id": iid,
        "offer_id": "offer-1",
        "agent_id": AGENT,
        "queue_id": QUEUE,
        "expires_at": (utc_now() + timedelta(seconds=20)).isoformat(),
    }
    offered_id = await publisher.publish(ROUTING, api.tenant_id, "routing.OfferIssued.v1", offer)
    got = await eventually(lambda: _state(api, iid, pb.INTERACTION_STATE_OFFERED))
    assert got.offered_agent_id == AGENT and got.offer_count == 1

    # The same event again (redelivery), and a rejection, then a new offer that is accepted.
    await publisher.publish(
        ROUTING, api.tenant_id, "routing.OfferIssued.v1", offer, event_id=offered_id
    )
    await publisher.publish(
        ROUTING,
        api.tenant_id,
        "routing.OfferRejected.v1",
        {"interaction_id": iid, "offer_id": "offer-1", "agent_id": AGENT},
    )
    second = {**offer, "offer_id": "offer-2"}
    await publisher.publish(ROUTING, api.tenant_id, "routing.OfferIssued.v1", second)
    accepted = {"interaction_id": iid, "offer_id": "offer-2", "agent_id": AGENT}
    accepted_id = await publisher.publish(
        ROUTING, api.tenant_id, "routing.OfferAccepted.v1", accepted
    )
    got = await eventually(lambda: _state(api, iid, pb.INTERACTION_STATE_ASSIGNED))
    assert got.offer_count == 2 and got.agent_id == AGENT
    version = got.version
    assert version == 6  # created, queued, offered, withdrawn, offered, assigned

    # Redelivered, all of it: nothing changes.
    for event_type, data, event_id in [
        ("routing.OfferIssued.v1", offer, offered_id),
        ("routing.OfferAccepted.v1", accepted, accepted_id),
    ]:
        await publisher.publish(ROUTING, api.tenant_id, event_type, data, event_id=event_id)
    # A stale event (the offer was withdrawn long ago) is logged and dropped, not dead-lettered:
    # the events after it are still processed.
    await publisher.publish(
        ROUTING,
        api.tenant_id,
        "routing.OfferIssued.v1",
        {**offer, "offer_id": "offer-stale"},
    )
    await api.call("Connect", interaction_id=iid)
    marker = await api.call("AddNote", interaction_id=iid, author_id="sup", text="marker")
    overflow = {"interaction_id": iid, "to_queue_id": "q-overflow"}
    await publisher.publish(ROUTING, api.tenant_id, "routing.ContactOverflowed.v1", overflow)
    # An event that does not parse goes to the dead-letter queue, and only that one.
    malformed = await publisher.publish(
        ROUTING, api.tenant_id, "routing.OfferIssued.v1", {"interaction_id": iid}
    )
    dead = await _tenant_records(
        service.kafka_bootstrap, f"{ROUTING}.dlq", api.tenant_id, 2, within_s=4
    )
    assert [d["id"] for d in dead] == [malformed]
    got = await api.get(iid)
    assert got.version == marker.result.version == await api.version(iid)
    assert got.state == pb.INTERACTION_STATE_CONNECTED and got.offer_count == 2


async def test_overflow_requeues_keeping_priority(api, publisher, eventually) -> None:
    iid = (await api.create(queue=pb.QueueTarget(queue_id=QUEUE, priority=7))).interaction_id
    await publisher.publish(
        ROUTING,
        api.tenant_id,
        "routing.ContactOverflowed.v1",
        {"interaction_id": iid, "from_queue_id": QUEUE, "to_queue_id": "q-overflow"},
    )

    async def overflowed() -> pb.Interaction:
        got = await api.get(iid)
        assert got.queue_id == "q-overflow"
        return got

    got = await eventually(overflowed)
    assert got.priority == 7 and got.state == pb.INTERACTION_STATE_QUEUED


async def test_email_threads_become_interactions(api, publisher, eventually) -> None:
    thread = f"thread-{uuid.uuid4().hex[:8]}"
    first = {
        "message_id": "m-1",
        "thread_id": thread,
        "from_address": "ann@example.com",
        "from_name": "Ann",
        "mailbox_address": "support@acme.example",
        "subject": "Invoice",
        "body_text": "Where is my invoice?",
        "internet_message_id": "<1@example.com>",
        "queue_id": "q-email",
        "attachments": [{"uri": "email://m-1/1", "file_name": "scan.pdf"}],
    }
    first_id = await publisher.publish(EMAIL, api.tenant_id, "email.EmailReceived.v1", first)

    async def listed() -> pb.Interaction:
        found = await api.call("ListInteractions", channels=[common_pb2.CHANNEL_EMAIL])
        assert len(found.interactions) == 1
        return found.interactions[0]

    summary = await eventually(listed)
    iid = summary.interaction_id
    assert summary.state == pb.INTERACTION_STATE_QUEUED and summary.queue_id == "q-email"
    assert summary.external_ref == thread and summary.customer_address == "ann@example.com"

    reply = {**first, "message_id": "m-2", "body_text": "Any news?", "internet_message_id": "<2>"}
    await publisher.publish(EMAIL, api.tenant_id, "email.EmailReceived.v1", reply)
    # Redelivery of the first email, and the same email delivered again under a new event id.
    await publisher.publish(
        EMAIL, api.tenant_id, "email.EmailReceived.v1", first, event_id=first_id
    )
    await publisher.publish(EMAIL, api.tenant_id, "email.EmailReceived.v1", first)

    async def two_messages() -> pb.Interaction:
        got = await api.get(iid)
        assert [m.body for m in got.messages] == ["Where is my invoice?", "Any news?"]
        return got

    got = await eventually(two_messages)
    assert got.messages[0].attachments[0].file_name == "scan.pdf"
    await asyncio.sleep(1.0)
    assert len((await api.get(iid)).messages) == 2

    # Once the contact is closed, a reply starts a new one on the same thread.
    await api.call("End", interaction_id=iid, ended_by=pb.ENDED_BY_SYSTEM)
    late = {**first, "message_id": "m-3", "body_text": "Thanks!", "internet_message_id": "<3>"}
    await publisher.publish(EMAIL, api.tenant_id, "email.EmailReceived.v1", late)

    async def second_contact() -> None:
        found = await api.call("ListInteractions", channels=[common_pb2.CHANNEL_EMAIL])
        assert len(found.interactions) == 2
        newest = await api.get(found.interactions[0].interaction_id)
        assert newest.interaction_id != iid
        assert [m.body for m in newest.messages] == ["Thanks!"]

    await eventually(second_contact)


async def _tenant_records(
    bootstrap: str, topic: str, tenant_id: str, count: int, within_s: float = 30
) -> list[dict]:
    """Up to `count` records of `tenant_id` on `topic`, as a plain Kafka client reads them
    (every partition from the beginning; the topics are shared with other tests)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen: list[dict] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while len(seen) < count:
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for record in records:
                            if record.key != tenant_id.encode():
                                continue
                            envelope = decode(record.headers, record.value, key=record.key)
                            seen.append(
                                {
                                    "id": envelope.id,
                                    "type": envelope.type,
                                    "subject": envelope.subject,
                                    "partition": record.partition,
                                    "headers": dict(record.headers),
                                    "data": json.loads(record.value),
                                }
                            )
        return seen
    finally:
        await consumer.stop()


async def test_a_plain_kafka_consumer_sees_the_whole_lifecycle_in_order(
    api, publisher, eventually, service
) -> None:
    iid = (await api.create(queue=pb.QueueTarget(queue_id=QUEUE))).interaction_id
    await publisher.publish(
        ROUTING,
        api.tenant_id,
        "routing.OfferIssued.v1",
        {"interaction_id": iid, "offer_id": "o-1", "agent_id": AGENT},
    )
    await eventually(lambda: _state(api, iid, pb.INTERACTION_STATE_OFFERED))
    await api.call("Connect", interaction_id=iid, agent_id=AGENT)
    await api.call("Hold", interaction_id=iid)
    await api.call("Resume", interaction_id=iid)
    await api.call("End", interaction_id=iid, ended_by=pb.ENDED_BY_AGENT)
    done = await api.call("Complete", interaction_id=iid, disposition_codes=["sale"])

    events = await _tenant_records(
        service.kafka_bootstrap, INTERACTIONS, api.tenant_id, done.result.version
    )
    assert len(events) == done.result.version
    assert [e["type"].split(".")[1] for e in events] == [
        "InteractionCreated",
        "InteractionQueued",
        "InteractionOffered",
        "InteractionAssigned",
        "InteractionConnected",
        "InteractionHeld",
        "InteractionResumed",
        "InteractionEnded",
        "WrapUpEnded",
        "InteractionCompleted",
    ]
    assert {e["data"]["interaction_id"] for e in events} == {iid}
    assert len({e["partition"] for e in events}) == 1
    completed = events[-1]["data"]
    assert completed["disposition_codes"] == ["sale"]
    assert (
        completed["handle_ms"]
        == completed["talk_ms"] + completed["hold_ms"] + completed["wrap_up_ms"]
    )

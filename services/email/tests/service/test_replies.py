"""SendReply: the agent's answer goes out by SMTP (the aiosmtpd relay) with the threading
headers and the reply token, is recorded on the interaction, is retried on 4xx, fails for
good on 5xx, and a repeated request_id sends nothing twice. The customer's answer to it
joins the same thread; the reply coming back to us is recognised as our own mail."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from contactcenter.email import corpus
from contactcenter.interactions.v1 import interactions_pb2 as ipb

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANNA = "Anna Kunde <anna@customer.example>"


async def _contact(api: Any, eventually: Any) -> tuple[dict[str, Any], str]:
    await api.register(display_name="ACME Support")
    first_id = corpus.new_message_id()
    await api.smtp_send(corpus.plain(ANNA, api.mailbox, message_id=first_id))
    (received,) = await api.wait_events("email.EmailReceived.v1")

    async def created() -> str:
        found = await api.interactions()
        assert len(found) == 1, found
        return str(found[0].interaction_id)

    interaction_id = await eventually(created)
    await api.assign(interaction_id, "agent-7")
    return received.data, interaction_id


def _sent_to(stack: Any, internet_id: str) -> Any:
    found = [m for _, m in stack.relay.received if m["Message-ID"] == f"<{internet_id}>"]
    assert len(found) == 1, f"{len(found)} copies"
    return found[0]


async def test_reply_goes_out_threaded_and_is_recorded(
    api: Any, stack: Any, eventually: Any
) -> None:
    received, interaction_id = await _contact(api, eventually)
    request_id = "reply-1"
    sent = await api.call(
        "SendReply",
        request_id=request_id,
        interaction_id=interaction_id,
        in_reply_to_message_id=received["message_id"],
        body_text="Hello Anna,\nplease restart the router.",
        body_html="<p>Hello Anna,</p><script>x()</script>",
        agent_id="agent-7",
        agent_name="Sam",
    )
    again = await api.call(
        "SendReply",
        request_id=request_id,
        interaction_id=interaction_id,
        in_reply_to_message_id=received["message_id"],
        body_text="Hello Anna,\nplease restart the router.",
        body_html="<p>Hello Anna,</p><script>x()</script>",
        agent_id="agent-7",
        agent_name="Sam",
    )
    assert again.message_id == sent.message_id
    token = received["thread_id"]
    assert sent.thread_id == token

    async def delivered() -> Any:
        return _sent_to(stack, sent.internet_message_id)

    mail = await eventually(delivered)
    assert mail["In-Reply-To"] == f"<{received['internet_message_id']}>"
    assert mail["References"] == f"<{received['internet_message_id']}>"
    assert mail["To"] == "anna@customer.example"
    assert mail["Reply-To"] == f"support-{api.tenant_id}+{token}@acme.example"
    assert mail["Subject"] == f"Re: My router is broken [#{token}]"
    assert "ACME Support" in mail["From"]
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "<script" not in html

    async def recorded() -> Any:
        interaction = await api.interaction(interaction_id)
        outbound = [
            m for m in interaction.messages if m.direction == ipb.MESSAGE_DIRECTION_OUTBOUND
        ]
        assert len(outbound) == 1
        return outbound[0]

    message = await eventually(recorded)
    assert message.external_message_id == sent.internet_message_id
    assert message.author.id == "agent-7"
    (sent_event,) = await api.wait_events("email.ReplySent.v1")
    assert sent_event.data["attempts"] == 1
    status = (await api.call("GetMessage", message_id=sent.message_id)).message
    assert status.delivery_status == "SENT"

    # The customer answers the reply: same thread, same interaction.
    await api.smtp_send(corpus.gmail_reply(ANNA, api.mailbox, in_reply_to=sent.internet_message_id))
    events = await api.wait_events("email.EmailReceived.v1", 2)
    assert events[1].data["thread_id"] == token

    # Our reply delivered back to us (a forwarding loop) is our own mail, not a customer.
    raw = mail.as_bytes()
    await api.smtp_send(raw, sender="support@acme.example")
    await api.wait_events("email.OwnMailReturned.v1")


async def test_transient_failures_are_retried_with_backoff(
    api: Any, stack: Any, eventually: Any
) -> None:
    received, interaction_id = await _contact(api, eventually)
    stack.relay.fail_next = 2
    sent = await api.call(
        "SendReply",
        interaction_id=interaction_id,
        in_reply_to_message_id=received["message_id"],
        body_text="We are on it.",
        agent_id="agent-7",
    )
    (event,) = await api.wait_events("email.ReplySent.v1")
    assert event.data["attempts"] == 3
    _sent_to(stack, sent.internet_message_id)


async def test_permanent_refusal_fails_the_reply(api: Any, stack: Any, eventually: Any) -> None:
    received, interaction_id = await _contact(api, eventually)
    stack.relay.refuse_permanently = True
    try:
        sent = await api.call(
            "SendReply",
            interaction_id=interaction_id,
            in_reply_to_message_id=received["message_id"],
            body_text="Hello",
            agent_id="agent-7",
        )
        (failed,) = await api.wait_events("email.ReplyFailed.v1")
    finally:
        stack.relay.refuse_permanently = False
    assert failed.data["message_id"] == sent.message_id
    assert failed.data["error"].startswith("554")
    status = (await api.call("GetMessage", message_id=sent.message_id)).message
    assert status.delivery_status == "FAILED"


async def test_reply_to_an_auto_reply_or_unknown_message_is_refused(api: Any) -> None:
    await api.register()
    await api.smtp_send(corpus.auto_reply("boss@customer.example", api.mailbox))
    (auto,) = await api.wait_events("email.AutoReplyReceived.v1")
    for message_id, code in [
        (auto.data["message_id"], grpc.StatusCode.FAILED_PRECONDITION),
        ("no-such-message", grpc.StatusCode.NOT_FOUND),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await api.call(
                "SendReply",
                interaction_id="i-1",
                in_reply_to_message_id=message_id,
                body_text="hi",
                agent_id="a",
            )
        assert refused.value.code() == code
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.call(
            "SendReply", interaction_id="i-1", in_reply_to_message_id="x", body_text="", agent_id=""
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "body_text" in (bad.value.details() or "") and "agent_id" in (bad.value.details() or "")


# --- the thread follows its contact (cc.interactions.events.v1) ------------------------------


async def _interactions_call(api: Any, rpc: str, **fields: Any) -> Any:
    import uuid

    from contactcenter.grpckit import Role

    request = getattr(ipb, f"{rpc}Request")(request_id=str(uuid.uuid4()), **fields)
    return await getattr(api.stack.interactions, rpc)(
        request, metadata=api.md((Role.SERVICE,)), timeout=10
    )


async def _thread_row(api: Any, thread_id: str) -> Any:
    rows = await api.sql(
        "select interaction_id, state, closed, agent_id, transfer_count"
        " from email.thread_contacts where tenant_id = $1 and thread_id = $2",
        api.tenant_id,
        thread_id,
    )
    assert rows, "the thread has no contact yet"
    return rows[0]


async def _messages_on(
    api: Any, interaction_id: str, count: int, direction: int = ipb.MESSAGE_DIRECTION_OUTBOUND
) -> None:
    interaction = await api.interaction(interaction_id)
    found = [m for m in interaction.messages if m.direction == direction]
    assert len(found) == count, found


async def test_the_thread_follows_its_contact_through_transfer_and_completion(
    api: Any, stack: Any, eventually: Any
) -> None:
    received, first = await _contact(api, eventually)  # assigned to agent-7
    thread = received["thread_id"]

    async def row_is(**expected: Any) -> Any:
        row = await _thread_row(api, thread)
        assert {k: row[k] for k in expected} == expected, dict(row)
        return row

    await eventually(lambda: row_is(interaction_id=first, agent_id="agent-7", closed=False))
    await _interactions_call(api, "Connect", interaction_id=first)
    await _interactions_call(
        api,
        "Transfer",
        interaction_id=first,
        mode=ipb.TRANSFER_MODE_CONSULTED,
        to_agent_id="agent-9",
        agent_id="agent-7",
    )
    await eventually(lambda: row_is(agent_id="agent-9", state="connected", transfer_count=1))

    # After the transfer the new agent replies without naming the contact: it is recorded on it.
    await api.call(
        "SendReply",
        in_reply_to_message_id=received["message_id"],
        body_text="Hello Anna, I took over your case.",
        agent_id="agent-9",
    )
    await eventually(lambda: _messages_on(api, first, 1))
    # The customer's reply joins the same contact, and says so.
    await api.smtp_send(
        corpus.gmail_reply(ANNA, api.mailbox, in_reply_to=received["internet_message_id"])
    )
    reply = (await api.wait_events("email.EmailReceived.v1", 2))[1].data
    assert (reply["interaction_id"], reply["contact_closed"]) == (first, False)
    # The agent reads it there before completing (the interactions service appends it when it
    # consumes the event: a reply it meets only after the completion opens a new contact).
    await eventually(lambda: _messages_on(api, first, 2, ipb.MESSAGE_DIRECTION_INBOUND))

    # Completed: the thread's contact is closed; the next reply opens a new contact.
    await _interactions_call(
        api, "End", interaction_id=first, ended_by=ipb.ENDED_BY_AGENT, reason="resolved"
    )
    await _interactions_call(api, "Complete", interaction_id=first)
    await eventually(lambda: row_is(interaction_id=first, state="completed", closed=True))
    await api.smtp_send(
        corpus.outlook_reply(ANNA, api.mailbox, in_reply_to=received["internet_message_id"])
    )
    late = (await api.wait_events("email.EmailReceived.v1", 3))[2].data
    assert (late["thread_id"], late["interaction_id"], late["contact_closed"]) == (
        thread,
        first,
        True,
    )

    async def reopened() -> str:
        row = await _thread_row(api, thread)
        assert row["interaction_id"] != first and not row["closed"], dict(row)
        return str(row["interaction_id"])

    second = await eventually(reopened)

    async def both_contacts() -> None:
        assert {i.interaction_id for i in await api.interactions()} == {first, second}

    await eventually(both_contacts)
    await api.assign(second, "agent-7")
    await api.call(
        "SendReply",
        in_reply_to_message_id=received["message_id"],
        body_text="Hello again Anna.",
        agent_id="agent-7",
    )
    await eventually(lambda: _messages_on(api, second, 1))
    await _messages_on(api, first, 1)


async def test_interaction_events_apply_once_and_bad_ones_are_dead_lettered(
    api: Any, stack: Any, eventually: Any
) -> None:
    import uuid

    from aiokafka import AIOKafkaProducer

    from contactcenter.contracts.events import utc_now
    from contactcenter.messaging.cloudevents import EventEnvelope, encode

    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=False)
    await producer.start()

    async def publish(event_type: str, data: dict[str, Any], event_id: uuid.UUID) -> None:
        record = encode(
            EventEnvelope(
                id=event_id,
                type=f"interactions.{event_type}.v1",
                source="/contactcenter/test-interactions",
                subject="interaction",
                time=utc_now(),
                tenant_id=api.tenant_id,
                data={"event_id": str(event_id), "tenant_id": api.tenant_id, **data},
            )
        )
        await producer.send_and_wait(
            "cc.interactions.events.v1", value=record.value, key=record.key, headers=record.headers
        )

    try:
        created = uuid.uuid4()
        await publish(
            "InteractionCreated",
            {"interaction_id": "i-x", "channel": "email", "external_ref": "thread-x"},
            created,
        )
        transferred = uuid.uuid4()
        transfer = {
            "interaction_id": "i-x",
            "mode": "consulted",
            "from_agent_id": "a-1",
            "to_agent_id": "a-2",
        }
        await publish("InteractionTransferred", transfer, transferred)
        await publish("InteractionTransferred", transfer, transferred)  # redelivered
        await publish("InteractionCreated", {"interaction_id": "i-x"}, created)  # redelivered
        bad = uuid.uuid4()
        await publish("InteractionQueued", {"queue_id": "q"}, bad)  # no interaction_id
        marker = {"interaction_id": "i-x", "agent_id": "a-3"}
        await publish("InteractionConnected", marker, uuid.uuid4())
    finally:
        await producer.stop()

    async def settled() -> Any:
        row = await _thread_row(api, "thread-x")
        assert row["agent_id"] == "a-3", dict(row)
        return row

    row = await eventually(settled)
    assert (row["interaction_id"], row["transfer_count"], row["state"]) == ("i-x", 1, "connected")
    dead = await _dead_letters(stack.kafka_bootstrap, api.tenant_id)
    assert bad in dead


async def _dead_letters(bootstrap: str, tenant_id: str) -> set[Any]:
    import asyncio
    import contextlib

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from contactcenter.messaging.cloudevents import decode

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        topic = "cc.interactions.events.v1.dlq"
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(4):
                while True:
                    for records in (await consumer.getmany(timeout_ms=200)).values():
                        for r in records:
                            if r.key == tenant_id.encode():
                                seen.add(decode(list(r.headers), r.value, key=r.key).id)
        return seen
    finally:
        await consumer.stop()

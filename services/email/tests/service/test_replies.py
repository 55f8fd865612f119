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

"""SMTP in, events out: customers' email opens and joins contacts (through the interactions
service), with the sender resolved to a profile; duplicates, auto-replies, bounces and our own
mail open nothing; bad input is quarantined and re-processable."""

from __future__ import annotations

from typing import Any

import aiosmtplib
import grpc
import pytest

from contactcenter.common.v1 import common_pb2
from contactcenter.email import corpus

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANNA = "Anna Kunde <anna@customer.example>"


async def test_first_email_opens_a_contact_and_a_reply_joins_it(api: Any, eventually: Any) -> None:
    await api.register()
    first_id = corpus.new_message_id()
    answer = await api.smtp_send(corpus.plain(ANNA, api.mailbox, message_id=first_id))
    assert answer[1].startswith("2.0.0 OK stored")  # 250 only after the commit

    (received,) = await api.wait_events("email.EmailReceived.v1")
    data = received.data
    assert data["from_address"] == "anna@customer.example"
    assert data["from_name"] == "Anna Kunde"
    assert data["mailbox_address"] == api.mailbox
    assert data["internet_message_id"] == first_id
    assert data["queue_id"] == "q-email" and data["priority"] == 3 and data["language"] == "en"
    assert data["new_thread"] is True
    assert data["customer_profile_id"] == await api.resolve("anna@customer.example")

    reply = corpus.gmail_reply(ANNA, api.mailbox, in_reply_to=first_id)
    await api.smtp_send(reply)
    events = await api.wait_events("email.EmailReceived.v1", 2)
    second = events[1].data
    assert second["thread_id"] == data["thread_id"]
    assert second["thread_matched_by"] == "in_reply_to"
    assert second["body_text"].startswith("Thanks, restarting it fixed it!")
    assert "please restart the router" not in second["body_text"]

    async def one_interaction_with_both() -> Any:
        (interaction,) = await api.interactions()
        full = await api.interaction(interaction.interaction_id)
        assert len(full.messages) == 2
        return full

    interaction = await eventually(one_interaction_with_both)
    assert interaction.channel == common_pb2.CHANNEL_EMAIL
    assert interaction.customer_profile_id == data["customer_profile_id"]
    assert interaction.queue_id == "q-email"


async def test_unknown_recipient_is_refused(api: Any) -> None:
    await api.register()
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await api.smtp_send(corpus.plain(ANNA, "nobody@acme.example"), to="nobody@acme.example")
    assert refused.value.recipients[0].code == 550

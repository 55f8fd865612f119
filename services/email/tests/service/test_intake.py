"""SMTP in, events out: customers' email opens and joins contacts (through the interactions
service), with the sender resolved to a profile; duplicates, auto-replies, bounces and our own
mail open nothing; bad input is quarantined and re-processable."""

from __future__ import annotations

import json
from typing import Any

import aiosmtplib
import grpc
import pytest

from contactcenter.common.v1 import common_pb2
from contactcenter.email import corpus
from contactcenter.email.v1 import email_pb2 as pb
from contactcenter.grpckit import Role

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANNA = "Anna Kunde <anna@customer.example>"


async def test_first_email_opens_a_contact_and_a_reply_joins_it(api: Any, eventually: Any) -> None:
    await api.register()
    first_id = corpus.new_message_id()
    answer = await api.smtp_send(corpus.plain(ANNA, api.mailbox, message_id=first_id))
    assert answer[1].startswith("2.0.0 OK stored")  # 250 only after the commit

    (received,) = await api.wait_events("email.EmailReceived.v1")
    data = received.data
    # The customer's personal data travels sealed; GetMessage serves it.
    assert data["from_address"].startswith("v1.") and data["from_name"].startswith("v1.")
    assert "anna" not in json.dumps(data).lower()
    message = (await api.call("GetMessage", message_id=data["message_id"])).message
    assert message.from_address == "anna@customer.example"
    assert message.from_name == "Anna Kunde"
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
    text = (await api.call("GetMessage", message_id=second["message_id"])).message.body_text
    assert text.startswith("Thanks, restarting it fixed it!")
    assert "please restart the router" not in text

    async def one_interaction_with_both() -> Any:
        found = await api.interactions()
        assert len(found) == 1, found
        full = await api.interaction(found[0].interaction_id)
        assert len(full.messages) == 2
        return full

    interaction = await eventually(one_interaction_with_both)
    assert interaction.channel == common_pb2.CHANNEL_EMAIL
    assert interaction.customer_profile_id == data["customer_profile_id"]
    assert interaction.queue_id == "q-email"
    # The interactions service read the sealed text through GetMessage.
    assert interaction.messages[1].body.startswith("Thanks, restarting it fixed it!")
    assert interaction.messages[0].author.display_name == "Anna Kunde"


async def test_unknown_recipient_is_refused(api: Any) -> None:
    await api.register()
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await api.smtp_send(corpus.plain(ANNA, "nobody@acme.example"), to="nobody@acme.example")
    assert refused.value.recipients[0].code == 550


async def test_the_same_message_id_twice_is_one_message(api: Any) -> None:
    await api.register()
    raw = corpus.plain(ANNA, api.mailbox, message_id=corpus.new_message_id())
    await api.smtp_send(raw)
    await api.smtp_send(raw)  # an SMTP retry
    forwarded = raw.replace(b"Subject: My router", b"X-Forwarded: yes\r\nSubject: My router")
    await api.call("IngestMessage", mailbox_address=api.mailbox, raw=forwarded)
    rows = await api.inbox_settled(3)
    assert sorted(r["status"] for r in rows) == ["done", "duplicate", "duplicate"]
    assert len({r["message_id"] for r in rows}) == 1
    received = await api.wait_events("email.EmailReceived.v1")
    assert len(received) == 1


@pytest.mark.parametrize("style", ["rfc3834", "x-autoreply", "precedence", "ooo-subject"])
async def test_auto_replies_open_no_contact(api: Any, style: str) -> None:
    await api.register()
    await api.smtp_send(corpus.auto_reply("Boss <boss@customer.example>", api.mailbox, style=style))
    (auto,) = await api.wait_events("email.AutoReplyReceived.v1")
    assert "boss@customer.example" not in json.dumps(auto.data)
    message = (await api.call("GetMessage", message_id=auto.data["message_id"])).message
    assert message.from_address == "boss@customer.example"
    assert not [e for e in await api.events() if e.type == "email.EmailReceived.v1"]
    assert await api.interactions() == []


async def test_null_sender_bounce_and_our_own_mail_open_nothing(api: Any, eventually: Any) -> None:
    await api.register()
    await api.smtp_send(corpus.dsn_bounce(api.mailbox, "lost@mail.contactcenter.local"), sender="")
    (bounce,) = await api.wait_events("email.BounceReceived.v1")
    assert "gone@customer.example" not in json.dumps(bounce.data)  # sealed
    (view,) = await api.sql(
        "select view->'failed_recipients' as f from email.messages "
        "where tenant_id = $1 and message_id = $2",
        api.tenant_id,
        bounce.data["message_id"],
    )
    assert json.loads(view["f"]) == ["gone@customer.example"]
    assert bounce.data["status"] == "5.1.1"
    own = corpus.plain(
        "Support <support@acme.example>",
        api.mailbox,
        message_id=corpus.new_message_id(),
        extra={"X-Contactcenter-Origin": f"{api.tenant_id}/m1"},
    )
    await api.smtp_send(own)
    (loop,) = await api.wait_events("email.OwnMailReturned.v1")
    assert loop.data["reason"] == "x-contactcenter-origin header"
    assert not [e for e in await api.events() if e.type == "email.EmailReceived.v1"]


@pytest.mark.parametrize(
    ("make", "subject", "text"),
    [
        (corpus.iso_2022_jp, "注文について", "注文した商品がまだ届きません"),
        (corpus.windows_1252_qp, "Facture café", "le café coûte 5 €"),
        (corpus.gb18030_base64, "账户问题", "我的账户无法登录"),
    ],
    ids=["iso-2022-jp", "windows-1252-qp", "gb18030-base64"],
)
async def test_charsets_arrive_intact(api: Any, make: Any, subject: str, text: str) -> None:
    await api.register()
    await api.smtp_send(make(ANNA, api.mailbox))
    (received,) = await api.wait_events("email.EmailReceived.v1")
    message = (await api.call("GetMessage", message_id=received.data["message_id"])).message
    assert message.subject == subject
    assert text in message.body_text


async def test_attachments_are_stored_by_reference(api: Any) -> None:
    await api.register()
    await api.smtp_send(corpus.outlook_reply("Bob <bob@customer.example>", api.mailbox, None))
    (received,) = await api.wait_events("email.EmailReceived.v1")
    (attachment,) = received.data["attachments"]
    assert attachment["file_name"].startswith("v1.")  # sealed
    assert attachment["uri"] == f"email://{received.data['message_id']}/1"
    message = (await api.call("GetMessage", message_id=received.data["message_id"])).message
    assert message.attachments[0].file_name == "invoice-2025-03.pdf"
    assert message.attachments[0].sha256 == attachment["sha256"]
    (blob,) = await api.sql("select data from email.blobs where sha256 = $1", attachment["sha256"])
    assert blob["data"] == b"%PDF-1.4 fake invoice"
    (raw,) = await api.sql(
        "select size_bytes from email.blobs where sha256 = $1", message.raw_sha256
    )
    assert raw["size_bytes"] > 0
    assert "the invoice is still wrong" in message.body_text
    assert "we corrected it" in message.full_text


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda mb: corpus.broken_mime(ANNA, mb), "broken_mime"),
        (lambda mb: corpus.with_attachment(ANNA, mb, 1_800_000), "oversized"),
        (lambda mb: corpus.zip_bomb(ANNA, mb), "zip_bomb"),
        (lambda mb: corpus.no_sender(mb), "no_sender"),
    ],
    ids=["broken-mime", "oversized", "zip-bomb", "no-sender"],
)
async def test_bad_input_is_quarantined_with_its_raw_bytes(
    api: Any, make: Any, reason: str
) -> None:
    await api.register()
    raw = make(api.mailbox)
    if reason == "oversized":
        # Over the tenant's size limit: SMTP refuses it at DATA (the sender keeps it), a
        # message taken in another way (IngestMessage, IMAP) is kept and quarantined.
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await api.smtp_send(raw)
        assert refused.value.code == 552
        await api.call("IngestMessage", mailbox_address=api.mailbox, raw=raw)
    else:
        await api.smtp_send(raw)
    (event,) = await api.wait_events("email.EmailQuarantined.v1")
    assert event.data["reason"] == reason
    listed = (await api.call("ListQuarantine")).messages
    assert [(q.reason, q.status) for q in listed] == [(reason, "QUARANTINED")]
    (blob,) = await api.sql("select data from email.blobs where sha256 = $1", listed[0].raw_sha256)
    assert blob["data"].replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


async def test_a_quarantined_message_can_be_reprocessed(api: Any) -> None:
    await api.register()
    await api.smtp_send(corpus.with_attachment(ANNA, api.mailbox, 1_200_000))
    (event,) = await api.wait_events("email.EmailQuarantined.v1")
    assert event.data["reason"] == "oversized_attachment"
    qid = event.data["quarantine_id"]
    request_id = "reprocess-1"
    done = await api.call(
        "ReprocessQuarantined", request_id=request_id, quarantine_id=qid, ignore_limits=True
    )
    assert done.message.status == "REPROCESSED"
    again = await api.call(
        "ReprocessQuarantined", request_id=request_id, quarantine_id=qid, ignore_limits=True
    )
    assert again.message.status == "REPROCESSED"
    (received,) = await api.wait_events("email.EmailReceived.v1")
    assert received.data["attachments"][0]["size_bytes"] == 1_200_000
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.call("ReprocessQuarantined", quarantine_id=qid)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_reply_token_threads_when_headers_were_stripped(api: Any) -> None:
    await api.register()
    await api.smtp_send(corpus.plain(ANNA, api.mailbox))
    (first,) = await api.wait_events("email.EmailReceived.v1")
    token = first.data["thread_id"]
    by_address = corpus.plain(
        ANNA, f"support-{api.tenant_id}+{token}@acme.example", subject="Re: something"
    )
    await api.smtp_send(by_address, to=f"support-{api.tenant_id}+{token}@acme.example")
    by_subject = corpus.plain(ANNA, api.mailbox, subject=f"AW: My router [#{token}]")
    await api.smtp_send(by_subject)
    events = await api.wait_events("email.EmailReceived.v1", 3)
    assert [e.data["thread_id"] for e in events] == [token] * 3
    assert {e.data["thread_matched_by"] for e in events[1:]} == {"address_token", "subject_token"}


async def test_tenants_never_see_each_other(api: Any, stack: Any) -> None:
    await api.register()
    await api.smtp_send(corpus.plain(ANNA, api.mailbox))
    (received,) = await api.wait_events("email.EmailReceived.v1")
    other = type(api)(stack, "t-other-" + api.tenant_id, "other@acme.example")
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await other.call("GetMessage", message_id=received.data["message_id"])
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await other.register(api.mailbox)
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await other.call("ListMailboxes")).mailboxes == []


async def test_bad_requests_name_the_field(api: Any) -> None:
    cases = [
        (dict(address="not an address"), "address"),
        (dict(address="a@acme.example", routing={"language": "??"}), "routing.language"),
        (dict(address="a@acme.example", imap={"host": "h"}), "imap.username"),
    ]
    for fields, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await api.call("RegisterMailbox", **fields)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (bad.value.details() or "")


async def test_mailbox_routing_is_event_sourced(api: Any) -> None:
    from contactcenter.email.v1 import email_pb2 as pb

    await api.register()
    changed = await api.call(
        "SetMailboxRouting",
        address=api.mailbox,
        routing=pb.MailboxRouting(
            queue_id="q-vip",
            priority=9,
            required_skills=[pb.SkillRequirement(skill="de", min_proficiency=2)],
        ),
    )
    assert changed.mailbox.routing.queue_id == "q-vip"
    types = [e.type for e in await api.wait_events("email.MailboxRoutingSet.v1")]
    assert types == ["email.MailboxRoutingSet.v1"]
    await api.smtp_send(corpus.plain(ANNA, api.mailbox))
    (received,) = await api.wait_events("email.EmailReceived.v1")
    assert received.data["queue_id"] == "q-vip" and received.data["priority"] == 9
    assert received.data["required_skills"] == [{"skill": "de", "min_proficiency": 2}]


async def test_one_bad_delivery_does_not_fail_the_others(api: Any, stack: Any) -> None:
    """Deliveries share a transaction (group commit); one that the database refuses is
    answered 4xx on its own, the others are stored."""
    import asyncio

    from contactcenter.email.adapters.intake import Delivery, Intake

    await api.register()
    writer = stack.email.writer
    good = [corpus.plain(ANNA, api.mailbox) for _ in range(3)]
    bad = Intake(
        raw=corpus.plain(ANNA, api.mailbox),
        deliveries=[Delivery(api.tenant_id, api.mailbox)],
        source="smtp",
        envelope_from="nul\x00byte@customer.example",  # PostgreSQL text refuses NUL
    )
    results = await asyncio.gather(
        *(
            writer.submit(
                Intake(raw=r, deliveries=[Delivery(api.tenant_id, api.mailbox)], source="smtp")
            )
            for r in good
        ),
        writer.submit(bad),
        return_exceptions=True,
    )
    assert [isinstance(r, str) for r in results] == [True, True, True, False]
    received = await api.wait_events("email.EmailReceived.v1", 3)
    assert len(received) == 3


# --- per-tenant limits (ConfigureTenant) -----------------------------------------------------


def _limits(**fields: int) -> Any:
    return pb.TenantLimits(**fields)


def _two_attachments(to: str) -> bytes:
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = ANNA, to, "Two files"
    m["Message-ID"] = f"<{corpus.new_message_id()}>"
    m.set_content("Both attached.")
    for name in ("a.txt", "b.txt"):
        m.add_attachment(b"x" * 1_000, maintype="text", subtype="plain", filename=name)
    return m.as_bytes()


async def test_tenant_limits_are_set_persisted_and_enforced_at_smtp(
    api: Any, stack: Any, eventually: Any
) -> None:
    await api.register()
    set_ = await api.call(
        "ConfigureTenant",
        request_id="limits-1",
        limits=_limits(max_message_bytes=50_000, max_attachments=1, max_inbound_per_minute=3),
    )
    limits = set_.limits
    assert (limits.max_message_bytes, limits.max_attachments, limits.max_inbound_per_minute) == (
        50_000,
        1,
        3,
    )
    assert limits.max_attachment_bytes == 50_000  # the default, capped by the message size
    (row,) = await api.sql(
        "select max_message_bytes, max_attachments, max_inbound_per_minute, version"
        " from email.tenant_limits where tenant_id = $1",
        api.tenant_id,
    )
    assert tuple(row) == (50_000, 1, 3, 1)
    # The same request again changes nothing.
    again = await api.call("ConfigureTenant", request_id="limits-1", limits=_limits())
    assert again.limits == limits
    assert (await api.wait_events("email.TenantLimitsSet.v1"))[0].data["max_attachments"] == 1

    # Oversized for the tenant (under the listener's hard cap): 552 at DATA, nothing stored.
    with pytest.raises(aiosmtplib.SMTPDataError) as oversized:
        await api.smtp_send(corpus.with_attachment(ANNA, api.mailbox, 60_000))
    assert oversized.value.code == 552
    # Two attachments: accepted, then quarantined with the reason.
    two = _two_attachments(api.mailbox)
    await api.smtp_send(two)
    (event,) = await api.wait_events("email.EmailQuarantined.v1")
    assert event.data["reason"] == "too_many_attachments"
    # The rate: three messages a minute (the quarantined one counts), then 452 at RCPT.
    await api.smtp_send(corpus.plain(ANNA, api.mailbox, message_id=corpus.new_message_id()))
    await api.smtp_send(corpus.plain(ANNA, api.mailbox, message_id=corpus.new_message_id()))
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as limited:
        await api.smtp_send(corpus.plain(ANNA, api.mailbox, message_id=corpus.new_message_id()))
    assert limited.value.recipients[0].code == 452
    rows = await api.inbox_settled(3)
    assert len(rows) == 3

    # Raised: the same message goes through (every replica re-reads within seconds).
    await api.call(
        "ConfigureTenant",
        limits=_limits(max_message_bytes=200_000, max_attachments=5, max_inbound_per_minute=0),
    )
    await api.smtp_send(corpus.with_attachment(ANNA, api.mailbox, 60_000))
    await api.wait_events("email.EmailReceived.v1", 3)


async def test_another_tenants_limits_do_not_apply(api: Any, stack: Any) -> None:
    await api.register()
    await api.smtp_send(corpus.with_attachment(ANNA, api.mailbox, 60_000))
    await api.wait_events("email.EmailReceived.v1")


async def test_bad_limits_name_the_field(api: Any) -> None:
    for limits, field in (
        (_limits(max_message_bytes=-1), "limits.max_message_bytes"),
        (_limits(max_inbound_per_minute=-5), "limits.max_inbound_per_minute"),
        (
            _limits(max_message_bytes=1_000, max_attachment_bytes=2_000),
            "limits.max_attachment_bytes",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await api.call("ConfigureTenant", limits=limits)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in bad.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await api.stack.stub.ConfigureTenant(
            pb.ConfigureTenantRequest(request_id="r", limits=_limits(max_attachments=2)),
            metadata=api.md((Role.SERVICE,)),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

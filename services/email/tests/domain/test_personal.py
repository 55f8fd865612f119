"""Which fields of the email events are the customer's personal data (sealed before they are
stored and published): given an event, when sealed, then only those fields changed."""

from __future__ import annotations

from contactcenter.email.domain import (
    EmailReceived,
    MailboxRoutingSet,
    Routing,
)
from contactcenter.email.domain.events import (
    AttachmentRef,
    AutoReplyReceived,
    BounceReceived,
    OwnMailReturned,
    ReplyQueued,
)
from contactcenter.email.domain.personal import seal_personal

T = "t-1"


def sealed(value: str | None) -> str | None:
    return None if value is None else f"S({value})"


def test_a_received_email_is_sealed_but_its_routing_and_references_stay() -> None:
    received = EmailReceived(
        tenant_id=T,
        message_id="m-1",
        thread_id="th-1",
        from_address="anna@customer.example",
        from_name="Anna Kunde",
        mailbox_address="support@acme.example",
        subject="My invoice",
        body_text="Hello, my IBAN is ...",
        attachments=(
            AttachmentRef(uri="email://m-1/1", attachment_id="a-1", file_name="anna.pdf"),
            AttachmentRef(uri="email://m-1/2", attachment_id="a-2"),
        ),
        internet_message_id="<x@customer.example>",
        queue_id="q-email",
        priority=3,
        customer_profile_id="p-1",
        to_addresses=("support@acme.example",),
    )
    out = seal_personal(received, sealed)
    assert isinstance(out, EmailReceived)
    assert out.from_address == "S(anna@customer.example)"
    assert out.from_name == "S(Anna Kunde)"
    assert out.subject == "S(My invoice)"
    assert out.body_text == "S(Hello, my IBAN is ...)"
    assert out.to_addresses == ("S(support@acme.example)",)
    assert [a.file_name for a in out.attachments] == ["S(anna.pdf)", None]
    # What consumers route and thread by is untouched.
    unchanged = ("event_id", "message_id", "thread_id", "mailbox_address", "queue_id")
    assert {f: getattr(out, f) for f in unchanged} == {f: getattr(received, f) for f in unchanged}
    assert out.internet_message_id == received.internet_message_id
    assert out.customer_profile_id == "p-1" and out.priority == 3
    assert [a.uri for a in out.attachments] == ["email://m-1/1", "email://m-1/2"]


def test_an_empty_body_and_absent_name_stay_empty() -> None:
    received = EmailReceived(
        tenant_id=T, message_id="m-1", thread_id="th-1", from_address="a@b.example"
    )
    out = seal_personal(received, sealed)
    assert isinstance(out, EmailReceived)
    assert out.body_text == "" and out.from_name is None and out.subject is None


def test_what_is_not_a_customer_email_is_sealed_too() -> None:
    auto = AutoReplyReceived(
        tenant_id=T,
        message_id="m-2",
        mailbox_address="support@acme.example",
        from_address="boss@customer.example",
        subject="Out of office",
        reason="auto_submitted",
    )
    bounce = BounceReceived(
        tenant_id=T,
        message_id="m-3",
        mailbox_address="support@acme.example",
        from_address="mailer-daemon@mx.example",
        reason="dsn",
        failed_recipients=("gone@customer.example",),
        status="5.1.1",
    )
    own = OwnMailReturned(
        tenant_id=T,
        message_id="m-4",
        mailbox_address="support@acme.example",
        from_address="support@acme.example",
        reason="loop",
    )
    a = seal_personal(auto, sealed)
    b = seal_personal(bounce, sealed)
    o = seal_personal(own, sealed)
    assert isinstance(a, AutoReplyReceived) and a.from_address == "S(boss@customer.example)"
    assert a.subject == "S(Out of office)" and a.reason == "auto_submitted"
    assert isinstance(b, BounceReceived) and b.failed_recipients == ("S(gone@customer.example)",)
    assert b.status == "5.1.1"
    assert isinstance(o, OwnMailReturned) and o.from_address == "S(support@acme.example)"


def test_a_queued_reply_is_sealed() -> None:
    reply = ReplyQueued(
        tenant_id=T,
        message_id="m-5",
        thread_id="th-1",
        interaction_id="i-1",
        internet_message_id="<r@acme.example>",
        in_reply_to_message_id="m-1",
        mailbox_address="support@acme.example",
        from_address="support@acme.example",
        to_address="anna@customer.example",
        subject="Re: My invoice",
        body_text="Dear Anna",
        agent_id="agent-1",
    )
    out = seal_personal(reply, sealed)
    assert isinstance(out, ReplyQueued)
    assert out.to_address == "S(anna@customer.example)"
    assert out.subject == "S(Re: My invoice)" and out.body_text == "S(Dear Anna)"
    assert out.body_html is None and out.interaction_id == "i-1"


def test_events_without_personal_data_are_returned_as_they_are() -> None:
    event = MailboxRoutingSet(
        tenant_id=T, address="support@acme.example", routing=Routing(queue_id="q")
    )
    assert seal_personal(event, sealed) is event

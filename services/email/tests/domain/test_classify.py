"""Classification, table-driven: who is a customer, who is a machine, what is our own mail."""

from __future__ import annotations

import pytest

from contactcenter.email.domain import ORIGIN_HEADER, MessageFacts, MessageKind, classify

CUSTOMER, AUTO, BOUNCE, OWN = (
    MessageKind.CUSTOMER,
    MessageKind.AUTO_REPLY,
    MessageKind.BOUNCE,
    MessageKind.OWN_MAIL,
)


def facts(
    headers: dict[str, str] | None = None,
    *,
    ctype: str = "text/plain",
    sender: str = "anna@customer.example",
    subject: str = "Question",
    envelope: str | None = None,
    msgid: str | None = "abc@customer.example",
    parts: frozenset[str] = frozenset(),
) -> MessageFacts:
    return MessageFacts(
        headers=headers or {},
        content_type=ctype,
        from_address=sender,
        subject=subject,
        envelope_sender=envelope,
        internet_message_id=msgid,
        part_types=parts,
    )


CASES = [
    ("plain customer mail", facts(), CUSTOMER),
    ("customer says Auto-Submitted: no", facts({"auto-submitted": "no"}), CUSTOMER),
    ("customer 'Re: vacation booking'", facts(subject="Re: booking my holiday"), CUSTOMER),
    ("RFC 3834 auto-replied", facts({"auto-submitted": "auto-replied"}), AUTO),
    ("RFC 3834 auto-generated", facts({"auto-submitted": "auto-generated"}), AUTO),
    ("X-Autoreply", facts({"x-autoreply": "yes"}), AUTO),
    ("X-Autorespond", facts({"x-autorespond": "vacation"}), AUTO),
    ("Precedence: bulk", facts({"precedence": "bulk"}), AUTO),
    ("Precedence: junk", facts({"precedence": "junk"}), AUTO),
    ("Precedence: list", facts({"precedence": "list"}), AUTO),
    ("Out of office subject", facts(subject="Out of Office: back Monday"), AUTO),
    ("German OOO", facts(subject="Abwesenheitsnotiz: Ihre Anfrage"), AUTO),
    ("French OOO", facts(subject="Réponse automatique : votre demande"), AUTO),
    (
        "Outlook automatic reply",
        facts({"x-auto-response-suppress": "All"}, subject="Automatic reply: Invoice"),
        AUTO,
    ),
    (
        "Outlook suppress header on a human reply",
        facts({"x-auto-response-suppress": "All"}, subject="RE: Invoice"),
        CUSTOMER,
    ),
    ("null envelope sender", facts(envelope=""), AUTO),
    ("multipart/report", facts(ctype="multipart/report"), BOUNCE),
    (
        "delivery-status part",
        facts(ctype="multipart/mixed", parts=frozenset({"message/delivery-status"})),
        BOUNCE,
    ),
    (
        "mailer daemon with bounce subject",
        facts(sender="mailer-daemon@mx.example", subject="Undelivered Mail Returned to Sender"),
        BOUNCE,
    ),
    ("postmaster with null sender", facts(sender="postmaster@mx.example", envelope=""), BOUNCE),
    ("our origin header", facts({ORIGIN_HEADER: "t1/m1"}), OWN),
    ("our Message-ID domain", facts(msgid="x1@mail.contactcenter.local"), OWN),
    (
        "bounce of our mail is a bounce, not own mail",
        facts(ctype="multipart/report", msgid="r@mx.example"),
        BOUNCE,
    ),
]


@pytest.mark.parametrize(("name", "given", "expected"), CASES, ids=[c[0] for c in CASES])
def test_classification(name: str, given: MessageFacts, expected: MessageKind) -> None:
    verdict = classify(given, own_domains=frozenset({"mail.contactcenter.local"}))
    assert verdict.kind is expected, verdict.reason
    assert verdict.opens_contact is (expected is CUSTOMER)


def test_a_message_id_we_issued_is_our_own_mail() -> None:
    verdict = classify(facts(msgid="abc@elsewhere.example"), own_message_id=True)
    assert verdict.kind is OWN

"""Parsing the generated corpus of real-world-shaped messages: what each becomes."""

from __future__ import annotations

import pytest

from contactcenter.email import corpus
from contactcenter.email.adapters.mime import Limits, Unprocessable, parse
from contactcenter.email.domain import MessageKind, classify

C = "Anna Kunde <anna@customer.example>"
MB = "support@acme.example"
LIMITS = Limits(max_message_bytes=2_000_000, max_attachment_bytes=1_000_000)


def test_iso_2022_jp() -> None:
    p = parse(corpus.iso_2022_jp(C, MB), LIMITS)
    assert p.subject == "注文について"
    assert "注文した商品がまだ届きません" in p.full_text


def test_windows_1252_quoted_printable() -> None:
    p = parse(corpus.windows_1252_qp(C, MB), LIMITS)
    assert p.subject == "Facture café"
    assert "le café coûte 5 € – “trop cher”" in p.full_text  # noqa: RUF001


def test_gb18030_base64() -> None:
    p = parse(corpus.gb18030_base64(C, MB), LIMITS)
    assert p.subject == "账户问题"
    assert "我的账户无法登录" in p.full_text


def test_an_unknown_charset_is_decoded_not_dropped() -> None:
    p = parse(corpus.unknown_charset(C, MB), LIMITS)
    assert "Grüße aus Köln" in p.full_text
    assert any(d.startswith("charset") for d in p.defects)


def test_gmail_reply_separates_quote_and_sanitises_html() -> None:
    p = parse(corpus.gmail_reply(C, MB, "orig@acme.example"), LIMITS)
    assert p.new_text.startswith("Thanks, restarting it fixed it!")
    assert "please restart the router" not in p.new_text
    assert "please restart the router" in p.full_text
    assert p.html is not None and "<script" not in p.html and "alert" not in p.html
    assert p.in_reply_to == ("orig@acme.example",)
    assert p.references == ("orig@acme.example",)


def test_outlook_reply_separates_history_and_keeps_the_attachment() -> None:
    p = parse(corpus.outlook_reply("Bob <bob@customer.example>", MB, "orig@acme.example"), LIMITS)
    assert "the invoice is still wrong" in p.new_text
    assert "we corrected it" not in p.new_text
    assert [(a.file_name, a.content_type) for a in p.attachments] == [
        ("invoice-2025-03.pdf", "application/pdf")
    ]


def test_inline_image_is_an_attachment_with_its_content_id() -> None:
    p = parse(corpus.with_inline_image(C, MB), LIMITS)
    (image,) = p.attachments
    assert image.content_type == "image/png"
    assert image.content_id == "shot1@customer.example"
    assert p.html is not None and 'src="cid:shot1@customer.example"' in p.html


def test_smime_signature_is_kept_as_an_attachment() -> None:
    p = parse(corpus.smime_signed(C, MB), LIMITS)
    assert p.full_text.strip() == "Please cancel my contract."
    assert [a.content_type for a in p.attachments] == ["application/pkcs7-signature"]


def test_dsn_bounce_details() -> None:
    p = parse(corpus.dsn_bounce(MB, "ours@mail.contactcenter.local"), LIMITS)
    assert p.original_message_id == "ours@mail.contactcenter.local"
    assert p.failed_recipients == ("gone@customer.example",)
    assert p.dsn_status == "5.1.1"
    assert classify(p.facts).kind is MessageKind.BOUNCE


@pytest.mark.parametrize(
    "style", ["rfc3834", "x-autoreply", "precedence", "ooo-subject", "outlook"]
)
def test_auto_replies_are_recognised(style: str) -> None:
    p = parse(corpus.auto_reply("Boss <boss@customer.example>", MB, style=style), LIMITS)
    assert classify(p.facts).kind is MessageKind.AUTO_REPLY


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (corpus.broken_mime(C, MB), "broken_mime"),
        (corpus.missing_start_boundary(C, MB), "broken_mime"),
        (corpus.no_sender(MB), "no_sender"),
        (corpus.with_attachment(C, MB, 1_200_000), "oversized_attachment"),
        (corpus.with_attachment(C, MB, 2_500_000), "oversized"),
        (corpus.zip_bomb(C, MB), "zip_bomb"),
        (b"   ", "empty"),
    ],
    ids=[
        "no-boundary",
        "start-boundary",
        "no-sender",
        "big-attachment",
        "oversized",
        "zip-bomb",
        "empty",
    ],
)
def test_unprocessable_messages_name_their_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        parse(raw, LIMITS)
    assert caught.value.reason == reason


def test_limits_can_be_ignored_on_reprocessing() -> None:
    p = parse(corpus.with_attachment(C, MB, 1_500_000), LIMITS, ignore_limits=True)
    assert p.attachments[0].size == 1_500_000


def test_message_without_message_id() -> None:
    p = parse(corpus.without_message_id(C, MB), LIMITS)
    assert p.internet_message_id is None
    assert p.from_address == "anna@customer.example"
    assert p.from_name == "Anna Kunde"


def test_garbage_never_raises_anything_but_unprocessable() -> None:
    samples = [
        b"\x00\xff" * 500,
        b"From: \r\n\r\n",
        b"Content-Type: multipart/x; boundary=\r\n\r\n--",
    ]
    samples += [corpus.plain()[:n] for n in (10, 50, 120)]
    outcomes = []
    for raw in samples:
        try:
            outcomes.append(type(parse(raw, LIMITS)).__name__)
        except Unprocessable as exc:
            outcomes.append(exc.reason)
    assert len(outcomes) == len(samples)
    assert "no_sender" in outcomes

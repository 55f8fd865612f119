"""Real-world-shaped messages, generated (tests and the benchmark): several charsets
(ISO-2022-JP, windows-1252, GB18030, UTF-8), quoted-printable and base64, Outlook and Gmail
reply styles, a DSN bounce, RFC 3834 auto-replies and out-of-office notes, broken MIME, an
oversized mail and a zip bomb. Every function returns the raw RFC 5322 bytes."""

# ruff: noqa: RUF001 (real mail has en dashes and full-width commas)
from __future__ import annotations

import base64
import io
import quopri
import uuid
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

_DATE = format_datetime(datetime(2025, 3, 3, 10, 12, tzinfo=UTC))


def new_message_id(domain: str = "customer.example") -> str:
    return f"{uuid.uuid4().hex}@{domain}"


def _head(
    sender: str,
    to: str,
    subject_header: str,
    message_id: str | None,
    extra: dict[str, str] | None = None,
) -> str:
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject_header}",
        f"Date: {_DATE}",
        "MIME-Version: 1.0",
    ]
    if message_id:
        lines.append(f"Message-ID: <{message_id}>")
    for k, v in (extra or {}).items():
        lines.append(f"{k}: {v}")
    return "\r\n".join(lines) + "\r\n"


def plain(
    sender: str = "Anna Kunde <anna@customer.example>",
    to: str = "support@acme.example",
    subject: str = "My router is broken",
    body: str = "Hello,\nmy router does not start any more.\n\nAnna",
    *,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    extra: dict[str, str] | None = None,
) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = _DATE
    if message_id is not False:  # type: ignore[comparison-overlap]
        m["Message-ID"] = f"<{message_id or new_message_id()}>"
    if in_reply_to:
        m["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        m["References"] = " ".join(f"<{r}>" for r in references)
    for k, v in (extra or {}).items():
        m[k] = v
    m.set_content(body)
    return m.as_bytes()


def without_message_id(sender: str, to: str, body: str = "no id here") -> bytes:
    return (
        _head(sender, to, "No Message-ID", None) + "Content-Type: text/plain\r\n\r\n" + body
    ).encode()


def iso_2022_jp(sender: str, to: str, message_id: str | None = None) -> bytes:
    subject = "注文について"
    body = "お世話になっております。\n注文した商品がまだ届きません。\n山田"
    enc_subject = (
        "=?ISO-2022-JP?B?" + base64.b64encode(subject.encode("iso2022_jp")).decode() + "?="
    )
    head = _head(sender, to, enc_subject, message_id or new_message_id())
    head += (
        'Content-Type: text/plain; charset="ISO-2022-JP"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
    )
    return head.encode("ascii") + body.encode("iso2022_jp").replace(b"\n", b"\r\n")


def windows_1252_qp(sender: str, to: str, message_id: str | None = None) -> bytes:
    body = "Bonjour,\nle café coûte 5 € – “trop cher”.\nMerci, François"
    head = _head(sender, to, "=?windows-1252?Q?Facture_caf=E9?=", message_id or new_message_id())
    head += (
        'Content-Type: text/plain; charset="windows-1252"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return head.encode("ascii") + quopri.encodestring(body.encode("cp1252")).replace(b"\n", b"\r\n")


def gb18030_base64(sender: str, to: str, message_id: str | None = None) -> bytes:
    body = "您好，\n我的账户无法登录。\n谢谢，李明"
    subject = "=?GB18030?B?" + base64.b64encode("账户问题".encode("gb18030")).decode() + "?="
    head = _head(sender, to, subject, message_id or new_message_id())
    head += (
        'Content-Type: text/plain; charset="GB18030"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    )
    return head.encode("ascii") + base64.encodebytes(body.encode("gb18030")).replace(b"\n", b"\r\n")


def unknown_charset(sender: str, to: str, message_id: str | None = None) -> bytes:
    head = _head(sender, to, "Strange charset", message_id or new_message_id())
    head += 'Content-Type: text/plain; charset="x-no-such-charset"\r\n\r\n'
    return head.encode("ascii") + "Grüße aus Köln".encode() + b"\r\n"


def gmail_reply(
    sender: str,
    to: str,
    in_reply_to: str,
    message_id: str | None = None,
    subject: str = "Re: My router is broken",
) -> bytes:
    text = (
        "Thanks, restarting it fixed it!\n\nBest,\nAnna\n\n"
        "On Mon, 3 Mar 2025 at 10:12, ACME Support <support@acme.example> wrote:\n"
        "> Hello Anna,\n> please restart the router.\n>\n> ACME Support\n"
    )
    html = (
        '<div dir="ltr">Thanks, restarting it fixed it!<br><br>Best,<br>Anna</div><br>'
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 3 Mar 2025 at 10:12,'
        ' ACME Support wrote:<br></div><blockquote class="gmail_quote">Hello Anna,<br>please'
        ' restart the router.</blockquote></div><script>alert("x")</script>'
    )
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Date"] = sender, to, subject, _DATE
    m["Message-ID"] = f"<{message_id or new_message_id('mail.gmail.com')}>"
    m["In-Reply-To"] = f"<{in_reply_to}>"
    m["References"] = f"<{in_reply_to}>"
    m.set_content(text)
    m.add_alternative(html, subtype="html")
    return m.as_bytes()


def outlook_reply(
    sender: str,
    to: str,
    in_reply_to: str | None,
    message_id: str | None = None,
    subject: str = "RE: Invoice",
) -> bytes:
    text = (
        "Hi team,\nthe invoice is still wrong.\n\nRegards\nBob\n\n"
        "________________________________\n"
        "From: ACME Support <support@acme.example>\nSent: Monday, March 3, 2025 10:12 AM\n"
        "To: Bob <bob@customer.example>\nSubject: RE: Invoice\n\nHello Bob, we corrected it.\n"
    )
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Date"] = sender, to, subject, _DATE
    m["Message-ID"] = f"<{message_id or new_message_id('EXCH01.prod.outlook.com')}>"
    if in_reply_to:
        m["In-Reply-To"] = f"<{in_reply_to}>"
        m["References"] = f"<{in_reply_to}>"
    m["Thread-Topic"] = "Invoice"
    m["X-MS-Has-Attach"] = "yes"
    m.set_content(text, charset="windows-1252", cte="quoted-printable")
    m.add_alternative(
        "<html><body><p>Hi team,<br>the invoice is still wrong.</p><hr>"
        "<p><b>From:</b> ACME Support</p><p>Hello Bob, we corrected it.</p></body></html>",
        subtype="html",
    )
    m.add_attachment(
        b"%PDF-1.4 fake invoice",
        maintype="application",
        subtype="pdf",
        filename="invoice-2025-03.pdf",
    )
    return m.as_bytes()


def with_inline_image(sender: str, to: str, message_id: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Date"] = sender, to, "Screenshot of the error", _DATE
    m["Message-ID"] = f"<{message_id or new_message_id()}>"
    m.set_content("See the screenshot.")
    m.add_alternative(
        '<p>See the screenshot:</p><img src="cid:shot1@customer.example">', subtype="html"
    )
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAC"
        "hwGA60e6kgAAAABJRU5ErkJggg=="
    )
    html_part: Any = m.get_payload()[1]  # type: ignore[index]
    html_part.add_related(
        png, maintype="image", subtype="png", cid="<shot1@customer.example>", filename="shot.png"
    )
    return m.as_bytes()


def smime_signed(sender: str, to: str, message_id: str | None = None) -> bytes:
    boundary = "----=_signed_boundary"
    head = _head(sender, to, "Signed request", message_id or new_message_id())
    head += (
        f'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
        f'micalg=sha-256; boundary="{boundary}"\r\n\r\n'
    )
    body = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Please cancel my contract.\r\n"
        f"--{boundary}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=smime.p7s\r\n\r\n"
        + base64.encodebytes(b"\x30\x82fake-signature").decode().replace("\n", "\r\n")
        + f"\r\n--{boundary}--\r\n"
    )
    return (head + body).encode()


def dsn_bounce(to: str, original_message_id: str, failed: str = "gone@customer.example") -> bytes:
    boundary = "dsn_boundary_1"
    head = _head(
        "Mail Delivery System <MAILER-DAEMON@mx.customer.example>",
        to,
        "Undelivered Mail Returned to Sender",
        new_message_id("mx.customer.example"),
        {"Auto-Submitted": "auto-replied"},
    )
    head += (
        "Content-Type: multipart/report; report-type=delivery-status;"
        f' boundary="{boundary}"\r\n\r\n'
    )
    body = (
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        f"\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {to}\r\nTo: {failed}\r\nSubject: Re: your question\r\n"
        f"Message-ID: <{original_message_id}>\r\n"
        f"\r\n--{boundary}--\r\n"
    )
    return (head + body).encode()


def auto_reply(
    sender: str, to: str, in_reply_to: str | None = None, style: str = "rfc3834"
) -> bytes:
    extra: dict[str, str] = {}
    subject = "Re: your ticket"
    if style == "rfc3834":
        extra["Auto-Submitted"] = "auto-replied"
        subject = "Automatic reply: your ticket"
    elif style == "x-autoreply":
        extra["X-Autoreply"] = "yes"
    elif style == "precedence":
        extra["Precedence"] = "bulk"
    elif style == "ooo-subject":
        subject = "Out of Office: I am away until Monday"
    elif style == "outlook":
        extra["X-Auto-Response-Suppress"] = "All"
        subject = "Automatic reply: Invoice"
    return plain(
        sender,
        to,
        subject,
        "I am out of the office until Monday.",
        in_reply_to=in_reply_to,
        extra=extra,
    )


def broken_mime(sender: str, to: str, message_id: str | None = None) -> bytes:
    """multipart without a boundary parameter: no part can be found."""
    head = _head(sender, to, "broken", message_id or new_message_id())
    head += "Content-Type: multipart/mixed\r\n\r\n"
    return (head + "--xyz\r\nContent-Type: text/plain\r\n\r\nlost text\r\n--xyz--\r\n").encode()


def missing_start_boundary(sender: str, to: str, message_id: str | None = None) -> bytes:
    head = _head(sender, to, "broken too", message_id or new_message_id())
    head += 'Content-Type: multipart/mixed; boundary="never-used"\r\n\r\n'
    return (head + "just some text without any boundary\r\n").encode()


def no_sender(to: str) -> bytes:
    return (
        f"To: {to}\r\nSubject: who am I\r\nMessage-ID: <{new_message_id()}>\r\n\r\nhi\r\n"
    ).encode()


def with_attachment(
    sender: str,
    to: str,
    size: int,
    message_id: str | None = None,
    name: str = "logs.bin",
    subject: str = "Logs attached",
) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Date"] = sender, to, subject, _DATE
    m["Message-ID"] = f"<{message_id or new_message_id()}>"
    m.set_content("The logs are attached.\n")
    payload = (uuid.uuid4().bytes * (size // 16 + 1))[:size]
    m.add_attachment(payload, maintype="application", subtype="octet-stream", filename=name)
    return m.as_bytes()


def zip_bomb(
    sender: str, to: str, message_id: str | None = None, expanded: int = 20 * 1024 * 1024
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("invoice.txt", b"\0" * expanded)
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Date"] = sender, to, "Invoice (zip)", _DATE
    m["Message-ID"] = f"<{message_id or new_message_id()}>"
    m.set_content("Please see the attached invoice.")
    m.add_attachment(
        buffer.getvalue(), maintype="application", subtype="zip", filename="invoice.zip"
    )
    return m.as_bytes()


def realistic(n: int, to: str, *, message_id: str | None = None, senders: int = 500) -> bytes:
    """The benchmark's mix: 2-6 KB text mails from `senders` customers, every tenth with a
    30-200 KB attachment."""
    sender = formataddr((f"Customer {n % senders}", f"customer{n % senders}@customer.example"))
    if n % 10 == 0:
        return with_attachment(
            sender, to, 30_000 + (n * 7919) % 170_000, message_id=message_id, subject=f"Logs {n}"
        )
    body = f"Hello,\nI have a question about order {n}.\n" + (
        "Lorem ipsum dolor sit amet. " * (60 + n % 150)
    )
    return plain(sender, to, f"Question about order {n}", body, message_id=message_id)

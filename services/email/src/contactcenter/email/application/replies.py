"""Outbound: `SendReply` queues an agent's reply (event `ReplyQueued`, its Message-ID known
to threading, an `outbound` row) in one transaction; the sender delivers it by SMTP with the
threading headers (In-Reply-To, References, our Message-ID, the reply token in Reply-To and
the subject), retrying transient failures (4xx, connection errors) with exponential backoff,
and then records it on the interaction (interactions' AppendMessage, idempotent).

A repeated `request_id` returns the first result and queues nothing. SMTP itself is at least
once: a crash between the peer's 250 and our commit sends the reply again, with the same
Message-ID, which receiving systems (and this service) treat as one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any, Protocol

import aiosmtplib
import asyncpg
import grpc

from contactcenter.contracts.errors import FailedPrecondition, NotFound, ValidationFailed
from contactcenter.contracts.events import DomainEvent
from contactcenter.contracts.streams import stream_id
from contactcenter.email.adapters.mime import sanitize_html
from contactcenter.email.adapters.peers import is_permanent
from contactcenter.email.application.mailboxes import Mailboxes
from contactcenter.email.domain import (
    ORIGIN_HEADER,
    ReplyFailed,
    ReplyQueued,
    ReplySent,
    references_for_reply,
    reply_subject,
    token_address,
)
from contactcenter.email.domain.personal import seal_personal
from contactcenter.eventstore import ANY, NO_STREAM, PgPool, PostgresEventStore
from contactcenter.privacy import SubjectKeys, seal_or_erased

_log = logging.getLogger(__name__)


class InteractionsRecorder(Protocol):
    async def append_outbound(
        self,
        tenant_id: str,
        *,
        request_id: str,
        interaction_id: str,
        agent_id: str,
        agent_name: str | None,
        body: str,
        subject: str,
        external_message_id: str,
        sent_at: datetime,
    ) -> str: ...


@dataclass(frozen=True)
class SmtpRelay:
    host: str
    port: int
    use_tls: bool = False
    start_tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 5.0
    max_delay_s: float = 3600.0

    def delay(self, attempts: int) -> float:
        return float(min(self.base_delay_s * 2 ** max(0, attempts - 1), self.max_delay_s))


class Replies:
    def __init__(
        self,
        pool: PgPool,
        schema: str,
        store: PostgresEventStore,
        mailboxes: Mailboxes,
        *,
        relay: SmtpRelay | None,
        recorder: InteractionsRecorder | None,
        message_id_domain: str,
        retry: RetryPolicy = RetryPolicy(),
        keys: SubjectKeys | None = None,
    ) -> None:
        self._pool = pool
        #: Seals the personal fields of the events (None: stored clear).
        self._keys = keys
        self._store = store
        self._mailboxes = mailboxes
        self._relay = relay
        self._recorder = recorder
        self._domain = message_id_domain
        self._retry = retry
        self._wake = asyncio.Event()
        s = '"' + schema.replace('"', '""') + '"'
        self._sql_thread_contact = (
            f"select interaction_id from {s}.thread_contacts where tenant_id = $1"
            " and thread_id = $2"
        )
        self._sql_original = (
            f"select view::text as view, thread_id, mailbox_address, kind from {s}.messages"
            " where tenant_id = $1 and message_id = $2"
        )
        self._sql_message = (
            f"insert into {s}.messages (tenant_id, message_id, dedupe_key, internet_message_id,"
            " thread_id, kind, mailbox_address, from_address, raw_sha256, delivery_status, view)"
            " values ($1, $2, $3, $4, $5, 'outbound', $6, $7, null, 'QUEUED', $8::text::jsonb)"
        )
        self._sql_outbound = (
            f"insert into {s}.outbound (message_id, tenant_id, status, payload)"
            " values ($1, $2, 'queued', $3::text::jsonb)"
        )
        self._sql_due = (
            f"select message_id, tenant_id, status, attempts, payload::text as payload"
            f" from {s}.outbound where status in ('queued', 'sent') and next_attempt_at <= now()"
            " order by next_attempt_at limit 50"
        )
        self._sql_set = (
            f"update {s}.outbound set status = $2, attempts = $3, last_error = $4,"
            " next_attempt_at = now() + make_interval(secs => $5) where message_id = $1"
        )
        self._sql_delivery = (
            f"update {s}.messages set delivery_status = $3 where tenant_id = $1 and message_id = $2"
        )

    def wake(self) -> None:
        self._wake.set()

    async def send_reply(
        self,
        tenant_id: str,
        *,
        request_id: str,
        interaction_id: str,
        in_reply_to_message_id: str,
        body_text: str,
        body_html: str | None,
        agent_id: str,
        agent_name: str | None,
    ) -> dict[str, Any]:
        missing = [
            (name, "is required")
            for name, value in (
                ("request_id", request_id),
                ("in_reply_to_message_id", in_reply_to_message_id),
                ("body_text", body_text.strip()),
                ("agent_id", agent_id),
            )
            if not value
        ]
        if len(body_text) > 100_000:
            missing.append(("body_text", "longer than 100,000 characters"))
        if missing:
            raise ValidationFailed(missing)
        command = {
            "rpc": "SendReply",
            "interaction_id": interaction_id,
            "in_reply_to_message_id": in_reply_to_message_id,
            "body_text": body_text,
        }
        prior = await self._store.lookup_request(tenant_id, request_id, command=command)
        if prior is not None and prior.result is not None:
            return dict(prior.result)
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_original, tenant_id, in_reply_to_message_id)
        if row is None:
            raise NotFound(
                f"message {in_reply_to_message_id} not found",
                resource_type="message",
                resource_name=in_reply_to_message_id,
            )
        original = json.loads(row["view"])
        thread_id = row["thread_id"]
        if original.get("erased"):
            raise FailedPrecondition(
                "the customer of this message was erased: there is no address to answer",
                current_state="erased",
            )
        if not thread_id or row["kind"] not in ("customer", "outbound"):
            raise FailedPrecondition(
                "only a customer's email (or our reply on its thread) can be answered",
                current_state=row["kind"],
            )
        if not interaction_id:
            # The thread's contact now (after a transfer, the same contact with its new agent;
            # after a reply reopened the thread, the new contact).
            async with self._pool.acquire() as conn:
                current = await conn.fetchval(self._sql_thread_contact, tenant_id, thread_id)
            if current is None:
                raise ValidationFailed(
                    [("interaction_id", "required: the thread's contact is not known yet")]
                )
            interaction_id = current
        mailbox_address = row["mailbox_address"]
        mailbox = self._mailboxes.lookup(mailbox_address)
        to_address = (
            original.get("to_address") if row["kind"] == "outbound" else original["from_address"]
        )
        message_id = str(uuid.uuid4())
        internet_id = f"{uuid.uuid4().hex}@{self._domain}"
        parent_id = original.get("internet_message_id")
        event = ReplyQueued(
            tenant_id=tenant_id,
            message_id=message_id,
            thread_id=thread_id,
            interaction_id=interaction_id,
            internet_message_id=internet_id,
            in_reply_to_message_id=in_reply_to_message_id,
            mailbox_address=mailbox_address,
            from_address=mailbox_address,
            to_address=to_address,
            subject=reply_subject(original.get("subject") or "", thread_id),
            body_text=body_text,
            body_html=sanitize_html(body_html) if body_html else None,
            in_reply_to=parent_id,
            references=references_for_reply(parent_id, original.get("references") or ()),
            agent_id=agent_id,
            agent_name=agent_name or None,
        )
        result = {
            "message_id": message_id,
            "internet_message_id": internet_id,
            "thread_id": thread_id,
        }
        payload = {
            **event.payload(),
            "display_name": mailbox.display_name if mailbox else None,
            "reply_to": token_address(mailbox_address, thread_id),
        }
        view = {**payload, "kind": "outbound", "attachments": []}
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                stored: DomainEvent = event
                if self._keys is not None:
                    cipher = await self._keys.for_writing(tenant_id, message_id, conn=conn)
                    stored = seal_personal(event, lambda v: seal_or_erased(cipher, v))
                await self._store.append_in(
                    conn,
                    stream_id("email_message", tenant_id, message_id),
                    [stored],
                    expected_version=NO_STREAM,
                    request_id=request_id,
                    result=result,
                    command=command,
                )
                await conn.execute(
                    self._sql_message,
                    tenant_id,
                    message_id,
                    f"mid:{internet_id}",
                    internet_id,
                    thread_id,
                    mailbox_address,
                    mailbox_address,
                    json.dumps(view),
                )
                await conn.execute(self._sql_outbound, message_id, tenant_id, json.dumps(payload))
        except asyncpg.UniqueViolationError:
            prior = await self._store.lookup_request(tenant_id, request_id, command=command)
            if prior is None or prior.result is None:
                raise
            return dict(prior.result)
        self._store.appended()
        self.wake()
        return result

    # --- the sender --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()  # before the query: a wake-up during delivery is kept
            done = await self.deliver_due()
            if done:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)

    async def deliver_due(self) -> int:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_due)
        for r in rows:
            payload = json.loads(r["payload"])
            if r["status"] == "queued":
                await self._send(r["tenant_id"], r["message_id"], r["attempts"], payload)
            else:
                await self._record(r["tenant_id"], r["message_id"], r["attempts"], payload)
        return len(rows)

    def build(self, tenant_id: str, payload: dict[str, Any]) -> EmailMessage:
        m = EmailMessage()
        m["From"] = formataddr((payload.get("display_name") or "", payload["from_address"]))
        m["Reply-To"] = payload["reply_to"]
        m["To"] = payload["to_address"]
        m["Subject"] = payload["subject"]
        m["Date"] = format_datetime(datetime.now(UTC))
        m["Message-ID"] = f"<{payload['internet_message_id']}>"
        if payload.get("in_reply_to"):
            m["In-Reply-To"] = f"<{payload['in_reply_to']}>"
        if payload.get("references"):
            m["References"] = " ".join(f"<{r}>" for r in payload["references"])
        m[ORIGIN_HEADER] = f"{tenant_id}/{payload['message_id']}"
        m.set_content(payload["body_text"])
        if payload.get("body_html"):
            m.add_alternative(payload["body_html"], subtype="html")
        return m

    async def _send(
        self, tenant_id: str, message_id: str, attempts: int, payload: dict[str, Any]
    ) -> None:
        relay = self._relay
        attempts += 1
        error: str | None = None
        permanent = False
        if relay is None:
            error, permanent = "no SMTP relay configured", False
        else:
            try:
                await aiosmtplib.send(
                    self.build(tenant_id, payload),
                    sender=payload["from_address"],
                    recipients=[payload["to_address"]],
                    hostname=relay.host,
                    port=relay.port,
                    use_tls=relay.use_tls,
                    start_tls=relay.start_tls,
                    username=relay.username,
                    password=relay.password,
                    timeout=relay.timeout_s,
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                codes = [r.code for r in exc.recipients]
                error = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
                permanent = all(500 <= c < 600 for c in codes)
            except aiosmtplib.SMTPResponseException as exc:
                error, permanent = f"{exc.code} {exc.message}", 500 <= exc.code < 600
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                error, permanent = repr(exc), False
        event_base = {
            "tenant_id": tenant_id,
            "message_id": message_id,
            "thread_id": payload["thread_id"],
            "interaction_id": payload["interaction_id"],
            "attempts": attempts,
        }
        stream = stream_id("email_message", tenant_id, message_id)
        if error is None:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._store.append_in(
                    conn,
                    stream,
                    [ReplySent(**event_base, internet_message_id=payload["internet_message_id"])],
                    expected_version=ANY,
                )
                await conn.execute(self._sql_set, message_id, "sent", attempts, None, 0.0)
                await conn.execute(self._sql_delivery, tenant_id, message_id, "SENT")
            self._store.appended()
            await self._record(tenant_id, message_id, 0, payload)
            return
        if permanent or attempts >= self._retry.max_attempts:
            _log.warning(
                "reply %s failed for good after %d attempts: %s", message_id, attempts, error
            )
            async with self._pool.acquire() as conn, conn.transaction():
                await self._store.append_in(
                    conn,
                    stream,
                    [ReplyFailed(**event_base, error=error[:1000])],
                    expected_version=ANY,
                )
                await conn.execute(self._sql_set, message_id, "failed", attempts, error, 0.0)
                await conn.execute(self._sql_delivery, tenant_id, message_id, "FAILED")
            self._store.appended()
            return
        delay = self._retry.delay(attempts)
        _log.info(
            "reply %s: transient failure (%s); retry %d in %.1f s",
            message_id,
            error,
            attempts,
            delay,
        )
        async with self._pool.acquire() as conn:
            await conn.execute(self._sql_set, message_id, "queued", attempts, error, delay)

    async def _record(
        self, tenant_id: str, message_id: str, attempts: int, payload: dict[str, Any]
    ) -> None:
        if self._recorder is None:
            async with self._pool.acquire() as conn:
                await conn.execute(self._sql_set, message_id, "done", attempts, None, 0.0)
            return
        try:
            await self._recorder.append_outbound(
                tenant_id,
                request_id=f"email-reply:{message_id}",
                interaction_id=payload["interaction_id"],
                agent_id=payload["agent_id"],
                agent_name=payload.get("agent_name"),
                body=payload["body_text"],
                subject=payload["subject"],
                external_message_id=payload["internet_message_id"],
                sent_at=datetime.now(UTC),
            )
            status, error, delay = "recorded", None, 0.0
        except grpc.aio.AioRpcError as exc:
            error = f"{exc.code().name}: {exc.details()}"
            if is_permanent(exc):
                _log.warning(
                    "reply %s cannot be recorded on its interaction: %s", message_id, error
                )
                status, delay = "unrecorded", 0.0
            else:
                status, delay = "sent", self._retry.delay(attempts + 1)
        async with self._pool.acquire() as conn:
            await conn.execute(self._sql_set, message_id, status, attempts + 1, error, delay)


def backoff_until(delay_s: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=delay_s)

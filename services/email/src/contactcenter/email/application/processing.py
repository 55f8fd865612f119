"""Parse second: the processor takes committed work-queue rows (`inbox`, status pending) in
batches, parses, classifies, dedupes and threads them, resolves the customer's profile, and
commits the batch's events, index rows and new statuses in one transaction (group commit).
A crash anywhere before that commit leaves the rows pending: a restart processes them again.

A message that cannot be processed is quarantined (raw bytes kept, reason recorded); a row
that breaks the batch's transaction is retried alone and, if it fails alone, quarantined:
the processor never stops on one bad message.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from contactcenter.contracts.events import DomainEvent
from contactcenter.contracts.streams import stream_id
from contactcenter.email.adapters.blobs import PostgresBlobStore
from contactcenter.email.adapters.mime import (
    Limits,
    ParsedMessage,
    ParseJob,
    ParseOutcome,
    Unprocessable,
    parse_many,
)
from contactcenter.email.application.mailboxes import Mailboxes
from contactcenter.email.domain import (
    AttachmentRef,
    AutoReplyReceived,
    BounceReceived,
    EmailQuarantined,
    EmailReceived,
    MessageKind,
    OwnMailReturned,
    ThreadKeys,
    classify,
    decide_thread,
    dedupe_key,
)
from contactcenter.email.domain.personal import seal_personal
from contactcenter.eventstore import ANY, NO_STREAM, PgConnection, PgPool, PostgresEventStore
from contactcenter.privacy import SubjectKeys, seal_or_erased

_log = logging.getLogger(__name__)

MESSAGE_NAMESPACE = uuid.UUID("5d9f4a52-8d4e-4b8a-9f39-2f6f0c1e7a11")


def message_id_for(tenant_id: str, key: str) -> str:
    return str(uuid.uuid5(MESSAGE_NAMESPACE, f"{tenant_id}\n{key}"))


def new_thread_id() -> str:
    return base64.b32encode(os.urandom(10)).decode().lower()


class ProfileResolver(Protocol):
    async def resolve(self, tenant_id: str, address: str, display_name: str | None) -> str:
        """The customer profile of an email address (created when new)."""
        ...


class ProfilesUnavailable(Exception):
    pass


@dataclass
class _Row:
    inbox_id: int
    tenant_id: str
    mailbox_address: str
    raw_sha256: str
    size: int
    envelope_from: str | None
    envelope_to: tuple[str, ...]
    received_at: datetime
    ignore_limits: bool
    data: bytes
    hold_reason: str | None = None
    parsed: ParsedMessage | None = None
    error: Unprocessable | None = None
    profile_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Append:
    """An event to append when the batch's keys are known (all of them in one round trip)."""

    stream_id: str
    event: DomainEvent
    expected_version: int
    #: (tenant, message id, owners) of the data key that seals it; None: appended as is.
    seal: tuple[str, str, tuple[str, ...]] | None = None


@dataclass
class _BatchIndex:
    """What the batch knows (from the table, plus the batch's own earlier rows)."""

    by_key: dict[tuple[str, str], str] = field(default_factory=dict)
    by_internet_id: dict[tuple[str, str], tuple[str | None, str]] = field(default_factory=dict)
    threads: set[tuple[str, str]] = field(default_factory=set)
    #: Rows written at the end of the batch in one pipelined statement each.
    message_rows: list[tuple[Any, ...]] = field(default_factory=list)
    thread_rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    #: The batch's events, in the order of its rows (appended after the loop).
    appends: list[_Append] = field(default_factory=list)


@dataclass
class Outcome:
    status: str
    message_id: str | None
    events: list[tuple[str, list[DomainEvent], int]] = field(default_factory=list)


class Processor:
    def __init__(
        self,
        pool: PgPool,
        schema: str,
        store: PostgresEventStore,
        blobs: PostgresBlobStore,
        mailboxes: Mailboxes,
        *,
        resolver: ProfileResolver | None,
        limits_for: Callable[[str], Limits],
        own_domains: frozenset[str],
        batch_size: int = 200,
        profile_wait_s: float = 60.0,
        poll_interval_s: float = 1.0,
        parse_workers: int = 0,
        keys: SubjectKeys | None = None,
        profile_cache_ttl_s: float = 300.0,
    ) -> None:
        self._pool = pool
        #: Seals the personal fields of the events (None: stored clear).
        self._subject_keys = keys
        self._store = store
        self._blobs = blobs
        self._mailboxes = mailboxes
        self._resolver = resolver
        self._limits_for = limits_for
        self._own_domains = own_domains
        self._batch_size = batch_size
        self._profile_wait_s = profile_wait_s
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        #: Parsing is CPU work: worker processes keep it off the event loop (SMTP, gRPC).
        self._workers = parse_workers
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        #: (tenant, sender address) -> (profile id, until when it is trusted). Dropped on
        #: the profile's erasure or merge into another (`forget_profiles`, called by the
        #: profiles-topic consumer of this process); the expiry bounds how long a replica
        #: whose consumer did not see that event keeps it. Empty after a restart.
        self._profiles: dict[tuple[str, str], tuple[str, float]] = {}
        self._profile_ttl_s = profile_cache_ttl_s
        #: Called with (tenant, message_id) after each commit (tests, metrics).
        self.processed = asyncio.Event()
        s = '"' + schema.replace('"', '""') + '"'
        self._sql_thread_contact = (
            f"select interaction_id, closed from {s}.thread_contacts"
            " where tenant_id = $1 and thread_id = $2"
        )
        self._sql_claim = (
            "select i.id, i.tenant_id, i.mailbox_address, i.raw_sha256, i.envelope_from,"
            " i.envelope_to, i.received_at, i.ignore_limits, i.hold_reason, b.data"
            f" from {s}.inbox i join {s}.blobs b on b.sha256 = i.raw_sha256"
            " where i.status = 'pending' and ($2::bigint is null or i.id = $2)"
            " order by i.id limit $1 for update of i skip locked"
        )
        self._sql_known = (
            "select tenant_id, dedupe_key, internet_message_id, thread_id, kind, message_id"
            f" from {s}.messages where tenant_id = any($1::text[])"
            " and (dedupe_key = any($2::text[]) or internet_message_id = any($3::text[]))"
        )
        self._sql_threads = (
            f"select tenant_id, thread_id from {s}.threads where tenant_id = any($1::text[])"
            " and thread_id = any($2::text[])"
        )
        self._sql_message = (
            f"insert into {s}.messages (tenant_id, message_id, dedupe_key, internet_message_id,"
            " thread_id, kind, mailbox_address, from_address, raw_sha256, view)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb)"
        )
        self._sql_thread = (
            f"insert into {s}.threads (tenant_id, thread_id, mailbox_address, customer_address)"
            " values ($1, $2, $3, $4) on conflict do nothing"
        )
        self._sql_done = (
            f"update {s}.inbox i set status = u.status, message_id = u.message_id,"
            " processed_at = now() from unnest($1::bigint[], $2::text[], $3::text[])"
            " as u(id, status, message_id) where i.id = u.id"
        )
        self._sql_quarantine = (
            f"insert into {s}.quarantine (quarantine_id, tenant_id, inbox_id, mailbox_address,"
            " reason, detail, raw_sha256, size_bytes, received_at)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict (quarantine_id) do update"
            " set reason = excluded.reason, detail = excluded.detail, status = 'QUARANTINED'"
        )

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        if self._workers > 0 and self._executor is None:
            # Start the workers now (spawn + imports take a second), not on the first mail.
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn")
            )
            await asyncio.get_running_loop().run_in_executor(self._executor, parse_many, [])
        while not stop.is_set():
            self._wake.clear()  # before the claim: a wake-up during the batch is kept
            try:
                done = await self.process_batch()
            except ProfilesUnavailable as exc:
                _log.warning("profiles service unavailable, retrying: %s", exc)
                done = 0
                await asyncio.sleep(1.0)
            if done:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def process_batch(self) -> int:
        try:
            return await self._process(self._batch_size, None)
        except ProfilesUnavailable:
            raise
        except Exception as exc:
            _log.warning("a batch failed (%r); processing its rows one by one", exc)
        return await self._isolate()

    async def _isolate(self) -> int:
        """Each pending row alone; one that still fails is quarantined."""
        async with self._pool.acquire() as conn:
            ids = await conn.fetch(
                self._sql_claim.replace("for update of i skip locked", ""), self._batch_size, None
            )
        for r in ids:
            try:
                await self._process(1, r["id"])
            except ProfilesUnavailable:
                raise
            except Exception as exc:
                _log.exception("message %s cannot be processed; quarantined", r["id"])
                async with self._pool.acquire() as conn, conn.transaction():
                    row = await self._row_by_id(conn, r["id"])
                    if row is None:
                        continue
                    row.error = Unprocessable("processing_error", repr(exc)[:500])
                    outcome = await self._quarantine(conn, row)
                    await self._finish(conn, [(row, outcome)])
                self._store.appended()
        return len(ids)

    async def _row_by_id(self, conn: PgConnection, inbox_id: int) -> _Row | None:
        rows = await conn.fetch(self._sql_claim, 1, inbox_id)
        return self._rows(rows)[0] if rows else None

    def _rows(self, records: Sequence[Any]) -> list[_Row]:
        return [
            _Row(
                inbox_id=r["id"],
                tenant_id=r["tenant_id"],
                mailbox_address=r["mailbox_address"],
                raw_sha256=r["raw_sha256"],
                size=len(r["data"]),
                envelope_from=r["envelope_from"],
                envelope_to=tuple(a for a in (r["envelope_to"] or "").split(",") if a),
                received_at=r["received_at"],
                ignore_limits=r["ignore_limits"],
                data=r["data"],
                hold_reason=r["hold_reason"],
            )
            for r in records
        ]

    async def _process(self, limit: int, only: int | None) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = self._rows(await conn.fetch(self._sql_claim, limit, only))
            if not rows:
                return 0
            # Held at intake (over the tenant's inbound rate): quarantined unparsed, unless
            # reprocessed with ignore_limits.
            held = [r for r in rows if r.hold_reason and not r.ignore_limits]
            for row in held:
                row.error = Unprocessable(
                    row.hold_reason or "held", "over the tenant's limit when it was received"
                )
            to_parse = [r for r in rows if r.error is None]
            jobs: list[ParseJob] = [
                (r.data, self._limits_for(r.tenant_id), r.envelope_from, r.ignore_limits)
                for r in to_parse
            ]
            outcomes_of_parse = await self._parse(jobs) if jobs else []
            for row, (parsed, reason, detail) in zip(to_parse, outcomes_of_parse, strict=True):
                row.parsed = parsed
                if reason is not None:
                    row.error = Unprocessable(reason, detail)
            for row in rows:
                row.data = b""
            index = await self._index(conn, rows)
            await self._resolve_profiles(rows)
            outcomes = []
            for row in rows:
                if row.error is not None:
                    outcomes.append((row, await self._quarantine(conn, row, index.appends)))
                else:
                    outcomes.append((row, await self._accept(conn, row, index)))
            await self._append_all(conn, index.appends)
            if index.blobs:
                await self._blobs.put_in(conn, index.blobs.items())
            if index.thread_rows:
                await conn.executemany(self._sql_thread, index.thread_rows)
            if index.message_rows:
                await conn.executemany(self._sql_message, index.message_rows)
            await self._finish(conn, outcomes)
        self._store.appended()
        self.processed.set()
        return len(rows)

    async def _parse(self, jobs: list[ParseJob]) -> list[ParseOutcome]:
        if self._workers <= 0 or len(jobs) < 4:
            return parse_many(jobs)
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn")
            )
        loop = asyncio.get_running_loop()
        size = -(-len(jobs) // self._workers)
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        try:
            results = await asyncio.gather(
                *(loop.run_in_executor(self._executor, parse_many, c) for c in chunks)
            )
        except concurrent.futures.process.BrokenProcessPool:
            # A worker died (out of memory on a hostile message?): parse here this time.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            return parse_many(jobs)
        return [outcome for chunk in results for outcome in chunk]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _index(self, conn: PgConnection, rows: list[_Row]) -> _BatchIndex:
        tenants: set[str] = set()
        keys: set[str] = set()
        ids: set[str] = set()
        tokens: set[str] = set()
        for row in rows:
            p = row.parsed
            if p is None:
                continue
            tenants.add(row.tenant_id)
            keys.add(dedupe_key(p.internet_message_id, row.raw_sha256))
            ids.update(
                i for i in (p.internet_message_id, p.original_message_id, *p.in_reply_to) if i
            )
            ids.update(p.references)
            tokens.update(t for _, t in self._keys(row, p).tokens())
        index = _BatchIndex()
        if not tenants:
            return index
        for r in await conn.fetch(self._sql_known, list(tenants), list(keys), list(ids)):
            index.by_key[(r["tenant_id"], r["dedupe_key"])] = r["message_id"]
            if r["internet_message_id"]:
                index.by_internet_id[(r["tenant_id"], r["internet_message_id"])] = (
                    r["thread_id"],
                    r["kind"],
                )
        if tokens:
            for r in await conn.fetch(self._sql_threads, list(tenants), list(tokens)):
                index.threads.add((r["tenant_id"], r["thread_id"]))
        return index

    def _keys(self, row: _Row, p: ParsedMessage) -> ThreadKeys:
        return ThreadKeys(
            internet_message_id=p.internet_message_id,
            in_reply_to=p.in_reply_to,
            references=p.references,
            recipients=(*row.envelope_to, *p.to_addresses),
            subject=p.subject,
        )

    async def _resolve_profiles(self, rows: list[_Row]) -> None:
        if self._resolver is None:
            return
        wanted: dict[tuple[str, str], tuple[str | None, datetime]] = {}
        now_s = time.monotonic()
        for row in rows:
            p = row.parsed
            if p is None:
                continue
            cached = self._profiles.get((row.tenant_id, p.from_address))
            if cached is not None and cached[1] > now_s:
                continue
            wanted.setdefault((row.tenant_id, p.from_address), (p.from_name, row.received_at))
        if not wanted:
            self._fill_profiles(rows)
            return
        resolver = self._resolver
        results = await asyncio.gather(
            *(resolver.resolve(t, a, n) for (t, a), (n, _) in wanted.items()),
            return_exceptions=True,
        )
        now = datetime.now(UTC)
        for (key, (_, received)), result in zip(wanted.items(), results, strict=True):
            if isinstance(result, BaseException):
                if (now - received).total_seconds() < self._profile_wait_s:
                    raise ProfilesUnavailable(repr(result))
                _log.warning(
                    "no profile for a sender after %.0f s: %r", self._profile_wait_s, result
                )
                continue
            if len(self._profiles) > 100_000:
                self._profiles.clear()
            self._profiles[key] = (result, now_s + self._profile_ttl_s)
        self._fill_profiles(rows)

    def _fill_profiles(self, rows: list[_Row]) -> None:
        for row in rows:
            if row.parsed is not None:
                cached = self._profiles.get((row.tenant_id, row.parsed.from_address))
                row.profile_id = cached[0] if cached is not None else None

    def forget_profiles(self, tenant_id: str, profile_ids: Sequence[str]) -> None:
        """Drop the cached senders of these profiles (erased, or merged into another)."""
        gone = set(profile_ids)
        for key in [
            k for k, (pid, _) in self._profiles.items() if k[0] == tenant_id and pid in gone
        ]:
            del self._profiles[key]

    async def _thread_contact(
        self, conn: PgConnection, tenant_id: str, thread_id: str
    ) -> dict[str, Any]:
        """The reply's thread's contact (adapters/contacts.py keeps `thread_contacts`)."""
        row = await conn.fetchrow(self._sql_thread_contact, tenant_id, thread_id)
        if row is None:
            return {}
        return {"interaction_id": row["interaction_id"], "contact_closed": row["closed"]}

    async def _append_all(self, conn: PgConnection, appends: Sequence[_Append]) -> None:
        """The batch's events: the data keys of all its messages in one round trip (owners
        first, so an erasure misses nothing), then each sealed and appended in row order."""
        seals = [a.seal for a in appends if a.seal is not None]
        keys = self._subject_keys
        ciphers = iter(await keys.for_writing_many(conn, seals) if keys and seals else [])
        for a in appends:
            event = a.event
            if a.seal is not None and keys is not None:
                cipher = next(ciphers)
                event = seal_personal(event, lambda v, c=cipher: seal_or_erased(c, v))
            await self._store.append_in(
                conn, a.stream_id, [event], expected_version=a.expected_version
            )

    async def _quarantine(
        self, conn: PgConnection, row: _Row, appends: list[_Append] | None = None
    ) -> Outcome:
        err = row.error
        assert err is not None
        qid = message_id_for(row.tenant_id, f"quarantine:{row.inbox_id}")
        await conn.execute(
            self._sql_quarantine,
            qid,
            row.tenant_id,
            row.inbox_id,
            row.mailbox_address,
            err.reason,
            err.detail[:2000],
            row.raw_sha256,
            row.size,
            row.received_at,
        )
        event = EmailQuarantined(
            tenant_id=row.tenant_id,
            quarantine_id=qid,
            mailbox_address=row.mailbox_address,
            reason=err.reason,
            detail=err.detail[:2000],
            raw_sha256=row.raw_sha256,
            size_bytes=row.size,
        )
        stream = stream_id("email_quarantine", row.tenant_id, qid)
        if appends is not None:
            appends.append(_Append(stream, event, ANY))
        else:
            await self._store.append_in(conn, stream, [event], expected_version=ANY)
        _log.info("quarantined inbox row %s: %s", row.inbox_id, err.reason)
        return Outcome("quarantined", None)

    async def _accept(self, conn: PgConnection, row: _Row, index: _BatchIndex) -> Outcome:
        p = row.parsed
        assert p is not None
        tenant = row.tenant_id
        key = dedupe_key(p.internet_message_id, row.raw_sha256)
        existing = index.by_key.get((tenant, key))
        if existing is not None:
            known = index.by_internet_id.get((tenant, p.internet_message_id or ""))
            if known is not None and known[1] == "outbound":
                return self._returned(row, p, existing, index)
            return Outcome("duplicate", existing)
        message_id = message_id_for(tenant, key)
        own = False
        if p.internet_message_id:
            known = index.by_internet_id.get((tenant, p.internet_message_id))
            own = known is not None and known[1] == "outbound"
        verdict = classify(p.facts, own_message_id=own, own_domains=self._own_domains)
        keys = self._keys(row, p)

        def thread_of(mid: str) -> str | None:
            found = index.by_internet_id.get((tenant, mid))
            return found[0] if found else None

        decision = decide_thread(
            keys,
            thread_of_message=thread_of,
            thread_exists=lambda t: (tenant, t) in index.threads,
            new_thread_id=new_thread_id,
        )
        thread_id: str | None = decision.thread_id
        attachments = [
            AttachmentRef(
                uri=f"email://{message_id}/{n}",
                attachment_id=f"{message_id}.{n}",  # no "/": interactions refuses it in ids
                file_name=a.file_name,
                content_type=a.content_type,
                size_bytes=a.size,
                sha256=a.sha256,
                disposition=a.disposition,
                content_id=a.content_id,
            )
            for n, a in enumerate(p.attachments, start=1)
        ]
        for a in p.attachments:
            index.blobs[a.sha256] = a.data
        mailbox = self._mailboxes.lookup(row.mailbox_address)
        event: DomainEvent
        kind = verdict.kind
        if kind is MessageKind.CUSTOMER:
            routing = mailbox.routing if mailbox else None
            event = EmailReceived(
                tenant_id=tenant,
                message_id=message_id,
                thread_id=decision.thread_id,
                from_address=p.from_address,
                from_name=p.from_name,
                mailbox_address=row.mailbox_address,
                subject=p.subject or None,
                body_text=p.new_text,
                content_type="text/plain",
                attachments=tuple(attachments),
                internet_message_id=p.internet_message_id,
                sent_at=p.sent_at,
                queue_id=routing.queue_id if routing else None,
                priority=routing.priority if routing else 0,
                required_skills=routing.required_skills if routing else (),
                language=routing.language if routing else None,
                customer_profile_id=row.profile_id,
                new_thread=decision.new_thread,
                thread_matched_by=decision.matched_by,
                raw_sha256=row.raw_sha256,
                has_html=p.html is not None,
                to_addresses=p.to_addresses,
                in_reply_to=p.in_reply_to[0] if p.in_reply_to else None,
                references=p.references,
                **(
                    {}
                    if decision.new_thread
                    else await self._thread_contact(conn, tenant, decision.thread_id)
                ),
            )
            if decision.new_thread:
                index.thread_rows.append(
                    (tenant, decision.thread_id, row.mailbox_address, p.from_address)
                )
                index.threads.add((tenant, decision.thread_id))
        else:
            # Not a customer: never opens a thread (joins one only when it refers to it).
            if decision.new_thread and p.original_message_id:
                thread_id = thread_of(p.original_message_id)
            elif decision.new_thread:
                thread_id = None
            if kind is MessageKind.BOUNCE:
                event = BounceReceived(
                    tenant_id=tenant,
                    message_id=message_id,
                    mailbox_address=row.mailbox_address,
                    from_address=p.from_address,
                    subject=p.subject or None,
                    reason=verdict.reason,
                    original_message_id=p.original_message_id,
                    failed_recipients=p.failed_recipients,
                    status=p.dsn_status,
                    thread_id=thread_id,
                    internet_message_id=p.internet_message_id,
                    raw_sha256=row.raw_sha256,
                )
            elif kind is MessageKind.AUTO_REPLY:
                event = AutoReplyReceived(
                    tenant_id=tenant,
                    message_id=message_id,
                    mailbox_address=row.mailbox_address,
                    from_address=p.from_address,
                    subject=p.subject or None,
                    reason=verdict.reason,
                    internet_message_id=p.internet_message_id,
                    thread_id=thread_id,
                    raw_sha256=row.raw_sha256,
                )
            else:
                event = OwnMailReturned(
                    tenant_id=tenant,
                    message_id=message_id,
                    mailbox_address=row.mailbox_address,
                    from_address=p.from_address,
                    reason=verdict.reason,
                    internet_message_id=p.internet_message_id,
                    raw_sha256=row.raw_sha256,
                )
        view = {
            **event.payload(),
            "kind": kind.value,
            "attachments": [a.model_dump(mode="json") for a in attachments],
            "body_text": p.new_text,
            "full_text": p.full_text,
            "body_html": p.html,
            "subject": p.subject,
            "from_name": p.from_name,
            "to_addresses": list(p.to_addresses),
            "sent_at": p.sent_at.isoformat() if p.sent_at else None,
            "thread_id": thread_id,
            "customer_profile_id": row.profile_id,
            "defects": p.defects[:20],
            "classification": verdict.reason,
        }
        index.message_rows.append(
            (
                tenant,
                message_id,
                key,
                p.internet_message_id,
                thread_id,
                kind.value,
                row.mailbox_address,
                p.from_address,
                row.raw_sha256,
                json.dumps(view),
            )
        )
        index.by_key[(tenant, key)] = message_id
        if p.internet_message_id:
            index.by_internet_id[(tenant, p.internet_message_id)] = (thread_id, kind.value)
        owners = (row.profile_id,) if row.profile_id else ()
        index.appends.append(
            _Append(
                stream_id("email_message", tenant, message_id),
                event,
                NO_STREAM,
                (tenant, message_id, owners) if self._subject_keys is not None else None,
            )
        )
        return Outcome("done", message_id)

    def _returned(
        self, row: _Row, p: ParsedMessage, sent_message_id: str, index: _BatchIndex
    ) -> Outcome:
        """One of our own sent messages came back in (a forwarding loop): recorded, never
        answered, never a contact."""
        returned_id = message_id_for(row.tenant_id, f"returned:{row.inbox_id}")
        event = OwnMailReturned(
            tenant_id=row.tenant_id,
            message_id=returned_id,
            mailbox_address=row.mailbox_address,
            from_address=p.from_address,
            reason=f"our sent message {sent_message_id}",
            internet_message_id=p.internet_message_id,
            raw_sha256=row.raw_sha256,
        )
        index.appends.append(
            _Append(stream_id("email_message", row.tenant_id, returned_id), event, ANY)
        )
        return Outcome("own_mail", sent_message_id)

    async def _finish(self, conn: PgConnection, outcomes: list[tuple[_Row, Outcome]]) -> None:
        await conn.execute(
            self._sql_done,
            [r.inbox_id for r, _ in outcomes],
            [o.status for _, o in outcomes],
            [o.message_id for _, o in outcomes],
        )


def monotonic_ms() -> float:
    return time.monotonic() * 1000

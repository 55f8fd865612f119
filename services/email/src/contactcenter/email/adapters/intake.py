"""Keep first: the raw message and its work-queue rows are committed before anyone is told
"received" (SMTP 250, the IMAP checkpoint). Concurrent submissions share one transaction
(group commit): while one commit is in flight the next batch gathers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from contactcenter.email.adapters.blobs import PostgresBlobStore, sha256_of
from contactcenter.eventstore import PgConnection, PgPool

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    tenant_id: str
    mailbox_address: str


@dataclass(frozen=True, slots=True)
class ImapCheckpoint:
    address: str
    uidvalidity: int
    uid: int


@dataclass(slots=True)
class Intake:
    raw: bytes
    deliveries: Sequence[Delivery]
    source: str
    envelope_from: str | None = None
    envelope_to: Sequence[str] = ()
    checkpoint: ImapCheckpoint | None = None
    sha256: str = field(default="")
    #: Kept, but to be quarantined with this reason when processed (e.g. "rate_limited").
    hold_reason: str | None = None


class IntakeWriter:
    def __init__(
        self,
        pool: PgPool,
        schema: str,
        blobs: PostgresBlobStore,
        *,
        max_batch: int = 500,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._pool = pool
        self._blobs = blobs
        self._max_batch = max_batch
        self._on_committed = on_committed
        self._pending: list[tuple[Intake, asyncio.Future[str]]] = []
        self._flusher: asyncio.Task[None] | None = None
        s = '"' + schema.replace('"', '""') + '"'
        self._sql_inbox = (
            f"insert into {s}.inbox (tenant_id, mailbox_address, raw_sha256, source,"
            " envelope_from, envelope_to, hold_reason) select * from unnest($1::text[],"
            " $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])"
        )
        self._sql_checkpoint = (
            f"insert into {s}.imap_state as o (address, uidvalidity, last_uid) values ($1, $2, $3)"
            " on conflict (address) do update set uidvalidity = excluded.uidvalidity,"
            " last_uid = excluded.last_uid, updated_at = now()"
            " where o.uidvalidity <> excluded.uidvalidity or o.last_uid < excluded.last_uid"
        )

    async def submit(self, intake: Intake) -> str:
        """Returns the raw message's sha256 once it and its inbox rows are committed."""
        intake.sha256 = sha256_of(intake.raw)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((intake, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="email-intake")
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await self.write_in(conn, [i for i, _ in batch])
            except Exception as exc:
                _log.warning("storing %d received messages failed: %r", len(batch), exc)
                # One bad delivery must not fail the others: each alone (the sender of the
                # one that still fails gets a 4xx and keeps the message).
                for single in batch if len(batch) > 1 else []:
                    await self._write_alone(*single)
                for _, f in batch:
                    if not f.done():
                        f.set_exception(exc)
                self._on_committed()
                continue
            for intake, f in batch:
                if not f.done():
                    f.set_result(intake.sha256)
            self._on_committed()

    async def _write_alone(self, intake: Intake, future: asyncio.Future[str]) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await self.write_in(conn, [intake])
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(intake.sha256)

    async def write_in(self, conn: PgConnection, intakes: Sequence[Intake]) -> None:
        for i in intakes:
            if not i.sha256:
                i.sha256 = sha256_of(i.raw)
        await self._blobs.put_in(conn, ((i.sha256, i.raw) for i in intakes))
        rows = [(i, d) for i in intakes for d in i.deliveries]
        if rows:
            await conn.execute(
                self._sql_inbox,
                [d.tenant_id for _, d in rows],
                [d.mailbox_address for _, d in rows],
                [i.sha256 for i, _ in rows],
                [i.source for i, _ in rows],
                [i.envelope_from for i, _ in rows],
                [",".join(i.envelope_to) for i, _ in rows],
                [i.hold_reason for i, _ in rows],
            )
        checkpoints: dict[str, ImapCheckpoint] = {}
        for i in intakes:
            c = i.checkpoint
            if c is not None:
                prev = checkpoints.get(c.address)
                if prev is None or prev.uidvalidity != c.uidvalidity or prev.uid < c.uid:
                    checkpoints[c.address] = c
        for c in checkpoints.values():
            await conn.execute(self._sql_checkpoint, c.address, c.uidvalidity, c.uid)

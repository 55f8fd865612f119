"""Quarantine: messages that could not be processed, with their raw bytes and the reason,
listed through the API and processed again on request (`QuarantineReleased`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from contactcenter.contracts.errors import FailedPrecondition, NotFound
from contactcenter.contracts.streams import stream_id
from contactcenter.email.domain import QuarantineReleased
from contactcenter.eventstore import ANY, PgPool, PostgresEventStore

_COLUMNS = (
    "quarantine_id, mailbox_address, reason, detail, raw_sha256, size_bytes, received_at,"
    " status, inbox_id"
)


class Quarantine:
    def __init__(
        self, pool: PgPool, schema: str, store: PostgresEventStore, wake: Callable[[], None]
    ) -> None:
        self._pool = pool
        self._store = store
        self._wake = wake
        s = '"' + schema.replace('"', '""') + '"'
        self._sql_list = (
            f"select {_COLUMNS} from {s}.quarantine where tenant_id = $1"
            " and ($2 = '' or quarantine_id > $2) order by quarantine_id limit $3"
        )
        self._sql_get = (
            f"select {_COLUMNS} from {s}.quarantine where tenant_id = $1 and quarantine_id = $2"
            " for update"
        )
        self._sql_release = (
            f"update {s}.quarantine set status = 'REPROCESSED' where quarantine_id = $1"
        )
        self._sql_requeue = (
            f"update {s}.inbox set status = 'pending', ignore_limits = $2, processed_at = null,"
            " hold_reason = null where id = $1"
        )

    async def list(self, tenant_id: str, after: str, limit: int) -> list[Mapping[str, Any]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_list, tenant_id, after, limit)
        return [{**dict(r), "cursor": r["quarantine_id"]} for r in rows]

    async def reprocess(
        self,
        tenant_id: str,
        request_id: str,
        quarantine_id: str,
        *,
        ignore_limits: bool,
        actor: str,
    ) -> Mapping[str, Any]:
        command = {
            "rpc": "ReprocessQuarantined",
            "quarantine_id": quarantine_id,
            "ignore_limits": ignore_limits,
        }
        prior = await self._store.lookup_request(tenant_id, request_id, command=command)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(self._sql_get, tenant_id, quarantine_id)
            if row is None:
                raise NotFound(
                    f"quarantined message {quarantine_id} not found",
                    resource_type="quarantined message",
                    resource_name=quarantine_id,
                )
            if prior is not None:
                return dict(row)
            if row["status"] != "QUARANTINED":
                raise FailedPrecondition(
                    "the message is no longer quarantined", current_state=row["status"].lower()
                )
            await self._store.append_in(
                conn,
                stream_id("email_quarantine", tenant_id, quarantine_id),
                [
                    QuarantineReleased(
                        tenant_id=tenant_id,
                        quarantine_id=quarantine_id,
                        ignore_limits=ignore_limits,
                        released_by=actor,
                    )
                ],
                expected_version=ANY,
                request_id=request_id,
                command=command,
            )
            await conn.execute(self._sql_release, quarantine_id)
            await conn.execute(self._sql_requeue, row["inbox_id"], ignore_limits)
            row = await conn.fetchrow(self._sql_get, tenant_id, quarantine_id)
        self._store.appended()
        self._wake()
        assert row is not None
        return dict(row)

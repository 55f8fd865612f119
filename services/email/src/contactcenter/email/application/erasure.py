"""Right to be forgotten: on `profiles.ProfileErased.v1` (cc.profiles.events.v1), everything
this service keeps about the erased customers' email goes, in the transaction that records
the event as applied (exactly once; a message that does not parse goes to the DLQ):

- their messages (those resolved to an erased profile, and every message of their threads,
  our replies included) become tombstones: ids, kind, thread and Message-ID stay (dedupe and
  threading keep working), addresses, names, subjects, bodies and attachments go;
- the raw messages and attachments are deleted from the content-addressed blob store unless
  another message, inbox row or quarantined message still refers to the same bytes;
- the inbox rows, quarantined messages and queued replies of those messages and addresses
  lose their envelope addresses and payloads;
- the data keys their events were sealed with are destroyed (what was published on
  `cc.email.events.v1` no longer opens), and the personal fields of their events in this
  service's event store are redacted in place (the events stay, with ids, types and
  references).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from contactcenter.contracts.topics import topic_for
from contactcenter.eventstore import PgConnection
from contactcenter.messaging.cloudevents import EventEnvelope
from contactcenter.privacy import SubjectKeys

_log = logging.getLogger(__name__)

PROFILES_TOPIC: Final = topic_for("profiles").name
PROFILE_ERASED: Final = "profiles.ProfileErased.v1"
#: The source of a merge: it redirects to the target from now on.
PROFILE_MERGED_INTO: Final = "profiles.ProfileMergedInto.v1"
ERASED: Final = "[erased]"

#: Fields of this service's events that hold personal data (addresses, names, text).
PERSONAL_EVENT_FIELDS: Final = (
    "from_address",
    "from_name",
    "subject",
    "body_text",
    "body_html",
    "to_address",
    "to_addresses",
    "failed_recipients",
    "attachments",
    "detail",
)


class ProfileErased(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    erasure_id: str
    erased_profile_ids: tuple[str, ...] = Field(min_length=1)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class EmailErasures:
    """The consumer of `cc.profiles.events.v1` (see the module docstring)."""

    name = "email.profile-erasures"
    topics: Sequence[str] = (PROFILES_TOPIC,)

    def __init__(
        self,
        schema: str,
        keys: SubjectKeys | None = None,
        *,
        forget_profiles: Callable[[str, Sequence[str]], None] | None = None,
    ) -> None:
        self._s = _q(schema)
        self._keys = keys
        #: Drops (tenant, profile ids) from the processor's sender -> profile cache.
        self._forget_profiles = forget_profiles

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        if envelope.type == PROFILE_MERGED_INTO and self._forget_profiles is not None:
            source = envelope.data.get("profile_id")
            if isinstance(source, str):
                self._forget_profiles(envelope.tenant_id, [source])
            return
        if envelope.type != PROFILE_ERASED:
            return
        e = ProfileErased.model_validate(envelope.data)
        if self._forget_profiles is not None:
            # Before the erasure's commit: a later mail of the address resolves anew.
            self._forget_profiles(envelope.tenant_id, e.erased_profile_ids)
        erased = await self.erase(conn, envelope.tenant_id, e.erased_profile_ids, e.erasure_id)
        _log.info("erasure %s: %d email messages erased", e.erasure_id, erased)

    async def erase(
        self, conn: PgConnection, tenant_id: str, profile_ids: Sequence[str], erasure_id: str
    ) -> int:
        s = self._s
        own = await conn.fetch(
            f"select message_id, thread_id, from_address from {s}.messages "
            "where tenant_id = $1 and view->>'customer_profile_id' = any($2::text[])",
            tenant_id,
            list(profile_ids),
        )
        threads = sorted({r["thread_id"] for r in own if r["thread_id"]})
        addresses = sorted({r["from_address"].lower() for r in own if r["from_address"]})
        if threads:
            addresses = sorted(
                {
                    *addresses,
                    *(
                        r["customer_address"].lower()
                        for r in await conn.fetch(
                            f"select customer_address from {s}.threads "
                            "where tenant_id = $1 and thread_id = any($2::text[])",
                            tenant_id,
                            threads,
                        )
                        if r["customer_address"] != ERASED
                    ),
                }
            )
        rows = await conn.fetch(
            f"select message_id, raw_sha256, view->'attachments' as attachments "
            f"from {s}.messages where tenant_id = $1 and (message_id = any($2::text[]) "
            "or thread_id = any($3::text[]))",
            tenant_id,
            [r["message_id"] for r in own],
            threads,
        )
        message_ids = [r["message_id"] for r in rows]
        blobs: set[str] = set()
        for r in rows:
            if r["raw_sha256"]:
                blobs.add(r["raw_sha256"])
            for a in json.loads(r["attachments"] or "[]"):
                if isinstance(a, dict) and a.get("sha256"):
                    blobs.add(a["sha256"])
        # Tombstones: what dedupe and threading need, nothing personal.
        await conn.execute(
            f"update {s}.messages set from_address = $3, raw_sha256 = null, "
            "view = jsonb_build_object('message_id', message_id, 'kind', kind, "
            "'thread_id', thread_id, 'internet_message_id', internet_message_id, "
            "'mailbox_address', mailbox_address, 'erased', true, 'erasure_id', $4::text) "
            "where tenant_id = $1 and message_id = any($2::text[])",
            tenant_id,
            message_ids,
            ERASED,
            erasure_id,
        )
        await conn.execute(
            f"update {s}.threads set customer_address = $3 "
            "where tenant_id = $1 and thread_id = any($2::text[])",
            tenant_id,
            threads,
            ERASED,
        )
        # Inbox rows (and their quarantined messages) of those bytes or from those addresses.
        inbox = await conn.fetch(
            f"update {s}.inbox set envelope_from = null, envelope_to = '' "
            "where tenant_id = $1 and (raw_sha256 = any($2::text[]) "
            "or lower(envelope_from) = any($3::text[])) returning id, raw_sha256",
            tenant_id,
            sorted(blobs),
            addresses,
        )
        blobs.update(r["raw_sha256"] for r in inbox)
        await conn.execute(
            f"update {s}.quarantine set detail = '', status = 'ERASED' "
            "where tenant_id = $1 and inbox_id = any($2::bigint[])",
            tenant_id,
            [r["id"] for r in inbox],
        )
        await conn.execute(
            f"update {s}.outbound set payload = jsonb_build_object('erased', true, "
            "'thread_id', payload->'thread_id') where tenant_id = $1 and "
            "(message_id = any($2::text[]) or payload->>'thread_id' = any($3::text[]))",
            tenant_id,
            message_ids,
            threads,
        )
        if self._keys is not None:  # what was published sealed no longer opens
            await self._keys.shred(conn, tenant_id, message_ids)
        await self._redact_events(conn, tenant_id, message_ids, threads)
        await self._delete_unreferenced(conn, tenant_id, sorted(blobs))
        return len(message_ids)

    async def _redact_events(
        self, conn: PgConnection, tenant_id: str, message_ids: list[str], threads: list[str]
    ) -> None:
        redacted: dict[str, Any] = {"erased": True}
        await conn.execute(
            f"update {self._s}.events set data = (data - $4::text[]) || $5::jsonb "
            "where tenant_id = $1 and (data->>'message_id' = any($2::text[]) "
            "or data->>'thread_id' = any($3::text[]))",
            tenant_id,
            message_ids,
            threads,
            list(PERSONAL_EVENT_FIELDS),
            json.dumps(redacted),
        )

    async def _delete_unreferenced(
        self, conn: PgConnection, tenant_id: str, blobs: list[str]
    ) -> None:
        """Delete the blobs nothing else refers to (any tenant: the store is shared)."""
        if not blobs:
            return
        s = self._s
        # Inbox rows of erased bytes point at nothing personal any more: they are done.
        await conn.execute(
            f"delete from {s}.quarantine q using {s}.inbox i where q.inbox_id = i.id "
            "and i.tenant_id = $1 and i.raw_sha256 = any($2::text[]) and q.status = 'ERASED'",
            tenant_id,
            blobs,
        )
        await conn.execute(
            f"delete from {s}.inbox i where i.tenant_id = $1 and i.raw_sha256 = any($2::text[]) "
            "and i.status <> 'pending' and i.envelope_from is null "
            f"and not exists (select 1 from {s}.quarantine q where q.inbox_id = i.id)",
            tenant_id,
            blobs,
        )
        await conn.execute(
            f"delete from {s}.blobs b where b.sha256 = any($1::text[]) "
            f"and not exists (select 1 from {s}.messages m where m.raw_sha256 = b.sha256) "
            f"and not exists (select 1 from {s}.inbox i where i.raw_sha256 = b.sha256) "
            f"and not exists (select 1 from {s}.quarantine q where q.raw_sha256 = b.sha256) "
            f"and not exists (select 1 from {s}.messages m where m.view->'attachments' "
            "@> jsonb_build_array(jsonb_build_object('sha256', b.sha256)))",
            blobs,
        )

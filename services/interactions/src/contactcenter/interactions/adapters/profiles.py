"""Profile merges from `cc.profiles.events.v1`: a merged (losing) profile's contacts count under
the profile it was merged into, and an unmerge restores them.

The profiles service publishes (tolerant reader: other fields and event types are ignored):

- `profiles.ProfileMerged.v1` {profile_id (the target, which remains), merge_id,
  source_profile_id, redirected_profile_ids}: the source, and the profiles that had been merged
  into it before, now count as the target.
- `profiles.ProfileUnmerged.v1` {profile_id (the target), merge_id, source_profile_id,
  redirected_profile_ids}: the source stands alone again and gets its redirected profiles back.

Kept in `profile_merges` (migrations/0003) by a servicekit projection: the rows and the applied
event id are written in one transaction (a redelivered event changes nothing), an event that
does not parse goes to the DLQ. Events of one tenant come in order (key = tenant).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from contactcenter.eventstore import PgConnection
from contactcenter.interactions.adapters.inbound import PROFILES_TOPIC
from contactcenter.messaging.cloudevents import EventEnvelope

PROFILE_MERGED: Final = "profiles.ProfileMerged.v1"
PROFILE_UNMERGED: Final = "profiles.ProfileUnmerged.v1"

_ID = Field(min_length=1, max_length=64)


class _MergeEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    profile_id: str = _ID
    merge_id: str = _ID
    source_profile_id: str = _ID
    redirected_profile_ids: tuple[str, ...] = ()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ProfileMerges:
    """The consumer of the profiles service's merge events (a servicekit projection)."""

    name = "interactions.profile-merges"
    topics: Sequence[str] = (PROFILES_TOPIC,)

    def __init__(self, schema: str) -> None:
        table = f"{_quote(schema)}.profile_merges"
        self._sql_point = (
            f"insert into {table} (tenant_id, profile_id, target_profile_id, merge_id) "
            "select $1, p, $3, $4 from unnest($2::text[]) as p "
            "on conflict (tenant_id, profile_id) do update set "
            "target_profile_id = excluded.target_profile_id, merge_id = excluded.merge_id, "
            "updated_at = now()"
        )
        # One hop: whatever pointed at a profile that is merged now points at its target.
        self._sql_follow = (
            f"update {table} set target_profile_id = $3, updated_at = now() "
            "where tenant_id = $1 and target_profile_id = $2"
        )
        self._sql_release = (
            f"delete from {table} where tenant_id = $1 and profile_id = $2 "
            "and target_profile_id = $3"
        )

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        if envelope.type not in (PROFILE_MERGED, PROFILE_UNMERGED):
            return
        e = _MergeEvent.model_validate(envelope.data)
        tenant, target, source = envelope.tenant_id, e.profile_id, e.source_profile_id
        if source == target:
            raise ValueError(f"{envelope.type}: a profile merged into itself ({source!r})")
        if envelope.type == PROFILE_MERGED:
            await conn.execute(self._sql_follow, tenant, source, target)
            profiles = [source, *(p for p in e.redirected_profile_ids if p != target)]
            await conn.execute(self._sql_point, tenant, profiles, target, e.merge_id)
        else:
            await conn.execute(self._sql_release, tenant, source, target)
            if e.redirected_profile_ids:
                await conn.execute(
                    self._sql_point, tenant, list(e.redirected_profile_ids), source, e.merge_id
                )

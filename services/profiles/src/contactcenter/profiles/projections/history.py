"""The customer's interactions across channels: a projection of `cc.interactions.events.v1`.

The interactions service publishes `interactions.<Name>.v1` events (CloudEvents, key = tenant);
this module is the contract this service expects of them and reads them by wire name (services
never import each other's code). Fields not listed are ignored; other event types are skipped.

- `InteractionCreated` {interaction_id, channel, direction, customer_profile_id?}: a row.
- `InteractionProfileLinked` {interaction_id, profile_id}: the interaction's profile.
- `InteractionQueued` {queue_id, customer_profile_id?}, `InteractionConnected` /
  `InteractionAssigned` {agent_id, queue_id?}, `InteractionTransferred` {to_agent_id?,
  to_queue_id?}: queue, agent and state.
- `InteractionEnded`, `WrapUpEnded`, `InteractionCompleted` {agent_id?, disposition_codes?},
  `InteractionAbandoned`, `InteractionFailed`: state and end time.

Exactly once: servicekit runs this through `subscribe_projection` (the event ids are recorded
in the transaction of these writes). Events of one tenant arrive in order (one partition).
Interactions of an erased profile are not linked to it again (`erasures`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from contactcenter.contracts.topics import topic_for
from contactcenter.eventstore import PgConnection
from contactcenter.messaging.cloudevents import EventEnvelope

INTERACTIONS_TOPIC: Final = topic_for("interactions").name

_STATES: Final = {
    "interactions.InteractionCreated.v1": "created",
    "interactions.InteractionQueued.v1": "queued",
    "interactions.InteractionOffered.v1": "offered",
    "interactions.InteractionAssigned.v1": "assigned",
    "interactions.InteractionConnected.v1": "connected",
    "interactions.InteractionTransferred.v1": None,  # the Queued/Connected of the same append
    "interactions.InteractionEnded.v1": "ended",
    "interactions.WrapUpEnded.v1": "ended",
    "interactions.InteractionCompleted.v1": "completed",
    "interactions.InteractionAbandoned.v1": "abandoned",
    "interactions.InteractionFailed.v1": "failed",
    "interactions.InteractionProfileLinked.v1": None,
}
_FINAL: Final = frozenset({"completed", "abandoned", "failed"})
_ENDING: Final = frozenset({"ended", "completed", "abandoned", "failed"})


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


class HistoryProjection:
    name = "profiles.history"
    topics: Sequence[str] = (INTERACTIONS_TOPIC,)

    def __init__(self, schema: str) -> None:
        s = '"' + schema.replace('"', '""') + '"'
        self._s = s
        # One upsert per event: a column is only overwritten by a value the event has, and a
        # final state is never replaced by an earlier one.
        self._sql = (
            f"insert into {s}.history as h (tenant_id, interaction_id, profile_id, channel, "
            "direction, state, created_at, ended_at, queue_id, agent_id, disposition_codes) "
            "values ($1, $2, $3, $4, $5, coalesce($6, 'created'), $7, $8, $9, $10, "
            "coalesce($11, '{}'::text[])) "
            "on conflict (tenant_id, interaction_id) do update set "
            "profile_id = coalesce(excluded.profile_id, h.profile_id), "
            "channel = coalesce(h.channel, excluded.channel), "
            "direction = coalesce(h.direction, excluded.direction), "
            "state = case when $6 is null or h.state = any($12::text[]) then h.state "
            "else excluded.state end, "
            "created_at = least(h.created_at, excluded.created_at), "
            "ended_at = coalesce(h.ended_at, excluded.ended_at), "
            "queue_id = coalesce(excluded.queue_id, h.queue_id), "
            "agent_id = coalesce(excluded.agent_id, h.agent_id), "
            "disposition_codes = case when $11 is null then h.disposition_codes "
            "else excluded.disposition_codes end, "
            "updated_at = now()"
        )
        self._sql_erased = f"select 1 from {s}.erasures where tenant_id = $1 and profile_id = $2"

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        if envelope.type not in _STATES:
            return
        data = envelope.data
        interaction_id = _text(data, "interaction_id")
        if interaction_id is None:
            return
        state = _STATES[envelope.type]
        profile_id = (
            _text(data, "profile_id")
            if envelope.type.endswith("ProfileLinked.v1")
            else _text(data, "customer_profile_id")
        )
        if profile_id is not None and await conn.fetchval(
            self._sql_erased, envelope.tenant_id, profile_id
        ):
            profile_id = None
        agent_id = _text(data, "agent_id") or _text(data, "to_agent_id")
        codes = data.get("disposition_codes")
        await conn.execute(
            self._sql,
            envelope.tenant_id,
            interaction_id,
            profile_id,
            _text(data, "channel"),
            _text(data, "direction"),
            state,
            envelope.time,
            envelope.time if state in _ENDING else None,
            _text(data, "queue_id") or _text(data, "to_queue_id"),
            agent_id,
            [str(c) for c in codes] if isinstance(codes, list) else None,
            sorted(_FINAL),
        )

"""Domain views <-> protobuf messages (and JSON for the wallboard page)."""

from __future__ import annotations

from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2
from contactcenter.reporting.domain.values import Activity, ServiceLevelVariant, Window
from contactcenter.reporting.domain.views import AgentView, ChannelView, QueueView, Totals
from contactcenter.reporting.v1 import reporting_pb2 as pb

CHANNELS: Final = {
    "voice": common_pb2.CHANNEL_VOICE,
    "email": common_pb2.CHANNEL_EMAIL,
    "chat": common_pb2.CHANNEL_CHAT,
    "sms": common_pb2.CHANNEL_SMS,
    "social": common_pb2.CHANNEL_SOCIAL,
    "video": common_pb2.CHANNEL_VIDEO,
}
CHANNEL_NAMES: Final = {v: k for k, v in CHANNELS.items()}
VARIANTS: Final = {
    ServiceLevelVariant.ABANDONS_AGAINST: pb.SERVICE_LEVEL_VARIANT_ABANDONS_AGAINST,
    ServiceLevelVariant.SHORT_ABANDONS_IGNORED: pb.SERVICE_LEVEL_VARIANT_SHORT_ABANDONS_IGNORED,
    ServiceLevelVariant.ABANDONS_IN_FAVOUR: pb.SERVICE_LEVEL_VARIANT_ABANDONS_IN_FAVOUR,
    ServiceLevelVariant.ANSWERED_ONLY: pb.SERVICE_LEVEL_VARIANT_ANSWERED_ONLY,
}
VARIANT_OF: Final = {v: k for k, v in VARIANTS.items()}
WINDOWS: Final = {
    Window.TODAY: pb.WINDOW_TODAY,
    Window.ROLLING_15M: pb.WINDOW_ROLLING_15M,
    Window.ROLLING_30M: pb.WINDOW_ROLLING_30M,
    Window.ROLLING_60M: pb.WINDOW_ROLLING_60M,
}
ACTIVITIES: Final = {
    Activity.AVAILABLE: pb.AGENT_ACTIVITY_AVAILABLE,
    Activity.ON_CONTACT: pb.AGENT_ACTIVITY_ON_CONTACT,
    Activity.WRAP_UP: pb.AGENT_ACTIVITY_WRAP_UP,
    Activity.AWAY: pb.AGENT_ACTIVITY_AWAY,
    Activity.NOT_RESPONDING: pb.AGENT_ACTIVITY_NOT_RESPONDING,
    Activity.OFFLINE: pb.AGENT_ACTIVITY_OFFLINE,
}


def timestamp(ms: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def _counts(agents: dict[Activity, int]) -> pb.AgentStateCounts:
    return pb.AgentStateCounts(**{a.value: max(0, n) for a, n in agents.items()})


def totals(t: Totals) -> pb.ContactTotals:
    c = t.counters
    return pb.ContactTotals(
        window=WINDOWS[t.window],
        offered=c.offered,
        answered=c.answered,
        abandoned=c.abandoned,
        short_abandons=c.short_abandons,
        flow_outs=c.flow_outs,
        answered_within_threshold=c.answered_within_threshold,
        abandoned_within_threshold=c.abandoned_within_threshold,
        handled=c.handled,
        abandon_rate_percent=t.abandon_rate,
        has_service_level=t.service_level is not None,
        service_level_percent=t.service_level or 0.0,
        asa_ms=t.asa_ms,
        aht_ms=t.aht_ms,
    )


def queue(v: QueueView) -> pb.QueueSnapshot:
    msg = pb.QueueSnapshot(
        queue_id=v.queue_id,
        name=v.name,
        waiting=v.waiting,
        longest_wait_ms=v.longest_wait_ms,
        agents=_counts(v.agents),
        service_level_variant=VARIANTS[v.variant],
        service_level_threshold_s=v.threshold_s,
        short_abandon_threshold_s=v.short_abandon_s,
        service_level_target_percent=v.target_percent,
        totals=[totals(t) for t in v.totals],
    )
    if v.oldest_waiting_since is not None:
        msg.oldest_waiting_since.CopyFrom(timestamp(v.oldest_waiting_since))
    return msg


def agent(v: AgentView) -> pb.AgentSnapshot:
    msg = pb.AgentSnapshot(
        agent_id=v.agent_id,
        name=v.name,
        activity=ACTIVITIES[v.activity],
        time_in_state_ms=v.time_in_state_ms,
        reason_code=v.reason_code or "",
        load=v.load,
        capacity=v.capacity,
        contacts_handled=v.handled,
        aht_ms=v.aht_ms,
        occupancy_percent=v.occupancy,
        utilization_percent=v.utilization,
        queue_ids=list(v.queues),
    )
    if v.since:
        msg.state_since.CopyFrom(timestamp(v.since))
    return msg


def channel(v: ChannelView) -> pb.ChannelSnapshot:
    return pb.ChannelSnapshot(
        channel=CHANNELS.get(v.channel, common_pb2.CHANNEL_UNSPECIFIED),
        waiting=v.waiting,
        longest_wait_ms=v.longest_wait_ms,
        agents=_counts(v.agents),
        totals=[totals(t) for t in v.totals],
    )


# --- JSON for the wallboard page ---------------------------------------------------------------


def queue_json(v: QueueView) -> dict[str, Any]:
    today = v.totals[0]
    return {
        "queue_id": v.queue_id,
        "name": v.name or v.queue_id,
        "waiting": v.waiting,
        "oldest_waiting_since": v.oldest_waiting_since,
        "service_level": today.service_level,
        "service_level_target": v.target_percent,
        "abandon_rate": today.abandon_rate,
        "offered": today.counters.offered,
        "answered": today.counters.answered,
        "abandoned": today.counters.abandoned,
        "agents": {a.value: n for a, n in v.agents.items()},
    }


def agent_json(v: AgentView) -> dict[str, Any]:
    return {
        "agent_id": v.agent_id,
        "name": v.name or v.agent_id,
        "activity": v.activity.value,
        "since": v.since,
        "handled": v.handled,
        "load": v.load,
        "capacity": v.capacity,
    }

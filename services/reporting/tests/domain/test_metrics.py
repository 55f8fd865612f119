"""Metric definitions on hand-computed scenarios: given facts, then the counters and views."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contactcenter.reporting.domain import facts as f
from contactcenter.reporting.domain.intervals import bucket_start, buckets_of_local_day, zone
from contactcenter.reporting.domain.metrics import Counters, service_level
from contactcenter.reporting.domain.state import ReportingState
from contactcenter.reporting.domain.values import Activity, ServiceLevelVariant, Window
from contactcenter.reporting.domain.views import (
    agent_view,
    channel_view,
    channels,
    queue_view,
    window_counters,
)

T = "t-1"
T0 = int(datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp() * 1000)  # a 15-minute boundary
S = 1000


def fold(*facts: f.Fact) -> ReportingState:
    state = ReportingState()
    state.apply(
        f.QueueConfigured(T, T0 - 60 * S, "q1", "Sales", sl_threshold_s=20, sl_target_percent=80)
    )
    state.apply_all(list(facts))
    return state


def bucket(
    state: ReportingState, queue: str = "q1", at: int = T0, channel: str = "voice"
) -> Counters:
    t = state.tenants[T]
    return t.buckets[(queue, channel, 15, bucket_start(at, 15, t.tz))]


def queued(i: str, at: int, queue: str = "q1", channel: str = "voice") -> f.ContactQueued:
    return f.ContactQueued(T, at, i, queue, channel)


def test_abandons_at_the_threshold_boundary() -> None:
    state = fold(
        queued("a", T0),
        f.ContactAbandoned(T, T0 + 20 * S, "a", queue_wait_ms=20_000),
        queued("b", T0),
        f.ContactAbandoned(T, T0 + 20 * S + 1, "b", queue_wait_ms=20_001),
        queued("c", T0),
        f.ContactAbandoned(T, T0 + 5 * S, "c", queue_wait_ms=5_000),
        queued("d", T0),
        f.ContactAbandoned(T, T0 + 4999, "d", queue_wait_ms=4_999),
        queued("e", T0),
        f.ContactAnswered(T, T0 + 20 * S, "e", "ag", queue_wait_ms=20_000),
        queued("g", T0),
        f.ContactAnswered(T, T0 + 21 * S, "g", "ag", queue_wait_ms=21_000),
    )
    c = bucket(state)
    assert (c.offered, c.answered, c.abandoned) == (6, 2, 4)
    # wait == threshold counts as within; a short abandon is strictly below 5 s.
    assert c.abandoned_within_threshold == 3  # a (20 s), c, d
    assert c.answered_within_threshold == 1  # e (20 s)
    assert c.short_abandons == 1  # d only; c at exactly 5 s is not short
    assert c.answer_wait_ms_total == 41_000
    # The four variants, by hand:
    assert service_level(c, ServiceLevelVariant.ABANDONS_AGAINST) == pytest.approx(100 * 1 / 6)
    assert service_level(c, ServiceLevelVariant.SHORT_ABANDONS_IGNORED) == pytest.approx(100 / 5)
    assert service_level(c, ServiceLevelVariant.ABANDONS_IN_FAVOUR) == pytest.approx(100 * 4 / 6)
    assert service_level(c, ServiceLevelVariant.ANSWERED_ONLY) == pytest.approx(50.0)
    view = queue_view(state.tenants[T], "q1", T0 + 60 * S)
    today = view.totals[0]
    assert today.window is Window.TODAY
    assert today.abandon_rate == pytest.approx(100 * 4 / 6)
    assert today.asa_ms == 20_500
    assert view.waiting == 0


def test_counts_in_the_interval_of_entry_and_handle_time_where_wrap_up_ends() -> None:
    entered = T0 + 14 * 60 * S  # 09:14, answered 09:16, wrap-up ends 09:31
    state = fold(
        queued("a", entered),
        f.ContactAnswered(T, entered + 120 * S, "a", "ag", queue_wait_ms=120_000),
        f.ConversationEnded(
            T, entered + 600 * S, "a", "ag", agent_talk_ms=400_000, agent_hold_ms=80_000
        ),
        f.WrapUpFinished(T, T0 + 31 * 60 * S, "a", "ag", wrap_up_ms=60_000),
        f.ContactCompleted(T, T0 + 31 * 60 * S, "a", wrap_up_ms=60_000),
    )
    first = bucket(state, at=entered)
    assert (first.offered, first.answered, first.answered_within_threshold) == (1, 1, 0)
    assert first.handled == 0
    last = bucket(state, at=T0 + 31 * 60 * S)
    assert (last.offered, last.handled, last.handle_time_ms_total) == (0, 1, 540_000)
    assert state.tenants[T].contacts == {}


def test_transfers_flow_out_and_count_each_leg() -> None:
    state = fold(
        queued("a", T0),
        f.ContactAnswered(T, T0 + 10 * S, "a", "ag1", queue_wait_ms=10_000),
        # blind transfer to q2: ag1's leg (talk 50 s + hold 10 s) ends, q1 flows out
        f.ContactTransferred(T, T0 + 70 * S, "a", "ag1", True, None, 50_000, 10_000),
        queued("a", T0 + 70 * S, queue="q2"),
        f.ContactAnswered(T, T0 + 100 * S, "a", "ag2", queue_wait_ms=30_000),
        # consulted transfer to ag3: ag2's leg ends, ag3 continues in q2
        f.ContactTransferred(T, T0 + 160 * S, "a", "ag2", False, "ag3", 60_000, 0),
        f.ConversationEnded(T, T0 + 220 * S, "a", "ag3", agent_talk_ms=60_000, agent_hold_ms=0),
        f.WrapUpFinished(T, T0 + 250 * S, "a", "ag3", wrap_up_ms=30_000),
        f.ContactCompleted(T, T0 + 250 * S, "a", wrap_up_ms=30_000),
    )
    q1, q2 = bucket(state, "q1"), bucket(state, "q2")
    assert (q1.offered, q1.answered, q1.flow_outs, q1.handled, q1.handle_time_ms_total) == (
        1,
        1,
        1,
        1,
        60_000,
    )
    assert (q2.offered, q2.answered, q2.flow_outs, q2.handled, q2.handle_time_ms_total) == (
        1,
        1,
        0,
        2,
        150_000,
    )
    t = state.tenants[T]
    assert [t.agents[a].handled for a in ("ag1", "ag2", "ag3")] == [1, 1, 1]
    assert t.agents["ag3"].handle_ms == 90_000


def test_overflow_while_waiting_is_a_flow_out_not_an_abandon() -> None:
    state = fold(
        queued("a", T0), queued("a", T0 + 30 * S, queue="q2"), queued("a", T0 + 31 * S, queue="q2")
    )  # a requeue where it waits: no new offer
    q1, q2 = bucket(state, "q1"), bucket(state, "q2")
    assert (q1.offered, q1.flow_outs, q1.abandoned) == (1, 1, 0)
    assert q2.offered == 1
    view = queue_view(state.tenants[T], "q2", T0 + 40 * S)
    assert (view.waiting, view.longest_wait_ms) == (1, 10_000)
    assert queue_view(state.tenants[T], "q1", T0 + 40 * S).waiting == 0


def test_multi_chat_agent_occupancy_and_utilization() -> None:
    def st(at: int, state: str, load: int) -> f.AgentStateChanged:
        return f.AgentStateChanged(T, at, "ag", state, None, load, 3)

    state = fold(
        f.AgentConfigured(T, T0, "ag", "Ann", ("q1",), ("chat",), 3),
        st(T0, "available", 0),
        st(T0 + 600 * S, "busy", 2),  # two chats for 10 minutes
        st(T0 + 1200 * S, "available", 0),
        st(T0 + 1800 * S, "away", 0),
    )
    t = state.tenants[T]
    view = agent_view(t, t.agents["ag"], T0 + 1800 * S)
    # handling 600 s / (600 s handling + 1200 s available)
    assert view.occupancy == pytest.approx(100 * 600 / 1800)
    # load 2 x 600 s / capacity 3 x 1800 s logged in
    assert view.utilization == pytest.approx(100 * 1200 / 5400)
    assert view.activity is Activity.AWAY
    assert t.queue_agents["q1"][Activity.AWAY] == 1
    assert t.queue_agents["q1"][Activity.AVAILABLE] == 0


def test_rolling_windows_and_routing_threshold_wins() -> None:
    state = fold(
        f.QueueReportingConfigured(T, T0, "q1", ServiceLevelVariant.ANSWERED_ONLY, 3, 60, 90),
        queued("a", T0),
        f.ContactAnswered(T, T0 + 30 * S, "a", "ag", queue_wait_ms=30_000),
        queued("b", T0 + 40 * 60 * S),
        f.ContactAnswered(T, T0 + 40 * 60 * S + 10 * S, "b", "ag", queue_wait_ms=10_000),
    )
    t = state.tenants[T]
    now = T0 + 45 * 60 * S
    assert window_counters(t, "q1", "voice", Window.ROLLING_15M, now).answered == 1
    assert window_counters(t, "q1", "voice", Window.ROLLING_60M, now).answered == 2
    view = queue_view(t, "q1", now)
    assert (view.threshold_s, view.target_percent, view.short_abandon_s) == (20, 80, 3)
    # routing's 20 s threshold: a (30 s) is outside, b inside; answered-only variant
    assert view.totals[0].service_level == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 6, 1), 24)]
)
def test_a_day_with_a_daylight_saving_change_has_23_or_25_hours(day: date, hours: int) -> None:
    tz = zone("Europe/Paris")
    assert len(buckets_of_local_day(day, 15, tz)) == hours * 4
    assert len(buckets_of_local_day(day, 30, tz)) == hours * 2


def test_intervals_align_in_the_tenant_time_zone() -> None:
    state = ReportingState()
    state.apply(f.TenantReportingConfigured(T, T0, "Asia/Kathmandu"))  # UTC+05:45
    state.apply(queued("a", T0 + 60 * S))
    (key,) = [k for k in state.tenants[T].buckets if k[2] == 15]
    local = datetime.fromtimestamp(key[3] / 1000, zone("Asia/Kathmandu"))
    assert local.minute % 15 == 0 and local.second == 0
    # 09:01 UTC is 14:46 local: its 30-minute bucket starts at 14:30 local = 08:45 UTC
    assert bucket_start(T0 + 60 * S, 30, zone("Asia/Kathmandu")) == T0 - 15 * 60 * S


H = 3600 * S
MIDNIGHT = int(datetime(2026, 3, 3, tzinfo=UTC).timestamp() * 1000)  # the day after T0


def test_memory_keeps_today_and_hands_over_history_and_late_counts() -> None:
    state = fold(
        queued("a", T0),
        f.ContactAnswered(T, T0 + 5 * S, "a", "ag", queue_wait_ms=5_000),
        queued("b", MIDNIGHT - 5 * 60 * S),  # 23:55, still waiting at midnight
    )
    t = state.tenants[T]
    t.drain()
    t.drain_history()
    # Only what changed after the last write leaves memory with its counters: the 23:45 bucket.
    state.apply(f.ContactAbandoned(T, MIDNIGHT - 60 * S, "x", queue_wait_ms=1))  # unknown: no-op
    state.apply(queued("c", MIDNIGHT - 2 * 60 * S))
    state.apply(queued("d", MIDNIGHT + 10 * 60 * S))  # the clock enters the next day
    history = {k[3]: c for k, c in t.buckets.items() if k[2] == 15}
    assert sorted(history) == [MIDNIGHT]
    assert t.history_floor == MIDNIGHT
    evicted, late = t.drain_history()
    last_quarter = MIDNIGHT - 15 * 60 * S
    assert {k[3]: c.offered for k, c in evicted.items()} == {last_quarter: 2}
    assert late == {}
    # b is answered today: counted where it entered (yesterday 23:45), as a delta to add.
    state.apply(f.ContactAnswered(T, MIDNIGHT + 20 * 60 * S, "b", "ag", queue_wait_ms=25 * 60 * S))
    _, late = t.drain_history()
    ((key, delta),) = late.items()
    assert key == ("q1", "voice", 15, last_quarter)
    assert (delta.offered, delta.answered, delta.answer_wait_ms_total) == (0, 1, 25 * 60 * S)
    assert delta.sl_threshold_s == 20
    # Today's tile counts today's contacts only.
    today = queue_view(t, "q1", MIDNIGHT + 30 * 60 * S).totals[0]
    assert (today.counters.offered, today.counters.answered) == (1, 0)
    assert t.drain_history() == ({}, {})


def test_a_new_time_zone_never_moves_the_floor_back() -> None:
    state = fold(queued("a", MIDNIGHT + 2 * H))
    t = state.tenants[T]
    assert t.history_floor == MIDNIGHT
    state.apply(f.TenantReportingConfigured(T, MIDNIGHT + 2 * H, "America/New_York"))
    state.apply(queued("b", MIDNIGHT + 3 * H))  # 22:00 of the day before in New York
    assert t.history_floor == MIDNIGHT
    state.apply(queued("c", MIDNIGHT + 6 * H))  # 01:00 in New York: its new day
    assert t.history_floor == MIDNIGHT + 5 * H
    assert all(k[3] >= MIDNIGHT + 5 * H for k in t.buckets if k[2] == 15)


def test_emails_count_per_channel_from_the_interactions_stream() -> None:
    """An email becomes an interaction queued with channel email (interactions' reaction to
    the email service's events): counted per channel like any contact, no email stream read.
    One closed by the system while queued (spam) is offered, neither answered nor abandoned."""
    state = fold(
        queued("v", T0),
        queued("e1", T0, channel="email"),
        queued("e2", T0 + S, channel="email"),
        f.ContactAnswered(T, T0 + 3 * 60 * S, "e1", "ag", queue_wait_ms=180_000),
        f.ConversationEnded(T, T0 + 4 * 60 * S, "e2", None, 0, 0),
        f.ContactCompleted(T, T0 + 4 * 60 * S, "e2"),
    )
    t = state.tenants[T]
    email = channel_view(t, "email", T0 + 5 * 60 * S)
    today = email.totals[0].counters
    assert (today.offered, today.answered, today.abandoned) == (2, 1, 0)
    assert email.waiting == 0
    assert channel_view(t, "voice", T0 + 5 * 60 * S).totals[0].counters.offered == 1
    assert channels(t) == ["email", "voice"]

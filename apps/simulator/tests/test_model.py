"""The traffic model without I/O: seeded draws, the simulated clock, arrivals by the daily
curve, handle times, shifts in several time zones."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, date, datetime, time, timedelta

import pytest

from contactcenter.simulator.__main__ import build_parser, parse_start
from contactcenter.simulator.model import (
    CHANNEL_PROFILES,
    INTERVALS_PER_DAY,
    Activity,
    AgentPlan,
    ArrivalModel,
    Channel,
    DailyCurve,
    HandlingModel,
    Roster,
    SimClock,
    parse_rates,
    poisson,
)

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, no DST change near


def test_the_clock_maps_simulated_time_to_wall_time_with_the_speed_up() -> None:
    clock = SimClock(sim_start=T0, wall_start=100.0, speed=10.0)
    assert clock.sim_at(100.0) == T0
    assert clock.sim_at(106.0) == T0 + timedelta(seconds=60)
    assert clock.wall_at(T0 + timedelta(minutes=10)) == pytest.approx(160.0)
    assert clock.wall_seconds(300) == pytest.approx(30.0)
    with pytest.raises(ValueError, match="timezone"):
        SimClock(sim_start=datetime(2026, 1, 1), wall_start=0)
    with pytest.raises(ValueError, match="speed"):
        SimClock(sim_start=T0, wall_start=0, speed=0)


def test_the_typical_curve_peaks_in_the_late_morning_and_is_quiet_at_night() -> None:
    curve = DailyCurve.typical()
    assert len(curve.weights) == INTERVALS_PER_DAY
    assert max(curve.weights) == pytest.approx(1.0)
    assert curve.factor(T0.replace(hour=10)) > 0.9
    assert curve.factor(T0.replace(hour=3)) < 0.05
    with pytest.raises(ValueError):
        DailyCurve((1.0,) * 10)


def test_poisson_draws_have_the_mean_and_variance_of_a_poisson() -> None:
    rng = random.Random(1)
    for mean in (0.5, 4.0, 30.0):
        draws = [poisson(rng, mean) for _ in range(4000)]
        assert statistics.fmean(draws) == pytest.approx(mean, rel=0.08)
        assert statistics.pvariance(draws) == pytest.approx(mean, rel=0.15)
    assert poisson(rng, 0) == 0


def test_arrivals_follow_the_rate_and_the_curve_and_are_reproducible() -> None:
    def day(seed: int) -> list[object]:
        model = ArrivalModel({Channel.VOICE: 120.0, Channel.CHAT: 60.0}, random.Random(seed))
        # Two windows of a day back to back are one process.
        return model.between(T0, T0 + timedelta(hours=7)) + model.between(
            T0 + timedelta(hours=7), T0 + timedelta(days=1)
        )

    arrivals = day(42)
    assert arrivals == day(42)  # seeded: the same day again
    assert arrivals != day(43)
    curve = DailyCurve.typical()
    expected = sum(curve.weights) * 0.5 * 180  # half-hour intervals at 180 per peak hour
    assert len(arrivals) == pytest.approx(expected, rel=0.1)
    times = [a.at for a in arrivals]  # type: ignore[attr-defined]
    assert times == sorted(times)
    assert all(T0 <= t < T0 + timedelta(days=1) for t in times)
    busy = sum(1 for t in times if 9 <= t.hour < 12)
    quiet = sum(1 for t in times if 1 <= t.hour < 4)
    assert busy > 10 * max(quiet, 1)
    voice = [a for a in arrivals if a.channel is Channel.VOICE]  # type: ignore[attr-defined]
    assert len(voice) / len(arrivals) == pytest.approx(2 / 3, abs=0.05)


def test_customers_have_skills_languages_priorities_and_patience_by_channel() -> None:
    model = ArrivalModel(
        {Channel.VOICE: 600.0, Channel.EMAIL: 600.0}, random.Random(3), curve=DailyCurve.flat()
    )
    arrivals = model.between(T0, T0 + timedelta(hours=4))
    voice = [a for a in arrivals if a.channel is Channel.VOICE]
    email = [a for a in arrivals if a.channel is Channel.EMAIL]
    assert all(a.patience_s is None for a in email)
    assert all(a.customer_address.endswith("@example.com") for a in email)
    patience = [a.patience_s for a in voice if a.priority == 0]
    mean = CHANNEL_PROFILES[Channel.VOICE].mean_patience_s
    assert statistics.fmean(p for p in patience if p is not None) == pytest.approx(mean, rel=0.15)
    assert {a.skill for a in arrivals} == {"support", "billing", "sales"}
    assert {a.language for a in arrivals} == {"en", "es", "fr", "de"}
    vips = [a for a in arrivals if a.priority > 0]
    assert 0 < len(vips) < len(arrivals) * 0.1
    assert all(a.min_proficiency == 3 for a in vips)


def test_the_site_time_zone_places_the_curve() -> None:
    berlin = ArrivalModel({Channel.VOICE: 60.0}, random.Random(1), site_tz="Europe/Berlin")
    # 10:00 in Berlin (winter) is 09:00 UTC: the peak.
    assert berlin.rate_per_hour(Channel.VOICE, T0.replace(hour=9)) == pytest.approx(60.0)
    assert berlin.rate_per_hour(Channel.VOICE, T0.replace(hour=2)) < 3.0


def test_handle_times_are_log_normal_around_the_channel_mean() -> None:
    handling = HandlingModel(random.Random(5))
    for channel in (Channel.VOICE, Channel.CHAT):
        draws = [handling.handle_s(channel) for _ in range(5000)]
        mean = CHANNEL_PROFILES[channel].mean_handle_s
        assert statistics.fmean(draws) == pytest.approx(mean, rel=0.07)
        assert statistics.median(draws) < statistics.fmean(draws)  # right-skewed
        assert min(draws) >= 10.0
    wraps = [handling.wrap_up_s(Channel.VOICE) for _ in range(2000)]
    assert statistics.fmean(wraps) == pytest.approx(30.0, rel=0.1)


def test_shifts_are_local_with_breaks_and_lunch() -> None:
    plan = AgentPlan(
        agent_id="a",
        name="A",
        time_zone="America/New_York",
        skills={"support": 3},
        languages=("en",),
        channels=(Channel.VOICE,),
        shift_start=time(8, 0),
    )
    blocks = plan.blocks(date(2026, 3, 2))
    assert blocks[0].start == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert blocks[-1].end - blocks[0].start == timedelta(hours=8, minutes=30)
    assert [b.activity for b in blocks].count(Activity.BREAK) == 2
    assert [b.activity for b in blocks].count(Activity.LUNCH) == 1
    assert plan.activity_at(datetime(2026, 3, 2, 12, 59, tzinfo=UTC)) is None
    assert plan.activity_at(datetime(2026, 3, 2, 13, 0, tzinfo=UTC)) is Activity.WORK
    assert plan.activity_at(datetime(2026, 3, 2, 15, 5, tzinfo=UTC)) is Activity.BREAK
    assert plan.activity_at(datetime(2026, 3, 2, 17, 10, tzinfo=UTC)) is Activity.LUNCH
    assert plan.next_change(datetime(2026, 3, 2, 12, 0, tzinfo=UTC)) == blocks[0].start
    assert plan.next_change(datetime(2026, 3, 2, 22, 0, tzinfo=UTC)) == datetime(
        2026, 3, 3, 13, 0, tzinfo=UTC
    )


def test_a_roster_spreads_agents_over_time_zones_so_someone_works_around_the_clock() -> None:
    roster = Roster.generate(30, random.Random(9))
    assert len({a.agent_id for a in roster.agents}) == 30
    assert len({a.time_zone for a in roster.agents}) == 3
    assert all("en" in a.languages and "support" in a.skills for a in roster.agents)
    assert all(1 <= p <= 5 for a in roster.agents for p in a.skills.values())
    for hour in range(24):
        assert roster.working_at(T0.replace(hour=hour)), f"nobody works at {hour}:00 UTC"
    assert roster == Roster.generate(30, random.Random(9))
    always = roster.always_on()
    assert len(always.working_at(T0.replace(hour=3))) == 30


def test_rates_and_start_flags_are_parsed_or_refused_with_the_bad_part_named() -> None:
    assert parse_rates("voice=120, chat=30.5") == {Channel.VOICE: 120.0, Channel.CHAT: 30.5}
    for bad, words in [
        ("voice", "CHANNEL=PER_HOUR"),
        ("fax=3", "unknown channel"),
        ("voice=x", "not a number"),
        ("voice=-1", ">= 0"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_rates(bad)
    now = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
    assert parse_start("09:00", "Europe/Berlin", now) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert parse_start("now", "UTC", now) == now
    assert parse_start("2026-07-01T10:00:00+00:00", "UTC", now).hour == 10
    with pytest.raises(ValueError, match="offset"):
        parse_start("2026-07-01T10:00:00", "UTC", now)
    args = build_parser().parse_args(["--agents", "5", "--speed", "60"])
    assert (args.agents, args.speed) == (5, 60.0)

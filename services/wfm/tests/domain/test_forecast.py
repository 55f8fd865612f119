"""Forecasting: seasonality, special days, accuracy against seasonal naive, intraday."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

from contactcenter.wfm.domain.forecast import (
    ForecastSpec,
    IntervalActual,
    forecast,
    reforecast_intraday,
)

START = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)  # Monday 00:00 in New York


def _history(weeks: int, seed: int = 1) -> list[IntervalActual]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(weeks * 7 * 48):
        t = START + timedelta(minutes=30 * i)
        hour = (i % 48) / 2
        day = (i // 48) % 7
        mean = (5 + 60 * np.exp(-((hour - 13) ** 2) / 12)) * (0.5 if day >= 5 else 1.0)
        offered = float(rng.poisson(mean))
        out.append(IntervalActual("q1", "voice", t, offered, offered, offered * 300_000))
    return out


def test_mstl_beats_seasonal_naive_on_held_out_weeks() -> None:
    history = _history(6)
    spec = ForecastSpec(
        interval_minutes=30,
        horizon_start=START + timedelta(weeks=6),
        horizon_days=7,
        time_zone="America/New_York",
        holdout_weeks=1,
    )
    result = forecast(history, spec)
    (acc,) = result.accuracy
    assert acc.method == "mstl"
    assert acc.wape_pct < acc.seasonal_naive_wape_pct
    assert acc.wape_pct < 25  # Poisson noise at these volumes alone is ~15-20%
    assert len(result.points) == 7 * 48
    peak = max(result.points, key=lambda p: p.volume)
    assert peak.interval_start.astimezone(spec_tz()).hour in (12, 13, 14)
    assert all(abs(p.aht_seconds - 300) < 1e-6 for p in result.points)


def spec_tz():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/New_York")


def test_special_days_are_taken_out_and_scaled_in() -> None:
    history = _history(3)
    # A holiday in the history (volume 0) must not drag the forecast down.
    holiday = date(2026, 1, 19)
    history = [
        IntervalActual(r.queue_id, r.channel, r.interval_start, 0.0)
        if r.interval_start.astimezone(spec_tz()).date() == holiday
        else r
        for r in history
    ]
    closed = date(2026, 1, 27)
    spec = ForecastSpec(
        interval_minutes=30,
        horizon_start=START + timedelta(weeks=3),
        horizon_days=7,
        time_zone="America/New_York",
        special_days={holiday: 0.0, closed: 0.0, date(2026, 1, 28): 2.0},
    )
    points = forecast(history, spec).points
    by_day: dict[date, float] = {}
    for p in points:
        d = p.interval_start.astimezone(spec_tz()).date()
        by_day[d] = by_day.get(d, 0.0) + p.volume
    assert by_day[closed] == 0
    assert by_day[date(2026, 1, 26)] > 500  # Monday after the holiday Monday
    assert by_day[date(2026, 1, 28)] > 1.5 * by_day[date(2026, 1, 29)]


def test_intraday_reforecast_scales_the_rest_of_the_day() -> None:
    spec = ForecastSpec(30, START + timedelta(weeks=3), 1, "America/New_York")
    points = forecast(_history(3), spec).points
    first = points[:20]
    actuals = [
        IntervalActual(p.queue_id, p.channel, p.interval_start, p.volume * 1.5) for p in first
    ]
    updated, factor = reforecast_intraday(points, actuals)
    assert factor == __import__("pytest").approx(1.5)
    assert updated[25].volume == __import__("pytest").approx(points[25].volume * 1.5)
    assert updated[3].volume == actuals[3].offered

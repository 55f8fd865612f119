"""Forecasting contact volume and AHT per queue, channel and interval.

Volume: statsforecast's MSTL (daily and weekly seasonality on the queue's local wall clock,
trend by AutoETS). Special days are taken out of the history (replaced by the same interval a
week earlier) and scaled into the horizon by their factor (0: closed). Accuracy is the WAPE on
the held-out last weeks beside a seasonal-naive baseline (the same interval a week earlier).

AHT: the handled-weighted mean of each weekly slot over the history (handle time counts in the
bucket where wrap-up ended), falling back to the overall mean where a slot has no handled
contact.

Intraday reforecast: the actuals of the horizon's first intervals replace the forecast there,
and the rest of the day is scaled by actual / forecast of the intervals seen (bounded).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: The intraday factor is kept within these bounds (a bad first hour is not a new regime).
INTRADAY_BOUNDS = (0.5, 2.0)


@dataclass(frozen=True, slots=True)
class IntervalActual:
    """What WFM reads of one reporting interval (a plain record, whatever the transport)."""

    queue_id: str
    channel: str
    interval_start: datetime  # UTC
    offered: float
    handled: float = 0.0
    handle_time_ms_total: float = 0.0


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    queue_id: str
    channel: str
    interval_start: datetime
    volume: float
    aht_seconds: float


@dataclass(frozen=True, slots=True)
class Accuracy:
    queue_id: str
    channel: str
    wape_pct: float
    seasonal_naive_wape_pct: float
    method: str


@dataclass(frozen=True, slots=True)
class ForecastSpec:
    interval_minutes: int
    horizon_start: datetime
    horizon_days: int
    time_zone: str = "UTC"
    #: local date -> volume factor (0: closed)
    special_days: dict[date, float] = field(default_factory=dict)
    holdout_weeks: int = 0


@dataclass(frozen=True, slots=True)
class ForecastResult:
    points: list[ForecastPoint]
    accuracy: list[Accuracy]
    intraday_factor: float = 1.0


def wape(actual: FloatArray, predicted: FloatArray) -> float:
    """Weighted absolute percentage error, in percent (0 when nothing happened and nothing
    was predicted)."""
    total = float(np.abs(actual).sum())
    err = float(np.abs(actual - predicted).sum())
    if total == 0:
        return 0.0 if err == 0 else 100.0
    return 100.0 * err / total


class _Grid:
    """Local wall-clock slots of one series (DST: a local slot that does not exist is skipped,
    a repeated one is summed)."""

    def __init__(self, tz: ZoneInfo, minutes: int) -> None:
        self.tz = tz
        self.minutes = minutes
        self.per_day = 24 * 60 // minutes

    def local_slot(self, instant: datetime) -> datetime:
        local = instant.astimezone(self.tz).replace(tzinfo=None)
        minute = (local.hour * 60 + local.minute) // self.minutes * self.minutes
        return local.replace(hour=minute // 60, minute=minute % 60, second=0, microsecond=0)

    def utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz).astimezone(UTC)

    def slots(self, first: datetime, count: int) -> list[datetime]:
        step = timedelta(minutes=self.minutes)
        return [first + i * step for i in range(count)]


def _fit_mstl(
    y: FloatArray, per_day: int, horizon: int, start: datetime, minutes: int
) -> FloatArray:
    """MSTL (daily + weekly seasonality, AutoETS trend) by statsforecast."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS

    weekly = per_day * 7
    frame = pd.DataFrame(
        {
            "unique_id": "s",
            "ds": pd.date_range(start, periods=len(y), freq=f"{minutes}min"),
            "y": y,
        }
    )
    model = MSTL(season_length=[per_day, weekly], trend_forecaster=AutoETS(model="ZZN"))
    sf = StatsForecast(models=[model], freq=f"{minutes}min", n_jobs=1)
    out = sf.forecast(df=frame, h=horizon)
    values: FloatArray = np.asarray(out["MSTL"].to_numpy(), dtype=np.float64)
    return np.clip(values, 0.0, None)


def _seasonal_naive(y: FloatArray, season: int, horizon: int) -> FloatArray:
    last = y[-season:]
    reps = math.ceil(horizon / season)
    result: FloatArray = np.tile(last, reps)[:horizon].astype(np.float64)
    return result


def _predict(
    y: FloatArray, per_day: int, horizon: int, start: datetime, minutes: int
) -> tuple[FloatArray, str]:
    weekly = per_day * 7
    if len(y) >= 2 * weekly and float(y.sum()) > 0:
        return _fit_mstl(y, per_day, horizon, start, minutes), "mstl"
    if len(y) >= weekly:
        return _seasonal_naive(y, weekly, horizon), "seasonal_naive"
    if len(y) >= per_day:
        return _seasonal_naive(y, per_day, horizon), "seasonal_naive_daily"
    mean = float(y.mean()) if len(y) else 0.0
    return np.full(horizon, mean), "mean"


def forecast(history: Sequence[IntervalActual], spec: ForecastSpec) -> ForecastResult:
    """Forecast every (queue, channel) series of `history` over the horizon."""
    tz = ZoneInfo(spec.time_zone)
    grid = _Grid(tz, spec.interval_minutes)
    per_day, weekly = grid.per_day, grid.per_day * 7
    series: dict[tuple[str, str], list[IntervalActual]] = defaultdict(list)
    for record in history:
        series[(record.queue_id, record.channel)].append(record)

    horizon_first = grid.local_slot(spec.horizon_start)
    horizon = spec.horizon_days * per_day
    horizon_slots = grid.slots(horizon_first, horizon)
    points: list[ForecastPoint] = []
    accuracy: list[Accuracy] = []
    for (queue_id, channel), records in sorted(series.items()):
        first = min(grid.local_slot(r.interval_start) for r in records)
        first = first.replace(hour=0, minute=0)  # whole local days
        count = int((horizon_first - first) / timedelta(minutes=spec.interval_minutes))
        if count <= 0:
            continue
        slots = grid.slots(first, count)
        index = {s: i for i, s in enumerate(slots)}
        offered = np.zeros(count)
        handled = np.zeros(count)
        handle_ms = np.zeros(count)
        for r in records:
            i = index.get(grid.local_slot(r.interval_start))
            if i is None:
                continue
            offered[i] += r.offered
            handled[i] += r.handled
            handle_ms[i] += r.handle_time_ms_total
        # Special days of the history: the same interval a week earlier (or later) instead.
        y = offered.copy()
        special = np.array([s.date() in spec.special_days for s in slots])
        for i in (int(k) for k in np.flatnonzero(special)):
            j = i - weekly if i >= weekly else i + weekly
            while 0 <= j < count and special[j]:
                j = j - weekly if j >= weekly else j + weekly
            y[i] = y[j] if 0 <= j < count else 0.0

        # Accuracy on the held-out weeks.
        hold = spec.holdout_weeks * weekly
        if hold and count - hold >= weekly:
            train, test = y[:-hold], y[-hold:]
            predicted, method = _predict(train, per_day, hold, first, spec.interval_minutes)
            naive = _seasonal_naive(train, weekly, hold)
            keep = ~special[-hold:]
            accuracy.append(
                Accuracy(
                    queue_id=queue_id,
                    channel=channel,
                    wape_pct=wape(test[keep], predicted[keep]),
                    seasonal_naive_wape_pct=wape(test[keep], naive[keep]),
                    method=method,
                )
            )

        volume, _ = _predict(y, per_day, horizon, first, spec.interval_minutes)
        aht = _aht_profile(handled, handle_ms, slots, per_day, horizon_slots, spec.interval_minutes)
        for k, slot in enumerate(horizon_slots):
            factor = spec.special_days.get(slot.date(), 1.0)
            points.append(
                ForecastPoint(
                    queue_id=queue_id,
                    channel=channel,
                    interval_start=grid.utc(slot),
                    volume=float(volume[k]) * factor,
                    aht_seconds=float(aht[k]),
                )
            )
    return ForecastResult(points=points, accuracy=accuracy)


def _weekly_slot(slot: datetime, minutes: int, per_day: int) -> int:
    return slot.weekday() * per_day + (slot.hour * 60 + slot.minute) // minutes


def _aht_profile(
    handled: FloatArray,
    handle_ms: FloatArray,
    slots: Sequence[datetime],
    per_day: int,
    horizon_slots: Sequence[datetime],
    minutes: int,
) -> FloatArray:
    weekly = per_day * 7
    num = np.zeros(weekly)
    den = np.zeros(weekly)
    for i, slot in enumerate(slots):
        k = _weekly_slot(slot, minutes, per_day)
        num[k] += handle_ms[i]
        den[k] += handled[i]
    overall = float(handle_ms.sum() / handled.sum()) / 1000.0 if handled.sum() > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        profile = np.where(den > 0, num / np.maximum(den, 1) / 1000.0, overall)
    out: FloatArray = np.array(
        [profile[_weekly_slot(s, minutes, per_day)] for s in horizon_slots], dtype=np.float64
    )
    return out


def reforecast_intraday(
    points: Sequence[ForecastPoint], actuals: Iterable[IntervalActual]
) -> tuple[list[ForecastPoint], float]:
    """Replace the intervals with actuals and scale the later ones of the same series by
    actual / forecast over the intervals seen (bounded by INTRADAY_BOUNDS)."""
    seen: dict[tuple[str, str, datetime], float] = {}
    for a in actuals:
        key = (a.queue_id, a.channel, a.interval_start.astimezone(UTC))
        seen[key] = seen.get(key, 0.0) + a.offered
    if not seen:
        return list(points), 1.0
    actual_sum = 0.0
    forecast_sum = 0.0
    last_seen: dict[tuple[str, str], datetime] = {}
    for p in points:
        key = (p.queue_id, p.channel, p.interval_start.astimezone(UTC))
        if key in seen:
            actual_sum += seen[key]
            forecast_sum += p.volume
            series = (p.queue_id, p.channel)
            last_seen[series] = max(last_seen.get(series, p.interval_start), p.interval_start)
    if forecast_sum <= 0:
        factor = 1.0
    else:
        factor = min(max(actual_sum / forecast_sum, INTRADAY_BOUNDS[0]), INTRADAY_BOUNDS[1])
    out: list[ForecastPoint] = []
    for p in points:
        key = (p.queue_id, p.channel, p.interval_start.astimezone(UTC))
        if key in seen:
            out.append(_replace_volume(p, seen[key]))
        elif (p.queue_id, p.channel) in last_seen and p.interval_start > last_seen[
            (p.queue_id, p.channel)
        ]:
            out.append(_replace_volume(p, p.volume * factor))
        else:
            out.append(p)
    return out, factor


def _replace_volume(p: ForecastPoint, volume: float) -> ForecastPoint:
    return ForecastPoint(
        queue_id=p.queue_id,
        channel=p.channel,
        interval_start=p.interval_start,
        volume=volume,
        aht_seconds=p.aht_seconds,
    )

"""Buckets aligned in the tenant's time zone.

A bucket starts where the local wall clock shows a multiple of its size; it is stored by its
UTC instant. A day with a daylight-saving change has 92 or 100 fifteen-minute buckets: the
skipped local hour has none, the repeated hour has two sets (told apart by their UTC instants).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contactcenter.reporting.domain.values import MINUTE_MS


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone; raises ValueError for an unknown name."""
    try:
        return ZoneInfo(name)
    # OSError: a name too long to be a file name of the zone database
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def is_valid_zone(name: str) -> bool:
    try:
        zone(name)
    except ValueError:
        return False
    return True


_QUARTER_MS = 15 * MINUTE_MS
#: (zone, quarter hour) -> UTC offset: zones change offset on quarter hours only, so the
#: offset of a whole quarter hour is the offset of any instant in it.
_OFFSETS: dict[tuple[str, int], int] = {}


def _offset_ms(at_ms: int, tz: ZoneInfo) -> int:
    key = (tz.key, at_ms // _QUARTER_MS)
    cached = _OFFSETS.get(key)
    if cached is not None:
        return cached
    offset = datetime.fromtimestamp(at_ms / 1000, tz).utcoffset()
    value = 0 if offset is None else int(offset.total_seconds() * 1000)
    if len(_OFFSETS) > 200_000:
        _OFFSETS.clear()
    _OFFSETS[key] = value
    return value


def bucket_start(at_ms: int, minutes: int, tz: ZoneInfo) -> int:
    """The start (epoch ms) of the `minutes` bucket holding `at_ms`, aligned in local time."""
    size = minutes * MINUTE_MS
    offset = _offset_ms(at_ms, tz)
    local = at_ms + offset
    return local - local % size - offset


def day_start(at_ms: int, tz: ZoneInfo) -> int:
    """Local midnight of the day holding `at_ms` (epoch ms)."""
    local = datetime.fromtimestamp(at_ms / 1000, tz)
    return _local_midnight(local.date(), tz)


def local_date(at_ms: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(at_ms / 1000, tz).date().isoformat()


def _local_midnight(day: date, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


def bucket_starts(start_ms: int, end_ms: int, minutes: int, tz: ZoneInfo) -> list[int]:
    """Every bucket start in [start, end), the start aligned down; walks in UTC by the size
    (local buckets never span an offset change: offsets change on quarter hours)."""
    size = minutes * MINUTE_MS
    first = bucket_start(start_ms, minutes, tz)
    starts: list[int] = []
    at = first
    while at < end_ms:
        aligned = bucket_start(at, minutes, tz)
        if not starts or aligned != starts[-1]:
            starts.append(aligned)
        at = aligned + size
    return starts


def buckets_of_local_day(day: date, minutes: int, tz: ZoneInfo) -> list[int]:
    """The bucket starts of one local calendar day (23, 24 or 25 hours)."""
    return bucket_starts(
        _local_midnight(day, tz), _local_midnight(day + timedelta(days=1), tz), minutes, tz
    )


def to_datetime(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Exact epoch milliseconds (truncated) of an aware datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return (moment - _EPOCH) // _MS

"""Raw interval counters and the metrics computed from them (the documented definitions).

Counters are what is stored; every metric, and every service-level variant, is recomputed from
them for any window or past interval.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

from contactcenter.reporting.domain.values import ServiceLevelVariant


@dataclass(slots=True)
class Counters:
    """The counters of one queue and channel in one bucket.

    A contact counts in the bucket where it entered the queue (offered, answered, abandoned
    and their threshold splits, flow-outs, answer wait); handle time counts in the bucket where
    the agent's leg ended (wrap-up ended, or transferred away).
    """

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    #: Answered with wait <= the service-level threshold (the boundary counts as within).
    answered_within_threshold: int = 0
    #: Abandoned with wait <= the service-level threshold.
    abandoned_within_threshold: int = 0
    #: Abandoned with wait < the short-abandon threshold (the boundary is not short).
    short_abandons: int = 0
    #: Left this queue for another one (overflow, transfer to a queue).
    flow_outs: int = 0
    #: Agent legs ended, and their talk + hold + wrap-up.
    handled: int = 0
    handle_time_ms_total: int = 0
    #: Sum of the waits of the answered contacts (ASA's numerator).
    answer_wait_ms_total: int = 0
    #: The thresholds in force when the bucket was last counted in.
    sl_threshold_s: int = 0
    short_abandon_threshold_s: int = 0

    def add(self, other: Counters) -> None:
        for name in COUNTER_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.sl_threshold_s:
            self.sl_threshold_s = other.sl_threshold_s
        if other.short_abandon_threshold_s:
            self.short_abandon_threshold_s = other.short_abandon_threshold_s

    def to_row(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in ALL_FIELDS)

    @classmethod
    def from_row(cls, values: Any) -> Counters:
        return cls(*(int(v) for v in values))


#: The additive counters (summed across buckets).
COUNTER_FIELDS: Final = (
    "offered",
    "answered",
    "abandoned",
    "answered_within_threshold",
    "abandoned_within_threshold",
    "short_abandons",
    "flow_outs",
    "handled",
    "handle_time_ms_total",
    "answer_wait_ms_total",
)
ALL_FIELDS: Final = tuple(f.name for f in fields(Counters))


def service_level(c: Counters, variant: ServiceLevelVariant) -> float | None:
    """Service level in percent by `variant`, or None when nothing is counted yet."""
    if variant is ServiceLevelVariant.ANSWERED_ONLY:
        num, den = c.answered_within_threshold, c.answered
    elif variant is ServiceLevelVariant.ABANDONS_IN_FAVOUR:
        num = c.answered_within_threshold + c.abandoned_within_threshold
        den = c.answered + c.abandoned
    elif variant is ServiceLevelVariant.SHORT_ABANDONS_IGNORED:
        num, den = c.answered_within_threshold, c.answered + c.abandoned - c.short_abandons
    else:
        num, den = c.answered_within_threshold, c.answered + c.abandoned
    return None if den <= 0 else 100.0 * num / den


def asa_ms(c: Counters) -> int:
    """Average speed of answer: wait of the answered contacts / answered."""
    return c.answer_wait_ms_total // c.answered if c.answered else 0


def aht_ms(c: Counters) -> int:
    """Average handle time: (talk + hold + wrap-up) / legs, in the bucket where they ended."""
    return c.handle_time_ms_total // c.handled if c.handled else 0


def abandon_rate(c: Counters) -> float:
    """Abandoned / offered, in percent (short abandons included)."""
    return 100.0 * c.abandoned / c.offered if c.offered else 0.0


def occupancy(handling_ms: int, available_ms: int) -> float:
    """handling / (handling + available), in percent; handling = on contact + wrap-up."""
    total = handling_ms + available_ms
    return 100.0 * handling_ms / total if total > 0 else 0.0


def utilization(load_ms: int, capacity_ms: int) -> float:
    """Capacity in use / capacity, time-weighted over the logged-in time, in percent (an agent
    with 2 of 3 chat slots busy the whole time is 100 % occupied and 66.7 % utilized)."""
    return 100.0 * load_ms / capacity_ms if capacity_ms > 0 else 0.0

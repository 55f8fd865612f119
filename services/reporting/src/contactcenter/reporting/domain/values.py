"""Value types of the reporting domain and the metric definitions' defaults.

Times inside the domain are whole milliseconds since the Unix epoch (UTC): the events carry
millisecond precision, integers fold fast, and every bucket boundary is exact.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ServiceLevelVariant(StrEnum):
    """How service level is computed (ICMI, Genesys and Amazon Connect disagree):

    - ABANDONS_AGAINST: answered within T / (answered + abandoned); every abandon counts
      against.
    - SHORT_ABANDONS_IGNORED: answered within T / (answered + abandoned - short abandons);
      contacts that hung up before the short-abandon threshold are left out.
    - ABANDONS_IN_FAVOUR: (answered within T + abandoned within T) / (answered + abandoned);
      a contact that gave up within T did not wait too long.
    - ANSWERED_ONLY: answered within T / answered.

    Flow-outs (overflow, transfer to another queue) count in none of them: the destination
    queue reports the contact.
    """

    ABANDONS_AGAINST = "abandons_against"
    SHORT_ABANDONS_IGNORED = "short_abandons_ignored"
    ABANDONS_IN_FAVOUR = "abandons_in_favour"
    ANSWERED_ONLY = "answered_only"


class Activity(StrEnum):
    """An agent's state as the wallboard groups it (from routing's AgentState)."""

    AVAILABLE = "available"
    ON_CONTACT = "on_contact"
    WRAP_UP = "wrap_up"
    AWAY = "away"
    NOT_RESPONDING = "not_responding"
    OFFLINE = "offline"


#: routing's `AgentState` wire values -> Activity.
ACTIVITY_OF_ROUTING_STATE: Final[dict[str, Activity]] = {
    "available": Activity.AVAILABLE,
    "busy": Activity.ON_CONTACT,
    "wrap_up": Activity.WRAP_UP,
    "away": Activity.AWAY,
    "not_responding": Activity.NOT_RESPONDING,
    "offline": Activity.OFFLINE,
}

#: Activities that count as handling time (occupancy's numerator).
HANDLING: Final = frozenset({Activity.ON_CONTACT, Activity.WRAP_UP})


class Window(StrEnum):
    TODAY = "today"
    ROLLING_15M = "rolling_15m"
    ROLLING_30M = "rolling_30m"
    ROLLING_60M = "rolling_60m"


#: Minutes of each rolling window.
ROLLING_MINUTES: Final[dict[Window, int]] = {
    Window.ROLLING_15M: 15,
    Window.ROLLING_30M: 30,
    Window.ROLLING_60M: 60,
}

DEFAULT_TIME_ZONE: Final = "UTC"
DEFAULT_SL_THRESHOLD_S: Final = 20
DEFAULT_SL_TARGET_PERCENT: Final = 80
DEFAULT_SHORT_ABANDON_S: Final = 5
DEFAULT_VARIANT: Final = ServiceLevelVariant.ABANDONS_AGAINST

#: The interval sizes of the history (stored at 15 minutes; 30 is summed from them).
INTERVAL_MINUTES: Final = (15, 30)
#: Minute buckets kept for the rolling windows (the longest window, plus the current minute).
MINUTE_BUCKETS_KEPT: Final = 61

MINUTE_MS: Final = 60_000

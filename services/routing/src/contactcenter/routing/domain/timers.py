"""Timers as data: "wake me at `at` for `kind` of `subject`".

The engine schedules them while folding events (so a rebuilt engine has the same ones) and
returns the new ones in every Outcome. The caller wakes the engine with any command, usually
`Tick`, at or after `at` (see `RoutingEngine.next_timer_at`); a timer whose reason went away
meanwhile (the offer was accepted, the contact left) fires nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class TimerKind(StrEnum):
    #: subject: offer id. The offer times out.
    OFFER_EXPIRY = "offer_expiry"
    #: subject: interaction id. The agent's wrap-up on it ends.
    WRAP_UP_END = "wrap_up_end"
    #: subject: interaction id. The contact reaches the next step of its queue's policy.
    POLICY_STEP = "policy_step"
    #: subject: interaction id. The contact stops waiting for its preferred agent.
    PREFERRED_TIMEOUT = "preferred_timeout"
    #: subject: interaction id. The contact reaches its queue's maximum wait.
    MAX_WAIT = "max_wait"


@dataclass(frozen=True, slots=True)
class Timer:
    at: datetime
    kind: TimerKind
    subject: str

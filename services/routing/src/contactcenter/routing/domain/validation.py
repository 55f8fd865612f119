"""State-independent checks of commands: every bad field at once, named as in the gRPC request
(`required_skills[billing]`, `steps[1].after_s`), raised as one ValidationFailed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contactcenter.contracts.errors import FieldViolation, ValidationFailed
from contactcenter.routing.domain.commands import (
    AcceptOffer,
    AssignContact,
    CancelContact,
    Command,
    CompleteContact,
    ConfigureAgent,
    ConfigurePolicy,
    ConfigureQueue,
    EndContact,
    EndWrapUp,
    QueueContact,
    RecordAssignment,
    RejectOffer,
    SetAgentState,
    Tick,
)
from contactcenter.routing.domain.values import (
    EXCLUSIVE_CHANNELS,
    MAX_PRIORITY,
    MAX_PROFICIENCY,
    MIN_PRIORITY,
    Channel,
    MaxWaitAction,
    Presence,
)

MAX_ID_LENGTH: Final = 128
MAX_NAME_LENGTH: Final = 256
MAX_LIST: Final = 256
MAX_STEPS: Final = 16
#: A day: longer timeouts are configuration mistakes.
MAX_SECONDS: Final = 86_400
#: Service-level thresholds and maximum waits may be days long (email).
MAX_LONG_SECONDS: Final = 30 * 86_400

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_BAD_ID = re.compile(r"[\s/\x00-\x1f\x7f]")


class Checks:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def fail(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def done(self) -> None:
        if self.violations:
            raise ValidationFailed(self.violations)

    def identifier(self, field: str, value: str | None, *, required: bool = False) -> None:
        """An id: 1..128 characters, no whitespace, control characters or '/'."""
        if not value:
            if required:
                self.fail(field, "is required")
            return
        if len(value) > MAX_ID_LENGTH:
            self.fail(field, f"must be at most {MAX_ID_LENGTH} characters")
        elif _BAD_ID.search(value):
            self.fail(field, "must not contain whitespace, control characters or '/'")

    def identifiers(self, field: str, values: Iterable[str]) -> None:
        values = list(values)
        if len(values) > MAX_LIST:
            self.fail(field, f"must have at most {MAX_LIST} entries")
            return
        if len(set(values)) != len(values):
            self.fail(field, "must not repeat an entry")
        for i, value in enumerate(values):
            self.identifier(f"{field}[{i}]", value, required=True)

    def text(self, field: str, value: str | None, limit: int = MAX_NAME_LENGTH) -> None:
        if value and len(value) > limit:
            self.fail(field, f"must be at most {limit} characters")

    def between(self, field: str, value: int, low: int, high: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.fail(field, f"must be between {low} and {high}")

    def language(self, field: str, value: str | None) -> None:
        if value and not (len(value) <= 35 and _LANGUAGE.match(value)):
            self.fail(field, "must be a BCP 47 language tag such as 'en' or 'fr-CA'")

    def levels(self, field: str, value: Mapping[str, int], low: int) -> None:
        if len(value) > MAX_LIST:
            self.fail(field, f"must have at most {MAX_LIST} entries")
            return
        for skill, level in value.items():
            self.identifier(f"{field}[{skill}]", skill, required=True)
            self.between(f"{field}[{skill}]", level, low, MAX_PROFICIENCY)

    def channels(self, field: str, value: Iterable[Channel], *, required: bool) -> None:
        values = list(value)
        if required and not values:
            self.fail(field, "must name at least one channel")
        if len(set(values)) != len(values):
            self.fail(field, "must not repeat a channel")
        for i, channel in enumerate(values):
            if not isinstance(channel, Channel):
                self.fail(f"{field}[{i}]", "must be a channel")

    def aware(self, field: str, value: datetime | None) -> None:
        if value is not None and value.utcoffset() is None:
            self.fail(field, "must have a time zone")


def _queue(c: ConfigureQueue, checks: Checks) -> None:
    checks.identifier("queue_id", c.queue_id, required=True)
    checks.text("name", c.name)
    checks.channels("channels", c.channels, required=True)
    checks.levels("required_skills", c.required_skills, 0)
    checks.language("language", c.language)
    checks.between("sl_target_percent", c.sl_target_percent, 1, 100)
    checks.between("sl_threshold_s", c.sl_threshold_s, 1, MAX_LONG_SECONDS)
    checks.between("priority", c.priority, MIN_PRIORITY, MAX_PRIORITY)
    checks.between("aging_s", c.aging_s, 1, MAX_SECONDS)
    if c.max_wait_s is not None:
        checks.between("max_wait_s", c.max_wait_s, 1, MAX_LONG_SECONDS)
    checks.identifier("overflow_queue_id", c.overflow_queue_id)
    if c.max_wait_action is MaxWaitAction.OVERFLOW:
        if not c.overflow_queue_id:
            checks.fail("overflow_queue_id", "is required when max_wait_action is overflow")
        elif c.overflow_queue_id == c.queue_id:
            checks.fail("overflow_queue_id", "must be another queue")
    checks.between("offer_timeout_s", c.offer_timeout_s, 1, MAX_SECONDS)
    checks.between("wrap_up_s", c.wrap_up_s, 0, MAX_SECONDS)
    checks.identifier("policy_id", c.policy_id)
    checks.between("preferred_agent_timeout_s", c.preferred_agent_timeout_s, 0, MAX_SECONDS)


def _agent(c: ConfigureAgent, checks: Checks) -> None:
    checks.identifier("agent_id", c.agent_id, required=True)
    checks.text("name", c.name)
    checks.levels("skills", c.skills, 1)
    for i, tag in enumerate(c.languages):
        checks.language(f"languages[{i}]", tag)
    checks.identifiers("queues", c.queues)
    checks.identifiers("groups", c.groups)
    checks.channels("channels", c.channels, required=True)
    checks.between("capacity", c.capacity, 1, 10_000)
    for channel, cost in c.channel_costs.items():
        checks.between(f"channel_costs[{channel}]", cost, 1, max(1, c.capacity))
    checks.channels("interruptible_channels", c.interruptible_channels, required=False)
    for i, channel in enumerate(c.interruptible_channels):
        if channel in EXCLUSIVE_CHANNELS:
            checks.fail(f"interruptible_channels[{i}]", f"{channel} work cannot be interrupted")
    try:
        ZoneInfo(c.time_zone)
    # OSError: a name too long to be a file name of the zone database
    except (ZoneInfoNotFoundError, ValueError, OSError):
        checks.fail("time_zone", "must be an IANA time zone such as 'Europe/Paris'")


def _policy(c: ConfigurePolicy, checks: Checks) -> None:
    checks.identifier("policy_id", c.policy_id, required=True)
    checks.text("name", c.name)
    if not c.steps:
        checks.fail("steps", "must have at least one step")
    if len(c.steps) > MAX_STEPS:
        checks.fail("steps", f"must have at most {MAX_STEPS} steps")
        return
    previous = -1
    for i, step in enumerate(c.steps):
        field = f"steps[{i}]"
        checks.between(f"{field}.after_s", step.after_s, 0, MAX_LONG_SECONDS)
        if i == 0 and step.after_s != 0:
            checks.fail(f"{field}.after_s", "the first step starts at 0")
        elif isinstance(step.after_s, int) and step.after_s <= previous:
            checks.fail(f"{field}.after_s", "must be later than the previous step")
        previous = step.after_s if isinstance(step.after_s, int) else previous
        checks.text(f"{field}.name", step.name)
        checks.between(f"{field}.min_proficiency_delta", step.min_proficiency_delta, -4, 4)
        checks.identifiers(f"{field}.agent_queues", step.agent_queues)
        checks.identifiers(f"{field}.agent_groups", step.agent_groups)
        if not (step.include_queue_agents or step.agent_queues or step.agent_groups):
            checks.fail(field, "needs agents: the queue's own, agent_queues or agent_groups")


def _set_state(c: SetAgentState, checks: Checks) -> None:
    checks.identifier("agent_id", c.agent_id, required=True)
    if c.presence is Presence.NOT_RESPONDING:
        checks.fail("presence", "not_responding is set by routing only")
    elif not isinstance(c.presence, Presence):
        checks.fail("presence", "must be available, away or offline")
    checks.identifier("reason_code", c.reason_code)


def _offer(c: AcceptOffer | RejectOffer, checks: Checks) -> None:
    checks.identifier("offer_id", c.offer_id, required=True)
    checks.identifier("agent_id", c.agent_id, required=True)
    if isinstance(c, RejectOffer):
        checks.identifier("reason_code", c.reason_code)


def _wrap_up(c: EndWrapUp, checks: Checks) -> None:
    checks.identifier("agent_id", c.agent_id, required=True)
    checks.identifier("interaction_id", c.interaction_id)


def _queue_contact(c: QueueContact, checks: Checks) -> None:
    checks.identifier("interaction_id", c.interaction_id, required=True)
    checks.identifier("queue_id", c.queue_id, required=True)
    if not isinstance(c.channel, Channel):
        checks.fail("channel", "must be a channel")
    checks.between("priority", c.priority, MIN_PRIORITY, MAX_PRIORITY)
    checks.levels("required_skills", c.required_skills, 0)
    checks.language("language", c.language)
    checks.identifier("preferred_agent_id", c.preferred_agent_id)
    checks.aware("first_enqueued_at", c.first_enqueued_at)


def _interaction(c: CancelContact | EndContact | CompleteContact, checks: Checks) -> None:
    checks.identifier("interaction_id", c.interaction_id, required=True)
    if isinstance(c, CancelContact):
        checks.identifier("reason_code", c.reason_code)


def _assign(c: AssignContact, checks: Checks) -> None:
    checks.identifier("interaction_id", c.interaction_id, required=True)
    checks.identifier("agent_id", c.agent_id, required=True)


def _record_assignment(c: RecordAssignment, checks: Checks) -> None:
    checks.identifier("interaction_id", c.interaction_id, required=True)
    checks.identifier("agent_id", c.agent_id, required=True)
    checks.identifier("offer_id", c.offer_id)


_VALIDATORS: Final[Mapping[type[Any], Callable[[Any, Checks], None]]] = {
    ConfigureQueue: _queue,
    ConfigureAgent: _agent,
    ConfigurePolicy: _policy,
    SetAgentState: _set_state,
    AcceptOffer: _offer,
    RejectOffer: _offer,
    EndWrapUp: _wrap_up,
    QueueContact: _queue_contact,
    CancelContact: _interaction,
    EndContact: _interaction,
    CompleteContact: _interaction,
    AssignContact: _assign,
    RecordAssignment: _record_assignment,
    Tick: lambda c, checks: None,
}


def validate(command: Command) -> None:
    """Raise ValidationFailed naming every bad field of `command`."""
    checks = Checks()
    validator = _VALIDATORS.get(type(command))
    if validator is None:
        raise TypeError(f"not a routing command: {command!r}")
    validator(command, checks)
    checks.done()

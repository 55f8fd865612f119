"""The gRPC API: `contactcenter.routing.v1.RoutingService`.

Requests are checked here for what the domain cannot see (request ids, enum values, repeated
skills); the domain checks the rest, and its field names are mapped to the request's paths
(`required_skills[billing]` -> `queue.required_skills[0].proficiency`). The tenant always comes
from the caller's token. An agent acts as themselves (the token's subject is the agent id);
supervisors and admins configure and may set any agent's state.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Final

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.errors import (
    FieldViolation,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from contactcenter.eventstore import IdempotencyKeyReused
from contactcenter.grpckit import Caller, Role, ServiceRegistration, current_caller
from contactcenter.routing.adapters.leases import PresenceLeases
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.domain import (
    AcceptOffer,
    Command,
    ConfigureAgent,
    ConfigureQueue,
    EndWrapUp,
    Outcome,
    RejectOffer,
    RoutingEngine,
    SetAgentState,
)
from contactcenter.routing.domain.events import OfferIssued
from contactcenter.routing.domain.validation import Checks
from contactcenter.routing.domain.values import (
    AgentState,
    Channel,
    MaxWaitAction,
    Presence,
    SelectionStrategy,
)
from contactcenter.routing.v1 import routing_pb2 as pb
from contactcenter.routing.v1 import routing_pb2_grpc as pb_grpc

_A, _S, _AD = Role.AGENT, Role.SUPERVISOR, Role.ADMIN
_CONFIGURERS: Final = frozenset({_S, _AD})

#: Who may call what: admins and supervisors configure and read queues; agents drive their own
#: state and offers; supervisors may set any agent's state and read any decision.
METHOD_ROLES: Final[Mapping[str, frozenset[Role]]] = {
    "UpsertQueue": _CONFIGURERS,
    "UpsertAgent": _CONFIGURERS,
    "SetAgentState": frozenset({_A, _S, _AD}),
    "Heartbeat": frozenset({_A}),
    "AcceptOffer": frozenset({_A}),
    "RejectOffer": frozenset({_A}),
    "EndWrapUp": frozenset({_A}),
    "GetQueueSnapshot": _CONFIGURERS,
    "ExplainDecision": frozenset({_A, _S, _AD}),
    "AgentStream": frozenset({_A}),
    "ListQueues": _CONFIGURERS,
    "ListAgents": _CONFIGURERS,
    "GetAgent": _CONFIGURERS,
    "ReplayDecisions": frozenset({_AD}),
}

#: List RPCs: the page size when none is asked for, and the most one page holds.
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
_TOKEN_VERSION: Final = 1

_CHANNELS: Final[Mapping[int, Channel]] = {
    common_pb2.CHANNEL_VOICE: Channel.VOICE,
    common_pb2.CHANNEL_EMAIL: Channel.EMAIL,
    common_pb2.CHANNEL_CHAT: Channel.CHAT,
    common_pb2.CHANNEL_SMS: Channel.SMS,
    common_pb2.CHANNEL_SOCIAL: Channel.SOCIAL,
    common_pb2.CHANNEL_VIDEO: Channel.VIDEO,
}
_CHANNEL_NUMBERS: Final = {channel: number for number, channel in _CHANNELS.items()}
_PRESENCES: Final[Mapping[int, Presence]] = {
    pb.PRESENCE_OFFLINE: Presence.OFFLINE,
    pb.PRESENCE_AVAILABLE: Presence.AVAILABLE,
    pb.PRESENCE_AWAY: Presence.AWAY,
    pb.PRESENCE_NOT_RESPONDING: Presence.NOT_RESPONDING,
}
_STRATEGIES: Final[Mapping[int, SelectionStrategy]] = {
    pb.SELECTION_STRATEGY_LONGEST_IDLE: SelectionStrategy.LONGEST_IDLE,
    pb.SELECTION_STRATEGY_MOST_SKILLED: SelectionStrategy.MOST_SKILLED,
    pb.SELECTION_STRATEGY_LEAST_OCCUPIED: SelectionStrategy.LEAST_OCCUPIED,
    pb.SELECTION_STRATEGY_ROUND_ROBIN: SelectionStrategy.ROUND_ROBIN,
    pb.SELECTION_STRATEGY_FEWEST_CONTACTS_TODAY: SelectionStrategy.FEWEST_CONTACTS_TODAY,
}
_STRATEGY_NUMBERS: Final = {strategy: number for number, strategy in _STRATEGIES.items()}
_PRESENCE_NUMBERS: Final = {presence: number for number, presence in _PRESENCES.items()}
_MAX_WAIT_ACTIONS: Final[Mapping[int, MaxWaitAction]] = {
    pb.MAX_WAIT_ACTION_EXIT: MaxWaitAction.EXIT,
    pb.MAX_WAIT_ACTION_OVERFLOW: MaxWaitAction.OVERFLOW,
}
_MAX_WAIT_ACTION_NUMBERS: Final = {action: number for number, action in _MAX_WAIT_ACTIONS.items()}
_AGENT_STATES: Final[Mapping[AgentState, int]] = {
    AgentState.OFFLINE: pb.AGENT_STATE_OFFLINE,
    AgentState.AVAILABLE: pb.AGENT_STATE_AVAILABLE,
    AgentState.AWAY: pb.AGENT_STATE_AWAY,
    AgentState.BUSY: pb.AGENT_STATE_BUSY,
    AgentState.WRAP_UP: pb.AGENT_STATE_WRAP_UP,
    AgentState.NOT_RESPONDING: pb.AGENT_STATE_NOT_RESPONDING,
}


def registration(servicer: RoutingServicer) -> ServiceRegistration:
    return ServiceRegistration(
        descriptor=pb.DESCRIPTOR.services_by_name["RoutingService"],
        servicer=servicer,
        add_to_server=pb_grpc.add_RoutingServiceServicer_to_server,
        method_roles=METHOD_ROLES,
    )


# --- request checks and conversions ------------------------------------------------------------


def _start(request: Message) -> Checks:
    checks = Checks()
    checks.identifier("request_id", getattr(request, "request_id"), required=True)  # noqa: B009
    return checks


def _enum(checks: Checks, field: str, mapping: Mapping[int, Any], number: int, default: Any) -> Any:
    if number == 0:
        return default
    if number not in mapping:
        checks.fail(field, f"unknown value {number}")
        return default
    return mapping[number]


def _channels(
    checks: Checks, field: str, numbers: Sequence[int], default: tuple[Channel, ...]
) -> tuple[Channel, ...]:
    if not numbers:
        return default
    channels = []
    for i, number in enumerate(numbers):
        channel = _CHANNELS.get(number)
        if channel is None:
            checks.fail(f"{field}[{i}]", "must be a channel")
        else:
            channels.append(channel)
    return tuple(channels)


def _levels(
    checks: Checks, field: str, levels: Sequence[pb.SkillLevel], renames: dict[str, str]
) -> dict[str, int]:
    """Repeated SkillLevel as the domain's mapping; remembers how to name each entry back."""
    result: dict[str, int] = {}
    for i, level in enumerate(levels):
        if level.skill in result:
            checks.fail(f"{field}[{i}].skill", "must not repeat a skill")
            continue
        result[level.skill] = level.proficiency
        renames[f"{field.rsplit('.', 1)[-1]}[{level.skill}]"] = f"{field}[{i}].proficiency"
    return result


def _renamed(error: ValidationFailed, prefix: str, renames: Mapping[str, str]) -> ValidationFailed:
    """The domain's field names as request paths."""
    violations = [
        FieldViolation(renames.get(v.field, f"{prefix}{v.field}"), v.description)
        for v in error.field_violations
    ]
    return ValidationFailed(violations)


def _queue_command(request: pb.UpsertQueueRequest, checks: Checks, renames: dict[str, str]) -> Any:
    if not request.HasField("queue"):
        checks.fail("queue", "is required")
        return None
    q = request.queue
    defaults = ConfigureQueue(queue_id=q.queue_id)
    return ConfigureQueue(
        queue_id=q.queue_id,
        name=q.name,
        channels=_channels(checks, "queue.channels", q.channels, defaults.channels),
        required_skills=_levels(checks, "queue.required_skills", q.required_skills, renames),
        language=q.language or None,
        sl_target_percent=q.sl_target_percent or defaults.sl_target_percent,
        sl_threshold_s=q.sl_threshold_s or defaults.sl_threshold_s,
        priority=q.priority,
        aging_s=q.aging_s or defaults.aging_s,
        max_wait_s=q.max_wait_s or None,
        max_wait_action=_enum(
            checks,
            "queue.max_wait_action",
            _MAX_WAIT_ACTIONS,
            q.max_wait_action,
            defaults.max_wait_action,
        ),
        overflow_queue_id=q.overflow_queue_id or None,
        offer_timeout_s=q.offer_timeout_s or defaults.offer_timeout_s,
        wrap_up_s=q.wrap_up_s,
        strategy=_enum(checks, "queue.strategy", _STRATEGIES, q.strategy, defaults.strategy),
        policy_id=q.policy_id or None,
        preferred_agent_timeout_s=q.preferred_agent_timeout_s,
        not_responding_on_timeout=(
            q.not_responding_on_timeout
            if q.HasField("not_responding_on_timeout")
            else defaults.not_responding_on_timeout
        ),
    )


def _agent_command(request: pb.UpsertAgentRequest, checks: Checks, renames: dict[str, str]) -> Any:
    if not request.HasField("agent"):
        checks.fail("agent", "is required")
        return None
    a = request.agent
    defaults = ConfigureAgent(agent_id=a.agent_id)
    costs: dict[Channel, int] = {}
    for i, cost in enumerate(a.channel_costs):
        channel = _CHANNELS.get(cost.channel)
        if channel is None:
            checks.fail(f"agent.channel_costs[{i}].channel", "must be a channel")
        elif channel in costs:
            checks.fail(f"agent.channel_costs[{i}].channel", "must not repeat a channel")
        else:
            costs[channel] = cost.cost
            renames[f"channel_costs[{channel.value}]"] = f"agent.channel_costs[{i}].cost"
    return ConfigureAgent(
        agent_id=a.agent_id,
        name=a.name,
        skills=_levels(checks, "agent.skills", a.skills, renames),
        languages=tuple(a.languages),
        queues=tuple(a.queues),
        groups=tuple(a.groups),
        channels=_channels(checks, "agent.channels", a.channels, defaults.channels),
        capacity=a.capacity or defaults.capacity,
        channel_costs=costs,
        interruptible_channels=_channels(
            checks,
            "agent.interruptible_channels",
            a.interruptible_channels,
            defaults.interruptible_channels,
        ),
        time_zone=a.time_zone or defaults.time_zone,
    )


def _timestamp(value: Any) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def offer_message(event: OfferIssued) -> pb.Offer:
    return pb.Offer(
        offer_id=event.offer_id,
        interaction_id=event.interaction_id,
        agent_id=event.agent_id,
        queue_id=event.queue_id,
        channel=_CHANNEL_NUMBERS[event.channel],  # type: ignore[arg-type]
        expires_at=_timestamp(event.expires_at),
        cost=event.cost,
        wait_ms=event.wait_ms,
        offered_at=_timestamp(event.occurred_at),
    )


def _agent_state(engine: RoutingEngine, agent_id: str) -> dict[str, Any]:
    view = engine.agent(agent_id)
    return {"state": view.state.value if view is not None else AgentState.OFFLINE.value}


def _state_number(result: Mapping[str, Any]) -> int:
    state = result.get("state")
    return _AGENT_STATES[AgentState(state)] if state else pb.AGENT_STATE_UNSPECIFIED


# --- listing --------------------------------------------------------------------------------


def _page(
    checks: Checks, page: common_pb2.PageRequest, filters: Message | None = None
) -> tuple[int, str | None, str]:
    """The page size, the id the page starts after (None: the first page) and the filter key
    the next token carries: a token only continues the list it came from."""
    key = (
        hashlib.sha256(filters.SerializeToString(deterministic=True)).hexdigest()[:16]
        if filters is not None
        else ""
    )
    if page.page_size < 0:
        checks.fail("page.page_size", "must not be negative")
    size = min(page.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page.page_token:
        return size, None, key
    try:
        raw = base64.urlsafe_b64decode(page.page_token + "=" * (-len(page.page_token) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != _TOKEN_VERSION:
            raise ValueError("unknown token")
        after = data["a"]
        if not isinstance(after, str):
            raise ValueError("bad token")
    except (ValueError, TypeError, KeyError, binascii.Error):
        checks.fail("page.page_token", "is not a page token of this list")
        return size, None, key
    if data.get("f") != key:
        checks.fail("page.page_token", "was issued for other filters; keep the filters when paging")
    return size, after, key


def _token(after: str, key: str) -> str:
    raw = json.dumps({"v": _TOKEN_VERSION, "a": after, "f": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _paged(
    ids: Sequence[str], after: str | None, size: int, keep: Callable[[str], bool]
) -> tuple[list[str], str | None]:
    """The next `size` ids (sorted) after `after` that `keep` accepts, and the last one of them
    when more may follow."""
    found: list[str] = []
    for item in sorted(ids):
        if after is not None and item <= after:
            continue
        if not keep(item):
            continue
        if len(found) == size:
            return found, found[-1]
        found.append(item)
    return found, None


def _skill_levels(levels: Mapping[str, int]) -> list[pb.SkillLevel]:
    return [pb.SkillLevel(skill=skill, proficiency=level) for skill, level in levels.items()]


def _queue_info(engine: RoutingEngine, queue_id: str) -> pb.QueueInfo:
    config = engine.queues[queue_id].config
    snapshot = engine.queue_snapshot(queue_id)
    assert snapshot is not None
    queue = pb.Queue(
        queue_id=config.queue_id,
        name=config.name,
        channels=[_CHANNEL_NUMBERS[c] for c in config.channels],  # type: ignore[misc]
        required_skills=[
            pb.SkillLevel(skill=r.skill, proficiency=r.min_proficiency)
            for r in config.required_skills
        ],
        language=config.language or "",
        sl_target_percent=config.sl_target_percent,
        sl_threshold_s=config.sl_threshold_s,
        priority=config.priority,
        aging_s=config.aging_s,
        max_wait_s=config.max_wait_s or 0,
        max_wait_action=_MAX_WAIT_ACTION_NUMBERS[config.max_wait_action],  # type: ignore[arg-type]
        overflow_queue_id=config.overflow_queue_id or "",
        offer_timeout_s=config.offer_timeout_s,
        wrap_up_s=config.wrap_up_s,
        strategy=_STRATEGY_NUMBERS[config.strategy],  # type: ignore[arg-type]
        policy_id=config.policy_id or "",
        preferred_agent_timeout_s=config.preferred_agent_timeout_s,
        not_responding_on_timeout=config.not_responding_on_timeout,
    )
    return pb.QueueInfo(
        queue=queue,
        config_version=config.config_version,
        waiting=snapshot.waiting,
        offered=snapshot.offered,
        agents=snapshot.agents,
    )


def _agent_info(engine: RoutingEngine, agent_id: str) -> pb.AgentInfo:
    config = engine.agents[agent_id].config
    view = engine.agent(agent_id)
    assert view is not None
    info = pb.AgentInfo(
        state=_AGENT_STATES[view.state],  # type: ignore[arg-type]
        presence=_PRESENCE_NUMBERS.get(view.presence, pb.PRESENCE_UNSPECIFIED),  # type: ignore[arg-type]
        reason_code=view.reason_code or "",
        load=view.load,
        contacts=len(view.work),
    )
    if config is None:
        info.agent.agent_id = agent_id
        return info
    info.config_version = config.config_version
    info.agent.CopyFrom(
        pb.Agent(
            agent_id=config.agent_id,
            name=config.name,
            skills=_skill_levels(config.skills),
            languages=config.languages,
            queues=config.queues,
            groups=config.groups,
            channels=[_CHANNEL_NUMBERS[c] for c in config.channels],  # type: ignore[misc]
            capacity=config.capacity,
            channel_costs=[
                pb.ChannelCost(channel=_CHANNEL_NUMBERS[c], cost=cost)  # type: ignore[arg-type]
                for c, cost in config.channel_costs.items()
            ],
            interruptible_channels=[
                _CHANNEL_NUMBERS[c]  # type: ignore[misc]
                for c in config.interruptible_channels
            ],
            time_zone=config.time_zone,
        )
    )
    return info


# --- the servicer -------------------------------------------------------------------------------


class RoutingServicer(pb_grpc.RoutingServiceServicer):
    """`leases`: the agents' presence leases (None: no lease is kept, nobody is logged off)."""

    def __init__(
        self, application: RoutingApplication, leases: PresenceLeases | None = None
    ) -> None:
        self._app = application
        self._leases = leases

    async def _renew_lease(self, caller: Caller, presence: Presence | None = None) -> None:
        """An agent's own call keeps its lease; its own logout ends it."""
        if self._leases is None or not caller.has_any_role((Role.AGENT,)):
            return
        if presence is Presence.OFFLINE:
            await self._leases.release(caller.tenant_id, caller.subject)
        else:
            await self._leases.renew(caller.tenant_id, caller.subject)

    async def _execute(
        self,
        rpc: str,
        request: Message,
        command: Command,
        caller: Caller,
        *,
        summary: Any = None,
        prefix: str = "",
        renames: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            executed = await self._app.execute(
                caller.tenant_id,
                command,
                request_id=_request_key(rpc, caller, getattr(request, "request_id")),  # noqa: B009
                summary=summary,
            )
        except ValidationFailed as error:
            if (prefix or renames) and not isinstance(error, IdempotencyKeyReused):
                raise _renamed(error, prefix, renames or {}) from None
            raise
        return executed.result

    async def UpsertQueue(
        self, request: pb.UpsertQueueRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertQueueResponse:
        caller = current_caller()
        checks = _start(request)
        renames: dict[str, str] = {}
        command = _queue_command(request, checks, renames)
        checks.done()

        def summary(engine: RoutingEngine, _: Outcome) -> dict[str, Any]:
            snapshot = engine.queue_snapshot(command.queue_id)
            return {"config_version": snapshot.config_version if snapshot else 0}

        result = await self._execute(
            "UpsertQueue",
            request,
            command,
            caller,
            summary=summary,
            prefix="queue.",
            renames=renames,
        )
        return pb.UpsertQueueResponse(config_version=int(result.get("config_version", 0)))

    async def UpsertAgent(
        self, request: pb.UpsertAgentRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertAgentResponse:
        caller = current_caller()
        checks = _start(request)
        renames: dict[str, str] = {}
        command = _agent_command(request, checks, renames)
        checks.done()
        await self._execute(
            "UpsertAgent", request, command, caller, prefix="agent.", renames=renames
        )
        return pb.UpsertAgentResponse()

    async def SetAgentState(
        self, request: pb.SetAgentStateRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetAgentStateResponse:
        caller = current_caller()
        agent_id = _acting_agent(caller, request.agent_id)
        checks = _start(request)
        presence = _enum(checks, "presence", _PRESENCES, request.presence, None)
        if presence is None and request.presence == 0:
            checks.fail("presence", "is required")
        checks.done()
        command = SetAgentState(
            agent_id=agent_id, presence=presence, reason_code=request.reason_code or None
        )
        result = await self._execute(
            "SetAgentState",
            request,
            command,
            caller,
            summary=lambda engine, _: _agent_state(engine, agent_id),
        )
        if agent_id == caller.subject:
            await self._renew_lease(caller, presence)
        return pb.SetAgentStateResponse(state=_state_number(result))  # type: ignore[arg-type]

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> pb.HeartbeatResponse:
        caller = current_caller()
        checks = _start(request)
        checks.done()
        view = await self._app.query(caller.tenant_id, lambda engine: engine.agent(caller.subject))
        if view is None:
            raise NotFound("agent not found", resource_type="agent", resource_name=caller.subject)
        if view.presence is not Presence.OFFLINE:
            await self._renew_lease(caller)
        return pb.HeartbeatResponse(state=_AGENT_STATES[view.state])  # type: ignore[arg-type]

    async def AcceptOffer(
        self, request: pb.AcceptOfferRequest, context: grpc.aio.ServicerContext
    ) -> pb.AcceptOfferResponse:
        caller = current_caller()
        checks = _start(request)
        checks.identifier("offer_id", request.offer_id, required=True)
        checks.done()

        def summary(engine: RoutingEngine, _: Outcome) -> dict[str, Any]:
            explained = engine.explain(request.offer_id)
            return {"interaction_id": explained.interaction_id if explained else ""}

        result = await self._execute(
            "AcceptOffer",
            request,
            AcceptOffer(offer_id=request.offer_id, agent_id=caller.subject),
            caller,
            summary=summary,
        )
        return pb.AcceptOfferResponse(interaction_id=str(result.get("interaction_id", "")))

    async def RejectOffer(
        self, request: pb.RejectOfferRequest, context: grpc.aio.ServicerContext
    ) -> pb.RejectOfferResponse:
        caller = current_caller()
        checks = _start(request)
        checks.identifier("offer_id", request.offer_id, required=True)
        checks.done()
        command = RejectOffer(
            offer_id=request.offer_id,
            agent_id=caller.subject,
            reason_code=request.reason_code or None,
        )
        await self._execute("RejectOffer", request, command, caller)
        return pb.RejectOfferResponse()

    async def EndWrapUp(
        self, request: pb.EndWrapUpRequest, context: grpc.aio.ServicerContext
    ) -> pb.EndWrapUpResponse:
        caller = current_caller()
        checks = _start(request)
        checks.done()
        command = EndWrapUp(agent_id=caller.subject, interaction_id=request.interaction_id or None)
        result = await self._execute(
            "EndWrapUp",
            request,
            command,
            caller,
            summary=lambda engine, _: _agent_state(engine, caller.subject),
        )
        return pb.EndWrapUpResponse(state=_state_number(result))  # type: ignore[arg-type]

    async def GetQueueSnapshot(
        self, request: pb.GetQueueSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetQueueSnapshotResponse:
        caller = current_caller()
        checks = Checks()
        checks.identifier("queue_id", request.queue_id, required=True)
        checks.done()
        snapshot = await self._app.query(
            caller.tenant_id, lambda engine: engine.queue_snapshot(request.queue_id)
        )
        if snapshot is None:
            raise NotFound("queue not found", resource_type="queue", resource_name=request.queue_id)
        return pb.GetQueueSnapshotResponse(
            queue_id=snapshot.queue_id,
            config_version=snapshot.config_version,
            waiting=snapshot.waiting,
            offered=snapshot.offered,
            longest_wait_ms=snapshot.longest_wait_ms,
            agents=snapshot.agents,
            answered=snapshot.answered,
            answered_within_sl=snapshot.answered_within_sl,
            abandoned=snapshot.abandoned,
            exited=snapshot.exited,
            overflowed_in=snapshot.overflowed_in,
            overflowed_out=snapshot.overflowed_out,
            waiting_for_preferred=snapshot.waiting_for_preferred,
        )

    async def ExplainDecision(
        self, request: pb.ExplainDecisionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExplainDecisionResponse:
        caller = current_caller()
        checks = Checks()
        checks.identifier("offer_id", request.offer_id, required=True)
        checks.done()
        event, status = await self._app.query(
            caller.tenant_id,
            lambda engine: (
                engine.explain(request.offer_id),
                engine.offer_status(request.offer_id),
            ),
        )
        only_own = not caller.has_any_role((Role.SUPERVISOR, Role.ADMIN))
        if event is None or (only_own and event.agent_id != caller.subject):
            raise NotFound("offer not found", resource_type="offer", resource_name=request.offer_id)
        decision = event.decision
        return pb.ExplainDecisionResponse(
            offer=offer_message(event),
            status=status or "",
            trigger=decision.trigger.value,
            reason=decision.reason,
            strategy=_STRATEGY_NUMBERS[decision.strategy],  # type: ignore[arg-type]
            policy_id=decision.policy_id or "",
            policy_version=decision.policy_version,
            step=decision.step,
            step_name=decision.step_name,
            preferred=decision.preferred,
            candidates=[
                pb.Candidate(
                    kind=c.kind.value,
                    id=c.id,
                    queue_id=c.queue_id or "",
                    rank=c.rank,
                    score=c.score,
                    detail=c.detail,
                )
                for c in decision.candidates
            ],
            eligible=decision.eligible,
        )

    async def AgentStream(
        self, request: pb.AgentStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AgentStreamResponse]:
        caller = current_caller()
        agent_id = caller.subject
        # Subscribe before reading the open offers, so none issued in between is missed.
        async with self._app.fanout.subscribe(caller.tenant_id, agent_id) as offers:
            pending = await self._app.query(
                caller.tenant_id, lambda engine: engine.pending_offers(agent_id)
            )
            sent = {event.offer_id for event in pending}
            for open_offer in pending:
                yield pb.AgentStreamResponse(offer=offer_message(open_offer))
            # An open stream is a live desktop: it keeps the lease, renewed well within it
            # (on a clock of its own: a steady flow of offers must not put the renewal off).
            renew_every_s = self._leases.ttl_s / 3 if self._leases is not None else None
            loop = asyncio.get_running_loop()
            await self._renew_lease(caller)
            renewed_at = loop.time()
            while True:
                if renew_every_s is not None and loop.time() - renewed_at >= renew_every_s:
                    await self._renew_lease(caller)
                    renewed_at = loop.time()
                try:
                    async with asyncio.timeout_at(
                        renewed_at + renew_every_s if renew_every_s is not None else None
                    ):
                        issued = await offers.get()
                except TimeoutError:
                    continue
                if issued is None:
                    return
                # The same offer may come from this instance's decision and from the store
                # feed (another instance decided it): send it once.
                if issued.offer_id not in sent:
                    sent.add(issued.offer_id)
                    yield pb.AgentStreamResponse(offer=offer_message(issued))

    async def ListQueues(
        self, request: pb.ListQueuesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListQueuesResponse:
        caller = current_caller()
        checks = Checks()
        size, after, key = _page(checks, request.page)
        checks.done()

        def read(engine: RoutingEngine) -> tuple[list[pb.QueueInfo], str | None]:
            ids, last = _paged(list(engine.queues), after, size, lambda _: True)
            return [_queue_info(engine, queue_id) for queue_id in ids], last

        queues, last = await self._app.query(caller.tenant_id, read)
        return pb.ListQueuesResponse(
            queues=queues,
            page=common_pb2.PageResponse(next_page_token=_token(last, key) if last else ""),
        )

    async def ListAgents(
        self, request: pb.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAgentsResponse:
        caller = current_caller()
        checks = Checks()
        states: set[AgentState] = set()
        numbers = {number: state for state, number in _AGENT_STATES.items()}
        for i, number in enumerate(request.states):
            state = numbers.get(number)
            if state is None:
                checks.fail(f"states[{i}]", f"unknown value {number}")
            else:
                states.add(state)
        checks.identifier("queue_id", request.queue_id)
        filters = pb.ListAgentsRequest(states=sorted(request.states), queue_id=request.queue_id)
        size, after, key = _page(checks, request.page, filters)
        checks.done()

        def read(engine: RoutingEngine) -> tuple[list[pb.AgentInfo], str | None]:
            def keep(agent_id: str) -> bool:
                agent = engine.agents[agent_id]
                if states and agent.state not in states:
                    return False
                return not request.queue_id or request.queue_id in agent.queue_set

            ids, last = _paged(list(engine.agents), after, size, keep)
            return [_agent_info(engine, agent_id) for agent_id in ids], last

        agents, last = await self._app.query(caller.tenant_id, read)
        return pb.ListAgentsResponse(
            agents=agents,
            page=common_pb2.PageResponse(next_page_token=_token(last, key) if last else ""),
        )

    async def GetAgent(
        self, request: pb.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAgentResponse:
        caller = current_caller()
        checks = Checks()
        checks.identifier("agent_id", request.agent_id, required=True)
        checks.done()
        info = await self._app.query(
            caller.tenant_id,
            lambda engine: (
                _agent_info(engine, request.agent_id) if request.agent_id in engine.agents else None
            ),
        )
        if info is None:
            raise NotFound("agent not found", resource_type="agent", resource_name=request.agent_id)
        return pb.GetAgentResponse(agent=info)

    async def ReplayDecisions(
        self, request: pb.ReplayDecisionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ReplayDecisionsResponse]:
        caller = current_caller()
        updates: asyncio.Queue[pb.ReplayDecisionsResponse] = asyncio.Queue()

        async def progress(applied: int, total: int) -> None:
            updates.put_nowait(
                pb.ReplayDecisionsResponse(
                    progress=pb.ReplayProgress(events_applied=applied, events_total=total)
                )
            )

        replay = asyncio.ensure_future(self._app.replay(caller.tenant_id, progress=progress))
        try:
            while not replay.done():
                getting = asyncio.ensure_future(updates.get())
                done, _ = await asyncio.wait({getting, replay}, return_when=asyncio.FIRST_COMPLETED)
                if getting in done:
                    yield getting.result()
                else:
                    getting.cancel()
            while not updates.empty():
                yield updates.get_nowait()
            report = replay.result()
        finally:
            replay.cancel()
        yield pb.ReplayDecisionsResponse(
            result=pb.ReplayResult(
                events=report.events,
                decisions=report.decisions,
                live_fingerprint=report.live_fingerprint,
                replayed_fingerprint=report.replayed_fingerprint,
                reproduced=report.reproduced,
                decisions_differing=report.decisions_differing,
            )
        )


def _acting_agent(caller: Caller, agent_id: str) -> str:
    """The agent a state change is for: an agent may only name themselves."""
    if not agent_id or agent_id == caller.subject:
        return agent_id or caller.subject
    if caller.has_any_role((Role.SUPERVISOR, Role.ADMIN)):
        return agent_id
    raise PermissionDenied("an agent may only set their own state")


def _request_key(rpc: str, caller: Caller, request_id: str) -> str:
    """Request ids are the client's: scoped by RPC and caller so two clients never collide."""
    return f"{rpc}:{caller.subject}:{request_id}"


__all__ = ["METHOD_ROLES", "RoutingServicer", "offer_message", "registration"]

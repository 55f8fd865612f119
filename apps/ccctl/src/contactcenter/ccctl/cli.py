"""ccctl: the operator CLI of the contact center.

Exit codes (stable, for scripts):

\b
  0  success
  1  unexpected error (a bug: please report it)
  2  bad input: a flag or argument was refused (by ccctl or by the service: INVALID_ARGUMENT)
  3  not found (an unknown queue, agent, interaction or offer)
  4  a service is unreachable or did not answer in time (UNAVAILABLE, DEADLINE_EXCEEDED)
  5  refused by the current state (FAILED_PRECONDITION, ABORTED, ALREADY_EXISTS)
  6  not allowed (UNAUTHENTICATED, PERMISSION_DENIED: check --tenant, --role, --token)
  7  the service does not offer the call (UNIMPLEMENTED: an older or different service)
  8  a replay did not reproduce the live state (`replay routing`: see its report)
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import grpc
import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.console import Console
from rich.table import Table

from contactcenter.common.v1 import common_pb2
from contactcenter.grpckit import DEV_ONLY_SIGNING_KEY, Role, issue_token, metadata_for
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as ipb_grpc
from contactcenter.profiles.v1 import profiles_pb2 as ppb
from contactcenter.profiles.v1 import profiles_pb2_grpc as ppb_grpc
from contactcenter.reporting.v1 import reporting_pb2 as rep
from contactcenter.reporting.v1 import reporting_pb2_grpc as rep_grpc
from contactcenter.routing.v1 import routing_pb2 as rpb
from contactcenter.routing.v1 import routing_pb2_grpc as rpb_grpc

T = TypeVar("T")


class Exit(IntEnum):
    OK = 0
    ERROR = 1
    BAD_INPUT = 2
    NOT_FOUND = 3
    UNAVAILABLE = 4
    REFUSED = 5
    NOT_ALLOWED = 6
    NOT_INSTALLED = 7
    DIVERGED = 8


_STATUS_EXIT = {
    grpc.StatusCode.INVALID_ARGUMENT: Exit.BAD_INPUT,
    grpc.StatusCode.OUT_OF_RANGE: Exit.BAD_INPUT,
    grpc.StatusCode.NOT_FOUND: Exit.NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE: Exit.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: Exit.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION: Exit.REFUSED,
    grpc.StatusCode.ABORTED: Exit.REFUSED,
    grpc.StatusCode.ALREADY_EXISTS: Exit.REFUSED,
    grpc.StatusCode.UNAUTHENTICATED: Exit.NOT_ALLOWED,
    grpc.StatusCode.PERMISSION_DENIED: Exit.NOT_ALLOWED,
    grpc.StatusCode.UNIMPLEMENTED: Exit.NOT_INSTALLED,
}

out = Console()
err = Console(stderr=True)

HELP = __doc__ or ""
app = typer.Typer(
    name="ccctl",
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
tenants = typer.Typer(help="Tenants: tokens and tenant settings.", no_args_is_help=True)
queues = typer.Typer(
    help="Routing queues: list, create or replace, live snapshot.", no_args_is_help=True
)
agents = typer.Typer(
    help="Agents: list, show, routing profiles (skills, languages, queues) and presence.",
    no_args_is_help=True,
)
agent_skills = typer.Typer(
    help="An agent's skills: set, add or remove (the rest of its profile is kept).",
    no_args_is_help=True,
)
agents.add_typer(agent_skills, name="skills")
skills = typer.Typer(help="Skills of agents and queues.", no_args_is_help=True)
contacts = typer.Typer(help="Interactions (contacts): list and show.", no_args_is_help=True)
report = typer.Typer(help="Reports from the reporting service.", no_args_is_help=True)
for sub, name in (
    (tenants, "tenants"),
    (queues, "queues"),
    (agents, "agents"),
    (skills, "skills"),
    (contacts, "contacts"),
    (report, "report"),
):
    app.add_typer(sub, name=name)
# The singular spellings work too (`ccctl queue list`, `ccctl agent skills add`).
app.add_typer(queues, name="queue", hidden=True)
app.add_typer(agents, name="agent", hidden=True)


@dataclass
class Options:
    tenant: str
    token: str | None
    role: str
    signing_key: str
    interactions: str
    routing: str
    profiles: str
    reporting: str
    bootstrap: str
    timeout: float

    def metadata(self, role: str | None = None, subject: str = "ccctl") -> tuple[tuple[str, str]]:
        token = self.token or issue_token(
            self.tenant, (role or self.role,), subject, key=self.signing_key
        )
        return metadata_for(token)


def fail(message: str, code: Exit) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(int(code))


def _violations(error: grpc.RpcError) -> list[str]:
    try:
        status = rpc_status.from_call(error)
    except Exception:
        return []
    found = []
    for detail in status.details if status is not None else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found += [f"{v.field}: {v.description}" for v in bad.field_violations]
    return found


@contextmanager
def calling(service: str, address: str) -> Iterator[None]:
    """Turns a failed RPC into a clear message and its exit code."""
    try:
        yield
    except grpc.RpcError as exc:
        code = exc.code()
        details = exc.details() or code.name
        exit_code = _STATUS_EXIT.get(code, Exit.ERROR)
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            details = f"{service} at {address} did not answer ({code.name}): {details}"
        elif code is grpc.StatusCode.UNIMPLEMENTED:
            details = f"{service} at {address} does not offer this call: {details}"
        else:
            details = f"{service}: {code.name}: {details}"
        for violation in _violations(exc):
            details += f"\n  {violation}"
        fail(details, exit_code)


def _opts(ctx: typer.Context) -> Options:
    obj = ctx.find_root().obj
    assert isinstance(obj, Options)
    return obj


def _rid() -> str:
    return str(uuid.uuid4())


ROLES = [r.value for r in Role]


@app.callback()
def main_options(
    ctx: typer.Context,
    tenant: Annotated[
        str, typer.Option(envvar="CCCTL_TENANT", help="Tenant every call is scoped to.")
    ] = "sim",
    token: Annotated[
        str | None,
        typer.Option(envvar="CCCTL_TOKEN", help="Bearer token; default: minted with the key."),
    ] = None,
    role: Annotated[
        str, typer.Option(envvar="CCCTL_ROLE", help=f"Role of a minted token: {', '.join(ROLES)}.")
    ] = "admin",
    signing_key: Annotated[
        str,
        typer.Option(
            envvar="CCCTL_SIGNING_KEY",
            help="HS256 key for minted tokens (default: the development key).",
            show_default=False,
        ),
    ] = DEV_ONLY_SIGNING_KEY,
    interactions: Annotated[
        str, typer.Option(envvar="CCCTL_INTERACTIONS", help="interactions gRPC address")
    ] = "127.0.0.1:50051",
    routing: Annotated[
        str, typer.Option(envvar="CCCTL_ROUTING", help="routing gRPC address")
    ] = "127.0.0.1:50052",
    profiles: Annotated[
        str, typer.Option(envvar="CCCTL_PROFILES", help="profiles gRPC address")
    ] = "127.0.0.1:50053",
    reporting: Annotated[
        str, typer.Option(envvar="CCCTL_REPORTING", help="reporting gRPC address")
    ] = "127.0.0.1:50054",
    bootstrap: Annotated[
        str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers")
    ] = "127.0.0.1:9092",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each call.", min=0.1)] = 10.0,
) -> None:
    if role not in ROLES:
        raise typer.BadParameter(
            f"unknown role {role!r} (one of {', '.join(ROLES)})", param_hint="--role"
        )
    if not tenant.strip():
        raise typer.BadParameter("must not be empty", param_hint="--tenant")
    ctx.obj = Options(
        tenant=tenant,
        token=token,
        role=role,
        signing_key=signing_key,
        interactions=interactions,
        routing=routing,
        profiles=profiles,
        reporting=reporting,
        bootstrap=bootstrap,
        timeout=timeout,
    )


# ---------------------------------------------------------------------------------------------
# parsing helpers
# ---------------------------------------------------------------------------------------------

CHANNELS = {
    "voice": common_pb2.CHANNEL_VOICE,
    "email": common_pb2.CHANNEL_EMAIL,
    "chat": common_pb2.CHANNEL_CHAT,
    "sms": common_pb2.CHANNEL_SMS,
    "social": common_pb2.CHANNEL_SOCIAL,
    "video": common_pb2.CHANNEL_VIDEO,
}
CHANNEL_NAMES = {v: k for k, v in CHANNELS.items()}
PRESENCES = {
    "available": rpb.PRESENCE_AVAILABLE,
    "away": rpb.PRESENCE_AWAY,
    "offline": rpb.PRESENCE_OFFLINE,
}
STRATEGIES = {
    "longest-idle": rpb.SELECTION_STRATEGY_LONGEST_IDLE,
    "most-skilled": rpb.SELECTION_STRATEGY_MOST_SKILLED,
    "least-occupied": rpb.SELECTION_STRATEGY_LEAST_OCCUPIED,
    "round-robin": rpb.SELECTION_STRATEGY_ROUND_ROBIN,
    "fewest-contacts-today": rpb.SELECTION_STRATEGY_FEWEST_CONTACTS_TODAY,
}
STATES = {
    name.removeprefix("INTERACTION_STATE_").lower(): value
    for name, value in ipb.InteractionState.items()
    if value
}


def choice(value: str, options: dict[str, T], flag: str) -> T:
    try:
        return options[value.strip().lower()]
    except KeyError:
        raise typer.BadParameter(
            f"{value!r} is not one of {', '.join(options)}", param_hint=flag
        ) from None


def parse_skill(spec: str, flag: str = "--skill") -> tuple[str, int]:
    """`billing:3` (proficiency 1..5) or `billing` (any level)."""
    name, sep, level = spec.partition(":")
    if not name.strip():
        raise typer.BadParameter(f"{spec!r}: expected NAME or NAME:LEVEL", param_hint=flag)
    if not sep:
        return name.strip(), 0
    try:
        value = int(level)
    except ValueError:
        raise typer.BadParameter(
            f"{spec!r}: level {level!r} is not a number", param_hint=flag
        ) from None
    if not 1 <= value <= 5:
        raise typer.BadParameter(f"{spec!r}: level must be 1..5", param_hint=flag)
    return name.strip(), value


def parse_time(value: str, flag: str) -> datetime:
    """ISO 8601 (a naive time is UTC), or `-2h` / `-30m` / `-1d` relative to now, or `now`."""
    now = datetime.now(UTC)
    text = value.strip()
    if text == "now":
        return now
    if text.startswith("-") and text[-1:] in ("m", "h", "d"):
        try:
            amount = float(text[1:-1])
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a time", param_hint=flag) from None
        unit = {"m": "minutes", "h": "hours", "d": "days"}[text[-1]]
        return now - timedelta(**{unit: amount})
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a time (ISO 8601, now, or -30m / -2h / -1d)", param_hint=flag
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _ts(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at.astimezone(UTC))
    return ts


def _when(ts: Timestamp) -> str:
    if not ts.seconds and not ts.nanos:
        return ""
    return ts.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _stub(address: str, factory: Callable[[grpc.Channel], T]) -> tuple[grpc.Channel, T]:
    channel = grpc.insecure_channel(address)
    return channel, factory(channel)


# ---------------------------------------------------------------------------------------------
# tenants
# ---------------------------------------------------------------------------------------------


@tenants.command("token")
def tenant_token(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant the token is for.")],
    role: Annotated[list[str] | None, typer.Option(help="Role (repeatable).")] = None,
    subject: Annotated[
        str, typer.Option(help="The token's subject (an agent id for agents).")
    ] = "ccctl",
    ttl_hours: Annotated[float, typer.Option(min=0.01, help="Hours until it expires.")] = 12.0,
) -> None:
    """Print a bearer token for TENANT_ID signed with the configured key."""
    opts = _opts(ctx)
    roles = role or ["admin"]
    for r in roles:
        choice(r, {x: x for x in ROLES}, "--role")
    if not tenant_id.strip():
        raise typer.BadParameter("must not be empty", param_hint="TENANT_ID")
    out.print(
        issue_token(
            tenant_id, roles, subject, key=opts.signing_key, ttl=timedelta(hours=ttl_hours)
        ),
        soft_wrap=True,
        highlight=False,
    )


@tenants.command("configure")
def tenant_configure(
    ctx: typer.Context,
    default_region: Annotated[str, typer.Option(help="ISO 3166 region for phone numbers.")] = "",
    unmerge_window_days: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Set the tenant's profile settings (default phone region, unmerge window)."""
    opts = _opts(ctx)
    channel, stub = _stub(opts.profiles, ppb_grpc.ProfilesServiceStub)
    with channel, calling("profiles", opts.profiles):
        reply = stub.ConfigureTenant(
            ppb.ConfigureTenantRequest(
                request_id=_rid(),
                default_region=default_region,
                unmerge_window_days=unmerge_window_days,
            ),
            metadata=opts.metadata("admin"),
            timeout=opts.timeout,
        )
    out.print(
        f"tenant {opts.tenant}: default region {reply.default_region or '-'}, "
        f"unmerge window {reply.unmerge_window_days} days"
    )


# ---------------------------------------------------------------------------------------------
# queues, agents, skills
# ---------------------------------------------------------------------------------------------


@queues.command("upsert")
def queue_upsert(
    ctx: typer.Context,
    queue_id: Annotated[str, typer.Argument(help="The queue's id.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    channel: Annotated[
        list[str] | None, typer.Option(help=f"Channel (repeatable): {', '.join(CHANNELS)}.")
    ] = None,
    skill: Annotated[
        list[str] | None, typer.Option(help="Required skill NAME[:LEVEL] (repeatable).")
    ] = None,
    language: Annotated[str, typer.Option(help="BCP 47 language tag.")] = "",
    priority: Annotated[int, typer.Option(min=0, max=100)] = 0,
    sl_target: Annotated[int, typer.Option(min=0, max=100, help="Service level target %.")] = 0,
    sl_threshold: Annotated[int, typer.Option(min=0, help="Service level threshold, seconds.")] = 0,
    wrap_up: Annotated[int, typer.Option(min=0, help="Wrap-up seconds.")] = 0,
    offer_timeout: Annotated[int, typer.Option(min=0, help="Offer timeout, seconds.")] = 0,
    max_wait: Annotated[int, typer.Option(min=0, help="Maximum wait, seconds (0: none).")] = 0,
    overflow_queue: Annotated[str, typer.Option(help="Overflow to this queue at max wait.")] = "",
    strategy: Annotated[
        str, typer.Option(help=f"One of {', '.join(STRATEGIES)}.")
    ] = "longest-idle",
) -> None:
    """Create or replace a queue."""
    opts = _opts(ctx)
    queue = rpb.Queue(
        queue_id=queue_id,
        name=name,
        channels=[choice(c, CHANNELS, "--channel") for c in channel or []],
        required_skills=[
            rpb.SkillLevel(skill=s, proficiency=p) for s, p in map(parse_skill, skill or [])
        ],
        language=language,
        priority=priority,
        sl_target_percent=sl_target,
        sl_threshold_s=sl_threshold,
        wrap_up_s=wrap_up,
        offer_timeout_s=offer_timeout,
        max_wait_s=max_wait,
        max_wait_action=rpb.MAX_WAIT_ACTION_OVERFLOW
        if overflow_queue
        else rpb.MAX_WAIT_ACTION_EXIT,
        overflow_queue_id=overflow_queue,
        strategy=choice(strategy, STRATEGIES, "--strategy"),
    )
    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    with ch, calling("routing", opts.routing):
        reply = stub.UpsertQueue(
            rpb.UpsertQueueRequest(request_id=_rid(), queue=queue),
            metadata=opts.metadata(),
            timeout=opts.timeout,
        )
    out.print(f"queue {queue_id} saved (configuration version {reply.config_version})")


@queues.command("show")
def queue_show(
    ctx: typer.Context, queue_id: Annotated[str, typer.Argument(help="The queue's id.")]
) -> None:
    """The live state of a queue: waiting, offered, agents, answered, abandoned ..."""
    opts = _opts(ctx)
    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    with ch, calling("routing", opts.routing):
        s = stub.GetQueueSnapshot(
            rpb.GetQueueSnapshotRequest(queue_id=queue_id),
            metadata=opts.metadata(),
            timeout=opts.timeout,
        )
    table = Table(title=f"queue {s.queue_id} (config v{s.config_version})")
    for column in (
        "waiting",
        "offered",
        "longest wait",
        "agents",
        "answered",
        "in SL",
        "abandoned",
        "exited",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        str(s.waiting),
        str(s.offered),
        f"{s.longest_wait_ms / 1000:.1f}s",
        str(s.agents),
        str(s.answered),
        str(s.answered_within_sl),
        str(s.abandoned),
        str(s.exited),
    )
    out.print(table)


@agents.command("upsert")
def agent_upsert(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id (its token subject).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    skill: Annotated[list[str] | None, typer.Option(help="Skill NAME:LEVEL (repeatable).")] = None,
    language: Annotated[list[str] | None, typer.Option(help="Language (repeatable).")] = None,
    queue: Annotated[list[str] | None, typer.Option(help="Queue (repeatable).")] = None,
    channel: Annotated[list[str] | None, typer.Option(help="Channel (repeatable).")] = None,
    capacity: Annotated[int, typer.Option(min=0, help="Capacity units (0: default 60).")] = 0,
    time_zone: Annotated[str, typer.Option(help="IANA time zone.")] = "",
) -> None:
    """Create or replace an agent's routing profile."""
    opts = _opts(ctx)
    agent = rpb.Agent(
        agent_id=agent_id,
        name=name,
        skills=[rpb.SkillLevel(skill=s, proficiency=p) for s, p in map(parse_skill, skill or [])],
        languages=language or [],
        queues=queue or [],
        channels=[choice(c, CHANNELS, "--channel") for c in channel or []],
        capacity=capacity,
        time_zone=time_zone,
    )
    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    with ch, calling("routing", opts.routing):
        stub.UpsertAgent(
            rpb.UpsertAgentRequest(request_id=_rid(), agent=agent),
            metadata=opts.metadata(),
            timeout=opts.timeout,
        )
    out.print(f"agent {agent_id} saved")


@agents.command("state")
def agent_state(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    presence: Annotated[str, typer.Argument(help=f"One of {', '.join(PRESENCES)}.")],
    reason: Annotated[str, typer.Option(help="Reason code (e.g. break).")] = "",
) -> None:
    """Set an agent's presence (as a supervisor or admin)."""
    opts = _opts(ctx)
    value = choice(presence, PRESENCES, "PRESENCE")
    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    with ch, calling("routing", opts.routing):
        reply = stub.SetAgentState(
            rpb.SetAgentStateRequest(
                request_id=_rid(), agent_id=agent_id, presence=value, reason_code=reason
            ),
            metadata=opts.metadata(),
            timeout=opts.timeout,
        )
    state = rpb.AgentState.Name(reply.state).removeprefix("AGENT_STATE_").lower()
    out.print(f"agent {agent_id} is {state}")


@skills.command("check")
def skills_check(
    specs: Annotated[list[str], typer.Argument(help="Skills as NAME or NAME:LEVEL.")],
) -> None:
    """Validate skill specs as `--skill` takes them (NAME, or NAME:LEVEL with LEVEL 1..5).

    Skills live on agents and queues: set them with `agents upsert --skill` and
    `queues upsert --skill` (a queue's level is the minimum an agent needs)."""
    for spec in specs:
        name, level = parse_skill(spec, "SPECS")
        out.print(f"{name}: {'any level' if level == 0 else f'level {level}'}")


# ---------------------------------------------------------------------------------------------
# listing queues and agents; skills in use; an agent's skills
# ---------------------------------------------------------------------------------------------

AGENT_STATES = {
    name.removeprefix("AGENT_STATE_").lower().replace("_", "-"): value
    for name, value in rpb.AgentState.items()
    if value
}
AGENT_STATE_NAMES = {v: k for k, v in AGENT_STATES.items()}
PAGE_SIZE = 500


def _json(items: list[Message]) -> None:
    """One JSON array on stdout (protobuf's JSON mapping, field names as in the .proto)."""
    data = [MessageToDict(m, preserving_proto_field_name=True) for m in items]
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _levels(levels: Any) -> str:
    return ", ".join(f"{s.skill}:{s.proficiency}" if s.proficiency else s.skill for s in levels)


def _channels(numbers: Any) -> str:
    return ",".join(CHANNEL_NAMES.get(n, "?") for n in numbers)


def list_queues(opts: Options) -> list[rpb.QueueInfo]:
    """Every queue of the tenant, page after page."""
    found: list[rpb.QueueInfo] = []
    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    token = ""
    with ch, calling("routing", opts.routing):
        while True:
            reply = stub.ListQueues(
                rpb.ListQueuesRequest(
                    page=common_pb2.PageRequest(page_size=PAGE_SIZE, page_token=token)
                ),
                metadata=opts.metadata(),
                timeout=opts.timeout,
            )
            found += reply.queues
            token = reply.page.next_page_token
            if not token:
                return found


def list_agents(
    opts: Options, states: Sequence[rpb.AgentState.ValueType] = (), queue_id: str = ""
) -> list[rpb.AgentInfo]:
    """Every agent of the tenant (in these states, serving this queue), page after page."""
    found: list[rpb.AgentInfo] = []
    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    token = ""
    with ch, calling("routing", opts.routing):
        while True:
            reply = stub.ListAgents(
                rpb.ListAgentsRequest(
                    states=states,
                    queue_id=queue_id,
                    page=common_pb2.PageRequest(page_size=PAGE_SIZE, page_token=token),
                ),
                metadata=opts.metadata(),
                timeout=opts.timeout,
            )
            found += reply.agents
            token = reply.page.next_page_token
            if not token:
                return found


def _get_agent(opts: Options, agent_id: str) -> rpb.AgentInfo:
    if not agent_id.strip():
        raise typer.BadParameter("must not be empty", param_hint="AGENT_ID")
    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    with ch, calling("routing", opts.routing):
        reply: rpb.GetAgentResponse = stub.GetAgent(
            rpb.GetAgentRequest(agent_id=agent_id), metadata=opts.metadata(), timeout=opts.timeout
        )
    return reply.agent


JSON_OPTION = typer.Option("--json", help="Print JSON (protobuf's mapping) instead of a table.")


@queues.command("list")
def queue_list(ctx: typer.Context, as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """Every queue of the tenant: channels, required skills, strategy, waiting, agents."""
    found = list_queues(_opts(ctx))
    if as_json:
        _json(list(found))
        return
    table = Table(title=f"queues of {_opts(ctx).tenant} ({len(found)})")
    for column in ("queue", "name", "channels", "required skills", "strategy", "priority"):
        table.add_column(column)
    for column in ("waiting", "offered", "agents", "config"):
        table.add_column(column, justify="right")
    for info in found:
        q = info.queue
        table.add_row(
            q.queue_id,
            q.name,
            _channels(q.channels),
            _levels(q.required_skills),
            rpb.SelectionStrategy.Name(q.strategy)
            .removeprefix("SELECTION_STRATEGY_")
            .lower()
            .replace("_", "-"),
            str(q.priority),
            str(info.waiting),
            str(info.offered),
            str(info.agents),
            f"v{info.config_version}",
        )
    out.print(table)


@agents.command("list")
def agent_list(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None,
        typer.Option(help=f"Only in this state (repeatable): {', '.join(AGENT_STATES)}."),
    ] = None,
    queue: Annotated[str, typer.Option(help="Only agents serving this queue.")] = "",
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Every agent of the tenant: state, load, skills, queues, channels."""
    opts = _opts(ctx)
    states = [choice(s, AGENT_STATES, "--state") for s in state or []]
    found = list_agents(opts, states, queue)
    if as_json:
        _json(list(found))
        return
    table = Table(title=f"agents of {opts.tenant} ({len(found)})")
    for column in ("agent", "name", "state", "reason", "load", "contacts", "skills", "queues"):
        table.add_column(column, justify="right" if column in ("load", "contacts") else "left")
    table.add_column("channels")
    for info in found:
        a = info.agent
        table.add_row(
            a.agent_id,
            a.name,
            AGENT_STATE_NAMES.get(info.state, "?"),
            info.reason_code,
            f"{info.load}/{a.capacity}" if a.capacity else str(info.load),
            str(info.contacts),
            _levels(a.skills),
            ",".join(a.queues),
            _channels(a.channels),
        )
    out.print(table)


@agents.command("show")
def agent_show(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """One agent's routing profile and live state."""
    info = _get_agent(_opts(ctx), agent_id)
    if as_json:
        sys.stdout.write(
            json.dumps(MessageToDict(info, preserving_proto_field_name=True), indent=2) + "\n"
        )
        return
    a = info.agent
    rows = [
        (
            "state",
            AGENT_STATE_NAMES.get(info.state, "?")
            + (f" ({info.reason_code})" if info.reason_code else ""),
        ),
        ("load", f"{info.load}/{a.capacity} units, {info.contacts} contacts"),
        ("name", a.name),
        ("skills", _levels(a.skills)),
        ("languages", ",".join(a.languages)),
        ("queues", ",".join(a.queues)),
        ("groups", ",".join(a.groups)),
        ("channels", _channels(a.channels)),
        ("time zone", a.time_zone),
        ("profile", f"v{info.config_version}"),
    ]
    table = Table(title=f"agent {a.agent_id}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for field, value in rows:
        table.add_row(field, value)
    out.print(table)


def _agent_levels(specs: list[str], flag: str = "--skill") -> dict[str, int]:
    """NAME:LEVEL specs of an agent's skills (a level is required), each skill once."""
    levels: dict[str, int] = {}
    for spec in specs:
        name, level = parse_skill(spec, flag)
        if level == 0:
            raise typer.BadParameter(
                f"{spec!r}: an agent's skill needs a level: NAME:LEVEL (1..5)", param_hint=flag
            )
        if name in levels:
            raise typer.BadParameter(f"{name!r} is given twice", param_hint=flag)
        levels[name] = level
    return levels


def _save_skills(opts: Options, info: rpb.AgentInfo, levels: dict[str, int], what: str) -> None:
    """Upsert the agent's profile as read, with only its skills replaced."""
    agent = rpb.Agent()
    agent.CopyFrom(info.agent)
    del agent.skills[:]
    agent.skills.extend(
        rpb.SkillLevel(skill=name, proficiency=level) for name, level in sorted(levels.items())
    )
    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    with ch, calling("routing", opts.routing):
        stub.UpsertAgent(
            rpb.UpsertAgentRequest(request_id=_rid(), agent=agent),
            metadata=opts.metadata(),
            timeout=opts.timeout,
        )
    shown = ", ".join(f"{n}:{v}" for n, v in sorted(levels.items())) or "none"
    unchanged = {s.skill: s.proficiency for s in info.agent.skills} == levels
    out.print(
        f"agent {agent.agent_id} skills {'unchanged' if unchanged else what}: {shown}",
        highlight=False,
    )


SKILL_SPECS = typer.Option("--skill", "-s", help="Skill NAME:LEVEL, level 1..5 (repeatable).")


@agent_skills.command("set")
def agent_skills_set(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    skill: Annotated[list[str], SKILL_SPECS],
) -> None:
    """Replace the agent's skills with exactly these."""
    opts = _opts(ctx)
    levels = _agent_levels(skill)
    _save_skills(opts, _get_agent(opts, agent_id), levels, "set")


@agent_skills.command("add")
def agent_skills_add(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    skill: Annotated[list[str], SKILL_SPECS],
) -> None:
    """Add skills to the agent (a skill it has already takes the new level)."""
    opts = _opts(ctx)
    levels = _agent_levels(skill)
    info = _get_agent(opts, agent_id)
    current = {s.skill: s.proficiency for s in info.agent.skills}
    _save_skills(opts, info, current | levels, "updated")


@agent_skills.command("remove")
def agent_skills_remove(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    skill: Annotated[
        list[str], typer.Option("--skill", "-s", help="Skill NAME to remove (repeatable).")
    ],
) -> None:
    """Remove skills from the agent."""
    opts = _opts(ctx)
    names = []
    for spec in skill:
        name, level = parse_skill(spec)
        if level:
            raise typer.BadParameter(f"{spec!r}: give the skill's NAME only", param_hint="--skill")
        names.append(name)
    info = _get_agent(opts, agent_id)
    current = {s.skill: s.proficiency for s in info.agent.skills}
    missing = [n for n in names if n not in current]
    if missing:
        fail(
            f"agent {agent_id} has no skill {', '.join(map(repr, missing))} "
            f"(it has: {', '.join(sorted(current)) or 'none'})",
            Exit.NOT_FOUND,
        )
    _save_skills(opts, info, {n: v for n, v in current.items() if n not in names}, "updated")


@skills.command("list")
def skills_list(
    ctx: typer.Context,
    skill: Annotated[str, typer.Option(help="Only this skill.")] = "",
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Skills in use across the tenant's queues and agents: which queues require each (and at
    which minimum), which agents have it (at which level), and how many qualify."""
    opts = _opts(ctx)
    found_queues, found_agents = list_queues(opts), list_agents(opts)
    required: dict[str, dict[str, int]] = {}
    held: dict[str, dict[str, int]] = {}
    for q in found_queues:
        for r in q.queue.required_skills:
            required.setdefault(r.skill, {})[q.queue.queue_id] = r.proficiency
    for a in found_agents:
        for s in a.agent.skills:
            held.setdefault(s.skill, {})[a.agent.agent_id] = s.proficiency
    names = sorted(set(required) | set(held))
    if skill:
        if skill not in names:
            fail(f"no queue or agent of {opts.tenant} uses skill {skill!r}", Exit.NOT_FOUND)
        names = [skill]
    rows: list[dict[str, Any]] = [
        {
            "skill": name,
            "queues": dict(sorted(required.get(name, {}).items())),
            "agents": dict(sorted(held.get(name, {}).items())),
        }
        for name in names
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"skills of {opts.tenant} ({len(rows)})")
    table.add_column("skill")
    table.add_column("required by (minimum)")
    table.add_column("agents (level)")
    table.add_column("qualified", justify="right")
    for row in rows:
        queues_of: dict[str, int] = row["queues"]
        agents_of: dict[str, int] = row["agents"]
        floor = max(queues_of.values(), default=0)
        qualified = sum(1 for level in agents_of.values() if level >= floor)
        table.add_row(
            row["skill"],
            ", ".join(f"{q}:{lvl}" if lvl else q for q, lvl in queues_of.items()) or "-",
            ", ".join(f"{a}:{lvl}" for a, lvl in agents_of.items()) or "-",
            f"{qualified}/{len(agents_of)}",
        )
    out.print(table)
    err.print(
        "qualified: agents at or above the highest minimum any queue requires", highlight=False
    )


# ---------------------------------------------------------------------------------------------
# contacts
# ---------------------------------------------------------------------------------------------


@contacts.command("list")
def contacts_list(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None, typer.Option(help=f"State (repeatable): {', '.join(STATES)}.")
    ] = None,
    channel: Annotated[list[str] | None, typer.Option(help="Channel (repeatable).")] = None,
    queue: Annotated[str, typer.Option(help="Queue id.")] = "",
    agent: Annotated[str, typer.Option(help="Agent id.")] = "",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """The newest interactions, filtered."""
    opts = _opts(ctx)
    request = ipb.ListInteractionsRequest(
        states=[choice(s, STATES, "--state") for s in state or []],
        channels=[choice(c, CHANNELS, "--channel") for c in channel or []],
        queue_id=queue,
        agent_id=agent,
        page=common_pb2.PageRequest(page_size=limit),
    )
    ch, stub = _stub(opts.interactions, ipb_grpc.InteractionsServiceStub)
    with ch, calling("interactions", opts.interactions):
        reply = stub.ListInteractions(request, metadata=opts.metadata(), timeout=opts.timeout)
    table = Table(title=f"interactions of {opts.tenant}")
    for column in ("id", "channel", "state", "queue", "agent", "created"):
        table.add_column(column)
    for i in reply.interactions[:limit]:
        table.add_row(
            i.interaction_id,
            CHANNEL_NAMES.get(i.channel, "?"),
            ipb.InteractionState.Name(i.state).removeprefix("INTERACTION_STATE_").lower(),
            i.queue_id,
            i.agent_id,
            _when(i.create_time),
        )
    out.print(table)


# ---------------------------------------------------------------------------------------------
# explain, tail
# ---------------------------------------------------------------------------------------------


@app.command("explain")
def explain(
    ctx: typer.Context, offer_id: Annotated[str, typer.Argument(help="The offer's id.")]
) -> None:
    """Explain a routing decision: why an offer went to its agent."""
    opts = _opts(ctx)
    if not offer_id.strip():
        raise typer.BadParameter("must not be empty", param_hint="OFFER_ID")
    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    with ch, calling("routing", opts.routing):
        e = stub.ExplainDecision(
            rpb.ExplainDecisionRequest(offer_id=offer_id),
            metadata=opts.metadata(),
            timeout=opts.timeout,
        )
    o = e.offer
    strategy = rpb.SelectionStrategy.Name(e.strategy).removeprefix("SELECTION_STRATEGY_").lower()
    out.print(
        f"offer {o.offer_id}: interaction {o.interaction_id} in queue {o.queue_id} "
        f"({CHANNEL_NAMES.get(o.channel, '?')}) -> agent {o.agent_id} [{e.status}]",
        highlight=False,
    )
    out.print(
        f"trigger {e.trigger}; strategy {strategy}; policy {e.policy_id or '-'} "
        f"v{e.policy_version} step {e.step} {e.step_name}; preferred {e.preferred}; "
        f"{e.eligible} eligible; waited {o.wait_ms / 1000:.1f}s",
        highlight=False,
    )
    if e.reason:
        out.print(f"reason: {e.reason}", highlight=False)
    table = Table(title="candidates (best first)")
    for column in ("rank", "kind", "id", "queue", "score", "detail"):
        table.add_column(column)
    for c in e.candidates:
        table.add_row(str(c.rank), c.kind, c.id, c.queue_id, f"{c.score:.3f}", c.detail)
    out.print(table)


@app.command("tail")
def tail(
    ctx: typer.Context,
    context: Annotated[
        str, typer.Argument(help="interactions, routing, profiles, email, reporting or wfm.")
    ],
    from_beginning: Annotated[
        bool, typer.Option(help="Start at the oldest event, not the newest.")
    ] = False,
    all_tenants: Annotated[
        bool, typer.Option(help="Every tenant's events, not only --tenant.")
    ] = False,
    count: Annotated[int, typer.Option(min=0, help="Stop after this many lines (0: never).")] = 0,
    idle_timeout: Annotated[
        float, typer.Option(min=0, help="Stop after this many quiet seconds (0: never).")
    ] = 0.0,
    dlq: Annotated[bool, typer.Option(help="Tail the dead-letter topic instead.")] = False,
) -> None:
    """Follow a context's event stream (cc.<context>.events.v1), one readable line per event."""
    from contactcenter.ccctl.tail import run_tail
    from contactcenter.contracts.topics import CONTEXTS, topic_for

    opts = _opts(ctx)
    if context not in CONTEXTS:
        raise typer.BadParameter(
            f"{context!r} is not one of {', '.join(CONTEXTS)}", param_hint="CONTEXT"
        )
    topic = topic_for(context)
    try:
        printed = asyncio.run(
            run_tail(
                bootstrap=opts.bootstrap,
                topic=topic.dlq if dlq else topic.name,
                tenant=None if all_tenants else opts.tenant,
                from_beginning=from_beginning,
                count=count,
                idle_timeout=idle_timeout,
                connect_timeout=opts.timeout,
                emit=lambda line: out.print(line, highlight=False, soft_wrap=True),
            )
        )
    except KeyboardInterrupt:
        return
    except ConnectionError as exc:
        fail(f"Kafka at {opts.bootstrap} did not answer: {exc}", Exit.UNAVAILABLE)
    except LookupError as exc:
        fail(str(exc).strip("'\""), Exit.NOT_FOUND)
    if count and printed < count:
        fail(f"only {printed} of {count} events before {idle_timeout:g}s of quiet", Exit.NOT_FOUND)


# ---------------------------------------------------------------------------------------------
# reporting: interval CSV export, rebuild of the read models
# ---------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "queue_id",
    "channel",
    "interval_start",
    "interval_minutes",
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
    "service_level_threshold_s",
    "short_abandon_threshold_s",
)


@report.command("intervals")
def report_intervals(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="Start (ISO 8601, now, -2h, -1d).")] = "-1d",
    end: Annotated[str, typer.Option("--to", help="End, exclusive (ISO 8601, now, -1h).")] = "now",
    interval: Annotated[int, typer.Option(help="Bucket minutes: 15 or 30.")] = 15,
    queue: Annotated[
        list[str] | None, typer.Option(help="Queue id (repeatable; default all).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV file (default: stdout).")
    ] = None,
    page_size: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
) -> None:
    """Export interval history (per queue, channel and bucket) as CSV."""
    opts = _opts(ctx)
    if interval not in (15, 30):
        raise typer.BadParameter(f"{interval} is not 15 or 30", param_hint="--interval")
    since, until = parse_time(start, "--from"), parse_time(end, "--to")
    if until <= since:
        raise typer.BadParameter("must be after --from", param_hint="--to")
    rows = 0
    sink = output.open("w", newline="") if output else sys.stdout
    try:
        writer = csv.writer(sink)
        writer.writerow(CSV_COLUMNS)
        ch, stub = _stub(opts.reporting, rep_grpc.ReportingServiceStub)
        token = ""
        with ch, calling("reporting", opts.reporting):
            while True:
                reply = stub.IntervalHistory(
                    rep.IntervalHistoryRequest(
                        queue_ids=queue or [],
                        range=common_pb2.TimeRange(start_time=_ts(since), end_time=_ts(until)),
                        interval_minutes=interval,
                        page=common_pb2.PageRequest(page_size=page_size, page_token=token),
                    ),
                    metadata=opts.metadata(),
                    timeout=opts.timeout,
                )
                for r in reply.records:
                    writer.writerow(
                        [
                            r.queue_id,
                            CHANNEL_NAMES.get(r.channel, ""),
                            _when(r.interval_start),
                            *(getattr(r, c) for c in CSV_COLUMNS[3:]),
                        ]
                    )
                    rows += 1
                token = reply.page.next_page_token
                if not token:
                    break
    finally:
        if output:
            sink.close()
    if output:
        err.print(f"{rows} interval rows written to {output}", highlight=False)


REPORTING_DB = typer.Option(
    envvar="CC_REPORTING_DATABASE_URL",
    help="reporting's database (default: the reporting service's own default).",
    show_default=False,
)
REPORTING_SCHEMA = typer.Option(envvar="CC_REPORTING_DB_SCHEMA", help="reporting's schema.")


def _rebuild_reporting(database_url: str | None, schema: str) -> None:
    """reporting's rebuild (the service's own code), its progress bar on stderr."""
    import asyncpg

    from contactcenter.reporting.config import ReportingSettings
    from contactcenter.reporting.projections.rebuild import rebuild_with_progress, summary

    url = database_url or ReportingSettings().database_url
    try:
        result = asyncio.run(rebuild_with_progress(url, schema, console=err))
    except asyncpg.InvalidCatalogNameError as exc:
        fail(f"reporting's database: {exc}", Exit.NOT_FOUND)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        fail(f"reporting's database refused the login: {exc}", Exit.NOT_ALLOWED)
    except (OSError, asyncpg.CannotConnectNowError) as exc:
        fail(f"reporting's database did not answer: {exc}", Exit.UNAVAILABLE)
    except asyncpg.InterfaceError as exc:
        fail(f"reporting's database: {exc}", Exit.BAD_INPUT)
    out.print(summary(result), highlight=False)


@app.command("rebuild")
def rebuild(
    database_url: Annotated[str | None, REPORTING_DB] = None,
    schema: Annotated[str, REPORTING_SCHEMA] = "reporting",
) -> None:
    """Rebuild reporting's read models (every tenant) from the events it consumed, without
    downtime: the running service swaps the new tables in. Same as
    `python -m contactcenter.reporting rebuild`."""
    _rebuild_reporting(database_url, schema)


def _replay_routing(opts: Options) -> rpb.ReplayResult:
    """routing's ReplayDecisions for the tenant, its progress as a bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    ch, stub = _stub(opts.routing, rpb_grpc.RoutingServiceStub)
    result: rpb.ReplayResult | None = None
    with (
        ch,
        calling("routing", opts.routing),
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
        ) as bar,
    ):
        task = bar.add_task(f"replaying routing events of {opts.tenant}", total=None)
        # No deadline on the whole stream (a big tenant takes a while); connecting has one.
        try:
            grpc.channel_ready_future(ch).result(timeout=opts.timeout)
        except grpc.FutureTimeoutError:
            fail(
                f"routing at {opts.routing} did not answer within {opts.timeout:g}s",
                Exit.UNAVAILABLE,
            )
        for update in stub.ReplayDecisions(
            rpb.ReplayDecisionsRequest(), metadata=opts.metadata("admin")
        ):
            if update.HasField("progress"):
                p = update.progress
                bar.update(task, completed=p.events_applied, total=p.events_total)
            else:
                result = update.result
    if result is None:
        fail("routing ended the replay without a result", Exit.ERROR)
    return result


REPLAY_TARGETS = {
    "reporting": "reporting's read models (queue, agent and channel stats, wallboard, "
    "interval history): rebuilt from the events and swapped in",
    "routing": "routing's decisions: the tenant's state rebuilt from its events alone and "
    "compared with the live state (equal fingerprints: the same decisions, bit for bit)",
}


@app.command("replay")
def replay(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="What to replay: reporting or routing.")],
    tenant: Annotated[
        str | None, typer.Option(help="routing: the tenant (default: the global --tenant).")
    ] = None,
    database_url: Annotated[str | None, REPORTING_DB] = None,
    schema: Annotated[str, REPORTING_SCHEMA] = "reporting",
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Replay events through what derives from them, with a progress bar.

    \b
    reporting  rebuild reporting's read models (every tenant) from the events it consumed,
               then swap them into the running service (the same as `ccctl rebuild`)
    routing    rebuild the tenant's routing state from its event stream alone (no snapshot)
               in the routing service and compare it with the live state: exit 0 when it
               reproduces bit for bit (so every decision would be made again the same way),
               exit 8 when it does not"""
    opts = _opts(ctx)
    name = target.strip().lower()
    if name not in REPLAY_TARGETS:
        raise typer.BadParameter(
            f"{target!r} is not one of {', '.join(REPLAY_TARGETS)}", param_hint="TARGET"
        )
    if name == "reporting":
        if tenant is not None:
            raise typer.BadParameter(
                "reporting's read models are rebuilt for every tenant at once",
                param_hint="--tenant",
            )
        _rebuild_reporting(database_url, schema)
        return
    if tenant is not None:
        if not tenant.strip():
            raise typer.BadParameter("must not be empty", param_hint="--tenant")
        opts.tenant = tenant
    r = _replay_routing(opts)
    if as_json:
        sys.stdout.write(
            json.dumps(
                MessageToDict(
                    r,
                    preserving_proto_field_name=True,
                    always_print_fields_with_no_presence=True,
                ),
                indent=2,
            )
            + "\n"
        )
    else:
        verdict = "reproduced bit for bit" if r.reproduced else "DID NOT reproduce"
        out.print(
            f"routing of {opts.tenant}: {r.events} events, {r.decisions} decisions replayed; "
            f"{verdict}",
            highlight=False,
        )
        out.print(f"live fingerprint     {r.live_fingerprint}", highlight=False)
        out.print(f"replayed fingerprint {r.replayed_fingerprint}", highlight=False)
        if r.decisions_differing:
            out.print(f"{r.decisions_differing} explained decisions differ", highlight=False)
    if not r.reproduced:
        fail(
            f"routing of {opts.tenant}: the state rebuilt from the events differs from the "
            "live state (a bug or a lost event: keep the stream and report it)",
            Exit.DIVERGED,
        )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)

"""The simulator's driver: plays the model against the real services over gRPC (and SMTP).

- setup: one queue per channel and every agent's routing profile (routing, admin token);
- customers: at their arrival time, resolve the customer's profile (profiles, when present),
  create and enqueue the interaction (interactions, as a gateway: SERVICE token), and abandon it
  when their patience runs out before an agent connects; emails go through the email service's
  SMTP listener when it answers;
- agents: each one logs in at the start of its shift (AVAILABLE + AgentStream), takes breaks and
  lunch (AWAY), accepts its offers, connects, talks for the drawn handle time, ends, wraps up
  and completes, and logs out at the end of its shift.

Every mutating call carries a fresh request id, reused on retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import smtplib
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, TypeVar

import grpc

from contactcenter.common.v1 import common_pb2
from contactcenter.email.v1 import email_pb2 as epb
from contactcenter.email.v1 import email_pb2_grpc as epb_grpc
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as ipb_grpc
from contactcenter.profiles.v1 import profiles_pb2 as ppb
from contactcenter.profiles.v1 import profiles_pb2_grpc as ppb_grpc
from contactcenter.routing.v1 import routing_pb2 as rpb
from contactcenter.routing.v1 import routing_pb2_grpc as rpb_grpc
from contactcenter.simulator.model import (
    LIVE_CHANNELS,
    Activity,
    AgentPlan,
    Arrival,
    ArrivalModel,
    Channel,
    HandlingModel,
    Roster,
    SimClock,
)

_log = logging.getLogger("contactcenter.simulator")
T = TypeVar("T")

PROTO_CHANNEL = {
    Channel.VOICE: common_pb2.CHANNEL_VOICE,
    Channel.CHAT: common_pb2.CHANNEL_CHAT,
    Channel.EMAIL: common_pb2.CHANNEL_EMAIL,
    Channel.SMS: common_pb2.CHANNEL_SMS,
}
CHANNEL_OF = {v: k for k, v in PROTO_CHANNEL.items()}
#: Queue ids: one per channel.
QUEUE_OF = {c: f"sim-{c.value}" for c in Channel}
_WAITING = frozenset(
    {ipb.INTERACTION_STATE_QUEUED, ipb.INTERACTION_STATE_OFFERED, ipb.INTERACTION_STATE_ASSIGNED}
)
_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}


@dataclass(frozen=True)
class Endpoints:
    interactions: str
    routing: str
    profiles: str | None = None
    #: The email service's gRPC API (where the simulator registers its mailbox), if any.
    email: str | None = None
    #: host:port of the email service's SMTP listener (None: email traffic is off).
    smtp: str | None = None
    #: Where simulated emails are addressed (a mailbox registered with the email service).
    mailbox: str = "support@sim.example.com"


@dataclass
class Stats:
    arrived: int = 0
    created: int = 0
    emails_sent: int = 0
    offers: int = 0
    accepted: int = 0
    connected: int = 0
    completed: int = 0
    abandoned: int = 0
    errors: int = 0
    agents_working: int = 0
    agents_away: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)

    def line(self, sim_now: datetime) -> str:
        mix = " ".join(f"{k}={v}" for k, v in sorted(self.by_channel.items()))
        return (
            f"sim {sim_now:%a %H:%M} UTC | arrived {self.arrived} ({mix}) | "
            f"answered {self.connected} | completed {self.completed} | "
            f"abandoned {self.abandoned} | agents on {self.agents_working}, "
            f"away {self.agents_away} | errors {self.errors}"
        )


#: How long a simulated client keeps retrying a transient failure: long enough to ride out a
#: service restart (an agent's desktop does not drop a contact it accepted because the
#: interactions service restarted; that left agents busy forever in the chaos test).
RETRY_WITHIN_S = 120.0


async def _retry(call: Callable[[], Awaitable[T]], within_s: float = RETRY_WITHIN_S) -> T:
    """A mutating call with the same request id, retried on transient failures."""
    delay = 0.2
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _RETRYABLE or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 3.0)


def tcp_answers(address: str, timeout: float = 0.5) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _rid() -> str:
    return str(uuid.uuid4())


class Simulation:
    def __init__(
        self,
        *,
        endpoints: Endpoints,
        tenant_id: str,
        clock: SimClock,
        arrivals: ArrivalModel,
        roster: Roster,
        seed: int,
        tick_s: float = 1.0,
        status_every_s: float = 10.0,
        say: Callable[[str], None] = print,
    ) -> None:
        self.endpoints = endpoints
        self.tenant_id = tenant_id
        self.clock = clock
        self.arrivals = arrivals
        self.roster = roster
        self.handling = HandlingModel(random.Random(seed + 1))
        self.rng = random.Random(seed + 2)
        self.tick_s = tick_s
        self.status_every_s = status_every_s
        self.say = say
        self.stats = Stats()
        self._answered: dict[str, asyncio.Event] = {}
        self._intents: dict[str, str] = {}
        #: What each agent is doing now (None: off shift), for a desktop that logs in again.
        self._activity: dict[str, Activity | None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._admin = metadata_for(issue_token(tenant_id, (Role.ADMIN,), "simulator-admin"))
        self._gateway = metadata_for(
            issue_token(tenant_id, (Role.SERVICE,), "simulator-gateway", ttl=timedelta(days=7))
        )
        self._email_off_logged = False
        self._smtp_up = False
        self._smtp_probed = -1e9

    # --- plumbing ------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.stats.errors += 1
            _log.warning("simulated actor failed: %r", exc)

    async def _sleep_sim(self, sim_seconds: float) -> None:
        await asyncio.sleep(self.clock.wall_seconds(sim_seconds))

    async def _sleep_until(self, sim_at: datetime) -> None:
        delay = self.clock.wall_at(sim_at) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def sim_now(self) -> datetime:
        return self.clock.sim_at(time.monotonic())

    # --- run -----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, duration_s: float | None = None) -> Stats:
        async with (
            grpc.aio.insecure_channel(self.endpoints.interactions) as ich,
            grpc.aio.insecure_channel(self.endpoints.routing) as rch,
            contextlib.AsyncExitStack() as stack,
        ):
            self.interactions = ipb_grpc.InteractionsServiceStub(ich)
            self.routing = rpb_grpc.RoutingServiceStub(rch)
            self.profiles: ppb_grpc.ProfilesServiceStub | None = None
            if self.endpoints.profiles:
                pch = await stack.enter_async_context(
                    grpc.aio.insecure_channel(self.endpoints.profiles)
                )
                self.profiles = ppb_grpc.ProfilesServiceStub(pch)
            await self.setup()
            if self.endpoints.smtp is None:
                self.say("email traffic is off: no SMTP listener configured")
                self._email_off_logged = True
            else:
                await self._smtp_target()
            for plan in self.roster.agents:
                self._spawn(self._agent(plan, stop))
            self._spawn(self._status(stop))
            deadline = None if duration_s is None else time.monotonic() + duration_s
            window_start = self.sim_now()
            try:
                while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.tick_s)
                    window_end = self.sim_now()
                    for arrival in self.arrivals.between(window_start, window_end):
                        self._spawn(self._customer(arrival))
                    window_start = window_end
            finally:
                stop.set()
                await self._shutdown()
        return self.stats

    async def _shutdown(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.say(self.stats.line(self.sim_now()))

    async def _status(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.status_every_s)
            self.say(self.stats.line(self.sim_now()))

    # --- setup ---------------------------------------------------------------------------------

    async def setup(self) -> None:
        for channel, queue_id in QUEUE_OF.items():
            queue = rpb.Queue(
                queue_id=queue_id,
                name=f"Simulated {channel.value}",
                channels=[PROTO_CHANNEL[channel]],
                sl_target_percent=80,
                sl_threshold_s=20 if channel in LIVE_CHANNELS else 3600,
                offer_timeout_s=30,
                # The simulated agent completes its wrap-up itself; this only frees an agent
                # whose simulator died.
                wrap_up_s=600,
            )
            await self._upsert_queue(rpb.UpsertQueueRequest(request_id=_rid(), queue=queue))
        for plan in self.roster.agents:
            agent = rpb.Agent(
                agent_id=plan.agent_id,
                name=plan.name,
                skills=[rpb.SkillLevel(skill=s, proficiency=p) for s, p in plan.skills.items()],
                languages=list(plan.languages),
                queues=[QUEUE_OF[c] for c in plan.channels],
                channels=[PROTO_CHANNEL[c] for c in plan.channels],
                time_zone=plan.time_zone,
            )
            await self._upsert_agent(rpb.UpsertAgentRequest(request_id=_rid(), agent=agent))
        if self.endpoints.email:
            await self._register_mailbox(self.endpoints.email)
        self.say(
            f"simulator: tenant {self.tenant_id}, {len(self.roster.agents)} agents, queues "
            + ", ".join(QUEUE_OF.values())
        )

    async def _register_mailbox(self, address: str) -> None:
        """The simulated customers' emails go to this tenant's mailbox, routed to the email
        queue (the email service refuses mail for a mailbox nobody registered)."""
        routing = epb.MailboxRouting(queue_id=QUEUE_OF[Channel.EMAIL])
        mailbox = self.endpoints.mailbox
        async with grpc.aio.insecure_channel(address) as channel:
            email = epb_grpc.EmailServiceStub(channel)
            try:
                await _retry(
                    lambda: email.RegisterMailbox(
                        epb.RegisterMailboxRequest(
                            request_id=f"sim-mailbox:{mailbox}", address=mailbox, routing=routing
                        ),
                        metadata=self._admin,
                    )
                )
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise
                await _retry(
                    lambda: email.SetMailboxRouting(
                        epb.SetMailboxRoutingRequest(
                            request_id=_rid(), address=mailbox, routing=routing
                        ),
                        metadata=self._admin,
                    )
                )
        self.say(f"email: mailbox {mailbox} of tenant {self.tenant_id} -> {routing.queue_id}")

    async def _upsert_queue(self, request: rpb.UpsertQueueRequest) -> None:
        await _retry(lambda: self.routing.UpsertQueue(request, metadata=self._admin))

    async def _upsert_agent(self, request: rpb.UpsertAgentRequest) -> None:
        await _retry(lambda: self.routing.UpsertAgent(request, metadata=self._admin))

    # --- customers -----------------------------------------------------------------------------

    async def _customer(self, arrival: Arrival) -> None:
        await self._sleep_until(arrival.at)
        if arrival.channel is Channel.EMAIL:
            if await self._email(arrival):
                self._count(arrival)
            return
        self._count(arrival)
        profile_id = await self._profile(arrival)
        request = ipb.CreateInteractionRequest(
            request_id=_rid(),
            channel=PROTO_CHANNEL[arrival.channel],
            customer_profile_id=profile_id,
            customer_address=arrival.customer_address,
            entry_point=f"sim-{arrival.channel.value}",
            language=arrival.language,
            intent=arrival.intent,
            attributes={"simulated": "true"},
            queue=ipb.QueueTarget(
                queue_id=QUEUE_OF[arrival.channel],
                priority=arrival.priority,
                required_skills=[
                    ipb.SkillRequirement(
                        skill=arrival.skill, min_proficiency=arrival.min_proficiency
                    )
                ],
                language=arrival.language,
                intent=arrival.intent,
            ),
        )
        response = await _retry(
            lambda: self.interactions.CreateInteraction(request, metadata=self._gateway)
        )
        interaction_id = response.result.interaction_id
        self.stats.created += 1
        if arrival.patience_s is None:
            return
        answered = self._answered.setdefault(interaction_id, asyncio.Event())
        self._intents[interaction_id] = arrival.intent
        try:
            await asyncio.wait_for(answered.wait(), self.clock.wall_seconds(arrival.patience_s))
        except TimeoutError:
            abandon = ipb.AbandonRequest(
                request_id=_rid(), interaction_id=interaction_id, reason="customer_hangup"
            )
            try:
                await _retry(lambda: self.interactions.Abandon(abandon, metadata=self._gateway))
                self.stats.abandoned += 1
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise  # else: an agent connected at the same moment
        finally:
            self._answered.pop(interaction_id, None)

    def _count(self, arrival: Arrival) -> None:
        self.stats.arrived += 1
        channel = arrival.channel.value
        self.stats.by_channel[channel] = self.stats.by_channel.get(channel, 0) + 1

    async def _profile(self, arrival: Arrival) -> str:
        if self.profiles is None:
            return ""
        kind = {
            Channel.VOICE: ppb.IDENTITY_KIND_PHONE,
            Channel.SMS: ppb.IDENTITY_KIND_PHONE,
            Channel.CHAT: ppb.IDENTITY_KIND_CHAT,
        }[arrival.channel]
        identity = ppb.Identity(kind=kind, value=arrival.customer_address)
        if arrival.channel is Channel.CHAT:
            identity.namespace = "sim-widget"
        request = ppb.ResolveIdentityRequest(request_id=_rid(), identity=identity)
        try:
            reply = await _retry(
                lambda: self.profiles.ResolveIdentity(  # type: ignore[union-attr]
                    request, metadata=self._gateway
                )
            )
        except grpc.aio.AioRpcError as exc:
            _log.info("profile not resolved (%s): %s", exc.code().name, exc.details())
            return ""
        return str(reply.profile_id)

    async def _smtp_target(self) -> str | None:
        """The SMTP listener, when it answers (probed again at most every 30 s while off)."""
        if self.endpoints.smtp is None:
            return None
        if self._smtp_up:
            return self.endpoints.smtp
        if time.monotonic() - self._smtp_probed < 30.0:
            return None
        self._smtp_probed = time.monotonic()
        self._smtp_up = await asyncio.to_thread(tcp_answers, self.endpoints.smtp)
        if self._smtp_up:
            self.say(f"email traffic is on: sending through SMTP {self.endpoints.smtp}")
        elif not self._email_off_logged:
            self._email_off_logged = True
            self.say(f"email traffic is off: nothing answers on SMTP {self.endpoints.smtp}")
        return self.endpoints.smtp if self._smtp_up else None

    async def _email(self, arrival: Arrival) -> bool:
        """Sends the customer's email; False when email traffic is off or sending failed."""
        target = await self._smtp_target()
        if target is None:
            return False
        host, _, port = target.rpartition(":")
        message = EmailMessage()
        message["From"] = arrival.customer_address
        message["To"] = self.endpoints.mailbox
        message["Subject"] = f"[{arrival.intent}] question #{arrival.seq}"
        message["Message-ID"] = f"<sim-{uuid.uuid4().hex}@example.com>"
        message["Content-Language"] = arrival.language
        message.set_content(f"Hello, I have a {arrival.intent} question (simulated).\n")

        def send() -> None:
            with smtplib.SMTP(host, int(port), timeout=10) as smtp:
                smtp.send_message(message)

        try:
            await asyncio.to_thread(send)
        except (OSError, smtplib.SMTPException) as exc:
            self.stats.errors += 1
            self._smtp_up = False
            _log.warning("email not sent through SMTP %s: %s", self.endpoints.smtp, exc)
            return False
        self.stats.emails_sent += 1
        return True

    # --- agents --------------------------------------------------------------------------------

    async def _agent(self, plan: AgentPlan, stop: asyncio.Event) -> None:
        md = metadata_for(
            issue_token(self.tenant_id, (Role.AGENT,), plan.agent_id, ttl=timedelta(days=7))
        )
        seen: set[str] = set()
        stream_task: asyncio.Task[None] | None = None
        state: Activity | None = None
        try:
            while not stop.is_set():
                now = self.sim_now()
                activity = plan.activity_at(now)
                if activity != state:
                    await self._transition(plan, md, state, activity)
                    if activity is not None and stream_task is None:
                        stream_task = asyncio.ensure_future(self._offers(plan, md, seen))
                    elif activity is None and stream_task is not None:
                        stream_task.cancel()
                        stream_task = None
                    state = self._activity[plan.agent_id] = activity
                await self._sleep_until(plan.next_change(now) + timedelta(seconds=1))
        finally:
            if stream_task is not None:
                stream_task.cancel()

    async def _transition(
        self,
        plan: AgentPlan,
        md: tuple[tuple[str, str]],
        before: Activity | None,
        after: Activity | None,
        *,
        count: bool = True,
    ) -> None:
        presence, reason = {
            None: (rpb.PRESENCE_OFFLINE, "end_of_shift"),
            Activity.WORK: (rpb.PRESENCE_AVAILABLE, ""),
            Activity.BREAK: (rpb.PRESENCE_AWAY, "break"),
            Activity.LUNCH: (rpb.PRESENCE_AWAY, "lunch"),
        }[after]
        if before is None and after is None:
            return
        request = rpb.SetAgentStateRequest(request_id=_rid(), presence=presence, reason_code=reason)
        try:
            await _retry(lambda: self.routing.SetAgentState(request, metadata=md))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            _log.info("agent %s stays as it is: %s", plan.agent_id, exc.details())
        if not count:
            return
        self.stats.agents_working += (after is Activity.WORK) - (before is Activity.WORK)
        away = (Activity.BREAK, Activity.LUNCH)
        self.stats.agents_away += (after in away) - (before in away)

    async def _offers(
        self,
        plan: AgentPlan,
        md: tuple[tuple[str, str]],
        seen: set[str],
    ) -> None:
        """The agent's desktop: reads its offers (reconnecting when the stream drops, and
        logging in again when routing logged the agent off meanwhile for a lost heartbeat)."""
        dropped = False
        while True:
            if dropped:
                await self._log_in_again(plan, md, self._activity.get(plan.agent_id))
            stream = self.routing.AgentStream(rpb.AgentStreamRequest(), metadata=md)
            dropped = True
            try:
                async for response in stream:
                    offer = response.offer
                    if offer.offer_id in seen:
                        continue
                    seen.add(offer.offer_id)
                    self.stats.offers += 1
                    self._spawn(self._handle(plan, md, offer))
            except grpc.aio.AioRpcError as exc:
                _log.info("agent %s stream ended: %s", plan.agent_id, exc.code().name)
            finally:
                stream.cancel()
            await asyncio.sleep(1.0)

    async def _log_in_again(
        self, plan: AgentPlan, md: tuple[tuple[str, str]], activity: Activity | None
    ) -> None:
        try:
            beat = await self.routing.Heartbeat(
                rpb.HeartbeatRequest(request_id=_rid()), metadata=md, timeout=5
            )
        except grpc.aio.AioRpcError:
            return  # routing is not back yet: the next reconnection asks again
        if beat.state == rpb.AGENT_STATE_OFFLINE and activity is not None:
            _log.info("agent %s was logged off while away from routing: logs in", plan.agent_id)
            await self._transition(plan, md, None, activity, count=False)

    async def _handle(self, plan: AgentPlan, md: tuple[tuple[str, str]], offer: Any) -> None:
        channel = CHANNEL_OF.get(offer.channel, Channel.VOICE)
        await self._sleep_sim(self.rng.uniform(1.0, 5.0))  # ringing
        accept = rpb.AcceptOfferRequest(request_id=_rid(), offer_id=offer.offer_id)
        try:
            await _retry(lambda: self.routing.AcceptOffer(accept, metadata=md))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                return  # withdrawn meanwhile (the customer hung up, the offer timed out)
            raise
        self.stats.accepted += 1
        iid = offer.interaction_id
        if not await self._connect(iid, md):
            return
        self.stats.connected += 1
        if (answered := self._answered.get(iid)) is not None:
            answered.set()
        await self._sleep_sim(self.handling.handle_s(channel))
        end = ipb.EndRequest(
            request_id=_rid(),
            interaction_id=iid,
            ended_by=ipb.ENDED_BY_CUSTOMER if self.rng.random() < 0.6 else ipb.ENDED_BY_AGENT,
            reason="resolved",
        )
        await _retry(lambda: self.interactions.End(end, metadata=md))
        await self._sleep_sim(self.handling.wrap_up_s(channel))
        complete = ipb.CompleteRequest(
            request_id=_rid(),
            interaction_id=iid,
            disposition_codes=[self.handling.disposition(self._intents.pop(iid, None))],
            notes="simulated",
        )
        await _retry(lambda: self.interactions.Complete(complete, metadata=md))
        self.stats.completed += 1

    async def _connect(self, interaction_id: str, md: tuple[tuple[str, str]]) -> bool:
        """Connect once interactions has seen routing's offer (it follows routing's events on
        Kafka, so the first tries may find the contact still QUEUED)."""
        request = ipb.ConnectRequest(request_id=_rid(), interaction_id=interaction_id)
        deadline = time.monotonic() + 20.0
        while True:
            try:
                await _retry(lambda: self.interactions.Connect(request, metadata=md))
                return True
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                if time.monotonic() > deadline:
                    return False
                current = await self.interactions.GetInteraction(
                    ipb.GetInteractionRequest(
                        interaction_id=interaction_id, view=ipb.INTERACTION_VIEW_BASIC
                    ),
                    metadata=self._gateway,
                )
                if current.interaction.state not in _WAITING:
                    return False  # the customer hung up meanwhile
            await asyncio.sleep(0.1)

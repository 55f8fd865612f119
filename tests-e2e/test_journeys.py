"""The two journeys of a contact through the whole system, as outside clients make them: an
email customer and a telephony gateway, agent desktops, supervisors and a plain Kafka consumer,
using nothing but the public contracts (gRPC and the event topics).

1. Email: sent by SMTP to a registered mailbox, it becomes a contact linked to the customer's
   profile, is routed to the agent with the skill the mailbox asks for, accepted, connected,
   answered by email (the reply reaches a real SMTP peer, the relay), ended and completed with
   a disposition; reporting counts it offered, answered and handled, and WFM's adherence
   follows the agent's states against a published schedule.
2. Voice: a gateway creates and enqueues a call; agent 1 rejects the offer, agent 2 accepts,
   holds and resumes, and transfers it blind to a second queue, where agent 3 takes it to the
   end. A Kafka consumer of the interactions topic sees that whole lifecycle, in order.
"""

from __future__ import annotations

import asyncio
import json
import queue
import smtplib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any, TypeVar

import grpc
import pytest
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2 as cpb
from contactcenter.email.v1 import email_pb2 as epb
from contactcenter.email.v1 import email_pb2_grpc as egrpc
from contactcenter.grpckit import Role
from contactcenter.infra.services import HOST
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as igrpc
from contactcenter.profiles.v1 import profiles_pb2 as ppb
from contactcenter.profiles.v1 import profiles_pb2_grpc as pgrpc
from contactcenter.reporting.v1 import reporting_pb2 as rppb
from contactcenter.reporting.v1 import reporting_pb2_grpc as rpgrpc
from contactcenter.routing.v1 import routing_pb2 as rpb
from contactcenter.routing.v1 import routing_pb2_grpc as rgrpc
from contactcenter.testing.system import System, new_tenant, token_metadata
from contactcenter.wfm.v1 import wfm_pb2 as wpb
from contactcenter.wfm.v1 import wfm_pb2_grpc as wgrpc

pytestmark = pytest.mark.slow

#: Generous: a shared two-core machine running six services.
WAIT_S = 90.0
INTERACTIONS_TOPIC = "cc.interactions.events.v1"
EMAIL_TOPIC = "cc.email.events.v1"
T = TypeVar("T")


def rid() -> str:
    return str(uuid.uuid4())


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def eventually(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    """Polls `probe` until it returns something truthy (an RPC error counts as not yet)."""
    deadline = time.monotonic() + timeout
    last_error: grpc.RpcError | None = None
    while True:
        try:
            value = probe()
        except grpc.RpcError as error:
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")
        time.sleep(0.5)


@dataclass
class Clients:
    """Stubs of every service, and the metadata of a supervisor/admin/service caller."""

    system: System
    tenant: str
    md: tuple[tuple[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.md = token_metadata(
            self.tenant, "supervisor", (Role.SUPERVISOR, Role.ADMIN, Role.SERVICE)
        )
        address = self.system.address
        self.routing = rgrpc.RoutingServiceStub(grpc.insecure_channel(address("routing")))
        self.interactions = igrpc.InteractionsServiceStub(
            grpc.insecure_channel(address("interactions"))
        )
        self.profiles = pgrpc.ProfilesServiceStub(grpc.insecure_channel(address("profiles")))
        self.email = egrpc.EmailServiceStub(grpc.insecure_channel(address("email")))
        self.reporting = rpgrpc.ReportingServiceStub(grpc.insecure_channel(address("reporting")))
        self.wfm = wgrpc.WfmServiceStub(grpc.insecure_channel(address("wfm")))

    def interaction(self, interaction_id: str) -> ipb.Interaction:
        return self.interactions.GetInteraction(
            ipb.GetInteractionRequest(
                interaction_id=interaction_id, view=ipb.INTERACTION_VIEW_FULL
            ),
            metadata=self.md,
        ).interaction

    def wait_state(self, interaction_id: str, state: int) -> ipb.Interaction:
        name = ipb.InteractionState.Name(state)
        return eventually(
            f"interaction {interaction_id} to be {name}",
            lambda: got if (got := self.interaction(interaction_id)).state == state else None,
        )


class Desktop:
    """An agent desktop: the agent's own token, its AgentStream kept open (which also keeps
    the agent's presence lease) and read in a thread, offers taken as they come."""

    def __init__(self, clients: Clients, agent_id: str) -> None:
        self.agent_id = agent_id
        self.md = token_metadata(clients.tenant, agent_id, (Role.AGENT,))
        self._routing = clients.routing
        self._offers: queue.Queue[rpb.Offer] = queue.Queue()
        self._call = self._routing.AgentStream(
            rpb.AgentStreamRequest(), metadata=self.md, timeout=900
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for message in self._call:
                self._offers.put(message.offer)
        except grpc.RpcError:
            pass  # cancelled at close

    def available(self) -> None:
        state = self._routing.SetAgentState(
            rpb.SetAgentStateRequest(request_id=rid(), presence=rpb.PRESENCE_AVAILABLE),
            metadata=self.md,
        ).state
        assert state == rpb.AGENT_STATE_AVAILABLE, rpb.AgentState.Name(state)

    def next_offer(self, timeout: float = WAIT_S) -> rpb.Offer:
        try:
            return self._offers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no offer reached {self.agent_id} within {timeout} s") from None

    def no_offer(self, within: float) -> None:
        try:
            offer = self._offers.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"{self.agent_id} was offered {offer.interaction_id} unexpectedly")

    def accept(self, offer: rpb.Offer) -> None:
        accepted = self._routing.AcceptOffer(
            rpb.AcceptOfferRequest(request_id=rid(), offer_id=offer.offer_id), metadata=self.md
        )
        assert accepted.interaction_id == offer.interaction_id

    def reject(self, offer: rpb.Offer) -> None:
        self._routing.RejectOffer(
            rpb.RejectOfferRequest(request_id=rid(), offer_id=offer.offer_id, reason_code="busy"),
            metadata=self.md,
        )

    def close(self) -> None:
        self._call.cancel()
        self._reader.join(timeout=5)


def _tenant_events(
    bootstrap: str,
    topic: str,
    tenant: str,
    done: Callable[[list[tuple[str, dict[str, Any]]]], bool],
) -> list[tuple[str, dict[str, Any]]]:
    """(ce_type, data) of the tenant's records on `topic`, in order, read from the beginning
    by a plain consumer until `done` says enough."""

    async def read() -> list[tuple[str, dict[str, Any]]]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        seen: list[tuple[str, dict[str, Any]]] = []
        try:
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        if record.key != tenant.encode():
                            continue
                        ce_type = dict(record.headers).get("ce_type", b"").decode()
                        seen.append((ce_type, json.loads(record.value or b"{}")))
                if done(seen):
                    return seen
        finally:
            await consumer.stop()
        raise AssertionError(f"{topic}: not all expected events of {tenant} came: {seen}")

    return asyncio.run(read())


# --- 1. email -------------------------------------------------------------------------------


class RelayHandler:
    """The outbound relay's end: keeps what it is handed."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append((envelope.mail_from or "", list(envelope.rcpt_tos), content))
        return "250 OK"


def _schedule_covering_now(
    schedule_id: str, agent_id: str, queue_id: str
) -> wpb.GenerateScheduleRequest:
    """A week whose shift for `agent_id` starts at the top of this hour (8 h, no breaks)."""
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    minute = base.hour * 60
    return wpb.GenerateScheduleRequest(
        request_id=rid(),
        schedule_id=schedule_id,
        week_start=base.date().isoformat(),
        time_zone="UTC",
        interval_minutes=30,
        templates=[wpb.ShiftTemplate(template_id="day", length_minutes=480, days_per_week=7)],
        rules=[
            wpb.WorkRules(rules_id="r", earliest_start_minute=minute, latest_start_minute=minute)
        ],
        agents=[
            wpb.AgentSpec(agent_id=agent_id, skills=["billing"], time_zone="UTC", rules_id="r")
        ],
        requirements=[wpb.Requirement(queue_id=queue_id, interval_start=ts(base), agents=1)],
        time_limit_seconds=5,
    )


def test_email_journey(system: System) -> None:
    tenant = new_tenant("journey-mail")
    c = Clients(system, tenant)
    tag = uuid.uuid4().hex[:8]
    queue_id, skilled, unskilled = "billing-mail", "agent-skilled", "agent-unskilled"
    mailbox = f"billing-{tag}@journey.example"
    customer = f"jane-{tag}@customer.example"

    # WFM: the skilled agent's schedule covers now, published before the agent logs in.
    generated = c.wfm.GenerateSchedule(
        _schedule_covering_now(f"week-{tag}", skilled, queue_id), metadata=c.md
    )
    now = datetime.now(UTC)
    assert any(
        s.agent_id == skilled and s.start_time.ToDatetime(UTC) <= now < s.end_time.ToDatetime(UTC)
        for s in generated.shifts
    ), f"no shift of {skilled} covers now: {generated.shifts}"
    c.wfm.PublishSchedule(
        wpb.PublishScheduleRequest(request_id=rid(), schedule_id=f"week-{tag}"), metadata=c.md
    )

    # Routing: an email queue, a skilled and an unskilled agent, both serving it.
    c.routing.UpsertQueue(
        rpb.UpsertQueueRequest(
            request_id=rid(),
            queue=rpb.Queue(
                queue_id=queue_id,
                name="Billing (email)",
                channels=[cpb.CHANNEL_EMAIL],
                offer_timeout_s=600,
            ),
        ),
        metadata=c.md,
    )
    for agent_id, level in ((skilled, 4), (unskilled, 1)):
        c.routing.UpsertAgent(
            rpb.UpsertAgentRequest(
                request_id=rid(),
                agent=rpb.Agent(
                    agent_id=agent_id,
                    name=agent_id,
                    queues=[queue_id],
                    skills=[rpb.SkillLevel(skill="billing", proficiency=level)],
                ),
            ),
            metadata=c.md,
        )

    # Email: the mailbox, routed to the queue, asking for the skill.
    c.email.RegisterMailbox(
        epb.RegisterMailboxRequest(request_id=rid(), address=mailbox, display_name="Billing"),
        metadata=c.md,
    )
    c.email.SetMailboxRouting(
        epb.SetMailboxRoutingRequest(
            request_id=rid(),
            address=mailbox,
            routing=epb.MailboxRouting(
                queue_id=queue_id,
                required_skills=[epb.SkillRequirement(skill="billing", min_proficiency=3)],
            ),
        ),
        metadata=c.md,
    )

    relay = RelayHandler()
    controller = Controller(relay, hostname=HOST, port=system.relay_port)
    controller.start()
    desktops = {a: Desktop(c, a) for a in (skilled, unskilled)}
    try:
        before_login = datetime.now(UTC)
        time.sleep(1.0)  # a measurable stretch logged out, inside the shift
        logged_in_at = datetime.now(UTC)
        for desktop in desktops.values():
            desktop.available()

        # The customer writes, by SMTP to the platform's listener.
        message = EmailMessage()
        message["From"] = f"Jane Doe <{customer}>"
        message["To"] = mailbox
        message["Subject"] = f"Invoice question {tag}"
        message["Message-ID"] = f"<{uuid.uuid4().hex}@customer.example>"
        message.set_content("Hello, my invoice is wrong. Can you help?")
        with smtplib.SMTP(HOST, system.smtp_port, timeout=30) as smtp:
            smtp.send_message(message)

        # Only the skilled agent is offered it.
        offer = desktops[skilled].next_offer()
        assert offer.queue_id == queue_id and offer.channel == cpb.CHANNEL_EMAIL
        interaction_id = offer.interaction_id
        desktops[unskilled].no_offer(within=1.0)

        # A profile-resolved contact: the interaction's profile is the sender's.
        contact = eventually(
            "the email contact with its customer's profile",
            lambda: got if (got := c.interaction(interaction_id)).customer_profile_id else None,
        )
        assert contact.channel == cpb.CHANNEL_EMAIL
        assert contact.customer_address == customer
        assert contact.entry_point == mailbox
        assert any(m.subject == f"Invoice question {tag}" for m in contact.messages)
        resolved = c.profiles.ResolveIdentity(
            ppb.ResolveIdentityRequest(
                request_id=rid(),
                identity=ppb.Identity(kind=ppb.IDENTITY_KIND_EMAIL, value=customer),
            ),
            metadata=c.md,
        )
        assert resolved.profile_id == contact.customer_profile_id

        # Accepted on the desktop; routing's acceptance assigns it, the desktop connects.
        desktops[skilled].accept(offer)
        c.wait_state(interaction_id, ipb.INTERACTION_STATE_ASSIGNED)
        c.interactions.Connect(
            ipb.ConnectRequest(request_id=rid(), interaction_id=interaction_id, agent_id=skilled),
            metadata=c.md,
        )

        # The reply: to the message received (its id from the email stream), out by the relay.
        received = _tenant_events(
            system.kafka_bootstrap,
            EMAIL_TOPIC,
            tenant,
            lambda seen: any(t == "email.EmailReceived.v1" for t, _ in seen),
        )
        inbound_id = next(d["message_id"] for t, d in received if t == "email.EmailReceived.v1")
        sent = c.email.SendReply(
            epb.SendReplyRequest(
                request_id=rid(),
                interaction_id=interaction_id,
                in_reply_to_message_id=inbound_id,
                body_text=f"Dear Jane, we corrected the invoice. {tag}",
                agent_id=skilled,
                agent_name="Sam",
            ),
            metadata=c.md,
        )
        delivered = eventually(
            "the reply at the outbound relay",
            lambda: [r for r in relay.received if customer in r[1]],
        )
        mail_from, _, raw = delivered[0]
        reply = BytesParser(policy=default_policy).parsebytes(raw)
        assert reply["In-Reply-To"] == message["Message-ID"]
        assert reply["Message-ID"].strip("<>") == sent.internet_message_id.strip("<>")
        assert mailbox in mail_from or mailbox in str(reply["From"])
        assert tag in reply.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        eventually(
            "the reply recorded as sent",
            lambda: (
                c.email.GetMessage(
                    epb.GetMessageRequest(message_id=sent.message_id), metadata=c.md
                ).message.delivery_status
                == "SENT"
            ),
        )
        eventually(
            "the reply on the interaction",
            lambda: any(
                m.direction == ipb.MESSAGE_DIRECTION_OUTBOUND
                for m in c.interaction(interaction_id).messages
            ),
        )

        # Handled: ended and completed with a disposition.
        c.interactions.End(
            ipb.EndRequest(
                request_id=rid(),
                interaction_id=interaction_id,
                ended_by=ipb.ENDED_BY_AGENT,
                reason="resolved",
                agent_id=skilled,
            ),
            metadata=c.md,
        )
        c.interactions.Complete(
            ipb.CompleteRequest(
                request_id=rid(),
                interaction_id=interaction_id,
                disposition_codes=["billing.invoice_corrected"],
                notes="corrected",
                agent_id=skilled,
            ),
            metadata=c.md,
        )
        done = c.wait_state(interaction_id, ipb.INTERACTION_STATE_COMPLETED)
        assert list(done.disposition_codes) == ["billing.invoice_corrected"]
        assert done.agent_id == skilled

        # The wallboard counts it, and so does the interval history.
        def today() -> rppb.ContactTotals | None:
            stats = c.reporting.QueueStats(
                rppb.QueueStatsRequest(queue_ids=[queue_id]), metadata=c.md
            )
            for totals in stats.queues[0].totals if stats.queues else ():
                if totals.window == rppb.WINDOW_TODAY and totals.handled >= 1:
                    return totals
            return None

        totals = eventually("the wallboard to count the contact handled", today)
        assert (totals.offered, totals.answered, totals.abandoned) == (1, 1, 0)
        assert totals.handled == 1

        def intervals() -> list[rppb.IntervalRecord]:
            history = c.reporting.IntervalHistory(
                rppb.IntervalHistoryRequest(
                    queue_ids=[queue_id],
                    range=cpb.TimeRange(
                        start_time=ts(before_login - timedelta(hours=1)),
                        end_time=ts(datetime.now(UTC) + timedelta(minutes=30)),
                    ),
                    interval_minutes=15,
                ),
                metadata=c.md,
            )
            records = list(history.records)
            return records if sum(r.handled for r in records) >= 1 else []

        records = eventually("the interval history to count the contact", intervals)
        assert sum(r.offered for r in records) == 1
        assert sum(r.answered for r in records) == 1
        assert {r.channel for r in records if r.offered} == {cpb.CHANNEL_EMAIL}

        # WFM: logged out at first (out of adherence in a scheduled shift), then working.
        def adherence(start: datetime, end: datetime) -> wpb.AgentAdherence:
            report = c.wfm.Adherence(
                wpb.AdherenceRequest(
                    range=cpb.TimeRange(start_time=ts(start), end_time=ts(end)),
                    agent_ids=[skilled],
                ),
                metadata=c.md,
            )
            assert report.schedule_id == f"week-{tag}"
            return report.agents[0]

        working_from = logged_in_at + timedelta(seconds=2)
        until = max(datetime.now(UTC), working_from + timedelta(seconds=3))
        time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()))
        worked = eventually(
            "WFM to see the agent working since login",
            lambda: a if (a := adherence(working_from, until)).adherence_pct > 99.9 else None,
        )
        assert worked.scheduled_minutes > 0
        assert worked.conformance_pct > 99.9
        logged_out = adherence(before_login, logged_in_at)
        assert logged_out.scheduled_minutes > 0
        assert logged_out.in_adherence_minutes == 0, logged_out
        watch = c.wfm.WatchAdherence(
            wpb.WatchAdherenceRequest(agent_ids=[skilled]), metadata=c.md, timeout=30
        )
        status = next(watch).status
        watch.cancel()
        assert status.agent_id == skilled
        assert status.state in {"available", "busy", "wrap_up"}, status
        assert status.in_adherence and status.scheduled == wpb.ACTIVITY_KIND_WORK
    finally:
        for desktop in desktops.values():
            desktop.close()
        controller.stop()


# --- 2. voice -------------------------------------------------------------------------------


def test_voice_journey_seen_on_the_interactions_topic(system: System) -> None:
    tenant = new_tenant("journey-voice")
    c = Clients(system, tenant)
    sales, care = "sales", "care"
    for queue_id in (sales, care):
        c.routing.UpsertQueue(
            rpb.UpsertQueueRequest(
                request_id=rid(),
                queue=rpb.Queue(queue_id=queue_id, name=queue_id, offer_timeout_s=600),
            ),
            metadata=c.md,
        )
    serving = {"agent-1": sales, "agent-2": sales, "agent-3": care}
    for agent_id, queue_id in serving.items():
        c.routing.UpsertAgent(
            rpb.UpsertAgentRequest(
                request_id=rid(), agent=rpb.Agent(agent_id=agent_id, queues=[queue_id])
            ),
            metadata=c.md,
        )
    desktops = {a: Desktop(c, a) for a in serving}
    try:
        desktops["agent-1"].available()
        desktops["agent-3"].available()

        # The gateway: a call arrives, the IVR is done, it goes to sales.
        call_id = f"sip-{uuid.uuid4().hex}"
        created = c.interactions.CreateInteraction(
            ipb.CreateInteractionRequest(
                request_id=rid(),
                channel=cpb.CHANNEL_VOICE,
                direction=ipb.INTERACTION_DIRECTION_INBOUND,
                customer_address="+14155550123",
                entry_point="+18005550100",
                external_ref=call_id,
            ),
            metadata=c.md,
        )
        interaction_id = created.result.interaction_id
        assert created.result.state == ipb.INTERACTION_STATE_CREATED
        c.interactions.Enqueue(
            ipb.EnqueueRequest(request_id=rid(), interaction_id=interaction_id, queue_id=sales),
            metadata=c.md,
        )

        # Agent 1 (the only one available in sales) declines it.
        first = desktops["agent-1"].next_offer()
        assert first.interaction_id == interaction_id and first.queue_id == sales
        c.wait_state(interaction_id, ipb.INTERACTION_STATE_OFFERED)
        desktops["agent-2"].available()
        desktops["agent-1"].reject(first)

        # Agent 2 gets it, accepts; the gateway connects the agent leg, holds, resumes.
        second = desktops["agent-2"].next_offer()
        assert second.interaction_id == interaction_id and second.offer_id != first.offer_id
        desktops["agent-2"].accept(second)
        c.wait_state(interaction_id, ipb.INTERACTION_STATE_ASSIGNED)
        act = {"interaction_id": interaction_id}
        c.interactions.Connect(
            ipb.ConnectRequest(request_id=rid(), agent_id="agent-2", **act), metadata=c.md
        )
        c.interactions.Hold(
            ipb.HoldRequest(request_id=rid(), agent_id="agent-2", **act), metadata=c.md
        )
        c.interactions.Resume(
            ipb.ResumeRequest(request_id=rid(), agent_id="agent-2", **act), metadata=c.md
        )

        # Blind transfer to care, where agent 3 takes it.
        moved = c.interactions.Transfer(
            ipb.TransferRequest(
                request_id=rid(),
                mode=ipb.TRANSFER_MODE_BLIND,
                to_queue_id=care,
                agent_id="agent-2",
                reason="billing question",
                **act,
            ),
            metadata=c.md,
        )
        assert moved.result.state == ipb.INTERACTION_STATE_QUEUED
        third = desktops["agent-3"].next_offer()
        assert third.interaction_id == interaction_id and third.queue_id == care
        desktops["agent-3"].accept(third)
        c.wait_state(interaction_id, ipb.INTERACTION_STATE_ASSIGNED)
        c.interactions.Connect(
            ipb.ConnectRequest(request_id=rid(), agent_id="agent-3", **act), metadata=c.md
        )
        c.interactions.End(
            ipb.EndRequest(
                request_id=rid(), ended_by=ipb.ENDED_BY_CUSTOMER, reason="customer_hangup", **act
            ),
            metadata=c.md,
        )
        c.interactions.Complete(
            ipb.CompleteRequest(
                request_id=rid(), disposition_codes=["resolved"], agent_id="agent-3", **act
            ),
            metadata=c.md,
        )
        done = c.wait_state(interaction_id, ipb.INTERACTION_STATE_COMPLETED)
        assert done.offer_count == 3 and done.transfer_count == 1 and done.hold_count == 1
        assert done.agent_id == "agent-3" and done.queue_id == care
    finally:
        for desktop in desktops.values():
            desktop.close()

    # What a plain Kafka consumer of the interactions topic sees of this contact.
    def completed(seen: list[tuple[str, dict[str, Any]]]) -> bool:
        return any(
            t == "interactions.InteractionCompleted.v1"
            and d.get("interaction_id") == interaction_id
            for t, d in seen
        )

    events = [
        (t.removeprefix("interactions.").removesuffix(".v1"), d)
        for t, d in _tenant_events(system.kafka_bootstrap, INTERACTIONS_TOPIC, tenant, completed)
        if d.get("interaction_id") == interaction_id
    ]
    lifecycle = [
        (name, d.get("agent_id") or d.get("queue_id"))
        for name, d in events
        if name not in {"MessageAppended", "NoteAdded", "InteractionProfileLinked"}
    ]
    assert lifecycle == [
        ("InteractionCreated", None),
        ("InteractionQueued", sales),
        ("InteractionOffered", "agent-1"),
        ("InteractionOfferWithdrawn", "agent-1"),
        ("InteractionOffered", "agent-2"),
        ("InteractionAssigned", "agent-2"),
        ("InteractionConnected", "agent-2"),
        ("InteractionHeld", "agent-2"),
        ("InteractionResumed", "agent-2"),
        ("InteractionTransferred", "agent-2"),
        ("InteractionQueued", care),
        ("InteractionOffered", "agent-3"),
        ("InteractionAssigned", "agent-3"),
        ("InteractionConnected", "agent-3"),
        ("InteractionEnded", "agent-3"),
        ("WrapUpEnded", "agent-3"),
        ("InteractionCompleted", "agent-3"),
    ], "\n".join(f"{name} {d}" for name, d in events)
    by_name = dict(events)
    assert by_name["InteractionOfferWithdrawn"]["reason"] == "rejected"
    assert by_name["InteractionTransferred"]["mode"] == "blind"
    assert by_name["InteractionTransferred"]["to_queue_id"] == care
    assert by_name["InteractionCompleted"]["disposition_codes"] == ["resolved"]

"""Tenant isolation, as an outside client meets it: tenant B creates objects in every service,
then every RPC of every running service (listed by the servers' reflection, so a new RPC needs
a case here or this test fails) is called with tenant A's token against B's ids. A's token is
as strong as tokens get (every role) and its subject is B's agent's id.

Every call must be refused (NOT_FOUND, PERMISSION_DENIED, INVALID_ARGUMENT,
FAILED_PRECONDITION) exactly as it is refused for ids nobody has (no oracle that B's object
exists), or succeed in A's own tenant; no reply, error or streamed message contains anything
of B's (its secret marker, its tenant id, or one of B's ids A did not send); and B's objects
read by B afterwards are as they were."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from aiokafka import AIOKafkaConsumer
from google.protobuf import text_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2 as cpb
from contactcenter.email.v1 import email_pb2 as epb
from contactcenter.email.v1 import email_pb2_grpc as egrpc
from contactcenter.grpckit import Role
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as igrpc
from contactcenter.profiles.v1 import profiles_pb2 as ppb
from contactcenter.profiles.v1 import profiles_pb2_grpc as pgrpc
from contactcenter.reporting.v1 import reporting_pb2 as rppb
from contactcenter.reporting.v1 import reporting_pb2_grpc as rpgrpc
from contactcenter.routing.v1 import routing_pb2 as rpb
from contactcenter.routing.v1 import routing_pb2_grpc as rgrpc
from contactcenter.testing.rpcs import Rpc, service_rpcs
from contactcenter.testing.system import System, new_tenant, token_metadata
from contactcenter.wfm.v1 import wfm_pb2 as wpb
from contactcenter.wfm.v1 import wfm_pb2_grpc as wgrpc

pytestmark = pytest.mark.slow

REFUSED = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
}
#: Names that are global by nature (an email address routes mail to one tenant): a second
#: tenant is told the name is taken, which says no more than the DNS does.
GLOBAL_NAMES = {"EmailService/RegisterMailbox": grpc.StatusCode.ALREADY_EXISTS}
STREAM_WAIT_S = 1.5


def rid() -> str:
    return str(uuid.uuid4())


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@dataclass(frozen=True)
class Ids:
    """Tenant B's objects (or, for the comparison, ids that no tenant has)."""

    queue_id: str
    agent_id: str
    interaction_id: str
    email_interaction_id: str
    offer_id: str
    profile_id: str
    other_profile_id: str
    customer_email: str
    mailbox: str
    message_id: str
    quarantine_id: str
    schedule_id: str
    time_off_id: str
    create_request_id: str

    def ghost(self) -> Ids:
        """The same shape, ids nobody has (same formats: UUIDs stay UUIDs)."""
        u = lambda: str(uuid.uuid4())  # noqa: E731
        tag = uuid.uuid4().hex[:8]
        return replace(
            self,
            queue_id=f"q-ghost-{tag}",
            agent_id=self.agent_id,  # A's own subject: the same in both runs
            interaction_id=u(),
            email_interaction_id=u(),
            offer_id=u(),
            profile_id=u(),
            other_profile_id=u(),
            customer_email=f"ghost-{tag}@b.example",
            mailbox=f"ghost-{tag}@b.example",
            message_id=u(),
            quarantine_id=u(),
            schedule_id=f"ghost-{tag}",
            time_off_id=u(),
            create_request_id=u(),
        )

    def values(self) -> set[str]:
        return {getattr(self, f.name) for f in fields(self)}


def _raw_email(mailbox: str, sender: str, secret: str) -> bytes:
    return (
        f"From: Customer {secret} <{sender}>\r\nTo: {mailbox}\r\nSubject: help {secret}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@cust.example>\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n"
        f"body {secret}\r\n"
    ).encode()


def _schedule(schedule_id: str, agent_id: str, queue_id: str) -> wpb.GenerateScheduleRequest:
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
        agents=[wpb.AgentSpec(agent_id=agent_id, skills=["s"], time_zone="UTC", rules_id="r")],
        requirements=[wpb.Requirement(queue_id=queue_id, interval_start=ts(base), agents=1)],
        time_limit_seconds=5,
    )


def _eventually(what: str, probe: Callable[[], object], timeout: float = 45.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except grpc.RpcError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _email_message_id(bootstrap: str, tenant: str) -> str:
    """The id of B's received email, from its event on the email stream (a public contract)."""

    async def read() -> str:
        consumer = AIOKafkaConsumer(
            "cc.email.events.v1", bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        headers = dict(record.headers)
                        if record.key == tenant.encode() and headers.get("ce_type") == (
                            b"email.EmailReceived.v1"
                        ):
                            return str(json.loads(record.value or b"{}")["message_id"])
        finally:
            await consumer.stop()
        raise AssertionError("no EmailReceived event of tenant B on cc.email.events.v1")

    return asyncio.run(read())


@dataclass
class TenantB:
    tenant: str
    secret: str
    ids: Ids


def create_tenant_b(system: System) -> TenantB:
    tenant = new_tenant("iso-b")
    secret = f"SECRETB{uuid.uuid4().hex[:10]}"
    low = secret.lower()
    md = token_metadata(tenant, "admin-b", (Role.SUPERVISOR, Role.ADMIN, Role.SERVICE))
    queue_id, agent_id = f"q-{low}", f"agent-{low}"
    routing = rgrpc.RoutingServiceStub(grpc.insecure_channel(system.address("routing")))
    interactions = igrpc.InteractionsServiceStub(
        grpc.insecure_channel(system.address("interactions"))
    )
    profiles = pgrpc.ProfilesServiceStub(grpc.insecure_channel(system.address("profiles")))
    email = egrpc.EmailServiceStub(grpc.insecure_channel(system.address("email")))
    reporting = rpgrpc.ReportingServiceStub(grpc.insecure_channel(system.address("reporting")))
    wfm = wgrpc.WfmServiceStub(grpc.insecure_channel(system.address("wfm")))

    queue = rpb.Queue(queue_id=queue_id, name=secret, offer_timeout_s=3600)
    routing.UpsertQueue(rpb.UpsertQueueRequest(request_id=rid(), queue=queue), metadata=md)
    agent = rpb.Agent(agent_id=agent_id, name=secret, queues=[queue_id])
    routing.UpsertAgent(rpb.UpsertAgentRequest(request_id=rid(), agent=agent), metadata=md)
    available = rpb.SetAgentStateRequest(
        request_id=rid(), agent_id=agent_id, presence=rpb.PRESENCE_AVAILABLE
    )
    routing.SetAgentState(available, metadata=md)

    customer_email = f"{low}@customer.example"
    profile_id = profiles.ResolveIdentity(
        ppb.ResolveIdentityRequest(
            request_id=rid(),
            identity=ppb.Identity(kind=ppb.IDENTITY_KIND_EMAIL, value=customer_email),
            display_name=f"Customer {secret}",
        ),
        metadata=md,
    ).profile_id
    other_profile_id = profiles.ResolveIdentity(
        ppb.ResolveIdentityRequest(
            request_id=rid(),
            identity=ppb.Identity(kind=ppb.IDENTITY_KIND_PHONE, value="+4930123456"),
            default_region="DE",
            display_name=f"Other {secret}",
        ),
        metadata=md,
    ).profile_id

    create_request_id = rid()
    created = interactions.CreateInteraction(
        ipb.CreateInteractionRequest(
            request_id=create_request_id,
            channel=cpb.CHANNEL_VOICE,
            direction=ipb.INTERACTION_DIRECTION_INBOUND,
            customer_address="+4930123456",
            customer_profile_id=profile_id,
            subject=secret,
            attributes={"secret": secret},
            queue=ipb.QueueTarget(queue_id=queue_id),
        ),
        metadata=md,
    )
    interaction_id = created.result.interaction_id
    # B's agent takes the offer on the desktop's stream (kept open: no lease expires).
    agent_md = token_metadata(tenant, agent_id, (Role.AGENT,))
    stream = routing.AgentStream(rpb.AgentStreamRequest(), metadata=agent_md, timeout=60)
    offer_id = next(stream).offer.offer_id
    stream.cancel()
    interactions.AppendMessage(
        ipb.AppendMessageRequest(
            request_id=rid(),
            interaction_id=interaction_id,
            author=ipb.Author(role=ipb.AUTHOR_ROLE_CUSTOMER, id=profile_id),
            direction=ipb.MESSAGE_DIRECTION_INBOUND,
            body=f"message {secret}",
        ),
        metadata=md,
    )

    mailbox = f"support-{low}@b.example"
    email.RegisterMailbox(
        epb.RegisterMailboxRequest(
            request_id=rid(),
            address=mailbox,
            display_name=secret,
            routing=epb.MailboxRouting(queue_id=queue_id),
        ),
        metadata=md,
    )
    raw = _raw_email(mailbox, f"mail-{low}@customer.example", secret)
    email.IngestMessage(
        epb.IngestMessageRequest(request_id=rid(), mailbox_address=mailbox, raw=raw), metadata=md
    )
    email.IngestMessage(
        epb.IngestMessageRequest(request_id=rid(), mailbox_address=mailbox, raw=b"\x00" * 20),
        metadata=md,
    )

    def email_interaction() -> ipb.Interaction | None:
        listed = interactions.ListInteractions(
            ipb.ListInteractionsRequest(
                channels=[cpb.CHANNEL_EMAIL], view=ipb.INTERACTION_VIEW_FULL
            ),
            metadata=md,
        )
        done = [i for i in listed.interactions if i.messages]
        return done[0] if done else None

    mail = _eventually("B's email to become an interaction", email_interaction)
    assert isinstance(mail, ipb.Interaction)
    message_id = _email_message_id(system.kafka_bootstrap, tenant)
    email.GetMessage(epb.GetMessageRequest(message_id=message_id), metadata=md)  # B may read it
    quarantined = _eventually(
        "B's unreadable email in quarantine",
        lambda: email.ListQuarantine(epb.ListQuarantineRequest(), metadata=md).messages,
    )
    quarantine_id = quarantined[0].quarantine_id  # type: ignore[index]

    reporting.ConfigureQueueReporting(
        rppb.ConfigureQueueReportingRequest(
            request_id=rid(),
            queue_id=queue_id,
            service_level_variant=rppb.SERVICE_LEVEL_VARIANT_ANSWERED_ONLY,
            service_level_threshold_s=33,
            service_level_target_percent=80,
        ),
        metadata=md,
    )
    schedule_id = f"week-{low}"
    wfm.GenerateSchedule(_schedule(schedule_id, agent_id, queue_id), metadata=md)
    day_off = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    time_off_id = wfm.RequestTimeOff(
        wpb.RequestTimeOffRequest(
            request_id=rid(), agent_id=agent_id, first_date=day_off, last_date=day_off
        ),
        metadata=md,
    ).time_off_id
    _eventually(
        "B's queue in reporting",
        lambda: (
            reporting.QueueStats(rppb.QueueStatsRequest(queue_ids=[queue_id]), metadata=md).queues
        ),
    )
    ids = Ids(
        queue_id=queue_id,
        agent_id=agent_id,
        interaction_id=interaction_id,
        email_interaction_id=mail.interaction_id,
        offer_id=offer_id,
        profile_id=profile_id,
        other_profile_id=other_profile_id,
        customer_email=customer_email,
        mailbox=mailbox,
        message_id=message_id,
        quarantine_id=quarantine_id,
        schedule_id=schedule_id,
        time_off_id=time_off_id,
        create_request_id=create_request_id,
    )
    return TenantB(tenant=tenant, secret=secret, ids=ids)


def b_state(system: System, b: TenantB) -> dict[str, object]:
    """What B reads of its objects: the parts no clock changes."""
    md = token_metadata(b.tenant, "admin-b", (Role.SUPERVISOR, Role.ADMIN, Role.SERVICE))
    ids = b.ids
    routing = rgrpc.RoutingServiceStub(grpc.insecure_channel(system.address("routing")))
    interactions = igrpc.InteractionsServiceStub(
        grpc.insecure_channel(system.address("interactions"))
    )
    profiles = pgrpc.ProfilesServiceStub(grpc.insecure_channel(system.address("profiles")))
    email = egrpc.EmailServiceStub(grpc.insecure_channel(system.address("email")))
    reporting = rpgrpc.ReportingServiceStub(grpc.insecure_channel(system.address("reporting")))
    state: dict[str, object] = {}
    for key, interaction_id in (("voice", ids.interaction_id), ("mail", ids.email_interaction_id)):
        got = interactions.GetInteraction(
            ipb.GetInteractionRequest(
                interaction_id=interaction_id, view=ipb.INTERACTION_VIEW_FULL
            ),
            metadata=md,
        ).interaction
        state[f"interaction {key}"] = (
            got.state,
            got.version,
            len(got.messages),
            len(got.notes),
            got.queue_id,
        )
    listed = interactions.ListInteractions(ipb.ListInteractionsRequest(), metadata=md)
    state["interactions"] = sorted(i.interaction_id for i in listed.interactions)
    for key, profile_id in (("p1", ids.profile_id), ("p2", ids.other_profile_id)):
        profile = profiles.GetProfile(
            ppb.GetProfileRequest(profile_id=profile_id, purpose="audit"), metadata=md
        ).profile
        state[f"profile {key}"] = (
            profile.status,
            profile.version,
            profile.display_name,
            len(profile.identities),
        )
    mailbox = email.GetMailbox(epb.GetMailboxRequest(address=ids.mailbox), metadata=md).mailbox
    state["mailbox"] = text_format.MessageToString(mailbox)
    quarantine = email.ListQuarantine(epb.ListQuarantineRequest(), metadata=md).messages
    state["quarantine"] = sorted((q.quarantine_id, q.status) for q in quarantine)
    snapshot = routing.GetQueueSnapshot(
        rpb.GetQueueSnapshotRequest(queue_id=ids.queue_id), metadata=md
    )
    state["queue"] = (snapshot.config_version, snapshot.waiting, snapshot.offered, snapshot.agents)
    explained = routing.ExplainDecision(
        rpb.ExplainDecisionRequest(offer_id=ids.offer_id), metadata=md
    )
    state["offer"] = explained.status
    stats = reporting.QueueStats(rppb.QueueStatsRequest(queue_ids=[ids.queue_id]), metadata=md)
    wfm = wgrpc.WfmServiceStub(grpc.insecure_channel(system.address("wfm")))
    time_off = wfm.ListTimeOff(wpb.ListTimeOffRequest(), metadata=md).time_off
    state["time off"] = sorted((t.time_off_id, t.status) for t in time_off)
    state["reporting queue"] = [
        (q.queue_id, q.name, q.service_level_threshold_s) for q in stats.queues
    ]
    return state


Case = Callable[[Ids], Message]


def _now_range() -> cpb.TimeRange:
    now = datetime.now(UTC)
    return cpb.TimeRange(
        start_time=ts(now - timedelta(days=2)), end_time=ts(now + timedelta(days=1))
    )


def cases() -> dict[str, list[Case]]:
    """For each RPC, the requests that A tries against B's objects."""
    i, r, p, e, rp, w = ipb, rpb, ppb, epb, rppb, wpb
    return {
        # interactions
        "InteractionsService/CreateInteraction": [
            lambda b: i.CreateInteractionRequest(
                request_id=b.create_request_id,  # B's request id: never B's result
                channel=cpb.CHANNEL_VOICE,
                customer_profile_id=b.profile_id,
                queue=i.QueueTarget(queue_id=b.queue_id),
            )
        ],
        "InteractionsService/Enqueue": [
            lambda b: i.EnqueueRequest(
                request_id=rid(), interaction_id=b.interaction_id, queue_id=b.queue_id
            )
        ],
        "InteractionsService/Connect": [
            lambda b: i.ConnectRequest(
                request_id=rid(), interaction_id=b.interaction_id, agent_id=b.agent_id
            )
        ],
        "InteractionsService/Hold": [
            lambda b: i.HoldRequest(request_id=rid(), interaction_id=b.interaction_id)
        ],
        "InteractionsService/Resume": [
            lambda b: i.ResumeRequest(request_id=rid(), interaction_id=b.interaction_id)
        ],
        "InteractionsService/Transfer": [
            lambda b: i.TransferRequest(
                request_id=rid(),
                interaction_id=b.interaction_id,
                mode=i.TRANSFER_MODE_BLIND,
                to_queue_id=b.queue_id,
            )
        ],
        "InteractionsService/Conference": [
            lambda b: i.ConferenceRequest(
                request_id=rid(), interaction_id=b.interaction_id, agent_id="agent-a2"
            )
        ],
        "InteractionsService/LeaveConference": [
            lambda b: i.LeaveConferenceRequest(
                request_id=rid(), interaction_id=b.interaction_id, agent_id=b.agent_id
            )
        ],
        "InteractionsService/End": [
            lambda b: i.EndRequest(
                request_id=rid(), interaction_id=b.interaction_id, ended_by=i.ENDED_BY_AGENT
            )
        ],
        "InteractionsService/Complete": [
            lambda b: i.CompleteRequest(
                request_id=rid(), interaction_id=b.interaction_id, disposition_codes=["x"]
            )
        ],
        "InteractionsService/Abandon": [
            lambda b: i.AbandonRequest(request_id=rid(), interaction_id=b.interaction_id)
        ],
        "InteractionsService/Fail": [
            lambda b: i.FailRequest(
                request_id=rid(), interaction_id=b.interaction_id, failure_code="x"
            )
        ],
        "InteractionsService/AppendMessage": [
            lambda b: i.AppendMessageRequest(
                request_id=rid(),
                interaction_id=b.email_interaction_id,
                author=i.Author(role=i.AUTHOR_ROLE_AGENT, id=b.agent_id),
                direction=i.MESSAGE_DIRECTION_OUTBOUND,
                body="from A",
            )
        ],
        "InteractionsService/AddNote": [
            lambda b: i.AddNoteRequest(
                request_id=rid(), interaction_id=b.interaction_id, text="from A"
            )
        ],
        "InteractionsService/AppendTranscript": [
            lambda b: i.AppendTranscriptRequest(
                request_id=rid(),
                interaction_id=b.interaction_id,
                speaker_role=i.AUTHOR_ROLE_AGENT,
                text="from A",
            )
        ],
        "InteractionsService/RecordSatisfaction": [
            lambda b: i.RecordSatisfactionRequest(
                request_id=rid(), interaction_id=b.interaction_id, score=1, scale=5
            )
        ],
        "InteractionsService/GetInteraction": [
            lambda b: i.GetInteractionRequest(
                interaction_id=b.interaction_id, view=i.INTERACTION_VIEW_FULL
            ),
            lambda b: i.GetInteractionRequest(
                interaction_id=b.email_interaction_id, view=i.INTERACTION_VIEW_FULL
            ),
        ],
        "InteractionsService/ListInteractions": [
            lambda b: i.ListInteractionsRequest(view=i.INTERACTION_VIEW_FULL),
            lambda b: i.ListInteractionsRequest(
                queue_id=b.queue_id, customer_profile_id=b.profile_id
            ),
        ],
        "InteractionsService/WatchInteraction": [
            lambda b: i.WatchInteractionRequest(interaction_id=b.interaction_id)
        ],
        # routing
        "RoutingService/UpsertQueue": [
            lambda b: r.UpsertQueueRequest(
                request_id=rid(), queue=r.Queue(queue_id=b.queue_id, name="A's queue")
            )
        ],
        "RoutingService/UpsertAgent": [
            lambda b: r.UpsertAgentRequest(
                request_id=rid(), agent=r.Agent(agent_id=b.agent_id, queues=[b.queue_id])
            )
        ],
        "RoutingService/SetAgentState": [
            lambda b: r.SetAgentStateRequest(
                request_id=rid(), agent_id=b.agent_id, presence=r.PRESENCE_AWAY
            )
        ],
        "RoutingService/Heartbeat": [lambda b: r.HeartbeatRequest(request_id=rid())],
        "RoutingService/AcceptOffer": [
            lambda b: r.AcceptOfferRequest(request_id=rid(), offer_id=b.offer_id)
        ],
        "RoutingService/RejectOffer": [
            lambda b: r.RejectOfferRequest(request_id=rid(), offer_id=b.offer_id)
        ],
        "RoutingService/EndWrapUp": [
            lambda b: r.EndWrapUpRequest(request_id=rid(), interaction_id=b.interaction_id)
        ],
        "RoutingService/GetQueueSnapshot": [
            lambda b: r.GetQueueSnapshotRequest(queue_id=b.queue_id)
        ],
        "RoutingService/ExplainDecision": [lambda b: r.ExplainDecisionRequest(offer_id=b.offer_id)],
        "RoutingService/AgentStream": [lambda b: r.AgentStreamRequest()],
        "RoutingService/ListQueues": [lambda b: r.ListQueuesRequest()],
        "RoutingService/ListAgents": [
            lambda b: r.ListAgentsRequest(),
            lambda b: r.ListAgentsRequest(queue_id=b.queue_id),
        ],
        "RoutingService/GetAgent": [lambda b: r.GetAgentRequest(agent_id=b.agent_id)],
        "RoutingService/ReplayDecisions": [lambda b: r.ReplayDecisionsRequest()],
        # profiles
        "ProfilesService/ResolveIdentity": [
            lambda b: p.ResolveIdentityRequest(
                request_id=rid(),
                identity=p.Identity(kind=p.IDENTITY_KIND_EMAIL, value=b.customer_email),
            )
        ],
        "ProfilesService/GetProfile": [
            lambda b: p.GetProfileRequest(profile_id=b.profile_id, purpose="support"),
            lambda b: p.GetProfileRequest(profile_id=b.other_profile_id, purpose="support"),
        ],
        "ProfilesService/UpdateProfile": [
            lambda b: p.UpdateProfileRequest(
                request_id=rid(), profile_id=b.profile_id, display_name="hijacked by A"
            )
        ],
        "ProfilesService/MergeProfiles": [
            lambda b: p.MergeProfilesRequest(
                request_id=rid(),
                target_profile_id=b.profile_id,
                source_profile_id=b.other_profile_id,
            )
        ],
        "ProfilesService/UnmergeProfile": [
            lambda b: p.UnmergeProfileRequest(request_id=rid(), profile_id=b.profile_id)
        ],
        "ProfilesService/EraseProfile": [
            lambda b: p.EraseProfileRequest(request_id=rid(), profile_id=b.profile_id)
        ],
        "ProfilesService/History": [
            lambda b: p.HistoryRequest(profile_id=b.profile_id, purpose="support")
        ],
        "ProfilesService/ListAccessAudit": [
            lambda b: p.ListAccessAuditRequest(),
            lambda b: p.ListAccessAuditRequest(profile_id=b.profile_id),
        ],
        "ProfilesService/Search": [
            lambda b: p.SearchRequest(
                identity=p.Identity(kind=p.IDENTITY_KIND_EMAIL, value=b.customer_email),
                purpose="support",
            ),
            lambda b: p.SearchRequest(name_prefix="Customer", purpose="support"),
        ],
        "ProfilesService/ConfigureTenant": [
            lambda b: p.ConfigureTenantRequest(request_id=rid(), default_region="FR")
        ],
        # email
        "EmailService/RegisterMailbox": [
            lambda b: e.RegisterMailboxRequest(
                request_id=rid(), address=b.mailbox, routing=e.MailboxRouting(queue_id="a-q")
            )
        ],
        "EmailService/SetMailboxRouting": [
            lambda b: e.SetMailboxRoutingRequest(
                request_id=rid(), address=b.mailbox, routing=e.MailboxRouting(queue_id="a-q")
            )
        ],
        "EmailService/GetMailbox": [lambda b: e.GetMailboxRequest(address=b.mailbox)],
        "EmailService/ListMailboxes": [lambda b: e.ListMailboxesRequest()],
        "EmailService/ConfigureTenant": [
            lambda b: e.ConfigureTenantRequest(
                request_id=rid(), limits=e.TenantLimits(max_inbound_per_minute=1)
            )
        ],
        "EmailService/IngestMessage": [
            lambda b: e.IngestMessageRequest(
                request_id=rid(),
                mailbox_address=b.mailbox,
                raw=_raw_email(b.mailbox, "a@a.example", "from A"),
            )
        ],
        "EmailService/GetMessage": [lambda b: e.GetMessageRequest(message_id=b.message_id)],
        "EmailService/SendReply": [
            lambda b: e.SendReplyRequest(
                request_id=rid(),
                interaction_id=b.email_interaction_id,
                in_reply_to_message_id=b.message_id,
                body_text="from A",
            )
        ],
        "EmailService/ListQuarantine": [lambda b: e.ListQuarantineRequest()],
        "EmailService/ReprocessQuarantined": [
            lambda b: e.ReprocessQuarantinedRequest(
                request_id=rid(), quarantine_id=b.quarantine_id, ignore_limits=True
            )
        ],
        # reporting
        "ReportingService/IntervalHistory": [
            lambda b: rp.IntervalHistoryRequest(queue_ids=[b.queue_id], range=_now_range()),
            lambda b: rp.IntervalHistoryRequest(range=_now_range()),
        ],
        "ReportingService/QueueStats": [
            lambda b: rp.QueueStatsRequest(queue_ids=[b.queue_id]),
            lambda b: rp.QueueStatsRequest(),
        ],
        "ReportingService/AgentStats": [
            lambda b: rp.AgentStatsRequest(agent_ids=[b.agent_id], queue_ids=[b.queue_id]),
            lambda b: rp.AgentStatsRequest(),
        ],
        "ReportingService/ChannelStats": [lambda b: rp.ChannelStatsRequest()],
        "ReportingService/WatchWallboard": [
            lambda b: rp.WatchWallboardRequest(queue_ids=[b.queue_id], include_agents=True),
            lambda b: rp.WatchWallboardRequest(include_agents=True),
        ],
        "ReportingService/ConfigureTenantReporting": [
            lambda b: rp.ConfigureTenantReportingRequest(request_id=rid(), time_zone="Asia/Tokyo")
        ],
        "ReportingService/ConfigureQueueReporting": [
            lambda b: rp.ConfigureQueueReportingRequest(
                request_id=rid(),
                queue_id=b.queue_id,
                service_level_variant=rp.SERVICE_LEVEL_VARIANT_ANSWERED_ONLY,
                service_level_threshold_s=99,
                service_level_target_percent=80,
            )
        ],
        # wfm
        "WfmService/Forecast": [
            lambda b: w.ForecastRequest(
                queue_ids=[b.queue_id],
                interval_minutes=30,
                history_range=_now_range(),
                horizon_start=ts(datetime.now(UTC).replace(minute=0, second=0, microsecond=0)),
                horizon_days=1,
                time_zone="UTC",
            )
        ],
        "WfmService/RequiredStaff": [
            lambda b: w.RequiredStaffRequest(
                interval_minutes=30,
                queues=[
                    w.QueueWorkload(
                        queue_id=b.queue_id,
                        model=w.STAFFING_MODEL_ERLANG_C,
                        target=w.StaffingTarget(service_level=0.8, service_level_seconds=20),
                        intervals=[
                            w.WorkloadInterval(
                                interval_start=ts(datetime(2026, 1, 5, 9, tzinfo=UTC)),
                                volume=10,
                                aht_seconds=300,
                            )
                        ],
                    )
                ],
            )
        ],
        "WfmService/GenerateSchedule": [lambda b: _schedule(b.schedule_id, b.agent_id, b.queue_id)],
        "WfmService/PublishSchedule": [
            lambda b: w.PublishScheduleRequest(request_id=rid(), schedule_id=b.schedule_id)
        ],
        "WfmService/RequestTimeOff": [
            lambda b: w.RequestTimeOffRequest(
                request_id=rid(),
                agent_id=b.agent_id,
                first_date=(datetime.now(UTC) + timedelta(days=30)).date().isoformat(),
                last_date=(datetime.now(UTC) + timedelta(days=30)).date().isoformat(),
            )
        ],
        "WfmService/ApproveTimeOff": [
            lambda b: w.ApproveTimeOffRequest(request_id=rid(), time_off_id=b.time_off_id)
        ],
        "WfmService/DenyTimeOff": [
            lambda b: w.DenyTimeOffRequest(request_id=rid(), time_off_id=b.time_off_id)
        ],
        "WfmService/ListTimeOff": [
            lambda b: w.ListTimeOffRequest(),
            lambda b: w.ListTimeOffRequest(agent_ids=[b.agent_id]),
        ],
        "WfmService/Adherence": [
            lambda b: w.AdherenceRequest(range=_now_range(), agent_ids=[b.agent_id]),
            lambda b: w.AdherenceRequest(range=_now_range()),
        ],
        "WfmService/WatchAdherence": [
            lambda b: w.WatchAdherenceRequest(agent_ids=[b.agent_id]),
            lambda b: w.WatchAdherenceRequest(),
        ],
    }


@dataclass
class Outcome:
    code: grpc.StatusCode
    text: str  # everything the client saw: replies, streamed messages, error details


def call(rpc: Rpc, channel: grpc.Channel, request: Message, md: object) -> Outcome:
    method = rpc.callable(channel)
    seen: list[str] = []
    try:
        if rpc.streaming:
            stream = method(request, metadata=md, timeout=STREAM_WAIT_S)
            try:
                for reply in stream:
                    seen.append(text_format.MessageToString(reply, as_utf8=True))
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:  # a stream that waits
                    raise
            return Outcome(grpc.StatusCode.OK, "\n".join(seen))
        reply = method(request, metadata=md, timeout=30)
        return Outcome(grpc.StatusCode.OK, text_format.MessageToString(reply, as_utf8=True))
    except grpc.RpcError as error:
        trailing = "".join(
            repr(v) for _k, v in (error.trailing_metadata() or ()) if isinstance(v, bytes | str)
        )
        return Outcome(error.code(), f"{error.details()}\n{trailing}\n" + "\n".join(seen))


def test_no_rpc_of_one_tenant_reaches_another_tenants_data(system: System) -> None:
    b = create_tenant_b(system)
    before = b_state(system, b)
    tenant_a = new_tenant("iso-a")
    # As strong as tokens get: every role, and the subject of B's agent.
    md_a = token_metadata(tenant_a, b.ids.agent_id, tuple(Role))  # every role, auditor too
    catalog = cases()
    rpcs = [rpc for name in system.services for rpc in service_rpcs(name, system.address(name))]
    missing = sorted(rpc.key for rpc in rpcs if rpc.key not in catalog)
    assert not missing, f"RPCs without a tenant-isolation case (add them to cases()): {missing}"
    assert len(rpcs) >= 60, [rpc.key for rpc in rpcs]

    ghost = b.ids.ghost()
    problems: list[str] = []
    sent_so_far = ""
    calls = 0
    for rpc in rpcs:
        with grpc.insecure_channel(system.address(rpc.service)) as channel:
            for n, case in enumerate(catalog[rpc.key]):
                request = case(b.ids)
                sent_so_far += text_format.MessageToString(request, as_utf8=True)
                # B's secrets: its marker (in names, subjects, bodies), its tenant id, and
                # those of its ids A never sent (A may keep the ids it sent in its own data).
                secrets = {b.secret, b.tenant} | {v for v in b.ids.values() if v not in sent_so_far}
                outcome = call(rpc, channel, request, md_a)
                expected = GLOBAL_NAMES.get(rpc.key)
                # A global name is taken for A's ids-nobody-has twin only if A takes it itself
                # in the comparison run: that run uses a name of its own there.
                twin = b.ids.ghost() if expected is not None else ghost
                baseline = call(rpc, channel, case(twin), md_a)
                calls += 2
                where = f"{rpc.key}[{n}]"
                leaked = sorted(s for s in secrets if s in outcome.text)
                if leaked:
                    problems.append(f"{where} leaks B's {leaked}: {outcome.text[:300]!r}")
                if expected is not None and outcome.code == expected:
                    continue
                if outcome.code != grpc.StatusCode.OK and outcome.code not in REFUSED:
                    problems.append(f"{where}: {outcome.code.name} {outcome.text[:300]!r}")
                elif outcome.code != baseline.code:
                    problems.append(
                        f"{where}: {outcome.code.name} for B's ids but {baseline.code.name} for "
                        f"ids nobody has (tells A that B's object exists): {outcome.text[:200]!r}"
                    )
    after = b_state(system, b)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not problems, "\n".join(problems)
    assert not changed, f"tenant A changed tenant B's objects: {changed}"
    print(f"tenant isolation: {len(rpcs)} RPCs, {calls} calls as tenant A")

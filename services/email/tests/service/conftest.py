"""The email service in-process with its real peers: the profiles and interactions services
(in-process too, each with its own database), the test PostgreSQL and broker, an aiosmtpd
server as the outbound SMTP relay (it can answer 4xx to test retries), and Debian's dovecot
for IMAP (see test_imap.py). Tests run in the session's event loop; each in a tenant of its
own, with a mailbox address of its own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, TypeVar

import aiosmtplib
import asyncpg
import grpc
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiosmtpd.smtp import SMTP, Envelope, Session

from contactcenter.contracts.events import utc_now
from contactcenter.email.config import EmailSettings, LimitSettings
from contactcenter.email.main import EmailApp, create_app
from contactcenter.email.v1 import email_pb2 as pb
from contactcenter.email.v1 import email_pb2_grpc as pb_grpc
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra.process import free_port
from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.main import create_app as create_interactions
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as ipb_grpc
from contactcenter.messaging.cloudevents import EventEnvelope, decode, encode
from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.main import create_app as create_profiles
from contactcenter.profiles.v1 import profiles_pb2 as ppb
from contactcenter.profiles.v1 import profiles_pb2_grpc as ppb_grpc
from contactcenter.testing.fixtures import TestInfra
from contactcenter.testing.services import service_test_settings, serving, temporary_database

TOPIC = "cc.email.events.v1"
T = TypeVar("T")


class RelayHandler:
    """The outbound SMTP peer: keeps what it accepts; answers 451 to the next `fail_next`."""

    def __init__(self) -> None:
        self.received: list[tuple[Envelope, EmailMessage]] = []
        self.fail_next = 0
        self.refuse_permanently = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_permanently:
            return "554 5.7.1 rejected by policy"
        if self.fail_next > 0:
            self.fail_next -= 1
            return "451 4.3.0 try again later"
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = message_from_bytes(raw, policy=policy.default)
        self.received.append((envelope, message))  # type: ignore[arg-type]
        return "250 OK"


@dataclass
class Stack:
    email: EmailApp
    stub: pb_grpc.EmailServiceStub
    profiles: ppb_grpc.ProfilesServiceStub
    interactions: ipb_grpc.InteractionsServiceStub
    relay: RelayHandler
    smtp_port: int
    email_db: str
    kafka_bootstrap: str
    settings: EmailSettings


# Module-scoped: its consumer groups must have left before other suites' instances of the same
# services join them (a member kept alive for the session takes half of their partitions).
@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(infra: TestInfra) -> AsyncIterator[Stack]:
    relay = RelayHandler()
    loop = asyncio.get_running_loop()
    relay_server = await loop.create_server(
        lambda: SMTP(relay, hostname="relay.test", decode_data=False), "127.0.0.1", 0
    )
    relay_port = relay_server.sockets[0].getsockname()[1]
    base = infra.database_url
    async with (
        temporary_database(base, "test_email_profiles") as profiles_db,
        temporary_database(base, "test_email_interactions") as interactions_db,
        temporary_database(base, "test_email") as email_db,
    ):
        profiles = create_profiles(
            ProfilesSettings(**service_test_settings(profiles_db, infra.kafka_bootstrap))
        )
        # Interactions reads the text of sealed emails from the email service: it is told
        # the port the email service will listen on.
        email_port = free_port()
        interactions = create_interactions(
            InteractionsSettings(
                **service_test_settings(interactions_db, infra.kafka_bootstrap),
                poll_interval_s=0.2,
                email_grpc_address=f"127.0.0.1:{email_port}",
            )
        )
        async with serving(profiles) as profiles_channel, serving(interactions) as ichannel:
            assert profiles.grpc is not None and interactions.grpc is not None
            settings = EmailSettings(
                **{
                    **service_test_settings(email_db, infra.kafka_bootstrap),
                    "grpc_port": email_port,
                },
                smtp_port=0,
                profiles_grpc_address=profiles.grpc.address,
                interactions_grpc_address=interactions.grpc.address,
                relay_host="127.0.0.1",
                relay_port=relay_port,
                reply_base_delay_s=0.2,
                reply_max_attempts=4,
                imap_poll_interval_s=0.3,
                imap_timeout_s=10,
                poll_interval_s=0.2,
                profile_wait_s=5,
                limits=LimitSettings(max_message_bytes=2_000_000, max_attachment_bytes=1_000_000),
            )
            app = create_app(settings)
            async with serving(app) as channel:
                assert app.smtp is not None
                yield Stack(
                    email=app,
                    stub=pb_grpc.EmailServiceStub(channel),
                    profiles=ppb_grpc.ProfilesServiceStub(profiles_channel),
                    interactions=ipb_grpc.InteractionsServiceStub(ichannel),
                    relay=relay,
                    smtp_port=app.smtp.port,
                    email_db=email_db,
                    kafka_bootstrap=infra.kafka_bootstrap,
                    # Other instances of the tests listen elsewhere (gRPC on a free port).
                    settings=settings.model_copy(update={"grpc_port": 0}),
                )
    relay_server.close()


async def eventually(
    probe: Callable[[], Awaitable[T]], *, within_s: float = 20.0, interval: float = 0.1
) -> T:
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await probe()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(interval)


@dataclass
class Api:
    stack: Stack
    tenant_id: str
    mailbox: str
    _seen: list[EventEnvelope] = field(default_factory=list)

    def md(self, roles: tuple[Role, ...] = (Role.ADMIN, Role.SERVICE)) -> Any:
        return metadata_for(issue_token(self.tenant_id, roles, "test-admin"))

    async def call(self, rpc: str, **fields: Any) -> Any:
        request_type = getattr(pb, f"{rpc}Request")
        if "request_id" in request_type.DESCRIPTOR.fields_by_name and "request_id" not in fields:
            fields["request_id"] = str(uuid.uuid4())
        return await getattr(self.stack.stub, rpc)(
            request_type(**fields), metadata=self.md(), timeout=15
        )

    async def register(self, address: str | None = None, **fields: Any) -> Any:
        fields.setdefault(
            "routing", pb.MailboxRouting(queue_id="q-email", priority=3, language="en")
        )
        return await self.call("RegisterMailbox", address=address or self.mailbox, **fields)

    async def smtp_send(
        self, raw: bytes, *, sender: str = "anna@customer.example", to: str | None = None
    ) -> Any:
        if sender == "":  # the null sender of bounces: MAIL FROM:<>
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=self.stack.smtp_port) as s:
                return await s.sendmail("", [to or self.mailbox], raw)
        return await aiosmtplib.send(
            raw,
            sender=sender,
            recipients=[to or self.mailbox],
            hostname="127.0.0.1",
            port=self.stack.smtp_port,
            timeout=15,
        )

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.stack.email_db)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def events(self) -> list[EventEnvelope]:
        """This tenant's events on the email topic so far (from the beginning)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.stack.kafka_bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        try:
            await consumer.topics()
            parts = [TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or []]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            end = await consumer.end_offsets(parts)
            found = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                positions = [await consumer.position(tp) for tp in parts]
                if all(p >= end[tp] for p, tp in zip(positions, parts, strict=True)):
                    break
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for r in records:
                        if r.key == self.tenant_id.encode():
                            found.append(decode(list(r.headers), r.value, key=r.key))
            return found
        finally:
            await consumer.stop()

    async def wait_events(
        self, event_type: str, count: int = 1, within_s: float = 20
    ) -> list[EventEnvelope]:
        async def probe() -> list[EventEnvelope]:
            found = [e for e in await self.events() if e.type == event_type]
            assert len(found) >= count, f"{len(found)} {event_type} so far"
            return found

        return await eventually(probe, within_s=within_s, interval=0.3)

    async def inbox_settled(self, count: int) -> list[asyncpg.Record]:
        async def probe() -> list[asyncpg.Record]:
            rows = await self.sql(
                "select * from email.inbox where tenant_id = $1 order by id", self.tenant_id
            )
            assert len(rows) >= count and all(r["status"] != "pending" for r in rows), rows
            return rows

        return await eventually(probe)

    async def interactions(self) -> list[Any]:
        response = await self.stack.interactions.ListInteractions(
            ipb.ListInteractionsRequest(), metadata=self.md((Role.SUPERVISOR,)), timeout=10
        )
        return list(response.interactions)

    async def interaction(self, interaction_id: str) -> Any:
        response = await self.stack.interactions.GetInteraction(
            ipb.GetInteractionRequest(interaction_id=interaction_id),
            metadata=self.md((Role.SUPERVISOR,)),
            timeout=10,
        )
        return response.interaction

    async def assign(self, interaction_id: str, agent_id: str) -> None:
        """What the routing service publishes when it gives the contact to an agent."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.stack.kafka_bootstrap, enable_idempotence=False
        )
        await producer.start()
        try:
            event_id = uuid.uuid4()
            record = encode(
                EventEnvelope(
                    id=event_id,
                    type="routing.ContactAssigned.v1",
                    source="/contactcenter/test-routing",
                    subject=interaction_id,
                    time=utc_now(),
                    tenant_id=self.tenant_id,
                    data={
                        "event_id": str(event_id),
                        "tenant_id": self.tenant_id,
                        "interaction_id": interaction_id,
                        "agent_id": agent_id,
                    },
                )
            )
            await producer.send_and_wait(
                "cc.routing.events.v1", value=record.value, key=record.key, headers=record.headers
            )
        finally:
            await producer.stop()

        async def assigned() -> None:
            interaction = await self.interaction(interaction_id)
            assert agent_id in interaction.participant_agent_ids or (
                interaction.agent_id == agent_id
            ), interaction

        await eventually(assigned)

    async def resolve(self, address: str) -> str:
        response = await self.stack.profiles.ResolveIdentity(
            ppb.ResolveIdentityRequest(
                request_id=str(uuid.uuid4()),
                identity=ppb.Identity(kind=ppb.IDENTITY_KIND_EMAIL, value=address),
            ),
            metadata=self.md((Role.SERVICE,)),
            timeout=10,
        )
        return str(response.profile_id)


@pytest.fixture
def api(stack: Stack, tenant_id: str) -> Api:
    return Api(stack, tenant_id, f"support-{tenant_id}@acme.example")


@pytest.fixture
def rpc_error() -> type[grpc.aio.AioRpcError]:
    return grpc.aio.AioRpcError


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Awaitable[Any]]:
    return eventually

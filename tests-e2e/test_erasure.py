"""Erasure across services (issue 11): a customer writes by SMTP and on a chat/SMS contact,
`EraseProfile` is called, then every table of the profiles, interactions and email databases
and the three services' topics are searched for the customer's name, email address, phone
and a unique phrase of their message: nothing readable is left, and the APIs answer with
erased markers instead of errors.

The three services run in-process (each with a database of its own) against the test
PostgreSQL and broker, as their own service tests start them; every call goes through their
public gRPC and SMTP doors.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiosmtplib
import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contactcenter.common.v1 import common_pb2
from contactcenter.email.config import EmailSettings
from contactcenter.email.main import create_app as create_email
from contactcenter.email.v1 import email_pb2 as epb
from contactcenter.email.v1 import email_pb2_grpc as epb_grpc
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra.process import free_port
from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.main import create_app as create_interactions
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as ipb_grpc
from contactcenter.messaging.admin import topic_partitions
from contactcenter.privacy import ERASED
from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.main import create_app as create_profiles
from contactcenter.profiles.v1 import profiles_pb2 as ppb
from contactcenter.profiles.v1 import profiles_pb2_grpc as ppb_grpc
from contactcenter.testing.fixtures import TestInfra
from contactcenter.testing.services import service_test_settings, serving, temporary_database

pytestmark = pytest.mark.asyncio(loop_scope="session")

T = TypeVar("T")
TOPICS = ("cc.profiles.events.v1", "cc.interactions.events.v1", "cc.email.events.v1")


async def eventually(probe: Callable[[], Awaitable[T]], within_s: float = 30) -> T:
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await probe()
        except (AssertionError, LookupError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


@dataclass
class Customer:
    name: str
    email: str
    phone: str
    phrase: str

    @property
    def secrets(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "phone": self.phone, "phrase": self.phrase}


@dataclass
class Findings:
    """Where each secret was still readable after the erasure (place -> secret names)."""

    tables: dict[str, set[str]]
    topics: dict[str, set[str]]
    interactions: list[ipb.Interaction]
    email_messages: list[epb.GetMessageResponse]
    profile: ppb.GetProfileResponse
    #: Where each secret was found before the erasure (proves the search finds them).
    before: dict[str, set[str]]


def _scan(text: str, customer: Customer) -> set[str]:
    low = text.lower()
    return {k for k, v in customer.secrets.items() if v.lower() in low}


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


async def _scan_database(url: str, customer: Customer) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' "
            "and table_schema not in ('pg_catalog', 'information_schema')"
        )
        assert tables, url
        for t in tables:
            name = f'"{t["table_schema"]}"."{t["table_name"]}"'
            for row in await conn.fetch(f"select * from {name}"):
                hits = _scan(" ".join(_as_text(v) for v in row.values()), customer)
                if hits:
                    found.setdefault(name, set()).update(hits)
    finally:
        await conn.close()
    return found


async def _scan_topics(bootstrap: str, tenant_id: str, customer: Customer) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for topic in TOPICS:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            numbers = (await topic_partitions(admin, [topic])).get(topic, set())
            parts = [TopicPartition(topic, p) for p in sorted(numbers)]
            assert parts, topic
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            end = await consumer.end_offsets(parts)
            seen = 0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all([await consumer.position(tp) >= end[tp] for tp in parts]):
                    break
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for r in records:
                        if r.key != tenant_id.encode():
                            continue
                        seen += 1
                        text = _as_text(r.value or b"") + " ".join(
                            f"{k}={_as_text(v)}" for k, v in r.headers
                        )
                        hits = _scan(text, customer)
                        if hits:
                            found.setdefault(topic, set()).update(hits)
            assert seen, f"no event of the tenant on {topic}"
        finally:
            await admin.close()
            await consumer.stop()
    return found


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def erased(infra: TestInfra) -> AsyncIterator[tuple[Customer, Findings]]:
    tenant_id = f"t-erase-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:8]
    customer = Customer(
        name=f"Erin Zq{tag}",
        email=f"erin.{tag}@customer.example",
        phone=f"+4144{int(tag, 16) % 10_000_000:07d}",
        phrase=f"my fridge {tag} hums at night",
    )
    base = infra.database_url
    bootstrap = infra.kafka_bootstrap
    async with (
        temporary_database(base, "e2e_erasure_profiles") as profiles_db,
        temporary_database(base, "e2e_erasure_interactions") as interactions_db,
        temporary_database(base, "e2e_erasure_email") as email_db,
    ):
        profiles = create_profiles(
            ProfilesSettings(**service_test_settings(profiles_db, bootstrap))
        )
        email_port = free_port()  # interactions reads sealed emails' text there
        interactions = create_interactions(
            InteractionsSettings(
                **service_test_settings(interactions_db, bootstrap),
                poll_interval_s=0.2,
                email_grpc_address=f"127.0.0.1:{email_port}",
            )
        )
        async with serving(profiles) as pch, serving(interactions) as ich:
            assert profiles.grpc is not None and interactions.grpc is not None
            email = create_email(
                EmailSettings(
                    **{**service_test_settings(email_db, bootstrap), "grpc_port": email_port},
                    smtp_port=0,
                    profiles_grpc_address=profiles.grpc.address,
                    interactions_grpc_address=interactions.grpc.address,
                    poll_interval_s=0.2,
                    profile_wait_s=5,
                )
            )
            async with serving(email) as ech:
                assert email.smtp is not None
                findings = await _journey(
                    tenant_id,
                    customer,
                    ppb_grpc.ProfilesServiceStub(pch),
                    ipb_grpc.InteractionsServiceStub(ich),
                    epb_grpc.EmailServiceStub(ech),
                    email.smtp.port,
                    (profiles_db, interactions_db, email_db),
                    bootstrap,
                )
                yield customer, findings


async def _journey(
    tenant_id: str,
    customer: Customer,
    profiles: ppb_grpc.ProfilesServiceStub,
    interactions: ipb_grpc.InteractionsServiceStub,
    email: epb_grpc.EmailServiceStub,
    smtp_port: int,
    databases: tuple[str, ...],
    bootstrap: str,
) -> Findings:
    md = metadata_for(issue_token(tenant_id, (Role.ADMIN, Role.SERVICE), "e2e"))
    sup = metadata_for(issue_token(tenant_id, (Role.SUPERVISOR, Role.ADMIN), "e2e-sup"))
    mailbox = f"support-{tenant_id}@acme.example"
    await email.RegisterMailbox(
        epb.RegisterMailboxRequest(
            request_id=str(uuid.uuid4()),
            address=mailbox,
            routing=epb.MailboxRouting(queue_id="q-email"),
        ),
        metadata=md,
        timeout=15,
    )
    raw = (
        f"From: {customer.name} <{customer.email}>\r\nTo: {mailbox}\r\n"
        f"Subject: fridge noise\r\nMessage-ID: <{uuid.uuid4()}@mail.example>\r\n"
        f"Date: Tue, 24 Nov 2026 09:00:00 +0000\r\n\r\n"
        f"Hello, {customer.phrase}. Call me on {customer.phone}.\r\n"
    ).encode()
    await aiosmtplib.send(
        raw,
        sender=customer.email,
        recipients=[mailbox],
        hostname="127.0.0.1",
        port=smtp_port,
        timeout=15,
    )

    async def email_contact() -> ipb.Interaction:
        listed = await interactions.ListInteractions(
            ipb.ListInteractionsRequest(channels=[common_pb2.CHANNEL_EMAIL]),
            metadata=sup,
            timeout=10,
        )
        assert len(listed.interactions) == 1, listed
        found = listed.interactions[0]
        assert found.customer_profile_id, found
        return found

    by_email = await eventually(email_contact)
    profile_id = by_email.customer_profile_id
    # The same customer on SMS, through interactions' AppendMessage.
    created = await interactions.CreateInteraction(
        ipb.CreateInteractionRequest(
            request_id=str(uuid.uuid4()),
            channel=common_pb2.CHANNEL_SMS,
            customer_profile_id=profile_id,
            customer_address=customer.phone,
            attributes={"customer_name": customer.name},
            agent_id="agent-1",
        ),
        metadata=md,
        timeout=10,
    )
    sms_id = created.result.interaction_id
    await interactions.AppendMessage(
        ipb.AppendMessageRequest(
            request_id=str(uuid.uuid4()),
            interaction_id=sms_id,
            author=ipb.Author(
                role=ipb.AUTHOR_ROLE_CUSTOMER, id=profile_id, display_name=customer.name
            ),
            direction=ipb.MESSAGE_DIRECTION_INBOUND,
            body=f"{customer.phrase} (sms from {customer.email})",
        ),
        metadata=md,
        timeout=10,
    )
    before = await interactions.GetInteraction(
        ipb.GetInteractionRequest(interaction_id=sms_id), metadata=sup, timeout=10
    )
    assert customer.phrase in before.interaction.messages[0].body  # readable before

    # The search sees the data while it is there (raw bytes, events, read models).
    before_tables: dict[str, set[str]] = {}
    for url in databases:
        before_tables.update(await _scan_database(url, customer))
    seen = set().union(*before_tables.values())
    assert seen == set(customer.secrets), before_tables

    await profiles.EraseProfile(
        ppb.EraseProfileRequest(
            request_id=str(uuid.uuid4()), profile_id=profile_id, reason="GDPR art. 17"
        ),
        metadata=md,
        timeout=15,
    )

    async def all_erased() -> list[ipb.Interaction]:
        got = []
        for iid in (by_email.interaction_id, sms_id):
            i = await interactions.GetInteraction(
                ipb.GetInteractionRequest(interaction_id=iid), metadata=sup, timeout=10
            )
            assert i.interaction.customer_address == ERASED, i.interaction.customer_address
            got.append(i.interaction)
        return got

    erased_contacts = await eventually(all_erased)

    async def email_erased() -> list[epb.GetMessageResponse]:
        conn = await asyncpg.connect(databases[2])
        try:
            rows = await conn.fetch(
                "select message_id, view->>'erased' as erased from email.messages "
                "where tenant_id = $1",
                tenant_id,
            )
        finally:
            await conn.close()
        assert rows and all(r["erased"] == "true" for r in rows), rows
        return [
            await email.GetMessage(
                epb.GetMessageRequest(message_id=r["message_id"]), metadata=md, timeout=10
            )
            for r in rows
        ]

    messages = await eventually(email_erased)
    profile = await profiles.GetProfile(
        ppb.GetProfileRequest(profile_id=profile_id, purpose="erasure check"),
        metadata=md,
        timeout=10,
    )
    tables: dict[str, set[str]] = {}
    for url in databases:
        tables.update(await _scan_database(url, customer))
    topics = await _scan_topics(bootstrap, tenant_id, customer)
    return Findings(tables, topics, erased_contacts, messages, profile, before_tables)


async def test_no_service_stores_readable_personal_data_after_erasure(erased) -> None:
    _, findings = erased
    assert findings.tables == {}, f"personal data left in tables: {findings.tables}"


async def test_no_topic_carries_readable_personal_data(erased) -> None:
    _, findings = erased
    assert findings.topics == {}, f"personal data readable on {findings.topics}"


async def test_apis_answer_with_erased_markers(erased) -> None:
    customer, findings = erased
    for interaction in findings.interactions:
        assert interaction.customer_address == ERASED
        for m in interaction.messages:
            assert m.body in (ERASED, ""), m.body
    sms = next(i for i in findings.interactions if i.channel == common_pb2.CHANNEL_SMS)
    assert sms.attributes["customer_name"] == ERASED
    assert sms.messages[0].author.display_name == ERASED
    assert findings.email_messages
    for message in findings.email_messages:
        assert customer.email not in str(message)
        assert customer.phrase not in str(message)


async def test_the_search_finds_the_data_before_the_erasure(erased) -> None:
    customer, findings = erased
    places = set(findings.before)
    assert '"email"."blobs"' in places, places  # the raw email
    assert '"email"."messages"' in places, places  # the read model GetMessage serves
    # Events are sealed: nothing readable in them even before the erasure.
    assert not any(p.startswith('"interactions"') for p in places), places
    assert '"email"."events"' not in places, places
    assert findings.profile.profile.status == ppb.PROFILE_STATUS_ERASED
    assert customer.name not in str(findings.profile)

"""Keep first, parse second: a 250 means the raw message is durable. An intake process that
stops before anything is parsed loses nothing: the next process works the stored queue."""

from __future__ import annotations

import asyncio
from typing import Any

import aiosmtplib
import asyncpg
import pytest

from contactcenter.email import corpus
from contactcenter.email.config import EmailSettings
from contactcenter.email.main import create_app
from contactcenter.email.v1 import email_pb2 as pb
from contactcenter.email.v1 import email_pb2_grpc as pb_grpc
from contactcenter.testing.fixtures import TestInfra as Infra
from contactcenter.testing.services import serving, temporary_database

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_stored_but_unprocessed_mail_is_processed_after_a_restart(
    api: Any, stack: Any, infra: Infra
) -> None:
    async with temporary_database(infra.database_url, "test_email_restart") as url:
        base = {
            **stack.settings.model_dump(),
            "database_url": url,
            "smtp_port": 0,
            "imap_enabled": False,
        }
        first = create_app(EmailSettings(**{**base, "processing_enabled": False}))
        ids = [corpus.new_message_id() for _ in range(3)]
        async with serving(first) as channel:
            assert first.smtp is not None
            await pb_grpc.EmailServiceStub(channel).RegisterMailbox(
                pb.RegisterMailboxRequest(request_id="r1", address=api.mailbox),
                metadata=api.md(),
            )
            for mid in ids:
                errors, answer = await aiosmtplib.send(
                    corpus.plain(to=api.mailbox, message_id=mid),
                    sender="anna@customer.example",
                    recipients=[api.mailbox],
                    hostname="127.0.0.1",
                    port=first.smtp.port,
                )
                assert errors == {} and answer.startswith("2.0.0 OK stored")
        conn = await asyncpg.connect(url)
        try:
            statuses = await conn.fetch("select status from email.inbox")
            assert [r["status"] for r in statuses] == ["pending"] * 3
        finally:
            await conn.close()

        second = create_app(EmailSettings(**base))
        async with serving(second):
            events = await api.wait_events("email.EmailReceived.v1", 3)
            assert sorted(e.data["internet_message_id"] for e in events) == sorted(ids)


async def test_smtp_worker_processes_share_the_port(api: Any, stack: Any, infra: Infra) -> None:
    async with temporary_database(infra.database_url, "test_email_workers") as url:
        settings = {
            **stack.settings.model_dump(),
            "database_url": url,
            "smtp_port": 0,
            "imap_enabled": False,
            "smtp_workers": 2,
        }
        app = create_app(EmailSettings(**settings))
        async with serving(app) as channel:
            assert app.smtp is None and app.smtp_port > 0  # the workers took the port over
            await pb_grpc.EmailServiceStub(channel).RegisterMailbox(
                pb.RegisterMailboxRequest(request_id="r1", address=api.mailbox),
                metadata=api.md(),
            )
            ids = [corpus.new_message_id() for _ in range(12)]
            await asyncio.sleep(2.0)  # the workers see the new mailbox within a second
            for mid in ids:  # one connection each: the kernel spreads them
                errors, _ = await aiosmtplib.send(
                    corpus.plain(to=api.mailbox, message_id=mid),
                    sender="anna@customer.example",
                    recipients=[api.mailbox],
                    hostname="127.0.0.1",
                    port=app.smtp_port,
                )
                assert errors == {}
            events = await api.wait_events("email.EmailReceived.v1", 12)
            assert sorted(e.data["internet_message_id"] for e in events) == sorted(ids)

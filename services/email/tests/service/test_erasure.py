"""ProfileErased: the customer's messages become tombstones (dedupe and threading keep
working), their raw bytes go unless another tenant's message shares them, addresses leave
the read models."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contactcenter.email import corpus
from contactcenter.grpckit import Role
from contactcenter.profiles.v1 import profiles_pb2 as ppb

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _erase(api: Any, profile_id: str) -> None:
    await api.stack.profiles.EraseProfile(
        ppb.EraseProfileRequest(request_id=str(uuid.uuid4()), profile_id=profile_id),
        metadata=api.md((Role.ADMIN,)),
        timeout=15,
    )


async def test_erasure_tombstones_messages_and_keeps_shared_blobs(
    api: Any, stack: Any, eventually: Any
) -> None:
    other = type(api)(stack, f"{api.tenant_id}-b", f"support-{api.tenant_id}-b@acme.example")
    await api.register()
    await other.register()
    tag = uuid.uuid4().hex[:8]
    sender = f"zoe.{tag}@customer.example"
    phrase = f"secret phrase {tag}"
    message_id = corpus.new_message_id()
    # The same bytes reach both tenants (one SMTP transaction, two mailboxes).
    raw = corpus.plain(
        f"Zoe {tag} <{sender}>",
        f"{api.mailbox}, {other.mailbox}",
        body=phrase,
        message_id=message_id,
    )
    await api.smtp_send(raw, sender=sender, to=api.mailbox)
    await other.smtp_send(raw, sender=sender, to=other.mailbox)
    (mine,) = await api.wait_events("email.EmailReceived.v1")
    await other.wait_events("email.EmailReceived.v1")
    sha = mine.data["raw_sha256"]
    profile_id = mine.data["customer_profile_id"]
    assert profile_id

    await _erase(api, profile_id)

    async def tombstoned() -> Any:
        (row,) = await api.sql("select * from email.messages where tenant_id = $1", api.tenant_id)
        assert row["raw_sha256"] is None, row
        return row

    row = await eventually(tombstoned)
    assert sender not in str(dict(row)) and phrase not in str(dict(row))
    assert row["internet_message_id"] == message_id  # dedupe and threading still work
    (thread,) = await api.sql(
        "select customer_address from email.threads where tenant_id = $1", api.tenant_id
    )
    assert thread["customer_address"] == "[erased]"
    events = await api.sql(
        "select data::text as d from email.events where tenant_id = $1", api.tenant_id
    )
    assert events and all(sender not in e["d"] and phrase not in e["d"] for e in events)
    # The other tenant's message still refers to the bytes: they stay.
    assert await api.sql("select 1 from email.blobs where sha256 = $1", sha)
    (kept,) = await other.sql(
        "select from_address from email.messages where tenant_id = $1", other.tenant_id
    )
    assert kept["from_address"] == sender
    message = (await api.call("GetMessage", message_id=mine.data["message_id"])).message
    assert phrase not in str(message) and sender not in str(message)

    (theirs,) = await other.wait_events("email.EmailReceived.v1")
    await _erase(other, theirs.data["customer_profile_id"])

    async def blob_gone() -> None:
        assert not await api.sql("select 1 from email.blobs where sha256 = $1", sha)

    await eventually(blob_gone)

    # The same message again (sent anew after the erasure) is still a duplicate.
    await api.smtp_send(raw, sender=sender, to=api.mailbox)
    rows = await api.inbox_settled(1)  # the erased one was dropped
    assert rows[-1]["status"] == "duplicate"

    # A new mail of the erased sender is not linked to the erased profile (the service's
    # sender -> profile cache forgot it): the profiles service resolves the address anew.
    await api.smtp_send(
        corpus.plain(f"Zoe {tag} <{sender}>", api.mailbox, body="back again"),
        sender=sender,
        to=api.mailbox,
    )

    received = await api.wait_events("email.EmailReceived.v1", 2)
    assert received[-1].data["customer_profile_id"] not in (None, "", profile_id)

"""Crypto-shredding: the customer's personal data is stored and published sealed, readable
through the API, and reads as erased after the customer's profile is erased."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from contactcenter.common.v1 import common_pb2
from contactcenter.interactions.v1 import interactions_pb2 as pb
from contactcenter.privacy import ERASED

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROFILES = "cc.profiles.events.v1"
AGENT = "agent-7"


async def _stored_text(service, tenant_id: str) -> str:
    conn = await asyncpg.connect(service.database_url)
    s = '"' + service.app.context.schema + '"'
    try:
        rows = await conn.fetch(
            f"select data::text as d from {s}.events where tenant_id = $1 union all "
            f"select view::text from {s}.interaction_list where tenant_id = $1",
            tenant_id,
        )
    finally:
        await conn.close()
    return "\n".join(r["d"] for r in rows)


async def test_personal_data_is_sealed_readable_then_erased(
    api, service, publisher, eventually
) -> None:
    profile = f"p-{uuid.uuid4()}"
    phrase = f"my parcel {uuid.uuid4().hex[:10]} never came"
    iid = (
        await api.create(
            channel=common_pb2.CHANNEL_CHAT,
            customer_profile_id=profile,
            customer_address="ann.erasable@example.org",
            subject="Ann's parcel",
            attributes={"customer_name": "Ann Erasable", "tier": "gold"},
            agent_id=AGENT,
        )
    ).interaction_id
    other = (await api.create(channel=common_pb2.CHANNEL_CHAT, agent_id=AGENT)).interaction_id
    await api.call("Connect", interaction_id=iid)
    await api.call(
        "AppendMessage",
        interaction_id=iid,
        author=pb.Author(role=pb.AUTHOR_ROLE_CUSTOMER, display_name="Ann Erasable"),
        direction=pb.MESSAGE_DIRECTION_INBOUND,
        body=phrase,
    )
    await api.call("AddNote", interaction_id=iid, author_id=AGENT, text=f"note: {phrase}")
    await api.call(
        "AppendMessage",
        interaction_id=other,
        author=pb.Author(role=pb.AUTHOR_ROLE_CUSTOMER, display_name="Bob Kept"),
        direction=pb.MESSAGE_DIRECTION_INBOUND,
        body="another customer's words",
    )

    got = (await api.call("GetInteraction", interaction_id=iid)).interaction
    assert got.customer_address == "ann.erasable@example.org"
    assert got.attributes["customer_name"] == "Ann Erasable"
    assert got.attributes["tier"] == "gold"  # not personal: stays readable for routing
    assert got.messages[0].body == phrase
    stored = await _stored_text(service, api.tenant_id)
    for secret in (phrase, "ann.erasable@example.org", "Ann Erasable", "Bob Kept"):
        assert secret not in stored
    assert "gold" in stored

    await publisher.publish(
        PROFILES,
        api.tenant_id,
        "profiles.ProfileErased.v1",
        {"erasure_id": "e-1", "erased_profile_ids": [profile]},
    )

    async def erased() -> pb.Interaction:
        i = (await api.call("GetInteraction", interaction_id=iid)).interaction
        assert i.customer_address == ERASED
        return i

    after = await eventually(erased)
    assert after.messages[0].body == ERASED
    assert after.messages[0].author.display_name == ERASED
    assert after.notes[0].text == ERASED
    assert after.subject == ERASED
    assert after.attributes["customer_name"] == ERASED
    assert after.attributes["tier"] == "gold"
    listed = await api.call("ListInteractions", customer_profile_id=profile)
    assert [i.customer_address for i in listed.interactions] == [ERASED]
    # Another customer's contact is untouched; new text on the erased one is not kept.
    kept = (await api.call("GetInteraction", interaction_id=other)).interaction
    assert kept.messages[0].body == "another customer's words"
    await api.call(
        "AppendMessage",
        interaction_id=iid,
        author=pb.Author(role=pb.AUTHOR_ROLE_CUSTOMER),
        direction=pb.MESSAGE_DIRECTION_INBOUND,
        body="late words",
    )
    late = (await api.call("GetInteraction", interaction_id=iid)).interaction
    assert late.messages[-1].body == ERASED
    assert "late words" not in await _stored_text(service, api.tenant_id)

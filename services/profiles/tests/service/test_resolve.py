"""ResolveIdentity: normalisation, idempotence, one profile under real concurrency, repair."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from contactcenter.profiles.v1 import profiles_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")

EMAIL, PHONE = pb.IDENTITY_KIND_EMAIL, pb.IDENTITY_KIND_PHONE


async def test_a_new_identity_creates_a_profile_and_spellings_resolve_to_it(api: Any) -> None:
    first = await api.resolve(EMAIL, " Jane.Doe@Bücher.CH ", display_name="Jane Doe")
    assert first.created
    assert first.identity.value == "jane.doe@xn--bcher-kva.ch"
    again = await api.resolve(EMAIL, "jane.doe@xn--bcher-kva.ch")
    assert (again.profile_id, again.created) == (first.profile_id, False)
    profile = await api.get(first.profile_id)
    assert profile.display_name == "Jane Doe"
    assert [i.value for i in profile.identities] == ["jane.doe@xn--bcher-kva.ch"]


async def test_a_retried_request_gets_the_first_answer(api: Any) -> None:
    request_id = str(uuid.uuid4())
    first = await api.resolve(EMAIL, "retry@example.com", request_id=request_id)
    retry = await api.resolve(EMAIL, "retry@example.com", request_id=request_id)
    assert first.created and retry.created
    assert retry.profile_id == first.profile_id


async def test_phone_numbers_in_the_tenant_default_region(api: Any) -> None:
    await api.call("ConfigureTenant", default_region="CH", roles=["admin"])
    local = await api.resolve(PHONE, "044 668 18 00")
    assert local.identity.value == "+41446681800"
    international = await api.resolve(PHONE, "+41 44 668 18 00")
    assert international.profile_id == local.profile_id
    us = await api.resolve(PHONE, "(201) 555-0123", default_region="US")
    assert us.identity.value == "+12015550123"


@pytest.mark.parametrize(
    ("kind", "value", "field"),
    [
        (EMAIL, "not-an-email", "identity.value"),
        (EMAIL, "a@b@", "identity.value"),
        (PHONE, "12", "identity.value"),
        (PHONE, "+99 123", "identity.value"),
        (pb.IDENTITY_KIND_SOCIAL, "@jane", "identity.namespace"),
        (pb.IDENTITY_KIND_UNSPECIFIED, "x", "identity.kind"),
    ],
)
async def test_bad_identities_are_invalid_arguments_naming_the_field(
    api: Any, errors: Any, kind: int, value: str, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.resolve(kind, value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in errors.violations(caught.value)


async def test_concurrent_resolves_of_one_new_identity_give_one_profile(api: Any) -> None:
    """Many clients at once, over separate connections: one profile, one ProfileCreated."""
    channels = [grpc.aio.insecure_channel(api.service.app.grpc.address) for _ in range(8)]
    try:
        stubs = [type(api.stub)(c) for c in channels]
        identity = pb.Identity(kind=EMAIL, value="race@example.com")

        async def resolve(n: int) -> pb.ResolveIdentityResponse:
            return await stubs[n % len(stubs)].ResolveIdentity(
                pb.ResolveIdentityRequest(request_id=str(uuid.uuid4()), identity=identity),
                metadata=api.md(),
                timeout=10,
            )

        answers = await asyncio.gather(*(resolve(n) for n in range(40)))
    finally:
        for c in channels:
            await c.close()
    assert len({a.profile_id for a in answers}) == 1
    assert sum(a.created for a in answers) == 1
    (profile_id,) = {a.profile_id for a in answers}
    created = await api.sql(
        "select count(*) from profiles.events where tenant_id = $1 "
        "and event_type = 'profiles.ProfileCreated.v1'",
        api.tenant_id,
    )
    assert created[0][0] == 1
    rows = await api.sql(
        "select profile_id, confirmed from profiles.identities where tenant_id = $1",
        api.tenant_id,
    )
    assert [(r["profile_id"], r["confirmed"]) for r in rows] == [(profile_id, True)]


async def test_a_claim_interrupted_before_its_append_is_repaired(api: Any) -> None:
    """A crash between the identity claim and the append: the next resolve completes it."""
    app = api.service.app.application
    from contactcenter.profiles.domain import IdentityKind, normalise

    identity = normalise(IdentityKind.EMAIL, "crashed@example.com")
    ref = (await app.identity_refs(api.tenant_id)).ref(identity)
    orphan = str(uuid.uuid4())
    assert await app.tables.claim_identity(
        api.tenant_id, identity.kind, ref, orphan, "create", "crashed-request"
    )
    resolved = await api.resolve(EMAIL, "Crashed@Example.com")
    assert resolved.profile_id == orphan and not resolved.created
    again = await api.resolve(EMAIL, "crashed@example.com")
    assert again.profile_id == orphan
    events = await api.sql(
        "select event_type from profiles.events where stream_id = $1",
        f"profile/{api.tenant_id}/{orphan}",
    )
    assert [e["event_type"] for e in events] == ["profiles.ProfileCreated.v1"]

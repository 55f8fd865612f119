"""UpdateProfile, merges and unmerges, history, roles and the audit trail."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import grpc
import pytest

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.events import utc_now
from contactcenter.profiles.v1 import profiles_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")

EMAIL, PHONE = pb.IDENTITY_KIND_EMAIL, pb.IDENTITY_KIND_PHONE


async def _profile(api: Any, email: str, name: str = "") -> str:
    return (await api.resolve(EMAIL, email, display_name=name)).profile_id  # type: ignore[no-any-return]


async def test_update_attributes_consent_and_identities(api: Any, errors: Any) -> None:
    await api.call(
        "ConfigureTenant",
        roles=["admin"],
        default_region="DE",
        attributes=[
            pb.AttributeDefinition(
                name="tier", type=pb.ATTRIBUTE_TYPE_ENUM, allowed_values=["a", "b"]
            ),
            pb.AttributeDefinition(name="birthday", type=pb.ATTRIBUTE_TYPE_DATE),
        ],
    )
    pid = await _profile(api, "max@example.de", "Max Muster")
    response = await api.call(
        "UpdateProfile",
        profile_id=pid,
        language="de-DE",
        time_zone="Europe/Berlin",
        vip_tier=2,
        attributes={"tier": "a", "birthday": "1990-04-01"},
        consents=[pb.ChannelConsent(channel=common_pb2.CHANNEL_SMS, contact_allowed=True)],
        add_identities=[pb.Identity(kind=PHONE, value="030 901820")],
    )
    p = response.profile
    assert (p.language, p.time_zone, p.vip_tier) == ("de-DE", "Europe/Berlin", 2)
    assert dict(p.attributes) == {"tier": "a", "birthday": "1990-04-01"}
    assert {i.value for i in p.identities} == {"max@example.de", "+4930901820"}
    assert (await api.resolve(PHONE, "+49 30 901820")).profile_id == pid

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.call("UpdateProfile", profile_id=pid, attributes={"tier": "z", "shoe": "42"})
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(errors.violations(bad.value)) == {"attributes[tier]", "attributes[shoe]"}

    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await api.call("UpdateProfile", profile_id=pid, expected_version=1, vip_tier=3)
    assert stale.value.code() == grpc.StatusCode.ABORTED

    other = await _profile(api, "other@example.de")
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await api.call(
            "UpdateProfile",
            profile_id=other,
            add_identities=[pb.Identity(kind=EMAIL, value="MAX@example.de")],
        )
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS

    removed = await api.call(
        "UpdateProfile",
        profile_id=pid,
        remove_identities=[pb.Identity(kind=PHONE, value="+4930901820")],
    )
    assert {i.value for i in removed.profile.identities} == {"max@example.de"}
    again = await api.resolve(PHONE, "+4930901820")
    assert again.created and again.profile_id != pid


async def test_a_retried_update_appends_nothing_twice(api: Any) -> None:
    pid = await _profile(api, "once@example.com")
    request_id = str(uuid.uuid4())
    for _ in range(2):
        await api.call("UpdateProfile", request_id=request_id, profile_id=pid, vip_tier=1)
    versions = await api.sql(
        "select count(*) from profiles.events where stream_id = $1",
        f"profile/{api.tenant_id}/{pid}",
    )
    assert versions[0][0] == 2


async def test_merge_redirects_and_unmerge_restores(api: Any, errors: Any) -> None:
    target = await _profile(api, "ann@example.com", "Ann")
    source = (await api.resolve(PHONE, "+41446681800")).profile_id
    merged = await api.call(
        "MergeProfiles", target_profile_id=target, source_profile_id=source, roles=["supervisor"]
    )
    assert list(merged.profile.merged_profile_ids) == [source]
    assert {i.value for i in merged.profile.identities} == {"ann@example.com", "+41446681800"}
    # The source's id and identities land on the target.
    assert (await api.resolve(PHONE, "+41 44 668 18 00")).profile_id == target
    assert (await api.get(source)).profile_id == target
    found = await api.call("Search", identity=pb.Identity(kind=PHONE, value="+41446681800"))
    assert [p.profile_id for p in found.profiles] == [target]

    # A chain: a third profile merged into the target of the first merge.
    third = await _profile(api, "ann.work@example.com")
    await api.call("MergeProfiles", target_profile_id=third, source_profile_id=target)
    assert (await api.resolve(PHONE, "+41446681800")).profile_id == third
    assert set((await api.get(third)).merged_profile_ids) == {target, source}

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await api.call("MergeProfiles", target_profile_id=third, source_profile_id=target)
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    unmerged = await api.call("UnmergeProfile", profile_id=target, roles=["supervisor"])
    assert unmerged.profile.profile_id == target
    assert list(unmerged.profile.merged_profile_ids) == [source]
    assert (await api.resolve(PHONE, "+41446681800")).profile_id == target
    assert (await api.resolve(EMAIL, "ann@example.com")).profile_id == target
    assert (await api.resolve(EMAIL, "ann.work@example.com")).profile_id == third

    events = await api.sql(
        "select event_type from profiles.events where stream_id = $1 order by version",
        f"profile/{api.tenant_id}/{target}",
    )
    assert [e["event_type"].split(".")[1] for e in events] == [
        "ProfileCreated",
        "ProfileMerged",
        "ProfileMergedInto",
        "ProfileRestored",
    ]


async def test_unmerge_outside_the_window_is_refused(api: Any) -> None:
    await api.call("ConfigureTenant", roles=["admin"], unmerge_window_days=1)
    target = await _profile(api, "w1@example.com")
    source = await _profile(api, "w2@example.com")
    await api.call("MergeProfiles", target_profile_id=target, source_profile_id=source)
    await api.sql(
        "update profiles.events set data = jsonb_set(data, '{occurred_at}', to_jsonb($2::text)) "
        "where stream_id = $1 and event_type = 'profiles.ProfileMergedInto.v1'",
        f"profile/{api.tenant_id}/{source}",
        (utc_now() - timedelta(days=2)).isoformat(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await api.call("UnmergeProfile", profile_id=source, roles=["admin"])
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_history_from_interaction_events_newest_first_with_merged_profiles(
    api: Any, publisher: Any, eventually: Any
) -> None:
    pid = await _profile(api, "hist@example.com")
    other = await _profile(api, "hist2@example.com")
    t0 = utc_now() - timedelta(hours=1)
    for n in range(5):
        iid = f"i-{n}"
        await publisher.interaction(
            api.tenant_id,
            "InteractionCreated",
            iid,
            channel="voice" if n % 2 else "email",
            direction="inbound",
            customer_profile_id=pid if n < 4 else None,
            at=t0 + timedelta(minutes=n),
        )
        await publisher.interaction(
            api.tenant_id,
            "InteractionConnected",
            iid,
            agent_id=f"agent-{n}",
            first_answer=True,
            at=t0 + timedelta(minutes=n, seconds=10),
        )
    await publisher.interaction(
        api.tenant_id, "InteractionProfileLinked", "i-4", profile_id=other, reason="resolved"
    )
    await publisher.interaction(
        api.tenant_id,
        "InteractionCompleted",
        "i-3",
        agent_id="agent-3",
        disposition_codes=["resolved"],
        talk_ms=1,
        hold_ms=0,
        wrap_up_ms=0,
        handle_ms=1,
        wait_ms=0,
    )

    async def four() -> Any:
        page = await api.call("History", profile_id=pid, page=common_pb2.PageRequest(page_size=3))
        assert [e.interaction_id for e in page.entries] == ["i-3", "i-2", "i-1"]
        assert page.entries[0].state == "completed"
        assert list(page.entries[0].disposition_codes) == ["resolved"]
        return page

    first = await eventually(four)
    second = await api.call(
        "History",
        profile_id=pid,
        page=common_pb2.PageRequest(page_size=3, page_token=first.page.next_page_token),
    )
    assert [e.interaction_id for e in second.entries] == ["i-0"]
    assert not second.page.next_page_token

    profile = await api.get(pid)
    assert profile.last_agent_id == "agent-3"
    assert {c.interaction_id for c in profile.last_contacts} == {"i-3", "i-2"}

    await api.call("MergeProfiles", target_profile_id=pid, source_profile_id=other)

    async def combined() -> None:
        page = await api.call("History", profile_id=pid)
        assert [e.interaction_id for e in page.entries] == ["i-4", "i-3", "i-2", "i-1", "i-0"]
        assert page.entries[0].profile_id == other

    await eventually(combined)


async def test_roles_masking_and_audit_trail(api: Any, errors: Any) -> None:
    pid = await _profile(api, "secret@example.com", "Sam Secret")
    await api.call("UpdateProfile", profile_id=pid, attributes={"note": "x"})
    as_agent = await api.call("GetProfile", profile_id=pid, roles=["agent"], purpose="call 42")
    assert [i.value for i in as_agent.profile.identities] == ["s***@example.com"]
    assert dict(as_agent.profile.attributes) == {}
    for rpc, fields in [
        ("EraseProfile", {"profile_id": pid}),
        ("MergeProfiles", {"target_profile_id": pid, "source_profile_id": pid}),
        ("ConfigureTenant", {}),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await api.call(rpc, roles=["agent"], **fields)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, rpc
    with pytest.raises(grpc.aio.AioRpcError) as no_purpose:
        await api.call("GetProfile", profile_id=pid, purpose="")
    assert "purpose" in errors.violations(no_purpose.value)

    await api.call("Search", name_prefix="sam", roles=["supervisor"], purpose="dedupe")
    audit = await api.sql(
        "select actor, roles, action, purpose from profiles.access_audit "
        "where tenant_id = $1 and profile_id = $2 order by id",
        api.tenant_id,
        pid,
    )
    assert [(a["action"], a["purpose"], list(a["roles"])) for a in audit] == [
        ("update", "update", ["service"]),
        ("read", "call 42", ["agent"]),
        ("search", "dedupe", ["supervisor"]),
    ]


async def test_search_by_name_prefix_pages(api: Any) -> None:
    ids = {await _profile(api, f"sm{n}@example.com", f"Smith {n}") for n in range(5)}
    await _profile(api, "jones@example.com", "Jones")
    first = await api.call("Search", name_prefix="SMI", page=common_pb2.PageRequest(page_size=3))
    rest = await api.call(
        "Search",
        name_prefix="smi",
        page=common_pb2.PageRequest(page_size=3, page_token=first.page.next_page_token),
    )
    names = [p.display_name for p in [*first.profiles, *rest.profiles]]
    assert names == [f"Smith {n}" for n in range(5)]
    assert {p.profile_id for p in [*first.profiles, *rest.profiles]} == ids


async def test_tenants_are_isolated(api: Any, service: Any) -> None:
    pid = await _profile(api, "iso@example.com")
    other = type(api)(service, f"t-{uuid.uuid4().hex[:12]}")
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await other.get(pid)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await other.resolve(EMAIL, "iso@example.com")).profile_id != pid

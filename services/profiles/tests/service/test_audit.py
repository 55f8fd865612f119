"""ListAccessAudit: the trail of access to personal data, for auditors and admins only, filtered
by profile, actor and time, paged with a cursor, never across tenants."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.profiles.v1 import profiles_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def audit(
    api: Any, roles: Any = (Role.AUDITOR,), **fields: Any
) -> pb.ListAccessAuditResponse:
    return await api.call("ListAccessAudit", roles=roles, **fields)  # type: ignore[no-any-return]


async def test_the_trail_is_listed_filtered_and_paged(api: Any, errors: Any) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    ann = (await api.resolve(pb.IDENTITY_KIND_EMAIL, "ann@example.com")).profile_id
    bob = (await api.resolve(pb.IDENTITY_KIND_EMAIL, "bob@example.com")).profile_id
    supervisor = api.md([Role.SUPERVISOR], "sup-1")
    agent = api.md([Role.AGENT], "agent-2")
    for profile_id, metadata, purpose in (
        (ann, supervisor, "complaint 1"),
        (bob, supervisor, "complaint 2"),
        (ann, agent, "callback"),
    ):
        await api.stub.GetProfile(
            pb.GetProfileRequest(profile_id=profile_id, purpose=purpose), metadata=metadata
        )
    await api.stub.History(
        pb.HistoryRequest(profile_id=ann, purpose="history check"), metadata=supervisor
    )

    everything = await audit(api)
    reads = [e for e in everything.entries if e.action in ("read", "history")]
    assert [(e.profile_id, e.actor, e.action, e.purpose) for e in reads] == [
        (ann, "sup-1", "history", "history check"),
        (ann, "agent-2", "read", "callback"),
        (bob, "sup-1", "read", "complaint 2"),
        (ann, "sup-1", "read", "complaint 1"),
    ]
    assert list(reads[1].roles) == ["agent"]
    assert all(e.occur_time.ToDatetime(UTC) >= started for e in everything.entries)
    ids = [e.entry_id for e in everything.entries]
    assert len(set(ids)) == len(ids)

    by_profile = await audit(api, profile_id=bob)
    assert {(e.profile_id, e.purpose) for e in by_profile.entries if e.action == "read"} == {
        (bob, "complaint 2")
    }
    assert all(e.profile_id == bob for e in by_profile.entries)
    by_actor = await audit(api, actor="agent-2", roles=(Role.ADMIN,))
    assert [(e.profile_id, e.purpose) for e in by_actor.entries] == [(ann, "callback")]
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert not (await audit(api, time_range=common_pb2.TimeRange(start_time=ts(later)))).entries
    window = common_pb2.TimeRange(start_time=ts(started), end_time=ts(later))
    assert [e.entry_id for e in (await audit(api, time_range=window)).entries] == ids

    # One entry a page: every entry once, in the same order.
    paged: list[int] = []
    token = ""
    while True:
        page = await audit(api, page=common_pb2.PageRequest(page_size=1, page_token=token))
        paged.extend(e.entry_id for e in page.entries)
        token = page.page.next_page_token
        if not token:
            break
    assert paged == ids

    # Another tenant sees none of it.
    other = metadata_for(issue_token(f"other-{uuid.uuid4()}", [Role.AUDITOR], "auditor"))
    assert not (await api.stub.ListAccessAudit(pb.ListAccessAuditRequest(), metadata=other)).entries


@pytest.mark.parametrize("role", [Role.AGENT, Role.SUPERVISOR, Role.SERVICE])
async def test_only_auditors_and_admins_may_read_the_trail(api: Any, role: Role) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await audit(api, roles=(role,))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_auditors_get_no_other_method(api: Any) -> None:
    profile_id = (await api.resolve(pb.IDENTITY_KIND_EMAIL, "carl@example.com")).profile_id
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await api.call("GetProfile", profile_id=profile_id, roles=(Role.AUDITOR,))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_bad_filters_name_the_field(api: Any, errors: Any) -> None:
    now = datetime.now(UTC)
    backwards = common_pb2.TimeRange(start_time=ts(now), end_time=ts(now - timedelta(hours=1)))
    cases = [
        ({"time_range": backwards}, "time_range.end_time"),
        ({"page": common_pb2.PageRequest(page_token="garbage")}, "page.page_token"),
        ({"page": common_pb2.PageRequest(page_size=-1)}, "page.page_size"),
        ({"actor": "x" * 200}, "actor"),
    ]
    for fields, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await audit(api, **fields)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(errors.violations(bad.value)) == {field}

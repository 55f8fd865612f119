"""The profile aggregate: given events, when a command, then events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from contactcenter.contracts.errors import FailedPrecondition, IllegalTransition, ValidationFailed
from contactcenter.profiles.domain import (
    AttributeDefinition,
    AttributeSchema,
    AttributeType,
    Channel,
    Consent,
    IdentityAdded,
    IdentityKind,
    IdentityRemoved,
    ProfileCreated,
    ProfileErased,
    ProfileMerged,
    ProfileMergedInto,
    ProfileRestored,
    ProfileStatus,
    ProfileUnmerged,
    ProfileUpdated,
    UpdateProfile,
    decide_create,
    decide_erase,
    decide_merge,
    decide_unmerge,
    decide_update,
    fold,
    normalise,
)

TENANT = "t-acme"
EMAIL = normalise(IdentityKind.EMAIL, "jane@example.com")
PHONE = normalise(IdentityKind.PHONE, "+41446681800")


def created(pid: str, cipher: Any, refs: Any, t0: datetime, name: str = "Jane") -> list[Any]:
    return decide_create(TENANT, pid, EMAIL, name, cipher, refs, t0)


def test_created_profile_seals_personal_data(cipher: Any, refs: Any, t0: datetime) -> None:
    (event,) = created("p1", cipher, refs, t0)
    assert isinstance(event, ProfileCreated)
    text = event.model_dump_json()
    assert "jane@example.com" not in text and "Jane" not in text
    state = fold(TENANT, "p1", [event], cipher)
    assert state.status is ProfileStatus.ACTIVE
    assert state.display_name == "Jane"
    assert [i.value for i in state.identities.values()] == ["jane@example.com"]


def test_update_changes_only_what_differs(cipher: Any, refs: Any, t0: datetime) -> None:
    given = created("p1", cipher, refs, t0)
    state = fold(TENANT, "p1", given, cipher)
    command = UpdateProfile(
        display_name="Jane Doe",
        language="en-GB",
        vip_tier=3,
        attributes={"city": "Zurich"},
        consents=[Consent(channel=Channel.SMS, contact_allowed=True, marketing_allowed=False)],
        add_identities=[PHONE, EMAIL],
    )
    then = decide_update(state, command, cipher, refs, AttributeSchema(), t0)
    assert [type(e) for e in then] == [ProfileUpdated, IdentityAdded]
    update = then[0]
    assert "Zurich" not in update.model_dump_json()
    assert json.loads(cipher.open(update.sealed_changes)) == {
        "attributes": {"city": "Zurich"},
        "display_name": "Jane Doe",
    }
    after = fold(TENANT, "p1", [*given, *then], cipher)
    assert (after.display_name, after.language, after.vip_tier) == ("Jane Doe", "en-GB", 3)
    assert after.attributes == {"city": "Zurich"}
    assert after.consents[Channel.SMS].updated_at == t0
    # The same command again: nothing changes, nothing is appended.
    assert decide_update(after, command, cipher, refs, AttributeSchema(), t0) == []
    removal = decide_update(
        after,
        UpdateProfile(remove_identities=[PHONE], attributes={"city": ""}),
        cipher,
        refs,
        AttributeSchema(),
        t0,
    )
    assert [type(e) for e in removal] == [ProfileUpdated, IdentityRemoved]
    final = fold(TENANT, "p1", [*given, *then, *removal], cipher)
    assert final.attributes == {} and len(final.identities) == 1


def test_update_is_checked_against_the_tenant_schema(cipher: Any, refs: Any, t0: datetime) -> None:
    state = fold(TENANT, "p1", created("p1", cipher, refs, t0), cipher)
    schema = AttributeSchema(
        attributes=(
            AttributeDefinition(name="tier", type=AttributeType.ENUM, allowed_values=("gold",)),
            AttributeDefinition(name="since", type=AttributeType.DATE),
            AttributeDefinition(name="visits", type=AttributeType.INTEGER),
        )
    )
    bad = UpdateProfile(
        attributes={"tier": "silver", "since": "yesterday", "visits": "1.5", "x": "1"},
        vip_tier=11,
    )
    with pytest.raises(ValidationFailed) as caught:
        decide_update(state, bad, cipher, refs, schema, t0)
    assert {v.field for v in caught.value.field_violations} == {"vip_tier"}
    with pytest.raises(ValidationFailed) as caught:
        decide_update(state, UpdateProfile(attributes=bad.attributes), cipher, refs, schema, t0)
    assert {v.field for v in caught.value.field_violations} == {
        "attributes[tier]",
        "attributes[since]",
        "attributes[visits]",
        "attributes[x]",
    }
    with pytest.raises(ValidationFailed) as caught:
        decide_update(state, UpdateProfile(remove_identities=[PHONE]), cipher, refs, schema, t0)
    assert caught.value.field_violations[0].field == "remove_identities[0].value"


def test_merge_then_unmerge_within_the_window(cipher: Any, refs: Any, t0: datetime) -> None:
    target = fold(TENANT, "p1", created("p1", cipher, refs, t0), cipher)
    source_given = decide_create(TENANT, "p2", PHONE, None, cipher, refs, t0)
    source = fold(TENANT, "p2", source_given, cipher)
    source_events, target_events = decide_merge(target, source, "m1", t0)
    assert [type(e) for e in source_events] == [ProfileMergedInto]
    assert [type(e) for e in target_events] == [ProfileMerged]
    merged_source = fold(TENANT, "p2", [*source_given, *source_events], cipher)
    merged_target = fold(TENANT, "p1", [*created("p1", cipher, refs, t0), *target_events], cipher)
    assert merged_source.status is ProfileStatus.MERGED
    with pytest.raises(IllegalTransition):
        decide_merge(merged_target, merged_source, "m2", t0)
    with pytest.raises(ValidationFailed):
        decide_merge(target, target, "m3", t0)

    with pytest.raises(FailedPrecondition):
        decide_unmerge(merged_source, merged_target, t0 + timedelta(days=31), timedelta(days=30))
    target_back, source_back = decide_unmerge(
        merged_source, merged_target, t0 + timedelta(days=1), timedelta(days=30)
    )
    assert [type(e) for e in target_back] == [ProfileUnmerged]
    assert [type(e) for e in source_back] == [ProfileRestored]
    restored = fold(TENANT, "p2", [*source_given, *source_events, *source_back], cipher)
    assert restored.status is ProfileStatus.ACTIVE and restored.merged_into is None


def test_a_merge_carries_the_profiles_merged_into_the_source(
    cipher: Any, refs: Any, t0: datetime
) -> None:
    given = [
        *created("p2", cipher, refs, t0),
        ProfileMerged(tenant_id=TENANT, profile_id="p2", merge_id="m0", source_profile_id="p3"),
    ]
    source = fold(TENANT, "p2", given, cipher)
    target = fold(TENANT, "p1", created("p1", cipher, refs, t0), cipher)
    _, (merged,) = decide_merge(target, source, "m1", t0)
    assert merged.redirected_profile_ids == ("p3",)


def test_erasure_leaves_no_personal_data_in_the_state(cipher: Any, refs: Any, t0: datetime) -> None:
    given = created("p1", cipher, refs, t0)
    state = fold(TENANT, "p1", given, cipher)
    (erased,) = decide_erase(state, "e1", ["p1"], t0)
    assert isinstance(erased, ProfileErased) and erased.erased_profile_ids == ("p1",)
    cipher.shredded = True  # the key is gone: the old events no longer open
    after = fold(TENANT, "p1", [*given, erased], cipher)
    assert after.status is ProfileStatus.ERASED
    assert (after.display_name, after.identities, after.readable) == (None, {}, False)
    assert decide_erase(after, "e2", ["p1"], t0) == []
    with pytest.raises(IllegalTransition):
        decide_update(after, UpdateProfile(vip_tier=1), cipher, refs, AttributeSchema(), t0)

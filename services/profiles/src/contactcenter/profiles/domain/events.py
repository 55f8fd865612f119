"""The events of the profiles context: `profiles.<EventName>.v1` on `cc.profiles.events.v1`.

Personal data never appears in clear in an event: names, identity values and custom attributes
travel as `sealed` text, encrypted with the profile's own key (AES-GCM). Erasing a profile
destroys that key, so every copy of these events (store, topic, a subscriber's data lake)
becomes unreadable at once. Identities are referenced by `ref`, a keyed hash (HMAC with a
tenant secret) that cannot be reversed without the secret. Ids, kinds, channels, consent,
language, time zone and VIP tier are kept in clear: routing and reporting act on them and
they do not identify a person.

Streams: `profile/<tenant_id>/<profile_id>` and `tenant/<tenant_id>/settings`.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contactcenter.contracts.events import DomainEvent, event
from contactcenter.profiles.domain.identities import IdentityKind
from contactcenter.profiles.domain.values import AttributeDefinition, Consent

CONTEXT = "profiles"
PROFILE_STREAM = "profile"
TENANT_STREAM = "tenant"


class SealedIdentity(BaseModel):
    """An identity in an event: its kind and namespace in clear, its index reference (keyed
    hash) and its value encrypted with the profile key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: IdentityKind
    namespace: str = ""
    ref: str = Field(min_length=16)
    sealed_value: str


class ProfileEvent(DomainEvent):
    profile_id: str = Field(min_length=1, max_length=64)


@event
class ProfileCreated(ProfileEvent):
    """A profile came into being, with the identity it was first resolved from."""

    event_type: ClassVar[str] = "profiles.ProfileCreated.v1"

    identities: tuple[SealedIdentity, ...] = ()
    #: {"display_name": ...} sealed; None when nothing personal was given.
    sealed_details: str | None = None


@event
class ProfileUpdated(ProfileEvent):
    """Attributes changed. Fields left None did not change."""

    event_type: ClassVar[str] = "profiles.ProfileUpdated.v1"

    #: Sealed JSON {"display_name"?: str, "attributes"?: {name: value, "" = removed}}.
    sealed_changes: str | None = None
    language: str | None = None
    time_zone: str | None = None
    vip_tier: int | None = None
    consents: tuple[Consent, ...] = ()


@event
class IdentityAdded(ProfileEvent):
    event_type: ClassVar[str] = "profiles.IdentityAdded.v1"

    identity: SealedIdentity


@event
class IdentityRemoved(ProfileEvent):
    event_type: ClassVar[str] = "profiles.IdentityRemoved.v1"

    kind: IdentityKind
    ref: str


@event
class ProfileMerged(ProfileEvent):
    """`source_profile_id` was merged into this profile (the target, which remains).

    `redirected_profile_ids`: profiles that had been merged into the source before and now
    redirect here too (an unmerge gives them back to the source).
    """

    event_type: ClassVar[str] = "profiles.ProfileMerged.v1"

    merge_id: str
    source_profile_id: str
    redirected_profile_ids: tuple[str, ...] = ()


@event
class ProfileMergedInto(ProfileEvent):
    """This profile (the source) was merged into `target_profile_id`; it redirects there."""

    event_type: ClassVar[str] = "profiles.ProfileMergedInto.v1"

    merge_id: str
    target_profile_id: str


@event
class ProfileUnmerged(ProfileEvent):
    """A merge into this profile (the target) was undone; the source stands alone again."""

    event_type: ClassVar[str] = "profiles.ProfileUnmerged.v1"

    merge_id: str
    source_profile_id: str
    redirected_profile_ids: tuple[str, ...] = ()


@event
class ProfileRestored(ProfileEvent):
    """This profile (a merge's source) is active again after an unmerge."""

    event_type: ClassVar[str] = "profiles.ProfileRestored.v1"

    merge_id: str
    target_profile_id: str


@event
class ProfileErased(ProfileEvent):
    """Right to be forgotten: the profile's key is destroyed and its read models purged.

    Subscribers delete what they hold about `erased_profile_ids` (the profile and every profile
    merged into it). Carries no personal data.
    """

    event_type: ClassVar[str] = "profiles.ProfileErased.v1"

    erasure_id: str
    erased_profile_ids: tuple[str, ...]


@event
class TenantConfigured(DomainEvent):
    """A tenant's profile settings (the full new settings, not a delta)."""

    event_type: ClassVar[str] = "profiles.TenantConfigured.v1"

    default_region: str | None = None
    attributes: tuple[AttributeDefinition, ...] = ()
    unmerge_window_days: int = Field(ge=1)


#: Every event class of the context, in declaration order.
EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ProfileCreated,
    ProfileUpdated,
    IdentityAdded,
    IdentityRemoved,
    ProfileMerged,
    ProfileMergedInto,
    ProfileUnmerged,
    ProfileRestored,
    ProfileErased,
    TenantConfigured,
)

__all__ = [
    "CONTEXT",
    "EVENT_TYPES",
    "PROFILE_STREAM",
    "TENANT_STREAM",
    "IdentityAdded",
    "IdentityRemoved",
    "ProfileCreated",
    "ProfileErased",
    "ProfileEvent",
    "ProfileMerged",
    "ProfileMergedInto",
    "ProfileRestored",
    "ProfileUnmerged",
    "ProfileUpdated",
    "SealedIdentity",
    "TenantConfigured",
]

"""The profile aggregate: its state as a fold over its events, and the decisions on it.

Personal data is sealed with the profile's key through the `ProfileCipher` port before it is
put into an event, and opened again when the state is folded; a cipher whose key was destroyed
opens nothing (the state then has no personal data, which is what erasure means).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from contactcenter.contracts.errors import (
    FailedPrecondition,
    FieldViolation,
    IllegalTransition,
    ValidationFailed,
)
from contactcenter.contracts.events import DomainEvent
from contactcenter.profiles.domain.events import (
    IdentityAdded,
    IdentityRemoved,
    ProfileCreated,
    ProfileErased,
    ProfileEvent,
    ProfileMerged,
    ProfileMergedInto,
    ProfileRestored,
    ProfileUnmerged,
    ProfileUpdated,
    SealedIdentity,
)
from contactcenter.profiles.domain.identities import Identity, IdentityKind
from contactcenter.profiles.domain.values import (
    MAX_ATTRIBUTES,
    AttributeSchema,
    Channel,
    Consent,
    ProfileStatus,
)

MAX_NAME: Final = 200
MAX_VIP_TIER: Final = 10
MAX_IDENTITIES: Final = 50
# BCP 47, loosely: language[-script][-region][-variants]; the full registry check is not ours.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_TIME_ZONE = re.compile(r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+){0,2}$|^UTC$")


class ProfileCipher(Protocol):
    """Seals and opens personal data with one profile's key."""

    def seal(self, plaintext: str) -> str: ...

    def open(self, sealed: str) -> str | None:
        """The plaintext, or None when the key was destroyed (erased profile)."""
        ...


class IdentityRefs(Protocol):
    """The identity index's reference of an identity (a keyed hash, per tenant)."""

    def ref(self, identity: Identity) -> str: ...


@dataclass(frozen=True, slots=True)
class MergeLink:
    merge_id: str
    other_profile_id: str
    merged_at: datetime
    redirected_profile_ids: tuple[str, ...] = ()


@dataclass
class OpenIdentity:
    """An identity of the profile: its reference, and its value when the key could open it."""

    kind: IdentityKind
    namespace: str
    ref: str
    value: str | None


@dataclass
class ProfileState:
    tenant_id: str
    profile_id: str
    version: int = 0
    status: ProfileStatus | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    identities: dict[str, OpenIdentity] = field(default_factory=dict)
    display_name: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    time_zone: str | None = None
    vip_tier: int = 0
    consents: dict[Channel, Consent] = field(default_factory=dict)
    #: Set while this profile is merged into another.
    merged_into: MergeLink | None = None
    #: Profiles merged into this one, by source id.
    merged_sources: dict[str, MergeLink] = field(default_factory=dict)
    #: False when sealed data could not be opened (the key is gone).
    readable: bool = True

    @property
    def exists(self) -> bool:
        return self.status is not None

    def require_active(self) -> None:
        if self.status is None:
            raise FailedPrecondition(f"profile {self.profile_id} does not exist")
        if self.status is not ProfileStatus.ACTIVE:
            raise IllegalTransition(
                f"profile {self.profile_id} is {self.status.value}", self.status.value
            )


def fold(
    tenant_id: str,
    profile_id: str,
    events: Iterable[DomainEvent],
    cipher: ProfileCipher | None,
) -> ProfileState:
    """The state after `events` (in stream order); personal data opened with `cipher`."""
    state = ProfileState(tenant_id=tenant_id, profile_id=profile_id)
    for e in events:
        apply(state, e, cipher)
    return state


def _open(state: ProfileState, cipher: ProfileCipher | None, sealed: str | None) -> str | None:
    if sealed is None or cipher is None:
        return None
    text = cipher.open(sealed)
    if text is None:
        state.readable = False
    return text


def apply(state: ProfileState, e: DomainEvent, cipher: ProfileCipher | None) -> None:
    if not isinstance(e, ProfileEvent):
        raise TypeError(f"not a profile event: {e.event_type}")
    state.version += 1
    state.updated_at = e.occurred_at
    if isinstance(e, ProfileCreated):
        state.status = ProfileStatus.ACTIVE
        state.created_at = e.occurred_at
        for identity in e.identities:
            _add_identity(state, identity, cipher)
        details = _open(state, cipher, e.sealed_details)
        if details is not None:
            state.display_name = json.loads(details).get("display_name")
    elif isinstance(e, ProfileUpdated):
        changes = _open(state, cipher, e.sealed_changes)
        if changes is not None:
            data: dict[str, Any] = json.loads(changes)
            if "display_name" in data:
                state.display_name = data["display_name"] or None
            for name, value in data.get("attributes", {}).items():
                if value:
                    state.attributes[name] = value
                else:
                    state.attributes.pop(name, None)
        if e.language is not None:
            state.language = e.language or None
        if e.time_zone is not None:
            state.time_zone = e.time_zone or None
        if e.vip_tier is not None:
            state.vip_tier = e.vip_tier
        for consent in e.consents:
            state.consents[consent.channel] = consent
    elif isinstance(e, IdentityAdded):
        _add_identity(state, e.identity, cipher)
    elif isinstance(e, IdentityRemoved):
        state.identities.pop(e.ref, None)
    elif isinstance(e, ProfileMerged):
        state.merged_sources[e.source_profile_id] = MergeLink(
            e.merge_id, e.source_profile_id, e.occurred_at, e.redirected_profile_ids
        )
    elif isinstance(e, ProfileMergedInto):
        state.status = ProfileStatus.MERGED
        state.merged_into = MergeLink(e.merge_id, e.target_profile_id, e.occurred_at)
    elif isinstance(e, ProfileUnmerged):
        state.merged_sources.pop(e.source_profile_id, None)
    elif isinstance(e, ProfileRestored):
        state.status = ProfileStatus.ACTIVE
        state.merged_into = None
    elif isinstance(e, ProfileErased):
        state.status = ProfileStatus.ERASED
        state.identities.clear()
        state.display_name = None
        state.attributes.clear()
        state.readable = False


def _add_identity(state: ProfileState, s: SealedIdentity, cipher: ProfileCipher | None) -> None:
    state.identities[s.ref] = OpenIdentity(
        kind=s.kind, namespace=s.namespace, ref=s.ref, value=_open(state, cipher, s.sealed_value)
    )


def seal_identity(identity: Identity, cipher: ProfileCipher, refs: IdentityRefs) -> SealedIdentity:
    return SealedIdentity(
        kind=identity.kind,
        namespace=identity.namespace,
        ref=refs.ref(identity),
        sealed_value=cipher.seal(identity.value),
    )


# --- commands and decisions ------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateProfile:
    """What to change; None / empty leaves a field as it is. An empty attribute value removes
    the attribute; an empty display_name / language / time_zone clears it."""

    display_name: str | None = None
    language: str | None = None
    time_zone: str | None = None
    vip_tier: int | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    consents: Sequence[Consent] = ()
    add_identities: Sequence[Identity] = ()
    remove_identities: Sequence[Identity] = ()


def check_display_name(name: str, field_name: str = "display_name") -> str:
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise ValidationFailed([(field_name, f"longer than {MAX_NAME} characters")])
    return name


def decide_create(
    tenant_id: str,
    profile_id: str,
    identity: Identity,
    display_name: str | None,
    cipher: ProfileCipher,
    refs: IdentityRefs,
    now: datetime,
) -> list[DomainEvent]:
    name = check_display_name(display_name) if display_name else ""
    return [
        ProfileCreated(
            tenant_id=tenant_id,
            profile_id=profile_id,
            occurred_at=now,
            identities=(seal_identity(identity, cipher, refs),),
            sealed_details=cipher.seal(json.dumps({"display_name": name})) if name else None,
        )
    ]


def decide_update(
    state: ProfileState,
    command: UpdateProfile,
    cipher: ProfileCipher,
    refs: IdentityRefs,
    schema: AttributeSchema,
    now: datetime,
) -> list[DomainEvent]:
    """The events of an update; none when nothing would change (a repeat is a no-op)."""
    state.require_active()
    c = command
    bad: list[FieldViolation] = []
    if c.language and not _LANGUAGE.match(c.language):
        bad.append(FieldViolation("language", "not a BCP 47 language tag"))
    if c.time_zone and not _TIME_ZONE.match(c.time_zone):
        bad.append(FieldViolation("time_zone", "not an IANA time zone name"))
    if c.vip_tier is not None and not 0 <= c.vip_tier <= MAX_VIP_TIER:
        bad.append(FieldViolation("vip_tier", f"must be 0..{MAX_VIP_TIER}"))
    if bad:
        raise ValidationFailed(bad)
    schema.check(c.attributes)
    name = None if c.display_name is None else check_display_name(c.display_name)

    changes: dict[str, Any] = {}
    if name is not None and (name or None) != state.display_name:
        changes["display_name"] = name
    attributes = {
        k: v for k, v in sorted(c.attributes.items()) if (state.attributes.get(k) or "") != v
    }
    if attributes:
        after = {**state.attributes, **attributes}
        if len([v for v in after.values() if v]) > MAX_ATTRIBUTES:
            raise ValidationFailed([("attributes", f"more than {MAX_ATTRIBUTES} attributes")])
        changes["attributes"] = attributes
    language = _changed(c.language, state.language)
    time_zone = _changed(c.time_zone, state.time_zone)
    vip = c.vip_tier if c.vip_tier is not None and c.vip_tier != state.vip_tier else None
    consents = tuple(
        consent.model_copy(update={"updated_at": now})
        for consent in {x.channel: x for x in c.consents}.values()
        if _consent_changed(state.consents.get(consent.channel), consent)
    )
    events: list[DomainEvent] = []
    base = {"tenant_id": state.tenant_id, "profile_id": state.profile_id, "occurred_at": now}
    if changes or language is not None or time_zone is not None or vip is not None or consents:
        events.append(
            ProfileUpdated(
                **base,
                sealed_changes=cipher.seal(json.dumps(changes, sort_keys=True))
                if changes
                else None,
                language=language,
                time_zone=time_zone,
                vip_tier=vip,
                consents=consents,
            )
        )
    removed = {refs.ref(i): (n, i) for n, i in enumerate(c.remove_identities)}
    for ref, (n, identity) in removed.items():
        if ref not in state.identities:
            raise ValidationFailed(
                [(f"remove_identities[{n}].value", "not an identity of this profile")]
            )
        events.append(IdentityRemoved(**base, kind=identity.kind, ref=ref))
    added: set[str] = set()
    for identity in c.add_identities:
        ref = refs.ref(identity)
        if (ref in state.identities and ref not in removed) or ref in added:
            continue  # already there: adding it again changes nothing
        added.add(ref)
        events.append(IdentityAdded(**base, identity=seal_identity(identity, cipher, refs)))
    if len(state.identities) - len(removed) + len(added) > MAX_IDENTITIES:
        raise ValidationFailed([("add_identities", f"more than {MAX_IDENTITIES} identities")])
    return events


def _changed(given: str | None, current: str | None) -> str | None:
    """The new value ("" clears) when `given` changes `current`, else None."""
    if given is None or (given or None) == current:
        return None
    return given


def _consent_changed(current: Consent | None, new: Consent) -> bool:
    return current is None or (current.contact_allowed, current.marketing_allowed) != (
        new.contact_allowed,
        new.marketing_allowed,
    )


def decide_merge(
    target: ProfileState, source: ProfileState, merge_id: str, now: datetime
) -> tuple[list[DomainEvent], list[DomainEvent]]:
    """(events of the source, events of the target). The profiles that were merged into the
    source before now redirect to the target as well."""
    if target.profile_id == source.profile_id:
        raise ValidationFailed([("source_profile_id", "a profile cannot be merged into itself")])
    for state in (target, source):
        if not state.exists:
            raise FailedPrecondition(f"profile {state.profile_id} does not exist")
        state.require_active()
    redirected = tuple(sorted(source.merged_sources))
    return (
        [
            ProfileMergedInto(
                tenant_id=source.tenant_id,
                profile_id=source.profile_id,
                occurred_at=now,
                merge_id=merge_id,
                target_profile_id=target.profile_id,
            )
        ],
        [
            ProfileMerged(
                tenant_id=target.tenant_id,
                profile_id=target.profile_id,
                occurred_at=now,
                merge_id=merge_id,
                source_profile_id=source.profile_id,
                redirected_profile_ids=redirected,
            )
        ],
    )


def decide_unmerge(
    source: ProfileState, target: ProfileState, now: datetime, window: timedelta
) -> tuple[list[DomainEvent], list[DomainEvent]]:
    """(events of the target, events of the source): undo the source's merge into the target
    when it is the source's latest merge and within `window`."""
    link = source.merged_into
    if source.status is not ProfileStatus.MERGED or link is None:
        state = source.status.value if source.status else "missing"
        raise IllegalTransition(f"profile {source.profile_id} is not merged", state)
    target.require_active()
    back = target.merged_sources.get(source.profile_id)
    if link.other_profile_id != target.profile_id or back is None:
        raise FailedPrecondition("the merge to undo is not the target's")
    if now - link.merged_at > window:
        raise FailedPrecondition(
            f"the merge is older than the unmerge window ({window.days} days)", "merged"
        )
    return (
        [
            ProfileUnmerged(
                tenant_id=target.tenant_id,
                profile_id=target.profile_id,
                occurred_at=now,
                merge_id=link.merge_id,
                source_profile_id=source.profile_id,
                redirected_profile_ids=back.redirected_profile_ids,
            )
        ],
        [
            ProfileRestored(
                tenant_id=source.tenant_id,
                profile_id=source.profile_id,
                occurred_at=now,
                merge_id=link.merge_id,
                target_profile_id=target.profile_id,
            )
        ],
    )


def erased_group(root: ProfileState, merged: Mapping[str, ProfileState]) -> tuple[str, ...]:
    """The root and every profile merged into it (directly or through another merge)."""
    group = [root.profile_id]
    for source_id, link in sorted(root.merged_sources.items()):
        group.append(source_id)
        group.extend(link.redirected_profile_ids)
    for state in merged.values():
        group.extend(state.merged_sources)
    return tuple(dict.fromkeys(group))


def decide_erase(
    state: ProfileState, erasure_id: str, group: Sequence[str], now: datetime
) -> list[DomainEvent]:
    if state.status is None:
        raise FailedPrecondition(f"profile {state.profile_id} does not exist")
    if state.status is ProfileStatus.ERASED:
        return []
    return [
        ProfileErased(
            tenant_id=state.tenant_id,
            profile_id=state.profile_id,
            occurred_at=now,
            erasure_id=erasure_id,
            erased_profile_ids=tuple(group),
        )
    ]

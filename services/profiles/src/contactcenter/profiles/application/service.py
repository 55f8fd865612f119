"""The command and query handlers of the profiles service.

Consistency model:
- The event store is the truth about profiles. The identity index (`identities`) is the truth
  about which profile owns an identity: its unique key is what makes two concurrent resolves
  of one new identity agree on one profile. An identity is first claimed there (INSERT ... ON
  CONFLICT DO NOTHING), then its event is appended with a request id derived from the claim,
  then the claim is confirmed. A crash between claim and append leaves an unconfirmed claim;
  the next resolve of that identity repeats the append, which the derived request id makes
  idempotent (the same profile, one ProfileCreated).
- Merges, unmerges and erasures touch several streams; they run under a per-tenant lock and
  append each stream's part with its own derived request id, so a retry after a partial
  failure completes the rest and repeats nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from contactcenter.contracts.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    NotFound,
    ValidationFailed,
)
from contactcenter.contracts.events import DomainEvent, registry, utc_now
from contactcenter.contracts.streams import stream_id
from contactcenter.eventstore import ANY, NO_STREAM, AppendResult, PostgresEventStore
from contactcenter.privacy import load_index_root
from contactcenter.profiles.adapters.crypto import HmacRefs, KeyRing
from contactcenter.profiles.adapters.tables import (
    AuditEntry,
    AuditRecord,
    HistoryRow,
    IdentityRow,
    Tables,
)
from contactcenter.profiles.domain import (
    PROFILE_STREAM,
    TENANT_STREAM,
    AttributeDefinition,
    Identity,
    IdentityAdded,
    IdentityKind,
    IdentityRemoved,
    OpenIdentity,
    ProfileState,
    ProfileStatus,
    TenantSettings,
    UpdateProfile,
    decide_configure,
    decide_create,
    decide_erase,
    decide_merge,
    decide_unmerge,
    decide_update,
    erased_group,
    fold,
    fold_settings,
    normalise,
)

_MERGE_NAMESPACE: Final = uuid.UUID("5b0f3c2e-9a51-4c55-8f65-3a1f3c0c7d11")
PERSONAL_DATA_ROLES: Final = frozenset({"supervisor", "admin", "service"})


@dataclass(frozen=True)
class Actor:
    """Who calls (from the bearer token)."""

    tenant_id: str
    subject: str
    roles: frozenset[str]

    @property
    def sees_personal_data(self) -> bool:
        """Agents get masked identities and no custom attributes."""
        return not self.roles.isdisjoint(PERSONAL_DATA_ROLES)


@dataclass(frozen=True)
class Resolved:
    profile_id: str
    created: bool
    identity: Identity


@dataclass
class ProfileView:
    state: ProfileState
    identities: list[OpenIdentity]
    merged_profile_ids: list[str]
    last_contacts: list[HistoryRow] = field(default_factory=list)

    @property
    def last_agent_id(self) -> str | None:
        with_agent = [c for c in self.last_contacts if c.agent_id]
        return max(with_agent, key=lambda c: c.created_at).agent_id if with_agent else None


@dataclass(frozen=True)
class IdentityInput:
    kind: IdentityKind | None
    value: str
    namespace: str = ""


class ProfilesApplication:
    def __init__(
        self,
        store: PostgresEventStore,
        tables: Tables,
        keyring: KeyRing,
        *,
        settings_ttl_s: float = 5.0,
    ) -> None:
        self.store = store
        self.tables = tables
        self.keyring = keyring
        self._index_lock = asyncio.Lock()
        self._settings_ttl_s = settings_ttl_s
        self._settings: dict[str, tuple[float, TenantSettings]] = {}

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def stream(tenant_id: str, profile_id: str) -> str:
        return stream_id(PROFILE_STREAM, tenant_id, profile_id)

    async def tenant_settings(self, tenant_id: str) -> TenantSettings:
        """Cached for a few seconds: a change reaches every replica within the TTL."""
        cached = self._settings.get(tenant_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        settings = await self.tables.tenant_settings(tenant_id)
        self._settings[tenant_id] = (now + self._settings_ttl_s, settings)
        return settings

    async def identity_refs(self, tenant_id: str) -> HmacRefs:
        """The tenant's identity-index hashes; the first call loads the stored index root."""
        if not self.keyring.has_index_root:
            async with self._index_lock:
                if not self.keyring.has_index_root:
                    await load_index_root(self.tables.secrets, self.tables.key_table, self.keyring)
        return self.keyring.refs(tenant_id)

    async def _region(self, tenant_id: str, given: str) -> str | None:
        return given.strip().upper() or (await self.tenant_settings(tenant_id)).default_region

    async def _events(
        self, tenant_id: str, profile_id: str, upto: int | None = None
    ) -> list[DomainEvent]:
        recorded = await self.store.read_stream(self.stream(tenant_id, profile_id))
        if upto is not None:
            recorded = [r for r in recorded if r.version <= upto]
        return [r.decode(registry) for r in recorded]

    async def _state(
        self, tenant_id: str, profile_id: str, *, open_data: bool, upto: int | None = None
    ) -> ProfileState:
        events = await self._events(tenant_id, profile_id, upto)
        cipher = None
        if open_data:
            keys = await self.tables.keys(tenant_id, [profile_id])
            cipher = self.keyring.cipher(tenant_id, profile_id, keys.get(profile_id))
        return fold(tenant_id, profile_id, events, cipher)

    async def _effective(self, tenant_id: str, profile_id: str) -> str:
        return await self.tables.redirect_of(tenant_id, profile_id) or profile_id

    async def _audit(
        self,
        actor: Actor,
        profile_ids: Sequence[str],
        action: str,
        purpose: str,
        request_id: str | None = None,
    ) -> None:
        await self.tables.audit(
            [
                AuditEntry(
                    tenant_id=actor.tenant_id,
                    profile_id=p,
                    actor=actor.subject,
                    roles=sorted(actor.roles),
                    action=action,
                    purpose=purpose,
                    request_id=request_id,
                )
                for p in dict.fromkeys(profile_ids)
            ]
        )

    def _normalise(self, i: IdentityInput, region: str | None, field_name: str) -> Identity:
        return normalise(i.kind, i.value, i.namespace, default_region=region, field=field_name)

    # --- ResolveIdentity ------------------------------------------------------------------

    async def resolve(
        self,
        actor: Actor,
        request_id: str,
        identity_in: IdentityInput,
        *,
        default_region: str = "",
        display_name: str | None = None,
    ) -> Resolved:
        tenant = actor.tenant_id
        # Only phone numbers are read in a region: other kinds skip the tenant's settings.
        region = (
            await self._region(tenant, default_region)
            if identity_in.kind is IdentityKind.PHONE
            else None
        )
        identity = self._normalise(identity_in, region, "identity")
        ref = (await self.identity_refs(tenant)).ref(identity)
        for _ in range(10):
            row = await self.tables.find_identity(tenant, identity.kind, ref)
            if row is None:
                # Claim it for a new profile; the unique key lets one concurrent claimer win.
                profile_id = str(uuid.uuid4())
                if await self.tables.claim_identity(
                    tenant, identity.kind, ref, profile_id, "create", request_id
                ):
                    row = IdentityRow(profile_id, profile_id, "create", request_id, False)
                else:
                    continue  # another resolve won: read its claim
            if not row.confirmed and row.origin == "create":
                await self._materialise(tenant, row.profile_id, identity, display_name)
                await self.tables.confirm_identities(tenant, [(identity.kind.value, ref)])
            return Resolved(
                profile_id=row.effective_id,
                created=row.origin == "create" and row.claimed_by_request == request_id,
                identity=identity,
            )
        # Only an erasure racing every attempt gets here.
        raise ConcurrencyConflict(f"identity/{tenant}", 0)

    async def _materialise(
        self, tenant: str, profile_id: str, identity: Identity, display_name: str | None
    ) -> None:
        """Append the ProfileCreated of a claimed identity (idempotent: any number of callers,
        before or after a crash, store it once)."""
        wrapped = await self.tables.ensure_key(
            tenant, profile_id, self.keyring.wrap(tenant, profile_id, KeyRing.new_data_key())
        )
        cipher = self.keyring.cipher(tenant, profile_id, wrapped)
        events = decide_create(
            tenant,
            profile_id,
            identity,
            display_name,
            cipher,
            await self.identity_refs(tenant),
            utc_now(),
        )
        try:
            result = await self.store.append(
                self.stream(tenant, profile_id),
                events,
                expected_version=NO_STREAM,
                request_id=f"profile-create:{profile_id}",
                command={"create": profile_id},
                result={"profile_id": profile_id},
            )
        except ConcurrencyConflict:
            result = None  # created by the first claimer's append under another request
        if result is not None and not result.replayed:
            state = fold(tenant, profile_id, events, cipher)
        else:
            state = await self._state(tenant, profile_id, open_data=True)
        await self.tables.save_view(
            tenant, profile_id, ProfileStatus.ACTIVE, state.display_name, state.version
        )

    # --- GetProfile / Search / History -----------------------------------------------------

    async def view(self, tenant: str, profile_id: str) -> ProfileView:
        """The profile with its merged profiles' identities and its latest contacts."""
        root = await self._state(tenant, profile_id, open_data=True)
        if not root.exists:
            raise NotFound("no such profile", resource_type="profile", resource_name=profile_id)
        merged = await self.tables.redirected_to(tenant, profile_id)
        identities = list(root.identities.values())
        seen = set(root.identities)
        if merged:
            keys = await self.tables.keys(tenant, merged)
            for source_id in merged:
                source = fold(
                    tenant,
                    source_id,
                    await self._events(tenant, source_id),
                    self.keyring.cipher(tenant, source_id, keys.get(source_id)),
                )
                for ref, identity in source.identities.items():
                    if ref not in seen:
                        seen.add(ref)
                        identities.append(identity)
                if root.display_name is None and source.display_name:
                    root.display_name = source.display_name
                for name, value in source.attributes.items():
                    root.attributes.setdefault(name, value)
        contacts = await self.tables.last_contacts(tenant, [profile_id, *merged])
        return ProfileView(root, identities, merged, contacts)

    async def get(self, actor: Actor, profile_id: str, purpose: str) -> ProfileView:
        effective = await self._effective(actor.tenant_id, profile_id)
        view = await self.view(actor.tenant_id, effective)
        await self._audit(actor, [effective], "read", purpose)
        return view

    async def search_identity(
        self, actor: Actor, identity_in: IdentityInput, default_region: str, purpose: str
    ) -> list[ProfileView]:
        tenant = actor.tenant_id
        identity = self._normalise(
            identity_in, await self._region(tenant, default_region), "identity"
        )
        row = await self.tables.find_identity(
            tenant, identity.kind, (await self.identity_refs(tenant)).ref(identity)
        )
        if row is None or (not row.confirmed and row.origin == "create"):
            return []
        views = [await self.view(tenant, row.effective_id)]
        await self._audit(actor, [row.effective_id], "search", purpose)
        return views

    async def search_name(
        self,
        actor: Actor,
        prefix: str,
        after: tuple[str, str] | None,
        limit: int,
        purpose: str,
    ) -> tuple[list[ProfileView], tuple[str, str] | None]:
        prefix = " ".join(prefix.split())
        if len(prefix) < 2:
            raise ValidationFailed([("name_prefix", "at least 2 characters")])
        hits = await self.tables.search_names(actor.tenant_id, prefix, after, limit + 1)
        more = len(hits) > limit
        hits = hits[:limit]
        views = [await self.view(actor.tenant_id, pid) for _, pid in hits]
        await self._audit(actor, [pid for _, pid in hits], "search", purpose)
        return views, (hits[-1] if more and hits else None)

    async def history(
        self,
        actor: Actor,
        profile_id: str,
        after: tuple[datetime, str] | None,
        limit: int,
        purpose: str,
    ) -> tuple[list[HistoryRow], tuple[datetime, str] | None]:
        tenant = actor.tenant_id
        effective = await self._effective(tenant, profile_id)
        state = await self._state(tenant, effective, open_data=False)
        if not state.exists:
            raise NotFound("no such profile", resource_type="profile", resource_name=profile_id)
        ids = [effective, *await self.tables.redirected_to(tenant, effective)]
        rows = await self.tables.history(tenant, ids, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        await self._audit(actor, [effective], "history", purpose)
        cursor = (rows[-1].created_at, rows[-1].interaction_id) if more and rows else None
        return rows, cursor

    # --- UpdateProfile --------------------------------------------------------------------

    async def update(
        self,
        actor: Actor,
        request_id: str,
        profile_id: str,
        command: UpdateProfile,
        add: Sequence[IdentityInput],
        remove: Sequence[IdentityInput],
        *,
        expected_version: int = 0,
        default_region: str = "",
        fingerprint: Mapping[str, Any],
    ) -> ProfileView:
        tenant = actor.tenant_id
        prior = await self.store.lookup_request(tenant, request_id, command=fingerprint)
        if prior is not None:
            assert prior.result is not None
            return await self.view(tenant, prior.result["profile_id"])
        effective = await self._effective(tenant, profile_id)
        region = await self._region(tenant, default_region)
        settings = await self.tenant_settings(tenant)
        command = UpdateProfile(
            display_name=command.display_name,
            language=command.language,
            time_zone=command.time_zone,
            vip_tier=command.vip_tier,
            attributes=command.attributes,
            consents=command.consents,
            add_identities=[
                self._normalise(i, region, f"add_identities[{n}]") for n, i in enumerate(add)
            ],
            remove_identities=[
                self._normalise(i, region, f"remove_identities[{n}]") for n, i in enumerate(remove)
            ],
        )
        refs = await self.identity_refs(tenant)
        stream = self.stream(tenant, effective)
        for attempt in range(5):
            state = await self._state(tenant, effective, open_data=True)
            if not state.exists:
                raise NotFound("no such profile", resource_type="profile", resource_name=profile_id)
            if expected_version and state.version != expected_version:
                raise ConcurrencyConflict(stream, expected_version, state.version)
            keys = await self.tables.keys(tenant, [effective])
            cipher = self.keyring.cipher(tenant, effective, keys.get(effective))
            events = decide_update(state, command, cipher, refs, settings.schema, utc_now())
            if not events:
                return await self.view(tenant, effective)
            claimed = await self._claim_added(tenant, effective, events, request_id, command)
            try:
                await self.store.append(
                    stream,
                    events,
                    expected_version=state.version,
                    request_id=request_id,
                    command=fingerprint,
                    result={"profile_id": effective},
                )
            except ConcurrencyConflict:
                await self.tables.release_claims(tenant, effective, claimed)
                if expected_version or attempt == 4:
                    raise
                continue
            except BaseException:
                await self.tables.release_claims(tenant, effective, claimed)
                raise
            break
        await self.tables.confirm_identities(tenant, claimed)
        removed = [(e.kind.value, e.ref) for e in events if isinstance(e, IdentityRemoved)]
        if removed:
            await self.tables.remove_identities(tenant, effective, removed)
        view = await self.view(tenant, effective)
        await self.tables.save_view(
            tenant, effective, ProfileStatus.ACTIVE, view.state.display_name, view.state.version
        )
        await self._audit(actor, [effective], "update", "update", request_id)
        return view

    async def _claim_added(
        self,
        tenant: str,
        profile_id: str,
        events: Sequence[DomainEvent],
        request_id: str,
        command: UpdateProfile,
    ) -> list[tuple[str, str]]:
        """Claim every added identity for the profile; one owned by another profile refuses
        the update (ALREADY_EXISTS: merge the profiles instead)."""
        claimed: list[tuple[str, str]] = []
        refs = await self.identity_refs(tenant)
        positions = {refs.ref(i): n for n, i in enumerate(command.add_identities)}
        for e in events:
            if not isinstance(e, IdentityAdded):
                continue
            kind, ref = e.identity.kind, e.identity.ref
            if await self.tables.claim_identity(tenant, kind, ref, profile_id, "add", request_id):
                claimed.append((kind.value, ref))
                continue
            owner = await self.tables.find_identity(tenant, kind, ref)
            if owner is not None and owner.effective_id != profile_id:
                await self.tables.release_claims(tenant, profile_id, claimed)
                raise AlreadyExists(
                    f"add_identities[{positions.get(ref, 0)}]: the identity belongs to another "
                    "profile; merge the profiles instead",
                    resource_type="identity",
                )
            # Its owner was erased meanwhile: take it.
            if owner is None and await self.tables.claim_identity(
                tenant, kind, ref, profile_id, "add", request_id
            ):
                claimed.append((kind.value, ref))
        return claimed

    # --- Merge / Unmerge ------------------------------------------------------------------

    async def _prior_part(
        self, tenant: str, request_id: str, command: Mapping[str, Any]
    ) -> AppendResult | None:
        return await self.store.lookup_request(tenant, request_id, command=command)

    async def _state_before(
        self, tenant: str, profile_id: str, part: AppendResult | None
    ) -> ProfileState:
        """The state a multi-stream command decided on: before its part if that is stored."""
        upto = None if part is None else part.first_version - 1
        return await self._state(tenant, profile_id, open_data=False, upto=upto)

    async def merge(
        self,
        actor: Actor,
        request_id: str,
        target_id: str,
        source_id: str,
        reason: str,
    ) -> tuple[str, ProfileView]:
        tenant = actor.tenant_id
        command = {"merge": {"target": target_id, "source": source_id}}
        done = await self._prior_part(tenant, f"{request_id}#target", command)
        if done is not None:
            assert done.result is not None
            return done.result["merge_id"], await self.view(tenant, done.result["profile_id"])
        merge_id = str(uuid.uuid5(_MERGE_NAMESPACE, f"{tenant}/{request_id}"))
        async with self.tables.tenant_lock(tenant):
            target_eff = await self._effective(tenant, target_id)
            source_part = await self._prior_part(tenant, f"{request_id}#source", command)
            source = await self._state_before(tenant, source_id, source_part)
            target = await self._state(tenant, target_eff, open_data=False)
            if not target.exists:
                raise NotFound("no such profile", resource_type="profile", resource_name=target_id)
            if not source.exists:
                raise NotFound("no such profile", resource_type="profile", resource_name=source_id)
            source_events, target_events = decide_merge(target, source, merge_id, utc_now())
            await self.store.append(
                self.stream(tenant, source_id),
                source_events,
                expected_version=source.version,
                request_id=f"{request_id}#source",
                command=command,
            )
            await self.store.append(
                self.stream(tenant, target_eff),
                target_events,
                expected_version=target.version,
                request_id=f"{request_id}#target",
                command=command,
                result={"merge_id": merge_id, "profile_id": target_eff},
            )
            await self.tables.record_merge(tenant, source_id, target_eff, merge_id)
        await self._audit(actor, [target_eff, source_id], "merge", reason or "merge", request_id)
        return merge_id, await self.view(tenant, target_eff)

    async def unmerge(
        self, actor: Actor, request_id: str, source_id: str, reason: str
    ) -> tuple[ProfileView, ProfileView]:
        tenant = actor.tenant_id
        command = {"unmerge": source_id}
        done = await self._prior_part(tenant, f"{request_id}#source", command)
        if done is not None:
            assert done.result is not None
            return (
                await self.view(tenant, source_id),
                await self.view(tenant, done.result["target_profile_id"]),
            )
        settings = await self.tenant_settings(tenant)
        async with self.tables.tenant_lock(tenant):
            source = await self._state(tenant, source_id, open_data=False)
            if not source.exists:
                raise NotFound("no such profile", resource_type="profile", resource_name=source_id)
            if source.merged_into is None:
                decide_unmerge(source, source, utc_now(), timedelta(0))  # raises: not merged
            assert source.merged_into is not None
            target_id = source.merged_into.other_profile_id
            target_part = await self._prior_part(tenant, f"{request_id}#target", command)
            target = await self._state_before(tenant, target_id, target_part)
            target_events, source_events = decide_unmerge(
                source, target, utc_now(), timedelta(days=settings.unmerge_window_days)
            )
            await self.store.append(
                self.stream(tenant, target_id),
                target_events,
                expected_version=target.version,
                request_id=f"{request_id}#target",
                command=command,
            )
            await self.store.append(
                self.stream(tenant, source_id),
                source_events,
                expected_version=source.version,
                request_id=f"{request_id}#source",
                command=command,
                result={"target_profile_id": target_id},
            )
            link = target.merged_sources[source_id]
            await self.tables.record_unmerge(
                tenant, source_id, target_id, link.redirected_profile_ids
            )
        await self._audit(actor, [source_id, target_id], "unmerge", reason or "unmerge", request_id)
        return await self.view(tenant, source_id), await self.view(tenant, target_id)

    # --- EraseProfile ---------------------------------------------------------------------

    async def access_audit(
        self,
        actor: Actor,
        *,
        profile_id: str | None,
        subject: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, int] | None,
        size: int,
    ) -> tuple[list[AuditRecord], tuple[datetime, int] | None]:
        """A page of the tenant's access audit, newest first, and the cursor of the next one.
        Only auditors and admins (the RPC's roles) call this; the tenant is the caller's."""
        if since is not None and until is not None and until <= since:
            raise ValidationFailed([("time_range.end_time", "must be after start_time")])
        rows = await self.tables.list_audit(
            actor.tenant_id,
            profile_id=profile_id,
            actor=subject,
            since=since,
            until=until,
            before=before,
            limit=size + 1,
        )
        following = None
        if len(rows) > size:
            rows = rows[:size]
            following = (rows[-1].occurred_at, rows[-1].entry_id)
        return rows, following

    async def erase(self, actor: Actor, request_id: str, profile_id: str, reason: str) -> list[str]:
        tenant = actor.tenant_id
        command = {"erase": profile_id}
        erasure_id = str(uuid.uuid5(_MERGE_NAMESPACE, f"erase/{tenant}/{request_id}"))
        async with self.tables.tenant_lock(tenant):
            done = await self.store.lookup_request(tenant, request_id, command=command)
            if done is not None:
                assert done.result is not None
                group: list[str] = done.result["erased_profile_ids"]
            else:
                root_id = await self._effective(tenant, profile_id)
                root = await self._state(tenant, root_id, open_data=False)
                if not root.exists:
                    raise NotFound(
                        "no such profile", resource_type="profile", resource_name=profile_id
                    )
                redirected = await self.tables.redirected_to(tenant, root_id)
                group = list(dict.fromkeys([*erased_group(root, {}), *redirected]))
                now = utc_now()
                # The merged profiles first, the root last: its stored request marks the end.
                for member in group[1:]:
                    state = await self._state(tenant, member, open_data=False)
                    events = decide_erase(state, erasure_id, (member,), now)
                    if events:
                        await self.store.append(
                            self.stream(tenant, member),
                            events,
                            expected_version=ANY,
                            request_id=f"{request_id}#{member}",
                            command=command,
                        )
                events = decide_erase(root, erasure_id, group, now)
                if events:
                    await self.store.append(
                        self.stream(tenant, root_id),
                        events,
                        expected_version=ANY,
                        request_id=request_id,
                        command=command,
                        result={"erased_profile_ids": group},
                    )
            # Always (also on a retry): a crash after the appends must still shred.
            await self.tables.shred(tenant, group, erasure_id)
        await self._audit(actor, group, "erase", reason or "erasure", request_id)
        return group

    # --- ConfigureTenant ------------------------------------------------------------------

    async def configure(
        self,
        actor: Actor,
        request_id: str,
        default_region: str,
        attributes: Sequence[AttributeDefinition],
        unmerge_window_days: int,
    ) -> TenantSettings:
        tenant = actor.tenant_id
        events = decide_configure(
            tenant, default_region or None, attributes, unmerge_window_days, utc_now()
        )
        stream = stream_id(TENANT_STREAM, tenant, "settings")
        await self.store.append(stream, events, expected_version=ANY, request_id=request_id)
        recorded = await self.store.read_stream(stream)
        settings = fold_settings(r.decode(registry) for r in recorded)
        await self.tables.save_tenant_settings(tenant, settings)
        self._settings.pop(tenant, None)
        return settings

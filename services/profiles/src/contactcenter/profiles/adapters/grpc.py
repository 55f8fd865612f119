"""The gRPC API: `contactcenter.profiles.v1.ProfilesService`.

Requests are checked here for what the domain cannot see (request ids, enum values, paging,
purposes); the domain checks identities and attributes with field paths named like the
request's. The tenant always comes from the caller's token.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.errors import FieldViolation, ValidationFailed
from contactcenter.grpckit import ALL_ROLES, Caller, Role, ServiceRegistration, current_caller
from contactcenter.profiles.application import (
    Actor,
    IdentityInput,
    ProfilesApplication,
    ProfileView,
)
from contactcenter.profiles.domain import (
    AttributeDefinition,
    AttributeType,
    Channel,
    Consent,
    IdentityKind,
    ProfileStatus,
    UpdateProfile,
    mask,
)
from contactcenter.profiles.v1 import profiles_pb2 as pb
from contactcenter.profiles.v1 import profiles_pb2_grpc as pb_grpc

_A, _S, _AD, _SV = Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SERVICE

#: Who may call what. Agents read (masked) and capture data; supervisors and admins (and
#: automated dedup jobs: SERVICE) merge; only admins erase or configure the tenant.
METHOD_ROLES: Final[Mapping[str, frozenset[Role]]] = {
    "ResolveIdentity": frozenset({_SV, _A, _S, _AD}),
    "GetProfile": ALL_ROLES,
    "UpdateProfile": frozenset({_SV, _A, _S, _AD}),
    "MergeProfiles": frozenset({_SV, _S, _AD}),
    "UnmergeProfile": frozenset({_S, _AD}),
    "EraseProfile": frozenset({_AD}),
    "History": ALL_ROLES,
    "Search": ALL_ROLES,
    "ConfigureTenant": frozenset({_AD}),
    "ListAccessAudit": frozenset({Role.AUDITOR, _AD}),
}

DEFAULT_PAGE: Final = 20
MAX_PAGE: Final = 100

_KINDS: Final = {
    pb.IDENTITY_KIND_EMAIL: IdentityKind.EMAIL,
    pb.IDENTITY_KIND_PHONE: IdentityKind.PHONE,
    pb.IDENTITY_KIND_CHAT: IdentityKind.CHAT,
    pb.IDENTITY_KIND_SOCIAL: IdentityKind.SOCIAL,
    pb.IDENTITY_KIND_CRM: IdentityKind.CRM,
}
_KINDS_PB: Final = {v: k for k, v in _KINDS.items()}
_CHANNELS: Final = {
    common_pb2.CHANNEL_VOICE: Channel.VOICE,
    common_pb2.CHANNEL_EMAIL: Channel.EMAIL,
    common_pb2.CHANNEL_CHAT: Channel.CHAT,
    common_pb2.CHANNEL_SMS: Channel.SMS,
    common_pb2.CHANNEL_SOCIAL: Channel.SOCIAL,
    common_pb2.CHANNEL_VIDEO: Channel.VIDEO,
}
_CHANNELS_PB: Final = {v.value: k for k, v in _CHANNELS.items()}
_STATUS_PB: Final = {
    ProfileStatus.ACTIVE: pb.PROFILE_STATUS_ACTIVE,
    ProfileStatus.MERGED: pb.PROFILE_STATUS_MERGED,
    ProfileStatus.ERASED: pb.PROFILE_STATUS_ERASED,
}
_ATTRIBUTE_TYPES: Final = {
    pb.ATTRIBUTE_TYPE_STRING: AttributeType.STRING,
    pb.ATTRIBUTE_TYPE_INTEGER: AttributeType.INTEGER,
    pb.ATTRIBUTE_TYPE_DECIMAL: AttributeType.DECIMAL,
    pb.ATTRIBUTE_TYPE_BOOLEAN: AttributeType.BOOLEAN,
    pb.ATTRIBUTE_TYPE_DATE: AttributeType.DATE,
    pb.ATTRIBUTE_TYPE_ENUM: AttributeType.ENUM,
}
_ATTRIBUTE_TYPES_PB: Final = {v: k for k, v in _ATTRIBUTE_TYPES.items()}


def registration(servicer: ProfilesServicer) -> ServiceRegistration:
    return ServiceRegistration(
        descriptor=pb.DESCRIPTOR.services_by_name["ProfilesService"],
        servicer=servicer,
        add_to_server=pb_grpc.add_ProfilesServiceServicer_to_server,
        method_roles=METHOD_ROLES,
    )


def _actor() -> Actor:
    return _actor_of(current_caller())


@functools.lru_cache(maxsize=4096)
def _actor_of(caller: Caller) -> Actor:
    """The same token gives the same (immutable) actor: built once, not on every call."""
    return Actor(caller.tenant_id, caller.subject, frozenset(r.value for r in caller.roles))


def _fingerprint(rpc: str, request: Message) -> dict[str, str]:
    """A mutating request's identity for idempotency: the RPC and a hash of its bytes (the
    hash, never the request itself, is stored: requests carry personal data)."""
    digest = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    return {"rpc": rpc, "request": digest}


def _require(**fields: str) -> None:
    bad = [FieldViolation(name, "is required") for name, value in fields.items() if not value]
    too_long = [
        FieldViolation(n, "longer than 128 characters") for n, v in fields.items() if len(v) > 128
    ]
    if bad or too_long:
        raise ValidationFailed([*bad, *too_long])


def _identity(message: pb.Identity, field: str) -> IdentityInput:
    if message.kind not in _KINDS:
        raise ValidationFailed(
            [(f"{field}.kind", "is required" if message.kind == 0 else "unknown")]
        )
    return IdentityInput(_KINDS[message.kind], message.value, message.namespace)


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(moment.astimezone(UTC))
    return ts


def _page(page: Any) -> tuple[int, str]:
    if page.page_size < 0:
        raise ValidationFailed([("page.page_size", "must not be negative")])
    return min(page.page_size or DEFAULT_PAGE, MAX_PAGE), page.page_token


def _encode_token(values: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def _decode_token(token: str, size: int) -> list[str] | None:
    if not token:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, str) for v in values)
    ):
        raise ValidationFailed([("page.page_token", "not a token this service issued")])
    return values


def profile_message(view: ProfileView, *, personal: bool) -> pb.Profile:
    s = view.state
    message = pb.Profile(
        profile_id=s.profile_id,
        status=_STATUS_PB[s.status] if s.status else pb.PROFILE_STATUS_UNSPECIFIED,
        display_name=s.display_name or "",
        language=s.language or "",
        time_zone=s.time_zone or "",
        vip_tier=s.vip_tier,
        merged_profile_ids=view.merged_profile_ids,
        version=s.version,
        last_agent_id=view.last_agent_id or "",
    )
    for identity in view.identities:
        if identity.value is None:
            continue
        value = identity.value if personal else mask(identity.kind, identity.value)
        message.identities.append(
            pb.Identity(kind=_KINDS_PB[identity.kind], value=value, namespace=identity.namespace)
        )
    if personal:
        message.attributes.update(s.attributes)
    for consent in s.consents.values():
        message.consents.append(
            pb.ChannelConsent(
                channel=_CHANNELS_PB[consent.channel.value],
                contact_allowed=consent.contact_allowed,
                marketing_allowed=consent.marketing_allowed,
                updated_time=_timestamp(consent.updated_at),
            )
        )
    for contact in view.last_contacts:
        message.last_contacts.append(
            pb.LastContact(
                channel=_CHANNELS_PB.get(contact.channel or "", common_pb2.CHANNEL_UNSPECIFIED),
                interaction_id=contact.interaction_id,
                contact_time=_timestamp(contact.created_at),
                agent_id=contact.agent_id or "",
            )
        )
    if s.created_at:
        message.create_time.FromDatetime(s.created_at.astimezone(UTC))
    if s.updated_at:
        message.update_time.FromDatetime(s.updated_at.astimezone(UTC))
    return message


class ProfilesServicer(pb_grpc.ProfilesServiceServicer):
    def __init__(self, app: ProfilesApplication) -> None:
        self.app = app

    async def ResolveIdentity(
        self, request: pb.ResolveIdentityRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveIdentityResponse:
        _require(request_id=request.request_id)
        resolved = await self.app.resolve(
            _actor(),
            request.request_id,
            _identity(request.identity, "identity"),
            default_region=request.default_region,
            display_name=request.display_name or None,
        )
        i = resolved.identity
        return pb.ResolveIdentityResponse(
            profile_id=resolved.profile_id,
            created=resolved.created,
            identity=pb.Identity(kind=_KINDS_PB[i.kind], value=i.value, namespace=i.namespace),
        )

    async def GetProfile(
        self, request: pb.GetProfileRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProfileResponse:
        _require(profile_id=request.profile_id, purpose=request.purpose)
        actor = _actor()
        view = await self.app.get(actor, request.profile_id, request.purpose)
        return pb.GetProfileResponse(
            profile=profile_message(view, personal=actor.sees_personal_data)
        )

    async def UpdateProfile(
        self, request: pb.UpdateProfileRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateProfileResponse:
        _require(request_id=request.request_id, profile_id=request.profile_id)
        if request.HasField("time_zone") and request.time_zone:
            try:
                ZoneInfo(request.time_zone)
            # OSError: a name too long to be a file name of the zone database
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValidationFailed([("time_zone", "not an IANA time zone")]) from None
        consents = []
        for n, c in enumerate(request.consents):
            if c.channel not in _CHANNELS:
                raise ValidationFailed([(f"consents[{n}].channel", "is required")])
            consents.append(
                Consent(
                    channel=_CHANNELS[c.channel],
                    contact_allowed=c.contact_allowed,
                    marketing_allowed=c.marketing_allowed,
                )
            )
        command = UpdateProfile(
            display_name=request.display_name if request.HasField("display_name") else None,
            language=request.language if request.HasField("language") else None,
            time_zone=request.time_zone if request.HasField("time_zone") else None,
            vip_tier=request.vip_tier if request.HasField("vip_tier") else None,
            attributes=dict(request.attributes),
            consents=consents,
        )
        actor = _actor()
        view = await self.app.update(
            actor,
            request.request_id,
            request.profile_id,
            command,
            [_identity(i, f"add_identities[{n}]") for n, i in enumerate(request.add_identities)],
            [
                _identity(i, f"remove_identities[{n}]")
                for n, i in enumerate(request.remove_identities)
            ],
            expected_version=request.expected_version,
            default_region=request.default_region,
            fingerprint=_fingerprint("UpdateProfile", request),
        )
        return pb.UpdateProfileResponse(
            profile=profile_message(view, personal=actor.sees_personal_data)
        )

    async def MergeProfiles(
        self, request: pb.MergeProfilesRequest, context: grpc.aio.ServicerContext
    ) -> pb.MergeProfilesResponse:
        _require(
            request_id=request.request_id,
            target_profile_id=request.target_profile_id,
            source_profile_id=request.source_profile_id,
        )
        actor = _actor()
        merge_id, view = await self.app.merge(
            actor,
            request.request_id,
            request.target_profile_id,
            request.source_profile_id,
            request.reason,
        )
        return pb.MergeProfilesResponse(
            merge_id=merge_id, profile=profile_message(view, personal=actor.sees_personal_data)
        )

    async def UnmergeProfile(
        self, request: pb.UnmergeProfileRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnmergeProfileResponse:
        _require(request_id=request.request_id, profile_id=request.profile_id)
        actor = _actor()
        restored, target = await self.app.unmerge(
            actor, request.request_id, request.profile_id, request.reason
        )
        personal = actor.sees_personal_data
        return pb.UnmergeProfileResponse(
            profile=profile_message(restored, personal=personal),
            restored_from=profile_message(target, personal=personal),
        )

    async def EraseProfile(
        self, request: pb.EraseProfileRequest, context: grpc.aio.ServicerContext
    ) -> pb.EraseProfileResponse:
        _require(request_id=request.request_id, profile_id=request.profile_id)
        erased = await self.app.erase(
            _actor(), request.request_id, request.profile_id, request.reason
        )
        return pb.EraseProfileResponse(erased_profile_ids=erased)

    async def History(
        self, request: pb.HistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.HistoryResponse:
        _require(profile_id=request.profile_id, purpose=request.purpose)
        size, token = _page(request.page)
        cursor = _decode_token(token, 2)
        after = None
        if cursor is not None:
            try:
                after = (datetime.fromisoformat(cursor[0]), cursor[1])
            except ValueError:
                raise ValidationFailed([("page.page_token", "not a valid token")]) from None
        rows, following = await self.app.history(
            _actor(), request.profile_id, after, size, request.purpose
        )
        response = pb.HistoryResponse()
        for r in rows:
            response.entries.append(
                pb.HistoryEntry(
                    interaction_id=r.interaction_id,
                    channel=_CHANNELS_PB.get(r.channel or "", common_pb2.CHANNEL_UNSPECIFIED),
                    direction=r.direction or "",
                    state=r.state,
                    create_time=_timestamp(r.created_at),
                    end_time=_timestamp(r.ended_at),
                    queue_id=r.queue_id or "",
                    agent_id=r.agent_id or "",
                    disposition_codes=r.disposition_codes,
                    profile_id=r.profile_id,
                )
            )
        if following is not None:
            response.page.next_page_token = _encode_token([following[0].isoformat(), following[1]])
        return response

    async def Search(
        self, request: pb.SearchRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchResponse:
        _require(purpose=request.purpose)
        actor = _actor()
        query = request.WhichOneof("query")
        response = pb.SearchResponse()
        if query == "identity":
            views = await self.app.search_identity(
                actor,
                _identity(request.identity, "identity"),
                request.default_region,
                request.purpose,
            )
        elif query == "name_prefix":
            size, token = _page(request.page)
            cursor = _decode_token(token, 2)
            after = (cursor[0], cursor[1]) if cursor else None
            views, following = await self.app.search_name(
                actor, request.name_prefix, after, size, request.purpose
            )
            if following is not None:
                response.page.next_page_token = _encode_token(list(following))
        else:
            raise ValidationFailed([("query", "give an identity or a name_prefix")])
        for view in views:
            response.profiles.append(profile_message(view, personal=actor.sees_personal_data))
        return response

    async def ConfigureTenant(
        self, request: pb.ConfigureTenantRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConfigureTenantResponse:
        _require(request_id=request.request_id)
        definitions = []
        for n, a in enumerate(request.attributes):
            if a.type not in _ATTRIBUTE_TYPES:
                raise ValidationFailed([(f"attributes[{n}].type", "is required")])
            try:
                definitions.append(
                    AttributeDefinition(
                        name=a.name,
                        type=_ATTRIBUTE_TYPES[a.type],
                        allowed_values=tuple(a.allowed_values),
                        max_length=a.max_length,
                    )
                )
            except ValueError:
                raise ValidationFailed(
                    [(f"attributes[{n}].name", "lower_snake_case, at most 64 characters")]
                ) from None
        settings = await self.app.configure(
            _actor(),
            request.request_id,
            request.default_region,
            definitions,
            request.unmerge_window_days,
        )
        return pb.ConfigureTenantResponse(
            default_region=settings.default_region or "",
            unmerge_window_days=settings.unmerge_window_days,
            attributes=[
                pb.AttributeDefinition(
                    name=a.name,
                    type=_ATTRIBUTE_TYPES_PB[a.type],
                    allowed_values=a.allowed_values,
                    max_length=a.max_length,
                )
                for a in settings.schema.attributes
            ],
        )

    async def ListAccessAudit(
        self, request: pb.ListAccessAuditRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAccessAuditResponse:
        too_long = [
            FieldViolation(name, "longer than 128 characters")
            for name, value in (("profile_id", request.profile_id), ("actor", request.actor))
            if len(value) > 128
        ]
        if too_long:
            raise ValidationFailed(too_long)
        size, token = _page(request.page)
        cursor = _decode_token(token, 2)
        before = None
        if cursor is not None:
            try:
                before = (datetime.fromisoformat(cursor[0]), int(cursor[1]))
            except ValueError:
                raise ValidationFailed([("page.page_token", "not a valid token")]) from None
        span = request.time_range
        rows, following = await self.app.access_audit(
            _actor(),
            profile_id=request.profile_id or None,
            subject=request.actor or None,
            since=span.start_time.ToDatetime(UTC) if span.HasField("start_time") else None,
            until=span.end_time.ToDatetime(UTC) if span.HasField("end_time") else None,
            before=before,
            size=size,
        )
        response = pb.ListAccessAuditResponse(
            entries=[
                pb.AccessAuditEntry(
                    entry_id=r.entry_id,
                    profile_id=r.profile_id,
                    actor=r.actor,
                    roles=r.roles,
                    action=r.action,
                    purpose=r.purpose,
                    request_id=r.request_id or "",
                    occur_time=_timestamp(r.occurred_at),
                )
                for r in rows
            ]
        )
        if following is not None:
            response.page.next_page_token = _encode_token(
                [following[0].isoformat(), str(following[1])]
            )
        return response

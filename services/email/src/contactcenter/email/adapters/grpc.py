"""The gRPC API: `contactcenter.email.v1.EmailService`. The tenant always comes from the
caller's token; bad input is INVALID_ARGUMENT with the field named."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr, ValidationError

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.errors import FieldViolation, NotFound, ValidationFailed
from contactcenter.email.adapters.intake import Delivery, Intake, IntakeWriter
from contactcenter.email.application.mailboxes import ImapSettings, Mailboxes
from contactcenter.email.application.quarantine import Quarantine
from contactcenter.email.application.replies import Replies
from contactcenter.email.application.tenants import TenantSettings
from contactcenter.email.domain import Routing, SkillRequirement, TenantLimits, check_address
from contactcenter.email.v1 import email_pb2 as pb
from contactcenter.email.v1 import email_pb2_grpc as pb_grpc
from contactcenter.eventstore import PgPool
from contactcenter.grpckit import (
    ALL_ROLES,
    Role,
    ServiceRegistration,
    current_caller,
    pydantic_violations,
)

_A, _S, _AD, _SV = Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SERVICE

METHOD_ROLES: Final[Mapping[str, frozenset[Role]]] = {
    "RegisterMailbox": frozenset({_AD, _SV}),
    "SetMailboxRouting": frozenset({_AD, _S, _SV}),
    "GetMailbox": ALL_ROLES,
    "ListMailboxes": ALL_ROLES,
    "IngestMessage": frozenset({_SV, _AD}),
    "GetMessage": ALL_ROLES,
    "SendReply": frozenset({_A, _S, _SV}),
    "ListQuarantine": frozenset({_S, _AD, _SV}),
    "ReprocessQuarantined": frozenset({_S, _AD, _SV}),
    "ConfigureTenant": frozenset({_AD}),
}
_KINDS: Final = {
    "customer": pb.MESSAGE_KIND_CUSTOMER,
    "auto_reply": pb.MESSAGE_KIND_AUTO_REPLY,
    "bounce": pb.MESSAGE_KIND_BOUNCE,
    "own_mail": pb.MESSAGE_KIND_OWN_MAIL,
    "outbound": pb.MESSAGE_KIND_OUTBOUND,
}
MAX_PAGE: Final = 200


def registration(servicer: EmailServicer) -> ServiceRegistration:
    return ServiceRegistration(
        descriptor=pb.DESCRIPTOR.services_by_name["EmailService"],
        servicer=servicer,
        add_to_server=pb_grpc.add_EmailServiceServicer_to_server,
        method_roles=METHOD_ROLES,
    )


def _ts(value: Any) -> Timestamp | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    ts = Timestamp()
    ts.FromDatetime(moment.astimezone(UTC))
    return ts


def _routing(message: pb.MailboxRouting, field: str) -> Routing:
    try:
        return Routing(
            queue_id=message.queue_id or None,
            priority=message.priority,
            required_skills=tuple(
                SkillRequirement(skill=s.skill, min_proficiency=s.min_proficiency)
                for s in message.required_skills
            ),
            language=message.language or None,
        )
    except ValidationError as exc:
        raise ValidationFailed(
            [FieldViolation(f"{field}.{v.field}", v.description) for v in pydantic_violations(exc)]
        ) from None


def _routing_pb(r: Mapping[str, Any]) -> pb.MailboxRouting:
    return pb.MailboxRouting(
        queue_id=r.get("queue_id") or "",
        priority=r.get("priority") or 0,
        required_skills=[
            pb.SkillRequirement(skill=s["skill"], min_proficiency=s["min_proficiency"])
            for s in r.get("required_skills") or ()
        ],
        language=r.get("language") or "",
    )


def _mailbox_pb(v: Mapping[str, Any]) -> pb.Mailbox:
    imap = v.get("imap")
    return pb.Mailbox(
        address=v["address"],
        display_name=v.get("display_name") or "",
        routing=_routing_pb(v.get("routing") or {}),
        imap=pb.ImapAccount(
            host=imap["host"],
            port=imap["port"],
            username=imap["username"],
            use_tls=imap["use_tls"],
            folder=imap["folder"],
        )
        if imap
        else None,
        create_time=_ts(v.get("create_time")),
    )


def _page_token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode() if after else ""


def _after(token: str, field: str = "page.page_token") -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except Exception:
        raise ValidationFailed([FieldViolation(field, "is not a token of this API")]) from None


def _page_size(page: Any) -> int:
    if page.page_size < 0:
        raise ValidationFailed([FieldViolation("page.page_size", "must not be negative")])
    return min(page.page_size or 50, MAX_PAGE)


def _request_id(value: str) -> str:
    if not value:
        raise ValidationFailed([FieldViolation("request_id", "is required")])
    if len(value) > 128:
        raise ValidationFailed([FieldViolation("request_id", "longer than 128 characters")])
    return value


class EmailServicer(pb_grpc.EmailServiceServicer):
    def __init__(
        self,
        pool: PgPool,
        schema: str,
        mailboxes: Mailboxes,
        writer: IntakeWriter,
        replies: Replies,
        quarantine: Quarantine,
        *,
        max_ingest_bytes: int,
        tenants: TenantSettings | None = None,
    ) -> None:
        self._tenants = tenants
        self._pool = pool
        self._mailboxes = mailboxes
        self._writer = writer
        self._replies = replies
        self._quarantine = quarantine
        self._max_ingest = max_ingest_bytes
        s = '"' + schema.replace('"', '""') + '"'
        self._sql_message = (
            f"select view::text as view, kind, thread_id, delivery_status, received_at,"
            f" raw_sha256 from {s}.messages where tenant_id = $1 and message_id = $2"
        )

    async def RegisterMailbox(self, request: Any, context: Any) -> pb.RegisterMailboxResponse:
        tenant = current_caller().tenant_id
        _request_id(request.request_id)
        imap = None
        if request.HasField("imap"):
            i = request.imap
            bad = [
                FieldViolation(f"imap.{n}", "is required")
                for n, v in (("host", i.host), ("username", i.username), ("password", i.password))
                if not v
            ]
            if not 0 <= i.port <= 65535:
                bad.append(FieldViolation("imap.port", "is not a port"))
            if bad:
                raise ValidationFailed(bad)
            imap = ImapSettings(
                host=i.host,
                port=i.port or (993 if i.use_tls else 143),
                username=i.username,
                password=SecretStr(i.password),
                use_tls=i.use_tls,
                folder=i.folder or "INBOX",
            )
        view = await self._mailboxes.register(
            tenant,
            request.request_id,
            request.address,
            request.display_name or None,
            _routing(request.routing, "routing"),
            imap,
        )
        return pb.RegisterMailboxResponse(mailbox=_mailbox_pb(view))

    async def SetMailboxRouting(self, request: Any, context: Any) -> pb.SetMailboxRoutingResponse:
        tenant = current_caller().tenant_id
        _request_id(request.request_id)
        view = await self._mailboxes.set_routing(
            tenant, request.request_id, request.address, _routing(request.routing, "routing")
        )
        return pb.SetMailboxRoutingResponse(mailbox=_mailbox_pb(view))

    async def GetMailbox(self, request: Any, context: Any) -> pb.GetMailboxResponse:
        tenant = current_caller().tenant_id
        view = await self._mailboxes.get(tenant, check_address(request.address))
        return pb.GetMailboxResponse(mailbox=_mailbox_pb(view))

    async def ListMailboxes(self, request: Any, context: Any) -> pb.ListMailboxesResponse:
        tenant = current_caller().tenant_id
        size = _page_size(request.page)
        views = await self._mailboxes.list(tenant, _after(request.page.page_token), size + 1)
        more = len(views) > size
        views = views[:size]
        return pb.ListMailboxesResponse(
            mailboxes=[_mailbox_pb(v) for v in views],
            page=common_pb2.PageResponse(
                next_page_token=_page_token(views[-1]["address"]) if more else ""
            ),
        )

    async def IngestMessage(self, request: Any, context: Any) -> pb.IngestMessageResponse:
        tenant = current_caller().tenant_id
        _request_id(request.request_id)
        address = check_address(request.mailbox_address, "mailbox_address")
        entry = self._mailboxes.lookup(address)
        if entry is None or entry.tenant_id != tenant:
            raise NotFound(
                f"mailbox {address} not found", resource_type="mailbox", resource_name=address
            )
        if not request.raw:
            raise ValidationFailed([FieldViolation("raw", "is required")])
        if len(request.raw) > self._max_ingest:
            raise ValidationFailed([FieldViolation("raw", f"larger than {self._max_ingest} bytes")])
        sha = await self._writer.submit(
            Intake(
                raw=bytes(request.raw),
                deliveries=[Delivery(tenant, address)],
                source="api",
                envelope_to=[address],
            )
        )
        return pb.IngestMessageResponse(raw_sha256=sha)

    async def GetMessage(self, request: Any, context: Any) -> pb.GetMessageResponse:
        tenant = current_caller().tenant_id
        if not request.message_id:
            raise ValidationFailed([FieldViolation("message_id", "is required")])
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_message, tenant, request.message_id)
        if row is None:
            raise NotFound(
                f"message {request.message_id} not found",
                resource_type="message",
                resource_name=request.message_id,
            )
        v = json.loads(row["view"])
        outbound = row["kind"] == "outbound"
        message = pb.EmailMessage(
            message_id=request.message_id,
            thread_id=row["thread_id"] or "",
            kind=_KINDS.get(row["kind"], pb.MESSAGE_KIND_UNSPECIFIED),
            internet_message_id=v.get("internet_message_id") or "",
            mailbox_address=v.get("mailbox_address") or "",
            from_address=v.get("from_address") or "",
            from_name=v.get("from_name") or "",
            to_addresses=[v["to_address"]] if outbound else v.get("to_addresses") or [],
            subject=v.get("subject") or "",
            body_text=v.get("body_text") or "",
            full_text=v.get("full_text") or v.get("body_text") or "",
            body_html=v.get("body_html") or "",
            attachments=[
                pb.Attachment(
                    attachment_id=a.get("attachment_id") or "",
                    file_name=a.get("file_name") or "",
                    content_type=a.get("content_type") or "",
                    size_bytes=a.get("size_bytes") or 0,
                    sha256=a.get("sha256") or "",
                    disposition=a.get("disposition") or "",
                    content_id=a.get("content_id") or "",
                )
                for a in v.get("attachments") or ()
            ],
            raw_sha256=row["raw_sha256"] or "",
            sent_at=_ts(v.get("sent_at")),
            receive_time=_ts(row["received_at"]),
            delivery_status=row["delivery_status"] or "",
            customer_profile_id=v.get("customer_profile_id") or "",
        )
        return pb.GetMessageResponse(message=message)

    async def SendReply(self, request: Any, context: Any) -> pb.SendReplyResponse:
        caller = current_caller()
        result = await self._replies.send_reply(
            caller.tenant_id,
            request_id=request.request_id,
            interaction_id=request.interaction_id,
            in_reply_to_message_id=request.in_reply_to_message_id,
            body_text=request.body_text,
            body_html=request.body_html or None,
            agent_id=request.agent_id,
            agent_name=request.agent_name or None,
        )
        return pb.SendReplyResponse(**result)

    async def ListQuarantine(self, request: Any, context: Any) -> pb.ListQuarantineResponse:
        tenant = current_caller().tenant_id
        size = _page_size(request.page)
        after = _after(request.page.page_token)
        items = await self._quarantine.list(tenant, after, size + 1)
        more = len(items) > size
        items = items[:size]
        return pb.ListQuarantineResponse(
            messages=[_quarantined_pb(q) for q in items],
            page=common_pb2.PageResponse(
                next_page_token=_page_token(items[-1]["cursor"]) if more else ""
            ),
        )

    async def ReprocessQuarantined(
        self, request: Any, context: Any
    ) -> pb.ReprocessQuarantinedResponse:
        caller = current_caller()
        _request_id(request.request_id)
        if not request.quarantine_id:
            raise ValidationFailed([FieldViolation("quarantine_id", "is required")])
        item = await self._quarantine.reprocess(
            caller.tenant_id,
            request.request_id,
            request.quarantine_id,
            ignore_limits=request.ignore_limits,
            actor=caller.subject,
        )
        return pb.ReprocessQuarantinedResponse(message=_quarantined_pb(item))

    async def ConfigureTenant(self, request: Any, context: Any) -> pb.ConfigureTenantResponse:
        tenant = current_caller().tenant_id
        _request_id(request.request_id)
        assert self._tenants is not None
        given = request.limits
        default = self._tenants.default_limits(tenant)
        max_message = given.max_message_bytes or default.max_message_bytes
        limits = await self._tenants.configure(
            tenant,
            request.request_id,
            TenantLimits(
                max_message_bytes=max_message,
                # The default attachment limit never exceeds the message limit given.
                max_attachment_bytes=given.max_attachment_bytes
                or min(default.max_attachment_bytes, max_message),
                max_attachments=given.max_attachments or default.max_attachments,
                max_inbound_per_minute=given.max_inbound_per_minute,
            ),
        )
        return pb.ConfigureTenantResponse(
            limits=pb.TenantLimits(
                max_message_bytes=limits.max_message_bytes,
                max_attachment_bytes=limits.max_attachment_bytes,
                max_attachments=limits.max_attachments,
                max_inbound_per_minute=limits.max_inbound_per_minute,
            )
        )


def _quarantined_pb(q: Mapping[str, Any]) -> pb.QuarantinedMessage:
    return pb.QuarantinedMessage(
        quarantine_id=q["quarantine_id"],
        mailbox_address=q["mailbox_address"],
        reason=q["reason"],
        detail=q["detail"],
        raw_sha256=q["raw_sha256"],
        size_bytes=q["size_bytes"],
        receive_time=_ts(q["received_at"]),
        status=q["status"],
    )

"""The gRPC API: `contactcenter.interactions.v1.InteractionsService`.

Requests are checked here for what the domain cannot see (request ids, enum values, message
presence, paging); the domain checks the rest, with field paths named like the request's.
The tenant always comes from the caller's token. A caller that is only an agent acts as
themselves: the acting-agent fields default to the token's subject and may not name another
agent (PERMISSION_DENIED).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar
from uuid import uuid4

import grpc
from google.protobuf.message import Message

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.errors import PermissionDenied
from contactcenter.contracts.events import utc_now
from contactcenter.grpckit import ALL_ROLES, Caller, Role, ServiceRegistration, current_caller
from contactcenter.interactions.adapters import proto
from contactcenter.interactions.application import (
    CommandOutcome,
    InteractionsApplication,
    WatchSnapshot,
)
from contactcenter.interactions.application.handlers import Decision, Extras, ServiceClosing
from contactcenter.interactions.domain import (
    Abandon,
    AddNote,
    AppendMessage,
    AppendTranscript,
    Author,
    AuthorRole,
    Complete,
    Conference,
    Connect,
    CreateInteraction,
    Direction,
    End,
    Enqueue,
    Fail,
    Hold,
    Interaction,
    InteractionEvent,
    LeaveConference,
    QueueTarget,
    RecordSatisfaction,
    Resume,
    Transfer,
)
from contactcenter.interactions.domain.events import MessageAppended, NoteAdded, TranscriptAppended
from contactcenter.interactions.domain.validation import Checks
from contactcenter.interactions.projections import Cursor, InteractionList, ListFilter
from contactcenter.interactions.v1 import interactions_pb2 as pb
from contactcenter.interactions.v1 import interactions_pb2_grpc as pb_grpc

_A, _S, _AD, _SV = Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SERVICE
_OPERATORS = frozenset({_SV, _A, _S})

#: Who may call what. Agents handle their contacts; supervisors step in; gateways and other
#: services (SERVICE) drive the media; admins may read and force-fail stuck contacts.
METHOD_ROLES: Final[Mapping[str, frozenset[Role]]] = {
    "CreateInteraction": _OPERATORS,
    "Enqueue": frozenset({_SV, _S, _AD}),
    "Connect": _OPERATORS,
    "Hold": _OPERATORS,
    "Resume": _OPERATORS,
    "Transfer": _OPERATORS,
    "Conference": _OPERATORS,
    "LeaveConference": _OPERATORS,
    "End": _OPERATORS,
    "Complete": _OPERATORS,
    "Abandon": frozenset({_SV, _S}),
    "Fail": frozenset({_SV, _S, _AD}),
    "AppendMessage": _OPERATORS,
    "AddNote": _OPERATORS,
    "AppendTranscript": frozenset({_SV}),
    "RecordSatisfaction": frozenset({_SV}),
    "GetInteraction": ALL_ROLES,
    "ListInteractions": ALL_ROLES,
    "WatchInteraction": ALL_ROLES,
}

_TOKEN_VERSION: Final = 1
_PAGE_FIELD: Final = "page.page_token"

T = TypeVar("T")


def registration(servicer: InteractionsServicer) -> ServiceRegistration:
    return ServiceRegistration(
        descriptor=pb.DESCRIPTOR.services_by_name["InteractionsService"],
        servicer=servicer,
        add_to_server=pb_grpc.add_InteractionsServiceServicer_to_server,
        method_roles=METHOD_ROLES,
    )


def _fingerprint(rpc: str, request: Message) -> dict[str, str]:
    """What identifies a mutating request for idempotency: the RPC and the request's bytes."""
    digest = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    return {"rpc": rpc, "request": digest}


def _enum(
    checks: Checks, field: str, mapping: proto.EnumMap[Any], number: int, *, required: bool = False
) -> Any:
    if not mapping.known(number):
        checks.fail(field, f"unknown value {number}")
        return None
    value = mapping.from_proto(number)
    if value is None and required:
        checks.fail(field, "is required")
    return value


def _time(checks: Checks, field: str, message: Message, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    value = getattr(message, name)
    try:
        return proto.from_timestamp(value)
    except (OverflowError, ValueError):
        checks.fail(field, "is not a valid timestamp")
        return None


def _start(request: Message, *, interaction: bool = True) -> Checks:
    checks = Checks()
    checks.identifier("request_id", getattr(request, "request_id"), required=True)  # noqa: B009
    if interaction:
        checks.identifier("interaction_id", getattr(request, "interaction_id"), required=True)  # noqa: B009
    return checks


def _queue_target(q: pb.QueueTarget) -> QueueTarget:
    return QueueTarget(
        queue_id=q.queue_id,
        priority=q.priority,
        required_skills=proto.skills_from_proto(q.required_skills),
        language=q.language or None,
        intent=q.intent or None,
        attributes=dict(q.attributes),
        target_agent_id=q.target_agent_id or None,
    )


def _agent_only(caller: Caller) -> bool:
    """An agent without supervisor, admin or service rights acts only as themselves."""
    return bool(caller.roles) and caller.roles <= {Role.AGENT}


def _first(events: Sequence[InteractionEvent], kind: type[T]) -> T | None:
    for event in events:
        if isinstance(event, kind):
            return event
    return None


class InteractionsServicer(pb_grpc.InteractionsServiceServicer):
    def __init__(
        self,
        app: InteractionsApplication,
        listing: InteractionList,
        *,
        default_page_size: int = 50,
        max_page_size: int = 500,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._app = app
        self._listing = listing
        self._default_page_size = default_page_size
        self._max_page_size = max_page_size
        self._clock = clock

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _acting_agent(field: str, value: str) -> str | None:
        """The acting agent: for a caller who is only an agent, themselves."""
        caller = current_caller()
        if _agent_only(caller):
            if value and value != caller.subject:
                raise PermissionDenied(
                    f"{field}: an agent acts as themselves ({caller.subject!r}), not {value!r}"
                )
            return caller.subject
        return value or None

    async def _execute(
        self,
        rpc: str,
        request: Message,
        interaction_id: str,
        decision: Decision,
        extras: Extras | None = None,
        *,
        new: bool = False,
    ) -> CommandOutcome:
        return await self._app.execute(
            current_caller().tenant_id,
            interaction_id,
            decision,
            request_id=getattr(request, "request_id"),  # noqa: B009
            fingerprint=_fingerprint(rpc, request),
            extras=extras,
            new=new,
        )

    @staticmethod
    def _result(outcome: CommandOutcome) -> pb.CommandResult:
        return proto.command_result(outcome.interaction_id, outcome.state, outcome.version)

    # --- lifecycle -------------------------------------------------------------------------------

    async def CreateInteraction(
        self, request: pb.CreateInteractionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateInteractionResponse:
        checks = _start(request, interaction=False)
        channel = _enum(checks, "channel", proto.CHANNEL, request.channel, required=True)
        direction = _enum(checks, "direction", proto.DIRECTION, request.direction)
        checks.done()
        # An agent may create an unassigned contact, or one assigned to themselves.
        agent_id = self._acting_agent("agent_id", request.agent_id) if request.agent_id else None
        command = CreateInteraction(
            interaction_id=str(uuid4()),
            channel=channel,
            direction=direction or Direction.INBOUND,
            customer_profile_id=request.customer_profile_id or None,
            customer_address=request.customer_address or None,
            entry_point=request.entry_point or None,
            subject=request.subject or None,
            language=request.language or None,
            intent=request.intent or None,
            attributes=dict(request.attributes),
            external_ref=request.external_ref or None,
            queue=_queue_target(request.queue) if request.HasField("queue") else None,
            agent_id=agent_id,
        )
        outcome = await self._execute(
            "CreateInteraction", request, command.interaction_id, command, new=True
        )
        return pb.CreateInteractionResponse(result=self._result(outcome))

    async def Enqueue(
        self, request: pb.EnqueueRequest, context: grpc.aio.ServicerContext
    ) -> pb.EnqueueResponse:
        checks = _start(request)
        reason = _enum(checks, "reason", proto.QUEUE_REASON, request.reason)
        checks.done()
        command = Enqueue(
            target=QueueTarget(
                queue_id=request.queue_id,
                priority=request.priority,
                required_skills=proto.skills_from_proto(request.required_skills),
                language=request.language or None,
                intent=request.intent or None,
                attributes=dict(request.attributes),
                target_agent_id=request.target_agent_id or None,
            ),
            reason=reason,
        )
        outcome = await self._execute("Enqueue", request, request.interaction_id, command)
        return pb.EnqueueResponse(result=self._result(outcome))

    async def Connect(
        self, request: pb.ConnectRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConnectResponse:
        _start(request).done()
        command = Connect(agent_id=self._acting_agent("agent_id", request.agent_id))
        outcome = await self._execute("Connect", request, request.interaction_id, command)
        return pb.ConnectResponse(result=self._result(outcome))

    async def Hold(
        self, request: pb.HoldRequest, context: grpc.aio.ServicerContext
    ) -> pb.HoldResponse:
        _start(request).done()
        command = Hold(agent_id=self._acting_agent("agent_id", request.agent_id))
        outcome = await self._execute("Hold", request, request.interaction_id, command)
        return pb.HoldResponse(result=self._result(outcome))

    async def Resume(
        self, request: pb.ResumeRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResumeResponse:
        _start(request).done()
        command = Resume(agent_id=self._acting_agent("agent_id", request.agent_id))
        outcome = await self._execute("Resume", request, request.interaction_id, command)
        return pb.ResumeResponse(result=self._result(outcome))

    async def Transfer(
        self, request: pb.TransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransferResponse:
        checks = _start(request)
        mode = _enum(checks, "mode", proto.TRANSFER_MODE, request.mode, required=True)
        checks.done()
        command = Transfer(
            mode=mode,
            to_queue_id=request.to_queue_id or None,
            to_agent_id=request.to_agent_id or None,
            agent_id=self._acting_agent("agent_id", request.agent_id),
            priority=request.priority if request.HasField("priority") else None,
            required_skills=proto.skills_from_proto(request.required_skills),
            reason=request.reason or None,
        )
        outcome = await self._execute("Transfer", request, request.interaction_id, command)
        return pb.TransferResponse(result=self._result(outcome))

    async def Conference(
        self, request: pb.ConferenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConferenceResponse:
        _start(request).done()
        command = Conference(
            agent_id=request.agent_id,
            invited_by_agent_id=self._acting_agent(
                "invited_by_agent_id", request.invited_by_agent_id
            ),
        )
        outcome = await self._execute("Conference", request, request.interaction_id, command)
        return pb.ConferenceResponse(result=self._result(outcome))

    async def LeaveConference(
        self, request: pb.LeaveConferenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.LeaveConferenceResponse:
        _start(request).done()
        agent_id = self._acting_agent("agent_id", request.agent_id) or ""
        command = LeaveConference(agent_id=agent_id)
        outcome = await self._execute("LeaveConference", request, request.interaction_id, command)
        return pb.LeaveConferenceResponse(result=self._result(outcome))

    async def End(
        self, request: pb.EndRequest, context: grpc.aio.ServicerContext
    ) -> pb.EndResponse:
        checks = _start(request)
        ended_by = _enum(checks, "ended_by", proto.ENDED_BY, request.ended_by, required=True)
        checks.done()
        command = End(
            ended_by=ended_by,
            reason=request.reason or None,
            agent_id=self._acting_agent("agent_id", request.agent_id),
        )
        outcome = await self._execute("End", request, request.interaction_id, command)
        return pb.EndResponse(result=self._result(outcome))

    async def Complete(
        self, request: pb.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteResponse:
        _start(request).done()
        command = Complete(
            disposition_codes=tuple(request.disposition_codes),
            notes=request.notes or None,
            agent_id=self._acting_agent("agent_id", request.agent_id),
        )
        outcome = await self._execute("Complete", request, request.interaction_id, command)
        return pb.CompleteResponse(result=self._result(outcome))

    async def Abandon(
        self, request: pb.AbandonRequest, context: grpc.aio.ServicerContext
    ) -> pb.AbandonResponse:
        _start(request).done()
        command = Abandon(reason=request.reason or None)
        outcome = await self._execute("Abandon", request, request.interaction_id, command)
        return pb.AbandonResponse(result=self._result(outcome))

    async def Fail(
        self, request: pb.FailRequest, context: grpc.aio.ServicerContext
    ) -> pb.FailResponse:
        _start(request).done()
        command = Fail(failure_code=request.failure_code, detail=request.detail or None)
        outcome = await self._execute("Fail", request, request.interaction_id, command)
        return pb.FailResponse(result=self._result(outcome))

    # --- content ---------------------------------------------------------------------------------

    async def AppendMessage(
        self, request: pb.AppendMessageRequest, context: grpc.aio.ServicerContext
    ) -> pb.AppendMessageResponse:
        checks = _start(request)
        if not request.HasField("author"):
            checks.fail("author", "is required")
            role = None
        else:
            role = _enum(
                checks, "author.role", proto.AUTHOR_ROLE, request.author.role, required=True
            )
        direction = _enum(
            checks, "direction", proto.MESSAGE_DIRECTION, request.direction, required=True
        )
        sent_at = _time(checks, "sent_at", request, "sent_at")
        checks.done()
        author_id = request.author.id
        if _agent_only(current_caller()):
            if role is not AuthorRole.AGENT:
                raise PermissionDenied("author.role: an agent writes as AUTHOR_ROLE_AGENT")
            author_id = self._acting_agent("author.id", author_id) or ""
        external_id = request.external_message_id or None
        command = AppendMessage(
            message_id=str(uuid4()),
            author=Author(
                role=role, id=author_id or None, display_name=request.author.display_name or None
            ),
            direction=direction,
            body=request.body,
            content_type=request.content_type or None,
            subject=request.subject or None,
            attachments=tuple(proto.attachment_from_proto(a) for a in request.attachments),
            external_message_id=external_id,
            sent_at=sent_at,
        )

        def found(state: Interaction, events: Sequence[InteractionEvent]) -> dict[str, str]:
            appended = _first(events, MessageAppended)
            if appended is None and external_id:
                appended = state.message_with_external_id(external_id)
            return {} if appended is None else {"message_id": appended.message_id}

        outcome = await self._execute(
            "AppendMessage", request, request.interaction_id, command, found
        )
        return pb.AppendMessageResponse(
            result=self._result(outcome), message_id=outcome.extras.get("message_id", "")
        )

    async def AddNote(
        self, request: pb.AddNoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.AddNoteResponse:
        _start(request).done()
        command = AddNote(
            note_id=str(uuid4()),
            author_id=self._acting_agent("author_id", request.author_id) or "",
            text=request.text,
        )

        def found(state: Interaction, events: Sequence[InteractionEvent]) -> dict[str, str]:
            added = _first(events, NoteAdded)
            return {} if added is None else {"note_id": added.note_id}

        outcome = await self._execute("AddNote", request, request.interaction_id, command, found)
        return pb.AddNoteResponse(
            result=self._result(outcome), note_id=outcome.extras.get("note_id", "")
        )

    async def AppendTranscript(
        self, request: pb.AppendTranscriptRequest, context: grpc.aio.ServicerContext
    ) -> pb.AppendTranscriptResponse:
        checks = _start(request)
        speaker = _enum(
            checks, "speaker_role", proto.AUTHOR_ROLE, request.speaker_role, required=True
        )
        checks.done()
        command = AppendTranscript(
            segment_id=request.segment_id or str(uuid4()),
            speaker_role=speaker,
            speaker_id=request.speaker_id or None,
            text=request.text,
            start_offset_ms=proto.to_ms(request.start_offset),
            end_offset_ms=proto.to_ms(request.end_offset),
            confidence=request.confidence or None,
            language=request.language or None,
        )

        def found(state: Interaction, events: Sequence[InteractionEvent]) -> dict[str, str]:
            appended = _first(events, TranscriptAppended)
            return {"segment_id": appended.segment_id if appended else command.segment_id}

        outcome = await self._execute(
            "AppendTranscript", request, request.interaction_id, command, found
        )
        return pb.AppendTranscriptResponse(
            result=self._result(outcome), segment_id=outcome.extras.get("segment_id", "")
        )

    async def RecordSatisfaction(
        self, request: pb.RecordSatisfactionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordSatisfactionResponse:
        _start(request).done()
        command = RecordSatisfaction(
            score=request.score,
            scale=request.scale,
            comment=request.comment or None,
            survey_id=request.survey_id or None,
        )
        outcome = await self._execute(
            "RecordSatisfaction", request, request.interaction_id, command
        )
        return pb.RecordSatisfactionResponse(result=self._result(outcome))

    # --- reads -----------------------------------------------------------------------------------

    async def GetInteraction(
        self, request: pb.GetInteractionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInteractionResponse:
        checks = Checks()
        checks.identifier("interaction_id", request.interaction_id, required=True)
        view = self._view(checks, request.view, default=pb.INTERACTION_VIEW_FULL)
        checks.done()
        state = await self._app.get(current_caller().tenant_id, request.interaction_id)
        return pb.GetInteractionResponse(
            interaction=proto.interaction(
                state, now=self._clock(), full=view == pb.INTERACTION_VIEW_FULL
            )
        )

    @staticmethod
    def _view(checks: Checks, view: int, *, default: int) -> int:
        if view not in (
            pb.INTERACTION_VIEW_UNSPECIFIED,
            pb.INTERACTION_VIEW_BASIC,
            pb.INTERACTION_VIEW_FULL,
        ):
            checks.fail("view", f"unknown value {view}")
        return view or default

    async def ListInteractions(
        self, request: pb.ListInteractionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListInteractionsResponse:
        checks = Checks()
        states = tuple(
            _enum(checks, f"states[{i}]", proto.STATE, s, required=True)
            for i, s in enumerate(request.states)
        )
        channels = tuple(
            _enum(checks, f"channels[{i}]", proto.CHANNEL, c, required=True)
            for i, c in enumerate(request.channels)
        )
        checks.identifier("queue_id", request.queue_id)
        checks.identifier("agent_id", request.agent_id)
        checks.identifier("customer_profile_id", request.customer_profile_id)
        window = request.create_time
        start = _time(checks, "create_time.start_time", window, "start_time")
        end = _time(checks, "create_time.end_time", window, "end_time")
        if start is not None and end is not None and end <= start:
            checks.fail("create_time.end_time", "must be after create_time.start_time")
        if request.page.page_size < 0:
            checks.fail("page.page_size", "must not be negative")
        view = self._view(checks, request.view, default=pb.INTERACTION_VIEW_BASIC)
        filter_key = self._filter_key(request)
        cursor = self._decode_token(checks, request.page.page_token, filter_key)
        checks.done()
        size = min(request.page.page_size or self._default_page_size, self._max_page_size)
        tenant_id = current_caller().tenant_id
        found, next_cursor = await self._listing.search(
            tenant_id,
            ListFilter(
                states=tuple(s for s in states if s is not None),
                channels=tuple(c for c in channels if c is not None),
                queue_id=request.queue_id or None,
                agent_id=request.agent_id or None,
                customer_profile_id=request.customer_profile_id or None,
                created_from=start,
                created_before=end,
            ),
            after=cursor,
            limit=size,
        )
        full = view == pb.INTERACTION_VIEW_FULL
        if full and found:
            found = list(
                await asyncio.gather(*(self._app.get(tenant_id, s.interaction_id) for s in found))
            )
        else:
            found = await self._app.open_all(tenant_id, found)
        now = self._clock()
        return pb.ListInteractionsResponse(
            interactions=[proto.interaction(s, now=now, full=full) for s in found],
            page=common_pb2.PageResponse(
                next_page_token=self._encode_token(next_cursor, filter_key) if next_cursor else ""
            ),
        )

    @staticmethod
    def _filter_key(request: pb.ListInteractionsRequest) -> str:
        """A page token only continues the list it came from (same filters)."""
        filters = pb.ListInteractionsRequest()
        filters.CopyFrom(request)
        filters.ClearField("page")
        filters.ClearField("view")
        return hashlib.sha256(filters.SerializeToString(deterministic=True)).hexdigest()[:16]

    @staticmethod
    def _encode_token(cursor: Cursor, filter_key: str) -> str:
        data = {
            "v": _TOKEN_VERSION,
            "t": proto.to_micros(cursor.created_at),
            "i": cursor.interaction_id,
            "f": filter_key,
        }
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_token(checks: Checks, token: str, filter_key: str) -> Cursor | None:
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            if data.get("v") != _TOKEN_VERSION or not isinstance(data.get("i"), str):
                raise ValueError("unknown token")
            created_at = proto.from_micros(int(data["t"]))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, binascii.Error):
            checks.fail(_PAGE_FIELD, "is not a page token of this list")
            return None
        if data.get("f") != filter_key:
            checks.fail(_PAGE_FIELD, "was issued for other filters; keep the filters when paging")
            return None
        return Cursor(created_at, data["i"])

    async def WatchInteraction(
        self, request: pb.WatchInteractionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchInteractionResponse]:
        checks = Checks()
        checks.identifier("interaction_id", request.interaction_id, required=True)
        if request.after_version < 0:
            checks.fail("after_version", "must not be negative")
        checks.done()
        tenant_id = current_caller().tenant_id
        try:
            async for item in self._app.watch(
                tenant_id, request.interaction_id, request.after_version
            ):
                if isinstance(item, WatchSnapshot):
                    snapshot = proto.interaction(item.interaction, now=self._clock(), full=False)
                    yield pb.WatchInteractionResponse(snapshot=snapshot)
                else:
                    event = proto.interaction_event(
                        item.event, version=item.version, state=item.state
                    )
                    yield pb.WatchInteractionResponse(event=event)
        except ServiceClosing as closing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(closing))

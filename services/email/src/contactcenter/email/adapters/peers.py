"""gRPC clients of the other services: profiles (ResolveIdentity) and interactions
(AppendMessage). They call with a service token for the message's tenant, signed with the
configured key (the development key by default)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as ipb_grpc
from contactcenter.profiles.v1 import profiles_pb2 as ppb
from contactcenter.profiles.v1 import profiles_pb2_grpc as ppb_grpc

SUBJECT = "email-service"


class _Tokens:
    def __init__(self, key: SecretStr) -> None:
        self._key = key
        self._tokens: dict[str, tuple[str, float]] = {}

    def metadata(self, tenant_id: str) -> tuple[tuple[str, str]]:
        now = time.monotonic()
        cached = self._tokens.get(tenant_id)
        if cached is None or cached[1] < now:
            token = issue_token(tenant_id, [Role.SERVICE], SUBJECT, self._key)
            cached = (token, now + 30 * 60)  # tokens live an hour
            self._tokens[tenant_id] = cached
        return metadata_for(cached[0])


class GrpcProfileResolver:
    def __init__(self, address: str, key: SecretStr, *, timeout_s: float = 5.0) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = ppb_grpc.ProfilesServiceStub(self._channel)
        self._tokens = _Tokens(key)
        self._timeout = timeout_s

    async def resolve(self, tenant_id: str, address: str, display_name: str | None) -> str:
        response = await self._stub.ResolveIdentity(
            ppb.ResolveIdentityRequest(
                request_id=str(uuid.uuid4()),
                identity=ppb.Identity(kind=ppb.IDENTITY_KIND_EMAIL, value=address),
                display_name=display_name or "",
            ),
            metadata=self._tokens.metadata(tenant_id),
            timeout=self._timeout,
        )
        return str(response.profile_id)

    async def close(self) -> None:
        await self._channel.close()


class InteractionsClient:
    def __init__(self, address: str, key: SecretStr, *, timeout_s: float = 10.0) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = ipb_grpc.InteractionsServiceStub(self._channel)
        self._tokens = _Tokens(key)
        self._timeout = timeout_s

    async def append_outbound(
        self,
        tenant_id: str,
        *,
        request_id: str,
        interaction_id: str,
        agent_id: str,
        agent_name: str | None,
        body: str,
        subject: str,
        external_message_id: str,
        sent_at: datetime,
    ) -> str:
        ts = Timestamp()
        ts.FromDatetime(sent_at)
        response = await self._stub.AppendMessage(
            ipb.AppendMessageRequest(
                request_id=request_id,
                interaction_id=interaction_id,
                author=ipb.Author(
                    role=ipb.AUTHOR_ROLE_AGENT, id=agent_id, display_name=agent_name or ""
                ),
                direction=ipb.MESSAGE_DIRECTION_OUTBOUND,
                body=body,
                content_type="text/plain",
                subject=subject,
                external_message_id=external_message_id,
                sent_at=ts,
            ),
            metadata=self._tokens.metadata(tenant_id),
            timeout=self._timeout,
        )
        return str(response.message_id)

    async def close(self) -> None:
        await self._channel.close()


def is_permanent(error: grpc.aio.AioRpcError) -> bool:
    return error.code() in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
    )

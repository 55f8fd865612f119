"""The text of a received email, from the email service (`GetMessage`, with a service token of
the message's tenant): `email.EmailReceived.v1` carries its personal fields sealed with a key
only the email service holds, so this service reads them through the email service's API."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import grpc
from pydantic import SecretStr

from contactcenter.email.v1 import email_pb2 as epb
from contactcenter.email.v1 import email_pb2_grpc as epb_grpc
from contactcenter.grpckit import Role, issue_token, metadata_for

SUBJECT = "interactions-service"


@dataclass(frozen=True, slots=True)
class EmailText:
    from_address: str
    from_name: str | None
    subject: str | None
    body_text: str
    to_addresses: tuple[str, ...] = ()
    #: attachment_id -> file name
    file_names: dict[str, str] = field(default_factory=dict)


class GrpcEmailTexts:
    def __init__(self, address: str, key: SecretStr, *, timeout_s: float = 10.0) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = epb_grpc.EmailServiceStub(self._channel)
        self._key = key
        self._timeout = timeout_s
        self._tokens: dict[str, tuple[str, float]] = {}

    def _metadata(self, tenant_id: str) -> tuple[tuple[str, str]]:
        now = time.monotonic()
        cached = self._tokens.get(tenant_id)
        if cached is None or cached[1] < now:
            token = issue_token(tenant_id, [Role.SERVICE], SUBJECT, self._key)
            cached = self._tokens[tenant_id] = (token, now + 30 * 60)  # tokens live an hour
        return metadata_for(cached[0])

    async def text(self, tenant_id: str, message_id: str) -> EmailText | None:
        """The message's text; None when the email service has none (not found)."""
        try:
            response = await self._stub.GetMessage(
                epb.GetMessageRequest(message_id=message_id),
                metadata=self._metadata(tenant_id),
                timeout=self._timeout,
                # A restarting email service is waited for (up to the timeout), not failed.
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        m = response.message
        return EmailText(
            from_address=m.from_address,
            from_name=m.from_name or None,
            subject=m.subject or None,
            body_text=m.body_text,
            to_addresses=tuple(m.to_addresses),
            file_names={a.attachment_id: a.file_name for a in m.attachments if a.file_name},
        )

    async def close(self) -> None:
        await self._channel.close()

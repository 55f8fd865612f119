"""Bearer-token authentication and per-method roles, against a real server and as units."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import grpc
import jwt
import pytest
from grpc_status import rpc_status
from pydantic import SecretStr, ValidationError

from contactcenter.contracts.errors import Unauthenticated
from contactcenter.grpckit import (
    DEV_ONLY_SIGNING_KEY,
    AuthSettings,
    GrpcServer,
    GrpcServerSettings,
    Role,
    ServiceRegistration,
    TokenVerifier,
    bearer_token,
    current_caller,
    issue_token,
    metadata_for,
    requires_roles,
)
from contactcenter.grpckit.diagnostics import DiagnosticsServicer, diagnostics_registration
from contactcenter.platform.v1 import platform_pb2, platform_pb2_grpc

MakeServer = Callable[..., Awaitable[GrpcServer]]
ECHO = platform_pb2.EchoRequest(request_id="r-1", message="hi")
OTHER_KEY = "another-secret-that-is-long-enough-for-hs256"


async def echo_error(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
    metadata: tuple[tuple[str, str], ...] | None,
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Echo(ECHO, metadata=metadata, timeout=5)
    return error.value


@pytest.mark.parametrize(
    ("metadata", "detail"),
    [
        (None, "missing bearer token"),
        ((("authorization", "Basic dXNlcjpwYXNz"),), "must be `Bearer <token>`"),
        ((("authorization", "Bearer not-a-jwt"),), "malformed bearer token"),
        (metadata_for(issue_token("t", [Role.AGENT], "u", key=OTHER_KEY)), "invalid bearer token"),
        (
            metadata_for(issue_token("t", [Role.AGENT], "u", ttl=timedelta(minutes=-5))),
            "bearer token expired",
        ),
        (
            metadata_for(issue_token("t", [Role.AGENT], "u", key_id="unknown")),
            "unknown key",
        ),
    ],
    ids=["missing", "not-bearer", "malformed", "forged", "expired", "unknown-kid"],
)
async def test_bad_tokens_are_unauthenticated(
    diagnostics: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
    metadata: tuple[tuple[str, str], ...] | None,
    detail: str,
) -> None:
    error = await echo_error(diagnostics, metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert detail in (error.details() or "")
    status = rpc_status.from_call(error)
    assert status is not None and status.code == grpc.StatusCode.UNAUTHENTICATED.value[0]


async def test_a_token_without_tenant_is_unauthenticated(
    diagnostics: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    token = jwt.encode(
        {"sub": "u", "roles": ["agent"], "exp": 4_000_000_000}, DEV_ONLY_SIGNING_KEY, "HS256"
    )
    error = await echo_error(diagnostics, metadata_for(token))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_alg_none_is_refused(
    diagnostics: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    token = jwt.encode(
        {"sub": "u", "tenant_id": "t", "roles": ["admin"], "exp": 4_000_000_000},
        key=None,
        algorithm="none",
    )
    error = await echo_error(diagnostics, metadata_for(token))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


class AdminOnlySleep(DiagnosticsServicer):
    @requires_roles(Role.ADMIN)
    async def Sleep(
        self, request: platform_pb2.SleepRequest, context: grpc.aio.ServicerContext
    ) -> platform_pb2.SleepResponse:
        return await super().Sleep(request, context)


async def test_wrong_role_is_permission_denied(make_server: MakeServer) -> None:
    base = diagnostics_registration(AdminOnlySleep())
    registration = ServiceRegistration(
        descriptor=base.descriptor,
        servicer=base.servicer,
        add_to_server=base.add_to_server,
        method_roles={"Echo": {Role.SUPERVISOR}},  # declarative map
    )
    server = await make_server([registration])
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = platform_pb2_grpc.PlatformDiagnosticsServiceStub(channel)
        agent = metadata_for(issue_token("t", [Role.AGENT], "agent-1"))
        supervisor = metadata_for(issue_token("t", [Role.SUPERVISOR], "sup-1"))
        admin = metadata_for(issue_token("t", [Role.ADMIN], "admin-1"))

        error = await echo_error(stub, agent)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (await stub.Echo(ECHO, metadata=supervisor, timeout=5)).subject == "sup-1"

        sleep = platform_pb2.SleepRequest(duration_ms=1)
        for caller in (agent, supervisor):  # decorator on the servicer method
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.Sleep(sleep, metadata=caller, timeout=5)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await stub.Sleep(sleep, metadata=admin, timeout=5)


async def test_configured_keys_with_rotation(make_server: MakeServer) -> None:
    settings = GrpcServerSettings(
        auth=AuthSettings(
            signing_key=None,  # production: no dev key, every token names its key
            signing_keys={"2026-01": SecretStr(OTHER_KEY), "2026-07": SecretStr("b" * 40)},
            issuer="https://idp.example",
            audience="contact-center",
        )
    )
    server = await make_server(settings=settings)
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = platform_pb2_grpc.PlatformDiagnosticsServiceStub(channel)
        claims = {"issuer": "https://idp.example", "audience": "contact-center"}
        for kid, key in (("2026-01", OTHER_KEY), ("2026-07", "b" * 40)):
            token = issue_token("t", [Role.SERVICE], "ivr", key=key, key_id=kid, **claims)
            assert (await stub.Echo(ECHO, metadata=metadata_for(token), timeout=5)).tenant_id == "t"

        dev_token = issue_token("t", [Role.ADMIN], "dev")
        assert (await echo_error(stub, metadata_for(dev_token))).code() == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        wrong_audience = issue_token(
            "t", [Role.ADMIN], "u", key=OTHER_KEY, key_id="2026-01", issuer=claims["issuer"]
        )
        assert (await echo_error(stub, metadata_for(wrong_audience))).code() == (
            grpc.StatusCode.UNAUTHENTICATED
        )


def test_verifier_reads_tid_and_ignores_unknown_roles() -> None:
    token = jwt.encode(
        {"sub": "u", "tid": "tenant-x", "roles": ["agent", "janitor"], "exp": 4_000_000_000},
        DEV_ONLY_SIGNING_KEY,
        "HS256",
    )
    caller = TokenVerifier(AuthSettings()).verify(token)
    assert (caller.tenant_id, caller.subject, caller.roles) == (
        "tenant-x",
        "u",
        frozenset({Role.AGENT}),
    )


@pytest.mark.parametrize("roles", ["agent", [1], {"a": 1}])
def test_verifier_refuses_malformed_roles(roles: object) -> None:
    token = jwt.encode(
        {"sub": "u", "tenant_id": "t", "roles": roles, "exp": 4_000_000_000},
        DEV_ONLY_SIGNING_KEY,
        "HS256",
    )
    with pytest.raises(Unauthenticated):
        TokenVerifier(AuthSettings()).verify(token)


def test_bearer_token_parsing() -> None:
    assert bearer_token([("authorization", "bearer abc")]) == "abc"
    assert bearer_token([("x-other", "1"), ("authorization", b"Bearer  abc ")]) == "abc"
    with pytest.raises(Unauthenticated):
        bearer_token([("authorization", "Bearer a"), ("authorization", "Bearer b")])
    with pytest.raises(Unauthenticated):
        bearer_token([("authorization", "Bearer ")])


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValidationError):
        AuthSettings(signing_key=SecretStr("short"))
    with pytest.raises(ValidationError):
        AuthSettings(signing_keys={"k": SecretStr("short")})


def test_dev_key_is_detected() -> None:
    assert AuthSettings().uses_dev_key
    assert not AuthSettings(signing_key=SecretStr(OTHER_KEY)).uses_dev_key


def test_current_caller_fails_closed_outside_an_rpc() -> None:
    with pytest.raises(Unauthenticated):
        current_caller()


def test_issue_token_refuses_unknown_roles() -> None:
    with pytest.raises(ValueError):
        issue_token("t", ["janitor"], "u")


def test_a_verified_token_is_remembered_only_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = TokenVerifier(AuthSettings(leeway_seconds=0))
    token = issue_token("t1", ["agent"], "a1", ttl=timedelta(seconds=60))
    assert verifier.verify(token).tenant_id == "t1"
    calls = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1))
    assert verifier.verify(token).subject == "a1"  # from the cache: no second decode
    assert calls == []
    # Past its exp the cached entry is dropped and the token is checked afresh.
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)
    with pytest.raises(Exception):  # noqa: B017 (the stubbed decode returns no claims)
        verifier.verify(token)
    assert calls == [1]

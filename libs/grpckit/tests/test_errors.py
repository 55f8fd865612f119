"""Exceptions raised by handlers reach the client as the right status with rich details."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pydantic
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from contactcenter.contracts.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    DomainError,
    FailedPrecondition,
    IllegalTransition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from contactcenter.grpckit import GrpcServer, Role, issue_token, metadata_for
from contactcenter.grpckit.diagnostics import DiagnosticsServicer, diagnostics_registration
from contactcenter.platform.v1 import platform_pb2, platform_pb2_grpc

MakeServer = Callable[..., Awaitable[GrpcServer]]
AUTH = metadata_for(issue_token("tenant-a", [Role.AGENT], "agent-1"))


class LibraryConflict(Exception):
    """Stands for a third-party error type mapped through create_server(error_codes=...)."""


class Address(pydantic.BaseModel):
    emails: list[str]
    port: int


def raise_pydantic() -> None:
    Address.model_validate({"emails": ["ok", 3], "port": "not a number"})


ERRORS: dict[str, Callable[[], BaseException]] = {
    "validation": lambda: ValidationFailed(
        [("queue.name", "is required"), ("channel", "must not be CHANNEL_UNSPECIFIED")]
    ),
    "not-found": lambda: NotFound(
        "queue 'q-9' not found", resource_type="Queue", resource_name="q-9"
    ),
    "already-exists": lambda: AlreadyExists("queue 'q-1' already exists"),
    "precondition": lambda: FailedPrecondition("mailbox is disabled"),
    "transition": lambda: IllegalTransition(
        "cannot accept an interaction in state COMPLETED", current_state="COMPLETED"
    ),
    "conflict": lambda: ConcurrencyConflict("interaction-1", expected_version=3, actual_version=4),
    "permission": lambda: PermissionDenied("agents may not edit queues"),
    "unauthenticated": lambda: Unauthenticated("session revoked"),
    "domain": lambda: DomainError("a business rule said no"),
    "library": lambda: LibraryConflict("raced"),
    "not-implemented": lambda: NotImplementedError(),
    "bug": lambda: ZeroDivisionError("secret internals: password=hunter2"),
}


class FailingServicer(DiagnosticsServicer):
    async def Echo(
        self, request: platform_pb2.EchoRequest, context: grpc.aio.ServicerContext
    ) -> platform_pb2.EchoResponse:
        if request.message == "pydantic":
            raise_pydantic()
        if request.message == "abort":
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")
        if request.message in ERRORS:
            raise ERRORS[request.message]()
        return await super().Echo(request, context)

    async def Tick(
        self, request: platform_pb2.TickRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[platform_pb2.TickResponse]:
        yield platform_pb2.TickResponse(sequence=1)
        raise NotFound("the wallboard went away")


@pytest.fixture
async def stub(
    make_server: MakeServer,
) -> AsyncIterator[platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub]:
    server = await make_server(
        [diagnostics_registration(FailingServicer())],
        error_codes={LibraryConflict: grpc.StatusCode.ABORTED},
    )
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield platform_pb2_grpc.PlatformDiagnosticsServiceStub(channel)


async def fail(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub, message: str
) -> tuple[grpc.aio.AioRpcError, status_pb2.Status | None]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Echo(
            platform_pb2.EchoRequest(request_id="r", message=message), metadata=AUTH, timeout=5
        )
    return error.value, rpc_status.from_call(error.value)


def detail(status: status_pb2.Status, kind: type) -> object:
    for packed in status.details:
        if packed.Is(kind.DESCRIPTOR):
            message = kind()
            packed.Unpack(message)
            return message
    raise AssertionError(f"no {kind.__name__} in {status}")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("validation", grpc.StatusCode.INVALID_ARGUMENT),
        ("not-found", grpc.StatusCode.NOT_FOUND),
        ("already-exists", grpc.StatusCode.ALREADY_EXISTS),
        ("precondition", grpc.StatusCode.FAILED_PRECONDITION),
        ("transition", grpc.StatusCode.FAILED_PRECONDITION),
        ("conflict", grpc.StatusCode.ABORTED),
        ("permission", grpc.StatusCode.PERMISSION_DENIED),
        ("unauthenticated", grpc.StatusCode.UNAUTHENTICATED),
        ("domain", grpc.StatusCode.FAILED_PRECONDITION),
        ("library", grpc.StatusCode.ABORTED),
        ("not-implemented", grpc.StatusCode.UNIMPLEMENTED),
        ("bug", grpc.StatusCode.INTERNAL),
        ("pydantic", grpc.StatusCode.INVALID_ARGUMENT),
        ("abort", grpc.StatusCode.RESOURCE_EXHAUSTED),  # the handler's own abort is kept
    ],
)
async def test_each_error_maps_to_its_code(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
    name: str,
    code: grpc.StatusCode,
) -> None:
    error, _ = await fail(stub, name)
    assert error.code() == code
    assert error.code() != grpc.StatusCode.UNKNOWN


async def test_validation_failed_carries_field_violations(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    _, status = await fail(stub, "validation")
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad_request = detail(status, error_details_pb2.BadRequest)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("queue.name", "is required"),
        ("channel", "must not be CHANNEL_UNSPECIFIED"),
    ]
    info = detail(status, error_details_pb2.ErrorInfo)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("VALIDATION_FAILED", "contactcenter")


async def test_missing_required_fields_are_invalid_argument(
    diagnostics: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await diagnostics.Echo(platform_pb2.EchoRequest(), metadata=AUTH, timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error.value)
    assert status is not None
    bad_request = detail(status, error_details_pb2.BadRequest)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [v.field for v in bad_request.field_violations] == ["request_id", "message"]


async def test_pydantic_errors_name_the_fields(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    _, status = await fail(stub, "pydantic")
    assert status is not None
    bad_request = detail(status, error_details_pb2.BadRequest)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert {v.field for v in bad_request.field_violations} == {"emails[1]", "port"}


async def test_illegal_transition_names_the_current_state(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    error, status = await fail(stub, "transition")
    assert "COMPLETED" in (error.details() or "")
    assert status is not None
    info = detail(status, error_details_pb2.ErrorInfo)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "ILLEGAL_TRANSITION"
    assert dict(info.metadata) == {"current_state": "COMPLETED"}
    failure = detail(status, error_details_pb2.PreconditionFailure)
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    assert failure.violations[0].subject == "COMPLETED"


async def test_not_found_names_the_resource(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    _, status = await fail(stub, "not-found")
    assert status is not None
    resource = detail(status, error_details_pb2.ResourceInfo)
    assert isinstance(resource, error_details_pb2.ResourceInfo)
    assert (resource.resource_type, resource.resource_name) == ("Queue", "q-9")


async def test_concurrency_conflict_reports_versions(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    _, status = await fail(stub, "conflict")
    assert status is not None
    info = detail(status, error_details_pb2.ErrorInfo)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert dict(info.metadata) == {
        "stream_id": "interaction-1",
        "expected_version": "3",
        "actual_version": "4",
    }


async def test_unexpected_errors_are_internal_without_leaking(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="contactcenter.grpckit"):
        error, status = await fail(stub, "bug")
    details = error.details() or ""
    assert "hunter2" not in details and "ZeroDivisionError" not in details
    assert "Traceback" not in details
    assert status is not None
    info = detail(status, error_details_pb2.ErrorInfo)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    incident = info.metadata["incident"]
    assert incident in details
    # The server log has the whole story under the same incident id.
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert logged and logged[0].exc_info is not None


async def test_errors_in_server_streams_are_mapped(
    stub: platform_pb2_grpc.PlatformDiagnosticsServiceAsyncStub,
) -> None:
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for tick in stub.Tick(platform_pb2.TickRequest(count=1), metadata=AUTH, timeout=5):
            received.append(tick.sequence)
    assert received == [1]
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
